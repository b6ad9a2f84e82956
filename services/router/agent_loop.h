/*
 * agent_loop.h - the agent loop: one non-blocking state machine per turn
 * (docs/router.md, "A turn").
 *
 *   QUEUED -> BEGIN (memory turn.begin) [-> BACKOFF -> BEGIN while the lease is held]
 *          -> LLM (llm.chat) <-> TOOLS (tools tool.call, in parallel)
 *          -> END (memory turn.end) -> FINAL to the client
 *   from BEGIN's success to the end: memory lease.renew every lease_ms/3
 *   any failure -> FINAL with the error to the client -> ABORT (memory turn.abort)
 *
 * Turns of one conversation run one at a time in arrival order (convq.h).
 * All requests of a turn carry its conversation, tenant, traceparent and
 * the remaining deadline, and go through the broker's shared machinery.
 */
#ifndef ROUTER_AGENT_LOOP_H
#define ROUTER_AGENT_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agents.h"
#include "broker.h"

/* Turns accepted at once (running + waiting) before new ones get MESH_EBUSY. */
#define ROUTER_TURNS_MAX 100000
/* Tool calls the model may ask for in one step. */
#define ROUTER_TOOL_CALLS_MAX 8
/* Assistant/tool messages one turn may record (the memory service's bound). */
#define ROUTER_TURN_MESSAGES_MAX 64
/* Deadline of the best-effort turn.abort sent after a failure. */
#define ROUTER_ABORT_DEADLINE_MS 2000
/*
 * The conversation lease (memory turn.begin / lease.renew) lives lease_ms
 * (MESH_LEASE_MS) and is renewed every lease_ms / ROUTER_LEASE_RENEW_DIVISOR
 * while the turn runs, so a router that dies mid-turn blocks its
 * conversation for at most lease_ms, while a live turn keeps it however
 * long it runs (two renewals may fail before it lapses).
 */
#define ROUTER_LEASE_RENEW_DIVISOR 3
/* Backoff while another router holds the conversation lease. */
#define ROUTER_LEASE_BACKOFF_MIN_MS 20
#define ROUTER_LEASE_BACKOFF_MAX_MS 500

typedef struct router_agent_loop router_agent_loop_t;

typedef struct {
    uint32_t conv_queue_max; /* MESH_CONV_QUEUE_MAX */
    uint32_t history_window; /* MESH_HISTORY_WINDOW */
    uint32_t lease_ms;       /* MESH_LEASE_MS (>= 1) */
    /* MESH_TRIAGE=llm: a new conversation's agent is asked of the model
     * (tier MESH_TRIAGE_TIER, at most MESH_TRIAGE_TIMEOUT_MS) before keywords */
    bool triage_llm;
    const char *triage_tier;    /* NULL = "small"; must outlive the loop */
    uint32_t triage_timeout_ms; /* 0 = the default */
    /* MESH_EARLY_START: start a turn's first model call before memory
     * answers turn.begin (docs/router.md, "Early start") */
    int early_start;      /* ROUTER_EARLY_* */
    uint32_t context_max; /* MESH_CONTEXT_CACHE: conversations whose context is kept */
} router_agent_loop_opts_t;

/* MESH_EARLY_START values. */
enum {
    ROUTER_EARLY_OFF = 0, /* every model call waits for turn.begin */
    ROUTER_EARLY_CACHED,  /* early only for conversations whose context this router keeps */
    ROUTER_EARLY_ON,      /* also for conversations this router never saw (probably new) */
};

/* Defaults of the triage options. */
#define ROUTER_TRIAGE_TIER_DEFAULT       "small"
#define ROUTER_TRIAGE_TIMEOUT_MS_DEFAULT 5000

/* agents: a reference is taken. NULL on ENOMEM. */
router_agent_loop_t *router_agent_loop_new(uv_loop_t *loop, router_broker_t *b,
                                           router_agents_t *agents,
                                           const router_agent_loop_opts_t *opts);

/* Swap in a new agent set (a reference is taken); running turns keep theirs. */
void router_agent_loop_set_agents(router_agent_loop_t *al, router_agents_t *agents);

/* The router_agent_fn for the broker: one client REQUEST to service "agent". */
void router_agent_loop_handle(void *al, const void *client, size_t client_len, mesh_request_t *req);

/*
 * The client cancelled its turn id (protocol CANCEL for service "agent";
 * client is its identity). The client is never answered. A turn still
 * waiting (queued, or backing off before it got the lease) is dropped; one
 * whose turn.begin is in flight is aborted (turn.abort releases the lease,
 * the message stays pending); a running one cancels its llm/tool requests
 * and records with turn.end what it has: this turn's tool messages and the
 * text already streamed as an assistant message {"interrupted": true} (the
 * FINAL data stored for duplicates carries "interrupted": true); with
 * nothing to record it is aborted. A turn already recording (turn.end in
 * flight) finishes silently. Unknown ids are ignored. Finds the turn by a
 * scan of the running turns (cancels are rare).
 */
void router_agent_loop_cancel(router_agent_loop_t *al, const void *client, size_t client_len,
                              const char *id);

/* Turns accepted and not yet finished (answered and recorded/aborted). */
size_t router_agent_loop_active(const router_agent_loop_t *al);

/*
 * Answer every turn that has not been answered with status/msg and forget
 * all turns (their broker requests are cancelled; no memory calls). Used
 * when the drain grace runs out.
 */
void router_agent_loop_fail_all(router_agent_loop_t *al, int status, const char *msg);

/* fail_all(MESH_EUNAVAIL) semantics without answering, then free. NULLs *al_p. */
void router_agent_loop_destroy(router_agent_loop_t **al_p);

#endif
