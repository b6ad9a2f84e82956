/*
 * proto.c - frame layer of the mesh broker protocol (mesh_proto.h).
 *
 * Decoding is a pure shape check over borrowed frames: signature, a one-byte
 * command, the exact frame count of that command, the service name and the
 * body size. It does not allocate and does not look inside the body, and it
 * does not decide which commands may travel in which direction: the
 * receiver knows that, the frame layer does not.
 */
#include "mesh/mesh_proto.h"

#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"

/* What follows the signature and command frames for one command. */
typedef struct {
    const char *name;
    uint8_t has_service;
    uint8_t has_body;
} cmd_shape_t;

/* Indexed by command byte; an entry with a NULL name is not a command. */
static const cmd_shape_t s_client_cmds[] = {
    [MESH_C_REQUEST] = {"REQUEST", 1, 1},       [MESH_C_PARTIAL] = {"PARTIAL", 1, 1},
    [MESH_C_FINAL] = {"FINAL", 1, 1},           [MESH_C_HEARTBEAT] = {"HEARTBEAT", 0, 0},
    [MESH_C_DISCONNECT] = {"DISCONNECT", 0, 0},
};

static const cmd_shape_t s_worker_cmds[] = {
    [MESH_W_READY] = {"READY", 1, 1},         [MESH_W_REQUEST] = {"REQUEST", 0, 1},
    [MESH_W_PARTIAL] = {"PARTIAL", 0, 1},     [MESH_W_FINAL] = {"FINAL", 0, 1},
    [MESH_W_HEARTBEAT] = {"HEARTBEAT", 0, 0}, [MESH_W_DISCONNECT] = {"DISCONNECT", 0, 0},
};

#define N_CLIENT_CMDS (sizeof(s_client_cmds) / sizeof(s_client_cmds[0]))
#define N_WORKER_CMDS (sizeof(s_worker_cmds) / sizeof(s_worker_cmds[0]))

/* Signature + command frames that every message starts with. */
#define PROTO_HEAD_FRAMES 2

static const cmd_shape_t *shape_of(mesh_side_t side, uint8_t cmd)
{
    const cmd_shape_t *table = side == MESH_SIDE_CLIENT ? s_client_cmds : s_worker_cmds;
    size_t n = side == MESH_SIDE_CLIENT ? N_CLIENT_CMDS : N_WORKER_CMDS;

    if ((side != MESH_SIDE_CLIENT && side != MESH_SIDE_WORKER) || cmd >= n ||
        table[cmd].name == NULL)
        return NULL;
    return &table[cmd];
}

static const char *signature_of(mesh_side_t side)
{
    return side == MESH_SIDE_CLIENT ? MESH_PROTO_CLIENT : MESH_PROTO_WORKER;
}

int mesh_proto_service_valid(const char *s, size_t len)
{
    if (s == NULL || len < 1 || len > MESH_SERVICE_MAX)
        return 0;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int mesh_proto_decode(const mesh_frame_t *frames, size_t n, mesh_side_t side, size_t max_body,
                      mesh_proto_msg_t *out)
{
    if (out == NULL)
        return MESH_EINVAL;
    memset(out, 0, sizeof(*out));
    if (frames == NULL || n < PROTO_HEAD_FRAMES || n > MESH_MAX_FRAMES)
        return MESH_EPROTO;
    if (side != MESH_SIDE_CLIENT && side != MESH_SIDE_WORKER)
        return MESH_EINVAL;
    for (size_t k = 0; k < n; k++) {
        if (frames[k].data == NULL && frames[k].size > 0)
            return MESH_EPROTO;
    }
    if (frames[0].size != MESH_PROTO_SIG_LEN ||
        memcmp(frames[0].data, signature_of(side), MESH_PROTO_SIG_LEN) != 0)
        return MESH_EPROTO;
    if (frames[1].size != 1)
        return MESH_EPROTO;

    uint8_t cmd = *(const uint8_t *)frames[1].data;
    const cmd_shape_t *shape = shape_of(side, cmd);
    if (shape == NULL)
        return MESH_EPROTO;
    if (n != PROTO_HEAD_FRAMES + (size_t)shape->has_service + (size_t)shape->has_body)
        return MESH_EPROTO;

    size_t at = PROTO_HEAD_FRAMES;
    if (shape->has_service) {
        if (!mesh_proto_service_valid(frames[at].data, frames[at].size))
            return MESH_EPROTO;
        out->service = frames[at].data;
        out->service_len = frames[at].size;
        at++;
    }
    if (shape->has_body) {
        /* A body is one msgpack map: it has at least one byte. */
        if (frames[at].size == 0) {
            out->service = NULL;
            out->service_len = 0;
            return MESH_EPROTO;
        }
        if (frames[at].size > max_body) {
            out->service = NULL;
            out->service_len = 0;
            return MESH_ETOOBIG;
        }
        out->body = frames[at].data;
        out->body_len = frames[at].size;
    }
    out->side = side;
    out->cmd = cmd;
    return 0;
}

int mesh_proto_frames(mesh_side_t side, uint8_t cmd, const char *service, const void *body,
                      size_t body_len, uint8_t *cmd_storage, mesh_frame_t *out)
{
    const cmd_shape_t *shape = shape_of(side, cmd);

    if (shape == NULL || cmd_storage == NULL || out == NULL)
        return MESH_EINVAL;
    if (shape->has_service &&
        (service == NULL || !mesh_proto_service_valid(service, strlen(service))))
        return MESH_EINVAL;
    if (shape->has_body && (body == NULL || body_len == 0))
        return MESH_EINVAL;

    int n = 0;
    *cmd_storage = cmd;
    out[n].data = signature_of(side);
    out[n++].size = MESH_PROTO_SIG_LEN;
    out[n].data = cmd_storage;
    out[n++].size = 1;
    if (shape->has_service) {
        out[n].data = service;
        out[n++].size = strlen(service);
    }
    if (shape->has_body) {
        out[n].data = body;
        out[n++].size = body_len;
    }
    return n;
}

const char *mesh_proto_cmd_name(mesh_side_t side, uint8_t cmd)
{
    const cmd_shape_t *shape = shape_of(side, cmd);
    return shape != NULL ? shape->name : "?";
}
