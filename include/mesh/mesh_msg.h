/*
 * mesh_msg.h - the msgpack bodies of the mesh protocol.
 *
 * Three body types, one encode and one decode function each. Decoders run
 * mesh_mp_prescan() first, then check every key's type and size; unknown keys
 * are ignored (forward compatibility), missing required keys are MESH_EPROTO.
 * A body whose "v" is greater than MESH_MSG_VERSION is refused (MESH_EPROTO).
 *
 * REQUEST body (client->router and router->worker), a map:
 *   "v"        uint   required  protocol version (1)
 *   "id"       str    required  request id, 1..MESH_ID_MAX bytes
 *   "op"       str    required  operation, 1..MESH_OP_MAX bytes, e.g. "turn", "tool.call"
 *   "conv"     str    optional  conversation id, 0..MESH_CONV_MAX bytes [A-Za-z0-9._:-]
 *   "tenant"   str    optional  tenant, 0..MESH_TENANT_MAX bytes (default "default")
 *   "deadline" uint   required  milliseconds left until the request's deadline at the
 *                               moment it was sent (relative, so no clock sync is needed);
 *                               1..MESH_DEADLINE_MAX_MS (larger values are clamped)
 *   "tp"       str    optional  W3C traceparent, exactly 55 bytes when present
 *   "idem"     bool   optional  true when the op may safely run twice (retry allowed)
 *   "args"     any    optional  op-specific arguments (a map by convention)
 *
 * REPLY body (PARTIAL and FINAL, both directions back to the requester), a map:
 *   "v"        uint   required
 *   "id"       str    required  the request id this answers
 *   "status"   int    required  0 or a negative MESH_E* code
 *   "err"      str    optional  human message, 0..MESH_ERRMSG_MAX bytes
 *   "data"     any    optional  op-specific result (PARTIAL: a delta)
 *
 * READY body (worker->router), a map:
 *   "v"        uint   required
 *   "capacity" uint   required  1..MESH_WORKER_CAPACITY_MAX requests in flight at once
 */
#ifndef MESH_MSG_H
#define MESH_MSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_limits.h"

#define MESH_MSG_VERSION    1
#define MESH_TENANT_DEFAULT "default"

typedef struct {
    char id[MESH_ID_MAX + 1];
    char op[MESH_OP_MAX + 1];
    char conv[MESH_CONV_MAX + 1];
    char tenant[MESH_TENANT_MAX + 1];
    char tp[MESH_TRACEPARENT_MAX + 1]; /* "" when absent */
    uint32_t deadline_ms;
    bool idem;
    json_t *args; /* owned; NULL when absent */
} mesh_request_t;

typedef struct {
    char id[MESH_ID_MAX + 1];
    int32_t status;
    char err[MESH_ERRMSG_MAX + 1];
    json_t *data; /* owned; NULL when absent */
} mesh_reply_t;

typedef struct {
    uint32_t capacity;
} mesh_ready_t;

/* Decoders: 0, MESH_EPROTO, MESH_ETOOBIG or MESH_ENOMEM. On error the out struct holds
 * no owned memory. */
int mesh_request_decode(const void *buf, size_t len, mesh_request_t *out);
int mesh_reply_decode(const void *buf, size_t len, mesh_reply_t *out);
int mesh_ready_decode(const void *buf, size_t len, mesh_ready_t *out);

/*
 * Encoders append to sb (caller-initialised msgpack_sbuffer). args/data are
 * borrowed. Return 0 or MESH_EINVAL (a field out of its limits).
 */
struct msgpack_sbuffer;
int mesh_request_encode(const mesh_request_t *req, struct msgpack_sbuffer *sb);
int mesh_reply_encode(const mesh_reply_t *rep, struct msgpack_sbuffer *sb);
int mesh_ready_encode(const mesh_ready_t *rdy, struct msgpack_sbuffer *sb);

/* Release owned members (args/data) and zero them. Safe on zeroed structs. */
void mesh_request_clear(mesh_request_t *req);
void mesh_reply_clear(mesh_reply_t *rep);

/* 1 if s is a valid conversation id (1..MESH_CONV_MAX of [A-Za-z0-9._:-]). */
int mesh_conv_id_valid(const char *s, size_t len);

/* 1 if s is a syntactically valid W3C traceparent (version 00, non-zero ids). */
int mesh_traceparent_valid(const char *s, size_t len);

/* Write a fresh random traceparent (55 chars + NUL) into out[56]. */
void mesh_traceparent_new(char out[MESH_TRACEPARENT_MAX + 1]);

/* Write a fresh random 32-hex-char id + NUL into out[33]. */
void mesh_id_new(char out[33]);

#endif
