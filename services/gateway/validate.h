/*
 * validate.h - checks of client-controlled input the gateway forwards into
 * the mesh (ids, names, numbers from headers and query strings). Pure
 * functions, no allocation.
 */
#ifndef GATEWAY_VALIDATE_H
#define GATEWAY_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest client message id (services.md: 1..64). */
#define GATEWAY_MESSAGE_ID_MAX 64
/* Longest agent name a client may ask for. */
#define GATEWAY_AGENT_MAX 64
/* GET /v1/conversations/{id}: default and largest ?limit=. */
#define GATEWAY_CONV_LIMIT_DEFAULT 100
#define GATEWAY_CONV_LIMIT_MAX     1000

/* 1 if s[0..len) is 1..GATEWAY_MESSAGE_ID_MAX bytes of [A-Za-z0-9._:-]. */
int gateway_message_id_valid(const char *s, size_t len);

/* 1 if s[0..len) is 1..MESH_TENANT_MAX bytes of [A-Za-z0-9._-]. */
int gateway_tenant_valid(const char *s, size_t len);

/* 1 if s[0..len) is 1..GATEWAY_AGENT_MAX bytes of [A-Za-z0-9._-]. */
int gateway_agent_valid(const char *s, size_t len);

/*
 * Parse a decimal integer of 1..max from s[0..len) (digits only, no sign,
 * no blanks). 0 and *out set, or MESH_EINVAL.
 */
int gateway_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/*
 * Find the value of key in a query string q[0..qlen) ("a=1&limit=5").
 * Returns 1 and sets *val and *vlen when present (the first occurrence), else 0.
 * Values are not percent-decoded (the gateway only reads numbers).
 */
int gateway_query_param(const char *q, size_t qlen, const char *key, const char **val,
                        size_t *vlen);

/* 1 if the Content-Type value names application/json (parameters allowed). */
int gateway_content_type_json(const char *s, size_t len);

#endif
