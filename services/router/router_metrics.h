/*
 * router_metrics.h - the router's metrics (docs/observability.md, "Router"),
 * recorded into the process-wide registry (mesh_metrics.h).
 *
 * Scrape time (a collector walks the broker's pools and the agent loop):
 *   mesh_router_queue_depth{service}, mesh_router_workers_live{service},
 *   mesh_router_capacity{service}, mesh_router_capacity_in_use{service},
 *   mesh_router_turns_inflight
 * Events:
 *   mesh_router_requests_total{service,status}, mesh_router_queue_wait_seconds{service},
 *   mesh_router_retries_total{service}, mesh_router_expired_total{service},
 *   mesh_router_turns_total{agent,status}, mesh_router_turn_duration_seconds{agent},
 *   mesh_router_turn_steps{agent}, mesh_router_tool_calls_total{tool,status},
 *   mesh_router_tool_call_duration_seconds{tool}
 *   mesh_router_llm_tokens_total{agent,kind}, mesh_router_llm_cost_usd_total{agent},
 *   mesh_router_tenant_llm_tokens_total{tenant,kind},
 *   mesh_router_tenant_llm_cost_usd_total{tenant}   (kind: prompt|completion; the
 *   first ROUTER_METRICS_TENANTS_MAX tenants seen get their own series, the
 *   rest are counted as tenant="other")
 *   mesh_router_triage_total{by}   (by: llm|keywords|default|requested|state|switch)
 */
#ifndef ROUTER_METRICS_H
#define ROUTER_METRICS_H

#include <stdint.h>

#include "agent_loop.h"

/* Tenants with their own usage series; later ones are "other". */
#define ROUTER_METRICS_TENANTS_MAX  64
#define ROUTER_METRICS_TENANT_OTHER "other"
#include "broker.h"

/* Register the families (idempotent). */
void router_metrics_init(void);

/* Start / stop the scrape-time collector for b and al (al may be NULL). */
int router_metrics_attach(router_broker_t *b, router_agent_loop_t *al);
void router_metrics_detach(void);

/* Broker events; service is the pool's name. */
void router_metrics_request_done(const char *service, int status);
void router_metrics_queue_wait(const char *service, uint64_t ms);
void router_metrics_retry(const char *service);
void router_metrics_expired(const char *service);

/* A turn ended with status after steps model steps; start_ns on uv_hrtime(). */
void router_metrics_turn_end(const char *agent, int status, uint64_t start_ns, uint32_t steps);

/* A tool call ended: status is "ok", a tool error code or an error name. */
void router_metrics_tool_call(const char *tool, const char *status, uint64_t start_ns);

/* One llm call's usage in a turn of agent for tenant (from the llm FINAL). */
void router_metrics_llm_usage(const char *agent, const char *tenant, uint64_t prompt_tokens,
                              uint64_t completion_tokens, double cost_usd);

/* A turn's agent was chosen; by is how (static text, FINAL triage.by). */
void router_metrics_triage(const char *by);
/* One early llm call's outcome: "used", "mismatch" or "dropped" (agent_early.c). */
void router_metrics_early(const char *outcome);

/* The tenant label value for tenant (itself, or "other" past the bound). */
const char *router_metrics_tenant_label(const char *tenant);

#endif
