/*
 * agents.h - digital-worker (agent) definitions and the tool catalogue.
 *
 * Loaded from MESH_DATA_DIR: tools.json (array of {name, description,
 * parameters, idempotent}) and agents/<name>.json, one agent per file:
 *
 *   {"name": "policy_qa",                       = the file's base name
 *    "description": {"zh": "...", "en": "..."}, optional
 *    "prompt": {"zh": "...", "en": "..."},      system prompt per language
 *    "tools": ["policy.lookup"],                allowlist; names from tools.json
 *    "tier": "small",                           model tier for llm.chat
 *    "max_steps": 4,                            llm calls per turn
 *    "triage": {"keywords": ["保单", "policy"]}, optional
 *    "fallback": {"zh": "...", "en": "..."}}    answer when max_steps runs out
 *
 * A loaded set is immutable and reference counted: a reload (SIGHUP) builds
 * a new set and swaps it in; turns still running keep the set they started
 * with until they finish.
 */
#ifndef ROUTER_AGENTS_H
#define ROUTER_AGENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define ROUTER_AGENT_NAME_MAX  32 /* [a-z0-9_] */
#define ROUTER_TOOL_NAME_MAX   64 /* [a-z0-9._-] */
#define ROUTER_TIER_MAX        32
#define ROUTER_PROMPT_MAX      (32 * 1024) /* bytes per prompt / fallback text */
#define ROUTER_AGENT_TOOLS_MAX 32
#define ROUTER_KEYWORDS_MAX    128
#define ROUTER_KEYWORD_MAX     64 /* bytes per keyword */
#define ROUTER_MAX_STEPS_MAX   32
#define ROUTER_AGENTS_MAX      256
#define ROUTER_TOOLS_MAX       256
#define ROUTER_DATA_FILE_MAX   (4 * 1024 * 1024) /* bytes of one agent/tools file */

typedef struct {
    const char *name;         /* into the tools document */
    const json_t *parameters; /* JSON Schema of the arguments */
    bool idempotent;
} router_tool_t;

typedef struct {
    const char *name;
    const char *tier;
    int max_steps;
    const char *prompt_zh, *prompt_en;
    const char *fallback_zh, *fallback_en;
    const char **tools; /* allowlist */
    size_t n_tools;
    const char **keywords; /* triage keywords */
    size_t n_keywords;
    json_t *llm_tools; /* [{name, description, parameters}] of the allowed tools */
    json_t *def;       /* the file's document (owns the strings above) */
} router_agent_t;

typedef struct router_agents router_agents_t;

/*
 * Load and validate tools.json and agents/ *.json under data_dir. The agent
 * default_agent must exist. On error returns MESH_ECONFIG (or MESH_ENOMEM)
 * with "file: field: reason" in err and *out NULL. The new set has one reference.
 */
int router_agents_load(const char *data_dir, const char *default_agent, router_agents_t **out,
                       char *err, size_t err_size);

router_agents_t *router_agents_ref(router_agents_t *a);
/* Drop a reference; frees the set at zero. NULLs *a_p. Safe on NULL. */
void router_agents_unref(router_agents_t **a_p);

size_t router_agents_count(const router_agents_t *a);
const router_agent_t *router_agents_at(const router_agents_t *a, size_t i);
const router_agent_t *router_agents_find(const router_agents_t *a, const char *name);
const router_agent_t *router_agents_default(const router_agents_t *a);

/* The first agent (in file-name order) with a keyword contained in text,
 * compared case-insensitively (ASCII); NULL when none matches. */
const router_agent_t *router_agents_triage(const router_agents_t *a, const char *text);

/* Triage with the default as the last resort: never NULL. */
const router_agent_t *router_agents_pick(const router_agents_t *a, const char *state_agent,
                                         const char *requested, const char *text);

const router_tool_t *router_agents_tool(const router_agents_t *a, const char *name);
bool router_agent_allows(const router_agent_t *ag, const char *tool);
const char *router_agent_prompt(const router_agent_t *ag, const char *lang);
const char *router_agent_fallback(const router_agent_t *ag, const char *lang);

#endif
