/*
 * oai_body.h - the Chat Completions request body of the openai backend,
 * written in one pass into a reused buffer (the hot path of every call).
 *
 * The bytes are exactly what llm_oai_req_build (oai_req.h) makes: that
 * function builds a json_t tree and dumps it, which costs a deep copy of
 * every tool schema, an allocation per node and jansson's dump per token.
 * This writer emits the same compact JSON directly with mesh_jbuf_* and keeps
 * the "tools" array's text of the last few tool sets it saw, so an agent that
 * offers the same tools on every call has them written once.
 *
 * The tools cache is keyed by the exact tools of the request: name,
 * description and the parameters schema compared value by value, in key
 * order (what decides the bytes), so a different tools array - another
 * agent, a changed schema, a reordered key - is never served from it.
 *
 * One writer per backend (single-threaded, like the loop that owns it).
 */
#ifndef OAI_BODY_H
#define OAI_BODY_H

#include <stddef.h>

#include "llm_backend.h"
#include "oai_req.h"

#define LLM_OAI_TOOLS_CACHE_N        8            /* tool sets kept (about one per agent) */
#define LLM_OAI_TOOLS_CACHE_TEXT_MAX (64 * 1024)  /* a larger tools text is not cached, bytes */
#define LLM_OAI_BODY_KEEP_MAX        (256 * 1024) /* buffer kept between calls, bytes */

typedef struct llm_oai_body llm_oai_body_t;

/* A new writer, or NULL (ENOMEM). */
llm_oai_body_t *llm_oai_body_new(void);
void llm_oai_body_destroy(llm_oai_body_t **w_p);

/*
 * Write the body of call into the writer's buffer. On 0, *body and *len point at
 * the NUL-terminated text, valid until the next llm_oai_body_write or
 * destroy. Returns MESH_ENOMEM, or MESH_EINVAL when a string that must be
 * UTF-8 is not (the model name, a mapped tool name): the cases in which
 * llm_oai_req_build returns NULL.
 */
int llm_oai_body_write(llm_oai_body_t *w, const llm_call_t *call, const llm_oai_req_opts_t *o,
                       const char **body, size_t *len);

/* Tools-cache counters (tests, benchmarks): lookups served from it, and misses. */
void llm_oai_body_cache_stats(const llm_oai_body_t *w, size_t *hits, size_t *misses);

#endif
