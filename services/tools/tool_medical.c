/*
 * tool_medical.c - the medical.lookup tool: each billed item name looked up
 * in the medical catalogue (tools_catalogue.h).
 *
 * {items: [str]} -> {items: [{query, match: "exact"|"alias"|"none", code,
 * name, name_en, category, class, class_name {zh, en}, exclusion_classes}]}
 * in the order asked. An unknown name is match "none" with only query and
 * match (not an error: the caller decides, e.g. hands the line to a person).
 * A normalised match (spaces, brackets, full-width forms, a "（...）" suffix)
 * is match "alias" with normalized: true; every match also carries matched,
 * the catalogue name or alias that matched.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_text.h"
#include "tools_catalogue.h"
#include "tools_tool.h"

static const char *match_name(tools_med_match_t how)
{
    switch (how) {
    case TOOLS_MED_EXACT:
        return "exact";
    case TOOLS_MED_ALIAS:
    case TOOLS_MED_NORMALIZED:
        return "alias";
    default:
        return "none";
    }
}

/* One result entry; the catalogue's values are shared, not copied (immutable data). */
static json_t *entry(const tools_catalogue_t *cat, const json_t *query)
{
    tools_med_match_t how;
    const char *matched = NULL;
    const json_t *item = tools_catalogue_find(cat, json_string_value(query), &how, &matched);
    json_t *o = json_pack("{s:O, s:s}", "query", query, "match", match_name(how));

    if (o == NULL || item == NULL)
        return o;
    const json_t *cls = json_object_get(item, "class");
    const json_t *cls_name = tools_catalogue_class_name(cat, json_string_value(cls));
    static const char *const KEYS[] = {"code",     "name",  "name_en",
                                       "category", "class", "exclusion_classes"};
    bool ok = true;
    for (size_t i = 0; ok && i < sizeof(KEYS) / sizeof(KEYS[0]); i++)
        ok = json_object_set(o, KEYS[i], json_object_get(item, KEYS[i])) == 0;
    ok = ok && cls_name != NULL && json_object_set(o, "class_name", (json_t *)cls_name) == 0;
    ok = ok && json_object_set_new(o, "matched", json_string(matched)) == 0;
    if (ok && how == TOOLS_MED_NORMALIZED)
        ok = json_object_set_new(o, "normalized", json_true()) == 0;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int tools_medical_lookup(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                         size_t err_size)
{
    const tools_catalogue_t *cat = d != NULL ? tools_data_catalogue(d) : NULL;
    const json_t *items = json_object_get(args, "items");
    json_t *out = NULL;
    size_t i;
    const json_t *q;

    *result = NULL;
    if (cat == NULL)
        return tools_fail(err, err_size, MESH_ETOOL, "the medical catalogue is not loaded");
    if (!json_is_array(items) || json_array_size(items) == 0 ||
        json_array_size(items) > TOOLS_MED_ITEMS_MAX)
        return tools_fail(err, err_size, MESH_EBADARGS, "$.items: must be an array of 1..%d names",
                          TOOLS_MED_ITEMS_MAX);
    json_array_foreach(items, i, q)
    {
        /* The schema checked this already; re-checked because a NUL would cut the hash key. */
        if (!json_is_string(q) || json_string_length(q) == 0 ||
            strlen(json_string_value(q)) != json_string_length(q) ||
            mesh_utf8_len(json_string_value(q), json_string_length(q)) > TOOLS_MED_QUERY_MAX)
            return tools_fail(err, err_size, MESH_EBADARGS,
                              "$.items[%zu]: must be a string of 1..%d characters without NUL", i,
                              TOOLS_MED_QUERY_MAX);
    }
    out = json_array();
    if (out == NULL)
        return MESH_ENOMEM;
    json_array_foreach(items, i, q)
    {
        json_t *e = entry(cat, q);
        if (e == NULL || json_array_append_new(out, e) != 0) {
            json_decref(out);
            return MESH_ENOMEM;
        }
    }
    *result = json_pack("{s:o}", "items", out);
    return *result != NULL ? 0 : MESH_ENOMEM;
}
