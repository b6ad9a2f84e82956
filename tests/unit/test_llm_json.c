/*
 * test_llm_json.c - the llm service's fast JSON parser (services/llm/llm_json.c)
 * must accept exactly what json_loadb (flags 0) accepts and build equal
 * values: checked on the shipped policy data as the tools service returns it,
 * on hand-picked edge cases, and on every truncation of a real document.
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

/* Both parsers on s[0..len): both refuse it, or both accept it with equal values. */
static void same_as_jansson(const char *s, size_t len)
{
    json_t *want = json_loadb(s, len, 0, NULL);
    json_t *got = mesh_json_parse(s, len);
    if ((want == NULL) != (got == NULL))
        fail_msg("jansson %s, llm_json %s: '%.*s'", want ? "accepts" : "refuses",
                 got ? "accepts" : "refuses", (int)(len > 200 ? 200 : len), s);
    if (want != NULL && !json_equal(want, got))
        fail_msg("different values for '%.*s'", (int)(len > 200 ? 200 : len), s);
    json_decref(want);
    json_decref(got);
}

static void same(const char *s)
{
    same_as_jansson(s, strlen(s));
}

static void test_valid_documents(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}",
        "[]",
        " \t\r\n{ \"a\" : 1 , \"b\" : [ 1 , 2 ] } \n",
        "{\"a\":{\"b\":{\"c\":[[],{},[{}]]}}}",
        "[true,false,null]",
        "[0,-0,1,-1,9223372036854775807,-9223372036854775808]",
        "[0.5,-0.5,1e3,1E3,1e+3,1e-3,-1.25e-7,3000000.0,1.0,0.6,123456789.123456789]",
        "[1e308,2.2250738585072014e-308,4.9e-324,1e-400]",
        "[\"\",\"plain\",\"中文（示例）\",\"😀\"]",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
        "[\"\\u0041\\u00e9\\u4e2d\\uD83D\\uDE00\\u0001\\u001f\"]",
        "{\"k\\u00e9y\":\"v\",\"a\\\"b\":1}",
        "{\"dup\":1,\"dup\":2}",
        "{\"\":\"empty key\"}",
        "[\"mixed \\n escapes and 中文 \\u4e2d then more\",\"second \\t one\"]",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        same(docs[i]);

    /* The real thing: a policy.lookup result, and the key order survives. */
    json_t *v = mesh_json_parse("{\"z\":1,\"a\":2,\"m\":3}", 19);
    assert_non_null(v);
    const char *order[] = {"z", "a", "m"};
    int i = 0;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        assert_string_equal(k, order[i]);
        i++;
    }
    json_decref(v);
}

static void test_invalid_documents(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "",
        " ",
        "1",
        "\"top-level string\"",
        "null",
        "{",
        "[",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "[1,]",
        "[,1]",
        "{a:1}",
        "{'a':1}",
        "[01]",
        "[1.]",
        "[.5]",
        "[1e]",
        "[-]",
        "[+1]",
        "[1e400]",
        "[-1e400]",
        "[9223372036854775808]",
        "[-9223372036854775809]",
        "[99999999999999999999999]",
        "[tru]",
        "[nul]",
        "[truex]",
        "[\"unterminated]",
        "[\"bad \\x escape\"]",
        "[\"\\u12\"]",
        "[\"\\u12G4\"]",
        "[\"\\u0000\"]",
        "[\"\\uD83D\"]",
        "[\"\\uDE00\"]",
        "[\"\\uD83D\\u0041\"]",
        "[\"tab\tinside\"]",
        "[\"newline\ninside\"]",
        "{} {}",
        "[] x",
        "[1 2]",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        same(docs[i]);
        assert_null(mesh_json_parse(docs[i], strlen(docs[i])));
    }
    /* A NUL byte inside or after the document. */
    same_as_jansson("[\"a\0b\"]", 7);
    same_as_jansson("[1]\0", 4);
    assert_null(mesh_json_parse(NULL, 0));
}

static void test_depth_bound(void **state)
{
    (void)state;
    char deep[2 * (MESH_JSON_DEPTH_MAX + 1) + 1];
    size_t n = 0;
    for (int i = 0; i < MESH_JSON_DEPTH_MAX; i++)
        deep[n++] = '[';
    for (int i = 0; i < MESH_JSON_DEPTH_MAX; i++)
        deep[n++] = ']';
    json_t *v = mesh_json_parse(deep, n);
    assert_non_null(v); /* exactly at the bound */
    json_decref(v);
    n = 0;
    for (int i = 0; i <= MESH_JSON_DEPTH_MAX; i++)
        deep[n++] = '[';
    for (int i = 0; i <= MESH_JSON_DEPTH_MAX; i++)
        deep[n++] = ']';
    assert_null(mesh_json_parse(deep, n)); /* one deeper: refused, no stack blow-up */
}

/* The shipped policy data, dumped the way the router writes a tool result. */
static char *policy_text(size_t *len_out)
{
    const char *dir = getenv("MESH_DATA_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/products/med-million-2024.json", dir ? dir : "data");
    json_t *prod = json_load_file(path, 0, NULL);
    if (prod == NULL)
        fail_msg("cannot read %s (MESH_DATA_DIR)", path);
    json_t *doc =
        json_pack("{s:s, s:s, s:O, s:f, s:[s, s]}", "policy_no", "P10023", "status", "active",
                  "product", prod, "ratio", 0.6, "mix", "a\"b\\c\n", "中\u00e9\t");
    char *s = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(doc);
    json_decref(prod);
    assert_non_null(s);
    *len_out = strlen(s);
    return s;
}

static void test_real_document_and_truncations(void **state)
{
    (void)state;
    size_t len;
    char *s = policy_text(&len);
    assert_true(len > 2000);
    same_as_jansson(s, len);
    json_t *v = mesh_json_parse(s, len);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "mix"), 0)),
                        "a\"b\\c\n");
    json_decref(v);
    /* Every prefix is refused by both (or accepted by both). */
    for (size_t n = 0; n < len; n++)
        same_as_jansson(s, n);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_documents),
        cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_real_document_and_truncations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
