/*
 * memory_eval.c - EVALSHA / EVAL of the memory scripts (memory_eval.h).
 */
#include "memory_eval.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

#define EVAL_SUBSYS       "eval"
#define EVAL_SHA_LEN      40 /* hex SHA1 */
#define EVAL_ARGV_MIN_CAP 16
#define EVAL_NUM_MAX      24 /* decimal text of a 64-bit number, NUL included */
/* Leading arguments before KEYS: command, sha or source, numkeys. */
#define EVAL_LEAD     3
#define EVAL_NOSCRIPT "NOSCRIPT"

struct memory_eval {
    mesh_redis_t *redis;
    char sha[MEMORY_SCRIPT_COUNT][EVAL_SHA_LEN + 1]; /* "" until loaded */
    int loads_pending;
    bool destroyed;
};

typedef struct {
    memory_eval_t *e;
    memory_script_id_t id;
} load_ctx_t;

typedef struct {
    mesh_redis_t *redis;
    memory_script_id_t id;
    char sha[EVAL_SHA_LEN + 1];
    char numkeys[EVAL_NUM_MAX];
    memory_argv_t argv;
    bool evaled; /* sent as EVAL already: no second fallback */
    memory_eval_cb cb;
    void *arg;
} call_ctx_t;

/* ------------------------------------------------------------ argv */

static int argv_grow(memory_argv_t *a)
{
    if (a->n < a->cap)
        return 0;
    int cap = a->cap > 0 ? a->cap * 2 : EVAL_ARGV_MIN_CAP;
    char **v = realloc(a->v, (size_t)cap * sizeof *v);
    if (v == NULL)
        return MESH_ENOMEM;
    a->v = v;
    size_t *len = realloc(a->len, (size_t)cap * sizeof *len);
    if (len == NULL)
        return MESH_ENOMEM;
    a->len = len;
    a->cap = cap;
    return 0;
}

int memory_argv_push_owned(memory_argv_t *a, char *s, size_t len)
{
    if (s == NULL || argv_grow(a) != 0) {
        free(s);
        return MESH_ENOMEM;
    }
    a->v[a->n] = s;
    a->len[a->n] = len;
    a->n++;
    return 0;
}

int memory_argv_push(memory_argv_t *a, const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return MESH_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return memory_argv_push_owned(a, copy, len);
}

int memory_argv_push_u64(memory_argv_t *a, unsigned long long v)
{
    char buf[EVAL_NUM_MAX];
    int n = snprintf(buf, sizeof buf, "%llu", v);
    return memory_argv_push(a, buf, (size_t)n);
}

void memory_argv_clear(memory_argv_t *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    free(a->len);
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------ loading */

memory_eval_t *memory_eval_new(mesh_redis_t *redis)
{
    if (redis == NULL)
        return NULL;
    memory_eval_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->redis = redis;
    return e;
}

static void eval_free_if_done(memory_eval_t *e)
{
    if (e->destroyed && e->loads_pending == 0)
        free(e);
}

static void on_loaded(mesh_redis_t *r, int status, redisReply *reply, void *arg)
{
    (void)r;
    load_ctx_t *lc = arg;
    memory_eval_t *e = lc->e;
    memory_script_id_t id = lc->id;
    free(lc);
    e->loads_pending--;
    if (e->destroyed) {
        eval_free_if_done(e);
        return;
    }
    if (status != 0) {
        mesh_log_debug(EVAL_SUBSYS, "SCRIPT LOAD %s: %s", memory_script_name(id),
                       mesh_strerror(status));
        return;
    }
    if (reply->type == REDIS_REPLY_STRING && reply->len == EVAL_SHA_LEN) {
        memcpy(e->sha[id], reply->str, EVAL_SHA_LEN);
        e->sha[id][EVAL_SHA_LEN] = '\0';
        return;
    }
    char clean[4 * MESH_LOG_SAMPLE_MAX + 4] = "(not a string)";
    if (reply->str != NULL)
        mesh_log_sanitize(reply->str, reply->len, clean, sizeof clean);
    mesh_log_warn(EVAL_SUBSYS, "SCRIPT LOAD %s refused: %s", memory_script_name(id), clean);
}

void memory_eval_load(memory_eval_t *e)
{
    if (e == NULL || e->destroyed)
        return;
    for (int id = 0; id < MEMORY_SCRIPT_COUNT; id++) {
        load_ctx_t *lc = malloc(sizeof *lc);
        if (lc == NULL)
            return;
        lc->e = e;
        lc->id = (memory_script_id_t)id;
        const char *argv[] = {"SCRIPT", "LOAD", memory_script_source(lc->id)};
        if (mesh_redis_command(e->redis, on_loaded, lc, 3, argv, NULL) != 0) {
            free(lc);
            return; /* down again: the next "up" loads them */
        }
        e->loads_pending++;
    }
}

bool memory_eval_loaded(const memory_eval_t *e)
{
    if (e == NULL)
        return false;
    for (int id = 0; id < MEMORY_SCRIPT_COUNT; id++) {
        if (e->sha[id][0] == '\0')
            return false;
    }
    return true;
}

void memory_eval_destroy(memory_eval_t **e_p)
{
    if (e_p == NULL || *e_p == NULL)
        return;
    memory_eval_t *e = *e_p;
    *e_p = NULL;
    e->destroyed = true;
    eval_free_if_done(e);
}

/* ------------------------------------------------------------ calls */

static void on_reply(mesh_redis_t *r, int status, redisReply *reply, void *arg);

/* Send the call as EVALSHA (when a SHA is known and not yet failed) or EVAL. */
static int call_send(call_ctx_t *c)
{
    int argc = EVAL_LEAD + c->argv.n;
    const char **argv = malloc((size_t)argc * sizeof *argv);
    size_t *lens = malloc((size_t)argc * sizeof *lens);
    int rc = MESH_ENOMEM;
    if (argv == NULL || lens == NULL)
        goto out;
    bool use_sha = !c->evaled && c->sha[0] != '\0';
    argv[0] = use_sha ? "EVALSHA" : "EVAL";
    argv[1] = use_sha ? c->sha : memory_script_source(c->id);
    argv[2] = c->numkeys;
    for (int i = 0; i < EVAL_LEAD; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < c->argv.n; i++) {
        argv[EVAL_LEAD + i] = c->argv.v[i];
        lens[EVAL_LEAD + i] = c->argv.len[i];
    }
    if (!use_sha)
        c->evaled = true;
    rc = mesh_redis_command(c->redis, on_reply, c, argc, argv, lens);
out:
    free(argv);
    free(lens);
    return rc;
}

static void call_free(call_ctx_t *c)
{
    memory_argv_clear(&c->argv);
    free(c);
}

static bool is_noscript(const redisReply *reply)
{
    size_t n = sizeof EVAL_NOSCRIPT - 1;
    return reply->type == REDIS_REPLY_ERROR && reply->len >= n &&
           memcmp(reply->str, EVAL_NOSCRIPT, n) == 0;
}

static void on_reply(mesh_redis_t *r, int status, redisReply *reply, void *arg)
{
    (void)r;
    call_ctx_t *c = arg;
    if (status == 0 && is_noscript(reply) && !c->evaled) {
        mesh_log_debug(EVAL_SUBSYS, "%s: NOSCRIPT, falling back to EVAL",
                       memory_script_name(c->id));
        c->evaled = true;
        int rc = call_send(c);
        if (rc == 0)
            return;
        c->cb(rc, NULL, c->arg);
        call_free(c);
        return;
    }
    c->cb(status, reply, c->arg);
    call_free(c);
}

int memory_eval_run(memory_eval_t *e, memory_script_id_t id, int nkeys, memory_argv_t *argv,
                    memory_eval_cb cb, void *arg)
{
    int rc = MESH_EINVAL;
    call_ctx_t *c = NULL;
    if (e == NULL || memory_script_source(id) == NULL || argv == NULL || cb == NULL || nkeys < 0 ||
        nkeys > argv->n)
        goto fail;
    rc = MESH_ENOMEM;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        goto fail;
    c->redis = e->redis;
    c->id = id;
    memcpy(c->sha, e->sha[id], sizeof c->sha);
    snprintf(c->numkeys, sizeof c->numkeys, "%d", nkeys);
    c->argv = *argv;
    memset(argv, 0, sizeof *argv);
    c->cb = cb;
    c->arg = arg;
    rc = call_send(c);
    if (rc != 0)
        goto fail;
    return 0;

fail:
    if (c != NULL)
        call_free(c);
    else if (argv != NULL)
        memory_argv_clear(argv);
    return rc;
}
