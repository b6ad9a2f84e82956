/*
 * tools_data_products.c - check one product file (data/products/<id>.json).
 *
 * Required: id (= file name), type (medical | critical_illness | motor),
 * name {zh, en}, period_years, waiting_period_days, deductible,
 * ratio_with_social, ratio_without_social, limit (numbers, or null where the
 * product type has no such term; a medical product must have all four),
 * clauses {<id>: {zh, en}}, coverages [{id, name, limit, clause}] and
 * exclusions [{id, text, clause}] whose clause ids exist in clauses. A
 * coverage limit of null means "set per policy" (policies.json cover_limits).
 * A motor product also needs the terms of check_motor() below.
 */
#include <string.h>

#include "mesh/mesh_err.h"
#include "tools_data_int.h"

#define PERIOD_YEARS_MAX 100
#define WAITING_DAYS_MAX 3650
#define CLAUSE_ID_MAX    16
#define COVERAGES_MAX    64
#define EXCLUSIONS_MAX   256

static const char *const PRODUCT_TYPES[] = {"medical", "critical_illness", "motor"};

/*
 * Motor terms fee.calc's motor mode reads: compulsory_limits {with_liability,
 * without_liability: {death_disability, medical, property}, clause},
 * liability_shares {full, major, equal, minor, none: ratio, clause?} and the
 * optional liability_deductible_rates {full, major, equal, minor: ratio}
 * (pre-2020 事故责任免赔率; absent for post-reform products).
 */
static const char *const MOTOR_HEADS[] = {"death_disability", "medical", "property"};
static const char *const LIABILITY_KEYS[] = {"full", "major", "equal", "minor", "none"};

static int check_motor(tools_check_t *c, const json_t *p)
{
    static const char *const BASES[] = {"with_liability", "without_liability"};
    const json_t *cl = json_object_get(p, "compulsory_limits");
    const json_t *shares = json_object_get(p, "liability_shares");
    const json_t *rates = json_object_get(p, "liability_deductible_rates");
    int rc = 0;

    if (cl == NULL || !json_is_object(cl))
        return tools_check_fail(c, "compulsory_limits", "a motor product needs an object");
    for (size_t b = 0; b < 2 && rc == 0; b++) {
        const json_t *lim = json_object_get(cl, BASES[b]);
        tools_check_at(c, "compulsory_limits");
        if (lim == NULL || !json_is_object(lim)) {
            rc = tools_check_fail(c, BASES[b],
                                  "must be an object {death_disability, medical, property}");
            break;
        }
        tools_check_at(c, "compulsory_limits.%s", BASES[b]);
        for (size_t h = 0; h < 3 && rc == 0; h++)
            rc = tools_check_num(c, lim, MOTOR_HEADS[h], false, 0, TOOLS_AMOUNT_MAX, NULL);
    }
    if (rc == 0) {
        tools_check_at(c, "compulsory_limits");
        const char *id = NULL;
        rc = tools_check_str(c, cl, "clause", true, TOOLS_SHORT_MAX, &id);
        if (rc == 0 && json_object_get(json_object_get(p, "clauses"), id) == NULL)
            rc = tools_check_fail(c, "clause", "unknown clause '%s'", id);
    }
    tools_check_at(c, "%s", "");
    if (rc != 0)
        return rc;
    if (shares == NULL || !json_is_object(shares))
        return tools_check_fail(c, "liability_shares", "a motor product needs an object");
    tools_check_at(c, "liability_shares");
    for (size_t i = 0; i < 5 && rc == 0; i++)
        rc = tools_check_num(c, shares, LIABILITY_KEYS[i], false, 0, 1, NULL);
    tools_check_at(c, "%s", "");
    if (rc != 0 || rates == NULL)
        return rc;
    if (!json_is_object(rates))
        return tools_check_fail(c, "liability_deductible_rates",
                                "must be an object {full, major, equal, minor}");
    tools_check_at(c, "liability_deductible_rates");
    for (size_t i = 0; i < 4 && rc == 0; i++)
        rc = tools_check_num(c, rates, LIABILITY_KEYS[i], false, 0, 1, NULL);
    tools_check_at(c, "%s", "");
    return rc;
}

static int check_type(tools_check_t *c, const json_t *p, bool *medical)
{
    const char *type = NULL;
    int rc = tools_check_str(c, p, "type", true, TOOLS_SHORT_MAX, &type);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < sizeof(PRODUCT_TYPES) / sizeof(PRODUCT_TYPES[0]); i++) {
        if (strcmp(type, PRODUCT_TYPES[i]) == 0) {
            *medical = i == 0;
            return 0;
        }
    }
    return tools_check_fail(c, "type", "'%s' is not one of medical, critical_illness, motor", type);
}

static int check_clauses(tools_check_t *c, const json_t *p)
{
    const json_t *cl = json_object_get(p, "clauses");
    const char *k;
    const json_t *v;
    int rc;

    if (cl == NULL)
        return tools_check_fail(c, "clauses", "is required");
    if (!json_is_object(cl) || json_object_size(cl) == 0)
        return tools_check_fail(c, "clauses", "must be a non-empty object {<clause id>: {zh, en}}");
    json_object_foreach((json_t *)cl, k, v)
    {
        if (strlen(k) == 0 || strlen(k) > CLAUSE_ID_MAX)
            return tools_check_fail(c, "clauses", "clause id '%s' must be 1..%d bytes", k,
                                    CLAUSE_ID_MAX);
        tools_check_at(c, "clauses");
        rc = tools_check_text(c, cl, k, TOOLS_TEXT_MAX);
        tools_check_at(c, "%s", "");
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The "clause" key of item must name an existing clause. */
static int check_clause_ref(tools_check_t *c, const json_t *item, const json_t *clauses)
{
    const char *id = NULL;
    int rc = tools_check_str(c, item, "clause", true, CLAUSE_ID_MAX, &id);

    if (rc != 0)
        return rc;
    if (json_object_get(clauses, id) == NULL)
        return tools_check_fail(c, "clause", "unknown clause '%s'", id);
    return 0;
}

/* coverages or exclusions: an array of {id, <text_key> {zh,en}, clause[, limit]}. */
static int check_items(tools_check_t *c, const json_t *p, const char *key, const char *text_key,
                       bool with_limit, size_t max)
{
    const json_t *arr = json_object_get(p, key);
    const json_t *clauses = json_object_get(p, "clauses");
    json_t *seen = NULL;
    size_t i;
    const json_t *it;
    int rc = 0;

    if (arr == NULL)
        return tools_check_fail(c, key, "is required");
    if (!json_is_array(arr) || json_array_size(arr) > max ||
        (with_limit && json_array_size(arr) == 0)) {
        if (with_limit)
            return tools_check_fail(c, key, "must be an array of 1..%zu items", max);
        return tools_check_fail(c, key, "must be an array of at most %zu items", max);
    }
    seen = json_object();
    if (seen == NULL)
        return MESH_ENOMEM;
    json_array_foreach(arr, i, it)
    {
        const char *id = NULL;

        tools_check_at(c, "%s[%zu]", key, i);
        if ((rc = tools_check_object(c, it, NULL)) != 0 ||
            (rc = tools_check_str(c, it, "id", true, TOOLS_SHORT_MAX, &id)) != 0)
            break;
        if (json_object_get(seen, id) != NULL) {
            rc = tools_check_fail(c, "id", "duplicate id '%s'", id);
            break;
        }
        json_object_set_new(seen, id, json_true());
        if ((rc = tools_check_text(c, it, text_key, TOOLS_TEXT_MAX)) != 0 ||
            (rc = check_clause_ref(c, it, clauses)) != 0)
            break;
        if (with_limit &&
            (rc = tools_check_num(c, it, "limit", true, 0, TOOLS_AMOUNT_MAX, NULL)) != 0)
            break;
    }
    tools_check_at(c, "%s", "");
    json_decref(seen);
    return rc;
}

static int check_terms(tools_check_t *c, const json_t *p, bool medical)
{
    static const struct {
        const char *key;
        double max;
    } TERMS[] = {
        {"deductible", TOOLS_AMOUNT_MAX},
        {"ratio_with_social", 1.0},
        {"ratio_without_social", 1.0},
        {"limit", TOOLS_AMOUNT_MAX},
    };
    int rc;

    for (size_t i = 0; i < sizeof(TERMS) / sizeof(TERMS[0]); i++) {
        const json_t *v = NULL;
        if ((rc = tools_check_num(c, p, TERMS[i].key, true, 0, TERMS[i].max, &v)) != 0)
            return rc;
        if (medical && v == NULL)
            return tools_check_fail(c, TERMS[i].key, "a medical product needs a number");
    }
    if ((rc = tools_check_int(c, p, "period_years", 1, PERIOD_YEARS_MAX, NULL)) != 0)
        return rc;
    return tools_check_int(c, p, "waiting_period_days", 0, WAITING_DAYS_MAX, NULL);
}

int tools_data_check_product(tools_check_t *c, const json_t *p, const char *file_id)
{
    const char *id = NULL;
    bool medical = false;
    int rc;

    tools_check_at(c, "%s", "");
    if ((rc = tools_check_object(c, p, NULL)) != 0)
        return rc;
    if ((rc = tools_check_str(c, p, "id", true, TOOLS_SHORT_MAX, &id)) != 0)
        return rc;
    if (strcmp(id, file_id) != 0)
        return tools_check_fail(c, "id", "'%s' does not match the file name '%s.json'", id,
                                file_id);
    if ((rc = check_type(c, p, &medical)) != 0 ||
        (rc = tools_check_text(c, p, "name", TOOLS_SHORT_MAX)) != 0 ||
        (rc = check_terms(c, p, medical)) != 0 || (rc = check_clauses(c, p)) != 0 ||
        (rc = check_items(c, p, "coverages", "name", true, COVERAGES_MAX)) != 0 ||
        (rc = check_items(c, p, "exclusions", "text", false, EXCLUSIONS_MAX)) != 0)
        return rc;
    if (strcmp(json_string_value(json_object_get(p, "type")), "motor") == 0)
        return check_motor(c, p);
    return 0;
}
