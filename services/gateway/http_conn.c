/*
 * http_conn.c - one HTTP/1.1 connection: http-parser driven from libuv reads,
 * request limits, keep-alive, pipelining, response writing (http_conn.h).
 *
 * States:
 *   IDLE    no byte of the next request yet; idle_ms later the connection closes.
 *   RECV    a request has started; it must be complete within idle_ms (else 408).
 *   BUSY    the handler holds the complete request; input is buffered.
 *   WRITE   the response is being written (idle_ms bounds a client that does not read).
 *   LINGER  a closing response was written and FIN sent; input is read and discarded
 *           until EOF or GATEWAY_HTTP_LINGER_MS, so the client is not sent a RST that
 *           could destroy the response before it reads it.
 *   CLOSING handles are closing; memory goes in the last close callback.
 *
 * Head size is counted exactly: bytes fed to the parser from the end of the
 * previous request until on_headers_complete (which pauses the parser so we
 * know where the head ended); while in the head, the parser is never fed more
 * than the bytes left under max_header, so a huge head costs at most
 * max_header + 1 bytes of parsing before the 431.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_metrics.h"
#include "json_io.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "route_trace.h"

/* Keep at most this much buffer storage per idle connection. */
#define GATEWAY_HTTP_KEEP_BUF (16 * 1024)
/* Body bytes reserved up front from Content-Length; beyond, the buffer grows as data comes. */
#define GATEWAY_HTTP_BODY_PREALLOC (64 * 1024)
/* Lingering close: discard input for at most this long / this many bytes. */
#define GATEWAY_HTTP_LINGER_MS    2000
#define GATEWAY_HTTP_LINGER_BYTES (1024 * 1024)
/* Longest header name we compare against the interesting ones. */
#define GATEWAY_HTTP_FIELD_MAX 32
/* Largest response the gateway writes (body + head). */
#define GATEWAY_HTTP_RESP_MAX (GATEWAY_JSON_OUT_MAX + 4096)
/* http_parser_parse_url reports offsets as uint16_t. */
#define GATEWAY_HTTP_URL_MAX 65535
/* Room for the status line and fixed headers of a response. */
#define GATEWAY_HTTP_HEAD_ROOM 256

typedef enum {
    CONN_IDLE = 0,
    CONN_RECV,
    CONN_BUSY,
    CONN_WRITE,
    CONN_LINGER,
    CONN_CLOSING,
} conn_state_t;

/* What the last parser callback asked the feed loop to do. */
typedef enum {
    EV_NONE = 0,
    EV_HEADERS, /* the head is complete (parser paused) */
    EV_MESSAGE, /* the request is complete (parser paused) */
    EV_FAIL,    /* a callback refused the request: fail_* says how */
} conn_event_t;

struct gateway_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;    /* the response */
    uv_write_t creq;    /* "100 Continue" */
    uv_shutdown_t sreq; /* FIN before lingering */
    http_parser parser;
    gateway_http_server_t *srv;
    gateway_http_conn_t *prev, *next;
    conn_state_t state;
    int handles_open;
    bool reading;
    bool close_after_write;
    bool refused;
    /* parsing */
    conn_event_t event;
    int fail_status;
    const char *fail_code;
    const char *fail_msg;
    bool in_head;
    size_t head_bytes;
    bool msg_keep_alive;
    bool msg_upgrade;
    char field[GATEWAY_HTTP_FIELD_MAX + 1];
    size_t field_len;
    bool field_overflow;
    bool last_was_value;
    int cur_hdr; /* gateway_hdr_id_t being filled, -1 for an uninteresting header */
    size_t linger_bytes;
    /* the request */
    gateway_http_req_t req;
    bool have_req; /* req.path etc. are filled (for logs) */
    gateway_buf_t url;
    gateway_buf_t body;
    gateway_buf_t pend; /* input not parsed yet */
    gateway_buf_t out;  /* the response being written */
    gateway_http_abort_fn abort_fn;
    void *abort_arg;
    /* streamed response (gateway_http_conn_stream_*) */
    bool streaming;
    bool chunked; /* HTTP/1.1: chunked framing; else the close ends the body */
};

/* One stream write: the request and its bytes in one allocation. */
typedef struct {
    uv_write_t req;
    size_t len;
    char data[];
} conn_swrite_t;

static const char *const hdr_names[GATEWAY_HDR_COUNT] = {
    [GATEWAY_HDR_CONTENT_TYPE] = "content-type",
    [GATEWAY_HDR_TENANT] = "x-mesh-tenant",
    [GATEWAY_HDR_TIMEOUT] = "x-mesh-timeout-ms",
    [GATEWAY_HDR_TRACEPARENT] = "traceparent",
    [GATEWAY_HDR_EXPECT] = "expect",
    [GATEWAY_HDR_ACCEPT] = "accept",
    [GATEWAY_HDR_CONV_ID] = "x-mesh-conversation-id",
    [GATEWAY_HDR_MESSAGE_ID] = "x-mesh-message-id",
    [GATEWAY_HDR_SLACK_SIGNATURE] = "x-slack-signature",
    [GATEWAY_HDR_SLACK_TIMESTAMP] = "x-slack-request-timestamp",
    [GATEWAY_HDR_SLACK_RETRY_NUM] = "x-slack-retry-num",
    [GATEWAY_HDR_TELEGRAM_SECRET] = "x-telegram-bot-api-secret-token",
    [GATEWAY_HDR_MESH_SIGNATURE] = "x-mesh-signature",
    [GATEWAY_HDR_MESH_TIMESTAMP] = "x-mesh-timestamp",
    [GATEWAY_HDR_AUTHORIZATION] = "authorization",
};

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void conn_process_pending(gateway_http_conn_t *c);
static int conn_send(gateway_http_conn_t *c, int status, const char *content_type,
                     const char *extra, const void *body, size_t len, bool close_after,
                     const char *err_code, const char *err_msg);
static void conn_send_error(gateway_http_conn_t *c, int status, const char *code,
                            const char *message);

/* ---- small helpers ------------------------------------------------------ */

static void conn_timer_start(gateway_http_conn_t *c, uint64_t ms);

static void conn_set_state(gateway_http_conn_t *c, conn_state_t st)
{
    c->state = st;
    switch (st) {
    case CONN_IDLE:
    case CONN_RECV:
    case CONN_WRITE:
        conn_timer_start(c, c->srv->opts.idle_ms);
        break;
    case CONN_LINGER:
        conn_timer_start(c, GATEWAY_HTTP_LINGER_MS);
        break;
    case CONN_BUSY:
    case CONN_CLOSING:
        uv_timer_stop(&c->timer);
        break;
    }
}

static void conn_reset_message(gateway_http_conn_t *c)
{
    for (int i = 0; i < GATEWAY_HDR_COUNT; i++) {
        c->req.hdr[i].state = GATEWAY_HDR_ABSENT;
        c->req.hdr[i].len = 0;
        c->req.hdr[i].value[0] = '\0';
    }
    c->url.len = 0;
    c->body.len = 0;
    c->field_len = 0;
    c->field_overflow = false;
    c->last_was_value = false;
    c->cur_hdr = -1;
    c->msg_keep_alive = false;
    c->msg_upgrade = false;
}

static void conn_fail(gateway_http_conn_t *c, int status, const char *code, const char *msg)
{
    c->event = EV_FAIL;
    c->fail_status = status;
    c->fail_code = code;
    c->fail_msg = msg;
}

/* ---- http-parser callbacks ---------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    gateway_http_conn_t *c = p->data;
    conn_reset_message(c);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    gateway_http_conn_t *c = p->data;
    int rc = gateway_buf_append(&c->url, at, len, c->srv->opts.max_header);
    if (rc == MESH_ETOOBIG) {
        conn_fail(c, 431, "header_too_large", "request head exceeds the limit");
        return -1;
    }
    if (rc < 0) {
        conn_fail(c, 503, "out_of_memory", "out of memory");
        return -1;
    }
    return 0;
}

/* The value of the current header is complete: trim trailing blanks. */
static void conn_finish_header(gateway_http_conn_t *c)
{
    if (c->cur_hdr < 0)
        return;
    gateway_hdr_t *h = &c->req.hdr[c->cur_hdr];
    if (h->state == GATEWAY_HDR_PRESENT) {
        while (h->len > 0 && (h->value[h->len - 1] == ' ' || h->value[h->len - 1] == '\t'))
            h->len--;
        h->value[h->len] = '\0';
    }
    c->cur_hdr = -1;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    gateway_http_conn_t *c = p->data;
    if (c->last_was_value) {
        conn_finish_header(c);
        c->field_len = 0;
        c->field_overflow = false;
        c->last_was_value = false;
    }
    if (c->field_overflow || len > GATEWAY_HTTP_FIELD_MAX - c->field_len) {
        c->field_overflow = true;
        return 0;
    }
    memcpy(c->field + c->field_len, at, len);
    c->field_len += len;
    return 0;
}

static int lookup_header(const gateway_http_conn_t *c)
{
    if (c->field_overflow)
        return -1;
    for (int i = 0; i < GATEWAY_HDR_COUNT; i++) {
        if (strlen(hdr_names[i]) == c->field_len &&
            strncasecmp(hdr_names[i], c->field, c->field_len) == 0)
            return i;
    }
    return -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    gateway_http_conn_t *c = p->data;
    if (!c->last_was_value) {
        /* First piece of this header's value. */
        c->last_was_value = true;
        c->cur_hdr = lookup_header(c);
        if (c->cur_hdr >= 0) {
            gateway_hdr_t *h = &c->req.hdr[c->cur_hdr];
            if (h->state != GATEWAY_HDR_ABSENT) {
                conn_fail(c, 400, "duplicate_header", "a header the gateway reads is repeated");
                return -1;
            }
            h->state = GATEWAY_HDR_PRESENT;
            h->len = 0;
        }
    }
    if (c->cur_hdr < 0)
        return 0;
    gateway_hdr_t *h = &c->req.hdr[c->cur_hdr];
    if (h->state == GATEWAY_HDR_TOO_LONG)
        return 0;
    if (len > GATEWAY_HTTP_HDR_VALUE_MAX - h->len) {
        h->state = GATEWAY_HDR_TOO_LONG;
        h->len = 0;
        h->value[0] = '\0';
        return 0;
    }
    memcpy(h->value + h->len, at, len);
    h->len += len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    gateway_http_conn_t *c = p->data;
    if (c->last_was_value)
        conn_finish_header(c);
    /* A header name with no value callback still counts as present (empty). */
    c->event = EV_HEADERS;
    http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    gateway_http_conn_t *c = p->data;
    int rc = gateway_buf_append(&c->body, at, len, c->srv->opts.max_body);
    if (rc == MESH_ETOOBIG) {
        conn_fail(c, 413, "payload_too_large", "request body exceeds the limit");
        return -1;
    }
    if (rc < 0) {
        conn_fail(c, 503, "out_of_memory", "out of memory");
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    gateway_http_conn_t *c = p->data;
    c->msg_keep_alive = http_should_keep_alive(p) != 0;
    c->msg_upgrade = p->upgrade != 0;
    c->event = EV_MESSAGE;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- lifecycle ---------------------------------------------------------- */

static void conn_free(gateway_http_conn_t *c)
{
    gateway_http_server_t *srv = c->srv;
    bool refused = c->refused;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    gateway_buf_free(&c->url);
    gateway_buf_free(&c->body);
    gateway_buf_free(&c->pend);
    gateway_buf_free(&c->out);
    free(c);
    gateway_http_server_conn_gone(srv, refused);
}

static void conn_handle_closed(uv_handle_t *h)
{
    gateway_http_conn_t *c = h->data;
    if (--c->handles_open == 0)
        conn_free(c);
}

gateway_http_conn_t *gateway_http_conn_new(gateway_http_server_t *srv)
{
    gateway_http_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = srv;
    if (uv_tcp_init(srv->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    c->tcp.data = c;
    /* Cannot fail for a valid loop. */
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->wreq.data = c;
    c->creq.data = c;
    c->sreq.data = c;
    c->handles_open = 2;
    c->cur_hdr = -1;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->in_head = true;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->refs++;
    srv->n_conns++;
    return c;
}

uv_stream_t *gateway_http_conn_stream(gateway_http_conn_t *c)
{
    return (uv_stream_t *)&c->tcp;
}

gateway_http_conn_t *gateway_http_conn_next(gateway_http_conn_t *c)
{
    return c->next;
}

void gateway_http_conn_close(gateway_http_conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return;
    bool was_busy = c->state == CONN_BUSY;
    conn_set_state(c, CONN_CLOSING);
    if (was_busy && c->abort_fn) {
        gateway_http_abort_fn fn = c->abort_fn;
        c->abort_fn = NULL;
        fn(c, c->abort_arg);
    }
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

void gateway_http_conn_drain(gateway_http_conn_t *c)
{
    /* A connection between requests goes now; any other closes after its
     * response, which says "Connection: close" because srv->draining is set. */
    if (c->state == CONN_IDLE && c->pend.len == 0)
        gateway_http_conn_close(c);
}

/* ---- reading ------------------------------------------------------------ */

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gateway_http_conn_t *c = h->data;
    buf->base = c->srv->slab;
    buf->len = sizeof(c->srv->slab);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_update_reading(gateway_http_conn_t *c)
{
    bool want;
    switch (c->state) {
    case CONN_IDLE:
    case CONN_RECV:
    case CONN_LINGER:
        want = true;
        break;
    case CONN_BUSY:
    case CONN_WRITE:
        /* Keep reading pipelined requests up to a bound, so a client cannot make
         * us buffer without limit while a turn runs; TCP pushes back beyond. */
        want = c->close_after_write ? true : c->pend.len < GATEWAY_HTTP_PIPELINE_MAX;
        break;
    default:
        want = false;
        break;
    }
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == 0)
            c->reading = true;
        else
            gateway_http_conn_close(c);
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* The head of a request is complete (the parser is paused on its last byte). */
static int conn_on_head(gateway_http_conn_t *c)
{
    /* +1: the pause leaves the head's final LF unconsumed. */
    if (c->head_bytes + 1 > c->srv->opts.max_header) {
        conn_send_error(c, 431, "header_too_large", "request head exceeds the limit");
        return -1;
    }
    c->in_head = false;
    const http_parser *p = &c->parser;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->srv->opts.max_body) {
        conn_send_error(c, 413, "payload_too_large", "request body exceeds the limit");
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0) {
        /* Reserve what is announced, up to a bound: a client that announces a
         * large body and sends nothing must not pin that much memory. */
        size_t want = p->content_length < GATEWAY_HTTP_BODY_PREALLOC ? (size_t)p->content_length
                                                                     : GATEWAY_HTTP_BODY_PREALLOC;
        if (gateway_buf_reserve(&c->body, want, c->srv->opts.max_body) < 0) {
            conn_send_error(c, 503, "out_of_memory", "out of memory");
            return -1;
        }
    }
    const gateway_hdr_t *e = &c->req.hdr[GATEWAY_HDR_EXPECT];
    if (e->state == GATEWAY_HDR_PRESENT && strcasecmp(e->value, "100-continue") == 0 &&
        (p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1))) {
        /* The client waits for this before sending the body. The response
         * write (later) is queued behind it, so order on the wire holds. */
        uv_buf_t b = uv_buf_init((char *)continue_line, sizeof(continue_line) - 1);
        if (uv_write(&c->creq, (uv_stream_t *)&c->tcp, &b, 1, NULL) != 0) {
            gateway_http_conn_close(c);
            return -1;
        }
    }
    return 0;
}

/* Fill c->req from the parsed message and hand it to the handler. */
static void conn_dispatch(gateway_http_conn_t *c)
{
    gateway_http_req_t *r = &c->req;
    const http_parser *p = &c->parser;
    r->method = p->method;
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->keep_alive = c->msg_keep_alive && !c->msg_upgrade;
    r->start_ns = uv_hrtime();
    r->path = NULL;
    r->path_len = 0;
    r->query = NULL;
    r->query_len = 0;
    /* The next request's head starts right after this one. */
    c->in_head = true;
    c->head_bytes = 0;
    conn_set_state(c, CONN_BUSY);
    c->abort_fn = NULL;
    c->abort_arg = NULL;
    c->streaming = false;
    c->chunked = false;

    if (c->url.len > GATEWAY_HTTP_URL_MAX) {
        c->have_req = true;
        conn_send_error(c, 414, "uri_too_long", "request target too long");
        return;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (c->url.len == 0 || http_parser_parse_url(c->url.data, c->url.len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH))) {
        r->path = c->url.data ? c->url.data : "";
        r->path_len = c->url.len;
        c->have_req = true;
        conn_send_error(c, 400, "bad_request", "invalid request target");
        return;
    }
    r->path = c->url.data + u.field_data[UF_PATH].off;
    r->path_len = u.field_data[UF_PATH].len;
    if (u.field_set & (1 << UF_QUERY)) {
        r->query = c->url.data + u.field_data[UF_QUERY].off;
        r->query_len = u.field_data[UF_QUERY].len;
    }
    if (c->body.data) {
        c->body.data[c->body.len] = '\0'; /* gateway_buf keeps one spare byte */
        r->body = c->body.data;
    } else {
        r->body = "";
    }
    r->body_len = c->body.len;
    c->have_req = true;
    c->srv->opts.handler(c, r, c->srv->opts.handler_arg);
}

static void conn_parse_error(gateway_http_conn_t *c)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->event == EV_FAIL) {
        conn_send_error(c, c->fail_status, c->fail_code, c->fail_msg);
    } else if (e == HPE_HEADER_OVERFLOW) {
        conn_send_error(c, 431, "header_too_large", "request head exceeds the limit");
    } else {
        conn_send_error(c, 400, "bad_request", http_errno_description(e));
    }
}

/*
 * Feed data[0..len) to the parser while the connection may parse (IDLE or
 * RECV). Returns the bytes consumed; the rest belongs to a later request.
 */
static size_t conn_feed(gateway_http_conn_t *c, const char *data, size_t len)
{
    size_t off = 0;
    const size_t max_header = c->srv->opts.max_header;
    while (off < len && (c->state == CONN_IDLE || c->state == CONN_RECV)) {
        if (c->state == CONN_IDLE)
            conn_set_state(c, CONN_RECV);
        size_t n = len - off;
        if (c->in_head && n > max_header + 1 - c->head_bytes)
            n = max_header + 1 - c->head_bytes;
        c->event = EV_NONE;
        size_t got = http_parser_execute(&c->parser, &parser_settings, data + off, n);
        off += got;
        if (c->in_head)
            c->head_bytes += got;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (c->event == EV_HEADERS) {
                if (conn_on_head(c) < 0)
                    break;
            } else if (c->event == EV_MESSAGE) {
                conn_dispatch(c);
            }
            continue;
        }
        if (e != HPE_OK) {
            conn_parse_error(c);
            break;
        }
        if (c->in_head && c->head_bytes > max_header) {
            conn_send_error(c, 431, "header_too_large", "request head exceeds the limit");
            break;
        }
        if (got < n) {
            /* The parser stopped without a pause or an error: an upgrade it
             * will not parse past. We do not speak any upgraded protocol. */
            conn_send_error(c, 400, "bad_request", "protocol upgrade is not supported");
            break;
        }
    }
    return off;
}

/* Parse what is buffered in c->pend, keeping what is left over. */
static void conn_process_pending(gateway_http_conn_t *c)
{
    if (c->pend.len == 0)
        return;
    size_t used = conn_feed(c, c->pend.data, c->pend.len);
    if (c->state == CONN_CLOSING)
        return;
    if (c->close_after_write)
        c->pend.len = 0; /* nothing after a fatal error is parsed */
    else
        gateway_buf_consume(&c->pend, used);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gateway_http_conn_t *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or error. A client gone mid-turn: the abort callback cancels the
         * mesh request; the turn itself completes in the mesh. */
        gateway_http_conn_close(c);
        return;
    }
    size_t n = (size_t)nread;
    if (c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_LINGER) {
        c->linger_bytes += n;
        if (c->linger_bytes > GATEWAY_HTTP_LINGER_BYTES)
            gateway_http_conn_close(c);
        return;
    }
    const size_t pend_max = GATEWAY_HTTP_PIPELINE_MAX + GATEWAY_HTTP_READ_SLAB;
    bool can_parse = c->state == CONN_IDLE || c->state == CONN_RECV;
    if (can_parse && c->pend.len == 0) {
        /* The common case: parse straight from the read buffer. */
        size_t used = conn_feed(c, buf->base, n);
        if (c->state == CONN_CLOSING)
            return;
        if (used < n && !c->close_after_write &&
            gateway_buf_append(&c->pend, buf->base + used, n - used, pend_max) < 0) {
            gateway_http_conn_close(c);
            return;
        }
    } else if (!c->close_after_write) {
        /* Older bytes wait in pend (or a request is being handled): queue behind them.
         * After a fatal error input is ignored, so it is not buffered. */
        if (gateway_buf_append(&c->pend, buf->base, n, pend_max) < 0) {
            gateway_http_conn_close(c);
            return;
        }
        if (can_parse)
            conn_process_pending(c);
    }
    if (c->state != CONN_CLOSING)
        conn_update_reading(c);
}

/* ---- timers ------------------------------------------------------------- */

static void conn_timer_cb(uv_timer_t *t)
{
    gateway_http_conn_t *c = t->data;
    switch (c->state) {
    case CONN_RECV:
        conn_send_error(c, 408, "request_timeout", "request not received in time");
        break;
    case CONN_IDLE:
    case CONN_WRITE:
    case CONN_LINGER:
        gateway_http_conn_close(c);
        break;
    default:
        break;
    }
}

static void conn_timer_start(gateway_http_conn_t *c, uint64_t ms)
{
    uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

/* ---- writing ------------------------------------------------------------ */

static void conn_shutdown_cb(uv_shutdown_t *req, int status)
{
    gateway_http_conn_t *c = req->data;
    if (status < 0 && c->state != CONN_CLOSING)
        gateway_http_conn_close(c);
}

static void conn_linger(gateway_http_conn_t *c)
{
    conn_set_state(c, CONN_LINGER);
    c->pend.len = 0;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, conn_shutdown_cb) != 0) {
        gateway_http_conn_close(c);
        return;
    }
    conn_update_reading(c);
}

static void conn_write_cb(uv_write_t *req, int status)
{
    gateway_http_conn_t *c = req->data;
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        gateway_http_conn_close(c);
        return;
    }
    gateway_buf_reset(&c->out, GATEWAY_HTTP_KEEP_BUF);
    gateway_buf_reset(&c->body, GATEWAY_HTTP_KEEP_BUF);
    gateway_buf_reset(&c->url, GATEWAY_HTTP_KEEP_BUF);
    c->have_req = false;
    if (c->close_after_write) {
        conn_linger(c);
        return;
    }
    if (c->srv->draining && c->pend.len == 0) {
        gateway_http_conn_close(c);
        return;
    }
    conn_set_state(c, CONN_IDLE);
    conn_process_pending(c);
    if (c->state != CONN_CLOSING && c->state != CONN_LINGER)
        conn_update_reading(c);
}

static const char *status_reason(int status)
{
    const char *s = http_status_str((enum http_status)status);
    return (s && strcmp(s, "<unknown>") != 0) ? s : "Unknown";
}

static const char *method_name(const gateway_http_conn_t *c)
{
    return c->have_req ? http_method_str((enum http_method)c->req.method) : "-";
}

static void conn_log(const gateway_http_conn_t *c, int status, const char *code, const char *msg)
{
    mesh_log_level_t lvl = status >= 400 ? MESH_LOG_WARN : MESH_LOG_DEBUG;
    if (lvl < mesh_log_get_level())
        return;
    char path[4 * MESH_LOG_SAMPLE_MAX + 4];
    char smsg[4 * MESH_LOG_SAMPLE_MAX + 4];
    if (c->have_req)
        mesh_log_sanitize(c->req.path, c->req.path_len, path, sizeof(path));
    else
        snprintf(path, sizeof(path), "-");
    double ms = c->have_req ? (double)(uv_hrtime() - c->req.start_ns) / 1e6 : 0.0;
    if (lvl == MESH_LOG_DEBUG) {
        mesh_log_debug("http", "%s %s %d %.3fms", method_name(c), path, status, ms);
    } else {
        mesh_log_sanitize(msg ? msg : "", msg ? strlen(msg) : 0, smsg, sizeof(smsg));
        mesh_log_warn("http", "%s %s %d %s: %s (%.3fms)", method_name(c), path, status,
                      code ? code : "error", smsg, ms);
    }
}

static int conn_send(gateway_http_conn_t *c, int status, const char *content_type,
                     const char *extra, const void *body, size_t len, bool close_after,
                     const char *err_code, const char *err_msg)
{
    if (!content_type)
        content_type = "application/json";
    if (!extra)
        extra = "";
    bool keep = !close_after && c->have_req && c->req.keep_alive && !c->srv->draining;
    bool http10 = c->have_req && c->req.http_major == 1 && c->req.http_minor == 0;
    const char *conn_hdr = !keep    ? "Connection: close\r\n"
                           : http10 ? "Connection: keep-alive\r\n"
                                    : "";
    size_t extra_len = strlen(extra);
    size_t ct_len = strlen(content_type);
    conn_log(c, status, err_code, err_msg);
    gateway_metrics_response(c->have_req ? &c->req : NULL, status);
    gateway_trace_response(c->have_req ? &c->req : NULL, status);

    c->out.len = 0;
    if (len > GATEWAY_HTTP_RESP_MAX || extra_len + ct_len > GATEWAY_HTTP_RESP_MAX - len ||
        gateway_buf_reserve(&c->out, GATEWAY_HTTP_HEAD_ROOM + ct_len + extra_len + len,
                            GATEWAY_HTTP_RESP_MAX + GATEWAY_HTTP_HEAD_ROOM) < 0) {
        gateway_http_conn_close(c);
        return MESH_ENOMEM;
    }
    int n = snprintf(c->out.data, c->out.cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                     status, status_reason(status), content_type, len, conn_hdr, extra);
    if (n < 0 || (size_t)n + len > c->out.cap) {
        gateway_http_conn_close(c);
        return MESH_EINTERNAL;
    }
    /* A response to HEAD has the headers of the full response but no body. */
    if (c->have_req && c->req.method == HTTP_HEAD)
        len = 0;
    if (len)
        memcpy(c->out.data + n, body, len);
    c->out.len = (size_t)n + len;

    c->close_after_write = !keep;
    c->abort_fn = NULL;
    conn_set_state(c, CONN_WRITE);
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb) != 0) {
        gateway_http_conn_close(c);
        return MESH_EIO;
    }
    conn_update_reading(c);
    return 0;
}

/* An error decided by the HTTP layer itself: answer it and close afterwards. */
static void conn_send_error(gateway_http_conn_t *c, int status, const char *code,
                            const char *message)
{
    /* The server's scratch buffer: conn_send copies the body at once. */
    gateway_buf_t *b = &c->srv->scratch;
    b->len = 0;
    if (gateway_json_error_body(b, code, message) < 0) {
        gateway_http_conn_close(c);
        return;
    }
    conn_send(c, status, NULL, NULL, b->data, b->len, true, code, message);
}

void gateway_http_conn_start(gateway_http_conn_t *c, bool refuse)
{
    /* Responses are single writes; do not let Nagle hold them back. */
    uv_tcp_nodelay(&c->tcp, 1);
    conn_set_state(c, CONN_IDLE);
    if (refuse) {
        c->refused = true;
        c->srv->n_rejecting++;
        conn_send_error(c, 503, "too_many_connections", "connection limit reached");
        return;
    }
    conn_update_reading(c);
}

/* ---- the handler's side ------------------------------------------------- */

void gateway_http_conn_on_abort(gateway_http_conn_t *c, gateway_http_abort_fn fn, void *arg)
{
    c->abort_fn = fn;
    c->abort_arg = arg;
}

int gateway_http_conn_respond(gateway_http_conn_t *c, int status, const char *content_type,
                              const char *extra_headers, const void *body, size_t len)
{
    if (c->state != CONN_BUSY || c->streaming)
        return MESH_ESTATE;
    return conn_send(c, status, content_type, extra_headers, body, len, false, NULL, NULL);
}

int gateway_http_conn_respond_error(gateway_http_conn_t *c, int status, const char *code,
                                    const char *message, const char *extra_headers)
{
    if (c->state != CONN_BUSY || c->streaming)
        return MESH_ESTATE;
    /* code/message may point into the request (c->url, c->body), so the body
     * is built in the server's scratch buffer; conn_send copies it at once. */
    gateway_buf_t *b = &c->srv->scratch;
    b->len = 0;
    int rc = gateway_json_error_body(b, code, message);
    if (rc < 0) {
        gateway_http_conn_close(c);
        return rc;
    }
    /* Client errors keep the connection; only our own failures close it. */
    return conn_send(c, status, NULL, extra_headers, b->data, b->len, false, code, message);
}

const gateway_http_req_t *gateway_http_conn_req(const gateway_http_conn_t *c)
{
    return c->state == CONN_BUSY ? &c->req : NULL;
}

double gateway_http_conn_elapsed_ms(const gateway_http_conn_t *c)
{
    return (double)(uv_hrtime() - c->req.start_ns) / 1e6;
}

/* ---- streamed responses ------------------------------------------------- */

static void conn_swrite_cb(uv_write_t *req, int status)
{
    conn_swrite_t *w = req->data;
    gateway_http_conn_t *c = req->handle->data;
    free(w);
    /* A failed write (peer reset) ends the stream: the abort callback runs. */
    if (status < 0 && c->state != CONN_CLOSING)
        gateway_http_conn_close(c);
}

/*
 * Write bytes (already framed: pre, data, post) as one write of their own.
 * When nothing is queued ahead of them the kernel usually takes them at once
 * (uv_try_write, one writev, TCP_NODELAY set at accept): no copy, no
 * allocation, and no write request whose completion would cost the loop an
 * extra turn and an epoll_ctl. Whatever the kernel did not take (or an error,
 * which the queued write then reports through its callback, as it always
 * did) goes out through a queued uv_write that owns a copy of the rest.
 */
static int conn_swrite(gateway_http_conn_t *c, const char *pre, size_t pre_len, const void *data,
                       size_t len, const char *post, size_t post_len)
{
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > GATEWAY_HTTP_STREAM_QUEUE_MAX) {
        mesh_log_warn("http", "stream client not reading (over %d bytes queued): closing",
                      GATEWAY_HTTP_STREAM_QUEUE_MAX);
        gateway_http_conn_close(c);
        return MESH_EIO;
    }
    uv_buf_t parts[3];
    unsigned np = 0;
    if (pre_len)
        parts[np++] = uv_buf_init((char *)pre, (unsigned)pre_len);
    if (len)
        parts[np++] = uv_buf_init((char *)data, (unsigned)len);
    if (post_len)
        parts[np++] = uv_buf_init((char *)post, (unsigned)post_len);
    size_t total = pre_len + len + post_len;
    size_t sent = 0;
    if (np > 0) {
        /* UV_EAGAIN also when writes are queued: order on the wire holds. */
        int n = uv_try_write((uv_stream_t *)&c->tcp, parts, np);
        if (n > 0)
            sent = (size_t)n;
    }
    if (sent == total)
        return 0;
    conn_swrite_t *w = malloc(sizeof(*w) + (total - sent));
    if (!w) {
        gateway_http_conn_close(c);
        return MESH_ENOMEM;
    }
    /* Copy what is left: skip the first `sent` bytes across the parts. */
    size_t skip = sent, at = 0;
    for (unsigned i = 0; i < np; i++) {
        size_t plen = parts[i].len;
        if (skip >= plen) {
            skip -= plen;
            continue;
        }
        memcpy(w->data + at, parts[i].base + skip, plen - skip);
        at += plen - skip;
        skip = 0;
    }
    w->len = at;
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_swrite_cb) != 0) {
        free(w);
        gateway_http_conn_close(c);
        return MESH_EIO;
    }
    return 0;
}

int gateway_http_conn_stream_start(gateway_http_conn_t *c, int status, const char *content_type,
                                   const char *extra_headers)
{
    if (c->state != CONN_BUSY || c->streaming || !c->have_req)
        return MESH_ESTATE;
    if (!content_type)
        content_type = "application/json";
    if (!extra_headers)
        extra_headers = "";
    size_t extra_len = strlen(extra_headers), ct_len = strlen(content_type);
    if (extra_len + ct_len > GATEWAY_HTTP_STREAM_WRITE_MAX)
        return MESH_ETOOBIG;
    c->chunked = c->req.http_major > 1 || (c->req.http_major == 1 && c->req.http_minor >= 1);
    bool keep = c->chunked && c->req.keep_alive && !c->srv->draining;
    conn_log(c, status, NULL, NULL);
    gateway_metrics_response(&c->req, status);
    gateway_trace_response(&c->req, status);
    char *head = malloc(GATEWAY_HTTP_HEAD_ROOM + ct_len + extra_len);
    if (!head) {
        gateway_http_conn_close(c);
        return MESH_ENOMEM;
    }
    int n =
        snprintf(head, GATEWAY_HTTP_HEAD_ROOM + ct_len + extra_len,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%s\r\n", status, status_reason(status),
                 content_type, c->chunked ? "Transfer-Encoding: chunked\r\n" : "",
                 keep ? "" : "Connection: close\r\n", extra_headers);
    if (n < 0 || (size_t)n >= GATEWAY_HTTP_HEAD_ROOM + ct_len + extra_len) {
        free(head);
        gateway_http_conn_close(c);
        return MESH_EINTERNAL;
    }
    c->streaming = true;
    c->close_after_write = !keep;
    int rc = conn_swrite(c, head, (size_t)n, NULL, 0, "", 0);
    free(head);
    return rc;
}

int gateway_http_conn_stream_write(gateway_http_conn_t *c, const void *data, size_t len)
{
    if (c->state != CONN_BUSY || !c->streaming)
        return MESH_ESTATE;
    if (len == 0)
        return 0;
    if (len > GATEWAY_HTTP_STREAM_WRITE_MAX)
        return MESH_ETOOBIG;
    if (!c->chunked)
        return conn_swrite(c, "", 0, data, len, "", 0);
    /* The chunk-size line, by hand: this runs once per streamed event. */
    static const char hex[] = "0123456789abcdef";
    char size_line[2 * sizeof(size_t) + 2];
    char digits[2 * sizeof(size_t)];
    size_t nd = 0;
    for (size_t v = len; v; v >>= 4)
        digits[nd++] = hex[v & 0xf];
    size_t n = 0;
    while (nd)
        size_line[n++] = digits[--nd];
    size_line[n++] = '\r';
    size_line[n++] = '\n';
    return conn_swrite(c, size_line, n, data, len, "\r\n", 2);
}

int gateway_http_conn_stream_end(gateway_http_conn_t *c)
{
    if (c->state != CONN_BUSY || !c->streaming)
        return MESH_ESTATE;
    c->streaming = false;
    c->abort_fn = NULL;
    if (!c->chunked) {
        /* The close is the end of the body: FIN once the queued writes went out. */
        conn_linger(c);
        return 0;
    }
    /* The last chunk goes through the normal response path, so keep-alive,
     * draining and pipelined requests behave as after respond(). */
    static const char last[] = "0\r\n\r\n";
    c->out.len = 0;
    if (gateway_buf_append(&c->out, last, sizeof(last) - 1, GATEWAY_HTTP_HEAD_ROOM) < 0) {
        gateway_http_conn_close(c);
        return MESH_ENOMEM;
    }
    conn_set_state(c, CONN_WRITE);
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb) != 0) {
        gateway_http_conn_close(c);
        return MESH_EIO;
    }
    conn_update_reading(c);
    return 0;
}

bool gateway_http_conn_streaming(const gateway_http_conn_t *c)
{
    return c->state == CONN_BUSY && c->streaming;
}
