/*
 * llm_call.h - decode and validate the args of an "llm.chat" request into an
 * llm_call_t (docs/protocol/services.md, service llm).
 *
 * Keys and types:
 *   agent    str    required  1..LLM_AGENT_MAX bytes
 *   tier     str    optional  0..LLM_TIER_MAX bytes
 *   system   str    optional  0..LLM_SYSTEM_MAX bytes
 *   lang     str    optional  "zh" | "en"; when absent, detected from the last
 *                             user message (mesh_text_lang)
 *   messages array  required  0..LLM_MESSAGES_MAX maps {role, text, name,
 *                             tool_call_id, ok, tool_calls}; role is required
 *   tools    array  optional  0..LLM_TOOLS_MAX maps {name (required),
 *                             description, parameters (map)}
 *   stream   bool   optional  default false
 *   state    map    optional  the conversation state (slots, mode, records,
 *                             handoff); call.state is an empty map when absent
 *   fallback str    optional  "rules" | "handoff" | "" (default "")
 *   response_format str optional "json" | "text" | "" (default "")
 * Unknown keys are ignored. A missing required key or a wrong type is
 * MESH_EPROTO, a length over its limit MESH_ETOOBIG; err then names the key
 * ("args.messages[2].role: ...") and never contains peer bytes.
 */
#ifndef LLM_CALL_H
#define LLM_CALL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_backend.h"

/* A parsed call plus the arrays it owns. Strings are borrowed from args. */
typedef struct {
    llm_call_t call;
    llm_message_t *messages; /* owned */
    llm_tool_t *tools;       /* owned */
    json_t *empty_state;     /* owned: the {} call.state points at when args had none */
} llm_parsed_t;

/*
 * Parse args (borrowed; must outlive out) of request id (borrowed) with the
 * given loop deadline. Returns 0, MESH_EPROTO, MESH_ETOOBIG or MESH_ENOMEM;
 * on error out holds nothing and err (if non-NULL) says which key.
 */
int llm_call_parse(const char *id, const json_t *args, uint64_t deadline, llm_parsed_t *out,
                   char *err, size_t err_size);

/* Free the owned arrays and zero out. Safe on a zeroed struct. */
void llm_call_clear(llm_parsed_t *p);

#endif
