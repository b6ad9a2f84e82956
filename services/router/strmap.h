/*
 * strmap.h - a hash map from byte-string keys to pointers.
 *
 * Used for workers and clients (keyed by ZeroMQ routing identity, which may
 * contain NUL bytes), requests in flight (by request id), service pools (by
 * name) and conversation queues (by conversation id).
 *
 * Keys are BORROWED: the caller guarantees that the key bytes stay valid and
 * unchanged while the entry exists (in practice the key lives inside the
 * value struct), so an insert never allocates a key copy. Open addressing
 * with linear probing and backward-shift deletion (no tombstones). The hash
 * is seeded per map from the OS random source so that peer-chosen keys
 * (identities, request ids) cannot be crafted to collide in advance.
 */
#ifndef ROUTER_STRMAP_H
#define ROUTER_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct router_map router_map_t;

router_map_t *router_map_new(void);
/* Free the table (values are not touched). NULLs *m_p. Safe on NULL. */
void router_map_destroy(router_map_t **m_p);

/* The value for key, or NULL. */
void *router_map_get(const router_map_t *m, const void *key, size_t len);

/*
 * Insert key -> val (val must be non-NULL). Returns 0, MESH_EINVAL when the
 * key is already present (nothing changes), or MESH_ENOMEM.
 */
int router_map_put(router_map_t *m, const void *key, size_t len, void *val);

/* Remove key; returns its value or NULL when absent. */
void *router_map_del(router_map_t *m, const void *key, size_t len);

size_t router_map_count(const router_map_t *m);

/*
 * Iterate: *pos starts at 0; returns the next value or NULL at the end. The
 * map must not change during an iteration (collect first, then remove).
 */
void *router_map_next(const router_map_t *m, size_t *pos);

#endif
