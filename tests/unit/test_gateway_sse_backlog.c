/*
 * test_gateway_sse_backlog.c - streamed writes when the client does not
 * read (http_conn.c): an event is written straight to the socket when
 * nothing is queued, and whatever the kernel does not take is queued (a copy)
 * behind which every later event waits. The client must still receive every
 * byte, in order, with its chunk framing, once it reads again.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "http_internal.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "test_gateway_util.h"

/* Events, and the data bytes of each: together well over what loopback
 * buffers hold for a client that does not read, under the stream's cap. */
#define BACKLOG_EVENTS     10
#define BACKLOG_EVENT_DATA (300 * 1024)

static gw_sse_fx_t *F;

static void handler(gateway_http_conn_t *conn, const gateway_http_req_t *req, void *arg)
{
    (void)req;
    (void)arg;
    int rc;
    F->conn = conn;
    /* A small send buffer, so the kernel stops taking bytes early. */
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)gateway_http_conn_stream(conn), &fd), 0);
    int small = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    gateway_http_conn_on_abort(conn, gw_sse_fx_on_abort, F);
    F->sse = gateway_sse_start(&F->loop, conn, 0, NULL, &rc);
    assert_non_null(F->sse);
}

static int setup(void **state)
{
    return gw_sse_fx_setup(state, &F, handler, 5000, 4);
}

static void test_backlog_keeps_order(void **state)
{
    (void)state;
    tc_client_t c;
    gw_sse_fx_open(F, &c, "POST /sse HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");

    /* What the client must see after the head: each event as one chunk. */
    size_t want_cap = (size_t)BACKLOG_EVENTS * (BACKLOG_EVENT_DATA + 64);
    char *want = malloc(want_cap);
    char *data = malloc(BACKLOG_EVENT_DATA);
    assert_non_null(want);
    assert_non_null(data);
    size_t want_len = 0;
    bool queued = false;
    for (int i = 0; i < BACKLOG_EVENTS; i++) {
        for (size_t k = 0; k < BACKLOG_EVENT_DATA; k++)
            data[k] = (char)('a' + (i + k) % 26);
        assert_int_equal(gateway_sse_send(F->sse, "big", data, BACKLOG_EVENT_DATA), 0);
        /* the client reads nothing yet: the rest waits in the write queue */
        if (uv_stream_get_write_queue_size(gateway_http_conn_stream(F->conn)) > 0)
            queued = true;
        size_t ev = strlen("event: big\ndata: ") + BACKLOG_EVENT_DATA + 2;
        want_len += (size_t)sprintf(want + want_len, "%zx\r\nevent: big\ndata: ", ev);
        memcpy(want + want_len, data, BACKLOG_EVENT_DATA);
        want_len += BACKLOG_EVENT_DATA;
        memcpy(want + want_len, "\n\n\r\n", 4);
        want_len += 4;
    }
    assert_true(queued);
    gateway_sse_end(&F->sse);

    /* Read everything: the head, the events in order, the last chunk. */
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    const char *tail = "0\r\n\r\n";
    for (;;) {
        tc_pull(&c);
        if (c.len >= want_len + strlen(tail)) {
            c.buf[c.len] = '\0';
            if (strstr(c.buf, "\r\n\r\n") &&
                memcmp(c.buf + c.len - strlen(tail), tail, strlen(tail)) == 0)
                break;
        }
        assert_false(c.eof || c.reset);
        if (tc_now_ms() >= end)
            fail_msg("got %zu of %zu bytes", c.len, want_len);
        tc_step(&F->env, c.fd, 1);
    }
    char *body = strstr(c.buf, "\r\n\r\n") + 4;
    assert_int_equal((size_t)(c.buf + c.len - body), want_len + strlen(tail));
    assert_memory_equal(body, want, want_len);
    assert_int_equal(F->aborted, 0);
    free(data);
    free(want);
    tc_close(&c);
}

int main(void)
{
    mesh_log_set_level(MESH_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backlog_keeps_order, setup, gw_sse_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
