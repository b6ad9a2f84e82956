/*
 * test_ordering.c - one turn at a time per conversation: message B posted
 * while A is still with the model waits for A, completes after it, is
 * answered with A in its history (B carries no policy number), and the log
 * holds A's messages entirely before B's.
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

#define CALL_START_WAIT_MS 10000
#define TURN_TIMEOUT_MS    20000

static mh_mesh_t *s_mesh;

static int group_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o = {0};
    o.env[MH_LLM][0] = "MESH_LLM_DELAY_MS=300";
    s_mesh = mh_mesh_start(&o);
    return s_mesh != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

static void test_second_message_waits_for_first(void **state)
{
    (void)state;
    static const char text_a[] = "我的保单 P10023 保障什么？";
    static const char text_b[] = "免赔额是多少？";
    char conv[64], url[256], body[256];
    snprintf(conv, sizeof conv, "conv-order-%d", (int)getpid());
    snprintf(url, sizeof url, "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), conv);
    mh_proc_t *llm = mh_mesh_proc(s_mesh, MH_LLM, 0);
    size_t mark = mh_log_mark(llm);

    snprintf(body, sizeof body, "{\"text\":\"%s\",\"message_id\":\"ord-a\"}", text_a);
    mh_http_async_t *a = mh_http_async_start("POST", url, body, TURN_TIMEOUT_MS);
    assert_non_null(a);
    /* A is now with the model (300 ms per call): B arrives while A runs */
    assert_true(mh_log_wait(llm, mark, "call start id=", CALL_START_WAIT_MS));
    snprintf(body, sizeof body, "{\"text\":\"%s\",\"message_id\":\"ord-b\"}", text_b);
    uint64_t b_sent_ms = mh_now_ms();
    mh_http_async_t *b = mh_http_async_start("POST", url, body, TURN_TIMEOUT_MS);
    assert_non_null(b);

    mh_http_resp_t ra, rb;
    assert_int_equal(mh_http_async_finish(a, &ra), 0);
    assert_int_equal(mh_http_async_finish(b, &rb), 0);
    if (ra.status != 200 || rb.status != 200) {
        fail_msg("A: %ld %s / B: %ld %s", ra.status, ra.body, rb.status, rb.body);
    }
    assert_string_equal(mh_json_str(ra.json, "message_id"), "ord-a");
    assert_string_equal(mh_json_str(rb.json, "message_id"), "ord-b");
    /* B really overlapped A (it was sent before A's answer came back) and finished after it */
    assert_true(b_sent_ms < ra.done_ms);
    assert_true(rb.done_ms >= ra.done_ms);
    const char *reply_a = mh_json_str(ra.json, "reply");
    const char *reply_b = mh_json_str(rb.json, "reply");
    /* B was processed with A in its history: it found the policy and answered */
    if (strstr(reply_b, "1万") == NULL) {
        fail_msg("B was not answered from A's history: %s", reply_b);
    }

    mh_http_resp_t g;
    assert_int_equal(mh_get_conversation(s_mesh, conv, &g), 0);
    assert_int_equal(g.status, 200);
    json_t *msgs = json_object_get(g.json, "messages");
    /* positions: user A < answer A < user B < answer B, nothing of B before answer A */
    long user_a = -1, ans_a = -1, user_b = -1, ans_b = -1;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *role = mh_json_str(m, "role");
        const char *text = mh_json_str(m, "text");
        assert_non_null(role);
        if (strcmp(role, "user") == 0 && strcmp(text, text_a) == 0) {
            assert_int_equal(user_a, -1);
            user_a = (long)i;
        } else if (strcmp(role, "user") == 0 && strcmp(text, text_b) == 0) {
            assert_int_equal(user_b, -1);
            user_b = (long)i;
        } else if (strcmp(role, "assistant") == 0 && text != NULL && strcmp(text, reply_a) == 0) {
            ans_a = (long)i;
        } else if (strcmp(role, "assistant") == 0 && text != NULL && strcmp(text, reply_b) == 0) {
            ans_b = (long)i;
        }
    }
    if (!(user_a == 0 && user_a < ans_a && ans_a < user_b && user_b < ans_b &&
          ans_b == (long)json_array_size(msgs) - 1)) {
        fail_msg("order: user A %ld, answer A %ld, user B %ld, answer B %ld of %zu: %s", user_a,
                 ans_a, user_b, ans_b, json_array_size(msgs), g.body);
    }
    mh_http_resp_clear(&g);
    mh_http_resp_clear(&ra);
    mh_http_resp_clear(&rb);
}

/*
 * A burst of follow-ups on one conversation, all in flight at once: every one
 * is answered from the history, and the log holds one whole turn after
 * another (user, tool round, answer), never two turns interleaved.
 */
static void test_burst_on_one_conversation(void **state)
{
    (void)state;
    enum { BURST = 6 };
    char conv[64];
    snprintf(conv, sizeof conv, "conv-burst-%d", (int)getpid());
    mh_http_resp_t first;
    assert_int_equal(mh_post_message(s_mesh, conv, "我的保单 P10023 保障什么？", "b-0", &first), 0);
    assert_int_equal(first.status, 200);
    mh_http_resp_clear(&first);

    static mh_http_req_t reqs[BURST];
    static char bodies[BURST][128];
    for (int i = 0; i < BURST; i++) {
        memset(&reqs[i], 0, sizeof reqs[i]);
        snprintf(bodies[i], sizeof bodies[i],
                 "{\"text\":\"免赔额是多少？\",\"message_id\":\"b-%d\"}", i + 1);
        reqs[i].method = "POST";
        reqs[i].body = bodies[i];
        snprintf(reqs[i].url, sizeof reqs[i].url, "%s/v1/conversations/%s/messages",
                 mh_mesh_url(s_mesh), conv);
    }
    assert_int_equal(mh_http_multi(reqs, BURST, TURN_TIMEOUT_MS), BURST);
    for (int i = 0; i < BURST; i++) {
        if (reqs[i].resp.status != 200) {
            fail_msg("burst turn %d: %ld %s", i + 1, reqs[i].resp.status, reqs[i].resp.body);
        }
        const char *reply = mh_json_str(reqs[i].resp.json, "reply");
        assert_non_null(reply);
        assert_non_null(strstr(reply, "1万"));
    }

    mh_http_resp_t g;
    assert_int_equal(mh_get_conversation(s_mesh, conv, &g), 0);
    assert_int_equal(g.status, 200);
    json_t *msgs = json_object_get(g.json, "messages");
    /* walk the log turn by turn: user, then tool calls/results, then the answer */
    size_t i = 0, turns = 0;
    while (i < json_array_size(msgs)) {
        json_t *user = json_array_get(msgs, i++);
        assert_string_equal(mh_json_str(user, "role"), "user");
        const char *mid = mh_json_str(user, "message_id");
        assert_non_null(mid);
        json_t *m = NULL;
        while (i < json_array_size(msgs)) {
            m = json_array_get(msgs, i++);
            const char *role = mh_json_str(m, "role");
            if (strcmp(role, "user") == 0) {
                fail_msg("turn %s has no answer before the next user message: %s", mid, g.body);
            }
            if (strcmp(role, "assistant") == 0 &&
                json_array_size(json_object_get(m, "tool_calls")) == 0) {
                break; /* the answer */
            }
        }
        assert_non_null(m);
        assert_string_equal(mh_json_str(m, "role"), "assistant");
        /* the answer stored for this message is the one its request received */
        int k = atoi(mid + 2);
        if (k >= 1 && k <= BURST) {
            assert_string_equal(mh_json_str(m, "text"),
                                mh_json_str(reqs[k - 1].resp.json, "reply"));
        }
        turns++;
    }
    assert_int_equal(turns, BURST + 1);
    mh_http_resp_clear(&g);
    for (int k = 0; k < BURST; k++) {
        mh_http_resp_clear(&reqs[k].resp);
    }
}

int main(void)
{
    if (mh_init("ordering") != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_message_waits_for_first),
        cmocka_unit_test(test_burst_on_one_conversation),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
