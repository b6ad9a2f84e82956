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

/* All results are in: record the assistant's calls and the tool messages, then ask again. */
static void tools_done(router_turn_t *t)
{
    json_t *calls = json_array();
    json_t *amsg = json_pack("{s:s, s:s, s:s, s:o}", "role", "assistant", "text", "", "agent",
                             t->agent->name, "tool_calls", calls);
    if (!amsg || json_array_append_new(t->turn_msgs, amsg) != 0)
        goto nomem;
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
            goto nomem;
        }
        json_array_append_new(calls, call);
        json_array_append_new(t->turn_msgs, tmsg);
        json_array_append_new(t->tool_summary, sum);
    }
    router__turn_tools_cancel(t); /* nothing pending: frees the slots */
    router__turn_llm(t);
    return;
nomem:
    router__turn_fail(t, MESH_ENOMEM, NULL, true);
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
    if (t->slots_pending == 0)
        tools_done(t);
}

/* Authorise one call; either fill s->text with a refusal or send it. 0 or a send error. */
static int tool_start(router_turn_t *t, router_tool_slot_t *s)
{
    char err[SCHEMA_ERR_MAX];
    if (!router_agent_allows(t->agent, s->name)) {
        snprintf(err, sizeof(err), "tool %s is not allowed for agent %s", s->name, t->agent->name);
        router_metrics_tool_call(s->name, "tool_not_allowed", uv_hrtime());
        s->text = tool_error_text("tool_not_allowed", err);
        return s->text ? 0 : MESH_ENOMEM;
    }
    const router_tool_t *tool = router_agents_tool(t->agents, s->name);
    err[0] = '\0';
    if (!tool || mesh_schema_validate(tool->parameters, s->arguments, err, sizeof(err)) != 0) {
        router_metrics_tool_call(s->name, "invalid_tool_arguments", uv_hrtime());
        s->text = tool_error_text("invalid_tool_arguments", err[0] ? err : "invalid arguments");
        return s->text ? 0 : MESH_ENOMEM;
    }
    json_t *args = json_pack("{s:s, s:O, s:s}", "name", s->name, "arguments", s->arguments,
                             "call_id", s->call_id);
    s->pending = true;
    t->slots_pending++;
    s->start_ns = uv_hrtime();
    int rc = router__turn_submit(t, "tools", "tool.call", args, tool->idempotent, 0, tool_cb, s,
                                 s->req_id);
    if (rc) {
        s->pending = false;
        t->slots_pending--;
    }
    return rc;
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
    if (skip < n)
        router__turn_partial(t, s + skip, n - skip);
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
        char msg[MESH_ERRMSG_MAX + 64];
        snprintf(msg, sizeof(msg), "llm: %s", rep->err[0] ? rep->err : mesh_strerror(rep->status));
        router__turn_fail(t, rep->status, msg, true);
        return;
    }
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

void router__turn_llm(router_turn_t *t)
{
    const router_agent_t *ag = t->agent;
    t->steps++;
    t->stream_sent = 0;
    t->stream_attempt = 0;
    t->state = TURN_LLM;
    json_t *messages = json_array();
    if (!messages || json_array_extend(messages, t->history) != 0 ||
        json_array_extend(messages, t->turn_msgs) != 0) {
        json_decref(messages);
        router__turn_fail(t, MESH_ENOMEM, NULL, true);
        return;
    }
    json_t *args = json_pack("{s:s, s:s, s:o, s:s, s:o, s:O, s:b}", "agent", ag->name, "tier",
                             ag->tier, "system", prompt_json(ag, t->lang), "lang", t->lang,
                             "messages", messages, "tools", ag->llm_tools, "stream", t->stream);
    int rc = router__turn_submit(t, "llm", "llm.chat", args, true, 0, llm_cb, t, t->pending_id);
    if (rc)
        router__turn_fail(t, rc, "llm: request not sent", true);
}
