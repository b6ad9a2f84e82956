/*
 * routes.c - the gateway's URL map, plus the two probes.
 *
 *   GET  /healthz                          200 while the process runs
 *   GET  /readyz                           200 with a live router and a memory worker
 *   GET  /metrics                          Prometheus text format (gw_metrics.c)
 *   GET  /v1/conversations/{id}            route_conv.c
 *   POST /v1/conversations/{id}/messages   route_turn.c
 *   GET  /v1/conversations/{id}/turns/{n}/trace   route_trace.c
 *   POST /v1/chat/completions              route_openai.c (OpenAI-compatible)
 *   GET  /v1/models                        route_openai.c
 *   GET  /v1/claims/{claim_no}             route_claims.c (memory engineer)
 *   GET  /v1/conversations/{id}/events     route_events.c (SSE, people engineer)
 *   *    /v1/handoff/...                   route_people.c (people API, people key)
 *   GET  /, /console, /web/<file>          route_static.c (MESH_WEB_DIR)
 *
 * Unknown paths get 404 not_found; a known path with another method gets
 * 405 method_not_allowed with an Allow header.
 */
#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "channels.h"
#include "gateway_internal.h"
#include "route_claims.h"
#include "route_people.h"
#include "route_trace.h"
#include "gw_metrics.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

#define CONV_PREFIX     "/v1/conversations/"
#define MESSAGES_SUFFIX "/messages"
#define TURNS_PREFIX    "turns/"
#define TRACE_SUFFIX    "/trace"

static int path_is(const gateway_http_req_t *req, const char *lit)
{
    size_t n = strlen(lit);
    return req->path_len == n && memcmp(req->path, lit, n) == 0;
}

static bool method_allowed(gateway_http_conn_t *conn, const gateway_http_req_t *req,
                           unsigned method)
{
    if (req->method == method)
        return true;
    const char *allow = method == HTTP_POST ? "Allow: POST\r\n" : "Allow: GET\r\n";
    gateway_http_conn_respond_error(conn, 405, "method_not_allowed",
                                    "method not allowed for this path", allow);
    return false;
}

static void route_healthz(gateway_http_conn_t *conn)
{
    static const char body[] = "{\"status\":\"ok\"}";
    gateway_http_conn_respond(conn, 200, NULL, NULL, body, sizeof(body) - 1);
}

/* ---- /readyz ------------------------------------------------------------ */

static void respond_ready(gateway_t *gw, gateway_http_conn_t *conn, int status)
{
    char body[96];
    int routers = mesh_client_routers_alive(gw->client);
    if (status == 0) {
        int n = snprintf(body, sizeof(body), "{\"status\":\"ready\",\"routers\":%d}", routers);
        gateway_http_conn_respond(conn, 200, NULL, NULL, body, (size_t)n);
        return;
    }
    const char *why;
    if (status == MESH_ENOWORKER)
        why = "no live router";
    else if (status == MESH_ENOTFOUND)
        why = "no memory worker is registered (Redis unreachable?)";
    else if (status == MESH_ETIMEDOUT)
        why = "the router did not answer the readiness probe in time";
    else
        why = "the readiness probe failed";
    gateway_http_conn_respond_error(conn, 503, "not_ready", why, "Retry-After: 1\r\n");
}

static void ready_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    if (!final)
        return;
    gateway_call_t *call = arg;
    gateway_t *gw = call->gw;
    gateway_call_done(call);
    /* Remember the answer for one heartbeat interval: probes are frequent and
     * workers re-register only that often anyway. */
    gw->ready_cached = true;
    gw->ready_at_ms = uv_now(gw->loop);
    gw->ready_status = rep->status;
    respond_ready(gw, call->conn, rep->status);
    gateway_call_put(call);
}

void gateway_route_readyz(gateway_t *gw, gateway_http_conn_t *conn)
{
    if (gw->draining) {
        gateway_http_conn_respond_error(conn, 503, "draining",
                                        "the gateway is shutting down; send new requests elsewhere",
                                        "Retry-After: 1\r\n");
        return;
    }
    if (mesh_client_routers_alive(gw->client) <= 0) {
        respond_ready(gw, conn, MESH_ENOWORKER);
        return;
    }
    if (gw->ready_cached && uv_now(gw->loop) - gw->ready_at_ms < gw->cfg.client.heartbeat_ms) {
        respond_ready(gw, conn, gw->ready_status);
        return;
    }
    gateway_call_t *call = gateway_call_get(gw, conn, GATEWAY_CALL_READY);
    if (!call) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    mesh_request_t req = {0};
    memcpy(req.op, "mmi.service", sizeof("mmi.service"));
    memcpy(req.tenant, MESH_TENANT_DEFAULT, sizeof(MESH_TENANT_DEFAULT));
    mesh_traceparent_new(req.tp);
    req.deadline_ms = GATEWAY_READY_DEADLINE_MS;
    req.idem = true;
    req.args = json_pack("{s:s}", "service", "memory");
    if (!req.args) {
        gateway_call_put(call);
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    gateway_call_send(call, "mmi.service", &req, ready_reply);
    mesh_request_clear(&req);
}

/* ---- dispatch ----------------------------------------------------------- */

static void routes_dispatch(gateway_http_conn_t *conn, const gateway_http_req_t *req, void *arg)
{
    gateway_t *gw = arg;
    if (path_is(req, "/healthz")) {
        if (method_allowed(conn, req, HTTP_GET))
            route_healthz(conn);
        return;
    }
    if (path_is(req, "/metrics")) {
        if (method_allowed(conn, req, HTTP_GET))
            gateway_route_metrics(conn);
        return;
    }
    if (path_is(req, "/readyz")) {
        if (method_allowed(conn, req, HTTP_GET))
            gateway_route_readyz(gw, conn);
        return;
    }
    if (path_is(req, "/v1/chat/completions")) {
        if (method_allowed(conn, req, HTTP_POST))
            gateway_route_chat(gw, conn, req);
        return;
    }
    if (path_is(req, "/v1/models")) {
        if (method_allowed(conn, req, HTTP_GET))
            gateway_route_models(gw, conn);
        return;
    }
    /* people API, pages (route_people.c, route_static.c: people engineer) */
    const size_t hlen = sizeof(GATEWAY_HANDOFF_PREFIX) - 1;
    if (req->path_len > hlen && memcmp(req->path, GATEWAY_HANDOFF_PREFIX, hlen) == 0) {
        gateway_route_handoff(gw, conn, req);
        return;
    }
    if (gateway_route_static(gw, conn, req))
        return;
    /* chat channels and failed deliveries (channels.h, channels engineer) */
    if (req->path_len > sizeof(GATEWAY_CHANNELS_PREFIX) - 1 &&
        memcmp(req->path, GATEWAY_CHANNELS_PREFIX, sizeof(GATEWAY_CHANNELS_PREFIX) - 1) == 0) {
        gateway_route_channel(gw, conn, req);
        return;
    }
    if (path_is(req, GATEWAY_DELIVERIES_FAILED_PATH)) {
        gateway_route_deliveries_failed(gw, conn, req);
        return;
    }
    const size_t clen = sizeof(GATEWAY_CLAIMS_PREFIX) - 1;
    if (req->path_len > clen && memcmp(req->path, GATEWAY_CLAIMS_PREFIX, clen) == 0) {
        if (method_allowed(conn, req, HTTP_GET))
            gateway_route_claim(gw, conn, req, req->path + clen, req->path_len - clen);
        return;
    }
    const size_t plen = sizeof(CONV_PREFIX) - 1;
    if (req->path_len >= plen && memcmp(req->path, CONV_PREFIX, plen) == 0) {
        const char *id = req->path + plen;
        size_t rest = req->path_len - plen;
        const char *slash = memchr(id, '/', rest);
        if (!slash) {
            if (method_allowed(conn, req, HTTP_GET))
                gateway_route_conv(gw, conn, req, id, rest);
            return;
        }
        size_t id_len = (size_t)(slash - id);
        size_t tail = rest - id_len;
        if (tail == sizeof(MESSAGES_SUFFIX) - 1 &&
            memcmp(slash, MESSAGES_SUFFIX, sizeof(MESSAGES_SUFFIX) - 1) == 0) {
            if (method_allowed(conn, req, HTTP_POST))
                gateway_route_turn(gw, conn, req, id, id_len);
            return;
        }
        const size_t elen = sizeof(GATEWAY_CONV_EVENTS_SUFFIX) - 1;
        if (tail == elen && memcmp(slash, GATEWAY_CONV_EVENTS_SUFFIX, elen) == 0) {
            if (method_allowed(conn, req, HTTP_GET))
                gateway_route_conv_events(gw, conn, req, id, id_len);
            return;
        }
        /* {id}/turns/{n}/trace (route_trace.c) */
        const char *tn = slash + 1;
        size_t tl = tail - 1;
        if (tl > sizeof(TURNS_PREFIX) - 1 + sizeof(TRACE_SUFFIX) - 1 &&
            memcmp(tn, TURNS_PREFIX, sizeof(TURNS_PREFIX) - 1) == 0 &&
            memcmp(tn + tl - (sizeof(TRACE_SUFFIX) - 1), TRACE_SUFFIX, sizeof(TRACE_SUFFIX) - 1) ==
                0) {
            if (method_allowed(conn, req, HTTP_GET))
                gateway_route_trace(gw, conn, req, id, id_len, tn + sizeof(TURNS_PREFIX) - 1,
                                    tl - (sizeof(TURNS_PREFIX) - 1) - (sizeof(TRACE_SUFFIX) - 1));
            return;
        }
    }
    gateway_http_conn_respond_error(conn, 404, "not_found", "no such resource", NULL);
}

/* Every request runs inside the gateway's span (route_trace.c). */
void gateway_routes_handle(gateway_http_conn_t *conn, const gateway_http_req_t *req, void *arg)
{
    gateway_trace_dispatch(conn, req, arg, routes_dispatch);
}
