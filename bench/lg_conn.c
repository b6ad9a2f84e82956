/*
 * lg_conn.c - one keep-alive HTTP connection of the load generator: its
 * conversation, its request schedule, the response parser and the latency
 * record. See lg.h for the closed/open loop model.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lg.h"

#define LG_RECONNECT_MS 100 /* pause before reconnecting after a failure */
#define NS_PER_MS       1000000ull
#define NS_PER_S        1000000000ull

const char *const lg_err_names[LG_ERR_N] = {"connect", "timeout", "parse", "bad_body"};

/* A conversation: the first turn names the policy, the follow-ups rely on history. */
static const char *const questions_zh[] = {"我的保单 %s 保障什么？", "免赔额是多少？",
                                           "哪些情况不赔？", "等待期多久？", "报销比例是多少？"};
static const char *const questions_en[] = {
    "What does my policy %s cover?", "What is the deductible?", "What is not covered?",
    "How long is the waiting period?", "What is the reimbursement ratio?"};
#define N_QUESTIONS (sizeof questions_zh / sizeof questions_zh[0])

static void conn_connect(lg_conn_t *c);
static void conn_schedule(lg_conn_t *c);
static void on_pace(uv_timer_t *t);

static bool in_window(const lg_t *lg, uint64_t t)
{
    return t >= lg->window_ns && t <= lg->end_ns;
}

static void on_tcp_closed(uv_handle_t *h)
{
    lg_conn_t *c = h->data;
    c->tcp_open = false;
    if (c->lg->stopping) {
        return;
    }
    c->connected = false;
    c->writing = false;
    if (!c->lg->stopping && c->reconnect_pending) {
        c->reconnect_pending = false;
        if (c->backoff) {
            /* after a failure, pause so a dead server is not hammered */
            c->backoff = false;
            uv_timer_start(&c->pace, on_pace, LG_RECONNECT_MS, 0);
        } else {
            conn_connect(c);
        }
    }
}

/* Close the TCP connection and open a new one (after the close completes). */
static void conn_reconnect(lg_conn_t *c)
{
    c->reconnect_pending = true;
    if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    } else if (!c->tcp_open) {
        c->reconnect_pending = false;
        conn_connect(c);
    }
}

/* The request failed: count it, drop the conversation, reconnect. */
static void conn_fail(lg_conn_t *c, lg_err_t err)
{
    lg_t *lg = c->lg;
    uint64_t now = uv_hrtime();
    if (c->in_flight) {
        lg->done_total++;
        if (in_window(lg, now)) {
            lg->err_count[err]++;
            if (lg->scen.n > 0)
                lg->scen.s[c->scen].errors++;
        }
    }
    c->in_flight = false;
    c->turn = 0;
    uv_timer_stop(&c->timeout);
    if (!lg->stopping) {
        c->backoff = true;
        conn_reconnect(c);
    }
}

static void on_write(uv_write_t *req, int status)
{
    lg_conn_t *c = req->data;
    c->writing = false;
    if (status < 0 && !c->lg->stopping) {
        conn_fail(c, LG_ERR_CONNECT);
    }
}

static void conn_write(lg_conn_t *c)
{
    uv_buf_t buf = uv_buf_init(c->req, (unsigned)c->req_len);
    c->writing = true;
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
        c->writing = false;
        conn_fail(c, LG_ERR_CONNECT);
    }
}

static void on_timeout(uv_timer_t *t)
{
    conn_fail(t->data, LG_ERR_TIMEOUT);
}

static void conn_start_request(lg_conn_t *c, uint64_t sched);

/* The next message of the connection's scripted conversation (--scenario). */
static void conn_send_scenario(lg_conn_t *c, uint64_t sched)
{
    lg_t *lg = c->lg;
    const lg_scen_t *s = &lg->scen.s[c->scen];
    const lg_sconv_t *cv = &s->convs[c->sconv];
    static char text[LG_SCEN_MSG_MAX + 1];
    char body[LG_SCEN_MSG_MAX + 256];
    if (lg_scen_render(cv->msgs[(size_t)c->turn % cv->n_msgs], c->policy, c->seq, text,
                       sizeof text) < 0) {
        text[0] = '\0'; /* checked at load time: cannot happen with the bounds there */
    }
    int blen =
        snprintf(body, sizeof body, "{\"text\":\"%s\",\"message_id\":\"m%d\",\"agent\":\"%s\"}",
                 text, c->turn + 1, s->agent);
    int rlen = snprintf(c->req, sizeof c->req,
                        "POST /v1/conversations/%s/messages HTTP/1.1\r\n"
                        "Host: %s:%d\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %d\r\n\r\n%s",
                        c->conv, lg->o.host, lg->o.port, blen, body);
    c->req_len = rlen > 0 && (size_t)rlen < sizeof c->req ? (size_t)rlen : 0;
    conn_start_request(c, sched);
}

/* Build and send the next turn; sched is the time latency is measured from. */
static void conn_send(lg_conn_t *c, uint64_t sched)
{
    lg_t *lg = c->lg;
    if (c->turn == 0) {
        uint64_t seq = lg->conv_seq++;
        snprintf(c->conv, sizeof c->conv, "lg%d-%llu", (int)getpid(), (unsigned long long)seq);
        c->policy = 10000 + (int)(seq % (uint64_t)lg->o.policies);
        c->english =
            strcmp(lg->o.lang, "en") == 0 || (strcmp(lg->o.lang, "mix") == 0 && (seq & 1u) == 1u);
        c->seq = (unsigned long long)seq;
        if (lg->scen.n > 0) {
            /* connection i: scenario i mod n, its conversations in order from i mod m */
            c->scen = (size_t)c->idx % lg->scen.n;
            const lg_scen_t *s = &lg->scen.s[c->scen];
            c->sconv = (size_t)((uint64_t)c->idx / lg->scen.n + c->conv_count) % s->n_convs;
            c->conv_count++;
        }
    }
    if (lg->scen.n > 0) {
        conn_send_scenario(c, sched);
        return;
    }
    const char *q = (c->english ? questions_en : questions_zh)[(size_t)c->turn % N_QUESTIONS];
    char text[256], body[512];
    if (c->turn == 0) {
        char policy[16];
        snprintf(policy, sizeof policy, "P%05d", c->policy);
        /* the first question is the only one with a %s: the policy number */
        const char *pos = strstr(q, "%s");
        snprintf(text, sizeof text, "%.*s%s%s", (int)(pos - q), q, policy, pos + 2);
    } else {
        snprintf(text, sizeof text, "%s", q);
    }
    int blen =
        snprintf(body, sizeof body, "{\"text\":\"%s\",\"message_id\":\"m%d\"}", text, c->turn + 1);
    int rlen = snprintf(c->req, sizeof c->req,
                        "POST /v1/conversations/%s/messages HTTP/1.1\r\n"
                        "Host: %s:%d\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %d\r\n\r\n%s",
                        c->conv, lg->o.host, lg->o.port, blen, body);
    c->req_len = (size_t)rlen;
    conn_start_request(c, sched);
}

/* The request in c->req is ready: arm the timeout and write it. */
static void conn_start_request(lg_conn_t *c, uint64_t sched)
{
    lg_t *lg = c->lg;
    c->sched_ns = sched;
    c->in_flight = true;
    c->body_len = 0;
    c->message_done = false;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    lg->sent_total++;
    uv_timer_start(&c->timeout, on_timeout, lg->o.timeout_ms, 0);
    if (c->connected) {
        conn_write(c);
    } /* else on_connect writes it */
}

static void on_pace(uv_timer_t *t)
{
    lg_conn_t *c = t->data;
    if (!c->tcp_open) {
        conn_connect(c); /* the reconnect pause is over */
    } else {
        conn_schedule(c);
    }
}

/* Send the next turn now (closed loop) or at its scheduled time (open loop). */
static void conn_schedule(lg_conn_t *c)
{
    lg_t *lg = c->lg;
    if (lg->stopping || c->in_flight || !c->connected) {
        return;
    }
    uint64_t now = uv_hrtime();
    if (lg->o.rate <= 0) {
        conn_send(c, now);
        return;
    }
    /* connection i sends at start + (i + k * conns) / rate */
    double slot = (double)c->idx + (double)c->sends * (double)lg->o.conns;
    uint64_t due = lg->start_ns + (uint64_t)(slot / lg->o.rate * (double)NS_PER_S);
    if (due <= now) {
        c->sends++;
        conn_send(c, due);
        return;
    }
    uint64_t wait_ms = (due - now) / NS_PER_MS;
    if (wait_ms == 0) {
        c->sends++;
        conn_send(c, now); /* early by < 1 ms: measure from the actual send */
        return;
    }
    uv_timer_start(&c->pace, on_pace, wait_ms, 0);
}

static void conn_complete(lg_conn_t *c)
{
    lg_t *lg = c->lg;
    uint64_t now = uv_hrtime();
    uv_timer_stop(&c->timeout);
    c->in_flight = false;
    lg->done_total++;
    unsigned status = c->parser.status_code;
    bool ok = false;
    if (status == 200) {
        c->body[c->body_len] = '\0';
        ok = strstr(c->body, "\"reply\"") != NULL;
    }
    lg_scen_t *sc = lg->scen.n > 0 ? &lg->scen.s[c->scen] : NULL;
    if (in_window(lg, now)) {
        if (sc != NULL) {
            if (ok) {
                sc->ok++;
                lg_hist_record(&sc->hist, (now - c->sched_ns) / 1000u);
            } else {
                sc->errors++;
            }
        }
        if (ok) {
            lg->ok++;
            lg_hist_record(&lg->hist, (now - c->sched_ns) / 1000u);
        } else if (status == 200) {
            lg->err_count[LG_ERR_BODY]++;
        } else {
            lg->status_count[status < LG_STATUS_MAX ? status : 0]++;
        }
    }
    /* a failed turn ends its conversation: the next turn would lack its history */
    int turns = sc != NULL ? (int)sc->convs[c->sconv].n_msgs : lg->o.turns;
    c->turn = ok ? (c->turn + 1) % turns : 0;
    if (!http_should_keep_alive(&c->parser)) {
        conn_reconnect(c);
        return;
    }
    conn_schedule(c);
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    lg_conn_t *c = p->data;
    size_t room = LG_BODY_KEEP - 1 - c->body_len;
    size_t n = len < room ? len : room;
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    lg_conn_t *c = p->data;
    c->message_done = true;
    http_parser_pause(p, 1); /* one response per request: bytes after it are an error */
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    lg_conn_t *c = h->data;
    *buf = uv_buf_init(c->read_buf, sizeof c->read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    lg_conn_t *c = s->data;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        if (c->in_flight) {
            conn_fail(c, LG_ERR_CONNECT);
        } else if (!c->lg->stopping) {
            conn_reconnect(c); /* idle keep-alive closed by the server */
        }
        return;
    }
    if (!c->in_flight) {
        conn_fail(c, LG_ERR_PARSE); /* bytes nobody asked for */
        return;
    }
    size_t done = http_parser_execute(&c->parser, &c->lg->settings, buf->base, (size_t)nread);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->message_done) {
        if (done != (size_t)nread) {
            conn_fail(c, LG_ERR_PARSE);
            return;
        }
        conn_complete(c);
        return;
    }
    if (e != HPE_OK || done != (size_t)nread) {
        conn_fail(c, LG_ERR_PARSE);
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    lg_conn_t *c = req->data;
    if (c->lg->stopping) {
        return;
    }
    if (status < 0) {
        if (!c->in_flight && in_window(c->lg, uv_hrtime())) {
            c->lg->err_count[LG_ERR_CONNECT]++;
        }
        conn_fail(c, LG_ERR_CONNECT);
        return;
    }
    c->connected = true;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->in_flight) {
        conn_write(c);
    } else {
        conn_schedule(c);
    }
}

static void conn_connect(lg_conn_t *c)
{
    lg_t *lg = c->lg;
    uv_tcp_init(lg->loop, &c->tcp);
    c->tcp.data = c;
    c->tcp_open = true;
    c->connected = false;
    c->connect_req.data = c;
    if (uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&lg->addr, on_connect) !=
        0) {
        conn_fail(c, LG_ERR_CONNECT);
    }
}

void lg_conns_start(lg_t *lg)
{
    lg->settings.on_body = on_body;
    lg->settings.on_message_complete = on_message_complete;
    for (int i = 0; i < lg->o.conns; i++) {
        lg_conn_t *c = &lg->conns[i];
        c->lg = lg;
        c->idx = i;
        uv_timer_init(lg->loop, &c->pace);
        uv_timer_init(lg->loop, &c->timeout);
        c->pace.data = c;
        c->timeout.data = c;
        conn_connect(c);
    }
}

void lg_conns_stop(lg_t *lg)
{
    lg->stopping = true;
    for (int i = 0; i < lg->o.conns; i++) {
        lg_conn_t *c = &lg->conns[i];
        uv_close((uv_handle_t *)&c->pace, NULL);
        uv_close((uv_handle_t *)&c->timeout, NULL);
        if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp)) {
            uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
        }
    }
}
