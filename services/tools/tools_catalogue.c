/* tools_catalogue.c - validate, index and search the medical catalogue (tools_catalogue.h). */
#include "tools_catalogue.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_text.h"

/* Characters of the data's zh/en class names. */
#define CLASS_TEXT_MAX 128

struct tools_catalogue {
    json_t *root;      /* the parsed file: owns the items */
    json_t *classes;   /* borrowed from root: id -> {zh, en} */
    json_t *by_name;   /* name -> item */
    json_t *by_alias;  /* alias -> item */
    json_t *by_norm;   /* normalised name or alias -> item */
    json_t *norm_text; /* normalised key -> the name or alias it came from */
    size_t count;
};

/* ---- normalisation ---------------------------------------------------------------------- */

/* Decode one code point of valid UTF-8 at s; *n receives its byte length. */
static uint32_t utf8_next(const unsigned char *s, size_t *n)
{
    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }
    if ((s[0] & 0xE0) == 0xC0 && s[1] != 0) {
        *n = 2;
        return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if ((s[0] & 0xF0) == 0xE0 && s[1] != 0 && s[2] != 0) {
        *n = 3;
        return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    if ((s[0] & 0xF8) == 0xF0 && s[1] != 0 && s[2] != 0 && s[3] != 0) {
        *n = 4;
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
    *n = 1; /* not valid UTF-8: passed through byte by byte */
    return 0xFFFFFFFFu;
}

static bool is_space(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v' ||
           cp == 0x00A0 || cp == 0x3000;
}

/* Full-width and CJK bracket forms -> their ASCII equivalent, else 0. */
static char ascii_form(uint32_t cp)
{
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        return (char)(cp - 0xFEE0);
    switch (cp) {
    case 0x3010: /* 【 */
    case 0x3014: /* 〔 */
    case 0x3016: /* 〖 */
        return '[';
    case 0x3011: /* 】 */
    case 0x3015: /* 〕 */
    case 0x3017: /* 〗 */
        return ']';
    default:
        return 0;
    }
}

static bool is_open(char ch)
{
    return ch == '(' || ch == '[';
}

static bool is_close(char ch)
{
    return ch == ')' || ch == ']';
}

/* Drop trailing "(...)" / "[...]" groups, unless a group is the whole text. */
static size_t strip_suffixes(char *out, size_t len)
{
    while (len > 0 && is_close(out[len - 1])) {
        int depth = 0;
        size_t p = len;
        while (p > 0) {
            p--;
            if (is_close(out[p]))
                depth++;
            else if (is_open(out[p]) && --depth == 0)
                break;
        }
        if (depth != 0 || p == 0)
            break; /* unbalanced, or nothing before the group */
        len = p;
    }
    return len;
}

/* Drop leading "(急)" / "[...]" groups, unless a group is the whole text. Returns the new start. */
static size_t strip_prefixes(const char *out, size_t len)
{
    size_t start = 0;

    while (start < len && is_open(out[start])) {
        int depth = 0;
        size_t p = start;
        for (; p < len; p++) {
            if (is_open(out[p]))
                depth++;
            else if (is_close(out[p]) && --depth == 0)
                break;
        }
        if (depth != 0 || p + 1 >= len)
            break; /* unbalanced, or nothing after the group */
        start = p + 1;
    }
    return start;
}

int tools_catalogue_normalize(const char *s, char *out, size_t out_size)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 0, n, w = 0;

    while (*p != '\0') {
        uint32_t cp = utf8_next(p, &n);
        char a = cp < 0x80 ? (char)cp : ascii_form(cp);

        if (!is_space(cp)) {
            size_t need = a != 0 ? 1 : n;
            if (len + need + 1 > out_size)
                return -1;
            if (a != 0)
                out[len++] = (a >= 'A' && a <= 'Z') ? (char)(a - 'A' + 'a') : a;
            else {
                memcpy(out + len, p, n);
                len += n;
            }
        }
        p += n;
    }
    if (out_size == 0)
        return -1;
    len = strip_suffixes(out, len);
    for (size_t r = strip_prefixes(out, len); r < len; r++) {
        if (!is_open(out[r]) && !is_close(out[r]))
            out[w++] = out[r];
    }
    out[w] = '\0';
    return (int)w;
}

/* ---- validation and index ---------------------------------------------------------------- */

static bool code_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > TOOLS_CATALOGUE_CODE_MAX)
        return false;
    for (const char *q = s; *q != '\0'; q++) {
        if (!((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '-'))
            return false;
    }
    return true;
}

static const char *code_of(const json_t *item)
{
    const char *c = json_string_value(json_object_get(item, "code"));
    return c != NULL ? c : "?";
}

/* Register text (a name or an alias of item) in the raw and normalised indexes. */
static int index_text(tools_check_t *c, tools_catalogue_t *cat, const json_t *item, const char *key,
                      const char *text, bool is_name)
{
    const json_t *owner = json_object_get(cat->by_name, text);
    char *norm = NULL;
    int rc = 0;

    if (owner == NULL)
        owner = json_object_get(cat->by_alias, text);
    if (owner != NULL)
        return tools_check_fail(c, key, "'%s' is already a name or alias of item %s", text,
                                code_of(owner));
    if (json_object_set(is_name ? cat->by_name : cat->by_alias, text, (json_t *)item) != 0)
        return MESH_ENOMEM;
    norm = malloc(strlen(text) + 1);
    if (norm == NULL)
        return MESH_ENOMEM;
    if (tools_catalogue_normalize(text, norm, strlen(text) + 1) <= 0) {
        rc = tools_check_fail(c, key, "'%s' normalises to nothing", text);
        goto cleanup;
    }
    owner = json_object_get(cat->by_norm, norm);
    if (owner != NULL && owner != item) {
        rc = tools_check_fail(c, key, "'%s' normalises to '%s', as does '%s' of item %s", text,
                              norm, json_string_value(json_object_get(cat->norm_text, norm)),
                              code_of(owner));
        goto cleanup;
    }
    if (owner == NULL && (json_object_set(cat->by_norm, norm, (json_t *)item) != 0 ||
                          json_object_set_new(cat->norm_text, norm, json_string(text)) != 0))
        rc = MESH_ENOMEM;
cleanup:
    free(norm);
    return rc;
}

static int check_aliases(tools_check_t *c, tools_catalogue_t *cat, const json_t *item)
{
    const json_t *al = json_object_get(item, "aliases");
    char key[32];
    size_t i;
    const json_t *a;
    int rc;

    if (al == NULL)
        return tools_check_fail(c, "aliases", "is required (may be empty)");
    if (!json_is_array(al) || json_array_size(al) > TOOLS_CATALOGUE_ALIASES_MAX)
        return tools_check_fail(c, "aliases", "must be an array of at most %d names",
                                TOOLS_CATALOGUE_ALIASES_MAX);
    json_array_foreach(al, i, a)
    {
        snprintf(key, sizeof(key), "aliases[%zu]", i);
        if (!json_is_string(a) || json_string_length(a) == 0 ||
            strlen(json_string_value(a)) != json_string_length(a) ||
            mesh_utf8_len(json_string_value(a), json_string_length(a)) > TOOLS_CATALOGUE_NAME_MAX)
            return tools_check_fail(c, key, "must be a non-empty string of at most %d characters",
                                    TOOLS_CATALOGUE_NAME_MAX);
        if ((rc = index_text(c, cat, item, key, json_string_value(a), false)) != 0)
            return rc;
    }
    return 0;
}

static int check_exclusions(tools_check_t *c, const json_t *item, const json_t *exclusion_ids)
{
    const json_t *ex = json_object_get(item, "exclusion_classes");
    char key[48];
    size_t i, j;
    const json_t *e;

    if (ex == NULL)
        return tools_check_fail(c, "exclusion_classes", "is required (may be empty)");
    if (!json_is_array(ex) || json_array_size(ex) > TOOLS_CATALOGUE_EXCL_MAX)
        return tools_check_fail(c, "exclusion_classes", "must be an array of at most %d ids",
                                TOOLS_CATALOGUE_EXCL_MAX);
    json_array_foreach(ex, i, e)
    {
        snprintf(key, sizeof(key), "exclusion_classes[%zu]", i);
        if (!json_is_string(e))
            return tools_check_fail(c, key, "must be a string");
        if (json_object_get(exclusion_ids, json_string_value(e)) == NULL)
            return tools_check_fail(c, key,
                                    "unknown exclusion class '%s' (not an exclusion id of any "
                                    "product)",
                                    json_string_value(e));
        for (j = 0; j < i; j++) {
            if (json_equal(json_array_get(ex, j), (json_t *)e))
                return tools_check_fail(c, key, "duplicate '%s'", json_string_value(e));
        }
    }
    return 0;
}

static int check_item(tools_check_t *c, tools_catalogue_t *cat, const json_t *item, json_t *codes,
                      const json_t *categories, const json_t *exclusion_ids)
{
    const char *code = NULL, *name = NULL, *category = NULL, *cls = NULL;
    int rc;

    if ((rc = tools_check_object(c, item, NULL)) != 0 ||
        (rc = tools_check_str(c, item, "code", true, TOOLS_CATALOGUE_CODE_MAX, &code)) != 0)
        return rc;
    if (!code_valid(code))
        return tools_check_fail(c, "code", "'%s' must be 1..%d of A-Z, 0-9 and '-'", code,
                                TOOLS_CATALOGUE_CODE_MAX);
    if (json_object_get(codes, code) != NULL)
        return tools_check_fail(c, "code", "duplicate code '%s'", code);
    if (json_object_set_new(codes, code, json_true()) != 0)
        return MESH_ENOMEM;
    if ((rc = tools_check_str(c, item, "name", true, TOOLS_CATALOGUE_NAME_MAX, &name)) != 0 ||
        (rc = index_text(c, cat, item, "name", name, true)) != 0 ||
        (rc = check_aliases(c, cat, item)) != 0 ||
        (rc = tools_check_str(c, item, "name_en", true, TOOLS_CATALOGUE_NAME_MAX, NULL)) != 0 ||
        (rc = tools_check_str(c, item, "category", true, TOOLS_CATALOGUE_NAME_MAX, &category)) !=
            0 ||
        (rc = tools_check_str(c, item, "class", true, TOOLS_CATALOGUE_NAME_MAX, &cls)) != 0)
        return rc;
    if (json_object_get(categories, category) == NULL)
        return tools_check_fail(c, "category", "unknown category '%s' (not in categories)",
                                category);
    if (json_object_get(cat->classes, cls) == NULL)
        return tools_check_fail(c, "class", "unknown class '%s' (not in classes)", cls);
    return check_exclusions(c, item, exclusion_ids);
}

/* categories: a non-empty array of unique strings -> a set (new object in *set). */
static int check_categories(tools_check_t *c, const json_t *root, json_t **set)
{
    const json_t *arr = json_object_get(root, "categories");
    size_t i;
    const json_t *v;

    *set = NULL;
    if (arr == NULL)
        return tools_check_fail(c, "categories", "is required");
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > TOOLS_CATALOGUE_CLASSES_MAX)
        return tools_check_fail(c, "categories", "must be an array of 1..%d names",
                                TOOLS_CATALOGUE_CLASSES_MAX);
    *set = json_object();
    if (*set == NULL)
        return MESH_ENOMEM;
    json_array_foreach(arr, i, v)
    {
        char key[48];
        snprintf(key, sizeof(key), "categories[%zu]", i);
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            strlen(json_string_value(v)) != json_string_length(v))
            return tools_check_fail(c, key, "must be a non-empty string");
        if (json_object_get(*set, json_string_value(v)) != NULL)
            return tools_check_fail(c, key, "duplicate '%s'", json_string_value(v));
        if (json_object_set_new(*set, json_string_value(v), json_true()) != 0)
            return MESH_ENOMEM;
    }
    return 0;
}

static int check_classes(tools_check_t *c, const json_t *root)
{
    const json_t *cl = json_object_get(root, "classes");
    const char *k;
    const json_t *v;
    int rc;

    if (cl == NULL)
        return tools_check_fail(c, "classes", "is required");
    if (!json_is_object(cl) || json_object_size(cl) == 0 ||
        json_object_size(cl) > TOOLS_CATALOGUE_CLASSES_MAX)
        return tools_check_fail(c, "classes", "must be an object of 1..%d {<id>: {zh, en}}",
                                TOOLS_CATALOGUE_CLASSES_MAX);
    json_object_foreach((json_t *)cl, k, v)
    {
        tools_check_at(c, "classes");
        rc = tools_check_text(c, cl, k, CLASS_TEXT_MAX);
        tools_check_at(c, "%s", "");
        if (rc != 0)
            return rc;
    }
    return 0;
}

int tools_catalogue_build(tools_check_t *c, json_t *root, const json_t *exclusion_ids,
                          tools_catalogue_t **out)
{
    tools_catalogue_t *cat = NULL;
    json_t *categories = NULL, *codes = NULL;
    const json_t *items;
    size_t i;
    const json_t *item;
    int rc;

    *out = NULL;
    tools_check_at(c, "%s", "");
    if ((rc = tools_check_object(c, root, NULL)) != 0)
        return rc;
    cat = calloc(1, sizeof(*cat));
    if (cat == NULL)
        return MESH_ENOMEM;
    cat->root = json_incref(root);
    cat->by_name = json_object();
    cat->by_alias = json_object();
    cat->by_norm = json_object();
    cat->norm_text = json_object();
    codes = json_object();
    if (cat->by_name == NULL || cat->by_alias == NULL || cat->by_norm == NULL ||
        cat->norm_text == NULL || codes == NULL) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    if ((rc = check_categories(c, root, &categories)) != 0 || (rc = check_classes(c, root)) != 0)
        goto cleanup;
    cat->classes = json_object_get(root, "classes");
    items = json_object_get(root, "items");
    if (items == NULL) {
        rc = tools_check_fail(c, "items", "is required");
        goto cleanup;
    }
    if (!json_is_array(items) || json_array_size(items) == 0 ||
        json_array_size(items) > TOOLS_CATALOGUE_ITEMS_MAX) {
        rc = tools_check_fail(c, "items", "must be an array of 1..%d items",
                              TOOLS_CATALOGUE_ITEMS_MAX);
        goto cleanup;
    }
    json_array_foreach(items, i, item)
    {
        tools_check_at(c, "items[%zu]", i);
        if ((rc = check_item(c, cat, item, codes, categories, exclusion_ids)) != 0)
            goto cleanup;
    }
    tools_check_at(c, "%s", "");
    cat->count = json_array_size(items);
    *out = cat;
    cat = NULL;
cleanup:
    json_decref(categories);
    json_decref(codes);
    tools_catalogue_destroy(&cat);
    return rc;
}

void tools_catalogue_destroy(tools_catalogue_t **cat_p)
{
    tools_catalogue_t *cat;

    if (cat_p == NULL || *cat_p == NULL)
        return;
    cat = *cat_p;
    json_decref(cat->by_name);
    json_decref(cat->by_alias);
    json_decref(cat->by_norm);
    json_decref(cat->norm_text);
    json_decref(cat->root);
    free(cat);
    *cat_p = NULL;
}

size_t tools_catalogue_count(const tools_catalogue_t *cat)
{
    return cat != NULL ? cat->count : 0;
}

const json_t *tools_catalogue_find(const tools_catalogue_t *cat, const char *query,
                                   tools_med_match_t *how, const char **matched)
{
    const json_t *item;
    char norm[4 * TOOLS_MED_QUERY_MAX + 1];

    *how = TOOLS_MED_NONE;
    if (matched != NULL)
        *matched = NULL;
    if (cat == NULL || query == NULL)
        return NULL;
    if ((item = json_object_get(cat->by_name, query)) != NULL) {
        *how = TOOLS_MED_EXACT;
        if (matched != NULL)
            *matched = json_string_value(json_object_get(item, "name"));
        return item;
    }
    if ((item = json_object_get(cat->by_alias, query)) != NULL) {
        *how = TOOLS_MED_ALIAS;
        if (matched != NULL)
            *matched = json_object_iter_key(json_object_iter_at(cat->by_alias, query));
        return item;
    }
    /* Longer queries than the tool accepts cannot be normalised here: no match. */
    if (tools_catalogue_normalize(query, norm, sizeof(norm)) <= 0)
        return NULL;
    if ((item = json_object_get(cat->by_norm, norm)) != NULL) {
        *how = TOOLS_MED_NORMALIZED;
        if (matched != NULL)
            *matched = json_string_value(json_object_get(cat->norm_text, norm));
    }
    return item;
}

const json_t *tools_catalogue_class_name(const tools_catalogue_t *cat, const char *class_id)
{
    return cat != NULL ? json_object_get(cat->classes, class_id) : NULL;
}
