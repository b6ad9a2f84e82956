/*
 * main.c - mesh-router: the broker and the agent loop (docs/router.md).
 *
 * Follows the mesh_service.h skeleton: configuration from the environment,
 * SIGINT/SIGTERM drain, SIGHUP reloads agents and tool schemas (the old set
 * stays when the new one is invalid).
 */
#include <stdlib.h>
#include <string.h>

#include "agent_loop.h"
#include "agents.h"
#include "broker.h"
#include "mesh/mesh.h"
#include "router_metrics.h"

#define LOG_SUB "router"
/* How often the drain checks whether in-flight work is done. */
#define DRAIN_POLL_MS  10
#define AGENTS_ERR_MAX 1024

enum {
    CFG_FRONTEND,
    CFG_BACKEND,
    CFG_DATA_DIR,
    CFG_QUEUE_MAX,
    CFG_NOWORKER_WAIT_MS,
    CFG_CONV_QUEUE_MAX,
    CFG_HISTORY_WINDOW,
    CFG_LEASE_MS,
    CFG_DEFAULT_AGENT,
    CFG_TRIAGE,
    CFG_TRIAGE_TIER,
    CFG_TRIAGE_TIMEOUT_MS,
    CFG_EARLY_START,
    CFG_CONTEXT_CACHE,
    CFG_COUNT
};

static mesh_config_entry_t s_config[CFG_COUNT] = {
    [CFG_FRONTEND] = {"MESH_FRONTEND_BIND", MESH_CFG_STRING, "tcp://127.0.0.1:7001", 0, 0,
                      "bind endpoint for clients (gateways)"},
    [CFG_BACKEND] = {"MESH_BACKEND_BIND", MESH_CFG_STRING, "tcp://127.0.0.1:7002", 0, 0,
                     "bind endpoint for workers"},
    [CFG_DATA_DIR] = {"MESH_DATA_DIR", MESH_CFG_STRING, "./data", 0, 0,
                      "agents (agents/*.json) and tool schemas (tools.json)"},
    [CFG_QUEUE_MAX] = {"MESH_QUEUE_MAX", MESH_CFG_INT, "4096", 1, 10000000,
                       "requests queued per service waiting for worker capacity"},
    [CFG_NOWORKER_WAIT_MS] = {"MESH_NOWORKER_WAIT_MS", MESH_CFG_INT, "2000", 0, 600000,
                              "how long a request waits for a service with no worker"},
    [CFG_CONV_QUEUE_MAX] = {"MESH_CONV_QUEUE_MAX", MESH_CFG_INT, "32", 0, 100000,
                            "turns waiting behind the running one, per conversation"},
    [CFG_HISTORY_WINDOW] = {"MESH_HISTORY_WINDOW", MESH_CFG_INT, "20", 1, 200,
                            "messages of history given to the model"},
    [CFG_LEASE_MS] = {"MESH_LEASE_MS", MESH_CFG_INT, "5000", 100, 600000,
                      "cross-router conversation lease; a running turn renews it every third of "
                      "it, a dead router's lapses after it"},
    [CFG_DEFAULT_AGENT] = {"MESH_DEFAULT_AGENT", MESH_CFG_STRING, "policy_qa", 0, 0,
                           "agent for a new conversation when triage finds none"},
    [CFG_TRIAGE] = {"MESH_TRIAGE", MESH_CFG_STRING, "keywords", 0, 0,
                    "triage of a new conversation: keywords (the agents' triage.keywords) or llm "
                    "(the model chooses among the agents' descriptions, keywords as fallback)"},
    [CFG_TRIAGE_TIER] = {"MESH_TRIAGE_TIER", MESH_CFG_STRING, ROUTER_TRIAGE_TIER_DEFAULT, 0, 0,
                         "model tier of the llm triage call ([a-z0-9_-], at most 32)"},
    [CFG_TRIAGE_TIMEOUT_MS] = {"MESH_TRIAGE_TIMEOUT_MS", MESH_CFG_INT, "5000", 100, 600000,
                               "bound on the llm triage call (at most half the turn's time); "
                               "past it the keywords decide"},
    [CFG_EARLY_START] = {"MESH_EARLY_START", MESH_CFG_STRING, "on", 0, 0,
                         "start a turn's first model call before memory answers turn.begin, "
                         "used only if memory confirms its context: on (also for conversations "
                         "this router never saw), cached (only those whose context it keeps) or "
                         "off"},
    [CFG_CONTEXT_CACHE] = {"MESH_CONTEXT_CACHE", MESH_CFG_INT, "10000", 0, 10000000,
                           "conversations whose context the router keeps for early start"},
};

typedef struct {
    mesh_service_ctx_t *ctx;
    router_broker_t *broker;
    router_agent_loop_t *agents_loop;
    router_agents_t *agents;
    const char *data_dir;
    const char *default_agent;
    uv_timer_t *drain_timer;
    void (*drain_done)(mesh_service_ctx_t *ctx);
    bool disconnected;
    bool metrics_attached; /* router_metrics.c collector registered */
} router_svc_t;

static void router_destroy(void **state);

/* A tier name as agent files have it: 1..ROUTER_TIER_MAX of [a-z0-9_-]. */
static bool tier_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ROUTER_TIER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

static int router_start(mesh_service_ctx_t *ctx, void **state)
{
    router_svc_t *svc = calloc(1, sizeof(*svc));
    if (!svc)
        return MESH_ENOMEM;
    *state = svc;
    svc->ctx = ctx;
    mesh_config_entry_t *cfg = ctx->config;
    svc->data_dir = cfg[CFG_DATA_DIR].s;
    svc->default_agent = cfg[CFG_DEFAULT_AGENT].s;

    char err[AGENTS_ERR_MAX];
    int rc = router_agents_load(svc->data_dir, svc->default_agent, &svc->agents, err, sizeof(err));
    if (rc) {
        mesh_log_error(LOG_SUB, "cannot load agents: %s", err);
        return rc;
    }
    mesh_log_info(LOG_SUB, "loaded %zu agents from %s (default %s)",
                  router_agents_count(svc->agents), svc->data_dir, svc->default_agent);

    router_broker_opts_t bo = {
        .frontend = cfg[CFG_FRONTEND].s,
        .backend = cfg[CFG_BACKEND].s,
        .heartbeat_ms = ctx->heartbeat_ms,
        .liveness = ctx->liveness,
        .queue_max = (uint32_t)cfg[CFG_QUEUE_MAX].i,
        .noworker_ms = (uint64_t)cfg[CFG_NOWORKER_WAIT_MS].i,
        .zopts = ctx->zopts,
    };
    svc->broker = router_broker_new(ctx->loop, ctx->zctx, &bo);
    if (!svc->broker) {
        mesh_log_error(LOG_SUB, "cannot create the broker (endpoint too long?)");
        return MESH_ECONFIG;
    }
    bool triage_llm = strcmp(cfg[CFG_TRIAGE].s, "llm") == 0;
    if (!triage_llm && strcmp(cfg[CFG_TRIAGE].s, "keywords") != 0) {
        mesh_log_error(LOG_SUB, "MESH_TRIAGE: must be keywords or llm");
        return MESH_ECONFIG;
    }
    if (!tier_ok(cfg[CFG_TRIAGE_TIER].s)) {
        mesh_log_error(LOG_SUB, "MESH_TRIAGE_TIER: must be 1..%d chars of [a-z0-9_-]",
                       ROUTER_TIER_MAX);
        return MESH_ECONFIG;
    }
    const char *es = cfg[CFG_EARLY_START].s;
    int early = strcmp(es, "on") == 0       ? ROUTER_EARLY_ON
                : strcmp(es, "cached") == 0 ? ROUTER_EARLY_CACHED
                : strcmp(es, "off") == 0    ? ROUTER_EARLY_OFF
                                            : -1;
    if (early < 0) {
        mesh_log_error(LOG_SUB, "MESH_EARLY_START: must be on, cached or off");
        return MESH_ECONFIG;
    }
    router_agent_loop_opts_t ao = {
        .conv_queue_max = (uint32_t)cfg[CFG_CONV_QUEUE_MAX].i,
        .history_window = (uint32_t)cfg[CFG_HISTORY_WINDOW].i,
        .lease_ms = (uint32_t)cfg[CFG_LEASE_MS].i,
        .triage_llm = triage_llm,
        .triage_tier = cfg[CFG_TRIAGE_TIER].s,
        .triage_timeout_ms = (uint32_t)cfg[CFG_TRIAGE_TIMEOUT_MS].i,
        .early_start = early,
        .context_max = (uint32_t)cfg[CFG_CONTEXT_CACHE].i,
    };
    svc->agents_loop = router_agent_loop_new(ctx->loop, svc->broker, svc->agents, &ao);
    if (!svc->agents_loop)
        return MESH_ENOMEM;
    router_broker_set_agent_handler(svc->broker, router_agent_loop_handle, svc->agents_loop);
    router_metrics_init();
    if (router_metrics_attach(svc->broker, svc->agents_loop) == 0)
        svc->metrics_attached = true;
    return router_broker_start(svc->broker);
}

static void drain_check(uv_timer_t *t)
{
    router_svc_t *svc = t->data;
    if (router_agent_loop_active(svc->agents_loop) > 0 || router_broker_forwarded(svc->broker) > 0)
        return;
    uv_timer_stop(t);
    mesh_log_info(LOG_SUB, "drained: no turn or request in flight");
    router_broker_disconnect_all(svc->broker);
    svc->disconnected = true;
    if (svc->drain_done)
        svc->drain_done(svc->ctx);
}

static void router_drain(void *state, uint64_t grace_ms, void (*done)(mesh_service_ctx_t *ctx),
                         mesh_service_ctx_t *ctx)
{
    router_svc_t *svc = state;
    (void)grace_ms; /* the skeleton stops us at the grace; destroy answers what is left */
    svc->drain_done = done;
    router_broker_set_draining(svc->broker, true);
    mesh_log_info(LOG_SUB, "draining: %zu turns, %zu forwarded requests in flight",
                  router_agent_loop_active(svc->agents_loop), router_broker_forwarded(svc->broker));
    svc->drain_timer = calloc(1, sizeof(*svc->drain_timer));
    if (!svc->drain_timer) {
        done(ctx);
        return;
    }
    uv_timer_init(ctx->loop, svc->drain_timer);
    svc->drain_timer->data = svc;
    uv_timer_start(svc->drain_timer, drain_check, 0, DRAIN_POLL_MS);
}

static void router_reload(void *state)
{
    router_svc_t *svc = state;
    router_agents_t *fresh = NULL;
    char err[AGENTS_ERR_MAX];
    int rc = router_agents_load(svc->data_dir, svc->default_agent, &fresh, err, sizeof(err));
    if (rc) {
        mesh_log_error(LOG_SUB, "reload failed, keeping the current agents: %s", err);
        return;
    }
    router_agent_loop_set_agents(svc->agents_loop, fresh);
    router_agents_unref(&svc->agents);
    svc->agents = fresh;
    mesh_log_info(LOG_SUB, "reloaded %zu agents from %s", router_agents_count(fresh),
                  svc->data_dir);
}

static void free_cb(uv_handle_t *h)
{
    free(h);
}

static void router_destroy(void **state)
{
    if (!state || !*state)
        return;
    router_svc_t *svc = *state;
    if (svc->drain_timer) {
        uv_timer_stop(svc->drain_timer);
        uv_close((uv_handle_t *)svc->drain_timer, free_cb);
    }
    if (svc->agents_loop)
        router_agent_loop_fail_all(svc->agents_loop, MESH_EUNAVAIL, "router shutting down");
    if (svc->broker && !svc->disconnected)
        router_broker_disconnect_all(svc->broker);
    if (svc->metrics_attached)
        router_metrics_detach();
    router_agent_loop_destroy(&svc->agents_loop);
    router_broker_destroy(&svc->broker);
    router_agents_unref(&svc->agents);
    free(svc);
    *state = NULL;
}

static const mesh_service_def_t s_def = {
    .name = "router",
    .summary = "broker and agent loop of the digital-worker mesh",
    .config = s_config,
    .n_config = CFG_COUNT,
    .start = router_start,
    .drain = router_drain,
    .destroy = router_destroy,
    .reload = router_reload,
};

int main(int argc, char **argv)
{
    return mesh_service_main(argc, argv, &s_def);
}
