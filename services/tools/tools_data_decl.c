/*
 * tools_data_decl.c - check tools.json: an array of tool declarations
 * {name, description, description_zh, parameters, idempotent, service?}, where
 * parameters is a JSON Schema of the OpenAI function shape (type object) and
 * service is "tools" (default), "memory" or "router" (contracts: the router
 * sends a tool to the service named; only "tools" entries are served here).
 */
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_schema.h"
#include "tools_data_int.h"

/* Tool names: lower-case letters, digits, '.', '_' and '-', starting with a letter. The
 * openai backend maps '.' to "__" because OpenAI allows only [a-zA-Z0-9_-]. */
static bool name_valid(const char *s)
{
    if (s[0] < 'a' || s[0] > 'z')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return false;
    }
    return true;
}

/* Services a declaration may name; only "tools" (the default) is served here. */
static const char *const SERVICES[] = {"tools", "memory", "router"};

/* "service": absent or one of SERVICES; *served tells whether this worker serves it. */
static int check_service(tools_check_t *c, const json_t *t, bool *served)
{
    const char *svc = NULL;
    int rc = tools_check_str(c, t, "service", false, TOOLS_NAME_MAX, &svc);

    *served = true;
    if (rc != 0 || svc == NULL)
        return rc;
    for (size_t i = 0; i < sizeof(SERVICES) / sizeof(SERVICES[0]); i++) {
        if (strcmp(svc, SERVICES[i]) == 0) {
            *served = i == 0;
            return 0;
        }
    }
    return tools_check_fail(c, "service", "'%s' is not one of tools, memory, router", svc);
}

static int check_one(tools_check_t *c, const json_t *t, tools_data_t *d, json_t *names)
{
    const char *name = NULL;
    bool served = true;
    char serr[TOOLS_ERR_MAX];
    const json_t *params;
    int rc;

    if ((rc = tools_check_object(c, t, NULL)) != 0)
        return rc;
    if ((rc = tools_check_str(c, t, "name", true, TOOLS_NAME_MAX, &name)) != 0)
        return rc;
    if (strlen(name) > TOOLS_NAME_MAX || !name_valid(name))
        return tools_check_fail(c, "name", "'%s' is not a valid tool name ([a-z][a-z0-9._-]*)",
                                name);
    if (json_object_get(names, name) != NULL)
        return tools_check_fail(c, "name", "duplicate tool '%s'", name);
    if (json_object_set_new(names, name, json_true()) != 0)
        return MESH_ENOMEM;
    if ((rc = check_service(c, t, &served)) != 0)
        return rc;
    if ((rc = tools_check_str(c, t, "description", true, TOOLS_TEXT_MAX, NULL)) != 0)
        return rc;
    if ((rc = tools_check_str(c, t, "description_zh", true, TOOLS_TEXT_MAX, NULL)) != 0)
        return rc;
    if ((rc = tools_check_bool(c, t, "idempotent", NULL)) != 0)
        return rc;
    params = json_object_get(t, "parameters");
    if (params == NULL)
        return tools_check_fail(c, "parameters", "is required");
    if (mesh_schema_check(params, serr, sizeof(serr)) != 0)
        return tools_check_fail(c, "parameters", "%s", serr);
    if (!json_is_string(json_object_get(params, "type")) ||
        strcmp(json_string_value(json_object_get(params, "type")), "object") != 0)
        return tools_check_fail(c, "parameters", "type must be \"object\" (OpenAI function shape)");
    /* Declarations for other services are validated (the router uses the same file) but not
     * indexed: this worker neither lists nor runs them. */
    if (served && json_object_set(d->tools_by_name, name, (json_t *)t) != 0)
        return MESH_ENOMEM;
    return 0;
}

int tools_data_check_tools(tools_check_t *c, json_t *tools, tools_data_t *d)
{
    size_t i;
    json_t *t;
    json_t *names;
    int rc = 0;

    if (!json_is_array(tools))
        return tools_check_fail(c, NULL, "must be an array of tool declarations");
    if (json_array_size(tools) == 0 || json_array_size(tools) > TOOLS_TOOLS_MAX)
        return tools_check_fail(c, NULL, "must declare 1..%d tools", TOOLS_TOOLS_MAX);
    names = json_object();
    if (names == NULL)
        return MESH_ENOMEM;
    json_array_foreach(tools, i, t)
    {
        tools_check_at(c, "[%zu]", i);
        if ((rc = check_one(c, t, d, names)) != 0)
            break;
    }
    json_decref(names);
    return rc;
}
