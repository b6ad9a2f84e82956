/*
 * memory_args.h - validation of the memory ops' args (docs/protocol/services.md).
 *
 * Each parser checks every key's type and size against the named limits
 * below before anything reaches Redis. On failure it returns MESH_EPROTO (a
 * missing key, a wrong type, a value out of range) or MESH_ETOOBIG (a string
 * or list over its limit) and writes a message naming the key into err.
 * Parsed structs borrow from args: they are valid while args is.
 */
#ifndef MEMORY_ARGS_H
#define MEMORY_ARGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/mesh_limits.h"

#define MEMORY_WINDOW_DEFAULT   20
#define MEMORY_WINDOW_MAX       200 /* turn.begin: history messages returned */
#define MEMORY_LIMIT_DEFAULT    100
#define MEMORY_LIMIT_MAX        1000 /* conv.get: messages returned */
#define MEMORY_LEASE_DEFAULT_MS 5000 /* MESH_LEASE_MS's default: renewed while a turn runs */
#define MEMORY_LEASE_MAX_MS     MESH_DEADLINE_MAX_MS
#define MEMORY_OWNER_MAX        MESH_ID_MAX   /* the router's turn id */
#define MEMORY_MESSAGES_MAX     64            /* turn.end: messages appended at once */
#define MEMORY_STATE_FIELDS_MAX 64            /* turn.end: state fields set at once */
#define MEMORY_STATE_KEY_MAX    64            /* one state field name, bytes */
#define MEMORY_STATE_VALUE_MAX  MESH_TEXT_MAX /* one state value, bytes */
#define MEMORY_IDENT_MAX        128 /* agent, name, tool_call_id, message_id in a message */
#define MEMORY_TOOL_CALLS_MAX   MEMORY_MESSAGES_MAX /* tool_calls of one assistant message */
#define MEMORY_MESSAGE_JSON_MAX (2 * MESH_TEXT_MAX) /* one stored message, compact JSON */
#define MEMORY_REPLY_JSON_MAX   (4 * MESH_TEXT_MAX) /* one stored FINAL reply, compact JSON */

typedef struct {
    const char *message_id;
    const char *text;
    size_t text_len;
    uint32_t window;
    const char *owner;
    uint64_t lease_ms;
} memory_begin_args_t;

typedef struct {
    const char *message_id;
    const char *owner;
    const json_t *messages; /* array (possibly empty), NULL when absent */
    const json_t *state;    /* object, NULL when absent */
    const json_t *reply;    /* object */
} memory_end_args_t;

typedef struct {
    const char *message_id;
    const char *owner;
} memory_abort_args_t;

typedef struct {
    uint32_t limit;
} memory_get_args_t;

typedef struct {
    const char *owner;
    uint64_t lease_ms;
} memory_renew_args_t;

int memory_args_begin(const json_t *args, memory_begin_args_t *out, char *err, size_t err_size);
int memory_args_end(const json_t *args, memory_end_args_t *out, char *err, size_t err_size);
int memory_args_abort(const json_t *args, memory_abort_args_t *out, char *err, size_t err_size);
int memory_args_get(const json_t *args, memory_get_args_t *out, char *err, size_t err_size);
int memory_args_renew(const json_t *args, memory_renew_args_t *out, char *err, size_t err_size);

/*
 * Check one message of turn.end (messages[index]) and return its compact JSON
 * (malloc'd, *len_out set) with "ts" set to now_ms when absent; NULL with err
 * filled (and *rc_out = MESH_EPROTO / MESH_ETOOBIG / MESH_ENOMEM) otherwise.
 * Unknown keys are kept as they are (forward compatibility).
 */
char *memory_message_encode(const json_t *msg, size_t index, uint64_t now_ms, size_t *len_out,
                            int *rc_out, char *err, size_t err_size);

/*
 * Whether a (valid) message of turn.end also goes to the conversation's ctx
 * list, the model's context for later turns: user messages and final
 * assistant answers (no tool_calls, or an empty list). Assistant messages
 * that ask for tools and tool results stay in the log only.
 */
bool memory_message_in_ctx(const json_t *msg);

/* The user message of turn.begin as compact JSON (malloc'd) or NULL on ENOMEM. */
char *memory_user_message_encode(const memory_begin_args_t *a, uint64_t now_ms, size_t *len_out);

#endif
