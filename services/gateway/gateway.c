/*
 * gateway.c - the gateway service object (gateway.h) and what every route
 * shares: the pool of in-flight calls, the common request fields, and the
 * mapping of mesh status codes to HTTP responses.
 */
#include "gateway_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "gw_agents.h"
#include "gw_metrics.h"
#include "gw_sse.h"
#include "json_io.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "validate.h"

/* ---- lifecycle ---------------------------------------------------------- */

gateway_t *gateway_new(uv_loop_t *loop, void *zctx, const gateway_config_t *cfg)
{
    if (!loop || !zctx || !cfg || !cfg->http_host || cfg->turn_timeout_ms == 0 ||
        cfg->client.n_endpoints < 1 || cfg->client.n_endpoints > MESH_MAX_ROUTERS)
        return NULL;
    gateway_t *gw = calloc(1, sizeof(*gw));
    if (!gw)
        return NULL;
    gw->loop = loop;
    gw->zctx = zctx;
    gw->cfg = *cfg;
    gateway_metrics_init();
    if (gw->cfg.turn_timeout_ms > MESH_DEADLINE_MAX_MS)
        gw->cfg.turn_timeout_ms = MESH_DEADLINE_MAX_MS;
    gateway_http_opts_t hopts = {
        .host = cfg->http_host,
        .port = cfg->http_port,
        .max_body = cfg->max_body,
        .max_header = cfg->max_header,
        .idle_ms = cfg->idle_ms,
        .max_conns = cfg->max_conns,
        .handler = gateway_routes_handle,
        .handler_arg = gw,
    };
    gw->http = gateway_http_server_new(loop, &hopts);
    if (!gw->http)
        goto fail;
    gw->client = mesh_client_new(loop, zctx, &gw->cfg.client);
    if (!gw->client)
        goto fail;
    if (gw->cfg.data_dir && gateway_reload(gw) != 0)
        mesh_log_warn("gateway", "no agent catalogue: GET /v1/models lists nothing");
    return gw;
fail:
    gateway_destroy(&gw);
    return NULL;
}

int gateway_start(gateway_t *gw)
{
    int rc = mesh_client_start(gw->client);
    if (rc < 0) {
        mesh_log_error("gateway", "cannot start the router client: %s", mesh_strerror(rc));
        return rc;
    }
    rc = gateway_http_server_listen(gw->http);
    if (rc < 0)
        return rc;
    if (gateway_metrics_attach(gw) == 0)
        gw->metrics_attached = true;
    mesh_log_info("gateway", "listening on http://%s:%d, %d router endpoint(s)", gw->cfg.http_host,
                  gateway_http_server_port(gw->http), gw->cfg.client.n_endpoints);
    return 0;
}

int gateway_port(const gateway_t *gw)
{
    return gateway_http_server_port(gw->http);
}

int gateway_reload(gateway_t *gw)
{
    if (!gw || !gw->cfg.data_dir)
        return MESH_EINVAL;
    gateway_agents_t *a = NULL;
    int rc = gateway_agents_load(gw->cfg.data_dir, &a);
    if (rc != 0) {
        mesh_log_warn("gateway", "agents from %s/agents not (re)loaded: %s", gw->cfg.data_dir,
                      mesh_strerror(rc));
        return rc;
    }
    gateway_agents_destroy(&gw->agents);
    gw->agents = a;
    mesh_log_info("gateway", "%zu agent(s) in the catalogue", gateway_agents_count(a));
    return 0;
}

mesh_client_t *gateway_client(gateway_t *gw)
{
    return gw->client;
}

static void drain_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void drain_now(uv_timer_t *t)
{
    gateway_t *gw = t->data;
    uv_close((uv_handle_t *)t, drain_timer_closed);
    gw->drain_timer = NULL;
    mesh_log_info("gateway", "draining: no new connections, finishing open requests");
    gateway_http_server_drain(gw->http, gw->drain_done, gw->drain_arg);
}

void gateway_drain(gateway_t *gw, void (*done)(void *arg), void *arg)
{
    gw->draining = true;
    gw->drain_done = done;
    gw->drain_arg = arg;
    if (gw->cfg.drain_delay_ms > 0) {
        /* Keep serving while the orchestrator notices /readyz: closing the
         * listener at once refuses the requests already routed here. */
        gw->drain_timer = malloc(sizeof(*gw->drain_timer));
        if (gw->drain_timer && uv_timer_init(gw->loop, gw->drain_timer) == 0) {
            gw->drain_timer->data = gw;
            uv_timer_start(gw->drain_timer, drain_now, gw->cfg.drain_delay_ms, 0);
            mesh_log_info("gateway", "draining: /readyz is 503, still serving for %llu ms",
                          (unsigned long long)gw->cfg.drain_delay_ms);
            return;
        }
        free(gw->drain_timer);
        gw->drain_timer = NULL;
    }
    mesh_log_info("gateway", "draining: no new connections, finishing open requests");
    gateway_http_server_drain(gw->http, done, arg);
}

bool gateway_draining(const gateway_t *gw)
{
    return gw->draining;
}

void gateway_destroy(gateway_t **gw_p)
{
    if (!gw_p || !*gw_p)
        return;
    gateway_t *gw = *gw_p;
    *gw_p = NULL;
    if (gw->drain_timer) {
        uv_close((uv_handle_t *)gw->drain_timer, drain_timer_closed);
        gw->drain_timer = NULL;
    }
    if (gw->metrics_attached)
        gateway_metrics_detach(gw);
    /* Connections first: their abort callbacks cancel client requests, so the
     * client has none left to fail when it is destroyed. */
    gateway_http_server_destroy(&gw->http);
    /* Channel turns and deliveries in flight: before the client they use. */
    gateway_channels_destroy(gw);
    mesh_client_destroy(&gw->client);
    while (gw->free_calls) {
        gateway_call_t *c = gw->free_calls;
        gw->free_calls = c->next_free;
        free(c);
    }
    gateway_buf_free(&gw->scratch);
    gateway_agents_destroy(&gw->agents);
    free(gw);
}

/* ---- calls -------------------------------------------------------------- */

gateway_call_t *gateway_call_get(gateway_t *gw, gateway_http_conn_t *conn, gateway_call_kind_t kind)
{
    gateway_call_t *c = gw->free_calls;
    if (c) {
        gw->free_calls = c->next_free;
        gw->n_free_calls--;
    } else {
        c = malloc(sizeof(*c));
        if (!c)
            return NULL;
    }
    c->gw = gw;
    c->conn = conn;
    c->handle = 0;
    c->kind = kind;
    c->conv[0] = '\0';
    c->message_id[0] = '\0';
    c->sse = NULL;
    c->model[0] = '\0';
    c->completion_id[0] = '\0';
    c->created = 0;
    c->include_usage = false;
    c->role_sent = false;
    c->prompt_chars = 0;
    c->streamed = 0;
    c->next_free = NULL;
    return c;
}

void gateway_call_put(gateway_call_t *c)
{
    gateway_t *gw = c->gw;
    gateway_sse_abandon(&c->sse);
    if (gw->n_free_calls >= GATEWAY_CALL_POOL_MAX) {
        free(c);
        return;
    }
    c->conn = NULL;
    c->next_free = gw->free_calls;
    gw->free_calls = c;
    gw->n_free_calls++;
}

/* The client went away mid-request: forget the mesh request. The turn still
 * completes in the mesh and is recorded; a retry with the same message_id
 * gets the stored answer. */
static void call_abort(gateway_http_conn_t *conn, void *arg)
{
    gateway_call_t *c = arg;
    gateway_t *gw = c->gw;
    /* Sends CANCEL: the router stops the turn's model work and records what
     * was already said (interrupted). */
    mesh_client_cancel(gw->client, c->handle);
    gw->n_calls--;
    if (c->kind == GATEWAY_CALL_TURN || c->kind == GATEWAY_CALL_CHAT)
        gateway_metrics_turn_delta(-1);
    gateway_call_put(c);
}

int gateway_call_send(gateway_call_t *call, const char *service, const mesh_request_t *req,
                      mesh_client_cb cb)
{
    gateway_t *gw = call->gw;
    gateway_http_conn_t *conn = call->conn;
    int rc = mesh_client_request(gw->client, service, req, cb, call, &call->handle);
    if (rc == 0) {
        gw->n_calls++;
        if (call->kind == GATEWAY_CALL_TURN || call->kind == GATEWAY_CALL_CHAT)
            gateway_metrics_turn_delta(1);
        gateway_http_conn_on_abort(conn, call_abort, call);
        return 0;
    }
    gateway_call_put(call);
    switch (rc) {
    case MESH_ENOWORKER:
        gateway_http_conn_respond_error(conn, 503, "no_router", "no router is reachable",
                                        "Retry-After: 1\r\n");
        break;
    case MESH_EBUSY:
        gateway_http_conn_respond_error(conn, 503, mesh_err_name(rc), mesh_strerror(rc),
                                        "Retry-After: 1\r\n");
        break;
    default:
        gateway_http_conn_respond_error(conn, 500, "internal_error", mesh_strerror(rc), NULL);
        break;
    }
    return rc;
}

void gateway_call_done(gateway_call_t *c)
{
    c->gw->n_calls--;
    if (c->kind == GATEWAY_CALL_TURN || c->kind == GATEWAY_CALL_CHAT)
        gateway_metrics_turn_delta(-1);
    gateway_http_conn_on_abort(c->conn, NULL, NULL);
}

/* ---- shared request and response helpers -------------------------------- */

int gateway_request_common(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                           mesh_request_t *mreq)
{
    const gateway_hdr_t *h = &req->hdr[GATEWAY_HDR_TENANT];
    if (h->state == GATEWAY_HDR_ABSENT) {
        memcpy(mreq->tenant, MESH_TENANT_DEFAULT, sizeof(MESH_TENANT_DEFAULT));
    } else if (h->state == GATEWAY_HDR_PRESENT && gateway_tenant_valid(h->value, h->len)) {
        memcpy(mreq->tenant, h->value, h->len + 1);
    } else {
        gateway_http_conn_respond_error(conn, 400, "invalid_tenant",
                                        "X-Mesh-Tenant must be 1..64 bytes of [A-Za-z0-9._-]",
                                        NULL);
        return MESH_EINVAL;
    }

    uint64_t deadline = gw->cfg.turn_timeout_ms;
    h = &req->hdr[GATEWAY_HDR_TIMEOUT];
    if (h->state != GATEWAY_HDR_ABSENT) {
        uint64_t v;
        /* Any positive integer: it can only lower the configured deadline. */
        if (h->state != GATEWAY_HDR_PRESENT ||
            gateway_parse_uint(h->value, h->len, UINT64_MAX, &v) < 0) {
            gateway_http_conn_respond_error(conn, 400, "invalid_timeout",
                                            "X-Mesh-Timeout-Ms must be a positive integer", NULL);
            return MESH_EINVAL;
        }
        if (v < deadline)
            deadline = v;
    }
    mreq->deadline_ms = (uint32_t)deadline;

    /* A bad traceparent is not the client's problem to fix: start a new trace. */
    h = &req->hdr[GATEWAY_HDR_TRACEPARENT];
    if (h->state == GATEWAY_HDR_PRESENT && h->len == MESH_TRACEPARENT_MAX &&
        mesh_traceparent_valid(h->value, h->len))
        memcpy(mreq->tp, h->value, h->len + 1);
    else
        mesh_traceparent_new(mreq->tp);
    return 0;
}

/* HTTP status for a mesh status (docs/gateway.md, "Errors"). */
static int http_status_of(int status, bool *retry_after)
{
    *retry_after = false;
    switch (status) {
    case MESH_EPROTO:
    case MESH_EINVAL:
        return 400;
    case MESH_ENOTFOUND:
        return 404;
    case MESH_EBUSY:
    case MESH_ENOWORKER:
    case MESH_EUNAVAIL:
        *retry_after = true;
        return 503;
    case MESH_ETIMEDOUT:
        return 504;
    case MESH_ESTEPS:
        return 502;
    default:
        return 500;
    }
}

void gateway_respond_status(gateway_http_conn_t *conn, int status, const char *err)
{
    bool retry;
    int http = http_status_of(status, &retry);
    const char *msg = (err && err[0]) ? err : mesh_strerror(status);
    gateway_http_conn_respond_error(conn, http, mesh_err_name(status), msg,
                                    retry ? "Retry-After: 1\r\n" : NULL);
}

void gateway_respond_json(gateway_t *gw, gateway_http_conn_t *conn, int http_status,
                          const json_t *v)
{
    int rc = gateway_json_dump(&gw->scratch, v);
    if (rc < 0) {
        gateway_http_conn_respond_error(conn, 500, "internal_error", mesh_strerror(rc), NULL);
        return;
    }
    gateway_http_conn_respond(conn, http_status, NULL, NULL, gw->scratch.data, gw->scratch.len);
    gateway_buf_reset(&gw->scratch, GATEWAY_JSON_OUT_MAX / 64);
}
