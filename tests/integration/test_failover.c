/*
 * test_failover.c - an llm worker dies (kill -9) while it holds a model call:
 * the router notices (heartbeat expiry), retries the idempotent call once on
 * the other worker, and the client still gets exactly one 200 answer; the
 * conversation records exactly one answer for the message.
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

#define LLM_DELAY          "1500"
#define CALL_START_WAIT_MS 10000
#define TURN_TIMEOUT_MS    20000

static mh_mesh_t *s_mesh;

static int group_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o = {0};
    o.count[MH_LLM] = 2;
    o.env[MH_LLM][0] = "MESH_LLM_DELAY_MS=" LLM_DELAY;
    o.env[MH_LLM][1] = "MESH_LOG_LEVEL=debug";
    s_mesh = mh_mesh_start(&o);
    return s_mesh != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    /* the killed worker was reaped by the test and does not count here */
    return mh_mesh_stop(&s_mesh) == 0 ? 0 : -1;
}

static void test_llm_worker_killed_mid_call(void **state)
{
    (void)state;
    char conv[64], url[256];
    snprintf(conv, sizeof conv, "conv-failover-%d", (int)getpid());
    snprintf(url, sizeof url, "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), conv);
    mh_http_async_t *a = mh_http_async_start(
        "POST", url, "{\"text\":\"我的保单 P10023 保障什么？\",\"message_id\":\"fo-1\"}",
        TURN_TIMEOUT_MS);
    assert_non_null(a);

    mh_proc_t *llm[2] = {mh_mesh_proc(s_mesh, MH_LLM, 0), mh_mesh_proc(s_mesh, MH_LLM, 1)};
    int victim = mh_log_wait_any(llm, 2, "call start id=", CALL_START_WAIT_MS);
    if (victim < 0) {
        mh_http_resp_t r;
        mh_http_async_finish(a, &r);
        fail_msg("no llm worker logged \"call start id=\" (turn: %ld %s)", r.status, r.body);
    }
    int other = 1 - victim;
    size_t other_mark = mh_log_mark(llm[other]);
    assert_int_equal(mh_log_count(llm[other], 0, "call start id="), 0);
    mh_note("killing %s", mh_proc_name(llm[victim]));
    mh_proc_kill9(llm[victim]);
    assert_false(mh_proc_alive(llm[victim]));

    mh_http_resp_t r;
    assert_int_equal(mh_http_async_finish(a, &r), 0);
    if (r.status != 200) {
        fail_msg("turn after failover: %ld %s", r.status, r.body);
    }
    assert_false(json_is_true(json_object_get(r.json, "duplicate")));
    const char *reply = mh_json_str(r.json, "reply");
    assert_non_null(reply);
    assert_true(mh_has_cjk(reply));
    json_t *calls = json_object_get(r.json, "tool_calls");
    assert_int_equal(json_array_size(calls), 1);
    assert_true(json_is_true(json_object_get(json_array_get(calls, 0), "ok")));

    /* the surviving worker did the model calls of this turn */
    assert_true(mh_log_count(llm[other], other_mark, "call start id=") >= 1);
    assert_true(mh_proc_alive(llm[other]));

    /* exactly one user message and one final answer were recorded */
    mh_http_resp_t g;
    assert_int_equal(mh_get_conversation(s_mesh, conv, &g), 0);
    assert_int_equal(g.status, 200);
    json_t *msgs = json_object_get(g.json, "messages");
    size_t i;
    json_t *m;
    int users = 0, answers = 0;
    json_array_foreach(msgs, i, m)
    {
        const char *role = mh_json_str(m, "role");
        if (role != NULL && strcmp(role, "user") == 0) {
            users++;
        }
        if (role != NULL && strcmp(role, "assistant") == 0 &&
            json_array_size(json_object_get(m, "tool_calls")) == 0) {
            answers++;
            assert_string_equal(mh_json_str(m, "text"), reply);
        }
    }
    if (users != 1 || answers != 1) {
        fail_msg("want 1 user message and 1 answer, got %d and %d: %s", users, answers, g.body);
    }
    mh_http_resp_clear(&g);
    mh_http_resp_clear(&r);

    /* the rest of the mesh is unharmed */
    mh_proc_t *others[] = {mh_mesh_proc(s_mesh, MH_ROUTER, 0), mh_mesh_proc(s_mesh, MH_TOOLS, 0),
                           mh_mesh_proc(s_mesh, MH_MEMORY, 0), mh_mesh_proc(s_mesh, MH_GATEWAY, 0)};
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) {
        assert_true(mh_proc_alive(others[k]));
    }
}

int main(void)
{
    if (mh_init("failover") != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_worker_killed_mid_call),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
