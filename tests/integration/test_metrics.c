/*
 * test_metrics.c - every service's /metrics through a whole mesh.
 *
 * The mesh runs with one process per service, each with its own
 * MESH_METRICS_PORT (and the gateway on its main port too). After a few
 * turns (policy.lookup used) and an error request, every endpoint is
 * scraped and parsed with the strict text-format parser
 * (harness/prom_parse.h): a parse failure fails the test. Then the series
 * the dashboards and alerts depend on must exist and have moved, and no
 * conversation id may appear anywhere in a scrape (bounded cardinality).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"
#include "prom_parse.h"

#define TURNS_PER_CONV 2
#define N_CONVS        2
#define SCRAPE_WAIT_MS 10000

static mh_mesh_t *s_mesh;
static int s_port[MH_N_SVC]; /* MESH_METRICS_PORT per service */
static char s_env[MH_N_SVC][48];
static char s_conv[N_CONVS][64];

static int group_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    for (int s = 0; s < MH_N_SVC; s++) {
        s_port[s] = mh_free_port();
        if (s_port[s] <= 0)
            return -1;
        snprintf(s_env[s], sizeof(s_env[s]), "MESH_METRICS_PORT=%d", s_port[s]);
        o.env[s][0] = s_env[s];
    }
    s_mesh = mh_mesh_start(&o);
    if (!s_mesh)
        return -1;
    for (int c = 0; c < N_CONVS; c++)
        snprintf(s_conv[c], sizeof(s_conv[c]), "conv-metrics-%d-%d", (int)getpid(), c);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bool alive = s_mesh && mh_mesh_all_alive(s_mesh);
    bool clean = mh_mesh_stop(&s_mesh) == 0;
    return alive && clean ? 0 : -1;
}

/* GET url, assert 200 with the 0.0.4 content, parse strictly. Keeps the text in *text. */
static mh_prom_t *scrape_url(const char *url, char **text)
{
    mh_http_resp_t r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(mh_http("GET", url, NULL, NULL, SCRAPE_WAIT_MS, &r), 0);
    if (r.status != 200)
        fprintf(stderr, "GET %s: %ld\n", url, r.status);
    assert_int_equal(r.status, 200);
    char err[MH_PROM_ERR_MAX];
    mh_prom_t *doc = NULL;
    int rc = mh_prom_parse(r.body, r.body_len, &doc, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "%s is not valid text format: %s\n", url, err);
    assert_int_equal(rc, 0);
    assert_true(mh_prom_samples(doc) > 0);
    *text = r.body;
    r.body = NULL;
    mh_http_resp_clear(&r);
    return doc;
}

static mh_prom_t *scrape_svc(mh_svc_t svc, char **text)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", s_port[svc]);
    return scrape_url(url, text);
}

/* The common checks of every service's scrape. */
static void check_common(const mh_prom_t *doc, const char *text, const char *svc)
{
    char match[64];
    snprintf(match, sizeof(match), "service=%s", svc);
    assert_int_equal(mh_prom_find(doc, "mesh_build_info", match, NULL), 1);
    assert_true(mh_prom_sum(doc, "mesh_process_start_time_seconds", NULL) > 1e9);
    for (int c = 0; c < N_CONVS; c++)
        assert_null(strstr(text, s_conv[c])); /* no conversation id as a label */
}

static void run_turns(void)
{
    static const char *const texts[TURNS_PER_CONV] = {"我的保单 P10023 保障什么？",
                                                      "免赔额是多少？"};
    for (int c = 0; c < N_CONVS; c++) {
        for (int t = 0; t < TURNS_PER_CONV; t++) {
            char mid[16];
            snprintf(mid, sizeof(mid), "m%d", t);
            mh_http_resp_t r;
            assert_int_equal(mh_post_message(s_mesh, s_conv[c], texts[t], mid, &r), 0);
            assert_int_equal(r.status, 200);
            mh_http_resp_clear(&r);
        }
    }
    /* One client error for the gateway's 4xx series. */
    char url[256];
    snprintf(url, sizeof(url), "%s/no/such/path", mh_mesh_url(s_mesh));
    mh_http_resp_t r;
    assert_int_equal(mh_http_get(url, &r), 0);
    assert_int_equal(r.status, 404);
    mh_http_resp_clear(&r);
}

static void test_scrape_every_service(void **state)
{
    (void)state;
    run_turns();
    const int turns = N_CONVS * TURNS_PER_CONV;
    char *text = NULL;
    mh_prom_t *doc = NULL;

    /* ---- gateway: main port and its own metrics port show one registry */
    char url[256];
    snprintf(url, sizeof(url), "%s/metrics", mh_mesh_url(s_mesh));
    doc = scrape_url(url, &text);
    check_common(doc, text, "gateway");
    assert_true(mh_prom_sum(doc, "mesh_http_requests_total",
                            "route=/v1/conversations/{id}/messages,method=POST,code=2xx") >= turns);
    assert_true(mh_prom_sum(doc, "mesh_http_requests_total", "route=other,code=4xx") >= 1);
    assert_true(mh_prom_sum(doc, "mesh_http_request_duration_seconds_count",
                            "route=/v1/conversations/{id}/messages") >= turns);
    assert_string_equal(mh_prom_type(doc, "mesh_http_request_duration_seconds"), "histogram");
    assert_true(mh_prom_sum(doc, "mesh_http_connections_open", NULL) >= 1); /* this scrape */
    assert_int_equal(mh_prom_find(doc, "mesh_gateway_turns_inflight", NULL, NULL), 1);
    assert_true(mh_prom_sum(doc, "mesh_gateway_turns_inflight", NULL) == 0);
    assert_true(mh_prom_sum(doc, "mesh_client_requests_total", "service=agent,status=ok") >= turns);
    assert_true(mh_prom_sum(doc, "mesh_client_routers_alive", NULL) == 1);
    mh_prom_free(&doc);
    free(text);
    doc = scrape_svc(MH_GATEWAY, &text);
    assert_true(mh_prom_sum(doc, "mesh_http_requests_total", "route=/metrics,code=2xx") >= 1);
    mh_prom_free(&doc);
    free(text);

    /* ---- workers: requests by op and status, latency, capacity */
    static const struct {
        mh_svc_t svc;
        const char *name;
        const char *op;
    } workers[] = {
        {MH_LLM, "llm", "llm.chat"},
        {MH_TOOLS, "tools", "tool.call"},
        {MH_MEMORY, "memory", NULL},
    };
    for (size_t i = 0; i < sizeof(workers) / sizeof(workers[0]); i++) {
        char match[96];
        doc = scrape_svc(workers[i].svc, &text);
        check_common(doc, text, workers[i].name);
        if (workers[i].op)
            snprintf(match, sizeof(match), "service=%s,op=%s,status=ok", workers[i].name,
                     workers[i].op);
        else
            snprintf(match, sizeof(match), "service=%s,status=ok", workers[i].name);
        if (mh_prom_sum(doc, "mesh_worker_requests_total", match) < turns)
            fprintf(stderr, "%s: mesh_worker_requests_total{%s} below %d\n", workers[i].name, match,
                    turns);
        assert_true(mh_prom_sum(doc, "mesh_worker_requests_total", match) >= turns);
        snprintf(match, sizeof(match), "service=%s", workers[i].name);
        assert_true(mh_prom_sum(doc, "mesh_worker_request_duration_seconds_count", match) >= turns);
        assert_true(mh_prom_sum(doc, "mesh_worker_capacity", match) >= 1);
        assert_int_equal(mh_prom_find(doc, "mesh_worker_inflight", match, NULL), 1);
        if (workers[i].svc == MH_MEMORY) {
            assert_true(mh_prom_sum(doc, "mesh_redis_command_duration_seconds_count", NULL) > 0);
            assert_true(mh_prom_sum(doc, "mesh_redis_up", NULL) == 1);
            assert_int_equal(mh_prom_find(doc, "mesh_redis_command_errors_total", NULL, NULL), 0);
        }
        if (workers[i].svc == MH_LLM) {
            assert_true(mh_prom_sum(doc, "mesh_llm_calls_total", "status=ok") >= turns);
            assert_true(mh_prom_sum(doc, "mesh_llm_tokens_total", "direction=in") > 0);
            assert_true(mh_prom_sum(doc, "mesh_llm_tokens_total", "direction=out") > 0);
            assert_true(mh_prom_sum(doc, "mesh_llm_call_duration_seconds_count",
                                    "agent=policy_qa") >= turns);
            assert_true(mh_prom_sum(doc, "mesh_llm_time_to_first_token_seconds_count", NULL) >=
                        turns);
            assert_int_equal(mh_prom_find(doc, "mesh_llm_cost_usd_total", NULL, NULL) > 0, 1);
        }
        mh_prom_free(&doc);
        free(text);
    }

    /* ---- router: the autoscaling signals, turns, tools */
    doc = scrape_svc(MH_ROUTER, &text);
    check_common(doc, text, "router");
    static const char *const svcs[] = {"llm", "tools", "memory"};
    for (size_t i = 0; i < 3; i++) {
        char match[64];
        snprintf(match, sizeof(match), "service=%s", svcs[i]);
        assert_int_equal(mh_prom_find(doc, "mesh_router_queue_depth", match, NULL), 1);
        assert_true(mh_prom_sum(doc, "mesh_router_workers_live", match) == 1);
        assert_true(mh_prom_sum(doc, "mesh_router_capacity", match) >= 1);
        assert_int_equal(mh_prom_find(doc, "mesh_router_capacity_in_use", match, NULL), 1);
        assert_true(mh_prom_sum(doc, "mesh_router_requests_total", match) >= turns);
    }
    assert_true(mh_prom_sum(doc, "mesh_router_turns_total", "agent=policy_qa,status=ok") == turns);
    assert_true(mh_prom_sum(doc, "mesh_router_turn_duration_seconds_count", "agent=policy_qa") ==
                turns);
    assert_true(mh_prom_sum(doc, "mesh_router_turn_steps_count", "agent=policy_qa") == turns);
    assert_true(mh_prom_sum(doc, "mesh_router_tool_calls_total", "tool=policy.lookup,status=ok") >=
                turns);
    assert_true(mh_prom_sum(doc, "mesh_router_turns_inflight", NULL) == 0);
    assert_int_equal(mh_prom_label_values(doc, "mesh_router_workers_live", "service", NULL), 3);
    mh_prom_free(&doc);
    free(text);
}

/* The gateway's /metrics only answers GET, like every other read route. */
static void test_gateway_metrics_method(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof(url), "%s/metrics", mh_mesh_url(s_mesh));
    mh_http_resp_t r;
    assert_int_equal(mh_http("POST", url, "{}", NULL, SCRAPE_WAIT_MS, &r), 0);
    assert_int_equal(r.status, 405);
    mh_http_resp_clear(&r);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/nope", s_port[MH_ROUTER]);
    assert_int_equal(mh_http_get(url, &r), 0);
    assert_int_equal(r.status, 404);
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("metrics") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrape_every_service),
        cmocka_unit_test(test_gateway_metrics_method),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
