/*
 * test_router_agents.c - loading agent definitions and tool schemas,
 * validation errors that name the file and the field, triage (keyword
 * score, switch phrases), the keys added for the digital workers
 * (fallback_mode, response_format, slots, handoff_rules) and the tools'
 * "service".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agents.h"
#include "test_router_util.h"

typedef struct {
    char dir[256];
    char agents_dir[300];
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    if (rt_make_data_dir(fx->dir, sizeof(fx->dir)) != 0)
        return -1;
    snprintf(fx->agents_dir, sizeof(fx->agents_dir), "%s/agents", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    rt_remove_dir(fx->dir);
    free(fx);
    return 0;
}

static void test_load_good(void **state)
{
    fx_t *fx = *state;
    router_agents_t *a = NULL;
    char err[512];
    assert_int_equal(router_agents_load(fx->dir, "policy_qa", &a, err, sizeof(err)), 0);
    assert_non_null(a);
    assert_int_equal(router_agents_count(a), 2);
    /* File-name order. */
    assert_string_equal(router_agents_at(a, 0)->name, "claims");
    assert_string_equal(router_agents_at(a, 1)->name, "policy_qa");
    const router_agent_t *qa = router_agents_find(a, "policy_qa");
    assert_non_null(qa);
    assert_ptr_equal(router_agents_default(a), qa);
    assert_int_equal(qa->max_steps, 3);
    assert_string_equal(qa->tier, "small");
    assert_string_equal(router_agent_prompt(qa, "zh"), "你是保单问答助手");
    assert_string_equal(router_agent_prompt(qa, "en"), "You are the policy assistant");
    assert_string_equal(router_agent_fallback(qa, "en"), "Sorry, I could not finish");
    assert_true(router_agent_allows(qa, "policy.lookup"));
    assert_false(router_agent_allows(qa, "claim.register"));
    /* The tools given to the model: only the allowed ones, in the OpenAI function shape. */
    assert_int_equal(json_array_size(qa->llm_tools), 1);
    json_t *t0 = json_array_get(qa->llm_tools, 0);
    assert_string_equal(json_string_value(json_object_get(t0, "name")), "policy.lookup");
    assert_non_null(json_object_get(t0, "parameters"));
    assert_non_null(json_object_get(t0, "description"));
    const router_agent_t *cl = router_agents_find(a, "claims");
    assert_int_equal(json_array_size(cl->llm_tools), 2);
    assert_true(router_agents_tool(a, "policy.lookup")->idempotent);
    assert_false(router_agents_tool(a, "claim.register")->idempotent);
    assert_null(router_agents_tool(a, "nope"));
    /* References: the set lives until the last unref. */
    router_agents_t *ref = router_agents_ref(a);
    router_agents_unref(&a);
    assert_null(a);
    assert_string_equal(router_agents_default(ref)->name, "policy_qa");
    router_agents_unref(&ref);
}

static void test_triage(void **state)
{
    fx_t *fx = *state;
    router_agents_t *a = NULL;
    char err[512];
    assert_int_equal(router_agents_load(fx->dir, "policy_qa", &a, err, sizeof(err)), 0);
    assert_string_equal(router_agents_triage(a, "我想理赔，昨天撞车了")->name, "claims");
    /* Case-insensitive: the keyword is "Policy", the text says "POLICY". */
    assert_string_equal(router_agents_triage(a, "what does my POLICY cover?")->name, "policy_qa");
    assert_string_equal(router_agents_triage(a, "我的保单保什么")->name, "policy_qa");
    assert_null(router_agents_triage(a, "hello there"));
    /* Both match: the first agent in file-name order wins. */
    assert_string_equal(router_agents_triage(a, "a claim on my policy")->name, "claims");

    /* pick: state agent, then a valid requested agent, then triage, then the default. */
    assert_string_equal(router_agents_pick(a, "claims", "policy_qa", "保单")->name, "claims");
    assert_string_equal(router_agents_pick(a, NULL, "claims", "保单")->name, "claims");
    assert_string_equal(router_agents_pick(a, "gone", "bogus", "claim it")->name, "claims");
    assert_string_equal(router_agents_pick(a, NULL, NULL, "hello")->name, "policy_qa");
    router_agents_unref(&a);
}

/* Overwrite one file, load, expect an error containing every needle. */
static void expect_error(fx_t *fx, const char *dir, const char *file, const char *text,
                         const char *default_agent, const char *needle1, const char *needle2)
{
    if (file)
        assert_int_equal(rt_write_file(dir, file, text), 0);
    router_agents_t *a = NULL;
    char err[512];
    int rc = router_agents_load(fx->dir, default_agent, &a, err, sizeof(err));
    assert_int_equal(rc, MESH_ECONFIG);
    assert_null(a);
    if (!strstr(err, needle1) || (needle2 && !strstr(err, needle2)))
        fail_msg("error '%s' lacks '%s' / '%s'", err, needle1, needle2 ? needle2 : "");
}

static void test_agent_errors(void **state)
{
    fx_t *fx = *state;
    expect_error(fx, fx->agents_dir, "claims.json",
                 "{\"name\":\"claims\",\"prompt\":{\"zh\":\"a\",\"en\":\"b\"},"
                 "\"tools\":[\"policy.lookup\",\"teleport\"],\"tier\":\"small\",\"max_steps\":2,"
                 "\"fallback\":{\"zh\":\"a\",\"en\":\"b\"}}",
                 "policy_qa", "claims.json: tools[1]", "unknown tool 'teleport'");
    expect_error(fx, fx->agents_dir, "claims.json",
                 "{\"name\":\"claims\",\"prompt\":{\"zh\":\"a\"},\"tools\":[],"
                 "\"tier\":\"small\",\"max_steps\":2,\"fallback\":{\"zh\":\"a\",\"en\":\"b\"}}",
                 "policy_qa", "claims.json: prompt.en", NULL);
    expect_error(fx, fx->agents_dir, "claims.json",
                 "{\"name\":\"claims\",\"prompt\":{\"zh\":\"a\",\"en\":\"b\"},\"tools\":[],"
                 "\"tier\":\"small\",\"max_steps\":0,\"fallback\":{\"zh\":\"a\",\"en\":\"b\"}}",
                 "policy_qa", "claims.json: max_steps", NULL);
    expect_error(fx, fx->agents_dir, "claims.json",
                 "{\"name\":\"other\",\"prompt\":{\"zh\":\"a\",\"en\":\"b\"},\"tools\":[],"
                 "\"tier\":\"small\",\"max_steps\":1,\"fallback\":{\"zh\":\"a\",\"en\":\"b\"}}",
                 "policy_qa", "claims.json: name", "file name");
    expect_error(fx, fx->agents_dir, "claims.json",
                 "{\"name\":\"claims\",\"prompt\":{\"zh\":\"a\",\"en\":\"b\"},\"tools\":[],"
                 "\"tier\":\"small\",\"max_steps\":1,\"triage\":{\"keywords\":[\"\"]},"
                 "\"fallback\":{\"zh\":\"a\",\"en\":\"b\"}}",
                 "policy_qa", "claims.json: triage.keywords[0]", NULL);
    expect_error(fx, fx->agents_dir, "claims.json", "{\"name\": \"claims\",", "policy_qa",
                 "claims.json: line", NULL);
    /* Restore, then a default that does not exist. */
    assert_int_equal(rt_write_file(fx->agents_dir, "claims.json", RT_AGENT_CLAIMS), 0);
    expect_error(fx, NULL, NULL, NULL, "nobody", "MESH_DEFAULT_AGENT", "nobody");
}

static void test_tools_errors(void **state)
{
    fx_t *fx = *state;
    expect_error(fx, fx->dir, "tools.json", "{\"name\":\"x\"}", "policy_qa", "tools.json", "array");
    expect_error(fx, fx->dir, "tools.json",
                 "[{\"name\":\"policy.lookup\",\"description\":\"d\",\"parameters\":"
                 "{\"type\":\"bogus\"}}]",
                 "policy_qa", "tools.json: [0].parameters", NULL);
    expect_error(fx, fx->dir, "tools.json",
                 "[{\"name\":\"Bad Name\",\"description\":\"d\",\"parameters\":{}}]", "policy_qa",
                 "tools.json: [0].name", NULL);
    rt_remove_dir(fx->dir);
    router_agents_t *a = NULL;
    char err[512];
    assert_int_equal(router_agents_load(fx->dir, "policy_qa", &a, err, sizeof(err)), MESH_ECONFIG);
    assert_non_null(strstr(err, "tools.json"));
}

/* A full agent file with the new keys, and a tools.json with services. */
#define T_TOOLS_SVC                                                                                \
    "[{\"name\":\"policy.lookup\",\"description\":\"d\",\"parameters\":{\"type\":\"object\"}},"    \
    "{\"name\":\"claim.register\",\"description\":\"d\",\"service\":\"memory\","                   \
    "\"parameters\":{\"type\":\"object\"}},"                                                       \
    "{\"name\":\"state.update\",\"description\":\"d\",\"service\":\"router\","                     \
    "\"idempotent\":true,\"parameters\":{\"type\":\"object\"}},"                                   \
    "{\"name\":\"fee.calc\",\"description\":\"d\",\"service\":\"tools\","                          \
    "\"parameters\":{\"type\":\"object\"}}]"

#define T_AGENT_INTAKE(extra)                                                                      \
    "{\"name\":\"claims\",\"prompt\":{\"zh\":\"a\",\"en\":\"b\"},"                                 \
    "\"tools\":[\"claim.register\",\"state.update\"],\"tier\":\"large\",\"max_steps\":6,"          \
    "\"fallback\":{\"zh\":\"转人工\",\"en\":\"A colleague will take over\"}" extra "}"

static void test_new_keys(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(rt_write_file(fx->dir, "tools.json", T_TOOLS_SVC), 0);
    assert_int_equal(
        rt_write_file(fx->agents_dir, "claims.json",
                      T_AGENT_INTAKE(
                          ",\"fallback_mode\":\"handoff\",\"response_format\":\"json\","
                          "\"triage\":{\"keywords\":[\"报案\",\"accident\"],"
                          "\"switch\":[\"I want to file a claim\",\"我要报案\"]},"
                          "\"slots\":[{\"name\":\"accident_time\",\"required\":true,"
                          "\"label\":{\"zh\":\"出险时间\",\"en\":\"time of the accident\"}},"
                          "{\"name\":\"place\"}],"
                          "\"handoff_rules\":[{\"when\":\"injury\",\"reason\":{\"zh\":\"有人受伤\","
                          "\"en\":\"injury\"}}],\"future_key\":{\"ignored\":true}")),
        0);
    router_agents_t *a = NULL;
    char err[512];
    if (router_agents_load(fx->dir, "policy_qa", &a, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    const router_agent_t *cl = router_agents_find(a, "claims");
    assert_string_equal(cl->fallback_mode, "handoff");
    assert_string_equal(cl->response_format, "json");
    assert_int_equal(cl->n_switches, 2);
    assert_int_equal(cl->n_keywords, 2);
    /* Defaults. */
    const router_agent_t *qa = router_agents_find(a, "policy_qa");
    assert_string_equal(qa->fallback_mode, "rules");
    assert_string_equal(qa->response_format, "");
    assert_int_equal(qa->n_switches, 0);
    /* Services: default tools; memory and router as declared. */
    assert_int_equal(router_agents_tool(a, "policy.lookup")->service, ROUTER_TOOL_SVC_TOOLS);
    assert_string_equal(router_agents_tool(a, "policy.lookup")->service_name, "tools");
    assert_int_equal(router_agents_tool(a, "fee.calc")->service, ROUTER_TOOL_SVC_TOOLS);
    assert_int_equal(router_agents_tool(a, "claim.register")->service, ROUTER_TOOL_SVC_MEMORY);
    assert_string_equal(router_agents_tool(a, "claim.register")->service_name, "memory");
    assert_int_equal(router_agents_tool(a, "state.update")->service, ROUTER_TOOL_SVC_ROUTER);
    /* The router-local tool is offered to the model like any other. */
    assert_int_equal(json_array_size(cl->llm_tools), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(cl->llm_tools, 1), "name")),
        "state.update");
    router_agents_unref(&a);
}

static void test_new_key_errors(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(rt_write_file(fx->dir, "tools.json", T_TOOLS_SVC), 0);
    const char *cases[][2] = {
        {T_AGENT_INTAKE(",\"fallback_mode\":\"pray\""), "claims.json: fallback_mode"},
        {T_AGENT_INTAKE(",\"fallback_mode\":1"), "claims.json: fallback_mode"},
        {T_AGENT_INTAKE(",\"response_format\":\"xml\""), "claims.json: response_format"},
        {T_AGENT_INTAKE(",\"triage\":{\"switch\":\"我要报案\"}"), "claims.json: triage.switch"},
        {T_AGENT_INTAKE(",\"triage\":{\"switch\":[\"\"]}"), "claims.json: triage.switch[0]"},
        {T_AGENT_INTAKE(",\"triage\":{}"), "claims.json: triage.keywords"},
        {T_AGENT_INTAKE(",\"triage\":[\"x\"]"), "claims.json: triage"},
        {T_AGENT_INTAKE(",\"slots\":{}"), "claims.json: slots"},
        {T_AGENT_INTAKE(",\"slots\":[{\"name\":\"Bad Name\"}]"), "claims.json: slots[0].name"},
        {T_AGENT_INTAKE(",\"slots\":[{\"name\":\"a\"},{\"name\":\"a\"}]"),
         "claims.json: slots[1].name"},
        {T_AGENT_INTAKE(",\"slots\":[{\"name\":\"a\",\"required\":\"yes\"}]"),
         "claims.json: slots[0].required"},
        {T_AGENT_INTAKE(",\"slots\":[{\"name\":\"a\",\"label\":{\"zh\":7}}]"),
         "claims.json: slots[0].label.zh"},
        {T_AGENT_INTAKE(",\"handoff_rules\":[{\"reason\":{\"en\":\"x\"}}]"),
         "claims.json: handoff_rules[0].when"},
        {T_AGENT_INTAKE(",\"handoff_rules\":[{\"when\":\"injury\",\"reason\":\"x\"}]"),
         "claims.json: handoff_rules[0].reason"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(fx, fx->agents_dir, "claims.json", cases[i][0], "policy_qa", cases[i][1],
                     NULL);
    assert_int_equal(rt_write_file(fx->agents_dir, "claims.json", T_AGENT_INTAKE("")), 0);
    expect_error(fx, fx->dir, "tools.json",
                 "[{\"name\":\"policy.lookup\",\"description\":\"d\",\"service\":\"crm\","
                 "\"parameters\":{\"type\":\"object\"}}]",
                 "policy_qa", "tools.json: [0].service", NULL);
    /* "router" is only for the tools the router implements. */
    expect_error(fx, fx->dir, "tools.json",
                 "[{\"name\":\"policy.lookup\",\"description\":\"d\",\"service\":\"router\","
                 "\"parameters\":{\"type\":\"object\"}}]",
                 "policy_qa", "tools.json: [0].service", "policy.lookup");
}

static void test_triage_score_and_switch(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(rt_write_file(fx->dir, "tools.json", T_TOOLS_SVC), 0);
    assert_int_equal(
        rt_write_file(fx->agents_dir, "claims.json",
                      T_AGENT_INTAKE(",\"triage\":{\"keywords\":[\"报案\",\"accident\",\"撞\"],"
                                     "\"switch\":[\"I want to file a claim\",\"我要报案\"]}")),
        0);
    assert_int_equal(rt_write_file(fx->agents_dir, "policy_qa.json",
                                   "{\"name\":\"policy_qa\",\"prompt\":{\"zh\":\"a\",\"en\":\"b\"},"
                                   "\"tools\":[],\"tier\":\"small\",\"max_steps\":3,"
                                   "\"triage\":{\"keywords\":[\"保单\",\"policy\",\"cover\"],"
                                   "\"switch\":[\"我要问保单\",\"policy question\"]},"
                                   "\"fallback\":{\"zh\":\"a\",\"en\":\"b\"}}"),
                     0);
    router_agents_t *a = NULL;
    char err[512];
    if (router_agents_load(fx->dir, "policy_qa", &a, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    /* Score: two policy_qa keywords beat one claims keyword, although claims
     * comes first in file order. */
    assert_string_equal(router_agents_triage(a, "accident: does my policy cover it?")->name,
                        "policy_qa");
    /* Two claims keywords vs. one policy keyword. */
    assert_string_equal(router_agents_triage(a, "我要报案，被撞了，保单号 P10023")->name, "claims");
    /* A tie goes to file order (claims < policy_qa). */
    assert_string_equal(router_agents_triage(a, "accident policy")->name, "claims");
    assert_null(router_agents_triage(a, "hello"));

    /* Switch phrases, ASCII case-insensitive. */
    assert_string_equal(router_agents_switch(a, "ok. I WANT TO FILE A CLAIM now")->name, "claims");
    assert_string_equal(router_agents_switch(a, "好的，我要问保单")->name, "policy_qa");
    assert_null(router_agents_switch(a, "my policy covers accidents?"));
    /* An existing conversation keeps its agent unless a switch phrase names another. */
    assert_string_equal(router_agents_pick(a, "claims", NULL, "what about my policy cover?")->name,
                        "claims");
    assert_string_equal(router_agents_pick(a, "claims", NULL, "我要问保单")->name, "policy_qa");
    assert_string_equal(router_agents_pick(a, "policy_qa", NULL, "I want to file a claim")->name,
                        "claims");
    /* New conversation: requested, then triage, then the default; switch
     * phrases only move existing conversations. */
    assert_string_equal(router_agents_pick(a, NULL, "policy_qa", "I want to file a claim")->name,
                        "policy_qa");
    assert_string_equal(router_agents_pick(a, NULL, NULL, "my policy cover")->name, "policy_qa");
    assert_string_equal(
        router_agents_pick(a, NULL, NULL, "I want to file a claim about my policy cover")->name,
        "policy_qa");
    assert_string_equal(
        router_agents_pick(a, "policy_qa", NULL, "I want to file a claim about my policy cover")
            ->name,
        "claims");
    assert_string_equal(router_agents_pick(a, "gone", NULL, "policy question")->name, "policy_qa");
    assert_string_equal(router_agents_pick(a, NULL, NULL, "hello")->name, "policy_qa");
    router_agents_unref(&a);

    /* A sticky agent keeps its conversation through others' switch phrases. */
    assert_int_equal(
        rt_write_file(fx->agents_dir, "trainer.json",
                      "{\"name\":\"trainer\",\"prompt\":{\"zh\":\"a\",\"en\":\"b\"},"
                      "\"tools\":[],\"tier\":\"small\",\"max_steps\":3,\"sticky\":true,"
                      "\"fallback\":{\"zh\":\"a\",\"en\":\"b\"}}"),
        0);
    if (router_agents_load(fx->dir, "policy_qa", &a, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_true(router_agents_find(a, "trainer")->sticky);
    assert_false(router_agents_find(a, "claims")->sticky);
    assert_string_equal(
        router_agents_pick(a, "trainer", NULL, "客户：我要报案，I want to file a claim")->name,
        "trainer");
    assert_string_equal(router_agents_pick(a, "claims", NULL, "我要问保单")->name, "policy_qa");
    router_agents_unref(&a);
    assert_int_equal(rt_write_file(fx->agents_dir, "trainer.json",
                                   "{\"name\":\"trainer\",\"prompt\":{\"zh\":\"a\",\"en\":\"b\"},"
                                   "\"tools\":[],\"tier\":\"small\",\"max_steps\":3,\"sticky\":1,"
                                   "\"fallback\":{\"zh\":\"a\",\"en\":\"b\"}}"),
                     0);
    assert_int_not_equal(router_agents_load(fx->dir, "policy_qa", &a, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "trainer.json: sticky: must be a boolean"));
}

/* The agents shipped in data/ load against the shipped tools.json. */
static void test_shipped_data(void **state)
{
    (void)state;
    const char *dir = getenv("MESH_DATA_DIR");
    if (!dir)
        skip();
    router_agents_t *a = NULL;
    char err[512];
    int rc = router_agents_load(dir, "policy_qa", &a, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    const router_agent_t *qa = router_agents_find(a, "policy_qa");
    assert_non_null(qa);
    assert_true(router_agent_allows(qa, "policy.lookup"));
    assert_true(router_agents_tool(a, "policy.lookup")->idempotent);
    assert_string_equal(router_agents_triage(a, "我的保单 P10023 保障什么？")->name, "policy_qa");
    assert_string_equal(router_agents_triage(a, "What is my DEDUCTIBLE?")->name, "policy_qa");
    /* The shipped catalogue routes claim.register to memory and runs state.update here. */
    const router_tool_t *reg = router_agents_tool(a, "claim.register");
    const router_tool_t *upd = router_agents_tool(a, "state.update");
    if (reg)
        assert_int_equal(reg->service, ROUTER_TOOL_SVC_MEMORY);
    if (upd)
        assert_int_equal(upd->service, ROUTER_TOOL_SVC_ROUTER);
    router_agents_unref(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_triage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tools_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_key_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_triage_score_and_switch, setup, teardown),
        cmocka_unit_test(test_shipped_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
