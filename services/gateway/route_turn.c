/*
 * route_turn.c - POST /v1/conversations/{id}/messages: one conversational
 * turn, sent to a router as service "agent", op "turn".
 *
 * Request body: {"text": str, "message_id": str?, "agent": str?}; the reply
 * is the turn's FINAL data, reduced to the documented fields
 * (docs/gateway.md). A message_id is generated when the client sends none;
 * clients that may retry should send their own, so a retry is answered with
 * the stored reply instead of running the turn again.
 *
 * With "Accept: text/event-stream" the turn runs with stream=true and the
 * answer is a Server-Sent Events stream (gw_sse.h, docs/gateway.md): the
 * turn's PARTIALs become `delta` {"text"}, `tool` and `handoff` events, the
 * FINAL a `final` event carrying the same JSON as the 200 body, a failure
 * an `error` event {"error":{code,message}}. A client that disconnects
 * mid-stream cancels the turn (mesh_client_cancel sends CANCEL).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gateway_internal.h"
#include "gw_sse.h"
#include "json_io.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_text.h"
#include "validate.h"

#include <stdlib.h>

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
    /* Contract 4 additions, passed through as the router made them. */
    static const char *const extra[] = {"usage", "model", "state", "handoff", "fallback", "triage"};
    for (size_t k = 0; k < sizeof(extra) / sizeof(extra[0]); k++) {
        const json_t *v = json_object_get(data, extra[k]);
        if (!v || json_is_null(v))
            continue;
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s) {
            rc |= MESH_ENOMEM;
            continue;
        }
        rc |= append_lit(b, ",\"");
        rc |= append_lit(b, extra[k]);
        rc |= append_lit(b, "\":");
        rc |= append_lit(b, s);
        free(s);
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

int gateway_wants_sse(const gateway_http_req_t *req)
{
    const gateway_hdr_t *h = &req->hdr[GATEWAY_HDR_ACCEPT];
    static const char want[] = "text/event-stream";
    if (h->state != GATEWAY_HDR_PRESENT)
        return 0;
    for (size_t i = 0; i + sizeof(want) - 1 <= h->len; i++)
        if (strncasecmp(h->value + i, want, sizeof(want) - 1) == 0)
            return 1;
    return 0;
}

/* Send one event whose data is the compact JSON of v. 0 or MESH_E* (then the
 * connection may be closed and the call freed by its abort callback). */
static int sse_json(gateway_call_t *call, const char *event, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return MESH_ENOMEM;
    int rc = gateway_sse_send(call->sse, event, s, strlen(s));
    free(s);
    return rc;
}

/*
 * The delta event {"text": delta}: the hot path of a streamed turn, one per
 * token. jansson writes the string into the reused scratch buffer (same
 * escaping as json_dumps of the object, without building the object or
 * allocating its text). 0 or MESH_E* as sse_json.
 */
static int sse_delta(gateway_call_t *call, const json_t *delta)
{
    static const char open[] = "{\"text\":";
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    gateway_buf_t *b = &call->gw->scratch;
    b->len = 0;
    int rc = gateway_buf_append(b, open, sizeof(open) - 1, GATEWAY_JSON_OUT_MAX);
    if (rc < 0)
        return rc;
    size_t need = json_dumpb(delta, b->data + b->len, b->cap - b->len, flags);
    if (need == 0)
        return MESH_ENOMEM;
    if (need > b->cap - b->len) {
        if ((rc = gateway_buf_reserve(b, need, GATEWAY_JSON_OUT_MAX)) < 0)
            return rc;
        if (json_dumpb(delta, b->data + b->len, b->cap - b->len, flags) != need)
            return MESH_ENOMEM;
    }
    b->len += need;
    if ((rc = gateway_buf_append(b, "}", 1, GATEWAY_JSON_OUT_MAX)) < 0)
        return rc;
    return gateway_sse_send(call->sse, "delta", b->data, b->len);
}

/* A PARTIAL of a streamed turn: {delta}, {tool} or {handoff} (contract 4). */
static void stream_partial(gateway_call_t *call, const json_t *data)
{
    const json_t *delta = json_object_get(data, "delta");
    const json_t *tool = json_object_get(data, "tool");
    const json_t *handoff = json_object_get(data, "handoff");
    if (json_is_string(delta) && json_string_length(delta) > 0 && sse_delta(call, delta) != 0)
        return;
    if (json_is_object(tool) && sse_json(call, "tool", tool) != 0)
        return;
    if (json_is_object(handoff))
        sse_json(call, "handoff", handoff);
}

static void turn_stream_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    gateway_call_t *call = arg;
    if (!final) {
        stream_partial(call, rep->data);
        return;
    }
    gateway_t *gw = call->gw;
    gateway_call_done(call);
    gateway_buf_t *b = &gw->scratch;
    int rc = rep->status != 0 ? MESH_EIO : turn_body(b, call, rep->data);
    if (rc == 0) {
        gateway_sse_send(call->sse, "final", b->data, b->len);
    } else {
        const char *code = rep->status != 0    ? mesh_err_name(rep->status)
                           : rc == MESH_EPROTO ? "bad_gateway"
                                               : "internal_error";
        const char *msg = rep->status != 0 ? (rep->err[0] ? rep->err : mesh_strerror(rep->status))
                          : rc == MESH_EPROTO ? "the router's turn reply has no reply text"
                                              : mesh_strerror(rc);
        b->len = 0;
        if (gateway_json_error_body(b, code, msg) == 0)
            gateway_sse_send(call->sse, "error", b->data, b->len);
    }
    gateway_sse_end(&call->sse);
    gateway_call_put(call);
}

/*
 * The request was sent: answer with an event stream. When the stream cannot
 * start, the request is cancelled and a 503 answered if the connection is
 * still there (a failed head write closed it, and its abort freed the call).
 */
static void turn_stream_start(gateway_t *gw, gateway_call_t *call)
{
    gateway_http_conn_t *conn = call->conn;
    int rc;
    call->sse = gateway_sse_start(gw->loop, conn, gw->cfg.sse_heartbeat_ms, NULL, &rc);
    if (call->sse)
        return;
    if (gateway_http_conn_req(conn) && !gateway_http_conn_streaming(conn)) {
        mesh_client_cancel(gw->client, call->handle);
        gateway_call_done(call);
        gateway_call_put(call);
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", mesh_strerror(rc), NULL);
    }
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
    bool sse = gateway_wants_sse(req);
    mreq.args = json_object();
    if (!mreq.args ||
        json_object_set_new(mreq.args, "message_id", json_string(call->message_id)) < 0 ||
        json_object_set(mreq.args, "text", text) < 0 ||
        (agent && json_object_set(mreq.args, "agent", (json_t *)agent) < 0) ||
        (sse && json_object_set_new(mreq.args, "stream", json_true()) < 0)) {
        gateway_call_put(call);
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        goto out;
    }
    if (gateway_call_send(call, "agent", &mreq, sse ? turn_stream_reply : turn_reply) == 0 && sse)
        turn_stream_start(gw, call);
out:
    mesh_request_clear(&mreq);
    json_decref(body);
}
