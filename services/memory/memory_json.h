/*
 * memory_json.h - compact JSON text of json_t values, for what memory stores.
 *
 * Every message of turn.end (a policy.lookup tool message carries about 7 KB
 * of JSON text in its "text") and the FINAL reply are stored as compact JSON.
 * json_dumps() builds that through a callback per token and escapes strings
 * code point by code point; this writer copies runs of plain bytes at once,
 * several times faster. The output is byte for byte what
 * json_dumps(v, JSON_COMPACT) writes: keys in their order, "," and ":"
 * without spaces, the same escapes (\" \\ \b \f \n \r \t, other control
 * characters as \u00XX), UTF-8 as is, reals as jansson formats them (17
 * significant digits). A json_t's strings are valid UTF-8, so the text is too.
 */
#ifndef MEMORY_JSON_H
#define MEMORY_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Containers deeper than this are refused (a json_t from the wire is bounded
 * by MESH_MP_MAX_DEPTH already; this bounds the writer's recursion). */
#define MEMORY_JSON_DEPTH_MAX 128

/* A growable text; data is malloc'd (NULL until the first append) and not
 * NUL-terminated until memory_jbuf_finish. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int err; /* the first failure (MESH_ENOMEM / MESH_EINVAL); appends after it do nothing */
} memory_jbuf_t;

/* Append the compact JSON of v. */
void memory_json_value(memory_jbuf_t *b, const json_t *v);
/* Append s[0..n) as a quoted, escaped JSON string (s must be valid UTF-8). */
void memory_json_string(memory_jbuf_t *b, const char *s, size_t n);
/* Append bytes as they are (syntax: braces, commas, quoted keys). */
void memory_json_raw(memory_jbuf_t *b, const char *s, size_t n);
/* Append an unsigned integer in decimal. */
void memory_json_u64(memory_jbuf_t *b, uint64_t v);

/*
 * NUL-terminate and hand over the text (malloc'd, *len_out its length) and
 * reset b; NULL (and b freed) when an append failed: *rc_out says why.
 */
char *memory_jbuf_finish(memory_jbuf_t *b, size_t *len_out, int *rc_out);

#endif
