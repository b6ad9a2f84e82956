/*
 * test_mp.c - the msgpack pre-scan, decoder and packer (lib/mesh/mp.c).
 *
 * Inputs are hand-written byte strings, so every format of the msgpack spec
 * and every lie a peer can tell (declared lengths and counts, depth, 0xc1,
 * trailing bytes) is covered byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_mp.h"

#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static int decode_bytes(const uint8_t *p, size_t n, json_t **out)
{
    return mesh_mp_decode(p, n, out);
}

/* Decode and compare with the JSON text expect. */
static void expect_json(const uint8_t *p, size_t n, const char *expect)
{
    json_t *got = NULL;
    assert_int_equal(decode_bytes(p, n, &got), 0);
    json_error_t e;
    json_t *want = json_loads(expect, JSON_DECODE_ANY, &e);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *s = json_dumps(got, JSON_ENCODE_ANY);
        print_error("got %s want %s\n", s, expect);
        free(s);
        fail();
    }
    json_decref(got);
    json_decref(want);
}

static void expect_rc(const uint8_t *p, size_t n, int rc)
{
    json_t *got = (json_t *)0x1;
    assert_int_equal(decode_bytes(p, n, &got), rc);
    assert_null(got);
}

static void test_scalars(void **state)
{
    (void)state;
    expect_json(B(0x00), "0");
    expect_json(B(0x7f), "127");
    expect_json(B(0xff), "-1");
    expect_json(B(0xe0), "-32");
    expect_json(B(0xc0), "null");
    expect_json(B(0xc2), "false");
    expect_json(B(0xc3), "true");
    expect_json(B(0xcc, 0xff), "255");
    expect_json(B(0xcd, 0x01, 0x00), "256");
    expect_json(B(0xce, 0xff, 0xff, 0xff, 0xff), "4294967295");
    expect_json(B(0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "9223372036854775807");
    expect_json(B(0xd0, 0x80), "-128");
    expect_json(B(0xd0, 0x05), "5");
    expect_json(B(0xd1, 0x80, 0x00), "-32768");
    expect_json(B(0xd2, 0x80, 0x00, 0x00, 0x00), "-2147483648");
    expect_json(B(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), "-9223372036854775808");
    expect_json(B(0xca, 0x3f, 0xc0, 0x00, 0x00), "1.5");
    expect_json(B(0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18), "3.141592653589793");
    expect_json(B(0xa3, 'a', 'b', 'c'), "\"abc\"");
    expect_json(B(0xa0), "\"\"");
    expect_json(B(0xd9, 0x02, 'h', 'i'), "\"hi\"");
    expect_json(B(0xda, 0x00, 0x02, 'h', 'i'), "\"hi\"");
    expect_json(B(0xdb, 0x00, 0x00, 0x00, 0x02, 'h', 'i'), "\"hi\"");
    expect_json(B(0xa3, 0xe4, 0xbd, 0xa0), "\"\xe4\xbd\xa0\"");
}

static void test_containers(void **state)
{
    (void)state;
    expect_json(B(0x90), "[]");
    expect_json(B(0x80), "{}");
    expect_json(B(0x92, 0x01, 0xa1, 'x'), "[1, \"x\"]");
    expect_json(B(0xdc, 0x00, 0x02, 0x01, 0x02), "[1, 2]");
    expect_json(B(0xdd, 0x00, 0x00, 0x00, 0x01, 0xc3), "[true]");
    expect_json(B(0x81, 0xa1, 'a', 0x01), "{\"a\": 1}");
    expect_json(B(0xde, 0x00, 0x01, 0xa1, 'a', 0x90), "{\"a\": []}");
    expect_json(B(0xdf, 0x00, 0x00, 0x00, 0x01, 0xa1, 'a', 0x80), "{\"a\": {}}");
    /* Duplicate keys: the last one wins. */
    expect_json(B(0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02), "{\"a\": 2}");
}

static void test_refused_types(void **state)
{
    (void)state;
    /* uint64 above INT64_MAX */
    expect_rc(B(0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0), MESH_EPROTO);
    /* bin 8/16/32 pass the pre-scan but have no JSON form */
    assert_int_equal(mesh_mp_prescan(B(0xc4, 0x01, 0x00)), 0);
    expect_rc(B(0xc4, 0x01, 0x00), MESH_EPROTO);
    expect_rc(B(0xc5, 0x00, 0x01, 0x00), MESH_EPROTO);
    expect_rc(B(0xc6, 0x00, 0x00, 0x00, 0x01, 0x00), MESH_EPROTO);
    /* ext 8/16/32 and fixext 1..16 */
    expect_rc(B(0xc7, 0x01, 0x05, 0x00), MESH_EPROTO);
    expect_rc(B(0xc8, 0x00, 0x01, 0x05, 0x00), MESH_EPROTO);
    expect_rc(B(0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0x00), MESH_EPROTO);
    expect_rc(B(0xd4, 0x05, 0x00), MESH_EPROTO);
    expect_rc(B(0xd5, 0x05, 0x00, 0x00), MESH_EPROTO);
    expect_rc(B(0xd6, 0xff, 0, 0, 0, 0), MESH_EPROTO); /* timestamp32 */
    expect_rc(B(0xd7, 0x05, 0, 0, 0, 0, 0, 0, 0, 0), MESH_EPROTO);
    assert_int_equal(mesh_mp_prescan(B(0xd8, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                     0);
    /* map keys must be strings */
    expect_rc(B(0x81, 0x01, 0x02), MESH_EPROTO);
    expect_rc(B(0x81, 0xc0, 0x02), MESH_EPROTO);
    expect_rc(B(0x81, 0x90, 0x02), MESH_EPROTO);
    /* invalid UTF-8 in a value and in a key */
    expect_rc(B(0xa2, 0xc3, 0x28), MESH_EPROTO);
    expect_rc(B(0xa1, 0xff), MESH_EPROTO);
    expect_rc(B(0xa3, 0xed, 0xa0, 0x80), MESH_EPROTO); /* surrogate */
    expect_rc(B(0xa2, 0xc0, 0x80), MESH_EPROTO);       /* overlong NUL */
    expect_rc(B(0x81, 0xa1, 0xff, 0x01), MESH_EPROTO);
    /* NaN and infinity have no JSON form */
    expect_rc(B(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0), MESH_EPROTO);
    expect_rc(B(0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0), MESH_EPROTO);
    expect_rc(B(0xca, 0xff, 0x80, 0x00, 0x00), MESH_EPROTO);
}

static void test_prescan_lies(void **state)
{
    (void)state;
    /* 0xc1 is never used, at top level or inside */
    expect_rc(B(0xc1), MESH_EPROTO);
    expect_rc(B(0x91, 0xc1), MESH_EPROTO);
    /* empty input and trailing bytes */
    assert_int_equal(mesh_mp_prescan(NULL, 0), MESH_EPROTO);
    assert_int_equal(mesh_mp_prescan("", 0), MESH_EPROTO);
    expect_rc(B(0x01, 0x02), MESH_EPROTO);
    expect_rc(B(0x80, 0x00), MESH_EPROTO);
    /* declared string / bin / ext lengths larger than the buffer */
    expect_rc(B(0xa5, 'a'), MESH_EPROTO);
    expect_rc(B(0xd9, 0xff, 'a'), MESH_EPROTO);
    expect_rc(B(0xda, 0xff, 0xff, 'a'), MESH_EPROTO);
    expect_rc(B(0xdb, 0xff, 0xff, 0xff, 0xff, 'a'), MESH_EPROTO);
    expect_rc(B(0xc6, 0xff, 0xff, 0xff, 0xff), MESH_EPROTO);
    expect_rc(B(0xc9, 0xff, 0xff, 0xff, 0xff, 0x01), MESH_EPROTO);
    expect_rc(B(0xd8, 0x01, 0x00), MESH_EPROTO);
    /* container counts larger than the bytes left could hold */
    expect_rc(B(0xdd, 0xff, 0xff, 0xff, 0xff, 0x00), MESH_EPROTO);
    expect_rc(B(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a', 0x00), MESH_EPROTO);
    expect_rc(B(0xdc, 0xff, 0xff), MESH_EPROTO);
    expect_rc(B(0xde, 0x00, 0x02, 0xa1, 'a', 0x01), MESH_EPROTO);
    expect_rc(B(0x93, 0x01, 0x02), MESH_EPROTO);
    /* a map of 1 pair with 1 byte left: 2 elements cannot fit */
    expect_rc(B(0x81, 0x01), MESH_EPROTO);
    /* truncated headers */
    expect_rc(B(0xcd, 0x01), MESH_EPROTO);
    expect_rc(B(0xcb, 0x00, 0x00), MESH_EPROTO);
    expect_rc(B(0xdd, 0x00), MESH_EPROTO);
    expect_rc(B(0xc7), MESH_EPROTO);
    expect_rc(B(0xd4), MESH_EPROTO);
}

/* n nested arrays around a 1: depth n. */
static size_t nested(uint8_t *buf, int n, uint8_t open)
{
    size_t k = 0;
    for (int d = 0; d < n; d++) {
        buf[k++] = open;
        if (open == 0x81)
            buf[k++] = 0xa0; /* key "" */
    }
    buf[k++] = 0x01;
    return k;
}

static void test_depth(void **state)
{
    (void)state;
    uint8_t buf[256];
    json_t *v = NULL;

    size_t n = nested(buf, MESH_MP_MAX_DEPTH, 0x91);
    assert_int_equal(mesh_mp_prescan(buf, n), 0);
    assert_int_equal(mesh_mp_decode(buf, n, &v), 0);
    json_decref(v);
    n = nested(buf, MESH_MP_MAX_DEPTH + 1, 0x91);
    assert_int_equal(mesh_mp_prescan(buf, n), MESH_ETOOBIG);
    expect_rc(buf, n, MESH_ETOOBIG);

    n = nested(buf, MESH_MP_MAX_DEPTH, 0x81);
    assert_int_equal(mesh_mp_decode(buf, n, &v), 0);
    json_decref(v);
    n = nested(buf, MESH_MP_MAX_DEPTH + 1, 0x81);
    expect_rc(buf, n, MESH_ETOOBIG);

    /* an empty container at level 33 is still level 33 */
    n = nested(buf, MESH_MP_MAX_DEPTH, 0x91);
    buf[n - 1] = 0x90;
    assert_int_equal(mesh_mp_prescan(buf, n), MESH_ETOOBIG);
}

static void test_item_limit(void **state)
{
    (void)state;
    /* array32 of MESH_MP_MAX_ITEMS fixints: the array itself is one more item. */
    size_t n = 5 + MESH_MP_MAX_ITEMS;
    uint8_t *buf = calloc(1, n);
    assert_non_null(buf);
    buf[0] = 0xdd;
    uint32_t count = MESH_MP_MAX_ITEMS;
    buf[1] = (uint8_t)(count >> 24);
    buf[2] = (uint8_t)(count >> 16);
    buf[3] = (uint8_t)(count >> 8);
    buf[4] = (uint8_t)count;
    assert_int_equal(mesh_mp_prescan(buf, n), MESH_ETOOBIG);
    count = MESH_MP_MAX_ITEMS - 1;
    buf[1] = (uint8_t)(count >> 24);
    buf[2] = (uint8_t)(count >> 16);
    buf[3] = (uint8_t)(count >> 8);
    buf[4] = (uint8_t)count;
    assert_int_equal(mesh_mp_prescan(buf, n - 1), 0);
    free(buf);
}

static void pack_to(msgpack_sbuffer *sb, const json_t *v, int want_rc)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    assert_int_equal(mesh_mp_pack_json(&pk, v), want_rc);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *docs[] = {
        "{}",
        "[]",
        ("{\"a\": 1, \"b\": [true, false, null, -1, 2.5, \"x\"], \"c\": {\"d\": "
         "\"\\u4f60\\u597d\"}}"),
        "[9223372036854775807, -9223372036854775808, 0, 127, 128, -32, -33, 65536, 1e300]",
        "{\"\": \"\", \"k\": \"a\\u0000b\"}",
        "\"plain\"",
        "42",
    };
    for (size_t k = 0; k < sizeof(docs) / sizeof(docs[0]); k++) {
        json_error_t e;
        json_t *in = json_loads(docs[k], JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        assert_non_null(in);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        pack_to(&sb, in, 0);
        json_t *out = NULL;
        assert_int_equal(mesh_mp_decode(sb.data, sb.size, &out), 0);
        assert_true(json_equal(in, out));
        json_decref(in);
        json_decref(out);
        msgpack_sbuffer_destroy(&sb);
    }
    /* a key with an embedded NUL keeps its length */
    json_t *o = json_object();
    json_object_setn_new(o, "k\0z", 3, json_integer(1));
    msgpack_sbuffer kb;
    msgpack_sbuffer_init(&kb);
    pack_to(&kb, o, 0);
    json_t *back = NULL;
    assert_int_equal(mesh_mp_decode(kb.data, kb.size, &back), 0);
    /* (json_equal looks keys up NUL-terminated, so compare by hand) */
    void *iter = json_object_iter(back);
    assert_non_null(iter);
    assert_int_equal(json_object_iter_key_len(iter), 3);
    assert_memory_equal(json_object_iter_key(iter), "k\0z", 3);
    assert_int_equal(json_integer_value(json_object_iter_value(iter)), 1);
    json_decref(o);
    json_decref(back);
    msgpack_sbuffer_destroy(&kb);

    /* NULL encodes nil */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_to(&sb, NULL, 0);
    assert_int_equal(sb.size, 1);
    assert_int_equal((uint8_t)sb.data[0], 0xc0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_pack_depth(void **state)
{
    (void)state;
    json_t *root = json_array();
    json_t *cur = root;
    for (int d = 1; d < MESH_MP_MAX_DEPTH; d++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_to(&sb, root, 0); /* exactly the limit */
    msgpack_sbuffer_destroy(&sb);
    json_array_append_new(cur, json_array());
    msgpack_sbuffer_init(&sb);
    pack_to(&sb, root, MESH_EINVAL);
    msgpack_sbuffer_destroy(&sb);
    json_decref(root);
}

static void test_truncation_everywhere(void **state)
{
    (void)state;
    json_error_t e;
    json_t *in = json_loads("{\"id\": \"abc\", \"n\": [1, 300, 70000, 5000000000, -5, -300, "
                            "1.25, true, null], \"m\": {\"s\": \"" /* str8 */
                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}",
                            0, &e);
    assert_non_null(in);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_to(&sb, in, 0);
    for (size_t cut = 0; cut < sb.size; cut++) {
        json_t *out = (json_t *)0x1;
        int rc = mesh_mp_decode(sb.data, cut, &out);
        assert_int_equal(rc, MESH_EPROTO);
        assert_null(out);
    }
    json_decref(in);
    msgpack_sbuffer_destroy(&sb);
}

static void test_reader(void **state)
{
    (void)state;
    mesh_mp_item_t it;
    size_t pos = 0;
    const uint8_t buf[] = {0xd1, 0x01, 0x00, 0xd0, 0xff, 0xa2, 'h', 'i', 0xc7, 0x01, 0x07, 0xaa};
    assert_int_equal(mesh_mp_read(buf, sizeof(buf), &pos, &it), 0);
    assert_int_equal(it.kind, MESH_MP_UINT);
    assert_int_equal(it.u, 256);
    assert_int_equal(mesh_mp_read(buf, sizeof(buf), &pos, &it), 0);
    assert_int_equal(it.kind, MESH_MP_INT);
    assert_int_equal(it.i, -1);
    assert_int_equal(mesh_mp_read(buf, sizeof(buf), &pos, &it), 0);
    assert_int_equal(it.kind, MESH_MP_STR);
    assert_int_equal(it.u, 2);
    assert_memory_equal(it.ptr, "hi", 2);
    assert_int_equal(mesh_mp_read(buf, sizeof(buf), &pos, &it), 0);
    assert_int_equal(it.kind, MESH_MP_EXT);
    assert_int_equal(it.ext_type, 7);
    assert_int_equal(pos, sizeof(buf));
    assert_int_equal(mesh_mp_read(buf, sizeof(buf), &pos, &it), MESH_EPROTO);

    /* skip walks whole containers */
    const uint8_t nest[] = {0x82, 0xa1, 'a', 0x92, 0x01, 0x91, 0x02, 0xa1, 'b', 0xc0, 0x05};
    pos = 0;
    assert_int_equal(mesh_mp_skip(nest, sizeof(nest), &pos), 0);
    assert_int_equal(pos, sizeof(nest) - 1);
    pos = 0;
    assert_int_equal(mesh_mp_skip(nest, 6, &pos), MESH_EPROTO);
}

static void test_pack_str(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    mesh_mp_pack_str(&pk, "abc");
    mesh_mp_pack_strn(&pk, "xyz", 2);
    mesh_mp_pack_str(&pk, NULL);
    const uint8_t want[] = {0xa3, 'a', 'b', 'c', 0xa2, 'x', 'y', 0xa0};
    assert_int_equal(sb.size, sizeof(want));
    assert_memory_equal(sb.data, want, sizeof(want));
    msgpack_sbuffer_destroy(&sb);
}

/* The direct reader and msgpack-c + mesh_mp_to_json agree on every input. */
static void test_read_json_matches_decode(void **state)
{
    (void)state;
    struct {
        const uint8_t *p;
        size_t n;
    } in[] = {
        {B(0x82, 0xa1, 'a', 0x92, 0x01, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xa1, 'b', 0xc3)},
        {B(0x93, 0xd0, 0x80, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xa2, 0xc3, 0xa9)},
        {B(0x81, 0x01, 0x02)},
        {B(0x91, 0xc4, 0x01, 0x00)},
        {B(0x91, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0)},
        {B(0x92, 0xa1, 0xff, 0x01)},
        {B(0x91, 0xca, 0x7f, 0xc0, 0x00, 0x00)},
        {B(0x82, 0xa1, 'k', 0x01, 0xa1, 'k', 0x02)},
        {B(0xc0)},
    };
    for (size_t k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
        json_t *a = NULL, *b = NULL;
        size_t pos = 0;
        int ra = mesh_mp_decode(in[k].p, in[k].n, &a);
        int rb = mesh_mp_read_json(in[k].p, in[k].n, &pos, 0, &b);
        assert_int_equal(ra, rb);
        if (ra == 0) {
            assert_int_equal(pos, in[k].n);
            assert_true(json_equal(a, b));
        } else {
            assert_null(b);
        }
        json_decref(a);
        json_decref(b);
    }
    /* depth: 32 levels fit, 33 do not */
    uint8_t buf[256];
    size_t n = nested(buf, MESH_MP_MAX_DEPTH, 0x91);
    size_t pos = 0;
    json_t *v = NULL;
    assert_int_equal(mesh_mp_read_json(buf, n, &pos, 0, &v), 0);
    json_decref(v);
    n = nested(buf, MESH_MP_MAX_DEPTH + 1, 0x91);
    pos = 0;
    assert_int_equal(mesh_mp_read_json(buf, n, &pos, 0, &v), MESH_ETOOBIG);
    assert_null(v);
    /* a lying count without a pre-scan still stops at the end of the bytes */
    pos = 0;
    assert_int_equal(mesh_mp_read_json(B(0xdd, 0xff, 0xff, 0xff, 0xff, 0x01), &pos, 0, &v),
                     MESH_EPROTO);
    assert_null(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_refused_types),
        cmocka_unit_test(test_prescan_lies),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_item_limit),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_pack_depth),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_pack_str),
        cmocka_unit_test(test_read_json_matches_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
