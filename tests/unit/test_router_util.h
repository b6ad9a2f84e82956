/*
 * test_router_util.h - helpers shared by the router's tests: raw ZeroMQ
 * peers that speak the mesh protocol (fake clients and workers), a loop
 * pump for in-process brokers, free ports and temporary data directories,
 * and the agent-loop fixture (a broker with the agent loop and fake workers).
 *
 * Waiting is always "poll a condition until a bounded deadline": the uv
 * loop (when the broker runs in this process) is run without blocking and
 * the raw sockets are polled with a 1 ms timeout in between.
 */
#ifndef TEST_ROUTER_UTIL_H
#define TEST_ROUTER_UTIL_H

#include <arpa/inet.h>
#include <jansson.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "agent_loop.h"
#include "agents.h"
#include "broker.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_proto.h"

#define RT_MAX_FRAMES 32
#define RT_WAIT_MS    3000

typedef struct {
    int n;
    size_t size[RT_MAX_FRAMES];
    unsigned char *data[RT_MAX_FRAMES];
} rt_msg_t;

static inline uint64_t rt_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static inline void rt_msg_free(rt_msg_t *m)
{
    for (int i = 0; i < m->n && i < RT_MAX_FRAMES; i++)
        free(m->data[i]);
    memset(m, 0, sizeof(*m));
}

/* Receive one whole multipart message without blocking. 1 if one was read. */
static inline int rt_try_recv(void *sock, rt_msg_t *m)
{
    memset(m, 0, sizeof(*m));
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        int rc = zmq_msg_recv(&part, sock, m->n == 0 ? ZMQ_DONTWAIT : 0);
        if (rc < 0) {
            zmq_msg_close(&part);
            return 0;
        }
        if (m->n < RT_MAX_FRAMES) {
            m->size[m->n] = zmq_msg_size(&part);
            m->data[m->n] = malloc(m->size[m->n] + 1);
            memcpy(m->data[m->n], zmq_msg_data(&part), m->size[m->n]);
            m->data[m->n][m->size[m->n]] = 0;
            m->n++;
        }
        int more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        if (!more)
            return 1;
    }
}

/* Run the loop (if any) and poll sock until a message arrives or timeout_ms pass. */
static inline int rt_recv(uv_loop_t *loop, void *sock, rt_msg_t *m, int timeout_ms)
{
    uint64_t end = rt_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (loop)
            uv_run(loop, UV_RUN_NOWAIT);
        if (rt_try_recv(sock, m))
            return 1;
        if (rt_now_ms() >= end)
            return 0;
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        zmq_poll(&it, 1, loop ? 1 : 10);
    }
}

/* Run the loop for ms milliseconds (lets timers of an in-process broker fire). */
static inline void rt_spin(uv_loop_t *loop, int ms)
{
    uint64_t end = rt_now_ms() + (uint64_t)ms;
    while (rt_now_ms() < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        zmq_poll(NULL, 0, 1);
    }
}

static inline int rt_send_raw(void *sock, int n, const void *const *data, const size_t *size)
{
    for (int i = 0; i < n; i++) {
        if (zmq_send(sock, data[i], size[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
            return -1;
    }
    return 0;
}

static inline int rt_send(void *sock, mesh_side_t side, uint8_t cmd, const char *service,
                          const void *body, size_t len)
{
    mesh_frame_t f[8];
    uint8_t c;
    int n = mesh_proto_frames(side, cmd, service, body, len, &c, f);
    if (n < 0)
        return n;
    const void *data[8];
    size_t size[8];
    for (int i = 0; i < n; i++) {
        data[i] = f[i].data;
        size[i] = f[i].size;
    }
    return rt_send_raw(sock, n, data, size);
}

/* Encode a REQUEST body; args is borrowed. Caller destroys sb. */
static inline void rt_request_body(msgpack_sbuffer *sb, const char *id, const char *op,
                                   const char *conv, uint32_t deadline_ms, bool idem, json_t *args)
{
    mesh_request_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.op, sizeof(r.op), "%s", op);
    snprintf(r.conv, sizeof(r.conv), "%s", conv ? conv : "");
    r.deadline_ms = deadline_ms;
    r.idem = idem;
    r.args = args;
    msgpack_sbuffer_init(sb);
    if (mesh_request_encode(&r, sb) != 0)
        abort();
}

static inline int rt_client_request(void *sock, const char *service, const char *id, const char *op,
                                    const char *conv, uint32_t deadline_ms, bool idem, json_t *args)
{
    msgpack_sbuffer sb;
    rt_request_body(&sb, id, op, conv, deadline_ms, idem, args);
    int rc = rt_send(sock, MESH_SIDE_CLIENT, MESH_C_REQUEST, service, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static inline int rt_worker_ready(void *sock, const char *service, uint32_t capacity)
{
    mesh_ready_t r = {.capacity = capacity};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mesh_ready_encode(&r, &sb);
    int rc = rt_send(sock, MESH_SIDE_WORKER, MESH_W_READY, service, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* A worker's PARTIAL (final=false) or FINAL; data is borrowed. */
static inline int rt_worker_reply(void *sock, bool final, const char *id, int status, json_t *data)
{
    mesh_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    snprintf(rep.id, sizeof(rep.id), "%s", id);
    rep.status = status;
    rep.data = data;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    mesh_reply_encode(&rep, &sb);
    int rc = rt_send(sock, MESH_SIDE_WORKER, final ? MESH_W_FINAL : MESH_W_PARTIAL, NULL, sb.data,
                     sb.size);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* Wait for a command of side (HEARTBEATs skipped unless wanted). 1 if decoded into out. */
static inline int rt_expect(uv_loop_t *loop, void *sock, mesh_side_t side, rt_msg_t *m,
                            mesh_proto_msg_t *out, bool skip_heartbeats, int timeout_ms)
{
    uint64_t end = rt_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = rt_now_ms();
        if (now >= end)
            return 0;
        if (!rt_recv(loop, sock, m, (int)(end - now)))
            return 0;
        mesh_frame_t f[RT_MAX_FRAMES];
        for (int i = 0; i < m->n; i++) {
            f[i].data = m->data[i];
            f[i].size = m->size[i];
        }
        if (mesh_proto_decode(f, (size_t)m->n, side, SIZE_MAX, out) != 0) {
            rt_msg_free(m);
            continue;
        }
        uint8_t hb = side == MESH_SIDE_CLIENT ? MESH_C_HEARTBEAT : MESH_W_HEARTBEAT;
        if (skip_heartbeats && out->cmd == hb) {
            rt_msg_free(m);
            continue;
        }
        return 1;
    }
}

/* Worker side: the next REQUEST, decoded. 1 or 0 on timeout. */
static inline int rt_worker_next(uv_loop_t *loop, void *sock, mesh_request_t *req, int timeout_ms)
{
    rt_msg_t m;
    mesh_proto_msg_t pm;
    uint64_t end = rt_now_ms() + (uint64_t)timeout_ms;
    while (rt_now_ms() < end) {
        if (!rt_expect(loop, sock, MESH_SIDE_WORKER, &m, &pm, true, (int)(end - rt_now_ms())))
            return 0;
        if (pm.cmd == MESH_W_REQUEST) {
            int rc = mesh_request_decode(pm.body, pm.body_len, req);
            rt_msg_free(&m);
            return rc == 0;
        }
        rt_msg_free(&m);
    }
    return 0;
}

/* Client side: the next PARTIAL or FINAL, decoded. 1 or 0 on timeout. */
static inline int rt_client_next(uv_loop_t *loop, void *sock, bool *final, mesh_reply_t *rep,
                                 int timeout_ms)
{
    rt_msg_t m;
    mesh_proto_msg_t pm;
    uint64_t end = rt_now_ms() + (uint64_t)timeout_ms;
    while (rt_now_ms() < end) {
        if (!rt_expect(loop, sock, MESH_SIDE_CLIENT, &m, &pm, true, (int)(end - rt_now_ms())))
            return 0;
        if (pm.cmd == MESH_C_PARTIAL || pm.cmd == MESH_C_FINAL) {
            *final = pm.cmd == MESH_C_FINAL;
            int rc = mesh_reply_decode(pm.body, pm.body_len, rep);
            rt_msg_free(&m);
            return rc == 0;
        }
        rt_msg_free(&m);
    }
    return 0;
}

/* A TCP port on 127.0.0.1 that was free a moment ago. */
static inline int rt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static inline void *rt_dealer(void *zctx, const char *endpoint)
{
    void *s = zmq_socket(zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_connect(s, endpoint) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Write text to dir/name (dir must exist). 0 on success. */
static inline int rt_write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* The tool catalogue used by the router's tests (a subset of data/tools.json's shape). */
#define RT_TOOLS_JSON                                                                              \
    "[{\"name\":\"policy.lookup\",\"description\":\"Look up a policy\",\"idempotent\":true,"       \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"policy_no\":{\"type\":\"string\","      \
    "\"pattern\":\"^P[0-9]{5}$\"}},\"required\":[\"policy_no\"],\"additionalProperties\":false}"   \
    "},"                                                                                           \
    "{\"name\":\"claim.register\",\"description\":\"Register a claim\",\"idempotent\":false,"      \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"policy_no\":{\"type\":\"string\"}},"    \
    "\"required\":[\"policy_no\"]}}]"

#define RT_AGENT_POLICY_QA                                                                                 \
    "{\"name\":\"policy_qa\",\"prompt\":{\"zh\":\"你是保单问答助手\",\"en\":\"You are the policy " \
    "assistant\"},\"tools\":[\"policy.lookup\"],\"tier\":\"small\",\"max_steps\":3,"                       \
    "\"triage\":{\"keywords\":[\"保单\",\"Policy\"]},"                                                   \
    "\"fallback\":{\"zh\":\"抱歉，无法完成\",\"en\":\"Sorry, I could not finish\"}}"

#define RT_AGENT_CLAIMS                                                                            \
    "{\"name\":\"claims\",\"prompt\":{\"zh\":\"你是理赔助手\",\"en\":\"You are the claims "  \
    "assistant\"},\"tools\":[\"claim.register\",\"policy.lookup\"],\"tier\":\"large\","            \
    "\"max_steps\":2,\"triage\":{\"keywords\":[\"理赔\",\"claim\"]},"                            \
    "\"fallback\":{\"zh\":\"理赔暂时无法完成\",\"en\":\"The claim could not be finished\"}}"

/* Make a fresh data dir with tools.json and agents/{policy_qa,claims}.json. Returns 0. */
static inline int rt_make_data_dir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/mesh-router-test-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char agents[1024];
    snprintf(agents, sizeof(agents), "%s/agents", dir);
    if (mkdir(agents, 0700) != 0)
        return -1;
    if (rt_write_file(dir, "tools.json", RT_TOOLS_JSON) != 0 ||
        rt_write_file(agents, "policy_qa.json", RT_AGENT_POLICY_QA) != 0 ||
        rt_write_file(agents, "claims.json", RT_AGENT_CLAIMS) != 0)
        return -1;
    return 0;
}

/* rm -r of a directory made by rt_make_data_dir (two levels, files only). */
static inline void rt_remove_dir(const char *dir)
{
    char cmd[1200];
    if (strncmp(dir, "/tmp/mesh-router-test-", 22) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- the agent-loop fixture (test_router_agent.c, test_router_state.c) -------------------- */
/*
 * An in-process broker with the agent loop on a private uv loop, a client
 * dealer on its frontend and three fake workers (memory, llm, tools) on its
 * backend; the tests script the workers' answers step by step. Needs cmocka
 * (included before this header): the helpers fail the running test.
 */
typedef struct {
    uv_loop_t loop;
    void *zctx;
    char dir[256];
    router_agents_t *agents;
    router_broker_t *b;
    router_agent_loop_t *al;
    void *client, *memory, *llm, *tools;
    char back[64]; /* the backend endpoint, for extra workers */
} rt_fx_t;

typedef struct {
    const char *tag; /* endpoint prefix: inproc://<tag>-front-<n>, <tag>-back-<n> */
    uint32_t conv_queue_max;
    uint32_t lease_ms;
    const char *client_id;                   /* the client's routing id; NULL: none set */
    int (*make_dir)(char *dir, size_t size); /* the data dir; NULL: rt_make_data_dir */
} rt_fx_opts_t;

static inline void *rt_fx_dealer_ready(rt_fx_t *fx, const char *endpoint, const char *service)
{
    void *s = rt_dealer(fx->zctx, endpoint);
    rt_worker_ready(s, service, 16);
    return s;
}

static inline void *rt_fx_client(rt_fx_t *fx, const char *endpoint, const char *id)
{
    if (id == NULL)
        return rt_dealer(fx->zctx, endpoint);
    void *s = zmq_socket(fx->zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
    if (zmq_connect(s, endpoint) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* cmocka setup: the fixture in *state once every fake worker is registered. 0 or -1. */
static inline int rt_fx_setup(void **state, const rt_fx_opts_t *opts)
{
    static int counter;
    rt_fx_t *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    uv_loop_init(&fx->loop);
    fx->zctx = zmq_ctx_new();
    if ((opts->make_dir ? opts->make_dir : rt_make_data_dir)(fx->dir, sizeof(fx->dir)) != 0)
        return -1;
    char err[512];
    if (router_agents_load(fx->dir, "policy_qa", &fx->agents, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    char front[64];
    snprintf(front, sizeof(front), "inproc://%s-front-%d", opts->tag, counter);
    snprintf(fx->back, sizeof(fx->back), "inproc://%s-back-%d", opts->tag, counter++);
    router_broker_opts_t o = {.frontend = front,
                              .backend = fx->back,
                              .heartbeat_ms = 1000,
                              .liveness = 3,
                              .queue_max = 64,
                              .noworker_ms = 300};
    mesh_zsock_opts_default(&o.zopts);
    o.zopts.linger_ms = 0;
    fx->b = router_broker_new(&fx->loop, fx->zctx, &o);
    if (!fx->b || router_broker_start(fx->b) != 0)
        return -1;
    router_agent_loop_opts_t ao = {
        .conv_queue_max = opts->conv_queue_max, .history_window = 20, .lease_ms = opts->lease_ms};
    fx->al = router_agent_loop_new(&fx->loop, fx->b, fx->agents, &ao);
    router_broker_set_agent_handler(fx->b, router_agent_loop_handle, fx->al);
    fx->client = rt_fx_client(fx, front, opts->client_id);
    if (fx->client == NULL)
        return -1;
    fx->memory = rt_fx_dealer_ready(fx, fx->back, "memory");
    fx->llm = rt_fx_dealer_ready(fx, fx->back, "llm");
    fx->tools = rt_fx_dealer_ready(fx, fx->back, "tools");
    uint64_t end = rt_now_ms() + RT_WAIT_MS;
    while ((router_broker_workers(fx->b, "memory") == 0 ||
            router_broker_workers(fx->b, "llm") == 0 ||
            router_broker_workers(fx->b, "tools") == 0) &&
           rt_now_ms() < end)
        rt_spin(&fx->loop, 1);
    *state = fx;
    return 0;
}

/* cmocka teardown: no turn may still be active; every handle closes. */
static inline int rt_fx_teardown(void **state)
{
    rt_fx_t *fx = *state;
    zmq_close(fx->client);
    zmq_close(fx->memory);
    zmq_close(fx->llm);
    zmq_close(fx->tools);
    assert_int_equal(router_agent_loop_active(fx->al), 0);
    router_agent_loop_destroy(&fx->al);
    router_broker_destroy(&fx->b);
    router_agents_unref(&fx->agents);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    zmq_ctx_term(fx->zctx);
    rt_remove_dir(fx->dir);
    free(fx);
    return 0;
}

/* The next request a worker gets; fails the test when none comes or its op is not op. */
static inline void rt_next_req(rt_fx_t *fx, void *w, mesh_request_t *r, const char *op)
{
    if (!rt_worker_next(&fx->loop, w, r, RT_WAIT_MS))
        fail_msg("no %s request arrived", op);
    if (strcmp(r->op, op) != 0)
        fail_msg("wanted op %s, got %s", op, r->op);
}

/* Fails the test when the worker gets any request within ms. */
static inline void rt_no_req(rt_fx_t *fx, void *w, int ms)
{
    mesh_request_t r;
    if (rt_worker_next(&fx->loop, w, &r, ms)) {
        char op[64];
        snprintf(op, sizeof(op), "%s", r.op);
        mesh_request_clear(&r);
        fail_msg("unexpected %s request", op);
    }
}

/* Answer r as a worker with status and data (taken). */
static inline void rt_reply(void *w, const mesh_request_t *r, int status, json_t *data)
{
    rt_worker_reply(w, true, r->id, status, data);
    json_decref(data);
}

/* Memory: answer turn.begin with state (taken) and a history holding the user message. */
static inline void rt_begin_with(rt_fx_t *fx, const char *message_id, json_t *state)
{
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.begin");
    assert_string_equal(json_string_value(json_object_get(r.args, "message_id")), message_id);
    json_t *data =
        json_pack("{s:b, s:o, s:[{s:s, s:s}]}", "duplicate", 0, "state", state, "history", "role",
                  "user", "text", json_string_value(json_object_get(r.args, "text")));
    rt_reply(fx->memory, &r, 0, data);
    mesh_request_clear(&r);
}

/* Keep r in *seen when seen is not NULL, else clear it. */
static inline void rt_keep(mesh_request_t *r, mesh_request_t *seen)
{
    if (seen)
        *seen = *r;
    else
        mesh_request_clear(r);
}

/* The next llm.chat, answered with data (taken); the request is kept in *seen when not NULL. */
static inline void rt_llm_answer(rt_fx_t *fx, json_t *data, mesh_request_t *seen)
{
    mesh_request_t r;
    rt_next_req(fx, fx->llm, &r, "llm.chat");
    rt_reply(fx->llm, &r, 0, data);
    rt_keep(&r, seen);
}

static inline json_t *rt_text_reply(const char *text)
{
    return json_pack("{s:s, s:s}", "type", "text", "text", text);
}

static inline json_t *rt_calls_reply(json_t *calls)
{
    return json_pack("{s:s, s:o}", "type", "tool_calls", "calls", calls);
}

/* Memory: answer the next turn.end (not a duplicate); kept in *seen when not NULL. */
static inline void rt_end_ok(rt_fx_t *fx, mesh_request_t *seen)
{
    mesh_request_t r;
    rt_next_req(fx, fx->memory, &r, "turn.end");
    rt_reply(fx->memory, &r, 0, json_pack("{s:b}", "duplicate", 0));
    rt_keep(&r, seen);
}

/* The client's next message must be the FINAL of id. */
static inline void rt_client_final(rt_fx_t *fx, const char *id, mesh_reply_t *rep)
{
    bool final = false;
    if (!rt_client_next(&fx->loop, fx->client, &final, rep, RT_WAIT_MS))
        fail_msg("client got no answer for %s", id);
    assert_true(final);
    assert_string_equal(rep->id, id);
}

/* The client's next message must be a PARTIAL. */
static inline void rt_client_partial(rt_fx_t *fx, mesh_reply_t *rep)
{
    bool final = true;
    if (!rt_client_next(&fx->loop, fx->client, &final, rep, RT_WAIT_MS))
        fail_msg("client got no partial");
    assert_false(final);
}

/* Fails the test when the client gets anything within ms. */
static inline void rt_no_client_message(rt_fx_t *fx, int ms)
{
    bool final;
    mesh_reply_t rep;
    if (rt_client_next(&fx->loop, fx->client, &final, &rep, ms)) {
        mesh_reply_clear(&rep);
        fail_msg("the client got a %s", final ? "FINAL" : "PARTIAL");
    }
}

/* Spin until no turn is active (bounded); fails the test otherwise. */
static inline void rt_wait_idle(rt_fx_t *fx)
{
    uint64_t end = rt_now_ms() + RT_WAIT_MS;
    while (router_agent_loop_active(fx->al) > 0 && rt_now_ms() < end)
        rt_spin(&fx->loop, 1);
    assert_int_equal(router_agent_loop_active(fx->al), 0);
}

static inline const char *rt_jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

#endif
