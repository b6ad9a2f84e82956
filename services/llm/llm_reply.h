/*
 * llm_reply.h - the wire data of llm.chat replies (docs/protocol/services.md):
 *   PARTIAL {delta: str}
 *   FINAL   {type: "text", text} | {type: "tool_calls", calls: [{id, name, arguments}]}
 *           plus usage: {prompt_tokens, completion_tokens} and backend: str
 */
#ifndef LLM_REPLY_H
#define LLM_REPLY_H

#include <jansson.h>
#include <stddef.h>

#include "llm_backend.h"

/* New reference, or NULL on allocation failure (or text that is not valid UTF-8). */
json_t *llm_reply_delta(const char *text, size_t len);

/* New reference, or NULL on allocation failure / invalid result. */
json_t *llm_reply_final(const llm_result_t *res, const char *backend);

#endif
