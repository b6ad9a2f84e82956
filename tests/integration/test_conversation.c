/*
 * test_conversation.c - a multi-turn policy Q&A through the whole mesh over
 * HTTP (gateway -> router -> memory/llm/tools -> Redis), in Chinese and
 * English: tool use, answers drawn from the policy, follow-ups answered from
 * history, the missing and unknown policy cases, the stored conversation, and
 * idempotent retries by message_id.
 *
 * Expected facts come from the mesh itself (policy.lookup through the
 * router), not from copies of the sample data, so the test follows the data.
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
static json_t *s_policy;         /* policy.lookup result for P10023 */
static char s_conv_zh[64];       /* the two-turn Chinese conversation */
static char s_reply_turn2[4096]; /* its second answer, for the duplicate check */

static int group_setup(void **state)
{
    (void)state;
    s_mesh = mh_mesh_start(NULL);
    if (s_mesh == NULL) {
        return -1;
    }
    json_t *data = NULL;
    int st = mh_policy_lookup(s_mesh, "P10023", CALL_TIMEOUT_MS, &data);
    if (st != 0 || !json_is_true(json_object_get(data, "ok"))) {
        fprintf(stderr, "policy.lookup P10023 through the mesh failed: status %d\n", st);
        json_decref(data);
        return -1;
    }
    s_policy = json_incref(json_object_get(data, "result"));
    json_decref(data);
    snprintf(s_conv_zh, sizeof s_conv_zh, "conv-zh-%d", (int)getpid());
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bool alive = s_mesh != NULL && mh_mesh_all_alive(s_mesh);
    json_decref(s_policy);
    bool clean = mh_mesh_stop(&s_mesh) == 0;
    return alive && clean ? 0 : -1;
}

/* Assert a 200 turn answer and return its reply text (borrowed from r). */
static const char *assert_turn_ok(const mh_http_resp_t *r, const char *conv, const char *mid)
{
    if (r->status != 200 || r->json == NULL) {
        fail_msg("turn on %s: status %ld, body %s %s", conv, r->status,
                 r->body != NULL ? r->body : "", r->curl_err);
    }
    assert_string_equal(mh_json_str(r->json, "conversation_id"), conv);
    if (mid != NULL) {
        assert_string_equal(mh_json_str(r->json, "message_id"), mid);
    }
    const char *reply = mh_json_str(r->json, "reply");
    assert_non_null(reply);
    assert_true(strlen(reply) > 0);
    assert_true(json_is_array(json_object_get(r->json, "tool_calls")));
    assert_true(json_is_boolean(json_object_get(r->json, "duplicate")));
    return reply;
}

/* Assert tool_calls is exactly [{"name": name, "ok": ok}] (name NULL: []). */
static void assert_tool_calls(const mh_http_resp_t *r, const char *name, bool ok)
{
    json_t *calls = json_object_get(r->json, "tool_calls");
    if (name == NULL) {
        assert_int_equal(json_array_size(calls), 0);
        return;
    }
    if (json_array_size(calls) != 1) {
        fail_msg("want one tool call %s, got %s", name, r->body);
    }
    json_t *c = json_array_get(calls, 0);
    assert_string_equal(mh_json_str(c, "name"), name);
    assert_true(json_is_boolean(json_object_get(c, "ok")));
    assert_int_equal(json_is_true(json_object_get(c, "ok")), ok);
}

/* Coverage names of the policy in lang ("zh"/"en") that appear in text; *total gets the count. */
static int coverages_mentioned(const char *text, const char *lang, int *total)
{
    json_t *covs = json_object_get(s_policy, "coverages");
    int hit = 0;
    *total = (int)json_array_size(covs);
    size_t i;
    json_t *c;
    json_array_foreach(covs, i, c)
    {
        const char *name = mh_json_str(json_object_get(c, "name"), lang);
        if (name != NULL && strstr(text, name) != NULL) {
            hit++;
        }
    }
    return hit;
}

static bool contains_any(const char *text, const char *const words[])
{
    for (size_t i = 0; words[i] != NULL; i++) {
        if (strcasestr(text, words[i]) != NULL) {
            return true;
        }
    }
    return false;
}

static void test_policy_question_zh(void **state)
{
    (void)state;
    assert_non_null(json_object_get(s_policy, "coverages"));
    mh_http_resp_t r;
    assert_int_equal(mh_post_message(s_mesh, s_conv_zh, "我的保单 P10023 保障什么？", "zh-1", &r),
                     0);
    const char *reply = assert_turn_ok(&r, s_conv_zh, "zh-1");
    assert_string_equal(mh_json_str(r.json, "agent"), "policy_qa");
    assert_false(json_is_true(json_object_get(r.json, "duplicate")));
    assert_tool_calls(&r, "policy.lookup", true);
    assert_true(mh_has_cjk(reply));
    int total = 0;
    int hit = coverages_mentioned(reply, "zh", &total);
    if (total == 0 || hit != total) {
        fail_msg("reply names %d of %d coverages: %s", hit, total, reply);
    }
    mh_http_resp_clear(&r);
}

static void test_followup_deductible_from_history(void **state)
{
    (void)state;
    mh_http_resp_t r;
    assert_int_equal(mh_post_message(s_mesh, s_conv_zh, "免赔额是多少？", "zh-2", &r), 0);
    const char *reply = assert_turn_ok(&r, s_conv_zh, "zh-2");
    assert_string_equal(mh_json_str(r.json, "agent"), "policy_qa");
    /* no number in this message: the policy came from the conversation's history */
    assert_tool_calls(&r, "policy.lookup", true);
    assert_true(mh_has_cjk(reply));
    assert_int_equal((int)json_number_value(json_object_get(s_policy, "deductible")), 10000);
    if (strstr(reply, "1万") == NULL) {
        fail_msg("deductible answer lacks 1万: %s", reply);
    }
    snprintf(s_reply_turn2, sizeof s_reply_turn2, "%s", reply);
    mh_http_resp_clear(&r);
}

static void test_english_question(void **state)
{
    (void)state;
    char conv[64];
    snprintf(conv, sizeof conv, "conv-en-%d", (int)getpid());
    mh_http_resp_t r;
    assert_int_equal(mh_post_message(s_mesh, conv, "What does my policy P10023 cover?", "en-1", &r),
                     0);
    const char *reply = assert_turn_ok(&r, conv, "en-1");
    assert_string_equal(mh_json_str(r.json, "agent"), "policy_qa");
    assert_tool_calls(&r, "policy.lookup", true);
    if (mh_has_cjk(reply)) {
        fail_msg("English question got a Chinese reply: %s", reply);
    }
    int total = 0;
    int hit = coverages_mentioned(reply, "en", &total);
    if (total == 0 || hit != total) {
        fail_msg("English reply names %d of %d coverages: %s", hit, total, reply);
    }
    mh_http_resp_clear(&r);

    /* follow-up in English, from history */
    assert_int_equal(mh_post_message(s_mesh, conv, "What is the deductible?", "en-2", &r), 0);
    reply = assert_turn_ok(&r, conv, "en-2");
    assert_tool_calls(&r, "policy.lookup", true);
    assert_false(mh_has_cjk(reply));
    if (strstr(reply, "10,000") == NULL) {
        fail_msg("English deductible answer lacks 10,000: %s", reply);
    }
    mh_http_resp_clear(&r);
}

static void test_missing_policy_number_asks_for_it(void **state)
{
    (void)state;
    char conv[64];
    snprintf(conv, sizeof conv, "conv-nonum-%d", (int)getpid());
    mh_http_resp_t r;
    assert_int_equal(mh_post_message(s_mesh, conv, "我的保单保障什么？", NULL, &r), 0);
    const char *reply = assert_turn_ok(&r, conv, NULL);
    assert_tool_calls(&r, NULL, false);
    assert_true(mh_has_cjk(reply));
    if (strstr(reply, "保单号") == NULL) {
        fail_msg("reply does not ask for the policy number: %s", reply);
    }
    /* a generated message_id comes back */
    assert_non_null(mh_json_str(r.json, "message_id"));
    mh_http_resp_clear(&r);

    snprintf(conv, sizeof conv, "conv-nonum-en-%d", (int)getpid());
    assert_int_equal(mh_post_message(s_mesh, conv, "What does my policy cover?", NULL, &r), 0);
    reply = assert_turn_ok(&r, conv, NULL);
    assert_tool_calls(&r, NULL, false);
    if (strcasestr(reply, "policy number") == NULL) {
        fail_msg("English reply does not ask for the policy number: %s", reply);
    }
    mh_http_resp_clear(&r);
}

static void test_unknown_policy_not_found(void **state)
{
    (void)state;
    char conv[64];
    snprintf(conv, sizeof conv, "conv-unknown-%d", (int)getpid());
    mh_http_resp_t r;
    assert_int_equal(mh_post_message(s_mesh, conv, "我的保单 P99999 保障什么？", NULL, &r), 0);
    const char *reply = assert_turn_ok(&r, conv, NULL);
    assert_tool_calls(&r, "policy.lookup", false);
    static const char *const zh_not_found[] = {"未找到", "没有找到", "找不到", "不存在",
                                               "查无",   "未查到",   "查不到", NULL};
    if (!contains_any(reply, zh_not_found) || strstr(reply, "P99999") == NULL) {
        fail_msg("reply does not say P99999 was not found: %s", reply);
    }
    mh_http_resp_clear(&r);

    snprintf(conv, sizeof conv, "conv-unknown-en-%d", (int)getpid());
    assert_int_equal(mh_post_message(s_mesh, conv, "What does my policy P99999 cover?", NULL, &r),
                     0);
    reply = assert_turn_ok(&r, conv, NULL);
    assert_tool_calls(&r, "policy.lookup", false);
    static const char *const en_not_found[] = {"not found",   "could not find", "couldn't find",
                                               "cannot find", "no policy",      "does not exist",
                                               NULL};
    if (!contains_any(reply, en_not_found)) {
        fail_msg("English reply does not say the policy was not found: %s", reply);
    }
    mh_http_resp_clear(&r);
}

/*
 * Check one turn's messages in the log starting at *pos: the user message,
 * then tool-call rounds (assistant messages with tool_calls and tool
 * results, at least one policy.lookup), then the final assistant answer.
 */
static void assert_turn_in_log(json_t *msgs, size_t *pos, const char *user_text)
{
    size_t i = *pos;
    json_t *m = json_array_get(msgs, i);
    assert_non_null(m);
    assert_string_equal(mh_json_str(m, "role"), "user");
    assert_string_equal(mh_json_str(m, "text"), user_text);
    i++;
    int tools = 0;
    for (; i < json_array_size(msgs); i++) {
        m = json_array_get(msgs, i);
        const char *role = mh_json_str(m, "role");
        assert_non_null(role);
        if (strcmp(role, "tool") == 0) {
            assert_string_equal(mh_json_str(m, "name"), "policy.lookup");
            tools++;
            continue;
        }
        assert_string_equal(role, "assistant");
        if (json_array_size(json_object_get(m, "tool_calls")) > 0) {
            continue; /* the model asking for the tool */
        }
        break; /* the answer */
    }
    assert_true(tools >= 1);
    assert_true(i < json_array_size(msgs));
    assert_string_equal(mh_json_str(m, "role"), "assistant");
    assert_true(strlen(mh_json_str(m, "text")) > 0);
    *pos = i + 1;
}

static void test_get_conversation_lists_messages_in_order(void **state)
{
    (void)state;
    mh_http_resp_t r;
    assert_int_equal(mh_get_conversation(s_mesh, s_conv_zh, &r), 0);
    if (r.status != 200 || r.json == NULL) {
        fail_msg("GET conversation: %ld %s", r.status, r.body);
    }
    assert_string_equal(mh_json_str(r.json, "conversation_id"), s_conv_zh);
    assert_string_equal(mh_json_str(r.json, "agent"), "policy_qa");
    json_t *msgs = json_object_get(r.json, "messages");
    assert_true(json_is_array(msgs));
    size_t pos = 0;
    assert_turn_in_log(msgs, &pos, "我的保单 P10023 保障什么？");
    assert_turn_in_log(msgs, &pos, "免赔额是多少？");
    assert_int_equal(pos, json_array_size(msgs));
    /* the stored answer of turn 2 is the one the client got */
    json_t *last = json_array_get(msgs, pos - 1);
    assert_string_equal(mh_json_str(last, "text"), s_reply_turn2);
    mh_http_resp_clear(&r);
}

static void test_retry_same_message_id_is_duplicate(void **state)
{
    (void)state;
    mh_http_resp_t before;
    assert_int_equal(mh_get_conversation(s_mesh, s_conv_zh, &before), 0);
    assert_int_equal(before.status, 200);
    size_t n_before = json_array_size(json_object_get(before.json, "messages"));
    assert_true(n_before > 0);

    mh_http_resp_t r;
    assert_int_equal(mh_post_message(s_mesh, s_conv_zh, "免赔额是多少？", "zh-2", &r), 0);
    const char *reply = assert_turn_ok(&r, s_conv_zh, "zh-2");
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    assert_string_equal(reply, s_reply_turn2);
    assert_string_equal(mh_json_str(r.json, "agent"), "policy_qa");
    mh_http_resp_clear(&r);

    mh_http_resp_t after;
    assert_int_equal(mh_get_conversation(s_mesh, s_conv_zh, &after), 0);
    assert_int_equal(after.status, 200);
    assert_int_equal(json_array_size(json_object_get(after.json, "messages")), n_before);
    assert_true(json_equal(json_object_get(before.json, "messages"),
                           json_object_get(after.json, "messages")));
    mh_http_resp_clear(&before);
    mh_http_resp_clear(&after);
}

int main(void)
{
    if (mh_init("conversation") != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_question_zh),
        cmocka_unit_test(test_followup_deductible_from_history),
        cmocka_unit_test(test_english_question),
        cmocka_unit_test(test_missing_policy_number_asks_for_it),
        cmocka_unit_test(test_unknown_policy_not_found),
        cmocka_unit_test(test_get_conversation_lists_messages_in_order),
        cmocka_unit_test(test_retry_same_message_id_is_duplicate),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
