/*
 * agent_early.c - early start: a turn's first model call leaves before
 * memory has answered turn.begin (docs/router.md, "Early start").
 *
 * turn.begin (record the message, take the lease, read history and state)
 * costs two ZeroMQ hops and a Redis script before the model can be asked.
 * The router that ran a conversation's last turn knows what turn.begin will
 * answer (convctx.h): the history it saw plus what its turn added, the state
 * it wrote, the agent. A conversation no router here ever saw is probably
 * new: empty history, empty state. So at admission the router builds the
 * first llm.chat from that prediction and sends it alongside turn.begin.
 *
 * Safety rests on one rule: nothing the early call produces leaves the
 * router before the turn, built from memory's real answer, asks for exactly
 * the same llm.chat (router__llm_args, compared with json_equal). Until then
 * its PARTIALs and FINAL are held here; on a match they are handed to the
 * step's callback in order and the call is the step's own; on a mismatch,
 * or when the turn never gets to its first step (duplicate, handoff gate,
 * failure, busy lease), the early call is cancelled and its replies are
 * dropped. A wrong prediction costs one cancelled model call, never a wrong
 * answer. The model sees no message twice: the early call and the real one
 * are the same request.
 */
#include "agent_turn.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_text.h"
#include "router_metrics.h"

#define LOG_SUB "agent"
/* Replies held before the claim; a call that streams more before turn.begin
 * answers (it never does: that is a millisecond) is dropped. */
#define ROUTER_EARLY_HELD_MAX 256
/* First size of the held array (a streamed answer's first tokens and a FINAL). */
#define ROUTER_EARLY_HELD_INITIAL 8

typedef struct {
    router_reply_kind_t kind;
    bool has_rep; /* RETRY carries no reply */
    mesh_reply_t rep;
} held_t;

struct router_early {
    char id[ROUTER_REQ_ID_LEN + 1];
    json_t *args; /* what was sent, compared at the claim */
    bool claimed, done;
    router_reply_cb cb; /* after the claim */
    void *cb_arg;
    held_t *held;
    size_t n_held, cap_held;
};

static void held_free(held_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].has_rep)
            json_decref(h[i].rep.data);
    free(h);
}

static void early_free(router_early_t *e)
{
    held_free(e->held, e->n_held);
    json_decref(e->args);
    free(e);
}

void router__early_drop(router_turn_t *t)
{
    router_early_t *e = t->early;
    if (!e)
        return;
    t->early = NULL;
    if (!e->claimed) {
        router_metrics_early("dropped");
        if (!e->done)
            router_broker_cancel(t->al->broker, e->id);
    }
    early_free(e);
}

/* Replies of the early call: held until the claim, then passed on. */
static void early_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg)
{
    router_turn_t *t = arg;
    router_early_t *e = t->early;
    if (!e)
        return; /* cannot happen: a dropped call is cancelled first */
    if (kind == ROUTER_REPLY_FINAL)
        e->done = true;
    if (e->claimed) {
        router_reply_cb cb = e->cb;
        void *cb_arg = e->cb_arg;
        if (kind == ROUTER_REPLY_FINAL) {
            t->early = NULL;
            early_free(e);
        }
        cb(kind, rep, cb_arg); /* may free the turn */
        return;
    }
    if (e->n_held >= ROUTER_EARLY_HELD_MAX) {
        mesh_log_debug(LOG_SUB, "conv %s: early llm call dropped: %d replies before turn.begin",
                       t->req.conv, ROUTER_EARLY_HELD_MAX);
        router__early_drop(t);
        return;
    }
    if (e->n_held == e->cap_held) {
        size_t cap = e->cap_held ? 2 * e->cap_held : ROUTER_EARLY_HELD_INITIAL;
        if (cap > ROUTER_EARLY_HELD_MAX)
            cap = ROUTER_EARLY_HELD_MAX;
        held_t *h = realloc(e->held, cap * sizeof(*h));
        if (!h) {
            router__early_drop(t);
            return;
        }
        e->held = h;
        e->cap_held = cap;
    }
    held_t *h = &e->held[e->n_held++];
    h->kind = kind;
    h->has_rep = rep != NULL;
    if (rep) {
        h->rep = *rep;
        json_incref(h->rep.data);
    }
}

bool router__early_claim(router_turn_t *t, json_t *args, router_reply_cb cb, void *arg)
{
    router_early_t *e = t->early;
    if (!e)
        return false;
    if (!json_equal(e->args, args)) {
        router_metrics_early("mismatch");
        mesh_log_debug(LOG_SUB, "conv %s message %s: early llm call asked something else, resent",
                       t->req.conv, t->message_id);
        e->claimed = true; /* counted as mismatch, not dropped */
        if (!e->done)
            router_broker_cancel(t->al->broker, e->id);
        t->early = NULL;
        early_free(e);
        return false;
    }
    router_metrics_early("used");
    if (e->n_held > 0)
        mesh_log_debug(LOG_SUB, "conv %s message %s: early llm call used, %zu replies held%s",
                       t->req.conv, t->message_id, e->n_held, e->done ? " (answered)" : "");
    json_decref(args);
    e->claimed = true;
    e->cb = cb;
    e->cb_arg = arg;
    memcpy(t->pending_id, e->id, sizeof(t->pending_id));
    /* Replay what came so far. Only a FINAL can end the turn, and it is the
     * last reply: the record goes before it is replayed. */
    held_t *held = e->held;
    size_t n = e->n_held;
    e->held = NULL;
    e->n_held = 0;
    e->cap_held = 0;
    if (e->done) {
        t->early = NULL;
        early_free(e);
    }
    for (size_t i = 0; i < n; i++)
        cb(held[i].kind, held[i].has_rep ? &held[i].rep : NULL, arg);
    held_free(held, n);
    return true;
}

/* Keep the last `window` messages of arr. */
static void keep_last(json_t *arr, size_t window)
{
    while (json_array_size(arr) > window)
        json_array_remove(arr, 0);
}

void router__early_start(router_turn_t *t)
{
    router_agent_loop_t *al = t->al;
    if (al->opts.early_start == ROUTER_EARLY_OFF || t->early || t->steps > 0)
        return;
    const json_t *c_hist = NULL, *c_state = NULL;
    const char *c_agent = NULL;
    bool cached = router_convctx_get(al->convctx, t->req.conv, &c_hist, &c_state, &c_agent);
    if (!cached &&
        (al->opts.early_start != ROUTER_EARLY_ON || router_convctx_seen(al->convctx, t->req.conv)))
        return; /* known conversation whose context is not kept: wait for memory */
    json_t *cstate = cached ? json_incref((json_t *)c_state) : router__state_empty();
    json_t *history = cached ? json_copy((json_t *)c_hist) : json_array();
    json_t *args = NULL;
    const char *h = json_string_value(json_object_get(cstate, "handoff"));
    const char *by = NULL;
    const router_agent_t *ag = router__agent_pick(t->agents, cached ? c_agent : NULL, t->text,
                                                  t->requested_agent, al->opts.triage_llm, &by);
    if (!cstate || !history || !ag)
        goto cleanup; /* the model picks the agent first (no early call for that) */
    if (h && (strcmp(h, "pending") == 0 || strcmp(h, "human") == 0))
        goto cleanup; /* a person has it: no model call */
    if (json_array_append_new(history, json_pack("{s:s, s:s}", "role", "user", "text", t->text)) !=
        0)
        goto cleanup;
    keep_last(history, al->opts.history_window);
    args = router__llm_args(ag, mesh_text_lang(t->text), history, NULL, cstate, t->stream);
    router_early_t *e = args ? calloc(1, sizeof(*e)) : NULL;
    if (!e)
        goto cleanup;
    e->args = args;
    t->early = e;
    int rc =
        router__turn_submit(t, "llm", "llm.chat", json_incref(args), true, 0, early_cb, t, e->id);
    if (rc) {
        t->early = NULL;
        early_free(e); /* frees args */
    }
    args = NULL;
cleanup:
    json_decref(args);
    json_decref(history);
    json_decref(cstate);
}

/* Is m in memory's ctx list (memory_message_in_ctx: user messages and
 * assistant answers without tool calls)? */
static bool in_ctx(const json_t *m)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    if (!role)
        return false;
    if (strcmp(role, "user") == 0)
        return true;
    return strcmp(role, "assistant") == 0 && json_array_size(json_object_get(m, "tool_calls")) == 0;
}

void router__early_remember(router_turn_t *t)
{
    router_agent_loop_t *al = t->al;
    if (al->opts.early_start == ROUTER_EARLY_OFF)
        return;
    if (!t->history || !t->agent || !t->cstate) {
        router__early_forget(t);
        return;
    }
    json_t *h = json_array();
    size_t bytes = 0, i;
    json_t *m;
    json_array_foreach(t->history, i, m)
    {
        if (!h || json_array_append_new(h, router__llm_message(m)) != 0)
            goto forget;
        bytes += json_string_length(json_object_get(m, "text"));
    }
    json_array_foreach(t->turn_msgs, i, m)
    {
        if (!in_ctx(m))
            continue;
        if (json_array_append_new(h, router__llm_message(m)) != 0)
            goto forget;
        bytes += json_string_length(json_object_get(m, "text"));
    }
    keep_last(h, al->opts.history_window);
    if (bytes > ROUTER_CONVCTX_ENTRY_MAX) {
        router_convctx_erase(al->convctx, t->req.conv);
        router_convctx_mark_seen(al->convctx, t->req.conv);
        json_decref(h);
        return;
    }
    if (router_convctx_put(al->convctx, t->req.conv, h, t->cstate, t->agent->name) != 0)
        goto forget;
    json_decref(h);
    return;
forget:
    json_decref(h);
    router__early_forget(t);
}

void router__early_forget(router_turn_t *t)
{
    router_convctx_erase(t->al->convctx, t->req.conv);
    router_convctx_mark_seen(t->al->convctx, t->req.conv);
}
