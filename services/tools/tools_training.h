/*
 * tools_training.h - the life-agent trainer's data (data/training/: the
 * objection bank, persona building blocks and the published rubric) and the
 * training.scenario tool built on it.
 *
 * A tools_training_t is immutable once loaded (like tools_data_t): reload
 * builds a new one. Every validation error names the file and the field:
 *   "data/training/objections.json: objections[3].reactions.empathy.zh: missing"
 *
 * training.scenario {product_id, objection_set?, seed} -> {persona, product,
 * objections: [{id, text, themes, resistance, reactions: {<strategy>: {zh, en,
 * effect}}, resolved, repeat, better_phrasing}], strategies: [...], rubric: [...]}
 * (docs/workers/life_trainer.md). Deterministic in seed: the same arguments
 * and data always give the same result.
 */
#ifndef TOOLS_TRAINING_H
#define TOOLS_TRAINING_H

#include <jansson.h>
#include <stddef.h>

#include "tools_data.h"

#define TRAINING_SUBDIR         "training"
#define TRAINING_OBJECTIONS_MAX 64  /* objections in the bank */
#define TRAINING_STRATEGIES_MAX 32  /* strategies in the bank */
#define TRAINING_KEYWORDS_MAX   64  /* detection keywords per strategy and language */
#define TRAINING_BLOCK_MAX      64  /* entries of one persona building block */
#define TRAINING_RUBRIC_MAX     10  /* rubric dimensions */
#define TRAINING_SET_MAX        10  /* objections in one session (tools.json maxItems) */
#define TRAINING_DEFAULT_COUNT  3   /* objections in a session when none are asked for */
#define TRAINING_SEED_MAX       128 /* seed bytes (tools.json maxLength) */

typedef struct tools_training tools_training_t;

/*
 * Load and validate <data_dir>/training/{objections,personas,rubric}.json.
 * 0 and *out owns the new data; else MESH_ECONFIG (invalid content), MESH_EIO
 * (missing or unreadable file) or MESH_ENOMEM with "<file>: <field>: <reason>"
 * in err, and *out NULL.
 */
int tools_training_load(const char *data_dir, tools_training_t **out, char *err, size_t err_size);

void tools_training_destroy(tools_training_t **t);

/*
 * Build a scenario from t for product (a product object from products/<id>.json,
 * borrowed; must be of the bank's product_type). args as training.scenario's.
 * 0 and *result new, or MESH_EBADARGS (unknown objection id, wrong product
 * type), MESH_ENOMEM; err names the field.
 */
int tools_training_build(const tools_training_t *t, const json_t *product, const json_t *args,
                         json_t **result, char *err, size_t err_size);

/* The training.scenario tool (tools_tool_fn): reads d->training and the product from d. */
int tools_training_scenario(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                            size_t err_size);

#endif
