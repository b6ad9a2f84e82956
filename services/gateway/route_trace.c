/*
 * route_trace.c - the gateway's hop of a trace, and GET
 * /v1/conversations/{id}/turns/{n}/trace.
 *
 * The gateway span. Every HTTP request is handled inside a span named
 * "gateway <METHOD> <route>" (route templates only: ids never become span
 * names), a child of the client's traceparent when it sent a valid one,
 * else the root of a new trace. The handlers see a copy of the request whose
 * traceparent header is the gateway's outgoing one (parent-id = the gateway
 * span): gateway_request_common() forwards it verbatim, so the router's span
 * becomes the gateway span's child without the handlers knowing about
 * spans. During the synchronous part of the handling the span's log context
 * is current, so a request refused with 4xx logs its trace id.
 *
 * Open spans wait for their response in a fixed table keyed by the request
 * pointer (one request per connection at a time, so the pointer identifies
 * it); a slot still taken when another request hashes to it is dropped, so
 * the table never grows and never leaks.
 *
 * The timeline. The router records a turn's spans (queue wait, memory reads
 * and writes, each llm and tool call) and memory keeps them with the
 * conversation (op "trace.get", docs/protocol/services.md); this route reads
 * them back.
 */
#include "route_trace.h"

#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gateway_internal.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_trace.h"
#include "validate.h"

/* Largest turn number accepted in the path. */
#define TRACE_TURN_MAX UINT32_MAX
/* "gateway " + method + " " + route template. */
#define SPAN_NAME_BUF (MESH_SPAN_NAME_MAX + 1)

typedef struct {
    const gateway_http_req_t *req; /* NULL: free */
    mesh_span_t span;
} open_span_t;

static open_span_t s_open[GATEWAY_TRACE_OPEN_MAX];

static size_t slot_of(const gateway_http_req_t *req)
{
    uintptr_t p = (uintptr_t)req;
    p ^= p >> 17;
    p *= (uintptr_t)UINT64_C(0x9e3779b97f4a7c15);
    return (size_t)(p >> 7) % GATEWAY_TRACE_OPEN_MAX;
}

/* The route template of a path, for span names (never a raw id). */
static const char *route_template(const gateway_http_req_t *req)
{
    static const char conv[] = "/v1/conversations/";
    static const char msgs[] = "/messages";
    static const char trace[] = "/trace";
    if (req->path_len < sizeof(conv) - 1 || memcmp(req->path, conv, sizeof(conv) - 1) != 0)
        return (req->path_len == 8 && memcmp(req->path, "/healthz", 8) == 0)   ? "/healthz"
               : (req->path_len == 7 && memcmp(req->path, "/readyz", 7) == 0)  ? "/readyz"
               : (req->path_len == 8 && memcmp(req->path, "/metrics", 8) == 0) ? "/metrics"
                                                                               : "other";
    const char *rest = req->path + sizeof(conv) - 1;
    size_t n = req->path_len - (sizeof(conv) - 1);
    if (memchr(rest, '/', n) == NULL)
        return "/v1/conversations/{id}";
    if (n >= sizeof(msgs) - 1 && memcmp(rest + n - (sizeof(msgs) - 1), msgs, sizeof(msgs) - 1) == 0)
        return "/v1/conversations/{id}/messages";
    if (n >= sizeof(trace) - 1 &&
        memcmp(rest + n - (sizeof(trace) - 1), trace, sizeof(trace) - 1) == 0)
        return "/v1/conversations/{id}/turns/{n}/trace";
    return "other";
}

void gateway_trace_dispatch(gateway_http_conn_t *conn, const gateway_http_req_t *req, void *arg,
                            gateway_dispatch_fn dispatch)
{
    open_span_t *o = &s_open[slot_of(req)];
    char name[SPAN_NAME_BUF];
    snprintf(name, sizeof(name), "gateway %s %s", http_method_str((enum http_method)req->method),
             route_template(req));
    const gateway_hdr_t *h = &req->hdr[GATEWAY_HDR_TRACEPARENT];
    /* A second request on a connection whose first never answered replaces it. */
    o->req = req;
    mesh_span_start(&o->span, name, MESH_SPAN_SERVER,
                    h->state == GATEWAY_HDR_PRESENT ? h->value : NULL);
    mesh_span_attr_str(&o->span, "http.route", route_template(req));

    gateway_http_req_t fwd = *req;
    gateway_hdr_t *fh = &fwd.hdr[GATEWAY_HDR_TRACEPARENT];
    mesh_span_child_tp(&o->span, fh->value);
    fh->len = strlen(fh->value);
    fh->state = GATEWAY_HDR_PRESENT;

    mesh_log_ctx_t ctx;
    mesh_span_log_ctx(&o->span, &ctx);
    const mesh_log_ctx_t *prev = mesh_log_ctx_swap(&ctx);
    dispatch(conn, &fwd, arg);
    mesh_log_ctx_swap(prev);
}

void gateway_trace_response(const gateway_http_req_t *req, int status)
{
    if (req == NULL)
        return;
    open_span_t *o = &s_open[slot_of(req)];
    if (o->req != req)
        return;
    o->req = NULL;
    mesh_span_attr_int(&o->span, "http.status_code", status);
    mesh_span_finish(&o->span, status >= 500 ? MESH_EINTERNAL : 0);
}

/* ---- GET /v1/conversations/{id}/turns/{n}/trace ----------------------------- */

static void trace_respond(gateway_t *gw, gateway_call_t *call, const json_t *data)
{
    /* memory trace.get: {turn, spans:[span record...]} (docs/protocol/services.md) */
    const json_t *spans = json_object_get(data, "spans");
    const json_t *turn = json_object_get(data, "turn");
    if (!json_is_array(spans) || !json_is_integer(turn)) {
        gateway_http_conn_respond_error(call->conn, 502, "bad_gateway",
                                        "the memory reply has no span list", NULL);
        return;
    }
    /* One turn is one trace: every span record carries the same trace id. */
    const json_t *tid = json_object_get(json_array_get(spans, 0), "trace_id");
    json_t *out = json_pack("{s:s, s:O, s:O, s:O}", "conversation_id", call->conv, "turn", turn,
                            "trace_id", json_is_string(tid) ? tid : json_null(), "spans", spans);
    if (out == NULL) {
        gateway_http_conn_respond_error(call->conn, 500, "internal_error", "out of memory", NULL);
        return;
    }
    gateway_respond_json(gw, call->conn, 200, out);
    json_decref(out);
}

static void trace_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)client;
    if (!final)
        return;
    gateway_call_t *call = arg;
    gateway_t *gw = call->gw;
    gateway_call_done(call);
    if (rep->status == MESH_ENOTFOUND)
        gateway_http_conn_respond_error(call->conn, 404, "not_found",
                                        "no trace for this turn (unknown, or expired)", NULL);
    else if (rep->status != 0)
        gateway_respond_status(call->conn, rep->status, rep->err);
    else
        trace_respond(gw, call, rep->data);
    gateway_call_put(call);
}

void gateway_route_trace(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                         const char *conv, size_t conv_len, const char *turn, size_t turn_len)
{
    mesh_request_t mreq = {0};
    uint64_t n = 0;
    if (!mesh_conv_id_valid(conv, conv_len)) {
        gateway_http_conn_respond_error(conn, 400, "invalid_conversation_id",
                                        "conversation id must be 1..128 bytes of [A-Za-z0-9._:-]",
                                        NULL);
        return;
    }
    if (gateway_parse_uint(turn, turn_len, TRACE_TURN_MAX, &n) < 0 || n == 0) {
        gateway_http_conn_respond_error(conn, 400, "invalid_parameter",
                                        "turn must be an integer 1..4294967295", NULL);
        return;
    }
    if (gateway_request_common(gw, conn, req, &mreq) < 0)
        return;
    /* Not a turn: the call kind only matters to the turn metrics. */
    gateway_call_t *call = gateway_call_get(gw, conn, GATEWAY_CALL_CONV);
    if (call == NULL) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    memcpy(call->conv, conv, conv_len);
    call->conv[conv_len] = '\0';
    memcpy(mreq.op, "trace.get", sizeof("trace.get"));
    memcpy(mreq.conv, call->conv, conv_len + 1);
    mreq.idem = true; /* a read */
    mreq.args = json_pack("{s:I}", "turn", (json_int_t)n);
    if (mreq.args == NULL) {
        gateway_call_put(call);
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    gateway_call_send(call, "memory", &mreq, trace_reply);
    mesh_request_clear(&mreq);
}
