/*
 * test_channel_telegram.c - Telegram webhook end to end against
 * mesh-channels-stub: the secret-token header, one sendMessage per update
 * (also when Telegram redelivers the same update_id), wrong or missing
 * secret -> 401 and nothing sent, non-message updates ignored, flood
 * control (429 + Retry-After) then success.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_channel_fixture.h"

#define SECRET "tg-secret_token-123"
#define TOKEN  "123456:ABC-test"

static int group_setup(void **state)
{
    (void)state;
    const char *env[] = {"MESH_TELEGRAM_SECRET_TOKEN=" SECRET, "MESH_TELEGRAM_BOT_TOKEN=" TOKEN,
                         "MESH_TELEGRAM_API_BASE=http://127.0.0.1:%d", NULL};
    return cf_start(env);
}

static int group_teardown(void **state)
{
    (void)state;
    return cf_stop();
}

static void tg_post(const char *body, const char *secret, mh_http_resp_t *r)
{
    char h_sec[128];
    snprintf(h_sec, sizeof h_sec, "X-Telegram-Bot-Api-Secret-Token: %s", secret);
    const char *h[] = {"Content-Type: application/json", secret ? h_sec : NULL, NULL};
    cf_post("/v1/channels/telegram/webhook", body, h, r);
}

static char *update(long update_id, long chat_id, const char *text)
{
    char *b = NULL;
    if (asprintf(&b,
                 "{\"update_id\":%ld,\"message\":{\"message_id\":1,\"from\":{\"id\":42,"
                 "\"is_bot\":false,\"first_name\":\"Homura\"},\"chat\":{\"id\":%ld,\"type\":"
                 "\"private\"},\"date\":1528706565,\"text\":\"%s\"}}",
                 update_id, chat_id, text) < 0)
        fail_msg("asprintf");
    return b;
}

static void test_message_once(void **state)
{
    (void)state;
    cf_stub_reset();
    mh_http_resp_t r;
    char *body = update(1001, 88569449, "What does policy P10023 cover?");
    tg_post(body, SECRET, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    json_t *reqs = cf_wait_requests("/sendMessage", 1);
    assert_int_equal(json_array_size(reqs), 1);
    json_t *q = json_array_get(reqs, 0);
    assert_string_equal(cf_str(q, "path"), "/bot" TOKEN "/sendMessage");
    assert_non_null(json_object_get(json_object_get(q, "headers"), "traceparent"));
    json_t *pb = json_loads(cf_str(q, "body"), 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(pb, "chat_id")), 88569449);
    assert_true(strlen(cf_str(pb, "text")) > 0);
    json_decref(pb);
    json_decref(reqs);
    /* Telegram redelivers the same update: answered once only */
    double dup0 =
        cf_metric("mesh_channel_inbound_total{channel=\"telegram\",outcome=\"duplicate\"}");
    tg_post(body, SECRET, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    assert_true(cf_wait_metric(
        "mesh_channel_inbound_total{channel=\"telegram\",outcome=\"duplicate\"}", dup0 + 1));
    reqs = cf_requests("/sendMessage");
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
    free(body);
    mh_get_conversation(s_mesh, "tg:88569449", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(cf_str(json_object_get(r.json, "state"), "channel"), "telegram");
    mh_http_resp_clear(&r);
}

static void test_wrong_secret(void **state)
{
    (void)state;
    cf_stub_reset();
    mh_http_resp_t r;
    char *body = update(1002, 5, "hello");
    tg_post(body, "not-the-secret", &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(mh_json_error_code(r.json), "unauthorized");
    mh_http_resp_clear(&r);
    tg_post(body, NULL, &r);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    tg_post(body, SECRET "x", &r);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    free(body);
    /* an edited message / other update: acknowledged, not answered */
    tg_post("{\"update_id\":1003,\"edited_message\":{\"message_id\":1,\"chat\":{\"id\":5},"
            "\"text\":\"x\"}}",
            SECRET, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    json_t *reqs = cf_requests("/sendMessage");
    assert_int_equal(json_array_size(reqs), 0);
    json_decref(reqs);
}

static void test_flood_control_then_success(void **state)
{
    (void)state;
    cf_stub_reset();
    cf_stub_post("/_script", "{\"fail_first\":1,\"status\":429,\"retry_after\":1}");
    double ok0 =
        cf_metric("mesh_channel_deliveries_total{channel=\"telegram\",outcome=\"delivered\"}");
    mh_http_resp_t r;
    char *body = update(1004, 77, "hello there");
    tg_post(body, SECRET, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    free(body);
    assert_true(cf_wait_metric(
        "mesh_channel_deliveries_total{channel=\"telegram\",outcome=\"delivered\"}", ok0 + 1));
    json_t *reqs = cf_requests("/sendMessage");
    assert_int_equal(json_array_size(reqs), 2);
    json_decref(reqs);
}

static size_t cps(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* The customer asks for a person; a person claims the conversation and
 * answers with 5000 characters (people API -> gateway_channels_deliver):
 * two sendMessage calls of 4096 and 904 characters, in order. While the
 * person holds it, a customer message gets no bot answer. */
static void test_human_reply_split(void **state)
{
    (void)state;
    cf_stub_reset();
    mh_http_resp_t r;
    char *body = update(2001, 555, "I want to talk to a human, please");
    tg_post(body, SECRET, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    free(body);
    json_t *reqs = cf_wait_requests("/sendMessage", 1); /* "a colleague will take over" */
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
    const char *auth[] = {"Authorization: Bearer " CF_PEOPLE_KEY, "Content-Type: application/json",
                          NULL};
    cf_post("/v1/handoff/tg:555/claim", "{}", auth, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    /* the customer writes while the person holds it: no bot answer */
    double acc0 =
        cf_metric("mesh_channel_inbound_total{channel=\"telegram\",outcome=\"accepted\"}");
    body = update(2002, 555, "hello? anyone there?");
    tg_post(body, SECRET, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    free(body);
    assert_true(
        cf_metric("mesh_channel_inbound_total{channel=\"telegram\",outcome=\"accepted\"}") >=
        acc0 + 1);
    /* 4096 'a' + 904 '你' */
    size_t n = 0;
    char *text = malloc(4096 + 904 * 3 + 1);
    memset(text, 'a', 4096);
    n = 4096;
    for (int i = 0; i < 904; i++, n += 3)
        memcpy(text + n, "\xe4\xbd\xa0", 3);
    text[n] = '\0';
    json_t *rb = json_pack("{s:s,s:s}", "text", text, "message_id", "h-1");
    char *rbs = json_dumps(rb, JSON_COMPACT);
    json_decref(rb);
    cf_post("/v1/handoff/tg:555/reply", rbs, auth, &r);
    free(rbs);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    reqs = cf_wait_requests("/sendMessage", 3);
    assert_int_equal(json_array_size(reqs), 3);
    json_t *p1 = json_loads(cf_str(json_array_get(reqs, 1), "body"), 0, NULL);
    json_t *p2 = json_loads(cf_str(json_array_get(reqs, 2), "body"), 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(p1, "chat_id")), 555);
    assert_int_equal(cps(cf_str(p1, "text")), 4096);
    assert_int_equal(cps(cf_str(p2, "text")), 904);
    char *joined = NULL;
    if (asprintf(&joined, "%s%s", cf_str(p1, "text"), cf_str(p2, "text")) < 0)
        fail_msg("asprintf");
    assert_string_equal(joined, text);
    free(joined);
    json_decref(p1);
    json_decref(p2);
    json_decref(reqs);
    free(text);
    /* The held message's turn has completed once a redelivery of it is a
     * duplicate (a stored FINAL exists); it must not have produced a message. */
    double dup0 =
        cf_metric("mesh_channel_inbound_total{channel=\"telegram\",outcome=\"duplicate\"}");
    body = update(2002, 555, "hello? anyone there?");
    uint64_t until = mh_now_ms() + CF_WAIT_MS;
    bool dup = false;
    while (!dup && mh_now_ms() < until) {
        tg_post(body, SECRET, &r);
        mh_http_resp_clear(&r);
        uint64_t step = mh_now_ms() + 2000; /* a still-running turn is not a duplicate yet */
        while (!dup && mh_now_ms() < step)
            dup = cf_metric("mesh_channel_inbound_total{channel=\"telegram\",outcome="
                            "\"duplicate\"}") >= dup0 + 1;
    }
    free(body);
    assert_true(dup);
    reqs = cf_requests("/sendMessage");
    assert_int_equal(json_array_size(reqs), 3);
    json_decref(reqs);
}

int main(void)
{
    if (mh_init("channel_telegram") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_once),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_flood_control_then_success),
        cmocka_unit_test(test_human_reply_split),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
