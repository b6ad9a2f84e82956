/*
 * test_channel_webhook.c - the generic signed webhook end to end:
 *   - signed, no callback_url: the answer is the response (200), a retry with
 *     the same message_id gets the stored answer (duplicate: true);
 *   - bad signature, stale timestamp, missing headers -> 401;
 *   - callback_url: 202 at once, then exactly one signed POST to the
 *     callback (checked here with the same secret), 429 then success;
 *   - a callback that always fails: recorded, in GET /v1/deliveries/failed;
 *   - a channel without credentials (Slack here) answers 404 not_enabled.
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

#define SECRET "webhook-secret-for-tests"

static int group_setup(void **state)
{
    (void)state;
    const char *env[] = {"MESH_WEBHOOK_SECRET=" SECRET, NULL};
    return cf_start(env);
}

static int group_teardown(void **state)
{
    (void)state;
    return cf_stop();
}

static void hook_post(const char *body, const char *secret, long ts, mh_http_resp_t *r)
{
    char tsb[32], hex[65], h_ts[64], h_sig[128];
    snprintf(tsb, sizeof tsb, "%ld", ts ? ts : (long)time(NULL));
    cf_hmac_hex(secret, tsb, ".", body, hex);
    snprintf(h_ts, sizeof h_ts, "X-Mesh-Timestamp: %s", tsb);
    snprintf(h_sig, sizeof h_sig, "X-Mesh-Signature: sha256=%s", hex);
    const char *h[] = {"Content-Type: application/json", h_ts, h_sig, NULL};
    cf_post("/v1/channels/webhook", body, h, r);
}

static void test_sync_answer(void **state)
{
    (void)state;
    const char *body = "{\"conversation_id\":\"hook-sync-1\",\"text\":\"What does policy P10023 "
                       "cover?\",\"message_id\":\"m-1\"}";
    mh_http_resp_t r;
    hook_post(body, SECRET, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(cf_str(r.json, "conversation_id"), "hook-sync-1");
    assert_string_equal(cf_str(r.json, "message_id"), "m-1");
    char *reply = strdup(cf_str(r.json, "reply"));
    assert_true(strlen(reply) > 0);
    assert_true(json_is_false(json_object_get(r.json, "duplicate")));
    mh_http_resp_clear(&r);
    hook_post(body, SECRET, 0, &r); /* the client retries */
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    assert_string_equal(cf_str(r.json, "reply"), reply);
    mh_http_resp_clear(&r);
    free(reply);
    mh_get_conversation(s_mesh, "hook-sync-1", &r);
    assert_string_equal(cf_str(json_object_get(r.json, "state"), "channel"), "webhook");
    mh_http_resp_clear(&r);
}

static void test_refused(void **state)
{
    (void)state;
    const char *body = "{\"conversation_id\":\"hook-bad\",\"text\":\"hi\",\"message_id\":\"m-2\"}";
    mh_http_resp_t r;
    hook_post(body, "wrong", 0, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(mh_json_error_code(r.json), "unauthorized");
    mh_http_resp_clear(&r);
    hook_post(body, SECRET, (long)time(NULL) - 301 - 5, &r);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    const char *h[] = {"Content-Type: application/json", NULL};
    cf_post("/v1/channels/webhook", body, h, &r);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    /* nothing of it reached the mesh */
    mh_get_conversation(s_mesh, "hook-bad", &r);
    assert_int_equal(r.status, 404);
    mh_http_resp_clear(&r);
    /* signed but invalid fields: 400 */
    hook_post("{\"conversation_id\":\"bad id\",\"text\":\"x\",\"message_id\":\"m\"}", SECRET, 0,
              &r);
    assert_int_equal(r.status, 400);
    mh_http_resp_clear(&r);
}

static void test_callback(void **state)
{
    (void)state;
    cf_stub_reset();
    cf_stub_post("/_script", "{\"fail_first\":1,\"status\":503,\"retry_after\":0}");
    char cb[128], body[512];
    cf_stub_url(cb, sizeof cb, "/callback/hook");
    snprintf(body, sizeof body,
             "{\"conversation_id\":\"hook-cb-1\",\"text\":\"hello\",\"message_id\":\"m-3\","
             "\"callback_url\":\"%s\"}",
             cb);
    mh_http_resp_t r;
    hook_post(body, SECRET, 0, &r);
    assert_int_equal(r.status, 202);
    assert_true(json_is_true(json_object_get(r.json, "accepted")));
    mh_http_resp_clear(&r);
    json_t *reqs = cf_wait_requests("/callback/hook", 2);
    assert_int_equal(json_array_size(reqs), 2); /* the 503, then the delivery */
    json_t *q = json_array_get(reqs, 1);
    const char *cbody = cf_str(q, "body");
    json_t *h = json_object_get(q, "headers");
    char want[65], sig[80];
    cf_hmac_hex(SECRET, cf_str(h, "x-mesh-timestamp"), ".", cbody, want);
    snprintf(sig, sizeof sig, "sha256=%s", want);
    assert_string_equal(cf_str(h, "x-mesh-signature"), sig);
    json_t *pb = json_loads(cbody, 0, NULL);
    assert_string_equal(cf_str(pb, "conversation_id"), "hook-cb-1");
    assert_string_equal(cf_str(pb, "message_id"), "m-3");
    assert_true(strlen(cf_str(pb, "reply")) > 0);
    json_decref(pb);
    json_decref(reqs);
}

static void test_callback_undeliverable(void **state)
{
    (void)state;
    cf_stub_reset();
    cf_stub_post("/_script", "{\"always\":500}");
    char cb[128], body[512];
    cf_stub_url(cb, sizeof cb, "/callback/down");
    snprintf(body, sizeof body,
             "{\"conversation_id\":\"hook-cb-2\",\"text\":\"hello\",\"message_id\":\"m-4\","
             "\"callback_url\":\"%s\"}",
             cb);
    mh_http_resp_t r;
    hook_post(body, SECRET, 0, &r);
    assert_int_equal(r.status, 202);
    mh_http_resp_clear(&r);
    json_t *e = cf_wait_failed("hook-cb-2");
    assert_non_null(e);
    assert_string_equal(cf_str(e, "channel"), "webhook");
    assert_string_equal(cf_str(json_object_get(e, "to"), "callback_url"), cb);
    json_decref(e);
    cf_stub_reset();
}

static void test_not_enabled(void **state)
{
    (void)state;
    mh_http_resp_t r;
    const char *h[] = {"Content-Type: application/json", NULL};
    cf_post("/v1/channels/slack/events", "{}", h, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(mh_json_error_code(r.json), "not_enabled");
    mh_http_resp_clear(&r);
    cf_post("/v1/channels/nowhere", "{}", h, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(mh_json_error_code(r.json), "not_found");
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("channel_webhook") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_answer), cmocka_unit_test(test_refused),
        cmocka_unit_test(test_callback),    cmocka_unit_test(test_callback_undeliverable),
        cmocka_unit_test(test_not_enabled),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
