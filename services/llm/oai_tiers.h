/*
 * oai_tiers.h - model tiers of the openai backend: tier name -> (endpoint, model).
 *
 * MESH_LLM_TIERS: "name=<base url>|<model>[,name=<base url>|<model>...]", e.g.
 *   "small=http://127.0.0.1:8000/v1|qwen2.5-7b,large=https://api.example.com/v1|big-model"
 * MESH_LLM_TIERS_FILE: the same as a JSON object
 *   {"small": {"url": "http://127.0.0.1:8000/v1", "model": "qwen2.5-7b"}, ...}
 * The base url is what OpenAI SDKs call base_url (it ends before
 * "/chat/completions"); http:// or https:// only; a trailing '/' is dropped.
 * A call whose tier is not in the table uses the tier named "default" when
 * there is one, else the first tier.
 */
#ifndef OAI_TIERS_H
#define OAI_TIERS_H

#include <stddef.h>

#include "llm_backend.h"

#define LLM_OAI_TIERS_MAX      16          /* tiers in the table */
#define LLM_OAI_URL_MAX        512         /* base url bytes */
#define LLM_OAI_MODEL_MAX      128         /* model name bytes */
#define LLM_OAI_TIERS_SPEC_MAX 8192        /* MESH_LLM_TIERS bytes */
#define LLM_OAI_TIERS_FILE_MAX (64 * 1024) /* MESH_LLM_TIERS_FILE bytes */

typedef struct {
    char name[LLM_TIER_MAX + 1];
    char url[LLM_OAI_URL_MAX + 1];
    char model[LLM_OAI_MODEL_MAX + 1];
} llm_oai_tier_t;

typedef struct {
    llm_oai_tier_t t[LLM_OAI_TIERS_MAX];
    size_t n;
} llm_oai_tiers_t;

/* Parse the MESH_LLM_TIERS text. 0 or MESH_ECONFIG with a reason in err (no secrets in it). */
int llm_oai_tiers_parse(const char *spec, llm_oai_tiers_t *out, char *err, size_t err_size);

/* Load the JSON file form. 0 or MESH_ECONFIG with a reason in err. */
int llm_oai_tiers_load_file(const char *path, llm_oai_tiers_t *out, char *err, size_t err_size);

/* The tier for name (see above); NULL only when the table is empty. */
const llm_oai_tier_t *llm_oai_tiers_find(const llm_oai_tiers_t *t, const char *name);

#endif
