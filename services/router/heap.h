/*
 * heap.h - an intrusive binary min-heap keyed by a uint64 (deadlines in ms).
 *
 * The router holds thousands of requests and turns with deadlines; it needs
 * the earliest one in O(1) and insert/remove/re-key in O(log n), never a scan
 * of everything on each tick. Nodes are embedded in the owning struct (use
 * ROUTER_CONTAINER_OF to get back to it); the heap stores pointers and keeps
 * each node's index up to date so removal of an arbitrary node is O(log n).
 * Ties are broken by insertion order (a sequence number), so requests with
 * the same deadline expire in arrival order.
 */
#ifndef ROUTER_HEAP_H
#define ROUTER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTER_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define ROUTER_HEAP_NONE SIZE_MAX /* idx of a node that is not in a heap */

typedef struct {
    uint64_t key;
    uint64_t seq; /* tie-break: insertion order */
    size_t idx;   /* position in the heap, ROUTER_HEAP_NONE when absent */
} router_heap_node_t;

typedef struct {
    router_heap_node_t **v;
    size_t n, cap;
    uint64_t next_seq;
} router_heap_t;

/* A zeroed heap is valid too; init is for clarity. */
void router_heap_init(router_heap_t *h);
/* Free the array (the nodes belong to their owners). */
void router_heap_free(router_heap_t *h);

/* Mark a node as not in any heap (call once when the owner is created). */
void router_heap_node_init(router_heap_node_t *node);

/* Insert node (not already in a heap) with key. 0 or MESH_ENOMEM. */
int router_heap_push(router_heap_t *h, router_heap_node_t *node, uint64_t key);

/* Remove node if it is in the heap (no-op otherwise). */
void router_heap_remove(router_heap_t *h, router_heap_node_t *node);

/* Change the key of a node in the heap. */
void router_heap_update(router_heap_t *h, router_heap_node_t *node, uint64_t key);

/* The node with the smallest key, or NULL when empty. */
router_heap_node_t *router_heap_peek(const router_heap_t *h);

/* Remove and return the smallest node, or NULL when empty. */
router_heap_node_t *router_heap_pop(router_heap_t *h);

static inline bool router_heap_contains(const router_heap_node_t *node)
{
    return node->idx != ROUTER_HEAP_NONE;
}

static inline size_t router_heap_size(const router_heap_t *h)
{
    return h->n;
}

#endif
