/*
 * http_server.c - the gateway's HTTP listener: accept, connection limit,
 * drain and teardown (http_server.h). Per-connection work is http_conn.c.
 *
 * Lifetime: the server is freed only when its owner has destroyed it AND its
 * listener handle and every connection are closed (srv->refs reaches 0),
 * because connections point back to it until their last close callback.
 */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

/* listen(2) backlog. */
#define GATEWAY_HTTP_BACKLOG 1024

static void server_unref(gateway_http_server_t *srv)
{
    if (--srv->refs > 0)
        return;
    gateway_buf_free(&srv->scratch);
    free(srv);
}

static void server_maybe_drained(gateway_http_server_t *srv)
{
    if (srv->draining && srv->n_conns == 0 && srv->drain_done) {
        void (*done)(void *) = srv->drain_done;
        srv->drain_done = NULL;
        done(srv->drain_arg);
    }
}

void gateway_http_server_conn_gone(gateway_http_server_t *srv, bool refused)
{
    srv->n_conns--;
    if (refused)
        srv->n_rejecting--;
    server_maybe_drained(srv);
    server_unref(srv);
}

static void listener_closed_cb(uv_handle_t *h)
{
    server_unref(h->data);
}

static void close_listener(gateway_http_server_t *srv)
{
    if (srv->listener_closed)
        return;
    srv->listener_closed = true;
    uv_close((uv_handle_t *)&srv->listener, listener_closed_cb);
}

gateway_http_server_t *gateway_http_server_new(uv_loop_t *loop, const gateway_http_opts_t *opts)
{
    if (!loop || !opts || !opts->handler || !opts->host || opts->max_header == 0 ||
        opts->idle_ms == 0 || opts->max_conns == 0 || opts->port < 0 || opts->port > 65535 ||
        strlen(opts->host) >= GATEWAY_HTTP_HOST_MAX)
        return NULL;
    gateway_http_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->loop = loop;
    srv->opts = *opts;
    memcpy(srv->host, opts->host, strlen(opts->host) + 1);
    srv->opts.host = srv->host;
    if (uv_tcp_init(loop, &srv->listener) != 0) {
        free(srv);
        return NULL;
    }
    srv->listener.data = srv;
    srv->refs = 2; /* the owner (released by destroy) and the listener handle */
    return srv;
}

static void on_connection(uv_stream_t *listener, int status)
{
    gateway_http_server_t *srv = listener->data;
    if (status < 0) {
        mesh_log_warn("http", "accept failed: %s", uv_strerror(status));
        return;
    }
    if (srv->draining || srv->destroying)
        return;
    gateway_http_conn_t *c = gateway_http_conn_new(srv);
    if (!c) {
        mesh_log_warn("http", "no memory for a new connection");
        return;
    }
    if (uv_accept(listener, gateway_http_conn_stream(c)) != 0) {
        gateway_http_conn_close(c);
        return;
    }
    /* n_conns already counts c. Beyond the limit the client is told why with
     * a 503, unless too many are being told already: then it is just closed. */
    uint32_t active = srv->n_conns - srv->n_rejecting - 1;
    if (active >= srv->opts.max_conns) {
        if (srv->n_rejecting >= GATEWAY_HTTP_REJECT_MAX) {
            gateway_http_conn_close(c);
            return;
        }
        gateway_http_conn_start(c, true);
        return;
    }
    gateway_http_conn_start(c, false);
}

int gateway_http_server_listen(gateway_http_server_t *srv)
{
    struct sockaddr_storage ss;
    int rc;
    if (strchr(srv->host, ':'))
        rc = uv_ip6_addr(srv->host, srv->opts.port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(srv->host, srv->opts.port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        mesh_log_error("http", "invalid listen address %s", srv->host);
        return MESH_EINVAL;
    }
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, GATEWAY_HTTP_BACKLOG, on_connection);
    if (rc != 0) {
        mesh_log_error("http", "cannot listen on %s:%d: %s", srv->host, srv->opts.port,
                       uv_strerror(rc));
        return MESH_EIO;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len) == 0) {
        if (bound.ss_family == AF_INET6)
            srv->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        else
            srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    return 0;
}

int gateway_http_server_port(const gateway_http_server_t *srv)
{
    return srv->port;
}

uint32_t gateway_http_server_conns(const gateway_http_server_t *srv)
{
    return srv->n_conns;
}

void gateway_http_server_drain(gateway_http_server_t *srv, void (*done)(void *arg), void *arg)
{
    srv->draining = true;
    srv->drain_done = done;
    srv->drain_arg = arg;
    close_listener(srv);
    /* Closing a connection may free it only in a later close callback, so
     * walking the list while closing is safe. */
    for (gateway_http_conn_t *c = srv->conns; c; c = gateway_http_conn_next(c))
        gateway_http_conn_drain(c);
    server_maybe_drained(srv);
}

void gateway_http_server_destroy(gateway_http_server_t **srv_p)
{
    if (!srv_p || !*srv_p)
        return;
    gateway_http_server_t *srv = *srv_p;
    *srv_p = NULL;
    srv->destroying = true;
    srv->drain_done = NULL;
    close_listener(srv);
    for (gateway_http_conn_t *c = srv->conns; c; c = gateway_http_conn_next(c))
        gateway_http_conn_close(c);
    server_unref(srv);
}
