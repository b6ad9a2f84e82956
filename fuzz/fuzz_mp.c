/*
 * fuzz_mp.c - libFuzzer target for mesh_mp_prescan / mesh_mp_decode.
 *
 * Invariants checked on every input:
 *  - the pre-scan and msgpack-c agree: whatever the pre-scan accepts,
 *    msgpack-c unpacks as exactly one object covering every byte;
 *  - after a passed pre-scan, decoding fails only for the value model
 *    (EPROTO: bin/ext/non-string keys/bad UTF-8/uint > INT64_MAX/NaN) or
 *    memory, never for a limit the pre-scan should have caught;
 *  - the direct reader (mesh_mp_read_json, used by the body decoders)
 *    returns the same code and the same value as msgpack-c + mesh_mp_to_json;
 *  - decode -> pack -> decode -> pack gives the same bytes twice (the
 *    packed form of a decoded value is a fixed point).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_mp.h"

static void pack(const json_t *v, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (mesh_mp_pack_json(&pk, v) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int pre = mesh_mp_prescan(data, size);
    json_t *v = NULL;
    int rc = mesh_mp_decode(data, size, &v);

    if (pre != 0) {
        /* the decoder runs the same pre-scan first */
        if (rc != pre || v != NULL)
            abort();
        return 0;
    }

    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)data, size, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != size)
        abort();
    msgpack_unpacked_destroy(&u);

    size_t pos = 0;
    json_t *direct = NULL;
    int rd = mesh_mp_read_json(data, size, &pos, 0, &direct);
    if (rd != rc || (rd == 0 && pos != size) || (rd != 0 && direct != NULL))
        abort();

    if (rc != 0) {
        if ((rc != MESH_EPROTO && rc != MESH_ENOMEM) || v != NULL)
            abort();
        return 0;
    }

    msgpack_sbuffer a, b, c;
    json_t *again = NULL;
    pack(v, &a);
    if (mesh_mp_decode(a.data, a.size, &again) != 0)
        abort();
    pack(again, &b);
    if (a.size != b.size || memcmp(a.data, b.data, a.size) != 0)
        abort();
    pack(direct, &c);
    if (a.size != c.size || memcmp(a.data, c.data, a.size) != 0)
        abort();
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
    msgpack_sbuffer_destroy(&c);
    json_decref(direct);
    json_decref(again);
    json_decref(v);
    return 0;
}
