/*
 * test_http_server.c - the gateway's HTTP layer (http_server.c, http_conn.c)
 * over real loopback TCP, with a stub handler instead of the routes:
 * keep-alive, pipelining, chunked bodies, every limit (413/431/408/400/503),
 * Expect: 100-continue, HTTP/1.0 rules and client disconnect mid-request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "http_server.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "test_http_support.h"

#define MAX_BODY   1000
#define MAX_HEADER 2048
#define IDLE_MS    200

typedef struct {
    uv_loop_t loop;
    tc_env_t env;
    gateway_http_server_t *srv;
    int port;
    /* handler bookkeeping */
    int calls;
    int in_flight;
    int max_in_flight;
    int aborted;
    gateway_http_conn_t *held; /* a /hold request waiting for the test */
    uv_timer_t delay;
    gateway_http_conn_t *delayed;
    char seen_path[64];
    char seen_tenant[GATEWAY_HTTP_HDR_VALUE_MAX + 16];
} fixture_t;

static fixture_t *F;

static void respond_echo(gateway_http_conn_t *conn, const gateway_http_req_t *req)
{
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "X-Seq: %d\r\n", F->calls);
    F->in_flight--;
    gateway_http_conn_respond(conn, 200, "text/plain", hdr, req->body, req->body_len);
}

static void on_delay(uv_timer_t *t)
{
    gateway_http_conn_t *conn = F->delayed;
    F->delayed = NULL;
    const gateway_http_req_t *req = gateway_http_conn_req(conn);
    assert_non_null(req);
    respond_echo(conn, req);
}

static void on_abort(gateway_http_conn_t *conn, void *arg)
{
    F->aborted++;
    F->in_flight--;
    if (F->held == conn)
        F->held = NULL;
}

static void handler(gateway_http_conn_t *conn, const gateway_http_req_t *req, void *arg)
{
    F->calls++;
    F->in_flight++;
    if (F->in_flight > F->max_in_flight)
        F->max_in_flight = F->in_flight;
    size_t n = req->path_len < sizeof(F->seen_path) - 1 ? req->path_len : sizeof(F->seen_path) - 1;
    memcpy(F->seen_path, req->path, n);
    F->seen_path[n] = '\0';
    const gateway_hdr_t *t = &req->hdr[GATEWAY_HDR_TENANT];
    snprintf(F->seen_tenant, sizeof(F->seen_tenant), "%s",
             t->state == GATEWAY_HDR_PRESENT    ? t->value
             : t->state == GATEWAY_HDR_TOO_LONG ? "<too long>"
                                                : "<absent>");
    if (req->path_len == 5 && memcmp(req->path, "/hold", 5) == 0) {
        F->held = conn;
        gateway_http_conn_on_abort(conn, on_abort, NULL);
        return;
    }
    if (req->path_len >= 6 && memcmp(req->path, "/delay", 6) == 0) {
        /* Answer later, from a timer: the next pipelined request must wait. */
        F->delayed = conn;
        gateway_http_conn_on_abort(conn, on_abort, NULL);
        uv_timer_start(&F->delay, on_delay, 20, 0);
        return;
    }
    respond_echo(conn, req);
}

static int setup_with(void **state, uint32_t max_conns)
{
    F = calloc(1, sizeof(*F));
    assert_int_equal(uv_loop_init(&F->loop), 0);
    uv_timer_init(&F->loop, &F->delay);
    F->env.loop = &F->loop;
    gateway_http_opts_t o = {
        .host = "127.0.0.1",
        .port = 0,
        .max_body = MAX_BODY,
        .max_header = MAX_HEADER,
        .idle_ms = IDLE_MS,
        .max_conns = max_conns,
        .handler = handler,
    };
    F->srv = gateway_http_server_new(&F->loop, &o);
    assert_non_null(F->srv);
    assert_int_equal(gateway_http_server_listen(F->srv), 0);
    F->port = gateway_http_server_port(F->srv);
    assert_true(F->port > 0);
    *state = F;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 100);
}

static int setup_two_conns(void **state)
{
    return setup_with(state, 2);
}

static int teardown(void **state)
{
    gateway_http_server_destroy(&F->srv);
    uv_close((uv_handle_t *)&F->delay, NULL);
    assert_true(tc_loop_finish(&F->loop));
    free(F);
    F = NULL;
    return 0;
}

static bool no_conns(void *arg)
{
    return gateway_http_server_conns(F->srv) == 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_keep_alive_two_requests(void **state)
{
    tc_client_t c;
    tc_resp_t r;
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(&F->env, &c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_int_equal(r.status, 200);
    assert_true(tc_has_header(&r, "Content-Length", "0"));
    assert_false(tc_has_header(&r, "Connection", "close"));
    tc_resp_free(&r);
    /* Same socket, second request. */
    assert_true(
        tc_send_str(&F->env, &c, "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_true(tc_has_header(&r, "X-Seq", "2"));
    assert_string_equal(F->seen_path, "/b");
    tc_resp_free(&r);
    assert_int_equal(gateway_http_server_conns(F->srv), 1);
    tc_close(&c);
    assert_true(tc_wait(&F->env, no_conns, NULL, TC_WAIT_MS));
}

static void test_pipelining_in_order(void **state)
{
    tc_client_t c;
    tc_resp_t r;
    assert_true(tc_connect(&c, F->port));
    /* The first is answered late (timer); the others must wait for it. */
    const char *reqs =
        "POST /delay HTTP/1.1\r\nContent-Length: 3\r\n\r\none"
        "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\ntwo"
        "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n";
    assert_true(tc_send_str(&F->env, &c, reqs));
    const char *want[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, want[i]);
        tc_resp_free(&r);
    }
    assert_int_equal(F->calls, 3);
    assert_int_equal(F->max_in_flight, 1);
    tc_close(&c);
}

static void test_pipelining_beyond_buffer_bound(void **state)
{
    /* Far more pipelined bytes than GATEWAY_HTTP_PIPELINE_MAX while the first
     * request is held: reading stops and resumes, and all are answered in order. */
    enum { N = 400 };
    static char big[N * 400];
    size_t off = 0;
    off += (size_t)snprintf(big + off, sizeof(big) - off,
                            "POST /delay HTTP/1.1\r\nContent-Length: 1\r\n\r\n0");
    for (int i = 1; i < N; i++) {
        char body[300];
        int bl = snprintf(body, sizeof(body), "%d-%0250d", i, 0);
        off += (size_t)snprintf(big + off, sizeof(big) - off,
                                "POST /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", bl, body);
    }
    assert_true(off > GATEWAY_HTTP_PIPELINE_MAX);
    tc_client_t c;
    tc_resp_t r;
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send(&F->env, &c, big, off));
    for (int i = 0; i < N; i++) {
        assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
        assert_int_equal(r.status, 200);
        assert_int_equal(atoi(r.body), i);
        tc_resp_free(&r);
    }
    assert_int_equal(F->max_in_flight, 1);
    tc_close(&c);
}

static void test_chunked_body(void **state)
{
    tc_resp_t r;
    assert_true(tc_roundtrip(&F->env, F->port,
                             "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "4\r\nWiki\r\n5\r\npedia\r\ne\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n",
                             &r));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "Wikipedia in\r\n\r\nchunks.");
    tc_resp_free(&r);
}

static void assert_error(const tc_resp_t *r, int status, const char *code)
{
    char want[128];
    assert_int_equal(r->status, status);
    assert_true(tc_has_header(r, "Content-Type", "application/json"));
    snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",\"message\":", code);
    assert_non_null(strstr(r->body, want));
}

/* Send request on a fresh connection, expect a closing JSON error. */
static void expect_fatal(const char *request, size_t len, int status, const char *code)
{
    tc_client_t c;
    tc_resp_t r;
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send(&F->env, &c, request, len));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_error(&r, status, code);
    assert_true(tc_has_header(&r, "Connection", "close"));
    tc_resp_free(&r);
    assert_true(tc_wait_closed(&F->env, &c, TC_WAIT_MS));
    assert_int_equal(c.len, 0); /* nothing after the error */
    tc_close(&c);
    assert_int_equal(F->calls, 0); /* the handler never saw it */
}

static void test_413_by_content_length(void **state)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\nabc",
                     MAX_BODY + 1);
    expect_fatal(req, (size_t)n, 413, "payload_too_large");
}

static void test_413_by_streamed_chunks(void **state)
{
    static char req[8192];
    size_t off = (size_t)snprintf(req, sizeof(req),
                                  "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    /* 11 chunks of 100 bytes: over the 1000-byte limit only by the last ones. */
    for (int i = 0; i < 11; i++) {
        off += (size_t)snprintf(req + off, sizeof(req) - off, "64\r\n");
        memset(req + off, 'a', 100);
        off += 100;
        off += (size_t)snprintf(req + off, sizeof(req) - off, "\r\n");
    }
    off += (size_t)snprintf(req + off, sizeof(req) - off, "0\r\n\r\n");
    expect_fatal(req, off, 413, "payload_too_large");
}

static void test_431_huge_header(void **state)
{
    static char req[3 * MAX_HEADER];
    size_t off = (size_t)snprintf(req, sizeof(req), "GET /a HTTP/1.1\r\nX-Big: ");
    memset(req + off, 'b', 2 * MAX_HEADER);
    off += 2 * MAX_HEADER;
    off += (size_t)snprintf(req + off, sizeof(req) - off, "\r\n\r\n");
    expect_fatal(req, off, 431, "header_too_large");
}

static void test_431_many_small_headers(void **state)
{
    /* No single header is large; their total is. */
    static char req[4 * MAX_HEADER];
    size_t off = (size_t)snprintf(req, sizeof(req), "GET /a HTTP/1.1\r\n");
    for (int i = 0; off < MAX_HEADER + 100; i++)
        off += (size_t)snprintf(req + off, sizeof(req) - off, "X-H%d: v\r\n", i);
    off += (size_t)snprintf(req + off, sizeof(req) - off, "\r\n");
    expect_fatal(req, off, 431, "header_too_large");
}

/* A request whose head is exactly head_len bytes. */
static size_t head_of(char *req, size_t head_len)
{
    const char *start = "GET /a HTTP/1.1\r\nX-Pad: ";
    size_t off = strlen(start);
    memcpy(req, start, off);
    size_t pad = head_len - off - 4;
    memset(req + off, 'p', pad);
    off += pad;
    memcpy(req + off, "\r\n\r\n", 4);
    off += 4;
    req[off] = '\0';
    return off;
}

static void test_head_limit_is_exact(void **state)
{
    static char req[MAX_HEADER + 2];
    /* Exactly MAX_HEADER bytes of head: accepted. */
    assert_int_equal(head_of(req, MAX_HEADER), MAX_HEADER);
    tc_resp_t r;
    assert_true(tc_roundtrip(&F->env, F->port, req, &r));
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
    F->calls = 0;
    /* One byte more: 431. */
    size_t n = head_of(req, MAX_HEADER + 1);
    expect_fatal(req, n, 431, "header_too_large");
}

static void test_400_garbage(void **state)
{
    const char *g = "\x01\x02 NOT HTTP AT ALL\r\n\r\n";
    expect_fatal(g, strlen(g), 400, "bad_request");
}

static void test_408_stalled_request(void **state)
{
    tc_client_t c;
    tc_resp_t r;
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(&F->env, &c, "GET /a HTTP/1.1\r\nHost: x"));
    uint64_t t0 = tc_now_ms();
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_true(tc_now_ms() - t0 >= IDLE_MS - 20);
    assert_error(&r, 408, "request_timeout");
    assert_true(tc_has_header(&r, "Connection", "close"));
    tc_resp_free(&r);
    assert_true(tc_wait_closed(&F->env, &c, TC_WAIT_MS));
    tc_close(&c);
}

static void test_idle_keep_alive_closed_silently(void **state)
{
    tc_client_t c;
    tc_resp_t r;
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(&F->env, &c, "GET /a HTTP/1.1\r\n\r\n"));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    tc_resp_free(&r);
    assert_true(tc_wait_closed(&F->env, &c, TC_WAIT_MS));
    assert_int_equal(c.len, 0); /* no 408 for a connection between requests */
    tc_close(&c);
}

static void test_http10_close_and_keep_alive(void **state)
{
    tc_client_t c;
    tc_resp_t r;
    /* HTTP/1.0 without keep-alive: answered, then closed. */
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(&F->env, &c, "GET /a HTTP/1.0\r\n\r\n"));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_int_equal(r.status, 200);
    assert_true(tc_has_header(&r, "Connection", "close"));
    tc_resp_free(&r);
    assert_true(tc_wait_closed(&F->env, &c, TC_WAIT_MS));
    tc_close(&c);
    /* HTTP/1.0 with keep-alive: stays open for a second request. */
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(&F->env, &c, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_true(tc_has_header(&r, "Connection", "keep-alive"));
    tc_resp_free(&r);
    assert_true(tc_send_str(&F->env, &c, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
    tc_close(&c);
}

static void test_connection_close_honoured(void **state)
{
    tc_client_t c;
    tc_resp_t r;
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(&F->env, &c, "GET /a HTTP/1.1\r\nConnection: close\r\n\r\n"));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_true(tc_has_header(&r, "Connection", "close"));
    tc_resp_free(&r);
    assert_true(tc_wait_closed(&F->env, &c, TC_WAIT_MS));
    tc_close(&c);
}

static void test_expect_100_continue(void **state)
{
    tc_client_t c;
    tc_resp_t r;
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(
        &F->env, &c, "POST /echo HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_int_equal(r.status, 100);
    tc_resp_free(&r);
    assert_true(tc_send_str(&F->env, &c, "ping"));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ping");
    tc_resp_free(&r);
    tc_close(&c);
}

static void test_headers_read(void **state)
{
    tc_resp_t r;
    assert_true(
        tc_roundtrip(&F->env, F->port, "GET /a HTTP/1.1\r\nx-MESH-tenant:  acme-1 \r\n\r\n", &r));
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
    assert_string_equal(F->seen_tenant, "acme-1");
}

static void test_duplicate_header_400(void **state)
{
    const char *req = "GET /a HTTP/1.1\r\nX-Mesh-Tenant: a\r\nX-Mesh-Tenant: b\r\n\r\n";
    expect_fatal(req, strlen(req), 400, "duplicate_header");
}

static void test_disconnect_mid_request_aborts(void **state)
{
    tc_client_t c;
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(&F->env, &c, "GET /hold HTTP/1.1\r\n\r\n"));
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    while (!F->held && tc_now_ms() < end)
        tc_step(&F->env, -1, 1);
    assert_non_null(F->held);
    tc_close(&c);
    assert_true(tc_wait(&F->env, no_conns, NULL, TC_WAIT_MS));
    assert_int_equal(F->aborted, 1);
    assert_null(F->held);
}

static void test_503_over_max_conns(void **state)
{
    tc_client_t a, b, x;
    tc_resp_t r;
    assert_true(tc_connect(&a, F->port));
    assert_true(tc_connect(&b, F->port));
    /* Make sure both are accepted before the third arrives. */
    assert_true(tc_send_str(&F->env, &a, "GET /a HTTP/1.1\r\n\r\n"));
    assert_true(tc_recv(&F->env, &a, &r, TC_WAIT_MS));
    tc_resp_free(&r);
    assert_true(tc_send_str(&F->env, &b, "GET /a HTTP/1.1\r\n\r\n"));
    assert_true(tc_recv(&F->env, &b, &r, TC_WAIT_MS));
    tc_resp_free(&r);
    assert_true(tc_connect(&x, F->port));
    assert_true(tc_recv(&F->env, &x, &r, TC_WAIT_MS));
    assert_error(&r, 503, "too_many_connections");
    assert_true(tc_has_header(&r, "Connection", "close"));
    tc_resp_free(&r);
    assert_true(tc_wait_closed(&F->env, &x, TC_WAIT_MS));
    tc_close(&x);
    /* Closing one makes room again. */
    tc_close(&a);
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    while (gateway_http_server_conns(F->srv) > 1 && tc_now_ms() < end)
        tc_step(&F->env, -1, 1);
    assert_true(tc_connect(&x, F->port));
    assert_true(tc_send_str(&F->env, &x, "GET /a HTTP/1.1\r\n\r\n"));
    assert_true(tc_recv(&F->env, &x, &r, TC_WAIT_MS));
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
    tc_close(&x);
    tc_close(&b);
}

static bool drained;
static void on_drained(void *arg)
{
    drained = true;
}
static bool is_drained(void *arg)
{
    return drained;
}

static void test_drain_finishes_in_flight(void **state)
{
    tc_client_t c, idle;
    tc_resp_t r;
    drained = false;
    assert_true(tc_connect(&idle, F->port));
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(&F->env, &c, "GET /hold HTTP/1.1\r\n\r\n"));
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    while ((!F->held || gateway_http_server_conns(F->srv) < 2) && tc_now_ms() < end)
        tc_step(&F->env, -1, 1);
    assert_non_null(F->held);
    gateway_http_server_drain(F->srv, on_drained, NULL);
    /* The idle connection goes at once; the held request is still answered. */
    assert_true(tc_wait_closed(&F->env, &idle, TC_WAIT_MS));
    assert_false(drained);
    const gateway_http_req_t *req = gateway_http_conn_req(F->held);
    assert_non_null(req);
    F->in_flight--;
    assert_int_equal(gateway_http_conn_respond(F->held, 200, NULL, NULL, "{}", 2), 0);
    F->held = NULL;
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_int_equal(r.status, 200);
    assert_true(tc_has_header(&r, "Connection", "close"));
    tc_resp_free(&r);
    tc_close(&c);
    assert_true(tc_wait(&F->env, is_drained, NULL, TC_WAIT_MS));
    tc_close(&idle);
}

int main(void)
{
    mesh_log_init("test", getenv("TEST_VERBOSE") ? MESH_LOG_DEBUG : MESH_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keep_alive_two_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining_beyond_buffer_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_413_by_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_413_by_streamed_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_431_huge_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_431_many_small_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_limit_is_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_400_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_408_stalled_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_keep_alive_closed_silently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http10_close_and_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_close_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_100_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_header_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_mid_request_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_503_over_max_conns, setup_two_conns, teardown),
        cmocka_unit_test_setup_teardown(test_drain_finishes_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
