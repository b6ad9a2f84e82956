/*
 * test_router_agent.c - the agent loop in this process: broker on inproc
 * sockets, raw DEALER sockets playing the memory, llm and tools workers and
 * the client. Each test scripts the workers' answers and checks what the
 * router asked and answered: the turn state machine, tool authorisation,
 * parallel tool calls, per-conversation order, duplicates, the lease
 * backoff, the step budget, streaming, validation and deadlines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_loop.h"
#include "agents.h"
#include "broker.h"
#include "mesh/mesh_log.h"
#include "test_router_util.h"

static int setup_with(void **state, uint32_t conv_queue_max, uint32_t lease_ms)
{
    rt_fx_opts_t o = {.tag = "ra", .conv_queue_max = conv_queue_max, .lease_ms = lease_ms};
    return rt_fx_setup(state, &o);
}

static int setup(void **state)
{
    return setup_with(state, 4, 30000);
}

static int setup_small_queue(void **state)
{
    return setup_with(state, 1, 30000);
}

/* A lease short enough that renewals (every T_SHORT_LEASE_MS / 3) happen within a test. */
#define T_SHORT_LEASE_MS 90

static int setup_short_lease(void **state)
{
    return setup_with(state, 4, T_SHORT_LEASE_MS);
}

/* ---- scripting helpers ---- */

static void send_turn(rt_fx_t *fx, const char *id, const char *conv, const char *text,
                      json_t *extra, uint32_t deadline)
{
    json_t *args = json_pack("{s:s, s:s}", "message_id", id, "text", text);
    if (extra) {
        json_object_update(args, extra);
        json_decref(extra); /* taken */
    }
    assert_int_equal(
        rt_client_request(fx->client, "agent", id, "turn", conv, deadline, false, args), 0);
    json_decref(args);
}

/* Memory: answer turn.begin with a history holding the user message. */
static void begin_ok(rt_fx_t *fx, const char *message_id, const char *state_agent)
{
    rt_begin_with(fx, message_id,
                  state_agent ? json_pack("{s:s}", "agent", state_agent) : json_object());
}

static void llm_text(rt_fx_t *fx, const char *text, mesh_request_t *seen)
{
    rt_llm_answer(fx, rt_text_reply(text), seen);
}

static void llm_calls(rt_fx_t *fx, json_t *calls, mesh_request_t *seen)
{
    rt_llm_answer(fx, rt_calls_reply(calls), seen);
}

/* ---- tests ---- */

static void test_turn_with_tool_call(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "m1", "conv-1", "我的保单 P10023 保障什么？", NULL, 5000);

    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.begin");
    assert_true(r.idem);
    assert_string_equal(r.conv, "conv-1");
    assert_int_equal(strlen(r.tp), 55); /* a traceparent is made when the client sent none */
    assert_int_equal(json_integer_value(json_object_get(r.args, "window")), 20);
    /* MESH_LEASE_MS is 30000 here, but a lease never outlives the turn's 5 s deadline. */
    json_int_t lease = json_integer_value(json_object_get(r.args, "lease_ms"));
    assert_true(lease > 4000 && lease <= 5000);
    assert_int_equal(strlen(rt_jstr(r.args, "owner")), 32);
    char tp[64], owner[64];
    snprintf(tp, sizeof(tp), "%s", r.tp);
    snprintf(owner, sizeof(owner), "%s", rt_jstr(r.args, "owner"));
    rt_reply(fx->memory, &r, 0,
             json_pack("{s:b, s:{}, s:[{s:s, s:s}]}", "duplicate", 0, "state", "history", "role",
                       "user", "text", "我的保单 P10023 保障什么？"));
    mesh_request_clear(&r);

    /* Step 1: the model asks for the policy. */
    mesh_request_t l1;
    llm_calls(fx,
              json_pack("[{s:s, s:s, s:{s:s}}]", "id", "call_1", "name", "policy.lookup",
                        "arguments", "policy_no", "P10023"),
              &l1);
    assert_true(l1.idem);
    /* One trace for the whole turn (same trace id); each sub-request names its
     * own child span of the router's turn span as parent, so the parent ids differ. */
    assert_int_equal(strlen(l1.tp), 55);
    assert_memory_equal(l1.tp, tp, 35);
    assert_memory_not_equal(l1.tp + 36, tp + 36, 16);
    assert_string_equal(rt_jstr(l1.args, "agent"), "policy_qa");
    assert_string_equal(rt_jstr(l1.args, "tier"), "small");
    assert_string_equal(rt_jstr(l1.args, "lang"), "zh");
    assert_string_equal(rt_jstr(l1.args, "system"), "你是保单问答助手");
    assert_int_equal(json_array_size(json_object_get(l1.args, "messages")), 1);
    json_t *tools = json_object_get(l1.args, "tools");
    assert_int_equal(json_array_size(tools), 1);
    assert_string_equal(rt_jstr(json_array_get(tools, 0), "name"), "policy.lookup");
    assert_false(json_is_true(json_object_get(l1.args, "stream")));
    assert_true(l1.deadline_ms <= 5000);
    mesh_request_clear(&l1);

    /* The tool runs on the tools worker, idempotent per its schema entry. */
    rt_next_req(fx, fx->tools, &r, "tool.call");
    assert_true(r.idem);
    assert_string_equal(rt_jstr(r.args, "name"), "policy.lookup");
    assert_string_equal(rt_jstr(r.args, "call_id"), "call_1");
    assert_string_equal(rt_jstr(json_object_get(r.args, "arguments"), "policy_no"), "P10023");
    rt_reply(fx->tools, &r, 0,
             json_pack("{s:b, s:{s:s, s:f}}", "ok", 1, "result", "status", "active", "ratio", 0.6));
    mesh_request_clear(&r);

    /* Step 2: the model sees the assistant call and the tool result. */
    mesh_request_t l2;
    llm_text(fx, "您的保单保障一般医疗（条款 2.1）。", &l2);
    json_t *msgs = json_object_get(l2.args, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    json_t *am = json_array_get(msgs, 1);
    assert_string_equal(rt_jstr(am, "role"), "assistant");
    assert_string_equal(rt_jstr(am, "text"), "");
    assert_string_equal(rt_jstr(json_array_get(json_object_get(am, "tool_calls"), 0), "id"),
                        "call_1");
    json_t *tm = json_array_get(msgs, 2);
    assert_string_equal(rt_jstr(tm, "role"), "tool");
    assert_string_equal(rt_jstr(tm, "name"), "policy.lookup");
    assert_string_equal(rt_jstr(tm, "tool_call_id"), "call_1");
    assert_true(json_is_true(json_object_get(tm, "ok")));
    assert_string_equal(rt_jstr(tm, "text"), "{\"status\":\"active\",\"ratio\":0.6}");
    mesh_request_clear(&l2);

    /* Finish: turn.end records this turn's messages, state and reply. */
    mesh_request_t e;
    rt_end_ok(fx, &e);
    assert_true(e.idem);
    assert_string_equal(rt_jstr(e.args, "owner"), owner);
    json_t *rec = json_object_get(e.args, "messages");
    assert_int_equal(json_array_size(rec), 3);
    assert_string_equal(rt_jstr(json_array_get(rec, 0), "role"), "assistant");
    assert_string_equal(rt_jstr(json_array_get(rec, 1), "role"), "tool");
    assert_string_equal(rt_jstr(json_array_get(rec, 2), "text"),
                        "您的保单保障一般医疗（条款 2.1）。");
    assert_string_equal(rt_jstr(json_object_get(e.args, "state"), "agent"), "policy_qa");
    assert_string_equal(rt_jstr(json_object_get(e.args, "reply"), "reply"),
                        "您的保单保障一般医疗（条款 2.1）。");
    mesh_request_clear(&e);

    mesh_reply_t rep;
    rt_client_final(fx, "m1", &rep);
    assert_int_equal(rep.status, 0);
    assert_string_equal(rt_jstr(rep.data, "conversation_id"), "conv-1");
    assert_string_equal(rt_jstr(rep.data, "message_id"), "m1");
    assert_string_equal(rt_jstr(rep.data, "agent"), "policy_qa");
    assert_string_equal(rt_jstr(rep.data, "reply"), "您的保单保障一般医疗（条款 2.1）。");
    assert_false(json_is_true(json_object_get(rep.data, "duplicate")));
    assert_int_equal(json_integer_value(json_object_get(rep.data, "steps")), 2);
    json_t *tc = json_object_get(rep.data, "tool_calls");
    assert_int_equal(json_array_size(tc), 1);
    assert_string_equal(rt_jstr(json_array_get(tc, 0), "name"), "policy.lookup");
    assert_true(json_is_true(json_object_get(json_array_get(tc, 0), "ok")));
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

static void test_tool_authorisation(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "m2", "conv-2", "policy question", NULL, 5000);
    begin_ok(fx, "m2", NULL);
    /* Not allowed for policy_qa, and bad arguments for an allowed tool: neither runs. */
    llm_calls(fx,
              json_pack("[{s:s, s:s, s:{s:s}}, {s:s, s:s, s:{s:s}}, {s:s, s:s, s:{s:s}}]", "id",
                        "c1", "name", "claim.register", "arguments", "policy_no", "P10023", "id",
                        "c2", "name", "policy.lookup", "arguments", "policy_no", "X1", "id", "c3",
                        "name", "policy.lookup", "arguments", "policy_no", "P10001"),
              NULL);
    /* Only the valid call reaches the tools worker. */
    mesh_request_t r;
    rt_next_req(fx, fx->tools, &r, "tool.call");
    assert_string_equal(rt_jstr(r.args, "call_id"), "c3");
    rt_reply(fx->tools, &r, 0,
             json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", "not_found", "message",
                       "no such policy"));
    mesh_request_clear(&r);
    mesh_request_t l2;
    llm_text(fx, "done", &l2);
    json_t *msgs = json_object_get(l2.args, "messages");
    assert_int_equal(json_array_size(msgs), 5); /* user, assistant, 3 tool messages in call order */
    json_t *t1 = json_array_get(msgs, 2), *t2 = json_array_get(msgs, 3),
           *t3 = json_array_get(msgs, 4);
    assert_string_equal(rt_jstr(t1, "tool_call_id"), "c1");
    assert_false(json_is_true(json_object_get(t1, "ok")));
    assert_non_null(strstr(rt_jstr(t1, "text"), "tool_not_allowed"));
    assert_string_equal(rt_jstr(t2, "tool_call_id"), "c2");
    assert_non_null(strstr(rt_jstr(t2, "text"), "invalid_tool_arguments"));
    assert_non_null(strstr(rt_jstr(t2, "text"), "policy_no"));
    assert_string_equal(rt_jstr(t3, "tool_call_id"), "c3");
    assert_false(json_is_true(json_object_get(t3, "ok")));
    assert_non_null(strstr(rt_jstr(t3, "text"), "not_found"));
    mesh_request_clear(&l2);
    rt_end_ok(fx, NULL);
    mesh_reply_t rep;
    rt_client_final(fx, "m2", &rep);
    assert_int_equal(rep.status, 0);
    json_t *tc = json_object_get(rep.data, "tool_calls");
    assert_int_equal(json_array_size(tc), 3);
    for (size_t i = 0; i < 3; i++)
        assert_false(json_is_true(json_object_get(json_array_get(tc, i), "ok")));
    mesh_reply_clear(&rep);
    rt_no_req(fx, fx->tools, 20);
    rt_wait_idle(fx);
}

static void test_parallel_tools(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "m3", "conv-3", "claim for P10023", NULL, 5000);
    begin_ok(fx, "m3", NULL);
    mesh_request_t l1;
    llm_calls(fx,
              json_pack("[{s:s, s:s, s:{s:s}}, {s:s, s:s, s:{s:s}}]", "id", "a", "name",
                        "policy.lookup", "arguments", "policy_no", "P10023", "id", "b", "name",
                        "claim.register", "arguments", "policy_no", "P10023"),
              &l1);
    assert_string_equal(rt_jstr(l1.args, "agent"), "claims"); /* triage: "claim" */
    assert_string_equal(rt_jstr(l1.args, "tier"), "large");
    assert_string_equal(rt_jstr(l1.args, "lang"), "en");
    mesh_request_clear(&l1);
    /* Both calls are in flight at once; answer them in reverse order. */
    mesh_request_t ra, rb;
    rt_next_req(fx, fx->tools, &ra, "tool.call");
    rt_next_req(fx, fx->tools, &rb, "tool.call");
    mesh_request_t *lookup = strcmp(rt_jstr(ra.args, "name"), "policy.lookup") == 0 ? &ra : &rb;
    mesh_request_t *claim = lookup == &ra ? &rb : &ra;
    assert_true(lookup->idem);
    assert_false(claim->idem); /* claim.register is not idempotent in the catalogue */
    rt_reply(fx->tools, claim, 0, json_pack("{s:b, s:{s:s}}", "ok", 1, "result", "claim", "C1"));
    rt_no_req(fx, fx->llm, 20); /* waits for all results */
    rt_reply(fx->tools, lookup, 0, json_pack("{s:b, s:{}}", "ok", 1, "result"));
    mesh_request_clear(&ra);
    mesh_request_clear(&rb);
    mesh_request_t l2;
    llm_text(fx, "Claim C1 registered.", &l2);
    json_t *msgs = json_object_get(l2.args, "messages");
    /* Tool messages follow the order of the calls, not of the answers. */
    assert_string_equal(rt_jstr(json_array_get(msgs, 2), "tool_call_id"), "a");
    assert_string_equal(rt_jstr(json_array_get(msgs, 3), "tool_call_id"), "b");
    mesh_request_clear(&l2);
    rt_end_ok(fx, NULL);
    mesh_reply_t rep;
    rt_client_final(fx, "m3", &rep);
    assert_string_equal(rt_jstr(rep.data, "agent"), "claims");
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

static void test_conversation_order(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "A", "conv-o", "first policy question", NULL, 5000);
    send_turn(fx, "B", "conv-o", "second policy question", NULL, 5000);
    send_turn(fx, "X", "conv-other", "other conversation", NULL, 5000);
    /* A and X begin at once (different conversations); B waits for A. */
    mesh_request_t r1, r2;
    rt_next_req(fx, fx->memory, &r1, "turn.begin");
    rt_next_req(fx, fx->memory, &r2, "turn.begin");
    mesh_request_t *ra = strcmp(rt_jstr(r1.args, "message_id"), "A") == 0 ? &r1 : &r2;
    mesh_request_t *rx = ra == &r1 ? &r2 : &r1;
    assert_string_equal(rt_jstr(ra->args, "message_id"), "A");
    assert_string_equal(rt_jstr(rx->args, "message_id"), "X");
    rt_no_req(fx, fx->memory, 30);
    rt_reply(fx->memory, ra, 0, json_pack("{s:b, s:{}, s:[]}", "duplicate", 0, "state", "history"));
    llm_text(fx, "answer A", NULL);
    /* The next memory request is A's turn.end, not B's turn.begin. */
    mesh_request_t e;
    rt_next_req(fx, fx->memory, &e, "turn.end");
    assert_string_equal(rt_jstr(e.args, "message_id"), "A");
    rt_no_req(fx, fx->memory, 30);
    rt_reply(fx->memory, &e, 0, json_pack("{s:b}", "duplicate", 0));
    mesh_request_clear(&e);
    mesh_reply_t rep;
    rt_client_final(fx, "A", &rep);
    mesh_reply_clear(&rep);
    /* Now B starts, and gets the agent recorded by A through state. */
    rt_next_req(fx, fx->memory, &e, "turn.begin");
    assert_string_equal(rt_jstr(e.args, "message_id"), "B");
    rt_reply(
        fx->memory, &e, 0,
        json_pack("{s:b, s:{s:s}, s:[]}", "duplicate", 0, "state", "agent", "claims", "history"));
    mesh_request_clear(&e);
    mesh_request_t l;
    llm_text(fx, "answer B", &l);
    assert_string_equal(rt_jstr(l.args, "agent"), "claims");
    mesh_request_clear(&l);
    rt_end_ok(fx, NULL);
    rt_client_final(fx, "B", &rep);
    assert_string_equal(rt_jstr(rep.data, "reply"), "answer B");
    mesh_reply_clear(&rep);
    /* X was never blocked by A or B. */
    rt_reply(fx->memory, rx, 0, json_pack("{s:b, s:{}, s:[]}", "duplicate", 0, "state", "history"));
    mesh_request_clear(&r1);
    mesh_request_clear(&r2);
    llm_text(fx, "answer X", NULL);
    rt_end_ok(fx, NULL);
    rt_client_final(fx, "X", &rep);
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

static void test_conversation_queue_full(void **state)
{
    rt_fx_t *fx = *state; /* conv_queue_max 1 */
    send_turn(fx, "q1", "conv-q", "one", NULL, 5000);
    send_turn(fx, "q2", "conv-q", "two", NULL, 5000);
    send_turn(fx, "q3", "conv-q", "three", NULL, 5000);
    mesh_reply_t rep;
    rt_client_final(fx, "q3", &rep);
    assert_int_equal(rep.status, MESH_EBUSY);
    mesh_reply_clear(&rep);
    for (int i = 0; i < 2; i++) {
        const char *id = i == 0 ? "q1" : "q2";
        begin_ok(fx, id, NULL);
        llm_text(fx, id, NULL);
        rt_end_ok(fx, NULL);
        rt_client_final(fx, id, &rep);
        assert_int_equal(rep.status, 0);
        mesh_reply_clear(&rep);
    }
    rt_wait_idle(fx);
}

static void test_duplicate(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "dup", "conv-d", "again", NULL, 5000);
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.begin");
    char owner[64];
    snprintf(owner, sizeof(owner), "%s", rt_jstr(r.args, "owner"));
    rt_reply(fx->memory, &r, 0,
             json_pack("{s:b, s:{s:s, s:s, s:s, s:s, s:b, s:[], s:i}}", "duplicate", 1, "reply",
                       "conversation_id", "conv-d", "message_id", "dup", "agent", "policy_qa",
                       "reply", "the first answer", "duplicate", 0, "tool_calls", "steps", 1));
    mesh_request_clear(&r);
    mesh_reply_t rep;
    rt_client_final(fx, "dup", &rep);
    assert_int_equal(rep.status, 0);
    assert_string_equal(rt_jstr(rep.data, "reply"), "the first answer");
    assert_true(json_is_true(json_object_get(rep.data, "duplicate")));
    mesh_reply_clear(&rep);
    /* The lease taken by turn.begin is released; the model is not asked. */
    rt_next_req(fx, fx->memory, &r, "turn.abort");
    assert_string_equal(rt_jstr(r.args, "owner"), owner);
    rt_reply(fx->memory, &r, 0, json_object());
    mesh_request_clear(&r);
    rt_no_req(fx, fx->llm, 20);
    rt_wait_idle(fx);
}

static void test_lease_busy_backoff(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "lb", "conv-l", "policy?", NULL, 5000);
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.begin");
    rt_reply(fx->memory, &r, MESH_EBUSY, NULL); /* another router holds the lease */
    mesh_request_clear(&r);
    uint64_t t0 = rt_now_ms();
    begin_ok(fx, "lb", NULL); /* retried after a backoff */
    assert_true(rt_now_ms() - t0 >= ROUTER_LEASE_BACKOFF_MIN_MS - 2);
    llm_text(fx, "ok", NULL);
    rt_end_ok(fx, NULL);
    mesh_reply_t rep;
    rt_client_final(fx, "lb", &rep);
    assert_int_equal(rep.status, 0);
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

static void test_step_budget(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "sb", "conv-s", "我要理赔", NULL, 5000); /* claims: max_steps 2 */
    begin_ok(fx, "sb", NULL);
    llm_calls(fx,
              json_pack("[{s:s, s:s, s:{s:s}}]", "id", "k1", "name", "policy.lookup", "arguments",
                        "policy_no", "P10023"),
              NULL);
    mesh_request_t r;
    rt_next_req(fx, fx->tools, &r, "tool.call");
    rt_reply(fx->tools, &r, 0, json_pack("{s:b, s:{}}", "ok", 1, "result"));
    mesh_request_clear(&r);
    /* Second and last step asks for tools again: the budget is spent, tools do not run. */
    llm_calls(fx,
              json_pack("[{s:s, s:s, s:{s:s}}]", "id", "k2", "name", "policy.lookup", "arguments",
                        "policy_no", "P10023"),
              NULL);
    mesh_reply_t rep;
    rt_client_final(fx, "sb", &rep);
    assert_int_equal(rep.status, MESH_ESTEPS);
    assert_string_equal(rep.err, "理赔暂时无法完成"); /* the fallback in the customer's language */
    assert_string_equal(rt_jstr(rep.data, "reply"), "理赔暂时无法完成");
    assert_int_equal(json_integer_value(json_object_get(rep.data, "steps")), 2);
    mesh_reply_clear(&rep);
    rt_next_req(fx, fx->memory, &r, "turn.abort");
    rt_reply(fx->memory, &r, 0, json_object());
    mesh_request_clear(&r);
    rt_no_req(fx, fx->tools, 20);
    rt_wait_idle(fx);
}

static void test_llm_failure_aborts(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "lf", "conv-f", "policy?", NULL, 5000);
    begin_ok(fx, "lf", NULL);
    mesh_request_t r;
    rt_next_req(fx, fx->llm, &r, "llm.chat");
    rt_worker_reply(fx->llm, true, r.id, MESH_EUNAVAIL, NULL);
    mesh_request_clear(&r);
    mesh_reply_t rep;
    rt_client_final(fx, "lf", &rep);
    assert_int_equal(rep.status, MESH_EUNAVAIL);
    assert_non_null(strstr(rep.err, "llm"));
    mesh_reply_clear(&rep);
    rt_next_req(fx, fx->memory, &r, "turn.abort");
    assert_string_equal(rt_jstr(r.args, "message_id"), "lf");
    rt_reply(fx->memory, &r, 0, json_object());
    mesh_request_clear(&r);
    rt_wait_idle(fx);
}

static void test_streaming(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "st", "conv-st", "policy?", json_pack("{s:b}", "stream", 1), 5000);
    begin_ok(fx, "st", NULL);
    mesh_request_t r;
    rt_next_req(fx, fx->llm, &r, "llm.chat");
    assert_true(json_is_true(json_object_get(r.args, "stream")));
    json_t *d1 = json_pack("{s:s}", "delta", "Hel"), *d2 = json_pack("{s:s}", "delta", "lo");
    rt_worker_reply(fx->llm, false, r.id, 0, d1);
    rt_worker_reply(fx->llm, false, r.id, 0, d2);
    json_decref(d1);
    json_decref(d2);
    rt_reply(fx->llm, &r, 0, json_pack("{s:s, s:s}", "type", "text", "text", "Hello"));
    mesh_request_clear(&r);
    bool final;
    mesh_reply_t rep;
    assert_true(rt_client_next(&fx->loop, fx->client, &final, &rep, RT_WAIT_MS));
    assert_false(final);
    assert_string_equal(rep.id, "st");
    assert_string_equal(rt_jstr(rep.data, "delta"), "Hel");
    mesh_reply_clear(&rep);
    assert_true(rt_client_next(&fx->loop, fx->client, &final, &rep, RT_WAIT_MS));
    assert_false(final);
    assert_string_equal(rt_jstr(rep.data, "delta"), "lo");
    mesh_reply_clear(&rep);
    rt_end_ok(fx, NULL);
    rt_client_final(fx, "st", &rep);
    assert_string_equal(rt_jstr(rep.data, "reply"), "Hello");
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

/* The llm worker dies mid-stream: the idempotent call is retried on another
 * worker and the client does not see the text it already has a second time. */
static void test_stream_retry_no_repeat(void **state)
{
    rt_fx_t *fx = *state;
    void *llm2 = rt_dealer(fx->zctx, fx->back);
    rt_worker_ready(llm2, "llm", 16);
    uint64_t end = rt_now_ms() + RT_WAIT_MS;
    while (router_broker_workers(fx->b, "llm") < 2 && rt_now_ms() < end)
        rt_spin(&fx->loop, 1);
    assert_int_equal(router_broker_workers(fx->b, "llm"), 2);

    send_turn(fx, "sr", "conv-sr", "policy?", json_pack("{s:b}", "stream", 1), 5000);
    begin_ok(fx, "sr", NULL);
    /* Whichever worker got the call streams "Hel" + "lo" and dies. */
    mesh_request_t r;
    void *first = NULL, *second = NULL;
    end = rt_now_ms() + RT_WAIT_MS;
    while (!first && rt_now_ms() < end) {
        if (rt_worker_next(&fx->loop, fx->llm, &r, 5)) {
            first = fx->llm;
            second = llm2;
        } else if (rt_worker_next(&fx->loop, llm2, &r, 5)) {
            first = llm2;
            second = fx->llm;
        }
    }
    assert_non_null(first);
    assert_true(r.idem);
    json_t *d1 = json_pack("{s:s}", "delta", "Hel"), *d2 = json_pack("{s:s}", "delta", "lo");
    rt_worker_reply(first, false, r.id, 0, d1);
    rt_worker_reply(first, false, r.id, 0, d2);
    bool final;
    mesh_reply_t rep;
    assert_true(rt_client_next(&fx->loop, fx->client, &final, &rep, RT_WAIT_MS));
    assert_string_equal(rt_jstr(rep.data, "delta"), "Hel");
    mesh_reply_clear(&rep);
    assert_true(rt_client_next(&fx->loop, fx->client, &final, &rep, RT_WAIT_MS));
    assert_string_equal(rt_jstr(rep.data, "delta"), "lo");
    mesh_reply_clear(&rep);
    rt_send(first, MESH_SIDE_WORKER, MESH_W_DISCONNECT, NULL, NULL, 0);
    mesh_request_t r2;
    assert_true(rt_worker_next(&fx->loop, second, &r2, RT_WAIT_MS));
    assert_string_equal(r2.id, r.id); /* the same request, retried */
    json_t *d3 = json_pack("{s:s}", "delta", "Hello"), *d4 = json_pack("{s:s}", "delta", " world");
    rt_worker_reply(second, false, r2.id, 0, d3);
    rt_worker_reply(second, false, r2.id, 0, d4);
    rt_reply(second, &r2, 0, json_pack("{s:s, s:s}", "type", "text", "text", "Hello world"));
    json_decref(d1);
    json_decref(d2);
    json_decref(d3);
    json_decref(d4);
    mesh_request_clear(&r);
    mesh_request_clear(&r2);
    /* "Hello" was already on the client's screen: only " world" follows. */
    assert_true(rt_client_next(&fx->loop, fx->client, &final, &rep, RT_WAIT_MS));
    assert_false(final);
    assert_string_equal(rt_jstr(rep.data, "delta"), " world");
    mesh_reply_clear(&rep);
    rt_end_ok(fx, NULL);
    rt_client_final(fx, "sr", &rep);
    assert_string_equal(rt_jstr(rep.data, "reply"), "Hello world");
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
    zmq_close(llm2);
}

static void expect_rejected(rt_fx_t *fx, const char *id, json_t *args, const char *op,
                            const char *conv, int status, const char *needle)
{
    assert_int_equal(rt_client_request(fx->client, "agent", id, op, conv, 5000, false, args), 0);
    json_decref(args);
    mesh_reply_t rep;
    rt_client_final(fx, id, &rep);
    assert_int_equal(rep.status, status);
    if (needle && !strstr(rep.err, needle))
        fail_msg("error '%s' lacks '%s'", rep.err, needle);
    mesh_reply_clear(&rep);
}

static void test_validation(void **state)
{
    rt_fx_t *fx = *state;
    expect_rejected(fx, "v1", json_pack("{s:s, s:s}", "message_id", "v1", "text", "x"), "bogus",
                    "c", MESH_EUNKNOWNOP, NULL);
    expect_rejected(fx, "v2", json_pack("{s:s}", "message_id", "v2"), "turn", "c", MESH_EPROTO,
                    "args.text");
    expect_rejected(fx, "v3", json_pack("{s:s, s:s}", "message_id", "v3", "text", "x"), "turn",
                    NULL, MESH_EPROTO, "conv");
    expect_rejected(fx, "v4", json_pack("{s:s, s:s}", "message_id", "bad id!", "text", "x"), "turn",
                    "c", MESH_EPROTO, "args.message_id");
    expect_rejected(fx, "v5",
                    json_pack("{s:s, s:s, s:i}", "message_id", "v5", "text", "x", "stream", 3),
                    "turn", "c", MESH_EPROTO, "args.stream");
    rt_no_req(fx, fx->memory, 20);
}

static void test_deadline(void **state)
{
    rt_fx_t *fx = *state;
    uint64_t t0 = rt_now_ms();
    send_turn(fx, "dl", "conv-dl", "policy?", NULL, 150);
    send_turn(fx, "dl2", "conv-dl", "waiting behind", NULL, 100);
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.begin"); /* memory never answers */
    mesh_reply_t rep;
    /* The waiting turn times out first, without ever starting. */
    rt_client_final(fx, "dl2", &rep);
    assert_int_equal(rep.status, MESH_ETIMEDOUT);
    mesh_reply_clear(&rep);
    rt_client_final(fx, "dl", &rep);
    assert_int_equal(rep.status, MESH_ETIMEDOUT);
    assert_true(rt_now_ms() - t0 >= 140);
    mesh_reply_clear(&rep);
    mesh_request_clear(&r);
    /* The turn may have taken the lease: it is released with turn.abort. */
    rt_next_req(fx, fx->memory, &r, "turn.abort");
    assert_string_equal(rt_jstr(r.args, "message_id"), "dl");
    rt_reply(fx->memory, &r, 0, json_object());
    mesh_request_clear(&r);
    rt_wait_idle(fx);
}

/* ---- the lease: renewals while a turn runs ---- */

/* The next request on w, whatever its op; fails the test when none comes. */
static void any_req(rt_fx_t *fx, void *w, mesh_request_t *r)
{
    if (!rt_worker_next(&fx->loop, w, r, RT_WAIT_MS))
        fail_msg("no request arrived");
}

/* The next memory request that is not a lease.renew (those are answered held). */
static void next_memory_skipping_renewals(rt_fx_t *fx, mesh_request_t *r)
{
    for (;;) {
        any_req(fx, fx->memory, r);
        if (strcmp(r->op, "lease.renew") != 0)
            return;
        rt_reply(fx->memory, r, 0, json_pack("{s:b}", "held", 1));
        mesh_request_clear(r);
    }
}

/* Answer the next memory request, which must be lease.renew by owner, with data / status. */
static void renew_answer(rt_fx_t *fx, const char *owner, int status, json_t *data)
{
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "lease.renew");
    assert_true(r.idem);
    assert_string_equal(rt_jstr(r.args, "owner"), owner);
    json_int_t lease = json_integer_value(json_object_get(r.args, "lease_ms"));
    assert_true(lease > 0 && lease <= T_SHORT_LEASE_MS);
    if (status != 0) {
        rt_worker_reply(fx->memory, true, r.id, status, NULL);
        json_decref(data);
    } else {
        rt_reply(fx->memory, &r, 0, data);
    }
    mesh_request_clear(&r);
}

/* Begin a turn on the short-lease fixture; returns with the llm.chat request held in *l. */
static void begin_and_hold_llm(rt_fx_t *fx, const char *id, const char *conv, char owner[64],
                               mesh_request_t *l)
{
    send_turn(fx, id, conv, "policy?", NULL, 5000);
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.begin");
    assert_int_equal(json_integer_value(json_object_get(r.args, "lease_ms")), T_SHORT_LEASE_MS);
    snprintf(owner, 64, "%s", rt_jstr(r.args, "owner"));
    rt_reply(fx->memory, &r, 0,
             json_pack("{s:b, s:{}, s:[{s:s, s:s}]}", "duplicate", 0, "state", "history", "role",
                       "user", "text", "policy?"));
    mesh_request_clear(&r);
    rt_next_req(fx, fx->llm, l, "llm.chat"); /* the model is slow: not answered yet */
}

/* After a turn ended: at most one renewal sent just before the end, then none at all. */
static void no_more_renewals(rt_fx_t *fx)
{
    mesh_request_t r;
    int late = 0;
    while (rt_worker_next(&fx->loop, fx->memory, &r, 10)) {
        assert_string_equal(r.op, "lease.renew");
        mesh_request_clear(&r);
        late++;
    }
    assert_true(late <= 1);
    rt_no_req(fx, fx->memory, 5 * T_SHORT_LEASE_MS); /* > 10 renewal intervals */
}

static void test_lease_renewed_during_long_turn(void **state)
{
    rt_fx_t *fx = *state;
    char owner[64];
    mesh_request_t l;
    begin_and_hold_llm(fx, "lr", "conv-lr", owner, &l);
    /* While the model thinks, memory sees the lease renewed every lease_ms/3. */
    uint64_t t0 = rt_now_ms();
    for (int i = 0; i < 4; i++)
        renew_answer(fx, owner, 0, json_pack("{s:b}", "held", 1));
    uint64_t took = rt_now_ms() - t0;
    /* Four renewals span at least three intervals: paced, not a burst. */
    assert_true(took + 5 >= 3 * (T_SHORT_LEASE_MS / 3));
    rt_reply(fx->llm, &l, 0, json_pack("{s:s, s:s}", "type", "text", "text", "answer"));
    mesh_request_clear(&l);
    /* turn.end (renewals may still come while it is in flight: answer them). */
    mesh_request_t r;
    next_memory_skipping_renewals(fx, &r);
    assert_string_equal(r.op, "turn.end");
    assert_string_equal(rt_jstr(r.args, "owner"), owner);
    rt_reply(fx->memory, &r, 0, json_pack("{s:b}", "duplicate", 0));
    mesh_request_clear(&r);
    mesh_reply_t rep;
    rt_client_final(fx, "lr", &rep);
    assert_int_equal(rep.status, 0);
    assert_string_equal(rt_jstr(rep.data, "reply"), "answer");
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
    /* The renewals stop with the turn. */
    no_more_renewals(fx);
}

/* Memory unavailable for a renewal, or a lease that lapsed with nobody else
 * holding it: the turn goes on, renewing at the next tick. */
static void test_lease_renew_failure_retried(void **state)
{
    rt_fx_t *fx = *state;
    char owner[64];
    mesh_request_t l;
    begin_and_hold_llm(fx, "lf2", "conv-lf2", owner, &l);
    renew_answer(fx, owner, MESH_EUNAVAIL, NULL);
    renew_answer(fx, owner, 0, json_pack("{s:b}", "held", 0));
    renew_answer(fx, owner, 0, json_pack("{s:b}", "held", 1));
    rt_reply(fx->llm, &l, 0, json_pack("{s:s, s:s}", "type", "text", "text", "fine"));
    mesh_request_clear(&l);
    mesh_request_t r;
    next_memory_skipping_renewals(fx, &r);
    assert_string_equal(r.op, "turn.end");
    rt_reply(fx->memory, &r, 0, json_pack("{s:b}", "duplicate", 0));
    mesh_request_clear(&r);
    mesh_reply_t rep;
    rt_client_final(fx, "lf2", &rep);
    assert_int_equal(rep.status, 0);
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
    no_more_renewals(fx);
}

/* A renewal finds another router's turn holding the lease: the turn stops
 * at once, records nothing, and the client may retry. */
static void test_lease_lost_stops_turn(void **state)
{
    rt_fx_t *fx = *state;
    char owner[64];
    mesh_request_t l;
    begin_and_hold_llm(fx, "ll", "conv-ll", owner, &l);
    renew_answer(fx, owner, 0, json_pack("{s:b, s:s}", "held", 0, "holder", "another-turn"));
    mesh_reply_t rep;
    rt_client_final(fx, "ll", &rep);
    assert_int_equal(rep.status, MESH_EUNAVAIL);
    assert_non_null(strstr(rep.err, "lease lost"));
    mesh_reply_clear(&rep);
    /* turn.abort, never turn.end; the model's late answer changes nothing. */
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.abort");
    assert_string_equal(rt_jstr(r.args, "owner"), owner);
    assert_string_equal(rt_jstr(r.args, "message_id"), "ll");
    rt_reply(fx->llm, &l, 0, json_pack("{s:s, s:s}", "type", "text", "text", "too late"));
    mesh_request_clear(&l);
    rt_reply(fx->memory, &r, 0, json_object());
    mesh_request_clear(&r);
    rt_wait_idle(fx);
    no_more_renewals(fx);
}

/* turn.end refused because another turn holds the lease (memory ESTATE). */
static void test_end_lease_lost(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "el", "conv-el", "policy?", NULL, 5000);
    begin_ok(fx, "el", NULL);
    llm_text(fx, "answer", NULL);
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.end");
    rt_worker_reply(fx->memory, true, r.id, MESH_ESTATE, NULL);
    mesh_request_clear(&r);
    mesh_reply_t rep;
    rt_client_final(fx, "el", &rep);
    assert_int_equal(rep.status, MESH_EUNAVAIL);
    assert_non_null(strstr(rep.err, "lease lost"));
    assert_null(json_object_get(rep.data, "reply"));
    mesh_reply_clear(&rep);
    rt_next_req(fx, fx->memory, &r, "turn.abort");
    rt_reply(fx->memory, &r, 0, json_object());
    mesh_request_clear(&r);
    rt_wait_idle(fx);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_turn_with_tool_call, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_tool_authorisation, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_parallel_tools, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_conversation_order, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_conversation_queue_full, setup_small_queue,
                                        rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_lease_busy_backoff, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_step_budget, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_llm_failure_aborts, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_streaming, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_retry_no_repeat, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_lease_renewed_during_long_turn, setup_short_lease,
                                        rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_lease_renew_failure_retried, setup_short_lease,
                                        rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_lease_lost_stops_turn, setup_short_lease,
                                        rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_end_lease_lost, setup, rt_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
