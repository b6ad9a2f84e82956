/*
 * agent_lease.c - keeping the conversation lease of a running turn alive.
 *
 * turn.begin takes the conversation's lease for lease_ms (MESH_LEASE_MS,
 * capped at the turn's remaining time). From its success until the turn is
 * recorded (turn.end answered) or aborted, the turn sends memory
 * lease.renew every lease_ms / ROUTER_LEASE_RENEW_DIVISOR. The lease is
 * short so that a router that dies mid-turn blocks its conversation for at
 * most lease_ms; the renewals let a live turn run as long as its deadline.
 *
 * Outcome of a renewal:
 *   held                       -> nothing to do;
 *   the request failed (memory unavailable, no worker, deadline)
 *                              -> tried again at the next tick; the turn
 *                                 goes on and turn.end decides (it refuses to
 *                                 write only when another owner holds the
 *                                 lease);
 *   not held, nobody holds it  -> the lease lapsed but no other turn took the
 *                                 conversation: go on likewise;
 *   not held, another owner    -> the lease is lost: another router runs a
 *                                 turn on this conversation now. The turn
 *                                 stops at once without recording anything
 *                                 (client: MESH_EUNAVAIL, retry the message;
 *                                 memory: turn.abort, which keeps the
 *                                 message pending). While turn.end is in
 *                                 flight it decides instead.
 * At most one renewal per turn is in flight; a tick that finds the previous
 * one still unanswered skips.
 */
#include "agent_turn.h"

#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

#define LOG_SUB "agent"

static uint64_t renew_interval(const router_turn_t *t)
{
    uint64_t iv = t->al->opts.lease_ms / ROUTER_LEASE_RENEW_DIVISOR;
    return iv > 0 ? iv : 1;
}

uint64_t router__lease_ms(const router_turn_t *t)
{
    uint64_t lease = t->al->opts.lease_ms > 0 ? t->al->opts.lease_ms : 1;
    uint64_t now = router__turn_now(t);
    uint64_t left = t->deadline > now ? t->deadline - now : 1;
    return lease < left ? lease : left;
}

static void schedule(router_turn_t *t)
{
    router_agent_loop_t *al = t->al;
    uint64_t at = router__turn_now(t) + renew_interval(t);
    if (router_heap_contains(&t->rnode))
        router_heap_update(&al->renewals, &t->rnode, at);
    else if (router_heap_push(&al->renewals, &t->rnode, at) != 0)
        /* The lease then lapses after lease_ms; turn.end still decides safely. */
        mesh_log_error(LOG_SUB, "conv %s: out of memory scheduling a lease renewal", t->req.conv);
    router__loop_arm(al);
}

void router__lease_start(router_turn_t *t)
{
    schedule(t);
}

void router__lease_stop(router_turn_t *t)
{
    router_heap_remove(&t->al->renewals, &t->rnode);
    if (t->renew_id[0]) {
        router_broker_cancel(t->al->broker, t->renew_id);
        t->renew_id[0] = '\0';
    }
    router__loop_arm(t->al);
}

static void renew_cb(router_reply_kind_t kind, mesh_reply_t *rep, void *arg)
{
    router_turn_t *t = arg;
    if (kind != ROUTER_REPLY_FINAL)
        return;
    t->renew_id[0] = '\0';
    if (rep->status != 0) {
        char why[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(rep->err, strnlen(rep->err, sizeof(rep->err)), why, sizeof(why));
        mesh_log_warn(LOG_SUB, "conv %s message %s: lease.renew failed: %s (%s); retrying",
                      t->req.conv, t->message_id, mesh_err_name(rep->status), why);
        return;
    }
    if (json_is_true(json_object_get(rep->data, "held")))
        return;
    const char *holder = json_string_value(json_object_get(rep->data, "holder"));
    if (!holder || strcmp(holder, t->owner) == 0) {
        mesh_log_warn(LOG_SUB,
                      "conv %s message %s: lease lapsed (no other holder); going on, turn.end "
                      "decides",
                      t->req.conv, t->message_id);
        return;
    }
    if (t->state == TURN_END)
        return; /* turn.end is in flight: its answer decides (it may have released the lease) */
    mesh_log_warn(LOG_SUB, "conv %s message %s: lease lost to another turn; stopping unrecorded",
                  t->req.conv, t->message_id);
    router__turn_fail(t, MESH_EUNAVAIL, ROUTER_LEASE_LOST_MSG, true);
}

void router__lease_tick(router_turn_t *t)
{
    schedule(t);
    if (t->renew_id[0])
        return; /* the previous renewal is still unanswered */
    uint64_t now = router__turn_now(t);
    if (now >= t->deadline)
        return; /* the deadline wake-up ends the turn */
    /* Answered (or timed out) before the next tick. */
    uint64_t iv = renew_interval(t);
    uint64_t wait = iv - iv / 4;
    uint64_t left = t->deadline - now;
    json_t *args =
        json_pack("{s:s, s:I}", "owner", t->owner, "lease_ms", (json_int_t)router__lease_ms(t));
    int rc = router__turn_submit(t, "memory", "lease.renew", args, true, wait < left ? wait : left,
                                 renew_cb, t, t->renew_id);
    if (rc) {
        mesh_log_warn(LOG_SUB, "conv %s message %s: lease.renew not sent: %s; retrying",
                      t->req.conv, t->message_id, mesh_err_name(rc));
        return;
    }
    t->renewals++;
    mesh_log_debug(LOG_SUB, "conv %s message %s: lease.renew #%u", t->req.conv, t->message_id,
                   (unsigned)t->renewals);
}
