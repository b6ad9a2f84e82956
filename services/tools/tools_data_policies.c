/*
 * tools_data_policies.c - check policies.json and index it by policy number.
 *
 * {"as_of": "YYYY-MM-DD"?, "policies": [policy...]} where a policy is
 *   policy_no ^P[0-9]{5}$ (unique), product_id (a loaded product), status
 *   (active | lapsed | expired), holder (masked name), start_date <= end_date,
 *   social_insurance (bool);
 *   medical: deductible_used <= product deductible, limit_used <= product limit;
 *   critical_illness: sum_assured > 0; motor: plate;
 *   cover_limits {<coverage id>: number} for exactly the product coverages
 *   whose limit is set per policy (limit null in the product).
 */
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "tools_data_int.h"

#define POLICY_NO_LEN 6 /* "P" + five digits */
#define HOLDER_MAX    32

static const char *const STATUSES[] = {"active", "lapsed", "expired"};

static bool policy_no_valid(const char *s)
{
    if (strlen(s) != POLICY_NO_LEN || s[0] != 'P')
        return false;
    for (int i = 1; i < POLICY_NO_LEN; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

static int check_status(tools_check_t *c, const json_t *p)
{
    const char *s = NULL;
    int rc = tools_check_str(c, p, "status", true, TOOLS_SHORT_MAX, &s);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < sizeof(STATUSES) / sizeof(STATUSES[0]); i++) {
        if (strcmp(s, STATUSES[i]) == 0)
            return 0;
    }
    return tools_check_fail(c, "status", "'%s' is not one of active, lapsed, expired", s);
}

static int check_dates(tools_check_t *c, const json_t *p)
{
    const char *start = NULL, *end = NULL;
    int rc;

    if ((rc = tools_check_date(c, p, "start_date", &start)) != 0 ||
        (rc = tools_check_date(c, p, "end_date", &end)) != 0)
        return rc;
    if (strcmp(start, end) > 0)
        return tools_check_fail(c, "end_date", "%s is before start_date %s", end, start);
    return 0;
}

/* An optional amount in [0, max]. */
static int check_opt_amount(tools_check_t *c, const json_t *p, const char *key, double max)
{
    if (json_object_get(p, key) == NULL)
        return 0;
    return tools_check_num(c, p, key, false, 0, max, NULL);
}

static int check_usage(tools_check_t *c, const json_t *p, const json_t *product, bool medical)
{
    int rc;

    if (!medical) {
        if ((rc = check_opt_amount(c, p, "deductible_used", TOOLS_AMOUNT_MAX)) != 0)
            return rc;
        return check_opt_amount(c, p, "limit_used", TOOLS_AMOUNT_MAX);
    }
    double ded = json_number_value(json_object_get(product, "deductible"));
    double lim = json_number_value(json_object_get(product, "limit"));
    if ((rc = tools_check_num(c, p, "deductible_used", false, 0, ded, NULL)) != 0)
        return rc;
    return tools_check_num(c, p, "limit_used", false, 0, lim, NULL);
}

static int check_cover_limits(tools_check_t *c, const json_t *p, const json_t *product)
{
    const json_t *covs = json_object_get(product, "coverages");
    const json_t *cl = json_object_get(p, "cover_limits");
    const char *pid = json_string_value(json_object_get(product, "id"));
    char saved[TOOLS_CHECK_PATH_MAX];
    size_t i, needed = 0;
    const json_t *cov;
    int rc = 0;

    if (cl != NULL && !json_is_object(cl))
        return tools_check_fail(c, "cover_limits", "must be an object {<coverage id>: number}");
    memcpy(saved, c->path, sizeof(saved));
    json_array_foreach(covs, i, cov)
    {
        if (!json_is_null(json_object_get(cov, "limit")))
            continue;
        const char *id = json_string_value(json_object_get(cov, "id"));
        needed++;
        if (cl == NULL || json_object_get(cl, id) == NULL) {
            tools_check_at(c, "%s.cover_limits", saved);
            rc = tools_check_fail(c, id, "required by product %s (limit set per policy)", pid);
            break;
        }
        tools_check_at(c, "%s.cover_limits", saved);
        rc = tools_check_num(c, cl, id, false, 0, TOOLS_AMOUNT_MAX, NULL);
        tools_check_at(c, "%s", saved);
        if (rc != 0)
            break;
    }
    memcpy(c->path, saved, sizeof(saved));
    if (rc == 0 && cl != NULL && json_object_size(cl) != needed) {
        /* a key that is not a per-policy coverage of this product */
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)cl, k, v)
        {
            bool known = false;
            json_array_foreach(covs, i, cov)
            {
                if (strcmp(json_string_value(json_object_get(cov, "id")), k) == 0 &&
                    json_is_null(json_object_get(cov, "limit")))
                    known = true;
            }
            if (!known) {
                tools_check_at(c, "%s.cover_limits", saved);
                rc = tools_check_fail(c, k, "not a per-policy coverage of product %s", pid);
                memcpy(c->path, saved, sizeof(saved));
                break;
            }
        }
    }
    return rc;
}

static int check_by_type(tools_check_t *c, const json_t *p, const json_t *product)
{
    const char *type = json_string_value(json_object_get(product, "type"));
    int rc;

    if ((rc = check_usage(c, p, product, strcmp(type, "medical") == 0)) != 0)
        return rc;
    if (strcmp(type, "critical_illness") == 0 &&
        (rc = tools_check_num(c, p, "sum_assured", false, 1, TOOLS_AMOUNT_MAX, NULL)) != 0)
        return rc;
    if (strcmp(type, "motor") == 0 &&
        (rc = tools_check_str(c, p, "plate", true, TOOLS_SHORT_MAX, NULL)) != 0)
        return rc;
    return check_cover_limits(c, p, product);
}

static int check_one(tools_check_t *c, const json_t *p, tools_data_t *d)
{
    const char *no = NULL, *pid = NULL;
    const json_t *product;
    int rc;

    if ((rc = tools_check_object(c, p, NULL)) != 0)
        return rc;
    if ((rc = tools_check_str(c, p, "policy_no", true, POLICY_NO_LEN, &no)) != 0)
        return rc;
    if (!policy_no_valid(no))
        return tools_check_fail(c, "policy_no", "'%s' must be P followed by five digits", no);
    if (json_object_get(d->policies, no) != NULL)
        return tools_check_fail(c, "policy_no", "duplicate policy number '%s'", no);
    if ((rc = tools_check_str(c, p, "product_id", true, TOOLS_SHORT_MAX, &pid)) != 0)
        return rc;
    product = json_object_get(d->products, pid);
    if (product == NULL)
        return tools_check_fail(c, "product_id", "unknown product '%s'", pid);
    if ((rc = check_status(c, p)) != 0 ||
        (rc = tools_check_str(c, p, "holder", true, HOLDER_MAX, NULL)) != 0 ||
        (rc = check_dates(c, p)) != 0 ||
        (rc = tools_check_bool(c, p, "social_insurance", NULL)) != 0 ||
        (rc = check_by_type(c, p, product)) != 0)
        return rc;
    if (json_object_set(d->policies, no, (json_t *)p) != 0)
        return MESH_ENOMEM;
    return 0;
}

int tools_data_check_policies(tools_check_t *c, json_t *root, tools_data_t *d)
{
    const json_t *arr;
    const char *as_of = NULL;
    size_t i;
    json_t *p;
    int rc;

    tools_check_at(c, "%s", "");
    if ((rc = tools_check_object(c, root, NULL)) != 0)
        return rc;
    if (json_object_get(root, "as_of") != NULL &&
        (rc = tools_check_date(c, root, "as_of", &as_of)) != 0)
        return rc;
    snprintf(d->as_of, sizeof(d->as_of), "%s", as_of ? as_of : "");
    arr = json_object_get(root, "policies");
    if (arr == NULL)
        return tools_check_fail(c, "policies", "is required");
    if (!json_is_array(arr) || json_array_size(arr) > TOOLS_POLICIES_MAX)
        return tools_check_fail(c, "policies", "must be an array of at most %d policies",
                                TOOLS_POLICIES_MAX);
    json_array_foreach(arr, i, p)
    {
        tools_check_at(c, "policies[%zu]", i);
        if ((rc = check_one(c, p, d)) != 0)
            return rc;
    }
    return 0;
}
