/*
 * memory_scripts.h - the Lua scripts of the memory service.
 *
 * Each operation that must be atomic is exactly one script, so one turn
 * costs one Redis round trip per step and no other client can observe or
 * interleave a half-done step. Every key a script touches is passed in KEYS
 * (Redis Cluster routes a script by its keys; all of one conversation's keys
 * share the {conv} hash tag, hence one slot). The KEYS/ARGV layout of each
 * script is documented next to its source in memory_scripts.c and in
 * docs/memory.md.
 */
#ifndef MEMORY_SCRIPTS_H
#define MEMORY_SCRIPTS_H

typedef enum {
    MEMORY_SCRIPT_BEGIN = 0,  /* turn.begin */
    MEMORY_SCRIPT_END,        /* turn.end */
    MEMORY_SCRIPT_ABORT,      /* turn.abort */
    MEMORY_SCRIPT_GET,        /* conv.get */
    MEMORY_SCRIPT_RENEW,      /* lease.renew */
    MEMORY_SCRIPT_TRACE,      /* trace.get */
    MEMORY_SCRIPT_CLAIM_REG,  /* tool.call claim.register */
    MEMORY_SCRIPT_CLAIM_GET,  /* tool.call claim.get */
    MEMORY_SCRIPT_HO_CLAIM,   /* handoff.claim */
    MEMORY_SCRIPT_HO_REPLY,   /* handoff.reply */
    MEMORY_SCRIPT_HO_NOTE,    /* handoff.note */
    MEMORY_SCRIPT_HO_RELEASE, /* handoff.release */
    MEMORY_SCRIPT_COUNT,
} memory_script_id_t;

/* Number of KEYS each script takes (the rest of its arguments are ARGV). */
#define MEMORY_BEGIN_NKEYS      5 /* log, state, idem, lease, ctx */
#define MEMORY_END_NKEYS        6 /* log, state, idem, lease, ctx, traces */
#define MEMORY_ABORT_NKEYS      1 /* lease */
#define MEMORY_GET_NKEYS        2 /* log, state */
#define MEMORY_RENEW_NKEYS      1 /* lease */
#define MEMORY_TRACE_NKEYS      2 /* traces (hash), trace:<turn> (the string of older versions) */
#define MEMORY_CLAIM_REG_NKEYS  3 /* {claims}:seq, {claims}:idem, {claims}:records */
#define MEMORY_CLAIM_GET_NKEYS  1 /* {claims}:records */
#define MEMORY_HO_CLAIM_NKEYS   1 /* state */
#define MEMORY_HO_REPLY_NKEYS   4 /* log, state, ctx, hidem:<message_id> */
#define MEMORY_HO_NOTE_NKEYS    2 /* log, state */
#define MEMORY_HO_RELEASE_NKEYS 2 /* log, state */

/*
 * claim.register gives up (reply {"full"}) after this many sequence numbers
 * that were all taken already (only possible when the seq key was reset).
 */
#define MEMORY_CLAIM_SEQ_TRIES 100

/* Fixed ARGV count of turn.end before the variable part (messages, fields). */
#define MEMORY_END_FIXED_ARGV 9

/*
 * A conversation recorded before the ctx list existed gets its ctx built
 * once from at most this many of the newest log entries (each is decoded in
 * Lua, so the one-time cost inside Redis stays bounded).
 */
#define MEMORY_CTX_REBUILD_MAX 200

/* The script's Lua source (static storage). NULL for an id out of range. */
const char *memory_script_source(memory_script_id_t id);

/* A short name for logs ("turn.begin", ...). Never NULL. */
const char *memory_script_name(memory_script_id_t id);

#endif
