/*
 * route_events.c - the live event streams (route_people.h):
 *
 *   GET /v1/conversations/{id}/events?after=<seq>   customer side (web chat)
 *   GET /v1/handoff/events                          console (people key)
 *
 * Both are Server-Sent Events (gw_sse.h) backed by a bounded poll of
 * memory: one request at a time, GATEWAY_EVENTS_POLL_MS after the previous
 * answer. The conversation stream reads conv.get {limit:
 * GATEWAY_EVENTS_POLL_LIMIT} and sends
 *   message  {seq, role, text, name?, person?, ts?, ...}  each new log entry
 *            after `after` that a customer may see (user and assistant
 *            messages: the bot's and a person's replies; notes and tool
 *            messages are never sent);
 *   handoff  {state: "bot"|"pending"|"human", reason, person}  at the start
 *            and whenever the conversation's handoff state changes;
 *   gap      {from}  when more than GATEWAY_EVENTS_POLL_LIMIT entries arrived
 *            between two polls (the page re-reads the conversation).
 * seq is the entry's sequence number in the conversation (state "seq": 1-based,
 * every message ever appended; it keeps growing after the log is trimmed).
 * The console stream reads handoff.list and sends `queue` (the list's data)
 * at the start and whenever it changed.
 *
 * A stream ends itself after GATEWAY_EVENTS_STREAM_MAX_MS (a client
 * reconnects with after=<last seq>), so a draining gateway is never held
 * open by a console left running; heartbeats (MESH_SSE_HEARTBEAT_MS) keep
 * proxies from cutting it meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_seq.h"
#include "gateway_internal.h"
#include "gw_sse.h"
#include "json_io.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "route_people.h"
#include "validate.h"

/* Interval between the answer to one poll and the next poll. */
#define GATEWAY_EVENTS_POLL_MS 500
/* Log entries one conversation poll reads (more between polls -> a gap event). */
#define GATEWAY_EVENTS_POLL_LIMIT 200
/* Deadline of one poll request. */
#define GATEWAY_EVENTS_POLL_DEADLINE_MS 5000
/* A stream ends after this long; the client reconnects. */
#define GATEWAY_EVENTS_STREAM_MAX_MS 60000
/* Queue entries the console stream shows. */
#define GATEWAY_EVENTS_QUEUE_LIMIT 500
/* Longest handoff state / reason kept for change detection. */
#define GATEWAY_EVENTS_STATE_MAX 1024

#define EV_SUBSYS "events"

typedef enum { EV_CONV = 0, EV_QUEUE } ev_kind_t;

typedef struct {
    gateway_t *gw;
    gateway_http_conn_t *conn;
    gateway_sse_t *sse;
    uv_timer_t *timer; /* freed by its close callback */
    uint64_t handle;
    bool inflight;
    ev_kind_t kind;
    uint64_t started_ms;
    mesh_request_t base; /* tenant, traceparent */
    char conv[MESH_CONV_MAX + 1];
    int64_t after;                            /* last seq handled */
    bool sent_state;                          /* a handoff event was sent */
    char state_key[GATEWAY_EVENTS_STATE_MAX]; /* "state|person|reason" last sent */
    gateway_buf_t last;                       /* console: the queue JSON last sent */
    gateway_buf_t out;                        /* serialisation scratch */
} ev_stream_t;

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

static void ev_free(ev_stream_t *s)
{
    if (s->timer) {
        uv_timer_stop(s->timer);
        uv_close((uv_handle_t *)s->timer, timer_closed);
    }
    gateway_buf_free(&s->last);
    gateway_buf_free(&s->out);
    free(s);
}

/* The client went away. */
static void ev_abort(gateway_http_conn_t *conn, void *arg)
{
    (void)conn;
    ev_stream_t *s = arg;
    if (s->inflight) {
        mesh_client_cancel(s->gw->client, s->handle);
        s->gw->n_calls--;
    }
    gateway_sse_abandon(&s->sse);
    ev_free(s);
}

/* End the response normally (lifetime reached). Not while a poll is in flight. */
static void ev_finish(ev_stream_t *s)
{
    gateway_http_conn_on_abort(s->conn, NULL, NULL);
    gateway_sse_end(&s->sse);
    ev_free(s);
}

/*
 * Send event with v serialised. 0, or an error after which s is gone (the
 * connection was closed and its abort callback freed s).
 */
static int ev_send(ev_stream_t *s, const char *event, const json_t *v)
{
    int rc = gateway_json_dump(&s->out, v);
    if (rc != 0)
        return 0; /* not serialisable: skip the event, keep the stream */
    return gateway_sse_send(s->sse, event, s->out.data, s->out.len);
}

static void ev_poll(uv_timer_t *t);

static void ev_rearm(ev_stream_t *s)
{
    uv_timer_start(s->timer, ev_poll, GATEWAY_EVENTS_POLL_MS, 0);
}

/* A customer-visible log entry: user and assistant messages, not notes or tools. */
static bool customer_visible(const json_t *m)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    return role && (strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0);
}

/* Conversation poll answered: new entries, then a handoff change. */
static int conv_events(ev_stream_t *s, const json_t *data)
{
    const json_t *msgs = json_object_get(data, "messages");
    const json_t *state = json_object_get(data, "state");
    /* Numbered by the conversation's sequence, not the log position (conv_seq.h). */
    json_int_t last = gateway_conv_last_seq(data);
    if (json_is_array(msgs)) {
        json_int_t first = last - (json_int_t)json_array_size(msgs) + 1;
        if (s->after < first - 1) {
            json_t *gap = json_pack("{s:I}", "from", (json_int_t)(s->after + 1));
            int rc = ev_send(s, "gap", gap);
            json_decref(gap);
            if (rc != 0)
                return rc;
        }
        size_t i;
        const json_t *m;
        json_array_foreach(msgs, i, m)
        {
            json_int_t seq = first + (json_int_t)i;
            if (seq <= s->after)
                continue;
            s->after = seq;
            if (!json_is_object(m) || !customer_visible(m))
                continue;
            json_t *c = json_copy((json_t *)m);
            if (!c)
                continue;
            json_object_set_new(c, "seq", json_integer(seq));
            int rc = ev_send(s, "message", c);
            json_decref(c);
            if (rc != 0)
                return rc;
        }
    }
    const char *ho = json_string_value(json_object_get(state, "handoff"));
    const char *reason = json_string_value(json_object_get(state, "handoff_reason"));
    const char *person = json_string_value(json_object_get(state, "handoff_person"));
    const char *st = ho && ho[0] ? ho : "bot";
    char key[GATEWAY_EVENTS_STATE_MAX];
    snprintf(key, sizeof(key), "%s|%s|%s", st, person ? person : "", reason ? reason : "");
    if (s->sent_state && strcmp(key, s->state_key) == 0)
        return 0;
    memcpy(s->state_key, key, sizeof(key));
    s->sent_state = true;
    json_t *ev =
        json_pack("{s:s, s:s?, s:s?}", "state", st, "reason", reason && reason[0] ? reason : NULL,
                  "person", person && person[0] ? person : NULL);
    int rc = ev ? ev_send(s, "handoff", ev) : 0;
    json_decref(ev);
    return rc;
}

/* Queue poll answered: send it when it differs from the last one sent. */
static int queue_events(ev_stream_t *s, const json_t *data)
{
    if (gateway_json_dump(&s->out, data) != 0)
        return 0;
    if (s->last.len == s->out.len && s->last.data &&
        memcmp(s->last.data, s->out.data, s->out.len) == 0)
        return 0;
    s->last.len = 0;
    if (gateway_buf_append(&s->last, s->out.data, s->out.len, GATEWAY_JSON_OUT_MAX) != 0)
        s->last.len = 0;
    return gateway_sse_send(s->sse, "queue", s->out.data, s->out.len);
}

static void ev_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)client;
    if (!final)
        return;
    ev_stream_t *s = arg;
    s->inflight = false;
    s->gw->n_calls--;
    int rc = 0;
    if (rep->status == 0) {
        rc = s->kind == EV_CONV ? conv_events(s, rep->data) : queue_events(s, rep->data);
    } else if (rep->status == MESH_ENOTFOUND && s->kind == EV_CONV) {
        /* Not started yet (the page opens the stream before the first message): nothing. */
        if (!s->sent_state) {
            s->sent_state = true;
            snprintf(s->state_key, sizeof(s->state_key), "bot||");
            json_t *ev = json_pack("{s:s}", "state", "bot");
            rc = ev ? ev_send(s, "handoff", ev) : 0;
            json_decref(ev);
        }
    } else {
        /* Transient (memory busy, router lost): the next poll tries again. */
        mesh_log_debug(EV_SUBSYS, "poll of %s failed: %s", s->kind == EV_CONV ? s->conv : "queue",
                       mesh_strerror(rep->status));
    }
    if (rc != 0)
        return; /* the connection is closed and s freed by the abort callback */
    ev_rearm(s);
}

static void ev_poll(uv_timer_t *t)
{
    ev_stream_t *s = t->data;
    if (uv_now(s->gw->loop) - s->started_ms >= GATEWAY_EVENTS_STREAM_MAX_MS) {
        ev_finish(s);
        return;
    }
    mesh_request_t req = s->base;
    req.id[0] = '\0';
    req.idem = true;
    req.deadline_ms = GATEWAY_EVENTS_POLL_DEADLINE_MS;
    if (s->kind == EV_CONV) {
        memcpy(req.op, "conv.get", sizeof("conv.get"));
        memcpy(req.conv, s->conv, sizeof(req.conv));
        req.args = json_pack("{s:i}", "limit", GATEWAY_EVENTS_POLL_LIMIT);
    } else {
        memcpy(req.op, "handoff.list", sizeof("handoff.list"));
        req.args = json_pack("{s:i}", "limit", GATEWAY_EVENTS_QUEUE_LIMIT);
    }
    int rc = req.args ? mesh_client_request(s->gw->client, "memory", &req, ev_reply, s, &s->handle)
                      : MESH_ENOMEM;
    json_decref(req.args);
    if (rc == 0) {
        s->inflight = true;
        s->gw->n_calls++;
        return;
    }
    /* No router right now: try again later (the stream stays open). */
    ev_rearm(s);
}

/* Start the stream and its first poll; answers errors itself. */
static void ev_start(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                     ev_stream_t *s)
{
    s->gw = gw;
    s->conn = conn;
    s->started_ms = uv_now(gw->loop);
    if (gateway_request_common(gw, conn, req, &s->base) < 0) {
        ev_free(s);
        return;
    }
    s->timer = malloc(sizeof(*s->timer));
    if (!s->timer) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        ev_free(s);
        return;
    }
    uv_timer_init(gw->loop, s->timer);
    s->timer->data = s;
    int rc = 0;
    s->sse = gateway_sse_start(gw->loop, conn, gw->cfg.sse_heartbeat_ms, NULL, &rc);
    if (!s->sse) {
        if (rc == MESH_ESTATE || rc == MESH_ENOMEM)
            gateway_http_conn_respond_error(conn, 503, "out_of_memory", "cannot start the stream",
                                            NULL);
        ev_free(s);
        return;
    }
    gateway_http_conn_on_abort(conn, ev_abort, s);
    uv_timer_start(s->timer, ev_poll, 0, 0);
}

void gateway_route_conv_events(gateway_t *gw, gateway_http_conn_t *conn,
                               const gateway_http_req_t *req, const char *conv, size_t conv_len)
{
    if (!mesh_conv_id_valid(conv, conv_len)) {
        gateway_http_conn_respond_error(conn, 400, "invalid_conversation_id",
                                        "conversation id must be 1..128 bytes of [A-Za-z0-9._:-]",
                                        NULL);
        return;
    }
    uint64_t after = 0;
    const char *val;
    size_t vlen;
    if (gateway_query_param(req->query, req->query_len, "after", &val, &vlen) &&
        !(vlen == 1 && val[0] == '0') &&
        gateway_parse_uint(val, vlen, (uint64_t)INT64_MAX / 2, &after) < 0) {
        gateway_http_conn_respond_error(conn, 400, "invalid_parameter",
                                        "after must be a non-negative integer (a seq)", NULL);
        return;
    }
    ev_stream_t *s = calloc(1, sizeof(*s));
    if (!s) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    s->kind = EV_CONV;
    s->after = (int64_t)after;
    memcpy(s->conv, conv, conv_len);
    s->conv[conv_len] = '\0';
    ev_start(gw, conn, req, s);
}

void gateway_route_handoff_events(gateway_t *gw, gateway_http_conn_t *conn,
                                  const gateway_http_req_t *req, const char *person)
{
    ev_stream_t *s = calloc(1, sizeof(*s));
    if (!s) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    s->kind = EV_QUEUE;
    mesh_log_info(EV_SUBSYS, "%s follows the handoff queue", person);
    ev_start(gw, conn, req, s);
}
