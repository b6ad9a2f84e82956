/*
 * router_metrics.c - the router's metrics (router_metrics.h).
 *
 * Pools are created and collected as workers come and go, so the collector
 * zeroes every service it has ever shown before setting the current values:
 * a service whose last worker left shows 0 workers, not its last count.
 */
#include "router_metrics.h"

#include <string.h>
#include <uv.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_metrics.h"
#include "mesh/mesh_msg.h"

#define RM_SVC_SERIES   32  /* worker services */
#define RM_SVC_STATUS   256 /* (service, status) */
#define RM_AGENT_SERIES 32  /* agents */
#define RM_AGENT_STATUS 256 /* (agent, status) */
#define RM_TOOL_SERIES  64  /* tools */
#define RM_TOOL_STATUS  256 /* (tool, status) */
#define RM_NO_AGENT     "-"
#define RM_TRIAGE_BY    8 /* llm, keywords, default, requested, state, switch */

static const double s_wait_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25,  0.5,    1,     2.5,  5,     10,   30};
static const double s_turn_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                       0.5,   1,      2.5,   5,    10,    30,   60,  120};
static const double s_step_bounds[] = {1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 32};

static mesh_metric_t *s_depth, *s_live, *s_cap, *s_in_use;
static mesh_series_t *s_turns_inflight;
static mesh_metric_t *s_requests, *s_wait, *s_retries, *s_expired;
static mesh_metric_t *s_turns, *s_turn_time, *s_steps, *s_tools, *s_tool_time;
static mesh_metric_t *s_tokens, *s_cost, *s_tenant_tokens, *s_tenant_cost;
static mesh_metric_t *s_triage;
static mesh_metric_t *s_early;
/* Tenants with their own series, in order of first use (loop thread only). */
static char s_tenants[ROUTER_METRICS_TENANTS_MAX][MESH_TENANT_MAX + 1];
static size_t s_n_tenants;

static router_broker_t *s_broker;
static router_agent_loop_t *s_loop;
static char s_seen[RM_SVC_SERIES][MESH_SERVICE_MAX + 1];
static size_t s_n_seen;

#define BOUNDS(a) (a), (sizeof(a) / sizeof((a)[0]))

void router_metrics_init(void)
{
    mesh_metrics_t *reg = mesh_metrics_global();
    s_depth = mesh_metrics_gauge(reg, "mesh_router_queue_depth",
                                 "requests queued for worker capacity, by service (the "
                                 "autoscaling signal)",
                                 "service", RM_SVC_SERIES);
    s_live = mesh_metrics_gauge(reg, "mesh_router_workers_live",
                                "workers registered and heartbeating, by service", "service",
                                RM_SVC_SERIES);
    s_cap = mesh_metrics_gauge(reg, "mesh_router_capacity",
                               "sum of the live workers' announced capacity, by service", "service",
                               RM_SVC_SERIES);
    s_in_use = mesh_metrics_gauge(reg, "mesh_router_capacity_in_use",
                                  "requests in flight on the live workers, by service", "service",
                                  RM_SVC_SERIES);
    s_turns_inflight = mesh_metric_with(
        mesh_metrics_gauge(reg, "mesh_router_turns_inflight",
                           "agent turns accepted and not finished (running or waiting)", NULL, 1),
        NULL);
    s_requests = mesh_metrics_counter(reg, "mesh_router_requests_total",
                                      "worker requests brokered, by service and final status",
                                      "service,status", RM_SVC_STATUS);
    s_wait = mesh_metrics_histogram(reg, "mesh_router_queue_wait_seconds",
                                    "time a request waited in its service queue before dispatch",
                                    "service", RM_SVC_SERIES, BOUNDS(s_wait_bounds));
    s_retries = mesh_metrics_counter(reg, "mesh_router_retries_total",
                                     "idempotent requests re-sent after their worker was lost",
                                     "service", RM_SVC_SERIES);
    s_expired = mesh_metrics_counter(reg, "mesh_router_expired_total",
                                     "requests failed by the broker at their deadline", "service",
                                     RM_SVC_SERIES);
    s_turns = mesh_metrics_counter(reg, "mesh_router_turns_total",
                                   "finished agent turns, by agent and final status",
                                   "agent,status", RM_AGENT_STATUS);
    s_turn_time = mesh_metrics_histogram(reg, "mesh_router_turn_duration_seconds",
                                         "agent turn accepted to its FINAL", "agent",
                                         RM_AGENT_SERIES, BOUNDS(s_turn_bounds));
    s_steps =
        mesh_metrics_histogram(reg, "mesh_router_turn_steps", "model steps of a finished turn",
                               "agent", RM_AGENT_SERIES, BOUNDS(s_step_bounds));
    s_tools = mesh_metrics_counter(reg, "mesh_router_tool_calls_total",
                                   "tool calls by tool and outcome (ok, a tool error code or an "
                                   "error name)",
                                   "tool,status", RM_TOOL_STATUS);
    s_tool_time = mesh_metrics_histogram(reg, "mesh_router_tool_call_duration_seconds",
                                         "tool call sent to its result", "tool", RM_TOOL_SERIES,
                                         BOUNDS(s_turn_bounds));
    s_tokens = mesh_metrics_counter(reg, "mesh_router_llm_tokens_total",
                                    "llm tokens used by agent turns, by agent and kind "
                                    "(prompt, completion)",
                                    "agent,kind", 2 * RM_AGENT_SERIES);
    s_cost = mesh_metrics_counter(reg, "mesh_router_llm_cost_usd_total",
                                  "estimated llm cost of agent turns in USD, by agent", "agent",
                                  RM_AGENT_SERIES);
    s_tenant_tokens = mesh_metrics_counter(reg, "mesh_router_tenant_llm_tokens_total",
                                           "llm tokens used by agent turns, by tenant (the first "
                                           "64 tenants, then \"other\") and kind",
                                           "tenant,kind", 2 * (ROUTER_METRICS_TENANTS_MAX + 1));
    s_tenant_cost = mesh_metrics_counter(reg, "mesh_router_tenant_llm_cost_usd_total",
                                         "estimated llm cost of agent turns in USD, by tenant",
                                         "tenant", ROUTER_METRICS_TENANTS_MAX + 1);
    s_triage = mesh_metrics_counter(reg, "mesh_router_triage_total",
                                    "agents chosen for turns, by how (llm, keywords, default, "
                                    "requested, state, switch)",
                                    "by", RM_TRIAGE_BY);
    s_early = mesh_metrics_counter(reg, "mesh_router_early_start_total",
                                   "first model calls started before turn.begin answered, by "
                                   "outcome: used (memory confirmed the prediction), mismatch "
                                   "(resent with memory's context), dropped (the turn never "
                                   "asked the model, or failed first)",
                                   "outcome", 3);
}

static void remember(const char *service)
{
    for (size_t i = 0; i < s_n_seen; i++)
        if (strcmp(s_seen[i], service) == 0)
            return;
    if (s_n_seen >= RM_SVC_SERIES)
        return;
    size_t n = strnlen(service, MESH_SERVICE_MAX);
    memcpy(s_seen[s_n_seen], service, n);
    s_seen[s_n_seen][n] = '\0';
    s_n_seen++;
}

static void on_pool(const router_pool_stats_t *st, void *arg)
{
    (void)arg;
    remember(st->service);
    mesh_gauge_set(mesh_metric_at(s_depth, st->service), (double)st->queued);
    mesh_gauge_set(mesh_metric_at(s_live, st->service), (double)st->workers);
    mesh_gauge_set(mesh_metric_at(s_cap, st->service), (double)st->capacity);
    mesh_gauge_set(mesh_metric_at(s_in_use, st->service), (double)st->in_use);
}

static void collect(mesh_metrics_t *reg, void *arg)
{
    (void)reg;
    (void)arg;
    for (size_t i = 0; i < s_n_seen; i++) {
        mesh_gauge_set(mesh_metric_at(s_depth, s_seen[i]), 0);
        mesh_gauge_set(mesh_metric_at(s_live, s_seen[i]), 0);
        mesh_gauge_set(mesh_metric_at(s_cap, s_seen[i]), 0);
        mesh_gauge_set(mesh_metric_at(s_in_use, s_seen[i]), 0);
    }
    if (s_broker)
        router_broker_pool_stats(s_broker, on_pool, NULL);
    mesh_gauge_set(s_turns_inflight, s_loop ? (double)router_agent_loop_active(s_loop) : 0);
}

int router_metrics_attach(router_broker_t *b, router_agent_loop_t *al)
{
    s_broker = b;
    s_loop = al;
    return mesh_metrics_on_collect(mesh_metrics_global(), collect, NULL);
}

void router_metrics_detach(void)
{
    mesh_metrics_off_collect(mesh_metrics_global(), collect, NULL);
    s_broker = NULL;
    s_loop = NULL;
}

void router_metrics_request_done(const char *service, int status)
{
    mesh_counter_inc(mesh_metric_at(s_requests, service, mesh_err_name(status)));
}

void router_metrics_queue_wait(const char *service, uint64_t ms)
{
    mesh_histogram_observe(mesh_metric_at(s_wait, service), (double)ms / 1000.0);
}

void router_metrics_retry(const char *service)
{
    mesh_counter_inc(mesh_metric_at(s_retries, service));
}

void router_metrics_expired(const char *service)
{
    mesh_counter_inc(mesh_metric_at(s_expired, service));
}

void router_metrics_turn_end(const char *agent, int status, uint64_t start_ns, uint32_t steps)
{
    if (!agent || !agent[0])
        agent = RM_NO_AGENT;
    mesh_counter_inc(mesh_metric_at(s_turns, agent, mesh_err_name(status)));
    mesh_histogram_observe(mesh_metric_at(s_turn_time, agent), mesh_metrics_since_s(start_ns));
    mesh_histogram_observe(mesh_metric_at(s_steps, agent), (double)steps);
}

void router_metrics_tool_call(const char *tool, const char *status, uint64_t start_ns)
{
    mesh_counter_inc(mesh_metric_at(s_tools, tool, status));
    mesh_histogram_observe(mesh_metric_at(s_tool_time, tool), mesh_metrics_since_s(start_ns));
}

const char *router_metrics_tenant_label(const char *tenant)
{
    if (!tenant || !tenant[0])
        tenant = MESH_TENANT_DEFAULT;
    for (size_t i = 0; i < s_n_tenants; i++)
        if (strcmp(s_tenants[i], tenant) == 0)
            return s_tenants[i];
    size_t n = strnlen(tenant, MESH_TENANT_MAX + 1);
    if (s_n_tenants >= ROUTER_METRICS_TENANTS_MAX || n > MESH_TENANT_MAX ||
        strcmp(tenant, ROUTER_METRICS_TENANT_OTHER) == 0)
        return ROUTER_METRICS_TENANT_OTHER;
    memcpy(s_tenants[s_n_tenants], tenant, n);
    s_tenants[s_n_tenants][n] = '\0';
    return s_tenants[s_n_tenants++];
}

void router_metrics_llm_usage(const char *agent, const char *tenant, uint64_t prompt_tokens,
                              uint64_t completion_tokens, double cost_usd)
{
    if (!agent || !agent[0])
        agent = RM_NO_AGENT;
    const char *tl = router_metrics_tenant_label(tenant);
    mesh_counter_add(mesh_metric_at(s_tokens, agent, "prompt"), prompt_tokens);
    mesh_counter_add(mesh_metric_at(s_tokens, agent, "completion"), completion_tokens);
    mesh_counter_addf(mesh_metric_at(s_cost, agent), cost_usd);
    mesh_counter_add(mesh_metric_at(s_tenant_tokens, tl, "prompt"), prompt_tokens);
    mesh_counter_add(mesh_metric_at(s_tenant_tokens, tl, "completion"), completion_tokens);
    mesh_counter_addf(mesh_metric_at(s_tenant_cost, tl), cost_usd);
}

void router_metrics_triage(const char *by)
{
    mesh_counter_inc(mesh_metric_at(s_triage, by));
}

void router_metrics_early(const char *outcome)
{
    mesh_counter_inc(mesh_metric_at(s_early, outcome));
}
