/*
 * rules_trainer.h - internals of the life_trainer engine of the rules backend
 * (寿险代理人陪练), shared by rules_trainer.c (the step dispatcher),
 * rules_trainer_turn.c (strategy detection and the customer's reaction) and
 * rules_trainer_score.c (the rubric score).
 *
 * The session lives in the conversation's records (state.update), so the
 * engine stays a pure function of the call (messages + call->state):
 *   persona, product, objections, strategy_bank, rubric   from training.scenario
 *   turn        trainee turns so far
 *   current     index of the objection the customer is raising
 *   resistance  how many good moves the current objection still needs
 *   attempts    trainee turns spent on the current objection
 *   strategies  the strategy log [{turn, objection, strategy, detected, effect, quote}]
 *   outcomes    [{objection, resolved, turns}] per objection the customer left
 *   last        what the last trainee turn did (read back to write the answer)
 *   score       the rubric score, at the end
 * and mode "training" while a session runs, "training_done" after it.
 */
#ifndef LLM_RULES_TRAINER_H
#define LLM_RULES_TRAINER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "rules.h"

#define TRAINER_TOOL_SCENARIO "training.scenario"
#define TRAINER_TOOL_STATE    "state.update"
#define TRAINER_PRODUCT       "ci-guard-2024" /* the critical-illness sample product */
#define TRAINER_MODE          "training"
#define TRAINER_MODE_DONE     "training_done"
#define TRAINER_ATTEMPTS_MAX  4       /* turns on one objection before the customer moves on */
#define TRAINER_RESIST_EXTRA  2       /* how far hardening can push resistance above its start */
#define TRAINER_QUOTE_MAX     120     /* bytes of a trainee quote kept as evidence */
#define TRAINER_EVIDENCE_MAX  5       /* quotes kept per rubric dimension */
#define TRAINER_EVIDENCE_SHOW 2       /* quotes shown per dimension in the answer */
#define TRAINER_LOG_MAX       64      /* strategy log entries kept (bounds records) */
#define TRAINER_SET_MAX       5       /* objection ids taken from a start message (records bound) */
#define TRAINER_ID_MAX        64      /* bytes of an objection or strategy id */
#define TRAINER_INT_MAX       1000000 /* bound on integers read from the records */
#define TRAINER_STRATEGY_NONE "none"

/* The conversation's records as of this step: call->state.records with this
 * turn's earlier state.update records merged over them. New object. */
json_t *trainer_records(const llm_call_t *call);

/* The mode as of this step ("" when unset). Borrowed from call or the turn's arguments. */
const char *trainer_mode(const llm_call_t *call);

/* ---- rules_trainer_turn.c ---- */

/*
 * Strategy detection: every strategy of bank (the scenario's strategies)
 * whose keywords occur in text at least min_hits times goes into *detected
 * (new array of ids, bank order). Returns the primary one (borrowed from
 * bank): the first poor strategy detected (a customer reacts to pressure
 * whatever else was said), else the good or neutral one with the most hits
 * (ties: bank order); TRAINER_STRATEGY_NONE when nothing was detected.
 */
const char *trainer_detect(const json_t *bank, const char *text, size_t len, json_t **detected);

/*
 * The records update of one trainee message (or of an end command when end
 * is true): the reaction, the progress through the objections, the log and,
 * when the session is over, the score. New object, NULL on ENOMEM.
 */
json_t *trainer_turn_update(const json_t *records, const char *text, size_t len, bool end);

/* Write the answer to the last trainee message from the records after its update. */
int trainer_turn_answer(const json_t *records, bool zh, llm_buf_t *out);

/* A trainee quote: text with line breaks as spaces, cut on a code point at
 * TRAINER_QUOTE_MAX bytes ("…" added), invalid UTF-8 replaced. New string. */
json_t *trainer_quote(const char *text, size_t len);

/* ---- rules_trainer_score.c ---- */

/* The score of a session from its records: {total, resolved, objections,
 * turns, dimensions: [{id, name, weight, score, evidence: [...]}]}. New. */
json_t *trainer_score(const json_t *records);

/* Append the score section of the answer. */
int trainer_score_text(const json_t *score, bool zh, llm_buf_t *out);

/* The localised text of o[key] ({zh, en}); "" when absent. */
const char *trainer_loc(const json_t *o, const char *key, bool zh);

#endif
