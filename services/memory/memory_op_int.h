/*
 * memory_op_int.h - what memory_ops.c shares with the files of its newer
 * ops (memory_claims.c: tool.call; memory_handoff.c: the handoff ops).
 * Internal to the memory service.
 *
 * An op is planned by a builder (validate args, push the script's KEYS and
 * ARGV, choose the script and the reply converter), run as one script, and
 * its reply converted by a memory_reply_fn. The converter may ask for one
 * follow-up command on the handoff queue (another Cluster slot) that runs
 * before the op is answered.
 */
#ifndef MEMORY_OP_INT_H
#define MEMORY_OP_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "memory_eval.h"
#include "memory_keys.h"
#include "memory_metrics.h"
#include "memory_ops.h"
#include "memory_scripts.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_redis.h"

struct redisReply;
typedef struct memory_op memory_op_t;

/* A script reply -> the op's data (0, *data a new reference) or a MESH_E* with err. */
typedef int (*memory_reply_fn)(const struct redisReply *r, memory_op_t *c, json_t **data, char *err,
                               size_t err_size);

typedef enum {
    MEMORY_FOLLOW_NONE = 0,
    MEMORY_FOLLOW_QUEUE_ADD, /* ZADD NX the handoff queue: conv, score follow_score */
    MEMORY_FOLLOW_QUEUE_REM, /* ZREM conv from the handoff queue */
} memory_follow_t;

/* One op in flight. It holds no reference to memory_ops_t (which may be destroyed meanwhile). */
struct memory_op {
    memory_reply_fn to_data;
    memory_ops_done_fn done;
    void *arg;
    mesh_redis_t *redis;      /* the follow-up is sent only after a real reply came from it */
    memory_metrics_t metrics; /* series pointers (the global registry outlives ops) */
    uint64_t now_ms;          /* wall clock when the op started */
    memory_follow_t follow;   /* set by to_data */
    double follow_score;
    json_t *data; /* held while the follow-up runs */
    char conv[MESH_CONV_MAX + 1];
    char tenant[MESH_TENANT_MAX + 1]; /* the request's (MESH_TENANT_DEFAULT when absent) */
};

/* What a builder decides (defaults from the op table, a builder may override). */
typedef struct {
    memory_script_id_t script;
    int nkeys;
    memory_reply_fn to_data;
    json_t *now; /* set: answered without Redis, status 0, this data (a tool outcome) */
} memory_plan_t;

/* What a builder knows besides the args. */
typedef struct {
    const memory_ops_cfg_t *cfg;
    const char *conv;   /* "" when the request has none */
    const char *tenant; /* never NULL */
    uint64_t now_ms;
} memory_build_ctx_t;

typedef int (*memory_build_fn)(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                               memory_plan_t *plan, char *err, size_t err_size);

/* printf into err (when non-NULL) and return rc. */
int memory_fail(int rc, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Push the keys of conv, kinds[0..n) in order (id for IDEM / HIDEM). 0 or MESH_E*. */
int memory_push_keys(memory_argv_t *a, const char *conv, const char *id,
                     const memory_key_kind_t *kinds, int n);

/* tool.call (memory_claims.c): claim.register, claim.get. */
int memory_claims_build(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                        memory_plan_t *plan, char *err, size_t err_size);

/* handoff.claim / reply / note / release (memory_handoff.c). */
int memory_handoff_build_claim(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                               memory_plan_t *plan, char *err, size_t err_size);
int memory_handoff_build_reply(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                               memory_plan_t *plan, char *err, size_t err_size);
int memory_handoff_build_note(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                              memory_plan_t *plan, char *err, size_t err_size);
int memory_handoff_build_release(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                                 memory_plan_t *plan, char *err, size_t err_size);

/*
 * handoff.list {limit} (memory_handoff.c): ZRANGE + ZCARD of the queue, one
 * HMGET per member, a ZREM of the stale members; done is called once,
 * later. 0 or MESH_EPROTO (bad args) / MESH_EUNAVAIL / MESH_ENOMEM with err
 * (done not called).
 */
int memory_handoff_list(mesh_redis_t *redis, const memory_metrics_t *m, const json_t *args,
                        memory_ops_done_fn done, void *arg, char *err, size_t err_size);

#endif
