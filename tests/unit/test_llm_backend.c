/*
 * test_llm_backend.c - the llm backend interface with the rules backend on a
 * real uv loop: synchronous and delayed completion (MESH_LLM_DELAY_MS),
 * cancellation stopping the timer cleanly, deadlines, destroy with calls in
 * flight, many calls at once, the registry, and "llm.chat" args validation.
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
#include <uv.h>

#include "llm_backend.h"
#include "llm_call.h"
#include "llm_reply.h"
#include "mesh/mesh_err.h"

typedef struct {
    int deltas;
    int done;
    int error;
    int status;
    int free_on_done; /* the sink frees itself in its terminal callback */
    char text[4096];
} capture_t;

static void cap_delta(llm_sink_t *s, const char *t, size_t n)
{
    capture_t *c = s->arg;
    c->deltas++;
}

static void cap_done(llm_sink_t *s, const llm_result_t *r)
{
    capture_t *c = s->arg;
    c->done++;
    if (r->type == LLM_RESULT_TEXT)
        snprintf(c->text, sizeof(c->text), "%.*s", (int)r->text_len, r->text);
    else
        snprintf(c->text, sizeof(c->text), "tool:%s", r->calls[0].name);
    if (c->free_on_done) {
        memset(s, 0xAB, sizeof(*s)); /* poison: the backend must not read it afterwards */
        free(s);
    }
}

static void cap_error(llm_sink_t *s, int status, const char *msg)
{
    capture_t *c = s->arg;
    c->error++;
    c->status = status;
}

typedef struct {
    uv_loop_t loop;
    llm_backend_t *b;
} fixture_t;

static void fixture_init(fixture_t *f, uint64_t delay_ms)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    llm_backend_config_t cfg = {.delay_ms = delay_ms};
    f->b = llm_backend_new("rules", &f->loop, &cfg);
    assert_non_null(f->b);
}

/* Destroy the backend and check the loop closes with no handle left behind. */
static void fixture_done(fixture_t *f)
{
    llm_backend_destroy(&f->b);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Run the loop until *flag becomes non-zero or limit_ms of loop time pass. */
static void run_until(uv_loop_t *loop, const int *flag, uint64_t limit_ms)
{
    uv_update_time(loop);
    uint64_t end = uv_now(loop) + limit_ms;
    while (*flag == 0 && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
    }
}

static json_t *simple_args(int stream)
{
    return json_pack("{s:s, s:s, s:[{s:s, s:s}], s:[{s:s}], s:b}", "agent", "policy_qa", "lang",
                     "en", "messages", "role", "user", "text", "What does P10023 cover?", "tools",
                     "name", "policy.lookup", "stream", stream);
}

static void parse_ok(json_t *args, uint64_t deadline, llm_parsed_t *p)
{
    char err[256];
    int rc = llm_call_parse("id-1", args, deadline, p, err, sizeof(err));
    if (rc != 0)
        fail_msg("parse failed: %s", err);
}

static void test_registry(void **state)
{
    (void)state;
    assert_non_null(llm_backend_find("rules"));
    assert_non_null(llm_backend_find("openai"));
    assert_null(llm_backend_find("anthropic"));
    assert_null(llm_backend_find(NULL));
    assert_string_equal(llm_backend_names(), "rules,openai");
    uv_loop_t loop;
    uv_loop_init(&loop);
    llm_backend_config_t cfg = {0};
    assert_null(llm_backend_new("nope", &loop, &cfg));
    assert_null(llm_backend_new("openai", &loop, &cfg)); /* no MESH_LLM_TIERS: refused */
    llm_backend_t *b = llm_backend_new("rules", &loop, &cfg);
    assert_string_equal(llm_backend_name(b), "rules");
    llm_backend_destroy(&b);
    llm_backend_destroy(&b); /* idempotent */
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_sync_completion_sink_may_free(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 0);
    json_t *args = simple_args(0);
    llm_parsed_t p;
    parse_ok(args, uv_now(&f.loop) + 5000, &p);
    capture_t c = {.free_on_done = 1};
    llm_sink_t *sink = malloc(sizeof(*sink));
    *sink = (llm_sink_t){cap_delta, cap_done, cap_error, &c};
    llm_handle_t *h = (llm_handle_t *)1;
    assert_int_equal(llm_backend_start(f.b, &p.call, sink, &h), 0);
    assert_null(h);
    assert_int_equal(c.done, 1);
    assert_string_equal(c.text, "tool:policy.lookup");
    llm_call_clear(&p);
    json_decref(args);
    fixture_done(&f);
}

static void test_delay_completes_later(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 50);
    json_t *args = simple_args(0);
    llm_parsed_t p;
    uv_update_time(&f.loop);
    uint64_t t0 = uv_now(&f.loop);
    parse_ok(args, t0 + 5000, &p);
    capture_t c = {.free_on_done = 1};
    llm_sink_t *sink = malloc(sizeof(*sink));
    *sink = (llm_sink_t){cap_delta, cap_done, cap_error, &c};
    llm_handle_t *h = NULL;
    assert_int_equal(llm_backend_start(f.b, &p.call, sink, &h), 0);
    assert_non_null(h);
    assert_int_equal(c.done + c.error, 0); /* not before the delay */
    run_until(&f.loop, &c.done, 5000);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.error, 0);
    assert_true(uv_now(&f.loop) - t0 >= 50);
    assert_string_equal(c.text, "tool:policy.lookup");
    llm_call_clear(&p);
    json_decref(args);
    fixture_done(&f);
}

static void test_cancel_stops_timer(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 60000);
    json_t *args = simple_args(1);
    llm_parsed_t p;
    parse_ok(args, uv_now(&f.loop) + 120000, &p);
    capture_t c = {0};
    llm_sink_t sink = {cap_delta, cap_done, cap_error, &c};
    llm_handle_t *h = NULL;
    assert_int_equal(llm_backend_start(f.b, &p.call, &sink, &h), 0);
    assert_non_null(h);
    llm_backend_cancel(h);
    /* With the timer closed nothing keeps the loop alive: it returns at once instead of
     * waiting 60 s, and no callback ever arrives. */
    uv_update_time(&f.loop);
    uint64_t t0 = uv_now(&f.loop);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    uv_update_time(&f.loop);
    assert_true(uv_now(&f.loop) - t0 < 1000);
    assert_int_equal(c.done + c.error + c.deltas, 0);
    llm_call_clear(&p);
    json_decref(args);
    fixture_done(&f);
}

static void test_deadline_before_delay(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 60000);
    json_t *args = simple_args(0);
    llm_parsed_t p;
    uv_update_time(&f.loop);
    parse_ok(args, uv_now(&f.loop) + 30, &p);
    capture_t c = {0};
    llm_sink_t sink = {cap_delta, cap_done, cap_error, &c};
    llm_handle_t *h = NULL;
    assert_int_equal(llm_backend_start(f.b, &p.call, &sink, &h), 0);
    run_until(&f.loop, &c.error, 5000);
    assert_int_equal(c.error, 1);
    assert_int_equal(c.status, MESH_ETIMEDOUT);
    assert_int_equal(c.done, 0);
    llm_call_clear(&p);
    json_decref(args);
    fixture_done(&f);

    /* No delay, deadline already past: ETIMEDOUT inside start_call. */
    fixture_init(&f, 0);
    args = simple_args(0);
    uv_update_time(&f.loop);
    parse_ok(args, uv_now(&f.loop), &p);
    memset(&c, 0, sizeof(c));
    assert_int_equal(llm_backend_start(f.b, &p.call, &sink, &h), 0);
    assert_null(h);
    assert_int_equal(c.status, MESH_ETIMEDOUT);
    llm_call_clear(&p);
    json_decref(args);
    fixture_done(&f);
}

static void test_destroy_with_calls_in_flight(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 60000);
    json_t *args = simple_args(0);
    llm_parsed_t p;
    parse_ok(args, uv_now(&f.loop) + 120000, &p);
    capture_t c = {0};
    llm_sink_t sink = {cap_delta, cap_done, cap_error, &c};
    for (int i = 0; i < 5; i++) {
        llm_handle_t *h = NULL;
        assert_int_equal(llm_backend_start(f.b, &p.call, &sink, &h), 0);
        assert_non_null(h);
    }
    fixture_done(&f); /* closes the 5 timers; the loop must close cleanly */
    assert_int_equal(c.done + c.error, 0);
    llm_call_clear(&p);
    json_decref(args);
}

static void test_many_in_flight(void **state)
{
    (void)state;
    enum { N = 200 };
    fixture_t f;
    fixture_init(&f, 20);
    json_t *args = simple_args(1);
    llm_parsed_t p;
    parse_ok(args, uv_now(&f.loop) + 10000, &p);
    capture_t c = {0};
    llm_sink_t sink = {cap_delta, cap_done, cap_error, &c};
    llm_handle_t *hs[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(llm_backend_start(f.b, &p.call, &sink, &hs[i]), 0);
    /* Cancel every other one. */
    for (int i = 0; i < N; i += 2)
        llm_backend_cancel(hs[i]);
    /* The remaining timers fire after 20 ms; the loop then has nothing left and returns. */
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c.done, N / 2);
    assert_int_equal(c.error, 0);
    assert_int_equal(c.deltas, 0); /* a tool call is never streamed */
    llm_call_clear(&p);
    json_decref(args);
    fixture_done(&f);
}

/* ---- args validation ---- */

static void expect_bad(const char *json, int want_rc, const char *want_key)
{
    json_t *args = json_loads(json, JSON_DECODE_ANY, NULL);
    if (args == NULL)
        fail_msg("bad test json: %s", json);
    llm_parsed_t p;
    char err[256];
    int rc = llm_call_parse("id", args, 1000, &p, err, sizeof(err));
    if (rc != want_rc)
        fail_msg("%s: rc %d, want %d (%s)", json, rc, want_rc, err);
    if (strstr(err, want_key) == NULL)
        fail_msg("%s: error \"%s\" does not name %s", json, err, want_key);
    assert_null(p.messages);
    json_decref(args);
}

static void test_malformed_args(void **state)
{
    (void)state;
    expect_bad("[]", MESH_EPROTO, "args");
    expect_bad("{\"messages\":[]}", MESH_EPROTO, "args.agent");
    expect_bad("{\"agent\":7,\"messages\":[]}", MESH_EPROTO, "args.agent");
    expect_bad("{\"agent\":\"\",\"messages\":[]}", MESH_EPROTO, "args.agent");
    expect_bad("{\"agent\":\"a\"}", MESH_EPROTO, "args.messages");
    expect_bad("{\"agent\":\"a\",\"messages\":{}}", MESH_EPROTO, "args.messages");
    expect_bad("{\"agent\":\"a\",\"messages\":[3]}", MESH_EPROTO, "args.messages[0]");
    expect_bad("{\"agent\":\"a\",\"messages\":[{\"text\":\"x\"}]}", MESH_EPROTO,
               "args.messages[0].role");
    expect_bad("{\"agent\":\"a\",\"messages\":[{\"role\":\"user\"},{\"role\":\"system\"}]}",
               MESH_EPROTO, "args.messages[1].role");
    expect_bad("{\"agent\":\"a\",\"messages\":[{\"role\":\"user\",\"text\":5}]}", MESH_EPROTO,
               "args.messages[0].text");
    expect_bad("{\"agent\":\"a\",\"messages\":[{\"role\":\"tool\",\"ok\":\"yes\"}]}", MESH_EPROTO,
               "args.messages[0].ok");
    expect_bad("{\"agent\":\"a\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":{}}]}",
               MESH_EPROTO, "args.messages[0].tool_calls");
    expect_bad("{\"agent\":\"a\",\"messages\":[],\"tools\":{}}", MESH_EPROTO, "args.tools");
    expect_bad("{\"agent\":\"a\",\"messages\":[],\"tools\":[{\"description\":\"d\"}]}", MESH_EPROTO,
               "args.tools[0].name");
    expect_bad("{\"agent\":\"a\",\"messages\":[],\"tools\":[{\"name\":\"t\",\"parameters\":1}]}",
               MESH_EPROTO, "args.tools[0].parameters");
    expect_bad("{\"agent\":\"a\",\"messages\":[],\"stream\":\"yes\"}", MESH_EPROTO, "args.stream");
    expect_bad("{\"agent\":\"a\",\"messages\":[],\"lang\":\"fr\"}", MESH_EPROTO, "args.lang");
    expect_bad("{\"agent\":\"a\",\"messages\":[],\"tier\":[]}", MESH_EPROTO, "args.tier");
    expect_bad("{\"agent\":\"a\",\"messages\":[],\"system\":1}", MESH_EPROTO, "args.system");

    /* Lengths and counts over their limits. */
    char big_agent[LLM_AGENT_MAX + 40];
    snprintf(big_agent, sizeof(big_agent), "{\"agent\":\"%0*d\",\"messages\":[]}",
             LLM_AGENT_MAX + 1, 0);
    expect_bad(big_agent, MESH_ETOOBIG, "args.agent");

    json_t *msgs = json_array();
    for (int i = 0; i < LLM_MESSAGES_MAX + 1; i++)
        json_array_append_new(msgs, json_pack("{s:s}", "role", "user"));
    json_t *args = json_pack("{s:s, s:o}", "agent", "a", "messages", msgs);
    llm_parsed_t p;
    char err[256];
    assert_int_equal(llm_call_parse("id", args, 0, &p, err, sizeof(err)), MESH_ETOOBIG);
    assert_non_null(strstr(err, "args.messages"));
    json_decref(args);

    char *text = malloc(65537 + 1);
    memset(text, 'a', 65537);
    text[65537] = '\0';
    args =
        json_pack("{s:s, s:[{s:s, s:s}]}", "agent", "a", "messages", "role", "user", "text", text);
    assert_int_equal(llm_call_parse("id", args, 0, &p, err, sizeof(err)), MESH_ETOOBIG);
    assert_non_null(strstr(err, "args.messages[0].text"));
    json_decref(args);
    free(text);
}

static void test_parse_fields(void **state)
{
    (void)state;
    json_t *args = json_loads(
        "{\"agent\":\"policy_qa\",\"tier\":\"small\",\"system\":\"sys\",\"lang\":\"zh\","
        "\"stream\":true,\"future_key\":1,"
        "\"messages\":[{\"role\":\"user\",\"text\":\"hi\",\"message_id\":\"m1\",\"ts\":1},"
        "{\"role\":\"assistant\",\"text\":\"\",\"tool_calls\":[{\"id\":\"c1\",\"name\":\"t\","
        "\"arguments\":{}}]},"
        "{\"role\":\"tool\",\"name\":\"t\",\"tool_call_id\":\"c1\",\"ok\":false,\"text\":\"{}\"},"
        "{\"role\":\"assistant\"}],"
        "\"tools\":[{\"name\":\"t\",\"description\":\"d\",\"parameters\":{\"type\":\"object\"}}]}",
        0, NULL);
    assert_non_null(args);
    llm_parsed_t p;
    parse_ok(args, 1234, &p);
    const llm_call_t *c = &p.call;
    assert_string_equal(c->id, "id-1");
    assert_string_equal(c->agent, "policy_qa");
    assert_string_equal(c->tier, "small");
    assert_string_equal(c->system, "sys");
    assert_int_equal(c->system_len, 3);
    assert_string_equal(c->lang, "zh");
    assert_true(c->stream);
    assert_int_equal(c->deadline, 1234);
    assert_int_equal(c->n_messages, 4);
    assert_int_equal(c->messages[0].role, LLM_ROLE_USER);
    assert_string_equal(c->messages[0].text, "hi");
    assert_true(c->messages[0].ok);
    assert_int_equal(c->messages[1].role, LLM_ROLE_ASSISTANT);
    assert_int_equal(json_array_size(c->messages[1].tool_calls), 1);
    assert_int_equal(c->messages[2].role, LLM_ROLE_TOOL);
    assert_string_equal(c->messages[2].name, "t");
    assert_string_equal(c->messages[2].tool_call_id, "c1");
    assert_false(c->messages[2].ok);
    assert_string_equal(c->messages[3].text, ""); /* absent text is "" */
    assert_int_equal(c->n_tools, 1);
    assert_string_equal(c->tools[0].name, "t");
    assert_string_equal(c->tools[0].description, "d");
    assert_non_null(c->tools[0].parameters);
    llm_call_clear(&p);
    llm_call_clear(&p); /* safe twice */
    json_decref(args);
}

static void test_reply_json(void **state)
{
    (void)state;
    llm_result_t r = {
        .type = LLM_RESULT_TEXT, .text = "你好", .text_len = strlen("你好"), .usage = {7, 2}};
    json_t *j = llm_reply_final(&r, "rules", 0);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "text");
    assert_string_equal(json_string_value(json_object_get(j, "text")), "你好");
    assert_string_equal(json_string_value(json_object_get(j, "backend")), "rules");
    json_t *u = json_object_get(j, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 7);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 2);
    json_decref(j);

    json_t *args = json_pack("{s:s}", "policy_no", "P10023");
    llm_tool_call_t tc = {.id = "call_1", .name = "policy.lookup", .arguments = args};
    llm_result_t r2 = {.type = LLM_RESULT_TOOL_CALLS, .calls = &tc, .n_calls = 1};
    j = llm_reply_final(&r2, "rules", 0);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "tool_calls");
    json_t *c0 = json_array_get(json_object_get(j, "calls"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "id")), "call_1");
    assert_true(json_equal(json_object_get(c0, "arguments"), args));
    json_decref(j);
    json_decref(args);

    llm_result_t r3 = {.type = LLM_RESULT_TOOL_CALLS};
    assert_null(llm_reply_final(&r3, "rules", 0)); /* no calls is not a valid answer */

    j = llm_reply_delta("ab", 2);
    assert_string_equal(json_string_value(json_object_get(j, "delta")), "ab");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_sync_completion_sink_may_free),
        cmocka_unit_test(test_delay_completes_later),
        cmocka_unit_test(test_cancel_stops_timer),
        cmocka_unit_test(test_deadline_before_delay),
        cmocka_unit_test(test_destroy_with_calls_in_flight),
        cmocka_unit_test(test_many_in_flight),
        cmocka_unit_test(test_malformed_args),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_reply_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
