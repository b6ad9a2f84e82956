/*
 * agent_loop.c - turn lifecycle: admission, per-conversation order,
 * deadlines, the memory calls (turn.begin / turn.end / turn.abort) and the
 * answers to the client. The llm and tool steps are in agent_steps.c, the
 * lease renewals in agent_lease.c.
 *
 * Ownership: a turn lives from admission until it is finished (recorded or
 * aborted); it is freed in turn_finish(), which also starts the next turn
 * of the conversation. Every broker request of a turn is either in flight
 * with the turn (or a tool slot) as callback argument, or cancelled before
 * the turn is freed, so no callback ever sees a freed turn.
 */
#include "agent_turn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_text.h"
#include "router_metrics.h"

#define LOG_SUB "agent"

static router_turn_t *turn_of_node(router_heap_node_t *n)
{
    return ROUTER_CONTAINER_OF(n, router_turn_t, hnode);
}

static router_turn_t *turn_of_item(router_convq_item_t *i)
{
    return ROUTER_CONTAINER_OF(i, router_turn_t, qitem);
}

static router_turn_t *turn_of_link(router_list_t *l)
{
    return ROUTER_CONTAINER_OF(l, router_turn_t, all);
}

uint64_t router__turn_now(const router_turn_t *t)
{
    return router_broker_now(t->al->broker);
}

/* ---- wake-up timer (one min-heap, one uv timer) ---- */

static void timer_cb(uv_timer_t *h);

/* Both heaps (deadlines/backoffs and lease renewals) share the one timer. */
void router__loop_arm(router_agent_loop_t *al)
{
    router_heap_node_t *top = router_heap_peek(&al->wakeups);
    router_heap_node_t *ren = router_heap_peek(&al->renewals);
    if (!top || (ren && ren->key < top->key))
        top = ren;
    if (!top) {
        if (al->timer_armed) {
            uv_timer_stop(al->timer);
            al->timer_armed = 0;
        }
        return;
    }
    if (al->timer_armed == top->key + 1)
        return;
    uint64_t now = uv_now(al->loop);
    uv_timer_start(al->timer, timer_cb, top->key > now ? top->key - now : 0, 0);
    al->timer_armed = top->key + 1;
}

static void arm(router_agent_loop_t *al)
{
    router__loop_arm(al);
}

static void wake_at(router_turn_t *t, uint64_t key)
{
    router_agent_loop_t *al = t->al;
    if (router_heap_contains(&t->hnode))
        router_heap_update(&al->wakeups, &t->hnode, key);
    else if (router_heap_push(&al->wakeups, &t->hnode, key) != 0)
        mesh_log_error(LOG_SUB,
                       "out of memory arming a turn deadline"); /* broker deadlines still apply */
    arm(al);
}

/* ---- answers ---- */

static void answer(router_turn_t *t, int status, const char *msg, json_t *data)
{
    if (t->answered)
        return;
    t->answered = true;
    t->span_status = status;
    router_metrics_turn_end(t->agent ? t->agent->name : NULL, status, t->start_ns,
                            t->steps > 0 ? (uint32_t)t->steps : 0);
    mesh_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    memcpy(rep.id, t->req.id, sizeof(rep.id));
    rep.status = status;
    if (status != 0)
        snprintf(rep.err, sizeof(rep.err), "%s", msg ? msg : mesh_strerror(status));
    rep.data = data; /* borrowed */
    router_broker_client_reply(t->al->broker, t->client, t->client_len, ROUTER_SERVICE_AGENT, true,
                               &rep);
}

void router__turn_partial_data(router_turn_t *t, json_t *data)
{
    if (!t->stream || t->answered)
        return;
    mesh_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    memcpy(rep.id, t->req.id, sizeof(rep.id));
    rep.data = data; /* borrowed */
    router_broker_client_reply(t->al->broker, t->client, t->client_len, ROUTER_SERVICE_AGENT, false,
                               &rep);
}

void router__turn_partial(router_turn_t *t, const char *delta, size_t len)
{
    if (t->answered)
        return;
    mesh_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    memcpy(rep.id, t->req.id, sizeof(rep.id));
    rep.data = json_pack("{s:s%}", "delta", delta, len);
    if (!rep.data)
        return;
    router_broker_client_reply(t->al->broker, t->client, t->client_len, ROUTER_SERVICE_AGENT, false,
                               &rep);
    json_decref(rep.data);
}

/* ---- tracing ---- */

static void trace_append(router_turn_t *t, const mesh_span_t *sp)
{
    if (!t->trace || json_array_size(t->trace) >= ROUTER_TRACE_SPANS_MAX)
        return;
    json_t *rec = mesh_span_record_json(sp);
    if (rec && json_array_append_new(t->trace, rec) != 0)
        mesh_log_debug(LOG_SUB, "conv %s: span record dropped (out of memory)", t->req.conv);
}

/*
 * The timeline sent with turn.end: the finished sub-request spans, then the
 * turn span and the turn.end span, which are still open when turn.end is
 * sent: recorded with end = now (status unset); their real end is exported.
 */
static json_t *turn_trace(router_turn_t *t, const mesh_span_t *end_span)
{
    json_t *arr = t->trace ? json_copy(t->trace) : json_array();
    if (!arr)
        return NULL;
    uint64_t now = mesh_trace_now_unix_nano();
    mesh_span_t open[2] = {t->span, *end_span};
    for (size_t i = 0; i < 2; i++) {
        open[i].end_unix_nano = now;
        json_t *rec = mesh_span_record_json(&open[i]);
        if (!rec || json_array_append_new(arr, rec) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static void sub_unlink(router_turn_t *t, router_subreq_t *s)
{
    for (router_subreq_t **pp = &t->subs; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            return;
        }
    }
}

/* A sub-request's reply: its FINAL ends its span, then the turn's callback runs. */
static void sub_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg)
{
    router_subreq_t *s = arg;
    router_reply_cb cb = s->cb;
    void *cb_arg = s->arg;
    if (kind == ROUTER_REPLY_FINAL) {
        router_turn_t *t = s->turn;
        mesh_span_finish(&s->span, rep->status);
        trace_append(t, &s->span);
        sub_unlink(t, s);
        free(s);
    }
    cb(kind, rep, cb_arg); /* may free the turn: nothing after */
}

/* ---- requests ---- */

int router__turn_submit(router_turn_t *t, const char *service, const char *op, json_t *args,
                        bool idem, uint64_t deadline_ms, router_reply_cb cb, void *arg,
                        char id_out[ROUTER_REQ_ID_LEN + 1])
{
    mesh_request_t r;
    memset(&r, 0, sizeof(r));
    if (!args)
        return MESH_ENOMEM;
    if (deadline_ms == 0) {
        uint64_t now = router__turn_now(t);
        if (now >= t->deadline) {
            json_decref(args);
            return MESH_ETIMEDOUT;
        }
        deadline_ms = t->deadline - now;
    }
    router_subreq_t *sub = calloc(1, sizeof(*sub));
    if (!sub) {
        json_decref(args);
        return MESH_ENOMEM;
    }
    sub->turn = t;
    sub->cb = cb;
    sub->arg = arg;
    char span_name[MESH_SPAN_NAME_MAX + 1];
    if (snprintf(span_name, sizeof(span_name), "%s %s", service, op) >= (int)sizeof(span_name))
        span_name[sizeof(span_name) - 1] = '\0'; /* truncated: still a usable name */
    mesh_span_start_child(&sub->span, span_name, MESH_SPAN_CLIENT, &t->span);
    if (strcmp(op, "turn.end") == 0) {
        json_t *trace = turn_trace(t, &sub->span);
        if (!trace || json_object_set_new(args, "trace", trace) != 0) {
            free(sub);
            json_decref(args);
            return MESH_ENOMEM;
        }
    }
    char id[33];
    mesh_id_new(id);
    memcpy(r.id, id, sizeof(id));
    snprintf(r.op, sizeof(r.op), "%s", op);
    memcpy(r.conv, t->req.conv, sizeof(r.conv));
    memcpy(r.tenant, t->req.tenant, sizeof(r.tenant));
    mesh_span_child_tp(&sub->span, r.tp);
    r.deadline_ms =
        (uint32_t)(deadline_ms > MESH_DEADLINE_MAX_MS ? MESH_DEADLINE_MAX_MS : deadline_ms);
    r.idem = idem;
    r.args = args;
    int rc = router_broker_submit(t->al->broker, service, &r, sub_cb, sub);
    if (rc) {
        json_decref(r.args);
        free(sub);
        return rc;
    }
    sub->next = t->subs;
    t->subs = sub;
    if (id_out)
        memcpy(id_out, id, ROUTER_REQ_ID_LEN + 1);
    return 0;
}

/* ---- finishing ---- */

static void turn_free(router_turn_t *t)
{
    router__early_drop(t); /* before the sub-request records go */
    router__lease_stop(t);
    router__turn_tools_cancel(t);
    /* Every request is answered or cancelled by now: their entries go. */
    while (t->subs) {
        router_subreq_t *s = t->subs;
        t->subs = s->next;
        free(s);
    }
    mesh_span_finish(&t->span, t->span_status);
    json_decref(t->trace);
    mesh_request_clear(&t->req);
    json_decref(t->history);
    json_decref(t->turn_msgs);
    json_decref(t->tool_summary);
    json_decref(t->final_data);
    json_decref(t->cstate);
    json_decref(t->fallback);
    free(t->streamed);
    router_agents_unref(&t->agents);
    free(t);
}

static void turn_begin(router_turn_t *t);

/* The turn is over: let the next turn of the conversation run. */
static void turn_finish(router_turn_t *t)
{
    router_agent_loop_t *al = t->al;
    router_convq_item_t *next = router_convq_remove(al->convq, &t->qitem);
    router_heap_remove(&al->wakeups, &t->hnode);
    router_list_remove(&t->all);
    al->active--;
    turn_free(t);
    arm(al);
    if (next)
        turn_begin(turn_of_item(next));
}

static void cancel_pending(router_turn_t *t)
{
    if (t->pending_id[0]) {
        router_broker_cancel(t->al->broker, t->pending_id);
        t->pending_id[0] = '\0';
    }
    router__early_drop(t);
    router__turn_tools_cancel(t);
}

static void abort_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg)
{
    router_turn_t *t = arg;
    if (kind != ROUTER_REPLY_FINAL)
        return;
    t->pending_id[0] = '\0';
    if (rep->status != 0)
        mesh_log_warn(LOG_SUB, "conv %s: turn.abort failed: %s (%s)", t->req.conv,
                      mesh_err_name(rep->status), rep->err);
    turn_finish(t);
}

/* Release the lease (and a pending idempotency key) in memory, best effort. */
static void turn_abort(router_turn_t *t)
{
    t->state = TURN_ABORT;
    router__early_forget(t); /* memory holds the message without its answer */
    router__lease_stop(t);
    router_heap_remove(&t->al->wakeups, &t->hnode);
    arm(t->al);
    json_t *args = json_pack("{s:s, s:s}", "message_id", t->message_id, "owner", t->owner);
    int rc = router__turn_submit(t, "memory", "turn.abort", args, true, ROUTER_ABORT_DEADLINE_MS,
                                 abort_cb, t, t->pending_id);
    if (rc) {
        mesh_log_warn(LOG_SUB, "conv %s: turn.abort not sent: %s", t->req.conv, mesh_err_name(rc));
        turn_finish(t);
    }
}

void router__turn_fail(router_turn_t *t, int status, const char *msg, bool abort)
{
    cancel_pending(t);
    router__early_forget(t);
    if (!t->answered) {
        mesh_log_info(LOG_SUB, "conv %s message %s failed: %s: %s", t->req.conv, t->message_id,
                      mesh_err_name(status), msg ? msg : mesh_strerror(status));
        answer(t, status, msg, t->final_data);
    }
    if (abort)
        turn_abort(t);
    else
        turn_finish(t);
}

/* ---- turn.end ---- */

static void end_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg)
{
    router_turn_t *t = arg;
    if (kind != ROUTER_REPLY_FINAL)
        return;
    t->pending_id[0] = '\0';
    if (rep->status == MESH_ESTATE) {
        /* Another turn holds the lease: ours lapsed and the conversation was
         * taken over. Nothing was written; the message stays pending, so
         * the client may retry it (hence EUNAVAIL, not the memory status). */
        mesh_log_warn(LOG_SUB, "conv %s message %s: turn.end refused, lease lost", t->req.conv,
                      t->message_id);
        json_decref(t->final_data);
        t->final_data = NULL;
        router__turn_fail(t, MESH_EUNAVAIL, ROUTER_LEASE_LOST_MSG, true);
        return;
    }
    if (rep->status != 0) {
        char msg[MESH_ERRMSG_MAX + 64];
        snprintf(msg, sizeof(msg), "memory turn.end: %s", rep->err[0] ? rep->err : "failed");
        json_decref(t->final_data);
        t->final_data = NULL;
        router__turn_fail(t, rep->status, msg, true);
        return;
    }
    router__early_remember(t);
    answer(t, 0, NULL, t->final_data);
    turn_finish(t);
}

/* The FINAL data of a recorded turn (reply is a json string, referenced). */
static json_t *final_data_new(router_turn_t *t, json_t *reply)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:O, s:b, s:O, s:i}", "conversation_id", t->req.conv,
                          "message_id", t->message_id, "agent", t->agent->name, "reply", reply,
                          "duplicate", 0, "tool_calls", t->tool_summary, "steps", t->steps);
    if (d && t->triage_by &&
        json_object_set_new(d, "triage", json_pack("{s:s}", "by", t->triage_by)) != 0) {
        json_decref(d);
        d = NULL;
    }
    if (d && router__state_final_extras(t, d) != 0) {
        json_decref(d);
        d = NULL;
    }
    return d;
}

void router__turn_record(router_turn_t *t)
{
    t->state = TURN_END;
    json_t *fields = router__state_fields(t);
    json_t *args = fields ? json_pack("{s:s, s:s, s:O, s:o, s:O}", "message_id", t->message_id,
                                      "owner", t->owner, "messages", t->turn_msgs, "state", fields,
                                      "reply", t->final_data)
                          : NULL;
    int rc = router__turn_submit(t, "memory", "turn.end", args, true, 0, end_cb, t, t->pending_id);
    if (rc) {
        json_decref(t->final_data);
        t->final_data = NULL;
        router__turn_fail(t, rc, "memory turn.end not sent", true);
    }
}

void router__turn_complete(router_turn_t *t, json_t *text)
{
    const char *agent = t->agent->name;
    /* The answer's json string is shared (referenced, not copied) by the
     * stored message, the FINAL data and the turn.end args. */
    json_t *msg = json_pack("{s:s, s:O, s:s}", "role", "assistant", "text", text, "agent", agent);
    json_decref(t->final_data);
    t->final_data = final_data_new(t, text);
    if (!msg || !t->final_data || json_array_append_new(t->turn_msgs, msg) != 0) {
        router__turn_fail(t, MESH_ENOMEM, NULL, true);
        return;
    }
    router__turn_record(t);
}

/*
 * Handoff gate: a person holds the conversation (or it waits for one). No
 * model, no tool: the user message is already in the log (turn.begin); the
 * turn is recorded without messages and answered with an empty reply.
 */
static void turn_gated(router_turn_t *t, const char *handoff)
{
    mesh_log_debug(LOG_SUB, "conv %s message %s: handoff %s, bot silent", t->req.conv,
                   t->message_id, handoff);
    json_t *empty = json_string("");
    t->final_data = empty ? final_data_new(t, empty) : NULL;
    json_decref(empty);
    if (!t->final_data) {
        router__turn_fail(t, MESH_ENOMEM, NULL, true);
        return;
    }
    router__turn_record(t);
}

/* ---- turn.begin ---- */

static void begin_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg);

static void turn_backoff(router_turn_t *t)
{
    /* Another router runs the conversation: what was predicted is stale. */
    router__early_drop(t);
    uint64_t now = router__turn_now(t);
    t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : ROUTER_LEASE_BACKOFF_MIN_MS;
    if (t->backoff_ms > ROUTER_LEASE_BACKOFF_MAX_MS)
        t->backoff_ms = ROUTER_LEASE_BACKOFF_MAX_MS;
    t->wake_at = now + t->backoff_ms;
    if (t->wake_at >= t->deadline) {
        /* turn.begin said EBUSY: we never held the lease, nothing to abort. */
        router__turn_fail(t, MESH_ETIMEDOUT,
                          "deadline exceeded: the conversation is busy on another router", false);
        return;
    }
    t->state = TURN_BACKOFF;
    wake_at(t, t->wake_at);
}

static void turn_begin(router_turn_t *t)
{
    router_agent_loop_t *al = t->al;
    t->state = TURN_BEGIN;
    wake_at(t, t->deadline);
    if (!t->agents)
        t->agents = router_agents_ref(al->agents);
    if (!t->started) {
        t->started = true;
        /* The wait behind earlier turns of the conversation (near zero
         * when the conversation was idle): from admission to now. */
        mesh_span_t qs;
        mesh_span_start_child(&qs, "router queue", MESH_SPAN_INTERNAL, &t->span);
        qs.start_unix_nano = t->span.start_unix_nano;
        mesh_span_finish(&qs, 0);
        trace_append(t, &qs);
        /* One line per turn on the router that runs it (ids are validated). */
        mesh_log_debug(LOG_SUB, "turn start conv=%s message_id=%s owner=%s", t->req.conv,
                       t->message_id, t->owner);
        /* The model call first: it is the long way round (agent_early.c). */
        router__early_start(t);
    }
    json_t *args = json_pack("{s:s, s:s, s:i, s:s, s:I}", "message_id", t->message_id, "text",
                             t->text, "window", (int)al->opts.history_window, "owner", t->owner,
                             "lease_ms", (json_int_t)router__lease_ms(t));
    int rc =
        router__turn_submit(t, "memory", "turn.begin", args, true, 0, begin_cb, t, t->pending_id);
    if (rc)
        router__turn_fail(t, rc, "memory turn.begin not sent", false);
}

static void on_duplicate(router_turn_t *t, json_t *data)
{
    json_t *reply = json_object_get(data, "reply");
    if (!json_is_object(reply)) {
        router__turn_fail(t, MESH_EPROTO, "memory: duplicate without a stored reply", true);
        return;
    }
    json_object_set_new(reply, "duplicate", json_true());
    mesh_log_info(LOG_SUB, "conv %s message %s: duplicate, stored reply returned", t->req.conv,
                  t->message_id);
    answer(t, 0, NULL, reply);
    /* turn.begin took the lease for us: give it back at once. */
    turn_abort(t);
}

static void on_begun(router_turn_t *t, json_t *data)
{
    if (!json_is_object(data)) {
        router__turn_fail(t, MESH_EPROTO, "memory turn.begin: reply without data", true);
        return;
    }
    if (json_is_true(json_object_get(data, "duplicate"))) {
        on_duplicate(t, data);
        return;
    }
    json_t *history = json_object_get(data, "history");
    if (!json_is_array(history)) {
        router__turn_fail(t, MESH_EPROTO, "memory turn.begin: history missing", true);
        return;
    }
    t->history = json_incref(history);
    /* We hold the lease from here until turn.end or turn.abort. */
    router__lease_start(t);
    json_t *state = json_object_get(data, "state");
    const char *state_agent = json_string_value(json_object_get(state, "agent"));
    t->lang = mesh_text_lang(t->text);
    t->turn_msgs = json_array();
    t->tool_summary = json_array();
    if (!t->turn_msgs || !t->tool_summary || router__state_load(t, state) != 0) {
        router__turn_fail(t, MESH_ENOMEM, NULL, true);
        return;
    }
    const char *handoff = router__state_handoff(t);
    if (handoff) {
        /* A person has the conversation: it stays with its agent (no switch). */
        router__turn_choose_gated(t, state_agent);
        turn_gated(t, handoff);
        return;
    }
    /* The agent (agent_triage.c; maybe one llm call first), then the first step. */
    router__turn_choose(t, state_agent);
}

static void begin_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg)
{
    router_turn_t *t = arg;
    if (kind != ROUTER_REPLY_FINAL)
        return;
    t->pending_id[0] = '\0';
    if (rep->status == MESH_EBUSY) {
        turn_backoff(t);
        return;
    }
    if (rep->status != 0) {
        char msg[MESH_ERRMSG_MAX + 64];
        snprintf(msg, sizeof(msg), "memory turn.begin: %s",
                 rep->err[0] ? rep->err : mesh_strerror(rep->status));
        /* With no worker the request never ran; otherwise it may have taken the lease. */
        router__turn_fail(t, rep->status, msg, rep->status != MESH_ENOWORKER);
        return;
    }
    on_begun(t, rep->data);
}

/* ---- deadlines ---- */

static void timer_cb(uv_timer_t *h)
{
    router_agent_loop_t *al = h->data;
    al->timer_armed = 0;
    uint64_t now = uv_now(al->loop);
    router_heap_node_t *top;
    while ((top = router_heap_peek(&al->wakeups)) != NULL && top->key <= now) {
        router_turn_t *t = turn_of_node(top);
        router_heap_remove(&al->wakeups, top);
        if (t->state == TURN_BACKOFF && now < t->deadline) {
            turn_begin(t);
            continue;
        }
        if (t->state == TURN_QUEUED) {
            router__turn_fail(t, MESH_ETIMEDOUT,
                              "deadline exceeded waiting for an earlier turn of the conversation",
                              false);
            continue;
        }
        if (t->state == TURN_ABORT)
            continue;
        /* Running: answer at the deadline; a late reply is cancelled. */
        router__turn_fail(t, MESH_ETIMEDOUT, "deadline exceeded", t->state != TURN_BACKOFF);
    }
    while ((top = router_heap_peek(&al->renewals)) != NULL && top->key <= now) {
        router_heap_remove(&al->renewals, top);
        router__lease_tick(ROUTER_CONTAINER_OF(top, router_turn_t, rnode));
    }
    arm(al);
}

/* ---- admission ---- */

static bool id_chars_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

/* Check the turn's args; on error write the message and return MESH_E*. */
static int validate_turn(const mesh_request_t *req, char *msg, size_t msg_size)
{
    if (strcmp(req->op, "turn") != 0) {
        snprintf(msg, msg_size, "service agent has no op '%s'", req->op);
        return MESH_EUNKNOWNOP;
    }
    if (req->conv[0] == '\0') {
        snprintf(msg, msg_size, "conv: required for op turn");
        return MESH_EPROTO;
    }
    if (!json_is_object(req->args)) {
        snprintf(msg, msg_size, "args: must be a map");
        return MESH_EPROTO;
    }
    const json_t *mid = json_object_get(req->args, "message_id");
    size_t n = json_string_length(mid);
    if (!json_is_string(mid) || n < 1 || n > MESH_ID_MAX ||
        !id_chars_ok(json_string_value(mid), n)) {
        snprintf(msg, msg_size, "args.message_id: must be 1..%d chars of [A-Za-z0-9._:-]",
                 MESH_ID_MAX);
        return MESH_EPROTO;
    }
    const json_t *text = json_object_get(req->args, "text");
    n = json_string_length(text);
    /* A json string is valid UTF-8 already (mesh_mp checked it when the body
     * was decoded): what is left to check is the length and NUL bytes. */
    if (!json_is_string(text) || n < 1 || n > MESH_TEXT_MAX ||
        memchr(json_string_value(text), '\0', n) != NULL) {
        snprintf(msg, msg_size, "args.text: must be 1..%d bytes of UTF-8 without NUL",
                 MESH_TEXT_MAX);
        return MESH_EPROTO;
    }
    const json_t *agent = json_object_get(req->args, "agent");
    if (agent && !json_is_null(agent) &&
        (!json_is_string(agent) || json_string_length(agent) > ROUTER_AGENT_NAME_MAX)) {
        snprintf(msg, msg_size, "args.agent: must be a string of at most %d bytes",
                 ROUTER_AGENT_NAME_MAX);
        return MESH_EPROTO;
    }
    const json_t *stream = json_object_get(req->args, "stream");
    if (stream && !json_is_null(stream) && !json_is_boolean(stream)) {
        snprintf(msg, msg_size, "args.stream: must be a boolean");
        return MESH_EPROTO;
    }
    return 0;
}

void router_agent_loop_handle(void *arg, const void *client, size_t client_len, mesh_request_t *req)
{
    router_agent_loop_t *al = arg;
    router_broker_t *b = al->broker;
    char msg[MESH_ERRMSG_MAX + 1];
    int rc = validate_turn(req, msg, sizeof(msg));
    if (rc == 0 && al->active >= ROUTER_TURNS_MAX) {
        rc = MESH_EBUSY;
        snprintf(msg, sizeof(msg), "too many turns in flight on this router");
    }
    if (rc == 0 && client_len > ROUTER_IDENTITY_MAX) {
        rc = MESH_EINVAL;
        snprintf(msg, sizeof(msg), "client identity too long");
    }
    if (rc) {
        router_broker_client_error(b, client, client_len, ROUTER_SERVICE_AGENT, req->id, rc, msg);
        return;
    }
    router_turn_t *t = calloc(1, sizeof(*t));
    if (!t) {
        router_broker_client_error(b, client, client_len, ROUTER_SERVICE_AGENT, req->id,
                                   MESH_ENOMEM, NULL);
        return;
    }
    t->al = al;
    t->start_ns = uv_hrtime();
    router_heap_node_init(&t->hnode);
    router_heap_node_init(&t->rnode);
    router_list_init(&t->all);
    router_list_init(&t->qitem.link);
    memcpy(t->client, client, client_len);
    t->client_len = client_len;
    t->req = *req;
    req->args = NULL; /* the turn owns it now */
    json_t *args = t->req.args;
    t->message_id = json_string_value(json_object_get(args, "message_id"));
    t->text = json_string_value(json_object_get(args, "text"));
    t->requested_agent = json_string_value(json_object_get(args, "agent"));
    t->stream = json_is_true(json_object_get(args, "stream"));
    if (t->req.tp[0] == '\0')
        mesh_traceparent_new(t->req.tp);
    if (t->req.tenant[0] == '\0')
        snprintf(t->req.tenant, sizeof(t->req.tenant), "%s", MESH_TENANT_DEFAULT);
    mesh_span_start(&t->span, "router turn", MESH_SPAN_SERVER, t->req.tp);
    mesh_span_attr_str(&t->span, "tenant", t->req.tenant);
    t->trace = json_array(); /* NULL (out of memory): the turn just keeps no timeline */
    mesh_id_new(t->owner);
    t->deadline = router_broker_now(b) + t->req.deadline_ms;

    bool head = false;
    rc = router_convq_push(al->convq, t->req.conv, &t->qitem, &head);
    if (rc) {
        router_broker_client_error(b, client, client_len, ROUTER_SERVICE_AGENT, t->req.id, rc,
                                   rc == MESH_EBUSY ? "too many messages waiting for this "
                                                      "conversation"
                                                    : NULL);
        t->span_status = rc;
        turn_free(t);
        return;
    }
    router_list_push_back(&al->turns, &t->all);
    al->active++;
    if (head) {
        turn_begin(t);
    } else {
        t->state = TURN_QUEUED;
        wake_at(t, t->deadline);
    }
}

/* ---- cancel ---- */

static void turn_interrupted(router_turn_t *t)
{
    bool any = router__turn_interrupt(t);
    cancel_pending(t);
    if (!any) {
        turn_abort(t); /* nothing said yet: the message stays pending for a retry */
        return;
    }
    json_t *said = json_stringn(t->streamed ? t->streamed : "", t->streamed_len);
    json_decref(t->final_data);
    t->final_data = said ? final_data_new(t, said) : NULL;
    json_decref(said);
    if (!t->final_data || json_object_set_new(t->final_data, "interrupted", json_true()) != 0) {
        router__turn_fail(t, MESH_ENOMEM, NULL, true);
        return;
    }
    router__turn_record(t);
}

void router_agent_loop_cancel(router_agent_loop_t *al, const void *client, size_t client_len,
                              const char *id)
{
    if (!al || !client || !id)
        return;
    router_turn_t *t = NULL;
    for (router_list_t *l = al->turns.next; l != &al->turns; l = l->next) {
        router_turn_t *c = turn_of_link(l);
        if (c->client_len == client_len && memcmp(c->client, client, client_len) == 0 &&
            strcmp(c->req.id, id) == 0 && !c->cancelled) {
            t = c;
            break;
        }
    }
    if (!t)
        return;
    t->cancelled = true;
    if (!t->answered) {
        t->answered = true; /* never answered from here on */
        t->span_status = MESH_ECANCELED;
        router_metrics_turn_end(t->agent ? t->agent->name : NULL, MESH_ECANCELED, t->start_ns,
                                t->steps > 0 ? (uint32_t)t->steps : 0);
    }
    mesh_log_info(LOG_SUB, "conv %s message %s: cancelled by the client", t->req.conv,
                  t->message_id ? t->message_id : "-");
    switch (t->state) {
    case TURN_QUEUED:
    case TURN_BACKOFF: /* never held the lease */
        turn_finish(t);
        break;
    case TURN_BEGIN: /* turn.begin may have recorded the message and taken the lease */
        cancel_pending(t);
        turn_abort(t);
        break;
    case TURN_LLM:
    case TURN_TOOLS:
        turn_interrupted(t);
        break;
    case TURN_END:   /* recording: finishes without answering */
    case TURN_ABORT: /* answered already */
        break;
    }
}

/* ---- lifecycle ---- */

router_agent_loop_t *router_agent_loop_new(uv_loop_t *loop, router_broker_t *b,
                                           router_agents_t *agents,
                                           const router_agent_loop_opts_t *opts)
{
    if (!loop || !b || !agents || !opts)
        return NULL;
    router_agent_loop_t *al = calloc(1, sizeof(*al));
    if (!al)
        return NULL;
    al->loop = loop;
    al->broker = b;
    al->opts = *opts;
    router_list_init(&al->turns);
    router_heap_init(&al->wakeups);
    router_heap_init(&al->renewals);
    al->convq = router_convq_new(opts->conv_queue_max);
    al->convctx = router_convctx_new(opts->early_start != ROUTER_EARLY_OFF ? opts->context_max : 0);
    al->timer = calloc(1, sizeof(*al->timer));
    if (!al->convq || !al->convctx || !al->timer) {
        router_convctx_destroy(&al->convctx);
        router_convq_destroy(&al->convq);
        free(al->timer);
        free(al);
        return NULL;
    }
    uv_timer_init(loop, al->timer);
    al->timer->data = al;
    al->agents = router_agents_ref(agents);
    return al;
}

void router_agent_loop_set_agents(router_agent_loop_t *al, router_agents_t *agents)
{
    router_agents_t *old = al->agents;
    al->agents = router_agents_ref(agents);
    router_agents_unref(&old);
}

size_t router_agent_loop_active(const router_agent_loop_t *al)
{
    return al->active;
}

static void drop_all(router_agent_loop_t *al, bool reply, int status, const char *msg)
{
    router_list_t *l;
    while ((l = router_list_pop_front(&al->turns)) != NULL) {
        router_turn_t *t = turn_of_link(l);
        cancel_pending(t);
        if (reply)
            answer(t, status, msg, NULL);
        router_convq_remove(al->convq, &t->qitem);
        router_heap_remove(&al->wakeups, &t->hnode);
        al->active--;
        turn_free(t);
    }
    arm(al);
}

void router_agent_loop_fail_all(router_agent_loop_t *al, int status, const char *msg)
{
    drop_all(al, true, status, msg);
}

static void timer_free_cb(uv_handle_t *h)
{
    free(h);
}

void router_agent_loop_destroy(router_agent_loop_t **al_p)
{
    if (!al_p || !*al_p)
        return;
    router_agent_loop_t *al = *al_p;
    drop_all(al, false, 0, NULL);
    uv_timer_stop(al->timer);
    uv_close((uv_handle_t *)al->timer, timer_free_cb);
    router_convq_destroy(&al->convq);
    router_convctx_destroy(&al->convctx);
    router_heap_free(&al->wakeups);
    router_heap_free(&al->renewals);
    router_agents_unref(&al->agents);
    mesh_jbuf_free(&al->jbuf);
    free(al);
    *al_p = NULL;
}
