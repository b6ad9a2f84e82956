/*
 * harness_sse.c - a minimal HTTP/SSE client over a raw loopback socket, shared
 * by the streaming tests (test_stream.c, test_openai_api.c).
 *
 * It timestamps every event as its last byte comes off the socket, de-chunks
 * by hand and refuses any SSE line it does not know, so the tests check the
 * gateway's framing itself and not a library's reading of it. Failures are
 * cmocka assertions: these helpers run only inside a cmocka test.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"

void mh_buf_append(char **buf, size_t *len, const char *p, size_t n)
{
    char *nb = realloc(*buf, *len + n + 1);
    assert_non_null(nb);
    memcpy(nb + *len, p, n);
    *len += n;
    nb[*len] = '\0';
    *buf = nb;
}

static void consume(char **buf, size_t *len, size_t n)
{
    memmove(*buf, *buf + n, *len - n);
    *len -= n;
    (*buf)[*len] = '\0';
}

/* Split complete events ("...\n\n") out of the body. */
static void sse_events(mh_sse_t *c, uint64_t now)
{
    char *end;
    while (c->body_len && (end = strstr(c->body, "\n\n")) != NULL) {
        size_t blen = (size_t)(end - c->body);
        char *block = strndup(c->body, blen);
        consume(&c->body, &c->body_len, blen + 2);
        mh_sse_ev_t ev = {.at_ms = now};
        char *data = NULL;
        size_t data_len = 0;
        bool comment_only = true;
        for (char *line = strtok(block, "\n"); line; line = strtok(NULL, "\n")) {
            if (line[0] == ':') {
                c->pings += strcmp(line, ": ping") == 0;
                continue;
            }
            comment_only = false;
            if (strncmp(line, "event: ", 7) == 0) {
                snprintf(ev.event, sizeof(ev.event), "%s", line + 7);
            } else if (strncmp(line, "data: ", 6) == 0) {
                if (data)
                    mh_buf_append(&data, &data_len, "\n", 1);
                mh_buf_append(&data, &data_len, line + 6, strlen(line + 6));
            } else {
                fail_msg("unexpected SSE line '%s'", line);
            }
        }
        free(block);
        if (comment_only) {
            free(data);
            continue;
        }
        assert_true(c->n_ev < MH_SSE_MAX_EVENTS);
        ev.data = data ? data : strdup("");
        c->ev[c->n_ev++] = ev;
    }
}

/* De-chunk what is complete in raw into body. */
static void sse_dechunk(mh_sse_t *c)
{
    if (!c->chunked) {
        mh_buf_append(&c->body, &c->body_len, c->raw, c->raw_len);
        consume(&c->raw, &c->raw_len, c->raw_len);
        return;
    }
    while (!c->done && c->raw_len) {
        char *crlf = strstr(c->raw, "\r\n");
        if (!crlf)
            return;
        size_t size = strtoul(c->raw, NULL, 16);
        size_t hl = (size_t)(crlf - c->raw) + 2;
        if (c->raw_len < hl + size + 2)
            return;
        assert_memory_equal(c->raw + hl + size, "\r\n", 2);
        if (size == 0)
            c->done = true;
        mh_buf_append(&c->body, &c->body_len, c->raw + hl, size);
        consume(&c->raw, &c->raw_len, hl + size + 2);
    }
}

int mh_tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

void mh_sse_open_h(mh_sse_t *c, int port, const char *path, const char *body, const char *accept,
                   const char *extra)
{
    memset(c, 0, sizeof(*c));
    c->fd = mh_tcp_connect(port);
    char *req = NULL;
    int n = asprintf(&req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Accept: %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     path, accept, extra, strlen(body), body);
    assert_true(n > 0);
    assert_int_equal(write(c->fd, req, (size_t)n), n);
    free(req);
    c->sent_ms = mh_now_ms();
}

void mh_sse_open(mh_sse_t *c, int port, const char *path, const char *body, const char *accept)
{
    mh_sse_open_h(c, port, path, body, accept, "");
}

bool mh_sse_pump(mh_sse_t *c, int wait_ms)
{
    if (c->closed)
        return false;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, wait_ms) <= 0)
        return true;
    char buf[16384];
    ssize_t r = read(c->fd, buf, sizeof(buf));
    uint64_t now = mh_now_ms();
    if (r <= 0) {
        c->closed = true;
        return false;
    }
    if (!c->head_ms) {
        mh_buf_append(&c->head, &(size_t){c->head ? strlen(c->head) : 0}, buf, (size_t)r);
        char *end = strstr(c->head, "\r\n\r\n");
        if (!end)
            return true;
        c->head_ms = now;
        size_t hl = (size_t)(end - c->head) + 4;
        mh_buf_append(&c->raw, &c->raw_len, c->head + hl, strlen(c->head) - hl);
        c->head[hl] = '\0';
        c->status = atoi(c->head + 9);
        c->chunked = strcasestr(c->head, "Transfer-Encoding: chunked") != NULL;
    } else {
        mh_buf_append(&c->raw, &c->raw_len, buf, (size_t)r);
    }
    sse_dechunk(c);
    sse_events(c, now);
    return true;
}

void mh_sse_run(mh_sse_t *c, int timeout_ms)
{
    uint64_t until = mh_now_ms() + (uint64_t)timeout_ms;
    while (!c->done && mh_now_ms() < until && mh_sse_pump(c, 50)) {
    }
}

void mh_sse_close(mh_sse_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    for (int i = 0; i < c->n_ev; i++)
        free(c->ev[i].data);
    free(c->head);
    free(c->raw);
    free(c->body);
}
