/*
 * mesh_client.h - the client side of the broker protocol (used by the
 * gateway, the load generator and tests).
 *
 * One DEALER socket per router frontend endpoint. Heartbeats both ways; a
 * router silent for liveness intervals is marked down (its socket is replaced
 * after backoff) and its in-flight requests complete with MESH_EUNAVAIL.
 *
 * Routing: a request with a conversation id goes to the live router chosen by
 * hashing the id over the configured endpoints (skipping dead ones), so one
 * conversation normally stays on one router; requests without one go round
 * robin. With no live router, mesh_client_request() returns MESH_ENOWORKER.
 *
 * Each request has a local timer at its deadline (+ a small grace): if no
 * FINAL arrived by then the callback gets MESH_ETIMEDOUT and a later FINAL is
 * ignored.
 */
#ifndef MESH_CLIENT_H
#define MESH_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "mesh_limits.h"
#include "mesh_msg.h"
#include "mesh_zsock.h"

typedef struct mesh_client mesh_client_t;

typedef struct {
    const char *endpoints[MESH_MAX_ROUTERS]; /* router frontend endpoints (borrowed) */
    int n_endpoints;
    uint64_t heartbeat_ms;
    uint32_t liveness;
    uint64_t reconnect_min_ms;
    uint64_t reconnect_max_ms;
    mesh_zsock_opts_t zopts;
} mesh_client_opts_t;

/*
 * Reply callback: final is false for a PARTIAL, true for the FINAL (last
 * call for this request). rep is borrowed for the call. Local failures
 * (deadline, router lost) arrive as a FINAL with rep->status set and rep->data NULL.
 */
typedef void (*mesh_client_cb)(mesh_client_t *c, bool final, const mesh_reply_t *rep, void *arg);

mesh_client_t *mesh_client_new(uv_loop_t *loop, void *zctx, const mesh_client_opts_t *opts);
int mesh_client_start(mesh_client_t *c);

/*
 * Send req (req->id is filled with a fresh id if empty; deadline_ms must be
 * set) to service. On 0 the callback will be called one or more times, the
 * last with final=true, unless mesh_client_cancel() is called first.
 * Returns 0, MESH_ENOWORKER (no live router), MESH_EINVAL, MESH_EBUSY.
 * *handle (if non-NULL) receives an id for mesh_client_cancel.
 * (Transport note: also MESH_ENOMEM, and MESH_EIO when the router's socket
 * failed; MESH_EINVAL covers an id that is already in flight. Never 0 for a
 * handle; the callback is never called when the return is not 0.)
 */
int mesh_client_request(mesh_client_t *c, const char *service, const mesh_request_t *req,
                        mesh_client_cb cb, void *arg, uint64_t *handle);

/* Forget a request: its callback is never called again. Safe with stale handles.
 * (CANCEL, 2026-11-29: also sends a best-effort CANCEL {v, id} to the router the
 * request went to, so the router drops it from its queue, sends the worker a
 * CANCEL, or cancels the agent turn; nothing is answered for it.) */
void mesh_client_cancel(mesh_client_t *c, uint64_t handle);

/* Number of routers currently considered alive. */
int mesh_client_routers_alive(const mesh_client_t *c);

/* Requests in flight. */
uint32_t mesh_client_inflight(const mesh_client_t *c);

/*
 * Fail all in-flight requests with MESH_ECANCELED, close sockets and free. NULLs *c_p.
 * (Transport note: the memory is released from the timers' close callbacks,
 * so the loop must run once more, as for mesh_uvzmq_close.)
 */
void mesh_client_destroy(mesh_client_t **c_p);

#endif
