/*
 * broker.h - the router's broker: two ROUTER sockets (frontend for clients,
 * backend for workers), worker pools, request queues, deadlines, heartbeats.
 *
 * Protocol: include/mesh/mesh_proto.h and docs/protocol/mesh-mdp.md; the
 * router-specific behaviour is described in docs/router.md.
 *
 * Requests reach workers from two sources that share one machinery
 * (queue, dispatch, deadline, retry):
 *   - client REQUESTs for a worker service ("memory", "tools", "llm", ...)
 *     are forwarded as they are and the worker's PARTIAL/FINAL go back to the
 *     client identity (the broker role);
 *   - the agent loop submits requests with router_broker_submit() and gets
 *     its replies through a callback.
 * Client REQUESTs for service "agent" are handed to the agent handler;
 * "mmi.service" is answered by the broker itself.
 *
 * Every function runs on the loop thread; callbacks are called from it.
 */
#ifndef ROUTER_BROKER_H
#define ROUTER_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mesh/mesh_msg.h"
#include "mesh/mesh_zsock.h"

/* Service names handled inside the router. */
#define ROUTER_SERVICE_AGENT       "agent"
#define ROUTER_SERVICE_MMI_PREFIX  "mmi."
#define ROUTER_SERVICE_MMI_SERVICE "mmi.service"

/* Distinct service pools (with or without workers) the broker keeps. */
#define ROUTER_SERVICES_MAX 256
/* Clients tracked for heartbeats at once. */
#define ROUTER_CLIENTS_MAX 65536
/* Requests queued or in flight in the broker at once (all services): a
 * bound on memory whatever the clients send; beyond it MESH_EBUSY. */
#define ROUTER_REQUESTS_MAX 262144
/* Workers registered at once. */
#define ROUTER_WORKERS_MAX 65536
/* How long a request answered early (deadline, cancel) keeps its worker
 * slot while the worker may still be running it, unless its FINAL comes first. */
#define ROUTER_ORPHAN_GRACE_MS 5000

typedef struct router_broker router_broker_t;

typedef struct {
    const char *frontend;    /* bind endpoint for clients */
    const char *backend;     /* bind endpoint for workers */
    uint64_t heartbeat_ms;   /* MESH_HEARTBEAT_MS */
    uint32_t liveness;       /* MESH_HEARTBEAT_LIVENESS */
    uint32_t queue_max;      /* MESH_QUEUE_MAX: waiting requests per service */
    uint64_t noworker_ms;    /* MESH_NOWORKER_WAIT_MS */
    mesh_zsock_opts_t zopts; /* socket options; max_msg_size also bounds bodies */
} router_broker_opts_t;

typedef enum {
    ROUTER_REPLY_PARTIAL = 0, /* a PARTIAL from the worker */
    ROUTER_REPLY_FINAL = 1,   /* the FINAL (from the worker or made by the broker); last call */
    ROUTER_REPLY_RETRY = 2,   /* the worker died; the request is being retried elsewhere
                                 (rep is NULL); partials may start over */
} router_reply_kind_t;

/*
 * Reply callback for submitted requests. rep is valid during the call; the
 * callback may take rep->data (set it to NULL). Broker-made FINALs (deadline,
 * no worker, worker lost) have rep->status set and rep->data NULL. After
 * FINAL the request is gone. The callback may call any broker function.
 */
typedef void (*router_reply_cb)(router_reply_kind_t kind, mesh_reply_t *rep, void *arg);

/*
 * Handler for client REQUESTs to service "agent". req is decoded and valid
 * (mesh_request_decode); the handler may take req->args (set it to NULL).
 * It must answer the client exactly once with router_broker_client_reply().
 */
typedef void (*router_agent_fn)(void *arg, const void *client, size_t client_len,
                                mesh_request_t *req);

router_broker_t *router_broker_new(uv_loop_t *loop, void *zctx, const router_broker_opts_t *opts);

/* Bind both sockets and start the timers. 0, MESH_EIO (bind failed) or MESH_ENOMEM. */
int router_broker_start(router_broker_t *b);

void router_broker_set_agent_handler(router_broker_t *b, router_agent_fn fn, void *arg);

/*
 * Submit req to a worker of service. The broker copies req and takes
 * req->args (NULLed) on success. req->id must be set and unique among
 * requests in the broker; req->deadline_ms is relative to now. On 0 the
 * callback will be called (PARTIAL*, RETRY?, then exactly one FINAL), never
 * from inside this call. Returns 0, MESH_EINVAL (bad service or id already
 * in use), MESH_EBUSY (service queue or ROUTER_REQUESTS_MAX full),
 * MESH_ENOWORKER (too many services) or MESH_ENOMEM; on error the callback
 * is never called.
 */
int router_broker_submit(router_broker_t *b, const char *service, mesh_request_t *req,
                         router_reply_cb cb, void *arg);

/* Forget the request with id: its callback is never called again. Safe with stale ids.
 * (CANCEL: a request already at a worker also gets a worker CANCEL.) */
void router_broker_cancel(router_broker_t *b, const char *id);

/*
 * Send a PARTIAL (final=false) or FINAL to a client identity for service.
 * 0, MESH_EUNAVAIL (client gone), MESH_EBUSY, MESH_EINVAL or MESH_EIO.
 */
int router_broker_client_reply(router_broker_t *b, const void *client, size_t client_len,
                               const char *service, bool final, const mesh_reply_t *rep);

/* Convenience: FINAL with status and message (NULL = mesh_strerror) and no data. */
int router_broker_client_error(router_broker_t *b, const void *client, size_t client_len,
                               const char *service, const char *id, int status, const char *msg);

/* Draining: new client REQUESTs (any service) are answered with MESH_EUNAVAIL. */
void router_broker_set_draining(router_broker_t *b, bool draining);
bool router_broker_draining(const router_broker_t *b);

/* Forwarded client requests not yet answered (the agent loop's are not counted). */
size_t router_broker_forwarded(const router_broker_t *b);

/* Workers currently registered for service. */
uint32_t router_broker_workers(const router_broker_t *b, const char *service);

/* One worker service's state, for metrics (router_metrics.c). */
typedef struct {
    const char *service; /* the pool's name, valid during the callback */
    size_t queued;       /* requests waiting for capacity */
    uint32_t workers;    /* live workers */
    uint64_t capacity;   /* sum of their announced capacity */
    uint64_t in_use;     /* requests in flight on them */
} router_pool_stats_t;

/* Call fn once per worker service pool. fn must not change the broker. */
void router_broker_pool_stats(const router_broker_t *b,
                              void (*fn)(const router_pool_stats_t *st, void *arg), void *arg);

/* Send DISCONNECT to every worker and every live client and forget the workers. */
void router_broker_disconnect_all(router_broker_t *b);

/* Current time of the broker's clock (the loop's ms clock). */
uint64_t router_broker_now(const router_broker_t *b);

/*
 * Close the sockets and timers and free everything. Requests still queued
 * or in flight are freed WITHOUT calling their callbacks (destroy the agent
 * loop first; it cancels its own). NULLs *b_p. Safe on NULL. The loop must
 * run once more to finish closing handles.
 */
void router_broker_destroy(router_broker_t **b_p);

/* ------------------------------------------------------------------------
 * CANCEL (2026-11-29, stream engineer; docs/protocol/mesh-mdp.md section 6.1).
 * ------------------------------------------------------------------------ */

/*
 * A client's CANCEL for a request it forwarded to a worker service: a queued
 * request is dropped, one at a worker gets the worker CANCEL; no FINAL is
 * sent to the client for it. 0, MESH_ENOTFOUND (no such request from this
 * client: finished, unknown, or another client's) or MESH_EINVAL.
 */
int router_broker_cancel_client(router_broker_t *b, const void *client, size_t client_len,
                                const char *id);

#endif
