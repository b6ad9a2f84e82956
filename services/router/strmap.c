/*
 * strmap.c - open-addressing hash map with borrowed byte-string keys.
 */
#include "strmap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "mesh/mesh_err.h"

#define MAP_MIN_CAP 16 /* power of two */

typedef struct {
    uint64_t hash;
    const void *key;
    size_t len;
    void *val; /* NULL = empty slot */
} map_slot_t;

struct router_map {
    map_slot_t *slots;
    size_t cap; /* power of two */
    size_t count;
    uint64_t seed;
};

/* FNV-1a over the key from a random basis, then a 64-bit finaliser so the
 * low bits used for the slot index depend on every input byte. */
static uint64_t map_hash(const router_map_t *m, const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ULL ^ m->seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

router_map_t *router_map_new(void)
{
    router_map_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->slots = calloc(MAP_MIN_CAP, sizeof(*m->slots));
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->cap = MAP_MIN_CAP;
    if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) != (ssize_t)sizeof(m->seed))
        m->seed = (uint64_t)(uintptr_t)m ^ 0x9e3779b97f4a7c15ULL;
    return m;
}

void router_map_destroy(router_map_t **m_p)
{
    if (!m_p || !*m_p)
        return;
    free((*m_p)->slots);
    free(*m_p);
    *m_p = NULL;
}

static size_t map_find(const router_map_t *m, uint64_t h, const void *key, size_t len, bool *found)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        const map_slot_t *s = &m->slots[i];
        if (!s->val) {
            *found = false;
            return i;
        }
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int map_grow(router_map_t *m)
{
    size_t cap = m->cap * 2;
    map_slot_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return MESH_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        map_slot_t *s = &m->slots[i];
        if (!s->val)
            continue;
        size_t j = (size_t)s->hash & (cap - 1);
        while (slots[j].val)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

void *router_map_get(const router_map_t *m, const void *key, size_t len)
{
    bool found;
    size_t i = map_find(m, map_hash(m, key, len), key, len, &found);
    return found ? m->slots[i].val : NULL;
}

int router_map_put(router_map_t *m, const void *key, size_t len, void *val)
{
    if (!val)
        return MESH_EINVAL;
    /* Keep the load factor under 3/4 so probe chains stay short. */
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = map_grow(m);
        if (rc)
            return rc;
    }
    uint64_t h = map_hash(m, key, len);
    bool found;
    size_t i = map_find(m, h, key, len, &found);
    if (found)
        return MESH_EINVAL;
    m->slots[i] = (map_slot_t){.hash = h, .key = key, .len = len, .val = val};
    m->count++;
    return 0;
}

void *router_map_del(router_map_t *m, const void *key, size_t len)
{
    bool found;
    size_t i = map_find(m, map_hash(m, key, len), key, len, &found);
    if (!found)
        return NULL;
    void *val = m->slots[i].val;
    size_t mask = m->cap - 1;
    /* Backward-shift: move later members of the probe chain into the hole
     * when their home slot does not lie cyclically in (hole, j]. */
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        map_slot_t *s = &m->slots[j];
        if (!s->val)
            break;
        size_t home = (size_t)s->hash & mask;
        bool in_range = (hole <= j) ? (home > hole && home <= j) : (home > hole || home <= j);
        if (in_range)
            continue;
        m->slots[hole] = *s;
        hole = j;
    }
    m->slots[hole] = (map_slot_t){0};
    m->count--;
    return val;
}

size_t router_map_count(const router_map_t *m)
{
    return m->count;
}

void *router_map_next(const router_map_t *m, size_t *pos)
{
    while (*pos < m->cap) {
        map_slot_t *s = &m->slots[(*pos)++];
        if (s->val)
            return s->val;
    }
    return NULL;
}
