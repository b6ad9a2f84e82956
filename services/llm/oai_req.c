/*
 * oai_req.c - build the Chat Completions request body (oai_req.h).
 */
#include "oai_req.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm_buf.h"
#include "mesh/mesh_json.h"
#include "mesh/mesh_text.h"

#define FACTS_HEAD                                                                                 \
    "Known facts about this conversation (collected in earlier turns; do not ask the customer "    \
    "for them again):\n"
#define FACTS_PRECISION 17 /* json_dumps' default precision of reals */

/* Length of the valid UTF-8 sequence at s[0..n), 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t want = s[0] < 0x80             ? 1
                  : (s[0] & 0xE0) == 0xC0 ? 2
                  : (s[0] & 0xF0) == 0xE0 ? 3
                  : (s[0] & 0xF8) == 0xF0 ? 4
                                          : 0;
    if (want == 0 || want > n)
        return 0;
    return mesh_utf8_valid((const char *)s, want) ? want : 0;
}

char *llm_oai_utf8_repair(const char *s, size_t n, size_t *len)
{
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(n * 3 + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        }
    }
    *len = o;
    return out;
}

/* A JSON string of s[0..n), invalid UTF-8 replaced by U+FFFD. */
static json_t *str_json(const char *s, size_t n)
{
    if (mesh_utf8_valid(s, n))
        return json_stringn(s, n);
    size_t o = 0;
    char *out = llm_oai_utf8_repair(s, n, &o);
    if (out == NULL)
        return NULL;
    json_t *j = json_stringn(out, o);
    free(out);
    return j;
}

void llm_oai_name_out(const char *name, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = name; *p && o + 1 < size; p++) {
        if (*p == '.') {
            if (o + 2 >= size)
                break;
            out[o++] = '_';
            out[o++] = '_';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

void llm_oai_name_in(const char *name, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = name; *p && o + 1 < size; p++) {
        if (p[0] == '_' && p[1] == '_') {
            out[o++] = '.';
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static int add_msg(json_t *msgs, const char *role, json_t *content)
{
    json_t *m = json_pack("{s:s, s:o}", "role", role, "content", content ? content : json_null());
    return m != NULL && json_array_append_new(msgs, m) == 0 ? 0 : -1;
}

/* Append a compact dump of v after label, if it fits in LLM_OAI_FACTS_MAX. */
static void facts_add(llm_buf_t *b, mesh_jbuf_t *tmp, size_t *n, const char *label, const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return;
    if ((json_is_object(v) && json_object_size(v) == 0) ||
        (json_is_string(v) && json_string_length(v) == 0))
        return;
    /* mesh_jbuf writes what json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) would. */
    if (mesh_json_write(tmp, v, FACTS_PRECISION) != 0)
        return;
    size_t len = tmp->len;
    if (b->len + strlen(label) + len + 2 <= LLM_OAI_FACTS_MAX) {
        llm_buf_puts(b, label);
        llm_buf_append(b, tmp->data, len);
        llm_buf_puts(b, "\n");
        (*n)++;
    }
}

/* Whether state holds something facts_add would write (the common "nothing" case
 * then costs no allocation). */
static bool facts_any(const json_t *state)
{
    static const char *const keys[] = {"slots", "mode", "records"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const json_t *v = json_object_get(state, keys[i]);
        if (v == NULL || json_is_null(v))
            continue;
        if ((json_is_object(v) && json_object_size(v) == 0) ||
            (json_is_string(v) && json_string_length(v) == 0))
            continue;
        return true;
    }
    return false;
}

char *llm_oai_req_facts(const json_t *state)
{
    if (!json_is_object(state) || !facts_any(state))
        return NULL;
    /* LLM_OAI_FACTS_MAX < LLM_BUF_MAX: facts_add leaves out a part that would not fit. */
    llm_buf_t b;
    llm_buf_init(&b);
    mesh_jbuf_t tmp = {0};
    size_t n = 0;
    llm_buf_puts(&b, FACTS_HEAD);
    facts_add(&b, &tmp, &n, "slots: ", json_object_get(state, "slots"));
    facts_add(&b, &tmp, &n, "mode: ", json_object_get(state, "mode"));
    facts_add(&b, &tmp, &n, "records: ", json_object_get(state, "records"));
    mesh_jbuf_free(&tmp);
    char *out = NULL;
    if (n > 0 && llm_buf_error(&b) == 0)
        out = strdup(llm_buf_str(&b));
    llm_buf_free(&b);
    return out;
}

static json_t *tool_calls_json(const json_t *calls)
{
    json_t *arr = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        const json_t *args = json_object_get(c, "arguments");
        /* No arguments: "{}" (a json_object() made here for the dump would leak). */
        char *text = json_is_string(args) ? strdup(json_string_value(args))
                     : args != NULL       ? json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY)
                                          : strdup("{}");
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *name = json_string_value(json_object_get(c, "name"));
        char mapped[LLM_OAI_NAME_MAX + 1];
        llm_oai_name_out(name ? name : "", mapped, sizeof(mapped));
        json_t *o = text ? json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id ? id : "", "type",
                                     "function", "function", "name", mapped, "arguments", text)
                         : NULL;
        free(text);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static int add_history(json_t *msgs, const llm_call_t *call)
{
    for (size_t i = 0; i < call->n_messages; i++) {
        const llm_message_t *m = &call->messages[i];
        json_t *text = str_json(m->text, m->text_len);
        if (text == NULL)
            return -1;
        json_t *o = NULL;
        switch (m->role) {
        case LLM_ROLE_USER:
            o = json_pack("{s:s, s:o}", "role", "user", "content", text);
            break;
        case LLM_ROLE_ASSISTANT:
            if (m->tool_calls != NULL && json_array_size(m->tool_calls) > 0) {
                json_t *tc = tool_calls_json(m->tool_calls);
                if (m->text_len == 0) {
                    json_decref(text);
                    text = json_null();
                }
                o = json_pack("{s:s, s:o, s:o}", "role", "assistant", "content", text, "tool_calls",
                              tc);
            } else {
                o = json_pack("{s:s, s:o}", "role", "assistant", "content", text);
            }
            break;
        case LLM_ROLE_TOOL:
            o = json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id",
                          m->tool_call_id ? m->tool_call_id : "", "content", text);
            break;
        default:
            json_decref(text);
            continue;
        }
        if (o == NULL || json_array_append_new(msgs, o) != 0)
            return -1;
    }
    return 0;
}

static json_t *tools_json(const llm_call_t *call)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < call->n_tools; i++) {
        const llm_tool_t *t = &call->tools[i];
        json_t *params = t->parameters ? json_deep_copy(t->parameters)
                                       : json_pack("{s:s, s:{}}", "type", "object", "properties");
        char mapped[LLM_OAI_NAME_MAX + 1];
        llm_oai_name_out(t->name, mapped, sizeof(mapped));
        json_t *o =
            json_pack("{s:s, s:{s:s, s:s, s:o}}", "type", "function", "function", "name", mapped,
                      "description", t->description ? t->description : "", "parameters", params);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *llm_oai_req_json(const llm_call_t *call, const llm_oai_req_opts_t *o)
{
    json_t *body = json_object();
    json_t *msgs = json_array();
    if (body == NULL || msgs == NULL || json_object_set_new(body, "model", json_string(o->model)))
        goto fail;
    if (json_object_set_new(body, "messages", msgs) != 0) {
        msgs = NULL;
        goto fail;
    }
    if (call->system_len > 0 && add_msg(msgs, "system", str_json(call->system, call->system_len)))
        goto fail;
    char *facts = llm_oai_req_facts(call->state);
    if (facts != NULL) {
        int rc = add_msg(msgs, "system", json_string(facts));
        free(facts);
        if (rc != 0)
            goto fail;
    }
    if (add_history(msgs, call) != 0)
        goto fail;
    if (call->n_tools > 0) {
        if (json_object_set_new(body, "tools", tools_json(call)) != 0 ||
            json_object_set_new(body, "tool_choice", json_string("auto")) != 0)
            goto fail;
    }
    if (json_object_set_new(body, "stream", json_true()) != 0 ||
        json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1)) != 0)
        goto fail;
    if (o->max_completion_tokens > 0 &&
        json_object_set_new(body, "max_completion_tokens",
                            json_integer(o->max_completion_tokens)) != 0)
        goto fail;
    if (o->temperature >= 0 &&
        json_object_set_new(body, "temperature", json_real(o->temperature)) != 0)
        goto fail;
    if (call->response_format != NULL && strcmp(call->response_format, "json") == 0 &&
        json_object_set_new(body, "response_format", json_pack("{s:s}", "type", "json_object")))
        goto fail;
    return body;
fail:
    json_decref(body);
    return NULL;
}

char *llm_oai_req_build(const llm_call_t *call, const llm_oai_req_opts_t *o)
{
    json_t *b = llm_oai_req_json(call, o);
    if (b == NULL)
        return NULL;
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}
