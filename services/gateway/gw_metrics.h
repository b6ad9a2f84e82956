/*
 * gw_metrics.h - the gateway's metrics (recorded into the process-wide
 * registry, mesh_metrics.h) and its GET /metrics route.
 *
 *   mesh_http_requests_total{route,method,code}   responses by route template,
 *                                                 method and status class (2xx..5xx)
 *   mesh_http_request_duration_seconds{route}     request complete -> response written
 *   mesh_http_connections_open                    open HTTP connections (scrape time)
 *   mesh_gateway_turns_inflight                   turns waiting for their router's FINAL
 *
 * Routes are templates ("/v1/conversations/{id}/messages"), never raw paths,
 * so a conversation id can never become a label value.
 */
#ifndef GATEWAY_GW_METRICS_H
#define GATEWAY_GW_METRICS_H

#include "gateway.h"
#include "http_conn.h"

/* Register the families (idempotent; gateway_new calls it). */
void gateway_metrics_init(void);

/* A response with status leaves; req is NULL when there was no request (refused connection). */
void gateway_metrics_response(const gateway_http_req_t *req, int status);

/* A turn was handed to a router (+1) or completed / was abandoned (-1). */
void gateway_metrics_turn_delta(int delta);

/* Scrape-time gauges of gw (open connections). 0 or MESH_E*. */
int gateway_metrics_attach(gateway_t *gw);
void gateway_metrics_detach(gateway_t *gw);

/* The route template of a path (a static string). */
const char *gateway_metrics_route(const char *path, size_t len);

/* Answer GET /metrics with the process registry's rendering. */
void gateway_route_metrics(gateway_http_conn_t *conn);

#endif
