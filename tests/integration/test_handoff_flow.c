/*
 * test_handoff_flow.c - a whole handoff seen from both sides, over HTTP on a
 * whole mesh (rules backend, real Redis):
 *
 *   1. the customer asks for a person: claims_intake hands over (pending);
 *   2. while pending and while a person holds it, the bot stays silent
 *      (reply "", handoff set, no model step), and every customer message
 *      is recorded: the person sees them all in the transcript, in order;
 *   3. the person's reply reaches the customer's event stream;
 *   4. after the release the bot answers the next message again, and the
 *      conversation keeps its collected slots.
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
    return mh_people_group_setup("anna:" MH_ANNA_KEY, NULL, "flow", s_conv, sizeof(s_conv));
}

/* Position of the user message with text in the transcript (-1 when absent). */
static int user_pos(const json_t *transcript, const char *text)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(transcript, "messages"), i, m)
    {
        const char *role = mh_json_str(m, "role"), *t = mh_json_str(m, "text");
        if (role && t && strcmp(role, "user") == 0 && strcmp(t, text) == 0)
            return (int)i;
    }
    return -1;
}

static void test_flow(void **state)
{
    (void)state;
    mh_http_resp_t r;
    static const char m1[] =
        "I had an accident on Yan'an Road yesterday, I want to talk to a human";
    static const char m2[] = "hello? is anyone there";
    static const char m3[] = "my plate is 沪A12345";
    static const char m4[] = "thanks, I will wait for the call";

    /* 1. The customer asks for a person. */
    mh_turn(mh_group_mesh, s_conv, m1, "c1", "claims_intake", &r);
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    assert_true(strlen(mh_json_str(r.json, "reply")) > 0); /* the agent says a colleague comes */
    mh_http_resp_clear(&r);

    /* 2a. Pending: the bot is silent, the message is kept. */
    mh_turn(mh_group_mesh, s_conv, m2, "c2", "claims_intake", &r);
    assert_string_equal(mh_json_str(r.json, "reply"), "");
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    assert_int_equal(json_integer_value(json_object_get(r.json, "steps")), 0);
    mh_http_resp_clear(&r);

    /* 2b. A person claims it; the bot stays silent while they hold it. */
    mh_handoff_http(mh_group_mesh, "POST", s_conv, "claim", MH_ANNA_KEY, NULL, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    mh_turn(mh_group_mesh, s_conv, m3, "c3", "claims_intake", &r);
    assert_string_equal(mh_json_str(r.json, "reply"), "");
    assert_string_equal(mh_json_str(r.json, "handoff"), "human");
    mh_http_resp_clear(&r);

    /* Nothing the customer said is lost: all three in order, and no bot answer after m1. */
    mh_http_resp_t t;
    mh_handoff_http(mh_group_mesh, "GET", s_conv, NULL, MH_ANNA_KEY, NULL, &t);
    assert_int_equal(t.status, 200);
    int p1 = user_pos(t.json, m1), p2 = user_pos(t.json, m2), p3 = user_pos(t.json, m3);
    assert_true(p1 >= 0 && p2 > p1 && p3 > p2);
    const json_t *msgs = json_object_get(t.json, "messages");
    for (size_t i = (size_t)p2; i < json_array_size(msgs); i++) {
        const json_t *m = json_array_get(msgs, i);
        const char *role = mh_json_str(m, "role");
        assert_true(strcmp(role, "user") == 0 || strcmp(role, "note") == 0);
    }
    long long last_seq =
        json_integer_value(json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "seq"));
    mh_http_resp_clear(&t);

    /* 3. The person answers; the customer's event stream gets it. */
    mh_handoff_http(mh_group_mesh, "POST", s_conv, "reply", MH_ANNA_KEY,
                    "{\"text\":\"Hi, this is Anna from claims. I will call you now.\"}", &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    char *ev = mh_events_until(mh_group_mesh, s_conv, last_seq, "Anna from claims", T_TIMEOUT_MS);
    assert_non_null(strstr(ev, "event: message"));
    assert_non_null(strstr(ev, "\"name\":\"human\""));
    assert_non_null(strstr(ev, "Anna from claims"));
    free(ev);

    /* 4. Release: the bot answers again, the slots are still there. */
    mh_handoff_http(mh_group_mesh, "POST", s_conv, "release", MH_ANNA_KEY,
                    "{\"summary\":\"called the customer, continue the intake\"}", &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    mh_turn(mh_group_mesh, s_conv, m4, "c4", "claims_intake", &r);
    assert_true(strlen(mh_json_str(r.json, "reply")) > 0);
    assert_null(json_object_get(r.json, "handoff"));
    assert_true(json_integer_value(json_object_get(r.json, "steps")) > 0);
    mh_http_resp_clear(&r);
    mh_handoff_http(mh_group_mesh, "GET", s_conv, NULL, MH_ANNA_KEY, NULL, &t);
    assert_string_equal(mh_json_str(json_object_get(t.json, "handoff"), "state"), "bot");
    assert_true(user_pos(t.json, m4) > p3);
    assert_true(json_object_size(json_object_get(t.json, "slots")) > 0);
    mh_http_resp_clear(&t);
}

int main(void)
{
    if (mh_init("handoff_flow") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, mh_group_teardown));
}
