/*
 * llm_reply.h - the wire data of llm.chat replies (docs/protocol/services.md):
 *   PARTIAL {delta: str}
 *   FINAL   {type: "text", text} | {type: "tool_calls", calls: [{id, name, arguments}]}
 *           plus usage: {prompt_tokens, completion_tokens, cost_usd}, backend: str,
 *           model: str (the model that answered, "rules" for the rules backend)
 *           and, when the rules backend answered for an unusable model,
 *           fallback: {backend: "rules", reason: str}
 */
#ifndef LLM_REPLY_H
#define LLM_REPLY_H

#include <jansson.h>
#include <stddef.h>

#include "llm_backend.h"

/* New reference, or NULL on allocation failure (or text that is not valid UTF-8). */
json_t *llm_reply_delta(const char *text, size_t len);

/* New reference, or NULL on allocation failure / invalid result. */
/* cost_usd: the estimate for usage (llm_metrics_cost). */
json_t *llm_reply_final(const llm_result_t *res, const char *backend, double cost_usd);

#endif
