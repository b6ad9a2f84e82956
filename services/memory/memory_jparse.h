/*
 * memory_jparse.h - a fast JSON text -> json_t parser for stored messages.
 *
 * turn.begin returns its history (and conv.get its messages) as values, so
 * every stored message read back is parsed. jansson's json_loadb spends most
 * of its time in its lexer (a call per input byte, a memcpy per saved byte);
 * this parser scans the text directly and builds the same json_t values with
 * jansson's constructors, several times faster. (The llm service carries the
 * same parser as llm_json.c; both belong in libmesh once it can take them.)
 *
 * Contract: the input must be valid UTF-8. Stored messages are written by
 * memory_json.c from json_t strings, so they are; a value Redis holds that
 * is not valid UTF-8 (a hand edit) is refused by the caller's check first
 * (memory_reply.c validates before parsing).
 *
 * Accepted: RFC 8259 JSON whose top-level value is an object or an array
 * (what json_loadb accepts with flags 0), nested at most
 * MEMORY_JPARSE_DEPTH_MAX deep. Refused (NULL): anything else, including
 * unescaped control characters in strings, "\u0000", lone surrogates,
 * integers outside int64 and reals that overflow a double. Duplicate keys:
 * the last one wins.
 */
#ifndef MEMORY_JPARSE_H
#define MEMORY_JPARSE_H

#include <jansson.h>
#include <stddef.h>

#define MEMORY_JPARSE_DEPTH_MAX  64  /* nested arrays/objects */
#define MEMORY_JPARSE_NUMBER_MAX 128 /* bytes of one number token */

/* New json_t (caller json_decref's) or NULL when s[0..len) is not accepted JSON or on ENOMEM. */
json_t *memory_json_parse(const char *s, size_t len);

#endif
