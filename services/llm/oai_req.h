/*
 * oai_req.h - the Chat Completions request body of the openai backend.
 *
 * {model, messages, tools? (names mapped, see llm_oai_name_out), tool_choice: "auto" (only with
 * tools), stream: true, stream_options: {include_usage: true}, max_completion_tokens, temperature,
 *  response_format: {type: "json_object"} (only when call->response_format is "json")}
 *
 * messages: the agent's prompt as the system message; then, when the
 * conversation state has slots, records or a mode, a second system message
 * "Known facts" with them as compact JSON (so the model does not ask again
 * for what the customer already said); then the history: user -> user,
 * assistant -> assistant (tool_calls as [{id, type: "function", function:
 * {name, arguments: <JSON text>}}], content null when it only calls tools),
 * tool -> {role: "tool", tool_call_id, content}. Bytes that are not valid
 * UTF-8 are replaced with U+FFFD (JSON cannot carry them).
 *
 * The request always streams: the backend forwards deltas only when the
 * call asked for them, but streaming gives the time to first token and lets
 * a stalled model be noticed.
 */
#ifndef OAI_REQ_H
#define OAI_REQ_H

#include <jansson.h>
#include <stdint.h>

#include "llm_backend.h"

#define LLM_OAI_FACTS_MAX (30 * 1024) /* "Known facts" bytes (a part past it is left out) */

typedef struct {
    const char *model;
    uint32_t max_completion_tokens; /* 0: not sent */
    double temperature;             /* < 0: not sent */
} llm_oai_req_opts_t;

/*
 * Tool names: OpenAI function names must match [a-zA-Z0-9_-]{1,64}, ours
 * have dots ("policy.lookup"). Each '.' goes out as "__" and "__" comes back
 * as '.' (so a tool name must not itself contain "__"). out gets at most
 * size-1 bytes.
 */
#define LLM_OAI_NAME_MAX (2 * LLM_TOOL_NAME_MAX) /* a mapped name, bytes */
/* s[0..n) with every byte that does not start a valid UTF-8 sequence
 * replaced by U+FFFD (malloc'd, *len its length; NULL on ENOMEM). The
 * model request's texts go through it (a model server refuses bad UTF-8). */
char *llm_oai_utf8_repair(const char *s, size_t n, size_t *len);

void llm_oai_name_out(const char *name, char *out, size_t size);
void llm_oai_name_in(const char *name, char *out, size_t size);

/* The body as JSON (new reference), or NULL (ENOMEM). */
json_t *llm_oai_req_json(const llm_call_t *call, const llm_oai_req_opts_t *o);

/* The body as compact JSON text (malloc'd, caller frees), or NULL. The backend
 * writes the same bytes faster with llm_oai_body_write (oai_body.h); this stays
 * as the reference the tests compare that writer with. */
char *llm_oai_req_build(const llm_call_t *call, const llm_oai_req_opts_t *o);

/* The "Known facts" note for state, or NULL when there is nothing to say (or ENOMEM). */
char *llm_oai_req_facts(const json_t *state);

#endif
