/*
 * memory_eval.h - run the memory scripts on Redis: EVALSHA with the SHA1
 * Redis returned when the scripts were loaded (SCRIPT LOAD, once per
 * connection), EVAL when the SHA is not known yet, and one EVAL retry when
 * Redis answers NOSCRIPT (script cache flushed, failover to a replica that
 * never saw the load). Either way a call is one round trip in the steady
 * state.
 */
#ifndef MEMORY_EVAL_H
#define MEMORY_EVAL_H

#include <stddef.h>

#include "mesh/mesh_redis.h"
#include "memory_scripts.h"

struct redisReply;
typedef struct memory_eval memory_eval_t;

/* A growable argument vector; every element is an owned, binary-safe copy. */
typedef struct {
    char **v;
    size_t *len;
    int n, cap;
} memory_argv_t;

/* Append a copy of s[0..len). 0 or MESH_ENOMEM. */
int memory_argv_push(memory_argv_t *a, const char *s, size_t len);
/* Append the decimal text of v. 0 or MESH_ENOMEM. */
int memory_argv_push_u64(memory_argv_t *a, unsigned long long v);
/* Append s (malloc'd, len bytes) taking ownership (freed even on error). 0 or MESH_ENOMEM. */
int memory_argv_push_owned(memory_argv_t *a, char *s, size_t len);
/* Free every element; leaves an empty vector. */
void memory_argv_clear(memory_argv_t *a);

/*
 * status 0 with reply (the script's reply, or a REDIS_REPLY_ERROR) or
 * MESH_ETIMEDOUT / MESH_EUNAVAIL / MESH_ECANCELED with reply NULL. reply is
 * borrowed for the duration of the call.
 */
typedef void (*memory_eval_cb)(int status, struct redisReply *reply, void *arg);

/* NULL on ENOMEM. redis is borrowed and must outlive every call made. */
memory_eval_t *memory_eval_new(mesh_redis_t *redis);

/*
 * Load every script (SCRIPT LOAD); call whenever the connection comes up.
 * Calls made before the SHAs are known use EVAL. Failures are logged only.
 */
void memory_eval_load(memory_eval_t *e);

/* true once every script's SHA is known (for tests and logs). */
bool memory_eval_loaded(const memory_eval_t *e);

/*
 * Run script id with keys (nkeys elements) followed by args (all of argv,
 * moved: argv is left empty whatever the outcome). Returns 0 (cb is called
 * exactly once, never from inside this call) or MESH_EUNAVAIL / MESH_ENOMEM
 * (cb is not called). After the call returns, nothing of e is used: the
 * call's context holds its own copy of the SHA.
 */
int memory_eval_run(memory_eval_t *e, memory_script_id_t id, int nkeys, memory_argv_t *argv,
                    memory_eval_cb cb, void *arg);

/*
 * Free e. SCRIPT LOAD replies still pending keep the memory alive until they
 * arrive (mesh_redis calls every callback exactly once, at the latest when
 * it is destroyed). NULLs *e_p.
 */
void memory_eval_destroy(memory_eval_t **e_p);

#endif
