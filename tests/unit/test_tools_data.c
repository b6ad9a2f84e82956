/*
 * test_tools_data.c - loading and validating the tools worker's data: every
 * error names the file and the field; a reload with bad data keeps the old.
 * Each test writes a broken copy of the shipped data into a temp directory.
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

/* One valid medical policy (tests replace single fields of it). */
#define MED_POLICY                                                                                 \
    "{\"policy_no\": \"P30001\", \"product_id\": \"med-million-2024\", \"status\": \"active\","    \
    " \"holder\": \"李*\", \"start_date\": \"2026-01-01\", \"end_date\": \"2026-12-31\","         \
    " \"social_insurance\": true, \"deductible_used\": 0, \"limit_used\": 0}"

#define POLICIES(list) "{\"policies\": [" list "]}"

/* Load dir into a fresh data set; return the code, copy the message into err. */
static int load(const char *dir, char *err, size_t err_size)
{
    tools_data_t *d = NULL;
    int rc = tools_data_load(dir, &d, err, err_size);
    if (rc == 0)
        assert_non_null(d);
    else
        assert_null(d);
    tools_data_destroy(&d);
    return rc;
}

/* A temp dir with policies.json = policies; expect code and "<dir>/<msg>" in the error. */
static void expect_policies_error(const char *policies, int code, const char *msg)
{
    char dir[FIXTURE_PATH_MAX], err[TOOLS_ERR_MAX], want[FIXTURE_PATH_MAX * 2];
    assert_int_equal(fixture_make(dir, policies), 0);
    int rc = load(dir, err, sizeof(err));
    snprintf(want, sizeof(want), "%s/%s", dir, msg);
    fixture_remove(dir);
    if (rc != code)
        fail_msg("expected %d, got %d (%s)", code, rc, err);
    if (strcmp(err, want) != 0)
        fail_msg("message mismatch:\n  got:  %s\n  want: %s", err, want);
}

/* One valid medical policy with key set to value (JSON text), as a policies.json text. */
static void expect_med_field_error(const char *key, const char *value, const char *msg)
{
    json_error_t e;
    json_t *pol = json_loads(MED_POLICY, 0, &e);
    assert_non_null(pol);
    json_object_set_new(pol, key, json_loads(value, JSON_DECODE_ANY, &e));
    json_t *root = json_pack("{s:[o]}", "policies", pol);
    char *text = json_dumps(root, 0);
    expect_policies_error(text, MESH_ECONFIG, msg);
    free(text);
    json_decref(root);
}

/* Replace key in the shipped file rel (a JSON object) by value (JSON text; NULL deletes it),
 * at the object found by following path (array indexes as numbers, e.g. "coverages/0"). */
static void mutate(const char *dir, const char *rel, const char *path, const char *key,
                   const char *value)
{
    char file[FIXTURE_PATH_MAX * 2];
    snprintf(file, sizeof(file), "%s/%s", dir, rel);
    json_error_t e;
    json_t *root = json_load_file(file, 0, &e);
    assert_non_null(root);
    json_t *at = root;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path ? path : "");
    for (char *tok = strtok(buf, "/"); tok != NULL; tok = strtok(NULL, "/")) {
        if (json_is_array(at))
            at = json_array_get(at, (size_t)strtoul(tok, NULL, 10));
        else
            at = json_object_get(at, tok);
        assert_non_null(at);
    }
    if (value == NULL) {
        json_object_del(at, key);
    } else {
        json_t *v = json_loads(value, JSON_DECODE_ANY, &e);
        assert_non_null(v);
        json_object_set_new(at, key, v);
    }
    assert_int_equal(json_dump_file(root, file, JSON_INDENT(1)), 0);
    json_decref(root);
}

static void test_shipped_data_loads(void **state)
{
    (void)state;
    char dir[FIXTURE_PATH_MAX], err[TOOLS_ERR_MAX];
    tools_data_t *d = NULL;
    fixture_data_dir(dir);
    assert_int_equal(tools_data_load(dir, &d, err, sizeof(err)), 0);
    assert_int_equal(tools_data_policy_count(d), 400);
    assert_int_equal(tools_data_product_count(d), 3);
    assert_non_null(tools_data_policy(d, "P10000"));
    assert_non_null(tools_data_policy(d, "P10399"));
    assert_null(tools_data_policy(d, "P10400"));
    assert_non_null(tools_data_tool(d, "fee.calc"));
    assert_string_equal(tools_data_as_of(d), "2026-11-01");
    const json_t *p = tools_data_policy(d, "P10023");
    assert_string_equal(json_string_value(json_object_get(p, "product_id")), "med-million-2024");
    assert_string_equal(json_string_value(json_object_get(p, "status")), "active");
    assert_true(json_is_true(json_object_get(p, "social_insurance")));
    assert_int_equal(json_number_value(json_object_get(p, "deductible_used")), 0);
    tools_data_destroy(&d);
    assert_null(d);
}

static void test_policy_field_errors(void **state)
{
    (void)state;
    expect_policies_error(
        POLICIES(MED_POLICY ",{\"policy_no\": \"P30002\", \"product_id\": \"X\"}"), MESH_ECONFIG,
        "policies.json: policies[1].product_id: unknown product 'X'");
    expect_policies_error(POLICIES(MED_POLICY "," MED_POLICY), MESH_ECONFIG,
                          "policies.json: policies[1].policy_no: duplicate policy number 'P30001'");
    expect_policies_error(POLICIES("{\"policy_no\": \"X1\"}"), MESH_ECONFIG,
                          "policies.json: policies[0].policy_no: 'X1' must be P followed by five "
                          "digits");
    expect_med_field_error("status", "\"sleeping\"",
                           "policies.json: policies[0].status: 'sleeping' is not one of active, "
                           "lapsed, expired");
    expect_med_field_error("end_date", "\"2026-02-30\"",
                           "policies.json: policies[0].end_date: must be a date YYYY-MM-DD");
    expect_med_field_error("end_date", "\"2025-12-31\"",
                           "policies.json: policies[0].end_date: 2025-12-31 is before start_date "
                           "2026-01-01");
    expect_med_field_error("deductible_used", "10000.01",
                           "policies.json: policies[0].deductible_used: must be between 0 and "
                           "10000");
    expect_med_field_error("social_insurance", "\"yes\"",
                           "policies.json: policies[0].social_insurance: must be true or false");
    expect_med_field_error("holder", "\"\"",
                           "policies.json: policies[0].holder: must not be empty");
    expect_policies_error(
        POLICIES("{\"policy_no\": \"P30003\", \"product_id\": \"motor-2024\", \"status\": "
                 "\"active\", \"holder\": \"周*\", \"start_date\": \"2026-01-01\", \"end_date\": "
                 "\"2026-12-31\", \"social_insurance\": true, \"plate\": \"沪A·1****\","
                 " \"cover_limits\": {\"vehicle_damage\": 150000}}"),
        MESH_ECONFIG,
        "policies.json: policies[0].cover_limits.third_party: required by product motor-2024 "
        "(limit set per policy)");
    expect_policies_error(
        POLICIES("{\"policy_no\": \"P30003\", \"product_id\": \"motor-2024\", \"status\": "
                 "\"active\", \"holder\": \"周*\", \"start_date\": \"2026-01-01\", \"end_date\": "
                 "\"2026-12-31\", \"social_insurance\": true,"
                 " \"cover_limits\": {\"vehicle_damage\": 1, \"third_party\": 2}}"),
        MESH_ECONFIG, "policies.json: policies[0].plate: is required");
    expect_med_field_error("cover_limits", "{\"general_medical\": 1}",
                           "policies.json: policies[0].cover_limits.general_medical: not a "
                           "per-policy coverage of product med-million-2024");
    expect_policies_error("{\"policies\": {}}", MESH_ECONFIG,
                          "policies.json: policies: must be an array of at most 1000000 policies");
    expect_policies_error("{}", MESH_ECONFIG, "policies.json: policies: is required");
    expect_policies_error("[]", MESH_ECONFIG, "policies.json: (top level): must be an object");
    expect_policies_error("{\"as_of\": \"soon\", \"policies\": []}", MESH_ECONFIG,
                          "policies.json: as_of: must be a date YYYY-MM-DD");
}

static void test_file_level_errors(void **state)
{
    (void)state;
    char dir[FIXTURE_PATH_MAX], err[TOOLS_ERR_MAX], path[FIXTURE_PATH_MAX * 2];

    /* invalid JSON: file, line and column */
    assert_int_equal(fixture_make(dir, "{\"policies\": [\n  {\"policy_no\": }\n]}"), 0);
    assert_int_equal(load(dir, err, sizeof(err)), MESH_ECONFIG);
    snprintf(path, sizeof(path), "%s/policies.json:2:", dir);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_non_null(strstr(err, "invalid JSON"));
    fixture_remove(dir);

    /* duplicate keys are refused, not silently merged */
    assert_int_equal(fixture_make(dir, "{\"policies\": [], \"policies\": []}"), 0);
    assert_int_equal(load(dir, err, sizeof(err)), MESH_ECONFIG);
    assert_non_null(strstr(err, "duplicate"));
    fixture_remove(dir);

    /* a missing file */
    assert_int_equal(fixture_make(dir, NULL), 0);
    snprintf(path, sizeof(path), "%s/policies.json", dir);
    unlink(path);
    assert_int_equal(load(dir, err, sizeof(err)), MESH_EIO);
    snprintf(path, sizeof(path), "%s/policies.json: cannot read: No such file or directory", dir);
    assert_string_equal(err, path);
    fixture_remove(dir);

    /* no such directory */
    assert_int_equal(load("/nonexistent/mesh-data", err, sizeof(err)), MESH_EIO);
    assert_non_null(strstr(err, "/nonexistent/mesh-data/products"));
    assert_int_equal(load("", err, sizeof(err)), MESH_ECONFIG);
}

static void expect_product_error(const char *path, const char *key, const char *value,
                                 const char *msg)
{
    char dir[FIXTURE_PATH_MAX], err[TOOLS_ERR_MAX], want[FIXTURE_PATH_MAX * 2];
    assert_int_equal(fixture_make(dir, FIXTURE_POLICIES), 0);
    mutate(dir, "products/med-million-2024.json", path, key, value);
    int rc = load(dir, err, sizeof(err));
    snprintf(want, sizeof(want), "%s/products/med-million-2024.json: %s", dir, msg);
    fixture_remove(dir);
    if (rc != MESH_ECONFIG)
        fail_msg("expected ECONFIG, got %d (%s)", rc, err);
    if (strcmp(err, want) != 0)
        fail_msg("message mismatch:\n  got:  %s\n  want: %s", err, want);
}

static void test_product_errors(void **state)
{
    (void)state;
    expect_product_error(NULL, "id", "\"med-2\"",
                         "id: 'med-2' does not match the file name 'med-million-2024.json'");
    expect_product_error(NULL, "type", "\"pet\"",
                         "type: 'pet' is not one of medical, critical_illness, motor");
    expect_product_error(NULL, "deductible", "null",
                         "deductible: a medical product needs a number");
    expect_product_error(NULL, "ratio_without_social", "1.5",
                         "ratio_without_social: must be between 0 and 1");
    expect_product_error(NULL, "waiting_period_days", "30.5",
                         "waiting_period_days: must be an integer");
    expect_product_error("coverages/0", "clause", "\"9.9\"",
                         "coverages[0].clause: unknown clause '9.9'");
    expect_product_error("exclusions/3", "text", "{\"zh\": \"美容\"}",
                         "exclusions[3].text.en: is required");
    expect_product_error("exclusions/1", "id", "\"pre_existing\"",
                         "exclusions[1].id: duplicate id 'pre_existing'");
    expect_product_error("clauses", "2.1", "{\"zh\": \"\", \"en\": \"x\"}",
                         "clauses.2.1.zh: must not be empty");
    expect_product_error(NULL, "coverages", "[]", "coverages: must be an array of 1..64 items");
    expect_product_error(NULL, "name", NULL, "name: is required");
}

/* The motor terms fee.calc's motor mode reads are checked at load. */
static void expect_motor_product_error(const char *path, const char *key, const char *value,
                                       const char *msg)
{
    char dir[FIXTURE_PATH_MAX], err[TOOLS_ERR_MAX], want[FIXTURE_PATH_MAX * 2];
    assert_int_equal(fixture_make(dir, FIXTURE_POLICIES), 0);
    mutate(dir, "products/motor-2024.json", path, key, value);
    int rc = load(dir, err, sizeof(err));
    snprintf(want, sizeof(want), "%s/products/motor-2024.json: %s", dir, msg);
    fixture_remove(dir);
    if (rc != MESH_ECONFIG || strcmp(err, want) != 0)
        fail_msg("rc %d\n  got:  %s\n  want: %s", rc, err, want);
}

static void test_motor_product_errors(void **state)
{
    (void)state;
    expect_motor_product_error(NULL, "compulsory_limits", NULL,
                               "compulsory_limits: a motor product needs an object");
    expect_motor_product_error("compulsory_limits/with_liability", "property", "-1",
                               "compulsory_limits.with_liability.property: must be between 0 and "
                               "10000000000");
    expect_motor_product_error("compulsory_limits", "without_liability", "[]",
                               "compulsory_limits.without_liability: must be an object "
                               "{death_disability, medical, property}");
    expect_motor_product_error("compulsory_limits", "clause", "\"9.9\"",
                               "compulsory_limits.clause: unknown clause '9.9'");
    expect_motor_product_error("liability_shares", "major", NULL,
                               "liability_shares.major: is required");
    expect_motor_product_error("liability_shares", "equal", "2",
                               "liability_shares.equal: must be between 0 and 1");
    expect_motor_product_error(NULL, "liability_deductible_rates", "{\"full\": 0.2}",
                               "liability_deductible_rates.major: is required");
}

static void test_tools_json_errors(void **state)
{
    (void)state;
    static const struct {
        const char *path, *key, *value, *msg;
    } CASES[] = {
        {"0/parameters/properties/policy_no", "type", "\"str\"",
         "tools.json: [0].parameters: schema #/properties/policy_no/type: unknown type name"},
        {"1", "name", "\"policy.lookup\"", "tools.json: [1].name: duplicate tool 'policy.lookup'"},
        {"1", "name", "\"Fee Calc\"",
         "tools.json: [1].name: 'Fee Calc' is not a valid tool name ([a-z][a-z0-9._-]*)"},
        {"0", "description_zh", NULL, "tools.json: [0].description_zh: is required"},
        {"0", "idempotent", "\"yes\"", "tools.json: [0].idempotent: must be true or false"},
        {"0/parameters", "type", "\"array\"",
         "tools.json: [0].parameters: type must be \"object\" (OpenAI function shape)"},
        {"0", "service", "\"billing\"",
         "tools.json: [0].service: 'billing' is not one of tools, memory, router"},
        {"0", "service", "7", "tools.json: [0].service: must be a string"},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        char dir[FIXTURE_PATH_MAX], err[TOOLS_ERR_MAX], want[FIXTURE_PATH_MAX * 2];
        assert_int_equal(fixture_make(dir, FIXTURE_POLICIES), 0);
        mutate(dir, "tools.json", CASES[i].path, CASES[i].key, CASES[i].value);
        int rc = load(dir, err, sizeof(err));
        snprintf(want, sizeof(want), "%s/%s", dir, CASES[i].msg);
        fixture_remove(dir);
        if (rc != MESH_ECONFIG || strcmp(err, want) != 0)
            fail_msg("case %zu: rc %d\n  got:  %s\n  want: %s", i, rc, err, want);
    }
}

/* A declared tool without an implementation is refused by the registry. */
static void test_unimplemented_tool(void **state)
{
    (void)state;
    char dir[FIXTURE_PATH_MAX], err[TOOLS_ERR_MAX], want[FIXTURE_PATH_MAX * 2];
    assert_int_equal(fixture_make(dir, FIXTURE_POLICIES), 0);
    mutate(dir, "tools.json", "1", "name", "\"claim.status\"");
    tools_registry_t *r = tools_registry_new();
    assert_int_equal(tools_registry_load(r, dir, err, sizeof(err)), MESH_ECONFIG);
    snprintf(want, sizeof(want),
             "%s/tools.json: [1].name: no implementation for tool "
             "'claim.status'",
             dir);
    assert_string_equal(err, want);
    assert_false(tools_registry_ready(r));
    tools_registry_destroy(&r);
    fixture_remove(dir);
}

/* Reload: bad data keeps the old set; good data replaces it. */
static void test_reload_keeps_old_on_error(void **state)
{
    (void)state;
    char dir[FIXTURE_PATH_MAX], err[TOOLS_ERR_MAX];
    json_t *d = NULL;
    json_t *args = json_pack("{s:s}", "policy_no", "P20001");
    json_t *args2 = json_pack("{s:s}", "policy_no", "P30001");

    assert_int_equal(fixture_make(dir, FIXTURE_POLICIES), 0);
    tools_registry_t *r = tools_registry_new();
    assert_int_equal(tools_registry_load(r, dir, err, sizeof(err)), 0);

    assert_int_equal(fixture_write(dir, "policies.json", "{\"policies\": [oops"), 0);
    assert_int_equal(tools_registry_load(r, dir, err, sizeof(err)), MESH_ECONFIG);
    assert_non_null(strstr(err, "policies.json:1:"));
    assert_true(tools_registry_ready(r));
    assert_int_equal(tools_registry_call(r, "policy.lookup", args, &d), 0);
    assert_true(json_is_true(json_object_get(d, "ok"))); /* old data still served */
    json_decref(d);

    assert_int_equal(fixture_write(dir, "policies.json", POLICIES(MED_POLICY)), 0);
    assert_int_equal(tools_registry_load(r, dir, err, sizeof(err)), 0);
    assert_int_equal(tools_registry_call(r, "policy.lookup", args, &d), 0);
    assert_true(json_is_false(json_object_get(d, "ok"))); /* P20001 is gone now */
    json_decref(d);
    assert_int_equal(tools_registry_call(r, "policy.lookup", args2, &d), 0);
    assert_true(json_is_true(json_object_get(d, "ok")));
    json_decref(d);

    tools_registry_destroy(&r);
    json_decref(args);
    json_decref(args2);
    fixture_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_data_loads),
        cmocka_unit_test(test_policy_field_errors),
        cmocka_unit_test(test_file_level_errors),
        cmocka_unit_test(test_product_errors),
        cmocka_unit_test(test_motor_product_errors),
        cmocka_unit_test(test_tools_json_errors),
        cmocka_unit_test(test_unimplemented_tool),
        cmocka_unit_test(test_reload_keeps_old_on_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
