/*
 * convctx.c - the router's conversation context cache and seen table
 * (convctx.h).
 */
#include "convctx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "mesh/mesh_err.h"
#include "agents.h"
#include "list.h"
#include "strmap.h"

typedef struct {
    router_list_t lru; /* c->lru: most recently used first */
    json_t *history;
    json_t *cstate;
    char agent[ROUTER_AGENT_NAME_MAX + 1];
    size_t conv_len;
    char conv[]; /* the map's key */
} entry_t;

struct router_convctx {
    size_t max;
    router_map_t *map;
    router_list_t lru;
    uint64_t seed;
    uint64_t *seen; /* 0 = empty slot */
};

static entry_t *entry_of(router_list_t *l)
{
    return (entry_t *)((char *)l - offsetof(entry_t, lru));
}

/* FNV-1a over the seed then the bytes; never 0 (0 marks an empty slot). */
static uint64_t conv_hash(const router_convctx_t *c, const char *conv)
{
    uint64_t h = 1469598103934665603ULL ^ c->seed;
    for (const unsigned char *p = (const unsigned char *)conv; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    h ^= h >> 29;
    return h ? h : 1;
}

router_convctx_t *router_convctx_new(size_t max_entries)
{
    router_convctx_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->max = max_entries;
    router_list_init(&c->lru);
    c->map = router_map_new();
    c->seen = calloc(ROUTER_CONVCTX_SEEN_SLOTS, sizeof(*c->seen));
    if (!c->map || !c->seen) {
        router_convctx_destroy(&c);
        return NULL;
    }
    /* Conversation ids are chosen by clients: a secret seed keeps them from
     * crafting ids that push each other out of the table. */
    if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != (ssize_t)sizeof(c->seed))
        c->seed = (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ULL;
    return c;
}

static void entry_free(entry_t *e)
{
    json_decref(e->history);
    json_decref(e->cstate);
    free(e);
}

static void entry_drop(router_convctx_t *c, entry_t *e)
{
    router_map_del(c->map, e->conv, e->conv_len);
    router_list_remove(&e->lru);
    entry_free(e);
}

void router_convctx_destroy(router_convctx_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    router_convctx_t *c = *c_p;
    router_list_t *l;
    while ((l = router_list_pop_front(&c->lru)) != NULL)
        entry_free(entry_of(l));
    router_map_destroy(&c->map);
    free(c->seen);
    free(c);
    *c_p = NULL;
}

bool router_convctx_get(router_convctx_t *c, const char *conv, const json_t **history,
                        const json_t **cstate, const char **agent)
{
    entry_t *e = c ? router_map_get(c->map, conv, strlen(conv)) : NULL;
    if (!e)
        return false;
    router_list_remove(&e->lru);
    router_list_push_front(&c->lru, &e->lru);
    *history = e->history;
    *cstate = e->cstate;
    *agent = e->agent;
    return true;
}

bool router_convctx_seen(const router_convctx_t *c, const char *conv)
{
    if (!c)
        return false;
    uint64_t h = conv_hash(c, conv);
    return c->seen[h % ROUTER_CONVCTX_SEEN_SLOTS] == h;
}

void router_convctx_erase(router_convctx_t *c, const char *conv)
{
    entry_t *e = c ? router_map_get(c->map, conv, strlen(conv)) : NULL;
    if (e)
        entry_drop(c, e);
}

void router_convctx_mark_seen(router_convctx_t *c, const char *conv)
{
    if (!c)
        return;
    uint64_t h = conv_hash(c, conv);
    c->seen[h % ROUTER_CONVCTX_SEEN_SLOTS] = h;
}

int router_convctx_put(router_convctx_t *c, const char *conv, json_t *history, json_t *cstate,
                       const char *agent)
{
    if (!c)
        return 0;
    router_convctx_mark_seen(c, conv);
    router_convctx_erase(c, conv);
    if (c->max == 0)
        return 0;
    size_t len = strlen(conv);
    entry_t *e = calloc(1, sizeof(*e) + len + 1);
    if (!e)
        return MESH_ENOMEM;
    memcpy(e->conv, conv, len + 1);
    e->conv_len = len;
    snprintf(e->agent, sizeof(e->agent), "%s", agent ? agent : "");
    if (router_map_put(c->map, e->conv, len, e) != 0) {
        free(e);
        return MESH_ENOMEM;
    }
    e->history = json_incref(history);
    e->cstate = json_incref(cstate);
    router_list_push_front(&c->lru, &e->lru);
    while (router_map_count(c->map) > c->max) {
        router_list_t *last = c->lru.prev;
        entry_drop(c, entry_of(last));
    }
    return 0;
}

size_t router_convctx_count(const router_convctx_t *c)
{
    return c ? router_map_count(c->map) : 0;
}
