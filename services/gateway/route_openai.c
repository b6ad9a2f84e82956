/*
 * route_openai.c - the OpenAI-compatible front door (docs/gateway.md):
 *
 *   POST /v1/chat/completions   one turn of the digital worker named by
 *                               `model`; a chat.completion, or with
 *                               "stream": true chat.completion.chunk events
 *                               ending with "data: [DONE]"
 *   GET  /v1/models             every agent of MESH_DATA_DIR/agents
 *
 * Conversation id: header X-Mesh-Conversation-Id, else the `user` field
 * (openai_req.h maps it), else a fresh one; it is always returned in the
 * X-Mesh-Conversation-Id response header. Message id: header
 * X-Mesh-Message-Id, else derived from the request (gateway_oai_message_id)
 * so a retried request gets the stored answer. Only the last user message
 * is sent: the conversation's history lives in the mesh, not in the client.
 * Errors use OpenAI's shape {"error": {"message", "type", "param", "code"}}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway_internal.h"
#include "gw_agents.h"
#include "gw_sse.h"
#include "json_io.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "openai_req.h"
#include "validate.h"

/* "X-Mesh-Conversation-Id: " + id + CRLF */
#define CONV_HDR_MAX (32 + MESH_CONV_MAX)

static void respond_oai_error(gateway_http_conn_t *conn, const gateway_oai_err_t *err,
                              const char *extra)
{
    char *body = gateway_oai_err_json(err);
    if (!body) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    gateway_http_conn_respond(conn, err->http_status, NULL, extra, body, strlen(body));
    free(body);
}

/* OpenAI error for a mesh status (the turn failed). */
static void oai_err_of_status(int status, const char *msg, gateway_oai_err_t *err)
{
    const char *m = (msg && msg[0]) ? msg : mesh_strerror(status);
    switch (status) {
    case MESH_EINVAL:
    case MESH_EPROTO:
    case MESH_ETOOBIG:
        gateway_oai_err_set(err, 400, "invalid_request_error", NULL, mesh_err_name(status), "%s",
                            m);
        break;
    case MESH_ENOTFOUND:
        gateway_oai_err_set(err, 404, "invalid_request_error", "model", "model_not_found", "%s", m);
        break;
    case MESH_EBUSY:
        gateway_oai_err_set(err, 429, "rate_limit_error", NULL, "overloaded", "%s", m);
        break;
    case MESH_ENOWORKER:
    case MESH_EUNAVAIL:
        gateway_oai_err_set(err, 503, "server_error", NULL, mesh_err_name(status), "%s", m);
        break;
    case MESH_ETIMEDOUT:
        gateway_oai_err_set(err, 504, "server_error", NULL, "timeout", "%s", m);
        break;
    default:
        gateway_oai_err_set(err, 500, "server_error", NULL, mesh_err_name(status), "%s", m);
        break;
    }
}

static const char *retry_hdr(int http)
{
    return (http == 429 || http == 503) ? "Retry-After: 1\r\n" : NULL;
}

/* ---- usage ---------------------------------------------------------------- */

/* Tokens from the turn's usage, else a 4-bytes-per-token estimate. */
static void usage_of(const gateway_call_t *call, const json_t *data, const char *reply,
                     json_int_t *prompt, json_int_t *completion)
{
    const json_t *u = json_object_get(data, "usage");
    const json_t *p = json_object_get(u, "prompt_tokens");
    const json_t *c = json_object_get(u, "completion_tokens");
    *prompt = json_is_integer(p) && json_integer_value(p) >= 0
                  ? json_integer_value(p)
                  : (json_int_t)((call->prompt_chars + 3) / 4);
    *completion = json_is_integer(c) && json_integer_value(c) >= 0
                      ? json_integer_value(c)
                      : (json_int_t)((strlen(reply) + 3) / 4);
}

static json_t *usage_json(json_int_t p, json_int_t c)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", p, "completion_tokens", c, "total_tokens",
                     p + c);
}

/* ---- non-streamed --------------------------------------------------------- */

static void chat_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)client;
    if (!final)
        return;
    gateway_call_t *call = arg;
    gateway_t *gw = call->gw;
    gateway_http_conn_t *conn = call->conn;
    gateway_call_done(call);
    char hdr[CONV_HDR_MAX];
    snprintf(hdr, sizeof(hdr), "X-Mesh-Conversation-Id: %s\r\n", call->conv);
    const char *reply = json_string_value(json_object_get(rep->data, "reply"));
    gateway_oai_err_t err;
    if (rep->status != 0 || !reply) {
        if (rep->status != 0)
            oai_err_of_status(rep->status, rep->err, &err);
        else
            gateway_oai_err_set(&err, 502, "server_error", NULL, "bad_gateway",
                                "the router's turn reply has no reply text");
        char both[CONV_HDR_MAX + 32];
        snprintf(both, sizeof(both), "%s%s", hdr,
                 retry_hdr(err.http_status) ? "Retry-After: 1\r\n" : "");
        respond_oai_error(conn, &err, both);
        gateway_call_put(call);
        return;
    }
    json_int_t pt, ct;
    usage_of(call, rep->data, reply, &pt, &ct);
    json_t *body = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:o}", "id",
                             call->completion_id, "object", "chat.completion", "created",
                             (json_int_t)call->created, "model", call->model, "choices", "index", 0,
                             "message", "role", "assistant", "content", reply, "finish_reason",
                             "stop", "usage", usage_json(pt, ct));
    int rc = body ? gateway_json_dump(&gw->scratch, body) : MESH_ENOMEM;
    json_decref(body);
    if (rc != 0) {
        gateway_oai_err_set(&err, 500, "server_error", NULL, "internal_error", "%s",
                            mesh_strerror(rc));
        respond_oai_error(conn, &err, hdr);
    } else {
        gateway_http_conn_respond(conn, 200, NULL, hdr, gw->scratch.data, gw->scratch.len);
    }
    gateway_call_put(call);
}

/* ---- streamed ------------------------------------------------------------- */

/* One chat.completion.chunk event: delta (owned, may be NULL for no choices),
 * finish_reason (NULL: null), usage (owned, NULL: none). 0 or MESH_E*. */
static int send_chunk(gateway_call_t *call, json_t *delta, const char *finish, json_t *usage)
{
    json_t *choices = json_array();
    if (delta)
        json_array_append_new(choices, json_pack("{s:i, s:o, s:s?}", "index", 0, "delta", delta,
                                                 "finish_reason", finish));
    json_t *chunk = json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", call->completion_id, "object",
                              "chat.completion.chunk", "created", (json_int_t)call->created,
                              "model", call->model, "choices", choices);
    if (chunk && usage)
        json_object_set_new(chunk, "usage", usage);
    else
        json_decref(usage);
    if (!chunk)
        return MESH_ENOMEM;
    char *s = json_dumps(chunk, JSON_COMPACT);
    json_decref(chunk);
    if (!s)
        return MESH_ENOMEM;
    int rc = gateway_sse_send(call->sse, NULL, s, strlen(s));
    free(s);
    return rc;
}

/* The first content chunk carries the role, as OpenAI's do. */
static int send_content(gateway_call_t *call, const char *text, size_t len)
{
    json_t *delta = call->role_sent
                        ? json_pack("{s:s%}", "content", text, len)
                        : json_pack("{s:s, s:s%}", "role", "assistant", "content", text, len);
    if (!delta)
        return MESH_ENOMEM;
    call->role_sent = true;
    return send_chunk(call, delta, NULL, NULL);
}

static void chat_stream_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)client;
    gateway_call_t *call = arg;
    if (!final) {
        const json_t *d = json_object_get(rep->data, "delta");
        if (json_is_string(d) && json_string_length(d) > 0) {
            size_t n = json_string_length(d);
            if (send_content(call, json_string_value(d), n) == 0)
                call->streamed += n;
        }
        return; /* tool and handoff activity has no place in a chat.completion.chunk */
    }
    gateway_call_done(call);
    const char *reply = json_string_value(json_object_get(rep->data, "reply"));
    int rc = 0;
    if (rep->status != 0 || !reply) {
        gateway_oai_err_t err;
        if (rep->status != 0)
            oai_err_of_status(rep->status, rep->err, &err);
        else
            gateway_oai_err_set(&err, 502, "server_error", NULL, "bad_gateway",
                                "the router's turn reply has no reply text");
        char *s = gateway_oai_err_json(&err);
        if (s)
            rc = gateway_sse_send(call->sse, NULL, s, strlen(s));
        free(s);
    } else {
        size_t len = strlen(reply);
        /* What the deltas did not carry (a stored answer, or a reply the
         * model did not stream) goes out as one last content chunk. */
        if (len > call->streamed || !call->role_sent)
            rc = send_content(call, len > call->streamed ? reply + call->streamed : "",
                              len > call->streamed ? len - call->streamed : 0);
        if (rc == 0)
            rc = send_chunk(call, json_object(), "stop", NULL);
        if (rc == 0 && call->include_usage) {
            json_int_t pt, ct;
            usage_of(call, rep->data, reply, &pt, &ct);
            rc = send_chunk(call, NULL, NULL, usage_json(pt, ct));
        }
    }
    if (rc == 0)
        gateway_sse_send_raw(call->sse, "data: [DONE]\n\n", 14);
    gateway_sse_end(&call->sse);
    gateway_call_put(call);
}

/* ---- the route ------------------------------------------------------------ */

/* Headers the common code would refuse in its own shape: refuse them here in OpenAI's. */
static int check_headers(const gateway_http_req_t *req, gateway_oai_err_t *err)
{
    const gateway_hdr_t *h = &req->hdr[GATEWAY_HDR_TENANT];
    if (h->state == GATEWAY_HDR_TOO_LONG ||
        (h->state == GATEWAY_HDR_PRESENT && !gateway_tenant_valid(h->value, h->len)))
        return gateway_oai_err_set(err, 400, "invalid_request_error", NULL, "invalid_tenant",
                                   "X-Mesh-Tenant must be 1..64 bytes of [A-Za-z0-9._-]");
    h = &req->hdr[GATEWAY_HDR_TIMEOUT];
    uint64_t v;
    if (h->state == GATEWAY_HDR_TOO_LONG ||
        (h->state == GATEWAY_HDR_PRESENT &&
         gateway_parse_uint(h->value, h->len, UINT64_MAX, &v) < 0))
        return gateway_oai_err_set(err, 400, "invalid_request_error", NULL, "invalid_timeout",
                                   "X-Mesh-Timeout-Ms must be a positive integer");
    h = &req->hdr[GATEWAY_HDR_CONV_ID];
    if (h->state == GATEWAY_HDR_TOO_LONG ||
        (h->state == GATEWAY_HDR_PRESENT && !mesh_conv_id_valid(h->value, h->len)))
        return gateway_oai_err_set(
            err, 400, "invalid_request_error", NULL, "invalid_conversation_id",
            "X-Mesh-Conversation-Id must be 1..128 bytes of [A-Za-z0-9._:-]");
    h = &req->hdr[GATEWAY_HDR_MESSAGE_ID];
    if (h->state == GATEWAY_HDR_TOO_LONG ||
        (h->state == GATEWAY_HDR_PRESENT && !gateway_message_id_valid(h->value, h->len)))
        return gateway_oai_err_set(err, 400, "invalid_request_error", NULL, "invalid_message_id",
                                   "X-Mesh-Message-Id must be 1..64 bytes of [A-Za-z0-9._:-]");
    const gateway_hdr_t *ct = &req->hdr[GATEWAY_HDR_CONTENT_TYPE];
    if (ct->state != GATEWAY_HDR_ABSENT &&
        (ct->state != GATEWAY_HDR_PRESENT || !gateway_content_type_json(ct->value, ct->len)))
        return gateway_oai_err_set(err, 415, "invalid_request_error", NULL,
                                   "unsupported_media_type",
                                   "Content-Type must be application/json");
    return 0;
}

static void chat_stream_start(gateway_t *gw, gateway_call_t *call, const char *hdr)
{
    gateway_http_conn_t *conn = call->conn;
    int rc;
    call->sse = gateway_sse_start(gw->loop, conn, gw->cfg.sse_heartbeat_ms, hdr, &rc);
    if (call->sse)
        return;
    if (gateway_http_conn_req(conn) && !gateway_http_conn_streaming(conn)) {
        mesh_client_cancel(gw->client, call->handle);
        gateway_call_done(call);
        gateway_call_put(call);
        gateway_oai_err_t err;
        gateway_oai_err_set(&err, 503, "server_error", NULL, "out_of_memory", "%s",
                            mesh_strerror(rc));
        respond_oai_error(conn, &err, hdr);
    }
}

void gateway_route_chat(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req)
{
    gateway_oai_req_t oreq;
    gateway_oai_err_t err;
    mesh_request_t mreq = {0};
    memset(&oreq, 0, sizeof(oreq));

    if (check_headers(req, &err) != 0) {
        respond_oai_error(conn, &err, NULL);
        return;
    }
    if (gateway_oai_parse(req->body, req->body_len, &oreq, &err) != 0) {
        respond_oai_error(conn, &err, NULL);
        return;
    }
    if (gw->agents && !gateway_agents_find(gw->agents, oreq.model, strlen(oreq.model))) {
        gateway_oai_err_set(&err, 404, "invalid_request_error", "model", "model_not_found",
                            "The model '%s' does not exist: GET /v1/models lists the digital "
                            "workers",
                            oreq.model);
        respond_oai_error(conn, &err, NULL);
        goto out;
    }
    if (gateway_request_common(gw, conn, req, &mreq) < 0)
        goto out; /* not reached: check_headers refused what it refuses */

    gateway_call_t *call = gateway_call_get(gw, conn, GATEWAY_CALL_CHAT);
    if (!call) {
        gateway_oai_err_set(&err, 503, "server_error", NULL, "out_of_memory", "out of memory");
        respond_oai_error(conn, &err, NULL);
        goto out;
    }
    const gateway_hdr_t *h = &req->hdr[GATEWAY_HDR_CONV_ID];
    if (h->state == GATEWAY_HDR_PRESENT) {
        memcpy(call->conv, h->value, h->len + 1);
    } else if (oreq.user[0]) {
        memcpy(call->conv, oreq.user, strlen(oreq.user) + 1);
    } else {
        char fresh[33];
        mesh_id_new(fresh);
        snprintf(call->conv, sizeof(call->conv), "oa-%s", fresh);
    }
    h = &req->hdr[GATEWAY_HDR_MESSAGE_ID];
    if (h->state == GATEWAY_HDR_PRESENT)
        memcpy(call->message_id, h->value, h->len + 1);
    else
        gateway_oai_message_id(call->conv, oreq.n_user, oreq.text, oreq.text_len, call->message_id);
    snprintf(call->completion_id, sizeof(call->completion_id), "chatcmpl-%s", call->message_id);
    memcpy(call->model, oreq.model, strlen(oreq.model) + 1);
    call->created = (uint64_t)time(NULL);
    call->include_usage = oreq.include_usage;
    call->prompt_chars = oreq.prompt_chars;

    memcpy(mreq.op, "turn", sizeof("turn"));
    memcpy(mreq.conv, call->conv, strlen(call->conv) + 1);
    mreq.args = json_pack("{s:s, s:s%, s:s, s:b}", "message_id", call->message_id, "text",
                          oreq.text, oreq.text_len, "agent", oreq.model, "stream", oreq.stream);
    if (!mreq.args) {
        gateway_call_put(call);
        gateway_oai_err_set(&err, 503, "server_error", NULL, "out_of_memory", "out of memory");
        respond_oai_error(conn, &err, NULL);
        goto out;
    }
    char hdr[CONV_HDR_MAX];
    snprintf(hdr, sizeof(hdr), "X-Mesh-Conversation-Id: %s\r\n", call->conv);
    if (gateway_call_send(call, "agent", &mreq, oreq.stream ? chat_stream_reply : chat_reply) ==
            0 &&
        oreq.stream)
        chat_stream_start(gw, call, hdr);
out:
    mesh_request_clear(&mreq);
    gateway_oai_req_clear(&oreq);
}

void gateway_route_models(gateway_t *gw, gateway_http_conn_t *conn)
{
    json_t *data = json_array();
    json_t *body = json_pack("{s:s, s:o}", "object", "list", "data", data);
    int rc = body ? 0 : MESH_ENOMEM;
    for (size_t i = 0; rc == 0 && i < gateway_agents_count(gw->agents); i++) {
        const gateway_agent_t *a = gateway_agents_at(gw->agents, i);
        if (json_array_append_new(data,
                                  json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", a->name, "object",
                                            "model", "created", (json_int_t)a->created, "owned_by",
                                            "mesh", "description", a->description)) != 0)
            rc = MESH_ENOMEM;
    }
    if (rc != 0) {
        json_decref(body);
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    gateway_respond_json(gw, conn, 200, body);
    json_decref(body);
}
