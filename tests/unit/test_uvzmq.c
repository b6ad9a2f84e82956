/*
 * test_uvzmq.c - the uv <-> ZeroMQ adapter on real sockets (inproc and tcp).
 *
 * The loop is driven with uv_run(UV_RUN_ONCE) under a 2 ms ticker until a
 * condition holds or a bounded deadline passes; raw zmq peers outside the
 * loop are read with ZMQ_DONTWAIT from the condition functions.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <zmq.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_uvzmq.h"

#define TICK_MS 2
#define WAIT_MS 5000

typedef struct {
    uv_loop_t loop;
    uv_timer_t ticker;
    void *zctx;
} fx_t;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static bool run_until(fx_t *fx, bool (*cond)(void *), void *arg, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (!cond(arg)) {
        if (now_ms() >= end)
            return false;
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    return true;
}

static void run_iterations(fx_t *fx, int n)
{
    for (int i = 0; i < n; i++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static int setup(void **state)
{
    static fx_t fx;
    memset(&fx, 0, sizeof(fx));
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    uv_timer_init(&fx.loop, &fx.ticker);
    uv_timer_start(&fx.ticker, on_tick, TICK_MS, TICK_MS);
    fx.zctx = zmq_ctx_new();
    assert_non_null(fx.zctx);
    *state = &fx;
    return 0;
}

static void on_walk_count(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        (*(int *)arg)++;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    uv_close((uv_handle_t *)&fx->ticker, NULL);
    /* Everything the test opened must be closed by now: the loop must empty. */
    uint64_t end = now_ms() + WAIT_MS;
    while (uv_loop_alive(&fx->loop) && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    int open = 0;
    uv_walk(&fx->loop, on_walk_count, &open);
    assert_int_equal(open, 0);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    zmq_ctx_term(fx->zctx);
    return 0;
}

/* ---- recorder ------------------------------------------------------------ */

#define REC_MAX 2048

typedef struct {
    int count;
    int this_iter;
    int max_per_iter;
    int iters_with_msgs;
    size_t nframes[REC_MAX];
    uint32_t seq[REC_MAX];
    char first[REC_MAX][16];
    bool close_on_first;
    mesh_uvzmq_t **self;
} rec_t;

static void rec_cb(mesh_uvzmq_t *s, const mesh_frame_t *f, size_t n, void *arg)
{
    rec_t *r = arg;
    if (r->count < REC_MAX) {
        r->nframes[r->count] = n;
        size_t l = f[0].size < 15 ? f[0].size : 15;
        memcpy(r->first[r->count], f[0].data, l);
        r->first[r->count][l] = '\0';
        if (n >= 2 && f[n - 1].size == sizeof(uint32_t))
            memcpy(&r->seq[r->count], f[n - 1].data, sizeof(uint32_t));
    }
    r->count++;
    r->this_iter++;
    if (r->close_on_first) {
        mesh_uvzmq_close(r->self);
        assert_null(*r->self);
    }
}

static void on_check(uv_check_t *h)
{
    rec_t *r = h->data;
    if (r->this_iter > r->max_per_iter)
        r->max_per_iter = r->this_iter;
    if (r->this_iter)
        r->iters_with_msgs++;
    r->this_iter = 0;
}

typedef struct {
    rec_t *rec;
    int want;
} want_t;

static bool rec_reached(void *arg)
{
    want_t *w = arg;
    return w->rec->count >= w->want;
}

static void *raw_connect(fx_t *fx, int type, const char *ep)
{
    void *s = zmq_socket(fx->zctx, type);
    assert_non_null(s);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    assert_int_equal(zmq_connect(s, ep), 0);
    return s;
}

/* ---- tests --------------------------------------------------------------- */

/* 1000 messages queued before the loop runs arrive in one edge: all are read,
 * in order, but no wakeup handles them all at once. */
static void test_many_messages_one_edge(void **state)
{
    fx_t *fx = *state;
    static rec_t rec;
    memset(&rec, 0, sizeof(rec));
    mesh_uvzmq_t *s = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_DEALER, NULL, rec_cb, &rec);
    assert_non_null(s);
    assert_int_equal(mesh_uvzmq_bind(s, "inproc://uvzmq-many"), 0);
    void *raw = raw_connect(fx, ZMQ_DEALER, "inproc://uvzmq-many");

    const uint32_t N = 1000;
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(zmq_send(raw, "hdr", 3, ZMQ_SNDMORE), 3);
        assert_int_equal(zmq_send(raw, &i, sizeof(i), 0), (int)sizeof(i));
    }
    static uv_check_t check;
    uv_check_init(&fx->loop, &check);
    check.data = &rec;
    uv_check_start(&check, on_check);

    want_t w = {&rec, (int)N};
    assert_true(run_until(fx, rec_reached, &w, WAIT_MS));
    assert_int_equal(rec.count, N);
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(rec.nframes[i], 2);
        assert_string_equal(rec.first[i], "hdr");
        assert_int_equal(rec.seq[i], i);
    }
    /* Bounded per wakeup: the loop got control back between batches. */
    assert_true(rec.iters_with_msgs >= 2);
    assert_true(rec.max_per_iter <= 512);

    uv_close((uv_handle_t *)&check, NULL);
    zmq_close(raw);
    mesh_uvzmq_close(&s);
    assert_null(s);
}

/* A message of MESH_MAX_FRAMES frames is delivered; one more frame and it is dropped
 * whole, and the next message is delivered intact. */
static void test_frame_limit(void **state)
{
    fx_t *fx = *state;
    static rec_t rec;
    memset(&rec, 0, sizeof(rec));
    mesh_uvzmq_t *s = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_DEALER, NULL, rec_cb, &rec);
    assert_non_null(s);
    assert_int_equal(mesh_uvzmq_bind(s, "inproc://uvzmq-frames"), 0);
    void *raw = raw_connect(fx, ZMQ_DEALER, "inproc://uvzmq-frames");

    for (int i = 0; i < MESH_MAX_FRAMES; i++)
        zmq_send(raw, "max", 3, i + 1 < MESH_MAX_FRAMES ? ZMQ_SNDMORE : 0);
    for (int i = 0; i < MESH_MAX_FRAMES + 1; i++)
        zmq_send(raw, "over", 4, i < MESH_MAX_FRAMES ? ZMQ_SNDMORE : 0);
    for (int i = 0; i < 3 * MESH_MAX_FRAMES; i++)
        zmq_send(raw, "way-over", 8, i + 1 < 3 * MESH_MAX_FRAMES ? ZMQ_SNDMORE : 0);
    zmq_send(raw, "end", 3, 0);

    want_t w = {&rec, 2};
    assert_true(run_until(fx, rec_reached, &w, WAIT_MS));
    assert_int_equal(rec.count, 2);
    assert_int_equal(rec.nframes[0], MESH_MAX_FRAMES);
    assert_string_equal(rec.first[0], "max");
    assert_int_equal(rec.nframes[1], 1);
    assert_string_equal(rec.first[1], "end");

    zmq_close(raw);
    mesh_uvzmq_close(&s);
}

typedef struct {
    void *raw;
    uint32_t got;
    uint32_t bad_order;
} drain_t;

static bool raw_drained(void *arg)
{
    drain_t *d = arg;
    uint32_t v;
    int n;
    while ((n = zmq_recv(d->raw, &v, sizeof(v), ZMQ_DONTWAIT)) == (int)sizeof(v)) {
        if (v != d->got)
            d->bad_order++;
        d->got++;
    }
    return d->got >= 200;
}

static void noop_cb(mesh_uvzmq_t *s, const mesh_frame_t *f, size_t n, void *arg)
{
}

/* At a tiny HWM with a peer that does not read, sends are parked (not lost),
 * and flushed in order once the peer reads. */
static void test_park_and_flush(void **state)
{
    fx_t *fx = *state;
    void *raw = zmq_socket(fx->zctx, ZMQ_DEALER);
    int one = 1, zero = 0;
    zmq_setsockopt(raw, ZMQ_RCVHWM, &one, sizeof(one));
    zmq_setsockopt(raw, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_bind(raw, "inproc://uvzmq-park"), 0);

    mesh_zsock_opts_t o;
    mesh_zsock_opts_default(&o);
    o.sndhwm = 1;
    mesh_uvzmq_t *s = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_DEALER, &o, noop_cb, NULL);
    assert_non_null(s);
    assert_int_equal(mesh_uvzmq_connect(s, "inproc://uvzmq-park"), 0);

    for (uint32_t i = 0; i < 200; i++) {
        mesh_frame_t f = {&i, sizeof(i)};
        assert_int_equal(mesh_uvzmq_send(s, &f, 1), 0);
    }
    size_t parked = mesh_uvzmq_parked(s);
    assert_true(parked > 150);
    /* Nobody reads: running the loop does not lose or send anything. */
    run_iterations(fx, 20);
    assert_int_equal(mesh_uvzmq_parked(s), parked);

    drain_t d = {raw, 0, 0};
    assert_true(run_until(fx, raw_drained, &d, WAIT_MS));
    assert_int_equal(d.got, 200);
    assert_int_equal(d.bad_order, 0);
    assert_int_equal(mesh_uvzmq_parked(s), 0);

    mesh_uvzmq_close(&s);
    zmq_close(raw);
}

/* The park queue is bounded: past MESH_UVZMQ_PARK_MAX a send says MESH_EBUSY. */
static void test_park_full(void **state)
{
    fx_t *fx = *state;
    void *raw = zmq_socket(fx->zctx, ZMQ_DEALER);
    int one = 1, zero = 0;
    zmq_setsockopt(raw, ZMQ_RCVHWM, &one, sizeof(one));
    zmq_setsockopt(raw, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_bind(raw, "inproc://uvzmq-full"), 0);
    mesh_zsock_opts_t o;
    mesh_zsock_opts_default(&o);
    o.sndhwm = 1;
    mesh_uvzmq_t *s = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_DEALER, &o, noop_cb, NULL);
    assert_int_equal(mesh_uvzmq_connect(s, "inproc://uvzmq-full"), 0);

    int rc = 0;
    uint32_t sent = 0;
    while (rc == 0 && sent < MESH_UVZMQ_PARK_MAX + 100) {
        mesh_frame_t f = {"x", 1};
        rc = mesh_uvzmq_send(s, &f, 1);
        if (rc == 0)
            sent++;
    }
    assert_int_equal(rc, MESH_EBUSY);
    assert_int_equal(mesh_uvzmq_parked(s), MESH_UVZMQ_PARK_MAX);
    mesh_log_set_level(MESH_LOG_ERROR); /* the "closing with parked" warning is expected */
    mesh_uvzmq_close(&s);
    mesh_log_set_level(MESH_LOG_WARN);
    zmq_close(raw);
}

/* Closing the socket from its own callback: no further callbacks, no use after free. */
static void test_close_inside_callback(void **state)
{
    fx_t *fx = *state;
    static rec_t rec;
    memset(&rec, 0, sizeof(rec));
    mesh_uvzmq_t *s = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_DEALER, NULL, rec_cb, &rec);
    assert_non_null(s);
    rec.close_on_first = true;
    rec.self = &s;
    assert_int_equal(mesh_uvzmq_bind(s, "inproc://uvzmq-close"), 0);
    void *raw = raw_connect(fx, ZMQ_DEALER, "inproc://uvzmq-close");
    for (uint32_t i = 0; i < 5; i++) {
        zmq_send(raw, "m", 1, ZMQ_SNDMORE);
        zmq_send(raw, &i, sizeof(i), 0);
    }
    want_t w = {&rec, 1};
    assert_true(run_until(fx, rec_reached, &w, WAIT_MS));
    assert_null(s);
    run_iterations(fx, 10);
    assert_int_equal(rec.count, 1);
    zmq_close(raw);
}

/* ROUTER: frames[0] is the identity; replying to it works, to a stranger it fails. */
static bool raw_has_reply(void *arg)
{
    char *buf = arg;
    int n = zmq_recv(*(void **)buf, buf + sizeof(void *), 32, ZMQ_DONTWAIT);
    if (n > 0) {
        buf[sizeof(void *) + n] = '\0';
        return true;
    }
    return false;
}

static void echo_cb(mesh_uvzmq_t *s, const mesh_frame_t *f, size_t n, void *arg)
{
    mesh_frame_t out[2] = {f[0], {"pong", 4}};
    *(int *)arg = mesh_uvzmq_send(s, out, 2);
}

static void test_router_identity(void **state)
{
    fx_t *fx = *state;
    int send_rc = 1;
    mesh_uvzmq_t *s = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_ROUTER, NULL, echo_cb, &send_rc);
    assert_non_null(s);
    assert_int_equal(mesh_uvzmq_bind(s, "tcp://127.0.0.1:*"), 0);
    char ep[MESH_ENDPOINT_MAX];
    size_t len = sizeof(ep);
    assert_int_equal(zmq_getsockopt(mesh_uvzmq_socket(s), ZMQ_LAST_ENDPOINT, ep, &len), 0);
    void *raw = raw_connect(fx, ZMQ_DEALER, ep);
    zmq_send(raw, "ping", 4, 0);

    char buf[sizeof(void *) + 40];
    memcpy(buf, &raw, sizeof(void *));
    assert_true(run_until(fx, raw_has_reply, buf, WAIT_MS));
    assert_int_equal(send_rc, 0);
    assert_string_equal(buf + sizeof(void *), "pong");

    mesh_frame_t ghost[2] = {{"ghost", 5}, {"x", 1}};
    assert_int_equal(mesh_uvzmq_send(s, ghost, 2), MESH_EUNAVAIL);
    zmq_close(raw);
    mesh_uvzmq_close(&s);
}

/* Two adapters in one loop bounce a counter over inproc. Each receive triggers a
 * send, which processes commands without the fd signalling: without the
 * re-check before the loop blocks this stalls after a few rounds. */
typedef struct {
    mesh_uvzmq_t *a, *b;
    uint32_t rounds;
    uint32_t target;
} pp_t;

static void pp_cb(mesh_uvzmq_t *s, const mesh_frame_t *f, size_t n, void *arg)
{
    pp_t *pp = arg;
    uint32_t v;
    memcpy(&v, f[0].data, sizeof(v));
    pp->rounds = v;
    if (v >= pp->target)
        return;
    v++;
    mesh_frame_t out = {&v, sizeof(v)};
    assert_int_equal(mesh_uvzmq_send(s, &out, 1), 0);
}

static bool pp_done(void *arg)
{
    pp_t *pp = arg;
    return pp->rounds >= pp->target;
}

static void test_pingpong_no_stall(void **state)
{
    fx_t *fx = *state;
    static pp_t pp;
    memset(&pp, 0, sizeof(pp));
    pp.target = 5000;
    pp.a = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_PAIR, NULL, pp_cb, &pp);
    pp.b = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_PAIR, NULL, pp_cb, &pp);
    assert_int_equal(mesh_uvzmq_bind(pp.a, "inproc://uvzmq-pp"), 0);
    assert_int_equal(mesh_uvzmq_connect(pp.b, "inproc://uvzmq-pp"), 0);
    uint32_t v = 0;
    mesh_frame_t f = {&v, sizeof(v)};
    assert_int_equal(mesh_uvzmq_send(pp.a, &f, 1), 0);
    /* Stop the ticker: only the adapter's own wakeups may drive the loop. */
    uv_timer_stop(&fx->ticker);
    uint64_t end = now_ms() + 4 * WAIT_MS;
    while (!pp_done(&pp) && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(pp.rounds, pp.target);
    uv_timer_start(&fx->ticker, on_tick, TICK_MS, TICK_MS);
    mesh_uvzmq_close(&pp.a);
    mesh_uvzmq_close(&pp.b);
}

/* A relay over TCP, all four sockets on one loop that blocks between
 * wakeups (no ticker, a watchdog only): client C -> ROUTER F, whose callback
 * forwards on DEALER W -> ROUTER K, whose callback answers; W's callback
 * sends the answer back through F, and C's callback starts the next round.
 * Every message arrives through libzmq's io threads and every callback sends
 * on another socket, as in the router: a wakeup lost to a send that processed
 * commands, or to a receive that stopped short of EAGAIN, stalls the relay
 * until the watchdog fails the test. */
typedef struct {
    mesh_uvzmq_t *c, *f, *w, *k;
    uint32_t rounds, target;
    uint8_t ident[256];
    size_t ident_len;
    bool watchdog_fired;
    uv_timer_t wd; /* closed by the test, freed after teardown's loop run */
} relay_t;

static void relay_c_cb(mesh_uvzmq_t *s, const mesh_frame_t *fr, size_t n, void *arg)
{
    relay_t *r = arg;
    assert_int_equal(n, 1);
    uint32_t v;
    memcpy(&v, fr[0].data, sizeof(v));
    assert_int_equal(v, r->rounds);
    r->rounds++;
    if (r->rounds >= r->target)
        return;
    mesh_frame_t out = {&r->rounds, sizeof(r->rounds)};
    assert_int_equal(mesh_uvzmq_send(s, &out, 1), 0);
}

static void relay_f_cb(mesh_uvzmq_t *s, const mesh_frame_t *fr, size_t n, void *arg)
{
    (void)s;
    relay_t *r = arg;
    assert_int_equal(n, 2);
    assert_true(fr[0].size <= sizeof(r->ident));
    memcpy(r->ident, fr[0].data, fr[0].size);
    r->ident_len = fr[0].size;
    assert_int_equal(mesh_uvzmq_send(r->w, &fr[1], 1), 0);
}

static void relay_k_cb(mesh_uvzmq_t *s, const mesh_frame_t *fr, size_t n, void *arg)
{
    (void)arg;
    assert_int_equal(n, 2);
    assert_int_equal(mesh_uvzmq_send(s, fr, 2), 0);
}

static void relay_w_cb(mesh_uvzmq_t *s, const mesh_frame_t *fr, size_t n, void *arg)
{
    (void)s;
    relay_t *r = arg;
    assert_int_equal(n, 1);
    mesh_frame_t out[2] = {{r->ident, r->ident_len}, fr[0]};
    assert_int_equal(mesh_uvzmq_send(r->f, out, 2), 0);
}

static void relay_watchdog(uv_timer_t *t)
{
    relay_t *r = t->data;
    r->watchdog_fired = true;
}

static int free_tcp_endpoint(char *ep, size_t cap)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    int rc = zmq_bind(s, "tcp://127.0.0.1:*");
    size_t len = cap;
    if (rc == 0)
        rc = zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc;
}

static void test_relay_blocking_tcp(void **state)
{
    fx_t *fx = *state;
    static relay_t r;
    memset(&r, 0, sizeof(r));
    r.target = 2000;
    char ep_f[64], ep_k[64];
    assert_int_equal(free_tcp_endpoint(ep_f, sizeof(ep_f)), 0);
    assert_int_equal(free_tcp_endpoint(ep_k, sizeof(ep_k)), 0);
    r.f = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_ROUTER, NULL, relay_f_cb, &r);
    r.k = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_ROUTER, NULL, relay_k_cb, &r);
    r.c = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_DEALER, NULL, relay_c_cb, &r);
    r.w = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_DEALER, NULL, relay_w_cb, &r);
    assert_int_equal(mesh_uvzmq_bind(r.f, ep_f), 0);
    assert_int_equal(mesh_uvzmq_bind(r.k, ep_k), 0);
    assert_int_equal(mesh_uvzmq_connect(r.c, ep_f), 0);
    assert_int_equal(mesh_uvzmq_connect(r.w, ep_k), 0);
    uv_timer_init(&fx->loop, &r.wd);
    r.wd.data = &r;
    uv_timer_start(&r.wd, relay_watchdog, 4 * WAIT_MS, 0);
    uv_timer_stop(&fx->ticker);
    uint32_t first = 0;
    mesh_frame_t out = {&first, sizeof(first)};
    assert_int_equal(mesh_uvzmq_send(r.c, &out, 1), 0);
    /* UV_RUN_ONCE blocks in epoll: only ZMQ_FD signals (and the watchdog) wake it. */
    while (r.rounds < r.target && !r.watchdog_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_false(r.watchdog_fired);
    assert_int_equal(r.rounds, r.target);
    uv_close((uv_handle_t *)&r.wd, NULL);
    uv_timer_start(&fx->ticker, on_tick, TICK_MS, TICK_MS);
    mesh_uvzmq_close(&r.c);
    mesh_uvzmq_close(&r.w);
    mesh_uvzmq_close(&r.f);
    mesh_uvzmq_close(&r.k);
}

/* ROUTER with one peer that does not read and one that does: a parked message
 * for the stuck peer holds later ones back (one FIFO keeps order), the loop
 * keeps running (no spin on POLLOUT from the other peer's free pipe), and
 * everything goes out in order once the stuck peer reads. */
typedef struct {
    void *a, *b;
    uint32_t got_a, bad_a;
    int got_b;
} two_t;

static bool two_done(void *arg)
{
    two_t *t = arg;
    uint32_t v;
    while (zmq_recv(t->a, &v, sizeof(v), ZMQ_DONTWAIT) == (int)sizeof(v)) {
        if (v != t->got_a)
            t->bad_a++;
        t->got_a++;
    }
    char buf[8];
    while (zmq_recv(t->b, buf, sizeof(buf), ZMQ_DONTWAIT) >= 0)
        t->got_b++;
    return t->got_a >= 50 && t->got_b >= 1;
}

static void test_router_blocked_peer(void **state)
{
    fx_t *fx = *state;
    mesh_zsock_opts_t o;
    mesh_zsock_opts_default(&o);
    o.sndhwm = 1;
    mesh_uvzmq_t *s = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_ROUTER, &o, noop_cb, NULL);
    assert_non_null(s);
    assert_int_equal(mesh_uvzmq_bind(s, "inproc://uvzmq-hol"), 0);
    static two_t t;
    memset(&t, 0, sizeof(t));
    int one = 1, zero = 0;
    t.a = zmq_socket(fx->zctx, ZMQ_DEALER);
    t.b = zmq_socket(fx->zctx, ZMQ_DEALER);
    zmq_setsockopt(t.a, ZMQ_RCVHWM, &one, sizeof(one));
    zmq_setsockopt(t.a, ZMQ_ROUTING_ID, "A", 1);
    zmq_setsockopt(t.b, ZMQ_ROUTING_ID, "B", 1);
    zmq_setsockopt(t.a, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(t.b, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_connect(t.a, "inproc://uvzmq-hol"), 0);
    assert_int_equal(zmq_connect(t.b, "inproc://uvzmq-hol"), 0);
    /* inproc peers are attached once the router processed their connect. */
    mesh_frame_t probe[2] = {{"B", 1}, {"hi", 2}};
    uint64_t end = now_ms() + WAIT_MS;
    int rc;
    while ((rc = mesh_uvzmq_send(s, probe, 2)) == MESH_EUNAVAIL && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(rc, 0);
    t.got_b = -1; /* the probe */

    for (uint32_t i = 0; i < 50; i++) {
        mesh_frame_t f[2] = {{"A", 1}, {&i, sizeof(i)}};
        assert_int_equal(mesh_uvzmq_send(s, f, 2), 0);
    }
    assert_true(mesh_uvzmq_parked(s) > 0);
    mesh_frame_t fb[2] = {{"B", 1}, {"late", 4}};
    assert_int_equal(mesh_uvzmq_send(s, fb, 2), 0);
    size_t parked = mesh_uvzmq_parked(s);
    run_iterations(fx, 20); /* must return: no busy loop while A is stuck */
    assert_int_equal(mesh_uvzmq_parked(s), parked);

    assert_true(run_until(fx, two_done, &t, WAIT_MS));
    assert_int_equal(t.got_a, 50);
    assert_int_equal(t.bad_a, 0);
    assert_int_equal(t.got_b, 1);
    assert_int_equal(mesh_uvzmq_parked(s), 0);
    zmq_close(t.a);
    zmq_close(t.b);
    mesh_uvzmq_close(&s);
}

static void test_bad_arguments(void **state)
{
    fx_t *fx = *state;
    assert_null(mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_DEALER, NULL, NULL, NULL));
    assert_null(mesh_uvzmq_new(NULL, fx->zctx, ZMQ_DEALER, NULL, noop_cb, NULL));
    mesh_zsock_opts_t bad = {.linger_ms = -1, .max_msg_size = 1, .sndhwm = 1, .rcvhwm = 1};
    mesh_log_set_level(MESH_LOG_OFF);
    assert_null(mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_DEALER, &bad, noop_cb, NULL));

    mesh_uvzmq_t *s = mesh_uvzmq_new(&fx->loop, fx->zctx, ZMQ_DEALER, NULL, noop_cb, NULL);
    assert_non_null(s);
    assert_int_equal(mesh_uvzmq_bind(s, "nonsense://x"), MESH_EINVAL);
    assert_int_equal(mesh_uvzmq_connect(s, NULL), MESH_EINVAL);
    char longep[MESH_ENDPOINT_MAX + 20];
    memset(longep, 'a', sizeof(longep) - 1);
    longep[sizeof(longep) - 1] = '\0';
    memcpy(longep, "tcp://", 6);
    assert_int_equal(mesh_uvzmq_connect(s, longep), MESH_EINVAL);
    mesh_frame_t f = {"x", 1};
    assert_int_equal(mesh_uvzmq_send(s, &f, 0), MESH_EINVAL);
    assert_int_equal(mesh_uvzmq_send(s, NULL, 1), MESH_EINVAL);
    assert_int_equal(mesh_uvzmq_send(NULL, &f, 1), MESH_EINVAL);
    assert_int_equal(mesh_uvzmq_parked(NULL), 0);
    mesh_log_set_level(MESH_LOG_WARN);
    mesh_uvzmq_close(&s);
    mesh_uvzmq_close(&s); /* NULL now: no-op */
    mesh_uvzmq_close(NULL);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_messages_one_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_and_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_router_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pingpong_no_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_blocking_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_router_blocked_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
