/*
 * test_claims.c - the claims store through the whole mesh: a raw libmesh
 * client sends memory's tool.call claim.register through the router (as
 * the router's agent loop does for a model's tool call), and the gateway's
 * GET /v1/claims/{claim_no} reads the record back over HTTP. Then Redis
 * goes down: the route answers 503 (memory withdrew from the router), and
 * serves again once Redis is back.
 */
#define _GNU_SOURCE
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "mesh_harness.h"

#define CALL_TIMEOUT_MS 5000
#define WAIT_MS         15000

static mh_mesh_t *s_mesh;
static char s_conv[64];
static char s_claim_no[64];

static int group_setup(void **state)
{
    (void)state;
    s_mesh = mh_mesh_start(NULL);
    if (s_mesh == NULL)
        return -1;
    snprintf(s_conv, sizeof s_conv, "conv-claims-%d", (int)getpid());
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

static json_t *register_args(const char *policy)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s, s:b}, s:s}}", "name", "claim.register",
                     "call_id", "call-int-1", "arguments", "policy_no", policy, "kind", "motor",
                     "facts", "accident_time", "2026-11-28 15:00", "plates", "沪A12345", "injuries",
                     0, "summary", "昨天下午三点在延安路追尾，对方全责，没人受伤");
}

/* Register through the router; the same conversation and policy again is the same claim. */
static void test_register_through_router(void **state)
{
    (void)state;
    json_t *args = register_args("P10023");
    json_t *data = NULL;
    int st = mh_mesh_call(s_mesh, "memory", "tool.call", s_conv, args, CALL_TIMEOUT_MS, &data);
    assert_int_equal(st, 0);
    assert_true(json_is_true(json_object_get(data, "ok")));
    const json_t *res = json_object_get(data, "result");
    const char *no = mh_json_str(res, "claim_no");
    assert_non_null(no);
    char date[9], re[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y%m%d", &tm);
    snprintf(re, sizeof re, "^CLM%s[0-9]{6}$", date);
    regex_t rx;
    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(regexec(&rx, no, 0, NULL, 0), 0);
    regfree(&rx);
    assert_true(json_is_true(json_object_get(res, "created")));
    assert_string_equal(mh_json_str(res, "status"), "registered");
    snprintf(s_claim_no, sizeof s_claim_no, "%s", no);
    json_decref(data);

    /* A retried tool call (the turn was retried): the same claim, created false. */
    data = NULL;
    st = mh_mesh_call(s_mesh, "memory", "tool.call", s_conv, args, CALL_TIMEOUT_MS, &data);
    assert_int_equal(st, 0);
    res = json_object_get(data, "result");
    assert_string_equal(mh_json_str(res, "claim_no"), s_claim_no);
    assert_true(json_is_false(json_object_get(res, "created")));
    json_decref(data);
    json_decref(args);

    /* Invalid arguments are a tool outcome, not a transport error. */
    args = json_pack("{s:s, s:{s:s}}", "name", "claim.register", "arguments", "policy_no", "P1");
    data = NULL;
    st = mh_mesh_call(s_mesh, "memory", "tool.call", s_conv, args, CALL_TIMEOUT_MS, &data);
    assert_int_equal(st, 0);
    assert_true(json_is_false(json_object_get(data, "ok")));
    assert_string_equal(mh_json_str(json_object_get(data, "error"), "code"),
                        "invalid_tool_arguments");
    json_decref(data);
    json_decref(args);
}

static void get_claim(const char *no, const char *const headers[], mh_http_resp_t *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/claims/%s", mh_mesh_url(s_mesh), no);
    memset(r, 0, sizeof *r);
    assert_int_equal(mh_http("GET", url, NULL, headers, CALL_TIMEOUT_MS, r), 0);
}

static void test_get_over_http(void **state)
{
    (void)state;
    assert_true(s_claim_no[0] != '\0');
    mh_http_resp_t r;
    get_claim(s_claim_no, NULL, &r);
    if (r.status != 200)
        fail_msg("GET /v1/claims/%s: %ld %s", s_claim_no, r.status, r.body ? r.body : "");
    assert_non_null(r.json);
    assert_string_equal(mh_json_str(r.json, "claim_no"), s_claim_no);
    assert_string_equal(mh_json_str(r.json, "conversation_id"), s_conv);
    assert_string_equal(mh_json_str(r.json, "tenant"), "default");
    assert_string_equal(mh_json_str(r.json, "policy_no"), "P10023");
    assert_string_equal(mh_json_str(r.json, "kind"), "motor");
    assert_string_equal(mh_json_str(json_object_get(r.json, "facts"), "plates"), "沪A12345");
    assert_string_equal(mh_json_str(r.json, "summary"),
                        "昨天下午三点在延安路追尾，对方全责，没人受伤");
    assert_true(json_integer_value(json_object_get(r.json, "registered_at")) > 1700000000000LL);
    mh_http_resp_clear(&r);

    /* Unknown number: 404 not_found. */
    get_claim("CLM20200101000001", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(mh_json_error_code(r.json), "not_found");
    mh_http_resp_clear(&r);
    /* Another tenant does not see it. */
    static const char *const other[] = {"X-Mesh-Tenant: other", NULL};
    get_claim(s_claim_no, other, &r);
    assert_int_equal(r.status, 404);
    mh_http_resp_clear(&r);
    /* Malformed numbers: 400, nothing sent into the mesh. */
    static const char *const bad[] = {"CLM123", "XYZ20261129000001", "CLM2026112900000a",
                                      "CLM202611290000010000000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        get_claim(bad[i], NULL, &r);
        if (r.status != 400)
            fail_msg("GET /v1/claims/%s: %ld", bad[i], r.status);
        assert_string_equal(mh_json_error_code(r.json), "invalid_claim_no");
        mh_http_resp_clear(&r);
    }
}

/* Redis down: memory withdraws, the route answers 503; back up: 200 again. */
static void test_redis_down(void **state)
{
    (void)state;
    mh_redis_t *redis = mh_mesh_redis(s_mesh);
    assert_true(mh_redis_stop(redis) >= 0);
    uint64_t deadline = mh_now_ms() + WAIT_MS;
    while (mh_mesh_workers(s_mesh, "memory", CALL_TIMEOUT_MS) != 0 && mh_now_ms() < deadline)
        ;
    mh_http_resp_t r;
    get_claim(s_claim_no, NULL, &r);
    assert_int_equal(r.status, 503);
    mh_http_resp_clear(&r);

    assert_int_equal(mh_redis_restart(redis), 0);
    assert_int_equal(mh_mesh_wait_ready(s_mesh, WAIT_MS), 0);
    /* No persistence in the test Redis: the claim is gone, the route answers 404. */
    get_claim(s_claim_no, NULL, &r);
    assert_int_equal(r.status, 404);
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("integration_claims") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_through_router),
        cmocka_unit_test(test_get_over_http),
        cmocka_unit_test(test_redis_down),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
