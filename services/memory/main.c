/*
 * main.c - mesh-memory: the conversation memory worker (ops turn.begin,
 * turn.end, turn.abort, conv.get, lease.renew, trace.get, tool.call
 * (claim.register, claim.get) and the handoff ops over Redis;
 * docs/memory.md).
 *
 * The mesh_service.h skeleton plus this service's config table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory_ops.h"
#include "memory_worker.h"
#include "mesh/mesh.h"

#define MEMORY_TTL_MAX_S            (INT64_C(10) * 365 * 24 * 3600) /* ten years */
#define MEMORY_HISTORY_LIMIT        1000000 /* MESH_HISTORY_MAX upper bound */
#define MEMORY_REDIS_TIMEOUT_MAX_MS 600000

enum {
    CFG_BACKENDS = 0,
    CFG_REDIS_HOST,
    CFG_REDIS_PORT,
    CFG_REDIS_TIMEOUT,
    CFG_TTL,
    CFG_HISTORY,
    CFG_CAPACITY,
    CFG_HANDOFF_REFRESH,
    CFG_COUNT,
};

static mesh_config_entry_t s_config[CFG_COUNT] = {
    [CFG_BACKENDS] = {"MESH_ROUTER_BACKENDS", MESH_CFG_STRING, "tcp://127.0.0.1:7002", 0, 0,
                      "router backend endpoints, comma-separated (one per router)"},
    [CFG_REDIS_HOST] = {"MESH_REDIS_HOST", MESH_CFG_STRING, "127.0.0.1", 0, 0, "Redis host"},
    [CFG_REDIS_PORT] = {"MESH_REDIS_PORT", MESH_CFG_INT, "6379", 1, 65535, "Redis port"},
    [CFG_REDIS_TIMEOUT] = {"MESH_REDIS_TIMEOUT_MS", MESH_CFG_INT, "2000", 1,
                           MEMORY_REDIS_TIMEOUT_MAX_MS, "per-command and connect timeout"},
    [CFG_TTL] = {"MESH_CONV_TTL_S", MESH_CFG_INT, "604800", 1, MEMORY_TTL_MAX_S,
                 "conversation keys expire after this idle time (seconds)"},
    [CFG_HISTORY] = {"MESH_HISTORY_MAX", MESH_CFG_INT, "1000", 1, MEMORY_HISTORY_LIMIT,
                     "messages kept per conversation (older ones trimmed)"},
    [CFG_CAPACITY] = {"MESH_WORKER_CAPACITY", MESH_CFG_INT, "256", 1, MESH_WORKER_CAPACITY_MAX,
                      "requests in flight at once"},
    [CFG_HANDOFF_REFRESH] = {"MESH_HANDOFF_REFRESH_MS", MESH_CFG_INT, "15000", 0, 3600000,
                             "refresh period of the mesh_handoff_queue_length gauge (0: only "
                             "when the queue is listed)"},
};

typedef struct {
    memory_worker_t *worker;
    char ep_storage[MESH_MAX_ROUTERS][256]; /* the worker's endpoints point in here */
    void (*done)(mesh_service_ctx_t *ctx);
    mesh_service_ctx_t *ctx;
} memory_service_t;

static int memory_start(mesh_service_ctx_t *ctx, void **state)
{
    memory_service_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MESH_ENOMEM;
    *state = s; /* destroy runs even when start fails after this */

    memory_worker_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    int n =
        mesh_service_endpoints(ctx, "MESH_ROUTER_BACKENDS", s->ep_storage, cfg.worker.endpoints);
    if (n <= 0) {
        mesh_log_error("memory", "MESH_ROUTER_BACKENDS: need 1..%d endpoints", MESH_MAX_ROUTERS);
        return MESH_ECONFIG;
    }
    cfg.worker.n_endpoints = n;
    cfg.worker.service = "memory";
    cfg.worker.capacity = (uint32_t)ctx->config[CFG_CAPACITY].i;
    cfg.queue_refresh_ms = (uint64_t)ctx->config[CFG_HANDOFF_REFRESH].i;
    cfg.worker.heartbeat_ms = ctx->heartbeat_ms;
    cfg.worker.liveness = ctx->liveness;
    cfg.worker.reconnect_min_ms = ctx->reconnect_min_ms;
    cfg.worker.reconnect_max_ms = ctx->reconnect_max_ms;
    cfg.worker.zopts = ctx->zopts;

    cfg.redis.host = ctx->config[CFG_REDIS_HOST].s;
    cfg.redis.port = (int)ctx->config[CFG_REDIS_PORT].i;
    cfg.redis.timeout_ms = (uint64_t)ctx->config[CFG_REDIS_TIMEOUT].i;
    cfg.redis.reconnect_min_ms = ctx->reconnect_min_ms;
    cfg.redis.reconnect_max_ms = ctx->reconnect_max_ms;

    cfg.ops.ttl_s = (uint64_t)ctx->config[CFG_TTL].i;
    cfg.ops.history_max = (uint32_t)ctx->config[CFG_HISTORY].i;

    s->worker = memory_worker_new(ctx->loop, ctx->zctx, &cfg);
    if (s->worker == NULL) {
        mesh_log_error("memory", "cannot create the worker (check MESH_REDIS_HOST)");
        return MESH_ECONFIG;
    }
    int rc = memory_worker_start(s->worker);
    if (rc != 0)
        return rc;
    char host[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_log_info("memory",
                  "serving turn.*/conv.get/lease.renew/trace.get/tool.call/handoff.*, redis %s:%d, "
                  "capacity %u, "
                  "ttl %llu s, history %u, %d router(s)",
                  mesh_log_sanitize(cfg.redis.host, strlen(cfg.redis.host), host, sizeof(host)),
                  cfg.redis.port, cfg.worker.capacity, (unsigned long long)cfg.ops.ttl_s,
                  cfg.ops.history_max, n);
    return 0;
}

static void on_drained(void *arg)
{
    memory_service_t *s = arg;
    s->done(s->ctx);
}

static void memory_drain(void *state, uint64_t grace_ms, void (*done)(mesh_service_ctx_t *ctx),
                         mesh_service_ctx_t *ctx)
{
    memory_service_t *s = state;
    s->done = done;
    s->ctx = ctx;
    if (s->worker == NULL) {
        done(ctx);
        return;
    }
    memory_worker_drain(s->worker, grace_ms, on_drained, s);
}

static void memory_destroy(void **state)
{
    memory_service_t *s = *state;
    if (s == NULL)
        return;
    memory_worker_destroy(&s->worker);
    free(s);
    *state = NULL;
}

/* /readyz: a memory worker that cannot reach Redis has withdrawn from the routers. */
static int memory_ready(void *state, char *why, size_t why_size)
{
    memory_service_t *s = state;
    if (s->worker != NULL && memory_worker_redis_up(s->worker))
        return 0;
    snprintf(why, why_size, "redis unreachable");
    return MESH_EUNAVAIL;
}

static const mesh_service_def_t s_def = {
    .name = "memory",
    .summary = "memory worker: conversation log, state, idempotency, claims and the handoff "
               "queue in Redis",
    .config = s_config,
    .n_config = CFG_COUNT,
    .start = memory_start,
    .drain = memory_drain,
    .destroy = memory_destroy,
    .ready = memory_ready,
};

int main(int argc, char **argv)
{
    return mesh_service_main(argc, argv, &s_def);
}
