/*
 * gw_metrics.c - the gateway's metrics and its /metrics route (gw_metrics.h).
 */
#include "gw_metrics.h"

#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_internal.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_metrics.h"

/* Label sets: routes (7) x methods x status classes (5), with room to spare. */
#define GW_METRIC_REQ_SERIES   256
#define GW_METRIC_ROUTE_SERIES 16

#define CONV_PREFIX "/v1/conversations/"

/* Latency buckets, seconds: probes answered at once up to whole turns. */
static const double s_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25,   0.5,   1,      2.5,   5,    10,    30,   60};

static mesh_metric_t *s_requests; /* mesh_http_requests_total{route,method,code} */
static mesh_metric_t *s_latency;  /* mesh_http_request_duration_seconds{route} */
static mesh_metric_t *s_conns;    /* mesh_http_connections_open */
static mesh_series_t *s_turns;    /* mesh_gateway_turns_inflight */

void gateway_metrics_init(void)
{
    mesh_metrics_t *reg = mesh_metrics_global();
    s_requests = mesh_metrics_counter(
        reg, "mesh_http_requests_total",
        "HTTP responses by route template, method and status class (2xx, 4xx, ...)",
        "route,method,code", GW_METRIC_REQ_SERIES);
    s_latency = mesh_metrics_histogram(
        reg, "mesh_http_request_duration_seconds",
        "time from a complete HTTP request to its response, by route template", "route",
        GW_METRIC_ROUTE_SERIES, s_latency_bounds,
        sizeof(s_latency_bounds) / sizeof(s_latency_bounds[0]));
    s_conns =
        mesh_metrics_gauge(reg, "mesh_http_connections_open", "open HTTP connections", NULL, 1);
    s_turns =
        mesh_metric_with(mesh_metrics_gauge(reg, "mesh_gateway_turns_inflight",
                                            "turns sent to a router and not answered yet", NULL, 1),
                         NULL);
}

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

const char *gateway_metrics_route(const char *path, size_t len)
{
    static const char *const exact[] = {"/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (len == strlen(exact[i]) && memcmp(path, exact[i], len) == 0)
            return exact[i];
    const size_t plen = sizeof(CONV_PREFIX) - 1;
    if (len <= plen || memcmp(path, CONV_PREFIX, plen) != 0)
        return "other";
    const char *rest = path + plen;
    size_t rlen = len - plen;
    const char *slash = memchr(rest, '/', rlen);
    if (!slash)
        return "/v1/conversations/{id}";
    size_t tail = rlen - (size_t)(slash - rest);
    if (tail == sizeof("/messages") - 1 && memcmp(slash, "/messages", tail) == 0)
        return "/v1/conversations/{id}/messages";
    if (has_suffix(slash, tail, "/trace"))
        return "/v1/conversations/{id}/turns/{n}/trace";
    return "other";
}

static const char *status_class(int status)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    int k = status / 100;
    return k >= 1 && k <= 5 ? classes[k - 1] : "other";
}

void gateway_metrics_response(const gateway_http_req_t *req, int status)
{
    const char *route = req ? gateway_metrics_route(req->path, req->path_len) : "none";
    const char *method = req ? http_method_str((enum http_method)req->method) : "none";
    mesh_counter_inc(mesh_metric_at(s_requests, route, method, status_class(status)));
    if (req)
        mesh_histogram_observe(mesh_metric_at(s_latency, route),
                               mesh_metrics_since_s(req->start_ns));
}

void gateway_metrics_turn_delta(int delta)
{
    mesh_gauge_add(s_turns, delta);
}

static void collect(mesh_metrics_t *reg, void *arg)
{
    (void)reg;
    gateway_t *gw = arg;
    mesh_gauge_set(mesh_metric_with(s_conns, NULL),
                   gw->http ? (double)gateway_http_server_conns(gw->http) : 0);
}

int gateway_metrics_attach(gateway_t *gw)
{
    return mesh_metrics_on_collect(mesh_metrics_global(), collect, gw);
}

void gateway_metrics_detach(gateway_t *gw)
{
    mesh_metrics_off_collect(mesh_metrics_global(), collect, gw);
}

void gateway_route_metrics(gateway_http_conn_t *conn)
{
    char *body = NULL;
    size_t len = 0;
    int rc = mesh_metrics_render(mesh_metrics_global(), &body, &len);
    if (rc != 0) {
        mesh_log_error("gateway", "metrics render failed: %s", mesh_strerror(rc));
        gateway_http_conn_respond_error(conn, 500, "internal_error", "metrics render failed", NULL);
        return;
    }
    gateway_http_conn_respond(conn, 200, MESH_METRICS_CONTENT_TYPE, NULL, body, len);
    free(body);
}
