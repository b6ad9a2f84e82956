/*
 * mesh_metrics_http.h - a tiny HTTP/1.1 listener on a libuv loop that serves
 * one registry's rendering at GET /metrics (Prometheus scrapes it), plus the
 * two probes an orchestrator asks (Kubernetes, docker-compose health checks):
 * GET /healthz (200 while the loop runs) and GET /readyz (200 when the
 * readiness callback says so, else 503 with the reason).
 *
 * Deliberately small: one request per connection ("Connection: close"), no
 * request body, only GET. GET /metrics (a query string is ignored) answers
 * 200 with MESH_METRICS_CONTENT_TYPE; another path 404; another method 405;
 * a malformed request line 400; a request head beyond
 * MESH_METRICS_HTTP_HEAD_MAX bytes 431; a request not complete within
 * MESH_METRICS_HTTP_TIMEOUT_MS is closed. At most MESH_METRICS_HTTP_CONNS_MAX
 * connections are served at once; more are closed on accept.
 *
 * Every handle is unref'd: the listener never keeps a loop alive, so a
 * service that has finished draining still ends its loop.
 */
#ifndef MESH_METRICS_HTTP_H
#define MESH_METRICS_HTTP_H

#include <stddef.h>
#include <uv.h>

#include "mesh_metrics.h"

#define MESH_METRICS_HTTP_HEAD_MAX   8192 /* request line + headers, bytes */
#define MESH_METRICS_HTTP_TIMEOUT_MS 5000 /* to receive the request head */
#define MESH_METRICS_HTTP_CONNS_MAX  16   /* connections served at once */
#define MESH_METRICS_HTTP_BACKLOG    64

typedef struct mesh_metrics_http mesh_metrics_http_t;

/* A listener for reg (borrowed; it must outlive the listener). NULL on no memory. */
mesh_metrics_http_t *mesh_metrics_http_new(uv_loop_t *loop, mesh_metrics_t *reg);

/*
 * Bind host:port (IPv4 or IPv6 literal; port 0 = an ephemeral port) and
 * listen. 0, MESH_EINVAL (bad address or port) or MESH_EIO (bind/listen
 * failed, e.g. the port is taken).
 */
int mesh_metrics_http_listen(mesh_metrics_http_t *srv, const char *host, int port);

/*
 * Readiness callback for GET /readyz: 0 = ready; otherwise not ready and why
 * holds one short line (ASCII, no quotes needed) for the response body.
 * Called on the loop thread at each probe; must not block.
 */
typedef int (*mesh_metrics_ready_fn)(void *arg, char *why, size_t why_size);

/* Set (or clear with NULL) the readiness callback; without one /readyz answers 200. */
void mesh_metrics_http_set_ready(mesh_metrics_http_t *srv, mesh_metrics_ready_fn fn, void *arg);

/* The bound port after a successful listen, else 0. */
int mesh_metrics_http_port(const mesh_metrics_http_t *srv);

/* Scrapes answered with 200 since creation (for tests and logs). */
unsigned long mesh_metrics_http_scrapes(const mesh_metrics_http_t *srv);

/*
 * Close the listener and every connection; the memory is released from the
 * close callbacks, so the loop must run once more. NULLs *srv_p. Safe on NULL.
 */
void mesh_metrics_http_destroy(mesh_metrics_http_t **srv_p);

#endif
