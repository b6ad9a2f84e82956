/*
 * fuzz_medical.c - the medical catalogue's name normaliser and lookup
 * (services/tools/tools_catalogue.c): the names a model or a customer's bill
 * puts into medical.lookup {items: [...]}.
 *
 * Input: byte 0 picks a short output buffer size; the rest is up to
 * QUERIES_MAX queries separated by '\n'. Queries that are not valid UTF-8 or
 * hold a NUL are skipped: the tool only passes JSON strings without NUL
 * (tool_medical.c), which jansson keeps valid UTF-8. The catalogue is a small
 * one built here from real entries of data/medical/catalogue.json (names with
 * brackets, aliases, an exclusion class).
 *
 * Invariants (abort on violation):
 *   - tools_catalogue_normalize with strlen + 1 bytes of room (the documented
 *     sufficient size, allocated exactly so ASan sees any overrun) succeeds;
 *     the result is NUL-terminated at the returned length, no longer than the
 *     input and valid UTF-8;
 *   - with a smaller buffer it fails (-1) or gives the same result;
 *   - tools_catalogue_find: an item iff the match is not NONE, with matched
 *     set; "exact" matched the item's name and "alias" one of its aliases
 *     byte for byte; a normalised match normalises to the same text as the
 *     query; the item's class has a class name.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_text.h"
#include "tools_catalogue.h"
#include "tools_check.h"

#define QUERIES_MAX 16

static const char CATALOGUE[] =
    "{\"categories\": [\"检查费\", \"化验费\", \"药品费\"],"
    " \"classes\": {\"biochemical_enzyme\": {\"zh\": \"生化酶学检查\", \"en\": \"biochemical "
    "enzyme test\"},"
    "  \"biochemical\": {\"zh\": \"生化检查\", \"en\": \"clinical chemistry test\"},"
    "  \"trace_element\": {\"zh\": \"微量元素检查\", \"en\": \"trace-element test\"},"
    "  \"coagulation\": {\"zh\": \"凝血功能检查\", \"en\": \"coagulation test\"},"
    "  \"imaging\": {\"zh\": \"影像检查\", \"en\": \"imaging\"}},"
    " \"items\": ["
    "  {\"code\": \"LAB-0001\", \"name\": \"唾液酸酶测定\", \"aliases\": [\"唾液酸酶检测\"],"
    "   \"name_en\": \"Sialidase assay\", \"category\": \"化验费\", \"class\": "
    "\"biochemical_enzyme\", \"exclusion_classes\": []},"
    "  {\"code\": \"LAB-0070\", \"name\": \"微量元素测定\", \"aliases\": [\"微量元素五项\","
    "   \"全血微量元素测定\", \"儿童微量元素检测\", \"微量元素检测\"], \"name_en\": "
    "\"Trace-element measurement\", \"category\": \"化验费\", \"class\": \"trace_element\","
    "   \"exclusion_classes\": [\"trace_element_test\"]},"
    "  {\"code\": \"LAB-0045\", \"name\": \"脂蛋白(a)测定\", \"aliases\": [\"脂蛋白(a)检测\"],"
    "   \"name_en\": \"Lipoprotein(a)\", \"category\": \"化验费\", \"class\": \"biochemical\","
    "   \"exclusion_classes\": []},"
    "  {\"code\": \"LAB-0095\", \"name\": \"纤维蛋白(原)降解产物测定\", \"aliases\": [\"FDP\","
    "   \"纤维蛋白(原)降解产物检测\"], \"name_en\": \"Fibrin(ogen) degradation products (FDP)\","
    "   \"category\": \"化验费\", \"class\": \"coagulation\", \"exclusion_classes\": []},"
    "  {\"code\": \"IMG-0003\", \"name\": \"CT平扫（头颅）\", \"aliases\": [\"头颅CT\"],"
    "   \"name_en\": \"Head CT\", \"category\": \"检查费\", \"class\": \"imaging\","
    "   \"exclusion_classes\": [\"health_checkup\"]}"
    " ]}";

static tools_catalogue_t *s_cat;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    json_error_t jerr;
    json_t *root = json_loads(CATALOGUE, 0, &jerr);
    json_t *excl = json_pack("{s:b, s:b}", "trace_element_test", 1, "health_checkup", 1);
    char err[512];
    tools_check_t c;
    tools_check_init(&c, "fuzz catalogue", err, sizeof(err));
    if (root == NULL || excl == NULL || tools_catalogue_build(&c, root, excl, &s_cat) != 0) {
        fprintf(stderr, "fuzz_medical: catalogue: %s\n", root == NULL ? jerr.text : err);
        abort();
    }
    json_decref(root);
    json_decref(excl);
    return 0;
}

/* Normalise q into a new exact-size buffer; the length or -1. */
static int normalize(const char *q, size_t size, char **out)
{
    *out = malloc(size ? size : 1);
    if (*out == NULL)
        abort();
    return tools_catalogue_normalize(q, *out, size);
}

static int alias_of(const json_t *item, const char *s)
{
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(item, "aliases"), i, a)
    {
        if (strcmp(json_string_value(a), s) == 0)
            return 1;
    }
    return 0;
}

static void check_query(const char *q, size_t n, size_t small)
{
    char *full;
    int rc = normalize(q, n + 1, &full);
    if (rc < 0 || (size_t)rc > n || full[rc] != '\0' || strlen(full) != (size_t)rc ||
        !mesh_utf8_valid(full, (size_t)rc))
        abort();

    char *part;
    int rc2 = normalize(q, small, &part);
    if (rc2 != -1 && (rc2 != rc || memcmp(part, full, (size_t)rc + 1) != 0))
        abort();
    free(part);

    tools_med_match_t how;
    const char *matched = NULL;
    const json_t *item = tools_catalogue_find(s_cat, q, &how, &matched);
    if ((item == NULL) != (how == TOOLS_MED_NONE))
        abort();
    if (item != NULL) {
        const char *name = json_string_value(json_object_get(item, "name"));
        if (matched == NULL || name == NULL)
            abort();
        if (how == TOOLS_MED_EXACT && (strcmp(name, q) != 0 || strcmp(matched, q) != 0))
            abort();
        if (how == TOOLS_MED_ALIAS && (!alias_of(item, q) || strcmp(matched, q) != 0))
            abort();
        if (how == TOOLS_MED_NORMALIZED) {
            char *m;
            int rm = normalize(matched, strlen(matched) + 1, &m);
            if (rm != rc || strcmp(m, full) != 0 ||
                (strcmp(matched, name) != 0 && !alias_of(item, matched)))
                abort();
            free(m);
        }
        const char *cls = json_string_value(json_object_get(item, "class"));
        if (cls == NULL || tools_catalogue_class_name(s_cat, cls) == NULL)
            abort();
    }
    free(full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t small = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    size_t at = 0;
    for (int k = 0; k < QUERIES_MAX && at <= n; k++) {
        const char *nl = memchr(s + at, '\n', n - at);
        size_t end = nl != NULL ? (size_t)(nl - s) : n;
        size_t len = end - at;
        if (memchr(s + at, '\0', len) == NULL && mesh_utf8_valid(s + at, len)) {
            char *q = malloc(len + 1);
            if (q == NULL)
                abort();
            memcpy(q, s + at, len);
            q[len] = '\0';
            check_query(q, len, small % (len + 2));
            free(q);
        }
        at = end + 1;
    }
    return 0;
}
