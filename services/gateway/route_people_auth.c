/*
 * route_people_auth.c - people API keys (route_people.h).
 *
 * The table is read from MESH_PEOPLE_KEYS_FILE and MESH_PEOPLE_KEYS on every
 * authenticated request: people requests are few, the file is small
 * (GATEWAY_PEOPLE_KEYS_FILE_MAX), and a rotated or revoked key then takes
 * effect without a restart. The presented key is compared with every entry
 * in constant time, and never logged.
 */
#define _DEFAULT_SOURCE /* explicit_bzero, strncasecmp */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "route_people.h"

#define AUTH_SUBSYS "people"
#define BEARER      "Bearer "

typedef struct {
    char names[GATEWAY_PEOPLE_KEYS_MAX][GATEWAY_PEOPLE_NAME_MAX + 1];
    char keys[GATEWAY_PEOPLE_KEYS_MAX][GATEWAY_PEOPLE_KEY_MAX + 1];
    size_t n;
} people_keys_t;

int gateway_people_key_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned diff =
        (alen != blen) | (alen > GATEWAY_PEOPLE_KEY_MAX) | (blen > GATEWAY_PEOPLE_KEY_MAX);
    /* Always GATEWAY_PEOPLE_KEY_MAX iterations; bytes past an end read as 0. */
    for (size_t i = 0; i < GATEWAY_PEOPLE_KEY_MAX; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        diff |= (unsigned)(x ^ y);
    }
    return diff == 0;
}

static bool name_ok(const char *s, size_t len)
{
    if (len == 0 || len > GATEWAY_PEOPLE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c == 0x7f)
            return false;
    }
    return true;
}

static bool key_ok(const char *s, size_t len)
{
    if (len < GATEWAY_PEOPLE_KEY_MIN || len > GATEWAY_PEOPLE_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

/* s[0..len) without surrounding blanks (and a trailing \r). */
static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r'))
        (*len)--;
}

int gateway_people_keys_parse(const char *text, size_t len, char sep,
                              char names[][GATEWAY_PEOPLE_NAME_MAX + 1],
                              char keys[][GATEWAY_PEOPLE_KEY_MAX + 1], size_t *n, size_t *bad)
{
    size_t at = 0;
    while (at < len) {
        const char *end = memchr(text + at, sep, len - at);
        size_t elen = end ? (size_t)(end - (text + at)) : len - at;
        const char *e = text + at;
        at += elen + 1;
        trim(&e, &elen);
        if (elen == 0 || e[0] == '#')
            continue;
        const char *colon = memchr(e, ':', elen);
        if (!colon) {
            (*bad)++;
            continue;
        }
        const char *name = e, *key = colon + 1;
        size_t nlen = (size_t)(colon - e), klen = elen - nlen - 1;
        trim(&name, &nlen);
        trim(&key, &klen);
        if (!name_ok(name, nlen) || !key_ok(key, klen)) {
            (*bad)++;
            continue;
        }
        if (*n >= GATEWAY_PEOPLE_KEYS_MAX)
            return MESH_ETOOBIG;
        memcpy(names[*n], name, nlen);
        names[*n][nlen] = '\0';
        memcpy(keys[*n], key, klen);
        keys[*n][klen] = '\0';
        (*n)++;
    }
    return 0;
}

/* Read the file at path (at most GATEWAY_PEOPLE_KEYS_FILE_MAX bytes) into a malloc'd buffer. */
static char *read_keys_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mesh_log_warn(AUTH_SUBSYS, "MESH_PEOPLE_KEYS_FILE: cannot open: %s", strerror(errno));
        return NULL;
    }
    char *buf = malloc(GATEWAY_PEOPLE_KEYS_FILE_MAX + 1);
    size_t got = buf ? fread(buf, 1, GATEWAY_PEOPLE_KEYS_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    if (got > GATEWAY_PEOPLE_KEYS_FILE_MAX) {
        mesh_log_warn(AUTH_SUBSYS, "MESH_PEOPLE_KEYS_FILE: larger than %d bytes, ignored",
                      GATEWAY_PEOPLE_KEYS_FILE_MAX);
        free(buf);
        return NULL;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

static void keys_load(people_keys_t *t)
{
    size_t bad = 0;
    t->n = 0;
    const char *path = getenv("MESH_PEOPLE_KEYS_FILE");
    if (path && path[0]) {
        size_t len = 0;
        char *text = read_keys_file(path, &len);
        if (text && gateway_people_keys_parse(text, len, '\n', t->names, t->keys, &t->n, &bad) != 0)
            mesh_log_warn(AUTH_SUBSYS, "more than %d people keys: the rest are ignored",
                          GATEWAY_PEOPLE_KEYS_MAX);
        free(text);
    }
    const char *env = getenv("MESH_PEOPLE_KEYS");
    if (env && env[0] &&
        gateway_people_keys_parse(env, strlen(env), ',', t->names, t->keys, &t->n, &bad) != 0)
        mesh_log_warn(AUTH_SUBSYS, "more than %d people keys: the rest are ignored",
                      GATEWAY_PEOPLE_KEYS_MAX);
    if (bad > 0)
        mesh_log_warn(AUTH_SUBSYS,
                      "%zu people key entr%s skipped (want name:key, key %d..%d printable bytes)",
                      bad, bad == 1 ? "y" : "ies", GATEWAY_PEOPLE_KEY_MIN, GATEWAY_PEOPLE_KEY_MAX);
}

int gateway_people_auth(gateway_http_conn_t *conn, const gateway_http_req_t *req, char *person,
                        size_t size)
{
    static const char challenge[] = "WWW-Authenticate: Bearer realm=\"mesh-people\"\r\n";
    people_keys_t *t = malloc(sizeof(*t));
    if (!t) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return 0;
    }
    keys_load(t);
    int ok = 0;
    if (t->n == 0) {
        mesh_log_warn(AUTH_SUBSYS, "people API refused: no key configured (MESH_PEOPLE_KEYS)");
        gateway_http_conn_respond_error(conn, 401, "unauthorized",
                                        "no people API key is configured (MESH_PEOPLE_KEYS)",
                                        challenge);
        goto cleanup;
    }
    const gateway_hdr_t *h = &req->hdr[GATEWAY_HDR_AUTHORIZATION];
    const size_t blen = sizeof(BEARER) - 1;
    if (h->state != GATEWAY_HDR_PRESENT || h->len <= blen ||
        strncasecmp(h->value, BEARER, blen) != 0) {
        mesh_log_info(AUTH_SUBSYS, "people API: 401 (%s)",
                      h->state == GATEWAY_HDR_ABSENT ? "no Authorization header"
                                                     : "not a Bearer key");
        gateway_http_conn_respond_error(conn, 401, "unauthorized",
                                        "a people API key is required (Authorization: Bearer)",
                                        challenge);
        goto cleanup;
    }
    const char *key = h->value + blen;
    size_t klen = h->len - blen;
    size_t match = t->n;
    /* Compare with every entry (no early exit): the time does not tell which matched. */
    for (size_t i = 0; i < t->n; i++) {
        int eq = gateway_people_key_equal(key, klen, t->keys[i], strlen(t->keys[i]));
        match = eq && match == t->n ? i : match;
    }
    if (match == t->n) {
        mesh_log_info(AUTH_SUBSYS, "people API: 401 (unknown key)");
        gateway_http_conn_respond_error(conn, 401, "unauthorized", "unknown people API key",
                                        challenge);
        goto cleanup;
    }
    size_t nlen = strlen(t->names[match]);
    if (nlen >= size) {
        gateway_http_conn_respond_error(conn, 500, "internal_error", "person name too long", NULL);
        goto cleanup;
    }
    memcpy(person, t->names[match], nlen + 1);
    ok = 1;
cleanup:
    /* The table holds secrets: wipe before freeing. */
    explicit_bzero(t, sizeof(*t));
    free(t);
    return ok;
}
