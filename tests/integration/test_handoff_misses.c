/*
 * test_handoff_misses.c - repeated failure to understand hands the
 * conversation to a person, through the whole mesh over HTTP (gateway ->
 * router -> memory/llm/tools -> Redis), rules backend, agent policy_qa.
 *
 * After the opening message (the worker asks for the policy number), three
 * messages in a row it cannot use (no policy number, nothing it can answer):
 * the first two are asked again and counted in state records.misunderstood
 * (1, 2); the third ends with the handoff pending, reason
 * "not_understood: ...", a reply saying a colleague takes over, and the
 * conversation in the handoff queue. The next message gets the router's
 * silent gate reply "" and is still recorded in the log. A second
 * conversation shows that a usable message resets the count.
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

#define CALL_TIMEOUT_MS 5000

static mh_mesh_t *s_mesh;

static int setup(void **state)
{
    (void)state;
    s_mesh = mh_mesh_start(NULL);
    return s_mesh ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

/* One customer message to policy_qa (asked for explicitly); asserts 200. */
static void turn(const char *conv, const char *text, const char *mid, mh_http_resp_t *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), conv);
    json_t *body =
        json_pack("{s:s, s:s, s:s}", "text", text, "message_id", mid, "agent", "policy_qa");
    assert_non_null(body);
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    assert_non_null(s);
    assert_int_equal(mh_http_post_json(url, s, r), 0);
    free(s);
    if (r->status != 200 || r->json == NULL)
        fail_msg("turn %s on %s: status %ld, body %s %s", mid, conv, r->status,
                 r->body ? r->body : "", r->curl_err);
    assert_string_equal(mh_json_str(r->json, "message_id"), mid);
}

static const json_t *fstate(const mh_http_resp_t *r)
{
    const json_t *s = json_object_get(r->json, "state");
    if (!json_is_object(s))
        fail_msg("no state in the turn's answer: %s", r->body);
    return s;
}

/* records.misunderstood of the FINAL's state, -1 when absent. */
static long misses(const mh_http_resp_t *r)
{
    const json_t *v = json_object_get(json_object_get(fstate(r), "records"), "misunderstood");
    return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static void assert_has(const char *s, const char *needle)
{
    if (s == NULL || strstr(s, needle) == NULL)
        fail_msg("'%s' not in:\n%s", needle, s ? s : "(null)");
}

/* Whether conv is in the memory service's handoff queue (handoff.list). */
static bool queued(const char *conv, const char **reason_out, json_t **data_out)
{
    json_t *args = json_pack("{s:i}", "limit", 100);
    json_t *d = NULL;
    int st = mh_mesh_call(s_mesh, "memory", "handoff.list", NULL, args, CALL_TIMEOUT_MS, &d);
    json_decref(args);
    assert_int_equal(st, 0);
    size_t i;
    const json_t *it;
    json_array_foreach(json_object_get(d, "items"), i, it)
    {
        const char *c = mh_json_str(it, "conversation_id");
        if (c != NULL && strcmp(c, conv) == 0) {
            *reason_out = mh_json_str(it, "reason");
            *data_out = d;
            return true;
        }
    }
    json_decref(d);
    return false;
}

static void test_three_misses_hand_off(void **state)
{
    (void)state;
    char conv[64];
    snprintf(conv, sizeof(conv), "conv-misses-%d", (int)getpid());
    mh_http_resp_t r;

    /* The opening message: asked for the policy number, not counted. */
    turn(conv, "你好", "m-0", &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "policy_qa");
    assert_has(mh_json_str(r.json, "reply"), "保单号");
    assert_int_equal(misses(&r), -1);
    mh_http_resp_clear(&r);

    /* Two unusable messages: asked again, counted. */
    const char *unusable[] = {"嗯", "我也不知道", "随便吧"};
    for (int k = 0; k < 2; k++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "m-%d", k + 1);
        turn(conv, unusable[k], mid, &r);
        assert_has(mh_json_str(r.json, "reply"), "保单号");
        assert_int_equal(misses(&r), k + 1);
        assert_null(json_object_get(r.json, "handoff"));
        mh_http_resp_clear(&r);
    }

    /* The third: handed over, with the reason, and the customer is told. */
    turn(conv, unusable[2], "m-3", &r);
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    assert_int_equal(misses(&r), 3);
    assert_string_equal(mh_json_str(fstate(&r), "handoff"), "pending");
    const char *why = mh_json_str(fstate(&r), "handoff_reason");
    assert_non_null(why);
    assert_true(strncmp(why, "not_understood: ", 16) == 0);
    assert_has(mh_json_str(r.json, "reply"), "同事");
    mh_http_resp_clear(&r);

    /* Stored: the state hash and the handoff queue. */
    assert_int_equal(mh_get_conversation(s_mesh, conv, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(mh_json_str(json_object_get(r.json, "state"), "handoff"), "pending");
    assert_true(strncmp(mh_json_str(json_object_get(r.json, "state"), "handoff_reason"),
                        "not_understood", 14) == 0);
    mh_http_resp_clear(&r);
    const char *qreason = NULL;
    json_t *qd = NULL;
    assert_true(queued(conv, &qreason, &qd));
    assert_non_null(qreason);
    assert_true(strncmp(qreason, "not_understood", 14) == 0);
    json_decref(qd);

    /* The next message: the router's gate, silent, and the message is in the log. */
    turn(conv, "P10023 的免赔额是多少？", "m-4", &r);
    assert_string_equal(mh_json_str(r.json, "reply"), "");
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    assert_int_equal(json_integer_value(json_object_get(r.json, "steps")), 0);
    mh_http_resp_clear(&r);
    assert_int_equal(mh_get_conversation(s_mesh, conv, &r), 0);
    json_t *msgs = json_object_get(r.json, "messages");
    assert_true(json_array_size(msgs) > 0);
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    assert_string_equal(mh_json_str(last, "role"), "user");
    assert_string_equal(mh_json_str(last, "text"), "P10023 的免赔额是多少？");
    mh_http_resp_clear(&r);
}

static void test_understood_resets(void **state)
{
    (void)state;
    char conv[64];
    snprintf(conv, sizeof(conv), "conv-misses-reset-%d", (int)getpid());
    mh_http_resp_t r;
    turn(conv, "hello", "r-0", &r);
    mh_http_resp_clear(&r);
    turn(conv, "hmm", "r-1", &r);
    mh_http_resp_clear(&r);
    turn(conv, "no idea", "r-2", &r);
    assert_int_equal(misses(&r), 2);
    mh_http_resp_clear(&r);
    /* usable: answered from the lookup, the count back to 0 */
    turn(conv, "What is the deductible of policy P10023?", "r-3", &r);
    assert_has(mh_json_str(r.json, "reply"), "P10023");
    assert_int_equal(misses(&r), 0);
    assert_null(json_object_get(r.json, "handoff"));
    mh_http_resp_clear(&r);
    /* the policy number is known now: nothing is a miss any more */
    turn(conv, "hmm", "r-4", &r);
    assert_int_equal(misses(&r), 0);
    assert_null(json_object_get(r.json, "handoff"));
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("handoff_misses") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_misses_hand_off),
        cmocka_unit_test(test_understood_resets),
    };
    return mh_finish(cmocka_run_group_tests_name("handoff_misses", tests, setup, teardown));
}
