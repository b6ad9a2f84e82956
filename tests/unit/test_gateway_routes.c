/*
 * test_gateway_routes.c - the gateway's routes over real HTTP on loopback,
 * with a raw ZeroMQ ROUTER socket in the test playing the router (MESHC01):
 * request validation (400/404/405/415), the JSON mapping of a turn's FINAL
 * (success and each error status), deadlines (504), no router (503),
 * readiness, conversation reads, a client leaving mid-turn, and streamed
 * turns (Accept: text/event-stream): PARTIALs to SSE events, the final and
 * error events, and the CANCEL sent when the client leaves mid-stream.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>
#include <msgpack.h>
#include <zmq.h>

#include "gateway.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_proto.h"
#include "test_http_support.h"

#define TP_IN "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

/* ---- the fake router ---------------------------------------------------- */

#define FAKE_SERVICES 4

typedef struct {
    char service[MESH_SERVICE_MAX + 1];
    bool hold;  /* never answer */
    int status; /* FINAL status */
    char err[MESH_ERRMSG_MAX + 1];
    json_t *data;   /* FINAL data (owned), NULL for none */
    bool echo_args; /* data = the request's args */
} fake_answer_t;

typedef struct {
    void *sock;
    char endpoint[64];
    fake_answer_t answers[FAKE_SERVICES];
    int n_answers;
    int requests;
    char last_service[MESH_SERVICE_MAX + 1];
    mesh_request_t last; /* decoded; args owned */
    /* the last held request, to answer later */
    char held_ident[256];
    size_t held_ident_len;
    char held_id[MESH_ID_MAX + 1];
    int cancels; /* CANCEL messages received */
    char cancel_id[MESH_ID_MAX + 1];
} fake_router_t;

static void fake_send(fake_router_t *f, const void *ident, size_t ident_len, uint8_t cmd,
                      const char *service, const void *body, size_t body_len)
{
    int more = (cmd == MESH_C_HEARTBEAT) ? 0 : ZMQ_SNDMORE;
    assert_true(zmq_send(f->sock, ident, ident_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->sock, MESH_PROTO_CLIENT, MESH_PROTO_SIG_LEN, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->sock, &cmd, 1, more) >= 0);
    if (more) {
        assert_true(zmq_send(f->sock, service, strlen(service), ZMQ_SNDMORE) >= 0);
        assert_true(zmq_send(f->sock, body, body_len, 0) >= 0);
    }
}

static void fake_final(fake_router_t *f, const void *ident, size_t ident_len, const char *service,
                       const char *id, int status, const char *err, const json_t *data)
{
    mesh_reply_t rep = {0};
    snprintf(rep.id, sizeof(rep.id), "%s", id);
    rep.status = status;
    snprintf(rep.err, sizeof(rep.err), "%s", err ? err : "");
    rep.data = (json_t *)data;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_reply_encode(&rep, &sb), 0);
    fake_send(f, ident, ident_len, MESH_C_FINAL, service, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void fake_partial(fake_router_t *f, const char *service, const char *data_json)
{
    mesh_reply_t rep = {0};
    snprintf(rep.id, sizeof(rep.id), "%s", f->held_id);
    rep.data = json_loads(data_json, 0, NULL);
    assert_non_null(rep.data);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_reply_encode(&rep, &sb), 0);
    fake_send(f, f->held_ident, f->held_ident_len, MESH_C_PARTIAL, service, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    json_decref(rep.data);
}

static fake_answer_t *fake_answer(fake_router_t *f, const char *service)
{
    for (int i = 0; i < f->n_answers; i++)
        if (strcmp(f->answers[i].service, service) == 0)
            return &f->answers[i];
    return NULL;
}

/* Receive and answer everything waiting on the socket. */
static void fake_pump(void *arg)
{
    fake_router_t *f = arg;
    for (;;) {
        zmq_msg_t parts[MESH_MAX_FRAMES];
        size_t n = 0;
        int more = 1;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, f->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                assert_int_equal(n, 0); /* multipart messages arrive whole */
                return;
            }
            more = zmq_msg_more(&m);
            assert_true(n < MESH_MAX_FRAMES);
            parts[n++] = m;
        }
        assert_true(n >= 3);
        const char *ident = zmq_msg_data(&parts[0]);
        size_t ident_len = zmq_msg_size(&parts[0]);
        uint8_t cmd = *(uint8_t *)zmq_msg_data(&parts[2]);
        if (cmd == MESH_C_HEARTBEAT) {
            fake_send(f, ident, ident_len, MESH_C_HEARTBEAT, NULL, NULL, 0);
        } else if (cmd == MESH_C_CANCEL) {
            assert_int_equal(n, 5);
            assert_int_equal(
                mesh_cancel_decode(zmq_msg_data(&parts[4]), zmq_msg_size(&parts[4]), f->cancel_id),
                0);
            f->cancels++;
        } else if (cmd == MESH_C_REQUEST) {
            assert_int_equal(n, 5);
            size_t sl = zmq_msg_size(&parts[3]);
            assert_true(sl <= MESH_SERVICE_MAX);
            memcpy(f->last_service, zmq_msg_data(&parts[3]), sl);
            f->last_service[sl] = '\0';
            mesh_request_clear(&f->last);
            assert_int_equal(
                mesh_request_decode(zmq_msg_data(&parts[4]), zmq_msg_size(&parts[4]), &f->last), 0);
            f->requests++;
            fake_answer_t *a = fake_answer(f, f->last_service);
            if (!a) {
                fake_final(f, ident, ident_len, f->last_service, f->last.id, MESH_EUNKNOWNOP, NULL,
                           NULL);
            } else if (a->hold) {
                assert_true(ident_len <= sizeof(f->held_ident));
                memcpy(f->held_ident, ident, ident_len);
                f->held_ident_len = ident_len;
                snprintf(f->held_id, sizeof(f->held_id), "%s", f->last.id);
            } else {
                fake_final(f, ident, ident_len, f->last_service, f->last.id, a->status, a->err,
                           a->echo_args ? f->last.args : a->data);
            }
        }
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
}

/* Configure the answer for service: status, err and data as JSON text (or NULL). */
static void fake_set(fake_router_t *f, const char *service, int status, const char *err,
                     const char *data_json)
{
    fake_answer_t *a = fake_answer(f, service);
    if (!a) {
        assert_true(f->n_answers < FAKE_SERVICES);
        a = &f->answers[f->n_answers++];
        snprintf(a->service, sizeof(a->service), "%s", service);
    }
    json_decref(a->data);
    a->data = NULL;
    a->hold = false;
    a->echo_args = false;
    a->status = status;
    snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
    if (data_json) {
        a->data = json_loads(data_json, 0, NULL);
        assert_non_null(a->data);
    }
}

/* ---- fixture ------------------------------------------------------------ */

typedef struct {
    uv_loop_t loop;
    void *zctx;
    tc_env_t env;
    fake_router_t fake;
    gateway_t *gw;
    int port;
} fixture_t;

static fixture_t *F;
static int endpoint_seq;

static void make_gateway(bool with_router)
{
    snprintf(F->fake.endpoint, sizeof(F->fake.endpoint), "inproc://gw-test-%d", endpoint_seq++);
    if (with_router) {
        F->fake.sock = zmq_socket(F->zctx, ZMQ_ROUTER);
        assert_non_null(F->fake.sock);
        int linger = 0;
        zmq_setsockopt(F->fake.sock, ZMQ_LINGER, &linger, sizeof(linger));
        assert_int_equal(zmq_bind(F->fake.sock, F->fake.endpoint), 0);
        F->env.pump = fake_pump;
        F->env.pump_arg = &F->fake;
    }
    gateway_config_t cfg = {
        .http_host = "127.0.0.1",
        .http_port = 0,
        .max_body = 256 * 1024,
        .max_header = 8192,
        .idle_ms = 2000,
        .max_conns = 64,
        .turn_timeout_ms = 3000,
        .client =
            {
                .n_endpoints = 1,
                .heartbeat_ms = 100,
                .liveness = 3,
                .reconnect_min_ms = 50,
                .reconnect_max_ms = 200,
            },
    };
    cfg.client.endpoints[0] = F->fake.endpoint;
    mesh_zsock_opts_default(&cfg.client.zopts);
    F->gw = gateway_new(&F->loop, F->zctx, &cfg);
    assert_non_null(F->gw);
    assert_int_equal(gateway_start(F->gw), 0);
    F->port = gateway_port(F->gw);
    assert_true(F->port > 0);
}

static bool router_alive(void *arg)
{
    return mesh_client_routers_alive(gateway_client(F->gw)) > 0;
}

static int setup_common(void **state, bool with_router)
{
    F = calloc(1, sizeof(*F));
    assert_int_equal(uv_loop_init(&F->loop), 0);
    F->zctx = zmq_ctx_new();
    F->env.loop = &F->loop;
    make_gateway(with_router);
    if (with_router)
        assert_true(tc_wait(&F->env, router_alive, NULL, TC_WAIT_MS));
    *state = F;
    return 0;
}

static int setup_router(void **state)
{
    return setup_common(state, true);
}

static int setup_no_router(void **state)
{
    return setup_common(state, false);
}

static int teardown(void **state)
{
    gateway_destroy(&F->gw);
    assert_true(tc_loop_finish(&F->loop));
    if (F->fake.sock)
        zmq_close(F->fake.sock);
    for (int i = 0; i < F->fake.n_answers; i++)
        json_decref(F->fake.answers[i].data);
    mesh_request_clear(&F->fake.last);
    zmq_ctx_term(F->zctx);
    free(F);
    F = NULL;
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static json_t *body_json(const tc_resp_t *r)
{
    json_error_t e;
    json_t *v = json_loads(r->body, 0, &e);
    if (!v)
        fail_msg("response body is not JSON: %s (%s)", r->body, e.text);
    return v;
}

static void assert_error(const tc_resp_t *r, int status, const char *code)
{
    if (r->status != status)
        fail_msg("want %d %s, got %d: %s", status, code, r->status, r->body);
    assert_true(tc_has_header(r, "Content-Type", "application/json"));
    json_t *v = body_json(r);
    json_t *e = json_object_get(v, "error");
    assert_true(json_is_object(e));
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    assert_true(json_is_string(json_object_get(e, "message")));
    json_decref(v);
}

static void request(const char *method, const char *path, const char *headers, const char *body,
                    tc_resp_t *r)
{
    size_t cap = 1024 + strlen(path) + (headers ? strlen(headers) : 0) + (body ? strlen(body) : 0);
    char *req = malloc(cap);
    int n =
        snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n\r\n%s", method,
                 path, headers ? headers : "", body ? strlen(body) : 0, body ? body : "");
    assert_true(n > 0 && (size_t)n < cap);
    assert_true(tc_roundtrip(&F->env, F->port, req, r));
    free(req);
}

static void post_turn(const char *conv, const char *headers, const char *body, tc_resp_t *r)
{
    char path[512];
    snprintf(path, sizeof(path), "/v1/conversations/%s/messages", conv);
    request("POST", path, headers, body, r);
}

static void expect_error(const char *method, const char *path, const char *headers,
                         const char *body, int status, const char *code)
{
    tc_resp_t r;
    request(method, path, headers, body, &r);
    assert_error(&r, status, code);
    tc_resp_free(&r);
}

/* ---- without a router --------------------------------------------------- */

static void test_healthz(void **state)
{
    tc_resp_t r;
    request("GET", "/healthz", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_true(tc_has_header(&r, "Content-Type", "application/json"));
    tc_resp_free(&r);
}

static void test_readyz_no_router(void **state)
{
    tc_resp_t r;
    request("GET", "/readyz", NULL, NULL, &r);
    assert_error(&r, 503, "not_ready");
    assert_non_null(strstr(r.body, "router"));
    tc_resp_free(&r);
}

static void test_turn_no_router(void **state)
{
    tc_resp_t r;
    post_turn("c1", "Content-Type: application/json\r\n", "{\"text\":\"hi\"}", &r);
    assert_error(&r, 503, "no_router");
    assert_true(tc_has_header(&r, "Retry-After", "1"));
    tc_resp_free(&r);
}

static void test_not_found_and_method(void **state)
{
    tc_resp_t r;
    expect_error("GET", "/nope", NULL, NULL, 404, "not_found");
    expect_error("GET", "/v1/conversations/c1/other", NULL, NULL, 404, "not_found");
    expect_error("GET", "/v1/conversations/c1/messages/", NULL, NULL, 404, "not_found");
    request("GET", "/v1/conversations/c1/messages", NULL, NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    assert_true(tc_has_header(&r, "Allow", "POST"));
    tc_resp_free(&r);
    request("POST", "/healthz", NULL, "{}", &r);
    assert_error(&r, 405, "method_not_allowed");
    assert_true(tc_has_header(&r, "Allow", "GET"));
    tc_resp_free(&r);
    request("DELETE", "/v1/conversations/c1", NULL, NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    assert_true(tc_has_header(&r, "Allow", "GET"));
    tc_resp_free(&r);
    /* HEAD: 405 with the headers only (no body), and the connection goes on. */
    tc_client_t c;
    assert_true(tc_connect(&c, F->port));
    assert_true(
        tc_send_str(&F->env, &c, "HEAD /readyz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n"));
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    for (;;) {
        tc_pull(&c);
        c.buf[c.len] = '\0';
        if (strstr(c.buf, "{\"status\":\"ok\"}") || tc_now_ms() > end)
            break;
        tc_step(&F->env, c.fd, 1);
    }
    c.buf[c.len] = '\0';
    assert_true(strncmp(c.buf, "HTTP/1.1 405 ", 13) == 0);
    assert_non_null(strstr(c.buf, "\r\nAllow: GET\r\n"));
    char *second = strstr(c.buf, "\r\n\r\n");
    assert_non_null(second);
    assert_true(strncmp(second + 4, "HTTP/1.1 200 ", 13) == 0);
    tc_close(&c);
}

static void test_turn_validation(void **state)
{
    const char *json = "Content-Type: application/json\r\n";
    const char *p = "/v1/conversations/c1/messages";
    expect_error("POST", p, json, "{\"text\":", 400, "invalid_json");
    expect_error("POST", p, json, "", 400, "invalid_json");
    expect_error("POST", p, json, "[1,2]", 400, "invalid_json");
    expect_error("POST", p, json, "{\"text\":\"a\",\"text\":\"b\"}", 400, "invalid_json");

    tc_resp_t r;
    request("POST", p, json, "{\"message_id\":\"m1\"}", &r);
    assert_error(&r, 400, "invalid_field");
    assert_non_null(strstr(r.body, "text"));
    tc_resp_free(&r);
    expect_error("POST", p, json, "{\"text\":5}", 400, "invalid_field");
    expect_error("POST", p, json, "{\"text\":\"\"}", 400, "invalid_field");
    request("POST", p, json, "{\"text\":\"hi\",\"message_id\":\"bad id\"}", &r);
    assert_error(&r, 400, "invalid_field");
    assert_non_null(strstr(r.body, "message_id"));
    tc_resp_free(&r);
    expect_error("POST", p, json, "{\"text\":\"hi\",\"message_id\":7}", 400, "invalid_field");
    request("POST", p, json, "{\"text\":\"hi\",\"agent\":[]}", &r);
    assert_error(&r, 400, "invalid_field");
    assert_non_null(strstr(r.body, "agent"));
    tc_resp_free(&r);

    /* Text over MESH_TEXT_MAX bytes. */
    size_t big = MESH_TEXT_MAX + 1;
    char *body = malloc(big + 32);
    int n = snprintf(body, 32, "{\"text\":\"");
    memset(body + n, 'x', big);
    strcpy(body + n + big, "\"}");
    expect_error("POST", p, json, body, 400, "invalid_field");
    free(body);

    expect_error("POST", "/v1/conversations/bad!id/messages", json, "{\"text\":\"hi\"}", 400,
                 "invalid_conversation_id");
    expect_error("POST", "/v1/conversations//messages", json, "{\"text\":\"hi\"}", 400,
                 "invalid_conversation_id");
    expect_error("GET", "/v1/conversations/bad%20id", NULL, NULL, 400, "invalid_conversation_id");
    expect_error("POST", p, "Content-Type: text/plain\r\n", "{\"text\":\"hi\"}", 415,
                 "unsupported_media_type");
    expect_error("POST", p, "X-Mesh-Tenant: no:colons\r\n", "{\"text\":\"hi\"}", 400,
                 "invalid_tenant");
    expect_error("POST", p, "X-Mesh-Timeout-Ms: soon\r\n", "{\"text\":\"hi\"}", 400,
                 "invalid_timeout");
    expect_error("POST", p, "X-Mesh-Timeout-Ms: 0\r\n", "{\"text\":\"hi\"}", 400,
                 "invalid_timeout");
}

/* ---- with the fake router ----------------------------------------------- */

static void test_turn_success(void **state)
{
    fake_set(&F->fake, "agent", 0, NULL,
             "{\"conversation_id\":\"c-42\",\"message_id\":\"m-1\",\"agent\":\"claims_auto\","
             "\"reply\":\"你好, noted.\",\"duplicate\":false,\"steps\":2,"
             "\"tool_calls\":[{\"name\":\"policy.lookup\",\"ok\":true},"
             "{\"name\":\"fee.calc\",\"ok\":false}],\"extra\":\"dropped\"}");
    tc_resp_t r;
    post_turn("c-42",
              "Content-Type: application/json; charset=utf-8\r\nX-Mesh-Tenant: acme\r\n"
              "X-Mesh-Timeout-Ms: 2500\r\ntraceparent: " TP_IN "\r\n",
              "{\"text\":\"我的车被撞了\",\"message_id\":\"m-1\",\"agent\":\"claims_auto\"}", &r);
    assert_int_equal(r.status, 200);
    assert_true(tc_has_header(&r, "Content-Type", "application/json"));
    json_t *v = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(v, "conversation_id")), "c-42");
    assert_string_equal(json_string_value(json_object_get(v, "message_id")), "m-1");
    assert_string_equal(json_string_value(json_object_get(v, "agent")), "claims_auto");
    assert_string_equal(json_string_value(json_object_get(v, "reply")), "你好, noted.");
    assert_true(json_is_false(json_object_get(v, "duplicate")));
    json_t *tc = json_object_get(v, "tool_calls");
    assert_int_equal(json_array_size(tc), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tc, 0), "name")),
                        "policy.lookup");
    assert_true(json_is_true(json_object_get(json_array_get(tc, 0), "ok")));
    assert_true(json_is_false(json_object_get(json_array_get(tc, 1), "ok")));
    assert_null(json_object_get(v, "extra"));
    json_decref(v);
    tc_resp_free(&r);

    /* What the router received. */
    assert_int_equal(F->fake.requests, 1);
    assert_string_equal(F->fake.last_service, "agent");
    assert_string_equal(F->fake.last.op, "turn");
    assert_string_equal(F->fake.last.conv, "c-42");
    assert_string_equal(F->fake.last.tenant, "acme");
    /* Same trace; the parent-id is now the gateway's own span (route_trace.c). */
    assert_int_equal(strlen(F->fake.last.tp), 55);
    assert_memory_equal(F->fake.last.tp, TP_IN, 36);
    assert_memory_not_equal(F->fake.last.tp + 36, TP_IN + 36, 16);
    assert_true(F->fake.last.deadline_ms <= 2500 && F->fake.last.deadline_ms > 2000);
    json_t *a = F->fake.last.args;
    assert_string_equal(json_string_value(json_object_get(a, "text")), "我的车被撞了");
    assert_string_equal(json_string_value(json_object_get(a, "message_id")), "m-1");
    assert_string_equal(json_string_value(json_object_get(a, "agent")), "claims_auto");
}

static void test_turn_defaults(void **state)
{
    /* Reply data without ids: the gateway fills them in; message_id is generated. */
    fake_set(&F->fake, "agent", 0, NULL, "{\"reply\":\"ok\",\"agent\":null}");
    tc_resp_t r;
    post_turn("conv.1", "X-Mesh-Timeout-Ms: 999999\r\ntraceparent: garbage\r\n",
              "{\"text\":\"hello\"}", &r);
    assert_int_equal(r.status, 200);
    json_t *v = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(v, "conversation_id")), "conv.1");
    const char *mid = json_string_value(json_object_get(v, "message_id"));
    assert_non_null(mid);
    assert_int_equal(strlen(mid), 32);
    assert_string_equal(json_string_value(json_object_get(F->fake.last.args, "message_id")), mid);
    assert_true(json_is_null(json_object_get(v, "agent")));
    assert_int_equal(json_array_size(json_object_get(v, "tool_calls")), 0);
    assert_true(json_is_false(json_object_get(v, "duplicate")));
    json_decref(v);
    tc_resp_free(&r);
    assert_string_equal(F->fake.last.tenant, "default");
    /* A bad traceparent is replaced by a fresh valid one; the deadline is the configured one. */
    assert_true(mesh_traceparent_valid(F->fake.last.tp, strlen(F->fake.last.tp)));
    assert_true(F->fake.last.deadline_ms <= 3000 && F->fake.last.deadline_ms > 2500);
    assert_null(json_object_get(F->fake.last.args, "agent"));
}

static void test_turn_duplicate_passthrough(void **state)
{
    fake_set(&F->fake, "agent", 0, NULL,
             "{\"conversation_id\":\"c\",\"message_id\":\"m\",\"agent\":\"a\",\"reply\":\"r\","
             "\"duplicate\":true,\"tool_calls\":[]}");
    tc_resp_t r;
    post_turn("c", NULL, "{\"text\":\"again\",\"message_id\":\"m\"}", &r);
    assert_int_equal(r.status, 200);
    json_t *v = body_json(&r);
    assert_true(json_is_true(json_object_get(v, "duplicate")));
    json_decref(v);
    tc_resp_free(&r);
}

static void test_turn_malformed_reply_502(void **state)
{
    fake_set(&F->fake, "agent", 0, NULL, "{\"agent\":\"a\"}");
    tc_resp_t r;
    post_turn("c", NULL, "{\"text\":\"x\"}", &r);
    assert_error(&r, 502, "bad_gateway");
    tc_resp_free(&r);
}

static void test_turn_error_mapping(void **state)
{
    static const struct {
        int status;
        int http;
        const char *code;
        bool retry;
    } cases[] = {
        {MESH_ENOTFOUND, 404, "not_found", false},
        {MESH_EBUSY, 503, "overloaded", true},
        {MESH_ENOWORKER, 503, "no_worker", true},
        {MESH_EUNAVAIL, 503, "unavailable", true},
        {MESH_ETIMEDOUT, 504, "deadline_exceeded", false},
        {MESH_ESTEPS, 502, "step_budget_exhausted", false},
        {MESH_EPROTO, 400, "protocol_error", false},
        {MESH_EINVAL, 400, "invalid_argument", false},
        {MESH_EIO, 500, "io_error", false},
        {MESH_EINTERNAL, 500, "internal_error", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_set(&F->fake, "agent", cases[i].status, i % 2 ? "router says why" : NULL, NULL);
        tc_resp_t r;
        post_turn("c-err", NULL, "{\"text\":\"x\"}", &r);
        assert_error(&r, cases[i].http, cases[i].code);
        assert_int_equal(tc_has_header(&r, "Retry-After", "1"), cases[i].retry);
        json_t *v = body_json(&r);
        const char *msg =
            json_string_value(json_object_get(json_object_get(v, "error"), "message"));
        assert_string_equal(msg, i % 2 ? "router says why" : mesh_strerror(cases[i].status));
        json_decref(v);
        tc_resp_free(&r);
    }
}

static void test_turn_deadline_504(void **state)
{
    fake_set(&F->fake, "agent", 0, NULL, NULL);
    F->fake.answers[0].hold = true;
    tc_resp_t r;
    uint64_t t0 = tc_now_ms();
    post_turn("c-slow", "X-Mesh-Timeout-Ms: 150\r\n", "{\"text\":\"x\"}", &r);
    uint64_t took = tc_now_ms() - t0;
    assert_error(&r, 504, "deadline_exceeded");
    assert_true(took >= 150 && took < 2000);
    tc_resp_free(&r);
    assert_int_equal(F->fake.last.deadline_ms, 150);
    /* A late FINAL is ignored. */
    fake_final(&F->fake, F->fake.held_ident, F->fake.held_ident_len, "agent", F->fake.held_id, 0,
               NULL, NULL);
    for (int i = 0; i < 20; i++)
        tc_step(&F->env, -1, 1);
    assert_int_equal(mesh_client_inflight(gateway_client(F->gw)), 0);
}

static bool no_inflight(void *arg)
{
    return mesh_client_inflight(gateway_client(F->gw)) == 0;
}

static void test_client_leaves_mid_turn(void **state)
{
    fake_set(&F->fake, "agent", 0, NULL, NULL);
    F->fake.answers[0].hold = true;
    tc_client_t c;
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(&F->env, &c,
                            "POST /v1/conversations/c-gone/messages HTTP/1.1\r\n"
                            "Content-Length: 12\r\n\r\n{\"text\":\"x\"}"));
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    while (F->fake.requests == 0 && tc_now_ms() < end)
        tc_step(&F->env, -1, 1);
    assert_int_equal(F->fake.requests, 1);
    assert_int_equal(mesh_client_inflight(gateway_client(F->gw)), 1);
    tc_close(&c);
    /* The mesh request is canceled when the connection goes. */
    assert_true(tc_wait(&F->env, no_inflight, NULL, TC_WAIT_MS));
    /* The router's answer arrives afterwards and is dropped safely. */
    fake_final(&F->fake, F->fake.held_ident, F->fake.held_ident_len, "agent", F->fake.held_id, 0,
               NULL, NULL);
    for (int i = 0; i < 20; i++)
        tc_step(&F->env, -1, 1);
    /* The gateway still serves. */
    tc_resp_t r;
    request("GET", "/healthz", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
}

/* Read until the body so far contains want (raw bytes, chunk framing included). */
static bool recv_until(tc_client_t *c, const char *want)
{
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    for (;;) {
        tc_pull(c);
        c->buf[c->len] = '\0';
        if (strstr(c->buf, want))
            return true;
        if (c->eof || c->reset || tc_now_ms() > end)
            return false;
        tc_step(&F->env, c->fd, 1);
    }
}

/* The body of a complete chunked response in c->buf, de-chunked (malloc'd). */
static char *dechunk(const char *raw)
{
    const char *p = strstr(raw, "\r\n\r\n");
    assert_non_null(p);
    p += 4;
    char *out = calloc(1, strlen(p) + 1);
    size_t len = 0;
    for (;;) {
        char *end;
        unsigned long n = strtoul(p, &end, 16);
        assert_memory_equal(end, "\r\n", 2);
        if (n == 0)
            break;
        memcpy(out + len, end + 2, n);
        len += n;
        p = end + 2 + n;
        assert_memory_equal(p, "\r\n", 2);
        p += 2;
    }
    return out;
}

static void hold_stream_turn(tc_client_t *c, const char *conv)
{
    fake_set(&F->fake, "agent", 0, NULL, NULL);
    F->fake.answers[0].hold = true;
    assert_true(tc_connect(c, F->port));
    char req[512];
    snprintf(req, sizeof(req),
             "POST /v1/conversations/%s/messages HTTP/1.1\r\nAccept: text/event-stream\r\n"
             "Content-Length: 31\r\n\r\n{\"text\":\"x\",\"message_id\":\"m-1\"}",
             conv);
    assert_true(tc_send_str(&F->env, c, req));
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    while (F->fake.requests == 0 && tc_now_ms() < end)
        tc_step(&F->env, -1, 1);
    assert_int_equal(F->fake.requests, 1);
    /* the turn is asked to stream */
    assert_true(json_is_true(json_object_get(F->fake.last.args, "stream")));
    /* the head goes out before any answer */
    assert_true(recv_until(c, "\r\n\r\n"));
    assert_non_null(strstr(c->buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strcasestr(c->buf, "Content-Type: text/event-stream"));
    assert_non_null(strcasestr(c->buf, "Transfer-Encoding: chunked"));
}

/* PARTIALs become delta/tool/handoff events in order, unknown ones are
 * skipped, the FINAL is the `final` event with the 200 body's JSON. */
static void test_turn_sse_events(void **state)
{
    tc_client_t c;
    hold_stream_turn(&c, "c-sse");
    fake_partial(&F->fake, "agent",
                 "{\"tool\":{\"name\":\"policy.lookup\",\"call_id\":\"k1\",\"phase\":\"start\"}}");
    assert_true(recv_until(&c, "event: tool\ndata: "));
    fake_partial(&F->fake, "agent", "{\"something_new\":1}");
    fake_partial(&F->fake, "agent", "{\"delta\":\"保单\"}");
    fake_partial(&F->fake, "agent", "{\"delta\":\"\"}");
    fake_partial(&F->fake, "agent", "{\"delta\":\" ok\\nline\"}");
    fake_partial(&F->fake, "agent", "{\"handoff\":{\"state\":\"pending\",\"reason\":\"injury\"}}");
    json_t *fin =
        json_pack("{s:s, s:s, s:s, s:s, s:[], s:b, s:i, s:s, s:{s:i}}", "conversation_id", "c-sse",
                  "message_id", "m-1", "agent", "policy_qa", "reply", "保单 ok\nline", "tool_calls",
                  "duplicate", 0, "steps", 2, "handoff", "pending", "usage", "prompt_tokens", 5);
    fake_final(&F->fake, F->fake.held_ident, F->fake.held_ident_len, "agent", F->fake.held_id, 0,
               NULL, fin);
    json_decref(fin);
    assert_true(recv_until(&c, "\r\n0\r\n\r\n"));
    char *body = dechunk(c.buf);
    const char *want =
        "event: tool\ndata: {\"name\":\"policy.lookup\",\"call_id\":\"k1\",\"phase\":\"start\"}\n\n"
        "event: delta\ndata: {\"text\":\"保单\"}\n\n"
        "event: delta\ndata: {\"text\":\" ok\\nline\"}\n\n"
        "event: handoff\ndata: {\"state\":\"pending\",\"reason\":\"injury\"}\n\n"
        "event: final\ndata: {\"conversation_id\":\"c-sse\",\"message_id\":\"m-1\","
        "\"agent\":\"policy_qa\",\"reply\":\"保单 ok\\u000aline\",\"tool_calls\":[],"
        "\"duplicate\":false,\"steps\":2,\"usage\":{\"prompt_tokens\":5},"
        "\"handoff\":\"pending\"}\n\n";
    assert_string_equal(body, want);
    free(body);
    /* keep-alive after the stream */
    c.len = 0;
    assert_true(tc_send_str(&F->env, &c, "GET /healthz HTTP/1.1\r\n\r\n"));
    tc_resp_t r;
    assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
    tc_close(&c);
}

/* The delta event is written without building {"text":...} as a tree: its
 * bytes must still be exactly what json_dumps made of that object, also for
 * a delta larger than the scratch buffer (it grows) and for every byte that
 * JSON escapes (quotes, backslash, each control byte, DEL, '/', UTF-8). */
static void test_turn_sse_delta_escaping(void **state)
{
    (void)state;
    tc_client_t c;
    hold_stream_turn(&c, "c-sse-esc");
    char text[20000];
    size_t n = 0;
    for (int b = 1; b < 0x20; b++)
        text[n++] = (char)b;
    const char *rest = "\"\\/\x7f \xe4\xbf\x9d\xe5\x8d\x95 \xf0\x9f\x99\x82";
    memcpy(text + n, rest, strlen(rest));
    n += strlen(rest);
    while (n < sizeof(text) - 1) {
        text[n] = (char)('a' + n % 26);
        n++;
    }
    text[n] = '\0';
    json_t *pd = json_pack("{s:s}", "delta", text);
    char *pdata = json_dumps(pd, JSON_COMPACT);
    fake_partial(&F->fake, "agent", pdata);
    json_t *ev = json_pack("{s:s}", "text", text);
    char *want_data = json_dumps(ev, JSON_COMPACT);
    char *want = malloc(strlen(want_data) + 32);
    sprintf(want, "event: delta\ndata: %s\n\n", want_data);
    json_t *fin = json_pack("{s:s}", "reply", "ok");
    fake_final(&F->fake, F->fake.held_ident, F->fake.held_ident_len, "agent", F->fake.held_id, 0,
               NULL, fin);
    json_decref(fin);
    assert_true(recv_until(&c, "\r\n0\r\n\r\n"));
    char *body = dechunk(c.buf);
    assert_true(strncmp(body, want, strlen(want)) == 0);
    assert_non_null(strstr(body + strlen(want), "event: final\n"));
    free(body);
    free(want);
    free(want_data);
    json_decref(ev);
    free(pdata);
    json_decref(pd);
    tc_close(&c);
}

/* A failed turn ends the stream with an `error` event in the usual error shape. */
static void test_turn_sse_error(void **state)
{
    tc_client_t c;
    hold_stream_turn(&c, "c-sse-err");
    fake_partial(&F->fake, "agent", "{\"delta\":\"half\"}");
    fake_final(&F->fake, F->fake.held_ident, F->fake.held_ident_len, "agent", F->fake.held_id,
               MESH_EUNAVAIL, "memory is down", NULL);
    assert_true(recv_until(&c, "\r\n0\r\n\r\n"));
    char *body = dechunk(c.buf);
    assert_string_equal(body, "event: delta\ndata: {\"text\":\"half\"}\n\n"
                              "event: error\ndata: {\"error\":{\"code\":\"unavailable\","
                              "\"message\":\"memory is down\"}}\n\n");
    free(body);
    tc_close(&c);
}

/* The client leaves mid-stream: the gateway sends CANCEL for the turn. */
static void test_turn_sse_client_leaves(void **state)
{
    tc_client_t c;
    hold_stream_turn(&c, "c-sse-gone");
    fake_partial(&F->fake, "agent", "{\"delta\":\"a\"}");
    assert_true(recv_until(&c, "event: delta"));
    tc_close(&c);
    assert_true(tc_wait(&F->env, no_inflight, NULL, TC_WAIT_MS));
    uint64_t end = tc_now_ms() + TC_WAIT_MS;
    while (F->fake.cancels == 0 && tc_now_ms() < end)
        tc_step(&F->env, -1, 1);
    assert_int_equal(F->fake.cancels, 1);
    assert_string_equal(F->fake.cancel_id, F->fake.held_id);
    /* later PARTIALs and the FINAL are dropped safely */
    fake_partial(&F->fake, "agent", "{\"delta\":\"b\"}");
    fake_final(&F->fake, F->fake.held_ident, F->fake.held_ident_len, "agent", F->fake.held_id, 0,
               NULL, NULL);
    for (int i = 0; i < 20; i++)
        tc_step(&F->env, -1, 1);
    tc_resp_t r;
    request("GET", "/healthz", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
}

static void test_readyz_ready(void **state)
{
    fake_set(&F->fake, "mmi.service", 0, NULL, "{\"service\":\"memory\",\"workers\":2}");
    tc_resp_t r;
    request("GET", "/readyz", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ready\",\"routers\":1}");
    tc_resp_free(&r);
    assert_string_equal(F->fake.last_service, "mmi.service");
    assert_string_equal(json_string_value(json_object_get(F->fake.last.args, "service")), "memory");
}

static void test_readyz_no_memory(void **state)
{
    fake_set(&F->fake, "mmi.service", MESH_ENOTFOUND, NULL, NULL);
    tc_resp_t r;
    request("GET", "/readyz", NULL, NULL, &r);
    assert_error(&r, 503, "not_ready");
    assert_non_null(strstr(r.body, "memory"));
    tc_resp_free(&r);
}

static void test_conv_get(void **state)
{
    fake_set(&F->fake, "memory", 0, NULL,
             "{\"conversation_id\":\"c7\",\"state\":{\"agent\":\"health_review\",\"turns\":\"2\"},"
             "\"messages\":[{\"role\":\"user\",\"text\":\"hi\",\"ts\":1},"
             "{\"role\":\"assistant\",\"text\":\"hello\",\"agent\":\"health_review\"}],"
             "\"total\":2}");
    tc_resp_t r;
    request("GET", "/v1/conversations/c7?limit=5", "X-Mesh-Tenant: t1\r\n", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *v = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(v, "conversation_id")), "c7");
    assert_string_equal(json_string_value(json_object_get(v, "agent")), "health_review");
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "state"), "turns")),
                        "2");
    json_t *msgs = json_object_get(v, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "text")),
                        "hello");
    json_decref(v);
    tc_resp_free(&r);
    assert_string_equal(F->fake.last_service, "memory");
    assert_string_equal(F->fake.last.op, "conv.get");
    assert_string_equal(F->fake.last.conv, "c7");
    assert_string_equal(F->fake.last.tenant, "t1");
    assert_int_equal(json_integer_value(json_object_get(F->fake.last.args, "limit")), 5);

    /* Default and clamped limits; a bad one is refused. */
    request("GET", "/v1/conversations/c7", NULL, NULL, &r);
    tc_resp_free(&r);
    assert_int_equal(json_integer_value(json_object_get(F->fake.last.args, "limit")), 100);
    request("GET", "/v1/conversations/c7?x=1&limit=50000", NULL, NULL, &r);
    tc_resp_free(&r);
    assert_int_equal(json_integer_value(json_object_get(F->fake.last.args, "limit")), 1000);
    expect_error("GET", "/v1/conversations/c7?limit=ten", NULL, NULL, 400, "invalid_parameter");

    /* No agent yet: null. */
    fake_set(&F->fake, "memory", 0, NULL, "{\"state\":{},\"messages\":[]}");
    request("GET", "/v1/conversations/c8", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    v = body_json(&r);
    assert_true(json_is_null(json_object_get(v, "agent")));
    json_decref(v);
    tc_resp_free(&r);
}

static void test_conv_get_404(void **state)
{
    fake_set(&F->fake, "memory", MESH_ENOTFOUND, NULL, NULL);
    expect_error("GET", "/v1/conversations/nobody", NULL, NULL, 404, "not_found");
    fake_set(&F->fake, "memory", MESH_EUNAVAIL, "redis down", NULL);
    expect_error("GET", "/v1/conversations/nobody", NULL, NULL, 503, "unavailable");
}

static void test_keep_alive_across_turns(void **state)
{
    /* Two turns pipelined on one connection come back in order. */
    fake_set(&F->fake, "agent", 0, NULL, "{\"reply\":\"same\"}");
    tc_client_t c;
    tc_resp_t r;
    assert_true(tc_connect(&c, F->port));
    assert_true(tc_send_str(&F->env, &c,
                            "POST /v1/conversations/k/messages HTTP/1.1\r\nContent-Length: 29\r\n"
                            "\r\n{\"text\":\"1\",\"message_id\":\"a\"}"
                            "POST /v1/conversations/k/messages HTTP/1.1\r\nContent-Length: 29\r\n"
                            "\r\n{\"text\":\"2\",\"message_id\":\"b\"}"));
    const char *want[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        assert_true(tc_recv(&F->env, &c, &r, TC_WAIT_MS));
        assert_int_equal(r.status, 200);
        json_t *v = body_json(&r);
        assert_string_equal(json_string_value(json_object_get(v, "message_id")), want[i]);
        json_decref(v);
        tc_resp_free(&r);
    }
    tc_close(&c);
    assert_int_equal(F->fake.requests, 2);
}

int main(void)
{
    mesh_log_init("test", getenv("TEST_VERBOSE") ? MESH_LOG_DEBUG : MESH_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz, setup_no_router, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_no_router, setup_no_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_no_router, setup_no_router, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_method, setup_no_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_validation, setup_no_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_success, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_defaults, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_duplicate_passthrough, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_malformed_reply_502, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_error_mapping, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_deadline_504, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_client_leaves_mid_turn, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_sse_events, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_sse_delta_escaping, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_sse_error, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_turn_sse_client_leaves, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_ready, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_no_memory, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_conv_get, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_conv_get_404, setup_router, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_across_turns, setup_router, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
