/*
 * tools_tool.h - the signature every tool implementation has, and the tools
 * of this release.
 *
 * A tool gets arguments that already passed its declared JSON Schema (the
 * registry validates first) but must still not trust them blindly: it
 * re-checks what it reads. It returns:
 *   0                 *result is a new object (caller owns);
 *   MESH_EBADARGS     arguments are semantically invalid (err names the field);
 *   MESH_ENOTFOUND    the thing asked about does not exist;
 *   MESH_ETOOL        the tool cannot do it (err says why);
 *   MESH_ENOMEM.
 * On error *result is NULL and err holds one line for the caller.
 */
#ifndef TOOLS_TOOL_H
#define TOOLS_TOOL_H

#include <jansson.h>
#include <stddef.h>

#include "tools_data.h"

typedef int (*tools_tool_fn)(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                             size_t err_size);

/* policy.lookup {policy_no} -> the policy merged with its product's terms. */
int tools_policy_lookup(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                        size_t err_size);

/* fee.calc -> health settlement (tools_feecalc.h), or with mode "motor" a motor payout
 * estimate (tools_motor.h). */
int tools_feecalc_tool(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                       size_t err_size);

/* fee.calc with mode "motor" (tool_motor.c); called by tools_feecalc_tool. */
int tools_motor_tool(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                     size_t err_size);

/* medical.lookup {items: [str]} -> {items: [{query, match, ...catalogue entry}]}
 * (tools_catalogue.h). */
int tools_medical_lookup(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                         size_t err_size);

#endif
