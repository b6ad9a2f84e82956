/*
 * tools_catalogue.h - the medical catalogue (data/medical/catalogue.json):
 * billed item names -> a catalogue entry with its bill category, its class
 * (e.g. biochemical_enzyme vs. trace_element) and the product exclusion
 * classes it falls under. Read by the medical.lookup tool.
 *
 * File shape (docs/tools.md, data/README.md):
 *   {"_sample": true, "categories": ["检查费", ...],
 *    "classes": {"<class id>": {"zh", "en"}, ...},
 *    "items": [{"code", "name", "aliases": [..], "name_en", "category", "class",
 *               "exclusion_classes": [..]}, ...]}
 * Validation (errors name file and field): codes unique; every name and
 * alias unique across the whole catalogue, also after normalisation; category
 * one of categories; class one of classes; each exclusion class the id of an
 * exclusion of some loaded product.
 *
 * Matching, in order: the exact name (match "exact"), an exact alias ("alias"),
 * then the normalised query against the normalised names and aliases ("alias"
 * with normalized = true). Each step is one hash lookup.
 *
 * A tools_catalogue_t is immutable once built; reload builds a new one.
 */
#ifndef TOOLS_CATALOGUE_H
#define TOOLS_CATALOGUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "tools_check.h"

#define TOOLS_CATALOGUE_ITEMS_MAX   20000 /* items in the catalogue */
#define TOOLS_CATALOGUE_ALIASES_MAX 16    /* aliases of one item */
#define TOOLS_CATALOGUE_CLASSES_MAX 256   /* classes and categories */
#define TOOLS_CATALOGUE_NAME_MAX    128   /* characters of a name, alias or name_en */
#define TOOLS_CATALOGUE_CODE_MAX    32    /* bytes of a code: [A-Z0-9-] */
#define TOOLS_CATALOGUE_EXCL_MAX    8     /* exclusion classes of one item */
#define TOOLS_MED_QUERY_MAX         200   /* characters of one looked-up name (tools.json) */
#define TOOLS_MED_ITEMS_MAX         200   /* names in one medical.lookup call (tools.json) */

typedef struct tools_catalogue tools_catalogue_t;

typedef enum {
    TOOLS_MED_NONE = 0,
    TOOLS_MED_EXACT,      /* the item's name */
    TOOLS_MED_ALIAS,      /* one of its aliases, byte for byte */
    TOOLS_MED_NORMALIZED, /* name or alias after normalisation */
} tools_med_match_t;

/*
 * Validate root (the parsed catalogue file; a reference is taken) and index
 * it. exclusion_ids: an object whose keys are the exclusion ids known to the
 * products. 0 and *out, or MESH_ECONFIG (message via c) / MESH_ENOMEM.
 */
int tools_catalogue_build(tools_check_t *c, json_t *root, const json_t *exclusion_ids,
                          tools_catalogue_t **out);

void tools_catalogue_destroy(tools_catalogue_t **cat_p);

size_t tools_catalogue_count(const tools_catalogue_t *cat);

/*
 * The item for query (NUL-terminated, valid UTF-8), or NULL (*how NONE).
 * *matched (optional) receives the catalogue string that matched (borrowed).
 */
const json_t *tools_catalogue_find(const tools_catalogue_t *cat, const char *query,
                                   tools_med_match_t *how, const char **matched);

/* The {zh, en} name of a class id, or NULL (borrowed). */
const json_t *tools_catalogue_class_name(const tools_catalogue_t *cat, const char *class_id);

/*
 * Normalise s (valid UTF-8) into out: full-width ASCII forms -> ASCII,
 * ideographic and ASCII whitespace removed, ASCII lower-cased, bracketed
 * suffixes and prefixes ("（原子吸收法）", "【急】") dropped unless a group is
 * the whole text, remaining brackets removed. out_size >= strlen(s) + 1 always suffices (never
 * longer). Returns the output length, or -1 when out is too small.
 */
int tools_catalogue_normalize(const char *s, char *out, size_t out_size);

#endif
