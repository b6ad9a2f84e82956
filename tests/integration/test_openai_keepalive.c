/*
 * test_openai_keepalive.c - the llm worker reuses its connection to the model
 * server (HTTP/1.1 keep-alive), and reuse is only an optimisation:
 *
 *  - the stub itself (tests/stubs/openai_stub.c) keeps a connection alive
 *    across requests (answers in order, even pipelined ones) and honours a
 *    client's "Connection: close" and HTTP/1.0;
 *  - a mesh with the openai backend: three turns in a row reach the stub on
 *    one connection (its GET /_stub/stats: 1 connection, 3 requests);
 *  - the stub is then replaced, on the same port, by one that closes after
 *    every response (--close): the worker's cached connection is dead, and
 *    every turn still gets the model's answer on the first attempt (no
 *    retry, no fallback), one connection per request.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"

#define TURN_TIMEOUT_MS 15000
#define RAW_TIMEOUT_MS  3000
#define PLAIN_ANSWER    "Plain answer from the stub."

static mh_mesh_t *s_mesh;
static mh_proc_t *s_stub;
static int s_port;
static char s_record[MH_PATH_MAX];

static int group_setup(void **state)
{
    (void)state;
    s_port = mh_openai_stub_start_on(0, false, "keepalive-requests.jsonl", &s_stub, s_record);
    if (s_port < 0)
        return -1;
    const char *llm_env[] = {"MESH_LLM_RETRIES=2", "MESH_LLM_BACKOFF_MS=50",
                             "MESH_LLM_BACKOFF_MAX_MS=200", "MESH_LLM_TIMEOUT_MS=10000", NULL};
    s_mesh = mh_openai_mesh_start(s_port, "small=stub-model", llm_env, NULL);
    return s_mesh != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_openai_mesh_teardown(&s_mesh, &s_stub);
}

/* ---- helpers ---- */

/* The stub's GET /_stub/stats counter key. */
static long long stub_stat(const char *key)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_stub/stats", s_port);
    mh_http_resp_t r;
    memset(&r, 0, sizeof(r));
    if (mh_http_get(url, &r) != 0 || r.status != 200 || !json_is_object(r.json))
        fail_msg("GET /_stub/stats: status %ld %s", r.status, r.curl_err);
    const json_t *v = json_object_get(r.json, key);
    if (!json_is_integer(v))
        fail_msg("/_stub/stats has no integer %s: %s", key, r.body);
    long long n = (long long)json_integer_value(v);
    mh_http_resp_clear(&r);
    return n;
}

/* One turn; fails unless the model's answer (not a fallback) came back. */
static void model_turn(const char *conv, const char *text, const char *want)
{
    mh_http_resp_t r;
    const char *reply = mh_turn(s_mesh, conv, text, NULL, NULL, &r);
    if (json_object_get(r.json, "fallback") != NULL)
        fail_msg("turn %s fell back: %s", conv, r.body);
    mh_assert_has(reply, want);
    mh_http_resp_clear(&r);
}

/* Recorded requests since line `from` of s_record, and how many had attempt 0. */
static int recorded(int from, int *first_attempts)
{
    FILE *f = fopen(s_record, "r");
    int n = 0;
    *first_attempts = 0;
    if (f == NULL)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; getline(&line, &cap, f) > 0; i++) {
        if (i < from)
            continue;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        n++;
        if (json_integer_value(json_object_get(o, "attempt")) == 0)
            (*first_attempts)++;
        json_decref(o);
    }
    free(line);
    fclose(f);
    return n;
}

/* Read from fd until buf holds `responses` complete "HTTP/1.1" responses
 * with Content-Length bodies, the peer closes (*eof) or timeout_ms passes. */
static size_t read_responses(int fd, char *buf, size_t cap, int responses, bool *eof,
                             int timeout_ms)
{
    size_t len = 0;
    uint64_t deadline = mh_now_ms() + (uint64_t)timeout_ms;
    *eof = false;
    buf[0] = '\0';
    for (;;) {
        int seen = 0;
        const char *p = buf;
        while ((p = strstr(p, "HTTP/1.1 ")) != NULL) {
            const char *body = strstr(p, "\r\n\r\n");
            const char *cl = strcasestr(p, "Content-Length: ");
            if (body == NULL || cl == NULL || cl > body)
                break;
            size_t end = (size_t)(body + 4 - buf) + (size_t)atol(cl + 16);
            if (end > len)
                break;
            seen++;
            p = buf + end;
        }
        if (seen >= responses)
            return len;
        uint64_t now = mh_now_ms();
        if (now >= deadline || len + 1 >= cap)
            return len;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
            return len;
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) {
            *eof = true;
            return len;
        }
        len += (size_t)r;
        buf[len] = '\0';
    }
}

/* true when the peer closes fd within timeout_ms (EOF or reset). */
static bool closed_within(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return false;
    char c;
    return read(fd, &c, 1) <= 0;
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

#define HEALTH "GET /healthz HTTP/1.1\r\nHost: stub\r\n"

/* ---- tests ---- */

static void test_stub_keeps_alive_and_honours_close(void **state)
{
    (void)state;
    char buf[8192];
    bool eof;
    long long conns = stub_stat("connections");

    /* Two requests sent at once, then a third: three answers on one connection,
     * each saying keep-alive, and the connection stays open. */
    int fd = mh_tcp_connect(s_port);
    const char two[] = HEALTH "\r\n" HEALTH "\r\n";
    assert_int_equal(write(fd, two, sizeof(two) - 1), (ssize_t)sizeof(two) - 1);
    read_responses(fd, buf, sizeof(buf), 2, &eof, RAW_TIMEOUT_MS);
    assert_false(eof);
    assert_int_equal(count_of(buf, "HTTP/1.1 200"), 2);
    assert_int_equal(count_of(buf, "Connection: keep-alive"), 2);
    /* a counted request (an unknown path is answered 404 and counted) */
    const char post[] = "POST /v1/nothing HTTP/1.1\r\nHost: stub\r\nContent-Length: 2\r\n\r\n{}";
    assert_int_equal(write(fd, post, sizeof(post) - 1), (ssize_t)sizeof(post) - 1);
    read_responses(fd, buf, sizeof(buf), 1, &eof, RAW_TIMEOUT_MS);
    assert_false(eof);
    mh_assert_has(buf, "HTTP/1.1 404");
    assert_false(closed_within(fd, 200)); /* kept open: the client decides */
    assert_int_equal(stub_stat("connections"), conns + 1);

    /* The client's "Connection: close": the answer says so, then EOF. */
    const char bye[] = HEALTH "Connection: close\r\n\r\n";
    assert_int_equal(write(fd, bye, sizeof(bye) - 1), (ssize_t)sizeof(bye) - 1);
    read_responses(fd, buf, sizeof(buf), 1, &eof, RAW_TIMEOUT_MS);
    assert_int_equal(count_of(buf, "HTTP/1.1 200"), 1);
    mh_assert_has(buf, "Connection: close");
    assert_true(eof || closed_within(fd, RAW_TIMEOUT_MS));
    close(fd);

    /* HTTP/1.0 without keep-alive closes too (mh_http_raw reads until close). */
    char *out = NULL;
    uint64_t t0 = mh_now_ms();
    const char old[] = "GET /healthz HTTP/1.0\r\n\r\n";
    assert_int_equal(mh_http_raw(s_port, old, sizeof(old) - 1, RAW_TIMEOUT_MS, &out), 200);
    assert_true(mh_now_ms() - t0 < RAW_TIMEOUT_MS);
    mh_assert_has(out, "Connection: close");
    free(out);
}

static void test_three_turns_one_connection(void **state)
{
    (void)state;
    long long conns = stub_stat("connections"), reqs = stub_stat("requests");
    int from = 0, first = 0;
    from = recorded(0, &first);
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "keepalive");
    /* A Content-Length answer, a chunked SSE answer, a Content-Length one. */
    model_turn(conv, "#stub:text_plain one", PLAIN_ANSWER);
    model_turn(conv, "#stub:text_stream two", "Streamed");
    model_turn(conv, "#stub:text_plain three", PLAIN_ANSWER);
    assert_int_equal(stub_stat("requests") - reqs, 3);
    assert_int_equal(stub_stat("connections") - conns, 1);
    assert_int_equal(recorded(from, &first), 3);
    assert_int_equal(first, 3);
}

static void test_closing_server_still_works(void **state)
{
    (void)state;
    /* The worker holds a cached connection to this stub: stop it (the
     * connection dies) and start one on the same port that closes after
     * every response. */
    assert_true(mh_proc_stop(s_stub, 3000) >= 0);
    mh_proc_destroy(&s_stub);
    assert_int_equal(
        mh_openai_stub_start_on(s_port, true, "keepalive-close-requests.jsonl", &s_stub, s_record),
        s_port);

    char *out = NULL;
    const char two[] = HEALTH "\r\n" HEALTH "\r\n";
    assert_int_equal(mh_http_raw(s_port, two, sizeof(two) - 1, RAW_TIMEOUT_MS, &out), 200);
    assert_int_equal(count_of(out, "HTTP/1.1 200"), 1); /* closed after the first */
    mh_assert_has(out, "Connection: close");
    free(out);

    char conv[64];
    mh_conv_id(conv, sizeof(conv), "closing");
    model_turn(conv, "#stub:text_plain one", PLAIN_ANSWER);
    model_turn(conv, "#stub:text_stream two", "Streamed");
    model_turn(conv, "#stub:text_plain three", PLAIN_ANSWER);
    assert_int_equal(stub_stat("requests"), 3);
    assert_int_equal(stub_stat("connections"), 3);
    int first = 0;
    assert_int_equal(recorded(0, &first), 3);
    assert_int_equal(first, 3); /* no attempt was retried */
    mh_proc_t *llm = mh_mesh_proc(s_mesh, MH_LLM, 0);
    assert_int_equal(mh_log_count(llm, 0, "retrying model call"), 0);
}

int main(void)
{
    if (mh_init("openai_keepalive") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stub_keeps_alive_and_honours_close),
        cmocka_unit_test(test_three_turns_one_connection),
        cmocka_unit_test(test_closing_server_still_works),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
