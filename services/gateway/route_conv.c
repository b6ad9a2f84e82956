/*
 * route_conv.c - GET /v1/conversations/{id}[?limit=N]: the conversation's
 * state and its last N messages, read through the router from a memory
 * worker (service "memory", op "conv.get").
 */
#include <string.h>

#include "gateway_internal.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "validate.h"

static void conv_respond(gateway_t *gw, gateway_call_t *call, const json_t *data)
{
    json_t *state = json_object_get(data, "state");
    json_t *messages = json_object_get(data, "messages");
    json_t *total = json_object_get(data, "total");
    json_t *agent = json_object_get(state, "agent");
    if (!json_is_object(data) || !json_is_array(messages)) {
        gateway_http_conn_respond_error(call->conn, 502, "bad_gateway",
                                        "the memory reply has no message list", NULL);
        return;
    }
    json_t *out = json_object();
    json_t *empty_state = json_is_object(state) ? NULL : json_object();
    /* The values are borrowed from the reply (json_object_set takes a reference). */
    if (!out || json_object_set_new(out, "conversation_id", json_string(call->conv)) < 0 ||
        json_object_set_new(out, "agent",
                            json_is_string(agent) ? json_incref(agent) : json_null()) < 0 ||
        json_object_set(out, "state", empty_state ? empty_state : state) < 0 ||
        json_object_set(out, "messages", messages) < 0 ||
        (json_is_integer(total) && json_object_set(out, "total", total) < 0)) {
        gateway_http_conn_respond_error(call->conn, 500, "internal_error", "out of memory", NULL);
    } else {
        gateway_respond_json(gw, call->conn, 200, out);
    }
    json_decref(empty_state);
    json_decref(out);
}

static void conv_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    if (!final)
        return;
    gateway_call_t *call = arg;
    gateway_t *gw = call->gw;
    gateway_call_done(call);
    if (rep->status == MESH_ENOTFOUND)
        gateway_http_conn_respond_error(call->conn, 404, "not_found", "no such conversation", NULL);
    else if (rep->status != 0)
        gateway_respond_status(call->conn, rep->status, rep->err);
    else
        conv_respond(gw, call, rep->data);
    gateway_call_put(call);
}

void gateway_route_conv(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                        const char *conv, size_t conv_len)
{
    mesh_request_t mreq = {0};
    if (!mesh_conv_id_valid(conv, conv_len)) {
        gateway_http_conn_respond_error(conn, 400, "invalid_conversation_id",
                                        "conversation id must be 1..128 bytes of [A-Za-z0-9._:-]",
                                        NULL);
        return;
    }
    uint64_t limit = GATEWAY_CONV_LIMIT_DEFAULT;
    const char *val;
    size_t vlen;
    if (gateway_query_param(req->query, req->query_len, "limit", &val, &vlen)) {
        /* Larger values are clamped (documented); anything not a number is refused. */
        if (gateway_parse_uint(val, vlen, UINT64_MAX / 16, &limit) < 0) {
            gateway_http_conn_respond_error(conn, 400, "invalid_parameter",
                                            "limit must be an integer 1..1000", NULL);
            return;
        }
        if (limit > GATEWAY_CONV_LIMIT_MAX)
            limit = GATEWAY_CONV_LIMIT_MAX;
    }
    if (gateway_request_common(gw, conn, req, &mreq) < 0)
        return;
    gateway_call_t *call = gateway_call_get(gw, conn, GATEWAY_CALL_CONV);
    if (!call) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    memcpy(call->conv, conv, conv_len);
    call->conv[conv_len] = '\0';
    memcpy(mreq.op, "conv.get", sizeof("conv.get"));
    memcpy(mreq.conv, call->conv, conv_len + 1);
    mreq.idem = true; /* a read: safe to retry on another worker */
    mreq.args = json_pack("{s:I}", "limit", (json_int_t)limit);
    if (!mreq.args) {
        gateway_call_put(call);
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    gateway_call_send(call, "memory", &mreq, conv_reply);
    mesh_request_clear(&mreq);
}
