/*
 * agent_json.h - compact JSON text of a json_t, into a reusable buffer.
 *
 * A policy.lookup result (about 7 KB) becomes the text of a tool message at
 * every step that calls the tool. json_dumps() builds it through a callback
 * per token and a fresh allocation, and json_string() then checks its UTF-8
 * a second time; this writer appends straight into a buffer the agent loop
 * keeps, several times faster.
 *
 * The output is byte for byte what json_dumps(v, JSON_COMPACT |
 * JSON_ENCODE_ANY | JSON_REAL_PRECISION(precision)) writes: keys in their
 * order, "," and ":" without spaces, the same escapes (\" \\ \b \f \n \r \t,
 * other control characters as \u00XX), UTF-8 as is, reals as jansson formats
 * them. Strings of a json_t are valid UTF-8, so the text is too.
 */
#ifndef ROUTER_AGENT_JSON_H
#define ROUTER_AGENT_JSON_H

#include <jansson.h>
#include <stddef.h>

/* Containers deeper than this are refused (a json_t from the wire is bounded
 * by MESH_MP_MAX_DEPTH already; this bounds the recursion of the writer). */
#define ROUTER_JSON_DEPTH_MAX 128
/* A buffer grown past this is released after use instead of kept. */
#define ROUTER_JSON_KEEP_MAX (256 * 1024)

typedef struct {
    char *data; /* NULL until the first write */
    size_t len;
    size_t cap;
} router_jbuf_t;

/*
 * Replace b's contents with the compact JSON of v (reals with precision
 * significant digits, 1..17). 0, MESH_ENOMEM or MESH_EINVAL (v NULL or
 * too deep); b->len is 0 after a failure.
 */
int router__json_write(router_jbuf_t *b, const json_t *v, int precision);

/* Keep the allocation for the next write unless it grew past ROUTER_JSON_KEEP_MAX. */
void router__jbuf_reset(router_jbuf_t *b);

void router__jbuf_free(router_jbuf_t *b);

#endif
