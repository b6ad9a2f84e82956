/*
 * fuzz_msg.c - libFuzzer target for the body decoders: mesh_request_decode,
 * mesh_reply_decode, mesh_ready_decode and mesh_cancel_decode, all four on
 * every input.
 *
 * On success the decoded struct is re-encoded (which must succeed: whatever
 * a decoder accepts, the encoder must be able to send) and decoded again,
 * and the two structs must be equal, free-form values compared by their
 * packed bytes. On failure the struct must hold nothing owned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_mp.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_proto.h"

static int ok_error(int rc)
{
    return rc == MESH_EPROTO || rc == MESH_ETOOBIG || rc == MESH_ENOMEM;
}

/* Two json values are the same when they pack to the same bytes (json_equal
 * cannot see keys with an embedded NUL). */
static int same_json(const json_t *a, const json_t *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    msgpack_sbuffer x, y;
    msgpack_packer px, py;
    msgpack_sbuffer_init(&x);
    msgpack_sbuffer_init(&y);
    msgpack_packer_init(&px, &x, msgpack_sbuffer_write);
    msgpack_packer_init(&py, &y, msgpack_sbuffer_write);
    int same = mesh_mp_pack_json(&px, a) == 0 && mesh_mp_pack_json(&py, b) == 0 &&
               x.size == y.size && memcmp(x.data, y.data, x.size) == 0;
    msgpack_sbuffer_destroy(&x);
    msgpack_sbuffer_destroy(&y);
    return same;
}

static void fuzz_request(const uint8_t *data, size_t size)
{
    mesh_request_t a, b;
    int rc = mesh_request_decode(data, size, &a);
    if (rc != 0) {
        if (!ok_error(rc) || a.args != NULL)
            abort();
        return;
    }
    if (a.id[0] == '\0' || a.op[0] == '\0' || a.tenant[0] == '\0' || a.deadline_ms == 0 ||
        a.deadline_ms > MESH_DEADLINE_MAX_MS)
        abort();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (mesh_request_encode(&a, &sb) != 0)
        abort();
    if (mesh_request_decode(sb.data, sb.size, &b) != 0)
        abort();
    if (strcmp(a.id, b.id) != 0 || strcmp(a.op, b.op) != 0 || strcmp(a.conv, b.conv) != 0 ||
        strcmp(a.tenant, b.tenant) != 0 || strcmp(a.tp, b.tp) != 0 ||
        a.deadline_ms != b.deadline_ms || a.idem != b.idem || !same_json(a.args, b.args))
        abort();
    msgpack_sbuffer_destroy(&sb);
    mesh_request_clear(&a);
    mesh_request_clear(&b);
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
    mesh_reply_t a, b;
    int rc = mesh_reply_decode(data, size, &a);
    if (rc != 0) {
        if (!ok_error(rc) || a.data != NULL)
            abort();
        return;
    }
    if (a.id[0] == '\0' || !mesh_err_known(a.status) || a.status > 0)
        abort();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (mesh_reply_encode(&a, &sb) != 0)
        abort();
    if (mesh_reply_decode(sb.data, sb.size, &b) != 0)
        abort();
    if (strcmp(a.id, b.id) != 0 || a.status != b.status || strcmp(a.err, b.err) != 0 ||
        !same_json(a.data, b.data))
        abort();
    msgpack_sbuffer_destroy(&sb);
    mesh_reply_clear(&a);
    mesh_reply_clear(&b);
}

static void fuzz_ready(const uint8_t *data, size_t size)
{
    mesh_ready_t a, b;
    int rc = mesh_ready_decode(data, size, &a);
    if (rc != 0) {
        if (!ok_error(rc))
            abort();
        return;
    }
    if (a.capacity < 1 || a.capacity > MESH_WORKER_CAPACITY_MAX)
        abort();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (mesh_ready_encode(&a, &sb) != 0)
        abort();
    if (mesh_ready_decode(sb.data, sb.size, &b) != 0 || a.capacity != b.capacity)
        abort();
    msgpack_sbuffer_destroy(&sb);
}

/* A CANCEL body: an accepted id must encode and decode to itself. */
static void fuzz_cancel(const uint8_t *data, size_t size)
{
    char a[MESH_ID_MAX + 1], b[MESH_ID_MAX + 1];
    int rc = mesh_cancel_decode(data, size, a);
    if (rc != 0) {
        if (rc != MESH_EPROTO)
            abort();
        return;
    }
    if (a[0] == '\0')
        abort();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (mesh_cancel_encode(a, &sb) != 0 || mesh_cancel_decode(sb.data, sb.size, b) != 0 ||
        strcmp(a, b) != 0)
        abort();
    msgpack_sbuffer_destroy(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_request(data, size);
    fuzz_reply(data, size);
    fuzz_ready(data, size);
    fuzz_cancel(data, size);
    return 0;
}
