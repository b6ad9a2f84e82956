/*
 * agents.h - digital-worker (agent) definitions and the tool catalogue.
 *
 * Loaded from MESH_DATA_DIR: tools.json (array of {name, description,
 * parameters, idempotent, service}) and agents/<name>.json, one agent per file:
 *
 *   {"name": "policy_qa",                       = the file's base name
 *    "description": {"zh": "...", "en": "..."}, optional
 *    "prompt": {"zh": "...", "en": "..."},      system prompt per language
 *    "tools": ["policy.lookup"],                allowlist; names from tools.json
 *    "tier": "small",                           model tier for llm.chat
 *    "max_steps": 4,                            llm calls per turn
 *    "triage": {"keywords": ["保单", "policy"],  optional: new conversations
 *               "switch": ["我要问保单"]},        optional: switch phrases
 *    "sticky": true,                            optional: while this agent holds a
 *                                               conversation, other agents' switch phrases
 *                                               are ignored (role-play text must not move it)
 *    "fallback": {"zh": "...", "en": "..."},    answer when max_steps runs out
 *    "fallback_mode": "rules" | "handoff",      optional, default "rules"
 *    "response_format": "json" | "text",        optional, default "text"
 *    "slots": [{"name", "required", "label": {"zh", "en"}}],   optional, documentary
 *    "handoff_rules": [{"when", "reason": {"zh", "en"}}]}       optional, documentary
 *
 * A tool's "service" (tools.json) names where its tool.call goes: "tools"
 * (default), "memory", or "router" (run inside the router: state.update).
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

#define ROUTER_AGENT_NAME_MAX    32 /* [a-z0-9_] */
#define ROUTER_TOOL_NAME_MAX     64 /* [a-z0-9._-] */
#define ROUTER_TIER_MAX          32
#define ROUTER_PROMPT_MAX        (32 * 1024) /* bytes per prompt / fallback text */
#define ROUTER_AGENT_TOOLS_MAX   32
#define ROUTER_KEYWORDS_MAX      128
#define ROUTER_KEYWORD_MAX       64 /* bytes per keyword */
#define ROUTER_MAX_STEPS_MAX     32
#define ROUTER_AGENTS_MAX        256
#define ROUTER_TOOLS_MAX         256
#define ROUTER_DATA_FILE_MAX     (4 * 1024 * 1024) /* bytes of one agent/tools file */
#define ROUTER_SWITCH_MAX        64                /* switch phrases per agent */
#define ROUTER_SLOT_DECLS_MAX    64                /* "slots" entries per agent */
#define ROUTER_SLOT_NAME_MAX     64                /* bytes of a slot name ([a-z0-9_]) */
#define ROUTER_LABEL_MAX         256               /* bytes of a slot label per language */
#define ROUTER_HANDOFF_RULES_MAX 64
#define ROUTER_RULE_WHEN_MAX     64  /* bytes of a handoff rule's "when" */
#define ROUTER_REASON_MAX        500 /* bytes of a handoff reason (per language) */

/* The router-local tool (service "router"). */
#define ROUTER_TOOL_STATE_UPDATE "state.update"

/* Where a tool runs (tools.json "service"). */
typedef enum {
    ROUTER_TOOL_SVC_TOOLS = 0, /* tool.call on service "tools" */
    ROUTER_TOOL_SVC_MEMORY,    /* tool.call on service "memory" */
    ROUTER_TOOL_SVC_ROUTER,    /* executed inside the router, no request */
} router_tool_svc_t;

typedef struct {
    const char *name;         /* into the tools document */
    const json_t *parameters; /* JSON Schema of the arguments */
    bool idempotent;
    router_tool_svc_t service;
    const char *service_name; /* "tools", "memory" or "router" */
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
    const char **switches; /* triage.switch phrases */
    size_t n_switches;
    const char *fallback_mode;   /* "rules" or "handoff" */
    const char *response_format; /* "json" or "" (text) */
    bool sticky;       /* "sticky": true: others' switch phrases never take the conversation away */
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

/* The agent with the most keywords contained in text (compared
 * case-insensitively, ASCII), ties to the first in file-name order; NULL
 * when none matches. */
const router_agent_t *router_agents_triage(const router_agents_t *a, const char *text);

/* The first agent (file-name order) with a switch phrase contained in text
 * (ASCII case-insensitive); NULL when none. */
const router_agent_t *router_agents_switch(const router_agents_t *a, const char *text);

/*
 * The agent of a turn, never NULL: an existing conversation (state_agent
 * names a loaded agent) keeps it unless a switch phrase names another; a
 * new one takes the requested agent, else triage, else the default.
 */
const router_agent_t *router_agents_pick(const router_agents_t *a, const char *state_agent,
                                         const char *requested, const char *text);

const router_tool_t *router_agents_tool(const router_agents_t *a, const char *name);
bool router_agent_allows(const router_agent_t *ag, const char *tool);
const char *router_agent_prompt(const router_agent_t *ag, const char *lang);
const char *router_agent_fallback(const router_agent_t *ag, const char *lang);

/* ---- LLM triage (agent_triage.c; docs/router.md "Triage") ---- */

#define ROUTER_TRIAGE_DESC_MAX   1024 /* bytes of one description per language in the prompt */
#define ROUTER_TRIAGE_PROMPT_MAX (48 * 1024) /* bytes of the triage system prompt */
#define ROUTER_TRIAGE_ANSWER_MAX 4096        /* bytes of a triage answer the router parses */
/* The llm.chat "agent" of the triage call (the rules backend's engine name). */
#define ROUTER_TRIAGE_AGENT "triage"

/*
 * The triage system prompt (zh and en): every agent's name and description
 * (zh and en, each cut to ROUTER_TRIAGE_DESC_MAX bytes on a UTF-8 boundary)
 * and the answer wanted, {"agent": "<name>"} or {"agent": null}. Agents that
 * would take it past ROUTER_TRIAGE_PROMPT_MAX are left out (*listed says how
 * many are in; may be NULL). malloc'd NUL-terminated text, NULL on ENOMEM.
 */
char *router_triage_prompt(const router_agents_t *a, size_t *listed);

/*
 * The agent a triage answer names: text[0..len) is a JSON object {"agent":
 * "<name>"} (optionally inside a ``` fence, surrounding whitespace ignored)
 * naming a loaded agent. NULL otherwise, with *why (static text) saying why:
 * too long, not a JSON object, agent null, not a string, unknown agent.
 */
const router_agent_t *router_triage_parse(const router_agents_t *a, const char *text, size_t len,
                                          const char **why);

#endif
