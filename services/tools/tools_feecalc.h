/*
 * tools_feecalc.h - health (百万医疗) settlement arithmetic, pure and in
 * integer fen (docs/tools.md, docs/protocol/services.md "fee.calc").
 *
 * Per line, in order:
 *   reasonable = reasonable_amount (default: amount; never above amount)
 *   base       = reasonable - social_paid - other_paid          (>= 0)
 *   deductible_applied = min(base, deductible still remaining)
 *   payable    = (base - deductible_applied) * ratio, half-up to the fen
 * then the running total is capped by the remaining limit; the cap is
 * recorded on the lines it cuts (capped = true, payable_before_cap kept).
 */
#ifndef TOOLS_FEECALC_H
#define TOOLS_FEECALC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOOLS_FEE_LINES_MAX 200
#define TOOLS_FEE_RULE_MAX  1024 /* bytes of one line's rule text */

typedef struct {
    /* inputs, fen */
    int64_t amount;
    int64_t reasonable;
    int64_t social;
    int64_t other;
    /* outputs, fen */
    int64_t base;
    int64_t deductible_applied;
    int64_t payable_before_cap;
    int64_t payable;
    bool capped;
} tools_fee_line_t;

typedef struct {
    int64_t ratio_ppm;            /* 0..TOOLS_PPM */
    int64_t deductible_remaining; /* fen, >= 0 */
    bool has_limit;               /* false: no cap */
    int64_t limit_remaining;      /* fen, >= 0 when has_limit */
} tools_fee_terms_t;

typedef struct {
    int64_t claimed, reasonable, social, other, base, deductible_applied, payable;
    int64_t deductible_remaining_after;
    int64_t limit_remaining_after; /* meaningful when terms.has_limit */
    bool capped;
} tools_fee_totals_t;

/*
 * Settle lines[0..n) under terms, filling each line's outputs and *tot.
 * Returns 0, or MESH_EINVAL (with *bad_line set) when a line breaks an
 * input rule: negative or over-limit amounts, reasonable > amount,
 * social + other > reasonable; or when terms are out of range (*bad_line = n).
 */
int tools_feecalc_compute(const tools_fee_terms_t *terms, tools_fee_line_t *lines, size_t n,
                          tools_fee_totals_t *tot, size_t *bad_line);

/* The rule applied to one settled line, in English and in Chinese (out size TOOLS_FEE_RULE_MAX). */
void tools_feecalc_rule(const tools_fee_line_t *l, int64_t ratio_ppm, char *en, char *zh);

#endif
