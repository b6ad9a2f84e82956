/*
 * service_pool.c - worker pools and request queues (see service_pool.h).
 */
#include "service_pool.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"

#define POOL_MIN_WORKERS 4

router_pool_t *router_pool_new(const char *name, size_t len, uint64_t now)
{
    if (len == 0 || len > MESH_SERVICE_MAX)
        return NULL;
    router_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    memcpy(p->name, name, len);
    p->name[len] = '\0';
    p->name_len = len;
    router_list_init(&p->queue);
    router_list_init(&p->dirty);
    p->empty_since = now;
    return p;
}

void router_pool_destroy(router_pool_t **p_p)
{
    if (!p_p || !*p_p)
        return;
    free((*p_p)->workers);
    free(*p_p);
    *p_p = NULL;
}

int router_pool_add_worker(router_pool_t *p, router_worker_t *w)
{
    if (p->n_workers == p->cap_workers) {
        size_t cap = p->cap_workers ? p->cap_workers * 2 : POOL_MIN_WORKERS;
        router_worker_t **v = realloc(p->workers, cap * sizeof(*v));
        if (!v)
            return MESH_ENOMEM;
        p->workers = v;
        p->cap_workers = cap;
    }
    w->pool = p;
    w->pool_idx = p->n_workers;
    /* A new worker counts as least recently used: it gets work first on a tie. */
    w->last_used = 0;
    p->workers[p->n_workers++] = w;
    return 0;
}

void router_pool_remove_worker(router_pool_t *p, router_worker_t *w, uint64_t now)
{
    size_t i = w->pool_idx;
    if (i >= p->n_workers || p->workers[i] != w)
        return;
    p->n_workers--;
    if (i != p->n_workers) {
        p->workers[i] = p->workers[p->n_workers];
        p->workers[i]->pool_idx = i;
    }
    w->pool = NULL;
    if (p->n_workers == 0)
        p->empty_since = now;
}

router_worker_t *router_pool_pick(const router_pool_t *p)
{
    router_worker_t *best = NULL;
    uint32_t best_free = 0;
    for (size_t i = 0; i < p->n_workers; i++) {
        router_worker_t *w = p->workers[i];
        uint32_t free_slots = w->inflight < w->capacity ? w->capacity - w->inflight : 0;
        if (free_slots == 0)
            continue;
        if (!best || free_slots > best_free ||
            (free_slots == best_free && w->last_used < best->last_used)) {
            best = w;
            best_free = free_slots;
        }
    }
    return best;
}

void router_pool_mark_used(router_pool_t *p, router_worker_t *w)
{
    w->inflight++;
    w->last_used = ++p->lru_seq;
}

void router_pool_release(router_worker_t *w)
{
    if (w->inflight > 0)
        w->inflight--;
}

void router_pool_enqueue(router_pool_t *p, router_list_t *node)
{
    router_list_push_back(&p->queue, node);
    p->queued++;
}

void router_pool_enqueue_front(router_pool_t *p, router_list_t *node)
{
    router_list_push_front(&p->queue, node);
    p->queued++;
}

router_list_t *router_pool_dequeue(router_pool_t *p)
{
    router_list_t *n = router_list_pop_front(&p->queue);
    if (n)
        p->queued--;
    return n;
}

void router_pool_unqueue(router_pool_t *p, router_list_t *node)
{
    if (!router_list_linked(node))
        return;
    router_list_remove(node);
    p->queued--;
}

uint64_t router_pool_capacity(const router_pool_t *p)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < p->n_workers; i++)
        sum += p->workers[i]->capacity;
    return sum;
}

uint64_t router_pool_free_slots(const router_pool_t *p)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < p->n_workers; i++) {
        const router_worker_t *w = p->workers[i];
        if (w->inflight < w->capacity)
            sum += w->capacity - w->inflight;
    }
    return sum;
}
