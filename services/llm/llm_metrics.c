/*
 * llm_metrics.c - the llm service's metrics and price table (llm_metrics.h).
 */
#include "llm_metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_metrics.h"

/* Label sets: tiers x agents (x statuses / directions). */
#define LLM_METRIC_SERIES      64
#define LLM_METRIC_SERIES_WIDE 256
#define LLM_TIER_NONE          "-"
#define TOKENS_PER_PRICE_UNIT  1e6

/* Model latency buckets, seconds: the rules backend answers in microseconds,
 * remote models in seconds to minutes. */
static const double s_latency_bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5,
                                          1,      2,      5,     10,    20,   30,   60,  120};

typedef struct {
    char tier[LLM_TIER_MAX + 1];
    double in, out; /* USD per million tokens */
} price_t;

static price_t s_prices[LLM_METRICS_PRICES_MAX];
static size_t s_n_prices;

static mesh_metric_t *s_calls, *s_tokens, *s_cost, *s_ttft, *s_latency;

/* Parse a non-negative finite price from s[0..n). */
static int parse_price(const char *s, size_t n, double *out)
{
    char buf[32];
    if (n == 0 || n >= sizeof(buf))
        return MESH_ECONFIG;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end != buf + n || !isfinite(v) || v < 0 || v > LLM_METRICS_PRICE_MAX)
        return MESH_ECONFIG;
    *out = v;
    return 0;
}

static int parse_prices(const char *spec, char *err, size_t err_size)
{
    s_n_prices = 0;
    if (!spec || !*spec)
        return 0;
    if (strlen(spec) > LLM_METRICS_PRICES_LEN) {
        snprintf(err, err_size, "MESH_LLM_PRICES: longer than %d bytes", LLM_METRICS_PRICES_LEN);
        return MESH_ECONFIG;
    }
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const char *colon = eq ? memchr(eq, ':', len - (size_t)(eq - p)) : NULL;
        size_t tlen = eq ? (size_t)(eq - p) : 0;
        price_t pr;
        memset(&pr, 0, sizeof(pr));
        if (s_n_prices >= LLM_METRICS_PRICES_MAX || !eq || !colon || tlen == 0 ||
            tlen > LLM_TIER_MAX || parse_price(eq + 1, (size_t)(colon - eq - 1), &pr.in) != 0 ||
            parse_price(colon + 1, len - (size_t)(colon + 1 - p), &pr.out) != 0) {
            snprintf(err, err_size,
                     "MESH_LLM_PRICES: entry %zu: want tier=in:out (USD per million tokens, at "
                     "most %d tiers)",
                     s_n_prices + 1, LLM_METRICS_PRICES_MAX);
            s_n_prices = 0;
            return MESH_ECONFIG;
        }
        memcpy(pr.tier, p, tlen);
        s_prices[s_n_prices++] = pr;
        p += len;
        if (*p == ',' && *++p == '\0') {
            snprintf(err, err_size, "MESH_LLM_PRICES: empty entry after the last comma");
            s_n_prices = 0;
            return MESH_ECONFIG;
        }
    }
    return 0;
}

int llm_metrics_init(const char *spec, char *err, size_t err_size)
{
    mesh_metrics_t *reg = mesh_metrics_global();
    s_calls = mesh_metrics_counter(reg, "mesh_llm_calls_total",
                                   "model calls by tier, agent and final status",
                                   "tier,agent,status", LLM_METRIC_SERIES_WIDE);
    s_tokens =
        mesh_metrics_counter(reg, "mesh_llm_tokens_total",
                             "tokens by tier, agent and direction (in = prompt, out = completion)",
                             "tier,agent,direction", LLM_METRIC_SERIES_WIDE);
    s_cost = mesh_metrics_counter(reg, "mesh_llm_cost_usd_total",
                                  "estimated model cost in USD from MESH_LLM_PRICES", "tier,agent",
                                  LLM_METRIC_SERIES);
    s_ttft = mesh_metrics_histogram(
        reg, "mesh_llm_time_to_first_token_seconds",
        "call start to the first output (first streamed delta, else the answer)", "tier,agent",
        LLM_METRIC_SERIES, s_latency_bounds,
        sizeof(s_latency_bounds) / sizeof(s_latency_bounds[0]));
    s_latency = mesh_metrics_histogram(reg, "mesh_llm_call_duration_seconds",
                                       "model latency: call start to the final answer",
                                       "tier,agent", LLM_METRIC_SERIES, s_latency_bounds,
                                       sizeof(s_latency_bounds) / sizeof(s_latency_bounds[0]));
    return parse_prices(spec, err, err_size);
}

double llm_metrics_price(const char *tier, int out)
{
    for (size_t i = 0; tier && i < s_n_prices; i++)
        if (strcmp(s_prices[i].tier, tier) == 0)
            return out ? s_prices[i].out : s_prices[i].in;
    return 0;
}

double llm_metrics_cost(const char *tier, const llm_result_t *res)
{
    if (res == NULL || (res->model != NULL && strcmp(res->model, "rules") == 0))
        return 0;
    return ((double)res->usage.prompt_tokens * llm_metrics_price(tier, 0) +
            (double)res->usage.completion_tokens * llm_metrics_price(tier, 1)) /
           TOKENS_PER_PRICE_UNIT;
}

void llm_metrics_call(const llm_call_t *call, int status, const llm_result_t *res,
                      uint64_t start_ns, uint64_t first_ns)
{
    const char *tier = call->tier && call->tier[0] ? call->tier : LLM_TIER_NONE;
    const char *agent = call->agent ? call->agent : "";
    mesh_counter_inc(mesh_metric_at(s_calls, tier, agent, mesh_err_name(status)));
    double total = mesh_metrics_since_s(start_ns);
    mesh_histogram_observe(mesh_metric_at(s_latency, tier, agent), total);
    if (status != 0 || !res)
        return;
    mesh_histogram_observe(mesh_metric_at(s_ttft, tier, agent),
                           first_ns > start_ns ? (double)(first_ns - start_ns) / 1e9 : total);
    uint64_t in = res->usage.prompt_tokens, out = res->usage.completion_tokens;
    mesh_counter_add(mesh_metric_at(s_tokens, tier, agent, "in"), in);
    mesh_counter_add(mesh_metric_at(s_tokens, tier, agent, "out"), out);
    double cost = llm_metrics_cost(tier, res);
    /* Touch the series even at cost 0, so a tier without a price is visible. */
    mesh_counter_addf(mesh_metric_at(s_cost, tier, agent), cost);
}
