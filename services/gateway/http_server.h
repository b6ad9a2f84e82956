/*
 * http_server.h - the gateway's HTTP/1.1 listener on a libuv loop.
 *
 * Accepts TCP connections (http_conn.h does the per-connection work), counts
 * them, refuses connections beyond max_conns with a 503 JSON error, and hands
 * every complete request to one handler. Everything runs on the loop's
 * thread; nothing here blocks.
 */
#ifndef GATEWAY_HTTP_SERVER_H
#define GATEWAY_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http_conn.h"

typedef struct gateway_http_server gateway_http_server_t;

/*
 * Called once per complete request. The handler must answer with
 * gateway_http_conn_respond*() exactly once (now or later), unless the abort
 * callback it registered is called first. req is valid until then.
 */
typedef void (*gateway_http_handler_fn)(gateway_http_conn_t *conn, const gateway_http_req_t *req,
                                        void *arg);

typedef struct {
    const char *host;   /* listen address, IPv4 or IPv6 literal (copied) */
    int port;           /* 0 = an ephemeral port (see gateway_http_server_port) */
    size_t max_body;    /* MESH_HTTP_MAX_BODY */
    size_t max_header;  /* MESH_HTTP_MAX_HEADER */
    uint64_t idle_ms;   /* MESH_HTTP_IDLE_MS */
    uint32_t max_conns; /* MESH_HTTP_MAX_CONNS */
    gateway_http_handler_fn handler;
    void *handler_arg;
} gateway_http_opts_t;

/* Create a server (not listening yet). NULL on bad opts or no memory. */
gateway_http_server_t *gateway_http_server_new(uv_loop_t *loop, const gateway_http_opts_t *opts);

/* Bind and listen. 0, MESH_EINVAL (bad address) or MESH_EIO (bind/listen failed). */
int gateway_http_server_listen(gateway_http_server_t *srv);

/* The bound port (after listen), else 0. */
int gateway_http_server_port(const gateway_http_server_t *srv);

/* Open connections (including ones being refused). */
uint32_t gateway_http_server_conns(const gateway_http_server_t *srv);

/*
 * Drain: stop accepting, close idle connections, and close every other one
 * after its current response (which carries "Connection: close"). done(arg)
 * is called once when no connection is left (possibly before this returns).
 */
void gateway_http_server_drain(gateway_http_server_t *srv, void (*done)(void *arg), void *arg);

/*
 * Close the listener and every connection (handlers holding a request get
 * their abort callback) and free the server once the loop has run the close
 * callbacks. NULLs *srv_p. Safe on NULL.
 */
void gateway_http_server_destroy(gateway_http_server_t **srv_p);

#endif
