/*
 * test_router_agent_json.c - the agent loop's JSON writer
 * (lib/mesh/json_write.c, as the router uses it) writes exactly what json_dumps writes with
 * JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(p): every value type,
 * escapes, reals at several precisions, key order, nesting, a real policy
 * document; the buffer is reused and released when it grew too large.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mesh/mesh_json.h"
#include "agent_turn.h"
#include "mesh/mesh_err.h"

static void same_as_jansson(mesh_jbuf_t *b, const json_t *v, int precision)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(precision));
    assert_non_null(want);
    assert_int_equal(mesh_json_write(b, v, precision), 0);
    if (b->len != strlen(want) || memcmp(b->data, want, b->len) != 0)
        fail_msg("precision %d: jansson '%s', writer '%.*s'", precision, want, (int)b->len,
                 b->data);
    free(want);
}

static void test_values(void **state)
{
    (void)state;
    mesh_jbuf_t b = {0};
    static const char *const docs[] = {
        "{}",
        "[]",
        "{\"z\":1,\"a\":[true,false,null],\"m\":{\"k\":\"v\"}}",
        "[0,-1,9223372036854775807,-9223372036854775808,42]",
        "[1.0,0.6,0.1,-0.5,1e300,-2.5e-300,123456789.123456789,3000000.0,1e20,1e-7,1e21,"
        "0.30000000000000004,100.0,1e16,12345678901234567890.0]",
        "[\"\",\"plain\",\"中文（示例）\",\"😀\",\"quote \\\" backslash \\\\ slash /\"]",
        "[\"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"]",
        "{\"k\\u00e9y\\n\":\"v\",\"a\\\"b\":{\"\":[]}}",
        "[[[[[[[[[[{\"deep\":[1]}]]]]]]]]]]",
    };
    static const int precisions[] = {15, 17, 1, 6};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_error_t err;
        json_t *v = json_loads(docs[i], 0, &err);
        if (v == NULL)
            fail_msg("bad test JSON %s: %s", docs[i], err.text);
        for (size_t p = 0; p < sizeof precisions / sizeof precisions[0]; p++)
            same_as_jansson(&b, v, precisions[p]);
        json_decref(v);
    }
    /* Bare values (JSON_ENCODE_ANY) and a NUL inside a string. */
    json_t *any[] = {json_null(), json_true(), json_integer(-7), json_real(2.5),
                     json_stringn("a\0b", 3)};
    for (size_t i = 0; i < sizeof any / sizeof any[0]; i++) {
        same_as_jansson(&b, any[i], 15);
        json_decref(any[i]);
    }
    mesh_jbuf_free(&b);
}

static void test_policy_document(void **state)
{
    (void)state;
    const char *dir = getenv("MESH_DATA_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/products/med-million-2024.json", dir ? dir : "data");
    json_t *prod = json_load_file(path, 0, NULL);
    if (prod == NULL)
        fail_msg("cannot read %s (MESH_DATA_DIR)", path);
    mesh_jbuf_t b = {0};
    same_as_jansson(&b, prod, 15);
    assert_true(b.len > 2000);
    /* The buffer is reused: a second write starts from empty. */
    char *keep = b.data;
    mesh_jbuf_reset(&b, ROUTER_JSON_KEEP_MAX);
    same_as_jansson(&b, prod, 15);
    assert_ptr_equal(b.data, keep);
    json_decref(prod);
    mesh_jbuf_free(&b);
    assert_null(b.data);
}

static void test_limits(void **state)
{
    (void)state;
    mesh_jbuf_t b = {0};
    assert_int_equal(mesh_json_write(&b, NULL, 15), MESH_EINVAL);
    json_t *one = json_integer(1);
    assert_int_equal(mesh_json_write(&b, one, 0), MESH_EINVAL);
    assert_int_equal(mesh_json_write(&b, one, 18), MESH_EINVAL);
    json_decref(one);

    /* Nesting beyond the bound is refused, and nothing is left in the buffer. */
    json_t *v = json_array();
    json_t *inner = v;
    for (int i = 0; i < MESH_JSON_WRITE_DEPTH_MAX; i++) {
        json_t *a = json_array();
        json_array_append_new(inner, a);
        inner = a;
    }
    assert_int_equal(mesh_json_write(&b, v, 15), MESH_EINVAL);
    assert_int_equal(b.len, 0);
    json_decref(v);

    /* A large write leaves a large buffer: reset releases it. */
    size_t big = ROUTER_JSON_KEEP_MAX;
    char *s = malloc(big);
    assert_non_null(s);
    memset(s, 'x', big);
    json_t *str = json_stringn(s, big);
    free(s);
    assert_int_equal(mesh_json_write(&b, str, 15), 0);
    assert_int_equal(b.len, big + 2);
    assert_true(b.cap > ROUTER_JSON_KEEP_MAX);
    mesh_jbuf_reset(&b, ROUTER_JSON_KEEP_MAX);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    json_decref(str);
    mesh_jbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_policy_document),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
