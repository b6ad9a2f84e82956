/*
 * test_gateway_sse.c - Server-Sent Events in the gateway: the event format
 * (gw_sse.c) and streamed responses of the HTTP layer (http_conn.c) over
 * real loopback TCP: each event leaves as soon as it is sent (the client
 * sees it before the next exists), chunked framing with keep-alive after the
 * stream, HTTP/1.0 framing by close, heartbeats while idle, and a client that
 * leaves mid-stream aborting the request.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "test_gateway_util.h"

/* ---- format ---------------------------------------------------------------- */

static void expect_format(const char *event, const char *data, size_t len, const char *want)
{
    gateway_buf_t b = {0};
    assert_int_equal(gateway_sse_format(&b, event, data, len), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    gateway_buf_free(&b);
}

static void test_format(void **state)
{
    (void)state;
    expect_format("delta", "{\"text\":\"hi\"}", 13, "event: delta\ndata: {\"text\":\"hi\"}\n\n");
    /* no event name: a data-only event (OpenAI's chunks) */
    expect_format(NULL, "[DONE]", 6, "data: [DONE]\n\n");
    /* empty data still makes one data line */
    expect_format("x", "", 0, "event: x\ndata: \n\n");
    /* every line break style becomes its own data line: a raw newline never ends the event */
    expect_format("m", "a\nb\r\nc\rd", 8, "event: m\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
    expect_format("m", "a\n", 2, "event: m\ndata: a\ndata: \n\n");
    expect_format("m", "\n\n", 2, "event: m\ndata: \ndata: \ndata: \n\n");
    /* UTF-8 passes through */
    expect_format("delta", "保单", strlen("保单"), "event: delta\ndata: 保单\n\n");
}

static void test_format_invalid(void **state)
{
    (void)state;
    gateway_buf_t b = {0};
    assert_int_equal(gateway_sse_format(&b, "", "x", 1), MESH_EINVAL);
    assert_int_equal(gateway_sse_format(&b, "with space", "x", 1), MESH_EINVAL);
    assert_int_equal(gateway_sse_format(&b, "new\nline", "x", 1), MESH_EINVAL);
    assert_int_equal(gateway_sse_format(&b, "UPPER", "x", 1), MESH_EINVAL);
    char longname[GATEWAY_SSE_EVENT_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(gateway_sse_format(&b, longname, "x", 1), MESH_EINVAL);
    longname[GATEWAY_SSE_EVENT_MAX] = '\0';
    assert_int_equal(gateway_sse_format(&b, longname, "x", 1), 0);
    b.len = 0;
    assert_int_equal(gateway_sse_format(&b, "x", NULL, 3), MESH_EINVAL);
    char *big = calloc(1, GATEWAY_SSE_DATA_MAX + 1);
    memset(big, 'a', GATEWAY_SSE_DATA_MAX + 1);
    assert_int_equal(gateway_sse_format(&b, "x", big, GATEWAY_SSE_DATA_MAX + 1), MESH_ETOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(gateway_sse_format(&b, "x", big, GATEWAY_SSE_DATA_MAX), 0);
    free(big);
    gateway_buf_free(&b);
}

/* ---- live streams ---------------------------------------------------------- */

static gw_sse_fx_t *F;

static void handler(gateway_http_conn_t *conn, const gateway_http_req_t *req, void *arg)
{
    (void)arg;
    if (req->path_len == 4 && memcmp(req->path, "/sse", 4) == 0) {
        int rc;
        F->conn = conn;
        gateway_http_conn_on_abort(conn, gw_sse_fx_on_abort, F);
        F->sse = gateway_sse_start(&F->loop, conn, F->hb_ms, "X-Test: 1\r\n", &rc);
        assert_non_null(F->sse);
        assert_true(gateway_http_conn_streaming(conn));
        /* once streaming, a plain response is refused */
        assert_int_equal(gateway_http_conn_respond(conn, 200, NULL, NULL, "x", 1), MESH_ESTATE);
        return;
    }
    gateway_http_conn_respond(conn, 200, "text/plain", NULL, "plain", 5);
}

static int setup(void **state)
{
    return gw_sse_fx_setup(state, &F, handler, 2000, 10);
}

/* Wait until c->buf contains s (from the start of what is buffered). */
static bool wait_for(tc_client_t *c, const char *s, int timeout_ms)
{
    uint64_t end = tc_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        tc_pull(c);
        c->buf[c->len] = '\0';
        if (strstr(c->buf, s))
            return true;
        if (c->eof || c->reset || tc_now_ms() > end)
            return false;
        tc_step(&F->env, c->fd, 1);
    }
}

static void test_stream_chunked_keepalive(void **state)
{
    (void)state;
    tc_client_t c;
    gw_sse_fx_open(F, &c, "POST /sse HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    /* the head goes out at once */
    assert_true(wait_for(&c, "\r\n\r\n", TC_WAIT_MS));
    assert_non_null(strstr(c.buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strcasestr(c.buf, "Content-Type: text/event-stream"));
    assert_non_null(strcasestr(c.buf, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(c.buf, "X-Test: 1\r\n"));
    assert_null(strcasestr(c.buf, "Content-Length"));
    assert_null(strcasestr(c.buf, "Connection: close"));

    /* each event is on the wire before the next one exists */
    const char *texts[] = {"{\"text\":\"a\"}", "{\"text\":\"bb\"}", "{\"text\":\"ccc\"}"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gateway_sse_send(F->sse, "delta", texts[i], strlen(texts[i])), 0);
        char want[128];
        snprintf(want, sizeof(want), "event: delta\ndata: %s\n\n\r\n", texts[i]);
        assert_true(wait_for(&c, want, TC_WAIT_MS));
    }
    /* the chunk framing of the first event: size line, payload, CRLF */
    char first[64];
    snprintf(first, sizeof(first), "%zx\r\nevent: delta\ndata: %s\n\n\r\n",
             strlen("event: delta\ndata: \n\n") + strlen(texts[0]), texts[0]);
    assert_non_null(strstr(c.buf, first));

    gateway_sse_end(&F->sse);
    assert_true(wait_for(&c, "\r\n0\r\n\r\n", TC_WAIT_MS));
    /* keep-alive: the same connection answers the next request */
    c.len = 0;
    tc_resp_t r;
    assert_true(tc_send_str(&F->env, &c, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "plain");
    tc_resp_free(&r);
    assert_int_equal(F->aborted, 0);
    tc_close(&c);
}

static void test_stream_http10_close(void **state)
{
    (void)state;
    tc_client_t c;
    gw_sse_fx_open(F, &c, "POST /sse HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    assert_true(wait_for(&c, "\r\n\r\n", TC_WAIT_MS));
    assert_null(strcasestr(c.buf, "Transfer-Encoding"));
    assert_non_null(strcasestr(c.buf, "Connection: close\r\n"));
    assert_int_equal(gateway_sse_send(F->sse, "final", "{}", 2), 0);
    /* no chunk framing: the event bytes as they are */
    assert_true(wait_for(&c, "\r\n\r\nevent: final\ndata: {}\n\n", TC_WAIT_MS));
    gateway_sse_end(&F->sse);
    /* the end of the body is the end of the connection */
    assert_true(tc_wait_closed(&F->env, &c, TC_WAIT_MS));
    c.buf[c.len] = '\0';
    assert_non_null(strstr(c.buf, "\r\n\r\nevent: final\ndata: {}\n\n"));
    assert_int_equal(F->aborted, 0);
    tc_close(&c);
}

static void test_stream_heartbeat(void **state)
{
    (void)state;
    F->hb_ms = 30;
    tc_client_t c;
    gw_sse_fx_open(F, &c, "POST /sse HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    uint64_t t0 = tc_now_ms();
    assert_true(wait_for(&c, ": ping\n\n", TC_WAIT_MS));
    assert_true(tc_now_ms() - t0 >= 20);
    /* and again while still idle */
    c.len = 0;
    assert_true(wait_for(&c, ": ping\n\n", TC_WAIT_MS));
    gateway_sse_end(&F->sse);
    assert_true(wait_for(&c, "0\r\n\r\n", TC_WAIT_MS));
    tc_close(&c);
}

static bool aborted(void *arg)
{
    (void)arg;
    return F->aborted > 0;
}

/* The client leaves mid-stream: the abort callback runs (the turn is cancelled there). */
static void test_stream_client_leaves(void **state)
{
    (void)state;
    tc_client_t c;
    gw_sse_fx_open(F, &c, "POST /sse HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(gateway_sse_send(F->sse, "delta", "{}", 2), 0);
    assert_true(wait_for(&c, "event: delta", TC_WAIT_MS));
    tc_close(&c);
    assert_true(tc_wait(&F->env, aborted, NULL, TC_WAIT_MS));
    assert_null(F->sse);
    assert_int_equal(F->aborted, 1);
}

int main(void)
{
    mesh_log_set_level(MESH_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_invalid),
        cmocka_unit_test_setup_teardown(test_stream_chunked_keepalive, setup, gw_sse_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_http10_close, setup, gw_sse_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_heartbeat, setup, gw_sse_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_client_leaves, setup, gw_sse_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
