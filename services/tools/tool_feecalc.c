/*
 * tool_feecalc.c - the fee.calc tool: arguments -> terms and lines in fen ->
 * tools_feecalc_compute() -> result JSON (docs/protocol/services.md).
 * mode "health" (default) is this file; mode "motor" is tool_motor.c.
 *
 * Terms: with policy_no, the policy must exist (not_found), be a medical
 * policy and be active (tool_failed otherwise); then
 *   deductible_remaining = product deductible - deductible_used,
 *   ratio = ratio_with_social when the holder has social insurance and used
 *           it (social_insurance_used, default true), else ratio_without_social,
 *   limit_remaining = product limit - limit_used.
 * Explicit deductible_remaining / ratio / limit_remaining override these.
 * Without policy_no, ratio is required, the deductible defaults to 0 and
 * there is no cap unless limit_remaining is given.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "tools_feecalc.h"
#include "tools_money.h"
#include "tools_tool.h"

/* Arguments of the motor mode, refused in the health mode (a mixed call is a caller's mistake). */
static const char *const MOTOR_ONLY[] = {"liability",           "third_party_property",
                                         "third_party_medical", "third_party_death_disability",
                                         "own_vehicle_damage",  "other_party_insured"};

typedef struct {
    const json_t *args;
    char *err;
    size_t err_size;
} call_t;

/* An optional amount argument at path; *present tells whether it was given. */
static int opt_amount(call_t *c, const json_t *obj, const char *key, const char *path, int64_t *fen,
                      bool *present)
{
    const json_t *v = json_object_get(obj, key);

    *present = v != NULL;
    if (v == NULL)
        return 0;
    if (tools_money_from_json(v, fen) != 0)
        return tools_fail(c->err, c->err_size, MESH_EBADARGS,
                          "%s.%s: must be a number between 0 and %.0f", path, key, TOOLS_CNY_MAX);
    return 0;
}

/* Terms from the policy (when policy_no is given). */
static int policy_terms(call_t *c, const tools_data_t *d, const char *no, bool social_used,
                        tools_fee_terms_t *t)
{
    const json_t *pol = d != NULL ? tools_data_policy(d, no) : NULL;

    if (pol == NULL)
        return tools_fail(c->err, c->err_size, MESH_ENOTFOUND, "policy %s not found", no);
    const char *pid = json_string_value(json_object_get(pol, "product_id"));
    const json_t *prod = tools_data_product(d, pid);
    const char *type = json_string_value(json_object_get(prod, "type"));
    const char *status = json_string_value(json_object_get(pol, "status"));
    if (type == NULL || strcmp(type, "medical") != 0)
        return tools_fail(c->err, c->err_size, MESH_ETOOL,
                          "policy %s is a %s policy: fee.calc settles medical policies", no,
                          type ? type : "unknown");
    if (status == NULL || strcmp(status, "active") != 0)
        return tools_fail(c->err, c->err_size, MESH_ETOOL,
                          "policy %s is %s: no settlement on a policy not in force", no,
                          status ? status : "unknown");

    int64_t ded, ded_used, lim, lim_used, ppm;
    bool has_social = json_is_true(json_object_get(pol, "social_insurance"));
    const json_t *ratio = json_object_get(
        prod, (has_social && social_used) ? "ratio_with_social" : "ratio_without_social");
    /* The data was validated at load; failing here means an internal inconsistency. */
    if (tools_money_from_json(json_object_get(prod, "deductible"), &ded) != 0 ||
        tools_money_from_json(json_object_get(pol, "deductible_used"), &ded_used) != 0 ||
        tools_money_from_json(json_object_get(prod, "limit"), &lim) != 0 ||
        tools_money_from_json(json_object_get(pol, "limit_used"), &lim_used) != 0 ||
        tools_ratio_from_json(ratio, &ppm) != 0)
        return tools_fail(c->err, c->err_size, MESH_ETOOL,
                          "policy %s: product %s terms are incomplete", no, pid);
    t->deductible_remaining = ded > ded_used ? ded - ded_used : 0;
    t->ratio_ppm = ppm;
    t->has_limit = true;
    t->limit_remaining = lim > lim_used ? lim - lim_used : 0;
    return 0;
}

static int resolve_terms(call_t *c, const tools_data_t *d, tools_fee_terms_t *t,
                         const char **policy_no, bool *social_used)
{
    const json_t *a = c->args;
    const json_t *no = json_object_get(a, "policy_no");
    const json_t *su = json_object_get(a, "social_insurance_used");
    const json_t *ratio = json_object_get(a, "ratio");
    int64_t fen;
    bool present;
    int rc;

    memset(t, 0, sizeof(*t));
    *policy_no = NULL;
    *social_used = true;
    if (su != NULL) {
        if (!json_is_boolean(su))
            return tools_fail(c->err, c->err_size, MESH_EBADARGS,
                              "$.social_insurance_used: must be true or false");
        *social_used = json_is_true(su);
    }
    if (no != NULL) {
        if (!json_is_string(no))
            return tools_fail(c->err, c->err_size, MESH_EBADARGS, "$.policy_no: must be a string");
        *policy_no = json_string_value(no);
        if ((rc = policy_terms(c, d, *policy_no, *social_used, t)) != 0)
            return rc;
    } else if (ratio == NULL) {
        return tools_fail(c->err, c->err_size, MESH_EBADARGS,
                          "$.ratio: is required when policy_no is absent");
    }
    if (ratio != NULL && tools_ratio_from_json(ratio, &t->ratio_ppm) != 0)
        return tools_fail(c->err, c->err_size, MESH_EBADARGS,
                          "$.ratio: must be a number between 0 and 1");
    if ((rc = opt_amount(c, a, "deductible_remaining", "$", &fen, &present)) != 0)
        return rc;
    if (present)
        t->deductible_remaining = fen;
    if ((rc = opt_amount(c, a, "limit_remaining", "$", &fen, &present)) != 0)
        return rc;
    if (present) {
        t->has_limit = true;
        t->limit_remaining = fen;
    }
    return 0;
}

static int parse_line(call_t *c, const json_t *l, size_t i, tools_fee_line_t *out)
{
    char path[32];
    bool present;
    int rc;

    snprintf(path, sizeof(path), "$.lines[%zu]", i);
    memset(out, 0, sizeof(*out));
    if (!json_is_object(l))
        return tools_fail(c->err, c->err_size, MESH_EBADARGS, "%s: must be an object", path);
    if (!json_is_string(json_object_get(l, "item")))
        return tools_fail(c->err, c->err_size, MESH_EBADARGS, "%s.item: must be a string", path);
    if (json_object_get(l, "amount") == NULL)
        return tools_fail(c->err, c->err_size, MESH_EBADARGS, "%s.amount: is required", path);
    if ((rc = opt_amount(c, l, "amount", path, &out->amount, &present)) != 0 ||
        (rc = opt_amount(c, l, "reasonable_amount", path, &out->reasonable, &present)) != 0)
        return rc;
    if (!present)
        out->reasonable = out->amount;
    if ((rc = opt_amount(c, l, "social_paid", path, &out->social, &present)) != 0 ||
        (rc = opt_amount(c, l, "other_paid", path, &out->other, &present)) != 0)
        return rc;

    char x[TOOLS_MONEY_TEXT], y[TOOLS_MONEY_TEXT];
    if (out->reasonable > out->amount)
        return tools_fail(c->err, c->err_size, MESH_EBADARGS,
                          "%s.reasonable_amount: %s is greater than the billed amount %s", path,
                          tools_money_fmt(out->reasonable, x), tools_money_fmt(out->amount, y));
    if (out->social + out->other > out->reasonable)
        return tools_fail(c->err, c->err_size, MESH_EBADARGS,
                          "%s: social_paid + other_paid (%s) exceed the reasonable amount (%s)",
                          path, tools_money_fmt(out->social + out->other, x),
                          tools_money_fmt(out->reasonable, y));
    return 0;
}

/* json_object_set_new that remembers the first failure. */
static void put(json_t *o, const char *k, json_t *v, bool *ok)
{
    if (v == NULL || json_object_set_new(o, k, v) != 0)
        *ok = false;
}

static json_t *line_json(const json_t *in, const tools_fee_line_t *l, int64_t ppm, bool *ok)
{
    char en[TOOLS_FEE_RULE_MAX], zh[TOOLS_FEE_RULE_MAX];
    json_t *o = json_object();

    if (o == NULL) {
        *ok = false;
        return NULL;
    }
    tools_feecalc_rule(l, ppm, en, zh);
    put(o, "item", json_deep_copy(json_object_get(in, "item")), ok);
    if (json_is_string(json_object_get(in, "category")))
        put(o, "category", json_deep_copy(json_object_get(in, "category")), ok);
    put(o, "amount", tools_money_to_json(l->amount), ok);
    put(o, "reasonable", tools_money_to_json(l->reasonable), ok);
    put(o, "social_paid", tools_money_to_json(l->social), ok);
    put(o, "other_paid", tools_money_to_json(l->other), ok);
    put(o, "base", tools_money_to_json(l->base), ok);
    put(o, "deductible_applied", tools_money_to_json(l->deductible_applied), ok);
    put(o, "ratio", tools_ratio_to_json(ppm), ok);
    put(o, "payable", tools_money_to_json(l->payable), ok);
    put(o, "capped", json_boolean(l->capped), ok);
    if (l->capped)
        put(o, "payable_before_cap", tools_money_to_json(l->payable_before_cap), ok);
    put(o, "rule", json_string(en), ok);
    put(o, "rule_zh", json_string(zh), ok);
    return o;
}

static json_t *result_json(const json_t *lines_in, const tools_fee_line_t *lines, size_t n,
                           const tools_fee_terms_t *t, const tools_fee_totals_t *tot,
                           const char *policy_no, bool social_used)
{
    bool ok = true;
    json_t *r = json_object();
    json_t *arr = json_array();

    if (r == NULL || arr == NULL) {
        json_decref(r);
        json_decref(arr);
        return NULL;
    }
    put(r, "policy_no", policy_no ? json_string(policy_no) : json_null(), &ok);
    put(r, "social_insurance_used", json_boolean(social_used), &ok);
    put(r, "currency", json_string("CNY"), &ok);
    put(r, "ratio", tools_ratio_to_json(t->ratio_ppm), &ok);
    put(r, "deductible_remaining_before", tools_money_to_json(t->deductible_remaining), &ok);
    put(r, "deductible_remaining_after", tools_money_to_json(tot->deductible_remaining_after), &ok);
    put(r, "limit_remaining_before",
        t->has_limit ? tools_money_to_json(t->limit_remaining) : json_null(), &ok);
    put(r, "limit_remaining_after",
        t->has_limit ? tools_money_to_json(tot->limit_remaining_after) : json_null(), &ok);
    put(r, "total_claimed", tools_money_to_json(tot->claimed), &ok);
    put(r, "total_reasonable", tools_money_to_json(tot->reasonable), &ok);
    put(r, "total_social_paid", tools_money_to_json(tot->social), &ok);
    put(r, "total_other_paid", tools_money_to_json(tot->other), &ok);
    put(r, "total_deductible_applied", tools_money_to_json(tot->deductible_applied), &ok);
    put(r, "total_payable", tools_money_to_json(tot->payable), &ok);
    put(r, "capped", json_boolean(tot->capped), &ok);
    for (size_t i = 0; i < n && ok; i++) {
        json_t *lj = line_json(json_array_get(lines_in, i), &lines[i], t->ratio_ppm, &ok);
        if (lj == NULL || json_array_append_new(arr, lj) != 0)
            ok = false;
    }
    put(r, "lines", arr, &ok);
    if (!ok) {
        json_decref(r);
        return NULL;
    }
    return r;
}

int tools_feecalc_tool(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                       size_t err_size)
{
    call_t c = {.args = args, .err = err, .err_size = err_size};
    tools_fee_line_t *lines = NULL;
    tools_fee_terms_t terms;
    tools_fee_totals_t tot;
    const char *policy_no = NULL;
    bool social_used = true;
    size_t n, bad_line;
    int rc;

    *result = NULL;
    if (!json_is_object(args))
        return tools_fail(c.err, c.err_size, MESH_EBADARGS, "$: must be an object");
    const json_t *mode = json_object_get(args, "mode");
    if (mode != NULL) {
        if (json_is_string(mode) && strcmp(json_string_value(mode), "motor") == 0)
            return tools_motor_tool(d, args, result, err, err_size);
        if (!json_is_string(mode) || strcmp(json_string_value(mode), "health") != 0)
            return tools_fail(c.err, c.err_size, MESH_EBADARGS,
                              "$.mode: must be \"health\" or \"motor\"");
    }
    for (size_t k = 0; k < sizeof(MOTOR_ONLY) / sizeof(MOTOR_ONLY[0]); k++) {
        if (json_object_get(args, MOTOR_ONLY[k]) != NULL)
            return tools_fail(c.err, c.err_size, MESH_EBADARGS,
                              "$.%s: only used with mode \"motor\"", MOTOR_ONLY[k]);
    }
    const json_t *arr = json_object_get(args, "lines");
    if (arr == NULL)
        return tools_fail(c.err, c.err_size, MESH_EBADARGS, "$.lines: is required");
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > TOOLS_FEE_LINES_MAX)
        return tools_fail(c.err, c.err_size, MESH_EBADARGS,
                          "$.lines: must be an array of 1..%d bill lines", TOOLS_FEE_LINES_MAX);
    n = json_array_size(arr);
    if ((rc = resolve_terms(&c, d, &terms, &policy_no, &social_used)) != 0)
        return rc;
    lines = calloc(n, sizeof(*lines));
    if (lines == NULL)
        return MESH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((rc = parse_line(&c, json_array_get(arr, i), i, &lines[i])) != 0)
            goto cleanup;
    }
    if (tools_feecalc_compute(&terms, lines, n, &tot, &bad_line) != 0) {
        /* parse_line enforced every rule compute checks; reaching here is a bug, not input */
        rc =
            tools_fail(c.err, c.err_size, MESH_ETOOL, "internal error settling line %zu", bad_line);
        goto cleanup;
    }
    *result = result_json(arr, lines, n, &terms, &tot, policy_no, social_used);
    rc = *result != NULL ? 0 : MESH_ENOMEM;
cleanup:
    free(lines);
    return rc;
}
