/*
 * ttft.c - mesh-ttft: time to first token through the mesh versus directly
 * against the model server, to measure what the mesh adds (issue 4's bar:
 * under 1 ms at p99).
 *
 *   mesh-ttft --direct http://127.0.0.1:P/v1/chat/completions --model M
 *             --mesh http://127.0.0.1:G [-n 200] [--warmup 20] [--text T]
 *             [--conv-turns K]
 *
 * Each sample is one streamed request on a fresh loopback connection,
 * alternating direct and mesh so both see the same machine state:
 *   direct  POST <direct> {"model": M, "stream": true, "messages": [user T]};
 *           the first token is the first SSE chunk whose
 *           choices[0].delta.content is a non-empty string;
 *   mesh    POST <mesh>/v1/conversations/<id>/messages with
 *           Accept: text/event-stream {"text": T}; the first token is the
 *           first `event: delta`. Each conversation gets K turns in a row
 *           (default 1: every mesh sample is a new conversation; K > 1
 *           measures follow-up turns too, whose history grows).
 * The clock runs from just before the request is written to when the bytes
 * holding the first token have been read (CLOCK_MONOTONIC). Then the rest of
 * the answer is read to its end, as a chat client does: a client that hung
 * up after the first token would cancel every turn, and the llm worker would
 * have to drop its connection to the model each time (HTTP/1.1 cannot stop
 * a response midway), which no real conversation pays. Printed: p50,
 * p90, p99, mean of both and of the per-percentile difference, as text or
 * (--json) one JSON object.
 *
 * No mesh library is used: only sockets, poll and jansson, so the tool
 * measures what any HTTP client sees.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TTFT_SAMPLES_MAX 100000
#define TTFT_RESP_MAX    (1024 * 1024) /* bytes read per response before giving up */
#define TTFT_TIMEOUT_MS  30000         /* per request */
#define TTFT_URL_MAX     512

typedef struct {
    char host[256];
    int port;
    char path[TTFT_URL_MAX];
} url_t;

typedef enum { MODE_DIRECT, MODE_MESH } ttft_mode_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* http://host:port/path only (no TLS: both ends are on this machine). */
static int parse_url(const char *s, url_t *u)
{
    if (strncmp(s, "http://", 7) != 0)
        return -1;
    s += 7;
    const char *colon = strchr(s, ':');
    const char *slash = strchr(s, '/');
    if (!colon || (slash && slash < colon) || (size_t)(colon - s) >= sizeof(u->host))
        return -1;
    memcpy(u->host, s, (size_t)(colon - s));
    u->host[colon - s] = '\0';
    u->port = atoi(colon + 1);
    snprintf(u->path, sizeof(u->path), "%s", slash ? slash : "/");
    if (strlen(u->path) > 1 && u->path[strlen(u->path) - 1] == '/')
        u->path[strlen(u->path) - 1] = '\0';
    return u->port > 0 && u->port < 65536 ? 0 : -1;
}

static int connect_to(const url_t *u)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)u->port)};
    if (inet_pton(AF_INET, strcmp(u->host, "localhost") == 0 ? "127.0.0.1" : u->host,
                  &a.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Does the SSE text so far (chunk framing included: we only look for event
 * boundaries inside it) hold a first token? Checks complete events only. */
static bool has_first_token(ttft_mode_t mode, const char *buf, size_t len)
{
    const char *body = memmem(buf, len, "\r\n\r\n", 4);
    if (!body)
        return false;
    if (mode == MODE_MESH)
        return memmem(body, len - (size_t)(body - buf), "event: delta\n", 13) != NULL;
    /* direct: each "data: {...}" line; chunk sizes sit between events, never inside
     * a line the stub writes unsplit (the bench script does not use "split"). */
    const char *p = body;
    const char *end = buf + len;
    while ((p = memmem(p, (size_t)(end - p), "data: ", 6)) != NULL) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return false;
        json_t *j = json_loadb(p + 6, (size_t)(nl - p - 6), 0, NULL);
        const char *content = json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta"), "content"));
        bool hit = content && content[0];
        json_decref(j);
        if (hit)
            return true;
        p = nl + 1;
    }
    return false;
}

/* One sample: milliseconds to the first token, or a negative value on failure. */
static double sample(ttft_mode_t mode, const url_t *u, const char *model, const char *text,
                     long conv)
{
    char path[TTFT_URL_MAX + 128];
    json_t *b;
    if (mode == MODE_DIRECT) {
        snprintf(path, sizeof(path), "%s", u->path);
        b = json_pack("{s:s, s:b, s:[{s:s, s:s}]}", "model", model, "stream", 1, "messages", "role",
                      "user", "content", text);
    } else {
        snprintf(path, sizeof(path), "%s/v1/conversations/ttft-%d-%ld/messages",
                 strcmp(u->path, "/") == 0 ? "" : u->path, (int)getpid(), conv);
        b = json_pack("{s:s}", "text", text);
    }
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    char *req = NULL;
    int n =
        asprintf(&req,
                 "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                 "Accept: text/event-stream\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 path, u->host, u->port, strlen(body), body);
    free(body);
    if (n < 0)
        return -1;
    int fd = connect_to(u);
    if (fd < 0) {
        free(req);
        return -1;
    }
    char *buf = malloc(TTFT_RESP_MAX + 1);
    size_t len = 0;
    double t0 = now_ms(), result = -1;
    if (write(fd, req, (size_t)n) != n)
        goto out;
    while (len < TTFT_RESP_MAX) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(t0 + TTFT_TIMEOUT_MS - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t r = read(fd, buf + len, TTFT_RESP_MAX - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (result < 0 && has_first_token(mode, buf, len))
            result = now_ms() - t0;
        if (len == TTFT_RESP_MAX && result >= 0)
            len = 0; /* only the first token is looked for: keep draining */
    }
    if (result < 0) {
        buf[len] = '\0';
        fprintf(stderr, "%s conversation %ld: no first token (%zu bytes: %.200s)\n",
                mode == MODE_DIRECT ? "direct" : "mesh", conv, len, buf);
    }
out:
    close(fd);
    free(buf);
    free(req);
    return result;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static double mean(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: mesh-ttft --direct URL --model M --mesh URL [-n N] [--warmup W] [--text T] "
            "[--json]\n"
            "  --direct  the model server's chat completions URL "
            "(http://127.0.0.1:P/v1/chat/completions)\n"
            "  --model   model name sent directly (the mesh's llm worker sends its tier's)\n"
            "  --mesh    the gateway's base URL (http://127.0.0.1:8080)\n"
            "  -n        samples per path (default 200)\n"
            "  --warmup  unmeasured samples per path first (default 20)\n"
            "  --text    the user message (default \"hello\")\n"
            "  --conv-turns  mesh turns per conversation (default 1: each sample a new one)\n");
}

int main(int argc, char **argv)
{
    const char *direct = NULL, *mesh = NULL, *model = "ttft", *text = "hello";
    long n = 200, warmup = 20, conv_turns = 1, mesh_i = 0;
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            as_json = true;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        if (strcmp(a, "--direct") == 0)
            direct = v;
        else if (strcmp(a, "--mesh") == 0)
            mesh = v;
        else if (strcmp(a, "--model") == 0)
            model = v;
        else if (strcmp(a, "--text") == 0)
            text = v;
        else if (strcmp(a, "-n") == 0)
            n = strtol(v, NULL, 10);
        else if (strcmp(a, "--warmup") == 0)
            warmup = strtol(v, NULL, 10);
        else if (strcmp(a, "--conv-turns") == 0)
            conv_turns = strtol(v, NULL, 10);
        else {
            usage();
            return 2;
        }
        i++;
    }
    url_t ud, um;
    if (!direct || !mesh || parse_url(direct, &ud) != 0 || parse_url(mesh, &um) != 0 || n < 1 ||
        n > TTFT_SAMPLES_MAX || warmup < 0 || warmup > TTFT_SAMPLES_MAX || conv_turns < 1 ||
        conv_turns > TTFT_SAMPLES_MAX) {
        usage();
        return 2;
    }
    double *vd = calloc((size_t)n, sizeof(double)), *vm = calloc((size_t)n, sizeof(double));
    if (!vd || !vm)
        return 1;
    for (long i = 0; i < warmup; i++) {
        if (sample(MODE_DIRECT, &ud, model, text, 0) < 0 ||
            sample(MODE_MESH, &um, model, text, mesh_i++ / conv_turns) < 0)
            return 1;
    }
    for (long i = 0; i < n; i++) {
        /* alternate which path goes first, so neither always follows the other */
        bool d_first = (i % 2) == 0;
        long conv = mesh_i++ / conv_turns;
        double a =
            sample(d_first ? MODE_DIRECT : MODE_MESH, d_first ? &ud : &um, model, text, conv);
        double b =
            sample(d_first ? MODE_MESH : MODE_DIRECT, d_first ? &um : &ud, model, text, conv);
        if (a < 0 || b < 0)
            return 1;
        vd[i] = d_first ? a : b;
        vm[i] = d_first ? b : a;
    }
    qsort(vd, (size_t)n, sizeof(double), cmp_double);
    qsort(vm, (size_t)n, sizeof(double), cmp_double);
    double ps[] = {50, 90, 99};
    if (as_json) {
        printf("{\"samples\": %ld, \"warmup\": %ld", n, warmup);
        const char *names[] = {"direct", "mesh", "added"};
        for (int k = 0; k < 3; k++) {
            printf(", \"%s\": {", names[k]);
            for (int j = 0; j < 3; j++) {
                double d = pct(vd, (size_t)n, ps[j]), m = pct(vm, (size_t)n, ps[j]);
                printf("%s\"p%.0f_ms\": %.3f", j ? ", " : "", ps[j],
                       k == 0   ? d
                       : k == 1 ? m
                                : m - d);
            }
            printf(", \"mean_ms\": %.3f}", k == 0   ? mean(vd, (size_t)n)
                                           : k == 1 ? mean(vm, (size_t)n)
                                                    : mean(vm, (size_t)n) - mean(vd, (size_t)n));
        }
        printf("}\n");
    } else {
        printf("time to first token, %ld samples per path (%ld warm-up), milliseconds\n", n,
               warmup);
        printf("%-8s %10s %10s %10s %10s\n", "path", "p50", "p90", "p99", "mean");
        printf("%-8s %10.3f %10.3f %10.3f %10.3f\n", "direct", pct(vd, (size_t)n, 50),
               pct(vd, (size_t)n, 90), pct(vd, (size_t)n, 99), mean(vd, (size_t)n));
        printf("%-8s %10.3f %10.3f %10.3f %10.3f\n", "mesh", pct(vm, (size_t)n, 50),
               pct(vm, (size_t)n, 90), pct(vm, (size_t)n, 99), mean(vm, (size_t)n));
        printf("%-8s %10.3f %10.3f %10.3f %10.3f\n", "added",
               pct(vm, (size_t)n, 50) - pct(vd, (size_t)n, 50),
               pct(vm, (size_t)n, 90) - pct(vd, (size_t)n, 90),
               pct(vm, (size_t)n, 99) - pct(vd, (size_t)n, 99),
               mean(vm, (size_t)n) - mean(vd, (size_t)n));
    }
    free(vd);
    free(vm);
    return 0;
}
