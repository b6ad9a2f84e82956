/*
 * test_feecalc.c - fee.calc against the worked examples of the domain notes
 * (百万医疗 settlement), through the registry as the worker runs it, plus the
 * pure arithmetic (services/tools/tools_feecalc.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mesh/mesh_err.h"
#include "test_tools_fixture.h"
#include "tools_feecalc.h"
#include "tools_money.h"
#include "tools_registry.h"
#include "tools_tool.h"

typedef struct {
    char dir[FIXTURE_PATH_MAX];
    tools_registry_t *reg;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char err[512];
    if (fx == NULL || fixture_make(fx->dir, FIXTURE_POLICIES) != 0)
        return -1;
    fx->reg = tools_registry_new();
    if (fx->reg == NULL || tools_registry_load(fx->reg, fx->dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "load: %s\n", err);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    tools_registry_destroy(&fx->reg);
    fixture_remove(fx->dir);
    free(fx);
    return 0;
}

/* Call fee.calc with arguments (JSON text); return the reply data (caller decrefs). */
static json_t *calc(void **state, const char *arguments)
{
    fx_t *fx = *state;
    json_error_t e;
    json_t *a = json_loads(arguments, 0, &e);
    if (a == NULL)
        fail_msg("bad test JSON: %s", e.text);
    json_t *data = NULL;
    assert_int_equal(tools_registry_call(fx->reg, "fee.calc", a, &data), 0);
    json_decref(a);
    assert_non_null(data);
    return data;
}

/* The result of a successful call. */
static const json_t *ok_result(const json_t *data)
{
    if (!json_is_true(json_object_get(data, "ok"))) {
        char *s = json_dumps(data, 0);
        fail_msg("expected ok, got %s", s);
    }
    return json_object_get(data, "result");
}

static void expect_error(void **state, const char *arguments, const char *code, const char *msg)
{
    json_t *data = calc(state, arguments);
    const json_t *e = json_object_get(data, "error");
    assert_true(json_is_false(json_object_get(data, "ok")));
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    const char *m = json_string_value(json_object_get(e, "message"));
    if (msg != NULL && strstr(m, msg) == NULL)
        fail_msg("message '%s' lacks '%s'", m, msg);
    json_decref(data);
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("%s is not a number", key);
    return json_number_value(v);
}

#define assert_money(o, key, expected) assert_true(fabs(num((o), (key)) - (expected)) < 1e-9)

static const json_t *line(const json_t *result, size_t i)
{
    return json_array_get(json_object_get(result, "lines"), i);
}

/* [S56] 社保后剩 18,000, deductible 10,000 -> the insurer pays 8,000. */
static void test_example_after_social_18000(void **state)
{
    json_t *d = calc(state, "{\"ratio\": 1, \"deductible_remaining\": 10000,"
                            " \"lines\": [{\"item\": \"住院费用\", \"amount\": 18000}]}");
    const json_t *r = ok_result(d);
    assert_money(r, "total_payable", 8000);
    assert_money(r, "total_deductible_applied", 10000);
    assert_money(r, "deductible_remaining_before", 10000);
    assert_money(r, "deductible_remaining_after", 0);
    assert_money(line(r, 0), "base", 18000);
    assert_true(json_is_false(json_object_get(r, "capped")));
    assert_true(json_is_null(json_object_get(r, "limit_remaining_before")));
    json_decref(d);
}

/* [S57] 86,000 total, 社保 45,000 -> 41,000 - 10,000 = 31,000 x 70% = 21,700. */
static void test_example_86000_ratio_70(void **state)
{
    json_t *d = calc(state, "{\"ratio\": 0.7, \"deductible_remaining\": 10000,"
                            " \"lines\": [{\"item\": \"住院\", \"amount\": 86000,"
                            " \"social_paid\": 45000}]}");
    const json_t *r = ok_result(d);
    assert_money(r, "total_payable", 21700);
    assert_money(r, "total_claimed", 86000);
    assert_money(r, "total_social_paid", 45000);
    assert_money(line(r, 0), "base", 41000);
    assert_money(line(r, 0), "deductible_applied", 10000);
    assert_money(line(r, 0), "ratio", 0.7);
    const char *rule = json_string_value(json_object_get(line(r, 0), "rule"));
    assert_non_null(strstr(rule, "(reasonable 86000.00 − social 45000.00 − other 0.00 − "
                                 "deductible 10000.00) × ratio 70% = 21700.00"));
    const char *rule_zh = json_string_value(json_object_get(line(r, 0), "rule_zh"));
    assert_non_null(strstr(rule_zh, "社保 45000.00"));
    assert_non_null(strstr(rule_zh, "赔付比例 70%"));
    json_decref(d);
}

/* [S68] 100,000, deductible 10,000, ratio 90% -> 81,000. */
static void test_example_100000_ratio_90(void **state)
{
    json_t *d = calc(state, "{\"ratio\": 0.9, \"deductible_remaining\": 10000,"
                            " \"lines\": [{\"item\": \"手术\", \"amount\": 100000}]}");
    assert_money(ok_result(d), "total_payable", 81000);
    json_decref(d);
}

/* [S58] The annual deductible accumulates: visit 1 of 8,000 pays 0 (2,000 left),
 * visit 2 of 6,000 pays 4,000 - across two calls and as two lines of one call. */
static void test_deductible_across_visits(void **state)
{
    json_t *d1 = calc(state, "{\"ratio\": 1, \"deductible_remaining\": 10000,"
                             " \"lines\": [{\"item\": \"visit 1\", \"amount\": 8000}]}");
    const json_t *r1 = ok_result(d1);
    assert_money(r1, "total_payable", 0);
    assert_money(r1, "deductible_remaining_after", 2000);
    const char *rule = json_string_value(json_object_get(line(r1, 0), "rule"));
    assert_non_null(strstr(rule, "all taken by the deductible"));

    char args[256];
    snprintf(args, sizeof(args),
             "{\"ratio\": 1, \"deductible_remaining\": %g,"
             " \"lines\": [{\"item\": \"visit 2\", \"amount\": 6000}]}",
             num(r1, "deductible_remaining_after"));
    json_t *d2 = calc(state, args);
    assert_money(ok_result(d2), "total_payable", 4000);
    assert_money(ok_result(d2), "deductible_remaining_after", 0);

    json_t *d3 = calc(state, "{\"ratio\": 1, \"deductible_remaining\": 10000,"
                             " \"lines\": [{\"item\": \"visit 1\", \"amount\": 8000},"
                             " {\"item\": \"visit 2\", \"amount\": 6000}]}");
    const json_t *r3 = ok_result(d3);
    assert_money(line(r3, 0), "payable", 0);
    assert_money(line(r3, 0), "deductible_applied", 8000);
    assert_money(line(r3, 1), "deductible_applied", 2000);
    assert_money(line(r3, 1), "payable", 4000);
    assert_money(r3, "total_payable", 4000);
    json_decref(d1);
    json_decref(d2);
    json_decref(d3);
}

/* Several lines: reasonable below billed, social and other payments, order of deductible use. */
static void test_multi_line_itemisation(void **state)
{
    json_t *d =
        calc(state, "{\"ratio\": 1, \"deductible_remaining\": 10000, \"lines\": ["
                    " {\"item\": \"床位费\", \"category\": \"住院\", \"amount\": 3000,"
                    "  \"social_paid\": 1800},"
                    " {\"item\": \"CT\", \"category\": \"检查\", \"amount\": 12000,"
                    "  \"reasonable_amount\": 11000, \"social_paid\": 2000, \"other_paid\": 500},"
                    " {\"item\": \"药品\", \"amount\": 5000, \"social_paid\": 5000}]}");
    const json_t *r = ok_result(d);
    /* line 0: base 1200, all to the deductible (8800 left) */
    assert_money(line(r, 0), "base", 1200);
    assert_money(line(r, 0), "deductible_applied", 1200);
    assert_money(line(r, 0), "payable", 0);
    assert_string_equal(json_string_value(json_object_get(line(r, 0), "category")), "住院");
    /* line 1: reasonable 11000 - 2000 - 500 = 8500 base, 8500 to the deductible (300 left) */
    assert_money(line(r, 1), "reasonable", 11000);
    assert_money(line(r, 1), "base", 8500);
    assert_money(line(r, 1), "deductible_applied", 8500);
    assert_money(line(r, 1), "payable", 0);
    assert_non_null(strstr(json_string_value(json_object_get(line(r, 1), "rule")),
                           "billed 12000.00, of which reasonable 11000.00"));
    /* line 2: fully paid by social insurance */
    assert_money(line(r, 2), "base", 0);
    assert_money(line(r, 2), "payable", 0);
    assert_non_null(
        strstr(json_string_value(json_object_get(line(r, 2), "rule")), "nothing left to pay"));
    assert_money(r, "total_claimed", 20000);
    assert_money(r, "total_reasonable", 19000);
    assert_money(r, "total_social_paid", 8800);
    assert_money(r, "total_other_paid", 500);
    assert_money(r, "total_deductible_applied", 9700);
    assert_money(r, "deductible_remaining_after", 300);
    assert_int_equal(json_array_size(json_object_get(r, "lines")), 3);
    json_decref(d);
}

/* The remaining limit caps the total; the cut is recorded on the lines it touches. */
static void test_limit_cap(void **state)
{
    json_t *d = calc(state, "{\"ratio\": 1, \"limit_remaining\": 5000, \"lines\": ["
                            " {\"item\": \"a\", \"amount\": 3000},"
                            " {\"item\": \"b\", \"amount\": 4000},"
                            " {\"item\": \"c\", \"amount\": 1000}]}");
    const json_t *r = ok_result(d);
    assert_money(line(r, 0), "payable", 3000);
    assert_true(json_is_false(json_object_get(line(r, 0), "capped")));
    assert_money(line(r, 1), "payable", 2000);
    assert_true(json_is_true(json_object_get(line(r, 1), "capped")));
    assert_money(line(r, 1), "payable_before_cap", 4000);
    assert_non_null(strstr(json_string_value(json_object_get(line(r, 1), "rule")),
                           "capped to 2000.00 by the remaining limit"));
    assert_money(line(r, 2), "payable", 0);
    assert_true(json_is_true(json_object_get(line(r, 2), "capped")));
    assert_money(r, "total_payable", 5000);
    assert_money(r, "limit_remaining_before", 5000);
    assert_money(r, "limit_remaining_after", 0);
    assert_true(json_is_true(json_object_get(r, "capped")));
    json_decref(d);

    /* From the policy: P20003 has 3,000,000 - 2,990,000 = 10,000 left and 2,000 deductible. */
    d = calc(state, "{\"policy_no\": \"P20003\", \"lines\": [{\"item\": \"x\", \"amount\": "
                    "50000}]}");
    r = ok_result(d);
    assert_money(r, "deductible_remaining_before", 2000);
    assert_money(r, "limit_remaining_before", 10000);
    assert_money(r, "total_payable", 10000);
    assert_money(line(r, 0), "payable_before_cap", 48000);
    json_decref(d);
}

/* Terms from the policy: with social insurance used 100%, not used 60%, no social 60%. */
static void test_policy_terms_and_social(void **state)
{
    const char *lines = "\"lines\": [{\"item\": \"住院\", \"amount\": 30000}]";
    char args[256];

    /* P10023-like P20001: has social insurance, default social_insurance_used = true */
    snprintf(args, sizeof(args), "{\"policy_no\": \"P20001\", %s}", lines);
    json_t *d = calc(state, args);
    const json_t *r = ok_result(d);
    assert_money(r, "ratio", 1.0);
    assert_money(r, "deductible_remaining_before", 10000);
    assert_money(r, "limit_remaining_before", 3000000);
    assert_money(r, "total_payable", 20000);
    assert_string_equal(json_string_value(json_object_get(r, "policy_no")), "P20001");
    json_decref(d);

    /* has social insurance but did not use it: 60% */
    snprintf(args, sizeof(args),
             "{\"policy_no\": \"P20001\", \"social_insurance_used\": false, %s}", lines);
    d = calc(state, args);
    r = ok_result(d);
    assert_money(r, "ratio", 0.6);
    assert_money(r, "total_payable", 12000);
    assert_true(json_is_false(json_object_get(r, "social_insurance_used")));
    json_decref(d);

    /* holder without social insurance: the no-social ratio even if "used" is claimed */
    snprintf(args, sizeof(args), "{\"policy_no\": \"P20002\", \"social_insurance_used\": true, %s}",
             lines);
    d = calc(state, args);
    assert_money(ok_result(d), "ratio", 0.6);
    assert_money(ok_result(d), "total_payable", 12000);
    json_decref(d);

    /* explicit arguments override the policy */
    snprintf(args, sizeof(args),
             "{\"policy_no\": \"P20001\", \"ratio\": 0.5, \"deductible_remaining\": 0,"
             " \"limit_remaining\": 1000, %s}",
             lines);
    d = calc(state, args);
    r = ok_result(d);
    assert_money(r, "ratio", 0.5);
    assert_money(r, "deductible_remaining_before", 0);
    assert_money(r, "total_payable", 1000);
    assert_true(json_is_true(json_object_get(r, "capped")));
    json_decref(d);

    /* the shipped P10023 through the shipped data: 30,000 -> 20,000 */
    tools_registry_t *reg = tools_registry_new();
    char dir[FIXTURE_PATH_MAX], err[512];
    fixture_data_dir(dir);
    assert_int_equal(tools_registry_load(reg, dir, err, sizeof(err)), 0);
    json_t *a = json_pack("{s:s, s:[{s:s, s:i}]}", "policy_no", "P10023", "lines", "item", "x",
                          "amount", 30000);
    assert_int_equal(tools_registry_call(reg, "fee.calc", a, &d), 0);
    assert_money(ok_result(d), "total_payable", 20000);
    json_decref(d);
    json_decref(a);
    tools_registry_destroy(&reg);
}

/* Half-up to the fen at each line, and inputs rounded to the fen as written. */
static void test_rounding_to_fen(void **state)
{
    json_t *d = calc(state, "{\"ratio\": 0.6, \"lines\": ["
                            " {\"item\": \"a\", \"amount\": 100.01},"
                            " {\"item\": \"b\", \"amount\": 0.05},"
                            " {\"item\": \"c\", \"amount\": 0.01},"
                            " {\"item\": \"d\", \"amount\": 0.285}]}");
    const json_t *r = ok_result(d);
    assert_money(line(r, 0), "payable", 60.01); /* 60.006 */
    assert_money(line(r, 1), "payable", 0.03);  /* 0.030 */
    assert_money(line(r, 2), "payable", 0.01);  /* 0.006 */
    assert_money(line(r, 3), "amount", 0.29);   /* 0.285 as written rounds up */
    assert_money(line(r, 3), "payable", 0.17);  /* 0.174 */
    assert_money(r, "total_payable", 60.22);    /* sum of rounded lines */
    json_decref(d);

    /* exact halves round up: 0.01 x 50% = 0.005 -> 0.01, twice -> 0.02 (not 0.01) */
    d = calc(state, "{\"ratio\": 0.5, \"lines\": [{\"item\": \"a\", \"amount\": 0.01},"
                    " {\"item\": \"b\", \"amount\": 0.01}]}");
    assert_money(ok_result(d), "total_payable", 0.02);
    json_decref(d);

    /* whole-yuan results are integers on the wire, others reals */
    d = calc(state, "{\"ratio\": 1, \"lines\": [{\"item\": \"a\", \"amount\": 12}]}");
    assert_true(json_is_integer(json_object_get(ok_result(d), "total_payable")));
    json_decref(d);
}

static void test_invalid_inputs(void **state)
{
    expect_error(state, "{\"ratio\": 1, \"lines\": [{\"item\": \"a\", \"amount\": -1}]}",
                 "invalid_tool_arguments", "$.lines[0].amount: must be >= 0");
    expect_error(state,
                 "{\"ratio\": 1, \"lines\": [{\"item\": \"a\", \"amount\": 1},"
                 " {\"item\": \"b\", \"amount\": 100, \"social_paid\": 80, \"other_paid\": 30}]}",
                 "invalid_tool_arguments",
                 "$.lines[1]: social_paid + other_paid (110.00) exceed the reasonable amount "
                 "(100.00)");
    expect_error(state,
                 "{\"ratio\": 1, \"lines\": [{\"item\": \"a\", \"amount\": 100,"
                 " \"reasonable_amount\": 120}]}",
                 "invalid_tool_arguments",
                 "$.lines[0].reasonable_amount: 120.00 is greater than the billed amount 100.00");
    expect_error(state, "{\"lines\": [{\"item\": \"a\", \"amount\": 1}]}", "invalid_tool_arguments",
                 "$.ratio: is required when policy_no is absent");
    expect_error(state, "{\"ratio\": 1.5, \"lines\": [{\"item\": \"a\", \"amount\": 1}]}",
                 "invalid_tool_arguments", "$.ratio: must be <= 1");
    expect_error(state, "{\"ratio\": 1, \"lines\": []}", "invalid_tool_arguments",
                 "$.lines: must have at least 1 items");
    expect_error(state, "{\"ratio\": 1}", "invalid_tool_arguments", "$.lines: is required");
    expect_error(state, "{\"ratio\": 1, \"lines\": [{\"item\": \"a\"}]}", "invalid_tool_arguments",
                 "$.lines[0].amount: is required");
    expect_error(state, "{\"ratio\": 1, \"lines\": [{\"item\": \"a\", \"amount\": \"5\"}]}",
                 "invalid_tool_arguments", "$.lines[0].amount: must be of type number");
    expect_error(state, "{\"ratio\": 1, \"lines\": [{\"item\": \"a\", \"amount\": 1e11}]}",
                 "invalid_tool_arguments", "$.lines[0].amount: must be <= 10000000000");
    expect_error(state,
                 "{\"ratio\": 1, \"bogus\": 1, \"lines\": [{\"item\": \"a\", \"amount\": 1}]}",
                 "invalid_tool_arguments", "$.bogus: is not an allowed property");
    expect_error(state,
                 "{\"policy_no\": \"P99999\", \"lines\": [{\"item\": \"a\", \"amount\": 1}]}",
                 "not_found", "policy P99999 not found");
    expect_error(state,
                 "{\"policy_no\": \"P20004\", \"lines\": [{\"item\": \"a\", \"amount\": 1}]}",
                 "tool_failed", "policy P20004 is lapsed");
    expect_error(state,
                 "{\"policy_no\": \"P20005\", \"lines\": [{\"item\": \"a\", \"amount\": 1}]}",
                 "tool_failed", "is a motor policy");
    expect_error(state,
                 "{\"policy_no\": \"P20006\", \"lines\": [{\"item\": \"a\", \"amount\": 1}]}",
                 "tool_failed", "is a critical_illness policy");

    /* 201 lines are refused */
    json_t *a = json_pack("{s:i, s:[]}", "ratio", 1, "lines");
    for (int i = 0; i < TOOLS_FEE_LINES_MAX + 1; i++)
        json_array_append_new(json_object_get(a, "lines"),
                              json_pack("{s:s, s:i}", "item", "x", "amount", 1));
    char *text = json_dumps(a, 0);
    expect_error(state, text, "invalid_tool_arguments", "$.lines: must have at most 200 items");
    free(text);
    json_decref(a);
}

/* The tool itself re-checks what the schema already covers (it may be called directly). */
static void test_tool_direct_defensive(void **state)
{
    (void)state;
    json_t *res = NULL;
    char err[256];
    json_t *a =
        json_pack("{s:f, s:[{s:s, s:f}]}", "ratio", 1.0, "lines", "item", "a", "amount", -3.0);
    assert_int_equal(tools_feecalc_tool(NULL, a, &res, err, sizeof(err)), MESH_EBADARGS);
    assert_null(res);
    assert_non_null(strstr(err, "$.lines[0].amount: must be a number between 0 and"));
    json_decref(a);
    a = json_pack("{s:s, s:[{s:s, s:i}]}", "policy_no", "P10023", "lines", "item", "a", "amount",
                  1);
    assert_int_equal(tools_feecalc_tool(NULL, a, &res, err, sizeof(err)), MESH_ENOTFOUND);
    json_decref(a);
    assert_int_equal(tools_feecalc_tool(NULL, NULL, &res, err, sizeof(err)), MESH_EBADARGS);
}

/* The pure arithmetic: validation before any settling, and the totals. */
static void test_compute_pure(void **state)
{
    (void)state;
    tools_fee_terms_t t = {.ratio_ppm = 700000, .deductible_remaining = 1000000};
    tools_fee_line_t l[2] = {
        {.amount = 8600000, .reasonable = 8600000, .social = 4500000},
        {.amount = 100, .reasonable = 100, .social = 60, .other = 50},
    };
    tools_fee_totals_t tot;
    size_t bad = 99;
    assert_int_equal(tools_feecalc_compute(&t, l, 2, &tot, &bad), MESH_EINVAL);
    assert_int_equal(bad, 1);
    assert_int_equal(l[0].payable, 0); /* nothing settled */
    l[1].other = 0;
    assert_int_equal(tools_feecalc_compute(&t, l, 2, &tot, &bad), 0);
    assert_int_equal(l[0].payable, 2170000);
    assert_int_equal(l[1].payable, 28); /* 40 fen x 70% */
    assert_int_equal(tot.payable, 2170028);
    assert_int_equal(tot.deductible_remaining_after, 0);

    t.ratio_ppm = TOOLS_PPM + 1;
    assert_int_equal(tools_feecalc_compute(&t, l, 2, &tot, &bad), MESH_EINVAL);
    assert_int_equal(bad, 2);

    /* money helpers */
    int64_t fen;
    json_t *v = json_real(0.29);
    assert_int_equal(tools_money_from_json(v, &fen), 0);
    assert_int_equal(fen, 29);
    json_decref(v);
    v = json_real(-0.01);
    assert_int_equal(tools_money_from_json(v, &fen), MESH_EINVAL);
    json_decref(v);
    char buf[TOOLS_MONEY_TEXT];
    assert_string_equal(tools_ratio_fmt(655000, buf), "65.5%");
    assert_string_equal(tools_ratio_fmt(1000000, buf), "100%");
    assert_string_equal(tools_money_fmt(123456, buf), "1234.56");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_example_after_social_18000, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_86000_ratio_70, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_100000_ratio_90, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deductible_across_visits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_line_itemisation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_terms_and_social, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rounding_to_fen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_inputs, setup, teardown),
        cmocka_unit_test(test_tool_direct_defensive),
        cmocka_unit_test(test_compute_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
