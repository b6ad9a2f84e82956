/*
 * route_turn.c - POST /v1/conversations/{id}/messages: one conversational
 * turn, sent to a router as service "agent", op "turn".
 *
 * Request body: {"text": str, "message_id": str?, "agent": str?}; the reply
 * is the turn's FINAL data, reduced to the documented fields
 * (docs/gateway.md). A message_id is generated when the client sends none;
 * clients that may retry should send their own, so a retry is answered with
 * the stored reply instead of running the turn again.
 */
#include <stdio.h>
#include <string.h>

#include "gateway_internal.h"
#include "json_io.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_text.h"
#include "validate.h"

static int append_lit(gateway_buf_t *b, const char *lit)
{
    return gateway_buf_append(b, lit, strlen(lit), GATEWAY_JSON_OUT_MAX);
}

static int append_json_str(gateway_buf_t *b, const json_t *s)
{
    return gateway_json_append_str(b, json_string_value(s), json_string_length(s));
}

/*
 * Write the 200 body from the FINAL data. Written by hand (no tree) since
 * this is the hot path. Returns 0, MESH_EPROTO (data lacks a string "reply")
 * or MESH_ENOMEM/MESH_ETOOBIG.
 */
static int turn_body(gateway_buf_t *b, const gateway_call_t *call, const json_t *data)
{
    const json_t *reply = json_object_get(data, "reply");
    if (!json_is_object(data) || !json_is_string(reply))
        return MESH_EPROTO;
    const json_t *conv = json_object_get(data, "conversation_id");
    const json_t *mid = json_object_get(data, "message_id");
    const json_t *agent = json_object_get(data, "agent");
    const json_t *calls = json_object_get(data, "tool_calls");
    const json_t *steps = json_object_get(data, "steps");
    int rc = 0;
    b->len = 0;
    rc |= append_lit(b, "{\"conversation_id\":");
    rc |= json_is_string(conv) ? append_json_str(b, conv)
                               : gateway_json_append_str(b, call->conv, strlen(call->conv));
    rc |= append_lit(b, ",\"message_id\":");
    rc |= json_is_string(mid)
              ? append_json_str(b, mid)
              : gateway_json_append_str(b, call->message_id, strlen(call->message_id));
    rc |= append_lit(b, ",\"agent\":");
    rc |= json_is_string(agent) ? append_json_str(b, agent) : append_lit(b, "null");
    rc |= append_lit(b, ",\"reply\":");
    rc |= append_json_str(b, reply);
    rc |= append_lit(b, ",\"tool_calls\":[");
    size_t i;
    const json_t *tc;
    bool first = true;
    json_array_foreach(calls, i, tc)
    {
        const json_t *name = json_object_get(tc, "name");
        if (!json_is_string(name))
            continue;
        rc |= append_lit(b, first ? "{\"name\":" : ",{\"name\":");
        rc |= append_json_str(b, name);
        rc |= append_lit(b, json_is_true(json_object_get(tc, "ok")) ? ",\"ok\":true}"
                                                                    : ",\"ok\":false}");
        first = false;
    }
    rc |= append_lit(b, "],\"duplicate\":");
    rc |= append_lit(b, json_is_true(json_object_get(data, "duplicate")) ? "true" : "false");
    if (json_is_integer(steps) && json_integer_value(steps) >= 0) {
        char num[32];
        snprintf(num, sizeof(num), ",\"steps\":%lld", (long long)json_integer_value(steps));
        rc |= append_lit(b, num);
    }
    rc |= append_lit(b, "}");
    /* Every step returns 0 or a negative code; OR-ing keeps "some failure". */
    return rc < 0 ? MESH_ENOMEM : 0;
}

static void turn_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    if (!final)
        return; /* streaming (PARTIAL deltas) is not exposed on this route */
    gateway_call_t *call = arg;
    gateway_t *gw = call->gw;
    gateway_http_conn_t *conn = call->conn;
    gateway_call_done(call);
    if (rep->status != 0) {
        gateway_respond_status(conn, rep->status, rep->err);
    } else {
        int rc = turn_body(&gw->scratch, call, rep->data);
        if (rc == MESH_EPROTO)
            gateway_http_conn_respond_error(conn, 502, "bad_gateway",
                                            "the router's turn reply has no reply text", NULL);
        else if (rc < 0)
            gateway_http_conn_respond_error(conn, 500, "internal_error", mesh_strerror(rc), NULL);
        else
            gateway_http_conn_respond(conn, 200, NULL, NULL, gw->scratch.data, gw->scratch.len);
    }
    gateway_call_put(call);
}

static void invalid_field(gateway_http_conn_t *conn, const char *msg)
{
    gateway_http_conn_respond_error(conn, 400, "invalid_field", msg, NULL);
}

/*
 * An optional string field: absent or null -> *out NULL and 1; a string that
 * passes valid() -> *out set and 1; anything else -> 0.
 */
static int optional_token(const json_t *body, const char *key, int (*valid)(const char *, size_t),
                          const json_t **out)
{
    const json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_string(v) || !valid(json_string_value(v), json_string_length(v)))
        return 0;
    *out = v;
    return 1;
}

void gateway_route_turn(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                        const char *conv, size_t conv_len)
{
    json_t *body = NULL;
    mesh_request_t mreq = {0};
    char err[160];

    if (!mesh_conv_id_valid(conv, conv_len)) {
        gateway_http_conn_respond_error(conn, 400, "invalid_conversation_id",
                                        "conversation id must be 1..128 bytes of [A-Za-z0-9._:-]",
                                        NULL);
        goto out;
    }
    const gateway_hdr_t *ct = &req->hdr[GATEWAY_HDR_CONTENT_TYPE];
    if (ct->state != GATEWAY_HDR_ABSENT &&
        (ct->state != GATEWAY_HDR_PRESENT || !gateway_content_type_json(ct->value, ct->len))) {
        gateway_http_conn_respond_error(conn, 415, "unsupported_media_type",
                                        "Content-Type must be application/json", NULL);
        goto out;
    }
    if (gateway_json_parse_object(req->body, req->body_len, &body, err, sizeof(err)) < 0) {
        gateway_http_conn_respond_error(conn, 400, "invalid_json", err, NULL);
        goto out;
    }
    json_t *text = json_object_get(body, "text");
    if (!json_is_string(text) || json_string_length(text) == 0 ||
        json_string_length(text) > MESH_TEXT_MAX ||
        !mesh_utf8_valid(json_string_value(text), json_string_length(text))) {
        invalid_field(conn, "text: required, a string of 1..65536 bytes of UTF-8");
        goto out;
    }
    const json_t *mid, *agent;
    if (!optional_token(body, "message_id", gateway_message_id_valid, &mid)) {
        invalid_field(conn, "message_id: optional, a string of 1..64 bytes of [A-Za-z0-9._:-]");
        goto out;
    }
    if (!optional_token(body, "agent", gateway_agent_valid, &agent)) {
        invalid_field(conn, "agent: optional, a string of 1..64 bytes of [A-Za-z0-9._-]");
        goto out;
    }
    if (gateway_request_common(gw, conn, req, &mreq) < 0)
        goto out;

    gateway_call_t *call = gateway_call_get(gw, conn, GATEWAY_CALL_TURN);
    if (!call) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        goto out;
    }
    memcpy(call->conv, conv, conv_len);
    call->conv[conv_len] = '\0';
    if (mid) {
        memcpy(call->message_id, json_string_value(mid), json_string_length(mid) + 1);
    } else {
        char gen[33];
        mesh_id_new(gen);
        memcpy(call->message_id, gen, sizeof(gen));
    }
    memcpy(mreq.op, "turn", sizeof("turn"));
    memcpy(mreq.conv, call->conv, conv_len + 1);
    mreq.args = json_object();
    if (!mreq.args ||
        json_object_set_new(mreq.args, "message_id", json_string(call->message_id)) < 0 ||
        json_object_set(mreq.args, "text", text) < 0 ||
        (agent && json_object_set(mreq.args, "agent", (json_t *)agent) < 0)) {
        gateway_call_put(call);
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        goto out;
    }
    gateway_call_send(call, "agent", &mreq, turn_reply);
out:
    mesh_request_clear(&mreq);
    json_decref(body);
}
