/*
 * rules_intake.h - internals of the claims_intake engine of the rules backend
 * (车险报案/查勘, first notice of loss).
 *
 * rules_intake.c         the turn logic: state view, next action, tool calls
 * rules_intake_extract.c free-text slot extraction (Chinese and English)
 * rules_intake_intents.c intents (handoff, batch, confirmation), numbered answers
 * rules_intake_scan.c    the byte-level scanners the two above share
 * rules_intake_say.c     the texts: questions, batch list, summary, claim answer
 *
 * Slot values are strings. Free-text slots keep the customer's words
 * (accident_time, place, description, damage); the others are normalised:
 * plates "沪A12345、沪B67890" (no "·"), injuries "none"|"injured"|"death",
 * police "yes"|"no", liability (the INSURED's share) "full"|"major"|"equal"|
 * "minor"|"none"|"undetermined", contact the phone digits, policy_no
 * "P10003", damage_amount / third_party_damage_amount a decimal CNY amount
 * ("3000", "1250.5") or "unknown".
 */
#ifndef LLM_RULES_INTAKE_H
#define LLM_RULES_INTAKE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "llm_buf.h"

typedef enum {
    INTAKE_ACCIDENT_TIME = 0,
    INTAKE_PLACE,
    INTAKE_DESCRIPTION,
    INTAKE_PLATES,
    INTAKE_INJURIES,
    INTAKE_DAMAGE,
    INTAKE_POLICE,
    INTAKE_LIABILITY,
    INTAKE_DAMAGE_AMOUNT,
    INTAKE_TP_AMOUNT,
    INTAKE_CONTACT,
    INTAKE_POLICY_NO,
    INTAKE_SLOT_N,
} intake_slot_t;

#define INTAKE_NONE        (-1)      /* no slot (e.g. nothing was asked) */
#define INTAKE_VALUE_MAX   200       /* longest free-text slot value kept, bytes */
#define INTAKE_PLATES_MAX  4         /* plates kept in the plates slot */
#define INTAKE_TEXT_MAX    4096      /* longest customer message analysed, bytes */
#define INTAKE_AMOUNT_MAX  100000000 /* largest amount accepted, CNY */
#define INTAKE_BATCH_ITEMS INTAKE_SLOT_N

/* The slot's name in the state ("accident_time" ...), or NULL when out of range. */
const char *intake_slot_name(int slot);
/* The slot with that name, or INTAKE_NONE. */
int intake_slot_by_name(const char *name);

/* What a customer message asks for, besides facts. */
typedef struct {
    bool injury;  /* someone is hurt */
    bool death;   /* someone died */
    bool dispute; /* liability disputed */
    bool human;   /* asks for a person */
    bool batch;   /* wants all questions at once */
    bool confirm; /* yes / 确认 */
    bool deny;    /* no / 不对 */
} intake_intents_t;

void intake_intents(const char *s, size_t len, intake_intents_t *it);

/*
 * Extract slot values from s[0..len) (clipped to INTAKE_TEXT_MAX) into found
 * (a JSON object, slot name -> string; only slots found are set). asked is the
 * slot the customer is answering (INTAKE_NONE when unknown): a bare answer
 * ("全责", "来了", "3000", a road name alone) fills it. Returns 0 or MESH_ENOMEM.
 */
int intake_extract(const char *s, size_t len, int asked, json_t *found);

/*
 * Split a batch-mode reply into its numbered answers: starts[k] / lens[k] is
 * the text after marker k+1 ("1." "1、" "(1)" "①" ...), len 0 when that number
 * is absent. Returns how many markers were found (0: not numbered).
 */
size_t intake_split_numbered(const char *s, size_t len, size_t n_items, size_t *starts,
                             size_t *lens);

/* The insured's liability share in percent for a liability code; -1 when unknown. */
int intake_liability_share(const char *code);

/* ---- scanning (rules_intake_scan.c): over (pointer, length), never past len ---- */

/* Bytes of the UTF-8 sequence led by c (1 for a stray byte). */
size_t intake_u8len(unsigned char c);
/* Start of the code point before offset i (i > 0). */
size_t intake_u8prev(const char *s, size_t i);
bool intake_is_digit(unsigned char c);
bool intake_is_alpha(unsigned char c);
/* Whether one of the NULL-terminated strings of set starts at s + i. */
bool intake_cp_in(const char *s, size_t len, size_t i, const char *const *set);
/* The clause [*a, *b) around offset i (clause marks: ，。！？；,!?; newline, ". "). */
void intake_clause_at(const char *s, size_t len, size_t i, size_t *a, size_t *b);
/* Shrink [*a, *b) past blanks, colons and full-width spaces at both ends. */
void intake_trim(const char *s, size_t *a, size_t *b);
/* Whether s[0..n) is valid UTF-8 without NUL bytes. */
bool intake_utf8_ok(const char *s, size_t n);
/* First offset of any keyword in s[0..len) (ASCII case-insensitive), -1 if none; *kl its length. */
long intake_find_any(const char *s, size_t len, const char *const *kws, size_t *kl);
/* Whether kw occurs at least once not negated (没 无 不 未 no not n't nobody never in the 12
 * bytes before it, within its clause). */
bool intake_has_positive(const char *s, size_t len, const char *kw);

/* ---- texts (rules_intake_say.c) ---- */

/* The question asking for slot. */
const char *intake_question(int slot, bool zh);
/* The slot's label for summaries ("出险时间" / "time of the accident"). */
const char *intake_label(int slot, bool zh);
/* Append the slot's value as the customer should read it (liability codes localised ...). */
void intake_say_value(llm_buf_t *b, int slot, const char *value, bool zh);
/* Append the summary of every filled slot, one "- label: value" line each. */
void intake_say_summary(llm_buf_t *b, const json_t *slots, bool zh);
/* Append the liability suggestion and the criteria (shares, 交强险 limits). */
void intake_say_liability(llm_buf_t *b, const json_t *slots, const char *fee_liability, bool zh);
/* Append the payout estimate of a fee.calc motor result (borrowed), labelled as an estimate. */
void intake_say_estimate(llm_buf_t *b, const json_t *fee, const json_t *slots, bool zh);

/*
 * The liability to compute with: the slot's code, or for "undetermined" /
 * missing a suggestion from the description (被追尾 -> none, 追尾 -> full,
 * otherwise equal). *suggested tells which.
 */
const char *intake_effective_liability(const json_t *slots, bool *suggested);

#endif
