/*
 * test_gateway_util.h - the streaming fixture shared by the gateway's SSE
 * unit tests (test_gateway_sse*.c): the HTTP server (http_server.c) on an
 * ephemeral loopback port with its own uv loop, the stream its handler
 * starts, and the abort callback that drops the stream when the client
 * leaves. Needs cmocka (included before this header): the helpers fail the
 * running test.
 */
#ifndef TEST_GATEWAY_UTIL_H
#define TEST_GATEWAY_UTIL_H

#include "gw_sse.h"
#include "http_server.h"
#include "mesh/mesh_err.h"
#include "test_http_support.h"

typedef struct {
    uv_loop_t loop;
    tc_env_t env;
    gateway_http_server_t *srv;
    int port;
    gateway_http_conn_t *conn; /* the streaming request */
    gateway_sse_t *sse;        /* its stream, NULL before start and after abort/end */
    int aborted;               /* abort callbacks run */
    uint64_t hb_ms;            /* heartbeat interval a handler may start streams with */
} gw_sse_fx_t;

/* Abort callback (arg: the fixture): the client left, so the stream is dropped. */
static inline void gw_sse_fx_on_abort(gateway_http_conn_t *conn, void *arg)
{
    gw_sse_fx_t *f = arg;
    (void)conn;
    f->aborted++;
    gateway_sse_abandon(&f->sse);
    f->conn = NULL;
}

/*
 * A fixture whose server listens on 127.0.0.1 (an ephemeral port, in ->port)
 * and hands every request to handler with the fixture as its arg. idle_ms and
 * max_conns are the server's limits.
 */
static inline gw_sse_fx_t *gw_sse_fx_new(gateway_http_handler_fn handler, uint64_t idle_ms,
                                         uint32_t max_conns)
{
    gw_sse_fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->env.loop = &f->loop;
    gateway_http_opts_t o = {
        .host = "127.0.0.1",
        .port = 0,
        .max_body = 1000,
        .max_header = 2048,
        .idle_ms = idle_ms,
        .max_conns = max_conns,
        .handler = handler,
        .handler_arg = f,
    };
    f->srv = gateway_http_server_new(&f->loop, &o);
    assert_non_null(f->srv);
    assert_int_equal(gateway_http_server_listen(f->srv), 0);
    f->port = gateway_http_server_port(f->srv);
    return f;
}

/* Drop the stream, close the server, require every loop handle closed; free and NULL *f_p. */
static inline void gw_sse_fx_destroy(gw_sse_fx_t **f_p)
{
    gw_sse_fx_t *f = *f_p;
    gateway_sse_abandon(&f->sse);
    gateway_http_server_destroy(&f->srv);
    assert_true(tc_loop_finish(&f->loop));
    free(f);
    *f_p = NULL;
}

/* tc_wait condition (arg: the fixture): the handler has started the stream. */
static inline bool gw_sse_fx_started(void *arg)
{
    const gw_sse_fx_t *f = arg;
    return f->sse != NULL;
}

/* Connect c to the fixture's server, send request and wait until the handler started the stream. */
static inline void gw_sse_fx_open(gw_sse_fx_t *f, tc_client_t *c, const char *request)
{
    assert_true(tc_connect(c, f->port));
    assert_true(tc_send_str(&f->env, c, request));
    assert_true(tc_wait(&f->env, gw_sse_fx_started, f, TC_WAIT_MS));
}

/*
 * cmocka setup: *f_p = gw_sse_fx_new(handler, idle_ms, max_conns), and the
 * state is f_p itself, so that gw_sse_fx_teardown can destroy and NULL it.
 */
static inline int gw_sse_fx_setup(void **state, gw_sse_fx_t **f_p, gateway_http_handler_fn handler,
                                  uint64_t idle_ms, uint32_t max_conns)
{
    *f_p = gw_sse_fx_new(handler, idle_ms, max_conns);
    *state = f_p;
    return 0;
}

/* cmocka teardown of a gw_sse_fx_setup fixture. */
static inline int gw_sse_fx_teardown(void **state)
{
    gw_sse_fx_destroy((gw_sse_fx_t **)*state);
    return 0;
}

#endif
