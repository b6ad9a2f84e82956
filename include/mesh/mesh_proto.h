/*
 * mesh_proto.h - frame layer of the mesh broker protocol (18/MDP shape).
 *
 * The full spec is docs/protocol/mesh-mdp.md. Summary (frames after the
 * ROUTER identity frame, which the router socket adds/removes):
 *
 *   client <-> router  (gateway DEALER -> router frontend ROUTER)
 *     REQUEST   ["MESHC01"][0x01][service][body]     client -> router
 *     PARTIAL   ["MESHC01"][0x02][service][body]     router -> client
 *     FINAL     ["MESHC01"][0x03][service][body]     router -> client
 *     HEARTBEAT ["MESHC01"][0x04]                    both ways
 *     DISCONNECT["MESHC01"][0x05]                    both ways
 *     CANCEL    ["MESHC01"][0x06][service][body]     client -> router
 *
 *   worker <-> router  (worker DEALER -> router backend ROUTER)
 *     READY     ["MESHW01"][0x01][service][body]     worker -> router
 *     REQUEST   ["MESHW01"][0x02][body]              router -> worker
 *     PARTIAL   ["MESHW01"][0x03][body]              worker -> router
 *     FINAL     ["MESHW01"][0x04][body]              worker -> router
 *     HEARTBEAT ["MESHW01"][0x05]                    both ways
 *     DISCONNECT["MESHW01"][0x06]                    both ways
 *     CANCEL    ["MESHW01"][0x07][body]              router -> worker
 *
 * Bodies are one msgpack map each (mesh_msg.h). mesh_proto_decode() checks
 * the signature, the command byte, the exact frame count for the command,
 * the service name (1..MESH_SERVICE_MAX bytes of [a-z0-9._-]) and the body
 * size; it never looks at the body's content and never allocates.
 */
#ifndef MESH_PROTO_H
#define MESH_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "mesh_limits.h"

#define MESH_PROTO_CLIENT  "MESHC01"
#define MESH_PROTO_WORKER  "MESHW01"
#define MESH_PROTO_SIG_LEN 7

typedef enum {
    MESH_C_REQUEST = 0x01,
    MESH_C_PARTIAL = 0x02,
    MESH_C_FINAL = 0x03,
    MESH_C_HEARTBEAT = 0x04,
    MESH_C_DISCONNECT = 0x05,
    MESH_C_CANCEL = 0x06, /* body: CANCEL body (mesh_cancel_encode) */
} mesh_client_cmd_t;

typedef enum {
    MESH_W_READY = 0x01,
    MESH_W_REQUEST = 0x02,
    MESH_W_PARTIAL = 0x03,
    MESH_W_FINAL = 0x04,
    MESH_W_HEARTBEAT = 0x05,
    MESH_W_DISCONNECT = 0x06,
    MESH_W_CANCEL = 0x07, /* body: CANCEL body (mesh_cancel_encode) */
} mesh_worker_cmd_t;

typedef enum {
    MESH_SIDE_CLIENT = 0, /* frames with the MESHC01 signature */
    MESH_SIDE_WORKER = 1, /* frames with the MESHW01 signature */
} mesh_side_t;

/* One frame: a borrowed view. */
typedef struct {
    const void *data;
    size_t size;
} mesh_frame_t;

/* A decoded message: views into the frames it was decoded from. */
typedef struct {
    mesh_side_t side;
    uint8_t cmd;
    const char *service; /* NULL when the command has no service frame */
    size_t service_len;
    const void *body; /* NULL when the command has no body */
    size_t body_len;
} mesh_proto_msg_t;

/*
 * Decode frames[0..n) (identity frame already stripped) of the given side.
 * max_body is the largest body accepted. Returns 0, MESH_EPROTO (bad
 * signature, unknown command, wrong frame count, bad service name) or
 * MESH_ETOOBIG (body over max_body).
 */
int mesh_proto_decode(const mesh_frame_t *frames, size_t n, mesh_side_t side, size_t max_body,
                      mesh_proto_msg_t *out);

/*
 * Fill out[] (room for at least 4 frames) with the frames of a message:
 * signature, command byte, then the service and/or body when the command
 * carries them. The command byte is stored in *cmd_storage so the frame can
 * point at it. Returns the frame count, or MESH_EINVAL for a command that
 * needs a service/body that was not given.
 */
int mesh_proto_frames(mesh_side_t side, uint8_t cmd, const char *service, const void *body,
                      size_t body_len, uint8_t *cmd_storage, mesh_frame_t *out);

/* Printable command name for logs ("REQUEST", ...; "?" if unknown). */
const char *mesh_proto_cmd_name(mesh_side_t side, uint8_t cmd);

/* 1 if s[0..len) is a valid service name. */
int mesh_proto_service_valid(const char *s, size_t len);

/* ------------------------------------------------------------------------
 * CANCEL (2026-11-29, stream engineer). The body of MESH_C_CANCEL and
 * MESH_W_CANCEL is the msgpack map {"v": 1, "id": <request id>}: the
 * request being cancelled, 1..MESH_ID_MAX bytes of [A-Za-z0-9._:-].
 * Unknown keys are ignored, "v" above MESH_MSG_VERSION or 0 is refused.
 * A CANCEL is best-effort and never answered.
 * ------------------------------------------------------------------------ */
struct msgpack_sbuffer;

/* Append the CANCEL body for id to sb. 0 or MESH_EINVAL (id empty, too long, bad byte). */
int mesh_cancel_encode(const char *id, struct msgpack_sbuffer *sb);

/* Decode a CANCEL body into id_out. 0 or MESH_EPROTO (malformed, bad id, bad v). */
int mesh_cancel_decode(const void *buf, size_t len, char id_out[MESH_ID_MAX + 1]);

#endif
