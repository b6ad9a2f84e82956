/*
 * test_llm_worker.c - the llm worker end to end over real ZeroMQ: a real
 * mesh_worker (llm_worker.c + the rules backend) against a raw ROUTER socket
 * on tcp://127.0.0.1:<ephemeral> that plays the router by hand.
 *
 * Covered: READY announces service "llm" and the capacity; llm.chat with
 * stream -> PARTIAL deltas then a FINAL whose text they concatenate to;
 * tool_calls FINAL; unknown op -> EUNKNOWNOP; malformed args -> EPROTO naming
 * the key; the "call start" debug line; MESH_LLM_DELAY_MS holding a call in
 * flight; drain answering a held call with EUNAVAIL; destroy with a call in
 * flight closing the loop cleanly; CANCEL stopping a held call (FINAL
 * canceled at once); the FINAL naming the model with a cost estimate.
 *
 * Every wait is a bounded loop: uv_run(UV_RUN_ONCE) under a 2 ms ticker with
 * the fake router polled (ZMQ_DONTWAIT) in between.
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

#include "llm_backend.h"
#include "llm_worker.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_proto.h"
#include "mesh/mesh_worker.h"

#define TICK_MS  2
#define WAIT_MS  3000
#define BODY_MAX (256 * 1024)

typedef struct {
    uv_loop_t loop;
    uv_timer_t ticker;
    void *zctx;
    void *router;
    char ep[MESH_ENDPOINT_MAX];
    unsigned char peer[256];
    size_t peer_len;
    llm_worker_t *lw;
    int drained;
} fx_t;

/* One message from the worker: command and body (identity and signature checked). */
typedef struct {
    uint8_t cmd;
    char service[MESH_SERVICE_MAX + 1];
    unsigned char *body;
    size_t body_len;
} wmsg_t;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Receive one message if one is waiting. Returns 1 if one was read. */
static int try_recv(fx_t *fx, wmsg_t *m)
{
    zmq_msg_t f[MESH_MAX_FRAMES];
    size_t n = 0;
    int more = 1;
    while (more) {
        assert_true(n < MESH_MAX_FRAMES);
        zmq_msg_init(&f[n]);
        if (zmq_msg_recv(&f[n], fx->router, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&f[n]);
            assert_int_equal(n, 0);
            return 0;
        }
        more = zmq_msg_more(&f[n]);
        n++;
    }
    assert_true(n >= 3);
    assert_true(zmq_msg_size(&f[0]) <= sizeof(fx->peer));
    memcpy(fx->peer, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]));
    fx->peer_len = zmq_msg_size(&f[0]);
    assert_int_equal(zmq_msg_size(&f[1]), MESH_PROTO_SIG_LEN);
    assert_memory_equal(zmq_msg_data(&f[1]), MESH_PROTO_WORKER, MESH_PROTO_SIG_LEN);
    memset(m, 0, sizeof(*m));
    m->cmd = *(uint8_t *)zmq_msg_data(&f[2]);
    size_t bi = 3;
    if (m->cmd == MESH_W_READY) {
        assert_true(n == 5);
        size_t sl = zmq_msg_size(&f[3]);
        assert_true(sl <= MESH_SERVICE_MAX);
        memcpy(m->service, zmq_msg_data(&f[3]), sl);
        bi = 4;
    }
    if (bi < n) {
        m->body_len = zmq_msg_size(&f[bi]);
        assert_true(m->body_len <= BODY_MAX);
        m->body = malloc(m->body_len ? m->body_len : 1);
        memcpy(m->body, zmq_msg_data(&f[bi]), m->body_len);
    }
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return 1;
}

/* Next message other than HEARTBEAT, within WAIT_MS. */
static int next_msg(fx_t *fx, wmsg_t *m, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        while (try_recv(fx, m)) {
            if (m->cmd != MESH_W_HEARTBEAT)
                return 1;
            free(m->body);
        }
        if (now_ms() >= end)
            return 0;
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
}

static void send_request(fx_t *fx, const char *id, const char *op, json_t *args, uint32_t dl)
{
    mesh_request_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.op, sizeof(r.op), "%s", op);
    snprintf(r.tenant, sizeof(r.tenant), "default");
    r.deadline_ms = dl;
    r.idem = true;
    r.args = args;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_request_encode(&r, &sb), 0);
    uint8_t cmd = MESH_W_REQUEST;
    assert_true(zmq_send(fx->router, fx->peer, fx->peer_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(fx->router, MESH_PROTO_WORKER, MESH_PROTO_SIG_LEN, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(fx->router, &cmd, 1, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(fx->router, sb.data, sb.size, 0) >= 0);
    msgpack_sbuffer_destroy(&sb);
    json_decref(args);
}

/* Next PARTIAL or FINAL, decoded. */
static uint8_t next_reply(fx_t *fx, mesh_reply_t *rep, int timeout_ms)
{
    wmsg_t m;
    if (!next_msg(fx, &m, timeout_ms))
        fail_msg("no reply within %d ms", timeout_ms);
    assert_true(m.cmd == MESH_W_PARTIAL || m.cmd == MESH_W_FINAL);
    assert_int_equal(mesh_reply_decode(m.body, m.body_len, rep), 0);
    free(m.body);
    return m.cmd;
}

static fx_t *fx_new(uint64_t delay_ms)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->ticker);
    uv_timer_start(&fx->ticker, on_tick, TICK_MS, TICK_MS);
    fx->zctx = zmq_ctx_new();
    fx->router = zmq_socket(fx->zctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(fx->router, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_bind(fx->router, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof(fx->ep);
    assert_int_equal(zmq_getsockopt(fx->router, ZMQ_LAST_ENDPOINT, fx->ep, &len), 0);

    mesh_worker_opts_t o;
    memset(&o, 0, sizeof(o));
    o.service = "ignored"; /* llm_worker forces "llm" */
    o.endpoints[0] = fx->ep;
    o.n_endpoints = 1;
    o.capacity = 8;
    o.heartbeat_ms = 1000;
    o.liveness = 5;
    o.reconnect_min_ms = 50;
    o.reconnect_max_ms = 200;
    mesh_zsock_opts_default(&o.zopts);
    o.zopts.linger_ms = 0;

    llm_backend_config_t cfg = {.delay_ms = delay_ms};
    llm_backend_t *b = llm_backend_new("rules", &fx->loop, &cfg);
    assert_non_null(b);
    fx->lw = llm_worker_new(&fx->loop, fx->zctx, &o, &b);
    assert_non_null(fx->lw);
    assert_null(b);
    assert_int_equal(llm_worker_start(fx->lw), 0);

    /* READY: service "llm", capacity 8. */
    wmsg_t m;
    assert_true(next_msg(fx, &m, WAIT_MS));
    assert_int_equal(m.cmd, MESH_W_READY);
    assert_string_equal(m.service, "llm");
    mesh_ready_t rdy;
    assert_int_equal(mesh_ready_decode(m.body, m.body_len, &rdy), 0);
    assert_int_equal(rdy.capacity, 8);
    free(m.body);
    return fx;
}

static void fx_free(fx_t *fx)
{
    llm_worker_destroy(&fx->lw);
    assert_null(fx->lw);
    uv_close((uv_handle_t *)&fx->ticker, NULL);
    uint64_t end = now_ms() + WAIT_MS;
    while (uv_loop_alive(&fx->loop) && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    zmq_close(fx->router);
    zmq_ctx_term(fx->zctx);
    free(fx);
}

static json_t *chat_args(const char *lang, const char *user_text, const char *tool_text, int stream)
{
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "text", user_text);
    if (tool_text != NULL) {
        json_array_append_new(msgs,
                              json_pack("{s:s, s:s, s:[{s:s, s:s, s:{s:s}}]}", "role", "assistant",
                                        "text", "", "tool_calls", "id", "call_1", "name",
                                        "policy.lookup", "arguments", "policy_no", "P10023"));
        json_array_append_new(msgs, json_pack("{s:s, s:s, s:s, s:s, s:b}", "role", "tool", "name",
                                              "policy.lookup", "tool_call_id", "call_1", "text",
                                              tool_text, "ok", 1));
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:[{s:s}], s:b}", "agent", "policy_qa", "tier", "small",
                     "lang", lang, "messages", msgs, "tools", "name", "policy.lookup", "stream",
                     stream);
}

static const char *const POLICY =
    "{\"ok\":true,\"result\":{\"policy_no\":\"P10023\",\"status\":\"active\","
    "\"product\":{\"name\":{\"zh\":\"安心百万医疗险\",\"en\":\"Anxin Million Medical\"}},"
    "\"deductible\":10000,\"deductible_used\":0,"
    "\"coverages\":[{\"name\":{\"zh\":\"一般医疗保险金\",\"en\":\"General medical\"},"
    "\"limit\":3000000,\"clause\":\"2.1\"},{\"name\":{\"zh\":\"重大疾病医疗保险金\",\"en\":"
    "\"Critical-illness medical\"},\"limit\":6000000,\"clause\":\"2.2\"}],"
    "\"clauses\":{\"2.3\":{\"zh\":\"免赔额：年免赔额为1万元。\",\"en\":\"Deductible.\"}}}}";

static void test_stream_chat(void **state)
{
    (void)state;
    fx_t *fx = fx_new(0);
    send_request(fx, "req-1", "llm.chat", chat_args("zh", "我的保单保障什么？", POLICY, 1), 5000);
    char joined[8192] = "";
    int partials = 0;
    mesh_reply_t rep;
    uint8_t cmd;
    while ((cmd = next_reply(fx, &rep, WAIT_MS)) == MESH_W_PARTIAL) {
        assert_string_equal(rep.id, "req-1");
        assert_int_equal(rep.status, 0);
        const char *d = json_string_value(json_object_get(rep.data, "delta"));
        assert_non_null(d);
        assert_true(strlen(joined) + strlen(d) < sizeof(joined));
        strcat(joined, d);
        partials++;
        mesh_reply_clear(&rep);
    }
    assert_int_equal(cmd, MESH_W_FINAL);
    assert_string_equal(rep.id, "req-1");
    assert_int_equal(rep.status, 0);
    assert_true(partials >= 2);
    assert_string_equal(json_string_value(json_object_get(rep.data, "type")), "text");
    const char *text = json_string_value(json_object_get(rep.data, "text"));
    assert_string_equal(joined, text);
    assert_non_null(strstr(text, "300万元"));
    assert_non_null(strstr(text, "条款 2.1"));
    assert_string_equal(json_string_value(json_object_get(rep.data, "backend")), "rules");
    json_t *usage = json_object_get(rep.data, "usage");
    assert_true(json_integer_value(json_object_get(usage, "prompt_tokens")) >= 1);
    assert_true(json_integer_value(json_object_get(usage, "completion_tokens")) >= 1);
    mesh_reply_clear(&rep);
    assert_int_equal(llm_worker_inflight(fx->lw), 0);
    fx_free(fx);
}

static void test_tool_call_and_errors(void **state)
{
    (void)state;
    fx_t *fx = fx_new(0);
    mesh_reply_t rep;

    send_request(fx, "req-2", "llm.chat", chat_args("en", "What does p10023 cover?", NULL, 1),
                 5000);
    assert_int_equal(next_reply(fx, &rep, WAIT_MS), MESH_W_FINAL); /* no PARTIAL for tools */
    assert_int_equal(rep.status, 0);
    assert_string_equal(json_string_value(json_object_get(rep.data, "type")), "tool_calls");
    json_t *c0 = json_array_get(json_object_get(rep.data, "calls"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "name")), "policy.lookup");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c0, "arguments"), "policy_no")),
        "P10023");
    mesh_reply_clear(&rep);

    send_request(fx, "req-3", "llm.embed", json_pack("{}"), 5000);
    assert_int_equal(next_reply(fx, &rep, WAIT_MS), MESH_W_FINAL);
    assert_string_equal(rep.id, "req-3");
    assert_int_equal(rep.status, MESH_EUNKNOWNOP);
    mesh_reply_clear(&rep);

    send_request(fx, "req-4", "llm.chat",
                 json_pack("{s:s, s:s}", "agent", "policy_qa", "messages", "not an array"), 5000);
    assert_int_equal(next_reply(fx, &rep, WAIT_MS), MESH_W_FINAL);
    assert_string_equal(rep.id, "req-4");
    assert_int_equal(rep.status, MESH_EPROTO);
    assert_non_null(strstr(rep.err, "args.messages"));
    mesh_reply_clear(&rep);

    /* No args at all. */
    send_request(fx, "req-5", "llm.chat", NULL, 5000);
    assert_int_equal(next_reply(fx, &rep, WAIT_MS), MESH_W_FINAL);
    assert_int_equal(rep.status, MESH_EPROTO);
    assert_non_null(strstr(rep.err, "args"));
    mesh_reply_clear(&rep);
    fx_free(fx);
}

static void test_call_start_logged(void **state)
{
    (void)state;
    char path[] = "/tmp/test_llm_worker_logXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    mesh_log_init("llm", MESH_LOG_DEBUG);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);

    fx_t *fx = fx_new(0);
    send_request(fx, "req-log-7", "llm.chat", chat_args("en", "hello", NULL, 0), 5000);
    mesh_reply_t rep;
    assert_int_equal(next_reply(fx, &rep, WAIT_MS), MESH_W_FINAL);
    mesh_reply_clear(&rep);
    fx_free(fx);

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    mesh_log_set_level(MESH_LOG_WARN);
    char buf[65536];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    buf[n] = '\0';
    /* The line's message, whatever the log format (text or JSON lines). */
    if (strstr(buf, "call start id=req-log-7 agent=policy_qa") == NULL)
        fail_msg("no call start line in: %s", buf);
}

static void on_drained(void *arg)
{
    ((fx_t *)arg)->drained++;
}

static void test_delay_and_drain(void **state)
{
    (void)state;
    fx_t *fx = fx_new(200);
    mesh_reply_t rep;

    /* The delay holds the call in flight, then it answers. */
    uint64_t t0 = now_ms();
    send_request(fx, "req-6", "llm.chat", chat_args("en", "hello", NULL, 0), 5000);
    uint64_t end = now_ms() + WAIT_MS;
    while (llm_worker_inflight(fx->lw) == 0 && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(llm_worker_inflight(fx->lw), 1);
    assert_int_equal(next_reply(fx, &rep, WAIT_MS), MESH_W_FINAL);
    assert_int_equal(rep.status, 0);
    assert_true(now_ms() - t0 >= 200);
    mesh_reply_clear(&rep);
    assert_int_equal(llm_worker_inflight(fx->lw), 0);

    /* A deadline shorter than the delay: ETIMEDOUT at the deadline. */
    send_request(fx, "req-7", "llm.chat", chat_args("en", "hello", NULL, 0), 50);
    assert_int_equal(next_reply(fx, &rep, WAIT_MS), MESH_W_FINAL);
    assert_int_equal(rep.status, MESH_ETIMEDOUT);
    mesh_reply_clear(&rep);
    fx_free(fx);

    /* Drain with a call that would take a minute: answered EUNAVAIL at the grace. */
    fx = fx_new(60000);
    send_request(fx, "req-8", "llm.chat", chat_args("en", "hello", NULL, 0), 120000);
    end = now_ms() + WAIT_MS;
    while (llm_worker_inflight(fx->lw) == 0 && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(llm_worker_inflight(fx->lw), 1);
    llm_worker_drain(fx->lw, 100, on_drained, fx);
    wmsg_t m;
    assert_true(next_msg(fx, &m, WAIT_MS));
    assert_int_equal(m.cmd, MESH_W_DISCONNECT);
    free(m.body);
    assert_int_equal(next_reply(fx, &rep, WAIT_MS), MESH_W_FINAL);
    assert_string_equal(rep.id, "req-8");
    assert_int_equal(rep.status, MESH_EUNAVAIL);
    mesh_reply_clear(&rep);
    end = now_ms() + WAIT_MS;
    while (fx->drained == 0 && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(fx->drained, 1);
    assert_int_equal(llm_worker_inflight(fx->lw), 0);
    fx_free(fx);
}

static void test_destroy_with_call_in_flight(void **state)
{
    (void)state;
    fx_t *fx = fx_new(60000);
    send_request(fx, "req-9", "llm.chat", chat_args("zh", "你好", NULL, 1), 120000);
    uint64_t end = now_ms() + WAIT_MS;
    while (llm_worker_inflight(fx->lw) == 0 && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(llm_worker_inflight(fx->lw), 1);
    fx_free(fx); /* cancels the timer and releases the request; the loop must close */
}

static void send_cancel(fx_t *fx, const char *id)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_cancel_encode(id, &sb), 0);
    uint8_t cmd = MESH_W_CANCEL;
    assert_true(zmq_send(fx->router, fx->peer, fx->peer_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(fx->router, MESH_PROTO_WORKER, MESH_PROTO_SIG_LEN, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(fx->router, &cmd, 1, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(fx->router, sb.data, sb.size, 0) >= 0);
    msgpack_sbuffer_destroy(&sb);
}

/* CANCEL stops the backend call (here a minute-long rules delay) and answers at once. */
static void test_cancel_stops_the_call(void **state)
{
    (void)state;
    fx_t *fx = fx_new(60000);
    send_request(fx, "req-c1", "llm.chat", chat_args("en", "hello", NULL, 1), 120000);
    uint64_t end = now_ms() + WAIT_MS;
    while (llm_worker_inflight(fx->lw) == 0 && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(llm_worker_inflight(fx->lw), 1);
    uint64_t t0 = now_ms();
    send_cancel(fx, "req-c1");
    mesh_reply_t rep;
    assert_int_equal(next_reply(fx, &rep, WAIT_MS), MESH_W_FINAL);
    assert_string_equal(rep.id, "req-c1");
    assert_int_equal(rep.status, MESH_ECANCELED);
    assert_null(rep.data);
    assert_true(now_ms() - t0 < 1000);
    mesh_reply_clear(&rep);
    assert_int_equal(llm_worker_inflight(fx->lw), 0);
    fx_free(fx);
}

/* The FINAL names the model ("rules") and carries the cost estimate (0 for rules). */
static void test_final_model_and_cost(void **state)
{
    (void)state;
    fx_t *fx = fx_new(0);
    send_request(fx, "req-m1", "llm.chat", chat_args("en", "hello", NULL, 0), 5000);
    mesh_reply_t rep;
    assert_int_equal(next_reply(fx, &rep, WAIT_MS), MESH_W_FINAL);
    assert_int_equal(rep.status, 0);
    assert_string_equal(json_string_value(json_object_get(rep.data, "model")), "rules");
    const json_t *cost = json_object_get(json_object_get(rep.data, "usage"), "cost_usd");
    assert_true(json_is_number(cost) && json_number_value(cost) == 0);
    assert_null(json_object_get(rep.data, "fallback"));
    mesh_reply_clear(&rep);
    fx_free(fx);
}

int main(void)
{
    mesh_log_init("llm", MESH_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_chat),
        cmocka_unit_test(test_tool_call_and_errors),
        cmocka_unit_test(test_call_start_logged),
        cmocka_unit_test(test_delay_and_drain),
        cmocka_unit_test(test_destroy_with_call_in_flight),
        cmocka_unit_test(test_cancel_stops_the_call),
        cmocka_unit_test(test_final_model_and_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
