/*
 * test_memory_json.c - the memory service's JSON writer
 * (services/memory/memory_json.c) and the stored forms built with it
 * (memory_args.c): byte for byte what json_dumps(JSON_COMPACT) gives, for
 * every value type, escapes, reals, key order, a real tool message, the
 * "ts" added to a message that has none, and the user message of turn.begin.
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

#include "memory_args.h"
#include "mesh/mesh_json.h"
#include "mesh/mesh_json.h"
#include "mesh/mesh_err.h"

static void same_as_jansson(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(want);
    mesh_jbuf_t b = {0};
    mesh_jbuf_value(&b, v, MESH_JSON_PRECISION_MAX);
    size_t len = 0;
    int rc = -1;
    char *got = mesh_jbuf_finish(&b, &len, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(got);
    assert_int_equal(len, strlen(got));
    if (strcmp(want, got) != 0)
        fail_msg("jansson '%s', writer '%s'", want, got);
    free(want);
    free(got);
}

static void test_values(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}",
        "[]",
        "{\"z\":1,\"a\":[true,false,null],\"m\":{\"k\":\"v\"}}",
        "[0,-1,9223372036854775807,-9223372036854775808,42]",
        "[1.0,0.6,0.1,-0.5,1e300,-2.5e-300,123456789.123456789,3000000.0,1e20,1e-7,1e21,"
        "0.30000000000000004,100.0,1e16]",
        "[\"\",\"plain\",\"中文（示例）\",\"😀\",\"quote \\\" backslash \\\\ slash /\"]",
        "[\"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f 12345678\\\"12345678\"]",
        "{\"k\\u00e9y\\n\":\"v\",\"a\\\"b\":{\"\":[]}}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_error_t err;
        json_t *v = json_loads(docs[i], 0, &err);
        if (v == NULL)
            fail_msg("bad test JSON %s: %s", docs[i], err.text);
        same_as_jansson(v);
        json_decref(v);
    }
    json_t *nul = json_stringn("a\0b", 3);
    same_as_jansson(nul);
    json_decref(nul);
}

/* The old encoding: a shallow copy with "ts" set when absent, then json_dumps. */
static char *old_encode(const json_t *msg, uint64_t now)
{
    json_t *copy = json_copy((json_t *)msg);
    if (json_object_get(copy, "ts") == NULL)
        json_object_set_new(copy, "ts", json_integer((json_int_t)now));
    char *s = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    return s;
}

static void test_messages(void **state)
{
    (void)state;
    const char *dir = getenv("MESH_DATA_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/products/med-million-2024.json", dir ? dir : "data");
    json_t *prod = json_load_file(path, 0, NULL);
    if (prod == NULL)
        fail_msg("cannot read %s (MESH_DATA_DIR)", path);
    char *tool_text = json_dumps(prod, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(prod);

    json_t *msgs[] = {
        json_pack("{s:s, s:s, s:s, s:b, s:s}", "role", "tool", "name", "policy.lookup",
                  "tool_call_id", "call_1", "ok", 1, "text", tool_text),
        json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:{s:s}}]}", "role", "assistant", "text", "",
                  "agent", "policy_qa", "tool_calls", "id", "call_1", "name", "policy.lookup",
                  "arguments", "policy_no", "P10023"),
        json_pack("{s:s, s:s, s:I}", "role", "assistant", "text", "带时间戳", "ts", (json_int_t)5),
        json_pack("{s:s, s:s, s:[i, i]}", "role", "tool", "text", "{}", "x-extra", 1, 2),
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        assert_non_null(msgs[i]);
        char *want = old_encode(msgs[i], 1700000000123u);
        size_t len = 0;
        int rc = -1;
        char err[256] = "";
        char *got = memory_message_encode(msgs[i], i, 1700000000123u, &len, &rc, err, sizeof err);
        assert_int_equal(rc, 0);
        assert_non_null(got);
        assert_int_equal(len, strlen(want));
        assert_string_equal(got, want);
        free(want);
        free(got);
        json_decref(msgs[i]);
    }
    free(tool_text);
}

static void test_user_message(void **state)
{
    (void)state;
    memory_begin_args_t a = {.message_id = "m-1", .text = "你好 \"quoted\"\n", .window = 20};
    a.text_len = strlen(a.text);
    json_t *m = json_pack("{s:s, s:s, s:s, s:I}", "role", "user", "text", a.text, "message_id",
                          a.message_id, "ts", (json_int_t)42);
    char *want = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    size_t len = 0;
    char *got = memory_user_message_encode(&a, 42, &len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(want);
    free(got);
}

static void test_errors(void **state)
{
    (void)state;
    /* Nesting beyond the bound: refused, nothing handed out. */
    json_t *v = json_array();
    json_t *inner = v;
    for (int i = 0; i < MESH_JSON_WRITE_DEPTH_MAX; i++) {
        json_t *a = json_array();
        json_array_append_new(inner, a);
        inner = a;
    }
    mesh_jbuf_t b = {0};
    mesh_jbuf_value(&b, v, MESH_JSON_PRECISION_MAX);
    size_t len = 7;
    int rc = 0;
    assert_null(mesh_jbuf_finish(&b, &len, &rc));
    assert_int_equal(rc, MESH_EINVAL);
    assert_null(b.data);
    json_decref(v);

    /* A message whose JSON is too large is refused with ETOOBIG naming it:
     * a text of MESH_TEXT_MAX quotes doubles when escaped. */
    size_t big = MESH_TEXT_MAX;
    char *s = malloc(big);
    assert_non_null(s);
    memset(s, '"', big);
    json_t *text = json_stringn(s, big);
    free(s);
    json_t *msg = json_pack("{s:s, s:o}", "role", "tool", "text", text);
    char err[256] = "";
    assert_null(memory_message_encode(msg, 3, 1, &len, &rc, err, sizeof err));
    assert_int_equal(rc, MESH_ETOOBIG);
    assert_non_null(strstr(err, "messages[3]"));
    json_decref(msg);
}

/* The parser and json_loadb (flags 0) on s[0..len): both refuse, or both accept equal values. */
static void parse_same(const char *s, size_t len)
{
    json_t *want = json_loadb(s, len, 0, NULL);
    json_t *got = mesh_json_parse(s, len);
    if ((want == NULL) != (got == NULL))
        fail_msg("jansson %s, parser %s: '%.*s'", want ? "accepts" : "refuses",
                 got ? "accepts" : "refuses", (int)(len > 200 ? 200 : len), s);
    if (want != NULL && !json_equal(want, got))
        fail_msg("different values for '%.*s'", (int)(len > 200 ? 200 : len), s);
    json_decref(want);
    json_decref(got);
}

static void test_parser(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}",
        "[]",
        " {\"a\" : [1, -2, 3.5e2, true, false, null], \"b\": {}} ",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u4e2d\\uD83D\\uDE00\"]",
        "{\"dup\":1,\"dup\":2}",
        "[9223372036854775807,-9223372036854775808,0.6,1e-400]",
        /* refused by both */
        "",
        "1",
        "\"s\"",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "[01]",
        "[1e400]",
        "[9223372036854775808]",
        "[\"\\u0000\"]",
        "[\"\\uD83D\"]",
        "[\"a\tb\"]",
        "{} x",
        "not json",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        parse_same(docs[i], strlen(docs[i]));

    /* A stored tool message (its text full of escaped quotes), and every prefix of it. */
    const char *dir = getenv("MESH_DATA_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/products/med-million-2024.json", dir ? dir : "data");
    json_t *prod = json_load_file(path, 0, NULL);
    if (prod == NULL)
        fail_msg("cannot read %s (MESH_DATA_DIR)", path);
    char *text = json_dumps(prod, JSON_COMPACT);
    json_decref(prod);
    json_t *msg = json_pack("{s:s, s:b, s:s, s:I}", "role", "tool", "ok", 1, "text", text, "ts",
                            (json_int_t)1);
    free(text);
    char *stored = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    size_t len = strlen(stored);
    parse_same(stored, len);
    for (size_t n = 0; n < len; n++)
        parse_same(stored, n);
    free(stored);

    /* Deeper than the bound: refused without exhausting the stack. */
    char deep[2 * (MESH_JSON_DEPTH_MAX + 1)];
    memset(deep, '[', MESH_JSON_DEPTH_MAX + 1);
    memset(deep + MESH_JSON_DEPTH_MAX + 1, ']', MESH_JSON_DEPTH_MAX + 1);
    assert_null(mesh_json_parse(deep, sizeof deep));
    json_t *ok = mesh_json_parse(deep + 1, sizeof deep - 2);
    assert_non_null(ok);
    json_decref(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),       cmocka_unit_test(test_messages),
        cmocka_unit_test(test_user_message), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
