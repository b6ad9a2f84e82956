/*
 * llm_metrics.h - the llm service's metrics (docs/observability.md, "LLM"),
 * recorded into the process-wide registry (mesh_metrics.h):
 *
 *   mesh_llm_calls_total{tier,agent,status}
 *   mesh_llm_tokens_total{tier,agent,direction}       direction = in | out
 *   mesh_llm_cost_usd_total{tier,agent}               from the price table
 *   mesh_llm_time_to_first_token_seconds{tier,agent}
 *   mesh_llm_call_duration_seconds{tier,agent}
 *
 * The price table (MESH_LLM_PRICES) is "tier=in:out[,tier=in:out...]" in USD
 * per million prompt (in) and completion (out) tokens, e.g.
 * "small=0.15:0.6,large=2.5:10". A tier without a price costs 0 (the rules
 * backend has no price). A call without a tier is labelled "-".
 */
#ifndef LLM_METRICS_H
#define LLM_METRICS_H

#include <stdint.h>

#include "llm_backend.h"

#define LLM_METRICS_PRICES_MAX 16   /* tiers in MESH_LLM_PRICES */
#define LLM_METRICS_PRICES_LEN 1024 /* MESH_LLM_PRICES bytes */
#define LLM_METRICS_PRICE_MAX  1e6  /* USD per million tokens, sanity bound */

/*
 * Register the families and load the price table from spec (NULL or "" =
 * no prices). 0, or MESH_ECONFIG with a reason in err (never peer data).
 */
int llm_metrics_init(const char *spec, char *err, size_t err_size);

/* USD per million tokens for tier (0 when unknown); for tests. */
double llm_metrics_price(const char *tier, int out);

/*
 * Estimated USD cost of usage on tier from the price table: 0 for an unknown
 * tier and for answers of the rules backend (model "rules"), which cost nothing.
 */
double llm_metrics_cost(const char *tier, const llm_result_t *res);

/*
 * A call finished. status 0 with res (usage), or an error with res NULL.
 * start_ns / first_ns on the uv_hrtime() clock; first_ns 0 = no output before
 * the FINAL (time to first token is then the whole call).
 */
void llm_metrics_call(const llm_call_t *call, int status, const llm_result_t *res,
                      uint64_t start_ns, uint64_t first_ns);

#endif
