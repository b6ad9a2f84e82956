/*
 * route_claims.c - GET /v1/claims/{claim_no} (route_claims.h).
 *
 * The claim is read with the memory service's tool.call {name: "claim.get",
 * arguments: {claim_no}}: a tool outcome is data (status 0, {ok, result} or
 * {ok: false, error: {code}}), a transport failure is a status. The request
 * carries the caller's tenant (X-Mesh-Tenant), and memory answers not_found
 * for a claim of another tenant.
 */
#include "route_claims.h"

#include <string.h>

#include "gateway_internal.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

int gateway_claim_no_valid(const char *s, size_t len)
{
    if (s == NULL || len < GATEWAY_CLAIM_NO_MIN || len > GATEWAY_CLAIM_NO_MAX ||
        memcmp(s, "CLM", 3) != 0)
        return 0;
    for (size_t i = 3; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

static void claim_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)client;
    if (!final)
        return;
    gateway_call_t *call = arg;
    gateway_t *gw = call->gw;
    gateway_call_done(call);
    const json_t *data = rep->data;
    if (rep->status != 0) {
        gateway_respond_status(call->conn, rep->status, rep->err);
    } else if (json_is_true(json_object_get(data, "ok")) &&
               json_is_object(json_object_get(data, "result"))) {
        gateway_respond_json(gw, call->conn, 200, json_object_get(data, "result"));
    } else {
        const json_t *e = json_object_get(data, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        if (code != NULL && strcmp(code, mesh_err_name(MESH_ENOTFOUND)) == 0)
            gateway_http_conn_respond_error(call->conn, 404, "not_found", "no such claim", NULL);
        else if (code != NULL && strcmp(code, mesh_err_name(MESH_EBADARGS)) == 0)
            gateway_http_conn_respond_error(call->conn, 400, "invalid_claim_no",
                                            "the claim number was refused", NULL);
        else
            gateway_http_conn_respond_error(call->conn, 502, "bad_gateway",
                                            "the memory service could not read the claim", NULL);
    }
    gateway_call_put(call);
}

void gateway_route_claim(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                         const char *claim_no, size_t len)
{
    mesh_request_t mreq = {0};
    if (!gateway_claim_no_valid(claim_no, len)) {
        gateway_http_conn_respond_error(conn, 400, "invalid_claim_no",
                                        "a claim number is CLM followed by 14..29 digits", NULL);
        return;
    }
    if (gateway_request_common(gw, conn, req, &mreq) < 0)
        return;
    /* Not a turn: the kind only matters to the turn metrics. */
    gateway_call_t *call = gateway_call_get(gw, conn, GATEWAY_CALL_CONV);
    if (!call) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    memcpy(mreq.op, "tool.call", sizeof("tool.call"));
    mreq.idem = true; /* a read: safe to retry on another worker */
    mreq.args =
        json_pack("{s:s, s:{s:s%}}", "name", "claim.get", "arguments", "claim_no", claim_no, len);
    if (!mreq.args) {
        gateway_call_put(call);
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    gateway_call_send(call, "memory", &mreq, claim_reply);
    mesh_request_clear(&mreq);
}
