/*
 * test_tools_worker.c - the mesh-tools binary end to end against a raw
 * ROUTER socket playing the router: READY, tool.call / tool.list answered
 * with the right request id, malformed requests, SIGHUP reload (bad data
 * kept out, good data taken in), SIGTERM exit 0, and a refused start on
 * invalid data that names the file and the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <msgpack.h>
#include <signal.h>
#include <zmq.h>

#include "mesh/mesh.h"
#include "mesh_harness.h"
#include "test_tools_fixture.h"

#define WAIT_MS      10000 /* bound on any single wait */
#define CAPACITY     7     /* announced capacity we configure and expect in READY */
#define IDENTITY_MAX 256

typedef struct {
    void *zctx;
    void *router;
    char endpoint[64];
    char data_dir[FIXTURE_PATH_MAX];
    mh_proc_t *proc;
    char identity[IDENTITY_MAX];
    size_t identity_len;
    int next_id;
} fx_t;

/* Receive one multipart message (at most MESH_MAX_FRAMES + 1 frames) within the deadline. */
static int recv_msg(fx_t *fx, zmq_msg_t *frames, size_t *n, uint64_t deadline)
{
    *n = 0;
    while (mh_now_ms() < deadline) {
        zmq_pollitem_t it = {fx->router, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&it, 1, 100);
        if (rc <= 0)
            continue;
        int more = 1;
        while (more) {
            if (*n == MESH_MAX_FRAMES + 1)
                fail_msg("too many frames");
            zmq_msg_init(&frames[*n]);
            if (zmq_msg_recv(&frames[*n], fx->router, 0) < 0)
                fail_msg("zmq_msg_recv: %s", zmq_strerror(zmq_errno()));
            more = zmq_msg_more(&frames[*n]);
            (*n)++;
        }
        return 0;
    }
    return -1;
}

static void close_frames(zmq_msg_t *frames, size_t n)
{
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
}

/* Wait for a message with worker command cmd (heartbeats are skipped). Frames stay open. */
static void expect_cmd(fx_t *fx, uint8_t cmd, zmq_msg_t *frames, size_t *n)
{
    uint64_t deadline = mh_now_ms() + WAIT_MS;
    for (;;) {
        if (recv_msg(fx, frames, n, deadline) != 0)
            fail_msg("no %s from the worker", mesh_proto_cmd_name(MESH_SIDE_WORKER, cmd));
        assert_true(*n >= 3);
        assert_int_equal(zmq_msg_size(&frames[1]), MESH_PROTO_SIG_LEN);
        assert_memory_equal(zmq_msg_data(&frames[1]), MESH_PROTO_WORKER, MESH_PROTO_SIG_LEN);
        uint8_t got = *(const uint8_t *)zmq_msg_data(&frames[2]);
        if (got == cmd) {
            size_t idl = zmq_msg_size(&frames[0]);
            assert_true(idl <= IDENTITY_MAX);
            memcpy(fx->identity, zmq_msg_data(&frames[0]), idl);
            fx->identity_len = idl;
            return;
        }
        assert_int_equal(got, MESH_W_HEARTBEAT);
        close_frames(frames, *n);
    }
}

/* Send a REQUEST (op, args borrowed) to the worker; wait for its FINAL; return the reply. */
static void request(fx_t *fx, const char *op, json_t *args, mesh_reply_t *rep)
{
    mesh_request_t req;
    memset(&req, 0, sizeof(req));
    snprintf(req.id, sizeof(req.id), "req-%d", ++fx->next_id);
    snprintf(req.op, sizeof(req.op), "%s", op);
    snprintf(req.tenant, sizeof(req.tenant), "%s", MESH_TENANT_DEFAULT);
    req.deadline_ms = 5000;
    req.idem = true;
    req.args = args;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_request_encode(&req, &sb), 0);
    mesh_frame_t fr[4];
    uint8_t cmd;
    int nf = mesh_proto_frames(MESH_SIDE_WORKER, MESH_W_REQUEST, NULL, sb.data, sb.size, &cmd, fr);
    assert_true(nf > 0);
    assert_int_equal(zmq_send(fx->router, fx->identity, fx->identity_len, ZMQ_SNDMORE),
                     (int)fx->identity_len);
    for (int i = 0; i < nf; i++)
        assert_true(zmq_send(fx->router, fr[i].data, fr[i].size, i + 1 < nf ? ZMQ_SNDMORE : 0) >=
                    0);
    msgpack_sbuffer_destroy(&sb);

    zmq_msg_t frames[MESH_MAX_FRAMES + 1];
    size_t n;
    expect_cmd(fx, MESH_W_FINAL, frames, &n);
    assert_int_equal(n, 4);
    memset(rep, 0, sizeof(*rep));
    assert_int_equal(mesh_reply_decode(zmq_msg_data(&frames[3]), zmq_msg_size(&frames[3]), rep), 0);
    assert_string_equal(rep->id, req.id);
    close_frames(frames, n);
}

static mh_proc_t *spawn_tools(fx_t *fx, const char *name)
{
    char bin[MH_PATH_MAX], ep[128], dd[FIXTURE_PATH_MAX + 32], cap[64];
    snprintf(ep, sizeof(ep), "MESH_ROUTER_BACKENDS=%s", fx->endpoint);
    snprintf(dd, sizeof(dd), "MESH_DATA_DIR=%s", fx->data_dir);
    snprintf(cap, sizeof(cap), "MESH_WORKER_CAPACITY=%d", CAPACITY);
    /* A long heartbeat: the raw router below never heartbeats back. */
    const char *env[] = {ep, dd, cap, "MESH_HEARTBEAT_MS=20000", "MESH_LOG_LEVEL=debug", NULL};
    char *const argv[] = {(char *)mh_bin("tools", bin, sizeof(bin)), NULL};
    return mh_proc_spawn(name, argv, env);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || fixture_make(fx->data_dir, NULL) != 0)
        return -1;
    fx->zctx = zmq_ctx_new();
    fx->router = mesh_zsock_new(fx->zctx, ZMQ_ROUTER, NULL);
    int port = mh_free_port();
    snprintf(fx->endpoint, sizeof(fx->endpoint), "tcp://127.0.0.1:%d", port);
    if (fx->router == NULL || zmq_bind(fx->router, fx->endpoint) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    mh_proc_destroy(&fx->proc);
    mesh_zsock_destroy(&fx->router);
    zmq_ctx_term(fx->zctx);
    fixture_remove(fx->data_dir);
    free(fx);
    return 0;
}

static void test_serves_requests_and_reloads(void **state)
{
    fx_t *fx = *state;
    zmq_msg_t frames[MESH_MAX_FRAMES + 1];
    size_t n;
    mesh_reply_t rep;

    fx->proc = spawn_tools(fx, "tools");
    assert_non_null(fx->proc);

    /* READY with service "tools" and the configured capacity */
    expect_cmd(fx, MESH_W_READY, frames, &n);
    assert_int_equal(n, 5);
    assert_int_equal(zmq_msg_size(&frames[3]), 5);
    assert_memory_equal(zmq_msg_data(&frames[3]), "tools", 5);
    mesh_ready_t rdy;
    assert_int_equal(mesh_ready_decode(zmq_msg_data(&frames[4]), zmq_msg_size(&frames[4]), &rdy),
                     0);
    assert_int_equal(rdy.capacity, CAPACITY);
    close_frames(frames, n);

    /* tool.call policy.lookup P10023 */
    json_t *args = json_pack("{s:s, s:{s:s}, s:s}", "name", "policy.lookup", "arguments",
                             "policy_no", "P10023", "call_id", "call_1");
    request(fx, "tool.call", args, &rep);
    assert_int_equal(rep.status, 0);
    assert_true(json_is_true(json_object_get(rep.data, "ok")));
    const json_t *res = json_object_get(rep.data, "result");
    assert_string_equal(json_string_value(json_object_get(res, "policy_no")), "P10023");
    assert_string_equal(json_string_value(json_object_get(json_object_get(res, "product"), "id")),
                        "med-million-2024");
    mesh_reply_clear(&rep);

    /* tool.list */
    request(fx, "tool.list", NULL, &rep);
    assert_int_equal(rep.status, 0);
    /* policy.lookup, fee.calc, medical.lookup, training.scenario (not claim.register/state.update)
     */
    assert_int_equal(json_array_size(json_object_get(rep.data, "tools")), 4);
    mesh_reply_clear(&rep);

    /* medical.lookup over the wire: the seed pair of the health review */
    json_t *med = json_pack("{s:s, s:{s:[s,s,s]}}", "name", "medical.lookup", "arguments", "items",
                            "唾液酸酶测定", "微量元素测定", "不存在的项目");
    request(fx, "tool.call", med, &rep);
    assert_int_equal(rep.status, 0);
    assert_true(json_is_true(json_object_get(rep.data, "ok")));
    const json_t *mitems = json_object_get(json_object_get(rep.data, "result"), "items");
    assert_int_equal(json_array_size(mitems), 3);
    const json_t *m0 = json_array_get(mitems, 0), *m1 = json_array_get(mitems, 1);
    assert_string_equal(json_string_value(json_object_get(m0, "match")), "exact");
    assert_string_equal(json_string_value(json_object_get(m0, "class")), "biochemical_enzyme");
    assert_int_equal(json_array_size(json_object_get(m0, "exclusion_classes")), 0);
    assert_string_equal(json_string_value(json_object_get(m1, "class")), "trace_element");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(m1, "exclusion_classes"), 0)),
        "trace_element_test");
    assert_string_equal(json_string_value(json_object_get(json_array_get(mitems, 2), "match")),
                        "none");
    mesh_reply_clear(&rep);
    json_decref(med);

    /* fee.calc through the wire: 86,000 / 45,000 / 70% -> 21,700 */
    json_t *fee = json_pack("{s:s, s:{s:f, s:i, s:[{s:s, s:i, s:i}]}}", "name", "fee.calc",
                            "arguments", "ratio", 0.7, "deductible_remaining", 10000, "lines",
                            "item", "住院", "amount", 86000, "social_paid", 45000);
    request(fx, "tool.call", fee, &rep);
    assert_int_equal(rep.status, 0);
    assert_int_equal(
        json_number_value(json_object_get(json_object_get(rep.data, "result"), "total_payable")),
        21700);
    mesh_reply_clear(&rep);
    json_decref(fee);

    /* malformed: no name -> EPROTO with a message; unknown op -> EUNKNOWNOP */
    json_t *empty = json_object();
    request(fx, "tool.call", empty, &rep);
    assert_int_equal(rep.status, MESH_EPROTO);
    assert_non_null(strstr(rep.err, "args.name"));
    assert_null(rep.data);
    mesh_reply_clear(&rep);
    request(fx, "tool.bogus", empty, &rep);
    assert_int_equal(rep.status, MESH_EUNKNOWNOP);
    mesh_reply_clear(&rep);
    json_decref(empty);

    /* SIGHUP with broken data: the error names the file, the old data keeps serving */
    size_t mark = mh_log_mark(fx->proc);
    assert_int_equal(fixture_write(fx->data_dir, "policies.json", POLICIES_BAD_PRODUCT), 0);
    assert_int_equal(mh_proc_signal(fx->proc, SIGHUP), 0);
    assert_true(mh_log_wait(fx->proc, mark, "reload failed, keeping the previous data", WAIT_MS));
    assert_true(mh_log_wait(fx->proc, mark, "policies[0].product_id: unknown product 'X'", 100));
    request(fx, "tool.call", args, &rep);
    assert_true(json_is_true(json_object_get(rep.data, "ok")));
    mesh_reply_clear(&rep);

    /* SIGHUP with a broken catalogue: named error, the old data keeps serving */
    char *catalogue = fixture_read(fx->data_dir, "medical/catalogue.json");
    assert_non_null(catalogue);
    mark = mh_log_mark(fx->proc);
    assert_int_equal(fixture_write(fx->data_dir, "policies.json", FIXTURE_POLICIES), 0);
    assert_int_equal(fixture_write(fx->data_dir, "medical/catalogue.json",
                                   "{\"categories\": [\"检查费\"], \"classes\": "
                                   "{\"x\": {\"zh\": \"x\", \"en\": \"x\"}}, \"items\": 7}"),
                     0);
    assert_int_equal(mh_proc_signal(fx->proc, SIGHUP), 0);
    assert_true(mh_log_wait(fx->proc, mark, "reload failed, keeping the previous data", WAIT_MS));
    assert_true(mh_log_wait(fx->proc, mark, "catalogue.json: items: must be an array", 100));
    request(fx, "tool.call", args, &rep);
    assert_true(json_is_true(json_object_get(rep.data, "ok"))); /* P10023 still there */
    mesh_reply_clear(&rep);
    assert_int_equal(fixture_write(fx->data_dir, "medical/catalogue.json", catalogue), 0);
    free(catalogue);

    /* SIGHUP with good new data: taken in */
    mark = mh_log_mark(fx->proc);
    assert_int_equal(fixture_write(fx->data_dir, "policies.json", FIXTURE_POLICIES), 0);
    assert_int_equal(mh_proc_signal(fx->proc, SIGHUP), 0);
    assert_true(mh_log_wait(fx->proc, mark, "reloaded", WAIT_MS));
    request(fx, "tool.call", args, &rep);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rep.data, "error"), "code")),
        "not_found");
    mesh_reply_clear(&rep);
    json_decref(args);

    /* SIGTERM: drains and exits 0 */
    assert_int_equal(mh_proc_stop(fx->proc, WAIT_MS), 0);
}

static void test_refuses_invalid_data(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(fixture_write(fx->data_dir, "policies.json", POLICIES_BAD_PRODUCT), 0);
    fx->proc = spawn_tools(fx, "tools-bad");
    assert_non_null(fx->proc);
    assert_int_equal(mh_proc_wait_exit(fx->proc, WAIT_MS), 1);
    char want[FIXTURE_PATH_MAX + 128];
    snprintf(want, sizeof(want), "%s/policies.json: policies[0].product_id: unknown product 'X'",
             fx->data_dir);
    assert_true(mh_log_wait(fx->proc, 0, want, 100));
}

int main(void)
{
    if (mh_init("tools_worker") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_serves_requests_and_reloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_invalid_data, setup, teardown),
    };
    return mh_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
