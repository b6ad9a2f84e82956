/*
 * test_llm_openai.c - the pure parts of the openai backend: the request
 * builder (oai_req.c), the circuit breaker (oai_breaker.c), the retry
 * schedule and Retry-After parsing (oai_retry.c), the tier table
 * (oai_tiers.c), and the FINAL data with model, cost and fallback
 * (llm_reply.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "llm_backend.h"
#include "llm_reply.h"
#include "mesh/mesh_err.h"
#include "oai_breaker.h"
#include "oai_req.h"
#include "oai_retry.h"
#include "oai_tiers.h"

/* ---- request builder ---- */

static void test_request_shape(void **state)
{
    (void)state;
    json_t *params = json_pack("{s:s, s:{s:{s:s}}, s:[s]}", "type", "object", "properties",
                               "policy_no", "type", "string", "required", "policy_no");
    llm_tool_t tools[1] = {{"policy.lookup", "Look a policy up", params}};
    json_t *tc = json_pack("[{s:s, s:s, s:{s:s}}]", "id", "call_1", "name", "policy.lookup",
                           "arguments", "policy_no", "P10023");
    llm_message_t msgs[3] = {
        {.role = LLM_ROLE_USER,
         .text = "保单 P10023 免赔额?",
         .text_len = strlen("保单 P10023 免赔额?")},
        {.role = LLM_ROLE_ASSISTANT, .text = "", .text_len = 0, .tool_calls = tc},
        {.role = LLM_ROLE_TOOL,
         .text = "{\"ok\":true}",
         .text_len = 11,
         .name = "policy.lookup",
         .tool_call_id = "call_1",
         .ok = true},
    };
    json_t *st = json_pack("{s:{s:s}, s:s, s:{}}", "slots", "policy_no", "P10023", "mode", "batch",
                           "records");
    llm_call_t call = {.agent = "policy_qa",
                       .tier = "small",
                       .system = "You are a bot.",
                       .system_len = 14,
                       .lang = "zh",
                       .messages = msgs,
                       .n_messages = 3,
                       .tools = tools,
                       .n_tools = 1,
                       .state = st,
                       .fallback = "rules",
                       .response_format = "json"};
    llm_oai_req_opts_t o = {
        .model = "qwen2.5-7b", .max_completion_tokens = 512, .temperature = 0.5};
    json_t *b = llm_oai_req_json(&call, &o);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "model")), "qwen2.5-7b");
    assert_true(json_is_true(json_object_get(b, "stream")));
    assert_true(
        json_is_true(json_object_get(json_object_get(b, "stream_options"), "include_usage")));
    assert_int_equal(json_integer_value(json_object_get(b, "max_completion_tokens")), 512);
    assert_true(json_real_value(json_object_get(b, "temperature")) == 0.5);
    assert_string_equal(json_string_value(json_object_get(b, "tool_choice")), "auto");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(b, "response_format"), "type")),
        "json_object");
    const json_t *tl = json_object_get(b, "tools");
    assert_int_equal(json_array_size(tl), 1);
    const json_t *fn = json_object_get(json_array_get(tl, 0), "function");
    assert_string_equal(json_string_value(json_object_get(json_array_get(tl, 0), "type")),
                        "function");
    assert_string_equal(json_string_value(json_object_get(fn, "name")), "policy__lookup");
    assert_true(json_equal(json_object_get(fn, "parameters"), params));

    const json_t *m = json_object_get(b, "messages");
    assert_int_equal(json_array_size(m), 5); /* system, known facts, user, assistant, tool */
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "content")),
                        "You are a bot.");
    const char *facts = json_string_value(json_object_get(json_array_get(m, 1), "content"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "role")), "system");
    assert_non_null(strstr(facts, "Known facts"));
    assert_non_null(strstr(facts, "slots: {\"policy_no\":\"P10023\"}"));
    assert_non_null(strstr(facts, "mode: \"batch\""));
    assert_null(strstr(facts, "records")); /* empty: not mentioned */
    const json_t *asst = json_array_get(m, 3);
    assert_true(json_is_null(json_object_get(asst, "content")));
    const json_t *call0 = json_array_get(json_object_get(asst, "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(call0, "id")), "call_1");
    assert_string_equal(json_string_value(json_object_get(call0, "type")), "function");
    const json_t *f0 = json_object_get(call0, "function");
    assert_string_equal(json_string_value(json_object_get(f0, "name")), "policy__lookup");
    /* arguments go as JSON text */
    assert_string_equal(json_string_value(json_object_get(f0, "arguments")),
                        "{\"policy_no\":\"P10023\"}");
    const json_t *tool = json_array_get(m, 4);
    assert_string_equal(json_string_value(json_object_get(tool, "role")), "tool");
    assert_string_equal(json_string_value(json_object_get(tool, "tool_call_id")), "call_1");
    json_decref(b);

    /* no tools, no state, text format: none of tools/tool_choice/response_format/facts */
    json_t *empty = json_object();
    llm_call_t c2 = {.agent = "a",
                     .messages = msgs,
                     .n_messages = 1,
                     .state = empty,
                     .fallback = "",
                     .response_format = "",
                     .system = "",
                     .system_len = 0};
    llm_oai_req_opts_t o2 = {.model = "m", .max_completion_tokens = 0, .temperature = -1};
    b = llm_oai_req_json(&c2, &o2);
    assert_null(json_object_get(b, "tools"));
    assert_null(json_object_get(b, "tool_choice"));
    assert_null(json_object_get(b, "response_format"));
    assert_null(json_object_get(b, "temperature"));
    assert_null(json_object_get(b, "max_completion_tokens"));
    assert_int_equal(json_array_size(json_object_get(b, "messages")), 1);
    json_decref(b);

    /* text that is not UTF-8 is repaired, not refused */
    llm_message_t bad = {.role = LLM_ROLE_USER,
                         .text = "a\xff"
                                 "b",
                         .text_len = 3};
    c2.messages = &bad;
    char *s = llm_oai_req_build(&c2, &o2);
    assert_non_null(s);
    assert_non_null(strstr(s, "a\xEF\xBF\xBD"
                              "b"));
    free(s);
    json_decref(empty);
    json_decref(st);
    json_decref(tc);
    json_decref(params);
}

static void test_tool_name_mapping(void **state)
{
    (void)state;
    char out[LLM_OAI_NAME_MAX + 1], back[LLM_TOOL_NAME_MAX + 1];
    llm_oai_name_out("policy.lookup", out, sizeof(out));
    assert_string_equal(out, "policy__lookup");
    llm_oai_name_in(out, back, sizeof(back));
    assert_string_equal(back, "policy.lookup");
    llm_oai_name_in("state.update", back, sizeof(back)); /* a dotted name from a model: kept */
    assert_string_equal(back, "state.update");
    llm_oai_name_out("a.b.c", out, 5); /* bounded: never a half "__" */
    assert_string_equal(out, "a__b");
    llm_oai_name_out("a.b", out, 3);
    assert_string_equal(out, "a");
}

/* ---- breaker ---- */

static void test_breaker(void **state)
{
    (void)state;
    llm_breaker_t b;
    llm_breaker_init(&b, 3, 1000);
    assert_true(llm_breaker_allow(&b, 0));
    llm_breaker_failure(&b, 10);
    llm_breaker_failure(&b, 20);
    llm_breaker_success(&b); /* consecutive failures only */
    llm_breaker_failure(&b, 30);
    llm_breaker_failure(&b, 40);
    assert_int_equal(b.state, LLM_BREAKER_CLOSED);
    llm_breaker_failure(&b, 50);
    assert_int_equal(b.state, LLM_BREAKER_OPEN);
    assert_false(llm_breaker_allow(&b, 60));
    assert_false(llm_breaker_allow(&b, 1049));
    /* after open_ms: exactly one probe */
    assert_true(llm_breaker_allow(&b, 1050));
    assert_int_equal(b.state, LLM_BREAKER_HALF_OPEN);
    assert_false(llm_breaker_allow(&b, 1051));
    llm_breaker_failure(&b, 1100); /* the probe failed: open again from now */
    assert_int_equal(b.state, LLM_BREAKER_OPEN);
    assert_false(llm_breaker_allow(&b, 2000));
    assert_true(llm_breaker_allow(&b, 2100));
    llm_breaker_release(&b); /* a probe that ended as neither frees the slot */
    assert_true(llm_breaker_allow(&b, 2101));
    llm_breaker_success(&b);
    assert_int_equal(b.state, LLM_BREAKER_CLOSED);
    assert_true(llm_breaker_allow(&b, 2102));
    assert_string_equal(llm_breaker_state_name(LLM_BREAKER_HALF_OPEN), "half_open");
}

/* ---- retry schedule ---- */

static void test_retry_schedule(void **state)
{
    (void)state;
    assert_true(llm_oai_status_retryable(408));
    assert_true(llm_oai_status_retryable(409));
    assert_true(llm_oai_status_retryable(429));
    assert_true(llm_oai_status_retryable(500));
    assert_true(llm_oai_status_retryable(503));
    assert_false(llm_oai_status_retryable(400));
    assert_false(llm_oai_status_retryable(401));
    assert_false(llm_oai_status_retryable(404));
    assert_false(llm_oai_status_retryable(200));
    /* no jitter: 500, 1000, 2000, 4000, 8000, capped */
    assert_int_equal(llm_oai_backoff_ms(0, 500, 8000, 0), 500);
    assert_int_equal(llm_oai_backoff_ms(1, 500, 8000, 0), 1000);
    assert_int_equal(llm_oai_backoff_ms(3, 500, 8000, 0), 4000);
    assert_int_equal(llm_oai_backoff_ms(4, 500, 8000, 0), 8000);
    assert_int_equal(llm_oai_backoff_ms(40, 500, 8000, 0), 8000);
    /* jitter removes at most 25% */
    for (int i = 0; i < 100; i++) {
        uint64_t d = llm_oai_backoff_ms(2, 500, 8000, i / 100.0);
        assert_true(d <= 2000 && d >= 1500);
    }
    assert_int_equal(llm_oai_backoff_ms(2, 500, 8000, 0.999), 1501);
    /* Retry-After */
    assert_int_equal(llm_oai_retry_after_ms("2", 1, 0), 2000);
    assert_int_equal(llm_oai_retry_after_ms(" 0.3\r\n", 6, 0), 300);
    assert_int_equal(llm_oai_retry_after_ms("3600", 4, 0), LLM_OAI_RETRY_AFTER_MAX_MS);
    assert_int_equal(llm_oai_retry_after_ms("soon", 4, 0), -1);
    assert_int_equal(llm_oai_retry_after_ms("-1", 2, 0), -1);
    assert_int_equal(llm_oai_retry_after_ms("", 0, 0), -1);
    /* HTTP date: Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
    const char *date = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_int_equal(llm_oai_retry_after_ms(date, strlen(date), 784111777 - 5), 5000);
    assert_int_equal(llm_oai_retry_after_ms(date, strlen(date), 784111777 + 5), 0);
}

/* ---- tiers ---- */

static void test_tiers(void **state)
{
    (void)state;
    llm_oai_tiers_t t;
    char err[256];
    assert_int_equal(llm_oai_tiers_parse("small=http://127.0.0.1:8000/v1/|qwen2.5-7b,"
                                         "large=https://api.example.com/v1|big",
                                         &t, err, sizeof(err)),
                     0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.t[0].name, "small");
    assert_string_equal(t.t[0].url, "http://127.0.0.1:8000/v1"); /* trailing '/' dropped */
    assert_string_equal(t.t[0].model, "qwen2.5-7b");
    assert_string_equal(llm_oai_tiers_find(&t, "large")->model, "big");
    assert_string_equal(llm_oai_tiers_find(&t, "nope")->name, "small"); /* first */
    assert_string_equal(llm_oai_tiers_find(&t, NULL)->name, "small");

    const char *bad[] = {"",
                         "small",
                         "small=http://x",
                         "small=ftp://x|m",
                         "=http://x|m",
                         "small=http://x|",
                         "a=http://x|m,a=http://y|m",
                         "a=http://x|m,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (llm_oai_tiers_parse(bad[i], &t, err, sizeof(err)) != MESH_ECONFIG)
            fail_msg("accepted bad tiers \"%s\"", bad[i]);
        assert_true(err[0] != '\0');
        assert_int_equal(t.n, 0);
    }

    char path[] = "/tmp/test_llm_openai_tiersXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *doc = "{\"small\": {\"url\": \"http://h:1/v1\", \"model\": \"s\"},"
                      " \"default\": {\"url\": \"http://h:2/v1\", \"model\": \"d\"}}";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    assert_int_equal(llm_oai_tiers_load_file(path, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(llm_oai_tiers_find(&t, "large")->model, "d"); /* "default" wins */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "{\"x\": 1}", 8), 8);
    close(fd);
    assert_int_equal(llm_oai_tiers_load_file(path, &t, err, sizeof(err)), MESH_ECONFIG);
    unlink(path);
    assert_int_equal(llm_oai_tiers_load_file(path, &t, err, sizeof(err)), MESH_ECONFIG);
}

/* ---- FINAL data ---- */

static void test_final_model_cost_fallback(void **state)
{
    (void)state;
    llm_result_t r = {.type = LLM_RESULT_TEXT, .text = "hi", .text_len = 2};
    r.usage.prompt_tokens = 10;
    r.usage.completion_tokens = 2;
    r.model = "qwen2.5-7b";
    json_t *j = llm_reply_final(&r, "openai", 0.25);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "qwen2.5-7b");
    assert_string_equal(json_string_value(json_object_get(j, "backend")), "openai");
    assert_true(json_number_value(json_object_get(json_object_get(j, "usage"), "cost_usd")) ==
                0.25);
    assert_null(json_object_get(j, "fallback"));
    json_decref(j);
    r.model = "rules";
    r.fallback_reason = "unavailable: circuit breaker open";
    j = llm_reply_final(&r, "openai", 0);
    const json_t *fb = json_object_get(j, "fallback");
    assert_string_equal(json_string_value(json_object_get(fb, "backend")), "rules");
    assert_string_equal(json_string_value(json_object_get(fb, "reason")),
                        "unavailable: circuit breaker open");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "rules");
    json_decref(j);
    r.model = NULL; /* no model: the backend's name */
    r.fallback_reason = NULL;
    j = llm_reply_final(&r, "rules", 0);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "rules");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_shape), cmocka_unit_test(test_tool_name_mapping),
        cmocka_unit_test(test_breaker),       cmocka_unit_test(test_retry_schedule),
        cmocka_unit_test(test_tiers),         cmocka_unit_test(test_final_model_cost_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
