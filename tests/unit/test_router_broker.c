/*
 * test_router_broker.c - the broker in this process on inproc sockets, with
 * raw DEALER sockets playing clients and workers: forwarding, dispatch by
 * free capacity, queue bound, no-worker wait, deadlines, retry of
 * idempotent requests when a worker dies, replies from the wrong worker,
 * heartbeats, mmi.service and the internal submit API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker.h"
#include "mesh/mesh_log.h"
#include "test_router_util.h"

typedef struct {
    uv_loop_t loop;
    void *zctx;
    router_broker_t *b;
    char front[64], back[64];
    void *socks[8];
    int n_socks;
} fx_t;

static int fx_counter;

static int setup_with(void **state, uint32_t queue_max, uint64_t noworker_ms, uint64_t hb_ms,
                      uint32_t liveness)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    uv_loop_init(&fx->loop);
    fx->zctx = zmq_ctx_new();
    snprintf(fx->front, sizeof(fx->front), "inproc://rb-front-%d", fx_counter);
    snprintf(fx->back, sizeof(fx->back), "inproc://rb-back-%d", fx_counter++);
    router_broker_opts_t o = {.frontend = fx->front,
                              .backend = fx->back,
                              .heartbeat_ms = hb_ms,
                              .liveness = liveness,
                              .queue_max = queue_max,
                              .noworker_ms = noworker_ms};
    mesh_zsock_opts_default(&o.zopts);
    o.zopts.linger_ms = 0;
    fx->b = router_broker_new(&fx->loop, fx->zctx, &o);
    if (!fx->b || router_broker_start(fx->b) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 2, 150, 1000, 3);
}

static int setup_fast_hb(void **state)
{
    return setup_with(state, 16, 2000, 40, 2);
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    for (int i = 0; i < fx->n_socks; i++)
        zmq_close(fx->socks[i]);
    router_broker_destroy(&fx->b);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    zmq_ctx_term(fx->zctx);
    free(fx);
    return 0;
}

static void *client(fx_t *fx)
{
    void *s = rt_dealer(fx->zctx, fx->front);
    fx->socks[fx->n_socks++] = s;
    return s;
}

/* A worker that announced READY and is registered once this returns. */
static void *worker(fx_t *fx, const char *service, uint32_t capacity)
{
    void *s = rt_dealer(fx->zctx, fx->back);
    fx->socks[fx->n_socks++] = s;
    uint32_t before = router_broker_workers(fx->b, service);
    assert_int_equal(rt_worker_ready(s, service, capacity), 0);
    uint64_t end = rt_now_ms() + RT_WAIT_MS;
    while (router_broker_workers(fx->b, service) == before && rt_now_ms() < end)
        rt_spin(&fx->loop, 1);
    assert_int_equal(router_broker_workers(fx->b, service), before + 1);
    return s;
}

static void request(void *c, const char *service, const char *id, uint32_t deadline, bool idem)
{
    json_t *args = json_pack("{s:s}", "k", id);
    assert_int_equal(rt_client_request(c, service, id, "op.x", "conv-1", deadline, idem, args), 0);
    json_decref(args);
}

/* The worker's next REQUEST must have this id. */
static void expect_request(fx_t *fx, void *w, const char *id)
{
    mesh_request_t r;
    if (!rt_worker_next(&fx->loop, w, &r, RT_WAIT_MS))
        fail_msg("worker got no request (wanted %s)", id);
    assert_string_equal(r.id, id);
    mesh_request_clear(&r);
}

static int expect_final(fx_t *fx, void *c, const char *id)
{
    bool final = false;
    mesh_reply_t rep;
    if (!rt_client_next(&fx->loop, c, &final, &rep, RT_WAIT_MS))
        fail_msg("client got no reply (wanted %s)", id);
    assert_true(final);
    assert_string_equal(rep.id, id);
    int status = rep.status;
    mesh_reply_clear(&rep);
    return status;
}

static void expect_nothing(fx_t *fx, void *s, int ms)
{
    rt_msg_t m;
    mesh_proto_msg_t pm;
    if (rt_expect(&fx->loop, s, MESH_SIDE_WORKER, &m, &pm, true, ms)) {
        rt_msg_free(&m);
        fail_msg("unexpected message");
    }
}

static void test_forward_roundtrip(void **state)
{
    fx_t *fx = *state;
    void *w = worker(fx, "tools", 4);
    void *c = client(fx);
    request(c, "tools", "req-1", 5000, false);
    mesh_request_t r;
    assert_true(rt_worker_next(&fx->loop, w, &r, RT_WAIT_MS));
    assert_string_equal(r.id, "req-1");
    assert_string_equal(r.op, "op.x");
    assert_string_equal(r.conv, "conv-1");
    /* The deadline is rewritten to what is left, never more than was given. */
    assert_true(r.deadline_ms <= 5000 && r.deadline_ms > 4000);
    assert_string_equal(json_string_value(json_object_get(r.args, "k")), "req-1");
    mesh_request_clear(&r);
    json_t *delta = json_pack("{s:s}", "delta", "par");
    rt_worker_reply(w, false, "req-1", 0, delta);
    json_decref(delta);
    json_t *data = json_pack("{s:i}", "answer", 42);
    rt_worker_reply(w, true, "req-1", 0, data);
    json_decref(data);
    bool final;
    mesh_reply_t rep;
    assert_true(rt_client_next(&fx->loop, c, &final, &rep, RT_WAIT_MS));
    assert_false(final);
    assert_string_equal(json_string_value(json_object_get(rep.data, "delta")), "par");
    mesh_reply_clear(&rep);
    assert_true(rt_client_next(&fx->loop, c, &final, &rep, RT_WAIT_MS));
    assert_true(final);
    assert_string_equal(rep.id, "req-1");
    assert_int_equal(rep.status, 0);
    assert_int_equal(json_integer_value(json_object_get(rep.data, "answer")), 42);
    mesh_reply_clear(&rep);
    assert_int_equal(router_broker_forwarded(fx->b), 0);
}

static void test_dispatch_by_free_capacity(void **state)
{
    fx_t *fx = *state;
    void *a = worker(fx, "llm", 1);
    void *b = worker(fx, "llm", 3);
    void *c = client(fx);
    /* b: 3 free -> r1; b: 2 free vs a: 1 -> r2; tie 1/1, a least recently used -> r3; b -> r4. */
    const char *ids[] = {"r1", "r2", "r3", "r4"};
    for (int i = 0; i < 4; i++) {
        request(c, "llm", ids[i], 5000, false);
        rt_spin(&fx->loop, 5);
    }
    expect_request(fx, b, "r1");
    expect_request(fx, b, "r2");
    expect_request(fx, a, "r3");
    expect_request(fx, b, "r4");
    /* Everyone is full: r5 waits in the queue. */
    request(c, "llm", "r5", 5000, false);
    expect_nothing(fx, a, 50);
    rt_worker_reply(a, true, "r3", 0, NULL);
    assert_int_equal(expect_final(fx, c, "r3"), 0);
    expect_request(fx, a, "r5"); /* the freed slot takes the queued request */
}

static void test_queue_bound_busy(void **state)
{
    fx_t *fx = *state; /* queue_max 2 */
    void *w = worker(fx, "memory", 1);
    void *c = client(fx);
    request(c, "memory", "q1", 5000, false);
    expect_request(fx, w, "q1");
    request(c, "memory", "q2", 5000, false);
    request(c, "memory", "q3", 5000, false);
    request(c, "memory", "q4", 5000, false);
    assert_int_equal(expect_final(fx, c, "q4"), MESH_EBUSY);
    /* A second request with an id already in flight is refused too. */
    request(c, "memory", "q2", 5000, false);
    assert_int_equal(expect_final(fx, c, "q2"), MESH_EINVAL);
}

static void test_no_worker(void **state)
{
    fx_t *fx = *state; /* noworker 150 ms */
    void *c = client(fx);
    uint64_t t0 = rt_now_ms();
    request(c, "nosuch", "n1", 5000, false);
    assert_int_equal(expect_final(fx, c, "n1"), MESH_ENOWORKER);
    uint64_t dt = rt_now_ms() - t0;
    assert_true(dt >= 140 && dt < 2000);
    /* With a deadline shorter than the no-worker wait, the deadline wins. */
    request(c, "nosuch", "n2", 40, false);
    assert_int_equal(expect_final(fx, c, "n2"), MESH_ETIMEDOUT);
    /* A worker appearing in time takes the waiting request. */
    request(c, "late", "n3", 5000, false);
    rt_spin(&fx->loop, 20);
    void *w = worker(fx, "late", 1);
    expect_request(fx, w, "n3");
}

static void test_deadline_on_busy_worker(void **state)
{
    fx_t *fx = *state;
    void *w = worker(fx, "tools", 1);
    void *c = client(fx);
    /* In flight past its deadline: the client is answered at the deadline. */
    uint64_t t0 = rt_now_ms();
    request(c, "tools", "slow", 150, false);
    expect_request(fx, w, "slow");
    assert_int_equal(expect_final(fx, c, "slow"), MESH_ETIMEDOUT);
    assert_true(rt_now_ms() - t0 >= 140);
    /* The worker is still busy with it: its slot stays taken... */
    request(c, "tools", "next", 5000, false);
    expect_nothing(fx, w, 50);
    /* ...until its late FINAL, which is not forwarded a second time. */
    rt_worker_reply(w, true, "slow", 0, NULL);
    expect_request(fx, w, "next");
    /* Queued behind a busy worker with a short deadline: ETIMEDOUT. */
    t0 = rt_now_ms();
    request(c, "tools", "short", 100, false);
    assert_int_equal(expect_final(fx, c, "short"), MESH_ETIMEDOUT);
    assert_true(rt_now_ms() - t0 >= 90);
    rt_worker_reply(w, true, "next", 0, NULL);
    assert_int_equal(expect_final(fx, c, "next"), 0);
}

static void test_retry_idempotent_on_worker_loss(void **state)
{
    fx_t *fx = *state;
    void *w1 = worker(fx, "tools", 1);
    void *c = client(fx);
    request(c, "tools", "idem-1", 5000, true);
    expect_request(fx, w1, "idem-1");
    request(c, "tools", "plain-1", 5000, false);
    void *w2 = worker(fx, "tools", 1);
    expect_request(fx, w2, "plain-1");
    /* w2 dies with a non-idempotent request: it fails with EUNAVAIL. */
    rt_send(w2, MESH_SIDE_WORKER, MESH_W_DISCONNECT, NULL, NULL, 0);
    assert_int_equal(expect_final(fx, c, "plain-1"), MESH_EUNAVAIL);
    /* w1 dies with an idempotent one: it is retried once on another worker. */
    void *w3 = worker(fx, "tools", 1);
    rt_send(w1, MESH_SIDE_WORKER, MESH_W_DISCONNECT, NULL, NULL, 0);
    expect_request(fx, w3, "idem-1");
    /* The dead worker's late answer is dropped (it is no longer registered: DISCONNECT). */
    rt_worker_reply(w1, true, "idem-1", 0, NULL);
    rt_worker_reply(w3, true, "idem-1", 0, json_true());
    bool final;
    mesh_reply_t rep;
    assert_true(rt_client_next(&fx->loop, c, &final, &rep, RT_WAIT_MS));
    assert_true(final);
    assert_string_equal(rep.id, "idem-1");
    assert_true(json_is_true(rep.data)); /* w3's answer, not w1's */
    mesh_reply_clear(&rep);
    /* Only once: w3 dies too -> EUNAVAIL. */
    request(c, "tools", "idem-2", 5000, true);
    expect_request(fx, w3, "idem-2");
    void *w4 = worker(fx, "tools", 1);
    rt_send(w3, MESH_SIDE_WORKER, MESH_W_DISCONNECT, NULL, NULL, 0);
    expect_request(fx, w4, "idem-2");
    rt_send(w4, MESH_SIDE_WORKER, MESH_W_DISCONNECT, NULL, NULL, 0);
    assert_int_equal(expect_final(fx, c, "idem-2"), MESH_EUNAVAIL);
}

static void test_reply_from_wrong_worker(void **state)
{
    fx_t *fx = *state;
    void *w1 = worker(fx, "llm", 1);
    void *w2 = worker(fx, "llm", 1);
    void *c = client(fx);
    request(c, "llm", "x1", 5000, false);
    rt_spin(&fx->loop, 5);
    /* One of the two has it; the other claims to answer it. */
    mesh_request_t r;
    void *owner = NULL, *other = NULL;
    if (rt_worker_next(&fx->loop, w1, &r, 200)) {
        owner = w1;
        other = w2;
    } else {
        assert_true(rt_worker_next(&fx->loop, w2, &r, RT_WAIT_MS));
        owner = w2;
        other = w1;
    }
    mesh_request_clear(&r);
    rt_worker_reply(other, true, "x1", MESH_EIO, NULL);
    bool final;
    mesh_reply_t rep;
    assert_false(rt_client_next(&fx->loop, c, &final, &rep, 50));
    rt_worker_reply(owner, true, "x1", 0, NULL);
    assert_int_equal(expect_final(fx, c, "x1"), 0);
}

static void test_mmi_service(void **state)
{
    fx_t *fx = *state;
    void *c = client(fx);
    json_t *args = json_pack("{s:s}", "service", "memory");
    rt_client_request(c, "mmi.service", "m1", "lookup", NULL, 1000, false, args);
    assert_int_equal(expect_final(fx, c, "m1"), MESH_ENOTFOUND);
    worker(fx, "memory", 2);
    rt_client_request(c, "mmi.service", "m2", "lookup", NULL, 1000, false, args);
    bool final;
    mesh_reply_t rep;
    assert_true(rt_client_next(&fx->loop, c, &final, &rep, RT_WAIT_MS));
    assert_int_equal(rep.status, 0);
    assert_string_equal(json_string_value(json_object_get(rep.data, "service")), "memory");
    assert_int_equal(json_integer_value(json_object_get(rep.data, "workers")), 1);
    mesh_reply_clear(&rep);
    rt_client_request(c, "mmi.other", "m3", "lookup", NULL, 1000, false, args);
    assert_int_equal(expect_final(fx, c, "m3"), MESH_EUNKNOWNOP);
    /* Draining: new requests are refused with EUNAVAIL. */
    router_broker_set_draining(fx->b, true);
    rt_client_request(c, "memory", "m4", "x", NULL, 1000, false, args);
    assert_int_equal(expect_final(fx, c, "m4"), MESH_EUNAVAIL);
    json_decref(args);
}

static void test_heartbeat_expiry_retries(void **state)
{
    fx_t *fx = *state; /* heartbeat 40 ms, liveness 2 */
    void *w1 = worker(fx, "tools", 1);
    void *c = client(fx);
    /* The router heartbeats an idle worker. */
    rt_msg_t m;
    mesh_proto_msg_t pm;
    assert_true(rt_expect(&fx->loop, w1, MESH_SIDE_WORKER, &m, &pm, false, RT_WAIT_MS));
    assert_int_equal(pm.cmd, MESH_W_HEARTBEAT);
    rt_msg_free(&m);
    request(c, "tools", "hb-1", 5000, true);
    expect_request(fx, w1, "hb-1");
    void *w2 = worker(fx, "tools", 1);
    /* w1 goes silent, w2 keeps heartbeating: w1 is declared dead and hb-1 moves to w2. */
    uint64_t end = rt_now_ms() + RT_WAIT_MS;
    bool moved = false;
    while (!moved && rt_now_ms() < end) {
        rt_send(w2, MESH_SIDE_WORKER, MESH_W_HEARTBEAT, NULL, NULL, 0);
        mesh_request_t r;
        if (rt_worker_next(&fx->loop, w2, &r, 20)) {
            assert_string_equal(r.id, "hb-1");
            mesh_request_clear(&r);
            moved = true;
        }
    }
    assert_true(moved);
    assert_int_equal(router_broker_workers(fx->b, "tools"), 1);
    /* The dead worker talks again: unknown now, so it is told to DISCONNECT. */
    rt_send(w1, MESH_SIDE_WORKER, MESH_W_HEARTBEAT, NULL, NULL, 0);
    bool got_disconnect = false;
    end = rt_now_ms() + RT_WAIT_MS;
    while (!got_disconnect && rt_now_ms() < end &&
           rt_expect(&fx->loop, w1, MESH_SIDE_WORKER, &m, &pm, true, 200)) {
        got_disconnect = pm.cmd == MESH_W_DISCONNECT;
        rt_msg_free(&m);
    }
    assert_true(got_disconnect);
}

/* ---- the internal API used by the agent loop ---- */

typedef struct {
    int partials, finals, retries;
    int status;
    char last_delta[32];
} cb_rec_t;

static void rec_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg)
{
    cb_rec_t *r = arg;
    if (kind == ROUTER_REPLY_RETRY) {
        r->retries++;
        return;
    }
    if (kind == ROUTER_REPLY_PARTIAL) {
        r->partials++;
        snprintf(r->last_delta, sizeof(r->last_delta), "%s",
                 json_string_value(json_object_get(rep->data, "delta")));
        return;
    }
    r->finals++;
    r->status = rep->status;
}

static mesh_request_t internal_req(const char *id, uint32_t deadline, bool idem)
{
    mesh_request_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.op, sizeof(r.op), "llm.chat");
    snprintf(r.conv, sizeof(r.conv), "c1");
    r.deadline_ms = deadline;
    r.idem = idem;
    r.args = json_object();
    return r;
}

static void test_submit_api(void **state)
{
    fx_t *fx = *state;
    void *w = worker(fx, "llm", 2);
    cb_rec_t rec = {0};
    mesh_request_t r = internal_req("int-1", 5000, true);
    assert_int_equal(router_broker_submit(fx->b, "llm", &r, rec_cb, &rec), 0);
    assert_null(r.args); /* taken */
    /* Never called back from inside submit. */
    assert_int_equal(rec.finals + rec.partials, 0);
    /* Reserved and invalid services are refused without a callback. */
    mesh_request_t bad = internal_req("int-bad", 5000, true);
    assert_int_equal(router_broker_submit(fx->b, "mmi.service", &bad, rec_cb, &rec), MESH_EINVAL);
    assert_int_equal(router_broker_submit(fx->b, "agent", &bad, rec_cb, &rec), MESH_EINVAL);
    assert_int_equal(router_broker_submit(fx->b, "llm", &bad, rec_cb, NULL), 0);
    mesh_request_t dup = internal_req("int-bad", 5000, true);
    assert_int_equal(router_broker_submit(fx->b, "llm", &dup, rec_cb, &rec), MESH_EINVAL);
    mesh_request_clear(&dup);
    router_broker_cancel(fx->b, "int-bad");
    expect_request(fx, w, "int-1");
    json_t *d = json_pack("{s:s}", "delta", "hi");
    rt_worker_reply(w, false, "int-1", 0, d);
    json_decref(d);
    rt_worker_reply(w, true, "int-1", 0, NULL);
    uint64_t end = rt_now_ms() + RT_WAIT_MS;
    while (rec.finals == 0 && rt_now_ms() < end)
        rt_spin(&fx->loop, 1);
    assert_int_equal(rec.partials, 1);
    assert_string_equal(rec.last_delta, "hi");
    assert_int_equal(rec.finals, 1);
    assert_int_equal(rec.status, 0);

    /* Cancelled while in flight: no callback, even when the FINAL comes. */
    cb_rec_t rec2 = {0};
    mesh_request_t r2 = internal_req("int-2", 5000, true);
    assert_int_equal(router_broker_submit(fx->b, "llm", &r2, rec_cb, &rec2), 0);
    mesh_request_t got;
    assert_true(rt_worker_next(&fx->loop, w, &got, RT_WAIT_MS));
    mesh_request_clear(&got);
    router_broker_cancel(fx->b, "int-2");
    router_broker_cancel(fx->b, "int-2"); /* stale: no-op */
    rt_worker_reply(w, true, "int-2", 0, NULL);
    rt_spin(&fx->loop, 30);
    assert_int_equal(rec2.finals + rec2.partials, 0);

    /* In flight past its deadline: the callback gets ETIMEDOUT; the late FINAL is dropped. */
    cb_rec_t rec4 = {0};
    mesh_request_t r4 = internal_req("int-4", 60, true);
    assert_int_equal(router_broker_submit(fx->b, "llm", &r4, rec_cb, &rec4), 0);
    assert_true(rt_worker_next(&fx->loop, w, &got, RT_WAIT_MS));
    assert_string_equal(got.id, "int-4");
    mesh_request_clear(&got);
    end = rt_now_ms() + RT_WAIT_MS;
    while (rec4.finals == 0 && rt_now_ms() < end)
        rt_spin(&fx->loop, 1);
    assert_int_equal(rec4.finals, 1);
    assert_int_equal(rec4.status, MESH_ETIMEDOUT);
    rt_worker_reply(w, true, "int-4", 0, NULL);
    rt_spin(&fx->loop, 20);
    assert_int_equal(rec4.finals, 1);

    /* A worker loss during an idempotent request: RETRY, then the FINAL from the new worker. */
    cb_rec_t rec3 = {0};
    mesh_request_t r3 = internal_req("int-3", 5000, true);
    assert_int_equal(router_broker_submit(fx->b, "llm", &r3, rec_cb, &rec3), 0);
    assert_true(rt_worker_next(&fx->loop, w, &got, RT_WAIT_MS));
    mesh_request_clear(&got);
    void *w2 = worker(fx, "llm", 1);
    rt_send(w, MESH_SIDE_WORKER, MESH_W_DISCONNECT, NULL, NULL, 0);
    expect_request(fx, w2, "int-3");
    assert_int_equal(rec3.retries, 1);
    rt_worker_reply(w2, true, "int-3", 0, NULL);
    end = rt_now_ms() + RT_WAIT_MS;
    while (rec3.finals == 0 && rt_now_ms() < end)
        rt_spin(&fx->loop, 1);
    assert_int_equal(rec3.finals, 1);
}

/* ---- CANCEL ------------------------------------------------------------------ */

static void client_cancel(void *c, const char *service, const char *id)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_cancel_encode(id, &sb), 0);
    assert_int_equal(rt_send(c, MESH_SIDE_CLIENT, MESH_C_CANCEL, service, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* The worker's next message must be a CANCEL for id. */
static void expect_worker_cancel(fx_t *fx, void *w, const char *id)
{
    rt_msg_t m;
    mesh_proto_msg_t pm;
    if (!rt_expect(&fx->loop, w, MESH_SIDE_WORKER, &m, &pm, true, RT_WAIT_MS))
        fail_msg("worker got nothing (wanted CANCEL %s)", id);
    assert_int_equal(pm.cmd, MESH_W_CANCEL);
    char got[MESH_ID_MAX + 1];
    assert_int_equal(mesh_cancel_decode(pm.body, pm.body_len, got), 0);
    assert_string_equal(got, id);
    rt_msg_free(&m);
}

/* A client's CANCEL: a request at a worker gets a worker CANCEL and no FINAL
 * reaches the client; the slot is held until the worker's FINAL; a queued
 * request is dropped before any worker sees it; another client cannot
 * cancel someone else's request. */
static void test_client_cancel(void **state)
{
    fx_t *fx = *state;
    void *w = worker(fx, "llm", 1);
    void *c = client(fx);
    void *other = client(fx);
    request(c, "llm", "cx-1", 5000, false);
    expect_request(fx, w, "cx-1");
    request(c, "llm", "cx-2", 5000, false); /* queued: the worker is full */
    rt_spin(&fx->loop, 20);
    assert_int_equal(router_broker_forwarded(fx->b), 2);

    client_cancel(other, "llm", "cx-1"); /* not its request: ignored */
    client_cancel(c, "llm", "cx-2");     /* queued: dropped */
    client_cancel(c, "llm", "cx-1");     /* at the worker: CANCEL sent */
    expect_worker_cancel(fx, w, "cx-1");
    assert_int_equal(router_broker_forwarded(fx->b), 0);

    /* The worker stops and sends its data-less FINAL: nothing is relayed, and
     * the freed slot does not run the dropped cx-2. */
    rt_worker_reply(w, true, "cx-1", MESH_ECANCELED, NULL);
    expect_nothing(fx, c, 100);
    expect_nothing(fx, other, 20);
    expect_nothing(fx, w, 20);

    /* The worker is free again: a new request runs at once. */
    request(c, "llm", "cx-3", 5000, false);
    expect_request(fx, w, "cx-3");
    rt_worker_reply(w, true, "cx-3", 0, NULL);
    assert_int_equal(expect_final(fx, c, "cx-3"), 0);

    /* CANCEL for unknown ids, for mmi, or with a malformed body: nothing happens. */
    client_cancel(c, "llm", "never-sent");
    client_cancel(c, "mmi.service", "x");
    const uint8_t junk[] = {0x81, 0xa1, 'v', 0x01};
    assert_int_equal(rt_send(c, MESH_SIDE_CLIENT, MESH_C_CANCEL, "llm", junk, sizeof(junk)), 0);
    expect_nothing(fx, c, 50);
    expect_nothing(fx, w, 20);
}

/* router_broker_cancel of a submitted request at a worker sends the worker CANCEL. */
static void test_submit_cancel_sends_worker_cancel(void **state)
{
    fx_t *fx = *state;
    void *w = worker(fx, "llm", 1);
    cb_rec_t rec = {0};
    mesh_request_t r = internal_req("int-c1", 5000, false);
    assert_int_equal(router_broker_submit(fx->b, "llm", &r, rec_cb, &rec), 0);
    expect_request(fx, w, "int-c1");
    router_broker_cancel(fx->b, "int-c1");
    expect_worker_cancel(fx, w, "int-c1");
    rt_worker_reply(w, true, "int-c1", MESH_ECANCELED, NULL);
    rt_spin(&fx->loop, 20);
    assert_int_equal(rec.finals + rec.partials, 0);
    /* The slot was freed by that FINAL (not by the orphan grace). */
    mesh_request_t r2 = internal_req("int-c2", 5000, false);
    cb_rec_t rec2 = {0};
    assert_int_equal(router_broker_submit(fx->b, "llm", &r2, rec_cb, &rec2), 0);
    expect_request(fx, w, "int-c2");
    /* A queued submitted request is dropped without a worker CANCEL. */
    mesh_request_t r3 = internal_req("int-c3", 5000, false);
    cb_rec_t rec3 = {0};
    assert_int_equal(router_broker_submit(fx->b, "llm", &r3, rec_cb, &rec3), 0);
    rt_spin(&fx->loop, 10);
    router_broker_cancel(fx->b, "int-c3");
    rt_worker_reply(w, true, "int-c2", 0, NULL);
    rt_spin(&fx->loop, 20);
    assert_int_equal(rec2.finals, 1);
    expect_nothing(fx, w, 50);
    assert_int_equal(rec3.finals, 0);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forward_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_by_free_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_on_busy_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_idempotent_on_worker_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_from_wrong_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmi_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_expiry_retries, setup_fast_hb, teardown),
        cmocka_unit_test_setup_teardown(test_submit_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_cancel_sends_worker_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
