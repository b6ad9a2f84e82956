/*
 * mesh_json.h - a fast JSON text -> json_t parser.
 *
 * Used where JSON text is parsed on every turn: memory reading stored
 * messages back (turn.begin history, conv.get) and the llm reading tool
 * results. jansson's json_loadb spends most of its time in its lexer (a call
 * per input byte, a memcpy per saved byte); this parser scans the text
 * directly and builds the same json_t values with jansson's constructors,
 * several times faster (tests check it accepts and refuses exactly what
 * json_loadb does).
 *
 * Contract: the input must be valid UTF-8 (callers check text that did not
 * come from a json_t string, e.g. memory_reply.c validates what Redis holds).
 *
 * Accepted: RFC 8259 JSON whose top-level value is an object or an array
 * (what json_loadb accepts with flags 0), nested at most
 * MESH_JSON_DEPTH_MAX deep. Refused (NULL): anything else, including
 * unescaped control characters in strings, "\u0000", lone surrogates,
 * integers outside int64 and reals that overflow a double. Duplicate keys:
 * the last one wins.
 */
#ifndef MESH_JSON_H
#define MESH_JSON_H

#include <jansson.h>
#include <stddef.h>

#define MESH_JSON_DEPTH_MAX  64  /* nested arrays/objects */
#define MESH_JSON_NUMBER_MAX 128 /* bytes of one number token */

/* New json_t (caller json_decref's) or NULL when s[0..len) is not accepted JSON or on ENOMEM. */
json_t *mesh_json_parse(const char *s, size_t len);

/* ---------------------------------------------------------------------------
 * The writer: compact JSON of a json_t into a growing buffer, byte for byte
 * what json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(p))
 * writes (keys in order, the same escapes, UTF-8 as is, reals as jansson
 * formats them), without json_dumps' callback per token and fresh
 * allocation. Appends are sticky on failure: after the first error (err set
 * to MESH_ENOMEM or MESH_EINVAL) they do nothing.
 * ------------------------------------------------------------------------ */
#include <stdint.h>

#define MESH_JSON_WRITE_DEPTH_MAX 128 /* containers deeper than this: MESH_EINVAL */
#define MESH_JSON_PRECISION_MAX   17  /* significant digits of reals (jansson's default) */

typedef struct {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    int err; /* the first failure; appends after it do nothing */
} mesh_jbuf_t;

/* Append v (precision 1..MESH_JSON_PRECISION_MAX significant digits for reals). */
void mesh_jbuf_value(mesh_jbuf_t *b, const json_t *v, int precision);
/* Append s[0..n) as a JSON string (s must be valid UTF-8). */
void mesh_jbuf_string(mesh_jbuf_t *b, const char *s, size_t n);
/* Append s[0..n) as is. */
void mesh_jbuf_raw(mesh_jbuf_t *b, const char *s, size_t n);
/* Append v in decimal. */
void mesh_jbuf_u64(mesh_jbuf_t *b, uint64_t v);
/*
 * Hand the NUL-terminated text over to the caller (who frees it) and zero b.
 * NULL with *rc_out set (the sticky error or MESH_ENOMEM) on failure.
 */
char *mesh_jbuf_finish(mesh_jbuf_t *b, size_t *len_out, int *rc_out);

/* Replace b's contents with the JSON of v. 0 or the error (b->len is 0 then). */
int mesh_json_write(mesh_jbuf_t *b, const json_t *v, int precision);
/* Empty b for reuse; release its memory if it grew past keep_max bytes. */
void mesh_jbuf_reset(mesh_jbuf_t *b, size_t keep_max);
void mesh_jbuf_free(mesh_jbuf_t *b);

#endif
