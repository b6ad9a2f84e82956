/*
 * test_router_crash.c - a router dies (kill -9) in the middle of a turn.
 *
 * Two routers, one gateway connected to both, an llm worker that takes
 * 1.5 s per call and a 1 s conversation lease on the routers. Message A is
 * posted to conversation X; while the model works on it, the router running
 * the turn is killed. Then:
 *   - A's POST fails (503 or 504), it is never answered with a wrong 200;
 *   - message B on X is answered by the surviving router well within the
 *     turn timeout: the dead router's lease lapses after MESH_LEASE_MS (it is
 *     short and was only renewed while the router lived);
 *   - A retried with the same message_id is answered with an answer to A's
 *     question (its history ends at A, not at B's later messages), and the
 *     conversation holds A's user message exactly once.
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
#define LEASE_MS           "1000"
#define CALL_START_WAIT_MS 10000
#define TURN_LOG_WAIT_MS   2000
#define TURN_TIMEOUT_MS    20000
/* B must not wait for anything like the 30 s turn timeout: the lease (1 s)
 * plus two model calls (2 x 1.5 s) and some slack. */
#define B_BOUND_MS 10000

#define TEXT_A "保单 P10023 的等待期是多久？"
#define TEXT_B "免赔额是多少？"

static mh_mesh_t *s_mesh;

static int group_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o = {0};
    o.count[MH_ROUTER] = 2;
    o.env[MH_ROUTER][0] = "MESH_LEASE_MS=" LEASE_MS;
    o.env[MH_LLM][0] = "MESH_LLM_DELAY_MS=" LLM_DELAY;
    o.env[MH_LLM][1] = "MESH_LOG_LEVEL=debug";
    s_mesh = mh_mesh_start(&o);
    return s_mesh != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    /* the killed router was reaped by the test and does not count here */
    return mh_mesh_stop(&s_mesh) == 0 ? 0 : -1;
}

static void post(const char *conv, const char *text, const char *mid, mh_http_resp_t *r)
{
    char url[256], body[512];
    snprintf(url, sizeof url, "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), conv);
    snprintf(body, sizeof body, "{\"text\":\"%s\",\"message_id\":\"%s\"}", text, mid);
    assert_int_equal(mh_http("POST", url, body, NULL, TURN_TIMEOUT_MS, r), 0);
}

/* A 200 answer to mid, not a duplicate; returns its reply (borrowed from r). */
static const char *answer_ok(const mh_http_resp_t *r, const char *mid)
{
    if (r->status != 200 || r->json == NULL)
        fail_msg("%s: status %ld, body %s %s", mid, r->status, r->body ? r->body : "", r->curl_err);
    assert_string_equal(mh_json_str(r->json, "message_id"), mid);
    assert_false(json_is_true(json_object_get(r->json, "duplicate")));
    const char *reply = mh_json_str(r->json, "reply");
    assert_non_null(reply);
    return reply;
}

static void test_router_killed_mid_turn(void **state)
{
    (void)state;
    char conv[64], url[256], body[512], mid_a[64], mid_b[64], needle[256];
    snprintf(conv, sizeof conv, "conv-crash-%d", (int)getpid());
    snprintf(mid_a, sizeof mid_a, "crash-a-%d", (int)getpid());
    snprintf(mid_b, sizeof mid_b, "crash-b-%d", (int)getpid());
    snprintf(url, sizeof url, "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), conv);
    snprintf(body, sizeof body, "{\"text\":\"%s\",\"message_id\":\"%s\"}", TEXT_A, mid_a);

    /* A: wait until the model works on it, then kill the router running the turn. */
    mh_proc_t *llm = mh_mesh_proc(s_mesh, MH_LLM, 0);
    size_t llm_mark = mh_log_mark(llm);
    mh_http_async_t *a = mh_http_async_start("POST", url, body, TURN_TIMEOUT_MS);
    assert_non_null(a);
    if (!mh_log_wait(llm, llm_mark, "call start id=", CALL_START_WAIT_MS)) {
        mh_http_resp_t r;
        mh_http_async_finish(a, &r);
        fail_msg("the llm worker never logged \"call start id=\" (turn: %ld %s)", r.status, r.body);
    }
    mh_proc_t *routers[2] = {mh_mesh_proc(s_mesh, MH_ROUTER, 0),
                             mh_mesh_proc(s_mesh, MH_ROUTER, 1)};
    snprintf(needle, sizeof needle, "turn start conv=%s message_id=%s", conv, mid_a);
    int victim = mh_log_wait_any(routers, 2, needle, TURN_LOG_WAIT_MS);
    assert_true(victim == 0 || victim == 1);
    mh_proc_t *survivor = routers[1 - victim];
    assert_int_equal(mh_log_count(survivor, 0, needle), 0);
    mh_note("killing %s, which runs %s", mh_proc_name(routers[victim]), mid_a);
    mh_proc_kill9(routers[victim]);
    assert_false(mh_proc_alive(routers[victim]));

    mh_http_resp_t ra;
    assert_int_equal(mh_http_async_finish(a, &ra), 0);
    if (ra.status != 503 && ra.status != 504)
        fail_msg("A while its router died: want 503 or 504, got %ld %s", ra.status,
                 ra.body ? ra.body : "");
    mh_http_resp_clear(&ra);

    /* B on the same conversation: the surviving router answers it soon. */
    size_t surv_mark = mh_log_mark(survivor);
    uint64_t t0 = mh_now_ms();
    mh_http_resp_t rb;
    post(conv, TEXT_B, mid_b, &rb);
    uint64_t took_b = mh_now_ms() - t0;
    const char *reply_b = answer_ok(&rb, mid_b);
    mh_note("B answered in %llu ms: %s", (unsigned long long)took_b, reply_b);
    if (took_b >= B_BOUND_MS)
        fail_msg("B took %llu ms (bound %d): the dead router's lease held it back",
                 (unsigned long long)took_b, B_BOUND_MS);
    assert_non_null(strstr(reply_b, "免赔"));
    assert_null(strstr(reply_b, "等待期为"));
    snprintf(needle, sizeof needle, "turn start conv=%s message_id=%s", conv, mid_b);
    assert_true(mh_log_count(survivor, surv_mark, needle) == 1);
    /* B ran longer than the 1 s lease: the survivor kept it by renewing, never lost it. */
    assert_true(mh_log_count(survivor, surv_mark, "lease.renew #") >= 1);
    assert_int_equal(mh_log_count(survivor, surv_mark, "lease lost"), 0);
    assert_int_equal(mh_log_count(survivor, surv_mark, "lease lapsed"), 0);

    /* A again, same message_id: answered with an answer to A's question. */
    mh_http_resp_t ra2;
    post(conv, TEXT_A, mid_a, &ra2);
    const char *reply_a = answer_ok(&ra2, mid_a);
    mh_note("A answered on retry: %s", reply_a);
    assert_non_null(strstr(reply_a, "等待期"));
    assert_null(strstr(reply_a, "免赔额为"));
    assert_string_not_equal(reply_a, reply_b);

    /* The conversation: A's and B's user messages once each, both answers recorded. */
    mh_http_resp_t g;
    assert_int_equal(mh_get_conversation(s_mesh, conv, &g), 0);
    assert_int_equal(g.status, 200);
    json_t *msgs = json_object_get(g.json, "messages");
    size_t i;
    json_t *m;
    int users_a = 0, users_b = 0, answers_a = 0, answers_b = 0;
    json_array_foreach(msgs, i, m)
    {
        const char *role = mh_json_str(m, "role");
        const char *mid = mh_json_str(m, "message_id");
        const char *text = mh_json_str(m, "text");
        if (role != NULL && strcmp(role, "user") == 0 && mid != NULL) {
            users_a += strcmp(mid, mid_a) == 0;
            users_b += strcmp(mid, mid_b) == 0;
        }
        if (role != NULL && strcmp(role, "assistant") == 0 && text != NULL) {
            answers_a += strcmp(text, reply_a) == 0;
            answers_b += strcmp(text, reply_b) == 0;
        }
    }
    if (users_a != 1 || users_b != 1 || answers_a != 1 || answers_b != 1)
        fail_msg("want A and B once each (user %d/%d, answers %d/%d): %s", users_a, users_b,
                 answers_a, answers_b, g.body);
    mh_http_resp_clear(&g);

    /* Retrying A once more is now a duplicate with the same answer. */
    mh_http_resp_t ra3;
    post(conv, TEXT_A, mid_a, &ra3);
    assert_int_equal(ra3.status, 200);
    assert_true(json_is_true(json_object_get(ra3.json, "duplicate")));
    assert_string_equal(mh_json_str(ra3.json, "reply"), reply_a);
    mh_http_resp_clear(&ra3);
    mh_http_resp_clear(&ra2);
    mh_http_resp_clear(&rb);

    /* The rest of the mesh is unharmed. */
    assert_true(mh_proc_alive(survivor));
    mh_proc_t *others[] = {mh_mesh_proc(s_mesh, MH_LLM, 0), mh_mesh_proc(s_mesh, MH_TOOLS, 0),
                           mh_mesh_proc(s_mesh, MH_MEMORY, 0), mh_mesh_proc(s_mesh, MH_GATEWAY, 0)};
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++)
        assert_true(mh_proc_alive(others[k]));
}

int main(void)
{
    if (mh_init("router_crash") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_killed_mid_turn),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
