/*
 * test_config.c - configuration tables from the environment
 * (lib/mesh/config.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/mesh_config.h"
#include "mesh/mesh_err.h"

#define V_INT "MESHTEST_INT"
#define V_STR "MESHTEST_STR"
#define V_OPT "MESHTEST_OPT"

static void make_table(mesh_config_entry_t t[3])
{
    memset(t, 0, 3 * sizeof(t[0]));
    t[0] = (mesh_config_entry_t){
        .name = V_INT, .type = MESH_CFG_INT, .def = "42", .min = 1, .max = 1000, .help = "an int"};
    t[1] = (mesh_config_entry_t){
        .name = V_STR, .type = MESH_CFG_STRING, .def = "dflt", .help = "a string"};
    t[2] = (mesh_config_entry_t){.name = V_OPT, .type = MESH_CFG_STRING, .help = "optional"};
}

static int setup(void **state)
{
    (void)state;
    unsetenv(V_INT);
    unsetenv(V_STR);
    unsetenv(V_OPT);
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    mesh_config_entry_t t[3];
    char err[128];
    make_table(t);
    assert_int_equal(mesh_config_load(t, 3, err, sizeof(err)), 0);
    assert_int_equal(mesh_config_int(t, 3, V_INT), 42);
    assert_string_equal(mesh_config_str(t, 3, V_STR), "dflt");
    assert_string_equal(mesh_config_str(t, 3, V_OPT), "");
    assert_string_equal(err, "");
    /* an empty value means the default */
    setenv(V_INT, "", 1);
    setenv(V_STR, "", 1);
    assert_int_equal(mesh_config_load(t, 3, err, sizeof(err)), 0);
    assert_int_equal(t[0].i, 42);
    assert_string_equal(t[1].s, "dflt");
}

static void test_values(void **state)
{
    (void)state;
    mesh_config_entry_t t[3];
    char err[128];
    make_table(t);
    setenv(V_INT, "1000", 1);
    setenv(V_STR, "tcp://a:1,tcp://b:2", 1);
    setenv(V_OPT, "x", 1);
    assert_int_equal(mesh_config_load(t, 3, err, sizeof(err)), 0);
    assert_int_equal(t[0].i, 1000);
    assert_string_equal(t[1].s, "tcp://a:1,tcp://b:2");
    assert_string_equal(t[2].s, "x");
    setenv(V_INT, "+7", 1);
    assert_int_equal(mesh_config_load(t, 3, err, sizeof(err)), 0);
    assert_int_equal(t[0].i, 7);
}

static void test_bad_ints(void **state)
{
    (void)state;
    const struct {
        const char *v;
        const char *reason;
    } cases[] = {
        {"0", "out of range [1, 1000]"}, {"1001", "out of range"},
        {"-5", "out of range"},          {"10ms", "not an integer"},
        {" 5", "not an integer"},        {"5 ", "not an integer"},
        {"0x10", "not an integer"},      {"abc", "not an integer"},
        {"-", "not an integer"},         {"99999999999999999999999", "not an integer"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        mesh_config_entry_t t[3];
        char err[128];
        make_table(t);
        setenv(V_INT, cases[k].v, 1);
        assert_int_equal(mesh_config_load(t, 3, err, sizeof(err)), MESH_ECONFIG);
        /* the message names the variable first, then the reason */
        assert_memory_equal(err, V_INT ": ", strlen(V_INT) + 2);
        if (strstr(err, cases[k].reason) == NULL) {
            print_error("value '%s': err '%s' lacks '%s'\n", cases[k].v, err, cases[k].reason);
            fail();
        }
    }
}

static void test_error_sanitised_and_order(void **state)
{
    (void)state;
    mesh_config_entry_t t[3];
    char err[256];
    make_table(t);
    setenv(V_INT, "1\n2", 1);
    assert_int_equal(mesh_config_load(t, 3, err, sizeof(err)), MESH_ECONFIG);
    assert_null(strchr(err, '\n'));
    assert_non_null(strstr(err, "\\x0a"));

    /* entries after the bad one are not filled; a NULL err is fine */
    make_table(t);
    t[1].s = NULL;
    assert_int_equal(mesh_config_load(t, 3, NULL, 0), MESH_ECONFIG);
    assert_null(t[1].s);

    /* an INT entry without a default and unset is an error */
    mesh_config_entry_t req = {
        .name = "MESHTEST_REQ", .type = MESH_CFG_INT, .max = 10, .help = "required"};
    unsetenv("MESHTEST_REQ");
    assert_int_equal(mesh_config_load(&req, 1, err, sizeof(err)), MESH_ECONFIG);
    assert_non_null(strstr(err, "MESHTEST_REQ"));
}

static void test_too_long(void **state)
{
    (void)state;
    mesh_config_entry_t t[3];
    char err[128];
    size_t n = 5000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    make_table(t);
    setenv(V_STR, big, 1);
    assert_int_equal(mesh_config_load(t, 3, err, sizeof(err)), MESH_ECONFIG);
    assert_non_null(strstr(err, V_STR));
    free(big);
}

static void test_find(void **state)
{
    (void)state;
    mesh_config_entry_t t[3];
    make_table(t);
    assert_int_equal(mesh_config_load(t, 3, NULL, 0), 0);
    assert_ptr_equal(mesh_config_find(t, 3, V_STR), &t[1]);
    assert_null(mesh_config_find(t, 3, "NOPE"));
    assert_null(mesh_config_str(t, 3, "NOPE"));
    assert_int_equal(mesh_config_int(t, 3, "NOPE"), 0);
    assert_null(mesh_config_find(NULL, 0, V_STR));
}

static void test_help(void **state)
{
    (void)state;
    mesh_config_entry_t t[3];
    char *buf = NULL;
    size_t size = 0;
    make_table(t);
    FILE *f = open_memstream(&buf, &size);
    assert_non_null(f);
    mesh_config_help(f, t, 3);
    fclose(f);
    assert_non_null(strstr(buf, "  " V_INT "  (default: 42)  an int\n"));
    assert_non_null(strstr(buf, V_STR "  (default: dflt)  a string\n"));
    assert_non_null(strstr(buf, V_OPT "  (default: none)  optional\n"));
    free(buf);
}

static void test_split(void **state)
{
    (void)state;
    char items[4][256];
    assert_int_equal(mesh_config_split("tcp://a:1", items, 4), 1);
    assert_string_equal(items[0], "tcp://a:1");
    assert_int_equal(mesh_config_split("a, b ,c", items, 4), 3);
    assert_string_equal(items[0], "a");
    assert_string_equal(items[1], "b");
    assert_string_equal(items[2], "c");
    assert_int_equal(mesh_config_split("", items, 4), 0);
    assert_int_equal(mesh_config_split("  ", items, 4), 0);
    assert_int_equal(mesh_config_split("a,,b", items, 4), MESH_EINVAL);
    assert_int_equal(mesh_config_split("a,", items, 4), MESH_EINVAL);
    assert_int_equal(mesh_config_split(",a", items, 4), MESH_EINVAL);
    assert_int_equal(mesh_config_split("a, ,b", items, 4), MESH_EINVAL);
    assert_int_equal(mesh_config_split("a,b,c,d", items, 4), 4);
    assert_int_equal(mesh_config_split("a,b,c,d,e", items, 4), MESH_EINVAL);
    assert_int_equal(mesh_config_split(NULL, items, 4), MESH_EINVAL);

    char item255[300];
    memset(item255, 'e', 255);
    item255[255] = '\0';
    assert_int_equal(mesh_config_split(item255, items, 4), 1);
    assert_int_equal(strlen(items[0]), 255);
    item255[255] = 'e';
    item255[256] = '\0';
    assert_int_equal(mesh_config_split(item255, items, 4), MESH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_values, setup),
        cmocka_unit_test_setup(test_bad_ints, setup),
        cmocka_unit_test_setup(test_error_sanitised_and_order, setup),
        cmocka_unit_test_setup(test_too_long, setup),
        cmocka_unit_test_setup(test_find, setup),
        cmocka_unit_test_setup(test_help, setup),
        cmocka_unit_test_setup(test_split, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
