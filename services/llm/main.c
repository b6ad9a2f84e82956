/*
 * main.c - mesh-llm: the llm worker service (op "llm.chat").
 *
 * The mesh_service.h skeleton plus this service's config table. A backend's
 * own variables (the openai backend's MESH_LLM_TIERS, keys, retry and
 * breaker settings) are in s_config below and read by the backend from the
 * loaded table by name. With the openai backend the capacity announced to
 * the router is MESH_LLM_CONCURRENCY.
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
    /* the openai backend's (backend_openai.c reads them by name) */
    CFG_TIERS,
    CFG_TIERS_FILE,
    CFG_API_KEY,
    CFG_API_KEY_FILE,
    CFG_CONCURRENCY,
    CFG_TIMEOUT,
    CFG_CONNECT_TIMEOUT,
    CFG_RETRIES,
    CFG_BACKOFF,
    CFG_BACKOFF_MAX,
    CFG_BREAKER_FAILURES,
    CFG_BREAKER_OPEN,
    CFG_MAX_TOKENS,
    CFG_TEMPERATURE,
    CFG_COUNT,
};

static mesh_config_entry_t s_config[CFG_COUNT] = {
    [CFG_BACKENDS] = {"MESH_ROUTER_BACKENDS", MESH_CFG_STRING, "tcp://127.0.0.1:7002", 0, 0,
                      "router backend endpoints, comma-separated (one per router)"},
    [CFG_BACKEND] = {"MESH_LLM_BACKEND", MESH_CFG_STRING, "rules", 0, 0,
                     "model backend: rules (built in, deterministic, no model) or openai (an "
                     "OpenAI-compatible endpoint per tier, MESH_LLM_TIERS)"},
    [CFG_CAPACITY] = {"MESH_WORKER_CAPACITY", MESH_CFG_INT, "64", 1, MESH_WORKER_CAPACITY_MAX,
                      "llm.chat requests in flight at once (rules backend)"},
    [CFG_PRICES] = {"MESH_LLM_PRICES", MESH_CFG_STRING, "", 0, 0,
                    "estimated cost per tier for metrics: tier=in:out,... in USD per million "
                    "prompt/completion tokens (none: every tier costs 0)"},
    [CFG_DELAY] = {"MESH_LLM_DELAY_MS", MESH_CFG_INT, "0", 0, LLM_DELAY_MAX_MS,
                   "simulated model latency of the rules backend (tests and demos)"},
    [CFG_TIERS] = {"MESH_LLM_TIERS", MESH_CFG_STRING, "", 0, 0,
                   "openai: tier=<base url>|<model>,... e.g. "
                   "small=http://127.0.0.1:8000/v1|qwen2.5-7b (unknown tiers use \"default\", "
                   "else the first)"},
    [CFG_TIERS_FILE] = {"MESH_LLM_TIERS_FILE", MESH_CFG_STRING, "", 0, 0,
                        "openai: the tiers as a JSON file {\"small\": {\"url\", \"model\"}} "
                        "(wins over MESH_LLM_TIERS)"},
    [CFG_API_KEY] = {"MESH_LLM_API_KEY", MESH_CFG_STRING, "", 0, 0,
                     "openai: API key sent as Authorization: Bearer (never logged; none: no "
                     "header)"},
    [CFG_API_KEY_FILE] = {"MESH_LLM_API_KEY_FILE", MESH_CFG_STRING, "", 0, 0,
                          "openai: file holding the API key (wins over MESH_LLM_API_KEY)"},
    [CFG_CONCURRENCY] = {"MESH_LLM_CONCURRENCY", MESH_CFG_INT, "32", 1, MESH_WORKER_CAPACITY_MAX,
                         "openai: model calls in flight at once, announced to the router as "
                         "the worker's capacity"},
    [CFG_TIMEOUT] = {"MESH_LLM_TIMEOUT_MS", MESH_CFG_INT, "60000", 100, MESH_DEADLINE_MAX_MS,
                     "openai: bound on one HTTP attempt (the request's deadline bounds the call)"},
    [CFG_CONNECT_TIMEOUT] = {"MESH_LLM_CONNECT_TIMEOUT_MS", MESH_CFG_INT, "2000", 10, 60000,
                             "openai: TCP/TLS connect timeout of one attempt"},
    [CFG_RETRIES] = {"MESH_LLM_RETRIES", MESH_CFG_INT, "2", 0, 10,
                     "openai: retries after a 408/409/429/5xx, connection error or broken stream"},
    [CFG_BACKOFF] =
        {"MESH_LLM_BACKOFF_MS", MESH_CFG_INT, "500", 1, 60000,
         "openai: first retry delay (doubles per retry, -25% jitter; Retry-After wins)"},
    [CFG_BACKOFF_MAX] = {"MESH_LLM_BACKOFF_MAX_MS", MESH_CFG_INT, "8000", 1, 60000,
                         "openai: cap on the retry delay"},
    [CFG_BREAKER_FAILURES] = {"MESH_LLM_BREAKER_FAILURES", MESH_CFG_INT, "5", 1, 1000,
                              "openai: consecutive failures that open an endpoint's circuit "
                              "breaker"},
    [CFG_BREAKER_OPEN] = {"MESH_LLM_BREAKER_OPEN_MS", MESH_CFG_INT, "30000", 10, 3600000,
                          "openai: how long an open breaker refuses calls before one probe"},
    [CFG_MAX_TOKENS] = {"MESH_LLM_MAX_TOKENS", MESH_CFG_INT, "1024", 1, 1000000,
                        "openai: max_completion_tokens of each request"},
    [CFG_TEMPERATURE] = {"MESH_LLM_TEMPERATURE", MESH_CFG_STRING, "0.2", 0, 0,
                         "openai: sampling temperature, 0..2"},
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
    if (strcmp(ctx->config[CFG_BACKEND].s, "openai") == 0)
        o.capacity = (uint32_t)ctx->config[CFG_CONCURRENCY].i;
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
