/*
 * agent_turn.h - the turn record shared by agent_loop.c (lifecycle, order,
 * deadlines, memory, answers) and agent_steps.c (llm and tool steps).
 */
#ifndef ROUTER_AGENT_TURN_H
#define ROUTER_AGENT_TURN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/mesh_json.h"
#include "mesh/mesh_limits.h"
#include "agent_loop.h"
#include "convctx.h"
#include "convq.h"
#include "heap.h"
#include "list.h"
#include "mesh/mesh_trace.h"
#include "service_pool.h"

/* The client's error when the turn lost its conversation lease (a lease.renew
 * saw another owner, or turn.end refused to write): nothing was recorded and
 * the message is still pending, so a retry answers it. */
#define ROUTER_LEASE_LOST_MSG                                                                      \
    "conversation lease lost: another router took the conversation over; nothing was recorded, "   \
    "retry the message"

/* Significant digits of reals in a tool message's JSON text. */
#define ROUTER_TOOL_REAL_PRECISION 15

/* Our request ids: 32 hex chars from mesh_id_new. */
#define ROUTER_REQ_ID_LEN 32

/* Bounds of the conversation state the router writes (contracts: state hash). */
#define ROUTER_SLOTS_MAX   (16 * 1024) /* bytes of "slots" as compact JSON */
#define ROUTER_RECORDS_MAX (64 * 1024) /* bytes of "records" as compact JSON */
#define ROUTER_MODE_MAX    32          /* bytes of "mode" */
/* Bytes of streamed text a turn keeps to record it when the client cancels. */
#define ROUTER_STREAMED_MAX MESH_TEXT_MAX
/* First size of that buffer. */
#define ROUTER_STREAMED_INITIAL 1024
/* Bytes of the model name kept from an llm FINAL. */
#define ROUTER_MODEL_MAX 128

/* The tool-result JSON buffer is kept between steps unless it grew past this. */
#define ROUTER_JSON_KEEP_MAX (256 * 1024)

typedef enum {
    TURN_QUEUED = 0, /* waiting behind another turn of the conversation */
    TURN_BEGIN,      /* memory turn.begin in flight */
    TURN_BACKOFF,    /* lease held elsewhere: waiting to retry turn.begin */
    TURN_LLM,        /* llm.chat in flight */
    TURN_TOOLS,      /* tool.call requests in flight */
    TURN_END,        /* memory turn.end in flight */
    TURN_ABORT,      /* answered; memory turn.abort in flight */
} router_turn_state_t;

typedef struct router_turn router_turn_t;
typedef struct router_early router_early_t; /* agent_early.c */

/* Span records a turn keeps for its timeline (turn.end "trace"); more are
 * exported but left out of the stored timeline. */
#define ROUTER_TRACE_SPANS_MAX 64

/*
 * One sub-request of a turn in flight with its child span: submitted with
 * this as the callback argument, so the span ends when the FINAL arrives.
 * Owned by the turn (t->subs); a cancelled request's entry is freed with
 * the turn, its span then not recorded.
 */
typedef struct router_subreq {
    struct router_subreq *next;
    router_turn_t *turn;
    router_reply_cb cb;
    void *arg;
    mesh_span_t span;
} router_subreq_t;

typedef struct {
    router_turn_t *turn;
    char req_id[ROUTER_REQ_ID_LEN + 1]; /* "" when no request was sent */
    const char *call_id;                /* into turn->calls */
    const char *name;
    json_t *arguments; /* borrowed from turn->calls */
    bool pending;
    bool ok;
    json_t *text;      /* json string: the result or error as JSON text */
    uint64_t start_ns; /* uv_hrtime() when the call was sent (metrics) */
} router_tool_slot_t;

struct router_turn {
    router_agent_loop_t *al;
    router_convq_item_t qitem;
    router_heap_node_t hnode; /* wake-up: deadline, or the end of a backoff */
    router_heap_node_t rnode; /* next lease renewal (al->renewals) while the lease is held */
    router_list_t all;        /* al->turns */
    router_turn_state_t state;

    unsigned char client[ROUTER_IDENTITY_MAX];
    size_t client_len;
    mesh_request_t req; /* the client's request; args owned */
    const char *message_id, *text, *requested_agent;
    bool stream;
    uint64_t deadline; /* absolute ms */
    uint64_t wake_at;  /* end of the lease backoff */
    uint64_t backoff_ms;
    char owner[ROUTER_REQ_ID_LEN + 1]; /* lease owner = turn id */

    router_agents_t *agents; /* the set this turn started with (a reference) */
    const router_agent_t *agent;
    const char *lang;
    json_t *history;      /* from turn.begin */
    json_t *turn_msgs;    /* assistant/tool messages of this turn, in order */
    json_t *tool_summary; /* [{name, ok}] */
    json_t *final_data;   /* the FINAL data once the answer is known */
    int steps;

    char pending_id[ROUTER_REQ_ID_LEN + 1]; /* the one memory/llm request in flight, or "" */
    char renew_id[ROUTER_REQ_ID_LEN + 1];   /* lease.renew in flight, or "" */
    uint32_t renewals;                      /* lease.renew requests sent (debug log) */
    bool started;                           /* "turn start" logged */
    json_t *calls;                          /* the model's tool calls of this step */
    router_tool_slot_t *slots;
    size_t n_slots, slots_pending;

    size_t stream_sent;    /* delta bytes forwarded during this llm call */
    size_t stream_attempt; /* delta bytes seen in the current attempt */
    bool answered;         /* the client got its FINAL */
    uint64_t start_ns;     /* uv_hrtime() when the turn was accepted (metrics) */

    /* tracing: the turn's span (child of the client's traceparent), its
     * sub-requests' spans in flight, and the finished spans' records */
    mesh_span_t span;
    int span_status;       /* the status the client got (0 until failed) */
    router_subreq_t *subs; /* in flight (or cancelled), freed with the turn */
    json_t *trace;         /* array of mesh_span_record_json, at most ROUTER_TRACE_SPANS_MAX */

    /* conversation state (agent_state.c): {slots: {}, mode, records: {},
     * handoff, handoff_reason} as the model and the FINAL see it; the
     * dirty flags say which hash fields turn.end writes. */
    json_t *cstate;
    bool slots_dirty, mode_dirty, records_dirty, handoff_dirty;
    uint64_t handoff_at; /* unix ms, when handoff_dirty */
    /* usage of this turn's llm calls, and the conversation's totals before it */
    uint64_t use_prompt, use_completion;
    double use_cost;
    uint32_t llm_calls; /* llm FINALs with status 0 this turn */
    uint64_t tot_prompt, tot_completion;
    double tot_cost;
    char model[ROUTER_MODEL_MAX + 1]; /* model of the last llm call, "" before */
    json_t *fallback;                 /* {backend|mode, reason} when a fallback answered */

    /* streamed text of the current llm call as the client got it (stream turns) */
    char *streamed;
    size_t streamed_len, streamed_cap;
    bool cancelled; /* the client cancelled: never answered, recorded as interrupted */
    /* how the agent was chosen (static text, FINAL triage.by): "llm", "keywords",
     * "default", "requested", "state" or "switch"; NULL before */
    const char *triage_by;
    /* the first llm.chat started before turn.begin answered (agent_early.c), or NULL */
    router_early_t *early;
};

struct router_agent_loop {
    uv_loop_t *loop;
    router_broker_t *broker;
    router_agents_t *agents;
    router_agent_loop_opts_t opts;
    router_convq_t *convq;
    router_heap_t wakeups;
    router_heap_t renewals; /* turns holding the lease, keyed by their next renewal */
    uv_timer_t *timer;
    uint64_t timer_armed; /* key + 1 the timer is armed for, 0 = not armed */
    router_list_t turns;
    size_t active;
    mesh_jbuf_t jbuf;          /* scratch for tool results' JSON text (one at a time) */
    router_convctx_t *convctx; /* contexts of the conversations this router ran */
};

/* agent_loop.c */
uint64_t router__turn_now(const router_turn_t *t);
/* Arm the loop's one timer for the earliest wake-up or renewal. */
void router__loop_arm(router_agent_loop_t *al);
/* Submit one request of the turn (fresh id into id_out, which may be NULL).
 * args are taken in every case. deadline_ms 0 = the turn's remaining time.
 * The request runs in a child span of the turn's (its traceparent names
 * that span); a turn.end also gets the turn's timeline as args "trace". */
int router__turn_submit(router_turn_t *t, const char *service, const char *op, json_t *args,
                        bool idem, uint64_t deadline_ms, router_reply_cb cb, void *arg,
                        char id_out[ROUTER_REQ_ID_LEN + 1]);
/* Fail the turn: answer the client (once), cancel what is in flight, and
 * abort in memory when abort is true; the turn finishes afterwards. */
void router__turn_fail(router_turn_t *t, int status, const char *msg, bool abort);
/* The model answered with text (a json string, borrowed; referenced by what
 * the turn keeps): record the turn (turn.end) and answer. */
void router__turn_complete(router_turn_t *t, json_t *text);
/* Send a PARTIAL {delta} to a streaming client. */
void router__turn_partial(router_turn_t *t, const char *delta, size_t len);

/* agent_lease.c */
/* The lease_ms to ask for now: MESH_LEASE_MS, capped at the turn's remaining
 * time (a lease never outlives the turn that holds it); at least 1. */
uint64_t router__lease_ms(const router_turn_t *t);
/* turn.begin took the lease: renew it every lease_ms/3 from now on. */
void router__lease_start(router_turn_t *t);
/* Stop renewing (no-op when not renewing): drop the tick, cancel a renewal in flight. */
void router__lease_stop(router_turn_t *t);
/* A renewal is due (called by the loop's timer; t->rnode is already out of the heap). */
void router__lease_tick(router_turn_t *t);

/* Send a PARTIAL with data (borrowed) to a streaming client; no-op otherwise. */
void router__turn_partial_data(router_turn_t *t, json_t *data);
/* Send the turn's messages and state with turn.end; final_data is set. */
void router__turn_record(router_turn_t *t);

/* agent_state.c */
/* Take the conversation state from turn.begin's state hash (str -> str).
 * Unreadable slots/records JSON is logged and read as {}. 0 or MESH_ENOMEM. */
int router__state_load(router_turn_t *t, const json_t *hash);
/* "pending" / "human" when the conversation is handed over, else NULL. */
const char *router__state_handoff(const router_turn_t *t);
/* Hand the conversation over (handoff = pending, reason, handoff_at = now);
 * a streaming client gets PARTIAL {handoff: {state, reason}}. 0 or MESH_ENOMEM. */
int router__state_set_handoff(router_turn_t *t, const char *reason);
/* Run the router-local tool state.update with (schema-valid) arguments:
 * *ok and *text (a json string: the result or the tool error as JSON text).
 * 0 or MESH_ENOMEM. */
int router__state_update(router_turn_t *t, const json_t *arguments, bool *ok, json_t **text);
/* Count one llm FINAL's usage/model/fallback (data borrowed). */
void router__state_llm_usage(router_turn_t *t, const json_t *data);
/* The state fields turn.end writes (agent included). NULL on ENOMEM. */
json_t *router__state_fields(router_turn_t *t);
/* The state of a conversation with no state hash yet (what router__state_load
 * makes of an empty hash). NULL on ENOMEM. */
json_t *router__state_empty(void);
/* Add usage, model, state, handoff and fallback to a FINAL's data. 0 or MESH_ENOMEM. */
int router__state_final_extras(router_turn_t *t, json_t *data);

/* agent_early.c (docs/router.md, "Early start") */
/* Before turn.begin: predict the first llm.chat's args from the cached
 * context (or, for a conversation never seen, an empty one) and send it now;
 * its replies are held until claimed. No-op when off or nothing to predict. */
void router__early_start(router_turn_t *t);
/* The turn's first llm.chat is ready with args (built from memory's
 * answer): when an early call was sent with equal args, adopt it (its held
 * replies go to cb now, later ones as they come; t->pending_id names it),
 * free args and return true. Otherwise cancel any early call, return false
 * (args still the caller's). */
bool router__early_claim(router_turn_t *t, json_t *args, router_reply_cb cb, void *arg);
/* Cancel an unclaimed early call and free the record (no-op without one). */
void router__early_drop(router_turn_t *t);
/* The turn was recorded: remember the conversation's context for the next turn. */
void router__early_remember(router_turn_t *t);
/* The conversation's stored context is unknown now (failed or aborted turn). */
void router__early_forget(router_turn_t *t);

/* agent_steps.c */
/* The llm.chat args of one step: the agent's prompt in lang, its tools, the
 * messages (history then turn_msgs, each projected to what the model reads:
 * role, text, name, tool_call_id, ok, tool_calls), a copy of cstate. Early
 * start compares these, so both paths must build them here. NULL on ENOMEM. */
json_t *router__llm_args(const router_agent_t *ag, const char *lang, const json_t *history,
                         const json_t *turn_msgs, const json_t *cstate, bool stream);
/* A message as the model reads it (see router__llm_args). NULL on ENOMEM. */
json_t *router__llm_message(const json_t *m);

/* agent_triage.c */
/* The agent a turn gets, decided without side effects: the state's agent
 * (or a switch phrase's), else for a new conversation NULL when the model
 * must be asked (triage_llm and no valid requested agent), else requested,
 * keywords, default. *by says how. */
const router_agent_t *router__agent_pick(const router_agents_t *a, const char *state_agent,
                                         const char *text, const char *requested, bool triage_llm,
                                         const char **by);
/* Choose the turn's agent (t->agent, t->triage_by), then run its first step.
 * A new conversation without a valid requested agent asks the model first
 * when MESH_TRIAGE is "llm" (docs/router.md, "Triage"). */
void router__turn_choose(router_turn_t *t, const char *state_agent);
/* The agent of a gated turn (no model is called): the state's agent, no
 * switch; a new conversation: requested, keywords, default. */
void router__turn_choose_gated(router_turn_t *t, const char *state_agent);

/* Ask the model (one step). */
void router__turn_llm(router_turn_t *t);
/* The client cancelled a turn in TURN_LLM / TURN_TOOLS: cancel its tool
 * requests and add what it has to t->turn_msgs (the current step's calls
 * with their results, running ones as "cancelled" errors; or the text
 * streamed so far as an assistant message {interrupted: true}). True when
 * there is anything to record. */
bool router__turn_interrupt(router_turn_t *t);
/* Cancel tool requests still in flight and free the slots. */
void router__turn_tools_cancel(router_turn_t *t);

#endif
