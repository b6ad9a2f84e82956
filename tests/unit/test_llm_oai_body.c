/*
 * test_llm_oai_body.c - the one-pass request body writer of the openai
 * backend (services/llm/oai_body.c): byte for byte what the json_t builder
 * (llm_oai_req_build) makes, over every message shape and option; and its
 * tools cache, which must serve a tool set only for exactly the same tools
 * (never another agent's, a changed schema, reordered keys, 1 vs 1.0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "llm_backend.h"
#include "oai_body.h"
#include "oai_req.h"

/* The writer's body for call equals llm_oai_req_build's; returns the hits so far. */
static size_t check_same(llm_oai_body_t *w, const llm_call_t *call, const llm_oai_req_opts_t *o)
{
    char *ref = llm_oai_req_build(call, o);
    assert_non_null(ref);
    const char *body = NULL;
    size_t len = 0;
    assert_int_equal(llm_oai_body_write(w, call, o, &body, &len), 0);
    assert_int_equal(strlen(body), len);
    assert_string_equal(body, ref);
    free(ref);
    size_t hits, misses;
    llm_oai_body_cache_stats(w, &hits, &misses);
    return hits;
}

static const llm_oai_req_opts_t OPTS = {
    .model = "qwen2.5-7b", .max_completion_tokens = 512, .temperature = 0.2};

static void test_same_bytes_as_builder(void **state)
{
    (void)state;
    llm_oai_body_t *w = llm_oai_body_new();
    assert_non_null(w);
    json_t *params = json_pack("{s:s, s:{s:{s:s, s:[s,s]}, s:{s:s, s:f, s:I}}, s:[s]}", "type",
                               "object", "properties", "policy_no", "type", "string", "enum", "a",
                               "b\"\\\n\x01", "amount", "type", "number", "maximum", 1e300,
                               "minimum", (json_int_t)-5, "required", "policy_no");
    llm_tool_t tools[2] = {{"policy.lookup", "Look a \"policy\" up\n", params},
                           {"state.update", "", NULL}};
    json_t *tc =
        json_pack("[{s:s, s:s, s:{s:s, s:f}}, {s:s, s:s, s:s}, {s:s}, i]", "id", "call_1", "name",
                  "policy.lookup", "arguments", "policy_no", "P1", "x", 0.1, "id", "call_2", "name",
                  "a.b.c", "arguments", "{\"raw\":1}", "id", "call_3", 7);
    static const char bad_utf8[] = "caf\xC3 \xFF ok \xE4\xBD";
    static const char with_nul[] = "a\0b";
    llm_message_t msgs[6] = {
        {.role = LLM_ROLE_USER, .text = "保单 P10023 免赔额?", .text_len = 0},
        {.role = LLM_ROLE_ASSISTANT, .text = "", .text_len = 0, .tool_calls = tc},
        {.role = LLM_ROLE_TOOL, .text = "{\"ok\":true}", .text_len = 11, .tool_call_id = "call_1"},
        {.role = LLM_ROLE_USER, .text = bad_utf8, .text_len = sizeof(bad_utf8) - 1},
        {.role = LLM_ROLE_ASSISTANT, .text = with_nul, .text_len = 3},
        {.role = LLM_ROLE_TOOL, .text = "x", .text_len = 1, .tool_call_id = NULL},
    };
    msgs[0].text_len = strlen(msgs[0].text);
    json_t *st = json_pack("{s:{s:s, s:f}, s:s, s:{s:[i]}}", "slots", "policy_no", "P10023", "r",
                           2.5, "mode", "batch", "records", "claims", 1);
    json_t *empty = json_object();
    llm_call_t call = {.agent = "policy_qa",
                       .tier = "small",
                       .system = "You are a bot.\n\t\"quoted\" \\ </script> 中文",
                       .lang = "zh",
                       .messages = msgs,
                       .n_messages = 6,
                       .tools = tools,
                       .n_tools = 2,
                       .state = st,
                       .fallback = "rules",
                       .response_format = "json"};
    call.system_len = strlen(call.system);

    check_same(w, &call, &OPTS);
    /* Options and optional parts left out, one at a time. */
    llm_oai_req_opts_t o2 = {.model = "m", .max_completion_tokens = 0, .temperature = -1};
    check_same(w, &call, &o2);
    llm_oai_req_opts_t o3 = {.model = "m", .max_completion_tokens = 1, .temperature = 1e-5};
    check_same(w, &call, &o3);
    llm_oai_req_opts_t o4 = {.model = "m", .max_completion_tokens = 1, .temperature = 2};
    check_same(w, &call, &o4);
    call.response_format = "text";
    check_same(w, &call, &OPTS);
    call.response_format = NULL;
    call.state = empty;
    check_same(w, &call, &OPTS);
    call.system_len = 0;
    check_same(w, &call, &OPTS); /* first message is the user's */
    call.n_tools = 0;
    check_same(w, &call, &OPTS);
    call.n_messages = 0;
    check_same(w, &call, &OPTS); /* "messages":[] */
    call.state = st;
    check_same(w, &call, &OPTS); /* only the facts */
    call.system = bad_utf8;      /* the prompt is replaced the same way as history */
    call.system_len = sizeof(bad_utf8) - 1;
    check_same(w, &call, &OPTS);

    /* A mapped tool name that is not UTF-8 fails both ways. */
    llm_tool_t bad_tool = {"x\xFF", "", NULL};
    call.tools = &bad_tool;
    call.n_tools = 1;
    assert_null(llm_oai_req_build(&call, &OPTS));
    const char *body;
    size_t len;
    assert_int_not_equal(llm_oai_body_write(w, &call, &OPTS, &body, &len), 0);

    json_decref(params);
    json_decref(tc);
    json_decref(st);
    json_decref(empty);
    llm_oai_body_destroy(&w);
    assert_null(w);
}

/* The call of an agent with the given tools: one user message, no state. */
static llm_call_t agent_call(const llm_tool_t *tools, size_t n, const json_t *state,
                             const llm_message_t *msg)
{
    llm_call_t c = {.agent = "a",
                    .tier = "small",
                    .system = "sys",
                    .system_len = 3,
                    .lang = "en",
                    .messages = msg,
                    .n_messages = 1,
                    .tools = tools,
                    .n_tools = n,
                    .state = state,
                    .fallback = ""};
    return c;
}

static void test_tools_cache_exact(void **state)
{
    (void)state;
    llm_oai_body_t *w = llm_oai_body_new();
    json_t *empty = json_object();
    llm_message_t msg = {.role = LLM_ROLE_USER, .text = "hi", .text_len = 2};

    /* Tools as a request carries them: built from JSON text, freed after the call. */
    static const char *const sets[] = {
        "[{\"name\":\"policy.lookup\",\"description\":\"d\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}}}}"
        "]",
        /* one enum value differs */
        "[{\"name\":\"policy.lookup\",\"description\":\"d\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"string\",\"enum\":[\"a\",\"c\"]}}}}"
        "]",
        /* the same keys in another order (other bytes on the wire) */
        "[{\"name\":\"policy.lookup\",\"description\":\"d\",\"parameters\":"
        "{\"properties\":{\"n\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}},\"type\":\"object\"}}"
        "]",
        /* another description */
        "[{\"name\":\"policy.lookup\",\"description\":\"e\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}}}}"
        "]",
        /* another name */
        "[{\"name\":\"policy.lookup2\",\"description\":\"d\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}}}}"
        "]",
        /* no parameters */
        "[{\"name\":\"policy.lookup\",\"description\":\"d\"}]",
        /* 1 vs 1.0 vs -0.0 vs 0.0 */
        "[{\"name\":\"t\",\"parameters\":{\"maximum\":1}}]",
        "[{\"name\":\"t\",\"parameters\":{\"maximum\":1.0}}]",
        "[{\"name\":\"t\",\"parameters\":{\"maximum\":0.0}}]",
        "[{\"name\":\"t\",\"parameters\":{\"maximum\":-0.0}}]",
        /* an extra tool */
        "[{\"name\":\"t\",\"parameters\":{\"maximum\":1}},{\"name\":\"u\"}]",
        /* null vs false vs absent key */
        "[{\"name\":\"t\",\"parameters\":{\"x\":null}}]",
        "[{\"name\":\"t\",\"parameters\":{\"x\":false}}]",
        "[{\"name\":\"t\",\"parameters\":{\"y\":false}}]",
    };
    size_t n_sets = sizeof(sets) / sizeof(sets[0]);
    /* One writer for all: each set is new (the cache holds the earlier, similar
     * ones) and must miss; the same set again, from a fresh request whose
     * predecessor was freed, must hit and give the same bytes. */
    for (size_t i = 0; i < n_sets; i++) {
        for (int rep = 0; rep < 2; rep++) {
            json_t *arr = json_loads(sets[i], 0, NULL);
            assert_non_null(arr);
            llm_tool_t tools[2];
            size_t n = json_array_size(arr);
            for (size_t k = 0; k < n; k++) {
                json_t *t = json_array_get(arr, k);
                const char *d = json_string_value(json_object_get(t, "description"));
                tools[k].name = json_string_value(json_object_get(t, "name"));
                tools[k].description = d ? d : "";
                tools[k].parameters = json_object_get(t, "parameters");
            }
            llm_call_t call = agent_call(tools, n, empty, &msg);
            size_t h0, m0, h1, m1;
            llm_oai_body_cache_stats(w, &h0, &m0);
            check_same(w, &call, &OPTS);
            llm_oai_body_cache_stats(w, &h1, &m1);
            if (rep == 0) { /* never served another set's text */
                assert_int_equal(h1, h0);
                assert_int_equal(m1, m0 + 1);
            } else {
                assert_int_equal(h1, h0 + 1);
                assert_int_equal(m1, m0);
            }
            json_decref(arr); /* the cache must not point into a freed request */
        }
    }
    json_decref(empty);
    llm_oai_body_destroy(&w);
}

/* Several agents taking turns: each gets its own tools back, never another's. */
static void test_tools_cache_agents_interleaved(void **state)
{
    (void)state;
    llm_oai_body_t *w = llm_oai_body_new();
    json_t *empty = json_object();
    llm_message_t msg = {.role = LLM_ROLE_USER, .text = "hi", .text_len = 2};
    enum { AGENTS = LLM_OAI_TOOLS_CACHE_N + 2 };
    json_t *params[AGENTS];
    char names[AGENTS][16];
    for (int a = 0; a < AGENTS; a++) {
        params[a] = json_pack("{s:s, s:{s:{s:i}}}", "type", "object", "properties", "n", "max", a);
        snprintf(names[a], sizeof(names[a]), "agent%d.tool", a);
    }
    for (int round = 0; round < 3; round++) {
        for (int a = 0; a < AGENTS; a++) {
            llm_tool_t t = {names[a], "", params[a]};
            llm_call_t call = agent_call(&t, 1, empty, &msg);
            check_same(w, &call, &OPTS);
            const char *body;
            size_t len;
            assert_int_equal(llm_oai_body_write(w, &call, &OPTS, &body, &len), 0);
            char want[64];
            snprintf(want, sizeof(want), "\"max\":%d}", a);
            assert_non_null(strstr(body, want));
        }
    }
    /* Only the last LLM_OAI_TOOLS_CACHE_N fit: fewer agents hit in later rounds. */
    size_t hits, misses;
    llm_oai_body_cache_stats(w, &hits, &misses);
    assert_true(hits > 0);
    assert_true(misses >= AGENTS);
    for (int a = 0; a < AGENTS; a++)
        json_decref(params[a]);
    json_decref(empty);
    llm_oai_body_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_builder),
        cmocka_unit_test(test_tools_cache_exact),
        cmocka_unit_test(test_tools_cache_agents_interleaved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
