/*
 * test_router_state.c - the agent loop's conversation state and the
 * digital-worker additions, in this process: broker on inproc sockets, raw
 * DEALER sockets playing the memory, llm and tools workers and the client.
 * Covers the router-local tool state.update (merge, several calls, bounds,
 * handoff), what llm.chat gets (state, fallback, response_format), tool
 * routing by service (claim.register to memory), the FINAL additions
 * (usage, model, state, handoff, fallback) and the usage totals written
 * with turn.end, the handoff gate, the "handoff" fallback, the streamed
 * tool/handoff PARTIALs and router_agent_loop_cancel in every turn state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agent_loop.h"
#include "agents.h"
#include "broker.h"
#include "mesh/mesh_log.h"
#include "test_router_util.h"

#define CLIENT_ID "client-1"
/* ROUTER_SLOTS_MAX (agent_turn.h): slots as compact JSON. */
#define T_SLOTS_MAX (16 * 1024)

#define T_TOOLS                                                                                    \
    "[{\"name\":\"policy.lookup\",\"description\":\"Look up a policy\",\"idempotent\":true,"       \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"policy_no\":{\"type\":\"string\"}},"    \
    "\"required\":[\"policy_no\"]}},"                                                              \
    "{\"name\":\"claim.register\",\"description\":\"Register\",\"idempotent\":true,"               \
    "\"service\":\"memory\",\"parameters\":{\"type\":\"object\",\"properties\":{\"policy_no\":"    \
    "{\"type\":\"string\"}},\"required\":[\"policy_no\"]}},"                                       \
    "{\"name\":\"state.update\",\"description\":\"Record state\",\"idempotent\":true,"             \
    "\"service\":\"router\",\"parameters\":{\"type\":\"object\",\"properties\":{"                  \
    "\"slots\":{\"type\":\"object\"},\"mode\":{\"type\":\"string\",\"maxLength\":32},"             \
    "\"records\":{\"type\":\"object\"},\"handoff\":{\"type\":\"object\",\"properties\":{"          \
    "\"reason\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":500}},"                         \
    "\"required\":[\"reason\"],\"additionalProperties\":false}},"                                  \
    "\"additionalProperties\":false}}]"

#define T_AGENT_QA                                                                                 \
    "{\"name\":\"policy_qa\",\"prompt\":{\"zh\":\"保单助手\",\"en\":\"Policy assistant\"},"    \
    "\"tools\":[\"policy.lookup\"],\"tier\":\"small\",\"max_steps\":3,"                            \
    "\"triage\":{\"keywords\":[\"policy\"],\"switch\":[\"policy question\"]},"                     \
    "\"fallback\":{\"zh\":\"抱歉\",\"en\":\"Sorry\"}}"

#define T_AGENT_INTAKE                                                                             \
    "{\"name\":\"intake\",\"prompt\":{\"zh\":\"报案助手\",\"en\":\"Intake assistant\"},"       \
    "\"tools\":[\"claim.register\",\"state.update\",\"policy.lookup\"],\"tier\":\"large\","        \
    "\"max_steps\":4,\"fallback_mode\":\"handoff\",\"response_format\":\"json\","                  \
    "\"triage\":{\"keywords\":[\"accident\"],\"switch\":[\"file a claim\"]},"                      \
    "\"fallback\":{\"zh\":\"稍后由同事为您处理\",\"en\":\"A colleague will take over\"}}"

static int make_data_dir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/mesh-router-test-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char agents[1024];
    snprintf(agents, sizeof(agents), "%s/agents", dir);
    if (mkdir(agents, 0700) != 0 || rt_write_file(dir, "tools.json", T_TOOLS) != 0 ||
        rt_write_file(agents, "policy_qa.json", T_AGENT_QA) != 0 ||
        rt_write_file(agents, "intake.json", T_AGENT_INTAKE) != 0)
        return -1;
    return 0;
}

static int setup(void **state)
{
    /* The client has a known identity, so a test can cancel its turns. */
    rt_fx_opts_t o = {.tag = "rs",
                      .conv_queue_max = 4,
                      .lease_ms = 30000,
                      .client_id = CLIENT_ID,
                      .make_dir = make_data_dir};
    return rt_fx_setup(state, &o);
}

/* ---- scripting helpers ---- */

static void send_turn(rt_fx_t *fx, const char *id, const char *conv, const char *text, bool stream)
{
    json_t *args = json_pack("{s:s, s:s, s:b}", "message_id", id, "text", text, "stream", stream);
    assert_int_equal(rt_client_request(fx->client, "agent", id, "turn", conv, 5000, false, args),
                     0);
    json_decref(args);
}

/* Equal as JSON values (object key order ignored). */
static void assert_json_eq(const json_t *got, const char *want_text)
{
    json_error_t je;
    json_t *want = json_loads(want_text, 0, &je);
    assert_non_null(want);
    if (!json_equal((json_t *)got, want)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        fail_msg("got %s, want %s", g ? g : "(null)", want_text);
    }
    json_decref(want);
}

/* A hash field's JSON text parsed and compared. */
static void assert_field_json(const json_t *fields, const char *k, const char *want_text)
{
    const char *s = rt_jstr(fields, k);
    if (!s)
        fail_msg("state field %s missing", k);
    json_error_t je;
    json_t *v = json_loads(s, 0, &je);
    assert_non_null(v);
    assert_json_eq(v, want_text);
    json_decref(v);
}

static json_t *update_call(const char *id, json_t *arguments)
{
    return json_pack("{s:s, s:s, s:o}", "id", id, "name", "state.update", "arguments", arguments);
}

/* ---- state.update ---- */

static void test_state_update_merge(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "m1", "conv-s1", "the accident was yesterday", false);
    rt_begin_with(fx, "m1",
                  json_pack("{s:s, s:s, s:s, s:s}", "agent", "intake", "slots",
                            "{\"a\":\"1\",\"b\":2}", "records", "{\"x\":{\"k\":1}}", "turns", "3"));
    /* Step 1: the model sees the stored state parsed, the agent's fallback and format. */
    mesh_request_t l1;
    rt_llm_answer(
        fx,
        rt_calls_reply(json_pack("[o, o]",
                                 update_call("u1", json_pack("{s:{s:n, s:b}, s:s}", "slots", "b",
                                                             "c", 1, "mode", "batch")),
                                 update_call("u2", json_pack("{s:{s:s}, s:{s:[i]}}", "slots", "d",
                                                             "x", "records", "y", 1)))),
        &l1);
    assert_string_equal(rt_jstr(l1.args, "agent"), "intake");
    assert_json_eq(json_object_get(l1.args, "state"),
                   "{\"slots\":{\"a\":\"1\",\"b\":2},\"records\":{\"x\":{\"k\":1}}}");
    assert_string_equal(rt_jstr(l1.args, "fallback"), "handoff");
    assert_string_equal(rt_jstr(l1.args, "response_format"), "json");
    mesh_request_clear(&l1);
    /* Both updates run in the router: no tools request. Step 2 sees them merged in order. */
    mesh_request_t l2;
    rt_llm_answer(fx, rt_text_reply("noted"), &l2);
    assert_json_eq(json_object_get(l2.args, "state"),
                   "{\"slots\":{\"a\":\"1\",\"c\":true,\"d\":\"x\"},\"mode\":\"batch\","
                   "\"records\":{\"x\":{\"k\":1},\"y\":[1]}}");
    json_t *msgs = json_object_get(l2.args, "messages");
    json_t *t1 = json_array_get(msgs, 2), *t2 = json_array_get(msgs, 3);
    assert_string_equal(rt_jstr(t1, "tool_call_id"), "u1");
    assert_true(json_is_true(json_object_get(t1, "ok")));
    json_error_t je;
    json_t *r1 = json_loads(rt_jstr(t1, "text"), 0, &je);
    /* The first call's result shows the slots as merged by it (d not yet). */
    assert_json_eq(r1, "{\"slots\":{\"a\":\"1\",\"c\":true},\"mode\":\"batch\"}");
    json_decref(r1);
    json_t *r2 = json_loads(rt_jstr(t2, "text"), 0, &je);
    assert_json_eq(json_object_get(r2, "slots"), "{\"a\":\"1\",\"c\":true,\"d\":\"x\"}");
    json_decref(r2);
    mesh_request_clear(&l2);
    rt_no_req(fx, fx->tools, 10);

    mesh_request_t e;
    rt_end_ok(fx, &e);
    json_t *fields = json_object_get(e.args, "state");
    assert_string_equal(rt_jstr(fields, "agent"), "intake");
    assert_field_json(fields, "slots", "{\"a\":\"1\",\"c\":true,\"d\":\"x\"}");
    assert_field_json(fields, "records", "{\"x\":{\"k\":1},\"y\":[1]}");
    assert_string_equal(rt_jstr(fields, "mode"), "batch");
    assert_null(json_object_get(fields, "handoff"));
    /* The llm FINALs carried no usage: the totals are written as 0. */
    assert_string_equal(rt_jstr(fields, "usage_prompt_tokens"), "0");
    mesh_request_clear(&e);

    mesh_reply_t rep;
    rt_client_final(fx, "m1", &rep);
    assert_int_equal(rep.status, 0);
    assert_json_eq(json_object_get(rep.data, "state"),
                   "{\"slots\":{\"a\":\"1\",\"c\":true,\"d\":\"x\"},\"mode\":\"batch\","
                   "\"records\":{\"x\":{\"k\":1},\"y\":[1]}}");
    assert_null(json_object_get(rep.data, "handoff"));
    assert_json_eq(json_object_get(rep.data, "tool_calls"),
                   "[{\"name\":\"state.update\",\"ok\":true},{\"name\":\"state.update\","
                   "\"ok\":true}]");
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

static void test_state_update_invalid(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "m2", "conv-s2", "accident", false);
    rt_begin_with(fx, "m2", json_pack("{s:s, s:s}", "agent", "intake", "slots", "{\"a\":1}"));
    char *big = malloc(T_SLOTS_MAX + 1);
    memset(big, 'x', T_SLOTS_MAX);
    big[T_SLOTS_MAX] = '\0';
    rt_llm_answer(fx,
                  rt_calls_reply(json_pack(
                      "[o, o, o, o]", update_call("i1", json_pack("{s:{s:{}}}", "slots", "nested")),
                      update_call("i2", json_pack("{s:{s:s}}", "slots", "big", big)),
                      update_call("i3", json_pack("{s:i}", "mode", 7)),
                      update_call("i4", json_pack("{s:{s:s}}", "handoff", "reason", "")))),
                  NULL);
    free(big);
    mesh_request_t l2;
    rt_llm_answer(fx, rt_text_reply("ok"), &l2);
    json_t *msgs = json_object_get(l2.args, "messages");
    for (size_t i = 2; i < 6; i++) {
        json_t *tm = json_array_get(msgs, i);
        assert_false(json_is_true(json_object_get(tm, "ok")));
        assert_non_null(strstr(rt_jstr(tm, "text"), "invalid_tool_arguments"));
    }
    assert_non_null(strstr(rt_jstr(json_array_get(msgs, 2), "text"), "slots.nested"));
    assert_non_null(strstr(rt_jstr(json_array_get(msgs, 3), "text"), "slots too large"));
    /* Nothing changed. */
    assert_json_eq(json_object_get(l2.args, "state"), "{\"slots\":{\"a\":1},\"records\":{}}");
    mesh_request_clear(&l2);
    mesh_request_t e;
    rt_end_ok(fx, &e);
    json_t *fields = json_object_get(e.args, "state");
    assert_null(json_object_get(fields, "slots"));
    assert_null(json_object_get(fields, "mode"));
    assert_null(json_object_get(fields, "handoff"));
    mesh_request_clear(&e);
    mesh_reply_t rep;
    rt_client_final(fx, "m2", &rep);
    assert_int_equal(rep.status, 0);
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

/* state.update {handoff} on a streamed turn: tool and handoff PARTIALs, the
 * handoff recorded with turn.end and shown in the FINAL. */
static void test_state_update_handoff_stream(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "m3", "conv-s3", "accident, my passenger is hurt", true);
    rt_begin_with(fx, "m3", json_object());
    uint64_t before = (uint64_t)time(NULL) * 1000u;
    rt_llm_answer(
        fx,
        rt_calls_reply(json_pack(
            "[o]", update_call("h1", json_pack("{s:{s:s}}", "handoff", "reason", "injury")))),
        NULL);
    mesh_reply_t p;
    rt_client_partial(fx, &p);
    assert_json_eq(json_object_get(p.data, "tool"),
                   "{\"name\":\"state.update\",\"call_id\":\"h1\",\"phase\":\"start\"}");
    mesh_reply_clear(&p);
    rt_client_partial(fx, &p);
    assert_json_eq(json_object_get(p.data, "handoff"),
                   "{\"state\":\"pending\",\"reason\":\"injury\"}");
    mesh_reply_clear(&p);
    rt_client_partial(fx, &p);
    assert_json_eq(json_object_get(p.data, "tool"),
                   "{\"name\":\"state.update\",\"call_id\":\"h1\",\"phase\":\"end\",\"ok\":true}");
    mesh_reply_clear(&p);
    mesh_request_t l2;
    rt_llm_answer(fx, rt_text_reply("A colleague will call you."), &l2);
    assert_string_equal(rt_jstr(json_object_get(l2.args, "state"), "handoff"), "pending");
    assert_string_equal(rt_jstr(json_object_get(l2.args, "state"), "handoff_reason"), "injury");
    mesh_request_clear(&l2);
    mesh_request_t e;
    rt_end_ok(fx, &e);
    json_t *fields = json_object_get(e.args, "state");
    assert_string_equal(rt_jstr(fields, "agent"), "intake"); /* triage: "accident" */
    assert_string_equal(rt_jstr(fields, "handoff"), "pending");
    assert_string_equal(rt_jstr(fields, "handoff_reason"), "injury");
    uint64_t at = strtoull(rt_jstr(fields, "handoff_at"), NULL, 10);
    assert_true(at >= before && at <= before + 60000);
    mesh_request_clear(&e);
    mesh_reply_t rep;
    rt_client_final(fx, "m3", &rep);
    assert_string_equal(rt_jstr(rep.data, "handoff"), "pending");
    assert_string_equal(rt_jstr(json_object_get(rep.data, "state"), "handoff"), "pending");
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

/* ---- tool routing ---- */

static void test_tool_routing_by_service(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "m4", "conv-r", "accident P10023", true);
    rt_begin_with(fx, "m4", json_object());
    rt_llm_answer(
        fx,
        rt_calls_reply(json_pack("[{s:s, s:s, s:{s:s}}, {s:s, s:s, s:{s:s}}]", "id", "c1", "name",
                                 "claim.register", "arguments", "policy_no", "P10023", "id", "c2",
                                 "name", "policy.lookup", "arguments", "policy_no", "P10023")),
        NULL);
    /* claim.register goes to memory (tools.json "service"), policy.lookup to tools. */
    mesh_request_t rm, rt;
    rt_next_req(fx, fx->memory, &rm, "tool.call");
    assert_string_equal(rt_jstr(rm.args, "name"), "claim.register");
    assert_string_equal(rt_jstr(rm.args, "call_id"), "c1");
    assert_true(rm.idem);
    assert_string_equal(rm.conv, "conv-r");
    rt_next_req(fx, fx->tools, &rt, "tool.call");
    assert_string_equal(rt_jstr(rt.args, "name"), "policy.lookup");
    /* Streamed: a start per call, then an end per result as it comes. */
    mesh_reply_t p;
    const char *starts[2] = {"c1", "c2"};
    for (int i = 0; i < 2; i++) {
        rt_client_partial(fx, &p);
        assert_string_equal(rt_jstr(json_object_get(p.data, "tool"), "call_id"), starts[i]);
        assert_string_equal(rt_jstr(json_object_get(p.data, "tool"), "phase"), "start");
        assert_null(json_object_get(json_object_get(p.data, "tool"), "ok"));
        mesh_reply_clear(&p);
    }
    rt_reply(fx->memory, &rm, 0,
             json_pack("{s:b, s:{s:s, s:b}}", "ok", 1, "result", "claim_no", "CLM20261129000001",
                       "created", 1));
    rt_client_partial(fx, &p);
    assert_json_eq(json_object_get(p.data, "tool"), "{\"name\":\"claim.register\",\"call_id\":"
                                                    "\"c1\",\"phase\":\"end\",\"ok\":true}");
    mesh_reply_clear(&p);
    rt_reply(
        fx->tools, &rt, 0,
        json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", "not_found", "message", "no"));
    rt_client_partial(fx, &p);
    assert_json_eq(json_object_get(p.data, "tool"), "{\"name\":\"policy.lookup\",\"call_id\":"
                                                    "\"c2\",\"phase\":\"end\",\"ok\":false}");
    mesh_reply_clear(&p);
    mesh_request_clear(&rm);
    mesh_request_clear(&rt);
    mesh_request_t l2;
    rt_llm_answer(fx, rt_text_reply("CLM20261129000001"), &l2);
    json_t *tm = json_array_get(json_object_get(l2.args, "messages"), 2);
    assert_non_null(strstr(rt_jstr(tm, "text"), "CLM20261129000001"));
    mesh_request_clear(&l2);
    rt_end_ok(fx, NULL);
    mesh_reply_t rep;
    rt_client_final(fx, "m4", &rep);
    assert_int_equal(rep.status, 0);
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

/* ---- usage ---- */

static void test_usage_sums(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "m5", "conv-u", "policy P10023?", false);
    rt_begin_with(fx, "m5",
                  json_pack("{s:s, s:s, s:s, s:s}", "agent", "policy_qa", "usage_prompt_tokens",
                            "100", "usage_completion_tokens", "50", "usage_cost_usd", "0.5"));
    rt_llm_answer(fx,
                  json_pack("{s:s, s:[{s:s, s:s, s:{s:s}}], s:{s:i, s:i, s:f}, s:s, s:s}", "type",
                            "tool_calls", "calls", "id", "c1", "name", "policy.lookup", "arguments",
                            "policy_no", "P10023", "usage", "prompt_tokens", 10,
                            "completion_tokens", 5, "cost_usd", 0.25, "model", "m-small", "backend",
                            "openai"),
                  NULL);
    mesh_request_t r;
    rt_next_req(fx, fx->tools, &r, "tool.call");
    rt_reply(fx->tools, &r, 0, json_pack("{s:b, s:{}}", "ok", 1, "result"));
    mesh_request_clear(&r);
    rt_llm_answer(fx,
                  json_pack("{s:s, s:s, s:{s:i, s:i, s:f}, s:s, s:{s:s, s:s}}", "type", "text",
                            "text", "answer", "usage", "prompt_tokens", 20, "completion_tokens", 7,
                            "cost_usd", 0.125, "model", "rules", "fallback", "backend", "rules",
                            "reason", "circuit open"),
                  NULL);
    mesh_request_t e;
    rt_end_ok(fx, &e);
    json_t *fields = json_object_get(e.args, "state");
    /* Running totals: 100 + 10 + 20, 50 + 5 + 7, 0.5 + 0.25 + 0.125. */
    assert_string_equal(rt_jstr(fields, "usage_prompt_tokens"), "130");
    assert_string_equal(rt_jstr(fields, "usage_completion_tokens"), "62");
    assert_string_equal(rt_jstr(fields, "usage_cost_usd"), "0.875");
    mesh_request_clear(&e);
    mesh_reply_t rep;
    rt_client_final(fx, "m5", &rep);
    /* The FINAL: this turn's sums, the last call's model, the fallback that answered. */
    assert_json_eq(json_object_get(rep.data, "usage"),
                   "{\"prompt_tokens\":30,\"completion_tokens\":12,\"cost_usd\":0.375}");
    assert_string_equal(rt_jstr(rep.data, "model"), "rules");
    assert_json_eq(json_object_get(rep.data, "fallback"),
                   "{\"backend\":\"rules\",\"reason\":\"circuit open\"}");
    assert_json_eq(json_object_get(rep.data, "state"), "{\"slots\":{},\"records\":{}}");
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

/* ---- handoff gate and fallback ---- */

static void test_handoff_gate(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "m6", "conv-g", "hello? anyone there? I want to file a claim", true);
    rt_begin_with(fx, "m6",
                  json_pack("{s:s, s:s, s:s, s:s}", "agent", "policy_qa", "handoff", "human",
                            "handoff_reason", "dispute", "slots", "{\"a\":1}"));
    /* No model, no tool: straight to turn.end without messages. */
    mesh_request_t e;
    rt_end_ok(fx, &e);
    assert_int_equal(json_array_size(json_object_get(e.args, "messages")), 0);
    json_t *fields = json_object_get(e.args, "state");
    /* The switch phrase does not move a conversation a person holds. */
    assert_string_equal(rt_jstr(fields, "agent"), "policy_qa");
    assert_null(json_object_get(fields, "handoff"));
    assert_null(json_object_get(fields, "slots"));
    assert_string_equal(rt_jstr(json_object_get(e.args, "reply"), "reply"), "");
    mesh_request_clear(&e);
    mesh_reply_t rep;
    rt_client_final(fx, "m6", &rep);
    assert_int_equal(rep.status, 0);
    assert_string_equal(rt_jstr(rep.data, "reply"), "");
    assert_string_equal(rt_jstr(rep.data, "handoff"), "human");
    assert_int_equal(json_integer_value(json_object_get(rep.data, "steps")), 0);
    assert_json_eq(json_object_get(rep.data, "state"),
                   "{\"slots\":{\"a\":1},\"records\":{},\"handoff\":\"human\","
                   "\"handoff_reason\":\"dispute\"}");
    mesh_reply_clear(&rep);
    rt_no_req(fx, fx->llm, 20);
    rt_wait_idle(fx);

    /* pending gates too. */
    send_turn(fx, "m7", "conv-g", "still there?", false);
    rt_begin_with(fx, "m7", json_pack("{s:s, s:s}", "agent", "intake", "handoff", "pending"));
    rt_end_ok(fx, NULL);
    rt_client_final(fx, "m7", &rep);
    assert_string_equal(rt_jstr(rep.data, "handoff"), "pending");
    assert_string_equal(rt_jstr(rep.data, "reply"), "");
    mesh_reply_clear(&rep);
    rt_no_req(fx, fx->llm, 20);
    rt_wait_idle(fx);
}

static void test_fallback_handoff(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "m8", "conv-f", "accident on the ring road", true);
    rt_begin_with(fx, "m8", json_object());
    mesh_request_t r;
    rt_next_req(fx, fx->llm, &r, "llm.chat");
    rt_worker_reply(fx->llm, true, r.id, MESH_EUNAVAIL, NULL);
    mesh_request_clear(&r);
    mesh_reply_t p;
    rt_client_partial(fx, &p);
    assert_json_eq(json_object_get(p.data, "handoff"),
                   "{\"state\":\"pending\",\"reason\":\"model unavailable: EUNAVAIL\"}");
    mesh_reply_clear(&p);
    mesh_request_t e;
    rt_end_ok(fx, &e);
    json_t *msgs = json_object_get(e.args, "messages");
    assert_int_equal(json_array_size(msgs), 1);
    assert_string_equal(rt_jstr(json_array_get(msgs, 0), "text"), "A colleague will take over");
    json_t *fields = json_object_get(e.args, "state");
    assert_string_equal(rt_jstr(fields, "handoff"), "pending");
    assert_string_equal(rt_jstr(fields, "handoff_reason"), "model unavailable: EUNAVAIL");
    mesh_request_clear(&e);
    mesh_reply_t rep;
    rt_client_final(fx, "m8", &rep);
    assert_int_equal(rep.status, 0);
    assert_string_equal(rt_jstr(rep.data, "reply"), "A colleague will take over");
    assert_string_equal(rt_jstr(rep.data, "handoff"), "pending");
    assert_json_eq(json_object_get(rep.data, "fallback"),
                   "{\"mode\":\"handoff\",\"reason\":\"model unavailable: EUNAVAIL\"}");
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);

    /* fallback_mode "rules" (policy_qa): the llm error still fails the turn. */
    send_turn(fx, "m9", "conv-f2", "policy?", false);
    rt_begin_with(fx, "m9", json_object());
    rt_next_req(fx, fx->llm, &r, "llm.chat");
    assert_string_equal(rt_jstr(r.args, "fallback"), "rules");
    assert_string_equal(rt_jstr(r.args, "response_format"), "");
    rt_worker_reply(fx->llm, true, r.id, MESH_EUNAVAIL, NULL);
    mesh_request_clear(&r);
    rt_client_final(fx, "m9", &rep);
    assert_int_equal(rep.status, MESH_EUNAVAIL);
    mesh_reply_clear(&rep);
    rt_next_req(fx, fx->memory, &r, "turn.abort");
    rt_reply(fx->memory, &r, 0, json_object());
    mesh_request_clear(&r);
    rt_wait_idle(fx);
}

/* ---- cancel ---- */

static void cancel(rt_fx_t *fx, const char *id)
{
    router_agent_loop_cancel(fx->al, CLIENT_ID, strlen(CLIENT_ID), id);
}

static void test_cancel_streaming(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "c1", "conv-c1", "policy?", true);
    rt_begin_with(fx, "c1", json_object());
    mesh_request_t r;
    rt_next_req(fx, fx->llm, &r, "llm.chat");
    json_t *d1 = json_pack("{s:s}", "delta", "Your policy "),
           *d2 = json_pack("{s:s}", "delta", "covers");
    rt_worker_reply(fx->llm, false, r.id, 0, d1);
    rt_worker_reply(fx->llm, false, r.id, 0, d2);
    json_decref(d1);
    json_decref(d2);
    mesh_reply_t p;
    rt_client_partial(fx, &p);
    mesh_reply_clear(&p);
    rt_client_partial(fx, &p);
    mesh_reply_clear(&p);
    /* Unknown ids and other clients' turns are ignored. */
    router_agent_loop_cancel(fx->al, "someone", 7, "c1");
    cancel(fx, "nope");
    cancel(fx, "c1");
    /* What was said is recorded, marked interrupted; the client gets nothing. */
    mesh_request_t e;
    rt_end_ok(fx, &e);
    json_t *msgs = json_object_get(e.args, "messages");
    assert_int_equal(json_array_size(msgs), 1);
    assert_json_eq(json_array_get(msgs, 0), "{\"role\":\"assistant\",\"text\":\"Your policy "
                                            "covers\",\"agent\":\"policy_qa\","
                                            "\"interrupted\":true}");
    json_t *stored = json_object_get(e.args, "reply");
    assert_string_equal(rt_jstr(stored, "reply"), "Your policy covers");
    assert_true(json_is_true(json_object_get(stored, "interrupted")));
    mesh_request_clear(&e);
    /* The model's late answer changes nothing. */
    rt_reply(fx->llm, &r, 0, rt_text_reply("Your policy covers everything"));
    mesh_request_clear(&r);
    rt_no_client_message(fx, 50);
    rt_wait_idle(fx);
}

static void test_cancel_tools_in_flight(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "c2", "conv-c2", "policy P10023?", false);
    rt_begin_with(fx, "c2", json_object());
    rt_llm_answer(fx,
                  rt_calls_reply(json_pack("[{s:s, s:s, s:{s:s}}]", "id", "k1", "name",
                                           "policy.lookup", "arguments", "policy_no", "P10023")),
                  NULL);
    mesh_request_t r;
    rt_next_req(fx, fx->tools, &r, "tool.call");
    cancel(fx, "c2");
    mesh_request_t e;
    rt_end_ok(fx, &e);
    json_t *msgs = json_object_get(e.args, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(
        rt_jstr(json_array_get(json_object_get(json_array_get(msgs, 0), "tool_calls"), 0), "id"),
        "k1");
    json_t *tm = json_array_get(msgs, 1);
    assert_string_equal(rt_jstr(tm, "role"), "tool");
    assert_false(json_is_true(json_object_get(tm, "ok")));
    assert_non_null(strstr(rt_jstr(tm, "text"), "cancelled"));
    mesh_request_clear(&e);
    rt_reply(fx->tools, &r, 0, json_pack("{s:b, s:{}}", "ok", 1, "result"));
    mesh_request_clear(&r);
    rt_no_req(fx, fx->llm, 20);
    rt_no_client_message(fx, 30);
    rt_wait_idle(fx);
}

static void test_cancel_before_anything_said(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "c3", "conv-c3", "policy?", false);
    rt_begin_with(fx, "c3", json_object());
    mesh_request_t l;
    rt_next_req(fx, fx->llm, &l, "llm.chat");
    cancel(fx, "c3");
    /* Nothing to record: the lease is released and the message stays pending. */
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.abort");
    assert_string_equal(rt_jstr(r.args, "message_id"), "c3");
    rt_reply(fx->memory, &r, 0, json_object());
    mesh_request_clear(&r);
    mesh_request_clear(&l);
    rt_no_client_message(fx, 30);
    rt_wait_idle(fx);
}

static void test_cancel_queued_and_beginning(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "q1", "conv-q", "policy one", false);
    send_turn(fx, "q2", "conv-q", "policy two", false);
    mesh_request_t b1;
    rt_next_req(fx, fx->memory, &b1, "turn.begin");
    assert_string_equal(rt_jstr(b1.args, "message_id"), "q1");
    /* q2 waits behind q1: dropped without a trace. */
    cancel(fx, "q2");
    assert_int_equal(router_agent_loop_active(fx->al), 1);
    /* q1's turn.begin is in flight: it may have taken the lease, so turn.abort. */
    cancel(fx, "q1");
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.abort");
    assert_string_equal(rt_jstr(r.args, "message_id"), "q1");
    assert_string_equal(rt_jstr(r.args, "owner"), rt_jstr(b1.args, "owner"));
    /* The late turn.begin answer is ignored. */
    rt_reply(fx->memory, &b1, 0,
             json_pack("{s:b, s:{}, s:[]}", "duplicate", 0, "state", "history"));
    mesh_request_clear(&b1);
    rt_reply(fx->memory, &r, 0, json_object());
    mesh_request_clear(&r);
    rt_no_req(fx, fx->memory, 30); /* no turn.begin for q2 */
    rt_no_req(fx, fx->llm, 5);
    rt_no_client_message(fx, 20);
    rt_wait_idle(fx);
}

/* The client's protocol CANCEL reaches the agent loop through the broker's
 * frontend; the llm call in flight gets a worker CANCEL. */
static void test_cancel_via_protocol(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "c5", "conv-c5", "policy?", true);
    rt_begin_with(fx, "c5", json_object());
    mesh_request_t r;
    rt_next_req(fx, fx->llm, &r, "llm.chat");
    json_t *d = json_pack("{s:s}", "delta", "Hi");
    rt_worker_reply(fx->llm, false, r.id, 0, d);
    json_decref(d);
    mesh_reply_t p;
    rt_client_partial(fx, &p);
    mesh_reply_clear(&p);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_cancel_encode("c5", &sb), 0);
    assert_int_equal(
        rt_send(fx->client, MESH_SIDE_CLIENT, MESH_C_CANCEL, "agent", sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
    /* The llm worker is told to stop. */
    rt_msg_t m;
    mesh_proto_msg_t pm;
    bool cancelled = false;
    uint64_t end = rt_now_ms() + RT_WAIT_MS;
    while (!cancelled && rt_now_ms() < end &&
           rt_expect(&fx->loop, fx->llm, MESH_SIDE_WORKER, &m, &pm, true, RT_WAIT_MS)) {
        cancelled = pm.cmd == MESH_W_CANCEL;
        rt_msg_free(&m);
    }
    assert_true(cancelled);
    mesh_request_t e;
    rt_end_ok(fx, &e);
    json_t *msgs = json_object_get(e.args, "messages");
    assert_string_equal(rt_jstr(json_array_get(msgs, 0), "text"), "Hi");
    assert_true(json_is_true(json_object_get(json_array_get(msgs, 0), "interrupted")));
    mesh_request_clear(&e);
    mesh_request_clear(&r);
    rt_no_client_message(fx, 30);
    rt_wait_idle(fx);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_update_merge, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_state_update_invalid, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_state_update_handoff_stream, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_tool_routing_by_service, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_usage_sums, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_handoff_gate, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_fallback_handoff, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_streaming, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_tools_in_flight, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_anything_said, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_queued_and_beginning, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_via_protocol, setup, rt_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
