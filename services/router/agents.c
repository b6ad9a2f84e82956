/*
 * agents.c - load, validate and query agent definitions (see agents.h).
 */
#define _GNU_SOURCE /* strcasestr */
#include "agents.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_schema.h"

#define PATH_MAX_LEN 4096

struct router_agents {
    int refs;
    json_t *tools_doc;
    router_tool_t *tools;
    size_t n_tools;
    router_agent_t *agents; /* sorted by file name */
    size_t n_agents;
    const router_agent_t *def_agent;
};

static int fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_size, const char *fmt, ...)
{
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return MESH_ECONFIG;
}

static bool name_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(extra, c)))
            return false;
    }
    return true;
}

/* Read a JSON file of at most ROUTER_DATA_FILE_MAX bytes. */
static int load_json(const char *path, json_t **out, char *err, size_t err_size)
{
    struct stat st;
    *out = NULL;
    if (stat(path, &st) != 0)
        return fail(err, err_size, "%s: cannot read file", path);
    if (!S_ISREG(st.st_mode) || st.st_size > ROUTER_DATA_FILE_MAX)
        return fail(err, err_size, "%s: not a regular file of at most %d bytes", path,
                    ROUTER_DATA_FILE_MAX);
    json_error_t je;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!*out)
        return fail(err, err_size, "%s: line %d: %s", path, je.line, je.text);
    return 0;
}

/* A {zh, en} object of non-empty strings of at most ROUTER_PROMPT_MAX bytes. */
static int get_lang_pair(const char *path, const json_t *doc, const char *field, bool required,
                         const char **zh, const char **en, char *err, size_t err_size)
{
    const json_t *o = json_object_get(doc, field);
    *zh = *en = NULL;
    if (!o) {
        if (!required)
            return 0;
        return fail(err, err_size, "%s: %s: required object {\"zh\", \"en\"} missing", path, field);
    }
    if (!json_is_object(o))
        return fail(err, err_size, "%s: %s: must be an object {\"zh\", \"en\"}", path, field);
    const char *langs[2] = {"zh", "en"};
    const char **dst[2] = {zh, en};
    for (int i = 0; i < 2; i++) {
        const json_t *s = json_object_get(o, langs[i]);
        if (!json_is_string(s) || json_string_length(s) == 0)
            return fail(err, err_size, "%s: %s.%s: must be a non-empty string", path, field,
                        langs[i]);
        if (json_string_length(s) > ROUTER_PROMPT_MAX)
            return fail(err, err_size, "%s: %s.%s: longer than %d bytes", path, field, langs[i],
                        ROUTER_PROMPT_MAX);
        *dst[i] = json_string_value(s);
    }
    return 0;
}

/* A tool's "service": tools (default), memory, or router (a tool the router runs itself). */
static int tool_service(const char *path, size_t i, const char *name, const json_t *v,
                        router_tool_svc_t *svc, const char **svc_name, char *err, size_t err_size)
{
    if (!v)
        return 0;
    const char *s = json_string_value(v);
    if (s && strcmp(s, "tools") == 0)
        return 0;
    if (s && strcmp(s, "memory") == 0) {
        *svc = ROUTER_TOOL_SVC_MEMORY;
        *svc_name = "memory";
        return 0;
    }
    if (s && strcmp(s, "router") == 0) {
        if (strcmp(name, ROUTER_TOOL_STATE_UPDATE) != 0)
            return fail(err, err_size, "%s: [%zu].service: the router has no local tool '%s'", path,
                        i, name);
        *svc = ROUTER_TOOL_SVC_ROUTER;
        *svc_name = "router";
        return 0;
    }
    return fail(err, err_size, "%s: [%zu].service: must be \"tools\", \"memory\" or \"router\"",
                path, i);
}

static int load_tools(router_agents_t *a, const char *data_dir, char *err, size_t err_size)
{
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof(path), "%s/tools.json", data_dir);
    int rc = load_json(path, &a->tools_doc, err, err_size);
    if (rc)
        return rc;
    if (!json_is_array(a->tools_doc))
        return fail(err, err_size, "%s: must be an array of tools", path);
    size_t n = json_array_size(a->tools_doc);
    if (n > ROUTER_TOOLS_MAX)
        return fail(err, err_size, "%s: more than %d tools", path, ROUTER_TOOLS_MAX);
    a->tools = calloc(n ? n : 1, sizeof(*a->tools));
    if (!a->tools)
        return MESH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(a->tools_doc, i);
        if (!json_is_object(t))
            return fail(err, err_size, "%s: [%zu]: must be an object", path, i);
        const char *name = json_string_value(json_object_get(t, "name"));
        if (!name || !name_ok(name, ROUTER_TOOL_NAME_MAX, "._-"))
            return fail(err, err_size, "%s: [%zu].name: must be 1..%d chars of [a-z0-9._-]", path,
                        i, ROUTER_TOOL_NAME_MAX);
        for (size_t j = 0; j < a->n_tools; j++)
            if (strcmp(a->tools[j].name, name) == 0)
                return fail(err, err_size, "%s: [%zu].name: duplicate tool '%s'", path, i, name);
        if (!json_is_string(json_object_get(t, "description")))
            return fail(err, err_size, "%s: [%zu].description: must be a string", path, i);
        const json_t *params = json_object_get(t, "parameters");
        char serr[256];
        if (!json_is_object(params) || mesh_schema_check(params, serr, sizeof(serr)) != 0)
            return fail(err, err_size, "%s: [%zu].parameters: not a supported JSON Schema (%s)",
                        path, i, json_is_object(params) ? serr : "must be an object");
        const json_t *idem = json_object_get(t, "idempotent");
        if (idem && !json_is_boolean(idem))
            return fail(err, err_size, "%s: [%zu].idempotent: must be a boolean", path, i);
        router_tool_svc_t svc = ROUTER_TOOL_SVC_TOOLS;
        const char *svc_name = "tools";
        rc = tool_service(path, i, name, json_object_get(t, "service"), &svc, &svc_name, err,
                          err_size);
        if (rc)
            return rc;
        a->tools[a->n_tools++] = (router_tool_t){.name = name,
                                                 .parameters = params,
                                                 .idempotent = idem && json_is_true(idem),
                                                 .service = svc,
                                                 .service_name = svc_name};
    }
    return 0;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Sorted list of agents/<name>.json base names (caller frees each and the array). */
static int list_agent_files(const char *dir, char ***names_out, size_t *n_out, char *err,
                            size_t err_size)
{
    *names_out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return fail(err, err_size, "%s: cannot open directory", dir);
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0 || de->d_name[0] == '.')
            continue;
        if (n >= ROUTER_AGENTS_MAX) {
            rc = fail(err, err_size, "%s: more than %d agent files", dir, ROUTER_AGENTS_MAX);
            break;
        }
        char **v = realloc(names, (n + 1) * sizeof(*v));
        if (!v) {
            rc = MESH_ENOMEM;
            break;
        }
        names = v;
        names[n] = strndup(de->d_name, len - 5);
        if (!names[n]) {
            rc = MESH_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_str);
    *names_out = names;
    *n_out = n;
    return 0;
}

static const router_tool_t *find_tool(const router_agents_t *a, const char *name)
{
    for (size_t i = 0; i < a->n_tools; i++)
        if (strcmp(a->tools[i].name, name) == 0)
            return &a->tools[i];
    return NULL;
}

/* An array of at most max non-empty strings of at most ROUTER_KEYWORD_MAX bytes. */
static int get_phrases(const char *path, const json_t *arr, const char *field, size_t max,
                       const char ***out, size_t *n_out, char *err, size_t err_size)
{
    if (!json_is_array(arr))
        return fail(err, err_size, "%s: %s: must be an array of strings", path, field);
    if (json_array_size(arr) > max)
        return fail(err, err_size, "%s: %s: more than %zu entries", path, field, max);
    *out = calloc(json_array_size(arr) + 1, sizeof(**out));
    if (!*out)
        return MESH_ENOMEM;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *k = json_array_get(arr, i);
        if (!json_is_string(k) || json_string_length(k) == 0 ||
            json_string_length(k) > ROUTER_KEYWORD_MAX ||
            strlen(json_string_value(k)) != json_string_length(k))
            return fail(err, err_size,
                        "%s: %s[%zu]: must be a non-empty string of at most %d bytes", path, field,
                        i, ROUTER_KEYWORD_MAX);
        (*out)[(*n_out)++] = json_string_value(k);
    }
    return 0;
}

/* "triage": {"keywords": [...], "switch": [...]}, at least one of them. */
static int load_triage(router_agent_t *ag, const char *path, const json_t *triage, char *err,
                       size_t err_size)
{
    if (!triage)
        return 0;
    if (!json_is_object(triage))
        return fail(err, err_size, "%s: triage: must be an object {\"keywords\", \"switch\"}",
                    path);
    const json_t *kw = json_object_get(triage, "keywords");
    const json_t *sw = json_object_get(triage, "switch");
    if (!kw && !sw)
        return fail(err, err_size, "%s: triage.keywords: must be an array of strings", path);
    int rc = 0;
    if (kw)
        rc = get_phrases(path, kw, "triage.keywords", ROUTER_KEYWORDS_MAX, &ag->keywords,
                         &ag->n_keywords, err, err_size);
    if (rc == 0 && sw)
        rc = get_phrases(path, sw, "triage.switch", ROUTER_SWITCH_MAX, &ag->switches,
                         &ag->n_switches, err, err_size);
    return rc;
}

/* An optional string field that must be one of two values (default: the first). */
static int get_enum(const char *path, const json_t *doc, const char *field, const char *dflt,
                    const char *other, const char **out, char *err, size_t err_size)
{
    const json_t *v = json_object_get(doc, field);
    *out = dflt;
    if (!v)
        return 0;
    const char *s = json_string_value(v);
    if (s && strcmp(s, dflt) == 0)
        return 0;
    if (s && strcmp(s, other) == 0) {
        *out = other;
        return 0;
    }
    return fail(err, err_size, "%s: %s: must be \"%s\" or \"%s\"", path, field, dflt, other);
}

/* An optional {zh, en} object of strings of 1..max bytes. */
static int check_lang_obj(const char *path, const char *field, size_t i, const char *key,
                          const json_t *v, size_t max, char *err, size_t err_size)
{
    if (!v)
        return 0;
    if (!json_is_object(v))
        return fail(err, err_size, "%s: %s[%zu].%s: must be an object {\"zh\", \"en\"}", path,
                    field, i, key);
    const char *k;
    const json_t *s;
    json_object_foreach((json_t *)v, k, s)
    {
        if (strcmp(k, "zh") != 0 && strcmp(k, "en") != 0)
            continue; /* unknown keys are ignored */
        if (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) > max)
            return fail(err, err_size, "%s: %s[%zu].%s.%s: must be a string of 1..%zu bytes", path,
                        field, i, key, k, max);
    }
    return 0;
}

/* "slots": [{"name": [a-z0-9_]{1,64}, "required": bool, "label": {zh, en}}] (documentary). */
static int check_slots(const char *path, const json_t *slots, char *err, size_t err_size)
{
    if (!slots)
        return 0;
    if (!json_is_array(slots) || json_array_size(slots) > ROUTER_SLOT_DECLS_MAX)
        return fail(err, err_size, "%s: slots: must be an array of at most %d objects", path,
                    ROUTER_SLOT_DECLS_MAX);
    for (size_t i = 0; i < json_array_size(slots); i++) {
        const json_t *s = json_array_get(slots, i);
        if (!json_is_object(s))
            return fail(err, err_size, "%s: slots[%zu]: must be an object", path, i);
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!name || !name_ok(name, ROUTER_SLOT_NAME_MAX, "_"))
            return fail(err, err_size, "%s: slots[%zu].name: must be 1..%d chars of [a-z0-9_]",
                        path, i, ROUTER_SLOT_NAME_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(slots, j), "name")),
                       name) == 0)
                return fail(err, err_size, "%s: slots[%zu].name: duplicate slot '%s'", path, i,
                            name);
        const json_t *req = json_object_get(s, "required");
        if (req && !json_is_boolean(req))
            return fail(err, err_size, "%s: slots[%zu].required: must be a boolean", path, i);
        int rc = check_lang_obj(path, "slots", i, "label", json_object_get(s, "label"),
                                ROUTER_LABEL_MAX, err, err_size);
        if (rc)
            return rc;
    }
    return 0;
}

/* "handoff_rules": [{"when": str, "reason": {zh, en}}] (documentary). */
static int check_handoff_rules(const char *path, const json_t *rules, char *err, size_t err_size)
{
    if (!rules)
        return 0;
    if (!json_is_array(rules) || json_array_size(rules) > ROUTER_HANDOFF_RULES_MAX)
        return fail(err, err_size, "%s: handoff_rules: must be an array of at most %d objects",
                    path, ROUTER_HANDOFF_RULES_MAX);
    for (size_t i = 0; i < json_array_size(rules); i++) {
        const json_t *r = json_array_get(rules, i);
        if (!json_is_object(r))
            return fail(err, err_size, "%s: handoff_rules[%zu]: must be an object", path, i);
        const json_t *when = json_object_get(r, "when");
        if (!json_is_string(when) || json_string_length(when) == 0 ||
            json_string_length(when) > ROUTER_RULE_WHEN_MAX)
            return fail(err, err_size,
                        "%s: handoff_rules[%zu].when: must be a string of 1..%d bytes", path, i,
                        ROUTER_RULE_WHEN_MAX);
        int rc = check_lang_obj(path, "handoff_rules", i, "reason", json_object_get(r, "reason"),
                                ROUTER_REASON_MAX, err, err_size);
        if (rc)
            return rc;
    }
    return 0;
}

static int load_agent(router_agents_t *a, router_agent_t *ag, const char *path, const char *base,
                      char *err, size_t err_size)
{
    int rc = load_json(path, &ag->def, err, err_size);
    if (rc)
        return rc;
    json_t *doc = ag->def;
    if (!json_is_object(doc))
        return fail(err, err_size, "%s: must be an object", path);

    ag->name = json_string_value(json_object_get(doc, "name"));
    if (!ag->name || !name_ok(ag->name, ROUTER_AGENT_NAME_MAX, "_"))
        return fail(err, err_size, "%s: name: must be 1..%d chars of [a-z0-9_]", path,
                    ROUTER_AGENT_NAME_MAX);
    if (strcmp(ag->name, base) != 0)
        return fail(err, err_size, "%s: name: '%s' does not match the file name '%s'", path,
                    ag->name, base);
    const json_t *desc = json_object_get(doc, "description");
    if (desc && !json_is_object(desc))
        return fail(err, err_size, "%s: description: must be an object {\"zh\", \"en\"}", path);
    rc = get_lang_pair(path, doc, "prompt", true, &ag->prompt_zh, &ag->prompt_en, err, err_size);
    if (rc)
        return rc;
    rc = get_lang_pair(path, doc, "fallback", true, &ag->fallback_zh, &ag->fallback_en, err,
                       err_size);
    if (rc)
        return rc;

    ag->tier = json_string_value(json_object_get(doc, "tier"));
    if (!ag->tier || !name_ok(ag->tier, ROUTER_TIER_MAX, "_-"))
        return fail(err, err_size, "%s: tier: must be 1..%d chars of [a-z0-9_-]", path,
                    ROUTER_TIER_MAX);
    const json_t *ms = json_object_get(doc, "max_steps");
    if (!json_is_integer(ms) || json_integer_value(ms) < 1 ||
        json_integer_value(ms) > ROUTER_MAX_STEPS_MAX)
        return fail(err, err_size, "%s: max_steps: must be an integer 1..%d", path,
                    ROUTER_MAX_STEPS_MAX);
    ag->max_steps = (int)json_integer_value(ms);

    const json_t *tools = json_object_get(doc, "tools");
    if (!json_is_array(tools))
        return fail(err, err_size, "%s: tools: must be an array of tool names", path);
    if (json_array_size(tools) > ROUTER_AGENT_TOOLS_MAX)
        return fail(err, err_size, "%s: tools: more than %d tools", path, ROUTER_AGENT_TOOLS_MAX);
    ag->tools = calloc(json_array_size(tools) + 1, sizeof(*ag->tools));
    ag->llm_tools = json_array();
    if (!ag->tools || !ag->llm_tools)
        return MESH_ENOMEM;
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const char *tn = json_string_value(json_array_get(tools, i));
        if (!tn)
            return fail(err, err_size, "%s: tools[%zu]: must be a string", path, i);
        const router_tool_t *t = find_tool(a, tn);
        if (!t)
            return fail(err, err_size, "%s: tools[%zu]: unknown tool '%s' (not in tools.json)",
                        path, i, tn);
        for (size_t j = 0; j < ag->n_tools; j++)
            if (strcmp(ag->tools[j], tn) == 0)
                return fail(err, err_size, "%s: tools[%zu]: duplicate tool '%s'", path, i, tn);
        ag->tools[ag->n_tools++] = t->name;
        const json_t *tdoc = json_array_get(a->tools_doc, (size_t)(t - a->tools));
        json_t *entry =
            json_pack("{s:s, s:O, s:O}", "name", t->name, "description",
                      json_object_get(tdoc, "description"), "parameters", t->parameters);
        if (!entry || json_array_append_new(ag->llm_tools, entry) != 0)
            return MESH_ENOMEM;
    }

    rc = load_triage(ag, path, json_object_get(doc, "triage"), err, err_size);
    if (rc)
        return rc;
    rc =
        get_enum(path, doc, "fallback_mode", "rules", "handoff", &ag->fallback_mode, err, err_size);
    if (rc)
        return rc;
    rc =
        get_enum(path, doc, "response_format", "text", "json", &ag->response_format, err, err_size);
    if (rc)
        return rc;
    if (strcmp(ag->response_format, "text") == 0)
        ag->response_format = "";
    const json_t *sticky = json_object_get(doc, "sticky");
    if (sticky && !json_is_boolean(sticky))
        return fail(err, err_size, "%s: sticky: must be a boolean", path);
    ag->sticky = json_is_true(sticky);
    rc = check_slots(path, json_object_get(doc, "slots"), err, err_size);
    if (rc)
        return rc;
    return check_handoff_rules(path, json_object_get(doc, "handoff_rules"), err, err_size);
}

static void agents_free(router_agents_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_agents; i++) {
        router_agent_t *ag = &a->agents[i];
        free(ag->tools);
        free(ag->keywords);
        free(ag->switches);
        json_decref(ag->llm_tools);
        json_decref(ag->def);
    }
    free(a->agents);
    free(a->tools);
    json_decref(a->tools_doc);
    free(a);
}

int router_agents_load(const char *data_dir, const char *default_agent, router_agents_t **out,
                       char *err, size_t err_size)
{
    *out = NULL;
    if (err && err_size)
        err[0] = '\0';
    char **names = NULL;
    size_t n_names = 0;
    router_agents_t *a = calloc(1, sizeof(*a));
    if (!a)
        return MESH_ENOMEM;
    a->refs = 1;
    int rc = load_tools(a, data_dir, err, err_size);
    if (rc)
        goto out;

    char dir[PATH_MAX_LEN];
    snprintf(dir, sizeof(dir), "%s/agents", data_dir);
    rc = list_agent_files(dir, &names, &n_names, err, err_size);
    if (rc)
        goto out;
    if (n_names == 0) {
        rc = fail(err, err_size, "%s: no agent files (*.json)", dir);
        goto out;
    }
    a->agents = calloc(n_names, sizeof(*a->agents));
    if (!a->agents) {
        rc = MESH_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_names; i++) {
        char path[PATH_MAX_LEN];
        if (snprintf(path, sizeof(path), "%s/%s.json", dir, names[i]) >= (int)sizeof(path)) {
            rc = fail(err, err_size, "%s: path too long", dir);
            goto out;
        }
        router_agent_t *ag = &a->agents[a->n_agents++];
        rc = load_agent(a, ag, path, names[i], err, err_size);
        if (rc)
            goto out;
    }
    a->def_agent = router_agents_find(a, default_agent ? default_agent : "");
    if (!a->def_agent) {
        rc = fail(err, err_size, "MESH_DEFAULT_AGENT: no agent named '%s' in %s",
                  default_agent ? default_agent : "", dir);
        goto out;
    }
out:
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    if (rc) {
        if (rc == MESH_ENOMEM && err && err_size)
            snprintf(err, err_size, "%s: out of memory loading agents", data_dir);
        agents_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

router_agents_t *router_agents_ref(router_agents_t *a)
{
    if (a)
        a->refs++;
    return a;
}

void router_agents_unref(router_agents_t **a_p)
{
    if (!a_p || !*a_p)
        return;
    if (--(*a_p)->refs == 0)
        agents_free(*a_p);
    *a_p = NULL;
}

size_t router_agents_count(const router_agents_t *a)
{
    return a->n_agents;
}

const router_agent_t *router_agents_at(const router_agents_t *a, size_t i)
{
    return i < a->n_agents ? &a->agents[i] : NULL;
}

const router_agent_t *router_agents_find(const router_agents_t *a, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < a->n_agents; i++)
        if (strcmp(a->agents[i].name, name) == 0)
            return &a->agents[i];
    return NULL;
}

const router_agent_t *router_agents_default(const router_agents_t *a)
{
    return a->def_agent;
}

/* strcasestr folds ASCII only; other bytes (CJK) compare exactly. */
static bool contains_any(const char *text, const char *const *phrases, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (strcasestr(text, phrases[k]))
            return true;
    return false;
}

const router_agent_t *router_agents_triage(const router_agents_t *a, const char *text)
{
    if (!text)
        return NULL;
    const router_agent_t *best = NULL;
    size_t best_score = 0;
    for (size_t i = 0; i < a->n_agents; i++) {
        const router_agent_t *ag = &a->agents[i];
        size_t score = 0;
        for (size_t k = 0; k < ag->n_keywords; k++)
            if (strcasestr(text, ag->keywords[k]))
                score++;
        if (score > best_score) { /* strictly more: ties keep the earlier file */
            best = ag;
            best_score = score;
        }
    }
    return best;
}

const router_agent_t *router_agents_switch(const router_agents_t *a, const char *text)
{
    if (!text)
        return NULL;
    for (size_t i = 0; i < a->n_agents; i++)
        if (contains_any(text, a->agents[i].switches, a->agents[i].n_switches))
            return &a->agents[i];
    return NULL;
}

const router_agent_t *router_agents_pick(const router_agents_t *a, const char *state_agent,
                                         const char *requested, const char *text)
{
    const router_agent_t *ag = router_agents_find(a, state_agent);
    if (ag) {
        /* A sticky agent (the trainer's role play quotes customers who "want
         * to file a claim") keeps its conversation whatever is said. */
        if (ag->sticky)
            return ag;
        const router_agent_t *sw = router_agents_switch(a, text);
        return sw ? sw : ag;
    }
    /* A new conversation (contracts section 4): requested, triage, default. */
    ag = router_agents_find(a, requested);
    if (!ag)
        ag = router_agents_triage(a, text);
    return ag ? ag : a->def_agent;
}

const router_tool_t *router_agents_tool(const router_agents_t *a, const char *name)
{
    return name ? find_tool(a, name) : NULL;
}

bool router_agent_allows(const router_agent_t *ag, const char *tool)
{
    if (!tool)
        return false;
    for (size_t i = 0; i < ag->n_tools; i++)
        if (strcmp(ag->tools[i], tool) == 0)
            return true;
    return false;
}

const char *router_agent_prompt(const router_agent_t *ag, const char *lang)
{
    return lang && strcmp(lang, "zh") == 0 ? ag->prompt_zh : ag->prompt_en;
}

const char *router_agent_fallback(const router_agent_t *ag, const char *lang)
{
    return lang && strcmp(lang, "zh") == 0 ? ag->fallback_zh : ag->fallback_en;
}
