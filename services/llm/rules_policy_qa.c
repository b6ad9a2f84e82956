/*
 * rules_policy_qa.c - the "policy_qa" digital worker of the rules backend.
 *
 * Decision, given the messages (oldest first):
 *  - last message is a tool result (one or more trailing "tool" messages):
 *    answer the last user message from the last policy.lookup result of that
 *    block (rules_policy_answer.c), or explain the lookup error;
 *  - otherwise (a user question): find a policy number in the question, else
 *    the most recent one in earlier user messages or successful
 *    policy.lookup results; if there is one and policy.lookup is offered, ask
 *    for it as a tool call; if there is none, ask the customer for it.
 *  - repeated failure to understand: a message that leaves no policy number
 *    (none in it nor earlier) after the engine has asked is a miss. The engine counts it with
 *    state.update {records: {misunderstood: n}} and asks again in the next
 *    step; the LLM_RULES_MISSES_MAX-th miss in a row also sets the handoff
 *    ("not_understood: ...") and the answer says a colleague takes over. A
 *    usable message after misses resets the count (a state.update in
 *    parallel with the lookup).
 * The reply language is call->lang.
 */
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_json.h"
#include "mesh/mesh_err.h"
#include "rules.h"

#define TOOL_LOOKUP       "policy.lookup"
#define TOOL_STATE_UPDATE "state.update"

typedef enum {
    LOOKUP_OK = 0,
    LOOKUP_NOT_FOUND,
    LOOKUP_BAD_ARGS,
    LOOKUP_FAILED,
} lookup_kind_t;

static bool is_zh(const llm_call_t *call)
{
    return strcmp(call->lang, "zh") == 0;
}

static bool is_lookup_msg(const llm_message_t *m)
{
    return m->role == LLM_ROLE_TOOL && (m->name == NULL || strcmp(m->name, TOOL_LOOKUP) == 0);
}

static bool tool_offered(const llm_call_t *call, const char *name)
{
    for (size_t i = 0; i < call->n_tools; i++) {
        if (strcmp(call->tools[i].name, name) == 0)
            return true;
    }
    return false;
}

static lookup_kind_t kind_of_code(const json_t *code)
{
    const char *c = json_is_string(code) ? json_string_value(code) : "";
    if (strcmp(c, "not_found") == 0)
        return LOOKUP_NOT_FOUND;
    if (strcmp(c, "invalid_tool_arguments") == 0)
        return LOOKUP_BAD_ARGS;
    return LOOKUP_FAILED;
}

/*
 * Parse a policy.lookup tool message. The router stores either the tool's
 * whole outcome ({ok, result} / {ok:false, error}) or just the result / the
 * error object with the message's "ok" flag; accept all of them. Returns the
 * parsed root (caller json_decref's; NULL when the text is not JSON) and, for
 * LOOKUP_OK, *policy borrowed from it.
 */
static json_t *lookup_parse(const llm_message_t *m, const json_t **policy, lookup_kind_t *kind)
{
    *policy = NULL;
    *kind = LOOKUP_FAILED;
    /* The text is a json_t string's (valid UTF-8): the fast parser applies. */
    json_t *root = mesh_json_parse(m->text, m->text_len);
    if (!json_is_object(root))
        return root;
    const json_t *ok = json_object_get(root, "ok");
    const json_t *error = json_object_get(root, "error");
    if (json_is_boolean(ok)) {
        if (json_is_true(ok)) {
            const json_t *res = json_object_get(root, "result");
            if (json_is_object(res)) {
                *policy = res;
                *kind = LOOKUP_OK;
            }
        } else {
            *kind = kind_of_code(json_object_get(error, "code"));
        }
    } else if (!m->ok) {
        const json_t *code = json_object_get(root, "code");
        *kind = kind_of_code(code != NULL ? code : json_object_get(error, "code"));
    } else if (json_is_object(error) && json_object_get(root, "policy_no") == NULL) {
        *kind = kind_of_code(json_object_get(error, "code"));
    } else {
        *policy = root;
        *kind = LOOKUP_OK;
    }
    return root;
}

/* The policy number of a successful lookup message, if any. */
static int lookup_policy_no(const llm_message_t *m, char out[LLM_POLICY_NO_LEN + 1])
{
    if (!is_lookup_msg(m) || !m->ok)
        return 0;
    const json_t *policy;
    lookup_kind_t kind;
    json_t *root = lookup_parse(m, &policy, &kind);
    int found = 0;
    if (kind == LOOKUP_OK) {
        const json_t *pno = json_object_get(policy, "policy_no");
        if (json_is_string(pno))
            found = llm_rules_find_policy_no(json_string_value(pno), json_string_length(pno), out);
    }
    json_decref(root);
    return found;
}

/* Index of the last user message before end, or -1. */
static long last_user_before(const llm_call_t *call, size_t end)
{
    for (size_t i = end; i > 0; i--) {
        if (call->messages[i - 1].role == LLM_ROLE_USER)
            return (long)(i - 1);
    }
    return -1;
}

/* The most recent policy number in messages[0..end): user text or a lookup result. */
static int history_policy_no(const llm_call_t *call, size_t end, char out[LLM_POLICY_NO_LEN + 1])
{
    for (size_t i = end; i > 0; i--) {
        const llm_message_t *m = &call->messages[i - 1];
        if (m->role == LLM_ROLE_USER && llm_rules_find_policy_no(m->text, m->text_len, out))
            return 1;
        if (m->role == LLM_ROLE_TOOL && lookup_policy_no(m, out))
            return 1;
    }
    return 0;
}

/* The most recent successful lookup of pno in the history (for when the tool is not offered). */
static json_t *history_lookup(const llm_call_t *call, const char *pno, const json_t **policy)
{
    for (size_t i = call->n_messages; i > 0; i--) {
        const llm_message_t *m = &call->messages[i - 1];
        char found[LLM_POLICY_NO_LEN + 1];
        if (!lookup_policy_no(m, found) || strcmp(found, pno) != 0)
            continue;
        lookup_kind_t kind;
        json_t *root = lookup_parse(m, policy, &kind);
        if (kind == LOOKUP_OK)
            return root;
        json_decref(root);
    }
    *policy = NULL;
    return NULL;
}

/* Tool calls made so far in the conversation, to number the next call deterministically. */
static int ask_for_policy_no(const llm_call_t *call, llm_rules_out_t *out)
{
    out->type = LLM_RESULT_TEXT;
    llm_buf_puts(&out->text, is_zh(call)
                                 ? "请提供您的保单号（例如 P10023），我来为您查询保障内容。"
                                 : "Please give me your policy number (for example P10023) and "
                                   "I will look up your cover.");
    return llm_buf_error(&out->text);
}

static int emit_lookup(const llm_call_t *call, const char *pno, llm_rules_out_t *out)
{
    return llm_rules_add_call(call, out, TOOL_LOOKUP, json_pack("{s:s}", "policy_no", pno));
}

/* The conversation is already waiting for (or held by) a person. */
static bool in_handoff(const llm_call_t *call)
{
    const char *h = json_string_value(json_object_get(call->state, "handoff"));
    return h != NULL && (strcmp(h, "pending") == 0 || strcmp(h, "human") == 0);
}

/*
 * A message without a policy number when none is known: nothing can be
 * looked up or answered. Count it (state.update records.misunderstood; the
 * third in a row also sets the handoff), then ask for the number again (step
 * 2, after the state.update result). Without state.update: just ask.
 */
static int note_miss(const llm_call_t *call, llm_rules_out_t *out)
{
    if (!tool_offered(call, TOOL_STATE_UPDATE) || in_handoff(call))
        return ask_for_policy_no(call, out);
    json_t *args = json_object();
    if (args == NULL)
        return MESH_ENOMEM;
    int rc = llm_rules_misses_note(
        call, false,
        is_zh(call) ? "连续 3 条消息中没有保单号，也没有可以回答的问题"
                    : "3 messages in a row without a policy number or a question I could answer",
        args);
    if (rc <= 0) { /* 0: the opening message, not counted */
        json_decref(args);
        return rc < 0 ? rc : ask_for_policy_no(call, out);
    }
    return llm_rules_add_call(call, out, TOOL_STATE_UPDATE, args);
}

/* A usable message after misses: reset the count, in parallel with the lookup. */
static int note_understood(const llm_call_t *call, llm_rules_out_t *out)
{
    if (!tool_offered(call, TOOL_STATE_UPDATE))
        return 0;
    json_t *args = json_object();
    if (args == NULL)
        return MESH_ENOMEM;
    int rc = llm_rules_misses_note(call, true, NULL, args);
    if (rc <= 0) {
        json_decref(args);
        return rc;
    }
    return llm_rules_add_call(call, out, TOOL_STATE_UPDATE, args);
}

static int handle_question(const llm_call_t *call, llm_rules_out_t *out)
{
    bool zh = is_zh(call);
    long q = last_user_before(call, call->n_messages);
    char pno[LLM_POLICY_NO_LEN + 1];
    int found = 0;
    if (q >= 0) {
        const llm_message_t *m = &call->messages[q];
        found = llm_rules_find_policy_no(m->text, m->text_len, pno);
    }
    if (!found)
        found = history_policy_no(call, q >= 0 ? (size_t)q : call->n_messages, pno);
    if (!found)
        return note_miss(call, out);
    if (tool_offered(call, TOOL_LOOKUP)) {
        int rc = emit_lookup(call, pno, out);
        return rc == 0 ? note_understood(call, out) : rc;
    }

    /* No lookup tool for this agent: answer from an earlier lookup if there is one. */
    out->type = LLM_RESULT_TEXT;
    const json_t *policy;
    json_t *root = history_lookup(call, pno, &policy);
    if (root != NULL) {
        const llm_message_t *m = &call->messages[q >= 0 ? (size_t)q : 0];
        int rc = llm_rules_policy_answer(policy, q >= 0 ? m->text : "", q >= 0 ? m->text_len : 0,
                                         zh, &out->text);
        json_decref(root);
        return rc;
    }
    llm_buf_printf(&out->text,
                   zh ? "抱歉，我暂时无法查询保单 %s 的信息，请稍后再试或联系人工客服。"
                      : "Sorry, I cannot look up policy %s right now. Please try again later or "
                        "ask for a human agent.",
                   pno);
    return llm_buf_error(&out->text);
}

/* The policy number the assistant asked to look up for tool_call_id, if it can be found. */
static int requested_policy_no(const llm_call_t *call, const llm_message_t *tool_msg,
                               char out[LLM_POLICY_NO_LEN + 1])
{
    if (tool_msg->tool_call_id == NULL)
        return 0;
    for (size_t i = call->n_messages; i > 0; i--) {
        const json_t *calls = call->messages[i - 1].tool_calls;
        size_t k;
        const json_t *c;
        json_array_foreach(calls, k, c)
        {
            const json_t *id = json_object_get(c, "id");
            if (!json_is_string(id) || strcmp(json_string_value(id), tool_msg->tool_call_id) != 0)
                continue;
            const json_t *args = json_object_get(c, "arguments");
            if (json_is_string(args)) /* OpenAI style: arguments as JSON text */
                return llm_rules_find_policy_no(json_string_value(args), json_string_length(args),
                                                out);
            const json_t *p = json_object_get(args, "policy_no");
            return json_is_string(p) &&
                   llm_rules_find_policy_no(json_string_value(p), json_string_length(p), out);
        }
    }
    return 0;
}

static int explain_lookup_error(const llm_call_t *call, const llm_message_t *tm, long q,
                                lookup_kind_t kind, llm_rules_out_t *out)
{
    bool zh = is_zh(call);
    char pno[LLM_POLICY_NO_LEN + 1] = "";
    if (!requested_policy_no(call, tm, pno) && q >= 0) {
        const llm_message_t *m = &call->messages[q];
        if (!llm_rules_find_policy_no(m->text, m->text_len, pno))
            pno[0] = '\0';
    }
    const char *sp = pno[0] ? " " : "";
    llm_buf_t *b = &out->text;
    switch (kind) {
    case LOOKUP_NOT_FOUND:
        llm_buf_printf(b,
                       zh ? "抱歉，没有找到保单号%s%s对应的保单，请核对保单号后重新提供。"
                          : "Sorry, I could not find policy%s%s. Please check the policy number "
                            "and send it again.",
                       sp, pno);
        break;
    case LOOKUP_BAD_ARGS:
        llm_buf_puts(b, zh ? "保单号格式不正确，保单号由字母 P 和 5 位数字组成（例如 P10023），"
                             "请核对后重新提供。"
                           : "That policy number is not valid: it is the letter P followed by 5 "
                             "digits (for example P10023). Please check it and send it again.");
        break;
    default:
        llm_buf_printf(b,
                       zh ? "抱歉，暂时无法查询保单%s%s的信息，请稍后再试。"
                          : "Sorry, I could not look up policy%s%s right now. Please try again "
                            "later.",
                       sp, pno);
        break;
    }
    return llm_buf_error(b);
}

static int answer_from_tools(const llm_call_t *call, llm_rules_out_t *out)
{
    size_t n = call->n_messages;
    size_t k = n;
    while (k > 0 && call->messages[k - 1].role == LLM_ROLE_TOOL)
        k--;
    long q = last_user_before(call, k);
    const char *qt = q >= 0 ? call->messages[q].text : "";
    size_t ql = q >= 0 ? call->messages[q].text_len : 0;

    const llm_message_t *tm = NULL;
    for (size_t i = n; i > k; i--) {
        if (is_lookup_msg(&call->messages[i - 1])) {
            tm = &call->messages[i - 1];
            break;
        }
    }
    out->type = LLM_RESULT_TEXT;
    if (tm == NULL) {
        llm_buf_puts(&out->text, is_zh(call)
                                     ? "抱歉，我只能根据保单查询结果回答保单相关的问题。"
                                     : "Sorry, I can only answer questions about a policy from "
                                       "its lookup result.");
        return llm_buf_error(&out->text);
    }
    const json_t *policy;
    lookup_kind_t kind;
    json_t *root = lookup_parse(tm, &policy, &kind);
    int rc;
    if (kind == LOOKUP_OK)
        rc = llm_rules_policy_answer(policy, qt, ql, is_zh(call), &out->text);
    else
        rc = explain_lookup_error(call, tm, q, kind, out);
    json_decref(root);
    return rc;
}

/* The customer asked for a person: record the handoff (the router's state.update). */
static int request_handoff(const llm_call_t *call, llm_rules_out_t *out)
{
    json_t *args = json_pack("{s:{s:s}}", "handoff", "reason",
                             is_zh(call) ? "customer_request: 客户要求转人工"
                                         : "customer_request: the customer asked for a person");
    return llm_rules_add_call(call, out, TOOL_STATE_UPDATE, args);
}

static int answer_handoff(const llm_call_t *call, const llm_message_t *tm, llm_rules_out_t *out)
{
    out->type = LLM_RESULT_TEXT;
    if (!tm->ok) {
        llm_buf_puts(&out->text, is_zh(call) ? "抱歉，暂时无法为您转接人工，请稍后再试。"
                                             : "Sorry, I could not reach a colleague just now. "
                                               "Please try again in a moment.");
        return llm_buf_error(&out->text);
    }
    llm_buf_puts(&out->text, is_zh(call)
                                 ? "好的，已为您转接人工客服，请稍候，同事会尽快在这里回复您。"
                                 : "Of course. I have asked a colleague to take over; they will "
                                   "answer you here shortly.");
    return llm_buf_error(&out->text);
}

typedef enum {
    UPDATE_COUNT = 0,      /* the miss count only */
    UPDATE_HANDOFF,        /* a handoff the customer asked for */
    UPDATE_NOT_UNDERSTOOD, /* the handoff of the third miss in a row */
} update_kind_t;

/* What the state.update call answered by tool message tm asked for. */
static update_kind_t update_kind(const llm_call_t *call, const llm_message_t *tm)
{
    for (size_t i = call->n_messages; i > 0; i--) {
        const json_t *calls = call->messages[i - 1].tool_calls;
        size_t k;
        const json_t *c;
        json_array_foreach(calls, k, c)
        {
            const json_t *id = json_object_get(c, "id");
            if (tm->tool_call_id != NULL &&
                (!json_is_string(id) || strcmp(json_string_value(id), tm->tool_call_id) != 0))
                continue;
            const json_t *name = json_object_get(c, "name");
            if (!json_is_string(name) || strcmp(json_string_value(name), TOOL_STATE_UPDATE) != 0)
                continue;
            const json_t *a = json_object_get(c, "arguments");
            json_t *parsed = NULL;
            if (json_is_string(a)) /* OpenAI style: arguments as JSON text */
                a = parsed = mesh_json_parse(json_string_value(a), json_string_length(a));
            const json_t *h = json_object_get(a, "handoff");
            const char *r = json_string_value(json_object_get(h, "reason"));
            const json_t *count = json_object_get(json_object_get(a, "records"), "misunderstood");
            update_kind_t kind = UPDATE_HANDOFF;
            if (h == NULL && count != NULL)
                kind = UPDATE_COUNT;
            else if (r != NULL && strncmp(r, "not_understood", 14) == 0)
                kind = UPDATE_NOT_UNDERSTOOD;
            json_decref(parsed);
            return kind;
        }
    }
    return UPDATE_HANDOFF; /* unknown call: as before the miss count existed */
}

/* After a state.update of a miss: ask again, or say a colleague takes over. */
static int answer_update(const llm_call_t *call, const llm_message_t *tm, llm_rules_out_t *out)
{
    update_kind_t kind = update_kind(call, tm);
    if (kind == UPDATE_HANDOFF)
        return answer_handoff(call, tm, out);
    if (kind == UPDATE_COUNT || !tm->ok)
        return ask_for_policy_no(call, out);
    out->type = LLM_RESULT_TEXT;
    llm_buf_puts(&out->text, is_zh(call)
                                 ? "抱歉，我没能理解您的需要。我已请人工同事接手，同事会尽快在这里"
                                   "回复您。"
                                 : "Sorry, I have not been able to understand what you need. I "
                                   "have asked a colleague to take over; they will answer you "
                                   "here shortly.");
    return llm_buf_error(&out->text);
}

int llm_rules_policy_qa(const llm_call_t *call, llm_rules_out_t *out)
{
    size_t n = call->n_messages;
    if (n > 0 && call->messages[n - 1].role == LLM_ROLE_TOOL) {
        /* a lookup in this step's results is answered; a lone state.update is a handoff or a
         * miss count */
        const llm_message_t *upd = NULL;
        for (size_t i = n; i > 0 && call->messages[i - 1].role == LLM_ROLE_TOOL; i--) {
            const llm_message_t *tm = &call->messages[i - 1];
            if (is_lookup_msg(tm))
                return answer_from_tools(call, out);
            if (upd == NULL && tm->name != NULL && strcmp(tm->name, TOOL_STATE_UPDATE) == 0)
                upd = tm;
        }
        if (upd != NULL)
            return answer_update(call, upd, out);
        return answer_from_tools(call, out);
    }
    if (n > 0 && call->messages[n - 1].role == LLM_ROLE_USER && !in_handoff(call) &&
        tool_offered(call, TOOL_STATE_UPDATE) &&
        llm_rules_wants_human(call->messages[n - 1].text, call->messages[n - 1].text_len))
        return request_handoff(call, out);
    return handle_question(call, out);
}
