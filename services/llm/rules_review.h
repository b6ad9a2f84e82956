/*
 * rules_review.h - internals of the health_review digital worker of the
 * rules backend (健康险理赔审核): the claim it reviews, the parsers that fill
 * it from a chat message or a JSON body, the conversation-state slots it is
 * kept in between messages, and the per-line decisions.
 *
 * Files: rules_review.c (the engine: which step of the review a call is at),
 * rules_review_parse.c (chat text: header facts, dates, where the bill is),
 * rules_review_lines.c (bill lines), rules_review_claim.c (JSON body, slots,
 * merging, what is missing), rules_review_decide.c (policy and catalogue
 * checks per line), rules_review_answer.c (the answer text and the decision
 * record). Like every rules engine these are pure functions of their inputs.
 */
#ifndef LLM_RULES_REVIEW_H
#define LLM_RULES_REVIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_buf.h"
#include "rules.h"

#define REVIEW_LINES_MAX                                                                           \
    40 /* bill lines of one claim (the answer's table must fit LLM_BUF_MAX)                        \
        */
#define REVIEW_ITEM_MAX     200 /* bytes of an item name (data/tools.json: maxLength 200) */
#define REVIEW_CATEGORY_MAX 64  /* bytes of a bill category (data/tools.json: maxLength 64) */
#define REVIEW_TEXT_MAX     160 /* bytes of the diagnosis or the hospital */
#define REVIEW_DATE_LEN     10  /* "YYYY-MM-DD" */
#define REVIEW_PROBLEMS_MAX 512 /* bytes of the "what is wrong with the input" note */
#define REVIEW_REASON_MAX   480 /* bytes of a handoff reason (the state field allows 500) */
/* Largest amount accepted on a line: data/tools.json's fee.calc maximum (CNY 10^10), in fen. */
#define REVIEW_FEN_MAX 1000000000000LL
/* Longest JSON body taken as a claim (a message is bounded by the gateway already). */
#define REVIEW_JSON_MAX (64 * 1024)

#define REVIEW_TOOL_POLICY "policy.lookup"
#define REVIEW_TOOL_MED    "medical.lookup"
#define REVIEW_TOOL_FEE    "fee.calc"
#define REVIEW_TOOL_STATE  "state.update"

/* One bill line. Amounts in integer fen (1/100 CNY). */
typedef struct {
    char item[REVIEW_ITEM_MAX + 1];
    char category[REVIEW_CATEGORY_MAX + 1]; /* "" when not given */
    int64_t amount_fen;
    int64_t social_fen; /* paid by social insurance; 0 when not given */
} review_line_t;

/* Tri-state facts: unknown, no, yes. */
typedef enum { REVIEW_UNKNOWN = -1, REVIEW_NO = 0, REVIEW_YES = 1 } review_tri_t;

/* The claim under review. Strings are "" when unknown. */
typedef struct {
    char policy_no[LLM_POLICY_NO_LEN + 1];
    char diagnosis[REVIEW_TEXT_MAX + 1];
    char hospital[REVIEW_TEXT_MAX + 1];
    char admission[REVIEW_DATE_LEN + 1];
    char discharge[REVIEW_DATE_LEN + 1];
    char onset[REVIEW_DATE_LEN + 1];
    review_tri_t social_used;
    review_tri_t pre_existing;
    review_tri_t accident;
    review_line_t lines[REVIEW_LINES_MAX];
    size_t n_lines;
    bool json_body; /* came from a JSON body (a fresh claim) */
    /* Input problems to tell the customer about (lines without an amount, a
     * malformed JSON body, too many lines ...), in the customer's language. */
    char problems[REVIEW_PROBLEMS_MAX];
} review_claim_t;

/* ---- parsing (rules_review_parse.c, rules_review_claim.c) ---- */

void review_claim_init(review_claim_t *c);

/*
 * Parse one customer message into c (initialised by the caller): a JSON body
 * (the text is a JSON object, see docs/workers/health_review.md) or a
 * semi-structured chat message. Problems found are appended to c->problems
 * in zh or en. Never fails: what cannot be read is left unknown.
 */
void review_parse_message(const char *text, size_t len, bool zh, review_claim_t *c);

/* Chat text only (rules_review_parse.c). */
void review_parse_chat(const char *text, size_t len, bool zh, review_claim_t *c);

/* JSON body only: 1 when text is a JSON object (c filled), 0 when it is not JSON at all. */
int review_parse_json(const char *text, size_t len, bool zh, review_claim_t *c);

/* ---- bill lines (rules_review_lines.c) ---- */

/*
 * One bill line at s[0..n) (a leading "1." / "1、" / "(1)" marker is skipped).
 * Returns 1 when *ln was read, 0 when the text had no item and no amount, -1
 * when it had an item but no valid amount.
 */
int review_line_parse(const char *s, size_t n, review_line_t *ln);

/* Parse a line into c->lines, or note the problem (no amount, too many lines). */
void review_line_take(const char *s, size_t n, bool zh, review_claim_t *c);

/* Offset after a leading numbering marker ("1." "1、" "(1)" "（1）"), else after blanks. */
size_t review_line_marker(const char *s, size_t n);

/* Offset of numbering marker k at a word boundary in s[i..n), or n. */
size_t review_line_next_marker(const char *s, size_t n, size_t i, long k);

/* 1 when s[0..n) mentions money: 元/CNY/RMB/¥ or a social-insurance payment. */
bool review_line_has_money(const char *s, size_t n);

/* "YYYY-MM-DD" of a real calendar date -> days since 1970-01-01; -1 when invalid. */
long review_date_days(const char *s);

/*
 * Read a date at s[0..len) in one of 2026-05-10, 2026/5/10, 2026.05.10,
 * 2026年5月10日 into out ("YYYY-MM-DD"). Returns the bytes consumed, 0 when
 * there is no valid date there.
 */
size_t review_read_date(const char *s, size_t len, char out[REVIEW_DATE_LEN + 1]);

/* Append a problem note (clipped to the buffer). */
void review_problem(review_claim_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- slots (rules_review_claim.c) ---- */

/* 1 when the slots object holds any fact of a review claim. */
int review_slots_have_claim(const json_t *slots);

/* Fill c from the slots (unknown keys ignored, malformed values skipped). */
void review_claim_from_slots(const json_t *slots, review_claim_t *c);

/*
 * The slots object for state.update: every key of the claim, null for the
 * unknown ones (null deletes a stale value). bill_lines is the lines as
 * compact JSON text (slot values are scalars). NULL on ENOMEM.
 */
json_t *review_claim_to_slots(const review_claim_t *c);

/*
 * Merge the facts of msg (one message) over base. A JSON body replaces the
 * claim. Lines: when decided is true (the previous claim has a decision) or
 * msg's first line repeats one already in base, msg's lines replace base's;
 * otherwise they are added after them (a bill sent over several messages).
 * Problems are taken from msg.
 */
void review_claim_merge(review_claim_t *base, const review_claim_t *msg, bool decided);

/* 1 when a and b hold the same facts (problems ignored). */
int review_claim_same(const review_claim_t *a, const review_claim_t *b);

/* 1 when c holds no fact at all. */
int review_claim_empty(const review_claim_t *c);

/* Bit set of the essentials still missing. */
enum {
    REVIEW_MISS_POLICY = 1 << 0,
    REVIEW_MISS_DIAGNOSIS = 1 << 1,
    REVIEW_MISS_HOSPITAL = 1 << 2,
    REVIEW_MISS_ADMISSION = 1 << 3,
    REVIEW_MISS_DISCHARGE = 1 << 4,
    REVIEW_MISS_SOCIAL = 1 << 5,
    REVIEW_MISS_LINES = 1 << 6,
};
unsigned review_claim_missing(const review_claim_t *c);

/* ---- decisions (rules_review_decide.c) ---- */

typedef enum {
    REVIEW_PAYABLE = 0,
    REVIEW_REFUSED = 1,
    REVIEW_PENDING = 2,
} review_verdict_t;

typedef enum {
    REVIEW_WHY_NONE = 0,
    REVIEW_WHY_NOT_IN_FORCE,     /* admission outside the period of insurance */
    REVIEW_WHY_LAPSED,           /* lapsed policy: a person checks the lapse date */
    REVIEW_WHY_WAITING,          /* illness within the waiting period */
    REVIEW_WHY_PRE_EXISTING,     /* pre-existing condition */
    REVIEW_WHY_EXCLUDED,         /* the item's catalogue class is excluded */
    REVIEW_WHY_UNKNOWN_ITEM,     /* not in the catalogue */
    REVIEW_WHY_NO_CATALOGUE,     /* medical.lookup failed or not offered */
    REVIEW_WHY_SETTLEMENT_FAILED /* fee.calc failed */
} review_why_t;

/* The catalogue's answer for one line (borrowed from the medical.lookup result). */
typedef struct {
    const char *match; /* "exact" | "alias" | "none" | NULL (no result) */
    const char *code;
    const char *name;
    const char *class_id;
    const json_t *class_name; /* {zh, en} or NULL */
    const char *category;
} review_cat_t;

typedef struct {
    review_verdict_t verdict;
    review_why_t why;
    const json_t *exclusion; /* REVIEW_WHY_EXCLUDED: the policy's exclusion {id, text, clause} */
    review_cat_t cat;
    /* Settlement (fee.calc), payable lines only. */
    bool settled;
    int64_t deductible_fen;
    int64_t payable_fen;
    double ratio;
} review_line_decision_t;

/* Policy-level facts (borrowed from the policy.lookup result). */
typedef struct {
    const json_t *policy;
    const char *status;     /* "active" | "lapsed" | "expired" | "" */
    const char *start_date; /* "" when absent */
    const char *end_date;
    long waiting_days;                     /* -1 when absent */
    long days_into_policy;                 /* illness date - start date, days; -1 unknown */
    const char *illness_date;              /* the date the waiting period is checked on */
    char waiting_end[REVIEW_DATE_LEN + 1]; /* last day of the waiting period, "" unknown */
    bool medical;                          /* product type medical */
    bool in_force;                         /* admission within [start, end] */
    bool lapsed;                           /* status lapsed (admission within the term) */
    bool in_waiting;                       /* illness (not accident) within the waiting period */
    bool pre_existing;                     /* declared pre-existing condition */
    const char *clause_period;             /* clause ids found in the policy's clause texts */
    const char *clause_waiting;
    const char *clause_ratio;
    const char *clause_pre_existing; /* the pre_existing exclusion's clause */
    const char *clause_waiting_excl; /* the waiting_period_illness exclusion's clause */
} review_policy_t;

/* Read the policy facts for claim c. */
void review_policy_read(const json_t *policy, const review_claim_t *c, review_policy_t *p);

/*
 * Decide every line of c. items: the medical.lookup result's "items" array
 * (NULL when the catalogue could not be asked). Fills d[0..c->n_lines).
 */
void review_decide(const review_claim_t *c, const review_policy_t *p, const json_t *items,
                   review_line_decision_t *d);

/*
 * Apply a fee.calc result (its "lines" correspond, in order, to the payable
 * lines). ok false: the payable lines become pending (settlement failed).
 */
void review_settle(const review_claim_t *c, const json_t *fee, bool ok, review_line_decision_t *d);

/* "approved" | "partial" | "refused" | "pending" */
const char *review_status(const review_claim_t *c, const review_line_decision_t *d);

/* ---- the answer (rules_review_answer.c) ---- */

/* Everything the answer and the record are written from. */
typedef struct {
    bool zh;
    const review_claim_t *claim;
    const review_policy_t *pol;
    const review_line_decision_t *d;
    const json_t *fee; /* the fee.calc result or NULL */
} review_result_t;

/* records.decision for state.update. NULL on ENOMEM. */
json_t *review_decision_record(const review_result_t *r);

/* The handoff reason (pending lines), "" when there is none. */
void review_handoff_reason(const review_result_t *r, char *out, size_t out_size);

/* The answer: steps, table, total, refusals with clauses, the final-review note. */
int review_answer(const review_result_t *r, llm_buf_t *b);

/* Amount in fen as "6,420.00". */
int review_fen(llm_buf_t *b, int64_t fen);

/* Round CNY (a JSON number) to fen; -1 when not a number in range. */
int64_t review_json_fen(const json_t *v);

#endif
