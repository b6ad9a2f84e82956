/*
 * healthcheck.c - mesh-healthcheck: probe one HTTP endpoint of a mesh service
 * from inside its container (the runtime image has no curl or shell tools).
 *
 *   mesh-healthcheck [--timeout-ms N] <port> [path]     path defaults to /healthz
 *
 * Connects to 127.0.0.1:<port>, sends "GET <path> HTTP/1.1" with
 * "Connection: close", and exits 0 when the status line says 200, 1 for any
 * other status, 2 when the endpoint could not be reached or answered nothing
 * within the timeout (default 2000 ms), 64 on a usage error. Used by the
 * compose file's health checks; Kubernetes probes use httpGet instead.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HC_PATH_MAX     256  /* bytes of the path argument */
#define HC_STATUS_LINE  64   /* bytes read for the status line */
#define HC_TIMEOUT_DEF  2000 /* ms */
#define HC_TIMEOUT_MAX  60000
#define HC_EXIT_OK      0
#define HC_EXIT_STATUS  1
#define HC_EXIT_NETWORK 2
#define HC_EXIT_USAGE   64

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int usage(void)
{
    fprintf(stderr, "usage: mesh-healthcheck [--timeout-ms N] <port> [path]\n"
                    "  GET http://127.0.0.1:<port><path> (default /healthz); exit 0 on 200,\n"
                    "  1 on another status, 2 when unreachable or silent, 64 on bad usage\n");
    return HC_EXIT_USAGE;
}

/* Wait for fd to be ready for events until deadline; 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, long deadline)
{
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        return n > 0 ? 1 : 0;
    }
}

int main(int argc, char **argv)
{
    long timeout = HC_TIMEOUT_DEF;
    int i = 1;
    if (i < argc && strcmp(argv[i], "--help") == 0) {
        usage();
        return HC_EXIT_OK;
    }
    if (i + 1 < argc && strcmp(argv[i], "--timeout-ms") == 0) {
        char *end = NULL;
        timeout = strtol(argv[i + 1], &end, 10);
        if (end == argv[i + 1] || *end != '\0' || timeout < 1 || timeout > HC_TIMEOUT_MAX)
            return usage();
        i += 2;
    }
    if (i >= argc || argc - i > 2)
        return usage();
    char *end = NULL;
    long port = strtol(argv[i], &end, 10);
    if (end == argv[i] || *end != '\0' || port < 1 || port > 65535)
        return usage();
    const char *path = i + 1 < argc ? argv[i + 1] : "/healthz";
    if (path[0] != '/' || strlen(path) > HC_PATH_MAX || strpbrk(path, " \r\n") != NULL)
        return usage();

    long deadline = now_ms() + timeout;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return HC_EXIT_NETWORK;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = HC_EXIT_NETWORK;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)
        goto out;
    if (wait_fd(fd, POLLOUT, deadline) != 1)
        goto out;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0)
        goto out;
    char req[HC_PATH_MAX + 96];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    for (int off = 0; off < n;) {
        if (wait_fd(fd, POLLOUT, deadline) != 1)
            goto out;
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            goto out;
        if (w > 0)
            off += (int)w;
    }
    char line[HC_STATUS_LINE + 1];
    size_t got = 0;
    while (got < 12) {
        if (wait_fd(fd, POLLIN, deadline) != 1)
            goto out;
        ssize_t r = recv(fd, line + got, HC_STATUS_LINE - got, 0);
        if (r == 0)
            break;
        if (r < 0 && errno != EAGAIN && errno != EINTR)
            goto out;
        if (r > 0)
            got += (size_t)r;
    }
    line[got] = '\0';
    if (got < 12 || strncmp(line, "HTTP/1.", 7) != 0)
        goto out;
    rc = strncmp(line + 9, "200", 3) == 0 ? HC_EXIT_OK : HC_EXIT_STATUS;
out:
    close(fd);
    return rc;
}
