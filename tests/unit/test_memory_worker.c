/*
 * test_memory_worker.c - the memory worker (services/memory/memory_worker.c)
 * between a real redis-server and a stand-in router: a ZeroMQ ROUTER socket
 * in the test that speaks the worker side of the broker protocol.
 *
 * Checks the contract the router relies on: a memory worker is announced
 * (READY) only while Redis answers, withdraws (DISCONNECT) when Redis goes
 * down, announces again when it is back, and answers every REQUEST with one
 * FINAL carrying the op's status. Also: mesh-memory --help lists its
 * variables and a bad value exits 2.
 */
#include <jansson.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <uv.h>
#include <zmq.h>

#include <cmocka.h>

#include "memory_worker.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_proto.h"
#include "mesh_harness.h"

#define T_WAIT_MS  5000
#define T_QUIET_MS 400 /* how long "nothing is announced" is watched */
#define T_POLL_MS  2
#define T_ID_MAX   256
#define T_HELP_MAX 16384

static mh_redis_t *s_redis;

typedef struct {
    int status;
    char err[MESH_ERRMSG_MAX + 1];
    json_t *data;
    bool got;
} final_t;

typedef struct {
    uv_loop_t loop;
    void *zctx;
    void *router;
    char endpoint[MESH_ENDPOINT_MAX];
    memory_worker_t *mw;
    /* what the stand-in router saw */
    int readies, disconnects;
    unsigned char peer[T_ID_MAX]; /* identity of the last READY */
    size_t peer_len;
    char ready_service[MESH_SERVICE_MAX + 1];
    final_t final;
    char want_id[MESH_ID_MAX + 1];
} fx_t;

/* ------------------------------------------------------------ router side */

static void router_send(fx_t *fx, const void *id, size_t id_len, uint8_t cmd, const void *body,
                        size_t body_len)
{
    uint8_t cmd_byte;
    mesh_frame_t frames[4];
    int n = mesh_proto_frames(MESH_SIDE_WORKER, cmd, NULL, body, body_len, &cmd_byte, frames);
    assert_true(n > 0);
    assert_true(zmq_send(fx->router, id, id_len, ZMQ_SNDMORE) >= 0);
    for (int i = 0; i < n; i++)
        assert_true(
            zmq_send(fx->router, frames[i].data, frames[i].size, i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

/* Receive and handle every message waiting on the router socket. */
static void router_drain(fx_t *fx)
{
    for (;;) {
        zmq_msg_t parts[MESH_MAX_FRAMES + 1];
        size_t n = 0;
        int more = 1;
        while (more) {
            zmq_msg_t *m = &parts[n < MESH_MAX_FRAMES ? n : MESH_MAX_FRAMES];
            zmq_msg_init(m);
            if (zmq_msg_recv(m, fx->router, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(m);
                return; /* nothing (more) waiting */
            }
            more = zmq_msg_more(m);
            if (n < MESH_MAX_FRAMES)
                n++;
            else
                zmq_msg_close(m);
        }
        mesh_frame_t frames[MESH_MAX_FRAMES];
        for (size_t i = 1; i < n; i++) {
            frames[i - 1].data = zmq_msg_data(&parts[i]);
            frames[i - 1].size = zmq_msg_size(&parts[i]);
        }
        mesh_proto_msg_t msg;
        assert_int_equal(mesh_proto_decode(frames, n - 1, MESH_SIDE_WORKER, 1 << 20, &msg), 0);
        const void *id = zmq_msg_data(&parts[0]);
        size_t id_len = zmq_msg_size(&parts[0]);
        switch (msg.cmd) {
        case MESH_W_READY:
            fx->readies++;
            assert_true(id_len <= T_ID_MAX);
            memcpy(fx->peer, id, id_len);
            fx->peer_len = id_len;
            snprintf(fx->ready_service, sizeof fx->ready_service, "%.*s", (int)msg.service_len,
                     msg.service);
            break;
        case MESH_W_DISCONNECT:
            fx->disconnects++;
            break;
        case MESH_W_HEARTBEAT:
            router_send(fx, id, id_len, MESH_W_HEARTBEAT, NULL, 0);
            break;
        case MESH_W_FINAL: {
            mesh_reply_t rep;
            assert_int_equal(mesh_reply_decode(msg.body, msg.body_len, &rep), 0);
            if (strcmp(rep.id, fx->want_id) == 0) {
                fx->final.got = true;
                fx->final.status = rep.status;
                snprintf(fx->final.err, sizeof fx->final.err, "%s", rep.err);
                fx->final.data = rep.data;
                rep.data = NULL;
            }
            mesh_reply_clear(&rep);
            break;
        }
        default:
            break;
        }
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
}

typedef bool (*cond_fn)(fx_t *fx);

/* Run the worker's loop and the stand-in router until cond holds (bounded). */
static bool pump_until(fx_t *fx, cond_fn cond, uint64_t timeout_ms)
{
    uint64_t deadline = mh_now_ms() + timeout_ms;
    for (;;) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        router_drain(fx);
        if (cond(fx))
            return true;
        if (mh_now_ms() >= deadline)
            return false;
        zmq_pollitem_t it = {.socket = fx->router, .events = ZMQ_POLLIN};
        zmq_poll(&it, 1, T_POLL_MS);
    }
}

static bool cond_never(fx_t *fx)
{
    (void)fx;
    return false;
}

static bool cond_one_ready(fx_t *fx)
{
    return fx->readies >= 1;
}

static bool cond_two_readies(fx_t *fx)
{
    return fx->readies >= 2;
}

static bool cond_disconnect(fx_t *fx)
{
    return fx->disconnects >= 1;
}

static bool cond_final(fx_t *fx)
{
    return fx->final.got;
}

/* Send a REQUEST to the last announced worker and wait for its FINAL. */
static final_t *request(fx_t *fx, const char *id, const char *op, const char *conv,
                        const char *args_json)
{
    mesh_request_t req;
    memset(&req, 0, sizeof req);
    snprintf(req.id, sizeof req.id, "%s", id);
    snprintf(req.op, sizeof req.op, "%s", op);
    snprintf(req.conv, sizeof req.conv, "%s", conv);
    snprintf(req.tenant, sizeof req.tenant, "%s", MESH_TENANT_DEFAULT);
    req.deadline_ms = T_WAIT_MS;
    json_error_t jerr;
    req.args = args_json != NULL ? json_loads(args_json, 0, &jerr) : NULL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_request_encode(&req, &sb), 0);
    json_decref(fx->final.data);
    memset(&fx->final, 0, sizeof fx->final);
    snprintf(fx->want_id, sizeof fx->want_id, "%s", id);
    router_send(fx, fx->peer, fx->peer_len, MESH_W_REQUEST, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    json_decref(req.args);
    assert_true(pump_until(fx, cond_final, T_WAIT_MS));
    return &fx->final;
}

/* ------------------------------------------------------------ fixture */

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL || uv_loop_init(&fx->loop) != 0)
        return -1;
    fx->zctx = zmq_ctx_new();
    fx->router = zmq_socket(fx->zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(fx->router, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(fx->router, "tcp://127.0.0.1:*") != 0)
        return -1;
    size_t len = sizeof fx->endpoint;
    zmq_getsockopt(fx->router, ZMQ_LAST_ENDPOINT, fx->endpoint, &len);

    memory_worker_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.worker.endpoints[0] = fx->endpoint;
    cfg.worker.n_endpoints = 1;
    cfg.worker.capacity = 8;
    cfg.worker.heartbeat_ms = 100;
    cfg.worker.liveness = 50;
    cfg.worker.reconnect_min_ms = 20;
    cfg.worker.reconnect_max_ms = 200;
    cfg.redis.host = "127.0.0.1";
    cfg.redis.port = mh_redis_port(s_redis);
    cfg.redis.timeout_ms = 1000;
    cfg.redis.reconnect_min_ms = 20;
    cfg.redis.reconnect_max_ms = 100;
    cfg.ops.ttl_s = 3600;
    cfg.ops.history_max = 100;
    fx->mw = memory_worker_new(&fx->loop, fx->zctx, &cfg);
    if (fx->mw == NULL)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    memory_worker_destroy(&fx->mw);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&fx->loop);
    json_decref(fx->final.data);
    zmq_close(fx->router);
    zmq_ctx_term(fx->zctx);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    s_redis = mh_redis_start(0);
    return s_redis != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mh_redis_destroy(&s_redis);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_announced_only_with_redis(void **state)
{
    fx_t *fx = *state;
    assert_true(mh_redis_stop(s_redis) >= 0);
    assert_int_equal(memory_worker_start(fx->mw), 0);
    /* Redis is down: the worker connects to the router but does not announce. */
    pump_until(fx, cond_never, T_QUIET_MS);
    assert_int_equal(fx->readies, 0);
    assert_false(memory_worker_redis_up(fx->mw));

    assert_int_equal(mh_redis_restart(s_redis), 0);
    assert_true(pump_until(fx, cond_one_ready, T_WAIT_MS));
    assert_string_equal(fx->ready_service, "memory");
    assert_true(memory_worker_redis_up(fx->mw));
}

static void test_serves_ops(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(memory_worker_start(fx->mw), 0);
    assert_true(pump_until(fx, cond_one_ready, T_WAIT_MS));

    final_t *f = request(fx, "r1", "turn.begin", "wconv",
                         "{\"message_id\":\"m1\",\"owner\":\"o\",\"text\":\"hello\"}");
    assert_int_equal(f->status, 0);
    assert_true(json_is_false(json_object_get(f->data, "duplicate")));
    assert_int_equal(json_array_size(json_object_get(f->data, "history")), 1);

    f = request(fx, "r2", "turn.end", "wconv",
                "{\"message_id\":\"m1\",\"owner\":\"o\",\"reply\":{\"reply\":\"hi\"},"
                "\"messages\":[{\"role\":\"assistant\",\"text\":\"hi\"}]}");
    assert_int_equal(f->status, 0);

    f = request(fx, "r3", "conv.get", "wconv", NULL);
    assert_int_equal(f->status, 0);
    assert_int_equal(json_integer_value(json_object_get(f->data, "total")), 2);

    f = request(fx, "r4", "memory.wipe", "wconv", "{}");
    assert_int_equal(f->status, MESH_EUNKNOWNOP);

    f = request(fx, "r5", "turn.begin", "wconv", "{\"message_id\":\"m2\",\"owner\":\"o\"}");
    assert_int_equal(f->status, MESH_EPROTO);
    assert_non_null(strstr(f->err, "text"));

    f = request(fx, "r6", "conv.get", "", NULL);
    assert_int_equal(f->status, MESH_EPROTO);
    assert_non_null(strstr(f->err, "conv"));
}

static void test_withdraws_while_redis_down(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(memory_worker_start(fx->mw), 0);
    assert_true(pump_until(fx, cond_one_ready, T_WAIT_MS));

    assert_true(mh_redis_stop(s_redis) >= 0);
    assert_true(pump_until(fx, cond_disconnect, T_WAIT_MS));
    assert_false(memory_worker_redis_up(fx->mw));
    assert_int_equal(fx->readies, 1);

    assert_int_equal(mh_redis_restart(s_redis), 0);
    assert_true(pump_until(fx, cond_two_readies, T_WAIT_MS));
    final_t *f = request(fx, "r1", "conv.get", "nothing-here", NULL);
    assert_int_equal(f->status, MESH_ENOTFOUND);
}

/* ------------------------------------------------------------ the binary */

static char *run_binary(const char *const env[], const char *arg, int *exit_code)
{
    char bin_buf[MH_PATH_MAX];
    const char *bin = mh_bin("memory", bin_buf, sizeof bin_buf);
    char cmd[MH_PATH_MAX * 2];
    size_t n = 0;
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, "%s ", env[i]);
    snprintf(cmd + n, sizeof cmd - n, "%s %s 2>&1", bin, arg);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *out = calloc(1, T_HELP_MAX);
    assert_non_null(out);
    size_t got = fread(out, 1, T_HELP_MAX - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static void test_help_lists_variables(void **state)
{
    (void)state;
    int code;
    char *out = run_binary(NULL, "--help", &code);
    assert_int_equal(code, 0);
    static const char *const vars[] = {
        "MESH_ROUTER_BACKENDS",  "MESH_REDIS_HOST", "MESH_REDIS_PORT",
        "MESH_REDIS_TIMEOUT_MS", "MESH_CONV_TTL_S", "MESH_HISTORY_MAX",
        "MESH_WORKER_CAPACITY",  "MESH_LOG_LEVEL",  "MESH_HEARTBEAT_MS",
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        if (strstr(out, vars[i]) == NULL)
            fail_msg("--help does not list %s:\n%s", vars[i], out);
    }
    free(out);

    const char *bad[] = {"MESH_REDIS_PORT=70000", NULL};
    out = run_binary(bad, "", &code);
    assert_int_equal(code, 2);
    assert_non_null(strstr(out, "MESH_REDIS_PORT"));
    free(out);
}

int main(void)
{
    mesh_log_init("test_memory_worker", MESH_LOG_ERROR);
    if (mh_init("unit_memory_worker") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_announced_only_with_redis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serves_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_withdraws_while_redis_down, setup, teardown),
        cmocka_unit_test(test_help_lists_variables),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
