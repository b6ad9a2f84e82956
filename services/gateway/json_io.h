/*
 * json_io.h - JSON in and out of the gateway.
 *
 * Request bodies are parsed with jansson; response bodies are serialised with
 * jansson into a reusable buffer (no allocation per response once the buffer
 * has grown). Error bodies are written directly, without building a tree.
 */
#ifndef GATEWAY_JSON_IO_H
#define GATEWAY_JSON_IO_H

#include <jansson.h>
#include <stddef.h>

#include "gw_buf.h"

/* Largest response body the gateway writes (a conversation with 1000 long messages fits). */
#define GATEWAY_JSON_OUT_MAX (64 * 1024 * 1024)

/*
 * Append s[0..len) as a JSON string literal (with the quotes). Control bytes
 * are escaped; bytes that are not valid UTF-8 are replaced with '?', so the
 * output is always valid JSON. 0 or MESH_ENOMEM/MESH_ETOOBIG.
 */
int gateway_json_append_str(gateway_buf_t *b, const char *s, size_t len);

/* Append {"error":{"code":code,"message":message}}. 0 or MESH_ENOMEM/MESH_ETOOBIG. */
int gateway_json_error_body(gateway_buf_t *b, const char *code, const char *message);

/* Replace b's content with the compact serialisation of v. 0 or MESH_ENOMEM/MESH_EINVAL. */
int gateway_json_dump(gateway_buf_t *b, const json_t *v);

/*
 * Parse body[0..len) as one JSON object (duplicate keys refused). On failure
 * returns MESH_EPROTO and writes a short reason (with the position) into err.
 */
int gateway_json_parse_object(const char *body, size_t len, json_t **out, char *err,
                              size_t err_size);

#endif
