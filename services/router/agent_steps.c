/*
 * agent_steps.c - the model and tool steps of a turn.
 *
 * One step = one llm.chat with the history, this turn's assistant/tool
 * messages, the agent's prompt in the customer's language and the allowed
 * tools' schemas. A text answer ends the loop; tool calls are authorised
 * (allowlist, then argument schema) and the allowed ones run in parallel as
 * tool.call requests; when all results are in, the assistant message with
 * the calls and one tool message per call are appended and the next step
 * runs. The step budget is the agent's max_steps.
 */
#include "agent_turn.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_schema.h"
#include "router_metrics.h"

#define LOG_SUB        "agent"
#define SCHEMA_ERR_MAX 256

/* ---- tools ---- */

void router__turn_tools_cancel(router_turn_t *t)
{
    for (size_t i = 0; i < t->n_slots; i++) {
        router_tool_slot_t *s = &t->slots[i];
        if (s->pending && s->req_id[0])
            router_broker_cancel(t->al->broker, s->req_id);
        json_decref(s->text);
    }
    free(t->slots);
    t->slots = NULL;
    t->n_slots = 0;
    t->slots_pending = 0;
    json_decref(t->calls);
    t->calls = NULL;
}

static json_t *tool_error_text(const char *code, const char *message)
{
    json_t *e = json_pack("{s:s, s:s}", "code", code, "message", message);
    char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    json_t *v = s ? json_string(s) : NULL;
    free(s);
    return v;
}

/* Append the assistant's calls and one tool message per call (in call order)
 * to the turn's messages, then free the slots. 0 or MESH_ENOMEM. */
static int tools_record(router_turn_t *t)
{
    json_t *calls = json_array();
    json_t *amsg = json_pack("{s:s, s:s, s:s, s:o}", "role", "assistant", "text", "", "agent",
                             t->agent->name, "tool_calls", calls);
    if (!amsg || json_array_append_new(t->turn_msgs, amsg) != 0)
        return MESH_ENOMEM;
    for (size_t i = 0; i < t->n_slots; i++) {
        router_tool_slot_t *s = &t->slots[i];
        json_t *call = json_pack("{s:s, s:s, s:O}", "id", s->call_id, "name", s->name, "arguments",
                                 s->arguments);
        json_t *tmsg = json_pack("{s:s, s:s, s:s, s:b, s:O}", "role", "tool", "name", s->name,
                                 "tool_call_id", s->call_id, "ok", s->ok, "text", s->text);
        json_t *sum = json_pack("{s:s, s:b}", "name", s->name, "ok", s->ok);
        if (!call || !tmsg || !sum) {
            json_decref(call);
            json_decref(tmsg);
            json_decref(sum);
            return MESH_ENOMEM;
        }
        json_array_append_new(calls, call);
        json_array_append_new(t->turn_msgs, tmsg);
        json_array_append_new(t->tool_summary, sum);
    }
    router__turn_tools_cancel(t); /* nothing pending: frees the slots */
    return 0;
}

/* All results are in: record the calls and results, then ask again. */
static void tools_done(router_turn_t *t)
{
    if (tools_record(t) != 0) {
        router__turn_fail(t, MESH_ENOMEM, NULL, true);
        return;
    }
    router__turn_llm(t);
}

/* PARTIAL {tool: {name, call_id, phase, ok?}} to a streaming client. */
static void tool_partial(router_turn_t *t, const router_tool_slot_t *s, bool end)
{
    if (!t->stream)
        return;
    json_t *p = json_pack("{s:{s:s, s:s, s:s}}", "tool", "name", s->name, "call_id", s->call_id,
                          "phase", end ? "end" : "start");
    if (p && end)
        json_object_set_new(json_object_get(p, "tool"), "ok", json_boolean(s->ok));
    if (p)
        router__turn_partial_data(t, p);
    json_decref(p);
}

bool router__turn_interrupt(router_turn_t *t)
{
    if (t->state == TURN_TOOLS && t->slots) {
        /* Calls still running are cancelled and recorded as such, so the
         * stored assistant call message has a result for every call. */
        for (size_t i = 0; i < t->n_slots; i++) {
            router_tool_slot_t *s = &t->slots[i];
            if (s->pending && s->req_id[0])
                router_broker_cancel(t->al->broker, s->req_id);
            if (s->pending || !s->text) {
                s->pending = false;
                s->req_id[0] = '\0';
                s->ok = false;
                json_decref(s->text);
                s->text = tool_error_text("cancelled", "the client cancelled the turn");
            }
        }
        t->slots_pending = 0;
        if (tools_record(t) != 0)
            router__turn_tools_cancel(t);
    } else if (t->state == TURN_LLM && t->streamed_len > 0) {
        json_t *m = json_pack("{s:s, s:s%, s:s, s:b}", "role", "assistant", "text", t->streamed,
                              t->streamed_len, "agent", t->agent->name, "interrupted", 1);
        if (m)
            json_array_append_new(t->turn_msgs, m);
    }
    return json_array_size(t->turn_msgs) > 0 || t->slots_dirty || t->records_dirty ||
           t->mode_dirty || t->handoff_dirty;
}

/*
 * Count one finished tool call: "ok", the tool's error code (tools report
 * failures as data: {ok: false, error: {code}}), or the transport error name.
 */
static void tool_metrics(const router_tool_slot_t *s, const mesh_reply_t *rep)
{
    const char *status = "tool_failed";
    if (rep->status != 0) {
        status = mesh_err_name(rep->status);
    } else {
        const json_t *ok = json_object_get(rep->data, "ok");
        const json_t *code = json_object_get(json_object_get(rep->data, "error"), "code");
        if (json_is_true(ok))
            status = "ok";
        else if (json_is_string(code))
            status = json_string_value(code); /* bounded by the family's series limit */
    }
    router_metrics_tool_call(s->name, status, s->start_ns);
}

static void tool_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg)
{
    router_tool_slot_t *s = arg;
    router_turn_t *t = s->turn;
    if (kind != ROUTER_REPLY_FINAL)
        return;
    s->pending = false;
    s->req_id[0] = '\0';
    t->slots_pending--;
    tool_metrics(s, rep);
    if (rep->status != 0) {
        /* Transport failure (no worker, deadline, worker lost): the turn fails. */
        char msg[MESH_ERRMSG_MAX + 64];
        snprintf(msg, sizeof(msg), "tool %s: %s", s->name,
                 rep->err[0] ? rep->err : mesh_strerror(rep->status));
        router__turn_fail(t, rep->status, msg, true);
        return;
    }
    const json_t *ok = json_object_get(rep->data, "ok");
    if (json_is_boolean(ok)) {
        s->ok = json_is_true(ok);
        const json_t *payload = json_object_get(rep->data, s->ok ? "result" : "error");
        /* The JSON text goes into the loop's reusable buffer; it is valid
         * UTF-8 (written from json_t strings), so jansson need not check it. */
        mesh_jbuf_t *jb = &t->al->jbuf;
        if (mesh_json_write(jb, payload ? payload : json_null(), ROUTER_TOOL_REAL_PRECISION) == 0)
            s->text = json_stringn_nocheck(jb->data, jb->len);
        mesh_jbuf_reset(jb, ROUTER_JSON_KEEP_MAX);
    } else {
        s->ok = false;
        s->text = tool_error_text("tool_failed", "malformed reply from the tools service");
    }
    if (!s->text) {
        router__turn_fail(t, MESH_ENOMEM, NULL, true);
        return;
    }
    tool_partial(t, s, true);
    if (t->slots_pending == 0)
        tools_done(t);
}

/* Authorise one call; either fill s->text with a refusal or a local result,
 * or send it to the tool's service. 0 or a send error. */
static int tool_start(router_turn_t *t, router_tool_slot_t *s)
{
    char err[SCHEMA_ERR_MAX];
    tool_partial(t, s, false);
    if (!router_agent_allows(t->agent, s->name)) {
        snprintf(err, sizeof(err), "tool %s is not allowed for agent %s", s->name, t->agent->name);
        router_metrics_tool_call(s->name, "tool_not_allowed", uv_hrtime());
        s->text = tool_error_text("tool_not_allowed", err);
        goto local;
    }
    const router_tool_t *tool = router_agents_tool(t->agents, s->name);
    err[0] = '\0';
    if (!tool || mesh_schema_validate(tool->parameters, s->arguments, err, sizeof(err)) != 0) {
        router_metrics_tool_call(s->name, "invalid_tool_arguments", uv_hrtime());
        s->text = tool_error_text("invalid_tool_arguments", err[0] ? err : "invalid arguments");
        goto local;
    }
    if (tool->service == ROUTER_TOOL_SVC_ROUTER) {
        /* state.update runs here: no request (agents.c admits no other local tool). */
        uint64_t t0 = uv_hrtime();
        if (router__state_update(t, s->arguments, &s->ok, &s->text) != 0)
            return MESH_ENOMEM;
        router_metrics_tool_call(s->name, s->ok ? "ok" : "invalid_tool_arguments", t0);
        goto local;
    }
    json_t *args = json_pack("{s:s, s:O, s:s}", "name", s->name, "arguments", s->arguments,
                             "call_id", s->call_id);
    s->pending = true;
    t->slots_pending++;
    s->start_ns = uv_hrtime();
    int rc = router__turn_submit(t, tool->service_name, "tool.call", args, tool->idempotent, 0,
                                 tool_cb, s, s->req_id);
    if (rc) {
        s->pending = false;
        t->slots_pending--;
    }
    return rc;
local:
    if (!s->text)
        return MESH_ENOMEM;
    tool_partial(t, s, true);
    return 0;
}

/* 0 if calls is a well-formed array of 1..ROUTER_TOOL_CALLS_MAX {id, name, arguments}. */
static int calls_valid(json_t *calls)
{
    size_t n = json_array_size(calls);
    if (!json_is_array(calls) || n == 0 || n > ROUTER_TOOL_CALLS_MAX)
        return MESH_EPROTO;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(calls, i);
        const json_t *id = json_object_get(c, "id");
        const json_t *name = json_object_get(c, "name");
        json_t *args = json_object_get(c, "arguments");
        if (!json_is_object(c) || !json_is_string(id) || json_string_length(id) == 0 ||
            json_string_length(id) > MESH_ID_MAX || !json_is_string(name) ||
            json_string_length(name) == 0 || json_string_length(name) > ROUTER_TOOL_NAME_MAX)
            return MESH_EPROTO;
        if (!args && json_object_set_new(c, "arguments", json_object()) != 0)
            return MESH_ENOMEM;
        else if (args && !json_is_object(args))
            return MESH_EPROTO;
    }
    return 0;
}

static void steps_exhausted(router_turn_t *t)
{
    const char *fallback = router_agent_fallback(t->agent, t->lang);
    json_decref(t->final_data);
    t->final_data =
        json_pack("{s:s, s:s, s:s, s:s, s:b, s:O, s:i}", "conversation_id", t->req.conv,
                  "message_id", t->message_id, "agent", t->agent->name, "reply", fallback,
                  "duplicate", 0, "tool_calls", t->tool_summary, "steps", t->steps);
    router__turn_fail(t, MESH_ESTEPS, fallback, true);
}

static void run_tools(router_turn_t *t, json_t *calls)
{
    size_t n = json_array_size(calls);
    /* The assistant message, one tool message per call and the final answer
     * must still fit what memory records for one turn. */
    if (t->steps >= t->agent->max_steps ||
        json_array_size(t->turn_msgs) + 1 + n + 1 > ROUTER_TURN_MESSAGES_MAX) {
        steps_exhausted(t);
        return;
    }
    t->slots = calloc(n, sizeof(*t->slots));
    if (!t->slots) {
        router__turn_fail(t, MESH_ENOMEM, NULL, true);
        return;
    }
    t->calls = json_incref(calls);
    t->n_slots = n;
    t->state = TURN_TOOLS;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(calls, i);
        router_tool_slot_t *s = &t->slots[i];
        s->turn = t;
        s->call_id = json_string_value(json_object_get(c, "id"));
        s->name = json_string_value(json_object_get(c, "name"));
        s->arguments = json_object_get(c, "arguments");
    }
    for (size_t i = 0; i < n; i++) {
        int rc = tool_start(t, &t->slots[i]);
        if (rc) {
            router__turn_fail(t, rc, "tools: request not sent", true);
            return;
        }
    }
    if (t->slots_pending == 0)
        tools_done(t);
}

/* ---- model ---- */

/* Keep what the client got of this call (recorded if it cancels), at most
 * ROUTER_STREAMED_MAX bytes, cut on a UTF-8 boundary; the buffer grows by
 * doubling (most answers are short). */
static void keep_streamed(router_turn_t *t, const char *s, size_t n)
{
    if (t->streamed_len + n > ROUTER_STREAMED_MAX) {
        n = ROUTER_STREAMED_MAX - t->streamed_len;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    if (n == 0)
        return;
    if (t->streamed_len + n > t->streamed_cap) {
        size_t cap = t->streamed_cap ? t->streamed_cap : ROUTER_STREAMED_INITIAL;
        while (cap < t->streamed_len + n)
            cap *= 2;
        if (cap > ROUTER_STREAMED_MAX)
            cap = ROUTER_STREAMED_MAX;
        char *p = realloc(t->streamed, cap);
        if (!p)
            return; /* out of memory: a cancel then records less */
        t->streamed = p;
        t->streamed_cap = cap;
    }
    memcpy(t->streamed + t->streamed_len, s, n);
    t->streamed_len += n;
}

static void on_delta(router_turn_t *t, const json_t *data)
{
    const json_t *d = json_object_get(data, "delta");
    if (!t->stream || !json_is_string(d))
        return;
    const char *s = json_string_value(d);
    size_t n = json_string_length(d);
    size_t start = t->stream_attempt;
    t->stream_attempt += n;
    /* After a retry the model starts over: skip what the client already has. */
    if (t->stream_attempt <= t->stream_sent)
        return;
    size_t skip = start < t->stream_sent ? t->stream_sent - start : 0;
    while (skip < n && ((unsigned char)s[skip] & 0xC0) == 0x80)
        skip++;
    t->stream_sent = t->stream_attempt;
    if (skip < n) {
        keep_streamed(t, s + skip, n - skip);
        router__turn_partial(t, s + skip, n - skip);
    }
}

/*
 * The model is unusable (EUNAVAIL, ETIMEDOUT, EBUSY) and the agent's
 * fallback_mode is "handoff": hand the conversation to a person, answer with
 * the agent's fallback text and record the turn. True when it did.
 */
static bool fallback_handoff(router_turn_t *t, int status)
{
    if (strcmp(t->agent->fallback_mode, "handoff") != 0 ||
        (status != MESH_EUNAVAIL && status != MESH_ETIMEDOUT && status != MESH_EBUSY))
        return false;
    if (router__turn_now(t) >= t->deadline)
        return false; /* the turn's own deadline: no time left to record anything */
    char reason[64];
    snprintf(reason, sizeof(reason), "model unavailable: %s",
             status == MESH_EUNAVAIL ? "EUNAVAIL"
             : status == MESH_EBUSY  ? "EBUSY"
                                     : "ETIMEDOUT");
    json_decref(t->fallback);
    t->fallback = json_pack("{s:s, s:s}", "mode", "handoff", "reason", reason);
    json_t *text = json_string(router_agent_fallback(t->agent, t->lang));
    if (!t->fallback || !text || router__state_set_handoff(t, reason) != 0) {
        json_decref(text);
        router__turn_fail(t, MESH_ENOMEM, NULL, true);
        return true;
    }
    mesh_log_info(LOG_SUB, "conv %s message %s: %s, fallback handoff", t->req.conv, t->message_id,
                  reason);
    router__turn_complete(t, text);
    json_decref(text);
    return true;
}

static void llm_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg)
{
    router_turn_t *t = arg;
    if (kind == ROUTER_REPLY_PARTIAL) {
        on_delta(t, rep->data);
        return;
    }
    if (kind == ROUTER_REPLY_RETRY) {
        t->stream_attempt = 0;
        return;
    }
    t->pending_id[0] = '\0';
    if (rep->status != 0) {
        if (fallback_handoff(t, rep->status))
            return;
        char msg[MESH_ERRMSG_MAX + 64];
        snprintf(msg, sizeof(msg), "llm: %s", rep->err[0] ? rep->err : mesh_strerror(rep->status));
        router__turn_fail(t, rep->status, msg, true);
        return;
    }
    router__state_llm_usage(t, rep->data);
    const char *type = json_string_value(json_object_get(rep->data, "type"));
    if (type && strcmp(type, "text") == 0) {
        json_t *text = json_object_get(rep->data, "text");
        if (!json_is_string(text)) {
            router__turn_fail(t, MESH_EPROTO, "llm: text reply without text", true);
            return;
        }
        router__turn_complete(t, text);
        return;
    }
    if (type && strcmp(type, "tool_calls") == 0) {
        json_t *calls = json_object_get(rep->data, "calls");
        int rc = calls_valid(calls);
        if (rc) {
            router__turn_fail(t, rc, "llm: malformed tool calls", true);
            return;
        }
        run_tools(t, calls);
        return;
    }
    router__turn_fail(t, MESH_EPROTO, "llm: unknown reply type", true);
}

/*
 * The agent's prompt in lang as a json string: the agent file's own string
 * (a reference, no copy: a prompt is a kilobyte or two, sent at every step)
 * when the agent's prompt points into it, else a copy.
 */
static json_t *prompt_json(const router_agent_t *ag, const char *lang)
{
    const char *prompt = router_agent_prompt(ag, lang);
    json_t *own = json_object_get(json_object_get(ag->def, "prompt"), lang);
    if (json_is_string(own) && json_string_value(own) == prompt)
        return json_incref(own);
    return json_string(prompt);
}

json_t *router__llm_message(const json_t *m)
{
    static const char *const keys[] = {"role", "text", "name", "tool_call_id", "ok", "tool_calls"};
    json_t *out = json_object();
    for (size_t i = 0; out && i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(m, keys[i]);
        if (v && json_object_set(out, keys[i], v) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* Append each message of src, projected, to dst. 0 or MESH_ENOMEM. */
static int append_projected(json_t *dst, const json_t *src)
{
    size_t i;
    json_t *m;
    json_array_foreach(src, i, m)
    {
        if (json_array_append_new(dst, router__llm_message(m)) != 0)
            return MESH_ENOMEM;
    }
    return 0;
}

json_t *router__llm_args(const router_agent_t *ag, const char *lang, const json_t *history,
                         const json_t *turn_msgs, const json_t *cstate, bool stream)
{
    json_t *messages = json_array();
    if (!messages || append_projected(messages, history) != 0 ||
        append_projected(messages, turn_msgs) != 0) {
        json_decref(messages);
        return NULL;
    }
    /* The state as of this step (state.updates of earlier steps included):
     * a copy, since later steps change the turn's. */
    json_t *state = json_deep_copy(cstate);
    return json_pack("{s:s, s:s, s:o, s:s, s:o, s:O, s:b, s:o, s:s, s:s}", "agent", ag->name,
                     "tier", ag->tier, "system", prompt_json(ag, lang), "lang", lang, "messages",
                     messages, "tools", ag->llm_tools, "stream", stream, "state", state, "fallback",
                     ag->fallback_mode, "response_format", ag->response_format);
}

void router__turn_llm(router_turn_t *t)
{
    const router_agent_t *ag = t->agent;
    t->steps++;
    t->stream_sent = 0;
    t->stream_attempt = 0;
    t->streamed_len = 0;
    t->state = TURN_LLM;
    json_t *args = router__llm_args(ag, t->lang, t->history, t->turn_msgs, t->cstate, t->stream);
    if (!args) {
        router__turn_fail(t, MESH_ENOMEM, NULL, true);
        return;
    }
    /* The first step may have been asked already (early start): adopted
     * only when it was asked exactly this. */
    if (t->steps == 1 && router__early_claim(t, args, llm_cb, t))
        return;
    int rc = router__turn_submit(t, "llm", "llm.chat", args, true, 0, llm_cb, t, t->pending_id);
    if (rc)
        router__turn_fail(t, rc, "llm: request not sent", true);
}
