/*
 * test_worker.c - mesh_worker against a fake router: a raw ZeroMQ ROUTER
 * socket on tcp://127.0.0.1:<ephemeral> that the test reads and writes by hand.
 *
 * Reconnects wait 10..40 ms. The liveness tests use heartbeat 20 ms (dead
 * router after 60 ms); the others use 1 s so that a loaded machine (sanitizer
 * builds, parallel ctest) cannot make a healthy fake router look dead. Every wait is a bounded loop
 * on a condition: uv_run(UV_RUN_ONCE) under a 2 ms ticker, the fake router polled with ZMQ_DONTWAIT
 * between iterations.
 */
#include <fcntl.h>
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_proto.h"
#include "mesh/mesh_worker.h"

#define TICK_MS    2
#define WAIT_MS    3000
#define HB_MS      20
#define LIVENESS   3
#define HB_SLOW_MS 1000 /* tests that are not about liveness */
#define FRAME_CAP  4096
#define QMAX       64
#define PEER_MAX   256

/* ---- fake router ----------------------------------------------------------- */

typedef struct {
    size_t n;
    size_t size[MESH_MAX_FRAMES];
    unsigned char data[MESH_MAX_FRAMES][FRAME_CAP];
} tmsg_t;

typedef struct {
    void *sock;
    char ep[MESH_ENDPOINT_MAX];
    bool keepalive; /* heartbeat the last peer every HB_MS */
    uint64_t last_ka;
    unsigned char peer[PEER_MAX];
    size_t peer_len;
    int hb_seen; /* HEARTBEATs received (not queued) */
    tmsg_t q[QMAX];
    int qhead, qlen;
} fake_t;

typedef struct {
    uv_loop_t loop;
    uv_timer_t ticker;
    void *zctx;
    fake_t fake;
    mesh_worker_t *w;
    mesh_worker_opts_t opts;
} fx_t;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void fake_send(fake_t *f, const unsigned char *peer, size_t peer_len, uint8_t cmd,
                      const void *body, size_t len)
{
    uint8_t c = cmd;
    assert_true(zmq_send(f->sock, peer, peer_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->sock, MESH_PROTO_WORKER, MESH_PROTO_SIG_LEN, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->sock, &c, 1, body ? ZMQ_SNDMORE : 0) >= 0);
    if (body)
        assert_true(zmq_send(f->sock, body, len, 0) >= 0);
}

/* Read everything waiting: HEARTBEATs are counted, the rest queued. */
static void fake_poll(fake_t *f)
{
    for (;;) {
        tmsg_t m;
        m.n = 0;
        int more = 1;
        while (more) {
            zmq_msg_t zm;
            zmq_msg_init(&zm);
            int rc = zmq_msg_recv(&zm, f->sock, m.n == 0 ? ZMQ_DONTWAIT : 0);
            if (rc < 0) {
                zmq_msg_close(&zm);
                assert_int_equal(m.n, 0);
                goto keepalive;
            }
            assert_true(m.n < MESH_MAX_FRAMES);
            assert_true(zmq_msg_size(&zm) <= FRAME_CAP);
            m.size[m.n] = zmq_msg_size(&zm);
            memcpy(m.data[m.n], zmq_msg_data(&zm), m.size[m.n]);
            m.n++;
            more = zmq_msg_more(&zm);
            zmq_msg_close(&zm);
        }
        assert_true(m.n >= 3);
        if (m.size[2] == 1 && m.data[2][0] == MESH_W_HEARTBEAT) {
            f->hb_seen++;
            continue;
        }
        if (m.size[2] == 1 && m.data[2][0] == MESH_W_READY) {
            memcpy(f->peer, m.data[0], m.size[0]);
            f->peer_len = m.size[0];
        }
        assert_true(f->qlen < QMAX);
        f->q[(f->qhead + f->qlen) % QMAX] = m;
        f->qlen++;
    }
keepalive:
    if (f->keepalive && f->peer_len && now_ms() - f->last_ka >= HB_MS) {
        fake_send(f, f->peer, f->peer_len, MESH_W_HEARTBEAT, NULL, 0);
        f->last_ka = now_ms();
    }
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static bool run_until(fx_t *fx, bool (*cond)(void *), void *arg, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        fake_poll(&fx->fake);
        if (cond(arg))
            return true;
        if (now_ms() >= end)
            return false;
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
}

static bool fake_has_msg(void *arg)
{
    return ((fake_t *)arg)->qlen > 0;
}

/* Next queued message from the worker (bounded wait). */
static bool fake_next(fx_t *fx, tmsg_t *out)
{
    if (!run_until(fx, fake_has_msg, &fx->fake, WAIT_MS))
        return false;
    *out = fx->fake.q[fx->fake.qhead];
    fx->fake.qhead = (fx->fake.qhead + 1) % QMAX;
    fx->fake.qlen--;
    return true;
}

static uint8_t msg_cmd(const tmsg_t *m)
{
    return m->data[2][0];
}

/* ---- handler ------------------------------------------------------------- */

#define HMAX 16

typedef struct {
    int calls;
    mesh_worker_req_t *req[HMAX];
    char id[HMAX][MESH_ID_MAX + 1];
    char op[HMAX][MESH_OP_MAX + 1];
    char conv[HMAX][MESH_CONV_MAX + 1];
    json_t *args[HMAX];
    uint64_t remaining[HMAX];
} handler_t;

static handler_t H;

static void handler(mesh_worker_t *w, mesh_worker_req_t *req, const mesh_request_t *msg, void *arg)
{
    handler_t *h = arg;
    assert_true(h->calls < HMAX);
    assert_ptr_equal(mesh_worker_req_msg(req), msg);
    int i = h->calls++;
    h->req[i] = req;
    strcpy(h->id[i], msg->id);
    strcpy(h->op[i], msg->op);
    strcpy(h->conv[i], msg->conv);
    h->args[i] = msg->args ? json_incref(msg->args) : NULL;
    h->remaining[i] = mesh_worker_req_remaining_ms(req);
}

typedef struct {
    int want;
} hwant_t;

static bool handler_reached(void *arg)
{
    return H.calls >= ((hwant_t *)arg)->want;
}

/* ---- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
    static fx_t fx;
    memset(&fx, 0, sizeof(fx));
    for (int i = 0; i < HMAX; i++)
        if (H.args[i])
            json_decref(H.args[i]);
    memset(&H, 0, sizeof(H));
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    uv_timer_init(&fx.loop, &fx.ticker);
    uv_timer_start(&fx.ticker, on_tick, TICK_MS, TICK_MS);
    fx.zctx = zmq_ctx_new();
    fx.fake.sock = zmq_socket(fx.zctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(fx.fake.sock, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_bind(fx.fake.sock, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof(fx.fake.ep);
    assert_int_equal(zmq_getsockopt(fx.fake.sock, ZMQ_LAST_ENDPOINT, fx.fake.ep, &len), 0);

    fx.opts.service = "echo";
    fx.opts.endpoints[0] = fx.fake.ep;
    fx.opts.n_endpoints = 1;
    fx.opts.capacity = 2;
    fx.opts.heartbeat_ms = HB_SLOW_MS;
    fx.opts.liveness = LIVENESS;
    fx.opts.reconnect_min_ms = 10;
    fx.opts.reconnect_max_ms = 40;
    mesh_zsock_opts_default(&fx.opts.zopts);
    fx.opts.zopts.linger_ms = 0;
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    mesh_worker_destroy(&fx->w);
    uv_close((uv_handle_t *)&fx->ticker, NULL);
    uint64_t end = now_ms() + WAIT_MS;
    while (uv_loop_alive(&fx->loop) && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    zmq_close(fx->fake.sock);
    zmq_ctx_term(fx->zctx);
    for (int i = 0; i < HMAX; i++)
        if (H.args[i]) {
            json_decref(H.args[i]);
            H.args[i] = NULL;
        }
    return 0;
}

static void start_worker(fx_t *fx)
{
    fx->w = mesh_worker_new(&fx->loop, fx->zctx, &fx->opts, handler, &H);
    assert_non_null(fx->w);
    assert_int_equal(mesh_worker_start(fx->w), 0);
}

/* Wait for READY; returns the message. */
static void expect_ready(fx_t *fx, tmsg_t *m)
{
    assert_true(fake_next(fx, m));
    assert_int_equal(msg_cmd(m), MESH_W_READY);
}

static void send_request(fx_t *fx, const char *id, const char *op, const char *conv,
                         uint32_t deadline, json_t *args)
{
    mesh_request_t r;
    memset(&r, 0, sizeof(r));
    strcpy(r.id, id);
    strcpy(r.op, op);
    strcpy(r.conv, conv);
    r.deadline_ms = deadline;
    r.args = args;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_request_encode(&r, &sb), 0);
    fake_send(&fx->fake, fx->fake.peer, fx->fake.peer_len, MESH_W_REQUEST, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void send_raw_body(fx_t *fx, const void *body, size_t len)
{
    fake_send(&fx->fake, fx->fake.peer, fx->fake.peer_len, MESH_W_REQUEST, body, len);
}

/* Next PARTIAL/FINAL: checks the command and decodes the reply (caller clears). */
static void expect_reply(fx_t *fx, uint8_t cmd, mesh_reply_t *rep)
{
    tmsg_t m;
    assert_true(fake_next(fx, &m));
    assert_int_equal(msg_cmd(&m), cmd);
    assert_int_equal(m.n, 4); /* identity, signature, command, body */
    assert_int_equal(mesh_reply_decode(m.data[3], m.size[3], rep), 0);
}

/* ---- tests --------------------------------------------------------------- */

static void test_ready_with_capacity(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);
    assert_int_equal(m.n, 5);
    assert_memory_equal(m.data[1], MESH_PROTO_WORKER, MESH_PROTO_SIG_LEN);
    assert_int_equal(m.size[3], 4);
    assert_memory_equal(m.data[3], "echo", 4);
    mesh_ready_t rdy;
    assert_int_equal(mesh_ready_decode(m.data[4], m.size[4], &rdy), 0);
    assert_int_equal(rdy.capacity, 2);
    assert_int_equal(mesh_worker_start(fx->w), MESH_ESTATE);
}

#define KEEP_LIVENESS 10

typedef struct {
    fake_t *f;
    uint64_t until;
} keep_t;

static bool keep_reached(void *arg)
{
    keep_t *k = arg;
    return now_ms() >= k->until && k->f->hb_seen >= 5;
}

/* A router that heartbeats keeps the link: the worker heartbeats on its own
 * schedule and never reconnects (no second READY) over two liveness windows.
 * Liveness 10 here, so only a 200 ms stall of this process could break it. */
static void test_heartbeats_keep_link(void **state)
{
    fx_t *fx = *state;
    fx->opts.heartbeat_ms = HB_MS;
    fx->opts.liveness = KEEP_LIVENESS;
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);
    fx->fake.keepalive = true;
    /* Heartbeats queued while the TCP connection was being set up arrive with
     * the READY: count only what comes after. */
    fx->fake.hb_seen = 0;
    keep_t k = {&fx->fake, now_ms() + 2 * KEEP_LIVENESS * HB_MS};
    assert_true(run_until(fx, keep_reached, &k, WAIT_MS));
    assert_int_equal(fx->fake.qlen, 0);
}

/* A silent router is declared dead after liveness intervals; the worker comes
 * back on a new socket (new identity) and announces READY again. */
static void test_silent_router_reconnect(void **state)
{
    fx_t *fx = *state;
    fx->opts.heartbeat_ms = HB_MS;
    start_worker(fx);
    tmsg_t m1, m2;
    expect_ready(fx, &m1);
    mesh_log_set_level(MESH_LOG_ERROR); /* "router silent" warning expected */
    expect_ready(fx, &m2);
    mesh_log_set_level(MESH_LOG_WARN);
    assert_false(m1.size[0] == m2.size[0] && memcmp(m1.data[0], m2.data[0], m1.size[0]) == 0);
    mesh_ready_t rdy;
    assert_int_equal(mesh_ready_decode(m2.data[4], m2.size[4], &rdy), 0);
    assert_int_equal(rdy.capacity, 2);
}

/* A REQUEST reaches the handler; PARTIAL and FINAL come back with its id. */
static void test_request_partial_final(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);
    fx->fake.keepalive = true;

    json_t *args = json_pack("{s:i}", "x", 7);
    send_request(fx, "r1", "echo", "c1", 5000, args);
    json_decref(args);
    hwant_t w1 = {1};
    assert_true(run_until(fx, handler_reached, &w1, WAIT_MS));
    assert_string_equal(H.id[0], "r1");
    assert_string_equal(H.op[0], "echo");
    assert_string_equal(H.conv[0], "c1");
    assert_int_equal(json_integer_value(json_object_get(H.args[0], "x")), 7);
    assert_true(H.remaining[0] > 4000 && H.remaining[0] <= 5000);
    assert_int_equal(mesh_worker_inflight(fx->w), 1);

    json_t *d1 = json_pack("{s:s}", "delta", "he");
    assert_int_equal(mesh_worker_partial(H.req[0], d1), 0);
    json_decref(d1);
    json_t *d2 = json_pack("{s:b}", "ok", 1);
    assert_int_equal(mesh_worker_final(H.req[0], 0, NULL, d2), 0);
    json_decref(d2);
    assert_int_equal(mesh_worker_inflight(fx->w), 0);

    mesh_reply_t rep;
    expect_reply(fx, MESH_W_PARTIAL, &rep);
    assert_string_equal(rep.id, "r1");
    assert_int_equal(rep.status, 0);
    assert_string_equal(json_string_value(json_object_get(rep.data, "delta")), "he");
    mesh_reply_clear(&rep);
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "r1");
    assert_int_equal(rep.status, 0);
    assert_true(json_is_true(json_object_get(rep.data, "ok")));
    mesh_reply_clear(&rep);

    /* An error FINAL carries status and message. */
    send_request(fx, "r2", "echo", "", 5000, NULL);
    hwant_t w2 = {2};
    assert_true(run_until(fx, handler_reached, &w2, WAIT_MS));
    assert_int_equal(mesh_worker_final(H.req[1], MESH_ENOTFOUND, "no such policy", NULL), 0);
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "r2");
    assert_int_equal(rep.status, MESH_ENOTFOUND);
    assert_string_equal(rep.err, "no such policy");
    assert_null(rep.data);
    mesh_reply_clear(&rep);
}

/* Beyond the announced capacity a REQUEST is refused at once with EBUSY. */
static void test_over_capacity(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);
    fx->fake.keepalive = true;
    send_request(fx, "a1", "echo", "", 5000, NULL);
    send_request(fx, "a2", "echo", "", 5000, NULL);
    send_request(fx, "a3", "echo", "", 5000, NULL);
    mesh_reply_t rep;
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "a3");
    assert_int_equal(rep.status, MESH_EBUSY);
    mesh_reply_clear(&rep);
    assert_int_equal(H.calls, 2);
    assert_int_equal(mesh_worker_inflight(fx->w), 2);

    /* Capacity comes back with a FINAL. */
    assert_int_equal(mesh_worker_final(H.req[0], 0, NULL, NULL), 0);
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "a1");
    mesh_reply_clear(&rep);
    send_request(fx, "a4", "echo", "", 5000, NULL);
    hwant_t w = {3};
    assert_true(run_until(fx, handler_reached, &w, WAIT_MS));
    assert_string_equal(H.id[2], "a4");
    mesh_worker_final(H.req[1], 0, NULL, NULL);
    mesh_worker_final(H.req[2], 0, NULL, NULL);
}

/* A body that does not decode gets FINAL EPROTO when its id is readable; without
 * a readable id it is dropped (and the worker keeps working). */
static void test_malformed_request(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);
    fx->fake.keepalive = true;
    mesh_log_set_level(MESH_LOG_ERROR); /* the warnings below are expected */

    /* A map with an id but no op/deadline. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "v", 1);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "id", 2);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "bad1", 4);
    send_raw_body(fx, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);

    mesh_reply_t rep;
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "bad1");
    assert_int_equal(rep.status, MESH_EPROTO);
    mesh_reply_clear(&rep);

    /* Not msgpack at all, a truncated map, and frames of the wrong shape. */
    send_raw_body(fx, "\xc1", 1);
    send_raw_body(fx, "\x85\xa2id", 4);
    zmq_send(fx->fake.sock, fx->fake.peer, fx->fake.peer_len, ZMQ_SNDMORE);
    zmq_send(fx->fake.sock, "BOGUS01", 7, ZMQ_SNDMORE);
    zmq_send(fx->fake.sock, "\x02", 1, 0);
    /* Then a good one: it is the next thing the worker answers. */
    send_request(fx, "ok1", "echo", "", 5000, NULL);
    hwant_t w = {1};
    assert_true(run_until(fx, handler_reached, &w, WAIT_MS));
    assert_int_equal(mesh_worker_final(H.req[0], 0, NULL, NULL), 0);
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "ok1");
    mesh_reply_clear(&rep);
    assert_int_equal(fx->fake.qlen, 0);
    mesh_log_set_level(MESH_LOG_WARN);
}

/* DISCONNECT from the router: reconnect on a new socket, READY again; an answer
 * to a request from the old connection is discarded. */
static void test_disconnect_reconnects(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    tmsg_t m1, m2;
    expect_ready(fx, &m1);
    send_request(fx, "old", "echo", "", 5000, NULL);
    hwant_t w = {1};
    assert_true(run_until(fx, handler_reached, &w, WAIT_MS));

    fake_send(&fx->fake, fx->fake.peer, fx->fake.peer_len, MESH_W_DISCONNECT, NULL, 0);
    expect_ready(fx, &m2);
    assert_false(m1.size[0] == m2.size[0] && memcmp(m1.data[0], m2.data[0], m1.size[0]) == 0);

    assert_int_equal(mesh_worker_partial(H.req[0], NULL), MESH_ECANCELED);
    assert_int_equal(mesh_worker_final(H.req[0], 0, NULL, NULL), MESH_ECANCELED);
    assert_int_equal(mesh_worker_inflight(fx->w), 0);
}

/* set_ready(false) says DISCONNECT; set_ready(true) announces READY again. */
static void test_set_ready(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);
    mesh_worker_set_ready(fx->w, false);
    assert_true(fake_next(fx, &m));
    assert_int_equal(msg_cmd(&m), MESH_W_DISCONNECT);
    assert_int_equal(m.n, 3);
    mesh_worker_set_ready(fx->w, true);
    expect_ready(fx, &m);
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

static void on_drained(mesh_worker_t *w, void *arg)
{
    *(bool *)arg = true;
}

/* Drain: DISCONNECT at once, the in-flight answer still goes out, then done. */
static void test_drain_waits_for_inflight(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);
    fx->fake.keepalive = true;
    send_request(fx, "d1", "echo", "", 5000, NULL);
    hwant_t w = {1};
    assert_true(run_until(fx, handler_reached, &w, WAIT_MS));

    bool done = false;
    mesh_worker_drain(fx->w, 5000, on_drained, &done);
    assert_true(fake_next(fx, &m));
    assert_int_equal(msg_cmd(&m), MESH_W_DISCONNECT);
    assert_false(done);
    assert_int_equal(mesh_worker_final(H.req[0], 0, NULL, NULL), 0);
    mesh_reply_t rep;
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "d1");
    mesh_reply_clear(&rep);
    assert_true(run_until(fx, flag_set, &done, WAIT_MS));
}

/* Drain grace over: open requests are answered EUNAVAIL; the handler's late
 * FINAL is discarded but still frees the request. */
static void test_drain_grace_expires(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);
    fx->fake.keepalive = true;
    send_request(fx, "g1", "echo", "", 5000, NULL);
    hwant_t w = {1};
    assert_true(run_until(fx, handler_reached, &w, WAIT_MS));
    bool done = false;
    mesh_log_set_level(MESH_LOG_ERROR);
    mesh_worker_drain(fx->w, 30, on_drained, &done);
    assert_true(run_until(fx, flag_set, &done, WAIT_MS));
    mesh_log_set_level(MESH_LOG_WARN);
    assert_true(fake_next(fx, &m));
    assert_int_equal(msg_cmd(&m), MESH_W_DISCONNECT);
    mesh_reply_t rep;
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "g1");
    assert_int_equal(rep.status, MESH_EUNAVAIL);
    mesh_reply_clear(&rep);
    assert_int_equal(mesh_worker_final(H.req[0], 0, NULL, NULL), MESH_ECANCELED);
}

/* Destroy with a request still held: the handle stays valid for its final. */
static void test_destroy_with_open_request(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);
    send_request(fx, "x1", "echo", "", 5000, NULL);
    hwant_t w = {1};
    assert_true(run_until(fx, handler_reached, &w, WAIT_MS));
    mesh_worker_destroy(&fx->w);
    assert_null(fx->w);
    assert_int_equal(mesh_worker_req_remaining_ms(H.req[0]), 0);
    assert_int_equal(mesh_worker_final(H.req[0], 0, NULL, NULL), MESH_ECANCELED);
}

/* The integration tests rely on this exact DEBUG line per REQUEST. */
static void test_debug_log_line(void **state)
{
    fx_t *fx = *state;
    char path[] = "/tmp/test_worker_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);

    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    mesh_log_set_level(MESH_LOG_DEBUG);
    send_request(fx, "log-r1", "tool.call", "conv:42", 5000, NULL);
    hwant_t w = {1};
    bool ok = run_until(fx, handler_reached, &w, WAIT_MS);
    mesh_log_set_level(MESH_LOG_WARN);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_true(ok);

    char buf[8192];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    buf[n] = '\0';
    /* JSON lines (the default format): the subsystem is the event, the text is msg */
    assert_non_null(strstr(buf, "\"event\":\"worker\""));
    assert_non_null(strstr(buf, "\"msg\":\"request id=log-r1 op=tool.call conv=conv:42\""));
    mesh_worker_final(H.req[0], 0, NULL, NULL);
}

/* ---- CANCEL ---------------------------------------------------------------- */

typedef struct {
    int calls;
    mesh_worker_req_t *req;
    bool final_in_cb; /* answer from inside the callback */
    int final_rc;
} cancel_rec_t;

static void on_cancel(mesh_worker_t *w, mesh_worker_req_t *req, void *arg)
{
    (void)w;
    cancel_rec_t *c = arg;
    c->calls++;
    c->req = req;
    assert_true(mesh_worker_req_canceled(req));
    if (c->final_in_cb)
        c->final_rc = mesh_worker_final(req, 0, NULL, NULL);
}

static bool cancel_called(void *arg)
{
    return ((cancel_rec_t *)arg)->calls > 0;
}

static void send_cancel(fx_t *fx, const char *id)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_cancel_encode(id, &sb), 0);
    fake_send(&fx->fake, fx->fake.peer, fx->fake.peer_len, MESH_W_CANCEL, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* CANCEL reaches the handler's cancel callback for the named request only;
 * after it, partials are not sent and the FINAL only frees the router's slot. */
static void test_cancel_handler(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    cancel_rec_t cr = {0};
    mesh_worker_set_cancel_handler(fx->w, on_cancel, &cr);
    tmsg_t m;
    expect_ready(fx, &m);
    fx->fake.keepalive = true;

    send_request(fx, "k1", "echo", "", 5000, NULL);
    send_request(fx, "k2", "echo", "", 5000, NULL);
    hwant_t w2 = {2};
    assert_true(run_until(fx, handler_reached, &w2, WAIT_MS));

    /* unknown id, malformed body: ignored */
    send_cancel(fx, "nope");
    const uint8_t junk[] = {0x81, 0xa1, 'v', 0x01};
    fake_send(&fx->fake, fx->fake.peer, fx->fake.peer_len, MESH_W_CANCEL, junk, sizeof(junk));
    send_cancel(fx, "k1");
    assert_true(run_until(fx, cancel_called, &cr, WAIT_MS));
    assert_int_equal(cr.calls, 1);
    assert_ptr_equal(cr.req, H.req[0]);
    assert_false(mesh_worker_req_canceled(H.req[1]));

    /* a second CANCEL for the same request is not delivered twice */
    send_cancel(fx, "k1");
    /* k2 still answers normally, and proves the second CANCEL was read */
    assert_int_equal(mesh_worker_final(H.req[1], 0, NULL, NULL), 0);
    mesh_reply_t rep;
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "k2");
    mesh_reply_clear(&rep);
    assert_int_equal(cr.calls, 1);

    json_t *d = json_pack("{s:s}", "delta", "x");
    assert_int_equal(mesh_worker_partial(H.req[0], d), MESH_ECANCELED);
    assert_int_equal(mesh_worker_final(H.req[0], 0, NULL, d), MESH_ECANCELED);
    json_decref(d);
    assert_int_equal(mesh_worker_inflight(fx->w), 0);
    /* the only thing sent for k1: a data-less FINAL with status canceled */
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "k1");
    assert_int_equal(rep.status, MESH_ECANCELED);
    assert_null(rep.data);
    mesh_reply_clear(&rep);

    /* the handler may final from inside the cancel callback */
    cr.calls = 0;
    cr.final_in_cb = true;
    send_request(fx, "k3", "echo", "", 5000, NULL);
    hwant_t w3 = {3};
    assert_true(run_until(fx, handler_reached, &w3, WAIT_MS));
    send_cancel(fx, "k3");
    assert_true(run_until(fx, cancel_called, &cr, WAIT_MS));
    assert_int_equal(cr.final_rc, MESH_ECANCELED);
    assert_int_equal(mesh_worker_inflight(fx->w), 0);
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "k3");
    assert_int_equal(rep.status, MESH_ECANCELED);
    mesh_reply_clear(&rep);
}

/* Without a cancel handler CANCEL is ignored: the request runs to its end. */
static void test_cancel_without_handler(void **state)
{
    fx_t *fx = *state;
    start_worker(fx);
    tmsg_t m;
    expect_ready(fx, &m);
    fx->fake.keepalive = true;
    send_request(fx, "n1", "echo", "", 5000, NULL);
    hwant_t w1 = {1};
    assert_true(run_until(fx, handler_reached, &w1, WAIT_MS));
    send_cancel(fx, "n1");
    /* a second request proves the CANCEL before it was processed */
    send_request(fx, "n2", "echo", "", 5000, NULL);
    hwant_t w2 = {2};
    assert_true(run_until(fx, handler_reached, &w2, WAIT_MS));
    assert_false(mesh_worker_req_canceled(H.req[0]));
    json_t *d = json_pack("{s:s}", "delta", "x");
    assert_int_equal(mesh_worker_partial(H.req[0], d), 0);
    assert_int_equal(mesh_worker_final(H.req[0], 0, NULL, d), 0);
    json_decref(d);
    assert_int_equal(mesh_worker_final(H.req[1], 0, NULL, NULL), 0);
    mesh_reply_t rep;
    expect_reply(fx, MESH_W_PARTIAL, &rep);
    mesh_reply_clear(&rep);
    expect_reply(fx, MESH_W_FINAL, &rep);
    assert_string_equal(rep.id, "n1");
    assert_int_equal(rep.status, 0);
    assert_non_null(rep.data);
    mesh_reply_clear(&rep);
}

static void test_bad_options(void **state)
{
    fx_t *fx = *state;
    mesh_log_set_level(MESH_LOG_OFF);
    mesh_worker_opts_t o = fx->opts;
    o.service = "Bad Name";
    assert_null(mesh_worker_new(&fx->loop, fx->zctx, &o, handler, &H));
    o = fx->opts;
    o.capacity = 0;
    assert_null(mesh_worker_new(&fx->loop, fx->zctx, &o, handler, &H));
    o = fx->opts;
    o.n_endpoints = 0;
    assert_null(mesh_worker_new(&fx->loop, fx->zctx, &o, handler, &H));
    o = fx->opts;
    o.reconnect_max_ms = 1;
    assert_null(mesh_worker_new(&fx->loop, fx->zctx, &o, handler, &H));
    assert_null(mesh_worker_new(&fx->loop, fx->zctx, &fx->opts, NULL, &H));
    /* A malformed endpoint fails start instead of retrying forever. */
    o = fx->opts;
    o.endpoints[0] = "nonsense://";
    fx->w = mesh_worker_new(&fx->loop, fx->zctx, &o, handler, &H);
    assert_non_null(fx->w);
    assert_int_equal(mesh_worker_start(fx->w), MESH_EINVAL);
    mesh_log_set_level(MESH_LOG_WARN);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ready_with_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeats_keep_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_router_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_partial_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_waits_for_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_grace_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_with_open_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_log_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_without_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
