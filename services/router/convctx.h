/*
 * convctx.h - what the router remembers of the conversations it ran, so the
 * first model call of the next turn can start before memory answers
 * turn.begin (agent_early.c, docs/router.md "Early start").
 *
 * Two structures, both bounded:
 *   contexts  an LRU of at most max_entries conversations: the model view of
 *             the context memory will return (the last `window` messages of
 *             its ctx list, projected to the fields the model sees), the
 *             conversation state as the router last left it, and its agent;
 *   seen      a direct-mapped table of ROUTER_CONVCTX_SEEN_SLOTS seeded
 *             64-bit hashes of every conversation this router ran a turn
 *             of. A conversation neither cached nor seen is probably new.
 *
 * Nothing here is authoritative: memory is. A wrong entry only costs a
 * cancelled early model call, because the router uses the early call only
 * when its arguments equal, byte for byte, the ones built from memory's
 * answer. Single-threaded (the router's loop).
 */
#ifndef ROUTER_CONVCTX_H
#define ROUTER_CONVCTX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Slots of the seen table (8 bytes each). */
#define ROUTER_CONVCTX_SEEN_SLOTS (1u << 17)
/* A context whose history is larger than this (JSON bytes, estimated from
 * the texts) is not kept: a kilobyte-sized chat is the case worth a cache. */
#define ROUTER_CONVCTX_ENTRY_MAX (64 * 1024)

typedef struct router_convctx router_convctx_t;

/* max_entries 0 = keep no contexts (the seen table still works). NULL on ENOMEM. */
router_convctx_t *router_convctx_new(size_t max_entries);
void router_convctx_destroy(router_convctx_t **c_p);

/*
 * The cached context of conv: *history (array of projected messages, oldest
 * first), *cstate (object) and *agent are borrowed until the next put or
 * erase. Marks the entry most recently used. False when absent.
 */
bool router_convctx_get(router_convctx_t *c, const char *conv, const json_t **history,
                        const json_t **cstate, const char **agent);

/* Did this router run a turn of conv (hash table; may forget under pressure)? */
bool router_convctx_seen(const router_convctx_t *c, const char *conv);

/*
 * Remember conv's context after a recorded turn: history and cstate are
 * referenced (the caller keeps its references; neither may be changed
 * afterwards), agent copied. Evicts the least recently used entry when full.
 * Also marks conv seen. 0 or MESH_ENOMEM (nothing kept, the old entry is gone).
 */
int router_convctx_put(router_convctx_t *c, const char *conv, json_t *history, json_t *cstate,
                       const char *agent);

/* Mark conv seen without keeping a context (one too large to keep). */
void router_convctx_mark_seen(router_convctx_t *c, const char *conv);

/* Forget conv's context (it stays seen). */
void router_convctx_erase(router_convctx_t *c, const char *conv);

/* Contexts held now. */
size_t router_convctx_count(const router_convctx_t *c);

#endif
