/*
 * tools_registry.h - the tools worker's dispatcher: the tools compiled in,
 * their declarations (tools.json) and the data they read, behind the two
 * ops of service "tools" (docs/protocol/services.md):
 *
 *   tool.list  -> status 0, data {tools: [{name, description, description_zh,
 *                 parameters, idempotent}]}
 *   tool.call  {name, arguments?, call_id?}
 *              -> status 0, data {ok: true, result} or
 *                 {ok: false, error: {code, message}}, code one of
 *                 unknown_tool, invalid_tool_arguments, not_found, tool_failed.
 *              A malformed request (args not a map, name missing or not a
 *              string, arguments not a map) -> status MESH_EPROTO.
 *   other op   -> status MESH_EUNKNOWNOP.
 *
 * Single-threaded: load/reload and calls happen on the worker's loop.
 */
#ifndef TOOLS_REGISTRY_H
#define TOOLS_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "tools_data.h"

typedef struct tools_registry tools_registry_t;

/* An empty registry (no data yet). NULL on ENOMEM. */
tools_registry_t *tools_registry_new(void);

/*
 * Load dir (tools.json, products/, policies.json) and swap it in. Fails,
 * keeping the data loaded before (if any), when the data is invalid or
 * tools.json declares a tool with no implementation here. Returns 0,
 * MESH_ECONFIG, MESH_EIO or MESH_ENOMEM; err names the file and the field.
 */
int tools_registry_load(tools_registry_t *r, const char *dir, char *err, size_t err_size);

/* True once data was loaded. */
bool tools_registry_ready(const tools_registry_t *r);

/* The data in use (NULL before the first load). Borrowed until the next load. */
const tools_data_t *tools_registry_data(const tools_registry_t *r);

/*
 * Run tool name with arguments (NULL means {}). *data receives a new
 * {ok, result|error} object. Returns 0, or MESH_ENOMEM / MESH_EUNAVAIL (no
 * data loaded) with *data NULL.
 */
int tools_registry_call(const tools_registry_t *r, const char *name, const json_t *arguments,
                        json_t **data);

/*
 * Answer one request: returns the reply status (0 or MESH_E*), *data a new
 * reference or NULL, err (MESH_ERRMSG_MAX+1 bytes suffice) the message for a
 * non-zero status. Logs one sanitised line for a malformed request.
 */
int tools_registry_handle(const tools_registry_t *r, const char *op, const json_t *args,
                          json_t **data, char *err, size_t err_size);

void tools_registry_destroy(tools_registry_t **r_p);

#endif
