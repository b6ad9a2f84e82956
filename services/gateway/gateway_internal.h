/*
 * gateway_internal.h - what gateway.c and the route files share.
 */
#ifndef GATEWAY_GATEWAY_INTERNAL_H
#define GATEWAY_GATEWAY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway.h"
#include "gw_buf.h"
#include "http_conn.h"
#include "http_server.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_msg.h"

/* Calls kept on the free list for reuse (beyond that they are freed). */
#define GATEWAY_CALL_POOL_MAX 4096
/* Deadline of the readiness probe sent to a router. */
#define GATEWAY_READY_DEADLINE_MS 1000

typedef enum {
    GATEWAY_CALL_TURN = 0, /* POST /v1/conversations/{id}/messages */
    GATEWAY_CALL_CONV,     /* GET /v1/conversations/{id} */
    GATEWAY_CALL_READY,    /* GET /readyz */
    GATEWAY_CALL_CHAT,     /* POST /v1/chat/completions (route_openai.c) */
} gateway_call_kind_t;

struct gateway_sse;
struct gateway_agents;

/* Longest agent (model) name the OpenAI front door accepts. */
#define GATEWAY_MODEL_MAX 64
/* chat.completion ids: "chatcmpl-" + the message id. */
#define GATEWAY_COMPLETION_ID_MAX (9 + MESH_ID_MAX)

/* One HTTP request waiting for a mesh reply. Pooled. */
typedef struct gateway_call {
    gateway_t *gw;
    gateway_http_conn_t *conn;
    uint64_t handle; /* mesh_client request handle */
    gateway_call_kind_t kind;
    char conv[MESH_CONV_MAX + 1];
    char message_id[MESH_ID_MAX + 1];
    struct gateway_sse *sse; /* streamed answer (SSE), NULL otherwise; freed with the call */
    /* OpenAI front door (GATEWAY_CALL_CHAT) */
    char model[GATEWAY_MODEL_MAX + 1];
    char completion_id[GATEWAY_COMPLETION_ID_MAX + 1];
    uint64_t created; /* unix seconds */
    bool include_usage;
    bool role_sent;      /* first chunk (with the assistant role) sent */
    size_t prompt_chars; /* for the usage estimate when the turn reports none */
    size_t streamed;     /* reply bytes already sent as content deltas */
    struct gateway_call *next_free;
} gateway_call_t;

struct gateway {
    uv_loop_t *loop;
    void *zctx;
    gateway_config_t cfg;
    const char *endpoints[MESH_MAX_ROUTERS];
    gateway_http_server_t *http;
    mesh_client_t *client;
    gateway_buf_t scratch; /* response bodies are serialised here, then copied */
    gateway_call_t *free_calls;
    uint32_t n_free_calls;
    uint32_t n_calls; /* in flight */
    /* readiness cache: valid for one heartbeat interval */
    uint64_t ready_at_ms;
    bool ready_cached;
    int ready_status;
    uint32_t ready_workers;
    bool metrics_attached;             /* gw_metrics.c collector registered */
    struct gateway_agents *agents;     /* the digital workers (gw_agents.c), for /v1/models */
    struct gateway_channels *channels; /* chat channels (channels.h), created on first use */
    /* drain: /readyz answers 503 from the signal on; the listener closes
     * cfg.drain_delay_ms later, so load balancers stop sending first */
    bool draining;
    uv_timer_t *drain_timer;
    void (*drain_done)(void *arg);
    void *drain_arg;
};

/* The HTTP handler (routes.c). arg is the gateway. */
void gateway_routes_handle(gateway_http_conn_t *conn, const gateway_http_req_t *req, void *arg);

/* Route handlers (route_turn.c, route_conv.c, routes.c). */
void gateway_route_turn(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                        const char *conv, size_t conv_len);
void gateway_route_conv(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                        const char *conv, size_t conv_len);
void gateway_route_readyz(gateway_t *gw, gateway_http_conn_t *conn);
/* OpenAI-compatible front door (route_openai.c). */
void gateway_route_chat(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req);
void gateway_route_models(gateway_t *gw, gateway_http_conn_t *conn);

/* 1 when the client asked for Server-Sent Events (Accept: text/event-stream). */
int gateway_wants_sse(const gateway_http_req_t *req);

/* A call from the pool (NULL when out of memory). */
gateway_call_t *gateway_call_get(gateway_t *gw, gateway_http_conn_t *conn,
                                 gateway_call_kind_t kind);
/* Return a call to the pool. */
void gateway_call_put(gateway_call_t *call);

/*
 * Send req to service for conn with cb as the reply callback; on success the
 * connection's abort callback cancels the request. On failure the HTTP
 * error is answered here (503 no_router for MESH_ENOWORKER, ...) and the
 * call is returned to the pool. req->args is not consumed. 0 or MESH_E*.
 */
int gateway_call_send(gateway_call_t *call, const char *service, const mesh_request_t *req,
                      mesh_client_cb cb);

/* The FINAL for call arrived: detach it from its connection's abort callback.
 * The caller then answers the HTTP request and returns the call to the pool. */
void gateway_call_done(gateway_call_t *call);

/*
 * Fill the common request fields from the HTTP request: tenant
 * (X-Mesh-Tenant, default "default"), traceparent (valid header or a new
 * one), deadline (MESH_TURN_TIMEOUT_MS or the lower X-Mesh-Timeout-Ms).
 * On invalid input answers 400 and returns MESH_EINVAL.
 */
int gateway_request_common(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                           mesh_request_t *mreq);

/* Answer a mesh error status with its HTTP mapping (docs/gateway.md). */
void gateway_respond_status(gateway_http_conn_t *conn, int status, const char *err);

/* Serialise v into the scratch buffer and answer it with the HTTP status. */
void gateway_respond_json(gateway_t *gw, gateway_http_conn_t *conn, int http_status,
                          const json_t *v);

#endif
