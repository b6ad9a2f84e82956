/*
 * tool_motor.c - fee.calc with mode "motor": arguments and the motor policy's
 * terms -> tools_motor_compute() -> an itemised estimate (tools_motor.h).
 *
 * The policy must exist (not_found), be a motor policy and be active
 * (tool_failed). Terms: the product's compulsory_limits (with / without
 * liability), liability_shares, optional liability_deductible_rates (legacy
 * products), and the policy's cover_limits third_party and vehicle_damage.
 * Result: {estimate: true, mode, policy_no, liability, liability_zh, share,
 * compulsory_limits {death_disability, medical, property, basis},
 * compulsory_limits_table {with_liability, without_liability},
 * third_party_limit, vehicle_damage_limit, other_party_insured,
 * lines [{item, item_name {zh, en}, amount, covered_by, payable, rule, rule_zh,
 * clause}], total_payable, total_other_party, currency, note {zh, en}}.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "tools_feecalc.h"
#include "tools_money.h"
#include "tools_motor.h"
#include "tools_tool.h"

/* Liability as the model or the customer says it -> the product's liability_shares key. */
static const struct {
    const char *id, *zh, *zh_long;
} LIABILITIES[] = {
    {"full", "全责", "全部责任"},  {"major", "主责", "主要责任"}, {"equal", "同责", "同等责任"},
    {"minor", "次责", "次要责任"}, {"none", "无责", "无责任"},
};

static const struct {
    const char *arg, *item, *zh, *en, *limit_key;
} HEADS[TOOLS_MOTOR_HEADS] = {
    {"third_party_death_disability", "third_party_death_disability", "第三者死亡伤残",
     "third-party death and disability", "death_disability"},
    {"third_party_medical", "third_party_medical", "第三者医疗费用", "third-party medical costs",
     "medical"},
    {"third_party_property", "third_party_property", "第三者财产损失",
     "third-party property damage", "property"},
};

typedef struct {
    char *err;
    size_t err_size;
} call_t;

static int liability_index(const char *s)
{
    for (size_t i = 0; i < sizeof(LIABILITIES) / sizeof(LIABILITIES[0]); i++) {
        if (strcmp(s, LIABILITIES[i].id) == 0 || strcmp(s, LIABILITIES[i].zh) == 0 ||
            strcmp(s, LIABILITIES[i].zh_long) == 0)
            return (int)i;
    }
    return -1;
}

/* An optional CNY amount argument (default 0). */
static int amount_arg(call_t *c, const json_t *args, const char *key, int64_t *fen)
{
    const json_t *v = json_object_get(args, key);

    *fen = 0;
    if (v == NULL)
        return 0;
    if (tools_money_from_json(v, fen) != 0)
        return tools_fail(c->err, c->err_size, MESH_EBADARGS,
                          "$.%s: must be a number between 0 and %.0f", key, TOOLS_CNY_MAX);
    return 0;
}

/* fen from a validated data value; MESH_ETOOL (data inconsistent) when absent. */
static int data_amount(call_t *c, const json_t *v, const char *what, int64_t *fen)
{
    if (tools_money_from_json(v, fen) != 0)
        return tools_fail(c->err, c->err_size, MESH_ETOOL, "motor terms incomplete: %s", what);
    return 0;
}

static int product_terms(call_t *c, const json_t *prod, const json_t *pol, int li,
                         tools_motor_in_t *in)
{
    const json_t *cl = json_object_get(prod, "compulsory_limits");
    const json_t *with = json_object_get(cl, "with_liability");
    const json_t *without = json_object_get(cl, "without_liability");
    const json_t *rates = json_object_get(prod, "liability_deductible_rates");
    const json_t *covers = json_object_get(pol, "cover_limits");
    int rc;

    for (int h = 0; h < TOOLS_MOTOR_HEADS; h++) {
        if ((rc = data_amount(c, json_object_get(with, HEADS[h].limit_key),
                              "compulsory_limits.with_liability", &in->with_limits[h])) != 0 ||
            (rc = data_amount(c, json_object_get(without, HEADS[h].limit_key),
                              "compulsory_limits.without_liability", &in->without_limits[h])) != 0)
            return rc;
    }
    if (tools_ratio_from_json(
            json_object_get(json_object_get(prod, "liability_shares"), LIABILITIES[li].id),
            &in->share_ppm) != 0)
        return tools_fail(c->err, c->err_size, MESH_ETOOL,
                          "motor terms incomplete: liability_shares.%s", LIABILITIES[li].id);
    in->deductible_ppm = 0;
    if (rates != NULL && json_object_get(rates, LIABILITIES[li].id) != NULL &&
        tools_ratio_from_json(json_object_get(rates, LIABILITIES[li].id), &in->deductible_ppm) != 0)
        return tools_fail(c->err, c->err_size, MESH_ETOOL,
                          "motor terms incomplete: liability_deductible_rates");
    if ((rc = data_amount(c, json_object_get(covers, "third_party"), "cover_limits.third_party",
                          &in->third_party_limit)) != 0 ||
        (rc = data_amount(c, json_object_get(covers, "vehicle_damage"),
                          "cover_limits.vehicle_damage", &in->vehicle_damage_limit)) != 0)
        return rc;
    in->at_fault = strcmp(LIABILITIES[li].id, "none") != 0;
    in->fully_liable = strcmp(LIABILITIES[li].id, "full") == 0;
    return 0;
}

static const char *coverage_clause(const json_t *prod, const char *id, const char *def)
{
    size_t i;
    const json_t *cov;

    json_array_foreach(json_object_get(prod, "coverages"), i, cov)
    {
        if (strcmp(json_string_value(json_object_get(cov, "id")), id) == 0)
            return json_string_value(json_object_get(cov, "clause"));
    }
    return def;
}

/* json_object_set_new that remembers the first failure. */
static void put(json_t *o, const char *k, json_t *v, bool *ok)
{
    if (v == NULL || json_object_set_new(o, k, v) != 0)
        *ok = false;
}

static void add_line(json_t *lines, const char *item, const char *zh, const char *en,
                     int64_t amount, const char *covered_by, int64_t payable, const char *rule_en,
                     const char *rule_zh, const char *clause, bool *ok)
{
    json_t *l = json_object();

    if (l == NULL) {
        *ok = false;
        return;
    }
    put(l, "item", json_string(item), ok);
    put(l, "item_name", json_pack("{s:s, s:s}", "zh", zh, "en", en), ok);
    put(l, "amount", tools_money_to_json(amount), ok);
    put(l, "covered_by", json_string(covered_by), ok);
    put(l, "payable", tools_money_to_json(payable), ok);
    put(l, "rule", json_string(rule_en), ok);
    put(l, "rule_zh", json_string(rule_zh), ok);
    put(l, "clause", json_string(clause), ok);
    if (json_array_append_new(lines, l) != 0)
        *ok = false;
}

static json_t *limits_json(const int64_t lim[TOOLS_MOTOR_HEADS])
{
    return json_pack("{s:o, s:o, s:o}", "death_disability",
                     tools_money_to_json(lim[TOOLS_MOTOR_DEATH]), "medical",
                     tools_money_to_json(lim[TOOLS_MOTOR_MEDICAL]), "property",
                     tools_money_to_json(lim[TOOLS_MOTOR_PROPERTY]));
}

/* The third-party lines: own 交强险 per head, then 三者险. */
static void third_party_lines(json_t *lines, const tools_motor_in_t *in, const tools_motor_out_t *o,
                              const char *comp_clause, const char *tp_clause, bool *ok)
{
    char en[TOOLS_FEE_RULE_MAX], zh[TOOLS_FEE_RULE_MAX];
    char a[TOOLS_MONEY_TEXT], b[TOOLS_MONEY_TEXT], p[TOOLS_MONEY_TEXT], s[TOOLS_MONEY_TEXT];
    char x[TOOLS_MONEY_TEXT], lim[TOOLS_MONEY_TEXT], d[TOOLS_MONEY_TEXT];
    const char *basis_en = in->at_fault ? "with liability" : "no liability";
    const char *basis_zh = in->at_fault ? "有责" : "无责";

    for (int h = 0; h < TOOLS_MOTOR_HEADS; h++) {
        if (in->loss[h] == 0)
            continue;
        tools_money_fmt(in->loss[h], a);
        tools_money_fmt(o->limit_used[h], b);
        tools_money_fmt(o->compulsory[h], p);
        snprintf(en, sizeof(en),
                 "compulsory insurance (交强险, %s) pays %s up to its sub-limit: min(%s, %s) = %s",
                 basis_en, HEADS[h].en, a, b, p);
        snprintf(zh, sizeof(zh), "交强险（%s）在%s分项限额内赔付：min(%s, %s) = %s", basis_zh,
                 HEADS[h].zh, a, b, p);
        add_line(lines, HEADS[h].item, HEADS[h].zh, HEADS[h].en, in->loss[h], "compulsory",
                 o->compulsory[h], en, zh, comp_clause, ok);
    }
    if (o->excess == 0)
        return;
    tools_money_fmt(o->excess, x);
    tools_ratio_fmt(in->share_ppm, s);
    tools_money_fmt(o->tp_base, b);
    tools_money_fmt(in->third_party_limit, lim);
    tools_money_fmt(o->tp_payable, p);
    tools_ratio_fmt(in->deductible_ppm, d);
    char cap_en[128] = "", cap_zh[128] = "", ded_en[128] = "", ded_zh[128] = "";
    if (o->tp_capped) {
        snprintf(cap_en, sizeof(cap_en), ", capped at the per-accident limit %s", lim);
        snprintf(cap_zh, sizeof(cap_zh), "，以每次事故赔偿限额 %s 为限", lim);
    }
    if (in->deductible_ppm > 0) {
        snprintf(ded_en, sizeof(ded_en), ", less the liability deductible %s", d);
        snprintf(ded_zh, sizeof(ded_zh), "，扣除事故责任免赔率 %s", d);
    }
    /* the result is repeated only when a cap or a deductible changed it */
    bool adjusted = o->tp_capped || in->deductible_ppm > 0;
    snprintf(en, sizeof(en),
             "third-party liability (三者险) pays the losses above the 交强险 sub-limits (%s) "
             "times the liability share %s = %s%s%s%s%s",
             x, s, b, cap_en, ded_en, adjusted ? ": " : "", adjusted ? p : "");
    snprintf(zh, sizeof(zh),
             "三者险赔付超过交强险各分项限额的部分 %s × 事故责任比例 %s = %s%s%s%s%s", x, s, b,
             cap_zh, ded_zh, adjusted ? "：" : "", adjusted ? p : "");
    add_line(lines, "third_party_excess", "超过交强险限额的第三者损失",
             "third-party losses above the compulsory sub-limits", o->excess, "third_party",
             o->tp_payable, en, zh, tp_clause, ok);
}

/* The own-vehicle lines: the other party's 交强险, 车损险, the other party's share. */
static void own_vehicle_lines(json_t *lines, const tools_motor_in_t *in, const tools_motor_out_t *o,
                              const char *comp_clause, const char *vd_clause, bool *ok)
{
    char en[TOOLS_FEE_RULE_MAX], zh[TOOLS_FEE_RULE_MAX];
    char dmg[TOOLS_MONEY_TEXT], lim[TOOLS_MONEY_TEXT], oc[TOOLS_MONEY_TEXT], r[TOOLS_MONEY_TEXT];
    char s[TOOLS_MONEY_TEXT], base[TOOLS_MONEY_TEXT], p[TOOLS_MONEY_TEXT], si[TOOLS_MONEY_TEXT];
    char d[TOOLS_MONEY_TEXT], os[TOOLS_MONEY_TEXT], rest[TOOLS_MONEY_TEXT];
    char extra_en[256] = "", extra_zh[256] = "";

    if (in->own_damage == 0)
        return;
    tools_money_fmt(in->own_damage, dmg);
    tools_money_fmt(o->other_limit, lim);
    tools_money_fmt(o->other_compulsory, oc);
    tools_money_fmt(o->own_remaining, r);
    tools_ratio_fmt(in->share_ppm, s);
    tools_money_fmt(o->vd_base, base);
    tools_money_fmt(o->vd_payable, p);
    tools_money_fmt(in->vehicle_damage_limit, si);
    tools_ratio_fmt(in->deductible_ppm, d);
    tools_money_fmt(o->other_share, os);
    tools_ratio_fmt(TOOLS_PPM - in->share_ppm, rest);
    if (in->other_party_insured) {
        const char *basis_en = in->fully_liable ? "no liability" : "with liability";
        const char *basis_zh = in->fully_liable ? "无责" : "有责";
        snprintf(en, sizeof(en),
                 "the other party's compulsory insurance (%s) pays your vehicle damage up to its "
                 "property sub-limit: min(%s, %s) = %s",
                 basis_en, dmg, lim, oc);
        snprintf(zh, sizeof(zh),
                 "对方交强险（%s）在财产损失分项限额内赔付本车损失：min(%s, %s) = %s", basis_zh,
                 dmg, lim, oc);
        add_line(lines, "own_vehicle_damage", "本车车辆损失", "own vehicle damage", in->own_damage,
                 "other_party_compulsory", o->other_compulsory, en, zh, comp_clause, ok);
    }
    if (o->vd_capped) {
        snprintf(extra_en, sizeof(extra_en), ", capped at the sum insured %s", si);
        snprintf(extra_zh, sizeof(extra_zh), "，以保险金额 %s 为限", si);
    }
    if (in->deductible_ppm > 0) {
        size_t n = strlen(extra_en), m = strlen(extra_zh);
        snprintf(extra_en + n, sizeof(extra_en) - n, ", less the liability deductible %s", d);
        snprintf(extra_zh + m, sizeof(extra_zh) - m, "，扣除事故责任免赔率 %s", d);
    }
    if (in->other_party_insured) {
        bool adjusted = extra_en[0] != '\0';
        snprintf(en, sizeof(en),
                 "own vehicle damage (车损险) pays (damage %s − other party's 交强险 %s) × your "
                 "liability share %s = %s%s%s%s",
                 dmg, oc, s, base, extra_en, adjusted ? ": " : "", adjusted ? p : "");
        snprintf(zh, sizeof(zh),
                 "车损险赔付（车损 %s − 对方交强险 %s）× 本方事故责任比例 %s = %s%s%s%s", dmg, oc,
                 s, base, extra_zh, adjusted ? "：" : "", adjusted ? p : "");
    } else {
        snprintf(en, sizeof(en),
                 "own vehicle damage (车损险) pays the damage %s in full%s: %s (the other party "
                 "has no insurance: the insurer recovers its share from it, 代位求偿)",
                 dmg, extra_en, p);
        snprintf(zh, sizeof(zh),
                 "车损险全额赔付车损 %s%s：%s（对方未投保，保险公司赔付后向对方代位求偿）", dmg,
                 extra_zh, p);
    }
    add_line(lines, "own_vehicle_damage", "本车车辆损失", "own vehicle damage",
             in->other_party_insured ? o->own_remaining : in->own_damage, "vehicle_damage",
             o->vd_payable, en, zh, vd_clause, ok);
    if (in->other_party_insured && o->other_share > 0) {
        snprintf(en, sizeof(en),
                 "the other party's insurer (its 三者险) pays its share %s of %s = %s (estimate; "
                 "claimed from the other party)",
                 rest, r, os);
        snprintf(zh, sizeof(zh),
                 "对方保险公司（其三者险）按对方责任比例 %s 赔付 %s × %s = %s（估算，向对方索赔）",
                 rest, r, rest, os);
        add_line(lines, "own_vehicle_damage", "本车车辆损失", "own vehicle damage",
                 o->own_remaining, "other_party_third_party", o->other_share, en, zh, vd_clause,
                 ok);
    }
}

static json_t *result_json(const json_t *prod, const json_t *pol, int li,
                           const tools_motor_in_t *in, const tools_motor_out_t *o)
{
    const json_t *cl = json_object_get(prod, "compulsory_limits");
    const char *comp_clause = json_string_value(json_object_get(cl, "clause"));
    bool ok = true;
    json_t *r = json_object(), *lines = json_array();

    if (r == NULL || lines == NULL) {
        json_decref(r);
        json_decref(lines);
        return NULL;
    }
    if (comp_clause == NULL)
        comp_clause = coverage_clause(prod, "compulsory", "");
    third_party_lines(lines, in, o, comp_clause, coverage_clause(prod, "third_party", ""), &ok);
    own_vehicle_lines(lines, in, o, comp_clause, coverage_clause(prod, "vehicle_damage", ""), &ok);

    json_t *used = limits_json(o->limit_used);
    put(used, "basis", json_string(in->at_fault ? "with_liability" : "without_liability"), &ok);
    put(r, "estimate", json_true(), &ok);
    put(r, "mode", json_string("motor"), &ok);
    put(r, "policy_no", json_incref(json_object_get(pol, "policy_no")), &ok);
    put(r, "liability", json_string(LIABILITIES[li].id), &ok);
    put(r, "liability_zh", json_string(LIABILITIES[li].zh), &ok);
    put(r, "share", tools_ratio_to_json(in->share_ppm), &ok);
    put(r, "liability_deductible_rate", tools_ratio_to_json(in->deductible_ppm), &ok);
    put(r, "compulsory_limits", used, &ok);
    put(r, "compulsory_limits_table",
        json_pack("{s:o, s:o}", "with_liability", limits_json(in->with_limits), "without_liability",
                  limits_json(in->without_limits)),
        &ok);
    put(r, "third_party_limit", tools_money_to_json(in->third_party_limit), &ok);
    put(r, "vehicle_damage_limit", tools_money_to_json(in->vehicle_damage_limit), &ok);
    put(r, "other_party_insured", json_boolean(in->other_party_insured), &ok);
    put(r, "lines", lines, &ok);
    put(r, "total_payable", tools_money_to_json(o->total), &ok);
    put(r, "total_other_party", tools_money_to_json(o->total_other), &ok);
    put(r, "currency", json_string("CNY"), &ok);
    put(r, "note",
        json_pack("{s:s, s:s}", "zh",
                  "以上为估算，最终赔款以查勘定损、交管部门责任认定和保险公司核定为准。", "en",
                  "This is an estimate; the final payout depends on the survey and loss "
                  "assessment, the police liability determination and the insurer's review."),
        &ok);
    if (!ok) {
        json_decref(r);
        return NULL;
    }
    return r;
}

int tools_motor_tool(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                     size_t err_size)
{
    call_t c = {.err = err, .err_size = err_size};
    tools_motor_in_t in = {0};
    tools_motor_out_t o;
    const json_t *no = json_object_get(args, "policy_no");
    const json_t *liab = json_object_get(args, "liability");
    const json_t *insured = json_object_get(args, "other_party_insured");
    int li, rc;

    *result = NULL;
    if (!json_is_string(no))
        return tools_fail(c.err, c.err_size, MESH_EBADARGS,
                          "$.policy_no: is required in motor mode");
    if (!json_is_string(liab))
        return tools_fail(c.err, c.err_size, MESH_EBADARGS,
                          "$.liability: is required in motor mode");
    if ((li = liability_index(json_string_value(liab))) < 0)
        return tools_fail(c.err, c.err_size, MESH_EBADARGS,
                          "$.liability: must be one of full, major, equal, minor, none "
                          "(全责, 主责, 同责, 次责, 无责)");
    if (json_object_get(args, "lines") != NULL)
        return tools_fail(c.err, c.err_size, MESH_EBADARGS, "$.lines: not used in motor mode");
    if (insured != NULL && !json_is_boolean(insured))
        return tools_fail(c.err, c.err_size, MESH_EBADARGS,
                          "$.other_party_insured: must be true or false");
    in.other_party_insured = insured == NULL || json_is_true(insured);
    for (int h = 0; h < TOOLS_MOTOR_HEADS; h++) {
        if ((rc = amount_arg(&c, args, HEADS[h].arg, &in.loss[h])) != 0)
            return rc;
    }
    if ((rc = amount_arg(&c, args, "own_vehicle_damage", &in.own_damage)) != 0)
        return rc;

    const char *pno = json_string_value(no);
    const json_t *pol = d != NULL ? tools_data_policy(d, pno) : NULL;
    if (pol == NULL)
        return tools_fail(c.err, c.err_size, MESH_ENOTFOUND, "policy %s not found", pno);
    const json_t *prod =
        tools_data_product(d, json_string_value(json_object_get(pol, "product_id")));
    const char *type = json_string_value(json_object_get(prod, "type"));
    const char *status = json_string_value(json_object_get(pol, "status"));
    if (type == NULL || strcmp(type, "motor") != 0)
        return tools_fail(c.err, c.err_size, MESH_ETOOL,
                          "policy %s is a %s policy: motor mode needs a motor policy", pno,
                          type ? type : "unknown");
    if (status == NULL || strcmp(status, "active") != 0)
        return tools_fail(c.err, c.err_size, MESH_ETOOL,
                          "policy %s is %s: no estimate on a policy not in force", pno,
                          status ? status : "unknown");
    if ((rc = product_terms(&c, prod, pol, li, &in)) != 0)
        return rc;
    if (tools_motor_compute(&in, &o) != 0)
        return tools_fail(c.err, c.err_size, MESH_ETOOL, "policy %s: motor terms out of range",
                          pno);
    *result = result_json(prod, pol, li, &in, &o);
    return *result != NULL ? 0 : MESH_ENOMEM;
}
