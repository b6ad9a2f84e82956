/*
 * rules_review_answer.c - what the review says: the answer text (the steps
 * taken, the itemised table, the total, each refusal with its clause, the
 * final-review note) and the decision record kept in records.decision.
 */
#include <stdio.h>
#include <string.h>

#include "rules_review.h"

#define ANSWER_ITEM_MAX 60 /* bytes of an item name quoted in the answer */
/* Bytes of an exclusion's text quoted on a catalogue line; the refusals quote it whole,
 * once per exclusion. With these, 40 refused lines still fit LLM_BUF_MAX. */
#define ANSWER_EXCL_SHORT 90

int review_fen(llm_buf_t *b, int64_t fen)
{
    if (fen < 0) {
        llm_buf_puts(b, "-");
        fen = -fen;
    }
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%lld", (long long)(fen / 100));
    char out[48];
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    llm_buf_append(b, out, o);
    return llm_buf_printf(b, ".%02lld", (long long)(fen % 100));
}

static void money(llm_buf_t *b, int64_t fen, bool zh)
{
    if (!zh)
        llm_buf_puts(b, "CNY ");
    review_fen(b, fen);
    if (zh)
        llm_buf_puts(b, "元");
}

/* A customer-supplied name in the answer: clipped, table-safe ('|' and newlines replaced). */
static void name(llm_buf_t *b, const char *s)
{
    char tmp[ANSWER_ITEM_MAX + 1];
    size_t l = strlen(s);
    if (l > ANSWER_ITEM_MAX) {
        l = ANSWER_ITEM_MAX;
        while (l > 0 && ((unsigned char)s[l] & 0xC0) == 0x80)
            l--;
    }
    memcpy(tmp, s, l);
    tmp[l] = '\0';
    for (size_t i = 0; i < l; i++) {
        if (tmp[i] == '|' || tmp[i] == '\n' || tmp[i] == '\r')
            tmp[i] = '/';
    }
    llm_buf_puts(b, tmp);
}

static const char *status_text(const char *st, bool zh)
{
    if (strcmp(st, "approved") == 0)
        return zh ? "全部赔付" : "approved in full";
    if (strcmp(st, "partial") == 0)
        return zh ? "部分赔付" : "partially approved";
    if (strcmp(st, "refused") == 0)
        return zh ? "拒赔" : "refused";
    return zh ? "部分项目待人工审核" : "pending a human reviewer for some items";
}

static const char *policy_status_text(const char *st, bool zh)
{
    if (strcmp(st, "active") == 0)
        return zh ? "有效" : "active";
    if (strcmp(st, "lapsed") == 0)
        return zh ? "已失效（未续交保费）" : "lapsed (premium unpaid)";
    if (strcmp(st, "expired") == 0)
        return zh ? "已满期" : "expired";
    return st[0] ? st : "?";
}

static const char *cl(const char *c)
{
    return c != NULL && c[0] ? c : "?";
}

/* The clause(s) a decision rests on, e.g. "2.4, 3.1". */
static void clause_of(const review_result_t *r, const review_line_decision_t *x, char *out,
                      size_t size)
{
    const review_policy_t *p = r->pol;
    out[0] = '\0';
    switch (x->why) {
    case REVIEW_WHY_NOT_IN_FORCE:
        snprintf(out, size, "%s", cl(p->clause_period));
        break;
    case REVIEW_WHY_WAITING:
        if (p->clause_waiting_excl != NULL && p->clause_waiting_excl[0])
            snprintf(out, size, "%s, %s", cl(p->clause_waiting), p->clause_waiting_excl);
        else
            snprintf(out, size, "%s", cl(p->clause_waiting));
        break;
    case REVIEW_WHY_PRE_EXISTING:
        snprintf(out, size, "%s", cl(p->clause_pre_existing));
        break;
    case REVIEW_WHY_EXCLUDED: {
        const json_t *c = json_object_get(x->exclusion, "clause");
        snprintf(out, size, "%s", json_is_string(c) ? json_string_value(c) : "?");
        break;
    }
    default:
        break;
    }
}

static const char *why_code(review_why_t w)
{
    switch (w) {
    case REVIEW_WHY_NOT_IN_FORCE:
        return "not_in_force";
    case REVIEW_WHY_LAPSED:
        return "policy_lapsed";
    case REVIEW_WHY_WAITING:
        return "waiting_period";
    case REVIEW_WHY_PRE_EXISTING:
        return "pre_existing";
    case REVIEW_WHY_EXCLUDED:
        return "excluded_class";
    case REVIEW_WHY_UNKNOWN_ITEM:
        return "unknown_item";
    case REVIEW_WHY_NO_CATALOGUE:
        return "catalogue_unavailable";
    case REVIEW_WHY_SETTLEMENT_FAILED:
        return "settlement_failed";
    default:
        return "";
    }
}

static const char *verdict_code(review_verdict_t v)
{
    return v == REVIEW_PAYABLE ? "payable" : v == REVIEW_REFUSED ? "refused" : "pending";
}

static int64_t total_payable(const review_result_t *r)
{
    int64_t t = review_json_fen(json_object_get(r->fee, "total_payable"));
    if (t >= 0)
        return t;
    t = 0;
    for (size_t i = 0; i < r->claim->n_lines; i++) {
        if (r->d[i].verdict == REVIEW_PAYABLE && r->d[i].settled)
            t += r->d[i].payable_fen;
    }
    return t;
}

/* ---- the record ---- */

static json_t *fen_json(int64_t fen)
{
    return json_real((double)fen / 100.0);
}

json_t *review_decision_record(const review_result_t *r)
{
    const review_claim_t *c = r->claim;
    json_t *lines = json_array();
    if (lines == NULL)
        return NULL;
    int64_t claimed = 0;
    for (size_t i = 0; i < c->n_lines; i++) {
        const review_line_t *ln = &c->lines[i];
        const review_line_decision_t *x = &r->d[i];
        claimed += ln->amount_fen;
        json_t *o = json_pack("{s:s, s:o, s:o, s:s}", "item", ln->item, "amount",
                              fen_json(ln->amount_fen), "social_paid", fen_json(ln->social_fen),
                              "decision", verdict_code(x->verdict));
        if (o == NULL || json_array_append_new(lines, o) != 0) {
            json_decref(lines);
            return NULL;
        }
        int rc = 0;
        if (ln->category[0])
            rc |= json_object_set_new(o, "category", json_string(ln->category));
        if (x->why != REVIEW_WHY_NONE)
            rc |= json_object_set_new(o, "reason", json_string(why_code(x->why)));
        char clause[32];
        clause_of(r, x, clause, sizeof(clause));
        if (clause[0])
            rc |= json_object_set_new(o, "clause", json_string(clause));
        if (x->cat.class_id != NULL && x->cat.class_id[0])
            rc |= json_object_set_new(o, "class", json_string(x->cat.class_id));
        if (x->cat.code != NULL && x->cat.code[0])
            rc |= json_object_set_new(o, "code", json_string(x->cat.code));
        if (x->verdict == REVIEW_PAYABLE && x->settled) {
            rc |= json_object_set_new(o, "deductible_applied", fen_json(x->deductible_fen));
            rc |= json_object_set_new(o, "ratio", json_real(x->ratio));
            rc |= json_object_set_new(o, "payable", fen_json(x->payable_fen));
        } else if (x->verdict == REVIEW_REFUSED) {
            rc |= json_object_set_new(o, "payable", json_real(0));
        }
        if (rc != 0) {
            json_decref(lines);
            return NULL;
        }
    }
    return json_pack("{s:s, s:s, s:o, s:o, s:s, s:o, s:b}", "policy_no", c->policy_no, "status",
                     review_status(c, r->d), "total", fen_json(total_payable(r)), "total_claimed",
                     fen_json(claimed), "currency", "CNY", "lines", lines, "final_review_required",
                     1);
}

void review_handoff_reason(const review_result_t *r, char *out, size_t out_size)
{
    llm_buf_t b;
    llm_buf_init(&b);
    const review_claim_t *c = r->claim;
    review_why_t kinds[] = {REVIEW_WHY_LAPSED, REVIEW_WHY_UNKNOWN_ITEM, REVIEW_WHY_NO_CATALOGUE,
                            REVIEW_WHY_SETTLEMENT_FAILED};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        size_t n = 0;
        for (size_t i = 0; i < c->n_lines; i++) {
            if (r->d[i].verdict != REVIEW_PENDING || r->d[i].why != kinds[k])
                continue;
            if (n == 0) {
                if (b.len > 0)
                    llm_buf_puts(&b, r->zh ? "；" : "; ");
                switch (kinds[k]) {
                case REVIEW_WHY_LAPSED:
                    llm_buf_puts(&b, r->zh ? "保单已失效，需人工核实入院时保单是否有效："
                                           : "policy lapsed, a person must check it was in force "
                                             "at admission: ");
                    break;
                case REVIEW_WHY_UNKNOWN_ITEM:
                    llm_buf_puts(&b, r->zh ? "以下项目在医疗目录中未找到，需人工审核："
                                           : "items not found in the medical catalogue: ");
                    break;
                case REVIEW_WHY_NO_CATALOGUE:
                    llm_buf_puts(&b, r->zh ? "医疗目录查询失败，需人工审核："
                                           : "the medical catalogue could not be consulted for: ");
                    break;
                default:
                    llm_buf_puts(&b, r->zh ? "理算失败，需人工处理："
                                           : "the settlement could not be computed for: ");
                    break;
                }
            } else {
                llm_buf_puts(&b, r->zh ? "、" : ", ");
            }
            name(&b, c->lines[i].item);
            n++;
        }
    }
    size_t l = b.len;
    const char *s = llm_buf_str(&b);
    if (l >= out_size) {
        l = out_size - 1;
        while (l > 0 && ((unsigned char)s[l] & 0xC0) == 0x80)
            l--;
    }
    memcpy(out, s, l);
    out[l] = '\0';
    llm_buf_free(&b);
}

/* ---- the answer ---- */

static void line_catalogue(const review_result_t *r, size_t i, llm_buf_t *b)
{
    bool zh = r->zh;
    const review_line_decision_t *x = &r->d[i];
    llm_buf_puts(b, "   - ");
    name(b, r->claim->lines[i].item);
    llm_buf_puts(b, zh ? "：" : ": ");
    const review_cat_t *cat = &x->cat;
    if (cat->match == NULL) {
        llm_buf_puts(b, zh ? "未能查询医疗目录" : "the catalogue could not be consulted");
    } else if (strcmp(cat->match, "exact") != 0 && strcmp(cat->match, "alias") != 0) {
        llm_buf_puts(b, zh ? "医疗目录中未找到该项目" : "not found in the medical catalogue");
    } else {
        if (strcmp(cat->match, "exact") == 0) {
            llm_buf_puts(b, zh ? "目录精确匹配" : "exact catalogue match");
        } else {
            llm_buf_puts(b, zh ? "目录别名匹配（标准名称“"
                               : "catalogue alias match (standard name \"");
            name(b, cat->name);
            llm_buf_puts(b, zh ? "”）" : "\")");
        }
        if (cat->code && cat->code[0])
            llm_buf_printf(b, zh ? "，编码 %s" : ", code %s", cat->code);
        size_t cnl;
        const char *cn = llm_rules_loc(cat->class_name, zh, &cnl);
        llm_buf_puts(b, zh ? "，分类“" : ", class \"");
        if (cn != NULL)
            llm_buf_append_clip(b, cn, cnl, LLM_FIELD_MAX);
        else
            name(b, cat->class_id);
        llm_buf_puts(b, zh ? "”" : "\"");
    }
    switch (x->why) {
    case REVIEW_WHY_NONE:
        llm_buf_puts(b, zh ? "，不属于本保单的除外类别 → 可赔付"
                           : ", not in an excluded class of this "
                             "policy -> payable");
        break;
    case REVIEW_WHY_EXCLUDED: {
        size_t tl;
        const char *t = llm_rules_loc(json_object_get(x->exclusion, "text"), zh, &tl);
        llm_buf_puts(b, zh ? "，属于本保单除外类别“" : ", in an excluded class of this policy (\"");
        if (t != NULL) {
            llm_buf_append_clip(b, t, tl, ANSWER_EXCL_SHORT);
            if (tl > ANSWER_EXCL_SHORT)
                llm_buf_puts(b, zh ? "…" : "...");
        }
        const json_t *c = json_object_get(x->exclusion, "clause");
        llm_buf_printf(b, zh ? "”（条款 %s）→ 拒赔" : "\", clause %s) -> refused",
                       json_is_string(c) ? json_string_value(c) : "?");
        break;
    }
    case REVIEW_WHY_UNKNOWN_ITEM:
    case REVIEW_WHY_NO_CATALOGUE:
        llm_buf_puts(b, zh ? " → 转人工审核" : " -> referred to a human reviewer");
        break;
    case REVIEW_WHY_SETTLEMENT_FAILED:
        llm_buf_puts(b, zh ? " → 理算失败，转人工审核"
                           : " -> settlement failed, referred to a "
                             "human reviewer");
        break;
    case REVIEW_WHY_LAPSED:
        llm_buf_puts(b, zh ? " → 保单已失效，转人工审核"
                           : " -> policy lapsed, referred to a human "
                             "reviewer");
        break;
    default:
        llm_buf_puts(b, zh ? " → 拒赔（见以上保单层面的审核）"
                           : " -> refused (see the policy checks "
                             "above)");
        break;
    }
    llm_buf_puts(b, "\n");
}

static void steps(const review_result_t *r, llm_buf_t *b)
{
    bool zh = r->zh;
    const review_claim_t *c = r->claim;
    const review_policy_t *p = r->pol;
    size_t pl;
    const char *product =
        llm_rules_loc(json_object_get(json_object_get(p->policy, "product"), "name"), zh, &pl);
    llm_buf_puts(b, zh ? "审核步骤：\n1. 保单核验（policy.lookup）："
                       : "Steps:\n1. Policy check "
                         "(policy.lookup): ");
    if (product != NULL) {
        llm_buf_append_clip(b, product, pl, LLM_FIELD_MAX);
        llm_buf_puts(b, zh ? "，" : ", ");
    }
    llm_buf_printf(
        b, zh ? "状态：%s，保险期间 %s 至 %s。" : "status %s, period of insurance %s to %s. ",
        policy_status_text(p->status, zh), p->start_date, p->end_date);
    if (!p->in_force)
        llm_buf_printf(b,
                       zh ? "入院日期 %s 不在保险期间内，本次费用不予赔付（条款 %s）。\n"
                          : "The admission date %s is outside the period of insurance: nothing is "
                            "payable (clause %s).\n",
                       c->admission, cl(p->clause_period));
    else if (p->lapsed)
        llm_buf_printf(
            b,
            zh ? "入院日期 %s 在保险期间内（条款 %s），但保单已失效，入院时是否有效需人工核实。\n"
               : "The admission date %s is within the period of insurance (clause %s), "
                 "but the policy has lapsed: a person must check it was in force then.\n",
            c->admission, cl(p->clause_period));
    else
        llm_buf_printf(
            b,
            zh ? "入院日期 %s 在保险期间内（条款 %s）。\n"
               : "The admission date %s is within the period of insurance (clause %s).\n",
            c->admission, cl(p->clause_period));

    llm_buf_puts(b, zh ? "2. 等待期：" : "2. Waiting period: ");
    if (p->waiting_days > 0)
        llm_buf_printf(b,
                       zh ? "%ld 天（条款 %s），自 %s 至 %s。" : "%ld days (clause %s), %s to %s. ",
                       p->waiting_days, cl(p->clause_waiting), p->start_date, p->waiting_end);
    if (c->accident == REVIEW_YES)
        llm_buf_puts(b, zh ? "本次为意外伤害，不适用等待期。\n"
                           : "This is an accident: no waiting "
                             "period applies.\n");
    else if (!p->in_force)
        llm_buf_puts(b, zh ? "（保单不在保险期间内，不再审核。）\n"
                           : "(Not reviewed: the policy was "
                             "not in force.)\n");
    else if (p->in_waiting)
        llm_buf_printf(
            b,
            zh ? "本次疾病发生于 %s，在等待期内，依据条款 %s（责任免除条款 %s）不予赔付。\n"
               : "The illness began on %s, within the waiting period: not payable under "
                 "clause %s (exclusion clause %s).\n",
            p->illness_date, cl(p->clause_waiting), cl(p->clause_waiting_excl));
    else
        llm_buf_printf(b,
                       zh ? "本次疾病发生于 %s，已过等待期。\n"
                          : "The illness began on %s, after the waiting period.\n",
                       p->illness_date);

    llm_buf_puts(b, zh ? "3. 既往症：" : "3. Pre-existing conditions: ");
    if (p->pre_existing)
        llm_buf_printf(b,
                       zh ? "本次疾病属于既往症（投保前已患），依据条款 %s 不予赔付。\n"
                          : "the illness is a pre-existing condition (it began before the policy "
                            "started or was declared so): not payable under clause %s.\n",
                       cl(p->clause_pre_existing));
    else
        llm_buf_printf(b,
                       zh ? "未申报既往症（既往症除外见条款 %s）。\n"
                          : "none declared (the pre-existing exclusion is clause %s).\n",
                       cl(p->clause_pre_existing));

    llm_buf_puts(b, zh ? "4. 医疗目录核对（medical.lookup，按目录分类判断是否属于除外类别，"
                         "不按项目名称字面判断）：\n"
                       : "4. Catalogue check (medical.lookup; exclusions are decided by the "
                         "catalogue's class, never by the item's wording):\n");
    for (size_t i = 0; i < c->n_lines; i++)
        line_catalogue(r, i, b);

    llm_buf_puts(b, zh ? "5. 理算（fee.calc）：" : "5. Settlement (fee.calc): ");
    if (r->fee == NULL) {
        llm_buf_puts(b, zh ? "没有可赔付的费用，无需理算。\n" : "nothing payable to settle.\n");
        return;
    }
    int64_t ded = review_json_fen(json_object_get(r->fee, "deductible_remaining_before"));
    int64_t lim = review_json_fen(json_object_get(r->fee, "limit_remaining_before"));
    const json_t *ratio = json_object_get(r->fee, "ratio");
    llm_buf_puts(b, zh ? "剩余年免赔额 " : "remaining annual deductible ");
    if (ded >= 0)
        money(b, ded, zh);
    llm_buf_printf(b,
                   zh ? "（条款 %s），%s社保结算，赔付比例 "
                      : " (clause %s); social insurance %s, "
                        "ratio ",
                   cl(p->clause_ratio),
                   c->social_used == REVIEW_YES ? (zh ? "已使用" : "used")
                                                : (zh ? "未使用" : "not used"));
    llm_rules_percent(b, json_number_value(ratio));
    llm_buf_printf(b, zh ? "（条款 %s）" : " (clause %s)", cl(p->clause_ratio));
    if (lim >= 0) {
        llm_buf_puts(b, zh ? "，剩余保额 " : "; remaining limit ");
        money(b, lim, zh);
    }
    llm_buf_puts(b, zh ? "。\n" : ".\n");
}

static void table(const review_result_t *r, llm_buf_t *b)
{
    bool zh = r->zh;
    const review_claim_t *c = r->claim;
    llm_buf_puts(
        b, zh ? "\n| 项目 | 申请金额 | 社保支付 | 除外金额 | 免赔额抵扣 | 赔付比例 | 应付金额 | "
                "结论 |\n"
              : "\n| Item | Claimed | Social insurance paid | Excluded | Deductible applied "
                "| Ratio | Payable | Decision |\n");
    llm_buf_puts(b, "|---|---:|---:|---:|---:|---:|---:|---|\n");
    int64_t s_amt = 0, s_soc = 0, s_exc = 0, s_ded = 0;
    for (size_t i = 0; i < c->n_lines; i++) {
        const review_line_t *ln = &c->lines[i];
        const review_line_decision_t *x = &r->d[i];
        s_amt += ln->amount_fen;
        s_soc += ln->social_fen;
        llm_buf_puts(b, "| ");
        name(b, ln->item);
        llm_buf_puts(b, " | ");
        review_fen(b, ln->amount_fen);
        llm_buf_puts(b, " | ");
        review_fen(b, ln->social_fen);
        llm_buf_puts(b, " | ");
        if (x->verdict == REVIEW_PAYABLE && x->settled) {
            review_fen(b, 0);
            llm_buf_puts(b, " | ");
            review_fen(b, x->deductible_fen);
            llm_buf_puts(b, " | ");
            llm_rules_percent(b, x->ratio);
            llm_buf_puts(b, " | ");
            review_fen(b, x->payable_fen);
            llm_buf_puts(b, zh ? " | 赔付 |\n" : " | payable |\n");
            s_ded += x->deductible_fen;
        } else if (x->verdict == REVIEW_REFUSED) {
            review_fen(b, ln->amount_fen);
            s_exc += ln->amount_fen;
            llm_buf_puts(b, " | ");
            review_fen(b, 0);
            llm_buf_puts(b, " | — | ");
            review_fen(b, 0);
            llm_buf_puts(b, zh ? " | 拒赔 |\n" : " | refused |\n");
        } else {
            llm_buf_puts(b, zh ? "— | — | — | 待定 | 待人工审核 |\n"
                               : "— | — | — | pending | human review |\n");
        }
    }
    llm_buf_puts(b, zh ? "| 合计 | " : "| Total | ");
    review_fen(b, s_amt);
    llm_buf_puts(b, " | ");
    review_fen(b, s_soc);
    llm_buf_puts(b, " | ");
    review_fen(b, s_exc);
    llm_buf_puts(b, " | ");
    review_fen(b, s_ded);
    llm_buf_puts(b, " |  | ");
    review_fen(b, total_payable(r));
    llm_buf_puts(b, " |  |\n");
}

static void refusals(const review_result_t *r, llm_buf_t *b)
{
    bool zh = r->zh;
    const review_claim_t *c = r->claim;
    bool any = false;
    for (size_t i = 0; i < c->n_lines; i++) {
        const review_line_decision_t *x = &r->d[i];
        if (x->verdict != REVIEW_REFUSED)
            continue;
        if (!any)
            llm_buf_puts(b, zh ? "\n拒赔说明：\n" : "\nRefusals:\n");
        any = true;
        llm_buf_puts(b, "- ");
        name(b, c->lines[i].item);
        llm_buf_puts(b, zh ? "（" : " (");
        money(b, c->lines[i].amount_fen, zh);
        llm_buf_puts(b, zh ? "）：" : "): ");
        char clause[32];
        clause_of(r, x, clause, sizeof(clause));
        switch (x->why) {
        case REVIEW_WHY_NOT_IN_FORCE:
            llm_buf_puts(b, zh ? "入院日期不在保险期间内"
                               : "admitted outside the period of insurance");
            break;
        case REVIEW_WHY_WAITING:
            llm_buf_puts(b, zh ? "等待期内发生的疾病，不承担给付责任"
                               : "illness that began within the waiting period is not covered");
            break;
        case REVIEW_WHY_PRE_EXISTING:
            llm_buf_puts(b, zh ? "既往症属于责任免除" : "pre-existing conditions are excluded");
            break;
        default: {
            /* The exclusion's text once; later lines under the same one cite the clause. */
            bool quoted = false;
            for (size_t k = 0; k < i && !quoted; k++)
                quoted = r->d[k].verdict == REVIEW_REFUSED && r->d[k].exclusion == x->exclusion;
            size_t tl;
            const char *t = llm_rules_loc(json_object_get(x->exclusion, "text"), zh, &tl);
            if (quoted || t == NULL) {
                llm_buf_puts(b, zh ? "按医疗目录分类属于责任免除（同上）"
                                   : "by its catalogue class it falls under the same exclusion");
                break;
            }
            llm_buf_puts(b, zh ? "按医疗目录分类属于责任免除“"
                               : "by its catalogue class it falls "
                                 "under the exclusion \"");
            llm_buf_append_clip(b, t, tl, LLM_FIELD_MAX);
            llm_buf_puts(b, zh ? "”" : "\"");
            break;
        }
        }
        llm_buf_printf(b, zh ? "，依据条款 %s。\n" : ", clause %s.\n", clause);
    }
}

int review_answer(const review_result_t *r, llm_buf_t *b)
{
    bool zh = r->zh;
    const review_claim_t *c = r->claim;
    llm_buf_printf(b,
                   zh ? "【健康险理赔审核】保单 %s｜诊断："
                      : "Health claim review - policy %s | "
                        "diagnosis: ",
                   c->policy_no);
    name(b, c->diagnosis);
    llm_buf_puts(b, zh ? "｜医院：" : " | hospital: ");
    name(b, c->hospital);
    llm_buf_printf(b, zh ? "｜住院 %s 至 %s\n\n" : " | in hospital %s to %s\n\n", c->admission,
                   c->discharge);
    steps(r, b);
    table(r, b);
    const char *st = review_status(c, r->d);
    llm_buf_printf(b, zh ? "\n审核结论：%s。应付合计：" : "\nDecision: %s. Total payable: ",
                   status_text(st, zh));
    money(b, total_payable(r), zh);
    if (json_is_true(json_object_get(r->fee, "capped")))
        llm_buf_puts(b, zh ? "（已按剩余保额封顶）" : " (capped at the remaining limit)");
    if (total_payable(r) == 0 && (strcmp(st, "approved") == 0 || strcmp(st, "partial") == 0))
        llm_buf_puts(b, zh ? "（可赔付的费用已全部计入年免赔额，本次应付为 0）"
                           : " (the covered costs all went to the annual deductible, so nothing is "
                             "paid this time)");
    llm_buf_puts(b, zh ? "。\n" : ".\n");
    refusals(r, b);
    char reason[REVIEW_REASON_MAX + 1];
    review_handoff_reason(r, reason, sizeof(reason));
    if (reason[0]) {
        llm_buf_puts(b, zh ? "\n待人工审核：" : "\nReferred to a human reviewer: ");
        llm_buf_puts(b, reason);
        llm_buf_puts(b, zh ? "。已为您转交人工审核员，请耐心等待，处理结果会在本会话中回复。\n"
                           : ". A human reviewer has been asked to take over; the answer will "
                             "come in this conversation.\n");
    }
    llm_buf_puts(b,
                 zh ? "\n以上为初审结果，最终以保险公司审核为准。"
                    : "\nThis is a first review, to be confirmed by the insurer's final review.");
    return llm_buf_error(b);
}
