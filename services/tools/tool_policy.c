/*
 * tool_policy.c - the policy.lookup tool: one policy merged with its
 * product's terms, in the shape of docs/protocol/services.md.
 *
 * Terms a product type does not have are present with value null (a motor
 * policy has no deductible or ratios), so every consumer sees the same keys.
 * A coverage whose product limit is null takes the policy's cover_limits
 * value. Type-specific extras: hospital_rule (medical), sum_assured
 * (critical_illness), plate, compulsory_limits and liability_shares (motor).
 *
 * The result shares its values with the loaded data (references, not deep
 * copies): a tools_data_t is immutable once loaded and a result is only read
 * (encoded into the reply), so nothing can change through either. A medical
 * policy's clauses alone are some hundred values, copied at every lookup
 * before.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "tools_tool.h"

/* Set dst_key of dst to src's key (shared, see above), or null when absent. */
static int copy_or_null(json_t *dst, const char *dst_key, const json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);
    json_t *c = v != NULL ? json_incref(v) : json_null();

    if (c == NULL || json_object_set_new(dst, dst_key, c) != 0)
        return MESH_ENOMEM;
    return 0;
}

static json_t *coverages(const json_t *prod, const json_t *pol)
{
    const json_t *covs = json_object_get(prod, "coverages");
    const json_t *per_policy = json_object_get(pol, "cover_limits");
    json_t *out = json_array();
    size_t i;
    const json_t *cov;

    if (out == NULL)
        return NULL;
    json_array_foreach(covs, i, cov)
    {
        const json_t *limit = json_object_get(cov, "limit");
        if (json_is_null(limit))
            limit = json_object_get(per_policy, json_string_value(json_object_get(cov, "id")));
        json_t *o = json_pack("{s:O, s:O, s:O, s:O}", "id", json_object_get(cov, "id"), "name",
                              json_object_get(cov, "name"), "limit",
                              limit != NULL ? (json_t *)limit : json_null(), "clause",
                              json_object_get(cov, "clause"));
        if (o == NULL || json_array_append_new(out, o) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *exclusions(const json_t *prod)
{
    const json_t *exs = json_object_get(prod, "exclusions");
    json_t *out = json_array();
    size_t i;
    const json_t *ex;

    if (out == NULL)
        return NULL;
    json_array_foreach(exs, i, ex)
    {
        json_t *o = json_pack("{s:O, s:O, s:O}", "id", json_object_get(ex, "id"), "text",
                              json_object_get(ex, "text"), "clause", json_object_get(ex, "clause"));
        if (o == NULL || json_array_append_new(out, o) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Overall limit: the product's, else the policy's sum assured, else null. */
static json_t *overall_limit(const json_t *prod, const json_t *pol)
{
    json_t *l = json_object_get(prod, "limit");

    if (json_is_number(l))
        return json_incref(l);
    l = json_object_get(pol, "sum_assured");
    return json_is_number(l) ? json_incref(l) : json_null();
}

static int type_extras(json_t *r, const json_t *prod, const json_t *pol, const char *type)
{
    int rc = 0;

    if (strcmp(type, "medical") == 0 && json_object_get(prod, "hospital_rule") != NULL)
        rc = copy_or_null(r, "hospital_rule", prod, "hospital_rule");
    else if (strcmp(type, "critical_illness") == 0)
        rc = copy_or_null(r, "sum_assured", pol, "sum_assured");
    else if (strcmp(type, "motor") == 0) {
        if ((rc = copy_or_null(r, "plate", pol, "plate")) == 0 &&
            (rc = copy_or_null(r, "compulsory_limits", prod, "compulsory_limits")) == 0)
            rc = copy_or_null(r, "liability_shares", prod, "liability_shares");
    }
    return rc;
}

static json_t *build(const tools_data_t *d, const json_t *pol, const json_t *prod)
{
    static const char *const FROM_POLICY[] = {"policy_no",      "status",   "holder",
                                              "start_date",     "end_date", "social_insurance",
                                              "deductible_used"};
    static const char *const FROM_PRODUCT[] = {"deductible", "ratio_with_social",
                                               "ratio_without_social", "waiting_period_days"};
    const char *type = json_string_value(json_object_get(prod, "type"));
    json_t *r = json_object();
    bool ok = r != NULL;

    for (size_t i = 0; ok && i < sizeof(FROM_POLICY) / sizeof(FROM_POLICY[0]); i++)
        ok = copy_or_null(r, FROM_POLICY[i], pol, FROM_POLICY[i]) == 0;
    ok = ok && json_object_set_new(r, "product",
                                   json_pack("{s:O, s:O, s:O}", "id", json_object_get(prod, "id"),
                                             "name", json_object_get(prod, "name"), "type",
                                             json_object_get(prod, "type"))) == 0;
    for (size_t i = 0; ok && i < sizeof(FROM_PRODUCT) / sizeof(FROM_PRODUCT[0]); i++)
        ok = copy_or_null(r, FROM_PRODUCT[i], prod, FROM_PRODUCT[i]) == 0;
    ok = ok && json_object_set_new(r, "limit", overall_limit(prod, pol)) == 0;
    /* limit_used: the policy's; 0 when the policy has a limit but no usage recorded. */
    if (ok && json_object_get(pol, "limit_used") != NULL)
        ok = copy_or_null(r, "limit_used", pol, "limit_used") == 0;
    else if (ok)
        ok = json_object_set_new(r, "limit_used",
                                 json_is_null(json_object_get(r, "limit")) ? json_null()
                                                                           : json_integer(0)) == 0;
    ok = ok && json_object_set_new(r, "coverages", coverages(prod, pol)) == 0;
    ok = ok && json_object_set_new(r, "exclusions", exclusions(prod)) == 0;
    ok = ok && copy_or_null(r, "clauses", prod, "clauses") == 0;
    ok = ok && type_extras(r, prod, pol, type) == 0;
    if (ok && tools_data_as_of(d)[0] != '\0')
        ok = json_object_set_new(r, "as_of", json_string(tools_data_as_of(d))) == 0;
    if (!ok) {
        json_decref(r);
        return NULL;
    }
    return r;
}

int tools_policy_lookup(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                        size_t err_size)
{
    const json_t *no = json_object_get(args, "policy_no");
    const json_t *pol, *prod;

    *result = NULL;
    if (!json_is_string(no))
        return tools_fail(err, err_size, MESH_EBADARGS, "$.policy_no: must be a string");
    pol = tools_data_policy(d, json_string_value(no));
    if (pol == NULL)
        return tools_fail(err, err_size, MESH_ENOTFOUND, "policy %s not found",
                          json_string_value(no));
    prod = tools_data_product(d, json_string_value(json_object_get(pol, "product_id")));
    if (prod == NULL) /* validated at load: the data set is inconsistent */
        return tools_fail(err, err_size, MESH_ETOOL, "policy %s: product missing",
                          json_string_value(no));
    *result = build(d, pol, prod);
    return *result != NULL ? 0 : MESH_ENOMEM;
}
