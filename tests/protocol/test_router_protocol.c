/*
 * test_router_protocol.c - the real mesh-router binary against malformed
 * and out-of-order protocol traffic on both of its sockets.
 *
 * The router runs on free loopback ports (MESH_FRONTEND_BIND/BACKEND_BIND)
 * with the data of MESH_DATA_DIR. Raw DEALER sockets in this test play
 * clients and workers. After every piece of garbage the test checks that
 * the process is alive and still answers a real request (mmi.service), and
 * that it sent DISCONNECT exactly where the protocol says so. Then a fake
 * worker proves the router still serves: forwarding, mmi, no-worker wait,
 * deadlines on a busy worker, the agent path, SIGHUP reload and SIGTERM.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/mesh_mp.h"
#include "mesh_harness.h"
#include "../unit/test_router_util.h"

#define NOWORKER_MS   300
#define HEARTBEAT_MS  200
#define MAX_MSG_BYTES 65536

typedef struct {
    mh_proc_t *router;
    void *zctx;
    char front[64], back[64];
    char data_dir[MH_PATH_MAX];
    int seq;
    void *socks[64]; /* every raw socket a test opened, closed by the teardown */
    int n_socks;
} fx_t;

static fx_t s_fx;

static mh_proc_t *start_router(fx_t *fx, const char *name, const char *data_dir)
{
    char bin[MH_PATH_MAX];
    if (!mh_bin("router", bin, sizeof(bin)))
        return NULL;
    int p1 = mh_free_port(), p2 = mh_free_port();
    snprintf(fx->front, sizeof(fx->front), "tcp://127.0.0.1:%d", p1);
    snprintf(fx->back, sizeof(fx->back), "tcp://127.0.0.1:%d", p2);
    char e_front[96], e_back[96], e_data[MH_PATH_MAX + 32], e_now[64], e_hb[64], e_max[64];
    snprintf(e_front, sizeof(e_front), "MESH_FRONTEND_BIND=%s", fx->front);
    snprintf(e_back, sizeof(e_back), "MESH_BACKEND_BIND=%s", fx->back);
    snprintf(e_data, sizeof(e_data), "MESH_DATA_DIR=%s", data_dir);
    snprintf(e_now, sizeof(e_now), "MESH_NOWORKER_WAIT_MS=%d", NOWORKER_MS);
    snprintf(e_hb, sizeof(e_hb), "MESH_HEARTBEAT_MS=%d", HEARTBEAT_MS);
    snprintf(e_max, sizeof(e_max), "MESH_MAX_MSG_BYTES=%d", MAX_MSG_BYTES);
    const char *env[] = {
        e_front, e_back, e_data, e_now, e_hb, e_max, "MESH_LOG_LEVEL=info", "MESH_DRAIN_MS=2000",
        NULL};
    char *argv[] = {bin, NULL};
    return mh_proc_spawn(name, argv, env);
}

/* The router accepts when a raw DEALER's HEARTBEAT is answered with one. */
static bool wait_accepting(fx_t *fx, mh_proc_t *p)
{
    uint64_t end = mh_now_ms() + 10000;
    while (mh_now_ms() < end && mh_proc_alive(p)) {
        void *s = rt_dealer(fx->zctx, fx->front);
        rt_send(s, MESH_SIDE_CLIENT, MESH_C_HEARTBEAT, NULL, NULL, 0);
        rt_msg_t m;
        mesh_proto_msg_t pm;
        bool ok =
            rt_expect(NULL, s, MESH_SIDE_CLIENT, &m, &pm, false, 300) && pm.cmd == MESH_C_HEARTBEAT;
        if (ok)
            rt_msg_free(&m);
        zmq_close(s);
        if (ok)
            return true;
    }
    return false;
}

static int group_setup(void **state)
{
    fx_t *fx = &s_fx;
    const char *dd = getenv("MESH_DATA_DIR");
    snprintf(fx->data_dir, sizeof(fx->data_dir), "%s", dd ? dd : "data");
    fx->zctx = zmq_ctx_new();
    fx->router = start_router(fx, "router", fx->data_dir);
    if (!fx->router || !wait_accepting(fx, fx->router)) {
        fprintf(stderr, "router did not start; log: %s\n",
                fx->router ? mh_proc_log(fx->router) : "-");
        return -1;
    }
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    fx_t *fx = &s_fx;
    (void)state;
    mh_proc_destroy(&fx->router);
    zmq_ctx_term(fx->zctx);
    return 0;
}

static void *track(fx_t *fx, void *s)
{
    assert_non_null(s);
    assert_true(fx->n_socks < 64);
    fx->socks[fx->n_socks++] = s;
    return s;
}

static void *dealer(fx_t *fx, bool backend)
{
    return track(fx, rt_dealer(fx->zctx, backend ? fx->back : fx->front));
}

/* Close sockets now (an assertion failure leaves them to the teardown). */
static void close_socks(fx_t *fx)
{
    for (int i = 0; i < fx->n_socks; i++)
        zmq_close(fx->socks[i]);
    fx->n_socks = 0;
}

/* Per test: no socket survives, so zmq_ctx_term in the group teardown cannot block. */
static int test_teardown(void **state)
{
    (void)state;
    close_socks(&s_fx);
    return 0;
}

/* One request on sock; the FINAL's status (the test fails when none comes). */
static int call(fx_t *fx, void *sock, const char *service, const char *op, json_t *args,
                uint32_t deadline, json_t **data)
{
    char id[32];
    snprintf(id, sizeof(id), "t-%d", ++fx->seq);
    assert_int_equal(rt_client_request(sock, service, id, op, NULL, deadline, false, args), 0);
    uint64_t end = mh_now_ms() + deadline + 3000;
    while (mh_now_ms() < end) {
        bool final;
        mesh_reply_t rep;
        if (!rt_client_next(NULL, sock, &final, &rep, (int)(end - mh_now_ms())))
            break;
        if (!final || strcmp(rep.id, id) != 0) {
            mesh_reply_clear(&rep);
            continue;
        }
        int status = rep.status;
        if (data) {
            *data = rep.data;
            rep.data = NULL;
        }
        mesh_reply_clear(&rep);
        return status;
    }
    fail_msg("no FINAL for %s %s", service, id);
    return 1;
}

static int mmi(fx_t *fx, void *sock, const char *service)
{
    json_t *args = json_pack("{s:s}", "service", service);
    int rc = call(fx, sock, "mmi.service", "lookup", args, 2000, NULL);
    json_decref(args);
    return rc;
}

/* Alive and serving: the process runs and answers mmi.service on a fresh socket. */
static void assert_serving(fx_t *fx)
{
    assert_true(mh_proc_alive(fx->router));
    void *s = dealer(fx, false);
    assert_int_equal(mmi(fx, s, "nosuch"), MESH_ENOTFOUND);
}

/* Read what the router sent to sock within ms; true if a DISCONNECT was among it. */
static bool got_disconnect(void *sock, mesh_side_t side, int ms)
{
    uint64_t end = mh_now_ms() + (uint64_t)ms;
    uint8_t want = side == MESH_SIDE_WORKER ? MESH_W_DISCONNECT : MESH_C_DISCONNECT;
    while (mh_now_ms() < end) {
        rt_msg_t m;
        mesh_proto_msg_t pm;
        if (!rt_expect(NULL, sock, side, &m, &pm, true, (int)(end - mh_now_ms())))
            return false;
        bool d = pm.cmd == want;
        rt_msg_free(&m);
        if (d)
            return true;
    }
    return false;
}

/* Nothing but heartbeats arrives on sock within ms. */
static bool silent(void *sock, mesh_side_t side, int ms)
{
    rt_msg_t m;
    mesh_proto_msg_t pm;
    if (rt_expect(NULL, sock, side, &m, &pm, true, ms)) {
        rt_msg_free(&m);
        return false;
    }
    return true;
}

static void send_frames(void *s, int n, ...)
{
    const void *data[32];
    size_t size[32];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        data[i] = va_arg(ap, const void *);
        size[i] = va_arg(ap, size_t);
    }
    va_end(ap);
    assert_int_equal(rt_send_raw(s, n, data, size), 0);
}

static void valid_body(msgpack_sbuffer *sb, const char *id)
{
    json_t *args = json_pack("{s:s}", "service", "x");
    rt_request_body(sb, id, "lookup", NULL, 1000, false, args);
    json_decref(args);
}

/*
 * Ping on the same connection: mmi.service must answer, and nothing else
 * (no reply to earlier garbage) may arrive before that answer. The router
 * handles one connection's messages in order, so this proves the garbage
 * sent before was processed without an answer.
 */
static void ping_clean(fx_t *fx, void *sock, const char *what)
{
    char id[32];
    snprintf(id, sizeof(id), "ping-%d", ++fx->seq);
    json_t *args = json_pack("{s:s}", "service", "nosuch");
    assert_int_equal(rt_client_request(sock, "mmi.service", id, "lookup", NULL, 2000, false, args),
                     0);
    json_decref(args);
    rt_msg_t m;
    mesh_proto_msg_t pm;
    if (!rt_expect(NULL, sock, MESH_SIDE_CLIENT, &m, &pm, true, 3000))
        fail_msg("no answer to the ping after %s", what);
    mesh_reply_t rep;
    assert_int_equal(pm.cmd, MESH_C_FINAL);
    assert_int_equal(mesh_reply_decode(pm.body, pm.body_len, &rep), 0);
    rt_msg_free(&m);
    if (strcmp(rep.id, id) != 0)
        fail_msg("unexpected reply %s after %s", rep.id, what);
    assert_int_equal(rep.status, MESH_ENOTFOUND);
    mesh_reply_clear(&rep);
    assert_true(mh_proc_alive(fx->router));
}

typedef struct {
    const char *what;
    int n;
    const void *data[24];
    size_t size[24];
} garbage_t;

static void test_frontend_garbage(void **state)
{
    fx_t *fx = *state;
    void *c = dealer(fx, false);
    static unsigned char rnd[128];
    srand(42);
    for (size_t i = 0; i < sizeof(rnd); i++)
        rnd[i] = (unsigned char)rand();
    static const uint8_t req = MESH_C_REQUEST, bad_cmd = 0x09, partial = MESH_C_PARTIAL,
                         final = MESH_C_FINAL;
    static const char two[2] = {1, 1};
    msgpack_sbuffer sb;
    valid_body(&sb, "g-1");
    const void *B = sb.data;
    size_t BN = sb.size;
    static const uint8_t cancel = MESH_C_CANCEL;
    msgpack_sbuffer csb;
    msgpack_sbuffer_init(&csb);
    assert_int_equal(mesh_cancel_encode("never-sent", &csb), 0);
    const void *CB = csb.data;
    size_t CBN = csb.size;
    garbage_t g[] = {
        {"random bytes", 1, {rnd}, {sizeof(rnd)}},
        {"one empty frame", 1, {""}, {0}},
        {"three empty frames", 3, {"", "", ""}, {0, 0, 0}},
        {"signature only", 1, {MESH_PROTO_CLIENT}, {7}},
        {"wrong signature", 4, {"MESHX01", &req, "tools", B}, {7, 1, 5, BN}},
        {"worker signature", 4, {MESH_PROTO_WORKER, &req, "tools", B}, {7, 1, 5, BN}},
        {"2-byte command", 4, {MESH_PROTO_CLIENT, two, "tools", B}, {7, 2, 5, BN}},
        {"unknown command", 4, {MESH_PROTO_CLIENT, &bad_cmd, "tools", B}, {7, 1, 5, BN}},
        {"bad service name", 4, {MESH_PROTO_CLIENT, &req, "BAD SERVICE", B}, {7, 1, 11, BN}},
        {"empty service", 4, {MESH_PROTO_CLIENT, &req, "", B}, {7, 1, 0, BN}},
        {"truncated msgpack", 4, {MESH_PROTO_CLIENT, &req, "tools", B}, {7, 1, 5, BN - 3}},
        {"empty body", 4, {MESH_PROTO_CLIENT, &req, "tools", ""}, {7, 1, 5, 0}},
        {"REQUEST without body", 3, {MESH_PROTO_CLIENT, &req, "tools"}, {7, 1, 5}},
        {"PARTIAL from a client", 4, {MESH_PROTO_CLIENT, &partial, "tools", B}, {7, 1, 5, BN}},
        {"FINAL from a client", 4, {MESH_PROTO_CLIENT, &final, "tools", B}, {7, 1, 5, BN}},
        {"HEARTBEAT with extra frame", 3, {MESH_PROTO_CLIENT, "\x04", "x"}, {7, 1, 1}},
        /* CANCEL is never answered, whatever it carries */
        {"CANCEL without body", 3, {MESH_PROTO_CLIENT, &cancel, "tools"}, {7, 1, 5}},
        {"CANCEL without service", 3, {MESH_PROTO_CLIENT, &cancel, CB}, {7, 1, CBN}},
        {"CANCEL with a REQUEST body", 4, {MESH_PROTO_CLIENT, &cancel, "tools", B}, {7, 1, 5, BN}},
        {"CANCEL truncated", 4, {MESH_PROTO_CLIENT, &cancel, "tools", CB}, {7, 1, 5, CBN - 2}},
        {"CANCEL for an unknown id", 4, {MESH_PROTO_CLIENT, &cancel, "tools", CB}, {7, 1, 5, CBN}},
        {"CANCEL for an unknown turn",
         4,
         {MESH_PROTO_CLIENT, &cancel, "agent", CB},
         {7, 1, 5, CBN}},
        {"CANCEL for mmi", 4, {MESH_PROTO_CLIENT, &cancel, "mmi.service", CB}, {7, 1, 11, CBN}},
    };
    for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
        assert_int_equal(rt_send_raw(c, g[i].n, g[i].data, g[i].size), 0);
        ping_clean(fx, c, g[i].what);
    }
    /* 20 frames: over MESH_MAX_FRAMES, read to the end and dropped. */
    garbage_t many = {.what = "20 frames", .n = 20};
    for (int i = 0; i < 20; i++) {
        many.data[i] = i % 2 ? (const void *)&req : MESH_PROTO_CLIENT;
        many.size[i] = i % 2 ? 1 : 7;
    }
    assert_int_equal(rt_send_raw(c, many.n, many.data, many.size), 0);
    ping_clean(fx, c, many.what);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&csb);

    /* A well-formed map whose fields are wrong, with a readable id: FINAL EPROTO. */
    json_t *bad = json_pack("{s:i, s:s, s:s}", "v", 1, "id", "bad-fields", "op", "x");
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    mesh_mp_pack_json(&pk, bad);
    json_decref(bad);
    send_frames(c, 4, MESH_PROTO_CLIENT, (size_t)7, &req, (size_t)1, "tools", (size_t)5, sb.data,
                sb.size);
    msgpack_sbuffer_destroy(&sb);
    bool fin;
    mesh_reply_t rep;
    assert_true(rt_client_next(NULL, c, &fin, &rep, 2000));
    assert_true(fin);
    assert_string_equal(rep.id, "bad-fields");
    assert_int_equal(rep.status, MESH_EPROTO);
    mesh_reply_clear(&rep);
    ping_clean(fx, c, "fields with a readable id");

    /* Oversized (above MESH_MAX_MSG_BYTES): ZeroMQ drops that connection; the router lives. */
    size_t big_n = MAX_MSG_BYTES + 1024;
    char *big = calloc(1, big_n);
    send_frames(c, 4, MESH_PROTO_CLIENT, (size_t)7, &req, (size_t)1, "tools", (size_t)5, big,
                big_n);
    free(big);
    assert_serving(fx);
}

/* The worker socket saw nothing (no DISCONNECT, no answer) and the router serves. */
static void backend_clean(fx_t *fx, void *w, void *c, const char *what)
{
    if (!silent(w, MESH_SIDE_WORKER, 30))
        fail_msg("the router answered %s", what);
    ping_clean(fx, c, what);
}

static void wait_registered(fx_t *fx, void *c, const char *service)
{
    uint64_t end = mh_now_ms() + 3000;
    while (mmi(fx, c, service) != 0 && mh_now_ms() < end)
        ;
    assert_int_equal(mmi(fx, c, service), 0);
}

static void test_backend_garbage(void **state)
{
    fx_t *fx = *state;
    void *c = dealer(fx, false);
    msgpack_sbuffer sb;
    valid_body(&sb, "w-1");
    unsigned char rnd[64];
    for (size_t i = 0; i < sizeof(rnd); i++)
        rnd[i] = (unsigned char)(i * 37 + 11);

    /* Invalid shapes are dropped: no record, no answer. */
    void *w = dealer(fx, true);
    send_frames(w, 1, rnd, sizeof(rnd));
    backend_clean(fx, w, c, "random bytes");
    send_frames(w, 1, "", (size_t)0);
    backend_clean(fx, w, c, "an empty frame");
    send_frames(w, 2, MESH_PROTO_WORKER, (size_t)7, "\x01\x02", (size_t)2);
    backend_clean(fx, w, c, "a 2-byte command");
    send_frames(w, 2, MESH_PROTO_WORKER, (size_t)7, "\x09", (size_t)1);
    backend_clean(fx, w, c, "an unknown command");
    send_frames(w, 3, MESH_PROTO_CLIENT, (size_t)7, "\x01", (size_t)1, "tools", (size_t)5);
    backend_clean(fx, w, c, "the client signature");
    send_frames(w, 3, MESH_PROTO_WORKER, (size_t)7, "\x01", (size_t)1, "tools", (size_t)5);
    backend_clean(fx, w, c, "READY without body");
    {
        const void *data[20];
        size_t size[20];
        for (int i = 0; i < 20; i++) {
            data[i] = MESH_PROTO_WORKER;
            size[i] = 7;
        }
        assert_int_equal(rt_send_raw(w, 20, data, size), 0);
        backend_clean(fx, w, c, "20 frames");
    }
    assert_int_equal(mmi(fx, c, "tools"), MESH_ENOTFOUND);

    /* Valid commands from a worker that never sent READY: DISCONNECT. */
    rt_worker_reply(w, false, "w-1", 0, NULL);
    assert_true(got_disconnect(w, MESH_SIDE_WORKER, 2000));
    rt_worker_reply(w, true, "w-1", 0, NULL);
    assert_true(got_disconnect(w, MESH_SIDE_WORKER, 2000));
    rt_send(w, MESH_SIDE_WORKER, MESH_W_HEARTBEAT, NULL, NULL, 0);
    assert_true(got_disconnect(w, MESH_SIDE_WORKER, 2000));
    ping_clean(fx, c, "replies without READY");

    /* READY for an mmi.* service: DISCONNECT and no registration. */
    rt_worker_ready(w, "mmi.foo", 4);
    assert_true(got_disconnect(w, MESH_SIDE_WORKER, 2000));
    assert_int_equal(mmi(fx, c, "mmi.foo"), MESH_ENOTFOUND);

    /* READY with an invalid body (capacity 0, or truncated msgpack): DISCONNECT. */
    msgpack_sbuffer rb;
    msgpack_sbuffer_init(&rb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &rb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    mesh_mp_pack_str(&pk, "v");
    msgpack_pack_uint32(&pk, 1);
    mesh_mp_pack_str(&pk, "capacity");
    msgpack_pack_uint32(&pk, 0);
    rt_send(w, MESH_SIDE_WORKER, MESH_W_READY, "tools", rb.data, rb.size);
    assert_true(got_disconnect(w, MESH_SIDE_WORKER, 2000));
    rt_send(w, MESH_SIDE_WORKER, MESH_W_READY, "tools", rb.data, rb.size - 2);
    assert_true(got_disconnect(w, MESH_SIDE_WORKER, 2000));
    msgpack_sbuffer_destroy(&rb);
    assert_int_equal(mmi(fx, c, "tools"), MESH_ENOTFOUND);

    /* A good READY registers; a second READY gets DISCONNECT and removes the worker. */
    rt_worker_ready(w, "tools", 2);
    wait_registered(fx, c, "tools");
    rt_worker_ready(w, "tools", 2);
    assert_true(got_disconnect(w, MESH_SIDE_WORKER, 2000));
    assert_int_equal(mmi(fx, c, "tools"), MESH_ENOTFOUND);

    /* A REQUEST from a (registered) worker is a protocol violation: DISCONNECT, removed. */
    rt_worker_ready(w, "tools", 2);
    wait_registered(fx, c, "tools");
    rt_send(w, MESH_SIDE_WORKER, MESH_W_REQUEST, NULL, sb.data, sb.size);
    assert_true(got_disconnect(w, MESH_SIDE_WORKER, 2000));
    assert_int_equal(mmi(fx, c, "tools"), MESH_ENOTFOUND);

    /* Broken FINAL bodies and answers to unknown requests from a registered
     * worker are dropped; the worker stays registered. */
    rt_worker_ready(w, "tools", 2);
    wait_registered(fx, c, "tools");
    rt_send(w, MESH_SIDE_WORKER, MESH_W_FINAL, NULL, sb.data, sb.size - 3);
    rt_worker_reply(w, true, "never-sent", 0, NULL);
    backend_clean(fx, w, c, "a bad FINAL from a registered worker");
    assert_int_equal(mmi(fx, c, "tools"), 0);

    rt_send(w, MESH_SIDE_WORKER, MESH_W_DISCONNECT, NULL, NULL, 0);
    /* Oversized on the backend: the connection is dropped by ZeroMQ; the router lives. */
    size_t big_n = MAX_MSG_BYTES + 1024;
    char *big = calloc(1, big_n);
    rt_send(w, MESH_SIDE_WORKER, MESH_W_FINAL, NULL, big, big_n);
    free(big);
    msgpack_sbuffer_destroy(&sb);
    ping_clean(fx, c, "an oversized backend message");
    assert_serving(fx);
}

/* The router still serves after all of that: a fake tools worker gets a forwarded request. */
static void test_forwarding_still_works(void **state)
{
    fx_t *fx = *state;
    void *c = dealer(fx, false);
    void *w = dealer(fx, true);
    rt_worker_ready(w, "tools", 4);
    uint64_t end = mh_now_ms() + 3000;
    while (mmi(fx, c, "tools") != 0 && mh_now_ms() < end)
        ;
    assert_int_equal(mmi(fx, c, "tools"), 0);
    json_t *data = NULL;
    json_t *args = json_pack("{s:s}", "service", "tools");
    assert_int_equal(call(fx, c, "mmi.service", "lookup", args, 2000, &data), 0);
    assert_int_equal(json_integer_value(json_object_get(data, "workers")), 1);
    json_decref(data);
    json_decref(args);

    args = json_pack("{s:s, s:{s:s}}", "name", "policy.lookup", "arguments", "policy_no", "P10023");
    assert_int_equal(
        rt_client_request(c, "tools", "fwd-1", "tool.call", "conv-9", 3000, true, args), 0);
    json_decref(args);
    mesh_request_t r;
    assert_true(rt_worker_next(NULL, w, &r, 3000));
    assert_string_equal(r.id, "fwd-1");
    assert_string_equal(r.op, "tool.call");
    assert_string_equal(r.conv, "conv-9");
    assert_true(r.idem);
    assert_true(r.deadline_ms <= 3000);
    mesh_request_clear(&r);
    json_t *result = json_pack("{s:b, s:{s:s}}", "ok", 1, "result", "status", "active");
    rt_worker_reply(w, true, "fwd-1", 0, result);
    json_decref(result);
    bool final;
    mesh_reply_t rep;
    assert_true(rt_client_next(NULL, c, &final, &rep, 3000));
    assert_true(final);
    assert_string_equal(rep.id, "fwd-1");
    assert_int_equal(rep.status, 0);
    assert_true(json_is_true(json_object_get(rep.data, "ok")));
    mesh_reply_clear(&rep);
    rt_send(w, MESH_SIDE_WORKER, MESH_W_DISCONNECT, NULL, NULL, 0);
}

static void test_no_worker(void **state)
{
    fx_t *fx = *state;
    void *c = dealer(fx, false);
    json_t *args = json_object();
    uint64_t t0 = mh_now_ms();
    assert_int_equal(call(fx, c, "ghost", "x", args, 5000, NULL), MESH_ENOWORKER);
    uint64_t dt = mh_now_ms() - t0;
    assert_true(dt >= NOWORKER_MS - 10);
    assert_true(dt < 5000);
    /* The agent path in the binary: turn.begin needs memory, which has no worker. */
    json_t *turn = json_pack("{s:s, s:s}", "message_id", "m-1", "text", "我的保单保障什么？");
    assert_int_equal(rt_client_request(c, "agent", "turn-1", "turn", "conv-p", 5000, false, turn),
                     0);
    json_decref(turn);
    bool final;
    mesh_reply_t rep;
    assert_true(rt_client_next(NULL, c, &final, &rep, 5000));
    assert_true(final);
    assert_string_equal(rep.id, "turn-1");
    assert_int_equal(rep.status, MESH_ENOWORKER);
    mesh_reply_clear(&rep);
    json_decref(args);
}

static void test_deadline_on_busy_worker(void **state)
{
    fx_t *fx = *state;
    void *c = dealer(fx, false);
    void *w = dealer(fx, true);
    rt_worker_ready(w, "busy", 1);
    uint64_t end = mh_now_ms() + 3000;
    while (mmi(fx, c, "busy") != 0 && mh_now_ms() < end)
        ;
    json_t *args = json_object();
    assert_int_equal(rt_client_request(c, "busy", "long-1", "x", NULL, 5000, false, args), 0);
    mesh_request_t r;
    assert_true(rt_worker_next(NULL, w, &r, 3000));
    mesh_request_clear(&r);
    uint64_t t0 = mh_now_ms();
    assert_int_equal(call(fx, c, "busy", "x", args, 250, NULL), MESH_ETIMEDOUT);
    assert_true(mh_now_ms() - t0 >= 240);
    json_decref(args);
    rt_send(w, MESH_SIDE_WORKER, MESH_W_DISCONNECT, NULL, NULL, 0);
    assert_serving(fx);
}

/* SIGHUP: a broken agent file is refused and the old set kept; a fixed one is loaded.
 * SIGTERM: connected workers get DISCONNECT and the process exits 0. */
static void test_reload_and_shutdown(void **state)
{
    fx_t *fx = *state;
    char dir[MH_PATH_MAX], cmd[4 * MH_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/data-copy", mh_tmpdir());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s'", dir, fx->data_dir, dir);
    assert_int_equal(system(cmd), 0);
    fx_t own = {.zctx = fx->zctx};
    mh_proc_t *p = start_router(&own, "router-reload", dir);
    assert_non_null(p);
    assert_true(wait_accepting(&own, p));
    char agents[MH_PATH_MAX + 16];
    snprintf(agents, sizeof(agents), "%s/agents", dir);
    assert_int_equal(rt_write_file(agents, "broken.json", "{\"name\": \"broken\""), 0);
    size_t mark = mh_log_mark(p);
    mh_proc_signal(p, SIGHUP);
    assert_true(mh_log_wait(p, mark, "reload failed, keeping the current agents", 5000));
    assert_true(mh_log_wait(p, mark, "broken.json", 100));
    assert_int_equal(rt_write_file(agents, "broken.json",
                                   "{\"name\":\"broken\",\"prompt\":{\"zh\":\"a\",\"en\":\"b\"},"
                                   "\"tools\":[],\"tier\":\"small\",\"max_steps\":1,"
                                   "\"fallback\":{\"zh\":\"a\",\"en\":\"b\"}}"),
                     0);
    /* every agent file of the copied data dir, the fixed one included */
    char reloaded[64], ls[2 * MH_PATH_MAX];
    snprintf(ls, sizeof(ls), "ls '%s' | grep -c '\\.json$'", agents);
    FILE *lsp = popen(ls, "r");
    int n_agents = 0;
    assert_non_null(lsp);
    assert_int_equal(fscanf(lsp, "%d", &n_agents), 1);
    pclose(lsp);
    assert_true(n_agents >= 2);
    snprintf(reloaded, sizeof(reloaded), "reloaded %d agents", n_agents);
    mark = mh_log_mark(p);
    mh_proc_signal(p, SIGHUP);
    assert_true(mh_log_wait(p, mark, reloaded, 5000));
    assert_true(mh_proc_alive(p));

    void *w = track(fx, rt_dealer(fx->zctx, own.back));
    rt_worker_ready(w, "tools", 1);
    void *c = track(fx, rt_dealer(fx->zctx, own.front));
    uint64_t end = mh_now_ms() + 3000;
    while (mmi(&own, c, "tools") != 0 && mh_now_ms() < end)
        ;
    assert_int_equal(mmi(&own, c, "tools"), 0);
    mh_proc_signal(p, SIGTERM);
    assert_true(got_disconnect(w, MESH_SIDE_WORKER, 5000));
    assert_int_equal(mh_proc_wait_exit(p, 5000), 0);
    mh_proc_destroy(&p);
}

int main(void)
{
    if (mh_init("router_protocol") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_frontend_garbage, test_teardown),
        cmocka_unit_test_teardown(test_backend_garbage, test_teardown),
        cmocka_unit_test_teardown(test_forwarding_still_works, test_teardown),
        cmocka_unit_test_teardown(test_no_worker, test_teardown),
        cmocka_unit_test_teardown(test_deadline_on_busy_worker, test_teardown),
        cmocka_unit_test_teardown(test_reload_and_shutdown, test_teardown),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
