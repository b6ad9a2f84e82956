/*
 * test_schema.c - the JSON Schema subset validator (lib/mesh/schema.c):
 * every keyword, the JSON path in messages, malformed schemas.
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

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_schema.h"

/* Directory of this source file (cmake compiles with absolute paths). */
static char SRC_DIR[512];

static json_t *js(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (v == NULL)
        fail_msg("bad test JSON: %s: %s", text, e.text);
    return v;
}

/* Validate value against schema (both JSON text); return the code, copy the message. */
static int run(const char *schema, const char *value, char *err, size_t err_size)
{
    json_t *s = js(schema);
    json_t *v = js(value);
    int rc = mesh_schema_validate(s, v, err, err_size);
    json_decref(s);
    json_decref(v);
    return rc;
}

static void expect_ok(const char *schema, const char *value)
{
    char err[256] = "";
    int rc = run(schema, value, err, sizeof(err));
    if (rc != 0)
        fail_msg("expected ok for %s against %s, got %d: %s", value, schema, rc, err);
}

static void expect_bad(const char *schema, const char *value, const char *msg)
{
    char err[256] = "";
    int rc = run(schema, value, err, sizeof(err));
    if (rc != MESH_EBADARGS)
        fail_msg("expected EBADARGS for %s against %s, got %d (%s)", value, schema, rc, err);
    if (strcmp(err, msg) != 0)
        fail_msg("message mismatch:\n  got:  %s\n  want: %s", err, msg);
}

static void expect_malformed(const char *schema, const char *needle)
{
    char err[256] = "";
    json_t *s = js(schema);
    json_t *v = js("{}");
    int rc = mesh_schema_validate(s, v, err, sizeof(err));
    int rc2 = mesh_schema_check(s, NULL, 0);
    json_decref(s);
    json_decref(v);
    if (rc != MESH_EINVAL || rc2 != MESH_EINVAL)
        fail_msg("expected EINVAL for schema %s, got %d/%d (%s)", schema, rc, rc2, err);
    if (strstr(err, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err, needle);
}

static void test_type(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"string\"}", "\"x\"");
    expect_bad("{\"type\":\"string\"}", "1", "$: must be of type string (got integer)");
    expect_ok("{\"type\":\"number\"}", "1");
    expect_ok("{\"type\":\"number\"}", "1.5");
    expect_bad("{\"type\":\"number\"}", "\"1\"", "$: must be of type number (got string)");
    expect_ok("{\"type\":\"integer\"}", "3");
    expect_ok("{\"type\":\"integer\"}", "3.0"); /* integral reals are integers */
    expect_bad("{\"type\":\"integer\"}", "3.5", "$: must be of type integer (got number)");
    expect_ok("{\"type\":\"boolean\"}", "false");
    expect_bad("{\"type\":\"boolean\"}", "0", "$: must be of type boolean (got integer)");
    expect_ok("{\"type\":\"object\"}", "{}");
    expect_bad("{\"type\":\"object\"}", "[]", "$: must be of type object (got array)");
    expect_ok("{\"type\":\"array\"}", "[]");
    expect_ok("{\"type\":\"null\"}", "null");
    expect_bad("{\"type\":\"null\"}", "{}", "$: must be of type null (got object)");
    expect_ok("{\"type\":[\"string\",\"null\"]}", "null");
    expect_bad("{\"type\":[\"string\",\"null\"]}", "true",
               "$: must be of type string or null (got boolean)");
    /* no "type": anything goes */
    expect_ok("{}", "[1,{\"a\":2}]");
}

static void test_enum_const(void **state)
{
    (void)state;
    const char *s = "{\"enum\":[\"active\",\"lapsed\",\"expired\"]}";
    expect_ok(s, "\"lapsed\"");
    expect_bad(s, "\"gone\"", "$: must be one of \"active\", \"lapsed\", \"expired\"");
    expect_ok("{\"enum\":[1,2]}", "2.0"); /* numbers compare by value */
    expect_bad("{\"enum\":[1,2]}", "\"1\"", "$: must be one of 1, 2");
    expect_ok("{\"enum\":[{\"a\":1},null]}", "null");
    expect_ok("{\"const\":\"fixed\"}", "\"fixed\"");
    expect_bad("{\"const\":\"fixed\"}", "\"other\"", "$: must equal \"fixed\"");
    expect_ok("{\"const\":{\"a\":[1]}}", "{\"a\":[1]}");
    expect_bad("{\"const\":0.5}", "0.25", "$: must equal 0.5");
    /* a long enum is listed with an ellipsis */
    char err[256];
    assert_int_equal(run("{\"enum\":[1,2,3,4,5,6,7,8,9,10]}", "11", err, sizeof(err)),
                     MESH_EBADARGS);
    assert_string_equal(err, "$: must be one of 1, 2, 3, 4, 5, 6, 7, 8, ...");
}

static void test_numbers(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"number\",\"minimum\":0,\"maximum\":1}";
    expect_ok(s, "0");
    expect_ok(s, "1");
    expect_ok(s, "0.6");
    expect_bad(s, "-0.01", "$: must be >= 0");
    expect_bad(s, "1.5", "$: must be <= 1");
    const char *x = "{\"exclusiveMinimum\":0,\"exclusiveMaximum\":100.5}";
    expect_ok(x, "0.001");
    expect_bad(x, "0", "$: must be > 0");
    expect_bad(x, "100.5", "$: must be < 100.5");
    expect_ok(x, "100");
    /* draft-4 boolean modifiers */
    const char *d4 = "{\"minimum\":1,\"exclusiveMinimum\":true,\"maximum\":5,"
                     "\"exclusiveMaximum\":true}";
    expect_bad(d4, "1", "$: must be > 1");
    expect_bad(d4, "5", "$: must be < 5");
    expect_ok(d4, "4.99");
    /* big integers compare exactly */
    expect_bad("{\"maximum\":9007199254740993}", "9007199254740994",
               "$: must be <= 9007199254740993");
    expect_ok("{\"maximum\":9007199254740993}", "9007199254740993");
    /* numeric keywords ignore non-numbers */
    expect_ok("{\"minimum\":5}", "\"abc\"");
}

static void test_strings(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}";
    expect_ok(s, "\"ab\"");
    expect_bad(s, "\"a\"", "$: must be at least 2 characters long");
    expect_bad(s, "\"abcd\"", "$: must be at most 3 characters long");
    /* lengths count code points, not bytes: 三个字 is 9 bytes, 3 characters */
    expect_ok(s, "\"\u4e09\u4e2a\u5b57\"");
    expect_bad(s, "\"\u4e09\u4e2a\u5b57\u554a\"", "$: must be at most 3 characters long");

    const char *p = "{\"type\":\"string\",\"pattern\":\"^P[0-9]{5}$\"}";
    expect_ok(p, "\"P10023\"");
    expect_bad(p, "\"P1002\"", "$: must match the pattern ^P[0-9]{5}$");
    expect_bad(p, "\"p10023\"", "$: must match the pattern ^P[0-9]{5}$");
    expect_bad(p, "\"P10023 \"", "$: must match the pattern ^P[0-9]{5}$");
    /* an embedded NUL never matches (regexec would stop at it) */
    expect_bad(p, "\"P10023\\u0000x\"", "$: must match the pattern ^P[0-9]{5}$");
    /* unanchored patterns search, as in JSON Schema */
    expect_ok("{\"pattern\":\"[0-9]+\"}", "\"abc123\"");
    /* string keywords ignore non-strings */
    expect_ok("{\"minLength\":5,\"pattern\":\"^x$\"}", "12");
}

static void test_arrays(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"array\",\"minItems\":1,\"maxItems\":2,"
                    "\"items\":{\"type\":\"integer\"}}";
    expect_ok(s, "[1]");
    expect_ok(s, "[1,2]");
    expect_bad(s, "[]", "$: must have at least 1 items");
    expect_bad(s, "[1,2,3]", "$: must have at most 2 items");
    expect_bad(s, "[1,\"x\"]", "$[1]: must be of type integer (got string)");
    /* a pattern under items is checked on every element */
    expect_bad("{\"items\":{\"pattern\":\"^a\"}}", "[\"ab\",\"ac\",\"b\"]",
               "$[2]: must match the pattern ^a");
}

static void test_objects(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},"
                    "\"b\":{\"type\":\"number\"}},\"required\":[\"a\"],"
                    "\"additionalProperties\":false}";
    expect_ok(s, "{\"a\":\"x\"}");
    expect_ok(s, "{\"a\":\"x\",\"b\":2}");
    expect_bad(s, "{\"b\":2}", "$.a: is required");
    expect_bad(s, "{\"a\":\"x\",\"c\":1}",
               "$.c: is not an allowed property (additionalProperties is false)");
    expect_bad(s, "{\"a\":1}", "$.a: must be of type string (got integer)");
    /* additionalProperties true or absent: extra keys are fine */
    expect_ok("{\"properties\":{\"a\":{}},\"additionalProperties\":true}", "{\"z\":1}");
    expect_ok("{\"properties\":{\"a\":{}}}", "{\"z\":1}");
    /* odd property names are quoted and escaped in the path */
    expect_bad("{\"additionalProperties\":false}", "{\"a b\\n\":1}",
               "$[\"a b\\x0a\"]: is not an allowed property (additionalProperties is false)");
    expect_bad("{\"required\":[\"\u4fdd\"]}", "{}", "$[\"\\xe4\\xbf\\x9d\"]: is required");
}

/* The fee.calc shape: a nested path names the line and the field. */
static void test_nested_paths(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"required\":[\"lines\"],\"properties\":{"
                    "\"lines\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
                    "\"required\":[\"item\",\"amount\"],\"additionalProperties\":false,"
                    "\"properties\":{\"item\":{\"type\":\"string\",\"minLength\":1},"
                    "\"amount\":{\"type\":\"number\",\"minimum\":0},"
                    "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]}}}}}}}";
    expect_ok(s, "{\"lines\":[{\"item\":\"x\",\"amount\":1}]}");
    expect_bad(s,
               "{\"lines\":[{\"item\":\"x\",\"amount\":1},{\"item\":\"y\",\"amount\":2},"
               "{\"item\":\"z\",\"amount\":-5}]}",
               "$.lines[2].amount: must be >= 0");
    expect_bad(s, "{\"lines\":[{\"amount\":1}]}", "$.lines[0].item: is required");
    expect_bad(s, "{\"lines\":[{\"item\":\"\",\"amount\":1}]}",
               "$.lines[0].item: must be at least 1 characters long");
    expect_bad(s, "{\"lines\":[{\"item\":\"x\",\"amount\":1,\"tags\":[\"a\",\"c\"]}]}",
               "$.lines[0].tags[1]: must be one of \"a\", \"b\"");
    expect_bad(s, "{\"lines\":[{\"item\":\"x\",\"amount\":1,\"extra\":true}]}",
               "$.lines[0].extra: is not an allowed property (additionalProperties is false)");
    expect_bad(s, "{\"lines\":{}}", "$.lines: must be of type array (got object)");
    expect_bad(s, "[]", "$: must be of type object (got array)");
}

static void test_long_path_truncated(void **state)
{
    (void)state;
    /* 30 nested objects with 40-char keys: the rendered path is cut with "...". */
    char schema[8192], value[8192];
    size_t so = 0, vo = 0;
    const char *key = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk";
    for (int i = 0; i < 30; i++) {
        so += (size_t)snprintf(schema + so, sizeof(schema) - so, "{\"properties\":{\"%s\":", key);
        vo += (size_t)snprintf(value + vo, sizeof(value) - vo, "{\"%s\":", key);
    }
    so += (size_t)snprintf(schema + so, sizeof(schema) - so, "{\"type\":\"string\"}");
    vo += (size_t)snprintf(value + vo, sizeof(value) - vo, "1");
    for (int i = 0; i < 30; i++) {
        so += (size_t)snprintf(schema + so, sizeof(schema) - so, "}}");
        vo += (size_t)snprintf(value + vo, sizeof(value) - vo, "}");
    }
    char err[512];
    assert_int_equal(run(schema, value, err, sizeof(err)), MESH_EBADARGS);
    assert_non_null(strstr(err, "...: must be of type string (got integer)"));
    assert_true(strncmp(err, "$.kkkk", 6) == 0);
}

static void test_depth_limit(void **state)
{
    (void)state;
    /* MESH_MP_MAX_DEPTH nested "items" are fine, one more is a malformed schema. */
    char schema[4096];
    size_t o = 0;
    for (int i = 0; i < MESH_MP_MAX_DEPTH; i++)
        o += (size_t)snprintf(schema + o, sizeof(schema) - o, "{\"items\":");
    o += (size_t)snprintf(schema + o, sizeof(schema) - o, "{}");
    for (int i = 0; i < MESH_MP_MAX_DEPTH; i++)
        o += (size_t)snprintf(schema + o, sizeof(schema) - o, "}");
    json_t *s = js(schema);
    assert_int_equal(mesh_schema_check(s, NULL, 0), 0);
    json_t *deeper = json_pack("{s:O}", "items", s);
    char err[256];
    assert_int_equal(mesh_schema_check(deeper, err, sizeof(err)), MESH_EINVAL);
    assert_non_null(strstr(err, "nested deeper than"));
    json_decref(deeper);
    json_decref(s);
}

static void test_malformed_schemas(void **state)
{
    (void)state;
    expect_malformed("[]", "schema #: must be an object");
    expect_malformed("{\"type\":\"str\"}", "schema #/type: unknown type name");
    expect_malformed("{\"type\":[]}", "schema #/type:");
    expect_malformed("{\"type\":[\"string\",3]}", "schema #/type:");
    expect_malformed("{\"properties\":[]}", "schema #/properties:");
    expect_malformed("{\"properties\":{\"a\":{\"type\":\"int\"}}}",
                     "schema #/properties/a/type: unknown type name");
    expect_malformed("{\"properties\":{\"a\":5}}", "schema #/properties/a: must be an object");
    expect_malformed("{\"required\":\"a\"}", "schema #/required:");
    expect_malformed("{\"required\":[1]}", "schema #/required:");
    expect_malformed("{\"additionalProperties\":{}}", "schema #/additionalProperties:");
    expect_malformed("{\"enum\":[]}", "schema #/enum: must be a non-empty array");
    expect_malformed("{\"enum\":\"a\"}", "schema #/enum:");
    expect_malformed("{\"minimum\":\"0\"}", "schema #/minimum: must be a number");
    expect_malformed("{\"maximum\":null}", "schema #/maximum:");
    expect_malformed("{\"exclusiveMinimum\":\"1\"}", "schema #/exclusiveMinimum:");
    expect_malformed("{\"minLength\":-1}", "schema #/minLength: must be a non-negative integer");
    expect_malformed("{\"maxLength\":1.5}", "schema #/maxLength:");
    expect_malformed("{\"minItems\":\"1\"}", "schema #/minItems:");
    expect_malformed("{\"maxItems\":-2}", "schema #/maxItems:");
    expect_malformed("{\"pattern\":5}", "schema #/pattern: must be a string");
    expect_malformed("{\"pattern\":\"([a-z\"}", "schema #/pattern: not a valid");
    expect_malformed("{\"items\":[{}]}", "schema #/items:");
    expect_malformed("{\"items\":{\"items\":{\"minimum\":\"x\"}}}",
                     "schema #/items/items/minimum:");
    /* a malformed part is found even when the value never reaches it */
    expect_malformed("{\"properties\":{\"opt\":{\"pattern\":\"(\"}}}", "schema #/properties/opt");
    /* NULL schema and NULL value */
    char err[128];
    assert_int_equal(mesh_schema_validate(NULL, NULL, err, sizeof(err)), MESH_EINVAL);
    json_t *s = js("{}");
    assert_int_equal(mesh_schema_validate(s, NULL, err, sizeof(err)), MESH_EBADARGS);
    assert_int_equal(mesh_schema_check(NULL, err, sizeof(err)), MESH_EINVAL);
    json_decref(s);
}

static void test_unknown_keywords_ignored(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"string\",\"description\":\"x\",\"title\":5,\"format\":\"date\","
              "\"x-custom\":{}}",
              "\"anything\"");
}

/* A tiny err buffer, or none at all, is never overrun. */
static void test_err_buffer(void **state)
{
    (void)state;
    char err[8];
    memset(err, 'X', sizeof(err));
    assert_int_equal(run("{\"type\":\"string\"}", "1", err, 5), MESH_EBADARGS);
    assert_int_equal(strlen(err), 4);
    assert_int_equal(err[5], 'X');
    assert_int_equal(run("{\"type\":\"string\"}", "1", NULL, 0), MESH_EBADARGS);
    assert_int_equal(run("{\"type\":\"string\"}", "\"ok\"", err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

/* The real tool schemas shipped in data/tools.json are well-formed. */
static void test_shipped_tool_schemas(void **state)
{
    (void)state;
    /* ctest sets MESH_DATA_DIR; run by hand, find data/ from this file's path. */
    const char *dir = getenv("MESH_DATA_DIR");
    char path[1024];
    if (dir != NULL)
        snprintf(path, sizeof(path), "%s/tools.json", dir);
    else
        snprintf(path, sizeof(path), "%s/../../data/tools.json", SRC_DIR);
    json_error_t e;
    json_t *tools = json_load_file(path, 0, &e);
    if (tools == NULL)
        fail_msg("%s: %s", path, e.text);
    assert_true(json_is_array(tools));
    assert_true(json_array_size(tools) >= 2);
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        char err[256];
        int rc = mesh_schema_check(json_object_get(t, "parameters"), err, sizeof(err));
        if (rc != 0)
            fail_msg("%s: %s", json_string_value(json_object_get(t, "name")), err);
    }
    json_decref(tools);
}

int main(void)
{
    snprintf(SRC_DIR, sizeof(SRC_DIR), "%s", __FILE__);
    char *slash = strrchr(SRC_DIR, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(SRC_DIR, sizeof(SRC_DIR), ".");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_enum_const),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_objects),
        cmocka_unit_test(test_nested_paths),
        cmocka_unit_test(test_long_path_truncated),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_malformed_schemas),
        cmocka_unit_test(test_unknown_keywords_ignored),
        cmocka_unit_test(test_err_buffer),
        cmocka_unit_test(test_shipped_tool_schemas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
