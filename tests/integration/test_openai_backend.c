/*
 * test_openai_backend.c - the whole mesh with MESH_LLM_BACKEND=openai against
 * the stub OpenAI server (tests/stubs/openai_stub.c), through the gateway's
 * HTTP API: every recorded exchange (plain JSON, streamed text, tool calls
 * split across chunks, parallel calls, Ollama's index-0 calls, invalid
 * arguments, 429 + Retry-After, 500, mid-stream error, malformed JSON,
 * connection reset, retries exhausted, a stall past the deadline, vLLM's 400
 * for tool_choice "auto"), the
 * policy_qa worker end to end (the model asks policy.lookup, gets the
 * result, answers), the traceparent and API key reaching the model server,
 * and the fallback: the stub down -> the rules backend answers and the
 * FINAL says so, until the circuit breaker opens.
 *
 * Each turn names its stub script with a "#stub:<name>" marker in the
 * message; the stub records every request it got (one JSON line each), which
 * the assertions read.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"

#define TURN_TIMEOUT_MS 15000
#define API_KEY         "sk-test-0123456789"
#define RECOVERED       "Recovered answer."
#define AFTER_TOOL      "Stub answer after the tool: your policy was found."
#define TP_IN           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static mh_mesh_t *s_mesh;
static mh_proc_t *s_stub;
static char s_record[MH_PATH_MAX];

static int group_setup(void **state)
{
    (void)state;
    int port = mh_openai_stub_start("openai-stub-requests.jsonl", &s_stub, s_record);
    if (port < 0)
        return -1;
    const char *llm_env[] = {"MESH_LLM_API_KEY=" API_KEY,
                             "MESH_LLM_RETRIES=2",
                             "MESH_LLM_BACKOFF_MS=50",
                             "MESH_LLM_BACKOFF_MAX_MS=200",
                             "MESH_LLM_TIMEOUT_MS=10000",
                             "MESH_LLM_BREAKER_FAILURES=5",
                             "MESH_LLM_BREAKER_OPEN_MS=60000",
                             "MESH_LLM_PRICES=small=1:2",
                             NULL};
    s_mesh = mh_openai_mesh_start(port, "small=stub-model", llm_env, NULL);
    return s_mesh != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_openai_mesh_teardown(&s_mesh, &s_stub);
}

/* ---- helpers ---- */

/* POST a message (optional extra headers) and require a 200 JSON answer. */
static void turn(const char *conv, const char *text, const char *const *headers, mh_http_resp_t *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), conv);
    json_t *b = json_pack("{s:s}", "text", text);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    const char *h[8] = {"Content-Type: application/json"};
    size_t n = 1;
    for (size_t i = 0; headers != NULL && headers[i] != NULL && n < 7; i++)
        h[n++] = headers[i];
    h[n] = NULL;
    memset(r, 0, sizeof(*r));
    int rc = mh_http("POST", url, body, h, TURN_TIMEOUT_MS, r);
    free(body);
    if (rc != 0 || r->status != 200 || r->json == NULL)
        fail_msg("turn %s: status %ld body %s %s", conv, r->status, r->body ? r->body : "",
                 r->curl_err);
}

static void conv_id(char *out, size_t n, const char *what)
{
    snprintf(out, n, "oai-%s-%d", what, (int)getpid());
}

/* The stub's recorded requests for script name (new array; caller decrefs). */
static json_t *requests_for(const char *name)
{
    return mh_openai_stub_requests(s_record, NULL, name);
}

static const char *reply_of(const mh_http_resp_t *r)
{
    const char *s = mh_json_str(r->json, "reply");
    assert_non_null(s);
    return s;
}

/* The last message of recorded request i. */
static const json_t *last_msg(const json_t *reqs, size_t i)
{
    const json_t *msgs =
        json_object_get(json_object_get(json_array_get(reqs, i), "body"), "messages");
    return json_array_get(msgs, json_array_size(msgs) - 1);
}

/* Tool messages of recorded request i, as an array (borrowed items). */
static json_t *tool_msgs(const json_t *reqs, size_t i)
{
    json_t *out = json_array();
    const json_t *msgs =
        json_object_get(json_object_get(json_array_get(reqs, i), "body"), "messages");
    size_t k;
    const json_t *m;
    json_array_foreach(msgs, k, m)
    {
        if (strcmp(mh_json_str(m, "role"), "tool") == 0)
            json_array_append(out, (json_t *)m);
    }
    return out;
}

/* A turn whose model answer is RECOVERED after one failed attempt. */
static void recovered_after_one_failure(const char *script)
{
    char conv[64], text[128];
    conv_id(conv, sizeof(conv), script);
    snprintf(text, sizeof(text), "#stub:%s hello", script);
    mh_http_resp_t r;
    turn(conv, text, NULL, &r);
    assert_string_equal(reply_of(&r), RECOVERED);
    assert_null(json_object_get(r.json, "fallback"));
    json_t *reqs = requests_for(script);
    assert_int_equal(json_array_size(reqs), 2); /* the failure, then the retry */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(reqs, 1), "attempt")), 1);
    json_decref(reqs);
    mh_http_resp_clear(&r);
}

/* ---- tests ---- */

static void test_plain_json_answer_key_and_traceparent(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "plain");
    const char *h[] = {"traceparent: " TP_IN, NULL};
    mh_http_resp_t r;
    turn(conv, "#stub:text_plain 你好", h, &r);
    assert_string_equal(reply_of(&r), "Plain answer from the stub.");
    assert_string_equal(mh_json_str(r.json, "model"), "stub-plain");
    const json_t *u = json_object_get(r.json, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 17);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 6);
    /* MESH_LLM_PRICES small=1:2 USD per million: 17*1 + 6*2 = 29e-6 */
    double cost = json_number_value(json_object_get(u, "cost_usd"));
    assert_true(cost > 28.9e-6 && cost < 29.1e-6);
    json_t *reqs = requests_for("text_plain");
    assert_int_equal(json_array_size(reqs), 1);
    const json_t *q = json_array_get(reqs, 0);
    assert_string_equal(mh_json_str(q, "authorization"), "Bearer " API_KEY);
    assert_string_equal(mh_json_str(q, "path"), "/v1/chat/completions");
    /* the turn's trace reaches the model server, as a child span (new parent id) */
    const char *tp = mh_json_str(q, "traceparent");
    assert_int_equal(strlen(tp), 55);
    assert_memory_equal(tp, TP_IN, 36);
    assert_memory_not_equal(tp + 36, TP_IN + 36, 16);
    const json_t *body = json_object_get(q, "body");
    assert_string_equal(mh_json_str(body, "model"), "stub-model");
    assert_true(json_is_true(json_object_get(body, "stream")));
    assert_true(
        json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")));
    /* policy_qa's prompt first, its tool offered in the OpenAI function shape */
    const json_t *m0 = json_array_get(json_object_get(body, "messages"), 0);
    assert_string_equal(mh_json_str(m0, "role"), "system");
    const json_t *t0 = json_array_get(json_object_get(body, "tools"), 0);
    assert_string_equal(mh_json_str(json_object_get(t0, "function"), "name"), "policy__lookup");
    assert_string_equal(mh_json_str(body, "tool_choice"), "auto");
    json_decref(reqs);
    mh_http_resp_clear(&r);
}

static void test_streamed_text(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "stream");
    mh_http_resp_t r;
    turn(conv, "#stub:text_stream 你好", NULL, &r);
    assert_string_equal(reply_of(&r), "Streamed 答案：保单 P10023 有效。");
    const json_t *u = json_object_get(r.json, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 40);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 11);
    mh_http_resp_clear(&r);
}

static void test_streamed_text_reaches_client_as_sse(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "stream-sse");
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), conv);
    const char *h[] = {"Content-Type: application/json", "Accept: text/event-stream", NULL};
    mh_http_resp_t r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(
        mh_http("POST", url, "{\"text\":\"#stub:text_stream sse\"}", h, TURN_TIMEOUT_MS, &r), 0);
    assert_int_equal(r.status, 200);
    /* the model's six pieces arrive as deltas, then the final event */
    int deltas = 0;
    for (const char *p = r.body; (p = strstr(p, "event: delta")) != NULL; p++)
        deltas++;
    assert_true(deltas >= 2);
    assert_non_null(strstr(r.body, "event: final"));
    assert_non_null(strstr(r.body, "答案"));
    mh_http_resp_clear(&r);
}

/* A script whose tool calls (names ids) are answered, then AFTER_TOOL. */
static void tool_round(const char *script, const char *const ids[], size_t n_ids)
{
    char conv[64], text[128];
    conv_id(conv, sizeof(conv), script);
    snprintf(text, sizeof(text), "#stub:%s 查保单", script);
    mh_http_resp_t r;
    turn(conv, text, NULL, &r);
    assert_string_equal(reply_of(&r), AFTER_TOOL);
    assert_int_equal(json_array_size(json_object_get(r.json, "tool_calls")), n_ids);
    json_t *reqs = requests_for(script);
    assert_int_equal(json_array_size(reqs), 2); /* the call, then the answer */
    assert_string_equal(mh_json_str(last_msg(reqs, 1), "role"), "tool");
    json_t *tools = tool_msgs(reqs, 1);
    assert_int_equal(json_array_size(tools), n_ids);
    for (size_t i = 0; i < n_ids; i++) {
        bool found = false;
        size_t k;
        json_t *m;
        json_array_foreach(tools, k, m)
        {
            found |= strcmp(mh_json_str(m, "tool_call_id"), ids[i]) == 0;
        }
        if (!found)
            fail_msg("%s: no tool result for %s", script, ids[i]);
    }
    /* the assistant message before carries the calls with JSON-text arguments */
    const json_t *msgs =
        json_object_get(json_object_get(json_array_get(reqs, 1), "body"), "messages");
    const json_t *asst = json_array_get(msgs, json_array_size(msgs) - 1 - n_ids);
    assert_string_equal(mh_json_str(asst, "role"), "assistant");
    const json_t *c0 = json_array_get(json_object_get(asst, "tool_calls"), 0);
    assert_true(json_is_string(json_object_get(json_object_get(c0, "function"), "arguments")));
    json_decref(tools);
    json_decref(reqs);
    mh_http_resp_clear(&r);
}

static void test_tool_call_split_across_chunks(void **state)
{
    (void)state;
    const char *ids[] = {"call_split1"};
    tool_round("tool_split", ids, 1);
}

static void test_parallel_tool_calls(void **state)
{
    (void)state;
    const char *ids[] = {"call_par0", "call_par1"};
    tool_round("tool_parallel", ids, 2);
}

static void test_ollama_index0_tool_calls(void **state)
{
    (void)state;
    const char *ids[] = {"call_oll0", "call_oll1"};
    tool_round("tool_ollama", ids, 2);
}

static void test_invalid_arguments_go_back_to_the_model(void **state)
{
    (void)state;
    const char *ids[] = {"call_bad"};
    tool_round("tool_bad_args", ids, 1);
    json_t *reqs = requests_for("tool_bad_args");
    json_t *tools = tool_msgs(reqs, 1);
    const char *content = mh_json_str(json_array_get(tools, 0), "content");
    assert_non_null(content);
    assert_non_null(strstr(content, "invalid_tool_arguments"));
    json_decref(tools);
    json_decref(reqs);
}

static void test_429_retry_after_honoured(void **state)
{
    (void)state;
    recovered_after_one_failure("retry_429");
    json_t *reqs = requests_for("retry_429");
    json_int_t t0 = json_integer_value(json_object_get(json_array_get(reqs, 0), "at_ms"));
    json_int_t t1 = json_integer_value(json_object_get(json_array_get(reqs, 1), "at_ms"));
    /* Retry-After: 0.3 beats the 50 ms backoff */
    assert_true(t1 - t0 >= 290);
    json_decref(reqs);
}

static void test_500_then_success(void **state)
{
    (void)state;
    recovered_after_one_failure("error_500");
}

static void test_midstream_error_retried(void **state)
{
    (void)state;
    recovered_after_one_failure("midstream_error");
}

static void test_malformed_json_retried(void **state)
{
    (void)state;
    recovered_after_one_failure("malformed");
}

static void test_connection_reset_retried(void **state)
{
    (void)state;
    recovered_after_one_failure("reset");
}

static void test_retries_exhausted_rules_fallback(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "always500");
    mh_http_resp_t r;
    turn(conv, "#stub:always_500 hello", NULL, &r);
    json_t *reqs = requests_for("always_500");
    assert_int_equal(json_array_size(reqs), 3); /* MESH_LLM_RETRIES=2 */
    const json_t *fb = json_object_get(r.json, "fallback");
    assert_string_equal(mh_json_str(fb, "backend"), "rules");
    assert_non_null(strstr(mh_json_str(fb, "reason"), "503"));
    assert_string_equal(mh_json_str(r.json, "model"), "rules");
    assert_true(strlen(reply_of(&r)) > 0);
    json_decref(reqs);
    mh_http_resp_clear(&r);
}

static void test_stall_past_deadline_falls_back(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "stall");
    const char *h[] = {"X-Mesh-Timeout-Ms: 1500", NULL};
    uint64_t t0 = mh_now_ms();
    mh_http_resp_t r;
    turn(conv, "#stub:stall hello", h, &r);
    uint64_t took = mh_now_ms() - t0;
    assert_true(took < 3000);
    const json_t *fb = json_object_get(r.json, "fallback");
    assert_string_equal(mh_json_str(fb, "backend"), "rules");
    assert_non_null(strstr(mh_json_str(fb, "reason"), "deadline"));
    mh_http_resp_clear(&r);
}

static void test_vllm_400_not_retried_falls_back(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "vllm400");
    mh_http_resp_t r;
    turn(conv, "#stub:vllm_no_auto_tool_choice hello", NULL, &r);
    json_t *reqs = requests_for("vllm_no_auto_tool_choice");
    assert_int_equal(json_array_size(reqs), 1); /* a 400 is not retried */
    const json_t *fb = json_object_get(r.json, "fallback");
    assert_string_equal(mh_json_str(fb, "backend"), "rules");
    assert_non_null(strstr(mh_json_str(fb, "reason"), "--enable-auto-tool-choice"));
    json_decref(reqs);
    mh_http_resp_clear(&r);
}

static void test_policy_qa_end_to_end(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "pqa");
    mh_http_resp_t r;
    turn(conv, "#stub:policy_qa 我的保单 P10023 的免赔额是多少？", NULL, &r);
    assert_string_equal(reply_of(&r), "您的保单 P10023 已查到，以保险公司最终审核为准。");
    const json_t *calls = json_object_get(r.json, "tool_calls");
    assert_int_equal(json_array_size(calls), 1);
    json_t *reqs = requests_for("policy_qa");
    assert_int_equal(json_array_size(reqs), 2);
    /* the model got the policy as the tool result */
    json_t *tools = tool_msgs(reqs, 1);
    assert_int_equal(json_array_size(tools), 1);
    const json_t *tm = json_array_get(tools, 0);
    assert_string_equal(mh_json_str(tm, "tool_call_id"), "call_pqa1");
    assert_non_null(strstr(mh_json_str(tm, "content"), "P10023"));
    json_decref(tools);
    json_decref(reqs);
    /* usage summed over the turn's two calls: 30 + 300 prompt tokens */
    const json_t *u = json_object_get(r.json, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 330);
    mh_http_resp_clear(&r);

    /* the conversation log: user, assistant (tool call), tool, assistant */
    mh_http_resp_t g;
    memset(&g, 0, sizeof(g));
    assert_int_equal(mh_get_conversation(s_mesh, conv, &g), 0);
    assert_int_equal(g.status, 200);
    const json_t *msgs = json_object_get(g.json, "messages");
    assert_int_equal(json_array_size(msgs), 4);
    assert_string_equal(mh_json_str(json_array_get(msgs, 2), "role"), "tool");
    mh_http_resp_clear(&g);
}

static void test_stub_down_rules_fallback_then_breaker(void **state)
{
    (void)state;
    assert_true(mh_proc_stop(s_stub, 3000) >= 0);
    /*
     * Breaker threshold 5, 3 attempts per call: turn 0 fails to connect 3 times
     * and falls back; turn 1's second failure opens the breaker; turn 2 makes no
     * attempt at all. Every turn is answered by the rules engine (it asks for
     * the policy number) and says so.
     */
    mh_http_resp_t r[3];
    for (int i = 0; i < 3; i++) {
        char conv[64];
        snprintf(conv, sizeof(conv), "oai-down%d-%d", i, (int)getpid());
        turn(conv, "你好，我想问问保险", NULL, &r[i]);
        const json_t *fb = json_object_get(r[i].json, "fallback");
        if (fb == NULL)
            fail_msg("turn %d without fallback metadata: %s", i, r[i].body);
        assert_string_equal(mh_json_str(fb, "backend"), "rules");
        assert_non_null(mh_json_str(fb, "reason"));
        assert_string_equal(mh_json_str(r[i].json, "model"), "rules");
        assert_true(strlen(reply_of(&r[i])) > 0);
    }
    const char *first = mh_json_str(json_object_get(r[0].json, "fallback"), "reason");
    const char *last = mh_json_str(json_object_get(r[2].json, "fallback"), "reason");
    if (strstr(first, "connect") == NULL)
        fail_msg("first fallback reason: %s", first);
    if (strstr(last, "circuit breaker") == NULL)
        fail_msg("last fallback reason: %s", last);
    for (int i = 0; i < 3; i++)
        mh_http_resp_clear(&r[i]);
}

int main(void)
{
    if (mh_init("openai_backend") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_json_answer_key_and_traceparent),
        cmocka_unit_test(test_streamed_text),
        cmocka_unit_test(test_streamed_text_reaches_client_as_sse),
        cmocka_unit_test(test_tool_call_split_across_chunks),
        cmocka_unit_test(test_parallel_tool_calls),
        cmocka_unit_test(test_ollama_index0_tool_calls),
        cmocka_unit_test(test_invalid_arguments_go_back_to_the_model),
        cmocka_unit_test(test_429_retry_after_honoured),
        cmocka_unit_test(test_500_then_success),
        cmocka_unit_test(test_midstream_error_retried),
        cmocka_unit_test(test_malformed_json_retried),
        cmocka_unit_test(test_connection_reset_retried),
        cmocka_unit_test(test_retries_exhausted_rules_fallback),
        cmocka_unit_test(test_stall_past_deadline_falls_back),
        cmocka_unit_test(test_vllm_400_not_retried_falls_back),
        cmocka_unit_test(test_policy_qa_end_to_end),
        cmocka_unit_test(test_stub_down_rules_fallback_then_breaker),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
