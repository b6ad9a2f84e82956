/*
 * test_http_support.h - helpers shared by the gateway's unit tests
 * (test_http_*.c, test_gateway_*.c): a raw HTTP client on a non-blocking
 * loopback socket, driven step-wise together with the server's uv loop in the
 * same thread. Nothing sleeps: every wait polls a condition with a bounded
 * deadline, running the loop (and an optional pump, e.g. a fake router)
 * between polls.
 */
#ifndef TEST_HTTP_SUPPORT_H
#define TEST_HTTP_SUPPORT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define TC_BUF_MAX (4 * 1024 * 1024)
#define TC_WAIT_MS 5000

typedef struct {
    uv_loop_t *loop;
    void (*pump)(void *arg); /* called on every step (fake router etc.) */
    void *pump_arg;
} tc_env_t;

typedef struct {
    int fd;
    char *buf; /* bytes received, not yet returned as a response */
    size_t len;
    bool eof;   /* peer closed (FIN) */
    bool reset; /* ECONNRESET */
} tc_client_t;

typedef struct {
    int status;
    char head[8192]; /* status line + headers, NUL-terminated */
    char *body;      /* NUL-terminated, malloc'd */
    size_t body_len;
} tc_resp_t;

static inline uint64_t tc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop once without blocking, pump, then wait up to wait_ms for fd (if >= 0). */
static inline void tc_step(tc_env_t *e, int fd, int wait_ms)
{
    uv_run(e->loop, UV_RUN_NOWAIT);
    if (e->pump)
        e->pump(e->pump_arg);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(fd >= 0 ? &p : NULL, fd >= 0 ? 1 : 0, wait_ms);
    uv_run(e->loop, UV_RUN_NOWAIT);
}

/* Step until cond(arg) holds or timeout_ms passes. Returns the final cond. */
static inline bool tc_wait(tc_env_t *e, bool (*cond)(void *), void *arg, int timeout_ms)
{
    uint64_t end = tc_now_ms() + (uint64_t)timeout_ms;
    while (!cond(arg)) {
        if (tc_now_ms() > end)
            return false;
        tc_step(e, -1, 1);
    }
    return true;
}

static inline bool tc_connect(tc_client_t *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* A blocking connect completes from the listen backlog without the loop running. */
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->buf = malloc(TC_BUF_MAX + 1);
    return c->buf != NULL;
}

static inline void tc_close(tc_client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

/* Receive what is there (non-blocking). */
static inline void tc_pull(tc_client_t *c)
{
    while (!c->eof && !c->reset && c->len < TC_BUF_MAX) {
        ssize_t n = recv(c->fd, c->buf + c->len, TC_BUF_MAX - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
        } else if (n == 0) {
            c->eof = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else if (errno == EINTR) {
            continue;
        } else {
            c->reset = true;
        }
    }
}

/* Send all of data, stepping the loop while the socket is full. */
static inline bool tc_send(tc_env_t *e, tc_client_t *c, const void *data, size_t len)
{
    const char *p = data;
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return false;
        if (tc_now_ms() > end)
            return false;
        tc_step(e, -1, 1);
        tc_pull(c); /* keep our receive side drained too */
    }
    return true;
}

static inline bool tc_send_str(tc_env_t *e, tc_client_t *c, const char *s)
{
    return tc_send(e, c, s, strlen(s));
}

/* Try to cut one complete response out of c->buf. */
static inline bool tc_parse(tc_client_t *c, tc_resp_t *r)
{
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return false;
    size_t head_len = (size_t)(end - c->buf) + 4;
    long clen = -1;
    for (char *line = strstr(c->buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
            clen = strtol(line + 2 + 15, NULL, 10);
    }
    int status = 0;
    sscanf(c->buf, "HTTP/1.%*d %d", &status);
    if (status == 100) {
        /* Interim response: report it on its own. */
        clen = 0;
    }
    if (clen < 0)
        clen = 0; /* every gateway response has Content-Length; treat its absence as empty */
    if (c->len < head_len + (size_t)clen)
        return false;
    memset(r, 0, sizeof(*r));
    r->status = status;
    size_t hl = head_len < sizeof(r->head) ? head_len : sizeof(r->head) - 1;
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    r->body = malloc((size_t)clen + 1);
    memcpy(r->body, c->buf + head_len, (size_t)clen);
    r->body[clen] = '\0';
    r->body_len = (size_t)clen;
    size_t used = head_len + (size_t)clen;
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
    return true;
}

/* Wait for one complete response. False on timeout or when the peer closed first. */
static inline bool tc_recv(tc_env_t *e, tc_client_t *c, tc_resp_t *r, int timeout_ms)
{
    uint64_t end = tc_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        tc_pull(c);
        if (tc_parse(c, r))
            return true;
        if (c->eof || c->reset || tc_now_ms() > end)
            return false;
        tc_step(e, c->fd, 1);
    }
}

/* Wait until the peer closes the connection (FIN or RST). */
static inline bool tc_wait_closed(tc_env_t *e, tc_client_t *c, int timeout_ms)
{
    uint64_t end = tc_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        tc_pull(c);
        if (c->eof || c->reset)
            return true;
        if (tc_now_ms() > end)
            return false;
        tc_step(e, c->fd, 1);
    }
}

static inline void tc_resp_free(tc_resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

/* 1 if the response head has the header line "name: value" (case-insensitive name). */
static inline bool tc_has_header(const tc_resp_t *r, const char *name, const char *value)
{
    char want[256];
    snprintf(want, sizeof(want), "\r\n%s: %s\r\n", name, value);
    /* case-insensitive search */
    size_t wl = strlen(want);
    for (const char *p = r->head; *p; p++) {
        if (strncasecmp(p, want, wl) == 0)
            return true;
    }
    return false;
}

/* One request on a fresh connection; returns the response (caller frees). */
static inline bool tc_roundtrip(tc_env_t *e, int port, const char *request, tc_resp_t *r)
{
    tc_client_t c;
    if (!tc_connect(&c, port))
        return false;
    bool ok = tc_send_str(e, &c, request) && tc_recv(e, &c, r, TC_WAIT_MS);
    tc_close(&c);
    return ok;
}

/* Close every handle left and the loop; true if the loop closed cleanly. */
static inline bool tc_loop_finish(uv_loop_t *loop)
{
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    while (uv_loop_alive(loop) && tc_now_ms() < end)
        uv_run(loop, UV_RUN_NOWAIT);
    return uv_loop_close(loop) == 0;
}

#endif
