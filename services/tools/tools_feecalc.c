/* tools_feecalc.c - settlement arithmetic and rule texts (tools_feecalc.h). */
#include "tools_feecalc.h"

#include <stdio.h>

#include "mesh/mesh_err.h"
#include "tools_money.h"

static bool amount_ok(int64_t fen)
{
    return fen >= 0 && fen <= TOOLS_FEN_MAX;
}

int tools_feecalc_compute(const tools_fee_terms_t *terms, tools_fee_line_t *lines, size_t n,
                          tools_fee_totals_t *tot, size_t *bad_line)
{
    tools_fee_totals_t t = {0};
    int64_t ded_left = terms->deductible_remaining;
    int64_t limit_left = terms->limit_remaining;

    *bad_line = n;
    if (terms->ratio_ppm < 0 || terms->ratio_ppm > TOOLS_PPM || !amount_ok(ded_left) ||
        (terms->has_limit && !amount_ok(limit_left)) || n > TOOLS_FEE_LINES_MAX)
        return MESH_EINVAL;
    /* Validate every line before settling any, so a bad line leaves no partial result. */
    for (size_t i = 0; i < n; i++) {
        const tools_fee_line_t *l = &lines[i];
        if (!amount_ok(l->amount) || !amount_ok(l->reasonable) || !amount_ok(l->social) ||
            !amount_ok(l->other) || l->reasonable > l->amount ||
            l->social + l->other > l->reasonable) {
            *bad_line = i;
            return MESH_EINVAL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        tools_fee_line_t *l = &lines[i];

        l->base = l->reasonable - l->social - l->other;
        l->deductible_applied = l->base < ded_left ? l->base : ded_left;
        ded_left -= l->deductible_applied;
        l->payable_before_cap =
            tools_money_apply_ratio(l->base - l->deductible_applied, terms->ratio_ppm);
        l->payable = l->payable_before_cap;
        l->capped = false;
        if (terms->has_limit && l->payable > limit_left) {
            l->payable = limit_left;
            l->capped = true;
            t.capped = true;
        }
        if (terms->has_limit)
            limit_left -= l->payable;

        t.claimed += l->amount;
        t.reasonable += l->reasonable;
        t.social += l->social;
        t.other += l->other;
        t.base += l->base;
        t.deductible_applied += l->deductible_applied;
        t.payable += l->payable;
    }
    t.deductible_remaining_after = ded_left;
    t.limit_remaining_after = terms->has_limit ? limit_left : 0;
    *tot = t;
    return 0;
}

void tools_feecalc_rule(const tools_fee_line_t *l, int64_t ratio_ppm, char *en, char *zh)
{
    char a[TOOLS_MONEY_TEXT], r[TOOLS_MONEY_TEXT], s[TOOLS_MONEY_TEXT], o[TOOLS_MONEY_TEXT];
    char b[TOOLS_MONEY_TEXT], d[TOOLS_MONEY_TEXT], p[TOOLS_MONEY_TEXT], q[TOOLS_MONEY_TEXT];
    char pct[TOOLS_MONEY_TEXT];
    char pre_en[128] = "", pre_zh[128] = "", post_en[128] = "", post_zh[128] = "";

    tools_money_fmt(l->amount, a);
    tools_money_fmt(l->reasonable, r);
    tools_money_fmt(l->social, s);
    tools_money_fmt(l->other, o);
    tools_money_fmt(l->base, b);
    tools_money_fmt(l->deductible_applied, d);
    tools_money_fmt(l->payable_before_cap, p);
    tools_money_fmt(l->payable, q);
    tools_ratio_fmt(ratio_ppm, pct);

    if (l->reasonable < l->amount) {
        snprintf(pre_en, sizeof(pre_en), "billed %s, of which reasonable %s; ", a, r);
        snprintf(pre_zh, sizeof(pre_zh), "账单金额 %s，其中合理费用 %s；", a, r);
    }
    if (l->capped) {
        snprintf(post_en, sizeof(post_en), "; capped to %s by the remaining limit", q);
        snprintf(post_zh, sizeof(post_zh), "；受剩余保额限制，赔付 %s", q);
    }
    if (l->base == 0) {
        snprintf(en, TOOLS_FEE_RULE_MAX,
                 "%sreasonable %s − social %s − other %s = 0: nothing left to pay%s", pre_en, r, s,
                 o, post_en);
        snprintf(zh, TOOLS_FEE_RULE_MAX,
                 "%s合理费用 %s − 社保 %s − 其他补偿 %s = 0，无可赔付金额%s", pre_zh, r, s, o,
                 post_zh);
    } else if (l->base == l->deductible_applied) {
        snprintf(en, TOOLS_FEE_RULE_MAX,
                 "%s(reasonable %s − social %s − other %s) = %s, all taken by the deductible: "
                 "nothing payable%s",
                 pre_en, r, s, o, b, post_en);
        snprintf(
            zh, TOOLS_FEE_RULE_MAX,
            "%s（合理费用 %s − 社保 %s − 其他补偿 %s）= %s，全部用于抵扣免赔额，无可赔付金额%s",
            pre_zh, r, s, o, b, post_zh);
    } else {
        snprintf(en, TOOLS_FEE_RULE_MAX,
                 "%s(reasonable %s − social %s − other %s − deductible %s) × ratio %s = %s%s",
                 pre_en, r, s, o, d, pct, p, post_en);
        snprintf(zh, TOOLS_FEE_RULE_MAX,
                 "%s（合理费用 %s − 社保 %s − 其他补偿 %s − 免赔额 %s）× 赔付比例 %s = %s%s",
                 pre_zh, r, s, o, d, pct, p, post_zh);
    }
}
