/*
 * list.h - an intrusive circular doubly-linked list (O(1) push, pop and
 * removal of any member). A node that is in no list points at itself.
 */
#ifndef ROUTER_LIST_H
#define ROUTER_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct router_list {
    struct router_list *prev, *next;
} router_list_t;

static inline void router_list_init(router_list_t *l)
{
    l->prev = l;
    l->next = l;
}

static inline bool router_list_empty(const router_list_t *l)
{
    return l->next == l;
}

/* True when node is linked into some list (after router_list_init). */
static inline bool router_list_linked(const router_list_t *node)
{
    return node->next != node;
}

static inline void router_list_insert_after(router_list_t *pos, router_list_t *node)
{
    node->prev = pos;
    node->next = pos->next;
    pos->next->prev = node;
    pos->next = node;
}

static inline void router_list_push_back(router_list_t *head, router_list_t *node)
{
    router_list_insert_after(head->prev, node);
}

static inline void router_list_push_front(router_list_t *head, router_list_t *node)
{
    router_list_insert_after(head, node);
}

static inline void router_list_remove(router_list_t *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    router_list_init(node);
}

/* First member or NULL. */
static inline router_list_t *router_list_first(const router_list_t *head)
{
    return router_list_empty(head) ? NULL : head->next;
}

static inline router_list_t *router_list_pop_front(router_list_t *head)
{
    router_list_t *n = router_list_first(head);
    if (n)
        router_list_remove(n);
    return n;
}

#endif
