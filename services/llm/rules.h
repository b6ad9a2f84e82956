/*
 * rules.h - internals of the built-in deterministic "rules" backend: the
 * per-agent engines and the text helpers they share.
 *
 * An engine turns a call into either a text answer or one tool call. Engines
 * are pure functions of the call: no I/O, no clocks, no global state, so the
 * same request always gets the same answer and the engines are tested
 * directly (tests/unit/test_llm_*.c).
 */
#ifndef LLM_RULES_H
#define LLM_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "llm_backend.h"
#include "llm_buf.h"

#define LLM_POLICY_NO_LEN 6   /* "P" + 5 digits */
#define LLM_DELTA_MAX     96  /* longest streamed delta, bytes */
#define LLM_FIELD_MAX     256 /* longest policy-data field quoted in an answer, bytes */
#define LLM_LIST_MAX      20  /* coverages / exclusions listed in one answer */

/* Tool calls one engine answer may ask for at once (they run in parallel). */
#define LLM_RULES_CALLS_MAX 8

/* One tool call of an engine's answer. */
typedef struct {
    char id[LLM_CALL_ID_MAX + 1];
    const char *name;  /* static string */
    json_t *arguments; /* owned */
} llm_rules_call_t;

/* An engine's answer: text, or 1..LLM_RULES_CALLS_MAX tool calls. */
typedef struct {
    llm_result_type_t type;
    llm_buf_t text; /* LLM_RESULT_TEXT */
    llm_rules_call_t calls[LLM_RULES_CALLS_MAX];
    size_t n_calls;
} llm_rules_out_t;

void llm_rules_out_init(llm_rules_out_t *out);
void llm_rules_out_clear(llm_rules_out_t *out);

/*
 * Append a tool call to out (type becomes LLM_RESULT_TOOL_CALLS). arguments
 * is stolen (freed on every error too). The call id is "call_<n>" with n =
 * the calls already in call's messages + the calls already in out + 1, so
 * ids never repeat within a conversation's turn. 0, MESH_ENOMEM (arguments
 * NULL) or MESH_ETOOBIG (already LLM_RULES_CALLS_MAX calls).
 */
int llm_rules_add_call(const llm_call_t *call, llm_rules_out_t *out, const char *name,
                       json_t *arguments);

/* Tool calls made so far in call's messages (assistant tool_calls, all messages). */
size_t llm_rules_calls_so_far(const llm_call_t *call);

/* Run the engine of call->agent (or the "not available" one). 0 or MESH_ENOMEM/ETOOBIG. */
int llm_rules_answer(const llm_call_t *call, llm_rules_out_t *out);

/* Engines. */
int llm_rules_policy_qa(const llm_call_t *call, llm_rules_out_t *out);
int llm_rules_unavailable(const llm_call_t *call, llm_rules_out_t *out);
int llm_rules_claims_intake(const llm_call_t *call, llm_rules_out_t *out); /* rules_intake*.c */
int llm_rules_health_review(const llm_call_t *call, llm_rules_out_t *out); /* rules_review*.c */
int llm_rules_life_trainer(const llm_call_t *call, llm_rules_out_t *out);  /* rules_trainer*.c */
int llm_rules_triage(const llm_call_t *call, llm_rules_out_t *out);        /* rules_triage.c */

/*
 * Compose the policy_qa answer to question q (the last user message) from a
 * policy.lookup result (borrowed). Appends to out; 0 or the buffer's error.
 */
int llm_rules_policy_answer(const json_t *policy, const char *q, size_t qlen, bool zh,
                            llm_buf_t *out);

/* ---- text helpers (rules_text.c) ---- */

/*
 * Find the last policy number in s[0..len): 'P' or 'p' followed by exactly
 * five ASCII digits, not preceded by an ASCII letter or digit and not
 * followed by a digit. Writes the normalised number ("P10023") into out.
 * Returns 1 if found, else 0.
 */
int llm_rules_find_policy_no(const char *s, size_t len, char out[LLM_POLICY_NO_LEN + 1]);

/* Offset of the first occurrence of kw (lower case) in s[0..len), ASCII case-insensitive;
 * -1 if none. */
long llm_rules_find(const char *s, size_t len, const char *kw);

/* 1 if any of the NULL-terminated keywords occurs in s[0..len) (ASCII case-insensitive). */
int llm_rules_has_any(const char *s, size_t len, const char *const *keywords);

/* 1 when s[0..len) asks for a person ("转人工", "talk to a human", ...), else 0. */
int llm_rules_wants_human(const char *s, size_t len);

/*
 * Repeated failure to understand (issue 5): consecutive customer messages an
 * engine could not use are counted in state records.misunderstood. Call it
 * in the step that reads the customer's message, with args the arguments of
 * the state.update that step makes (an object; "records" is created or
 * merged into). understood: reset the count (adds misunderstood 0 only when
 * it was not 0). Not understood: adds misunderstood <count + 1> and, when
 * that reaches LLM_RULES_MISSES_MAX, handoff {reason: "not_understood: "
 * + detail (NULL: a generic text in call->lang)}. The opening message (no
 * assistant text before it: nothing was asked yet) is never a miss. A count
 * already at the maximum is from a handoff a person has since released: it
 * starts over.
 * Returns 2 when it added the handoff, 1 when it added only the count, 0 when
 * it added nothing, or MESH_ENOMEM.
 */
#define LLM_RULES_MISSES_MAX 3
int llm_rules_misses_note(const llm_call_t *call, bool understood, const char *detail,
                          json_t *args);

/* Append an amount of money: zh "1万元" / "8,000元" / "8,000.50元", en "CNY 10,000". */
int llm_rules_money(llm_buf_t *b, double amount, bool zh);

/* Append a ratio (0.6 -> "60%", 0.655 -> "65.5%"). Values above 1 are taken as percents. */
int llm_rules_percent(llm_buf_t *b, double ratio);

/*
 * The text of a localised value: a string, or a map {zh, en} (the other
 * language when the wanted one is missing). NULL when there is none.
 */
const char *llm_rules_loc(const json_t *v, bool zh, size_t *len);

/*
 * Length of the next streamed delta starting at s[0..len): up to and
 * including the next sentence or clause mark, at most LLM_DELTA_MAX bytes,
 * always ending on a UTF-8 code point boundary, always >= 1 when len > 0.
 */
size_t llm_rules_next_delta(const char *s, size_t len);

#endif
