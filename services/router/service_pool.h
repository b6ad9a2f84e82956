/*
 * service_pool.h - per-service worker pools and request queues.
 *
 * A pool holds the workers that announced one service name (READY) and the
 * FIFO of requests waiting for free capacity. Dispatch picks the worker with
 * the most free capacity (capacity - inflight); ties go to the least
 * recently used worker, so equal workers share the load in turn.
 *
 * This file is pure bookkeeping (no sockets, no clock of its own): the
 * broker decides when to dispatch and what to send. Queue members are
 * intrusive list nodes owned by the broker's requests.
 */
#ifndef ROUTER_SERVICE_POOL_H
#define ROUTER_SERVICE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"
#include "mesh/mesh_heartbeat.h"
#include "mesh/mesh_limits.h"

/* ZeroMQ routing identities are 1..255 bytes. */
#define ROUTER_IDENTITY_MAX 255

typedef struct router_pool router_pool_t;

typedef struct router_worker {
    unsigned char identity[ROUTER_IDENTITY_MAX];
    size_t identity_len;
    router_pool_t *pool;
    uint32_t capacity;  /* from READY */
    uint32_t inflight;  /* requests sent and not finished (incl. orphans) */
    uint64_t last_used; /* pool LRU sequence of the last dispatch */
    size_t pool_idx;    /* index in pool->workers */
    mesh_hb_t hb;
    router_list_t reqs; /* requests in flight on this worker */
} router_worker_t;

struct router_pool {
    char name[MESH_SERVICE_MAX + 1];
    size_t name_len;
    router_worker_t **workers;
    size_t n_workers, cap_workers;
    router_list_t queue; /* waiting requests, FIFO */
    size_t queued;
    uint64_t empty_since; /* when the pool last had no worker (ms) */
    uint64_t lru_seq;
    /* re-entrancy guard for the broker's dispatch loop */
    bool dispatching, again;
    router_list_t dirty; /* member of the broker's list of pools to dispatch */
};

/* New empty pool for name[0..len) (len <= MESH_SERVICE_MAX) at time now. NULL on ENOMEM. */
router_pool_t *router_pool_new(const char *name, size_t len, uint64_t now);
/* Free the pool (workers and queued requests belong to the broker). NULLs *p_p. */
void router_pool_destroy(router_pool_t **p_p);

/* Add a worker (w->pool is set). 0 or MESH_ENOMEM. */
int router_pool_add_worker(router_pool_t *p, router_worker_t *w);
/* Remove a worker; records empty_since = now when it was the last one. */
void router_pool_remove_worker(router_pool_t *p, router_worker_t *w, uint64_t now);

/* Worker with the most free capacity (ties: least recently used), or NULL if all are full. */
router_worker_t *router_pool_pick(const router_pool_t *p);
/* Record a dispatch to w: one more in flight, most recently used. */
void router_pool_mark_used(router_pool_t *p, router_worker_t *w);
/* Record the end of one request on w. */
void router_pool_release(router_worker_t *w);

/* Queue operations. */
void router_pool_enqueue(router_pool_t *p, router_list_t *node);
void router_pool_enqueue_front(router_pool_t *p, router_list_t *node);
router_list_t *router_pool_dequeue(router_pool_t *p);
void router_pool_unqueue(router_pool_t *p, router_list_t *node);

/* Sum of the workers' announced capacity. */
uint64_t router_pool_capacity(const router_pool_t *p);
/* Sum of the workers' free slots (capacity - inflight). */
uint64_t router_pool_free_slots(const router_pool_t *p);

#endif
