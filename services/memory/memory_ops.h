/*
 * memory_ops.h - the memory service's operations (docs/protocol/services.md,
 * "memory"): turn.begin, turn.end, turn.abort, conv.get, lease.renew,
 * trace.get, tool.call (claim.register, claim.get) and the handoff ops
 * (handoff.list, handoff.claim, handoff.reply, handoff.note,
 * handoff.release).
 *
 * Independent of the broker: an op is (name, conversation id, args) in and
 * (status, message, data) out, over a mesh_redis connection, so tests and
 * other callers can drive it on a bare uv loop. Each op validates its args,
 * then runs exactly one Lua script (memory_scripts.h): one Redis round trip.
 * Exceptions, each because a second Redis Cluster slot is involved
 * (docs/memory.md, "Handoff queue"): turn.end that leaves a conversation
 * pending and handoff.release add a ZADD / ZREM of the handoff queue after
 * their script; handoff.list is a ZRANGE, then one HMGET per member.
 */
#ifndef MEMORY_OPS_H
#define MEMORY_OPS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/mesh_redis.h"

#define MEMORY_TTL_DEFAULT_S   604800 /* MESH_CONV_TTL_S */
#define MEMORY_HISTORY_DEFAULT 1000   /* MESH_HISTORY_MAX */

typedef struct memory_ops memory_ops_t;

typedef struct {
    uint64_t ttl_s;       /* conversation keys expire after this idle time */
    uint32_t history_max; /* messages kept per conversation (LTRIM) */
} memory_ops_cfg_t;

/*
 * The result of an op: status 0 with data, or a MESH_E* with errmsg (data
 * NULL). data and errmsg are borrowed for the duration of the call.
 */
typedef void (*memory_ops_done_fn)(int status, const char *errmsg, const json_t *data, void *arg);

/*
 * Refresh the mesh_handoff_queue_length gauge now: a handoff.list of the
 * default size whose answer is dropped (it also repairs the queue). The
 * gauge otherwise moves only when someone lists the queue. 0 or MESH_E*.
 */
int memory_ops_refresh_queue(memory_ops_t *ops);

/* NULL on ENOMEM / bad arguments. redis is borrowed and must outlive ops. */
memory_ops_t *memory_ops_new(mesh_redis_t *redis, const memory_ops_cfg_t *cfg);

/* The Redis connection came up: (re)load the scripts. */
void memory_ops_redis_up(memory_ops_t *ops);

/* true once the scripts are loaded on the current connection (tests). */
bool memory_ops_scripts_loaded(const memory_ops_t *ops);

/*
 * Start op on conversation conv with args (borrowed for this call only).
 * Returns 0: done will be called exactly once, later, from the loop (never
 * from inside this call). Otherwise returns MESH_EUNKNOWNOP, MESH_EPROTO,
 * MESH_ETOOBIG (bad args: err names the key), MESH_EUNAVAIL (Redis down) or
 * MESH_ENOMEM, with err filled, and done is never called.
 *
 * An op in flight holds no reference to ops: ops may be destroyed while
 * ops run; they still complete through mesh_redis (which calls back every
 * accepted command, at the latest with MESH_ECANCELED when destroyed).
 */
int memory_ops_run(memory_ops_t *ops, const char *op, const char *conv, const json_t *args,
                   memory_ops_done_fn done, void *arg, char *err, size_t err_size);

/* ---- with the request envelope (tool.call, handoff ops) ------------------- */

/* The parts of a mesh request an op reads. */
typedef struct {
    const char *op;
    const char *conv;   /* NULL or "" when the request has none */
    const char *tenant; /* NULL or "" = MESH_TENANT_DEFAULT */
    const json_t *args; /* borrowed for the call only */
} memory_req_t;

/*
 * Run req like memory_ops_run, with two differences:
 *   - the conversation id is optional for ops that are not about one
 *     conversation (tool.call, handoff.list); the others still need it;
 *   - a tool outcome decided before Redis (unknown_tool,
 *     invalid_tool_arguments) is answered at once: the call returns 0 with
 *     *now set to the data ({ok: false, error: {code, message}}, a new
 *     reference the caller owns and answers with status 0), and done is
 *     never called. Otherwise *now is NULL.
 * memory_ops_run(...) is memory_ops_call with tenant "default", except that
 * such an immediate tool outcome is returned as MESH_EUNKNOWNTOOL /
 * MESH_EBADARGS with its message in err (done not called).
 */
int memory_ops_call(memory_ops_t *ops, const memory_req_t *req, memory_ops_done_fn done, void *arg,
                    json_t **now, char *err, size_t err_size);

/* Free ops. NULLs *ops_p. */
void memory_ops_destroy(memory_ops_t **ops_p);

#endif
