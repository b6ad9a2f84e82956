/*
 * openai_stub.c - mesh-openai-stub: a protocol-faithful stand-in for an
 * OpenAI-compatible Chat Completions server (HTTP/1.1 on libuv +
 * http-parser, chunked SSE), replaying recorded exchanges for the tests.
 *
 *   mesh-openai-stub --port N --scripts DIR [--record FILE] [--close]
 *
 * Connections are HTTP/1.1 keep-alive, like vLLM, llama.cpp, Ollama and
 * api.openai.com: several requests one after another on one connection
 * (bytes that arrive while a response is being sent wait for it to end),
 * and the parser state is reset between requests. The connection is closed
 * after a response when the client asked for it ("Connection: close", or
 * HTTP/1.0 without keep-alive), when the script's response headers say
 * "Connection: close", when --close is given (every response closes, the
 * old behaviour: a server without keep-alive), and on a request the parser
 * rejects (400). A response always says which ("Connection: keep-alive" or
 * "Connection: close").
 *
 * GET /_stub/stats (admin, not recorded, not counted) answers
 *   {"connections": N, "requests": M, "open": K}
 * N: connections that carried at least one counted request, M: counted
 * requests (everything but /_stub/ and /healthz), K: connections open now.
 * A client that reuses its connections makes N stay at 1 while M grows.
 *
 * POST .../chat/completions picks a script DIR/<name>.json by, in order: the
 * X-Stub-Script header, a "#stub:<name>" marker in the last user message, the
 * request's model. A script (tests/stubs/openai/README.md has the format):
 *   {"steps": [{"when_last_role": "user"|"tool" (optional),
 *               "attempts": [<response>, ...]}, ...]}
 * The first step whose when_last_role matches the request's last message is
 * used; its attempts are served in order to identical request bodies (a
 * client's retry repeats the body), the last one repeating. A response:
 *   status (200), headers {k: v}, and one of
 *   sse: [event, ...]   an object is sent as "data: <json>", a string as
 *                       "data: <string>" (so "[DONE]" and broken JSON can be
 *                       replayed), each followed by a blank line, chunked;
 *                       a string starting with ':' is sent as a comment line
 *   body: <json>        a plain JSON body with Content-Length
 *   token_delay_ms      pause between SSE events
 *   split               write each event in pieces of this many bytes
 *   crlf                CRLF line ends instead of LF
 *   stall_after k       send k events, then nothing (the connection stays open,
 *                       answering no later request)
 *   reset_after k       send k events, then reset the connection (RST)
 * Every request is appended to FILE as one JSON line: {"path", "script",
 * "attempt", "traceparent", "authorization", "at_ms" (monotonic), "body"}.
 * "listening on port N" goes to stderr once the socket is bound.
 */
#define _GNU_SOURCE
#include <http_parser.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define STUB_BODY_MAX   (4 * 1024 * 1024) /* request body bytes */
#define STUB_HEADER_MAX 1024              /* one header value we keep */
#define STUB_NAME_MAX   64                /* script name bytes */
#define STUB_BODIES_MAX 4096              /* distinct bodies remembered for attempt counts */
#define STUB_PATH_MAX   1024
/* bytes buffered on a connection while a response is being sent (a client
 * that pipelines): one largest request plus its head */
#define STUB_PEND_MAX (STUB_BODY_MAX + 64 * 1024)

typedef struct {
    uint64_t hash;
    unsigned count;
} seen_t;

static const char *s_scripts = ".";
static FILE *s_record;
static seen_t s_seen[STUB_BODIES_MAX];
static size_t s_n_seen;
static uv_loop_t *s_loop;
static bool s_close_each; /* --close: no keep-alive */
static struct {
    uint64_t conns; /* connections that carried a counted request */
    uint64_t reqs;  /* counted requests */
    uint64_t open;  /* connections open now */
} s_stats;

typedef struct conn {
    uv_tcp_t tcp;
    http_parser parser;
    char url[STUB_PATH_MAX];
    char field[64];
    bool in_value;
    char tp[STUB_HEADER_MAX];
    char auth[STUB_HEADER_MAX];
    char script_hdr[STUB_NAME_MAX + 1];
    char *cur_value; /* where the current header's value goes, or NULL */
    size_t cur_cap;
    char *body;
    size_t body_len;
    bool responding; /* a request is complete and its response not yet done */
    bool complete;   /* on_complete ran: respond once the parser returns */
    bool keep_alive; /* the client allows another request after this one */
    bool resp_close; /* this response closes the connection */
    bool driving;    /* inside conn_drive: do not re-enter it */
    bool counted;    /* counted in s_stats.conns */
    bool closing;
    char *pend; /* received bytes not parsed yet */
    size_t pend_len;
    int pending_writes;
    json_t *resp; /* the response being streamed */
    size_t ev;    /* next event */
    uv_timer_t timer;
    bool timer_open;
} conn_t;

static void on_closed(uv_handle_t *h);
static void response_done(conn_t *c);
static void conn_drive(conn_t *c);

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static unsigned attempt_of(const char *body, size_t n)
{
    uint64_t h = fnv1a(body, n);
    for (size_t i = 0; i < s_n_seen; i++) {
        if (s_seen[i].hash == h)
            return s_seen[i].count++;
    }
    if (s_n_seen < STUB_BODIES_MAX)
        s_seen[s_n_seen++] = (seen_t){h, 1};
    return 0;
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->timer_open)
        uv_timer_stop(&c->timer);
    if (c->pending_writes == 0)
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void conn_free(conn_t *c)
{
    s_stats.open--;
    json_decref(c->resp);
    free(c->body);
    free(c->pend);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    conn_free(h->data);
}

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (c->timer_open) {
        c->timer.data = c;
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    } else {
        conn_free(c);
    }
}

typedef struct {
    uv_write_t w;
    conn_t *c;
    char data[];
} wreq_t;

static void on_written(uv_write_t *w, int status)
{
    wreq_t *r = (wreq_t *)w;
    conn_t *c = r->c;
    (void)status;
    free(r);
    c->pending_writes--;
    if (c->closing && c->pending_writes == 0 && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void send_raw(conn_t *c, const char *s, size_t n)
{
    if (c->closing || n == 0)
        return;
    wreq_t *r = malloc(sizeof(*r) + n);
    if (r == NULL)
        return;
    r->c = c;
    memcpy(r->data, s, n);
    uv_buf_t b = uv_buf_init(r->data, (unsigned)n);
    c->pending_writes++;
    if (uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        c->pending_writes--;
        free(r);
    }
}

/* One chunk of the chunked encoding. */
static void send_chunk(conn_t *c, const char *s, size_t n)
{
    char head[32];
    int hn = snprintf(head, sizeof(head), "%zx\r\n", n);
    size_t total = (size_t)hn + n + 2;
    char *buf = malloc(total);
    if (buf == NULL)
        return;
    memcpy(buf, head, (size_t)hn);
    memcpy(buf + hn, s, n);
    memcpy(buf + hn + n, "\r\n", 2);
    send_raw(c, buf, total);
    free(buf);
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* Whether the script's response headers ask to close the connection. */
static bool script_says_close(const json_t *headers)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        if (strcasecmp(k, "connection") == 0 && json_is_string(v) &&
            strcasecmp(json_string_value(v), "close") == 0)
            return true;
    }
    return false;
}

static void send_head(conn_t *c, int status, const char *ctype, long content_length,
                      const json_t *headers)
{
    char h[4096];
    c->resp_close = !c->keep_alive || s_close_each || script_says_close(headers);
    int n = snprintf(h, sizeof(h), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nConnection: %s\r\n",
                     status, reason(status), ctype, c->resp_close ? "close" : "keep-alive");
    if (content_length >= 0)
        n += snprintf(h + n, sizeof(h) - (size_t)n, "Content-Length: %ld\r\n", content_length);
    else
        n += snprintf(h + n, sizeof(h) - (size_t)n, "Transfer-Encoding: chunked\r\n");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        if (json_is_string(v) && (size_t)n < sizeof(h) - 256 && strcasecmp(k, "connection") != 0)
            n += snprintf(h + n, sizeof(h) - (size_t)n, "%s: %s\r\n", k, json_string_value(v));
    }
    n += snprintf(h + n, sizeof(h) - (size_t)n, "\r\n");
    send_raw(c, h, (size_t)n);
}

static void send_json_body(conn_t *c, int status, const json_t *body, const json_t *headers)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = s ? strlen(s) : 0;
    send_head(c, status, "application/json", (long)n, headers);
    send_raw(c, s ? s : "", n);
    free(s);
    response_done(c);
}

static void send_error(conn_t *c, int status, const char *msg)
{
    json_t *b = json_pack("{s:{s:s, s:s}}", "error", "message", msg, "type", "stub_error");
    send_json_body(c, status, b, NULL);
    json_decref(b);
}

/* A request the parser rejected: answer 400 and close (the rest of the
 * stream cannot be framed). */
static void send_bad_request(conn_t *c)
{
    c->keep_alive = false;
    c->responding = true;
    send_error(c, 400, "bad request");
}

/* Send event i of the response; false when there are no more. */
static bool send_event(conn_t *c, size_t i)
{
    const json_t *evs = json_object_get(c->resp, "sse");
    if (i >= json_array_size(evs))
        return false;
    const json_t *ev = json_array_get(evs, i);
    char *data = json_is_string(ev) ? strdup(json_string_value(ev)) : json_dumps(ev, JSON_COMPACT);
    if (data == NULL)
        return false;
    bool crlf = json_is_true(json_object_get(c->resp, "crlf"));
    const char *nl = crlf ? "\r\n" : "\n";
    size_t n = strlen(data) + 16;
    char *line = malloc(n);
    /* A string starting with ':' is an SSE comment line (a keep-alive), not data. */
    int len = data[0] == ':' ? snprintf(line, n, "%s%s", data, nl)
                             : snprintf(line, n, "data: %s%s%s", data, nl, nl);
    free(data);
    json_int_t split = json_integer_value(json_object_get(c->resp, "split"));
    if (split <= 0)
        split = len;
    for (int off = 0; off < len; off += (int)split) {
        int m = len - off < split ? len - off : (int)split;
        send_chunk(c, line + off, (size_t)m);
    }
    free(line);
    return true;
}

static void finish_stream(conn_t *c)
{
    send_raw(c, "0\r\n\r\n", 5);
    response_done(c);
}

static void on_tick(uv_timer_t *t);

/* Send the next event(s); returns when paced, stalled, reset or done. */
static void pump(conn_t *c)
{
    json_int_t delay = json_integer_value(json_object_get(c->resp, "token_delay_ms"));
    const json_t *stall = json_object_get(c->resp, "stall_after");
    const json_t *reset = json_object_get(c->resp, "reset_after");
    for (;;) {
        if (json_is_integer(stall) && (json_int_t)c->ev >= json_integer_value(stall))
            return; /* the client's timeout or deadline ends it */
        if (json_is_integer(reset) && (json_int_t)c->ev >= json_integer_value(reset)) {
            c->closing = true;
            if (c->timer_open)
                uv_timer_stop(&c->timer);
            uv_tcp_close_reset(&c->tcp, on_closed);
            return;
        }
        if (!send_event(c, c->ev)) {
            finish_stream(c);
            return;
        }
        c->ev++;
        if (delay > 0 && c->timer_open) {
            uv_timer_start(&c->timer, on_tick, (uint64_t)delay, 0);
            return;
        }
    }
}

static void on_tick(uv_timer_t *t)
{
    pump(t->data);
}

/* The last user message text, or "". */
static const char *last_user_text(const json_t *req)
{
    const json_t *msgs = json_object_get(req, "messages");
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        const json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role && strcmp(role, "user") == 0) {
            const char *t = json_string_value(json_object_get(m, "content"));
            return t ? t : "";
        }
    }
    return "";
}

static const char *last_role(const json_t *req)
{
    const json_t *msgs = json_object_get(req, "messages");
    size_t n = json_array_size(msgs);
    const char *r =
        n ? json_string_value(json_object_get(json_array_get(msgs, n - 1), "role")) : NULL;
    return r ? r : "";
}

static void pick_name(conn_t *c, const json_t *req, char name[STUB_NAME_MAX + 1])
{
    name[0] = '\0';
    if (c->script_hdr[0]) {
        snprintf(name, STUB_NAME_MAX + 1, "%s", c->script_hdr);
        return;
    }
    const char *m = strstr(last_user_text(req), "#stub:");
    if (m != NULL) {
        m += 6;
        size_t i = 0;
        while (i < STUB_NAME_MAX && ((m[i] >= 'a' && m[i] <= 'z') || (m[i] >= '0' && m[i] <= '9') ||
                                     m[i] == '_' || m[i] == '-'))
            i++;
        memcpy(name, m, i);
        name[i] = '\0';
        return;
    }
    const char *model = json_string_value(json_object_get(req, "model"));
    snprintf(name, STUB_NAME_MAX + 1, "%s", model ? model : "");
}

static bool name_ok(const char *n)
{
    if (!*n)
        return false;
    for (; *n; n++) {
        if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '_' || *n == '-' ||
              *n == '.'))
            return false;
    }
    return true;
}

static void record(conn_t *c, const char *name, unsigned attempt, const json_t *req)
{
    if (s_record == NULL)
        return;
    json_t *line =
        json_pack("{s:s, s:s, s:i, s:s, s:s, s:I, s:O}", "path", c->url, "script", name, "attempt",
                  (int)attempt, "traceparent", c->tp, "authorization", c->auth, "at_ms",
                  (json_int_t)(uv_hrtime() / 1000000), "body", req ? req : json_null());
    char *s = line ? json_dumps(line, JSON_COMPACT) : NULL;
    if (s != NULL) {
        fprintf(s_record, "%s\n", s);
        fflush(s_record);
    }
    free(s);
    json_decref(line);
}

static void respond(conn_t *c)
{
    c->responding = true;
    if (strncmp(c->url, "/_stub/stats", 12) == 0) {
        json_t *st =
            json_pack("{s:I, s:I, s:I}", "connections", (json_int_t)s_stats.conns, "requests",
                      (json_int_t)s_stats.reqs, "open", (json_int_t)s_stats.open);
        send_json_body(c, 200, st, NULL);
        json_decref(st);
        return;
    }
    if (strstr(c->url, "/healthz") != NULL) {
        json_t *ok = json_pack("{s:b}", "ok", 1);
        send_json_body(c, 200, ok, NULL);
        json_decref(ok);
        return;
    }
    s_stats.reqs++;
    if (!c->counted) {
        c->counted = true;
        s_stats.conns++;
    }
    json_error_t je;
    json_t *req = json_loadb(c->body ? c->body : "", c->body_len, 0, &je);
    char name[STUB_NAME_MAX + 1];
    pick_name(c, req, name);
    unsigned attempt = attempt_of(c->body ? c->body : "", c->body_len);
    record(c, name, attempt, req);
    if (strstr(c->url, "/chat/completions") == NULL || !json_is_object(req)) {
        json_decref(req);
        send_error(c, 404, "unknown path or bad body");
        return;
    }
    char path[STUB_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s.json", s_scripts, name);
    json_t *script = name_ok(name) ? json_load_file(path, 0, &je) : NULL;
    if (script == NULL) {
        fprintf(stderr, "openai-stub: no script '%s'\n", name);
        json_decref(req);
        send_error(c, 404, "no such stub script");
        return;
    }
    const char *lr = last_role(req);
    const json_t *steps = json_object_get(script, "steps");
    const json_t *step = NULL;
    for (size_t i = 0; i < json_array_size(steps) && step == NULL; i++) {
        const json_t *s = json_array_get(steps, i);
        const char *w = json_string_value(json_object_get(s, "when_last_role"));
        if (w == NULL || strcmp(w, lr) == 0)
            step = s;
    }
    const json_t *atts = json_object_get(step, "attempts");
    size_t na = json_array_size(atts);
    if (na == 0) {
        json_decref(script);
        json_decref(req);
        send_error(c, 500, "stub script has no matching step");
        return;
    }
    c->resp = json_incref(json_array_get(atts, attempt < na ? attempt : na - 1));
    json_decref(script);
    json_decref(req);
    int status = (int)json_integer_value(json_object_get(c->resp, "status"));
    if (status == 0)
        status = 200;
    const json_t *hdrs = json_object_get(c->resp, "headers");
    const json_t *body = json_object_get(c->resp, "body");
    if (body != NULL) {
        send_json_body(c, status, body, hdrs);
        return;
    }
    send_head(c, status, "text/event-stream", -1, hdrs);
    c->ev = 0;
    pump(c);
}

/* ---- http-parser callbacks ---- */

static void end_value(conn_t *c)
{
    c->cur_value = NULL;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    size_t have = strlen(c->url);
    if (have + n < sizeof(c->url)) {
        memcpy(c->url + have, at, n);
        c->url[have + n] = '\0';
    }
    return 0;
}

static int on_hfield(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (c->in_value) {
        end_value(c);
        c->field[0] = '\0';
        c->in_value = false;
    }
    size_t have = strlen(c->field);
    if (have + n < sizeof(c->field)) {
        memcpy(c->field + have, at, n);
        c->field[have + n] = '\0';
    }
    return 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (!c->in_value) {
        c->in_value = true;
        c->cur_value = NULL;
        if (strcasecmp(c->field, "traceparent") == 0) {
            c->cur_value = c->tp;
            c->cur_cap = sizeof(c->tp);
        } else if (strcasecmp(c->field, "authorization") == 0) {
            c->cur_value = c->auth;
            c->cur_cap = sizeof(c->auth);
        } else if (strcasecmp(c->field, "x-stub-script") == 0) {
            c->cur_value = c->script_hdr;
            c->cur_cap = sizeof(c->script_hdr);
        }
        if (c->cur_value)
            c->cur_value[0] = '\0';
    }
    if (c->cur_value) {
        size_t have = strlen(c->cur_value);
        if (have + n < c->cur_cap) {
            memcpy(c->cur_value + have, at, n);
            c->cur_value[have + n] = '\0';
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (c->body_len + n > STUB_BODY_MAX)
        return -1;
    char *b = realloc(c->body, c->body_len + n + 1);
    if (b == NULL)
        return -1;
    memcpy(b + c->body_len, at, n);
    c->body = b;
    c->body_len += n;
    c->body[c->body_len] = '\0';
    return 0;
}

/* The request is whole: stop the parser here (a pipelined next request
 * waits in c->pend) and let conn_drive respond once the parser returned. */
static int on_complete(http_parser *p)
{
    conn_t *c = p->data;
    c->complete = true;
    c->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings s_settings = {
    .on_url = on_url,
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(want);
    buf->len = buf->base ? want : 0;
}

/* Parse the buffered bytes and answer each whole request, one at a time:
 * stops while a response is in progress (response_done calls it again). */
static void conn_drive(conn_t *c)
{
    c->driving = true;
    while (!c->closing && !c->responding && c->pend_len > 0) {
        size_t used = http_parser_execute(&c->parser, &s_settings, c->pend, c->pend_len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (used > c->pend_len)
            used = c->pend_len;
        memmove(c->pend, c->pend + used, c->pend_len - used);
        c->pend_len -= used;
        if (c->complete) {
            c->complete = false;
            respond(c); /* may finish at once: response_done resets the request */
            continue;
        }
        if (e != HPE_OK) {
            send_bad_request(c);
            break;
        }
        break; /* everything parsed: wait for more bytes */
    }
    c->driving = false;
}

/* The response is complete: close, or reset the per-request state and go on
 * with the next request on this connection. */
static void response_done(conn_t *c)
{
    if (c->resp_close || !c->keep_alive) {
        conn_close(c);
        return;
    }
    c->responding = false;
    c->url[0] = '\0';
    c->field[0] = '\0';
    c->in_value = false;
    c->tp[0] = '\0';
    c->auth[0] = '\0';
    c->script_hdr[0] = '\0';
    c->cur_value = NULL;
    free(c->body);
    c->body = NULL;
    c->body_len = 0;
    json_decref(c->resp);
    c->resp = NULL;
    c->ev = 0;
    if (c->timer_open)
        uv_timer_stop(&c->timer);
    http_parser_pause(&c->parser, 0);
    if (!c->driving)
        conn_drive(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (n < 0) {
        free(buf->base);
        conn_close(c);
        return;
    }
    if (n > 0 && !c->closing) {
        char *p = NULL;
        if (c->pend_len + (size_t)n <= STUB_PEND_MAX)
            p = realloc(c->pend, c->pend_len + (size_t)n);
        if (p == NULL) {
            free(buf->base);
            conn_close(c); /* a client far ahead of us, or out of memory */
            return;
        }
        memcpy(p + c->pend_len, buf->base, (size_t)n);
        c->pend = p;
        c->pend_len += (size_t)n;
        if (!c->driving)
            conn_drive(c);
    }
    free(buf->base);
}

static void on_conn(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    s_stats.open++;
    uv_tcp_init(s_loop, &c->tcp);
    c->tcp.data = c;
    if (uv_timer_init(s_loop, &c->timer) == 0) {
        c->timer_open = true;
        c->timer.data = c;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_tcp_nodelay(&c->tcp, 1); /* each SSE event goes out when written */
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *s, int sig)
{
    (void)sig;
    uv_stop(s->loop);
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--close") == 0) {
            s_close_each = true;
            continue;
        }
        if (i + 1 >= argc)
            break;
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--scripts") == 0)
            s_scripts = argv[i + 1];
        else if (strcmp(argv[i], "--record") == 0)
            s_record = fopen(argv[i + 1], "a");
        i++;
    }
    if (port <= 0 || port > 65535) {
        fprintf(stderr,
                "usage: mesh-openai-stub --port N --scripts DIR [--record FILE] [--close]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    s_loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(s_loop, &server);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 128, on_conn);
    if (rc != 0) {
        fprintf(stderr, "openai-stub: cannot listen on %d: %s\n", port, uv_strerror(rc));
        return 1;
    }
    uv_signal_t sigterm, sigint;
    uv_signal_init(s_loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_init(s_loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    fprintf(stderr, "openai-stub listening on port %d\n", port);
    uv_run(s_loop, UV_RUN_DEFAULT);
    if (s_record)
        fclose(s_record);
    return 0;
}
