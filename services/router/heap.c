/*
 * heap.c - intrusive binary min-heap (see heap.h).
 */
#include "heap.h"

#include <stdlib.h>

#include "mesh/mesh_err.h"

#define HEAP_MIN_CAP 64

static bool node_less(const router_heap_node_t *a, const router_heap_node_t *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    return a->seq < b->seq;
}

static void place(router_heap_t *h, size_t i, router_heap_node_t *node)
{
    h->v[i] = node;
    node->idx = i;
}

static void sift_up(router_heap_t *h, size_t i)
{
    router_heap_node_t *node = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!node_less(node, h->v[parent]))
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, node);
}

static void sift_down(router_heap_t *h, size_t i)
{
    router_heap_node_t *node = h->v[i];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= h->n)
            break;
        size_t c = l;
        if (l + 1 < h->n && node_less(h->v[l + 1], h->v[l]))
            c = l + 1;
        if (!node_less(h->v[c], node))
            break;
        place(h, i, h->v[c]);
        i = c;
    }
    place(h, i, node);
}

void router_heap_init(router_heap_t *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
    h->next_seq = 0;
}

void router_heap_free(router_heap_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->v[i]->idx = ROUTER_HEAP_NONE;
    free(h->v);
    router_heap_init(h);
}

void router_heap_node_init(router_heap_node_t *node)
{
    node->key = 0;
    node->seq = 0;
    node->idx = ROUTER_HEAP_NONE;
}

int router_heap_push(router_heap_t *h, router_heap_node_t *node, uint64_t key)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : HEAP_MIN_CAP;
        router_heap_node_t **v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return MESH_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    node->key = key;
    node->seq = h->next_seq++;
    place(h, h->n, node);
    h->n++;
    sift_up(h, node->idx);
    return 0;
}

void router_heap_remove(router_heap_t *h, router_heap_node_t *node)
{
    if (node->idx == ROUTER_HEAP_NONE || node->idx >= h->n || h->v[node->idx] != node)
        return;
    size_t i = node->idx;
    node->idx = ROUTER_HEAP_NONE;
    h->n--;
    if (i == h->n)
        return;
    router_heap_node_t *last = h->v[h->n];
    place(h, i, last);
    if (i > 0 && node_less(last, h->v[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

void router_heap_update(router_heap_t *h, router_heap_node_t *node, uint64_t key)
{
    if (node->idx == ROUTER_HEAP_NONE)
        return;
    uint64_t old = node->key;
    node->key = key;
    if (key < old)
        sift_up(h, node->idx);
    else if (key > old)
        sift_down(h, node->idx);
}

router_heap_node_t *router_heap_peek(const router_heap_t *h)
{
    return h->n ? h->v[0] : NULL;
}

router_heap_node_t *router_heap_pop(router_heap_t *h)
{
    router_heap_node_t *top = router_heap_peek(h);
    if (top)
        router_heap_remove(h, top);
    return top;
}
