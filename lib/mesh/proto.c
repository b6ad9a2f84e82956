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

#include <msgpack.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_mp.h"
#include "mesh/mesh_msg.h"

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
    [MESH_C_DISCONNECT] = {"DISCONNECT", 0, 0}, [MESH_C_CANCEL] = {"CANCEL", 1, 1},
};

static const cmd_shape_t s_worker_cmds[] = {
    [MESH_W_READY] = {"READY", 1, 1},         [MESH_W_REQUEST] = {"REQUEST", 0, 1},
    [MESH_W_PARTIAL] = {"PARTIAL", 0, 1},     [MESH_W_FINAL] = {"FINAL", 0, 1},
    [MESH_W_HEARTBEAT] = {"HEARTBEAT", 0, 0}, [MESH_W_DISCONNECT] = {"DISCONNECT", 0, 0},
    [MESH_W_CANCEL] = {"CANCEL", 0, 1},
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

/* ---- CANCEL body ---- */

/* Request ids: 1..MESH_ID_MAX of [A-Za-z0-9._:-] (as in mesh_msg.c). */
static int cancel_id_valid(const char *s, size_t len)
{
    if (len < 1 || len > MESH_ID_MAX)
        return 0;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

int mesh_cancel_encode(const char *id, struct msgpack_sbuffer *sb)
{
    if (id == NULL || sb == NULL)
        return MESH_EINVAL;
    size_t n = strnlen(id, MESH_ID_MAX + 1);
    if (!cancel_id_valid(id, n))
        return MESH_EINVAL;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    mesh_mp_pack_str(&pk, "v");
    msgpack_pack_uint32(&pk, MESH_MSG_VERSION);
    mesh_mp_pack_str(&pk, "id");
    mesh_mp_pack_strn(&pk, id, n);
    return 0;
}

static int key_is(const mesh_mp_item_t *it, const char *name)
{
    size_t n = strlen(name);
    return it->kind == MESH_MP_STR && it->u == n && memcmp(it->ptr, name, n) == 0;
}

static int cancel_decode(const void *buf, size_t len, char *id_out)
{
    if (buf == NULL || len == 0 || mesh_mp_prescan(buf, len) != 0)
        return MESH_EPROTO;
    size_t pos = 0;
    mesh_mp_item_t it;
    if (mesh_mp_read(buf, len, &pos, &it) != 0 || it.kind != MESH_MP_MAP)
        return MESH_EPROTO;
    uint64_t pairs = it.u;
    int have_v = 0, have_id = 0;
    for (uint64_t k = 0; k < pairs; k++) {
        mesh_mp_item_t key, val;
        if (mesh_mp_read(buf, len, &pos, &key) != 0 || key.kind != MESH_MP_STR)
            return MESH_EPROTO;
        if (key_is(&key, "v")) {
            if (have_v || mesh_mp_read(buf, len, &pos, &val) != 0 || val.kind != MESH_MP_UINT ||
                val.u < 1 || val.u > MESH_MSG_VERSION)
                return MESH_EPROTO;
            have_v = 1;
        } else if (key_is(&key, "id")) {
            if (have_id || mesh_mp_read(buf, len, &pos, &val) != 0 || val.kind != MESH_MP_STR ||
                !cancel_id_valid(val.ptr, (size_t)val.u))
                return MESH_EPROTO;
            memcpy(id_out, val.ptr, (size_t)val.u);
            id_out[val.u] = '\0';
            have_id = 1;
        } else if (mesh_mp_skip(buf, len, &pos) != 0) {
            return MESH_EPROTO;
        }
    }
    return (have_v && have_id && pos == len) ? 0 : MESH_EPROTO;
}

int mesh_cancel_decode(const void *buf, size_t len, char id_out[MESH_ID_MAX + 1])
{
    if (id_out == NULL)
        return MESH_EINVAL;
    int rc = cancel_decode(buf, len, id_out);
    if (rc != 0)
        id_out[0] = '\0';
    return rc;
}
