/*
 * route_claims.h - GET /v1/claims/{claim_no}: a registered claim, read
 * through the router from a memory worker (service "memory", op "tool.call",
 * tool "claim.get"; docs/memory.md, "Claims").
 *
 *   200  the claim record {claim_no, conversation_id, tenant, policy_no,
 *        kind, status, facts, summary, registered_at}
 *   400  {"error":{"code":"invalid_claim_no",...}}: not CLM + 14..29 digits
 *   404  {"error":{"code":"not_found",...}}: no such claim (for this tenant)
 *   503/504 as the other routes (no router, no memory worker, Redis down,
 *        deadline)
 */
#ifndef GATEWAY_ROUTE_CLAIMS_H
#define GATEWAY_ROUTE_CLAIMS_H

#include <stddef.h>

#include "gateway.h"
#include "http_conn.h"

/* The path prefix routes.c dispatches here ("/v1/claims/" + claim_no). */
#define GATEWAY_CLAIMS_PREFIX "/v1/claims/"
/* A claim number: "CLM", the date (8 digits), the sequence (at least 6 digits). */
#define GATEWAY_CLAIM_NO_MIN 17
#define GATEWAY_CLAIM_NO_MAX 32

/* 1 if s[0..len) is a well-formed claim number ("CLM" + 14..29 digits). */
int gateway_claim_no_valid(const char *s, size_t len);

/* GET /v1/claims/{claim_no} (claim_no: the path after the prefix, not NUL-terminated). */
void gateway_route_claim(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req,
                         const char *claim_no, size_t len);

#endif
