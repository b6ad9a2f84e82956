/*
 * metrics_http.c - the /metrics listener (mesh_metrics_http.h).
 *
 * Each connection reads into a fixed buffer until the end of the request
 * head, answers once and closes after the write completes. The server and
 * every connection count their open handles; memory is freed in the last
 * close callback, so destroy is safe from any callback.
 */
#include "mesh/mesh_metrics_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

#define SUBSYS      "metrics"
#define METRICS_URL "/metrics"
#define HEALTHZ_URL "/healthz"
#define READYZ_URL  "/readyz"
/* Longest reason a readiness callback may give (the rest is cut). */
#define READY_WHY_MAX 160
/* Longest response head we write. */
#define RESP_HEAD_MAX 256

typedef struct mhttp_conn mhttp_conn_t;

struct mesh_metrics_http {
    uv_loop_t *loop;
    mesh_metrics_t *reg;
    uv_tcp_t listener;
    int port;
    bool listener_open;
    bool destroyed;
    int refs; /* the listener handle + one per live connection */
    unsigned n_conns;
    mhttp_conn_t *conns;
    unsigned long scrapes;
    mesh_metrics_ready_fn ready_fn; /* NULL = always ready */
    void *ready_arg;
};

struct mhttp_conn {
    mesh_metrics_http_t *srv;
    mhttp_conn_t *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    int open_handles;
    bool closing;
    bool answered;
    size_t len;
    char head[MESH_METRICS_HTTP_HEAD_MAX + 1];
};

typedef struct {
    uv_write_t req;
    mhttp_conn_t *conn;
    char *body; /* malloc'd rendering, or NULL */
    char head[RESP_HEAD_MAX];
} mhttp_write_t;

static void server_unref(mesh_metrics_http_t *srv)
{
    if (--srv->refs == 0)
        free(srv);
}

/* ---- connections ---------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *h)
{
    mhttp_conn_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    mesh_metrics_http_t *srv = c->srv;
    free(c);
    server_unref(srv);
}

static void conn_close(mhttp_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    mesh_metrics_http_t *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* the connection closes either way */
    mhttp_write_t *w = (mhttp_write_t *)req;
    conn_close(w->conn);
    free(w->body);
    free(w);
}

/* Answer once and close after the write. body is taken (malloc'd or NULL). */
static void conn_respond(mhttp_conn_t *c, int status, const char *reason, const char *ctype,
                         char *body, size_t body_len)
{
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    mhttp_write_t *w = calloc(1, sizeof(*w));
    if (!w) {
        free(body);
        conn_close(c);
        return;
    }
    w->conn = c;
    w->body = body;
    int n = snprintf(w->head, sizeof(w->head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, ctype, body_len);
    uv_buf_t bufs[2] = {uv_buf_init(w->head, (unsigned)n),
                        uv_buf_init(body ? body : "", (unsigned)body_len)};
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, body_len ? 2 : 1, on_written) != 0) {
        free(w->body);
        free(w);
        conn_close(c);
    }
}

static void respond_text(mhttp_conn_t *c, int status, const char *reason, const char *text)
{
    size_t n = strlen(text);
    char *body = malloc(n + 1);
    if (body)
        memcpy(body, text, n + 1);
    conn_respond(c, status, reason, "text/plain; charset=utf-8", body, body ? n : 0);
}

static void respond_json(mhttp_conn_t *c, int status, const char *reason, const char *json)
{
    size_t n = strlen(json);
    char *body = malloc(n + 1);
    if (body)
        memcpy(body, json, n + 1);
    conn_respond(c, status, reason, "application/json", body, body ? n : 0);
}

/* /readyz: ask the callback; the reason is reduced to printable ASCII without
 * quotes or backslashes, so it can be placed in the JSON body as is. */
static void respond_ready(mhttp_conn_t *c)
{
    char why[READY_WHY_MAX + 1] = "";
    int rc = c->srv->ready_fn ? c->srv->ready_fn(c->srv->ready_arg, why, sizeof(why)) : 0;
    if (rc == 0) {
        respond_json(c, 200, "OK", "{\"status\":\"ready\"}\n");
        return;
    }
    for (char *q = why; *q; q++) {
        if (*q < 0x20 || *q > 0x7e || *q == '"' || *q == '\\')
            *q = '?';
    }
    char body[READY_WHY_MAX + 64];
    snprintf(body, sizeof(body), "{\"status\":\"not_ready\",\"reason\":\"%s\"}\n",
             why[0] ? why : "not ready");
    respond_json(c, 503, "Service Unavailable", body);
}

/*
 * Handle the complete head c->head[0..len). Only the request line matters:
 * "GET <target> HTTP/1.<d>".
 */
static void conn_handle(mhttp_conn_t *c)
{
    const char *p = c->head;
    const char *eol = strpbrk(p, "\r\n");
    size_t line_len = eol ? (size_t)(eol - p) : strlen(p);
    const char *sp1 = memchr(p, ' ', line_len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', line_len - (size_t)(sp1 + 1 - p)) : NULL;
    if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1 || (size_t)(p + line_len - (sp2 + 1)) != 8 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] < '0' || sp2[8] > '9') {
        char shown[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_warn(SUBSYS, "malformed request line \"%s\"",
                      mesh_log_sanitize(p, line_len, shown, sizeof(shown)));
        respond_text(c, 400, "Bad Request", "bad request\n");
        return;
    }
    size_t mlen = (size_t)(sp1 - p);
    const char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    bool is_metrics = plen == sizeof(METRICS_URL) - 1 && memcmp(target, METRICS_URL, plen) == 0;
    bool is_health = plen == sizeof(HEALTHZ_URL) - 1 && memcmp(target, HEALTHZ_URL, plen) == 0;
    bool is_ready = plen == sizeof(READYZ_URL) - 1 && memcmp(target, READYZ_URL, plen) == 0;
    if (!is_metrics && !is_health && !is_ready) {
        respond_text(c, 404, "Not Found", "not found; try GET /metrics, /healthz or /readyz\n");
        return;
    }
    if (mlen != 3 || memcmp(p, "GET", 3) != 0) {
        respond_text(c, 405, "Method Not Allowed", "only GET\n");
        return;
    }
    if (is_health) {
        respond_json(c, 200, "OK", "{\"status\":\"ok\"}\n");
        return;
    }
    if (is_ready) {
        respond_ready(c);
        return;
    }
    char *body = NULL;
    size_t len = 0;
    int rc = mesh_metrics_render(c->srv->reg, &body, &len);
    if (rc != 0) {
        mesh_log_error(SUBSYS, "render failed: %s", mesh_strerror(rc));
        respond_text(c, 500, "Internal Server Error", "render failed\n");
        return;
    }
    c->srv->scrapes++;
    conn_respond(c, 200, "OK", MESH_METRICS_CONTENT_TYPE, body, len);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    mhttp_conn_t *c = h->data;
    /* One spare byte past the limit tells "exactly full" from "too long". */
    size_t room = MESH_METRICS_HTTP_HEAD_MAX + 1 - c->len;
    *buf = uv_buf_init(c->head + c->len, (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    mhttp_conn_t *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->answered)
        return;
    size_t old = c->len;
    c->len += (size_t)nread;
    /* Look for the blank line from a little before the new bytes (it may straddle reads). */
    size_t from = old >= 3 ? old - 3 : 0;
    bool done = false;
    for (size_t i = from; i < c->len && !done; i++)
        if (c->head[i] == '\n' && ((i >= 1 && c->head[i - 1] == '\n') ||
                                   (i >= 3 && c->head[i - 1] == '\r' && c->head[i - 2] == '\n')))
            done = true;
    if (done) {
        c->head[c->len] = '\0';
        if (memchr(c->head, '\0', c->len)) {
            respond_text(c, 400, "Bad Request", "bad request\n");
            return;
        }
        conn_handle(c);
        return;
    }
    if (c->len > MESH_METRICS_HTTP_HEAD_MAX) {
        mesh_log_warn(SUBSYS, "request head over %d bytes refused", MESH_METRICS_HTTP_HEAD_MAX);
        respond_text(c, 431, "Request Header Fields Too Large", "request head too large\n");
    }
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *listener, int status)
{
    mesh_metrics_http_t *srv = listener->data;
    if (status != 0 || srv->destroyed)
        return;
    mhttp_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return; /* the pending connection stays in the backlog until the next accept */
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    srv->refs++;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    uv_unref((uv_handle_t *)&c->tcp);
    uv_unref((uv_handle_t *)&c->timer);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (srv->n_conns > MESH_METRICS_HTTP_CONNS_MAX) {
        mesh_log_warn(SUBSYS, "more than %d scrapes at once, connection closed",
                      MESH_METRICS_HTTP_CONNS_MAX);
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, MESH_METRICS_HTTP_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* ---- server --------------------------------------------------------------- */

mesh_metrics_http_t *mesh_metrics_http_new(uv_loop_t *loop, mesh_metrics_t *reg)
{
    if (!loop || !reg)
        return NULL;
    mesh_metrics_http_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->loop = loop;
    srv->reg = reg;
    if (uv_tcp_init(loop, &srv->listener) != 0) {
        free(srv);
        return NULL;
    }
    srv->listener.data = srv;
    srv->listener_open = true;
    srv->refs = 1;
    uv_unref((uv_handle_t *)&srv->listener);
    return srv;
}

int mesh_metrics_http_listen(mesh_metrics_http_t *srv, const char *host, int port)
{
    struct sockaddr_storage ss;
    int rc;
    if (!srv || !host || port < 0 || port > 65535 || srv->destroyed)
        return MESH_EINVAL;
    memset(&ss, 0, sizeof(ss));
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        char shown[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_error(SUBSYS, "invalid listen address '%s'",
                       mesh_log_sanitize(host, strlen(host), shown, sizeof(shown)));
        return MESH_EINVAL;
    }
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, MESH_METRICS_HTTP_BACKLOG, on_connection);
    if (rc != 0) {
        mesh_log_warn(SUBSYS, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        return MESH_EIO;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len) == 0)
        srv->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                                : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int mesh_metrics_http_port(const mesh_metrics_http_t *srv)
{
    return srv ? srv->port : 0;
}

void mesh_metrics_http_set_ready(mesh_metrics_http_t *srv, mesh_metrics_ready_fn fn, void *arg)
{
    if (srv == NULL)
        return;
    srv->ready_fn = fn;
    srv->ready_arg = arg;
}

unsigned long mesh_metrics_http_scrapes(const mesh_metrics_http_t *srv)
{
    return srv ? srv->scrapes : 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    server_unref(h->data);
}

void mesh_metrics_http_destroy(mesh_metrics_http_t **srv_p)
{
    if (!srv_p || !*srv_p)
        return;
    mesh_metrics_http_t *srv = *srv_p;
    *srv_p = NULL;
    srv->destroyed = true;
    /* Hold a reference so closing the last connection cannot free srv here. */
    srv->refs++;
    while (srv->conns)
        conn_close(srv->conns);
    if (srv->listener_open) {
        srv->listener_open = false;
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    }
    server_unref(srv);
}
