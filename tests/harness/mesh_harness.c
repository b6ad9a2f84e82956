/*
 * mesh_harness.c - harness setup and teardown, the process registry that the
 * cleanup hooks walk, free ports, time, and small JSON/text helpers.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness_internal.h"

#define MH_PORTS_MAX       512   /* ports one test executable may hand out */
#define MH_PORT_MIN        10000 /* lowest port handed out (below: well-known services) */
#define MH_DUMP_TAIL_LINES 60    /* lines of each log shown when a test failed */
#define MH_DUMP_TAIL_BYTES 8192

static char s_tmpdir[MH_PATH_MAX];
static int s_verbose;

/* The registry is read from a signal handler: plain pids in a static array. */
static volatile pid_t s_pids[MH_REGISTRY_MAX];

static int s_ports[MH_PORTS_MAX];
static size_t s_n_ports;

void mh__registry_add(pid_t pid)
{
    for (size_t i = 0; i < MH_REGISTRY_MAX; i++) {
        if (s_pids[i] == 0) {
            s_pids[i] = pid;
            return;
        }
    }
    /* Full: the process still dies through PR_SET_PDEATHSIG. */
    fprintf(stderr, "harness: process registry full, pid %d not recorded\n", (int)pid);
}

void mh__registry_remove(pid_t pid)
{
    for (size_t i = 0; i < MH_REGISTRY_MAX; i++) {
        if (s_pids[i] == pid) {
            s_pids[i] = 0;
        }
    }
}

void mh__registry_kill_all(void)
{
    for (size_t i = 0; i < MH_REGISTRY_MAX; i++) {
        pid_t pid = s_pids[i];
        if (pid > 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
        }
    }
}

static void atexit_hook(void)
{
    mh__registry_kill_all();
}

static void signal_hook(int sig)
{
    mh__registry_kill_all();
    _exit(128 + sig);
}

int mh_init(const char *test_name)
{
    s_verbose = getenv("MESH_TEST_VERBOSE") != NULL;
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    int n = snprintf(s_tmpdir, sizeof s_tmpdir, "%s/mesh-%s-XXXXXX", base, test_name);
    if (n < 0 || (size_t)n >= sizeof s_tmpdir || mkdtemp(s_tmpdir) == NULL) {
        fprintf(stderr, "harness: cannot create temp dir: %s\n", strerror(errno));
        return -1;
    }
    atexit(atexit_hook);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = signal_hook;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* A server closing on us mid-write must be an error return, not a death. */
    signal(SIGPIPE, SIG_IGN);
    mh_note("temp dir %s", s_tmpdir);
    return 0;
}

const char *mh_tmpdir(void)
{
    return s_tmpdir;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int mh_finish(int failed)
{
    mh__registry_kill_all();
    if (s_tmpdir[0] == '\0') {
        return failed;
    }
    if (failed != 0) {
        mh__dump_logs();
        fprintf(stderr, "harness: %d test(s) failed; logs kept in %s\n", failed, s_tmpdir);
    } else if (getenv("MESH_KEEP_TMP") != NULL) {
        fprintf(stderr, "harness: logs kept in %s\n", s_tmpdir);
    } else {
        nftw(s_tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    return failed;
}

void mh_note(const char *fmt, ...)
{
    if (!s_verbose) {
        return;
    }
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[harness %8.3f] %s\n", (double)mh_now_ms() / 1000.0, line);
}

uint64_t mh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int port_used(int port)
{
    for (size_t i = 0; i < s_n_ports; i++) {
        if (s_ports[i] == port) {
            return 1;
        }
    }
    return 0;
}

/*
 * The lowest port of the kernel's ephemeral range: ports below it are never
 * handed to outgoing connections, so a port we pick there cannot be taken by
 * some client socket between our check and the service's bind.
 */
static int ephemeral_low(void)
{
    int low = 32768, high = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%d %d", &low, &high) != 2) {
            low = 32768;
        }
        fclose(f);
    }
    return low;
}

static bool port_bindable(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

int mh_free_port(void)
{
    static unsigned seed;
    if (seed == 0) {
        seed = (unsigned)getpid() ^ (unsigned)mh_now_ms();
    }
    int low = MH_PORT_MIN, high = ephemeral_low() - 1;
    if (high - low < 1000) {
        low = 1024; /* an unusual ephemeral range: use what is left below it */
    }
    for (int attempt = 0; attempt < 1000; attempt++) {
        int port = low + (int)(rand_r(&seed) % (unsigned)(high - low + 1));
        if (!port_used(port) && port_bindable(port) && s_n_ports < MH_PORTS_MAX) {
            s_ports[s_n_ports++] = port;
            return port;
        }
    }
    return -1;
}

const char *mh_bin(const char *svc, char *out, size_t out_size)
{
    const char *dir = getenv("MESH_BIN_DIR");
    if (dir == NULL || dir[0] == '\0') {
        dir = "./bin";
    }
    snprintf(out, out_size, "%s/mesh-%s", dir, svc);
    return out;
}

char *mh__read_file(const char *path, size_t from, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    size_t want = size > from ? size - from : 0;
    char *buf = malloc(want + 1);
    if (buf == NULL) {
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, buf + got, want - got, (off_t)(from + got));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    if (len_out != NULL) {
        *len_out = got;
    }
    return buf;
}

static void dump_tail(const char *path)
{
    size_t len = 0;
    char *text = mh__read_file(path, 0, &len);
    if (text == NULL || len == 0) {
        free(text);
        return;
    }
    /* Start MH_DUMP_TAIL_LINES lines from the end, and at most MH_DUMP_TAIL_BYTES back. */
    size_t start = len;
    int lines = 0;
    while (start > 0 && len - start < MH_DUMP_TAIL_BYTES) {
        if (text[start - 1] == '\n' && start != len && ++lines >= MH_DUMP_TAIL_LINES) {
            break;
        }
        start--;
    }
    fprintf(stderr, "----- tail of %s -----\n%s%s", path, text + start,
            (len > 0 && text[len - 1] != '\n') ? "\n" : "");
    free(text);
}

void mh__dump_logs(void)
{
    DIR *d = opendir(s_tmpdir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".log") == 0) {
            char path[MH_PATH_MAX + 256];
            snprintf(path, sizeof path, "%s/%s", s_tmpdir, e->d_name);
            dump_tail(path);
        }
    }
    closedir(d);
}

const char *mh_json_str(const json_t *obj, const char *key)
{
    if (!json_is_object(obj)) {
        return NULL;
    }
    return json_string_value(json_object_get(obj, key));
}

const char *mh_json_error_code(const json_t *obj)
{
    if (!json_is_object(obj)) {
        return NULL;
    }
    return mh_json_str(json_object_get(obj, "error"), "code");
}

bool mh_has_cjk(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (p != NULL && *p != '\0') {
        unsigned cp;
        int n;
        if (*p < 0x80) {
            cp = *p;
            n = 1;
        } else if ((*p & 0xE0) == 0xC0 && p[1] != '\0') {
            cp = ((unsigned)(*p & 0x1F) << 6) | (p[1] & 0x3F);
            n = 2;
        } else if ((*p & 0xF0) == 0xE0 && p[1] != '\0' && p[2] != '\0') {
            cp = ((unsigned)(*p & 0x0F) << 12) | ((unsigned)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
            n = 3;
        } else if ((*p & 0xF8) == 0xF0 && p[1] != '\0' && p[2] != '\0' && p[3] != '\0') {
            cp = ((unsigned)(*p & 0x07) << 18) | ((unsigned)(p[1] & 0x3F) << 12) |
                 ((unsigned)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
            n = 4;
        } else {
            cp = 0;
            n = 1;
        }
        if ((cp >= 0x3400 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF)) {
            return true;
        }
        p += n;
    }
    return false;
}

void mh_json_merge(json_t *dst, const json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v)
    {
        if (json_is_null(v))
            json_object_del(dst, k);
        else
            json_object_set(dst, k, v);
    }
}
