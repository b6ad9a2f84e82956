/*
 * mesh_worker.h - the worker side of the broker protocol, shared by every
 * worker service (llm, tools, memory).
 *
 * A worker connects one DEALER socket to every router backend endpoint it is
 * given, sends READY with its service name and capacity, heartbeats, and
 * treats a router silent for liveness intervals as dead: it closes that
 * socket and reconnects on a new one after a capped exponential backoff, then
 * sends READY again (18/MDP: on DISCONNECT from the router, the same).
 *
 * Each REQUEST is decoded (mesh_request_decode) and handed to the handler
 * with a request handle. The handler answers later, from the same loop, with
 * zero or more mesh_worker_partial() and exactly one mesh_worker_final(); the
 * handle is freed by final. If the router connection the request came on was
 * reset before the answer, the answer is discarded (the router has already
 * retried or failed the request). A REQUEST beyond the announced capacity is
 * answered at once with MESH_EBUSY. A malformed REQUEST body is answered with
 * MESH_EPROTO when its id can be read, otherwise dropped and logged.
 */
#ifndef MESH_WORKER_H
#define MESH_WORKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "mesh_limits.h"
#include "mesh_msg.h"
#include "mesh_zsock.h"

typedef struct mesh_worker mesh_worker_t;
typedef struct mesh_worker_req mesh_worker_req_t;

typedef struct {
    const char *service;                     /* "llm", "tools", "memory" */
    const char *endpoints[MESH_MAX_ROUTERS]; /* router backend endpoints (borrowed) */
    int n_endpoints;
    uint32_t capacity;         /* requests in flight at once */
    uint64_t heartbeat_ms;     /* MESH_HEARTBEAT_MS */
    uint32_t liveness;         /* MESH_HEARTBEAT_LIVENESS */
    uint64_t reconnect_min_ms; /* MESH_RECONNECT_MIN_MS */
    uint64_t reconnect_max_ms; /* MESH_RECONNECT_MAX_MS */
    mesh_zsock_opts_t zopts;
} mesh_worker_opts_t;

/* The request is borrowed by the handler until mesh_worker_final(). */
typedef void (*mesh_worker_handler_fn)(mesh_worker_t *w, mesh_worker_req_t *req,
                                       const mesh_request_t *msg, void *arg);

mesh_worker_t *mesh_worker_new(uv_loop_t *loop, void *zctx, const mesh_worker_opts_t *opts,
                               mesh_worker_handler_fn handler, void *arg);

/* Connect to every endpoint and announce READY (unless set_ready(false) was called). */
int mesh_worker_start(mesh_worker_t *w);

/*
 * Ready is true by default. Setting it false sends DISCONNECT to every router
 * (so no new work is routed here, e.g. while Redis is down) and stops
 * re-announcing; setting it true again reconnects and sends READY.
 */
void mesh_worker_set_ready(mesh_worker_t *w, bool ready);

/* The request as received (valid until final). */
const mesh_request_t *mesh_worker_req_msg(const mesh_worker_req_t *req);

/* Milliseconds left before the request's deadline (0 when past). */
uint64_t mesh_worker_req_remaining_ms(const mesh_worker_req_t *req);

/* Send a PARTIAL with data (borrowed). 0, MESH_ECANCELED (connection reset) or MESH_EIO. */
int mesh_worker_partial(mesh_worker_req_t *req, const json_t *data);

/*
 * Send the FINAL (status 0 or MESH_E*, errmsg may be NULL, data borrowed, may
 * be NULL) and free req. Always frees req; returns 0 or MESH_ECANCELED/EIO.
 */
int mesh_worker_final(mesh_worker_req_t *req, int status, const char *errmsg, const json_t *data);

/* Requests currently held by the handler. */
uint32_t mesh_worker_inflight(const mesh_worker_t *w);

/*
 * Drain: send DISCONNECT to every router (no new work), then call done_cb
 * once every in-flight request got its final or after grace_ms, whichever is
 * first. Requests still open then are finalled with MESH_EUNAVAIL.
 */
void mesh_worker_drain(mesh_worker_t *w, uint64_t grace_ms,
                       void (*done_cb)(mesh_worker_t *, void *), void *arg);

/*
 * Close sockets and timers and free. Open requests are dropped. NULLs *w_p.
 * (Transport notes: a request the handler still holds stays valid and must
 * still be passed to mesh_worker_final(), which frees it and returns
 * MESH_ECANCELED. The worker's memory is released from its timers' close
 * callbacks, so the loop must run once more, as for mesh_uvzmq_close.)
 */
void mesh_worker_destroy(mesh_worker_t **w_p);

/* ------------------------------------------------------------------------
 * CANCEL (2026-11-29, stream engineer; docs/protocol/mesh-mdp.md).
 * A router sends CANCEL {v, id} when the requester gave up on a request.
 * fn is called (on the loop) for a request the handler still holds that
 * came from that router; the handler should stop its work and must still
 * call mesh_worker_final() for it soon. After the CANCEL,
 * mesh_worker_partial() sends nothing and returns MESH_ECANCELED, and
 * mesh_worker_final() returns MESH_ECANCELED and sends only a data-less
 * FINAL with status canceled, which the router uses to free the worker's
 * capacity slot and never relays. Without a handler (fn NULL, the default)
 * CANCEL is ignored and the request runs to its normal end.
 * ------------------------------------------------------------------------ */
void mesh_worker_set_cancel_handler(mesh_worker_t *w,
                                    void (*fn)(mesh_worker_t *, mesh_worker_req_t *, void *),
                                    void *arg);

/* true once a CANCEL arrived for req (for handlers that poll instead). */
bool mesh_worker_req_canceled(const mesh_worker_req_t *req);

#endif
