/*
 * mp.c - msgpack <-> jansson behind a pre-scan (mesh_mp.h).
 *
 * The pre-scan walks the bytes of one frame with mesh_mp_read() and a fixed
 * stack of remaining-element counts (no allocation). Only a buffer that
 * passes it is given to msgpack-c, which then never sees a declared count
 * that the bytes cannot back, so its zone allocations are bounded by the
 * frame size.
 */
#include "mesh/mesh_mp.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_text.h"

/* The one byte the msgpack spec never uses. */
#define MP_NEVER_USED 0xc1

static uint64_t be_read(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Payload of n bytes must fit in what is left after *pos. */
static int take_payload(size_t len, size_t *pos, uint64_t n)
{
    if (n > len - *pos)
        return MESH_EPROTO;
    *pos += (size_t)n;
    return 0;
}

int mesh_mp_read(const void *buf, size_t len, size_t *pos, mesh_mp_item_t *it)
{
    const uint8_t *p = buf;
    size_t at = *pos;

    if (p == NULL || at >= len)
        return MESH_EPROTO;
    uint8_t b = p[at++];
    size_t left = len - at;
    size_t hdr = 0; /* extra header bytes after the type byte */
    memset(it, 0, sizeof(*it));

    /* Single-byte forms first: the common case for keys and small values. */
    if (b <= 0x7f) {
        it->kind = MESH_MP_UINT;
        it->u = b;
        *pos = at;
        return 0;
    }
    if (b >= 0xe0) {
        it->kind = MESH_MP_INT;
        it->i = (int8_t)b;
        *pos = at;
        return 0;
    }
    if ((b & 0xe0) == 0xa0) { /* fixstr */
        it->kind = MESH_MP_STR;
        it->u = b & 0x1f;
        it->ptr = (const char *)p + at;
        *pos = at;
        return take_payload(len, pos, it->u);
    }
    if ((b & 0xf0) == 0x90 || (b & 0xf0) == 0x80) { /* fixarray, fixmap */
        it->kind = (b & 0xf0) == 0x90 ? MESH_MP_ARRAY : MESH_MP_MAP;
        it->u = b & 0x0f;
        *pos = at;
        return 0;
    }

    switch (b) {
    case 0xc0:
        it->kind = MESH_MP_NIL;
        *pos = at;
        return 0;
    case 0xc2:
    case 0xc3:
        it->kind = MESH_MP_BOOL;
        it->b = b == 0xc3;
        *pos = at;
        return 0;
    case 0xc4: /* bin 8/16/32 */
    case 0xc5:
    case 0xc6:
    case 0xd9: /* str 8/16/32 */
    case 0xda:
    case 0xdb: {
        int is_bin = b <= 0xc6;
        hdr = (size_t)1 << (is_bin ? b - 0xc4 : b - 0xd9);
        if (left < hdr)
            return MESH_EPROTO;
        it->kind = is_bin ? MESH_MP_BIN : MESH_MP_STR;
        it->u = be_read(p + at, hdr);
        at += hdr;
        it->ptr = (const char *)p + at;
        *pos = at;
        return take_payload(len, pos, it->u);
    }
    case 0xc7: /* ext 8/16/32: length, type, data */
    case 0xc8:
    case 0xc9:
        hdr = (size_t)1 << (b - 0xc7);
        if (left < hdr + 1)
            return MESH_EPROTO;
        it->kind = MESH_MP_EXT;
        it->u = be_read(p + at, hdr);
        it->ext_type = (int8_t)p[at + hdr];
        at += hdr + 1;
        it->ptr = (const char *)p + at;
        *pos = at;
        return take_payload(len, pos, it->u);
    case 0xd4: /* fixext 1/2/4/8/16: type, data */
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        if (left < 1)
            return MESH_EPROTO;
        it->kind = MESH_MP_EXT;
        it->u = (uint64_t)1 << (b - 0xd4);
        it->ext_type = (int8_t)p[at];
        at += 1;
        it->ptr = (const char *)p + at;
        *pos = at;
        return take_payload(len, pos, it->u);
    case 0xca: { /* float 32 */
        if (left < 4)
            return MESH_EPROTO;
        uint32_t bits = (uint32_t)be_read(p + at, 4);
        float f;
        memcpy(&f, &bits, sizeof(f));
        it->kind = MESH_MP_FLOAT;
        it->f = f;
        *pos = at + 4;
        return 0;
    }
    case 0xcb: { /* float 64 */
        if (left < 8)
            return MESH_EPROTO;
        uint64_t bits = be_read(p + at, 8);
        double d;
        memcpy(&d, &bits, sizeof(d));
        it->kind = MESH_MP_FLOAT;
        it->f = d;
        *pos = at + 8;
        return 0;
    }
    case 0xcc: /* uint 8/16/32/64 */
    case 0xcd:
    case 0xce:
    case 0xcf:
        hdr = (size_t)1 << (b - 0xcc);
        if (left < hdr)
            return MESH_EPROTO;
        it->kind = MESH_MP_UINT;
        it->u = be_read(p + at, hdr);
        *pos = at + hdr;
        return 0;
    case 0xd0: /* int 8/16/32/64 */
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        hdr = (size_t)1 << (b - 0xd0);
        if (left < hdr)
            return MESH_EPROTO;
        uint64_t raw = be_read(p + at, hdr);
        int64_t v;
        /* Sign-extend from hdr bytes without relying on implementation-defined shifts. */
        if (hdr < 8 && (raw >> (hdr * 8 - 1)) != 0)
            v = (int64_t)(raw | ~((UINT64_C(1) << (hdr * 8)) - 1));
        else
            v = (int64_t)raw;
        if (v >= 0) {
            it->kind = MESH_MP_UINT;
            it->u = (uint64_t)v;
        } else {
            it->kind = MESH_MP_INT;
            it->i = v;
        }
        *pos = at + hdr;
        return 0;
    }
    case 0xdc: /* array 16/32 */
    case 0xdd:
    case 0xde: /* map 16/32 */
    case 0xdf:
        hdr = (b == 0xdc || b == 0xde) ? 2 : 4;
        if (left < hdr)
            return MESH_EPROTO;
        it->kind = b <= 0xdd ? MESH_MP_ARRAY : MESH_MP_MAP;
        it->u = be_read(p + at, hdr);
        *pos = at + hdr;
        return 0;
    case MP_NEVER_USED:
    default:
        return MESH_EPROTO;
    }
}

int mesh_mp_skip(const void *buf, size_t len, size_t *pos)
{
    /* Every read consumes at least one byte, so this ends within len reads. */
    uint64_t remaining = 1;
    while (remaining > 0) {
        mesh_mp_item_t it;
        int rc = mesh_mp_read(buf, len, pos, &it);
        if (rc != 0)
            return rc;
        remaining--;
        if (it.kind == MESH_MP_ARRAY)
            remaining += it.u;
        else if (it.kind == MESH_MP_MAP)
            remaining += 2 * it.u;
    }
    return 0;
}

int mesh_mp_prescan(const void *buf, size_t len)
{
    /* left[0] is the top level (one object); left[d] counts what remains in
     * the d-th open container. A container opened at depth `open` has
     * nesting level open+1, which must not exceed MESH_MP_MAX_DEPTH. */
    uint64_t left[MESH_MP_MAX_DEPTH + 1];
    int open = 0;
    size_t pos = 0;
    uint32_t items = 0;

    if (buf == NULL || len == 0)
        return MESH_EPROTO;
    left[0] = 1;
    while (open >= 0) {
        if (left[open] == 0) {
            open--;
            continue;
        }
        left[open]--;
        if (++items > MESH_MP_MAX_ITEMS)
            return MESH_ETOOBIG;
        mesh_mp_item_t it;
        int rc = mesh_mp_read(buf, len, &pos, &it);
        if (rc != 0)
            return rc;
        if (it.kind != MESH_MP_ARRAY && it.kind != MESH_MP_MAP)
            continue;
        if (open + 1 > MESH_MP_MAX_DEPTH)
            return MESH_ETOOBIG;
        /* Each element takes at least one byte: a larger count is a lie. */
        uint64_t n = it.kind == MESH_MP_MAP ? 2 * it.u : it.u;
        if (n > len - pos)
            return MESH_EPROTO;
        if (n > 0)
            left[++open] = n;
    }
    return pos == len ? 0 : MESH_EPROTO;
}

/* New json string from s[0..n); MESH_EPROTO for invalid UTF-8. */
static int make_string(const char *s, size_t n, json_t **out)
{
    if (!mesh_utf8_valid(s, n))
        return MESH_EPROTO;
    *out = json_stringn_nocheck(n > 0 ? s : "", n);
    return *out != NULL ? 0 : MESH_ENOMEM;
}

/* A float JSON can carry: not NaN, not infinite. */
static bool finite_double(double d)
{
    return d == d && d - d == 0;
}

static int array_to_json(const msgpack_object_array *a, int depth, json_t **out)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return MESH_ENOMEM;
    for (uint32_t k = 0; k < a->size; k++) {
        json_t *v = NULL;
        int rc = mesh_mp_to_json(&a->ptr[k], depth + 1, &v);
        if (rc != 0) {
            json_decref(arr);
            return rc;
        }
        if (json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return MESH_ENOMEM;
        }
    }
    *out = arr;
    return 0;
}

static int map_to_json(const msgpack_object_map *m, int depth, json_t **out)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return MESH_ENOMEM;
    for (uint32_t k = 0; k < m->size; k++) {
        const msgpack_object *key = &m->ptr[k].key;
        json_t *v = NULL;
        int rc = MESH_EPROTO;

        if (key->type != MSGPACK_OBJECT_STR ||
            !mesh_utf8_valid(key->via.str.ptr, key->via.str.size))
            goto fail;
        rc = mesh_mp_to_json(&m->ptr[k].val, depth + 1, &v);
        if (rc != 0)
            goto fail;
        /* Duplicate keys: the last one wins, as in most msgpack/JSON readers. */
        if (json_object_setn_new_nocheck(obj, key->via.str.size > 0 ? key->via.str.ptr : "",
                                         key->via.str.size, v) != 0) {
            rc = MESH_ENOMEM;
            goto fail;
        }
        continue;
    fail:
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int mesh_mp_to_json(const msgpack_object *obj, int depth, json_t **out)
{
    json_t *v = NULL;

    if (out == NULL)
        return MESH_EINVAL;
    *out = NULL;
    if (obj == NULL)
        return MESH_EINVAL;
    switch (obj->type) {
    case MSGPACK_OBJECT_NIL:
        v = json_null();
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        v = json_boolean(obj->via.boolean);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (obj->via.u64 > (uint64_t)INT64_MAX)
            return MESH_EPROTO;
        v = json_integer((json_int_t)obj->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        v = json_integer((json_int_t)obj->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        /* JSON has no NaN or infinity; jansson refuses them too. */
        if (!finite_double(obj->via.f64))
            return MESH_EPROTO;
        v = json_real(obj->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        return make_string(obj->via.str.ptr, obj->via.str.size, out);
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP:
        /* depth counts the containers around obj; obj itself nests one deeper. */
        if (depth < 0 || depth >= MESH_MP_MAX_DEPTH)
            return MESH_ETOOBIG;
        if (obj->type == MSGPACK_OBJECT_ARRAY)
            return array_to_json(&obj->via.array, depth, out);
        return map_to_json(&obj->via.map, depth, out);
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT:
    default:
        return MESH_EPROTO;
    }
    if (v == NULL)
        return MESH_ENOMEM;
    *out = v;
    return 0;
}

static int read_json_container(const void *buf, size_t len, size_t *pos, int depth,
                               const mesh_mp_item_t *it, json_t **out)
{
    json_t *c = it->kind == MESH_MP_ARRAY ? json_array() : json_object();
    int rc = 0;

    if (c == NULL)
        return MESH_ENOMEM;
    for (uint64_t k = 0; k < it->u; k++) {
        json_t *v = NULL;
        if (it->kind == MESH_MP_ARRAY) {
            rc = mesh_mp_read_json(buf, len, pos, depth + 1, &v);
            if (rc == 0 && json_array_append_new(c, v) != 0)
                rc = MESH_ENOMEM;
        } else {
            mesh_mp_item_t key;
            rc = mesh_mp_read(buf, len, pos, &key);
            if (rc == 0 && (key.kind != MESH_MP_STR || !mesh_utf8_valid(key.ptr, (size_t)key.u)))
                rc = MESH_EPROTO;
            if (rc == 0)
                rc = mesh_mp_read_json(buf, len, pos, depth + 1, &v);
            /* Duplicate keys: the last one wins, as in mesh_mp_to_json. */
            if (rc == 0 &&
                json_object_setn_new_nocheck(c, key.u > 0 ? key.ptr : "", (size_t)key.u, v) != 0)
                rc = MESH_ENOMEM;
        }
        if (rc != 0)
            break;
    }
    if (rc != 0) {
        json_decref(c);
        return rc;
    }
    *out = c;
    return 0;
}

int mesh_mp_read_json(const void *buf, size_t len, size_t *pos, int depth, json_t **out)
{
    mesh_mp_item_t it;
    json_t *v = NULL;

    if (out == NULL || pos == NULL)
        return MESH_EINVAL;
    *out = NULL;
    int rc = mesh_mp_read(buf, len, pos, &it);
    if (rc != 0)
        return rc;
    switch (it.kind) {
    case MESH_MP_NIL:
        v = json_null();
        break;
    case MESH_MP_BOOL:
        v = json_boolean(it.b);
        break;
    case MESH_MP_UINT:
        if (it.u > (uint64_t)INT64_MAX)
            return MESH_EPROTO;
        v = json_integer((json_int_t)it.u);
        break;
    case MESH_MP_INT:
        v = json_integer((json_int_t)it.i);
        break;
    case MESH_MP_FLOAT:
        if (!finite_double(it.f))
            return MESH_EPROTO;
        v = json_real(it.f);
        break;
    case MESH_MP_STR:
        return make_string(it.ptr, (size_t)it.u, out);
    case MESH_MP_ARRAY:
    case MESH_MP_MAP:
        if (depth < 0 || depth >= MESH_MP_MAX_DEPTH)
            return MESH_ETOOBIG;
        return read_json_container(buf, len, pos, depth, &it, out);
    case MESH_MP_BIN:
    case MESH_MP_EXT:
    default:
        return MESH_EPROTO;
    }
    if (v == NULL)
        return MESH_ENOMEM;
    *out = v;
    return 0;
}

int mesh_mp_decode(const void *buf, size_t len, json_t **out)
{
    msgpack_unpacked u;
    size_t off = 0;
    int rc;

    if (out == NULL)
        return MESH_EINVAL;
    *out = NULL;
    rc = mesh_mp_prescan(buf, len);
    if (rc != 0)
        return rc;
    msgpack_unpacked_init(&u);
    switch (msgpack_unpack_next(&u, buf, len, &off)) {
    case MSGPACK_UNPACK_SUCCESS:
        rc = off == len ? mesh_mp_to_json(&u.data, 0, out) : MESH_EPROTO;
        break;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        rc = MESH_ENOMEM;
        break;
    default:
        rc = MESH_EPROTO;
        break;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

void mesh_mp_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    if (n > 0)
        msgpack_pack_str_body(pk, s, n);
}

void mesh_mp_pack_str(msgpack_packer *pk, const char *s)
{
    mesh_mp_pack_strn(pk, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

static int pack_json(msgpack_packer *pk, const json_t *v, int depth)
{
    if (v == NULL)
        return msgpack_pack_nil(pk) == 0 ? 0 : MESH_ENOMEM;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        /* Refuse what a peer's pre-scan would refuse (and jansson cycles). */
        if (depth >= MESH_MP_MAX_DEPTH)
            return MESH_EINVAL;
        msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach((json_t *)v, key, val)
        {
            mesh_mp_pack_strn(pk, key, json_object_iter_key_len(json_object_key_to_iter(key)));
            int rc = pack_json(pk, val, depth + 1);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    case JSON_ARRAY: {
        if (depth >= MESH_MP_MAX_DEPTH)
            return MESH_EINVAL;
        size_t n = json_array_size(v);
        msgpack_pack_array(pk, n);
        for (size_t k = 0; k < n; k++) {
            int rc = pack_json(pk, json_array_get(v, k), depth + 1);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    case JSON_STRING:
        mesh_mp_pack_strn(pk, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        /* msgpack-c picks the smallest format: fixint, (u)int8..64. */
        msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
        return 0;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        return 0;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        return 0;
    }
    return MESH_EINVAL;
}

int mesh_mp_pack_json(msgpack_packer *pk, const json_t *v)
{
    if (pk == NULL)
        return MESH_EINVAL;
    return pack_json(pk, v, 0);
}
