/*
 * memory_worker.h - the memory service: a mesh_worker for service "memory"
 * whose requests run as memory ops (memory_ops.h) on one Redis connection.
 *
 * The worker is only announced to the routers while Redis answers: it
 * starts withdrawn, sends READY when the Redis connection comes up and
 * DISCONNECT when it goes down (mesh_worker_set_ready), so a router that
 * sees a memory worker can expect Redis to be reachable. A request that
 * races with an outage is answered MESH_EUNAVAIL.
 */
#ifndef MEMORY_WORKER_H
#define MEMORY_WORKER_H

#include <stdint.h>
#include <uv.h>

#include "memory_ops.h"
#include "mesh/mesh_redis.h"
#include "mesh/mesh_worker.h"

typedef struct memory_worker memory_worker_t;

typedef struct {
    mesh_worker_opts_t worker; /* service is forced to "memory" */
    mesh_redis_opts_t redis;
    memory_ops_cfg_t ops;
    uint64_t queue_refresh_ms; /* MESH_HANDOFF_REFRESH_MS: handoff queue gauge refresh (0: off) */
} memory_worker_cfg_t;

/* NULL on failure (bad config or ENOMEM). cfg is copied (endpoint strings are borrowed). */
memory_worker_t *memory_worker_new(uv_loop_t *loop, void *zctx, const memory_worker_cfg_t *cfg);

/* Connect to Redis and to the routers. 0 or MESH_E*. */
int memory_worker_start(memory_worker_t *mw);

/* true while the Redis connection is up (and the worker announced). */
bool memory_worker_redis_up(const memory_worker_t *mw);

/*
 * Stop taking work; call done(arg) once, from the loop, when every request
 * was answered or after grace_ms (open requests are then answered
 * MESH_EUNAVAIL by mesh_worker). Redis stays connected meanwhile.
 */
void memory_worker_drain(memory_worker_t *mw, uint64_t grace_ms, void (*done)(void *arg),
                         void *arg);

/*
 * Close Redis (ops in flight are answered MESH_EUNAVAIL), the ops and the
 * worker; NULL *mw_p. The loop must run once more so closed handles free
 * their memory. Safe on NULL.
 */
void memory_worker_destroy(memory_worker_t **mw_p);

#endif
