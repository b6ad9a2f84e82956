/*
 * test_msg.c - REQUEST, REPLY and READY bodies (lib/mesh/msg.c).
 *
 * Bodies are built with a raw msgpack packer so the tests can send what our
 * own encoders never would: wrong types, duplicate keys, integer keys,
 * over-long fields, future versions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_mp.h"
#include "mesh/mesh_msg.h"

#define TP_OK "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* ---- a tiny body builder ---- */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} body_t;

static void body_begin(body_t *b, uint32_t pairs)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&b->pk, pairs);
}

static void key(body_t *b, const char *k)
{
    mesh_mp_pack_str(&b->pk, k);
}

static void kv_str(body_t *b, const char *k, const char *v)
{
    key(b, k);
    mesh_mp_pack_str(&b->pk, v);
}

static void kv_strn(body_t *b, const char *k, const char *v, size_t n)
{
    key(b, k);
    mesh_mp_pack_strn(&b->pk, v, n);
}

static void kv_uint(body_t *b, const char *k, uint64_t v)
{
    key(b, k);
    msgpack_pack_uint64(&b->pk, v);
}

static void kv_int(body_t *b, const char *k, int64_t v)
{
    key(b, k);
    msgpack_pack_int64(&b->pk, v);
}

static void kv_bool(body_t *b, const char *k, bool v)
{
    key(b, k);
    if (v)
        msgpack_pack_true(&b->pk);
    else
        msgpack_pack_false(&b->pk);
}

static void kv_nil(body_t *b, const char *k)
{
    key(b, k);
    msgpack_pack_nil(&b->pk);
}

static void body_end(body_t *b)
{
    msgpack_sbuffer_destroy(&b->sb);
}

static void base_v_id_op(body_t *b)
{
    kv_uint(b, "v", 1);
    kv_str(b, "id", "req-1");
    kv_str(b, "op", "turn");
}

/* ---- request ---- */

static void fill_request(mesh_request_t *r)
{
    memset(r, 0, sizeof(*r));
    strcpy(r->id, "r.1:a_b-C");
    strcpy(r->op, "tool.call");
    strcpy(r->conv, "web:conv_42");
    strcpy(r->tenant, "acme-insurance");
    strcpy(r->tp, TP_OK);
    r->deadline_ms = 30000;
    r->idem = true;
    r->args = json_pack("{s:s, s:[i,f,b,n], s:{s:s}}", "name", "policy.lookup", "list", 1, 2.5, 1,
                        "nested", "zh", "\xe4\xbd\xa0\xe5\xa5\xbd");
}

static void test_request_round_trip(void **state)
{
    (void)state;
    mesh_request_t in, out;
    fill_request(&in);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_request_encode(&in, &sb), 0);
    assert_int_equal(mesh_request_decode(sb.data, sb.size, &out), 0);
    assert_string_equal(out.id, in.id);
    assert_string_equal(out.op, in.op);
    assert_string_equal(out.conv, in.conv);
    assert_string_equal(out.tenant, in.tenant);
    assert_string_equal(out.tp, in.tp);
    assert_int_equal(out.deadline_ms, 30000);
    assert_true(out.idem);
    assert_true(json_equal(out.args, in.args));
    mesh_request_clear(&out);
    mesh_request_clear(&in);
    assert_null(in.args);
    msgpack_sbuffer_destroy(&sb);
}

static void test_request_minimal_defaults(void **state)
{
    (void)state;
    mesh_request_t in, out;
    memset(&in, 0, sizeof(in));
    strcpy(in.id, "x");
    strcpy(in.op, "y");
    in.deadline_ms = 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_request_encode(&in, &sb), 0);
    assert_int_equal(mesh_request_decode(sb.data, sb.size, &out), 0);
    assert_string_equal(out.tenant, MESH_TENANT_DEFAULT);
    assert_string_equal(out.conv, "");
    assert_string_equal(out.tp, "");
    assert_false(out.idem);
    assert_null(out.args);
    assert_int_equal(out.deadline_ms, 1);
    mesh_request_clear(&out);
    msgpack_sbuffer_destroy(&sb);
}

static void test_request_deadline(void **state)
{
    (void)state;
    mesh_request_t out;
    body_t b;

    /* larger deadlines are clamped, on decode and on encode */
    body_begin(&b, 4);
    base_v_id_op(&b);
    kv_uint(&b, "deadline", UINT64_C(1) << 40);
    assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), 0);
    assert_int_equal(out.deadline_ms, MESH_DEADLINE_MAX_MS);
    body_end(&b);
    mesh_request_clear(&out);

    mesh_request_t in;
    memset(&in, 0, sizeof(in));
    strcpy(in.id, "a");
    strcpy(in.op, "b");
    in.deadline_ms = MESH_DEADLINE_MAX_MS + 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_request_encode(&in, &sb), 0);
    assert_int_equal(mesh_request_decode(sb.data, sb.size, &out), 0);
    assert_int_equal(out.deadline_ms, MESH_DEADLINE_MAX_MS);
    msgpack_sbuffer_destroy(&sb);

    /* deadline 0, negative, or not an integer */
    body_begin(&b, 4);
    base_v_id_op(&b);
    kv_uint(&b, "deadline", 0);
    assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), MESH_EPROTO);
    body_end(&b);
    body_begin(&b, 4);
    base_v_id_op(&b);
    kv_int(&b, "deadline", -5);
    assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), MESH_EPROTO);
    body_end(&b);
    body_begin(&b, 4);
    base_v_id_op(&b);
    kv_str(&b, "deadline", "100");
    assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), MESH_EPROTO);
    body_end(&b);
}

/* One malformed-field case: the minimal valid body plus key=value. */
typedef struct {
    const char *name;
    void (*add)(body_t *b); /* adds exactly one pair */
    int rc;
} field_case_t;

static void add_deadline(body_t *b)
{
    kv_uint(b, "deadline", 1000);
}

#define CASE(fn_name, body)                                                                        \
    static void fn_name(body_t *b)                                                                 \
    {                                                                                              \
        body;                                                                                      \
    }

static char s_long[MESH_CONV_MAX + 2];

CASE(c_conv_ok, kv_str(b, "conv", "web:abc.1_2-3"))
CASE(c_conv_nil, kv_nil(b, "conv"))
CASE(c_conv_bad_char, kv_str(b, "conv", "a/b"))
CASE(c_conv_space, kv_str(b, "conv", "a b"))
CASE(c_conv_too_long, kv_strn(b, "conv", s_long, MESH_CONV_MAX + 1))
CASE(c_conv_max, kv_strn(b, "conv", s_long, MESH_CONV_MAX))
CASE(c_conv_int, kv_uint(b, "conv", 5))
CASE(c_tenant_colon, kv_str(b, "tenant", "a:b"))
CASE(c_tenant_too_long, kv_strn(b, "tenant", s_long, MESH_TENANT_MAX + 1))
CASE(c_tenant_ok, kv_str(b, "tenant", "t-1.x_y"))
CASE(c_tp_ok, kv_str(b, "tp", TP_OK))
CASE(c_tp_upper, kv_str(b, "tp", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"))
CASE(c_tp_zero_trace, kv_str(b, "tp", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"))
CASE(c_tp_zero_parent, kv_str(b, "tp", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"))
CASE(c_tp_version, kv_str(b, "tp", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
CASE(c_tp_short, kv_str(b, "tp", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"))
CASE(c_tp_long, kv_str(b, "tp", TP_OK "0"))
CASE(c_tp_dash, kv_str(b, "tp", "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"))
CASE(c_idem_int, kv_uint(b, "idem", 1))
CASE(c_idem_true, kv_bool(b, "idem", true))
CASE(c_args_bin, key(b, "args"); msgpack_pack_bin(&b->pk, 1); msgpack_pack_bin_body(&b->pk, "x", 1))
CASE(c_args_int_key, key(b, "args"); msgpack_pack_map(&b->pk, 1); msgpack_pack_int(&b->pk, 1);
     msgpack_pack_int(&b->pk, 2))
CASE(c_args_nil, kv_nil(b, "args"))
CASE(c_unknown_skipped, key(b, "future"); msgpack_pack_map(&b->pk, 1);
     mesh_mp_pack_str(&b->pk, "x"); msgpack_pack_bin(&b->pk, 1);
     msgpack_pack_bin_body(&b->pk, "x", 1))
CASE(c_other_body_key, kv_str(b, "status", "whatever"))
CASE(c_dup_id, kv_str(b, "id", "req-2"))
CASE(c_int_key, msgpack_pack_int(&b->pk, 7); msgpack_pack_int(&b->pk, 7))
CASE(c_nil_key, msgpack_pack_nil(&b->pk); msgpack_pack_int(&b->pk, 7))

static void test_request_fields(void **state)
{
    (void)state;
    memset(s_long, 'a', sizeof(s_long) - 1);
    const field_case_t cases[] = {
        {"conv ok", c_conv_ok, 0},
        {"conv nil", c_conv_nil, 0},
        {"conv bad char", c_conv_bad_char, MESH_EPROTO},
        {"conv space", c_conv_space, MESH_EPROTO},
        {"conv too long", c_conv_too_long, MESH_EPROTO},
        {"conv max", c_conv_max, 0},
        {"conv int", c_conv_int, MESH_EPROTO},
        {"tenant colon", c_tenant_colon, MESH_EPROTO},
        {"tenant too long", c_tenant_too_long, MESH_EPROTO},
        {"tenant ok", c_tenant_ok, 0},
        {"tp ok", c_tp_ok, 0},
        {"tp upper", c_tp_upper, MESH_EPROTO},
        {"tp zero trace", c_tp_zero_trace, MESH_EPROTO},
        {"tp zero parent", c_tp_zero_parent, MESH_EPROTO},
        {"tp version", c_tp_version, MESH_EPROTO},
        {"tp short", c_tp_short, MESH_EPROTO},
        {"tp long", c_tp_long, MESH_EPROTO},
        {"tp dash", c_tp_dash, MESH_EPROTO},
        {"idem int", c_idem_int, MESH_EPROTO},
        {"idem true", c_idem_true, 0},
        {"args bin", c_args_bin, MESH_EPROTO},
        {"args int key", c_args_int_key, MESH_EPROTO},
        {"args nil", c_args_nil, 0},
        {"unknown key skipped", c_unknown_skipped, 0},
        {"other body's key", c_other_body_key, 0},
        {"duplicate id", c_dup_id, MESH_EPROTO},
        {"int key", c_int_key, MESH_EPROTO},
        {"nil key", c_nil_key, MESH_EPROTO},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        mesh_request_t out;
        body_t b;
        body_begin(&b, 5);
        base_v_id_op(&b);
        add_deadline(&b);
        cases[k].add(&b);
        int rc = mesh_request_decode(b.sb.data, b.sb.size, &out);
        if (rc != cases[k].rc) {
            print_error("case '%s': rc %d, want %d\n", cases[k].name, rc, cases[k].rc);
            fail();
        }
        if (rc != 0) {
            /* on error the struct holds nothing owned */
            assert_null(out.args);
        }
        mesh_request_clear(&out);
        body_end(&b);
    }
}

static void test_request_tenant_default_and_values(void **state)
{
    (void)state;
    mesh_request_t out;
    body_t b;
    body_begin(&b, 5);
    base_v_id_op(&b);
    add_deadline(&b);
    kv_str(&b, "tenant", "");
    assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), 0);
    assert_string_equal(out.tenant, "default");
    body_end(&b);

    body_begin(&b, 6);
    base_v_id_op(&b);
    add_deadline(&b);
    kv_bool(&b, "idem", true);
    key(&b, "args");
    msgpack_pack_map(&b.pk, 1);
    kv_str(&b, "q", "w");
    assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), 0);
    assert_true(out.idem);
    assert_string_equal(json_string_value(json_object_get(out.args, "q")), "w");
    mesh_request_clear(&out);
    body_end(&b);
}

static void test_request_ids(void **state)
{
    (void)state;
    char long_id[MESH_ID_MAX + 2];
    memset(long_id, 'i', sizeof(long_id));
    const struct {
        const char *id;
        size_t n;
        int rc;
    } cases[] = {
        {"a", 1, 0},
        {long_id, MESH_ID_MAX, 0},
        {long_id, MESH_ID_MAX + 1, MESH_EPROTO},
        {"", 0, MESH_EPROTO},
        {"a b", 3, MESH_EPROTO},
        {"a/b", 3, MESH_EPROTO},
        {"a\nb", 3, MESH_EPROTO},
        {"a\0b", 3, MESH_EPROTO},
        {"\xe4\xbd\xa0", 3, MESH_EPROTO},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        mesh_request_t out;
        body_t b;
        body_begin(&b, 4);
        kv_uint(&b, "v", 1);
        kv_strn(&b, "id", cases[k].id, cases[k].n);
        kv_str(&b, "op", "turn");
        add_deadline(&b);
        assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), cases[k].rc);
        if (cases[k].rc == 0)
            assert_int_equal(strlen(out.id), cases[k].n);
        body_end(&b);

        /* the same id as op */
        if (cases[k].n <= MESH_OP_MAX || cases[k].rc != 0) {
            body_begin(&b, 4);
            kv_uint(&b, "v", 1);
            kv_str(&b, "id", "x");
            kv_strn(&b, "op", cases[k].id, cases[k].n);
            add_deadline(&b);
            assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), cases[k].rc);
            body_end(&b);
        }
    }
    /* op over MESH_OP_MAX */
    mesh_request_t out;
    body_t b;
    body_begin(&b, 4);
    kv_uint(&b, "v", 1);
    kv_str(&b, "id", "x");
    kv_strn(&b, "op", long_id, MESH_OP_MAX + 1);
    add_deadline(&b);
    assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), MESH_EPROTO);
    body_end(&b);
}

static void test_request_version_and_required(void **state)
{
    (void)state;
    mesh_request_t out;
    const uint64_t versions[] = {0, 2, 255};
    for (size_t k = 0; k < 3; k++) {
        body_t b;
        body_begin(&b, 4);
        kv_uint(&b, "v", versions[k]);
        kv_str(&b, "id", "x");
        kv_str(&b, "op", "y");
        add_deadline(&b);
        assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), MESH_EPROTO);
        body_end(&b);
    }
    /* v as a string */
    body_t b;
    body_begin(&b, 4);
    kv_str(&b, "v", "1");
    kv_str(&b, "id", "x");
    kv_str(&b, "op", "y");
    add_deadline(&b);
    assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), MESH_EPROTO);
    body_end(&b);

    /* each required key missing in turn */
    const char *req_keys[] = {"v", "id", "op", "deadline"};
    for (size_t miss = 0; miss < 4; miss++) {
        body_begin(&b, 3);
        for (size_t k = 0; k < 4; k++) {
            if (k == miss)
                continue;
            if (k == 0)
                kv_uint(&b, "v", 1);
            else if (k == 3)
                kv_uint(&b, "deadline", 5);
            else
                kv_str(&b, req_keys[k], "x");
        }
        assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), MESH_EPROTO);
        body_end(&b);
    }
}

static void test_request_shapes(void **state)
{
    (void)state;
    mesh_request_t out;
    /* not a map */
    const uint8_t arr[] = {0x91, 0x01};
    assert_int_equal(mesh_request_decode(arr, sizeof(arr), &out), MESH_EPROTO);
    const uint8_t str[] = {0xa1, 'x'};
    assert_int_equal(mesh_request_decode(str, sizeof(str), &out), MESH_EPROTO);
    assert_int_equal(mesh_request_decode(NULL, 0, &out), MESH_EPROTO);
    assert_int_equal(mesh_request_decode("", 0, &out), MESH_EPROTO);
    const uint8_t c1[] = {0xc1};
    assert_int_equal(mesh_request_decode(c1, 1, &out), MESH_EPROTO);

    /* a valid body truncated at every byte, and with a trailing byte */
    mesh_request_t in;
    fill_request(&in);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_request_encode(&in, &sb), 0);
    for (size_t cut = 0; cut < sb.size; cut++) {
        int rc = mesh_request_decode(sb.data, cut, &out);
        assert_int_equal(rc, MESH_EPROTO);
        assert_null(out.args);
    }
    msgpack_sbuffer_write(&sb, "\x00", 1);
    assert_int_equal(mesh_request_decode(sb.data, sb.size, &out), MESH_EPROTO);
    /* a map count larger than the bytes */
    sb.size--;
    ((uint8_t *)sb.data)[0] = 0xdf;
    assert_int_equal(mesh_request_decode(sb.data, sb.size, &out), MESH_EPROTO);
    msgpack_sbuffer_destroy(&sb);
    mesh_request_clear(&in);

    /* args nested deeper than the limit */
    body_t b;
    body_begin(&b, 5);
    base_v_id_op(&b);
    add_deadline(&b);
    key(&b, "args");
    for (int d = 0; d < MESH_MP_MAX_DEPTH; d++)
        msgpack_pack_array(&b.pk, 1);
    msgpack_pack_int(&b.pk, 1);
    assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), MESH_ETOOBIG);
    body_end(&b);
    /* one level less fits: the body map is level 1 */
    body_begin(&b, 5);
    base_v_id_op(&b);
    add_deadline(&b);
    key(&b, "args");
    for (int d = 0; d < MESH_MP_MAX_DEPTH - 1; d++)
        msgpack_pack_array(&b.pk, 1);
    msgpack_pack_int(&b.pk, 1);
    assert_int_equal(mesh_request_decode(b.sb.data, b.sb.size, &out), 0);
    mesh_request_clear(&out);
    body_end(&b);
}

static void test_request_encode_invalid(void **state)
{
    (void)state;
    mesh_request_t r;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);

#define EXPECT_EINVAL(mutate)                                                                      \
    do {                                                                                           \
        fill_request(&r);                                                                          \
        mutate;                                                                                    \
        assert_int_equal(mesh_request_encode(&r, &sb), MESH_EINVAL);                               \
        assert_int_equal(sb.size, 0);                                                              \
        mesh_request_clear(&r);                                                                    \
    } while (0)

    EXPECT_EINVAL(r.id[0] = '\0');
    EXPECT_EINVAL(strcpy(r.id, "a b"));
    EXPECT_EINVAL(memset(r.id, 'a', sizeof(r.id))); /* no NUL */
    EXPECT_EINVAL(r.op[0] = '\0');
    EXPECT_EINVAL(strcpy(r.op, "op/x"));
    EXPECT_EINVAL(strcpy(r.conv, "c c"));
    EXPECT_EINVAL(strcpy(r.tenant, "t:x"));
    EXPECT_EINVAL(strcpy(r.tp, "00-xyz"));
    EXPECT_EINVAL(r.deadline_ms = 0);
    assert_int_equal(mesh_request_encode(NULL, &sb), MESH_EINVAL);

    /* args too deep: EINVAL and nothing left in the buffer */
    fill_request(&r);
    json_decref(r.args);
    r.args = json_array();
    json_t *cur = r.args;
    for (int d = 0; d < MESH_MP_MAX_DEPTH + 2; d++) {
        json_t *n = json_array();
        json_array_append_new(cur, n);
        cur = n;
    }
    msgpack_sbuffer_write(&sb, "ab", 2);
    assert_int_equal(mesh_request_encode(&r, &sb), MESH_EINVAL);
    assert_int_equal(sb.size, 2);
    mesh_request_clear(&r);
    msgpack_sbuffer_destroy(&sb);
#undef EXPECT_EINVAL
}

/* ---- reply ---- */

static void test_reply_round_trip(void **state)
{
    (void)state;
    mesh_reply_t in, out;
    memset(&in, 0, sizeof(in));
    strcpy(in.id, "req-9");
    in.status = MESH_ETIMEDOUT;
    strcpy(in.err, "deadline exceeded \xe2\x80\x94 sorry");
    in.data = json_pack("{s:s}", "delta", "hello");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_reply_encode(&in, &sb), 0);
    assert_int_equal(mesh_reply_decode(sb.data, sb.size, &out), 0);
    assert_string_equal(out.id, "req-9");
    assert_int_equal(out.status, MESH_ETIMEDOUT);
    assert_string_equal(out.err, in.err);
    assert_true(json_equal(out.data, in.data));
    mesh_reply_clear(&out);
    assert_null(out.data);

    /* status 0, no err, no data */
    mesh_reply_clear(&in);
    strcpy(in.id, "r");
    sb.size = 0;
    assert_int_equal(mesh_reply_encode(&in, &sb), 0);
    assert_int_equal(mesh_reply_decode(sb.data, sb.size, &out), 0);
    assert_int_equal(out.status, 0);
    assert_string_equal(out.err, "");
    assert_null(out.data);

    /* every known code travels */
    for (int code = -1; code >= -20; code--) {
        in.status = code;
        sb.size = 0;
        assert_int_equal(mesh_reply_encode(&in, &sb), 0);
        assert_int_equal(mesh_reply_decode(sb.data, sb.size, &out), 0);
        assert_int_equal(out.status, code);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_reply_malformed(void **state)
{
    (void)state;
    mesh_reply_t out;
    char long_err[MESH_ERRMSG_MAX + 1];
    memset(long_err, 'e', sizeof(long_err));
    const struct {
        const char *name;
        int kind; /* 0: status int, 1: err str, 2: status str, 3: missing status, 4: v */
        int64_t status;
        const char *err;
        size_t err_n;
        int rc;
    } cases[] = {
        {"unknown negative code", 0, -999, NULL, 0, MESH_EPROTO},
        {"code -21", 0, -21, NULL, 0, MESH_EPROTO},
        {"positive status", 0, 1, NULL, 0, MESH_EPROTO},
        {"int32 underflow", 0, INT64_C(-4294967297), NULL, 0, MESH_EPROTO},
        {"known code", 0, MESH_EBUSY, NULL, 0, 0},
        {"err max", 1, 0, long_err, MESH_ERRMSG_MAX, 0},
        {"err too long", 1, 0, long_err, MESH_ERRMSG_MAX + 1, MESH_EPROTO},
        {"err invalid utf8", 1, 0, "a\xff", 2, MESH_EPROTO},
        {"err with NUL", 1, 0, "a\0b", 3, MESH_EPROTO},
        {"status as string", 2, 0, NULL, 0, MESH_EPROTO},
        {"status missing", 3, 0, NULL, 0, MESH_EPROTO},
        {"v 2", 4, 0, NULL, 0, MESH_EPROTO},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        body_t b;
        int kind = cases[k].kind;
        body_begin(&b, kind == 1 ? 4 : kind == 3 ? 2 : 3);
        kv_uint(&b, "v", kind == 4 ? 2 : 1);
        kv_str(&b, "id", "r1");
        if (kind == 0)
            kv_int(&b, "status", cases[k].status);
        else if (kind == 2)
            kv_str(&b, "status", "0");
        else if (kind != 3)
            kv_int(&b, "status", 0);
        if (kind == 1)
            kv_strn(&b, "err", cases[k].err, cases[k].err_n);
        int rc = mesh_reply_decode(b.sb.data, b.sb.size, &out);
        if (rc != cases[k].rc) {
            print_error("case '%s': rc %d, want %d\n", cases[k].name, rc, cases[k].rc);
            fail();
        }
        mesh_reply_clear(&out);
        body_end(&b);
    }

    /* data that cannot become JSON: the whole reply is refused, nothing leaks */
    body_t b;
    body_begin(&b, 4);
    kv_uint(&b, "v", 1);
    kv_str(&b, "id", "r1");
    kv_int(&b, "status", 0);
    key(&b, "data");
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_int(&b.pk, 1);
    msgpack_pack_ext(&b.pk, 1, 3);
    msgpack_pack_ext_body(&b.pk, "x", 1);
    assert_int_equal(mesh_reply_decode(b.sb.data, b.sb.size, &out), MESH_EPROTO);
    assert_null(out.data);
    body_end(&b);

    /* truncation at every byte */
    mesh_reply_t in;
    memset(&in, 0, sizeof(in));
    strcpy(in.id, "abc");
    strcpy(in.err, "boom");
    in.status = MESH_ETOOL;
    in.data = json_pack("{s:[i,i]}", "x", 1, 2);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_reply_encode(&in, &sb), 0);
    for (size_t cut = 0; cut < sb.size; cut++)
        assert_int_equal(mesh_reply_decode(sb.data, cut, &out), MESH_EPROTO);
    mesh_reply_clear(&in);
    msgpack_sbuffer_destroy(&sb);
}

static void test_reply_encode(void **state)
{
    (void)state;
    mesh_reply_t r, out;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    memset(&r, 0, sizeof(r));
    strcpy(r.id, "r");
    r.status = -999;
    assert_int_equal(mesh_reply_encode(&r, &sb), MESH_EINVAL);
    r.status = 3;
    assert_int_equal(mesh_reply_encode(&r, &sb), MESH_EINVAL);
    r.status = 0;
    r.id[0] = '\0';
    assert_int_equal(mesh_reply_encode(&r, &sb), MESH_EINVAL);
    strcpy(r.id, "r");
    memset(r.err, 'x', sizeof(r.err)); /* no NUL */
    assert_int_equal(mesh_reply_encode(&r, &sb), MESH_EINVAL);
    assert_int_equal(sb.size, 0);

    /* an error text cut mid-character is sent as valid UTF-8 */
    memset(r.err, 0, sizeof(r.err));
    strcpy(r.err, "upstream said \xe4\xbd"); /* truncated 3-byte sequence */
    r.status = MESH_EUNAVAIL;
    assert_int_equal(mesh_reply_encode(&r, &sb), 0);
    assert_int_equal(mesh_reply_decode(sb.data, sb.size, &out), 0);
    assert_string_equal(out.err, "upstream said ??");
    mesh_reply_clear(&out);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- ready ---- */

static void test_ready(void **state)
{
    (void)state;
    mesh_ready_t in = {.capacity = 64}, out;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_ready_encode(&in, &sb), 0);
    assert_int_equal(mesh_ready_decode(sb.data, sb.size, &out), 0);
    assert_int_equal(out.capacity, 64);
    for (size_t cut = 0; cut < sb.size; cut++)
        assert_int_equal(mesh_ready_decode(sb.data, cut, &out), MESH_EPROTO);
    sb.size = 0;
    in.capacity = 0;
    assert_int_equal(mesh_ready_encode(&in, &sb), MESH_EINVAL);
    in.capacity = MESH_WORKER_CAPACITY_MAX + 1;
    assert_int_equal(mesh_ready_encode(&in, &sb), MESH_EINVAL);
    in.capacity = MESH_WORKER_CAPACITY_MAX;
    assert_int_equal(mesh_ready_encode(&in, &sb), 0);
    assert_int_equal(mesh_ready_decode(sb.data, sb.size, &out), 0);
    assert_int_equal(out.capacity, MESH_WORKER_CAPACITY_MAX);
    msgpack_sbuffer_destroy(&sb);

    const struct {
        uint64_t v, cap;
        int with_cap;
        int rc;
    } cases[] = {
        {1, 0, 1, MESH_EPROTO},
        {1, MESH_WORKER_CAPACITY_MAX + 1, 1, MESH_EPROTO},
        {1, UINT64_C(1) << 40, 1, MESH_EPROTO},
        {1, 5, 0, MESH_EPROTO},
        {2, 5, 1, MESH_EPROTO},
        {1, 1, 1, 0},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        body_t b;
        body_begin(&b, cases[k].with_cap ? 2 : 1);
        kv_uint(&b, "v", cases[k].v);
        if (cases[k].with_cap)
            kv_uint(&b, "capacity", cases[k].cap);
        assert_int_equal(mesh_ready_decode(b.sb.data, b.sb.size, &out), cases[k].rc);
        body_end(&b);
    }
    /* capacity as a negative number */
    body_t b;
    body_begin(&b, 2);
    kv_uint(&b, "v", 1);
    kv_int(&b, "capacity", -1);
    assert_int_equal(mesh_ready_decode(b.sb.data, b.sb.size, &out), MESH_EPROTO);
    body_end(&b);
}

/* ---- ids ---- */

static void test_traceparent_and_ids(void **state)
{
    (void)state;
    char tp[MESH_TRACEPARENT_MAX + 1], tp2[MESH_TRACEPARENT_MAX + 1];
    char id[33], id2[33];
    mesh_traceparent_new(tp);
    mesh_traceparent_new(tp2);
    assert_int_equal(strlen(tp), MESH_TRACEPARENT_MAX);
    assert_true(mesh_traceparent_valid(tp, strlen(tp)));
    assert_string_not_equal(tp, tp2);
    mesh_id_new(id);
    mesh_id_new(id2);
    assert_int_equal(strlen(id), 32);
    assert_string_not_equal(id, id2);
    for (int k = 0; k < 32; k++)
        assert_non_null(strchr("0123456789abcdef", id[k]));
    assert_true(mesh_traceparent_valid(TP_OK, strlen(TP_OK)));
    assert_false(mesh_traceparent_valid(TP_OK, strlen(TP_OK) - 1));
    assert_false(mesh_traceparent_valid(NULL, 55));

    assert_true(mesh_conv_id_valid("a:b.c_d-e", 9));
    assert_false(mesh_conv_id_valid("", 0));
    assert_false(mesh_conv_id_valid("a/b", 3));
}

/* A forked child must not hand out the ids its parent will. */
static void test_ids_after_fork(void **state)
{
    (void)state;
    char parent_id[33], child_id[33] = {0};
    int fds[2];
    mesh_id_new(parent_id); /* seed the parent's generator before fork */
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[33];
        mesh_id_new(id);
        ssize_t w = write(fds[1], id, 32);
        _exit(w == 32 ? 0 : 1);
    }
    close(fds[1]);
    mesh_id_new(parent_id);
    size_t got = 0;
    while (got < 32) {
        ssize_t r = read(fds[0], child_id + got, 32 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_int_equal(got, 32);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_string_not_equal(parent_id, child_id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_minimal_defaults),
        cmocka_unit_test(test_request_deadline),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_request_tenant_default_and_values),
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_request_version_and_required),
        cmocka_unit_test(test_request_shapes),
        cmocka_unit_test(test_request_encode_invalid),
        cmocka_unit_test(test_reply_round_trip),
        cmocka_unit_test(test_reply_malformed),
        cmocka_unit_test(test_reply_encode),
        cmocka_unit_test(test_ready),
        cmocka_unit_test(test_traceparent_and_ids),
        cmocka_unit_test(test_ids_after_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
