/*
 * test_client.c - mesh_client against fake routers: raw ZeroMQ ROUTER sockets
 * on tcp://127.0.0.1:<ephemeral> that answer HEARTBEATs (unless told to go
 * silent) and queue everything else for the test to inspect and answer.
 *
 * Reconnects wait 10..40 ms. The failover test uses heartbeat 20 ms; the
 * others use 1 s so that a loaded machine (sanitizer builds, parallel ctest)
 * cannot make a healthy fake router look dead. Every wait is a bounded
 * loop on a condition: uv_run(UV_RUN_ONCE) under a 2 ms ticker, the fakes
 * polled with ZMQ_DONTWAIT between iterations.
 */
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zmq.h>

#include <cmocka.h>

#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_proto.h"

#define TICK_MS    2
#define WAIT_MS    3000
#define HB_MS      20
#define LIVENESS   3
#define HB_SLOW_MS 1000 /* tests that are not about liveness */
#define PEER_MAX   256
#define NFAKES     2

/* ---- fake routers -------------------------------------------------------- */

typedef struct {
    unsigned char peer[PEER_MAX];
    size_t peer_len;
    uint8_t cmd;
    char service[MESH_SERVICE_MAX + 1];
    mesh_request_t req; /* decoded REQUEST body */
} fmsg_t;

typedef struct {
    void *sock;
    char ep[MESH_ENDPOINT_MAX];
    bool silent; /* read and drop everything, answer nothing */
    int hb_seen;
    unsigned char last_peer[PEER_MAX];
    size_t last_peer_len;
    fmsg_t *q;
    size_t qhead, qlen, qcap;
    int cancels;                     /* CANCEL messages received */
    char cancel_id[MESH_ID_MAX + 1]; /* id of the last CANCEL */
    char cancel_svc[MESH_SERVICE_MAX + 1];
} fake_t;

typedef struct {
    uv_loop_t loop;
    uv_timer_t ticker;
    void *zctx;
    fake_t fakes[NFAKES];
    mesh_client_t *c;
    mesh_client_opts_t opts;
} fx_t;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void fake_send(fake_t *f, const unsigned char *peer, size_t peer_len, uint8_t cmd,
                      const char *service, const void *body, size_t len)
{
    uint8_t c = cmd;
    assert_true(zmq_send(f->sock, peer, peer_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->sock, MESH_PROTO_CLIENT, MESH_PROTO_SIG_LEN, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->sock, &c, 1, service ? ZMQ_SNDMORE : 0) >= 0);
    if (service) {
        assert_true(zmq_send(f->sock, service, strlen(service), ZMQ_SNDMORE) >= 0);
        assert_true(zmq_send(f->sock, body, len, 0) >= 0);
    }
}

static void fake_reply(fake_t *f, const fmsg_t *to, uint8_t cmd, int status, json_t *data)
{
    mesh_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    strcpy(rep.id, to->req.id);
    rep.status = status;
    rep.data = data;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_reply_encode(&rep, &sb), 0);
    fake_send(f, to->peer, to->peer_len, cmd, to->service, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void fake_poll(fake_t *f)
{
    for (;;) {
        zmq_msg_t fr[MESH_MAX_FRAMES];
        size_t n = 0;
        int more = 1;
        while (more) {
            assert_true(n < MESH_MAX_FRAMES);
            zmq_msg_init(&fr[n]);
            if (zmq_msg_recv(&fr[n], f->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&fr[n]);
                assert_int_equal(n, 0);
                return;
            }
            more = zmq_msg_more(&fr[n]);
            n++;
        }
        if (!f->silent) {
            assert_true(n >= 3);
            assert_true(zmq_msg_size(&fr[0]) <= PEER_MAX);
            uint8_t cmd = *(uint8_t *)zmq_msg_data(&fr[2]);
            memcpy(f->last_peer, zmq_msg_data(&fr[0]), zmq_msg_size(&fr[0]));
            f->last_peer_len = zmq_msg_size(&fr[0]);
            if (cmd == MESH_C_HEARTBEAT) {
                f->hb_seen++;
                fake_send(f, f->last_peer, f->last_peer_len, MESH_C_HEARTBEAT, NULL, NULL, 0);
            } else if (cmd == MESH_C_CANCEL) {
                assert_int_equal(n, 5);
                size_t sl = zmq_msg_size(&fr[3]);
                assert_true(sl <= MESH_SERVICE_MAX);
                memcpy(f->cancel_svc, zmq_msg_data(&fr[3]), sl);
                f->cancel_svc[sl] = '\0';
                assert_int_equal(
                    mesh_cancel_decode(zmq_msg_data(&fr[4]), zmq_msg_size(&fr[4]), f->cancel_id),
                    0);
                f->cancels++;
            } else {
                assert_int_equal(cmd, MESH_C_REQUEST);
                assert_int_equal(n, 5);
                if (f->qlen == f->qcap) {
                    /* Grow the ring: re-linearise into a bigger array. */
                    size_t cap = f->qcap ? f->qcap * 2 : 64;
                    fmsg_t *nq = malloc(cap * sizeof(*nq));
                    assert_non_null(nq);
                    for (size_t i = 0; i < f->qlen; i++)
                        nq[i] = f->q[(f->qhead + i) % f->qcap];
                    free(f->q);
                    f->q = nq;
                    f->qhead = 0;
                    f->qcap = cap;
                }
                fmsg_t *m = &f->q[(f->qhead + f->qlen) % f->qcap];
                memset(m, 0, sizeof(*m));
                memcpy(m->peer, f->last_peer, f->last_peer_len);
                m->peer_len = f->last_peer_len;
                m->cmd = cmd;
                size_t sl = zmq_msg_size(&fr[3]);
                assert_true(sl <= MESH_SERVICE_MAX);
                memcpy(m->service, zmq_msg_data(&fr[3]), sl);
                assert_int_equal(
                    mesh_request_decode(zmq_msg_data(&fr[4]), zmq_msg_size(&fr[4]), &m->req), 0);
                f->qlen++;
            }
        }
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&fr[i]);
    }
}

/* Pop the oldest queued request (caller clears m->req). false when empty. */
static bool fake_pop(fake_t *f, fmsg_t *m)
{
    if (!f->qlen)
        return false;
    *m = f->q[f->qhead];
    f->qhead = (f->qhead + 1) % f->qcap;
    f->qlen--;
    return true;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static bool run_until(fx_t *fx, bool (*cond)(void *), void *arg, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        for (int i = 0; i < NFAKES; i++)
            fake_poll(&fx->fakes[i]);
        if (cond(arg))
            return true;
        if (now_ms() >= end)
            return false;
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
}

typedef struct {
    fx_t *fx;
    int want;
} alive_t;

static bool alive_reached(void *arg)
{
    alive_t *a = arg;
    return mesh_client_routers_alive(a->fx->c) == a->want;
}

static bool fake_has(void *arg)
{
    return ((fake_t *)arg)->qlen > 0;
}

/* Wait for the next request at fake k. */
static void expect_request(fx_t *fx, int k, fmsg_t *m)
{
    assert_true(run_until(fx, fake_has, &fx->fakes[k], WAIT_MS));
    assert_true(fake_pop(&fx->fakes[k], m));
}

/* Run until the fakes hold want requests between them. */
static bool pump_total(fx_t *fx, size_t want)
{
    uint64_t end = now_ms() + WAIT_MS;
    for (;;) {
        for (int i = 0; i < NFAKES; i++)
            fake_poll(&fx->fakes[i]);
        if (fx->fakes[0].qlen + fx->fakes[1].qlen >= want)
            return true;
        if (now_ms() >= end)
            return false;
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
}

/* ---- callback recorder ---------------------------------------------------- */

typedef struct {
    int partials;
    int finals;
    int status;
    char id[MESH_ID_MAX + 1];
    char last_delta[64];
    char reply[64];
    uint64_t at;
    int order; /* global completion order */
} rec_t;

static int g_order;

static void rec_cb(mesh_client_t *c, bool final, const mesh_reply_t *rep, void *arg)
{
    rec_t *r = arg;
    strcpy(r->id, rep->id);
    if (!final) {
        r->partials++;
        const char *d = json_string_value(json_object_get(rep->data, "delta"));
        snprintf(r->last_delta, sizeof(r->last_delta), "%s", d ? d : "");
        return;
    }
    r->finals++;
    r->status = rep->status;
    r->at = now_ms();
    r->order = g_order++;
    const char *s = json_string_value(json_object_get(rep->data, "reply"));
    snprintf(r->reply, sizeof(r->reply), "%s", s ? s : "");
}

static bool rec_final(void *arg)
{
    return ((rec_t *)arg)->finals > 0;
}

/* ---- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
    static fx_t fx;
    memset(&fx, 0, sizeof(fx));
    g_order = 0;
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    uv_timer_init(&fx.loop, &fx.ticker);
    uv_timer_start(&fx.ticker, on_tick, TICK_MS, TICK_MS);
    fx.zctx = zmq_ctx_new();
    for (int i = 0; i < NFAKES; i++) {
        fake_t *f = &fx.fakes[i];
        f->sock = zmq_socket(fx.zctx, ZMQ_ROUTER);
        int zero = 0;
        zmq_setsockopt(f->sock, ZMQ_LINGER, &zero, sizeof(zero));
        /* A plain ROUTER drops at its HWM: make room for the bulk test. */
        int hwm = 100000;
        zmq_setsockopt(f->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(f->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        assert_int_equal(zmq_bind(f->sock, "tcp://127.0.0.1:*"), 0);
        size_t len = sizeof(f->ep);
        assert_int_equal(zmq_getsockopt(f->sock, ZMQ_LAST_ENDPOINT, f->ep, &len), 0);
        fx.opts.endpoints[i] = f->ep;
    }
    fx.opts.n_endpoints = 1;
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
    mesh_client_destroy(&fx->c);
    uv_close((uv_handle_t *)&fx->ticker, NULL);
    uint64_t end = now_ms() + WAIT_MS;
    while (uv_loop_alive(&fx->loop) && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    for (int i = 0; i < NFAKES; i++) {
        fmsg_t m;
        while (fake_pop(&fx->fakes[i], &m))
            mesh_request_clear(&m.req);
        free(fx->fakes[i].q);
        zmq_close(fx->fakes[i].sock);
    }
    zmq_ctx_term(fx->zctx);
    return 0;
}

/* Start a client on the first n fakes and wait until all are alive. */
static void start_client(fx_t *fx, int n)
{
    fx->opts.n_endpoints = n;
    fx->c = mesh_client_new(&fx->loop, fx->zctx, &fx->opts);
    assert_non_null(fx->c);
    assert_int_equal(mesh_client_start(fx->c), 0);
    alive_t a = {fx, n};
    assert_true(run_until(fx, alive_reached, &a, WAIT_MS));
}

static void make_req(mesh_request_t *r, const char *id, const char *conv, uint32_t deadline)
{
    memset(r, 0, sizeof(*r));
    if (id)
        strcpy(r->id, id);
    strcpy(r->op, "turn");
    if (conv)
        strcpy(r->conv, conv);
    r->deadline_ms = deadline;
}

/* ---- tests --------------------------------------------------------------- */

/* A request reaches the router with a fresh id; PARTIAL then FINAL reach the callback. */
static void test_request_answered(void **state)
{
    fx_t *fx = *state;
    start_client(fx, 1);
    assert_true(fx->fakes[0].hb_seen >= 1); /* it said hello first */

    mesh_request_t r;
    make_req(&r, NULL, "c1", 5000);
    r.args = json_pack("{s:s}", "text", "hello");
    rec_t rec = {0};
    uint64_t h = 0;
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec, &h), 0);
    json_decref(r.args);
    assert_true(h != 0);
    assert_int_equal(mesh_client_inflight(fx->c), 1);

    fmsg_t m;
    expect_request(fx, 0, &m);
    assert_string_equal(m.service, "agent");
    assert_int_equal(strlen(m.req.id), 32);
    assert_string_equal(m.req.op, "turn");
    assert_string_equal(m.req.conv, "c1");
    assert_true(m.req.deadline_ms <= 5000 && m.req.deadline_ms > 0);
    assert_string_equal(json_string_value(json_object_get(m.req.args, "text")), "hello");

    json_t *d = json_pack("{s:s}", "delta", "hel");
    fake_reply(&fx->fakes[0], &m, MESH_C_PARTIAL, 0, d);
    json_decref(d);
    d = json_pack("{s:s}", "reply", "hello back");
    fake_reply(&fx->fakes[0], &m, MESH_C_FINAL, 0, d);
    json_decref(d);
    assert_true(run_until(fx, rec_final, &rec, WAIT_MS));
    assert_int_equal(rec.partials, 1);
    assert_string_equal(rec.last_delta, "hel");
    assert_int_equal(rec.finals, 1);
    assert_int_equal(rec.status, 0);
    assert_string_equal(rec.reply, "hello back");
    assert_string_equal(rec.id, m.req.id);
    assert_int_equal(mesh_client_inflight(fx->c), 0);

    /* The same id twice in flight is refused. */
    make_req(&r, "dup-1", NULL, 5000);
    rec_t r1 = {0}, r2 = {0};
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &r1, NULL), 0);
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &r2, NULL), MESH_EINVAL);
    assert_int_equal(mesh_client_request(fx->c, "Bad Svc", &r, rec_cb, &r2, NULL), MESH_EINVAL);
    r.deadline_ms = 0;
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &r2, NULL), MESH_EINVAL);
    mesh_request_clear(&m.req);
    /* Callbacks point into this frame: fail what is left while it lives. */
    mesh_client_destroy(&fx->c);
}

/* No FINAL by the deadline: ETIMEDOUT; a FINAL arriving later is ignored. */
static void test_deadline_then_late_final(void **state)
{
    fx_t *fx = *state;
    start_client(fx, 1);
    mesh_request_t r;
    make_req(&r, "late-1", NULL, 30);
    rec_t rec = {0};
    uint64_t t0 = now_ms();
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec, NULL), 0);
    fmsg_t m;
    expect_request(fx, 0, &m);
    assert_true(run_until(fx, rec_final, &rec, WAIT_MS));
    assert_int_equal(rec.status, MESH_ETIMEDOUT);
    assert_string_equal(rec.id, "late-1");
    assert_true(rec.at - t0 >= 30);
    assert_int_equal(mesh_client_inflight(fx->c), 0);

    /* The late FINAL, then a sentinel on the same connection (ordered). */
    fake_reply(&fx->fakes[0], &m, MESH_C_FINAL, 0, NULL);
    mesh_request_clear(&m.req);
    make_req(&r, "sentinel", NULL, 5000);
    rec_t s = {0};
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &s, NULL), 0);
    expect_request(fx, 0, &m);
    fake_reply(&fx->fakes[0], &m, MESH_C_FINAL, 0, NULL);
    mesh_request_clear(&m.req);
    assert_true(run_until(fx, rec_final, &s, WAIT_MS));
    assert_int_equal(rec.finals, 1);
    /* Callbacks point into this frame: fail what is left while it lives. */
    mesh_client_destroy(&fx->c);
}

/* Local deadlines fire in deadline order whatever the submission order. */
static void test_deadline_order(void **state)
{
    fx_t *fx = *state;
    start_client(fx, 1);
    enum { N = 40 };
    static rec_t recs[N];
    memset(recs, 0, sizeof(recs));
    uint32_t dl[N];
    for (int i = 0; i < N; i++) {
        dl[i] = 10 + (uint32_t)((i * 17) % N) * 3;
        mesh_request_t r;
        char id[16];
        snprintf(id, sizeof(id), "o-%d", i);
        make_req(&r, id, NULL, dl[i]);
        assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &recs[i], NULL), 0);
    }
    assert_true(run_until(fx, rec_final, &recs[0], WAIT_MS)); /* something fired */
    for (int i = 0; i < N; i++)
        assert_true(run_until(fx, rec_final, &recs[i], WAIT_MS));
    for (int i = 0; i < N; i++) {
        assert_int_equal(recs[i].finals, 1);
        assert_int_equal(recs[i].status, MESH_ETIMEDOUT);
        for (int j = 0; j < N; j++)
            if (dl[i] < dl[j])
                assert_true(recs[i].order < recs[j].order);
    }
    fmsg_t m;
    while (fake_pop(&fx->fakes[0], &m))
        mesh_request_clear(&m.req);
    /* Callbacks point into this frame: fail what is left while it lives. */
    mesh_client_destroy(&fx->c);
}

/* Two routers: one conversation always lands on the same router; requests
 * without a conversation alternate. */
static void test_two_routers_affinity(void **state)
{
    fx_t *fx = *state;
    start_client(fx, 2);
    rec_t rec[40];
    memset(rec, 0, sizeof(rec));
    for (int i = 0; i < 10; i++) {
        mesh_request_t r;
        make_req(&r, NULL, "conv-A", 5000);
        assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec[i], NULL), 0);
    }
    fmsg_t m;
    assert_true(pump_total(fx, 10));
    int k = fx->fakes[0].qlen ? 0 : 1;
    assert_int_equal(fx->fakes[k].qlen, 10);
    assert_int_equal(fx->fakes[1 - k].qlen, 0);
    while (fake_pop(&fx->fakes[k], &m)) {
        assert_string_equal(m.req.conv, "conv-A");
        mesh_request_clear(&m.req);
    }

    /* Many conversations spread over both routers. */
    for (int i = 0; i < 20; i++) {
        mesh_request_t r;
        char conv[32];
        snprintf(conv, sizeof(conv), "conv-%d", i);
        make_req(&r, NULL, conv, 5000);
        assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec[10 + i], NULL), 0);
    }
    assert_true(pump_total(fx, 20));
    assert_int_equal(fx->fakes[0].qlen + fx->fakes[1].qlen, 20);
    assert_true(fx->fakes[0].qlen > 0 && fx->fakes[1].qlen > 0);
    for (int i = 0; i < NFAKES; i++)
        while (fake_pop(&fx->fakes[i], &m))
            mesh_request_clear(&m.req);

    /* No conversation: round robin. */
    for (int i = 0; i < 4; i++) {
        mesh_request_t r;
        make_req(&r, NULL, NULL, 5000);
        assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec[30 + i], NULL), 0);
    }
    assert_true(pump_total(fx, 4));
    assert_int_equal(fx->fakes[0].qlen, 2);
    assert_int_equal(fx->fakes[1].qlen, 2);
    /* Callbacks point into this frame: fail what is left while it lives. */
    mesh_client_destroy(&fx->c);
}

/* A router that goes silent is declared dead: its in-flight requests complete
 * with EUNAVAIL and the conversation moves to the other router. */
static void test_silent_router_failover(void **state)
{
    fx_t *fx = *state;
    /* Fast heartbeats, but liveness 10: the router that keeps answering must
     * stay alive even if this process is starved for a while. */
    fx->opts.heartbeat_ms = HB_MS;
    fx->opts.liveness = 10;
    start_client(fx, 2);
    mesh_request_t r;
    make_req(&r, NULL, "conv-F", 5000);
    rec_t rec = {0};
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec, NULL), 0);
    assert_true(pump_total(fx, 1));
    int k = fx->fakes[0].qlen ? 0 : 1;
    fmsg_t m;
    assert_true(fake_pop(&fx->fakes[k], &m));
    mesh_request_clear(&m.req);

    mesh_log_set_level(MESH_LOG_ERROR); /* "router silent" warning expected */
    fx->fakes[k].silent = true;
    assert_true(run_until(fx, rec_final, &rec, WAIT_MS));
    mesh_log_set_level(MESH_LOG_WARN);
    assert_int_equal(rec.status, MESH_EUNAVAIL);
    assert_int_equal(mesh_client_routers_alive(fx->c), 1);

    rec_t rec2 = {0};
    make_req(&r, NULL, "conv-F", 5000);
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec2, NULL), 0);
    expect_request(fx, 1 - k, &m);
    assert_string_equal(m.req.conv, "conv-F");
    mesh_request_clear(&m.req);

    /* When it talks again it comes back. */
    fx->fakes[k].silent = false;
    alive_t a = {fx, 2};
    assert_true(run_until(fx, alive_reached, &a, WAIT_MS));
    /* Callbacks point into this frame: fail what is left while it lives. */
    mesh_client_destroy(&fx->c);
}

/* No live router: MESH_ENOWORKER at once, and no callback. */
static void test_no_router(void **state)
{
    fx_t *fx = *state;
    /* Close fake 0 so nothing listens on its port. */
    zmq_close(fx->fakes[0].sock);
    fx->fakes[0].sock = zmq_socket(fx->zctx, ZMQ_ROUTER); /* unbound stand-in */
    fx->opts.n_endpoints = 1;
    fx->c = mesh_client_new(&fx->loop, fx->zctx, &fx->opts);
    assert_non_null(fx->c);
    mesh_request_t r;
    make_req(&r, NULL, "c", 5000);
    rec_t rec = {0};
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec, NULL), MESH_ENOWORKER);
    assert_int_equal(mesh_client_start(fx->c), 0);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(mesh_client_routers_alive(fx->c), 0);
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec, NULL), MESH_ENOWORKER);
    make_req(&r, NULL, NULL, 5000);
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec, NULL), MESH_ENOWORKER);
    assert_int_equal(rec.finals, 0);
    assert_int_equal(mesh_client_inflight(fx->c), 0);
    /* Callbacks point into this frame: fail what is left while it lives. */
    mesh_client_destroy(&fx->c);
}

/* cancel: the callback is never called, even when the FINAL arrives. */
static bool cancel_seen(void *arg)
{
    return ((fake_t *)arg)->cancels > 0;
}

static void test_cancel(void **state)
{
    fx_t *fx = *state;
    start_client(fx, 1);
    mesh_request_t r;
    make_req(&r, "cx-1", NULL, 5000);
    rec_t rec = {0};
    uint64_t h;
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec, &h), 0);
    fmsg_t m;
    expect_request(fx, 0, &m);
    mesh_client_cancel(fx->c, h);
    assert_int_equal(mesh_client_inflight(fx->c), 0);
    mesh_client_cancel(fx->c, h);     /* stale: harmless */
    mesh_client_cancel(fx->c, 0);     /* never a handle */
    mesh_client_cancel(fx->c, ~0ull); /* garbage */
    mesh_client_cancel(NULL, h);
    /* The router got exactly one CANCEL naming the request and its service. */
    assert_true(run_until(fx, cancel_seen, &fx->fakes[0], WAIT_MS));
    assert_int_equal(fx->fakes[0].cancels, 1);
    assert_string_equal(fx->fakes[0].cancel_id, "cx-1");
    assert_string_equal(fx->fakes[0].cancel_svc, "agent");
    fake_reply(&fx->fakes[0], &m, MESH_C_FINAL, 0, NULL);
    mesh_request_clear(&m.req);

    /* The id can be used again after cancel; and a sentinel proves the FINAL was seen. */
    rec_t s = {0};
    make_req(&r, "cx-2", NULL, 5000);
    uint64_t h2;
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &s, &h2), 0);
    mesh_client_cancel(fx->c, h); /* old handle must not hit the new request */
    expect_request(fx, 0, &m);
    fake_reply(&fx->fakes[0], &m, MESH_C_FINAL, 0, NULL);
    mesh_request_clear(&m.req);
    assert_true(run_until(fx, rec_final, &s, WAIT_MS));
    assert_int_equal(rec.finals, 0);
    assert_int_equal(rec.partials, 0);
    /* Callbacks point into this frame: fail what is left while it lives. */
    mesh_client_destroy(&fx->c);
}

/* The router's DISCONNECT: in-flight requests fail EUNAVAIL, the client reconnects. */
static void test_router_disconnect(void **state)
{
    fx_t *fx = *state;
    start_client(fx, 1);
    mesh_request_t r;
    make_req(&r, NULL, "c", 5000);
    rec_t rec = {0};
    assert_int_equal(mesh_client_request(fx->c, "agent", &r, rec_cb, &rec, NULL), 0);
    fmsg_t m;
    expect_request(fx, 0, &m);
    mesh_log_set_level(MESH_LOG_WARN);
    fake_send(&fx->fakes[0], m.peer, m.peer_len, MESH_C_DISCONNECT, NULL, NULL, 0);
    assert_true(run_until(fx, rec_final, &rec, WAIT_MS));
    assert_int_equal(rec.status, MESH_EUNAVAIL);
    alive_t a = {fx, 1};
    assert_true(run_until(fx, alive_reached, &a, WAIT_MS));
    /* New socket, new identity. */
    assert_false(fx->fakes[0].last_peer_len == m.peer_len &&
                 memcmp(fx->fakes[0].last_peer, m.peer, m.peer_len) == 0);
    mesh_request_clear(&m.req);
    /* Callbacks point into this frame: fail what is left while it lives. */
    mesh_client_destroy(&fx->c);
}

static void destroy_cb(mesh_client_t *c, bool final, const mesh_reply_t *rep, void *arg)
{
    rec_cb(c, final, rep, arg);
    /* Calls from inside the destroy are refused, not crashes. */
    mesh_request_t r;
    make_req(&r, NULL, NULL, 100);
    assert_int_equal(mesh_client_request(c, "agent", &r, rec_cb, arg, NULL), MESH_EINVAL);
}

/* Destroy fails what is in flight with ECANCELED. */
static void test_destroy_cancels(void **state)
{
    fx_t *fx = *state;
    start_client(fx, 1);
    rec_t rec[3];
    memset(rec, 0, sizeof(rec));
    for (int i = 0; i < 3; i++) {
        mesh_request_t r;
        make_req(&r, NULL, NULL, 5000);
        assert_int_equal(mesh_client_request(fx->c, "agent", &r, destroy_cb, &rec[i], NULL), 0);
    }
    mesh_client_destroy(&fx->c);
    assert_null(fx->c);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rec[i].finals, 1);
        assert_int_equal(rec[i].status, MESH_ECANCELED);
    }
}

/* Thousands in flight, answered out of order, some cancelled: each callback
 * exactly once, with its own id. */
typedef struct {
    int idx;
    int finals;
    char id[MESH_ID_MAX + 1];
} many_t;

static int g_many_done;

static void many_cb(mesh_client_t *c, bool final, const mesh_reply_t *rep, void *arg)
{
    many_t *m = arg;
    assert_true(final);
    assert_int_equal(rep->status, 0);
    assert_string_equal(rep->id, m->id);
    m->finals++;
    g_many_done++;
}

typedef struct {
    int want;
} many_want_t;

static bool many_reached(void *arg)
{
    return g_many_done >= ((many_want_t *)arg)->want;
}

static bool fake_count(void *arg)
{
    fake_t *f = ((void **)arg)[0];
    size_t want = *(size_t *)((void **)arg)[1];
    return f->qlen >= want;
}

static void test_many_inflight(void **state)
{
    fx_t *fx = *state;
    start_client(fx, 1);
    enum { N = 3000 };
    static many_t ms[N];
    static uint64_t handles[N];
    g_many_done = 0;
    for (int i = 0; i < N; i++) {
        ms[i].idx = i;
        ms[i].finals = 0;
        snprintf(ms[i].id, sizeof(ms[i].id), "m-%d", i);
        mesh_request_t r;
        make_req(&r, ms[i].id, NULL, 20000);
        assert_int_equal(mesh_client_request(fx->c, "agent", &r, many_cb, &ms[i], &handles[i]), 0);
    }
    assert_int_equal(mesh_client_inflight(fx->c), N);
    int cancelled = 0;
    for (int i = 0; i < N; i += 7) {
        mesh_client_cancel(fx->c, handles[i]);
        cancelled++;
    }
    assert_int_equal(mesh_client_inflight(fx->c), N - cancelled);

    size_t want = N;
    void *args[2] = {&fx->fakes[0], &want};
    assert_true(run_until(fx, fake_count, args, WAIT_MS * 3));
    /* Answer newest first. */
    static fmsg_t all[N];
    for (int i = 0; i < N; i++)
        assert_true(fake_pop(&fx->fakes[0], &all[i]));
    for (int i = N - 1; i >= 0; i--) {
        fake_reply(&fx->fakes[0], &all[i], MESH_C_FINAL, 0, NULL);
        mesh_request_clear(&all[i].req);
        if (i % 500 == 0) {
            for (int k = 0; k < 5; k++)
                uv_run(&fx->loop, UV_RUN_NOWAIT);
        }
    }
    many_want_t w = {N - cancelled};
    assert_true(run_until(fx, many_reached, &w, WAIT_MS * 3));
    for (int i = 0; i < N; i++)
        assert_int_equal(ms[i].finals, i % 7 == 0 ? 0 : 1);
    assert_int_equal(mesh_client_inflight(fx->c), 0);
    /* Callbacks point into this frame: fail what is left while it lives. */
    mesh_client_destroy(&fx->c);
}

static void test_bad_options(void **state)
{
    fx_t *fx = *state;
    mesh_log_set_level(MESH_LOG_OFF);
    mesh_client_opts_t o = fx->opts;
    o.n_endpoints = 0;
    assert_null(mesh_client_new(&fx->loop, fx->zctx, &o));
    o = fx->opts;
    o.heartbeat_ms = 0;
    assert_null(mesh_client_new(&fx->loop, fx->zctx, &o));
    o = fx->opts;
    o.endpoints[0] = "nonsense://";
    fx->c = mesh_client_new(&fx->loop, fx->zctx, &o);
    assert_non_null(fx->c);
    assert_int_equal(mesh_client_start(fx->c), MESH_EINVAL);
    mesh_log_set_level(MESH_LOG_WARN);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_then_late_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_routers_affinity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_router_failover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_router, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_router_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
