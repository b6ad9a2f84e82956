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

#endif
