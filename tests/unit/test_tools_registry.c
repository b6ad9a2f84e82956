/*
 * test_tools_registry.c - the tools worker's dispatch in process: the two
 * ops, unknown tools, schema-invalid arguments, malformed requests, and
 * policy.lookup on the shipped data (P10023) and on hand-written policies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mesh/mesh_err.h"
#include "test_tools_fixture.h"
#include "tools_data.h"
#include "tools_registry.h"

static tools_registry_t *s_shipped; /* the shipped data */
static tools_registry_t *s_fixture; /* FIXTURE_POLICIES */
static char s_fixture_dir[FIXTURE_PATH_MAX];

static int group_setup(void **state)
{
    char dir[FIXTURE_PATH_MAX], err[512];
    (void)state;
    fixture_data_dir(dir);
    s_shipped = tools_registry_new();
    if (tools_registry_load(s_shipped, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "shipped data: %s\n", err);
        return -1;
    }
    if (fixture_make(s_fixture_dir, FIXTURE_POLICIES) != 0)
        return -1;
    s_fixture = tools_registry_new();
    if (tools_registry_load(s_fixture, s_fixture_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "fixture data: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tools_registry_destroy(&s_shipped);
    tools_registry_destroy(&s_fixture);
    fixture_remove(s_fixture_dir);
    return 0;
}

static json_t *js(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

/* Run op with args (JSON text or NULL) on reg; return status, *data owned by caller. */
static int handle(tools_registry_t *reg, const char *op, const char *args, json_t **data, char *err,
                  size_t err_size)
{
    json_t *a = args != NULL ? js(args) : NULL;
    int st = tools_registry_handle(reg, op, a, data, err, err_size);
    json_decref(a);
    return st;
}

/* A tool.call that must succeed at the transport level; returns the data. */
static json_t *call(tools_registry_t *reg, const char *args)
{
    char err[300];
    json_t *data = NULL;
    int st = handle(reg, "tool.call", args, &data, err, sizeof(err));
    if (st != 0)
        fail_msg("status %d (%s) for %s", st, err, args);
    assert_non_null(data);
    return data;
}

static const char *err_code(const json_t *data)
{
    assert_true(json_is_false(json_object_get(data, "ok")));
    return json_string_value(json_object_get(json_object_get(data, "error"), "code"));
}

static const char *err_message(const json_t *data)
{
    return json_string_value(json_object_get(json_object_get(data, "error"), "message"));
}

static void test_tool_list(void **state)
{
    (void)state;
    char err[300];
    json_t *data = NULL;
    assert_int_equal(handle(s_shipped, "tool.list", NULL, &data, err, sizeof(err)), 0);
    const json_t *tools = json_object_get(data, "tools");
    /* Only the entries served here: claim.register (memory) and state.update (router) are
     * declared in the same tools.json but skipped. */
    static const char *const WANT[] = {"policy.lookup", "fee.calc", "medical.lookup",
                                       "training.scenario"};
    const size_t n_want = sizeof(WANT) / sizeof(WANT[0]);
    assert_int_equal(json_array_size(tools), n_want);
    for (size_t i = 0; i < n_want; i++) {
        const json_t *t = json_array_get(tools, i);
        assert_string_equal(json_string_value(json_object_get(t, "name")), WANT[i]);
        assert_true(json_is_string(json_object_get(t, "description")));
        assert_true(json_is_string(json_object_get(t, "description_zh")));
        const json_t *p = json_object_get(t, "parameters");
        assert_string_equal(json_string_value(json_object_get(p, "type")), "object");
        assert_true(json_is_false(json_object_get(p, "additionalProperties")));
        assert_true(json_is_true(json_object_get(t, "idempotent")));
    }
    json_decref(data);
}

/* Tools declared for another service are not callable here (the router sends them elsewhere). */
static void test_other_service_tools_skipped(void **state)
{
    (void)state;
    json_t *d = NULL;
    json_t *args = json_pack("{s:s, s:s, s:{}, s:s}", "policy_no", "P10023", "kind", "health",
                             "facts", "summary", "x");
    assert_int_equal(tools_registry_call(s_shipped, "claim.register", args, &d), 0);
    assert_true(json_is_false(json_object_get(d, "ok")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "error"), "code")),
                        "unknown_tool");
    json_decref(d);
    json_decref(args);
    assert_int_equal(tools_registry_call(s_shipped, "state.update", NULL, &d), 0);
    assert_true(json_is_false(json_object_get(d, "ok")));
    json_decref(d);
}

static void test_unknown_tool(void **state)
{
    (void)state;
    json_t *d = call(s_shipped, "{\"name\": \"claim.delete\", \"arguments\": {}}");
    assert_string_equal(err_code(d), "unknown_tool");
    assert_string_equal(err_message(d), "unknown tool 'claim.delete'");
    json_decref(d);
    /* control bytes in a name are escaped in the message */
    d = call(s_shipped, "{\"name\": \"x\\n\\u001b[2J\"}");
    assert_string_equal(err_code(d), "unknown_tool");
    assert_null(strchr(err_message(d), '\n'));
    assert_null(strchr(err_message(d), 0x1b));
    json_decref(d);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    json_t *d = call(s_shipped, "{\"name\": \"policy.lookup\", \"arguments\": "
                                "{\"policy_no\": \"10023\"}}");
    assert_string_equal(err_code(d), "invalid_tool_arguments");
    assert_string_equal(err_message(d), "$.policy_no: must match the pattern ^P[0-9]{5}$");
    json_decref(d);

    d = call(s_shipped, "{\"name\": \"policy.lookup\"}"); /* arguments absent = {} */
    assert_string_equal(err_code(d), "invalid_tool_arguments");
    assert_string_equal(err_message(d), "$.policy_no: is required");
    json_decref(d);

    d = call(s_shipped, "{\"name\": \"policy.lookup\", \"arguments\": "
                        "{\"policy_no\": \"P10023\", \"sql\": \"1=1\"}}");
    assert_string_equal(err_code(d), "invalid_tool_arguments");
    assert_string_equal(err_message(d),
                        "$.sql: is not an allowed property (additionalProperties is false)");
    json_decref(d);

    d = call(s_shipped, "{\"name\": \"policy.lookup\", \"arguments\": {\"policy_no\": 10023}}");
    assert_string_equal(err_message(d), "$.policy_no: must be of type string (got integer)");
    json_decref(d);
}

static void test_malformed_requests(void **state)
{
    (void)state;
    static const struct {
        const char *args;
        const char *msg;
    } CASES[] = {
        {NULL, "args: must be a map"},
        {"[1]", "args: must be a map"},
        {"{}", "args.name: required string"},
        {"{\"name\": 5}", "args.name: required string"},
        {"{\"name\": \"\"}", "args.name: must be 1..64 bytes"},
        {"{\"name\": \"policy.lookup\", \"arguments\": [\"P10023\"]}",
         "args.arguments: must be a map"},
        {"{\"name\": \"policy.lookup\", \"arguments\": \"P10023\"}",
         "args.arguments: must be a map"},
        {"{\"name\": \"policy.lookup\", \"arguments\": {}, \"call_id\": 7}", "args.call_id"},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        char err[300] = "";
        json_t *data = (json_t *)1;
        assert_int_equal(handle(s_shipped, "tool.call", CASES[i].args, &data, err, sizeof(err)),
                         MESH_EPROTO);
        assert_null(data);
        if (strstr(err, CASES[i].msg) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err, CASES[i].msg);
    }
    /* a 65-byte name is malformed, a 64-byte one is just unknown */
    char args[200], name[66];
    memset(name, 'a', 65);
    name[65] = '\0';
    snprintf(args, sizeof(args), "{\"name\": \"%s\"}", name);
    char err[300];
    json_t *data = NULL;
    assert_int_equal(handle(s_shipped, "tool.call", args, &data, err, sizeof(err)), MESH_EPROTO);
    name[64] = '\0';
    snprintf(args, sizeof(args), "{\"name\": \"%s\"}", name);
    data = call(s_shipped, args);
    assert_string_equal(err_code(data), "unknown_tool");
    json_decref(data);
}

static void test_unknown_op(void **state)
{
    (void)state;
    char err[300];
    json_t *data = NULL;
    assert_int_equal(handle(s_shipped, "tool.delete", "{}", &data, err, sizeof(err)),
                     MESH_EUNKNOWNOP);
    assert_null(data);
    assert_non_null(strstr(err, "tool.delete"));

    /* nothing loaded yet: unavailable, not a crash */
    tools_registry_t *empty = tools_registry_new();
    assert_false(tools_registry_ready(empty));
    assert_int_equal(handle(empty, "tool.list", NULL, &data, err, sizeof(err)), MESH_EUNAVAIL);
    assert_int_equal(tools_registry_call(empty, "policy.lookup", NULL, &data), MESH_EUNAVAIL);
    tools_registry_destroy(&empty);
    assert_null(empty);
}

/* Every key of the result shape in docs/protocol/services.md. */
static void assert_lookup_shape(const json_t *r)
{
    static const char *const KEYS[] = {
        "policy_no",
        "status",
        "holder",
        "product",
        "start_date",
        "end_date",
        "social_insurance",
        "deductible",
        "deductible_used",
        "ratio_with_social",
        "ratio_without_social",
        "waiting_period_days",
        "limit",
        "limit_used",
        "coverages",
        "exclusions",
        "clauses",
    };
    for (size_t i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
        if (json_object_get(r, KEYS[i]) == NULL)
            fail_msg("policy.lookup result lacks %s", KEYS[i]);
    }
    const json_t *p = json_object_get(r, "product");
    assert_true(json_is_string(json_object_get(p, "id")));
    assert_true(json_is_string(json_object_get(json_object_get(p, "name"), "zh")));
    assert_true(json_is_string(json_object_get(json_object_get(p, "name"), "en")));
    assert_true(json_is_string(json_object_get(p, "type")));
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(r, "coverages"), i, c)
    {
        assert_true(json_is_string(json_object_get(c, "id")));
        assert_true(json_is_string(json_object_get(json_object_get(c, "name"), "zh")));
        assert_true(json_is_number(json_object_get(c, "limit")));
        const char *clause = json_string_value(json_object_get(c, "clause"));
        assert_non_null(json_object_get(json_object_get(r, "clauses"), clause));
    }
    json_array_foreach(json_object_get(r, "exclusions"), i, c)
    {
        assert_true(json_is_string(json_object_get(json_object_get(c, "text"), "en")));
        const char *clause = json_string_value(json_object_get(c, "clause"));
        assert_non_null(json_object_get(json_object_get(r, "clauses"), clause));
    }
}

static void test_lookup_p10023(void **state)
{
    (void)state;
    json_t *d = call(s_shipped, "{\"name\": \"policy.lookup\", \"arguments\": "
                                "{\"policy_no\": \"P10023\"}, \"call_id\": \"call_1\"}");
    assert_true(json_is_true(json_object_get(d, "ok")));
    const json_t *r = json_object_get(d, "result");
    assert_lookup_shape(r);
    assert_string_equal(json_string_value(json_object_get(r, "policy_no")), "P10023");
    assert_string_equal(json_string_value(json_object_get(r, "status")), "active");
    assert_string_equal(json_string_value(json_object_get(r, "holder")), "张*");
    const json_t *p = json_object_get(r, "product");
    assert_string_equal(json_string_value(json_object_get(p, "id")), "med-million-2024");
    assert_string_equal(json_string_value(json_object_get(p, "type")), "medical");
    assert_true(json_is_true(json_object_get(r, "social_insurance")));
    assert_int_equal(json_number_value(json_object_get(r, "deductible")), 10000);
    assert_int_equal(json_number_value(json_object_get(r, "deductible_used")), 0);
    assert_true(json_number_value(json_object_get(r, "ratio_with_social")) == 1.0);
    assert_true(json_number_value(json_object_get(r, "ratio_without_social")) == 0.6);
    assert_int_equal(json_number_value(json_object_get(r, "waiting_period_days")), 30);
    assert_int_equal(json_number_value(json_object_get(r, "limit")), 3000000);
    assert_int_equal(json_number_value(json_object_get(r, "limit_used")), 0);
    const json_t *c0 = json_array_get(json_object_get(r, "coverages"), 0);
    const json_t *c1 = json_array_get(json_object_get(r, "coverages"), 1);
    assert_string_equal(json_string_value(json_object_get(c0, "clause")), "2.1");
    assert_int_equal(json_number_value(json_object_get(c0, "limit")), 3000000);
    assert_int_equal(json_number_value(json_object_get(c1, "limit")), 6000000);
    /* the exclusion the health-review seed case needs, with its clause text */
    bool trace = false;
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(r, "exclusions"), i, e)
    {
        const char *zh = json_string_value(json_object_get(json_object_get(e, "text"), "zh"));
        if (strstr(zh, "微量元素测定") != NULL) {
            trace = true;
            assert_string_equal(json_string_value(json_object_get(e, "clause")), "3.2");
        }
    }
    assert_true(trace);
    const json_t *cl = json_object_get(json_object_get(r, "clauses"), "3.2");
    assert_non_null(strstr(json_string_value(json_object_get(cl, "zh")), "微量元素测定"));
    assert_non_null(json_object_get(r, "hospital_rule"));
    json_decref(d);
}

static void test_lookup_missing(void **state)
{
    (void)state;
    json_t *d = call(s_shipped, "{\"name\": \"policy.lookup\", \"arguments\": "
                                "{\"policy_no\": \"P99999\"}}");
    assert_string_equal(err_code(d), "not_found");
    assert_string_equal(err_message(d), "policy P99999 not found");
    assert_null(json_object_get(d, "result"));
    json_decref(d);
}

static void test_lookup_motor_and_ci(void **state)
{
    (void)state;
    json_t *d = call(s_fixture, "{\"name\": \"policy.lookup\", \"arguments\": "
                                "{\"policy_no\": \"P20005\"}}");
    const json_t *r = json_object_get(d, "result");
    assert_lookup_shape(r);
    assert_true(json_is_null(json_object_get(r, "deductible")));
    assert_true(json_is_null(json_object_get(r, "ratio_with_social")));
    assert_true(json_is_null(json_object_get(r, "limit")));
    assert_string_equal(json_string_value(json_object_get(r, "plate")), "沪A·1****");
    const json_t *tp = json_array_get(json_object_get(r, "coverages"), 2);
    assert_string_equal(json_string_value(json_object_get(tp, "id")), "third_party");
    assert_int_equal(json_number_value(json_object_get(tp, "limit")), 2000000); /* per policy */
    const json_t *cl = json_object_get(r, "compulsory_limits");
    assert_int_equal(json_number_value(json_object_get(json_object_get(cl, "with_liability"),
                                                       "death_disability")),
                     180000);
    assert_int_equal(
        json_number_value(json_object_get(json_object_get(cl, "without_liability"), "property")),
        100);
    json_decref(d);

    d = call(s_fixture,
             "{\"name\": \"policy.lookup\", \"arguments\": {\"policy_no\": \"P20006\"}}");
    r = json_object_get(d, "result");
    assert_lookup_shape(r);
    assert_int_equal(json_number_value(json_object_get(r, "limit")), 500000);
    assert_int_equal(json_number_value(json_object_get(r, "waiting_period_days")), 90);
    const json_t *mild = json_array_get(json_object_get(r, "coverages"), 1);
    assert_int_equal(json_number_value(json_object_get(mild, "limit")), 150000);
    json_decref(d);
}

/* Calls with the same input give the same output (the tools are idempotent). */
static void test_idempotent(void **state)
{
    (void)state;
    const char *args = "{\"name\": \"fee.calc\", \"arguments\": {\"policy_no\": \"P10023\","
                       " \"lines\": [{\"item\": \"x\", \"amount\": 12345.67}]}}";
    json_t *a = call(s_shipped, args);
    json_t *b = call(s_shipped, args);
    assert_true(json_is_true(json_object_get(a, "ok")));
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
}

/* The scenario policies pinned in data/README.md ("Scenario policies"). */
static void test_scenario_policies(void **state)
{
    (void)state;
    const tools_data_t *d = tools_registry_data(s_shipped);
    const json_t *p = tools_data_policy(d, "P10023");
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "product_id")), "med-million-2024");
    assert_string_equal(json_string_value(json_object_get(p, "status")), "active");
    assert_string_equal(json_string_value(json_object_get(p, "start_date")), "2026-03-01");
    assert_true(json_is_true(json_object_get(p, "social_insurance")));
    assert_int_equal(json_number_value(json_object_get(p, "deductible_used")), 0);

    p = tools_data_policy(d, "P10003");
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "product_id")), "motor-2024");
    assert_string_equal(json_string_value(json_object_get(p, "status")), "active");
    assert_string_equal(json_string_value(json_object_get(p, "plate")), "川Z·S****");
    const json_t *cl = json_object_get(p, "cover_limits");
    assert_int_equal(json_number_value(json_object_get(cl, "vehicle_damage")), 450000);
    assert_int_equal(json_number_value(json_object_get(cl, "third_party")), 1000000);

    p = tools_data_policy(d, "P10001");
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "product_id")), "ci-guard-2024");
    assert_string_equal(json_string_value(json_object_get(p, "status")), "active");
}

/* training.scenario is wired: the trainer's data is loaded with the rest and the tool answers. */
static void test_training_wired(void **state)
{
    (void)state;
    json_t *a = json_pack("{s:s, s:s}", "product_id", "ci-guard-2024", "seed", "wiring-1");
    json_t *d1 = NULL, *d2 = NULL;
    assert_non_null(tools_data_training(tools_registry_data(s_shipped)));
    assert_int_equal(tools_registry_call(s_shipped, "training.scenario", a, &d1), 0);
    if (!json_is_true(json_object_get(d1, "ok"))) {
        char *text = json_dumps(d1, 0);
        fail_msg("training.scenario failed: %s", text);
    }
    assert_true(json_is_object(json_object_get(json_object_get(d1, "result"), "persona")));
    assert_int_equal(tools_registry_call(s_shipped, "training.scenario", a, &d2), 0);
    assert_true(json_equal(d1, d2)); /* deterministic in seed */
    json_decref(d1);
    json_decref(d2);
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tool_list),
        cmocka_unit_test(test_unknown_tool),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_unknown_op),
        cmocka_unit_test(test_lookup_p10023),
        cmocka_unit_test(test_lookup_missing),
        cmocka_unit_test(test_lookup_motor_and_ci),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_other_service_tools_skipped),
        cmocka_unit_test(test_scenario_policies),
        cmocka_unit_test(test_training_wired),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
