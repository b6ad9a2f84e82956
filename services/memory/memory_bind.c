/*
 * memory_bind.c - conv.bind, delivery.record, delivery.list (memory_bind.h).
 *
 * These ops are not in the script table of memory_scripts.c: each sends its
 * small Lua source with EVAL (a few hundred bytes; they run once per
 * inbound channel message or per failed delivery, not per model step).
 */
#include "memory_bind.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory_keys.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_text.h"

#define BIND_SUBSYS "memory"

/*
 * conv.bind
 *   KEYS[1] state   ARGV[1] channel   ARGV[2] to (JSON)   ARGV[3] ttl_s   ARGV[4] now
 */
static const char s_bind[] =
    "redis.call('HSET', KEYS[1], 'channel', ARGV[1], 'channel_to', ARGV[2],"
    " 'updated', ARGV[4])\n"
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))\n"
    "return 'ok'\n";

/*
 * delivery.record, the conversation's part
 *   KEYS[1] log   KEYS[2] state   ARGV[1] note JSON   ARGV[2] ttl_s
 *   ARGV[3] history_max   ARGV[4] now
 * Replies 'ok', or 'none' when the conversation does not exist (expired).
 */
static const char s_record[] = "if redis.call('EXISTS', KEYS[2]) == 0 then return 'none' end\n"
                               "local ttl = tonumber(ARGV[2])\n"
                               "if redis.call('RPUSH', KEYS[1], ARGV[1]) > tonumber(ARGV[3]) then\n"
                               "  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)\n"
                               "end\n"
                               "redis.call('HINCRBY', KEYS[2], 'seq', 1)\n"
                               "redis.call('HSET', KEYS[2], 'updated', ARGV[4])\n"
                               "redis.call('EXPIRE', KEYS[1], ttl)\n"
                               "redis.call('EXPIRE', KEYS[2], ttl)\n"
                               "return 'ok'\n";

/* delivery.record, the failed list:   KEYS[1] list   ARGV[1] summary   ARGV[2] keep */
static const char s_failed_push[] = "redis.call('LPUSH', KEYS[1], ARGV[1])\n"
                                    "redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)\n"
                                    "return redis.call('LLEN', KEYS[1])\n";

/* delivery.list:   KEYS[1] list   ARGV[1] limit   -> {total, item...} */
static const char s_failed_list[] =
    "local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)\n"
    "table.insert(items, 1, redis.call('LLEN', KEYS[1]))\n"
    "return items\n";

typedef enum { BIND_OP_BIND, BIND_OP_RECORD, BIND_OP_LIST } bind_op_t;

typedef struct {
    bind_op_t op;
    mesh_redis_t *redis;
    memory_ops_done_fn done;
    void *arg;
    char *summary; /* delivery.record: pushed after the conversation's script */
    bool recorded; /* delivery.record: the note reached the conversation's log */
} bind_call_t;

static int fail(int rc, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(int rc, char *err, size_t err_size, const char *fmt, ...)
{
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

bool memory_bind_is_op(const char *op)
{
    return op && (strcmp(op, "conv.bind") == 0 || strcmp(op, "delivery.record") == 0 ||
                  strcmp(op, "delivery.list") == 0);
}

static bool channel_valid(const char *s)
{
    static const char *const names[] = {"slack", "telegram", "wecom", "webhook", "web"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0)
            return true;
    return false;
}

/* A required string arg of 1..max bytes of UTF-8. */
static int str_arg(const json_t *args, const char *key, size_t max, const char **out, char *err,
                   size_t err_size)
{
    const json_t *v = json_object_get(args, key);
    if (!json_is_string(v))
        return fail(MESH_EPROTO, err, err_size, "%s: required string", key);
    size_t n = json_string_length(v);
    if (n == 0)
        return fail(MESH_EPROTO, err, err_size, "%s: must not be empty", key);
    if (n > max)
        return fail(MESH_ETOOBIG, err, err_size, "%s: longer than %zu bytes", key, max);
    if (!mesh_utf8_valid(json_string_value(v), n) || memchr(json_string_value(v), 0, n))
        return fail(MESH_EPROTO, err, err_size, "%s: must be UTF-8 without NUL", key);
    *out = json_string_value(v);
    return 0;
}

/* channel + to (compact JSON, bounded) of conv.bind and delivery.record. */
static int channel_to_args(const json_t *args, const char **channel, char **to_json, char *err,
                           size_t err_size)
{
    int rc = str_arg(args, "channel", 16, channel, err, err_size);
    if (rc != 0)
        return rc;
    if (!channel_valid(*channel))
        return fail(MESH_EPROTO, err, err_size,
                    "channel: one of slack, telegram, wecom, webhook, web");
    const json_t *to = json_object_get(args, "to");
    if (!json_is_object(to))
        return fail(MESH_EPROTO, err, err_size, "to: required map");
    *to_json = json_dumps(to, JSON_COMPACT | JSON_SORT_KEYS);
    if (!*to_json)
        return fail(MESH_ENOMEM, err, err_size, "out of memory");
    if (strlen(*to_json) > MEMORY_BIND_TO_MAX) {
        free(*to_json);
        *to_json = NULL;
        return fail(MESH_ETOOBIG, err, err_size, "to: longer than %d bytes as JSON",
                    MEMORY_BIND_TO_MAX);
    }
    return 0;
}

/* Cut s to at most max bytes at a UTF-8 boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static void finish(bind_call_t *c, int status, const char *errmsg, json_t *data)
{
    c->done(status, errmsg, data, c->arg);
    json_decref(data);
    free(c->summary);
    free(c);
}

static int reply_error(const redisReply *r, int status, char *msg, size_t size)
{
    if (status != 0) {
        snprintf(msg, size, "redis: %s", mesh_strerror(status));
        return status;
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
        char clean[4 * MESH_LOG_SAMPLE_MAX + 4] = "";
        if (r && r->str)
            mesh_log_sanitize(r->str, r->len, clean, sizeof clean);
        snprintf(msg, size, "redis error: %s", clean);
        return MESH_EUNAVAIL;
    }
    return 0;
}

static void on_failed_pushed(mesh_redis_t *redis, int status, redisReply *r, void *arg)
{
    (void)redis;
    bind_call_t *c = arg;
    char msg[160];
    int rc = reply_error(r, status, msg, sizeof msg);
    if (rc != 0) {
        /* The note is in the conversation's log when recorded is true: still
         * a failure, the caller logs it (and the gateway counts it). */
        finish(c, rc, msg, NULL);
        return;
    }
    finish(c, 0, NULL, json_pack("{s:b}", "recorded", c->recorded));
}

static int push_failed(bind_call_t *c, char *err, size_t err_size)
{
    char keep[24];
    snprintf(keep, sizeof keep, "%d", MEMORY_FAILED_KEEP);
    const char *argv[] = {"EVAL",     s_failed_push, "1", MEMORY_DELIVERIES_FAILED_KEY,
                          c->summary, keep};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    int rc = mesh_redis_command(c->redis, on_failed_pushed, c, 6, argv, lens);
    if (rc != 0)
        return fail(rc, err, err_size, "redis unavailable");
    return 0;
}

static void on_reply(mesh_redis_t *redis, int status, redisReply *r, void *arg)
{
    (void)redis;
    bind_call_t *c = arg;
    char msg[160];
    int rc = reply_error(r, status, msg, sizeof msg);
    if (rc != 0) {
        if (c->op == BIND_OP_RECORD) {
            /* The conversation's part failed: still try the failed list, so
             * the answer stays visible somewhere. */
            mesh_log_warn(BIND_SUBSYS, "delivery.record: log note not written: %s", msg);
            if (push_failed(c, msg, sizeof msg) == 0)
                return;
        }
        finish(c, rc, msg, NULL);
        return;
    }
    switch (c->op) {
    case BIND_OP_BIND:
        finish(c, 0, NULL, json_object());
        return;
    case BIND_OP_RECORD:
        c->recorded = r->type == REDIS_REPLY_STATUS ||
                      (r->type == REDIS_REPLY_STRING && r->str && strcmp(r->str, "ok") == 0);
        if (r->str && strcmp(r->str, "none") == 0)
            c->recorded = false;
        if (push_failed(c, msg, sizeof msg) != 0)
            finish(c, MESH_EUNAVAIL, msg, NULL);
        return;
    case BIND_OP_LIST: {
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
            r->element[0]->type != REDIS_REPLY_INTEGER) {
            finish(c, MESH_EINTERNAL, "redis: unexpected script reply", NULL);
            return;
        }
        json_t *items = json_array();
        for (size_t i = 1; items && i < r->elements; i++) {
            const redisReply *e = r->element[i];
            json_t *v = e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
            if (v)
                json_array_append_new(items, v);
        }
        json_t *data = items ? json_pack("{s:o,s:I}", "items", items, "total",
                                         (json_int_t)r->element[0]->integer)
                             : NULL;
        if (!data)
            finish(c, MESH_ENOMEM, "out of memory", NULL);
        else
            finish(c, 0, NULL, data);
        return;
    }
    }
}

int memory_bind_call(mesh_redis_t *redis, const memory_ops_cfg_t *cfg, const memory_req_t *req,
                     uint64_t now_ms, memory_ops_done_fn done, void *arg, char *err,
                     size_t err_size)
{
    const char *conv = req->conv ? req->conv : "";
    const json_t *args = req->args;
    char *to_json = NULL, *note = NULL;
    bind_call_t *c = NULL;
    char key1[MEMORY_KEY_MAX], key2[MEMORY_KEY_MAX];
    char ttl[24], now[24], hmax[24], limit_s[24];
    int rc;
    if (!json_is_object(args))
        return fail(MESH_EPROTO, err, err_size, "args: must be a map");
    if (!mesh_redis_up(redis))
        return fail(MESH_EUNAVAIL, err, err_size, "redis unavailable");
    c = calloc(1, sizeof *c);
    if (!c)
        return fail(MESH_ENOMEM, err, err_size, "out of memory");
    c->redis = redis;
    c->done = done;
    c->arg = arg;
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)cfg->ttl_s);
    snprintf(now, sizeof now, "%llu", (unsigned long long)now_ms);
    snprintf(hmax, sizeof hmax, "%u", cfg->history_max);

    const char *argv[10];
    int argc = 0;
    if (strcmp(req->op, "delivery.list") == 0) {
        c->op = BIND_OP_LIST;
        json_int_t limit = MEMORY_FAILED_LIST_DEF;
        const json_t *l = json_object_get(args, "limit");
        if (l && !json_is_null(l)) {
            if (!json_is_integer(l) || json_integer_value(l) < 1 ||
                json_integer_value(l) > MEMORY_FAILED_LIST_MAX) {
                rc = fail(MESH_EPROTO, err, err_size, "limit: an integer 1..%d",
                          MEMORY_FAILED_LIST_MAX);
                goto cleanup;
            }
            limit = json_integer_value(l);
        }
        snprintf(limit_s, sizeof limit_s, "%lld", (long long)limit);
        const char *a[] = {"EVAL", s_failed_list, "1", MEMORY_DELIVERIES_FAILED_KEY, limit_s};
        memcpy(argv, a, sizeof a);
        argc = 5;
    } else {
        if (conv[0] == '\0') {
            rc = fail(MESH_EPROTO, err, err_size, "conv: missing");
            goto cleanup;
        }
        const char *channel = NULL;
        rc = channel_to_args(args, &channel, &to_json, err, err_size);
        if (rc != 0)
            goto cleanup;
        if (memory_key(key2, sizeof key2, MEMORY_KEY_STATE, conv, NULL) < 0 ||
            memory_key(key1, sizeof key1, MEMORY_KEY_LOG, conv, NULL) < 0) {
            rc = fail(MESH_EPROTO, err, err_size, "conv: not a valid conversation id");
            goto cleanup;
        }
        if (strcmp(req->op, "conv.bind") == 0) {
            c->op = BIND_OP_BIND;
            const char *a[] = {"EVAL", s_bind, "1", key2, channel, to_json, ttl, now};
            memcpy(argv, a, sizeof a);
            argc = 8;
        } else {
            c->op = BIND_OP_RECORD;
            const char *text = NULL, *reason = NULL;
            rc = str_arg(args, "text", MESH_TEXT_MAX, &text, err, err_size);
            if (rc == 0)
                rc = str_arg(args, "reason", MEMORY_BIND_REASON_MAX, &reason, err, err_size);
            if (rc != 0)
                goto cleanup;
            size_t tlen = strlen(text);
            json_t *to = json_object_get(args, "to");
            json_t *n = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "role", "note", "event",
                                  "undelivered", "channel", channel, "reason", reason, "text", text,
                                  "ts", (json_int_t)now_ms);
            json_t *s = json_pack("{s:s,s:s,s:O,s:s,s:s%,s:b,s:I}", "conversation_id", conv,
                                  "channel", channel, "to", to, "reason", reason, "text", text,
                                  utf8_cut(text, tlen, MEMORY_FAILED_TEXT_MAX), "truncated",
                                  tlen > MEMORY_FAILED_TEXT_MAX, "ts", (json_int_t)now_ms);
            note = n ? json_dumps(n, JSON_COMPACT) : NULL;
            c->summary = s ? json_dumps(s, JSON_COMPACT) : NULL;
            json_decref(n);
            json_decref(s);
            if (!note || !c->summary) {
                rc = fail(MESH_ENOMEM, err, err_size, "out of memory");
                goto cleanup;
            }
            const char *a[] = {"EVAL", s_record, "2", key1, key2, note, ttl, hmax, now};
            memcpy(argv, a, sizeof a);
            argc = 9;
        }
    }
    size_t lens[10];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    rc = mesh_redis_command(redis, on_reply, c, argc, argv, lens);
    if (rc != 0) {
        rc = fail(rc, err, err_size, rc == MESH_EUNAVAIL ? "redis unavailable" : "out of memory");
        goto cleanup;
    }
    c = NULL; /* owned by the command now */
cleanup:
    if (c) {
        free(c->summary);
        free(c);
    }
    free(to_json);
    free(note);
    return rc;
}
