/*
 * test_restart.c - conversation state lives in Redis, not in a process:
 * after two turns the memory worker and then the router are restarted
 * (SIGTERM, which must drain and exit 0, then started again); the history is
 * unchanged, a retried message is still recognised as a duplicate, and a
 * follow-up without the policy number is still answered from history.
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

#define STOP_WAIT_MS    5000
#define READY_WAIT_MS   20000
#define CALL_TIMEOUT_MS 5000

static char *post_ok(const char *conv, const char *text, const char *mid, bool *duplicate)
{
    mh_http_resp_t r;
    assert_int_equal(mh_post_message(mh_group_mesh, conv, text, mid, &r), 0);
    if (r.status != 200) {
        fail_msg("POST %s: %ld %s", text, r.status, r.body);
    }
    const char *reply = mh_json_str(r.json, "reply");
    assert_non_null(reply);
    json_t *calls = json_object_get(r.json, "tool_calls");
    if (json_array_size(calls) != 1 ||
        strcmp(mh_json_str(json_array_get(calls, 0), "name"), "policy.lookup") != 0 ||
        !json_is_true(json_object_get(json_array_get(calls, 0), "ok"))) {
        fail_msg("want one successful policy.lookup: %s", r.body);
    }
    if (duplicate != NULL) {
        *duplicate = json_is_true(json_object_get(r.json, "duplicate"));
    }
    char *copy = strdup(reply);
    mh_http_resp_clear(&r);
    return copy;
}

static json_t *get_messages(const char *conv)
{
    mh_http_resp_t r;
    assert_int_equal(mh_get_conversation(mh_group_mesh, conv, &r), 0);
    if (r.status != 200) {
        fail_msg("GET %s: %ld %s", conv, r.status, r.body);
    }
    json_t *msgs = json_incref(json_object_get(r.json, "messages"));
    assert_true(json_is_array(msgs));
    mh_http_resp_clear(&r);
    return msgs;
}

static void restart(mh_svc_t svc)
{
    mh_proc_t *p = mh_mesh_proc(mh_group_mesh, svc, 0);
    assert_non_null(p);
    int rc = mh_proc_stop(p, STOP_WAIT_MS);
    if (rc != 0) {
        fail_msg("%s exited %d after SIGTERM (want 0)", mh_proc_name(p), rc);
    }
    assert_int_equal(mh_proc_restart(p), 0);
    if (mh_mesh_wait_ready(mh_group_mesh, READY_WAIT_MS) != 0) {
        fail_msg("mesh not ready after restarting %s", mh_proc_name(p));
    }
}

static void test_history_survives_memory_and_router_restart(void **state)
{
    (void)state;
    char conv[64];
    snprintf(conv, sizeof conv, "conv-restart-%d", (int)getpid());

    char *r1 = post_ok(conv, "我的保单 P10023 保障什么？", "rs-1", NULL);
    char *r2 = post_ok(conv, "免赔额是多少？", "rs-2", NULL);
    assert_non_null(strstr(r2, "1万"));
    json_t *before = get_messages(conv);
    assert_true(json_array_size(before) >= 4);

    restart(MH_MEMORY);
    json_t *after_memory = get_messages(conv);
    assert_true(json_equal(before, after_memory));

    restart(MH_ROUTER);
    json_t *after_router = get_messages(conv);
    assert_true(json_equal(before, after_router));

    /* the answered message is still known after both restarts */
    bool dup = false;
    char *again = post_ok(conv, "免赔额是多少？", "rs-2", &dup);
    assert_true(dup);
    assert_string_equal(again, r2);

    /* a follow-up without the number: the policy comes from the stored history */
    json_t *data = NULL;
    assert_int_equal(mh_policy_lookup(mh_group_mesh, "P10023", CALL_TIMEOUT_MS, &data), 0);
    json_t *wait_days = json_object_get(json_object_get(data, "result"), "waiting_period_days");
    assert_true(json_is_number(wait_days));
    char days[32];
    snprintf(days, sizeof days, "%d", (int)json_number_value(wait_days));
    json_decref(data);

    char *r3 = post_ok(conv, "等待期多久？", "rs-3", &dup);
    assert_false(dup);
    assert_non_null(strstr(r3, days));
    assert_null(strstr(r3, "请提供"));

    json_t *final = get_messages(conv);
    assert_true(json_array_size(final) > json_array_size(before));
    /* everything from before is still first, in order */
    for (size_t i = 0; i < json_array_size(before); i++) {
        assert_true(json_equal(json_array_get(before, i), json_array_get(final, i)));
    }
    json_t *user3 = json_array_get(final, json_array_size(before));
    assert_string_equal(mh_json_str(user3, "role"), "user");
    assert_string_equal(mh_json_str(user3, "text"), "等待期多久？");
    json_t *last = json_array_get(final, json_array_size(final) - 1);
    assert_string_equal(mh_json_str(last, "text"), r3);

    json_decref(before);
    json_decref(after_memory);
    json_decref(after_router);
    json_decref(final);
    free(r1);
    free(r2);
    free(r3);
    free(again);
}

int main(void)
{
    if (mh_init("restart") != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_survives_memory_and_router_restart),
    };
    return mh_finish(cmocka_run_group_tests(tests, mh_group_setup, mh_group_teardown));
}
