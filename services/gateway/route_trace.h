/*
 * route_trace.h - the gateway's hop of a trace, and the turn timeline route.
 *
 *   gateway_trace_dispatch   runs one HTTP request's handling inside the
 *                            gateway's span (see route_trace.c)
 *   gateway_trace_response   the response for a request leaves: the span ends
 *   gateway_route_trace      GET /v1/conversations/{id}/turns/{n}/trace
 */
#ifndef GATEWAY_ROUTE_TRACE_H
#define GATEWAY_ROUTE_TRACE_H

#include <stddef.h>

#include "gateway.h"
#include "http_conn.h"

/* Open gateway spans kept at once (one per connection with a request in hand). */
#define GATEWAY_TRACE_OPEN_MAX 4096

typedef void (*gateway_dispatch_fn)(gateway_http_conn_t *conn, const gateway_http_req_t *req,
                                    void *arg);

/*
 * Open the gateway span of req (a child of its traceparent header, or a new
 * trace), make its log context current, and call dispatch with a copy of
 * req whose traceparent header is the one the gateway sends on (parent-id =
 * the gateway span), so everything the handler forwards continues this
 * span. The span stays open until gateway_trace_response.
 */
void gateway_trace_dispatch(gateway_http_conn_t *conn, const gateway_http_req_t *req, void *arg,
                            gateway_dispatch_fn dispatch);

/*
 * The response with HTTP status for req (the connection's request) is being
 * written: finish its span (5xx: error) and export it. No-op for requests
 * without an open span. Meant to be called where the response is sent
 * (http_conn.c), next to the access log line.
 */
void gateway_trace_response(const gateway_http_req_t *req, int status);

/* GET /v1/conversations/{conv}/turns/{turn}/trace (turn: the digits from the path). */
void gateway_route_trace(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                         const char *conv, size_t conv_len, const char *turn, size_t turn_len);

#endif
