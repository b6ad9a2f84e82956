/*
 * convq.h - per-conversation ordering of turns.
 *
 * One FIFO per conversation id. Only the head of a FIFO runs; the others
 * wait their turn, so two messages of one conversation are processed (and
 * answered) in arrival order while different conversations run in
 * parallel. At most max_waiting turns may wait behind the running one
 * (MESH_CONV_QUEUE_MAX); more are refused with MESH_EBUSY.
 *
 * Items are intrusive (embedded in the turn). A conversation's entry is
 * freed when its FIFO becomes empty, so idle conversations cost nothing.
 */
#ifndef ROUTER_CONVQ_H
#define ROUTER_CONVQ_H

#include <stdbool.h>
#include <stddef.h>

#include "list.h"

typedef struct router_convq router_convq_t;
typedef struct router_conv router_conv_t;

typedef struct {
    router_list_t link;
    router_conv_t *conv; /* NULL when not queued */
} router_convq_item_t;

router_convq_t *router_convq_new(size_t max_waiting);
/* Free the table. Items still queued are only unlinked. NULLs *q_p. */
void router_convq_destroy(router_convq_t **q_p);

/*
 * Append item to conv's FIFO. *is_head is set when it is the only one (it
 * may start now). Returns 0, MESH_EBUSY (max_waiting already wait) or
 * MESH_ENOMEM / MESH_EINVAL (conv empty or too long).
 */
int router_convq_push(router_convq_t *q, const char *conv, router_convq_item_t *item,
                      bool *is_head);

/*
 * Remove item (head or waiting). When item was the head and another turn
 * waits, returns that one (the caller starts it); otherwise NULL.
 */
router_convq_item_t *router_convq_remove(router_convq_t *q, router_convq_item_t *item);

bool router_convq_is_head(const router_convq_item_t *item);

/* Conversations that have at least one turn. */
size_t router_convq_count(const router_convq_t *q);

#endif
