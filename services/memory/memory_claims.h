/*
 * memory_claims.h - the claims store of the memory service: op "tool.call"
 * with the tools claim.register and claim.get (docs/memory.md, "Claims").
 *
 * The request and reply have the tools service's tool.call shape
 * (docs/protocol/services.md): args {name, arguments, call_id?}; status 0
 * with data {ok: true, result} or {ok: false, error: {code, message}}, code
 * unknown_tool, invalid_tool_arguments (message names the field and the
 * rule), not_found or tool_failed. A malformed request (args not a map, no
 * name) is status EPROTO; Redis down is status EUNAVAIL.
 *
 * The builder itself is memory_claims_build (memory_op_int.h).
 */
#ifndef MEMORY_CLAIMS_H
#define MEMORY_CLAIMS_H

#include <stddef.h>

#define MEMORY_TOOL_NAME_MAX    64          /* tool.call name bytes (as the tools service) */
#define MEMORY_CLAIM_FACTS_MAX  (16 * 1024) /* claim.register facts, bytes of compact JSON */
#define MEMORY_CLAIM_RECORD_MAX (32 * 1024) /* one stored claim record, bytes of JSON */
#define MEMORY_CLAIM_NO_MAX     32          /* "CLM" + 8 date digits + up to 21 sequence digits */

/*
 * The JSON Schema of tool's arguments ("claim.register", "claim.get"), the
 * same as the tool's "parameters" in data/tools.json (a unit test compares
 * them); NULL for any other name.
 */
const char *memory_claims_schema(const char *tool);

#endif
