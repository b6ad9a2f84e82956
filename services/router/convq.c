/*
 * convq.c - per-conversation FIFOs (see convq.h).
 */
#include "convq.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "strmap.h"

struct router_conv {
    char id[MESH_CONV_MAX + 1];
    size_t id_len;
    router_list_t items;
    size_t n; /* items, head included */
};

static router_convq_item_t *item_of(router_list_t *l)
{
    return (router_convq_item_t *)((char *)l - offsetof(router_convq_item_t, link));
}

struct router_convq {
    router_map_t *convs;
    size_t max_waiting;
};

router_convq_t *router_convq_new(size_t max_waiting)
{
    router_convq_t *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->convs = router_map_new();
    if (!q->convs) {
        free(q);
        return NULL;
    }
    q->max_waiting = max_waiting;
    return q;
}

void router_convq_destroy(router_convq_t **q_p)
{
    if (!q_p || !*q_p)
        return;
    router_convq_t *q = *q_p;
    size_t pos = 0;
    router_conv_t *c;
    while ((c = router_map_next(q->convs, &pos)) != NULL) {
        router_list_t *l;
        while ((l = router_list_pop_front(&c->items)) != NULL)
            item_of(l)->conv = NULL;
        free(c);
    }
    router_map_destroy(&q->convs);
    free(q);
    *q_p = NULL;
}

int router_convq_push(router_convq_t *q, const char *conv, router_convq_item_t *item, bool *is_head)
{
    size_t len = conv ? strlen(conv) : 0;
    *is_head = false;
    if (len == 0 || len > MESH_CONV_MAX)
        return MESH_EINVAL;
    router_conv_t *c = router_map_get(q->convs, conv, len);
    if (c) {
        /* c->n - 1 turns wait behind the running head. */
        if (c->n - 1 >= q->max_waiting)
            return MESH_EBUSY;
    } else {
        c = calloc(1, sizeof(*c));
        if (!c)
            return MESH_ENOMEM;
        memcpy(c->id, conv, len + 1);
        c->id_len = len;
        router_list_init(&c->items);
        if (router_map_put(q->convs, c->id, c->id_len, c) != 0) {
            free(c);
            return MESH_ENOMEM;
        }
    }
    router_list_push_back(&c->items, &item->link);
    item->conv = c;
    c->n++;
    *is_head = c->n == 1;
    return 0;
}

bool router_convq_is_head(const router_convq_item_t *item)
{
    return item->conv && item->conv->items.next == &item->link;
}

router_convq_item_t *router_convq_remove(router_convq_t *q, router_convq_item_t *item)
{
    router_conv_t *c = item->conv;
    if (!c)
        return NULL;
    bool was_head = router_convq_is_head(item);
    router_list_remove(&item->link);
    item->conv = NULL;
    c->n--;
    if (c->n == 0) {
        router_map_del(q->convs, c->id, c->id_len);
        free(c);
        return NULL;
    }
    if (!was_head)
        return NULL;
    return item_of(router_list_first(&c->items));
}

size_t router_convq_count(const router_convq_t *q)
{
    return router_map_count(q->convs);
}
