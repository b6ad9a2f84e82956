/*
 * test_errors.c - every failure the HTTP client can meet, through the whole
 * mesh: bad requests (400/404/405/413/415/431), a deadline (504), Redis down
 * and back (503 then 200 again), no llm worker (503 no_worker after
 * MESH_NOWORKER_WAIT_MS), and after each the services are all still running.
 *
 * The HTTP-level cases share one mesh; each destructive case gets its own.
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

#define RAW_TIMEOUT_MS 5000
#define READYZ_WAIT_MS 10000
#define NOWORKER_WAIT  "500"
#define STOP_WAIT_MS   5000

static mh_mesh_t *s_shared; /* for the HTTP-level cases */
static mh_mesh_t *s_own;    /* per destructive case */

static int group_setup(void **state)
{
    (void)state;
    s_shared = mh_mesh_start(NULL);
    return s_shared != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    bool alive = s_shared != NULL && mh_mesh_all_alive(s_shared);
    bool clean = mh_mesh_stop(&s_shared) == 0;
    return alive && clean ? 0 : -1;
}

static int own_teardown(void **state)
{
    (void)state;
    return mh_mesh_stop(&s_own) == 0 ? 0 : -1;
}

static void assert_error(const mh_http_resp_t *r, long status, const char *code)
{
    if (r->status != status) {
        fail_msg("want %ld %s, got %ld %s %s", status, code != NULL ? code : "", r->status,
                 r->body != NULL ? r->body : "", r->curl_err);
    }
    const char *got = mh_json_error_code(r->json);
    if (got == NULL) {
        fail_msg("%ld without a JSON error body: %s", status, r->body);
    }
    if (code != NULL && strcmp(got, code) != 0) {
        fail_msg("want error code %s, got %s", code, got);
    }
    assert_non_null(mh_json_str(json_object_get(r->json, "error"), "message"));
}

static void url_of(const mh_mesh_t *m, const char *path, char *out, size_t size)
{
    snprintf(out, size, "%s%s", mh_mesh_url(m), path);
}

/* Status of a raw request; the response body must be a JSON error. */
static int raw_status(const mh_mesh_t *m, const char *req, size_t len)
{
    char *resp = NULL;
    int status = mh_http_raw(mh_mesh_http_port(m), req, len, RAW_TIMEOUT_MS, &resp);
    if (status >= 400) {
        const char *body = resp != NULL ? strstr(resp, "\r\n\r\n") : NULL;
        json_t *j = body != NULL ? json_loads(body + 4, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
        if (mh_json_error_code(j) == NULL) {
            fail_msg("%d without a JSON error body: %s", status, resp != NULL ? resp : "");
        }
        json_decref(j);
    }
    free(resp);
    return status;
}

static void assert_shared_alive(void)
{
    assert_true(mh_mesh_all_alive(s_shared));
    mh_http_resp_t r;
    char url[128];
    url_of(s_shared, "/healthz", url, sizeof url);
    assert_int_equal(mh_http_get(url, &r), 0);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
}

static void test_unknown_conversation_404(void **state)
{
    (void)state;
    mh_http_resp_t r;
    assert_int_equal(mh_get_conversation(s_shared, "conv-never-seen", &r), 0);
    assert_error(&r, 404, "not_found");
    mh_http_resp_clear(&r);

    char url[256];
    url_of(s_shared, "/no/such/path", url, sizeof url);
    assert_int_equal(mh_http_get(url, &r), 0);
    assert_error(&r, 404, NULL);
    mh_http_resp_clear(&r);
}

static void test_bad_bodies_400_415(void **state)
{
    (void)state;
    char url[256];
    url_of(s_shared, "/v1/conversations/conv-err/messages", url, sizeof url);
    mh_http_resp_t r;

    assert_int_equal(mh_http_post_json(url, "{\"text\": \"hi\"", &r), 0);
    assert_error(&r, 400, "invalid_json");
    mh_http_resp_clear(&r);

    assert_int_equal(mh_http_post_json(url, "{\"message_id\": \"m1\"}", &r), 0);
    assert_error(&r, 400, "invalid_field");
    assert_non_null(strstr(mh_json_str(json_object_get(r.json, "error"), "message"), "text"));
    mh_http_resp_clear(&r);

    assert_int_equal(mh_http_post_json(url, "{\"text\": 42}", &r), 0);
    assert_error(&r, 400, "invalid_field");
    mh_http_resp_clear(&r);

    assert_int_equal(mh_http_post_json(url, "{\"text\": \"\"}", &r), 0);
    assert_error(&r, 400, NULL);
    mh_http_resp_clear(&r);

    const char *plain[] = {"Content-Type: text/plain", NULL};
    assert_int_equal(mh_http("POST", url, "{\"text\":\"hi\"}", plain, 0, &r), 0);
    assert_error(&r, 415, NULL);
    mh_http_resp_clear(&r);

    url_of(s_shared, "/v1/conversations/bad%20id!/messages", url, sizeof url);
    assert_int_equal(mh_http_post_json(url, "{\"text\":\"hi\"}", &r), 0);
    assert_error(&r, 400, NULL);
    mh_http_resp_clear(&r);
    assert_shared_alive();
}

static void test_oversized_body_413(void **state)
{
    (void)state;
    /* declared larger than MESH_HTTP_MAX_BODY (1 MiB default): refused before the body */
    static const char req[] = "POST /v1/conversations/conv-err/messages HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: 2000000\r\n\r\n";
    assert_int_equal(raw_status(s_shared, req, sizeof req - 1), 413);

    /* and a real oversized body through curl */
    size_t n = 1100 * 1024;
    char *body = malloc(n + 32);
    assert_non_null(body);
    memcpy(body, "{\"text\":\"", 9);
    memset(body + 9, 'a', n);
    memcpy(body + 9 + n, "\"}", 3);
    char url[256];
    url_of(s_shared, "/v1/conversations/conv-err/messages", url, sizeof url);
    mh_http_resp_t r;
    mh_http_post_json(url, body, &r);
    /* the gateway may close while curl still sends; if a response came, it is 413 */
    if (r.status != 0) {
        assert_int_equal(r.status, 413);
    }
    mh_http_resp_clear(&r);
    free(body);
    assert_shared_alive();
}

static void test_oversized_header_431(void **state)
{
    (void)state;
    size_t big = 20000; /* > MESH_HTTP_MAX_HEADER (16 KiB default) */
    char *req = malloc(big + 256);
    assert_non_null(req);
    int n = snprintf(req, 256, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    assert_int_equal(raw_status(s_shared, req, (size_t)n + big + 4), 431);
    free(req);
    assert_shared_alive();
}

static void test_wrong_method_405(void **state)
{
    (void)state;
    char url[256];
    mh_http_resp_t r;
    url_of(s_shared, "/v1/conversations/conv-err/messages", url, sizeof url);
    assert_int_equal(mh_http("PUT", url, "{\"text\":\"hi\"}", NULL, 0, &r), 0);
    assert_error(&r, 405, "method_not_allowed");
    mh_http_resp_clear(&r);
    assert_int_equal(mh_http("GET", url, NULL, NULL, 0, &r), 0);
    assert_error(&r, 405, "method_not_allowed");
    mh_http_resp_clear(&r);
    url_of(s_shared, "/healthz", url, sizeof url);
    assert_int_equal(mh_http("POST", url, "{}", NULL, 0, &r), 0);
    assert_error(&r, 405, "method_not_allowed");
    mh_http_resp_clear(&r);
    /* Allow header on 405 */
    static const char req[] = "DELETE /v1/conversations/conv-err HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char *resp = NULL;
    assert_int_equal(
        mh_http_raw(mh_mesh_http_port(s_shared), req, sizeof req - 1, RAW_TIMEOUT_MS, &resp), 405);
    assert_non_null(strcasestr(resp, "\r\nAllow:"));
    free(resp);
    assert_shared_alive();
}

static void test_garbage_request_line_400(void **state)
{
    (void)state;
    static const char garbage[] = "GARBAGE\r\n\r\n";
    assert_int_equal(raw_status(s_shared, garbage, sizeof garbage - 1), 400);
    static const char binary[] = "\x01\x02\x03\xff\xfe HTTP/1.1\r\n\r\n";
    assert_int_equal(raw_status(s_shared, binary, sizeof binary - 1), 400);
    assert_shared_alive();
}

static void test_everything_still_serves(void **state)
{
    (void)state;
    mh_http_resp_t r;
    assert_int_equal(
        mh_post_message(s_shared, "conv-err-final", "我的保单 P10023 保障什么？", NULL, &r), 0);
    if (r.status != 200) {
        fail_msg("turn after the bad requests: %ld %s", r.status, r.body);
    }
    mh_http_resp_clear(&r);
    assert_shared_alive();
}

/* --- destructive cases, each on its own mesh --- */

static int deadline_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o = {0};
    o.env[MH_LLM][0] = "MESH_LLM_DELAY_MS=2000";
    s_own = mh_mesh_start(&o);
    return s_own != NULL ? 0 : -1;
}

static void test_deadline_504(void **state)
{
    (void)state;
    char url[256];
    url_of(s_own, "/v1/conversations/conv-slow/messages", url, sizeof url);
    const char *hdrs[] = {"X-Mesh-Timeout-Ms: 200", NULL};
    mh_http_resp_t r;
    uint64_t t0 = mh_now_ms();
    assert_int_equal(
        mh_http("POST", url, "{\"text\":\"我的保单 P10023 保障什么？\"}", hdrs, 10000, &r), 0);
    uint64_t took = mh_now_ms() - t0;
    assert_error(&r, 504, "deadline_exceeded");
    if (took > 1500) {
        fail_msg("504 after %llu ms: the 200 ms deadline was not honoured",
                 (unsigned long long)took);
    }
    mh_http_resp_clear(&r);
    assert_true(mh_mesh_all_alive(s_own));
}

static int noworker_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o = {0};
    o.env[MH_ROUTER][0] = "MESH_NOWORKER_WAIT_MS=" NOWORKER_WAIT;
    s_own = mh_mesh_start(&o);
    return s_own != NULL ? 0 : -1;
}

static void test_redis_down_503_then_recovers(void **state)
{
    (void)state;
    mh_redis_t *redis = mh_mesh_redis(s_own);
    assert_int_equal(mh_redis_stop(redis), 0);
    if (mh_mesh_wait_readyz(s_own, 503, READYZ_WAIT_MS) != 0) {
        fail_msg("/readyz did not turn 503 with Redis down");
    }
    char url[256];
    url_of(s_own, "/readyz", url, sizeof url);
    mh_http_resp_t r;
    assert_int_equal(mh_http_get(url, &r), 0);
    assert_error(&r, 503, NULL);
    mh_http_resp_clear(&r);

    assert_int_equal(mh_post_message(s_own, "conv-redis", "我的保单 P10023 保障什么？", "rd-1", &r),
                     0);
    assert_error(&r, 503, NULL);
    mh_http_resp_clear(&r);
    assert_true(mh_mesh_all_alive(s_own));

    assert_int_equal(mh_redis_restart(redis), 0);
    if (mh_mesh_wait_readyz(s_own, 200, READYZ_WAIT_MS) != 0) {
        fail_msg("/readyz did not return to 200 after Redis came back");
    }
    assert_int_equal(mh_post_message(s_own, "conv-redis", "我的保单 P10023 保障什么？", "rd-1", &r),
                     0);
    if (r.status != 200) {
        fail_msg("POST after Redis came back: %ld %s", r.status, r.body);
    }
    mh_http_resp_clear(&r);
    assert_true(mh_mesh_all_alive(s_own));
}

static void test_no_llm_worker_503(void **state)
{
    (void)state;
    mh_proc_t *llm = mh_mesh_proc(s_own, MH_LLM, 0);
    assert_int_equal(mh_proc_stop(llm, STOP_WAIT_MS), 0);
    /* the router forgets the worker (DISCONNECT on drain, or heartbeat expiry) */
    int workers = -1;
    uint64_t deadline = mh_now_ms() + 5000;
    while (mh_now_ms() < deadline && (workers = mh_mesh_workers(s_own, "llm", 1000)) != 0) {
    }
    assert_int_equal(workers, 0);

    mh_http_resp_t r;
    assert_int_equal(mh_post_message(s_own, "conv-nollm", "我的保单 P10023 保障什么？", "nl-1", &r),
                     0);
    assert_error(&r, 503, "no_worker");
    if (r.seconds < 0.4) {
        fail_msg("503 after %.3f s: the router did not wait MESH_NOWORKER_WAIT_MS", r.seconds);
    }
    mh_http_resp_clear(&r);

    /* everything else still runs, and a new llm worker restores service */
    mh_proc_t *keep[] = {mh_mesh_proc(s_own, MH_ROUTER, 0), mh_mesh_proc(s_own, MH_TOOLS, 0),
                         mh_mesh_proc(s_own, MH_MEMORY, 0), mh_mesh_proc(s_own, MH_GATEWAY, 0)};
    for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
        assert_true(mh_proc_alive(keep[k]));
    }
    assert_int_equal(mh_proc_restart(llm), 0);
    assert_int_equal(mh_mesh_wait_ready(s_own, 20000), 0);
    assert_int_equal(mh_post_message(s_own, "conv-nollm", "我的保单 P10023 保障什么？", "nl-1", &r),
                     0);
    if (r.status != 200) {
        fail_msg("POST with the llm worker back: %ld %s", r.status, r.body);
    }
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("errors") != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_conversation_404),
        cmocka_unit_test(test_bad_bodies_400_415),
        cmocka_unit_test(test_oversized_body_413),
        cmocka_unit_test(test_oversized_header_431),
        cmocka_unit_test(test_wrong_method_405),
        cmocka_unit_test(test_garbage_request_line_400),
        cmocka_unit_test(test_everything_still_serves),
        cmocka_unit_test_setup_teardown(test_deadline_504, deadline_setup, own_teardown),
        cmocka_unit_test_setup_teardown(test_redis_down_503_then_recovers, noworker_setup,
                                        own_teardown),
        cmocka_unit_test_setup_teardown(test_no_llm_worker_503, noworker_setup, own_teardown),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
