/*
 * rules_review_decide.c - the per-line decisions of a health claim review.
 *
 * Policy-level checks first, because they decide every line the same way:
 *   1. admission outside [start_date, end_date]      -> refused (period clause)
 *   2. illness (not accident) in the waiting period   -> refused (waiting clause)
 *      the illness date is onset_date when given, else admission_date; day d
 *      is in the waiting period when 0 <= d - start_date < waiting_period_days
 *   3. pre-existing condition (declared, or onset before the policy started)
 *                                                     -> refused (exclusion clause)
 *   4. lapsed policy, admission within the term       -> pending: a person checks
 *      when it lapsed
 * Then per line, from the catalogue only (never from the item's wording):
 *   5. no catalogue result                            -> pending
 *   6. match "none"                                   -> pending (unknown item)
 *   7. an exclusion class of the item is one of the policy's exclusion ids
 *                                                     -> refused (that exclusion's clause)
 *   8. otherwise                                      -> payable
 */
#include <stdio.h>
#include <string.h>

#include "rules_review.h"

static const char *str_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* The id of the clause whose text starts with one of the prefixes, else fallback if present. */
static const char *find_clause(const json_t *policy, const char *zh_prefix, const char *en_prefix,
                               const char *fallback)
{
    const json_t *clauses = json_object_get(policy, "clauses");
    const char *id;
    const json_t *c;
    json_object_foreach((json_t *)clauses, id, c)
    {
        const char *zh = str_of(c, "zh"), *en = str_of(c, "en");
        if (strncmp(zh, zh_prefix, strlen(zh_prefix)) == 0 ||
            strncmp(en, en_prefix, strlen(en_prefix)) == 0)
            return id;
    }
    if (json_object_get(clauses, fallback) != NULL)
        return fallback;
    return NULL;
}

/* The policy's exclusion with this id, or NULL. */
static const json_t *find_exclusion(const json_t *policy, const char *id)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(policy, "exclusions"), i, e)
    {
        if (strcmp(str_of(e, "id"), id) == 0)
            return e;
    }
    return NULL;
}

/* "YYYY-MM-DD" of days since 1970-01-01. */
static void civil_from_days(long z, char out[REVIEW_DATE_LEN + 1])
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long y = yoe + era * 400;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    long d = doy - (153 * mp + 2) / 5 + 1;
    long m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 0 || y > 9999) { /* out of any policy's range: no date */
        out[0] = '\0';
        return;
    }
    char buf[32];
    snprintf(buf, sizeof(buf), "%04d-%02d-%02d", (int)y, (int)m, (int)d);
    memcpy(out, buf, REVIEW_DATE_LEN);
    out[REVIEW_DATE_LEN] = '\0';
}

void review_policy_read(const json_t *policy, const review_claim_t *c, review_policy_t *p)
{
    memset(p, 0, sizeof(*p));
    p->policy = policy;
    p->status = str_of(policy, "status");
    p->start_date = str_of(policy, "start_date");
    p->end_date = str_of(policy, "end_date");
    const json_t *product = json_object_get(policy, "product");
    p->medical = strcmp(str_of(product, "type"), "medical") == 0;
    const json_t *w = json_object_get(policy, "waiting_period_days");
    p->waiting_days = json_is_integer(w) ? (long)json_integer_value(w) : -1;
    p->clause_period = find_clause(policy, "保险期间", "The period of insurance", "1.2");
    p->clause_waiting = find_clause(policy, "等待期", "Waiting period", "2.4");
    p->clause_ratio = find_clause(policy, "免赔额", "Deductible", "2.3");
    const json_t *e = find_exclusion(policy, "pre_existing");
    p->clause_pre_existing = e ? str_of(e, "clause") : NULL;
    e = find_exclusion(policy, "waiting_period_illness");
    p->clause_waiting_excl = e ? str_of(e, "clause") : NULL;

    long start = review_date_days(p->start_date), end = review_date_days(p->end_date);
    long adm = review_date_days(c->admission);
    p->in_force = start >= 0 && end >= 0 && adm >= start && adm <= end;
    p->lapsed = p->in_force && strcmp(p->status, "lapsed") == 0;

    p->illness_date = c->onset[0] ? c->onset : c->admission;
    long ill = review_date_days(p->illness_date);
    p->days_into_policy = (start >= 0 && ill >= 0) ? ill - start : -1;
    if (start >= 0 && p->waiting_days > 0)
        civil_from_days(start + p->waiting_days - 1, p->waiting_end);
    p->in_waiting = p->in_force && c->accident != REVIEW_YES && p->waiting_days > 0 &&
                    p->days_into_policy >= 0 && p->days_into_policy < p->waiting_days;
    /* An illness that began before the policy started is pre-existing by definition
     * (exclusion pre_existing: "illness the insured had before the policy started"). */
    bool onset_before = c->onset[0] && start >= 0 && review_date_days(c->onset) >= 0 &&
                        review_date_days(c->onset) < start;
    p->pre_existing = c->pre_existing == REVIEW_YES || onset_before;
}

/* The medical.lookup entry answering item (by its query), or NULL. */
static const json_t *cat_entry(const json_t *items, const char *item)
{
    size_t i;
    const json_t *e;
    json_array_foreach(items, i, e)
    {
        if (strcmp(str_of(e, "query"), item) == 0)
            return e;
    }
    return NULL;
}

static void read_cat(const json_t *e, review_cat_t *cat)
{
    memset(cat, 0, sizeof(*cat));
    if (e == NULL)
        return;
    cat->match = str_of(e, "match");
    cat->code = str_of(e, "code");
    cat->name = str_of(e, "name");
    cat->class_id = str_of(e, "class");
    cat->category = str_of(e, "category");
    const json_t *cn = json_object_get(e, "class_name");
    cat->class_name = json_is_object(cn) || json_is_string(cn) ? cn : NULL;
}

void review_decide(const review_claim_t *c, const review_policy_t *p, const json_t *items,
                   review_line_decision_t *d)
{
    for (size_t i = 0; i < c->n_lines; i++) {
        review_line_decision_t *x = &d[i];
        memset(x, 0, sizeof(*x));
        const json_t *e = json_is_array(items) ? cat_entry(items, c->lines[i].item) : NULL;
        read_cat(e, &x->cat);
        x->verdict = REVIEW_REFUSED;
        if (!p->in_force) {
            x->why = REVIEW_WHY_NOT_IN_FORCE;
        } else if (p->in_waiting) {
            x->why = REVIEW_WHY_WAITING;
        } else if (p->pre_existing) {
            x->why = REVIEW_WHY_PRE_EXISTING;
        } else if (p->lapsed) {
            x->verdict = REVIEW_PENDING;
            x->why = REVIEW_WHY_LAPSED;
        } else if (e == NULL) {
            x->verdict = REVIEW_PENDING;
            x->why = REVIEW_WHY_NO_CATALOGUE;
        } else if (strcmp(x->cat.match, "exact") != 0 && strcmp(x->cat.match, "alias") != 0) {
            x->verdict = REVIEW_PENDING;
            x->why = REVIEW_WHY_UNKNOWN_ITEM;
        } else {
            /* The decision is the catalogue's: an exclusion class of the item that is an
             * exclusion id of this policy. */
            size_t k;
            const json_t *cls;
            json_array_foreach(json_object_get(e, "exclusion_classes"), k, cls)
            {
                if (!json_is_string(cls))
                    continue;
                const json_t *ex = find_exclusion(p->policy, json_string_value(cls));
                if (ex != NULL) {
                    x->exclusion = ex;
                    break;
                }
            }
            if (x->exclusion != NULL) {
                x->why = REVIEW_WHY_EXCLUDED;
            } else {
                x->verdict = REVIEW_PAYABLE;
                x->why = REVIEW_WHY_NONE;
            }
        }
    }
}

void review_settle(const review_claim_t *c, const json_t *fee, bool ok, review_line_decision_t *d)
{
    const json_t *lines = ok ? json_object_get(fee, "lines") : NULL;
    size_t k = 0;
    for (size_t i = 0; i < c->n_lines; i++) {
        review_line_decision_t *x = &d[i];
        if (x->verdict != REVIEW_PAYABLE)
            continue;
        const json_t *fl = json_array_get(lines, k++);
        int64_t ded = review_json_fen(json_object_get(fl, "deductible_applied"));
        int64_t pay = review_json_fen(json_object_get(fl, "payable"));
        const json_t *r = json_object_get(fl, "ratio");
        if (!json_is_object(fl) || ded < 0 || pay < 0 || !json_is_number(r)) {
            x->verdict = REVIEW_PENDING;
            x->why = REVIEW_WHY_SETTLEMENT_FAILED;
            continue;
        }
        x->settled = true;
        x->deductible_fen = ded;
        x->payable_fen = pay;
        x->ratio = json_number_value(r);
    }
}

const char *review_status(const review_claim_t *c, const review_line_decision_t *d)
{
    size_t pay = 0, ref = 0, pend = 0;
    for (size_t i = 0; i < c->n_lines; i++) {
        if (d[i].verdict == REVIEW_PAYABLE)
            pay++;
        else if (d[i].verdict == REVIEW_REFUSED)
            ref++;
        else
            pend++;
    }
    if (pend > 0)
        return "pending";
    if (pay == 0)
        return "refused";
    return ref > 0 ? "partial" : "approved";
}
