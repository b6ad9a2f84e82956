/*
 * broker_int.h - internals shared by the broker's files (broker.c,
 * broker_req.c, broker_backend.c, broker_frontend.c). Not for other modules.
 */
#ifndef ROUTER_BROKER_INT_H
#define ROUTER_BROKER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker.h"
#include "heap.h"
#include "list.h"
#include "mesh/mesh_heartbeat.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_proto.h"
#include "mesh/mesh_uvzmq.h"
#include "ratelog.h"
#include "service_pool.h"
#include "strmap.h"

typedef enum {
    REQ_QUEUED = 1,   /* waiting in its pool's queue */
    REQ_INFLIGHT = 2, /* sent to req->worker */
} router_req_state_t;

typedef struct router_req {
    router_list_t link;       /* pool queue or worker->reqs */
    router_heap_node_t hnode; /* deadline heap (key = next expiry to check) */
    router_pool_t *pool;
    router_worker_t *worker; /* when REQ_INFLIGHT */
    router_req_state_t state;
    uint64_t deadline;    /* absolute ms */
    uint64_t enqueued_at; /* when it last entered the queue */
    bool retried;         /* already re-dispatched once after a worker loss */
    bool orphan;          /* answered already; only holds the worker slot */
    mesh_request_t msg;   /* owned; msg.id is the key of b->reqs */
    size_t id_len;
    /* completion: a callback (agent loop) or a client identity (forwarded) */
    router_reply_cb cb;
    void *arg;
    bool forwarded;
    unsigned char client[ROUTER_IDENTITY_MAX];
    size_t client_len;
} router_req_t;

typedef struct router_client {
    unsigned char identity[ROUTER_IDENTITY_MAX];
    size_t identity_len;
    mesh_hb_t hb;
} router_client_t;

struct router_broker {
    uv_loop_t *loop;
    void *zctx;
    router_broker_opts_t opts;
    char frontend[MESH_ENDPOINT_MAX + 1];
    char backend[MESH_ENDPOINT_MAX + 1];
    size_t max_body;

    mesh_uvzmq_t *front;
    mesh_uvzmq_t *back;
    uv_timer_t *deadline_timer; /* heap-allocated: freed in its close callback */
    uint64_t deadline_armed;    /* key the timer is armed for, 0 = not armed */
    uv_timer_t *hb_timer;
    uv_idle_t *idle; /* runs deferred dispatch of dirty pools */
    router_list_t dirty_pools;

    router_map_t *workers; /* identity -> router_worker_t */
    router_map_t *clients; /* identity -> router_client_t */
    router_map_t *pools;   /* service name -> router_pool_t */
    router_map_t *reqs;    /* request id -> router_req_t */
    router_heap_t deadlines;

    router_agent_fn agent_fn;
    void *agent_arg;
    bool draining;
    size_t forwarded; /* forwarded client requests not yet answered */

    router_ratelog_t bad_front;
    router_ratelog_t bad_back;
};

/* broker.c */
uint64_t router__now(const router_broker_t *b);
/* Send one message on s to identity: frames after the identity come from
 * mesh_proto_frames. 0 or a MESH_E* from mesh_uvzmq_send / MESH_EINVAL. */
int router__send(mesh_uvzmq_t *s, const void *ident, size_t ident_len, mesh_side_t side,
                 uint8_t cmd, const char *service, const void *body, size_t body_len);
int router__send_worker(router_broker_t *b, router_worker_t *w, uint8_t cmd, const void *body,
                        size_t body_len);
/* Re-arm the deadline timer for the heap's earliest key (call after heap changes). */
void router__arm_deadlines(router_broker_t *b);
/* Log one sanitised line about a dropped message, rate limited per side. */
void router__log_bad(router_broker_t *b, mesh_side_t side, const mesh_frame_t *frames, size_t n,
                     const char *reason);
/* Record that something was sent to a client (its heartbeat can wait). */
void router__client_sent(router_broker_t *b, const void *ident, size_t len);
router_client_t *router__client_touch(router_broker_t *b, const void *ident, size_t len,
                                      bool *created);

/* broker_req.c */
/* Find or create the pool for a service. NULL when ROUTER_SERVICES_MAX is reached or ENOMEM. */
router_pool_t *router__pool_get(router_broker_t *b, const char *name, size_t len, bool create);
/* Free the pool if it has no workers and nothing queued. */
void router__pool_gc(router_broker_t *b, router_pool_t *p);
/* Forward a decoded client REQUEST to a worker service (takes msg->args on 0).
 * 0, MESH_EINVAL (id in use), MESH_EBUSY, MESH_ENOWORKER or MESH_ENOMEM. */
int router__forward(router_broker_t *b, const void *client, size_t client_len, const char *service,
                    size_t service_len, mesh_request_t *msg);
/* Dispatch queued requests of p to workers with free capacity (now). */
void router__dispatch(router_broker_t *b, router_pool_t *p);
/* Dispatch p from the idle hook, after the current callback returned. Used
 * where a callback must not run inside the caller (router_broker_submit). */
void router__dispatch_later(router_broker_t *b, router_pool_t *p);
/* The idle hook: dispatch every dirty pool. */
void router__dispatch_dirty(router_broker_t *b);
/* Complete req with a broker-made FINAL (status, msg) and free it. */
void router__req_fail(router_broker_t *b, router_req_t *req, int status, const char *msg);
/* Deliver a worker PARTIAL/FINAL (body already decoded into rep; raw body for forwarding). */
void router__req_reply(router_broker_t *b, router_req_t *req, bool final, mesh_reply_t *rep,
                       const void *body, size_t body_len);
/* Remove a worker: retry or fail its requests, free it, dispatch. */
void router__worker_remove(router_broker_t *b, router_worker_t *w, const char *why);
/* Process every deadline that is due. */
void router__expire(router_broker_t *b);
/* Free a request that is detached from every structure. */
void router__req_free(router_req_t *req);

/* broker_backend.c */
void router__backend_recv(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n, void *arg);

/* broker_frontend.c */
void router__frontend_recv(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n, void *arg);

#endif
