/*
 * agent_triage.c - which agent answers a turn (docs/router.md, "Triage").
 *
 * An existing conversation keeps its agent (or moves on a switch phrase); a
 * new one takes the requested agent, else - with MESH_TRIAGE=llm - asks the
 * model once (tier MESH_TRIAGE_TIER, no tools, JSON answer) to choose among
 * the agents' descriptions, else the keyword classifier, else
 * MESH_DEFAULT_AGENT. The model's answer counts only when it names a loaded
 * agent: null, invalid JSON, an unknown name, any error or the triage
 * timeout fall back to the keywords. How the agent was chosen goes in the
 * FINAL (triage.by) and in mesh_router_triage_total{by}.
 */
#include "agent_turn.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "router_metrics.h"

#define LOG_SUB "agent"

/* FINAL triage.by values. */
#define BY_LLM       "llm"
#define BY_KEYWORDS  "keywords"
#define BY_DEFAULT   "default"
#define BY_REQUESTED "requested"
#define BY_STATE     "state"
#define BY_SWITCH    "switch"

/* ---- the prompt ---- */

static const char s_head[] =
    "You are the triage step of an insurance customer service. Choose the digital worker "
    "(agent) that should answer the customer's first message.\n"
    "你是保险客服的分诊环节：为客户的第一条消息选择最合适的数字员工（agent）。\n\n"
    "Agents / 数字员工:\n";

static const char s_tail[] =
    "\nAnswer with one JSON object and nothing else: {\"agent\": \"<name>\"} with a name from "
    "the list, or {\"agent\": null} when you are unsure.\n"
    "只回答一个 JSON 对象，不要其他内容：{\"agent\": \"<名称>\"}（名称取自上面的列表）；"
    "不确定时回答 {\"agent\": null}。\n";

/* Bytes of s[0..n) cut to at most max, on a UTF-8 code point boundary. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* One description line "  <lang>: <text>\n" into b (nothing when absent). */
static void desc_line(mesh_jbuf_t *b, const json_t *desc, const char *lang)
{
    const json_t *v = json_object_get(desc, lang);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return;
    const char *s = json_string_value(v);
    size_t n = utf8_cut(s, json_string_length(v), ROUTER_TRIAGE_DESC_MAX);
    mesh_jbuf_raw(b, "  ", 2);
    mesh_jbuf_raw(b, lang, strlen(lang));
    mesh_jbuf_raw(b, ": ", 2);
    /* Descriptions come from the operator's agent files; newlines are kept
     * out so that every agent stays one block of the list. */
    for (size_t i = 0; i < n; i++)
        mesh_jbuf_raw(b, s[i] == '\n' || s[i] == '\r' ? " " : &s[i], 1);
    mesh_jbuf_raw(b, "\n", 1);
}

char *router_triage_prompt(const router_agents_t *a, size_t *listed)
{
    mesh_jbuf_t b = {0};
    mesh_jbuf_t entry = {0};
    size_t n_listed = 0;
    char *out = NULL;
    mesh_jbuf_raw(&b, s_head, sizeof(s_head) - 1);
    for (size_t i = 0; i < router_agents_count(a); i++) {
        const router_agent_t *ag = router_agents_at(a, i);
        const json_t *desc = json_object_get(ag->def, "description");
        mesh_jbuf_reset(&entry, ROUTER_TRIAGE_PROMPT_MAX);
        mesh_jbuf_raw(&entry, "- ", 2);
        mesh_jbuf_raw(&entry, ag->name, strlen(ag->name));
        mesh_jbuf_raw(&entry, "\n", 1);
        desc_line(&entry, desc, "zh");
        desc_line(&entry, desc, "en");
        if (entry.err || b.err)
            goto cleanup;
        if (b.len + entry.len + sizeof(s_tail) - 1 > ROUTER_TRIAGE_PROMPT_MAX)
            break; /* the rest are left out: the keywords can still pick them */
        mesh_jbuf_raw(&b, entry.data, entry.len);
        n_listed++;
    }
    mesh_jbuf_raw(&b, s_tail, sizeof(s_tail) - 1);
    if (listed)
        *listed = n_listed;
    int rc = 0;
    size_t len = 0;
    out = mesh_jbuf_finish(&b, &len, &rc);
cleanup:
    mesh_jbuf_free(&entry);
    mesh_jbuf_free(&b);
    return out;
}

/* ---- the answer ---- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

const router_agent_t *router_triage_parse(const router_agents_t *a, const char *text, size_t len,
                                          const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (!text) {
        *why = "no text";
        return NULL;
    }
    if (len > ROUTER_TRIAGE_ANSWER_MAX) {
        *why = "answer too long";
        return NULL;
    }
    const char *p = text, *e = text + len;
    while (p < e && is_space(*p))
        p++;
    while (e > p && is_space(e[-1]))
        e--;
    /* Models like to fence JSON: ```json\n{...}\n``` */
    if (e - p >= 6 && memcmp(p, "```", 3) == 0 && memcmp(e - 3, "```", 3) == 0) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        if (!nl || nl >= e - 3) {
            *why = "not a JSON object";
            return NULL;
        }
        p = nl + 1;
        e -= 3;
    }
    json_error_t je;
    json_t *doc = json_loadb(p, (size_t)(e - p), JSON_REJECT_DUPLICATES, &je);
    const router_agent_t *ag = NULL;
    if (!json_is_object(doc)) {
        *why = "not a JSON object";
        goto cleanup;
    }
    const json_t *name = json_object_get(doc, "agent");
    if (!name || json_is_null(name)) {
        *why = "agent null (the model is unsure)";
        goto cleanup;
    }
    if (!json_is_string(name) || json_string_length(name) > ROUTER_AGENT_NAME_MAX ||
        strlen(json_string_value(name)) != json_string_length(name)) {
        *why = "agent not a name";
        goto cleanup;
    }
    ag = router_agents_find(a, json_string_value(name));
    if (!ag)
        *why = "unknown agent";
cleanup:
    json_decref(doc);
    return ag;
}

/* ---- choosing ---- */

static void chosen(router_turn_t *t, const router_agent_t *ag, const char *by)
{
    t->agent = ag;
    t->triage_by = by;
    router_metrics_triage(by);
    mesh_log_debug(LOG_SUB, "conv %s message %s: agent %s by %s, lang %s, %zu history", t->req.conv,
                   t->message_id, ag->name, by, t->lang, json_array_size(t->history));
}

static const router_agent_t *pick_new(const router_agents_t *a, const char *text,
                                      const char *requested, const char **by);

/* A new conversation without the model: requested, keywords, default. */
static void choose_new(router_turn_t *t)
{
    const char *by = NULL;
    const router_agent_t *ag = pick_new(t->agents, t->text, t->requested_agent, &by);
    chosen(t, ag, by);
}

void router__turn_choose_gated(router_turn_t *t, const char *state_agent)
{
    const router_agent_t *ag = router_agents_find(t->agents, state_agent);
    if (ag)
        chosen(t, ag, BY_STATE);
    else
        choose_new(t);
}

/* The triage call's usage counts as the turn's, under agent "triage" in
 * the token metrics (t->agent is still unset). */
static void triage_usage(router_turn_t *t, const json_t *data)
{
    static const router_agent_t triage_pseudo = {.name = ROUTER_TRIAGE_AGENT};
    t->agent = &triage_pseudo;
    router__state_llm_usage(t, data);
    t->agent = NULL;
}

/* One log line: why, and the model's text (sanitised) when it was refused. */
static void triage_fallback(router_turn_t *t, const char *why, const json_t *text)
{
    char sample[4 * MESH_LOG_SAMPLE_MAX + 4] = "";
    if (text)
        mesh_log_sanitize(json_string_value(text), json_string_length(text), sample,
                          sizeof(sample));
    mesh_log_info(LOG_SUB, "conv %s message %s: llm triage gave no agent (%s)%s%s, keywords decide",
                  t->req.conv, t->message_id, why, text ? ": " : "", sample);
    choose_new(t);
    router__turn_llm(t);
}

static void triage_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg)
{
    router_turn_t *t = arg;
    if (kind != ROUTER_REPLY_FINAL)
        return; /* no stream asked; a retry starts over with nothing to undo */
    t->pending_id[0] = '\0';
    if (rep->status != 0) {
        triage_fallback(t, mesh_err_name(rep->status), NULL);
        return;
    }
    triage_usage(t, rep->data);
    const char *type = json_string_value(json_object_get(rep->data, "type"));
    const json_t *text = json_object_get(rep->data, "text");
    if (!type || strcmp(type, "text") != 0 || !json_is_string(text)) {
        triage_fallback(t, "not a text answer", NULL);
        return;
    }
    const char *why = NULL;
    const router_agent_t *ag =
        router_triage_parse(t->agents, json_string_value(text), json_string_length(text), &why);
    if (!ag) {
        triage_fallback(t, why, text);
        return;
    }
    chosen(t, ag, BY_LLM);
    router__turn_llm(t);
}

/* Ask the model; false when the request could not be sent (keywords then). */
static bool triage_llm(router_turn_t *t)
{
    const router_agent_loop_opts_t *o = &t->al->opts;
    uint64_t now = router__turn_now(t);
    if (now >= t->deadline)
        return false;
    /* Never more than half the turn: the agent's own steps need the rest. */
    uint64_t limit = o->triage_timeout_ms ? o->triage_timeout_ms : ROUTER_TRIAGE_TIMEOUT_MS_DEFAULT;
    uint64_t half = (t->deadline - now) / 2;
    if (half < limit)
        limit = half;
    if (limit == 0)
        return false;
    char *prompt = router_triage_prompt(t->agents, NULL);
    if (!prompt)
        return false;
    /* The customer's first message is the only message; no tools, no
     * state, no rules fallback (the keywords are the fallback). */
    json_t *args = json_pack(
        "{s:s, s:s, s:s, s:s, s:[{s:s, s:s}], s:[], s:b, s:{}, s:s, s:s}", "agent",
        ROUTER_TRIAGE_AGENT, "tier", o->triage_tier ? o->triage_tier : ROUTER_TRIAGE_TIER_DEFAULT,
        "system", prompt, "lang", t->lang, "messages", "role", "user", "text", t->text, "tools",
        "stream", 0, "state", "fallback", "", "response_format", "json");
    free(prompt);
    t->state = TURN_LLM; /* a cancel or the deadline cancels t->pending_id */
    int rc =
        router__turn_submit(t, "llm", "llm.chat", args, true, limit, triage_cb, t, t->pending_id);
    if (rc) {
        mesh_log_info(LOG_SUB, "conv %s: llm triage not sent: %s", t->req.conv, mesh_err_name(rc));
        return false;
    }
    /* router__turn_submit put the request's child span first in t->subs:
     * mark it, so the turn's timeline tells the triage call from the steps. */
    mesh_span_attr_str(&t->subs->span, "mesh.triage", "llm");
    return true;
}

/* A new conversation without the model: requested, keywords, default. */
static const router_agent_t *pick_new(const router_agents_t *a, const char *text,
                                      const char *requested, const char **by)
{
    const router_agent_t *ag = router_agents_find(a, requested);
    if (ag) {
        *by = BY_REQUESTED;
        return ag;
    }
    ag = router_agents_triage(a, text);
    if (ag) {
        *by = BY_KEYWORDS;
        return ag;
    }
    *by = BY_DEFAULT;
    return router_agents_default(a);
}

const router_agent_t *router__agent_pick(const router_agents_t *a, const char *state_agent,
                                         const char *text, const char *requested, bool triage_llm,
                                         const char **by)
{
    const router_agent_t *ag = router_agents_find(a, state_agent);
    if (ag) {
        /* A sticky agent (the trainer's role play quotes customers who "want
         * to file a claim") keeps its conversation whatever is said. */
        const router_agent_t *sw = ag->sticky ? NULL : router_agents_switch(a, text);
        if (sw && sw != ag) {
            *by = BY_SWITCH;
            return sw;
        }
        *by = BY_STATE;
        return ag;
    }
    if (triage_llm && !router_agents_find(a, requested)) {
        *by = BY_LLM;
        return NULL;
    }
    return pick_new(a, text, requested, by);
}

void router__turn_choose(router_turn_t *t, const char *state_agent)
{
    const char *by = NULL;
    const router_agent_t *ag = router__agent_pick(t->agents, state_agent, t->text,
                                                  t->requested_agent, t->al->opts.triage_llm, &by);
    if (ag) {
        chosen(t, ag, by);
    } else {
        if (triage_llm(t))
            return; /* triage_cb chooses and runs the first step */
        choose_new(t);
    }
    router__turn_llm(t);
}
