/*
 * http_internal.h - what http_server.c and http_conn.c share. Not used by the
 * routes, which see only http_conn.h and http_server.h.
 */
#ifndef GATEWAY_HTTP_INTERNAL_H
#define GATEWAY_HTTP_INTERNAL_H

#include <http_parser.h>
#include <stdbool.h>
#include <uv.h>

#include "gw_buf.h"
#include "http_conn.h"
#include "http_server.h"

/* One read buffer per server: reads are handled one at a time on the loop. */
#define GATEWAY_HTTP_READ_SLAB (64 * 1024)
/* Connections refused with 503 beyond max_conns at once; beyond, closed without a word. */
#define GATEWAY_HTTP_REJECT_MAX 64
/* Longest listen host literal. */
#define GATEWAY_HTTP_HOST_MAX 64

struct gateway_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    gateway_http_opts_t opts;
    char host[GATEWAY_HTTP_HOST_MAX];
    int port;
    bool listener_closed;
    bool draining;
    bool destroying;
    uint32_t n_conns;     /* accepted and not yet freed, refused ones included */
    uint32_t n_rejecting; /* of which being refused with 503 */
    unsigned refs;        /* the listener handle + every connection */
    gateway_http_conn_t *conns;
    void (*drain_done)(void *arg);
    void *drain_arg;
    gateway_buf_t scratch; /* for error bodies; copied into the response at once */
    char slab[GATEWAY_HTTP_READ_SLAB];
};

/* Create a connection object with its handles initialised (not yet accepted). */
gateway_http_conn_t *gateway_http_conn_new(gateway_http_server_t *srv);

/* The conn's TCP handle, to uv_accept into. */
uv_stream_t *gateway_http_conn_stream(gateway_http_conn_t *c);

/* Start serving an accepted connection; refuse=true answers 503 and closes. */
void gateway_http_conn_start(gateway_http_conn_t *c, bool refuse);

/* Close now (abort callback if a request is held). Idempotent. */
void gateway_http_conn_close(gateway_http_conn_t *c);

/* Drain: close if idle, else close after the current response. */
void gateway_http_conn_drain(gateway_http_conn_t *c);

/* The next connection in the server's list. */
gateway_http_conn_t *gateway_http_conn_next(gateway_http_conn_t *c);

/*
 * Called by http_conn.c once a connection's handles are closed and it has
 * been unlinked from srv->conns and freed: updates the counts, finishes a
 * drain or a destroy. May free srv.
 */
void gateway_http_server_conn_gone(gateway_http_server_t *srv, bool refused);

#endif
