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
#include "tools_motor.h"
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

/* ---- motor mode ------------------------------------------------------------------------- */

/* Find the line covered_by cov (and item, when not NULL). */
static const json_t *motor_line(const json_t *r, const char *covered_by, const char *item)
{
    size_t i;
    const json_t *l;
    json_array_foreach(json_object_get(r, "lines"), i, l)
    {
        if (strcmp(json_string_value(json_object_get(l, "covered_by")), covered_by) == 0 &&
            (item == NULL || strcmp(json_string_value(json_object_get(l, "item")), item) == 0))
            return l;
    }
    char *text = json_dumps(r, 0);
    fail_msg("no line %s/%s in %s", covered_by, item ? item : "*", text);
    return NULL;
}

static void expect_motor_line(const json_t *r, const char *covered_by, const char *item,
                              double amount, double payable, const char *clause)
{
    const json_t *l = motor_line(r, covered_by, item);
    assert_money(l, "amount", amount);
    assert_money(l, "payable", payable);
    assert_string_equal(json_string_value(json_object_get(l, "clause")), clause);
    assert_true(json_is_string(json_object_get(l, "rule")));
    assert_true(json_is_string(json_object_get(l, "rule_zh")));
}

/*
 * The reference's worked example (A1.3) on the shipped scenario policy P10003
 * (motor-2024, third-party limit 1,000,000): third-party vehicle damage 52,000,
 * insured 主责.
 *   交强险 (with liability) property sub-limit 2,000: pays min(52,000, 2,000) = 2,000
 *   三者险: (52,000 - 2,000) x 70% = 35,000 < 1,000,000 -> 35,000 (post-2020 product:
 *   no 事故责任免赔率; the legacy 2014 figure 29,750 is test_motor_legacy_deductible)
 *   total under the policy 37,000.
 */
static void test_motor_worked_example(void **state)
{
    (void)state;
    char dir[FIXTURE_PATH_MAX], err[512];
    fixture_data_dir(dir);
    tools_registry_t *r = tools_registry_new();
    assert_int_equal(tools_registry_load(r, dir, err, sizeof(err)), 0);
    static const char *const LIAB[] = {"major", "主责"};
    for (size_t k = 0; k < 2; k++) {
        json_t *a = json_pack("{s:s, s:s, s:s, s:i}", "mode", "motor", "policy_no", "P10003",
                              "liability", LIAB[k], "third_party_property", 52000);
        json_t *data = NULL;
        assert_int_equal(tools_registry_call(r, "fee.calc", a, &data), 0);
        const json_t *res = ok_result(data);
        assert_true(json_is_true(json_object_get(res, "estimate")));
        assert_string_equal(json_string_value(json_object_get(res, "liability")), "major");
        assert_money(res, "share", 0.7);
        const json_t *cl = json_object_get(res, "compulsory_limits");
        assert_string_equal(json_string_value(json_object_get(cl, "basis")), "with_liability");
        assert_money(cl, "property", 2000);
        assert_money(cl, "medical", 18000);
        assert_money(cl, "death_disability", 180000);
        const json_t *tbl = json_object_get(res, "compulsory_limits_table");
        assert_money(json_object_get(tbl, "without_liability"), "property", 100);
        assert_money(res, "third_party_limit", 1000000);
        assert_int_equal(json_array_size(json_object_get(res, "lines")), 2);
        expect_motor_line(res, "compulsory", "third_party_property", 52000, 2000, "1.1");
        expect_motor_line(res, "third_party", NULL, 50000, 35000, "2.2");
        assert_money(res, "total_payable", 37000);
        assert_money(res, "total_other_party", 0);
        assert_non_null(
            strstr(json_string_value(json_object_get(motor_line(res, "third_party", NULL), "rule")),
                   "70%"));
        json_decref(data);
        json_decref(a);
    }
    tools_registry_destroy(&r);
}

/* A legacy (2014 clauses) product with 事故责任免赔率 主要 15%: the reference's 29,750. */
static void test_motor_legacy_deductible(void **state)
{
    fx_t *fx = *state;
    char path[FIXTURE_PATH_MAX * 2], err[512];
    snprintf(path, sizeof(path), "%s/products/motor-2024.json", fx->dir);
    json_error_t e;
    json_t *prod = json_load_file(path, 0, &e);
    assert_non_null(prod);
    json_object_set_new(
        prod, "liability_deductible_rates",
        json_pack("{s:f, s:f, s:f, s:f}", "full", 0.2, "major", 0.15, "equal", 0.1, "minor", 0.05));
    assert_int_equal(json_dump_file(prod, path, 0), 0);
    json_decref(prod);
    assert_int_equal(tools_registry_load(fx->reg, fx->dir, err, sizeof(err)), 0);
    /* P20005: third-party limit 2,000,000. (52,000 - 2,000) x 70% = 35,000; x (1 - 15%) = 29,750.
     * Own damage 10,000: other 交强险 2,000; (10,000 - 2,000) x 70% = 5,600; x 85% = 4,760. */
    json_t *d = calc(state, "{\"mode\": \"motor\", \"policy_no\": \"P20005\", \"liability\": "
                            "\"major\", \"third_party_property\": 52000, \"own_vehicle_damage\": "
                            "10000}");
    const json_t *res = ok_result(d);
    assert_money(res, "liability_deductible_rate", 0.15);
    expect_motor_line(res, "third_party", NULL, 50000, 29750, "2.2");
    expect_motor_line(res, "vehicle_damage", NULL, 8000, 4760, "2.1");
    expect_motor_line(res, "other_party_compulsory", NULL, 10000, 2000, "1.1");
    expect_motor_line(res, "other_party_third_party", NULL, 8000, 2400, "2.1");
    assert_money(res, "total_payable", 2000 + 29750 + 4760);
    assert_money(res, "total_other_party", 2000 + 2400);
    json_decref(d);
}

/*
 * Full liability, every head and own damage, P20005 (third party 2,000,000, vehicle 150,000):
 *   交强险 with liability: death min(300,000, 180,000) = 180,000; medical min(50,000, 18,000)
 *   = 18,000; property min(8,000, 2,000) = 2,000 -> 200,000
 *   三者险: (120,000 + 32,000 + 6,000) x 100% = 158,000
 *   own 20,000: the other party has no liability -> its 交强险 pays min(20,000, 100) = 100;
 *   车损险 (20,000 - 100) x 100% = 19,900
 *   total 200,000 + 158,000 + 19,900 = 377,900; other party 100.
 */
static void test_motor_full_liability(void **state)
{
    json_t *d = calc(state, "{\"mode\": \"motor\", \"policy_no\": \"P20005\", \"liability\": "
                            "\"全责\", \"third_party_death_disability\": 300000, "
                            "\"third_party_medical\": 50000, \"third_party_property\": 8000, "
                            "\"own_vehicle_damage\": 20000}");
    const json_t *res = ok_result(d);
    assert_money(res, "share", 1);
    expect_motor_line(res, "compulsory", "third_party_death_disability", 300000, 180000, "1.1");
    expect_motor_line(res, "compulsory", "third_party_medical", 50000, 18000, "1.1");
    expect_motor_line(res, "compulsory", "third_party_property", 8000, 2000, "1.1");
    expect_motor_line(res, "third_party", NULL, 158000, 158000, "2.2");
    expect_motor_line(res, "other_party_compulsory", NULL, 20000, 100, "1.1");
    expect_motor_line(res, "vehicle_damage", NULL, 19900, 19900, "2.1");
    assert_int_equal(json_array_size(json_object_get(res, "lines")), 6); /* no other share */
    assert_money(res, "total_payable", 377900);
    assert_money(res, "total_other_party", 100);
    json_decref(d);
}

/*
 * Minor liability (次责 30%): property 10,000, medical 30,000, own 60,000.
 *   交强险: property 2,000 + medical 18,000 = 20,000
 *   三者险: (8,000 + 12,000) x 30% = 6,000
 *   own: other party at fault -> its 交强险 2,000; 车损险 (60,000 - 2,000) x 30% = 17,400;
 *   the other party's 三者险 58,000 x 70% = 40,600
 *   total 43,400; other party 42,600.
 */
static void test_motor_minor_liability(void **state)
{
    json_t *d = calc(state, "{\"mode\": \"motor\", \"policy_no\": \"P20005\", \"liability\": "
                            "\"minor\", \"third_party_property\": 10000, \"third_party_medical\": "
                            "30000, \"own_vehicle_damage\": 60000}");
    const json_t *res = ok_result(d);
    expect_motor_line(res, "third_party", NULL, 20000, 6000, "2.2");
    expect_motor_line(res, "vehicle_damage", NULL, 58000, 17400, "2.1");
    expect_motor_line(res, "other_party_third_party", NULL, 58000, 40600, "2.1");
    assert_money(res, "total_payable", 43400);
    assert_money(res, "total_other_party", 42600);
    json_decref(d);
}

/*
 * No liability (无责): the no-liability 交强险 sub-limits, nothing from the commercial covers.
 *   property min(5,000, 100) = 100; medical min(1,000, 1,800) = 1,000 -> 1,100
 *   三者险: (4,900 + 0) x 0% = 0
 *   own 30,000: other party 交强险 2,000 + its 三者险 28,000 x 100%; 车损险 0
 *   total 1,100; other party 30,000.
 */
static void test_motor_no_liability(void **state)
{
    json_t *d = calc(state, "{\"mode\": \"motor\", \"policy_no\": \"P20005\", \"liability\": "
                            "\"none\", \"third_party_property\": 5000, \"third_party_medical\": "
                            "1000, \"own_vehicle_damage\": 30000}");
    const json_t *res = ok_result(d);
    const json_t *cl = json_object_get(res, "compulsory_limits");
    assert_string_equal(json_string_value(json_object_get(cl, "basis")), "without_liability");
    assert_money(cl, "property", 100);
    expect_motor_line(res, "compulsory", "third_party_property", 5000, 100, "1.1");
    expect_motor_line(res, "compulsory", "third_party_medical", 1000, 1000, "1.1");
    expect_motor_line(res, "third_party", NULL, 4900, 0, "2.2");
    expect_motor_line(res, "vehicle_damage", NULL, 28000, 0, "2.1");
    assert_money(res, "total_payable", 1100);
    assert_money(res, "total_other_party", 30000);
    json_decref(d);
}

/*
 * Caps. 同责: death 5,000,000 -> 交强险 180,000; 三者险 4,820,000 x 50% = 2,410,000, capped at
 * the policy's 2,000,000 -> total 2,180,000. Full liability, uninsured other party, own damage
 * 400,000: no other 交强险; 车损险 pays in full, capped at the sum insured 150,000.
 */
static void test_motor_caps(void **state)
{
    json_t *d = calc(state, "{\"mode\": \"motor\", \"policy_no\": \"P20005\", \"liability\": "
                            "\"同责\", \"third_party_death_disability\": 5000000}");
    const json_t *res = ok_result(d);
    expect_motor_line(res, "third_party", NULL, 4820000, 2000000, "2.2");
    assert_non_null(
        strstr(json_string_value(json_object_get(motor_line(res, "third_party", NULL), "rule")),
               "capped"));
    assert_money(res, "total_payable", 2180000);
    json_decref(d);

    d = calc(state, "{\"mode\": \"motor\", \"policy_no\": \"P20005\", \"liability\": \"full\", "
                    "\"own_vehicle_damage\": 400000, \"other_party_insured\": false}");
    res = ok_result(d);
    assert_int_equal(json_array_size(json_object_get(res, "lines")), 1);
    expect_motor_line(res, "vehicle_damage", NULL, 400000, 150000, "2.1");
    assert_money(res, "total_payable", 150000);
    assert_money(res, "total_other_party", 0);
    json_decref(d);

    /* fen: minor 30% of 333.33 above the sub-limit = 99.999 -> 100.00 (half-up) */
    d = calc(state, "{\"mode\": \"motor\", \"policy_no\": \"P20005\", \"liability\": \"minor\", "
                    "\"third_party_property\": 2333.33}");
    expect_motor_line(ok_result(d), "third_party", NULL, 333.33, 100, "2.2");
    json_decref(d);
}

static void test_motor_errors(void **state)
{
    expect_error(state, "{\"mode\": \"motor\", \"liability\": \"full\"}", "invalid_tool_arguments",
                 "$.policy_no: is required in motor mode");
    expect_error(state, "{\"mode\": \"motor\", \"policy_no\": \"P20005\"}",
                 "invalid_tool_arguments", "$.liability: is required in motor mode");
    expect_error(state, "{\"mode\": \"motor\", \"policy_no\": \"P20005\", \"liability\": \"most\"}",
                 "invalid_tool_arguments", "$.liability");
    expect_error(state,
                 "{\"mode\": \"motor\", \"policy_no\": \"P20005\", \"liability\": \"full\","
                 " \"lines\": [{\"item\": \"a\", \"amount\": 1}]}",
                 "invalid_tool_arguments", "$.lines: not used in motor mode");
    expect_error(state,
                 "{\"mode\": \"motor\", \"policy_no\": \"P20005\", \"liability\": \"full\","
                 " \"own_vehicle_damage\": -1}",
                 "invalid_tool_arguments", "$.own_vehicle_damage");
    expect_error(state, "{\"mode\": \"motor\", \"policy_no\": \"P99999\", \"liability\": \"full\"}",
                 "not_found", "policy P99999 not found");
    expect_error(state, "{\"mode\": \"motor\", \"policy_no\": \"P20001\", \"liability\": \"full\"}",
                 "tool_failed", "motor mode needs a motor policy");
    expect_error(state,
                 "{\"mode\": \"car\", \"ratio\": 1, \"lines\": [{\"item\": \"a\", "
                 "\"amount\": 1}]}",
                 "invalid_tool_arguments", "$.mode");
    expect_error(state,
                 "{\"ratio\": 1, \"liability\": \"full\", \"lines\": [{\"item\": \"a\","
                 " \"amount\": 1}]}",
                 "invalid_tool_arguments", "$.liability: only used with mode \"motor\"");
    /* the health mode is unchanged with an explicit mode */
    json_t *d = calc(state, "{\"mode\": \"health\", \"ratio\": 1, \"deductible_remaining\": 10000,"
                            " \"lines\": [{\"item\": \"住院费用\", \"amount\": 18000}]}");
    assert_money(ok_result(d), "total_payable", 8000);
    json_decref(d);
}

/* The pure arithmetic refuses out-of-range inputs. */
static void test_motor_compute_pure(void **state)
{
    (void)state;
    tools_motor_in_t in = {.share_ppm = 700000,
                           .at_fault = true,
                           .third_party_limit = 100000000,
                           .vehicle_damage_limit = 100000000,
                           .other_party_insured = true};
    tools_motor_out_t o;
    in.with_limits[TOOLS_MOTOR_PROPERTY] = 200000;
    in.loss[TOOLS_MOTOR_PROPERTY] = 5200000;
    assert_int_equal(tools_motor_compute(&in, &o), 0);
    assert_int_equal(o.compulsory[TOOLS_MOTOR_PROPERTY], 200000);
    assert_int_equal(o.tp_payable, 3500000);
    assert_int_equal(o.total, 3700000);
    in.share_ppm = TOOLS_PPM + 1;
    assert_int_equal(tools_motor_compute(&in, &o), MESH_EINVAL);
    in.share_ppm = 0;
    in.loss[TOOLS_MOTOR_MEDICAL] = -1;
    assert_int_equal(tools_motor_compute(&in, &o), MESH_EINVAL);
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
        cmocka_unit_test(test_motor_worked_example),
        cmocka_unit_test_setup_teardown(test_motor_legacy_deductible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_motor_full_liability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_motor_minor_liability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_motor_no_liability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_motor_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_motor_errors, setup, teardown),
        cmocka_unit_test(test_motor_compute_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
