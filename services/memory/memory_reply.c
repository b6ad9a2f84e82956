/*
 * memory_reply.c - script replies -> reply data (memory_reply.h).
 */
#include "memory_reply.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_json.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_text.h"

#define REPLY_SUBSYS "memory"

static int fail(int rc, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int rc, char *err, size_t err_size, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static bool is_str(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
           r->str != NULL;
}

static bool str_eq(const redisReply *r, const char *s)
{
    return is_str(r) && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/*
 * Common head of every script reply: an error reply or an array whose first
 * element is the status word. 0 (and *word set) or a MESH_E* with err.
 */
static int reply_head(const redisReply *r, const redisReply **word, char *err, size_t err_size)
{
    if (r == NULL)
        return fail(MESH_EINTERNAL, err, err_size, "redis: no reply");
    if (r->type == REDIS_REPLY_ERROR) {
        char clean[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(r->str != NULL ? r->str : "", r->str != NULL ? r->len : 0, clean,
                          sizeof clean);
        mesh_log_warn(REPLY_SUBSYS, "redis error: %s", clean);
        return fail(MESH_EUNAVAIL, err, err_size, "redis error: %s", clean);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 || !is_str(r->element[0]))
        return fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
    *word = r->element[0];
    return 0;
}

/*
 * A JSON object from a stored string; NULL (and one log line) when it is not
 * one. What memory stored is valid UTF-8; the check keeps a hand-edited value
 * from reaching the parser, which relies on it.
 */
static json_t *parse_stored(const redisReply *s, const char *what)
{
    json_t *v =
        is_str(s) && mesh_utf8_valid(s->str, s->len) ? mesh_json_parse(s->str, s->len) : NULL;
    if (json_is_object(v))
        return v;
    json_decref(v);
    char clean[4 * MESH_LOG_SAMPLE_MAX + 4] = "";
    if (is_str(s))
        mesh_log_sanitize(s->str, s->len, clean, sizeof clean);
    mesh_log_warn(REPLY_SUBSYS, "skipping unreadable %s: %s", what, clean);
    return NULL;
}

/* Array of stored messages -> JSON array (unreadable entries skipped). */
static json_t *messages_json(const redisReply *list)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < list->elements; i++) {
        json_t *m = parse_stored(list->element[i], "message");
        if (m != NULL && json_array_append_new(arr, m) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* HGETALL-shaped flat array -> JSON object of strings (invalid entries skipped). */
static json_t *state_json(const redisReply *flat)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    for (size_t i = 0; i + 1 < flat->elements; i += 2) {
        const redisReply *k = flat->element[i], *v = flat->element[i + 1];
        if (!is_str(k) || !is_str(v) || memchr(k->str, '\0', k->len) != NULL)
            continue;
        json_t *js = json_stringn(v->str, v->len); /* NULL when not UTF-8 */
        if (js == NULL) {
            mesh_log_warn(REPLY_SUBSYS, "skipping a state field that is not UTF-8");
            continue;
        }
        if (json_object_set_new(obj, k->str, js) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

int memory_reply_begin(const redisReply *r, json_t **data, char *err, size_t err_size)
{
    const redisReply *word;
    *data = NULL;
    int rc = reply_head(r, &word, err, err_size);
    if (rc != 0)
        return rc;
    if (str_eq(word, "busy"))
        return fail(MESH_EBUSY, err, err_size, "conversation busy: another turn holds the lease");
    if (str_eq(word, "dup")) {
        if (r->elements != 2)
            return fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
        json_t *stored = parse_stored(r->element[1], "stored reply");
        if (stored == NULL)
            return fail(MESH_EINTERNAL, err, err_size, "stored reply is not readable");
        *data = json_pack("{s:b, s:o}", "duplicate", 1, "reply", stored);
        return *data != NULL ? 0 : fail(MESH_ENOMEM, err, err_size, "out of memory");
    }
    if (!str_eq(word, "ok") || r->elements != 3 || r->element[1]->type != REDIS_REPLY_ARRAY ||
        r->element[2]->type != REDIS_REPLY_ARRAY)
        return fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
    json_t *history = messages_json(r->element[1]);
    json_t *state = state_json(r->element[2]);
    if (history == NULL || state == NULL) {
        json_decref(history);
        json_decref(state);
        return fail(MESH_ENOMEM, err, err_size, "out of memory");
    }
    *data = json_pack("{s:b, s:o, s:o}", "duplicate", 0, "state", state, "history", history);
    return *data != NULL ? 0 : fail(MESH_ENOMEM, err, err_size, "out of memory");
}

int memory_reply_end(const redisReply *r, json_t **data, char *err, size_t err_size)
{
    const redisReply *word;
    *data = NULL;
    int rc = reply_head(r, &word, err, err_size);
    if (rc != 0)
        return rc;
    if (str_eq(word, "lost"))
        return fail(MESH_ESTATE, err, err_size,
                    "lease lost: another turn holds the conversation; nothing was recorded");
    bool dup = str_eq(word, "dup");
    if (!dup && !str_eq(word, "ok"))
        return fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
    *data = json_pack("{s:b}", "duplicate", dup);
    return *data != NULL ? 0 : fail(MESH_ENOMEM, err, err_size, "out of memory");
}

int memory_reply_abort(const redisReply *r, json_t **data, char *err, size_t err_size)
{
    const redisReply *word;
    *data = NULL;
    int rc = reply_head(r, &word, err, err_size);
    if (rc != 0)
        return rc;
    if (!str_eq(word, "ok"))
        return fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
    *data = json_object();
    return *data != NULL ? 0 : fail(MESH_ENOMEM, err, err_size, "out of memory");
}

int memory_reply_get(const redisReply *r, const char *conv, json_t **data, char *err,
                     size_t err_size)
{
    const redisReply *word;
    *data = NULL;
    int rc = reply_head(r, &word, err, err_size);
    if (rc != 0)
        return rc;
    if (str_eq(word, "none"))
        return fail(MESH_ENOTFOUND, err, err_size, "conversation not found");
    if (!str_eq(word, "ok") || r->elements != 4 || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->integer < 0 || r->element[2]->type != REDIS_REPLY_ARRAY ||
        r->element[3]->type != REDIS_REPLY_ARRAY)
        return fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
    json_t *messages = messages_json(r->element[2]);
    json_t *state = state_json(r->element[3]);
    if (messages == NULL || state == NULL) {
        json_decref(messages);
        json_decref(state);
        return fail(MESH_ENOMEM, err, err_size, "out of memory");
    }
    *data = json_pack("{s:s, s:o, s:o, s:I}", "conversation_id", conv, "state", state, "messages",
                      messages, "total", (json_int_t)r->element[1]->integer);
    return *data != NULL ? 0 : fail(MESH_ENOMEM, err, err_size, "out of memory");
}

int memory_reply_renew(const redisReply *r, json_t **data, char *err, size_t err_size)
{
    const redisReply *word;
    *data = NULL;
    int rc = reply_head(r, &word, err, err_size);
    if (rc != 0)
        return rc;
    if (!str_eq(word, "ok") || r->elements < 2 || r->elements > 3 ||
        r->element[1]->type != REDIS_REPLY_INTEGER)
        return fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
    bool held = r->element[1]->integer == 1;
    const redisReply *holder = r->elements == 3 ? r->element[2] : NULL;
    if (holder != NULL && (held || !is_str(holder) || holder->len == 0))
        return fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
    /* The holder is another router's turn id; json_stringn refuses non-UTF-8. */
    json_t *h = holder != NULL ? json_stringn(holder->str, holder->len) : NULL;
    if (holder != NULL && h == NULL)
        h = json_string("(unreadable)");
    *data = h != NULL ? json_pack("{s:b, s:o}", "held", held, "holder", h)
                      : json_pack("{s:b}", "held", held);
    return *data != NULL ? 0 : fail(MESH_ENOMEM, err, err_size, "out of memory");
}
