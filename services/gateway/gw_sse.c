/*
 * gw_sse.c - Server-Sent Events on a gateway HTTP connection (gw_sse.h).
 *
 * The heartbeat timer is heap-allocated and freed from its close callback,
 * so the stream object itself can go at once when the turn ends or the
 * client leaves.
 */
#include "gw_sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"

struct gateway_sse {
    gateway_http_conn_t *conn;
    uv_timer_t *hb; /* NULL when no heartbeat */
    uint64_t hb_ms;
    gateway_buf_t buf;
};

static int event_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > GATEWAY_SSE_EVENT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int put(gateway_buf_t *b, const char *p, size_t n)
{
    return gateway_buf_append(b, p, n, GATEWAY_SSE_DATA_MAX * 2);
}

int gateway_sse_format(gateway_buf_t *b, const char *event, const char *data, size_t len)
{
    if (!b || (!data && len))
        return MESH_EINVAL;
    if (event && !event_name_valid(event))
        return MESH_EINVAL;
    if (len > GATEWAY_SSE_DATA_MAX)
        return MESH_ETOOBIG;
    int rc = 0;
    if (event) {
        rc |= put(b, "event: ", 7);
        rc |= put(b, event, strlen(event));
        rc |= put(b, "\n", 1);
    }
    /* One "data:" line per line of data: a raw newline would end the field. */
    size_t at = 0;
    for (;;) {
        size_t end = at;
        while (end < len && data[end] != '\n' && data[end] != '\r')
            end++;
        rc |= put(b, "data: ", 6);
        if (end > at)
            rc |= put(b, data + at, end - at);
        rc |= put(b, "\n", 1);
        if (end >= len)
            break;
        if (data[end] == '\r' && end + 1 < len && data[end + 1] == '\n')
            end++;
        at = end + 1;
    }
    rc |= put(b, "\n", 1);
    return rc < 0 ? MESH_ENOMEM : 0;
}

static void hb_closed(uv_handle_t *h)
{
    free(h);
}

static void hb_rearm(gateway_sse_t *s);

static void hb_fire(uv_timer_t *t)
{
    gateway_sse_t *s = t->data;
    if (gateway_http_conn_stream_write(s->conn, GATEWAY_SSE_PING, sizeof(GATEWAY_SSE_PING) - 1) ==
        0)
        hb_rearm(s);
    /* On failure the connection is closed: its abort callback frees s. */
}

static void hb_rearm(gateway_sse_t *s)
{
    if (s->hb)
        uv_timer_start(s->hb, hb_fire, s->hb_ms, 0);
}

/* Headers every SSE response carries, and the room for them plus the caller's. */
#define GATEWAY_SSE_BASE_HEADERS "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n"
#define GATEWAY_SSE_HEADERS_MAX  1024

gateway_sse_t *gateway_sse_start(uv_loop_t *loop, gateway_http_conn_t *conn, uint64_t hb_ms,
                                 const char *extra_headers, int *rc)
{
    int dummy;
    if (!rc)
        rc = &dummy;
    gateway_sse_t *s = calloc(1, sizeof(*s));
    if (!s) {
        *rc = MESH_ENOMEM;
        return NULL;
    }
    s->conn = conn;
    s->hb_ms = hb_ms;
    if (hb_ms > 0) {
        s->hb = malloc(sizeof(*s->hb));
        if (!s->hb) {
            free(s);
            *rc = MESH_ENOMEM;
            return NULL;
        }
        uv_timer_init(loop, s->hb);
        s->hb->data = s;
    }
    /* Every stream tells caches not to keep it and reverse proxies (nginx's
     * X-Accel-Buffering) not to buffer it: an SSE event must reach the client
     * when it is written. */
    char headers[GATEWAY_SSE_HEADERS_MAX];
    int n = snprintf(headers, sizeof(headers), "%s%s", GATEWAY_SSE_BASE_HEADERS,
                     extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof(headers)) {
        gateway_sse_abandon(&s);
        *rc = MESH_ETOOBIG;
        return NULL;
    }
    *rc = gateway_http_conn_stream_start(conn, 200, "text/event-stream; charset=utf-8", headers);
    if (*rc != 0) {
        gateway_sse_abandon(&s);
        return NULL;
    }
    hb_rearm(s);
    return s;
}

int gateway_sse_send_raw(gateway_sse_t *s, const char *bytes, size_t len)
{
    if (!s)
        return MESH_EINVAL;
    int rc = gateway_http_conn_stream_write(s->conn, bytes, len);
    if (rc == 0)
        hb_rearm(s);
    return rc;
}

int gateway_sse_send(gateway_sse_t *s, const char *event, const char *data, size_t len)
{
    if (!s)
        return MESH_EINVAL;
    s->buf.len = 0;
    int rc = gateway_sse_format(&s->buf, event, data, len);
    if (rc != 0)
        return rc;
    rc = gateway_sse_send_raw(s, s->buf.data, s->buf.len);
    gateway_buf_reset(&s->buf, 4096);
    return rc;
}

void gateway_sse_abandon(gateway_sse_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    gateway_sse_t *s = *s_p;
    *s_p = NULL;
    if (s->hb) {
        uv_timer_stop(s->hb);
        uv_close((uv_handle_t *)s->hb, hb_closed);
    }
    gateway_buf_free(&s->buf);
    free(s);
}

void gateway_sse_end(gateway_sse_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    gateway_http_conn_t *conn = (*s_p)->conn;
    gateway_sse_abandon(s_p);
    gateway_http_conn_stream_end(conn);
}
