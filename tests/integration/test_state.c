/*
 * test_state.c - the conversation state the router keeps, through the
 * whole mesh over HTTP (gateway -> router -> memory/llm/tools -> Redis),
 * rules backend: the FINAL's state and usage, the running usage totals in
 * the state hash (GET /v1/conversations/{id}), and state.update driven by
 * the claims_intake worker (slots collected across turns, stored as JSON
 * in the hash) when that worker is shipped in data/agents.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"
#include "prom_parse.h"

static mh_mesh_t *s_mesh;
static int s_router_metrics_port;
static char s_router_env[48];

static int group_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    s_router_metrics_port = mh_free_port();
    if (s_router_metrics_port <= 0)
        return -1;
    snprintf(s_router_env, sizeof(s_router_env), "MESH_METRICS_PORT=%d", s_router_metrics_port);
    o.env[MH_ROUTER][0] = s_router_env;
    s_mesh = mh_mesh_start(&o);
    return s_mesh ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

static void post_ok(const char *conv, const char *text, const char *mid, mh_http_resp_t *r)
{
    assert_int_equal(mh_post_message(s_mesh, conv, text, mid, r), 0);
    if (r->status != 200 || !r->json)
        fail_msg("turn %s on %s: status %ld, body %s %s", mid, conv, r->status,
                 r->body ? r->body : "", r->curl_err);
}

static json_int_t usage_int(const json_t *final, const char *k)
{
    const json_t *v = json_object_get(json_object_get(final, "usage"), k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* A state hash field (decimal text) as an integer; -1 when absent. */
static long long state_int(const json_t *conv, const char *k)
{
    const char *s = mh_json_str(json_object_get(conv, "state"), k);
    return s ? strtoll(s, NULL, 10) : -1;
}

static void test_usage_totals(void **state)
{
    (void)state;
    char conv[64];
    snprintf(conv, sizeof(conv), "conv-usage-%d", (int)getpid());
    mh_http_resp_t r1, r2, c;
    post_ok(conv, "我的保单 P10023 保障什么？", "u-1", &r1);
    /* The FINAL carries this turn's usage, the model that answered and the state. */
    json_int_t p1 = usage_int(r1.json, "prompt_tokens");
    json_int_t c1 = usage_int(r1.json, "completion_tokens");
    assert_true(p1 > 0 && c1 > 0);
    assert_true(json_is_number(json_object_get(json_object_get(r1.json, "usage"), "cost_usd")));
    assert_string_equal(mh_json_str(r1.json, "model"), "rules");
    json_t *st = json_object_get(r1.json, "state");
    assert_true(json_is_object(json_object_get(st, "slots")));
    assert_true(json_is_object(json_object_get(st, "records")));
    assert_null(json_object_get(r1.json, "handoff"));

    post_ok(conv, "免赔额是多少？", "u-2", &r2);
    json_int_t p2 = usage_int(r2.json, "prompt_tokens");
    json_int_t c2 = usage_int(r2.json, "completion_tokens");
    /* The second turn's prompt holds the first turn's exchange: it is longer. */
    assert_true(p2 > 0 && c2 > 0);

    /* The hash keeps the conversation's running totals: the sum of both turns. */
    assert_int_equal(mh_get_conversation(s_mesh, conv, &c), 0);
    assert_int_equal(c.status, 200);
    assert_int_equal(state_int(c.json, "usage_prompt_tokens"), p1 + p2);
    assert_int_equal(state_int(c.json, "usage_completion_tokens"), c1 + c2);
    assert_non_null(mh_json_str(json_object_get(c.json, "state"), "usage_cost_usd"));
    assert_string_equal(mh_json_str(json_object_get(c.json, "state"), "agent"), "policy_qa");
    mh_http_resp_clear(&r1);
    mh_http_resp_clear(&r2);
    mh_http_resp_clear(&c);

    /* The router counts the tokens per agent and per tenant. */
    mh_prom_t *doc = mh_metrics_scrape(s_router_metrics_port, "router");
    assert_true(mh_prom_sum(doc, "mesh_router_llm_tokens_total", "agent=policy_qa,kind=prompt") >=
                (double)(p1 + p2));
    assert_true(mh_prom_sum(doc, "mesh_router_llm_tokens_total",
                            "agent=policy_qa,kind=completion") >= (double)(c1 + c2));
    assert_true(mh_prom_sum(doc, "mesh_router_tenant_llm_tokens_total",
                            "tenant=default,kind=prompt") >= (double)(p1 + p2));
    assert_int_equal(mh_prom_find(doc, "mesh_router_llm_cost_usd_total", "agent=policy_qa", NULL),
                     1);
    assert_int_equal(
        mh_prom_find(doc, "mesh_router_tenant_llm_cost_usd_total", "tenant=default", NULL), 1);
    mh_prom_free(&doc);

    /* A duplicate returns the stored FINAL (with its usage) and adds nothing. */
    post_ok(conv, "免赔额是多少？", "u-2", &r2);
    assert_true(json_is_true(json_object_get(r2.json, "duplicate")));
    assert_int_equal(usage_int(r2.json, "prompt_tokens"), p2);
    mh_http_resp_clear(&r2);
    assert_int_equal(mh_get_conversation(s_mesh, conv, &c), 0);
    assert_int_equal(state_int(c.json, "usage_prompt_tokens"), p1 + p2);
    mh_http_resp_clear(&c);
}

static bool intake_shipped(void)
{
    char path[1024];
    const char *data = getenv("MESH_DATA_DIR");
    snprintf(path, sizeof(path), "%s/agents/claims_intake.json", data ? data : "data");
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The claims_intake worker (when shipped) records what it collects with
 * state.update: the slots come back in the FINAL and are stored as JSON. */
static void test_intake_slots(void **state)
{
    (void)state;
    if (!intake_shipped())
        skip();
    char conv[64];
    snprintf(conv, sizeof(conv), "conv-intake-%d", (int)getpid());
    mh_http_resp_t r, c;
    post_ok(conv, "我要报案：昨天下午三点在延安路和人追尾了，对方全责，车灯坏了，没人受伤", "i-1",
            &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "claims_intake");
    json_t *slots = json_object_get(json_object_get(r.json, "state"), "slots");
    if (!json_is_object(slots) || json_object_size(slots) == 0)
        fail_msg("no slots collected: %s", r.body);
    bool used_update = false;
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(r.json, "tool_calls"), i, tc)
    {
        if (strcmp(mh_json_str(tc, "name"), "state.update") == 0 &&
            json_is_true(json_object_get(tc, "ok")))
            used_update = true;
    }
    assert_true(used_update);
    /* The hash holds the same slots as compact JSON. */
    assert_int_equal(mh_get_conversation(s_mesh, conv, &c), 0);
    const char *stored = mh_json_str(json_object_get(c.json, "state"), "slots");
    assert_non_null(stored);
    json_error_t je;
    json_t *parsed = json_loads(stored, 0, &je);
    assert_non_null(parsed);
    assert_true(json_equal(parsed, slots));
    json_decref(parsed);
    mh_http_resp_clear(&c);
    mh_http_resp_clear(&r);
}

/* A switch phrase moves an existing conversation to another worker, for
 * this turn and after. */
static void test_switch_agent(void **state)
{
    (void)state;
    if (!intake_shipped())
        skip();
    char conv[64];
    snprintf(conv, sizeof(conv), "conv-switch-%d", (int)getpid());
    mh_http_resp_t r, c;
    post_ok(conv, "What does my policy P10023 cover?", "s-1", &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "policy_qa");
    mh_http_resp_clear(&r);
    post_ok(conv, "Thanks. Now I want to file a claim.", "s-2", &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "claims_intake");
    mh_http_resp_clear(&r);
    assert_int_equal(mh_get_conversation(s_mesh, conv, &c), 0);
    assert_string_equal(mh_json_str(json_object_get(c.json, "state"), "agent"), "claims_intake");
    mh_http_resp_clear(&c);
    /* No switch phrase: the conversation stays with its worker. */
    post_ok(conv, "It happened yesterday at 3pm.", "s-3", &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "claims_intake");
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("state") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_totals),
        cmocka_unit_test(test_intake_slots),
        cmocka_unit_test(test_switch_agent),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
