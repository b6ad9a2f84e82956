/*
 * test_triage_llm.c - MESH_TRIAGE=llm through the whole mesh (docs/router.md,
 * "Triage"): a new conversation's agent is chosen by one llm.chat of the
 * triage tier before the agent's first step.
 *
 * Group 1: llm workers on the openai backend against the model stub
 * (tests/stubs/openai_stub.c). The triage tier's model is
 * "triage_health_review", whose script answers {"agent":"health_review"};
 * the agents' tiers (small, large) use "text_plain" (a plain answer). The
 * turns go to the router as the gateway sends them (mh_mesh_call), so the
 * assertions read the FINAL's agent and triage.by:
 *   - a message whose keywords pick policy_qa goes to health_review (by llm),
 *     and the triage request the stub got is the designed one (tier model,
 *     JSON response format, no tools, the agents' descriptions as system
 *     prompt, the message as the only user message); the next message of
 *     the conversation keeps the agent without asking again (by state);
 *   - the model naming an agent that is not loaded -> keywords;
 *   - the model failing (503) -> keywords;
 *   - a requested agent -> no triage call (by requested);
 *   - mesh_router_triage_total{by} counts them.
 * Group 2: the rules backend with MESH_TRIAGE=llm: its triage engine answers
 * {"agent":null}, so the keywords decide (by keywords).
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

#include "mesh/mesh_err.h"
#include "mesh_harness.h"
#include "prom_parse.h"

#define TURN_TIMEOUT_MS 15000
#define TRIAGE_MODEL    "triage_health_review"
/* policy_qa's keywords: 保单, 保障, 免赔 (three); no other agent's. */
#define POLICY_TEXT "我想咨询一下保单的保障和免赔额"

static mh_mesh_t *s_mesh;
static mh_proc_t *s_stub;
static char s_record[MH_PATH_MAX];
static int s_metrics_port;
static char s_env_metrics[48];

static int metrics_env(void)
{
    s_metrics_port = mh_free_port();
    if (s_metrics_port <= 0)
        return -1;
    snprintf(s_env_metrics, sizeof(s_env_metrics), "MESH_METRICS_PORT=%d", s_metrics_port);
    return 0;
}

static int openai_setup(void **state)
{
    (void)state;
    int port = mh_openai_stub_start("openai-stub-triage.jsonl", &s_stub, s_record);
    if (port < 0 || metrics_env() != 0)
        return -1;
    const char *llm_env[] = {"MESH_LLM_API_KEY=sk-test", "MESH_LLM_RETRIES=0",
                             "MESH_LLM_TIMEOUT_MS=5000", "MESH_LLM_BREAKER_FAILURES=100", NULL};
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    o.env[MH_ROUTER][0] = "MESH_TRIAGE=llm";
    o.env[MH_ROUTER][1] = "MESH_TRIAGE_TIER=triage";
    o.env[MH_ROUTER][2] = s_env_metrics;
    s_mesh = mh_openai_mesh_start(port, "small=text_plain,large=text_plain,triage=" TRIAGE_MODEL,
                                  llm_env, &o);
    return s_mesh != NULL ? 0 : -1;
}

static int rules_setup(void **state)
{
    (void)state;
    if (metrics_env() != 0)
        return -1;
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    o.env[MH_ROUTER][0] = "MESH_TRIAGE=llm";
    o.env[MH_ROUTER][1] = s_env_metrics;
    s_mesh = mh_mesh_start(&o);
    return s_mesh != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_openai_mesh_teardown(&s_mesh, &s_stub);
}

/* ---- helpers ---- */

/* One turn (as the gateway sends it); the FINAL data (caller decrefs). */
static json_t *turn(const char *conv, const char *mid, const char *text, const char *agent)
{
    json_t *args = json_pack("{s:s, s:s}", "message_id", mid, "text", text);
    if (agent)
        json_object_set_new(args, "agent", json_string(agent));
    json_t *data = NULL;
    int rc = mh_mesh_call(s_mesh, "agent", "turn", conv, args, TURN_TIMEOUT_MS, &data);
    json_decref(args);
    if (rc != 0 || !json_is_object(data))
        fail_msg("turn %s/%s: status %d", conv, mid, rc);
    return data;
}

static const char *triage_by(const json_t *final)
{
    return mh_json_str(json_object_get(final, "triage"), "by");
}

static void conv_id(char *out, size_t n, const char *what)
{
    snprintf(out, n, "triage-%s-%d", what, (int)getpid());
}

/* The stub's recorded requests whose body asked model (or, with script
 * set, that the stub answered with script); new array, caller decrefs. */
static json_t *stub_requests(const char *model, const char *script)
{
    return mh_openai_stub_requests(s_record, model, script);
}

/* ---- group 1: openai backend against the stub ---- */

static void test_llm_chooses(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "llm");
    json_t *f = turn(conv, "m1", POLICY_TEXT, NULL);
    /* The keywords alone would say policy_qa; the model said health_review. */
    assert_string_equal(mh_json_str(f, "agent"), "health_review");
    assert_string_equal(triage_by(f), "llm");
    /* health_review's own step (tier large -> text_plain) answered. */
    assert_string_equal(mh_json_str(f, "reply"), "Plain answer from the stub.");
    /* The triage call's usage (429 tokens) counts in the turn's. */
    json_int_t prompt =
        json_integer_value(json_object_get(json_object_get(f, "usage"), "prompt_tokens"));
    assert_true(prompt >= 420 + 17);
    json_decref(f);

    /* The triage request, as designed. */
    json_t *reqs = stub_requests(TRIAGE_MODEL, NULL);
    assert_int_equal(json_array_size(reqs), 1);
    const json_t *body = json_object_get(json_array_get(reqs, 0), "body");
    assert_string_equal(mh_json_str(json_object_get(body, "response_format"), "type"),
                        "json_object");
    const json_t *tools = json_object_get(body, "tools");
    assert_true(tools == NULL || json_array_size(tools) == 0);
    const json_t *msgs = json_object_get(body, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(mh_json_str(json_array_get(msgs, 0), "role"), "system");
    const char *sys = mh_json_str(json_array_get(msgs, 0), "content");
    assert_non_null(sys);
    assert_non_null(strstr(sys, "- health_review\n"));
    assert_non_null(strstr(sys, "- policy_qa\n"));
    assert_non_null(strstr(sys, "Health-claims review"));
    assert_non_null(strstr(sys, "健康险理赔审核"));
    assert_non_null(strstr(sys, "{\"agent\": null}"));
    assert_string_equal(mh_json_str(json_array_get(msgs, 1), "role"), "user");
    assert_string_equal(mh_json_str(json_array_get(msgs, 1), "content"), POLICY_TEXT);
    json_decref(reqs);

    /* The triage call is a child span of the turn in its stored timeline,
     * marked, besides the agent's own llm step. */
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/conversations/%s/turns/1/trace", mh_mesh_url(s_mesh), conv);
    mh_http_resp_t r;
    assert_int_equal(mh_http_get(url, &r), 0);
    if (r.status != 200)
        fail_msg("trace route: %ld %s", r.status, r.body ? r.body : "");
    const json_t *spans = json_object_get(r.json, "spans");
    const char *turn_span = NULL;
    size_t i, n_llm = 0, n_triage = 0;
    const json_t *sp, *triage_span = NULL;
    json_array_foreach(spans, i, sp)
    {
        if (strcmp(mh_json_str(sp, "name"), "router turn") == 0)
            turn_span = mh_json_str(sp, "span_id");
        if (strcmp(mh_json_str(sp, "name"), "llm llm.chat") != 0)
            continue;
        n_llm++;
        const char *mark = mh_json_str(json_object_get(sp, "attributes"), "mesh.triage");
        if (mark && strcmp(mark, "llm") == 0) {
            n_triage++;
            triage_span = sp;
        }
    }
    assert_int_equal(n_llm, 2);
    assert_int_equal(n_triage, 1);
    assert_non_null(turn_span);
    assert_string_equal(mh_json_str(triage_span, "parent_span_id"), turn_span);
    assert_string_equal(mh_json_str(triage_span, "status"), "ok");
    mh_http_resp_clear(&r);

    /* The next message of the conversation keeps its agent: no triage call. */
    f = turn(conv, "m2", POLICY_TEXT, NULL);
    assert_string_equal(mh_json_str(f, "agent"), "health_review");
    assert_string_equal(triage_by(f), "state");
    json_decref(f);
    reqs = stub_requests(TRIAGE_MODEL, NULL);
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
}

static void test_llm_unknown_agent_falls_back(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "unknown");
    json_t *f = turn(conv, "m1", "#stub:triage_unknown " POLICY_TEXT, NULL);
    /* The model named "underwriter" (not loaded): the keywords decided. */
    assert_string_equal(mh_json_str(f, "agent"), "policy_qa");
    assert_string_equal(triage_by(f), "keywords");
    json_decref(f);
    /* The triage call was made (and answered by the triage_unknown script). */
    json_t *reqs = stub_requests(NULL, "triage_unknown");
    size_t triage_calls = 0;
    for (size_t i = 0; i < json_array_size(reqs); i++) {
        const json_t *body = json_object_get(json_array_get(reqs, i), "body");
        if (strcmp(mh_json_str(body, "model"), TRIAGE_MODEL) == 0)
            triage_calls++;
    }
    assert_int_equal(triage_calls, 1);
    json_decref(reqs);
}

static void test_llm_error_falls_back(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "error");
    /* 503 on every call: the triage fails, the keywords decide (life_trainer:
     * 陪练, 话术); the agent's step then fails too and its rules fallback answers. */
    json_t *f = turn(conv, "m1", "#stub:always_500 我想做一次陪练，练练话术", NULL);
    assert_string_equal(mh_json_str(f, "agent"), "life_trainer");
    assert_string_equal(triage_by(f), "keywords");
    json_decref(f);
}

static void test_requested_agent_skips_triage(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "requested");
    json_t *before = stub_requests(TRIAGE_MODEL, NULL);
    json_t *f = turn(conv, "m1", POLICY_TEXT, "claims_intake");
    assert_string_equal(mh_json_str(f, "agent"), "claims_intake");
    assert_string_equal(triage_by(f), "requested");
    json_decref(f);
    json_t *after = stub_requests(TRIAGE_MODEL, NULL);
    assert_int_equal(json_array_size(after), json_array_size(before));
    json_decref(before);
    json_decref(after);

    /* Every choice so far is counted by how it was made. */
    mh_prom_t *doc = mh_metrics_scrape(s_metrics_port, "router");
    assert_true(mh_prom_sum(doc, "mesh_router_triage_total", "by=llm") >= 1);
    assert_true(mh_prom_sum(doc, "mesh_router_triage_total", "by=state") >= 1);
    assert_true(mh_prom_sum(doc, "mesh_router_triage_total", "by=keywords") >= 2);
    assert_true(mh_prom_sum(doc, "mesh_router_triage_total", "by=requested") >= 1);
    mh_prom_free(&doc);
}

/* ---- group 2: rules backend ---- */

static void test_rules_backend_uses_keywords(void **state)
{
    (void)state;
    char conv[64];
    conv_id(conv, sizeof(conv), "rules");
    size_t mark = mh_log_mark(mh_mesh_proc(s_mesh, MH_ROUTER, 0));
    json_t *f = turn(conv, "m1", POLICY_TEXT, NULL);
    assert_string_equal(mh_json_str(f, "agent"), "policy_qa");
    assert_string_equal(triage_by(f), "keywords");
    json_decref(f);
    /* The triage call was made and its engine answered {"agent":null}. */
    assert_true(mh_log_wait(mh_mesh_proc(s_mesh, MH_ROUTER, 0), mark,
                            "llm triage gave no agent (agent null", 2000));
    /* No keyword at all: the default agent. */
    conv_id(conv, sizeof(conv), "rules-default");
    f = turn(conv, "m1", "hello there", NULL);
    assert_string_equal(mh_json_str(f, "agent"), "policy_qa");
    assert_string_equal(triage_by(f), "default");
    json_decref(f);
}

int main(void)
{
    if (mh_init("test_triage_llm") != 0)
        return 1;
    const struct CMUnitTest openai_tests[] = {
        cmocka_unit_test(test_llm_chooses),
        cmocka_unit_test(test_llm_unknown_agent_falls_back),
        cmocka_unit_test(test_llm_error_falls_back),
        cmocka_unit_test(test_requested_agent_skips_triage),
    };
    const struct CMUnitTest rules_tests[] = {
        cmocka_unit_test(test_rules_backend_uses_keywords),
    };
    int failed = cmocka_run_group_tests_name("openai", openai_tests, openai_setup, group_teardown);
    failed += cmocka_run_group_tests_name("rules", rules_tests, rules_setup, group_teardown);
    return mh_finish(failed);
}
