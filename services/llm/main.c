/*
 * main.c - mesh-llm: the llm worker service (op "llm.chat").
 *
 * The mesh_service.h skeleton plus this service's config table. A backend's
 * own variables (e.g. an endpoint URL for a future "openai" backend) are
 * added to s_config below and read by the backend from the loaded table.
 */
#include <stdlib.h>
#include <string.h>

#include "llm_backend.h"
#include "llm_metrics.h"
#include "llm_worker.h"
#include "mesh/mesh.h"

enum {
    CFG_BACKENDS = 0,
    CFG_BACKEND,
    CFG_CAPACITY,
    CFG_DELAY,
    CFG_PRICES,
    CFG_COUNT,
};

static mesh_config_entry_t s_config[CFG_COUNT] = {
    [CFG_BACKENDS] = {"MESH_ROUTER_BACKENDS", MESH_CFG_STRING, "tcp://127.0.0.1:7002", 0, 0,
                      "router backend endpoints, comma-separated (one per router)"},
    [CFG_BACKEND] = {"MESH_LLM_BACKEND", MESH_CFG_STRING, "rules", 0, 0,
                     "model backend: rules (built in, deterministic, no model)"},
    [CFG_CAPACITY] = {"MESH_WORKER_CAPACITY", MESH_CFG_INT, "64", 1, MESH_WORKER_CAPACITY_MAX,
                      "llm.chat requests in flight at once"},
    [CFG_PRICES] = {"MESH_LLM_PRICES", MESH_CFG_STRING, "", 0, 0,
                    "estimated cost per tier for metrics: tier=in:out,... in USD per million "
                    "prompt/completion tokens (none: every tier costs 0)"},
    [CFG_DELAY] = {"MESH_LLM_DELAY_MS", MESH_CFG_INT, "0", 0, LLM_DELAY_MAX_MS,
                   "simulated model latency of the rules backend (tests and demos)"},
};

typedef struct {
    llm_worker_t *worker;
    char ep_storage[MESH_MAX_ROUTERS][256]; /* the worker's endpoints point in here */
    llm_backend_config_t bcfg;
    void (*done)(mesh_service_ctx_t *ctx);
    mesh_service_ctx_t *ctx;
} llm_service_t;

static int llm_start(mesh_service_ctx_t *ctx, void **state)
{
    llm_service_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MESH_ENOMEM;
    *state = s; /* destroy runs even when start fails after this */

    mesh_worker_opts_t o;
    memset(&o, 0, sizeof(o));
    int n = mesh_service_endpoints(ctx, "MESH_ROUTER_BACKENDS", s->ep_storage, o.endpoints);
    if (n <= 0) {
        mesh_log_error("llm", "MESH_ROUTER_BACKENDS: need 1..%d endpoints", MESH_MAX_ROUTERS);
        return MESH_ECONFIG;
    }
    o.n_endpoints = n;
    o.service = "llm";
    o.capacity = (uint32_t)ctx->config[CFG_CAPACITY].i;
    o.heartbeat_ms = ctx->heartbeat_ms;
    o.liveness = ctx->liveness;
    o.reconnect_min_ms = ctx->reconnect_min_ms;
    o.reconnect_max_ms = ctx->reconnect_max_ms;
    o.zopts = ctx->zopts;

    char perr[MESH_ERRMSG_MAX];
    if (llm_metrics_init(ctx->config[CFG_PRICES].s, perr, sizeof(perr)) != 0) {
        mesh_log_error("llm", "%s", perr);
        return MESH_ECONFIG;
    }

    const char *name = ctx->config[CFG_BACKEND].s;
    if (llm_backend_find(name) == NULL) {
        char safe[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_error("llm", "MESH_LLM_BACKEND: unknown backend '%s' (known: %s)",
                       mesh_log_sanitize(name, strlen(name), safe, sizeof(safe)),
                       llm_backend_names());
        return MESH_ECONFIG;
    }
    s->bcfg.delay_ms = (uint64_t)ctx->config[CFG_DELAY].i;
    s->bcfg.config = ctx->config;
    s->bcfg.n_config = ctx->n_config;
    llm_backend_t *b = llm_backend_new(name, ctx->loop, &s->bcfg);
    if (b == NULL)
        return MESH_ECONFIG;
    s->worker = llm_worker_new(ctx->loop, ctx->zctx, &o, &b);
    if (s->worker == NULL)
        return MESH_ENOMEM;
    int rc = llm_worker_start(s->worker);
    if (rc != 0)
        return rc;
    mesh_log_info("llm",
                  "serving llm.chat with backend %s, capacity %u, delay %llu ms, %d router(s)",
                  name, o.capacity, (unsigned long long)s->bcfg.delay_ms, n);
    return 0;
}

static void on_drained(void *arg)
{
    llm_service_t *s = arg;
    s->done(s->ctx);
}

static void llm_drain(void *state, uint64_t grace_ms, void (*done)(mesh_service_ctx_t *ctx),
                      mesh_service_ctx_t *ctx)
{
    llm_service_t *s = state;
    s->done = done;
    s->ctx = ctx;
    if (s->worker == NULL) {
        done(ctx);
        return;
    }
    llm_worker_drain(s->worker, grace_ms, on_drained, s);
}

static void llm_destroy(void **state)
{
    llm_service_t *s = *state;
    if (s == NULL)
        return;
    llm_worker_destroy(&s->worker);
    free(s);
    *state = NULL;
}

static const mesh_service_def_t s_def = {
    .name = "llm",
    .summary = "LLM worker: answers llm.chat with a model backend (default: rules)",
    .config = s_config,
    .n_config = CFG_COUNT,
    .start = llm_start,
    .drain = llm_drain,
    .destroy = llm_destroy,
};

int main(int argc, char **argv)
{
    return mesh_service_main(argc, argv, &s_def);
}
