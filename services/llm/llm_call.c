/*
 * llm_call.c - "llm.chat" args -> llm_call_t, validating every key.
 *
 * The parsed call borrows every string from args (no copies on the hot
 * path); only the message and tool arrays are allocated, in one block.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_call.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_text.h"

static int fail(char *err, size_t err_size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t err_size, int rc, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/*
 * Fetch an optional string key. *out is NULL when absent. A name-like string
 * (nul_free) must not contain NUL bytes because it is used as a C string.
 * Returns 0, MESH_EPROTO (wrong type / NUL) or MESH_ETOOBIG (over max).
 */
static int get_str(const json_t *obj, const char *key, size_t max, int nul_free, const char **out,
                   size_t *len_out)
{
    *out = NULL;
    if (len_out != NULL)
        *len_out = 0;
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return MESH_EPROTO;
    size_t len = json_string_length(v);
    if (len > max)
        return MESH_ETOOBIG;
    const char *s = json_string_value(v);
    if (nul_free && strlen(s) != len)
        return MESH_EPROTO;
    *out = s;
    if (len_out != NULL)
        *len_out = len;
    return 0;
}

static const char *str_rc_reason(int rc)
{
    return rc == MESH_ETOOBIG ? "too long" : "must be a string";
}

static int parse_role(const char *s, llm_role_t *out)
{
    if (strcmp(s, "user") == 0)
        *out = LLM_ROLE_USER;
    else if (strcmp(s, "assistant") == 0)
        *out = LLM_ROLE_ASSISTANT;
    else if (strcmp(s, "tool") == 0)
        *out = LLM_ROLE_TOOL;
    else
        return MESH_EPROTO;
    return 0;
}

static int parse_message(const json_t *m, size_t i, llm_message_t *out, char *err, size_t es)
{
    if (!json_is_object(m))
        return fail(err, es, MESH_EPROTO, "args.messages[%zu]: must be a map", i);

    const char *role = NULL;
    int rc = get_str(m, "role", 16, 1, &role, NULL);
    if (rc != 0 || role == NULL || parse_role(role, &out->role) != 0)
        return fail(err, es, MESH_EPROTO,
                    "args.messages[%zu].role: required, one of user, assistant, tool", i);

    size_t max = out->role == LLM_ROLE_TOOL ? LLM_TOOL_TEXT_MAX : MESH_TEXT_MAX;
    rc = get_str(m, "text", max, 0, &out->text, &out->text_len);
    if (rc != 0)
        return fail(err, es, rc, "args.messages[%zu].text: %s", i, str_rc_reason(rc));
    if (out->text == NULL) {
        out->text = "";
        out->text_len = 0;
    }
    rc = get_str(m, "name", LLM_TOOL_NAME_MAX, 1, &out->name, NULL);
    if (rc != 0)
        return fail(err, es, rc, "args.messages[%zu].name: %s", i, str_rc_reason(rc));
    rc = get_str(m, "tool_call_id", LLM_CALL_ID_MAX, 1, &out->tool_call_id, NULL);
    if (rc != 0)
        return fail(err, es, rc, "args.messages[%zu].tool_call_id: %s", i, str_rc_reason(rc));

    const json_t *ok = json_object_get(m, "ok");
    if (ok != NULL && !json_is_null(ok) && !json_is_boolean(ok))
        return fail(err, es, MESH_EPROTO, "args.messages[%zu].ok: must be a bool", i);
    out->ok = ok == NULL || !json_is_false(ok);

    const json_t *tc = json_object_get(m, "tool_calls");
    if (tc != NULL && !json_is_null(tc)) {
        if (!json_is_array(tc))
            return fail(err, es, MESH_EPROTO, "args.messages[%zu].tool_calls: must be an array", i);
        if (json_array_size(tc) > LLM_TOOL_CALLS_MAX)
            return fail(err, es, MESH_ETOOBIG, "args.messages[%zu].tool_calls: more than %d", i,
                        LLM_TOOL_CALLS_MAX);
        out->tool_calls = tc;
    }
    return 0;
}

static int parse_tool(const json_t *t, size_t i, llm_tool_t *out, char *err, size_t es)
{
    if (!json_is_object(t))
        return fail(err, es, MESH_EPROTO, "args.tools[%zu]: must be a map", i);
    int rc = get_str(t, "name", LLM_TOOL_NAME_MAX, 1, &out->name, NULL);
    if (rc != 0 || out->name == NULL || out->name[0] == '\0')
        return fail(err, es, rc == MESH_ETOOBIG ? rc : MESH_EPROTO,
                    "args.tools[%zu].name: required, 1..%d bytes", i, LLM_TOOL_NAME_MAX);
    rc = get_str(t, "description", LLM_TOOL_DESC_MAX, 1, &out->description, NULL);
    if (rc != 0)
        return fail(err, es, rc, "args.tools[%zu].description: %s", i, str_rc_reason(rc));
    if (out->description == NULL)
        out->description = "";
    const json_t *p = json_object_get(t, "parameters");
    if (p != NULL && !json_is_null(p)) {
        if (!json_is_object(p))
            return fail(err, es, MESH_EPROTO, "args.tools[%zu].parameters: must be a map", i);
        out->parameters = p;
    }
    return 0;
}

/* lang when args carry none: the language of the last user message. */
static const char *detect_lang(const llm_message_t *msgs, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        if (msgs[i - 1].role == LLM_ROLE_USER) {
            /* mesh_text_lang wants a C string; user text with an embedded NUL is judged on
             * the part before it, which is good enough for a language guess. */
            return strcmp(mesh_text_lang(msgs[i - 1].text), "zh") == 0 ? "zh" : "en";
        }
    }
    return "en";
}

int llm_call_parse(const char *id, const json_t *args, uint64_t deadline, llm_parsed_t *out,
                   char *err, size_t es)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if (err != NULL && es > 0)
        err[0] = '\0';
    if (!json_is_object(args))
        return fail(err, es, MESH_EPROTO, "args: required, must be a map");

    llm_call_t *c = &out->call;
    c->id = id ? id : "";
    c->deadline = deadline;

    rc = get_str(args, "agent", LLM_AGENT_MAX, 1, &c->agent, NULL);
    if (rc != 0 || c->agent == NULL || c->agent[0] == '\0')
        return fail(err, es, rc == MESH_ETOOBIG ? rc : MESH_EPROTO,
                    "args.agent: required, 1..%d bytes", LLM_AGENT_MAX);
    rc = get_str(args, "tier", LLM_TIER_MAX, 1, &c->tier, NULL);
    if (rc != 0)
        return fail(err, es, rc, "args.tier: %s", str_rc_reason(rc));
    if (c->tier == NULL)
        c->tier = "";
    rc = get_str(args, "system", LLM_SYSTEM_MAX, 0, &c->system, &c->system_len);
    if (rc != 0)
        return fail(err, es, rc, "args.system: %s", str_rc_reason(rc));
    if (c->system == NULL)
        c->system = "";

    const char *lang = NULL;
    rc = get_str(args, "lang", 8, 1, &lang, NULL);
    if (rc != 0 || (lang != NULL && strcmp(lang, "zh") != 0 && strcmp(lang, "en") != 0))
        return fail(err, es, MESH_EPROTO, "args.lang: must be \"zh\" or \"en\"");

    const json_t *st = json_object_get(args, "stream");
    if (st != NULL && !json_is_null(st) && !json_is_boolean(st))
        return fail(err, es, MESH_EPROTO, "args.stream: must be a bool");
    c->stream = st != NULL && json_is_true(st);

    const json_t *msgs = json_object_get(args, "messages");
    if (!json_is_array(msgs))
        return fail(err, es, MESH_EPROTO, "args.messages: required, must be an array");
    size_t n_msgs = json_array_size(msgs);
    if (n_msgs > LLM_MESSAGES_MAX)
        return fail(err, es, MESH_ETOOBIG, "args.messages: more than %d", LLM_MESSAGES_MAX);

    const json_t *tools = json_object_get(args, "tools");
    size_t n_tools = 0;
    if (tools != NULL && !json_is_null(tools)) {
        if (!json_is_array(tools))
            return fail(err, es, MESH_EPROTO, "args.tools: must be an array");
        n_tools = json_array_size(tools);
        if (n_tools > LLM_TOOLS_MAX)
            return fail(err, es, MESH_ETOOBIG, "args.tools: more than %d", LLM_TOOLS_MAX);
    }

    /* One block for both arrays; calloc(0) may return NULL, so allocate at least one byte. */
    size_t bytes = n_msgs * sizeof(llm_message_t) + n_tools * sizeof(llm_tool_t);
    void *block = calloc(1, bytes ? bytes : 1);
    if (block == NULL)
        return fail(err, es, MESH_ENOMEM, "out of memory");
    out->messages = block;
    out->tools = (llm_tool_t *)((char *)block + n_msgs * sizeof(llm_message_t));

    for (size_t i = 0; i < n_msgs; i++) {
        rc = parse_message(json_array_get(msgs, i), i, &out->messages[i], err, es);
        if (rc != 0)
            goto fail;
    }
    for (size_t i = 0; i < n_tools; i++) {
        rc = parse_tool(json_array_get(tools, i), i, &out->tools[i], err, es);
        if (rc != 0)
            goto fail;
    }
    c->messages = out->messages;
    c->n_messages = n_msgs;
    c->tools = out->tools;
    c->n_tools = n_tools;
    c->lang = lang != NULL ? (lang[0] == 'z' ? "zh" : "en") : detect_lang(out->messages, n_msgs);

    const json_t *state = json_object_get(args, "state");
    if (state != NULL && !json_is_null(state)) {
        if (!json_is_object(state)) {
            rc = fail(err, es, MESH_EPROTO, "args.state: must be a map");
            goto fail;
        }
        c->state = state;
    } else {
        out->empty_state = json_object();
        if (out->empty_state == NULL) {
            rc = fail(err, es, MESH_ENOMEM, "out of memory");
            goto fail;
        }
        c->state = out->empty_state;
    }
    rc = get_str(args, "fallback", 16, 1, &c->fallback, NULL);
    if (rc != 0 || (c->fallback != NULL && strcmp(c->fallback, "rules") != 0 &&
                    strcmp(c->fallback, "handoff") != 0 && c->fallback[0] != '\0')) {
        rc = fail(err, es, MESH_EPROTO, "args.fallback: must be \"rules\", \"handoff\" or \"\"");
        goto fail;
    }
    if (c->fallback == NULL)
        c->fallback = "";
    rc = get_str(args, "response_format", 16, 1, &c->response_format, NULL);
    if (rc != 0 || (c->response_format != NULL && strcmp(c->response_format, "json") != 0 &&
                    strcmp(c->response_format, "text") != 0 && c->response_format[0] != '\0')) {
        rc = fail(err, es, MESH_EPROTO, "args.response_format: must be \"json\", \"text\" or \"\"");
        goto fail;
    }
    if (c->response_format == NULL || strcmp(c->response_format, "text") == 0)
        c->response_format = "";
    return 0;

fail:
    llm_call_clear(out);
    return rc;
}

void llm_call_clear(llm_parsed_t *p)
{
    if (p == NULL)
        return;
    free(p->messages); /* the tools array lives in the same block */
    json_decref(p->empty_state);
    memset(p, 0, sizeof(*p));
}
