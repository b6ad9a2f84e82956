/*
 * test_events_trim.c - message sequence numbers survive log trimming.
 *
 * The memory service trims a conversation's log to MESH_HISTORY_MAX entries;
 * positions in the log then stop growing while the conversation's "seq" keeps
 * counting. The people transcript and the customer's event stream number
 * messages by seq, so after the log was trimmed a person's reply still
 * reaches the customer's event stream (numbered by position it would be
 * numbered like an entry the customer has already seen, and skipped).
 *
 * Whole mesh over HTTP (rules backend, real Redis), MESH_HISTORY_MAX=4: the
 * customer asks policy_qa for a person (user, assistant tool call, tool,
 * answer: 4 entries, seq 4), then writes twice while waiting (seq 6; the log
 * still holds 4 entries), a person claims and replies (seq 7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh_harness.h"

#define T_TIMEOUT_MS 10000

static char s_conv[64];

static int group_setup(void **state)
{
    (void)state;
    static const char *const memory_env[] = {"MESH_HISTORY_MAX=4", NULL};
    return mh_people_group_setup("anna:" MH_ANNA_KEY, memory_env, "trim", s_conv, sizeof(s_conv));
}

static long long last_seq(const json_t *transcript)
{
    const json_t *msgs = json_object_get(transcript, "messages");
    return json_integer_value(
        json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "seq"));
}

static void test_seq_after_trim(void **state)
{
    (void)state;
    mh_http_resp_t r;
    mh_turn(mh_group_mesh, s_conv, "请帮我转人工", "t1", "policy_qa", &r);
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    mh_http_resp_clear(&r);
    mh_turn(mh_group_mesh, s_conv, "还在吗？", "t2", "policy_qa", &r);
    assert_string_equal(mh_json_str(r.json, "reply"), "");
    mh_http_resp_clear(&r);
    mh_turn(mh_group_mesh, s_conv, "我等一下", "t3", "policy_qa", &r);
    assert_string_equal(mh_json_str(r.json, "reply"), "");
    mh_http_resp_clear(&r);

    /* The log holds the newest 4 entries, numbered 3..6 (not 1..4). */
    mh_http_resp_t t;
    mh_handoff_http(mh_group_mesh, "GET", s_conv, NULL, MH_ANNA_KEY, NULL, &t);
    assert_int_equal(t.status, 200);
    assert_int_equal(json_array_size(json_object_get(t.json, "messages")), 4);
    assert_int_equal(last_seq(t.json), 6);
    assert_string_equal(mh_json_str(json_array_get(json_object_get(t.json, "messages"), 3), "text"),
                        "我等一下");
    mh_http_resp_clear(&t);

    mh_handoff_http(mh_group_mesh, "POST", s_conv, "claim", MH_ANNA_KEY, "{}", &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    mh_handoff_http(mh_group_mesh, "POST", s_conv, "reply", MH_ANNA_KEY,
                    "{\"text\":\"您好，我是客服 Anna，马上为您处理。\"}", &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);

    /* The customer saw everything up to 6: the reply arrives as number 7. */
    char *ev = mh_events_until(mh_group_mesh, s_conv, 6, "Anna", T_TIMEOUT_MS);
    assert_non_null(strstr(ev, "event: message"));
    assert_non_null(strstr(ev, "\"seq\":7"));
    assert_non_null(strstr(ev, "客服 Anna"));
    free(ev);
}

int main(void)
{
    if (mh_init("events_trim") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_after_trim),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, mh_group_teardown));
}
