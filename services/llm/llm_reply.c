/*
 * llm_reply.c - build the PARTIAL and FINAL data of llm.chat (llm_reply.h).
 */
#include "llm_reply.h"

json_t *llm_reply_delta(const char *text, size_t len)
{
    json_t *d = json_stringn(text, len);
    if (d == NULL)
        return NULL;
    json_t *o = json_object();
    if (o == NULL || json_object_set_new(o, "delta", d) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *calls_json(const llm_result_t *res)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < res->n_calls; i++) {
        const llm_tool_call_t *c = &res->calls[i];
        json_t *args = c->arguments != NULL ? json_deep_copy(c->arguments) : json_object();
        json_t *o = json_pack("{s:s, s:s, s:o}", "id", c->id, "name", c->name, "arguments", args);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *llm_reply_final(const llm_result_t *res, const char *backend, double cost_usd)
{
    json_t *o = NULL;
    if (res->type == LLM_RESULT_TEXT) {
        json_t *t = json_stringn(res->text ? res->text : "", res->text ? res->text_len : 0);
        o = json_pack("{s:s, s:o}", "type", "text", "text", t);
    } else {
        if (res->n_calls == 0 || res->calls == NULL)
            return NULL;
        o = json_pack("{s:s, s:o}", "type", "tool_calls", "calls", calls_json(res));
    }
    if (o == NULL)
        return NULL;
    json_t *usage = json_pack("{s:I, s:I, s:f}", "prompt_tokens",
                              (json_int_t)res->usage.prompt_tokens, "completion_tokens",
                              (json_int_t)res->usage.completion_tokens, "cost_usd", cost_usd);
    const char *model = res->model != NULL ? res->model : backend;
    if (json_object_set_new(o, "usage", usage) != 0 ||
        json_object_set_new(o, "backend", json_string(backend)) != 0 ||
        json_object_set_new(o, "model", json_string(model)) != 0) {
        json_decref(o);
        return NULL;
    }
    if (res->fallback_reason != NULL &&
        json_object_set_new(
            o, "fallback",
            json_pack("{s:s, s:s}", "backend", "rules", "reason", res->fallback_reason)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
