/* tools_registry.c - tool dispatch and the service ops (tools_registry.h). */
#include "tools_registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_schema.h"
#include "tools_catalogue.h"
#include "tools_data.h"
#include "tools_tool.h"
#include "tools_training.h"

#define LOG_SUBSYS      "registry"
#define SANITIZED_MAX   (4 * MESH_LOG_SAMPLE_MAX + 4)
#define TOOL_ERRMSG_MAX 512 /* one tool error message */

/* Every tool this worker implements. tools.json may not declare others. */
static const struct {
    const char *name;
    tools_tool_fn fn;
} IMPLS[] = {
    {"policy.lookup", tools_policy_lookup},
    {"fee.calc", tools_feecalc_tool},
    {"medical.lookup", tools_medical_lookup},
    {"training.scenario", tools_training_scenario},
};

struct tools_registry {
    tools_data_t *data;
    json_t *list; /* the tool.list reply data of the current data set */
};

static tools_tool_fn impl_find(const char *name)
{
    for (size_t i = 0; i < sizeof(IMPLS) / sizeof(IMPLS[0]); i++) {
        if (strcmp(IMPLS[i].name, name) == 0)
            return IMPLS[i].fn;
    }
    return NULL;
}

tools_registry_t *tools_registry_new(void)
{
    return calloc(1, sizeof(tools_registry_t));
}

/* Check implementations against the declarations and build the tool.list data. */
static int build_list(const tools_data_t *d, const char *dir, json_t **out, char *err,
                      size_t err_size)
{
    const json_t *tools = tools_data_tools(d);
    json_t *arr = json_array();
    size_t i;
    const json_t *t;

    *out = NULL;
    if (arr == NULL)
        return MESH_ENOMEM;
    json_array_foreach(tools, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        if (tools_data_tool(d, name) != t)
            continue; /* served by another service (memory, router) */
        if (impl_find(name) == NULL) {
            tools_errf(err, err_size, "%s/tools.json: [%zu].name: no implementation for tool '%s'",
                       dir, i, name);
            json_decref(arr);
            return MESH_ECONFIG;
        }
        json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:O}", "name", json_object_get(t, "name"),
                              "description", json_object_get(t, "description"), "description_zh",
                              json_object_get(t, "description_zh"), "parameters",
                              json_object_get(t, "parameters"), "idempotent",
                              json_object_get(t, "idempotent"));
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return MESH_ENOMEM;
        }
    }
    for (size_t k = 0; k < sizeof(IMPLS) / sizeof(IMPLS[0]); k++) {
        if (tools_data_tool(d, IMPLS[k].name) == NULL)
            mesh_log_warn(LOG_SUBSYS, "tool %s is implemented but not declared in tools.json",
                          IMPLS[k].name);
    }
    *out = json_pack("{s:o}", "tools", arr);
    return *out != NULL ? 0 : MESH_ENOMEM;
}

int tools_registry_load(tools_registry_t *r, const char *dir, char *err, size_t err_size)
{
    tools_data_t *d = NULL;
    json_t *list = NULL;
    int rc;

    if ((rc = tools_data_load(dir, &d, err, err_size)) != 0)
        return rc;
    if ((rc = build_list(d, dir, &list, err, err_size)) != 0) {
        tools_data_destroy(&d);
        return rc;
    }
    tools_data_destroy(&r->data);
    json_decref(r->list);
    r->data = d;
    r->list = list;
    mesh_log_info(LOG_SUBSYS,
                  "loaded %s: %zu tools, %zu products, %zu policies, %zu catalogue items", dir,
                  json_array_size(json_object_get(list, "tools")), tools_data_product_count(d),
                  tools_data_policy_count(d), tools_catalogue_count(tools_data_catalogue(d)));
    return 0;
}

bool tools_registry_ready(const tools_registry_t *r)
{
    return r->data != NULL;
}

const tools_data_t *tools_registry_data(const tools_registry_t *r)
{
    return r->data;
}

/* {ok: false, error: {code, message}} */
static json_t *tool_error(int code, const char *message)
{
    /* Only the four tool outcome codes go on the wire; anything else is a tool failure. */
    if (code != MESH_EUNKNOWNTOOL && code != MESH_EBADARGS && code != MESH_ENOTFOUND)
        code = MESH_ETOOL;
    json_t *e = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", mesh_err_name(code),
                          "message", message);
    if (e == NULL) /* message not valid UTF-8 (cannot happen with our texts): generic one */
        e = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", mesh_err_name(code),
                      "message", mesh_strerror(code));
    return e;
}

int tools_registry_call(const tools_registry_t *r, const char *name, const json_t *arguments,
                        json_t **data)
{
    char msg[TOOL_ERRMSG_MAX];
    json_t *empty = NULL, *result = NULL;
    const json_t *decl;
    tools_tool_fn fn;
    int rc;

    *data = NULL;
    if (r->data == NULL)
        return MESH_EUNAVAIL;
    decl = tools_data_tool(r->data, name);
    fn = decl != NULL ? impl_find(name) : NULL;
    if (fn == NULL) {
        char safe[SANITIZED_MAX];
        mesh_log_sanitize(name, strlen(name), safe, sizeof(safe));
        snprintf(msg, sizeof(msg), "unknown tool '%s'", safe);
        *data = tool_error(MESH_EUNKNOWNTOOL, msg);
        return *data != NULL ? 0 : MESH_ENOMEM;
    }
    if (arguments == NULL) {
        empty = json_object();
        if (empty == NULL)
            return MESH_ENOMEM;
        arguments = empty;
    }
    rc = mesh_schema_validate(json_object_get(decl, "parameters"), arguments, msg, sizeof(msg));
    if (rc == 0) {
        msg[0] = '\0';
        rc = fn(r->data, arguments, &result, msg, sizeof(msg));
    }
    if (rc == MESH_ENOMEM) {
        json_decref(empty);
        return MESH_ENOMEM;
    }
    if (rc == 0)
        *data = json_pack("{s:b, s:o}", "ok", 1, "result", result);
    else
        *data = tool_error(rc, msg[0] != '\0' ? msg : mesh_strerror(rc));
    json_decref(empty);
    return *data != NULL ? 0 : MESH_ENOMEM;
}

static int malformed(char *err, size_t err_size, const char *what)
{
    tools_errf(err, err_size, "%s", what);
    mesh_log_warn(LOG_SUBSYS, "tool.call refused: %s", what);
    return MESH_EPROTO;
}

static int handle_call(const tools_registry_t *r, const json_t *args, json_t **data, char *err,
                       size_t err_size)
{
    const json_t *name, *arguments, *call_id;

    if (!json_is_object(args))
        return malformed(err, err_size, "args: must be a map {name, arguments}");
    name = json_object_get(args, "name");
    if (!json_is_string(name))
        return malformed(err, err_size, "args.name: required string");
    if (json_string_length(name) == 0 || json_string_length(name) > TOOLS_NAME_MAX ||
        strlen(json_string_value(name)) != json_string_length(name))
        return malformed(err, err_size, "args.name: must be 1..64 bytes without NUL");
    arguments = json_object_get(args, "arguments");
    if (arguments != NULL && !json_is_object(arguments))
        return malformed(err, err_size, "args.arguments: must be a map");
    call_id = json_object_get(args, "call_id");
    if (call_id != NULL && (!json_is_string(call_id) || json_string_length(call_id) > MESH_ID_MAX))
        return malformed(err, err_size, "args.call_id: must be a string of at most 64 bytes");

    int rc = tools_registry_call(r, json_string_value(name), arguments, data);
    if (rc != 0) {
        tools_errf(err, err_size, "%s", mesh_strerror(rc));
        return rc;
    }
    /* An outcome is data, not a fault: the line is info, so build it only when it is written. */
    if (json_is_false(json_object_get(*data, "ok")) && mesh_log_get_level() <= MESH_LOG_INFO) {
        const json_t *e = json_object_get(*data, "error");
        char safe[SANITIZED_MAX];
        const char *m = json_string_value(json_object_get(e, "message"));
        mesh_log_sanitize(m, strlen(m), safe, sizeof(safe));
        mesh_log_info(LOG_SUBSYS, "tool.call %s: %s", json_string_value(json_object_get(e, "code")),
                      safe);
    }
    return 0;
}

int tools_registry_handle(const tools_registry_t *r, const char *op, const json_t *args,
                          json_t **data, char *err, size_t err_size)
{
    *data = NULL;
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (r->data == NULL) {
        tools_errf(err, err_size, "tools data not loaded");
        return MESH_EUNAVAIL;
    }
    if (strcmp(op, "tool.list") == 0) {
        *data = json_incref(r->list);
        return 0;
    }
    if (strcmp(op, "tool.call") == 0)
        return handle_call(r, args, data, err, err_size);

    char safe[SANITIZED_MAX];
    mesh_log_sanitize(op, strlen(op), safe, sizeof(safe));
    tools_errf(err, err_size, "unknown op '%s' for service tools", safe);
    mesh_log_warn(LOG_SUBSYS, "unknown op '%s'", safe);
    return MESH_EUNKNOWNOP;
}

void tools_registry_destroy(tools_registry_t **r_p)
{
    if (r_p == NULL || *r_p == NULL)
        return;
    tools_data_destroy(&(*r_p)->data);
    json_decref((*r_p)->list);
    free(*r_p);
    *r_p = NULL;
}
