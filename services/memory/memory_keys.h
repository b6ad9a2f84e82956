/*
 * memory_keys.h - the Redis key names of one conversation.
 *
 * Every key is "mesh:{<conv>}:<kind>[:<id>]". The braces make <conv> the
 * Redis Cluster hash tag, so all keys of a conversation live in one slot and
 * one script may touch them all. <conv> is a validated conversation id
 * ([A-Za-z0-9._:-], no braces), so the tag always ends where intended.
 */
#ifndef MEMORY_KEYS_H
#define MEMORY_KEYS_H

#include <stddef.h>

#include "mesh/mesh_limits.h"

#define MEMORY_KEY_PREFIX "mesh:"
/* Longest key: prefix, braces, conv, ":idem:", message id. */
#define MEMORY_KEY_MAX (sizeof MEMORY_KEY_PREFIX + MESH_CONV_MAX + MESH_ID_MAX + 16)

typedef enum {
    MEMORY_KEY_LOG = 0, /* list: messages, JSON text */
    MEMORY_KEY_STATE,   /* hash: agent, turns, created, updated, slots */
    MEMORY_KEY_IDEM,    /* string: "pending" or the FINAL data JSON (needs id) */
    MEMORY_KEY_LEASE,   /* string: owner of the running turn (PX) */
    MEMORY_KEY_CTX,     /* list: the model's context (user + final assistant messages) */
    MEMORY_KEY_TRACES,  /* hash: turn number -> the turn's span timeline (JSON) */
    MEMORY_KEY_HIDEM,   /* string: a person's handoff.reply was recorded (needs id) */
} memory_key_kind_t;

/*
 * Keys outside any conversation. Claims share the {claims} tag (one slot:
 * one script registers a claim); the handoff queue has its own {handoff}
 * tag, so adding to or removing from it is a second command next to a
 * conversation's script (docs/memory.md, "Handoff queue").
 */
#define MEMORY_CLAIMS_SEQ_KEY     MEMORY_KEY_PREFIX "{claims}:seq"
#define MEMORY_CLAIMS_IDEM_KEY    MEMORY_KEY_PREFIX "{claims}:idem"
#define MEMORY_CLAIMS_RECORDS_KEY MEMORY_KEY_PREFIX "{claims}:records"
#define MEMORY_HANDOFF_QUEUE_KEY  MEMORY_KEY_PREFIX "{handoff}:queue"

/*
 * Write the key of kind for conv (and id, the message id, for
 * MEMORY_KEY_IDEM and MEMORY_KEY_HIDEM) into out. Returns its length, or MESH_EINVAL when conv is
 * not a valid conversation id, id is missing or too long, or out is too small.
 */
int memory_key(char *out, size_t out_size, memory_key_kind_t kind, const char *conv,
               const char *id);

#endif
