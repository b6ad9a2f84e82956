/*
 * test_medical.c - the medical catalogue and the medical.lookup tool:
 * the shipped catalogue's required entries (the 唾液酸酶测定 vs 微量元素测定
 * pair), matching (exact / alias / normalised / none), normalisation, and the
 * validator's named errors on broken catalogue files.
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
#include "test_tools_fixture.h"
#include "tools_catalogue.h"
#include "tools_data.h"
#include "tools_registry.h"

static tools_registry_t *s_reg;

static int group_setup(void **state)
{
    char dir[FIXTURE_PATH_MAX], err[512];
    (void)state;
    fixture_data_dir(dir);
    s_reg = tools_registry_new();
    if (tools_registry_load(s_reg, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "shipped data: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tools_registry_destroy(&s_reg);
    return 0;
}

static const tools_catalogue_t *cat(void)
{
    return tools_data_catalogue(tools_registry_data(s_reg));
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Look q up; expect how and the item's name and class. */
static void expect_find(const char *q, tools_med_match_t how, const char *name, const char *cls)
{
    tools_med_match_t got;
    const char *matched = NULL;
    const json_t *item = tools_catalogue_find(cat(), q, &got, &matched);
    if (got != how)
        fail_msg("'%s': match %d, want %d", q, (int)got, (int)how);
    if (how == TOOLS_MED_NONE) {
        assert_null(item);
        assert_null(matched);
        return;
    }
    assert_non_null(item);
    assert_non_null(matched);
    assert_string_equal(str(item, "name"), name);
    assert_string_equal(str(item, "class"), cls);
}

/* The shipped catalogue: size and the entries the scenarios rely on. */
static void test_shipped_catalogue(void **state)
{
    (void)state;
    assert_true(tools_catalogue_count(cat()) >= 300);
    static const struct {
        const char *name, *cls, *excl;
    } MUST[] = {
        {"唾液酸酶测定", "biochemical_enzyme", NULL},
        {"微量元素测定", "trace_element", "trace_element_test"},
        {"血清锌测定", "trace_element", "trace_element_test"},
        {"血清铜测定", "trace_element", "trace_element_test"},
        {"血铅测定", "trace_element", "trace_element_test"},
        {"丙氨酸氨基转移酶测定", "biochemical_enzyme", NULL},
        {"尿微量白蛋白测定", "biochemical", NULL}, /* "微量" but not a trace element */
        {"健康体检", "health_checkup", "health_checkup"},
        {"龈上洁治术", "dental", "dental"},
        {"重睑成形术", "cosmetic", "cosmetic"},
        {"多维元素片", "nutrition_drug", "nutrition_drugs"},
        {"葡萄糖酸锌口服溶液", "nutrition_drug", "nutrition_drugs"}, /* a zinc drug, not a test */
        {"普通病房床位费", "bed", NULL},
    };
    for (size_t i = 0; i < sizeof(MUST) / sizeof(MUST[0]); i++) {
        tools_med_match_t how;
        const json_t *item = tools_catalogue_find(cat(), MUST[i].name, &how, NULL);
        if (item == NULL)
            fail_msg("missing %s", MUST[i].name);
        assert_int_equal(how, TOOLS_MED_EXACT);
        assert_string_equal(str(item, "class"), MUST[i].cls);
        const json_t *ex = json_object_get(item, "exclusion_classes");
        if (MUST[i].excl == NULL) {
            assert_int_equal(json_array_size(ex), 0);
        } else {
            assert_int_equal(json_array_size(ex), 1);
            assert_string_equal(json_string_value(json_array_get(ex, 0)), MUST[i].excl);
        }
        assert_non_null(tools_catalogue_class_name(cat(), MUST[i].cls));
    }
    /* the product's exclusion id the trace-element class refers to exists */
    const json_t *prod = tools_data_product(tools_registry_data(s_reg), "med-million-2024");
    bool found = false;
    size_t i;
    const json_t *ex;
    json_array_foreach(json_object_get(prod, "exclusions"), i, ex)
    {
        if (strcmp(str(ex, "id"), "trace_element_test") == 0)
            found = strcmp(str(ex, "clause"), "3.2") == 0;
    }
    assert_true(found);
}

static void test_matching(void **state)
{
    (void)state;
    expect_find("唾液酸酶测定", TOOLS_MED_EXACT, "唾液酸酶测定", "biochemical_enzyme");
    expect_find("谷丙转氨酶", TOOLS_MED_ALIAS, "丙氨酸氨基转移酶测定", "biochemical_enzyme");
    expect_find("血锌", TOOLS_MED_ALIAS, "血清锌测定", "trace_element");
    expect_find("唾液酸酶检测", TOOLS_MED_ALIAS, "唾液酸酶测定", "biochemical_enzyme");
    /* normalised: spaces, method suffix, full-width letters, prefix tag */
    expect_find("唾液酸酶 测定", TOOLS_MED_NORMALIZED, "唾液酸酶测定", "biochemical_enzyme");
    expect_find("唾液酸酶测定（速率法）", TOOLS_MED_NORMALIZED, "唾液酸酶测定",
                "biochemical_enzyme");
    expect_find("微量元素测定(原子吸收法)", TOOLS_MED_NORMALIZED, "微量元素测定", "trace_element");
    expect_find("ＡＬＴ", TOOLS_MED_NORMALIZED, "丙氨酸氨基转移酶测定", "biochemical_enzyme");
    expect_find("alt", TOOLS_MED_NORMALIZED, "丙氨酸氨基转移酶测定", "biochemical_enzyme");
    expect_find("【急】血常规", TOOLS_MED_NORMALIZED, "血细胞分析", "hematology");
    expect_find("血清锌　测定", TOOLS_MED_NORMALIZED, "血清锌测定", "trace_element");
    /* unknown */
    expect_find("唾液酸测定", TOOLS_MED_NONE, NULL, NULL);
    expect_find("不存在的项目", TOOLS_MED_NONE, NULL, NULL);
    expect_find("（）", TOOLS_MED_NONE, NULL, NULL);
}

static void expect_norm(const char *in, const char *want)
{
    char out[256];
    int n = tools_catalogue_normalize(in, out, sizeof(out));
    if (n < 0 || strcmp(out, want) != 0)
        fail_msg("normalize('%s') = '%s' (%d), want '%s'", in, n < 0 ? "" : out, n, want);
    assert_int_equal((size_t)n, strlen(want));
}

static void test_normalize(void **state)
{
    (void)state;
    expect_norm("唾液酸酶 测定", "唾液酸酶测定");
    expect_norm("唾液酸酶测定（速率法）", "唾液酸酶测定");
    expect_norm("血清锌测定（原子吸收法）（急）", "血清锌测定");
    expect_norm("【急】血细胞分析", "血细胞分析");
    expect_norm("ＣＴ（头颅平扫）", "ct");
    expect_norm("脂蛋白(a)测定", "脂蛋白a测定");
    expect_norm("(只有括号)", "只有括号"); /* a group that is the whole text is kept */
    expect_norm("Lp-PLA2", "lp-pla2");
    expect_norm("  \t", "");
    expect_norm("a(b", "ab"); /* unbalanced: brackets removed, nothing dropped */
    char small[4];
    assert_int_equal(tools_catalogue_normalize("唾液酸酶", small, sizeof(small)), -1);
}

/* The tool through the registry: shape of the result, order kept, schema errors. */
static void test_tool(void **state)
{
    (void)state;
    json_t *d = NULL;
    json_t *args =
        json_pack("{s:[s,s,s,s]}", "items", "唾液酸酶测定", "微量元素测定", "唾液酸酶 测定", "XYZ");
    assert_int_equal(tools_registry_call(s_reg, "medical.lookup", args, &d), 0);
    assert_true(json_is_true(json_object_get(d, "ok")));
    const json_t *items = json_object_get(json_object_get(d, "result"), "items");
    assert_int_equal(json_array_size(items), 4);

    const json_t *a = json_array_get(items, 0);
    assert_string_equal(str(a, "query"), "唾液酸酶测定");
    assert_string_equal(str(a, "match"), "exact");
    assert_string_equal(str(a, "name"), "唾液酸酶测定");
    assert_string_equal(str(a, "category"), "化验费");
    assert_string_equal(str(a, "class"), "biochemical_enzyme");
    assert_string_equal(str(json_object_get(a, "class_name"), "zh"), "生化酶学检查");
    assert_non_null(str(a, "code"));
    assert_non_null(str(a, "name_en"));
    assert_true(json_is_array(json_object_get(a, "exclusion_classes")));
    assert_int_equal(json_array_size(json_object_get(a, "exclusion_classes")), 0);
    assert_null(json_object_get(a, "normalized"));

    const json_t *b = json_array_get(items, 1);
    assert_string_equal(str(b, "class"), "trace_element");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(b, "exclusion_classes"), 0)),
        "trace_element_test");

    const json_t *c = json_array_get(items, 2);
    assert_string_equal(str(c, "match"), "alias");
    assert_true(json_is_true(json_object_get(c, "normalized")));
    assert_string_equal(str(c, "matched"), "唾液酸酶测定");

    const json_t *n = json_array_get(items, 3);
    assert_string_equal(str(n, "match"), "none");
    assert_null(json_object_get(n, "code"));
    assert_null(json_object_get(n, "class"));
    assert_int_equal(json_object_size(n), 2); /* query and match only */
    json_decref(d);
    json_decref(args);

    /* schema: at least one item, strings only */
    static const char *const BAD[] = {"{\"items\": []}", "{\"items\": [1]}", "{}",
                                      "{\"items\": [\"a\"], \"x\": 1}"};
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        json_error_t e;
        json_t *bad = json_loads(BAD[i], 0, &e);
        assert_non_null(bad);
        assert_int_equal(tools_registry_call(s_reg, "medical.lookup", bad, &d), 0);
        assert_true(json_is_false(json_object_get(d, "ok")));
        assert_string_equal(str(json_object_get(d, "error"), "code"), "invalid_tool_arguments");
        json_decref(d);
        json_decref(bad);
    }
}

/* ---- validator ------------------------------------------------------------------------------ */

#define CAT_HEAD                                                                                   \
    "{\"categories\": [\"化验费\", \"检查费\"], \"classes\": {"                              \
    "\"biochemical_enzyme\": {\"zh\": \"生化酶学检查\", \"en\": \"enzyme\"},"                \
    "\"trace_element\": {\"zh\": \"微量元素检查\", \"en\": \"trace element\"}}, \"items\": ["
#define ITEM_A                                                                                          \
    "{\"code\": \"LAB-0001\", \"name\": \"唾液酸酶测定\", \"aliases\": [\"唾液酸酶检测\"]," \
    " \"name_en\": \"Sialidase\", \"category\": \"化验费\", \"class\": \"biochemical_enzyme\","      \
    " \"exclusion_classes\": []}"
#define ITEM_B                                                                                     \
    "{\"code\": \"LAB-0002\", \"name\": \"微量元素测定\", \"aliases\": [],"                  \
    " \"name_en\": \"Trace elements\", \"category\": \"化验费\", \"class\": \"trace_element\"," \
    " \"exclusion_classes\": [\"trace_element_test\"]}"

/* Write catalogue text into a fixture dir, load, expect code and "<dir>/medical/catalogue.json:
 * msg". */
static void expect_catalogue(const char *text, int code, const char *msg)
{
    char dir[FIXTURE_PATH_MAX], err[TOOLS_ERR_MAX], want[FIXTURE_PATH_MAX * 2];
    tools_data_t *d = NULL;
    assert_int_equal(fixture_make(dir, FIXTURE_POLICIES), 0);
    if (text != NULL)
        assert_int_equal(fixture_write(dir, "medical/catalogue.json", text), 0);
    else {
        char path[FIXTURE_PATH_MAX * 2];
        snprintf(path, sizeof(path), "%s/medical/catalogue.json", dir);
        assert_int_equal(unlink(path), 0);
    }
    int rc = tools_data_load(dir, &d, err, sizeof(err));
    snprintf(want, sizeof(want), "%s/medical/catalogue.json%s%s", dir, msg[0] ? ": " : "", msg);
    fixture_remove(dir);
    if (rc == 0) {
        assert_non_null(d);
        assert_int_equal(tools_catalogue_count(tools_data_catalogue(d)), 2);
        tools_data_destroy(&d);
    }
    assert_null(d);
    if (rc != code)
        fail_msg("expected %d, got %d (%s)", code, rc, err);
    if (code != 0 && strncmp(err, want, strlen(want)) != 0)
        fail_msg("message mismatch:\n  got:  %s\n  want: %s", err, want);
}

static void test_validator(void **state)
{
    (void)state;
    /* a minimal valid file */
    expect_catalogue(CAT_HEAD ITEM_A "," ITEM_B "]}", 0, "");
    expect_catalogue(NULL, MESH_EIO, "cannot read");
    expect_catalogue("[1]", MESH_ECONFIG, "(top level): must be an object");
    expect_catalogue(CAT_HEAD "]}", MESH_ECONFIG, "items: must be an array of 1..20000 items");
    expect_catalogue(CAT_HEAD ITEM_A "," ITEM_A "]}", MESH_ECONFIG,
                     "items[1].code: duplicate code 'LAB-0001'");
    /* same name, other code */
    const char *dup_name = CAT_HEAD ITEM_A ", {\"code\": \"LAB-0003\", \"name\": \"唾液酸酶测定\","
                                           " \"aliases\": [], \"name_en\": \"x\", \"category\":"
                                           " \"化验费\", \"class\": \"biochemical_enzyme\","
                                           " \"exclusion_classes\": []}]}";
    expect_catalogue(dup_name, MESH_ECONFIG,
                     "items[1].name: '唾液酸酶测定' is already a name or alias of item LAB-0001");
    /* an alias equal to another item's alias */
    const char *dup_alias = CAT_HEAD ITEM_A ", {\"code\": \"LAB-0003\", \"name\": \"X测定\","
                                            " \"aliases\": [\"Y\", \"唾液酸酶检测\"], \"name_en\":"
                                            " \"x\", \"category\": \"化验费\", \"class\":"
                                            " \"biochemical_enzyme\", \"exclusion_classes\": []}]}";
    expect_catalogue(dup_alias, MESH_ECONFIG,
                     "items[1].aliases[1]: '唾液酸酶检测' is already a name or alias of item "
                     "LAB-0001");
    /* different bytes, same after normalisation */
    const char *dup_norm = CAT_HEAD ITEM_A ", {\"code\": \"LAB-0003\", \"name\": \"唾液酸酶 测定\","
                                           " \"aliases\": [], \"name_en\": \"x\", \"category\":"
                                           " \"化验费\", \"class\": \"biochemical_enzyme\","
                                           " \"exclusion_classes\": []}]}";
    expect_catalogue(dup_norm, MESH_ECONFIG,
                     "items[1].name: '唾液酸酶 测定' normalises to '唾液酸酶测定', as does "
                     "'唾液酸酶测定' of item LAB-0001");
    /* unknown exclusion class, class, category */
    const char *bad_excl =
        CAT_HEAD "{\"code\": \"LAB-0001\", \"name\": \"A\", \"aliases\": [],"
                 " \"name_en\": \"a\", \"category\": \"化验费\", \"class\":"
                 " \"trace_element\", \"exclusion_classes\": [\"trace_elements\"]}]}";
    expect_catalogue(bad_excl, MESH_ECONFIG,
                     "items[0].exclusion_classes[0]: unknown exclusion class 'trace_elements' "
                     "(not an exclusion id of any product)");
    const char *bad_class = CAT_HEAD "{\"code\": \"LAB-0001\", \"name\": \"A\", \"aliases\": [],"
                                     " \"name_en\": \"a\", \"category\": \"化验费\", \"class\":"
                                     " \"enzyme\", \"exclusion_classes\": []}]}";
    expect_catalogue(bad_class, MESH_ECONFIG,
                     "items[0].class: unknown class 'enzyme' (not in classes)");
    const char *bad_cat = CAT_HEAD "{\"code\": \"LAB-0001\", \"name\": \"A\", \"aliases\": [],"
                                   " \"name_en\": \"a\", \"category\": \"药费\", \"class\":"
                                   " \"trace_element\", \"exclusion_classes\": []}]}";
    expect_catalogue(bad_cat, MESH_ECONFIG,
                     "items[0].category: unknown category '药费' (not in categories)");
    const char *bad_code = CAT_HEAD "{\"code\": \"lab 1\", \"name\": \"A\", \"aliases\": [],"
                                    " \"name_en\": \"a\", \"category\": \"化验费\", \"class\":"
                                    " \"trace_element\", \"exclusion_classes\": []}]}";
    expect_catalogue(bad_code, MESH_ECONFIG, "items[0].code: 'lab 1' must be 1..32 of A-Z");
    const char *no_en = CAT_HEAD "{\"code\": \"LAB-1\", \"name\": \"A\", \"aliases\": [],"
                                 " \"category\": \"化验费\", \"class\":"
                                 " \"trace_element\", \"exclusion_classes\": []}]}";
    expect_catalogue(no_en, MESH_ECONFIG, "items[0].name_en: is required");
    const char *bad_alias = CAT_HEAD "{\"code\": \"LAB-1\", \"name\": \"A\", \"aliases\": [3],"
                                     " \"name_en\": \"a\", \"category\": \"化验费\", \"class\":"
                                     " \"trace_element\", \"exclusion_classes\": []}]}";
    expect_catalogue(bad_alias, MESH_ECONFIG,
                     "items[0].aliases[0]: must be a non-empty string of at most 128 characters");
    expect_catalogue("{\"categories\": [\"a\", \"a\"], \"classes\": {}, \"items\": []}",
                     MESH_ECONFIG, "categories[1]: duplicate 'a'");
    expect_catalogue("{\"categories\": [\"a\"], \"classes\": {\"x\": {\"zh\": \"x\"}}, "
                     "\"items\": []}",
                     MESH_ECONFIG, "classes.x.en: is required");
}

/* A reload with a broken catalogue keeps the old data (catalogue included). */
static void test_reload_keeps_catalogue(void **state)
{
    (void)state;
    char dir[FIXTURE_PATH_MAX], err[TOOLS_ERR_MAX];
    json_t *d = NULL;
    json_t *args = json_pack("{s:[s]}", "items", "唾液酸酶测定");
    assert_int_equal(fixture_make(dir, FIXTURE_POLICIES), 0);
    tools_registry_t *r = tools_registry_new();
    assert_int_equal(tools_registry_load(r, dir, err, sizeof(err)), 0);
    assert_int_equal(fixture_write(dir, "medical/catalogue.json", CAT_HEAD ITEM_A "," ITEM_A "]}"),
                     0);
    assert_int_equal(tools_registry_load(r, dir, err, sizeof(err)), MESH_ECONFIG);
    assert_non_null(strstr(err, "duplicate code 'LAB-0001'"));
    assert_int_equal(tools_registry_call(r, "medical.lookup", args, &d), 0);
    const json_t *it = json_array_get(json_object_get(json_object_get(d, "result"), "items"), 0);
    assert_string_equal(str(it, "match"), "exact");
    assert_true(tools_catalogue_count(tools_data_catalogue(tools_registry_data(r))) >= 300);
    json_decref(d);
    tools_registry_destroy(&r);
    json_decref(args);
    fixture_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_catalogue), cmocka_unit_test(test_matching),
        cmocka_unit_test(test_normalize),         cmocka_unit_test(test_tool),
        cmocka_unit_test(test_validator),         cmocka_unit_test(test_reload_keeps_catalogue),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
