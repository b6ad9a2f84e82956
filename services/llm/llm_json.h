/*
 * llm_json.h - a fast JSON text -> json_t parser for tool results.
 *
 * The rules backend parses every policy.lookup result it answers from
 * (about 7 KB of JSON per turn). jansson's json_loadb spends most of its time
 * in its lexer (one call per input byte, a memcpy per saved byte, a second
 * UTF-8 check); this parser scans the text directly and builds the same
 * json_t values with jansson's constructors, about five times faster.
 *
 * Contract: the input must be valid UTF-8. Every text the backend sees comes
 * from a json_t string (decoded and UTF-8-checked by mesh_mp), so that holds
 * and the check is not done a second time here.
 *
 * Accepted: RFC 8259 JSON whose top-level value is an object or an array
 * (what json_loadb accepts with flags 0), nested at most LLM_JSON_DEPTH_MAX
 * deep. Refused (NULL): anything else, including unescaped control
 * characters in strings, "\u0000", lone surrogates, integers outside int64
 * and reals that overflow a double. Duplicate keys: the last one wins.
 */
#ifndef LLM_JSON_H
#define LLM_JSON_H

#include <jansson.h>
#include <stddef.h>

#define LLM_JSON_DEPTH_MAX  64  /* nested arrays/objects */
#define LLM_JSON_NUMBER_MAX 128 /* bytes of one number token */

/* New json_t (caller json_decref's) or NULL when s[0..len) is not accepted JSON or on ENOMEM. */
json_t *llm_json_parse(const char *s, size_t len);

#endif
