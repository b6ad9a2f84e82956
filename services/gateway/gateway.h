/*
 * gateway.h - the gateway service object: the HTTP server (http_server.h)
 * plus the broker client (mesh_client.h) that carries requests to routers.
 *
 * main.c creates one from the environment through the mesh_service.h
 * skeleton; tests create one directly on their own loop (port 0 picks a free
 * port, see gateway_port()).
 */
#ifndef GATEWAY_GATEWAY_H
#define GATEWAY_GATEWAY_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "mesh/mesh_client.h"

typedef struct gateway gateway_t;

typedef struct {
    const char *http_host;     /* MESH_HTTP_HOST */
    int http_port;             /* MESH_HTTP_PORT (0 = ephemeral) */
    size_t max_body;           /* MESH_HTTP_MAX_BODY */
    size_t max_header;         /* MESH_HTTP_MAX_HEADER */
    uint64_t idle_ms;          /* MESH_HTTP_IDLE_MS */
    uint32_t max_conns;        /* MESH_HTTP_MAX_CONNS */
    uint32_t turn_timeout_ms;  /* MESH_TURN_TIMEOUT_MS */
    uint64_t sse_heartbeat_ms; /* MESH_SSE_HEARTBEAT_MS (0: none) */
    const char *data_dir;      /* MESH_DATA_DIR: agents/<name>.json for /v1/models (NULL: none) */
    uint64_t drain_delay_ms;   /* MESH_DRAIN_DELAY_MS: /readyz says draining this long first */
    mesh_client_opts_t client; /* router frontends, heartbeat, reconnect, socket opts */
} gateway_config_t;

/* Create (nothing is started). NULL on invalid config or no memory. */
gateway_t *gateway_new(uv_loop_t *loop, void *zctx, const gateway_config_t *cfg);

/* Connect to the routers and listen for HTTP. 0 or a MESH_E* code. */
int gateway_start(gateway_t *gw);

/* The bound HTTP port (after gateway_start). */
int gateway_port(const gateway_t *gw);

/* Re-read the agent catalogue (SIGHUP). Keeps the old one on error. 0 or MESH_E*. */
int gateway_reload(gateway_t *gw);

/* The broker client (for tests and diagnostics). */
mesh_client_t *gateway_client(gateway_t *gw);

/*
 * Stop accepting connections; in-flight requests are answered (with
 * "Connection: close"); done(arg) once no connection is left.
 */
void gateway_drain(gateway_t *gw, void (*done)(void *arg), void *arg);

/* True from gateway_drain() on (/readyz answers 503 "draining"). */
bool gateway_draining(const gateway_t *gw);

/* Close everything (connections aborted, client requests canceled). NULLs *gw_p.
 * Memory held by uv handles is released when the loop runs their close callbacks. */
void gateway_destroy(gateway_t **gw_p);

#endif
