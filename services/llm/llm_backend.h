/*
 * llm_backend.h - the interface between the llm worker glue and a model backend.
 *
 * The worker glue (llm_worker.c) decodes an "llm.chat" request into an
 * llm_call_t and hands it to a backend through the vtable below; the backend
 * reports back through an llm_sink_t. The glue maps sink events to the wire:
 * on_delta -> PARTIAL {delta}, on_done -> FINAL {type, text|calls, usage,
 * backend}, on_error -> FINAL with a MESH_E* status. Neither the router nor
 * the glue knows anything backend-specific, so a new backend (e.g. "openai":
 * an OpenAI-compatible endpoint over libcurl multi on the same uv loop) is one
 * new .c file plus one line in the registry (llm_backend.c).
 *
 * THE CONTRACT
 *
 * Threading: everything runs on the one uv loop given to create(); no
 * callback is ever made from another thread.
 *
 * create(loop, cfg): returns the backend (its struct starts with an
 * llm_backend_t whose vt points at the backend's vtable) or NULL after
 * logging why. cfg and its config table stay valid for the backend's life.
 *
 * start_call(b, call, sink, &handle): begins one call. Many calls may be in
 * flight at once. Returns 0 when the call was accepted; then the sink gets
 * zero or more on_delta (only when call->stream) followed by EXACTLY ONE of
 * on_done / on_error - unless cancel() comes first, after which it gets
 * nothing. Returns a negative MESH_E* when the call could not be started; then
 * no sink callback is ever made for it.
 *   Completion may happen synchronously, inside start_call (the rules backend
 *   does so when it has no simulated delay), or later from the loop. When it
 *   happened inside start_call, *handle_out is NULL on return; otherwise it is
 *   the call's handle. Because the sink's terminal callback may free the
 *   memory the sink lives in, handle_out must point at memory the sink
 *   callbacks do not free (a local variable), and the backend must not touch
 *   call or sink after delivering the terminal callback.
 *   call (and everything it points to) and sink are borrowed: they must stay
 *   valid until the terminal callback or cancel(); a backend that needs data
 *   longer copies it.
 *   The backend must deliver its terminal callback no later than
 *   call->deadline (loop time), with on_error(MESH_ETIMEDOUT, ...) when the
 *   model has not answered by then.
 *
 * cancel(handle): stops a call that has not delivered its terminal callback
 * yet. After cancel returns no sink callback is made for that call and the
 * handle is invalid (resources may be released later from uv close
 * callbacks, which never touch the call or the sink). Must not be called from
 * inside one of that call's own sink callbacks, nor after its terminal one.
 *
 * destroy(&b): cancels every call still in flight (silently, as cancel
 * does), releases the backend and NULLs the pointer. Handles closed here free
 * their memory from their uv close callbacks, so the loop must run once more
 * before it is closed.
 *
 * Sink callbacks: result, text and error message pointers are valid only
 * during the callback; the glue copies what it keeps. on_error's status is a
 * negative MESH_E* code (ETIMEDOUT, EUNAVAIL for an unreachable model, EBUSY
 * for a rate-limited one after retries, ENOMEM, EINTERNAL ...).
 */
#ifndef LLM_BACKEND_H
#define LLM_BACKEND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mesh/mesh_config.h"

/* Limits on what an llm.chat request may carry (checked by llm_call.c). */
#define LLM_AGENT_MAX      64           /* agent name bytes */
#define LLM_TIER_MAX       32           /* tier name bytes */
#define LLM_SYSTEM_MAX     (64 * 1024)  /* system prompt bytes */
#define LLM_MESSAGES_MAX   1024         /* messages in one call */
#define LLM_TOOLS_MAX      64           /* tools offered in one call */
#define LLM_TOOL_NAME_MAX  64           /* tool name bytes */
#define LLM_TOOL_DESC_MAX  4096         /* tool description bytes */
#define LLM_CALL_ID_MAX    64           /* tool call id bytes */
#define LLM_TOOL_CALLS_MAX 32           /* tool calls in one assistant message */
#define LLM_TOOL_TEXT_MAX  (256 * 1024) /* one tool result text, bytes */
#define LLM_DELAY_MAX_MS   60000        /* MESH_LLM_DELAY_MS upper bound */

typedef enum {
    LLM_ROLE_USER = 0,
    LLM_ROLE_ASSISTANT = 1,
    LLM_ROLE_TOOL = 2,
} llm_role_t;

/* One history message (services.md "message"), borrowed from the request. */
typedef struct {
    llm_role_t role;
    const char *text; /* never NULL; "" when absent. Valid UTF-8 is not guaranteed */
    size_t text_len;
    const char *name;         /* tool messages: tool name; else NULL */
    const char *tool_call_id; /* tool messages: the call answered; else NULL */
    bool ok;                  /* tool messages: success (true when absent) */
    const json_t *tool_calls; /* assistant messages: [{id, name, arguments}] or NULL */
} llm_message_t;

/* One tool the agent may call (OpenAI function shape), borrowed. */
typedef struct {
    const char *name;
    const char *description;  /* "" when absent */
    const json_t *parameters; /* JSON Schema object or NULL */
} llm_tool_t;

/* One parsed llm.chat request. All pointers are borrowed (see the contract). */
typedef struct {
    const char *id;     /* request id (for logs) */
    const char *agent;  /* digital worker name, e.g. "policy_qa" */
    const char *tier;   /* model tier, e.g. "small"; "" when absent */
    const char *system; /* the agent's prompt; "" when absent */
    size_t system_len;
    const char *lang;              /* "zh" or "en": the customer's language */
    const llm_message_t *messages; /* oldest first */
    size_t n_messages;
    const llm_tool_t *tools;
    size_t n_tools;
    bool stream;       /* emit on_delta while writing text */
    uint64_t deadline; /* uv_now() of the backend's loop by which the call must end */
    /* The conversation's state as the router knows it before this step
     * (services.md llm.chat "state"): {slots: {...}, mode: str, records: {...},
     * handoff: str, handoff_reason: str}; every key optional. Never NULL: an
     * empty object when the request carried none. Borrowed like the rest. */
    const json_t *state;
    /* The agent's fallback when the model is unusable: "rules", "handoff" or "" (none). */
    const char *fallback;
    /* "json" when the agent wants a JSON object answer, else "". */
    const char *response_format;
    /* W3C traceparent whose parent-id is the llm worker's span of this request
     * (a backend calling a model endpoint opens its span as a child of it and
     * sends that span's traceparent); "" or NULL when unknown. */
    const char *traceparent;
} llm_call_t;

typedef struct {
    uint32_t prompt_tokens;
    uint32_t completion_tokens;
} llm_usage_t;

/* One tool call the model asks for. */
typedef struct {
    const char *id;
    const char *name;
    const json_t *arguments; /* a JSON object */
} llm_tool_call_t;

typedef enum {
    LLM_RESULT_TEXT = 0,
    LLM_RESULT_TOOL_CALLS = 1,
} llm_result_type_t;

/* The model's answer: either text (the whole text, also when streamed) or tool calls. */
typedef struct {
    llm_result_type_t type;
    const char *text; /* LLM_RESULT_TEXT: valid UTF-8 */
    size_t text_len;
    const llm_tool_call_t *calls; /* LLM_RESULT_TOOL_CALLS: 1..LLM_TOOL_CALLS_MAX */
    size_t n_calls;
    llm_usage_t usage;
    /* The model that answered ("rules" for the rules backend); NULL: the backend's name. */
    const char *model;
    /* Non-NULL when the model was unusable and the rules backend answered instead
     * (FINAL fallback: {backend: "rules", reason}). */
    const char *fallback_reason;
} llm_result_t;

typedef struct llm_sink llm_sink_t;
struct llm_sink {
    /* A piece of the answer text; the pieces concatenate to the final text and are split
     * on UTF-8 code point boundaries. Only when call->stream. */
    void (*on_delta)(llm_sink_t *sink, const char *text, size_t len);
    void (*on_done)(llm_sink_t *sink, const llm_result_t *result);
    void (*on_error)(llm_sink_t *sink, int status, const char *message);
    void *arg; /* the glue's */
};

typedef struct llm_backend_vtable llm_backend_vtable_t;

/* Base of every backend object: a backend's own struct starts with this. */
typedef struct llm_backend {
    const llm_backend_vtable_t *vt;
} llm_backend_t;

/* Base of every in-flight call handle: a backend's own call struct starts with this. */
typedef struct llm_handle {
    llm_backend_t *backend;
} llm_handle_t;

/* What create() gets. */
typedef struct {
    uint64_t delay_ms; /* MESH_LLM_DELAY_MS: simulated latency (rules; others may ignore) */
    /* The service's loaded config table: a backend reads its own variables from it by name
     * (mesh_config_str / mesh_config_int). Each backend's variables are declared in main.c. */
    mesh_config_entry_t *config;
    size_t n_config;
} llm_backend_config_t;

struct llm_backend_vtable {
    const char *name; /* the MESH_LLM_BACKEND value and the FINAL's "backend" */
    llm_backend_t *(*create)(uv_loop_t *loop, const llm_backend_config_t *cfg);
    void (*destroy)(llm_backend_t **b_p);
    int (*start_call)(llm_backend_t *b, const llm_call_t *call, llm_sink_t *sink,
                      llm_handle_t **handle_out);
    void (*cancel)(llm_handle_t *h);
};

/* ---- registry and dispatch helpers (llm_backend.c) ---- */

/* The vtable registered under name, or NULL. */
const llm_backend_vtable_t *llm_backend_find(const char *name);

/* Comma-separated names of every registered backend (for error messages and --help). */
const char *llm_backend_names(void);

/* Create the named backend. NULL (logged) when unknown or when create fails. */
llm_backend_t *llm_backend_new(const char *name, uv_loop_t *loop, const llm_backend_config_t *cfg);

/* Dispatchers: see the contract above. destroy is safe on NULL and NULLs *b_p. */
void llm_backend_destroy(llm_backend_t **b_p);
int llm_backend_start(llm_backend_t *b, const llm_call_t *call, llm_sink_t *sink,
                      llm_handle_t **handle_out);
void llm_backend_cancel(llm_handle_t *h);
const char *llm_backend_name(const llm_backend_t *b);

/*
 * Deterministic token estimate for usage numbers: UTF-8 code points / 4,
 * rounded up (0 for empty text). Callers report at least 1 per side.
 */
uint32_t llm_tokens_estimate(const char *s, size_t len);

/* Prompt-side estimate of a call: system + every message text, at least 1. */
uint32_t llm_call_prompt_tokens(const llm_call_t *call);

#endif
