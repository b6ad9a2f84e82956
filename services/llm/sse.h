/*
 * sse.h - the streamed answer of an OpenAI-compatible Chat Completions
 * endpoint: a Server-Sent Events parser plus the assembly of the chunks into
 * one answer (text or tool calls, usage, model, finish reason, error).
 *
 * Feed it the response body in whatever pieces the network delivers
 * (llm_sse_feed), then call llm_sse_finish once at the end of the body.
 *
 * What it copes with (docs/llm.md "Quirks"):
 * - pieces split anywhere: inside "data:", inside a UTF-8 sequence, between
 *   the CR and the LF of a CRLF; LF, CRLF and CR line ends; ":" comment lines;
 *   multi-line data (joined with "\n"); other fields (event, id, retry) ignored;
 * - tool-call deltas assembled per index: id/type/name once, arguments
 *   concatenated; Ollama's "index 0 on every call" (a new id on an index that
 *   already has a different id starts a new call); a missing index (= 0);
 *   whole tool calls in one delta; arguments sent as a JSON object instead of
 *   a string;
 * - the usage chunk with empty choices; "data: [DONE]";
 * - {"error": ...} as an event mid-stream (or as a whole JSON body);
 * - a body that is not SSE at all but one JSON document (a server ignoring
 *   stream:true, or an error body): recognised by its first non-blank byte '{'.
 *
 * Bounds (named below): a line, the whole body, the answer text, the number
 * of tool calls and each call's argument bytes. Going past one latches
 * MESH_ETOOBIG; the parser then ignores further input.
 *
 * Deltas: when a delta callback is set, each piece of answer text is reported
 * as it is parsed (decoded JSON strings: always whole, valid UTF-8).
 */
#ifndef LLM_SSE_H
#define LLM_SSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_backend.h"

#define LLM_SSE_LINE_MAX  (256 * 1024)       /* one SSE line / one event's data, bytes */
#define LLM_SSE_BODY_MAX  (8 * 1024 * 1024)  /* a whole response body, bytes */
#define LLM_SSE_TEXT_MAX  (256 * 1024)       /* the answer text, bytes */
#define LLM_SSE_CALLS_MAX LLM_TOOL_CALLS_MAX /* tool calls in one answer */
#define LLM_SSE_ARGS_MAX  (64 * 1024)        /* one tool call's argument text, bytes */
#define LLM_SSE_ERR_MAX   200                /* the error message kept, bytes */
#define LLM_SSE_MODEL_MAX 128                /* the model name kept, bytes */

typedef struct llm_sse llm_sse_t;

typedef void (*llm_sse_delta_fn)(const char *text, size_t len, void *arg);

/* A new parser, or NULL (ENOMEM). */
llm_sse_t *llm_sse_new(void);
void llm_sse_destroy(llm_sse_t **p_p);

/* Report text deltas to fn (NULL: none). */
void llm_sse_set_delta_cb(llm_sse_t *p, llm_sse_delta_fn fn, void *arg);

/*
 * Parse the next piece of the body. Returns 0, or the latched error
 * (MESH_ETOOBIG over a bound, MESH_ENOMEM); after an error further input is
 * ignored. Malformed JSON in an event is not an error here: it is counted
 * (llm_sse_malformed) and the event skipped, because what the answer lost is
 * only known at the end (llm_sse_finish).
 */
int llm_sse_feed(llm_sse_t *p, const char *data, size_t len);

/*
 * The body ended: flush a last event without its blank line, parse a JSON
 * body. Returns 0 when a complete answer arrived ([DONE], or a finish_reason,
 * or a whole JSON completion), else:
 *   MESH_EUNAVAIL  the server sent an error object (llm_sse_error has it)
 *   MESH_EPROTO    no answer: truncated stream, malformed JSON, a tool call
 *                  without a name, or nothing at all
 *   MESH_ETOOBIG / MESH_ENOMEM  as latched by feed
 */
int llm_sse_finish(llm_sse_t *p);

/* true once [DONE] or a finish_reason was seen (the answer is complete). */
bool llm_sse_complete(const llm_sse_t *p);

/* Events whose JSON could not be parsed (or was not an object). */
uint32_t llm_sse_malformed(const llm_sse_t *p);

/* The error object's message ("" when none) and its code as text ("" when none). */
const char *llm_sse_error(const llm_sse_t *p);
const char *llm_sse_error_code(const llm_sse_t *p);

/* Text delivered so far (NUL-terminated, "" when none). */
const char *llm_sse_text(const llm_sse_t *p, size_t *len);

/* The "model" field of the chunks ("" when none). */
const char *llm_sse_model(const llm_sse_t *p);

/* The last finish_reason ("" when none). */
const char *llm_sse_finish_reason(const llm_sse_t *p);

/* Usage from the usage chunk: true and *u filled when it came. */
bool llm_sse_usage(const llm_sse_t *p, llm_usage_t *u);

/* Tool calls assembled so far. */
size_t llm_sse_n_calls(const llm_sse_t *p);

/*
 * Tool call i: id ("" when the server sent none), name, and the raw argument
 * text (concatenated fragments).
 */
void llm_sse_call(const llm_sse_t *p, size_t i, const char **id, const char **name,
                  const char **args, size_t *args_len);

/*
 * The arguments of a call as the JSON object the router validates: the text
 * parsed as a JSON object; "" or whitespace -> {}; anything else (invalid
 * JSON, or valid JSON that is not an object) -> {"_raw": "<the text>"}, which
 * no tool schema accepts, so the router's schema check answers the model with
 * invalid_tool_arguments and the model can correct itself within the step
 * budget. New reference or NULL (ENOMEM).
 */
json_t *llm_sse_args_json(const char *args, size_t len);

#endif
