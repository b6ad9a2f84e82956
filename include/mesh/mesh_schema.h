/*
 * mesh_schema.h - validate a JSON value against the JSON Schema subset that
 * tool parameters use (the OpenAI function-calling shape).
 *
 * Supported keywords: type (string|number|integer|boolean|object|array|null,
 * or an array of these), properties, required, additionalProperties (bool),
 * enum, const, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 * minLength, maxLength (in UTF-8 characters), pattern (POSIX extended regex,
 * compiled once per call), items, minItems, maxItems, description (ignored).
 * Unknown keywords are ignored. Nesting deeper than MESH_MP_MAX_DEPTH fails.
 */
#ifndef MESH_SCHEMA_H
#define MESH_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

/*
 * 0 if value satisfies schema, else MESH_EBADARGS with a human message in
 * err naming the JSON path and the rule ("$.lines[2].amount: must be >= 0").
 * MESH_EINVAL if the schema itself is malformed.
 */
int mesh_schema_validate(const json_t *schema, const json_t *value, char *err, size_t err_size);

/* 0 if schema uses only the supported shape (for load-time checks), else MESH_EINVAL + err. */
int mesh_schema_check(const json_t *schema, char *err, size_t err_size);

#endif
