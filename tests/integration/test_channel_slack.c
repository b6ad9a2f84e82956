/*
 * test_channel_slack.c - Slack Events API end to end: a whole mesh (rules
 * backend, real Redis) whose gateway posts answers to mesh-channels-stub.
 *
 *   - url_verification answers the challenge (signed);
 *   - a signed message event -> exactly one chat.postMessage (threaded, bot
 *     token, traceparent of the inbound trace), also when Slack retries the
 *     same event (X-Slack-Retry-Num): the retry is answered by the mesh as a
 *     duplicate and nothing is posted again;
 *   - bad signature / stale timestamp / missing headers -> 401, nothing sent,
 *     the body never in the gateway's log;
 *   - bot messages and edits are ignored;
 *   - the API answers 429 + Retry-After first: one retry, then delivered;
 *   - the API always answers 500: the answer is recorded (delivery.record)
 *     and listed by GET /v1/deliveries/failed (people key required).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_channel_fixture.h"

#define SECRET "slack-signing-secret-for-tests"
#define TOKEN  "xoxb-test-token"
#define TP_IN  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int group_setup(void **state)
{
    (void)state;
    const char *env[] = {"MESH_SLACK_SIGNING_SECRET=" SECRET, "MESH_SLACK_BOT_TOKEN=" TOKEN,
                         "MESH_SLACK_API_BASE=http://127.0.0.1:%d/api", NULL};
    return cf_start(env);
}

static int group_teardown(void **state)
{
    (void)state;
    return cf_stop();
}

/* POST body signed with secret at timestamp ts (0 = now); extra header may be NULL. */
static void slack_post(const char *body, const char *secret, long ts, const char *extra,
                       mh_http_resp_t *r)
{
    char tsb[32], sig[80], h_ts[80], h_sig[120];
    snprintf(tsb, sizeof tsb, "%ld", ts ? ts : (long)time(NULL));
    char hex[65];
    char base[64];
    snprintf(base, sizeof base, "v0:%s:", tsb);
    cf_hmac_hex(secret, base, body, "", hex);
    snprintf(sig, sizeof sig, "v0=%s", hex);
    snprintf(h_ts, sizeof h_ts, "X-Slack-Request-Timestamp: %s", tsb);
    snprintf(h_sig, sizeof h_sig, "X-Slack-Signature: %s", sig);
    const char *h[] = {
        "Content-Type: application/json", h_ts, h_sig, "traceparent: " TP_IN, extra, NULL};
    cf_post("/v1/channels/slack/events", body, h, r);
}

static char *event_body(const char *event_id, const char *channel, const char *ts, const char *text,
                        const char *extra_event_fields)
{
    char *b = NULL;
    if (asprintf(&b,
                 "{\"token\":\"x\",\"team_id\":\"T1\",\"api_app_id\":\"A1\",\"type\":"
                 "\"event_callback\",\"event_id\":\"%s\",\"event_time\":1,\"event\":{\"type\":"
                 "\"message\",\"channel\":\"%s\",\"user\":\"U1\",\"text\":\"%s\",\"ts\":\"%s\","
                 "\"event_ts\":\"%s\",\"channel_type\":\"im\"%s}}",
                 event_id, channel, text, ts, ts, extra_event_fields) < 0)
        fail_msg("asprintf");
    return b;
}

static void test_url_verification(void **state)
{
    (void)state;
    mh_http_resp_t r;
    const char *body = "{\"token\":\"Jhj5dZrVaK7ZwHHjRyZWjbDl\",\"challenge\":"
                       "\"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P\",\"type\":"
                       "\"url_verification\"}";
    slack_post(body, SECRET, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(cf_str(r.json, "challenge"),
                        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    mh_http_resp_clear(&r);
}

static void test_message_once_even_when_retried(void **state)
{
    (void)state;
    cf_stub_reset();
    mh_http_resp_t r;
    char *body =
        event_body("Ev0001", "D100", "1700000001.000100", "What does policy P10023 cover?", "");
    slack_post(body, SECRET, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    json_t *reqs = cf_wait_requests("/api/chat.postMessage", 1);
    assert_int_equal(json_array_size(reqs), 1);
    json_t *q = json_array_get(reqs, 0);
    assert_string_equal(cf_str(q, "method"), "POST");
    json_t *h = json_object_get(q, "headers");
    assert_string_equal(cf_str(h, "authorization"), "Bearer " TOKEN);
    /* the outbound call is in the inbound request's trace, as a new span */
    const char *tp = cf_str(h, "traceparent");
    assert_int_equal(strlen(tp), 55);
    assert_memory_equal(tp, TP_IN, 36);
    assert_string_not_equal(tp, TP_IN);
    json_t *pb = json_loads(cf_str(q, "body"), 0, NULL);
    assert_string_equal(cf_str(pb, "channel"), "D100");
    assert_string_equal(cf_str(pb, "thread_ts"), "1700000001.000100");
    assert_true(strlen(cf_str(pb, "text")) > 0);
    json_decref(pb);
    json_decref(reqs);

    /* Slack retries the same event: acknowledged, answered as a duplicate, not posted again */
    double dup0 = cf_metric("mesh_channel_inbound_total{channel=\"slack\",outcome=\"duplicate\"}");
    slack_post(body, SECRET, 0, "X-Slack-Retry-Num: 1", &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    assert_true(cf_wait_metric(
        "mesh_channel_inbound_total{channel=\"slack\",outcome=\"duplicate\"}", dup0 + 1));
    reqs = cf_requests("/api/chat.postMessage");
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
    free(body);

    /* the conversation is bound to the channel (conv.bind) */
    mh_get_conversation(s_mesh, "slack:T1:D100:1700000001.000100", &r);
    assert_int_equal(r.status, 200);
    const json_t *st = json_object_get(r.json, "state");
    assert_string_equal(cf_str(st, "channel"), "slack");
    json_t *to = json_loads(cf_str(st, "channel_to"), 0, NULL);
    assert_string_equal(cf_str(to, "channel"), "D100");
    json_decref(to);
    mh_http_resp_clear(&r);
}

static void test_bad_signatures_refused(void **state)
{
    (void)state;
    cf_stub_reset();
    mh_proc_t *gw = mh_mesh_proc(s_mesh, MH_GATEWAY, 0);
    size_t mark = mh_log_mark(gw);
    char *body = event_body("Ev0002", "D200", "1700000002.000100", "SECRETBODYMARKER please", "");
    mh_http_resp_t r;
    slack_post(body, "wrong-secret", 0, NULL, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(mh_json_error_code(r.json), "unauthorized");
    mh_http_resp_clear(&r);
    slack_post(body, SECRET, (long)time(NULL) - 600, NULL, &r); /* stale */
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    const char *h[] = {"Content-Type: application/json", NULL};
    cf_post("/v1/channels/slack/events", body, h, &r); /* unsigned */
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    /* a valid one afterwards still works: the refusals left no state behind */
    assert_true(mh_log_wait(gw, mark, "request refused", 5000));
    assert_int_equal(mh_log_count(gw, mark, "request refused (401)"), 3);
    char *log = mh_log_read(gw, mark);
    assert_null(strstr(log, "SECRETBODYMARKER"));
    free(log);
    json_t *reqs = cf_requests("/api/");
    assert_int_equal(json_array_size(reqs), 0);
    json_decref(reqs);
    /* bot messages and edits: acknowledged, never answered */
    char *bot = event_body("Ev0003", "D200", "1700000002.000200", "I am a bot",
                           ",\"bot_id\":\"B1\",\"subtype\":\"bot_message\"");
    slack_post(bot, SECRET, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    free(bot);
    free(body);
    reqs = cf_requests("/api/");
    assert_int_equal(json_array_size(reqs), 0);
    json_decref(reqs);
}

static void test_429_then_success(void **state)
{
    (void)state;
    cf_stub_reset();
    cf_stub_post("/_script", "{\"fail_first\":1,\"status\":429,\"retry_after\":1}");
    double ok0 =
        cf_metric("mesh_channel_deliveries_total{channel=\"slack\",outcome=\"delivered\"}");
    char *body = event_body("Ev0004", "D300", "1700000003.000100", "hello", "");
    mh_http_resp_t r;
    slack_post(body, SECRET, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    free(body);
    assert_true(cf_wait_metric(
        "mesh_channel_deliveries_total{channel=\"slack\",outcome=\"delivered\"}", ok0 + 1));
    json_t *reqs = cf_requests("/api/chat.postMessage");
    assert_int_equal(json_array_size(reqs), 2); /* the 429, then the success */
    assert_string_equal(cf_str(json_array_get(reqs, 0), "body"),
                        cf_str(json_array_get(reqs, 1), "body"));
    json_decref(reqs);
}

static void test_undeliverable_recorded(void **state)
{
    (void)state;
    cf_stub_reset();
    cf_stub_post("/_script", "{\"always\":500}");
    char *body = event_body("Ev0005", "D400", "1700000004.000100", "hello again", "");
    mh_http_resp_t r;
    slack_post(body, SECRET, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    free(body);
    json_t *e = cf_wait_failed("slack:T1:D400:1700000004.000100");
    assert_non_null(e);
    assert_string_equal(cf_str(e, "channel"), "slack");
    assert_non_null(strstr(cf_str(e, "reason"), "http 500"));
    assert_true(strlen(cf_str(e, "text")) > 0);
    json_decref(e);
    json_t *reqs = cf_requests("/api/chat.postMessage");
    assert_int_equal(json_array_size(reqs), atoi(CF_MAX_ATTEMPTS));
    json_decref(reqs);
    /* the note is in the conversation's log too */
    mh_get_conversation(s_mesh, "slack:T1:D400:1700000004.000100", &r);
    assert_non_null(strstr(r.body, "undelivered"));
    mh_http_resp_clear(&r);
    /* the list needs a people key */
    cf_failed(NULL, &r);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    cf_failed("not-the-key-0123456789", &r);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    cf_stub_reset();
}

int main(void)
{
    if (mh_init("channel_slack") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_verification),
        cmocka_unit_test(test_message_once_even_when_retried),
        cmocka_unit_test(test_bad_signatures_refused),
        cmocka_unit_test(test_429_then_success),
        cmocka_unit_test(test_undeliverable_recorded),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
