/*
 * route_people.h - the people side of human handoff (docs/people-api.md):
 * the people API, the live event streams and the two web pages.
 *
 *   GET  /v1/handoff/queue                 route_people.c  (people key)
 *   GET  /v1/handoff/events                route_events.c  (people key, SSE)
 *   GET  /v1/handoff/{conv}                route_people.c  (people key)
 *   POST /v1/handoff/{conv}/claim          route_people.c  (people key)
 *   POST /v1/handoff/{conv}/reply          route_people.c  (people key)
 *   POST /v1/handoff/{conv}/note           route_people.c  (people key)
 *   POST /v1/handoff/{conv}/release        route_people.c  (people key)
 *   GET  /v1/conversations/{id}/events     route_events.c  (customer side, SSE)
 *   GET  /, /console, /web/<file>          route_static.c  (MESH_WEB_DIR)
 *
 * People authenticate with "Authorization: Bearer <key>"; the keys come
 * from MESH_PEOPLE_KEYS_FILE (lines "name:key") and MESH_PEOPLE_KEYS
 * ("name:key,..."), read on each authenticated request (so a rotated file
 * takes effect at once), and the person is the key's name.
 */
#ifndef GATEWAY_ROUTE_PEOPLE_H
#define GATEWAY_ROUTE_PEOPLE_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway.h"
#include "http_conn.h"

#define GATEWAY_HANDOFF_PREFIX     "/v1/handoff/"
#define GATEWAY_HANDOFF_EVENTS     "/v1/handoff/events"
#define GATEWAY_HANDOFF_QUEUE      "/v1/handoff/queue"
#define GATEWAY_CONV_EVENTS_SUFFIX "/events"
#define GATEWAY_WEB_PREFIX         "/web/"

/* Key table bounds: entries, name bytes (= memory's person limit), key bytes. */
#define GATEWAY_PEOPLE_KEYS_MAX 256
#define GATEWAY_PEOPLE_NAME_MAX 128
#define GATEWAY_PEOPLE_KEY_MAX  200
/* Shorter keys are refused at load time (logged): they are guessable. */
#define GATEWAY_PEOPLE_KEY_MIN 16
/* Largest keys file read. */
#define GATEWAY_PEOPLE_KEYS_FILE_MAX (64 * 1024)
/* text / summary bytes (memory's handoff limit). */
#define GATEWAY_PEOPLE_TEXT_MAX 65536
/* Queue entries one list returns at most (memory's handoff.list bound). */
#define GATEWAY_PEOPLE_LIST_MAX 500
/* Messages of a transcript (memory's conv.get bound). */
#define GATEWAY_PEOPLE_TRANSCRIPT_MAX 1000

/*
 * Check the request's Authorization header against the configured keys in
 * constant time (per key). On success 1 and person[0..size) = the key's
 * name. Otherwise 0 and the 401 has been answered (also when no key is
 * configured at all); the failure is logged without the presented key.
 */
int gateway_people_auth(gateway_http_conn_t *conn, const gateway_http_req_t *req, char *person,
                        size_t size);

/*
 * Parse a key table (pure; for unit tests and the loader): text[0..len) of
 * entries "name:key" separated by sep ('\n' for the file, ',' for the
 * variable); blank entries and lines starting with '#' are skipped; bad
 * entries (no ':', empty or over-long name, key shorter than
 * GATEWAY_PEOPLE_KEY_MIN) are skipped and counted in *bad. Appends to
 * names/keys (arrays of GATEWAY_PEOPLE_KEYS_MAX) from *n. 0 or MESH_ETOOBIG
 * (more than GATEWAY_PEOPLE_KEYS_MAX entries).
 */
int gateway_people_keys_parse(const char *text, size_t len, char sep,
                              char names[][GATEWAY_PEOPLE_NAME_MAX + 1],
                              char keys[][GATEWAY_PEOPLE_KEY_MAX + 1], size_t *n, size_t *bad);

/*
 * Constant-time comparison of a[0..alen) and b[0..blen) (the time depends
 * only on GATEWAY_PEOPLE_KEY_MAX, never on where they differ). 1 if equal.
 */
int gateway_people_key_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Everything under /v1/handoff/ (path starts with GATEWAY_HANDOFF_PREFIX). */
void gateway_route_handoff(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req);

/* GET /v1/conversations/{id}/events?after=<seq> (route_events.c). */
void gateway_route_conv_events(gateway_t *gw, gateway_http_conn_t *conn,
                               const gateway_http_req_t *req, const char *conv, size_t conv_len);

/* GET /v1/handoff/events (route_events.c); person already authenticated. */
void gateway_route_handoff_events(gateway_t *gw, gateway_http_conn_t *conn,
                                  const gateway_http_req_t *req, const char *person);

/*
 * GET / (index.html), /console (console.html) and /web/<file> from
 * MESH_WEB_DIR (default ./web) (route_static.c). Returns true when the path
 * is one of these (and it was answered), false otherwise.
 */
bool gateway_route_static(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req);

/*
 * Map a request path to a file name relative to the web dir (pure): "/"
 * -> "index.html", "/console" -> "console.html", "/web/<rel>" -> <rel>
 * when rel is 1..GATEWAY_WEB_NAME_MAX bytes of [A-Za-z0-9._-/], has no
 * empty, "." or ".." segment and does not start with '.'. Returns 1 and
 * writes out (NUL-terminated), 0 when the path is not a page path, -1 when
 * it is under /web/ but refused (traversal, bad characters: answered 404).
 */
#define GATEWAY_WEB_NAME_MAX 128
int gateway_web_path_map(const char *path, size_t len, char *out, size_t out_size);

/* Content-Type for a file name by extension (never NULL). */
const char *gateway_web_content_type(const char *name);

#endif
