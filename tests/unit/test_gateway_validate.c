/*
 * test_gateway_validate.c - the gateway's pure helpers: input validators
 * (validate.c), JSON output escaping and parsing (json_io.c) and the capped
 * buffer (gw_buf.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_buf.h"
#include "json_io.h"
#include "mesh/mesh_err.h"
#include "validate.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_ids(void **state)
{
    assert_true(gateway_message_id_valid(S("m-1:x_y.z")));
    assert_false(gateway_message_id_valid(S("")));
    assert_false(gateway_message_id_valid(S("has space")));
    assert_false(gateway_message_id_valid(S("nul\0byte")));
    char long_id[GATEWAY_MESSAGE_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id));
    assert_true(gateway_message_id_valid(long_id, GATEWAY_MESSAGE_ID_MAX));
    assert_false(gateway_message_id_valid(long_id, GATEWAY_MESSAGE_ID_MAX + 1));

    assert_true(gateway_tenant_valid(S("acme_1.eu-west")));
    assert_false(gateway_tenant_valid(S("a:b")));
    assert_false(gateway_tenant_valid(S("")));
    assert_true(gateway_agent_valid(S("claims_auto")));
    assert_false(gateway_agent_valid(S("claims/auto")));
}

static void test_parse_uint(void **state)
{
    uint64_t v = 0;
    assert_int_equal(gateway_parse_uint(S("1500"), 100000, &v), 0);
    assert_int_equal(v, 1500);
    assert_int_equal(gateway_parse_uint(S("100001"), 100000, &v), MESH_EINVAL);
    assert_int_equal(gateway_parse_uint(S("0"), 100000, &v), MESH_EINVAL);
    assert_int_equal(gateway_parse_uint(S("-1"), 100000, &v), MESH_EINVAL);
    assert_int_equal(gateway_parse_uint(S("12a"), 100000, &v), MESH_EINVAL);
    assert_int_equal(gateway_parse_uint(S(""), 100000, &v), MESH_EINVAL);
    assert_int_equal(gateway_parse_uint(S(" 1"), 100000, &v), MESH_EINVAL);
    /* 20 digits would overflow: refused by length. */
    assert_int_equal(gateway_parse_uint(S("99999999999999999999"), UINT64_MAX, &v), MESH_EINVAL);
    assert_int_equal(gateway_parse_uint(S("9999999999999999999"), UINT64_MAX, &v), 0);
}

static void test_query_param(void **state)
{
    const char *v;
    size_t n;
    assert_true(gateway_query_param(S("limit=5"), "limit", &v, &n));
    assert_int_equal(n, 1);
    assert_memory_equal(v, "5", 1);
    assert_true(gateway_query_param(S("a=1&limit=42&b"), "limit", &v, &n));
    assert_int_equal(n, 2);
    assert_memory_equal(v, "42", 2);
    assert_false(gateway_query_param(S("limits=5"), "limit", &v, &n));
    assert_false(gateway_query_param(S("xlimit=5"), "limit", &v, &n));
    assert_true(gateway_query_param(S("limit"), "limit", &v, &n));
    assert_int_equal(n, 0);
    assert_false(gateway_query_param(NULL, 0, "limit", &v, &n));
}

static void test_content_type(void **state)
{
    assert_true(gateway_content_type_json(S("application/json")));
    assert_true(gateway_content_type_json(S("Application/JSON; charset=utf-8")));
    assert_true(gateway_content_type_json(S("application/json ;charset=utf-8")));
    assert_false(gateway_content_type_json(S("application/jsonp")));
    assert_false(gateway_content_type_json(S("text/plain")));
    assert_false(gateway_content_type_json(S("")));
}

static void test_json_escape(void **state)
{
    gateway_buf_t b = {0};
    /* quotes, backslash, control bytes, valid UTF-8 kept, invalid bytes -> '?' */
    const char in[] = "a\"b\\c\n\x01 中 \xff\xc3";
    assert_int_equal(gateway_json_append_str(&b, in, sizeof(in) - 1), 0);
    b.data[b.len] = '\0';
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\u000a\\u0001 中 ??\"");
    json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    assert_non_null(v); /* always valid JSON */
    json_decref(v);
    /* overlong and surrogate encodings are not valid UTF-8 */
    b.len = 0;
    assert_int_equal(gateway_json_append_str(&b, S("\xc0\xaf\xed\xa0\x80")), 0);
    b.data[b.len] = '\0';
    assert_string_equal(b.data, "\"?????\"");
    b.len = 0;
    assert_int_equal(gateway_json_error_body(&b, "bad_x", "why \"not\""), 0);
    b.data[b.len] = '\0';
    assert_string_equal(b.data, "{\"error\":{\"code\":\"bad_x\",\"message\":\"why \\\"not\\\"\"}}");
    gateway_buf_free(&b);
}

static void test_json_parse_and_dump(void **state)
{
    json_t *v = NULL;
    char err[128];
    assert_int_equal(gateway_json_parse_object(S("{\"a\":1}"), &v, err, sizeof(err)), 0);
    gateway_buf_t b = {0};
    assert_int_equal(gateway_json_dump(&b, v), 0);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "{\"a\":1}", 7);
    /* Dump again into the grown buffer (no reallocation path). */
    assert_int_equal(gateway_json_dump(&b, v), 0);
    assert_int_equal(b.len, 7);
    json_decref(v);
    gateway_buf_free(&b);
    assert_int_equal(gateway_json_parse_object(S("[1]"), &v, err, sizeof(err)), MESH_EPROTO);
    assert_null(v);
    assert_int_equal(gateway_json_parse_object(S("{\"a\":"), &v, err, sizeof(err)), MESH_EPROTO);
    assert_non_null(strstr(err, "line"));
    assert_int_equal(gateway_json_parse_object(S(""), &v, err, sizeof(err)), MESH_EPROTO);
    assert_int_equal(gateway_json_parse_object(S("{\"a\":1,\"a\":2}"), &v, err, sizeof(err)),
                     MESH_EPROTO);
}

static void test_buf_limits(void **state)
{
    gateway_buf_t b = {0};
    assert_int_equal(gateway_buf_append(&b, "abcd", 4, 6), 0);
    assert_int_equal(gateway_buf_append(&b, "ef", 2, 6), 0);
    assert_int_equal(gateway_buf_append(&b, "g", 1, 6), MESH_ETOOBIG);
    assert_int_equal(b.len, 6);
    gateway_buf_consume(&b, 2);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "cdef", 4);
    /* A huge need never wraps around. */
    assert_int_equal(gateway_buf_reserve(&b, SIZE_MAX, SIZE_MAX), MESH_ETOOBIG);
    gateway_buf_reset(&b, 0);
    assert_null(b.data);
    gateway_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),         cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_query_param), cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_json_escape), cmocka_unit_test(test_json_parse_and_dump),
        cmocka_unit_test(test_buf_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
