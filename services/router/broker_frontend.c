/*
 * broker_frontend.c - the client side of the broker (frontend ROUTER socket).
 *
 * Clients (gateways) send REQUEST, HEARTBEAT and DISCONNECT. A REQUEST is
 * routed by service: "agent" to the agent loop, "mmi.service" answered here,
 * other "mmi.*" -> MESH_EUNKNOWNOP, anything else forwarded to a worker.
 * A body that fails mesh_request_decode is answered with FINAL EPROTO when
 * its id can still be read, else dropped and logged. CANCEL (never
 * answered) drops or cancels the client's own request (on_cancel).
 */
#include "broker_int.h"

#include "agent_loop.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_mp.h"

#define LOG_SUB "broker"

/* Best effort: the "id" of a body that failed full validation, if it is a
 * well-formed msgpack map with a plausible id. 1 when found. */
static int peek_id(const void *body, size_t len, char out[MESH_ID_MAX + 1])
{
    json_t *v = NULL;
    if (!body || mesh_mp_decode(body, len, &v) != 0)
        return 0;
    int found = 0;
    const char *id = json_is_object(v) ? json_string_value(json_object_get(v, "id")) : NULL;
    size_t n = id ? strlen(id) : 0;
    if (n >= 1 && n <= MESH_ID_MAX) {
        found = 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)id[i];
            if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
                found = 0;
        }
        if (found)
            memcpy(out, id, n + 1);
    }
    json_decref(v);
    return found;
}

static bool is_service(const mesh_proto_msg_t *m, const char *name)
{
    size_t n = strlen(name);
    return m->service_len == n && memcmp(m->service, name, n) == 0;
}

static bool is_mmi(const mesh_proto_msg_t *m)
{
    size_t n = sizeof(ROUTER_SERVICE_MMI_PREFIX) - 1;
    return m->service_len >= n && memcmp(m->service, ROUTER_SERVICE_MMI_PREFIX, n) == 0;
}

static void mmi_service(router_broker_t *b, const mesh_frame_t *ident, const mesh_request_t *req)
{
    const char *svc = json_string_value(json_object_get(req->args, "service"));
    if (!svc || !mesh_proto_service_valid(svc, strlen(svc))) {
        router_broker_client_error(b, ident->data, ident->size, ROUTER_SERVICE_MMI_SERVICE, req->id,
                                   MESH_EPROTO, "args.service: required service name");
        return;
    }
    uint32_t n = router_broker_workers(b, svc);
    if (n == 0) {
        router_broker_client_error(b, ident->data, ident->size, ROUTER_SERVICE_MMI_SERVICE, req->id,
                                   MESH_ENOTFOUND, "no worker for this service");
        return;
    }
    mesh_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    memcpy(rep.id, req->id, sizeof(rep.id));
    rep.data = json_pack("{s:s, s:I}", "service", svc, "workers", (json_int_t)n);
    router_broker_client_reply(b, ident->data, ident->size, ROUTER_SERVICE_MMI_SERVICE, true, &rep);
    mesh_reply_clear(&rep);
}

/* The agent loop's cancel, when the agent handler is the agent loop (the
 * only handler the router installs; tests may install others, which then
 * get no cancel). */
static void agent_cancel(router_broker_t *b, const void *client, size_t client_len, const char *id)
{
    if (b->agent_fn == router_agent_loop_handle && b->agent_arg)
        router_agent_loop_cancel(b->agent_arg, client, client_len, id);
}

static const char *forward_error(int rc)
{
    switch (rc) {
    case MESH_EINVAL:
        return "request id already in flight";
    case MESH_EBUSY:
        return "service queue full, try again later";
    case MESH_ENOWORKER:
        return "too many distinct services";
    default:
        return NULL;
    }
}

static void on_request(router_broker_t *b, const mesh_frame_t *frames, size_t n,
                       const mesh_proto_msg_t *m)
{
    const mesh_frame_t *ident = &frames[0];
    char service[MESH_SERVICE_MAX + 1];
    memcpy(service, m->service, m->service_len);
    service[m->service_len] = '\0';

    mesh_request_t req;
    int rc = mesh_request_decode(m->body, m->body_len, &req);
    if (rc) {
        char id[MESH_ID_MAX + 1];
        router__log_bad(b, MESH_SIDE_CLIENT, frames, n, "invalid REQUEST body");
        if (peek_id(m->body, m->body_len, id))
            router_broker_client_error(b, ident->data, ident->size, service, id, MESH_EPROTO,
                                       rc == MESH_ETOOBIG ? "request body over a size limit"
                                                          : "malformed request body");
        return;
    }
    if (b->draining) {
        router_broker_client_error(b, ident->data, ident->size, service, req.id, MESH_EUNAVAIL,
                                   "router is shutting down");
    } else if (is_service(m, ROUTER_SERVICE_AGENT)) {
        if (b->agent_fn)
            b->agent_fn(b->agent_arg, ident->data, ident->size, &req);
        else
            router_broker_client_error(b, ident->data, ident->size, service, req.id, MESH_EUNAVAIL,
                                       "agent loop not available");
    } else if (is_service(m, ROUTER_SERVICE_MMI_SERVICE)) {
        mmi_service(b, ident, &req);
    } else if (is_mmi(m)) {
        router_broker_client_error(b, ident->data, ident->size, service, req.id, MESH_EUNKNOWNOP,
                                   "unknown mmi service");
    } else {
        rc = router__forward(b, ident->data, ident->size, m->service, m->service_len, &req);
        if (rc)
            router_broker_client_error(b, ident->data, ident->size, service, req.id, rc,
                                       forward_error(rc));
    }
    mesh_request_clear(&req);
}

/*
 * CANCEL {v, id}: the client gave up on request id. Never answered. A
 * forwarded request is dropped from its queue or cancelled at its worker;
 * an agent turn is handed to the agent loop's cancel.
 */
static void on_cancel(router_broker_t *b, const mesh_frame_t *frames, size_t n,
                      const mesh_proto_msg_t *m)
{
    const mesh_frame_t *ident = &frames[0];
    char id[MESH_ID_MAX + 1];
    if (mesh_cancel_decode(m->body, m->body_len, id) != 0) {
        router__log_bad(b, MESH_SIDE_CLIENT, frames, n, "invalid CANCEL body");
        return;
    }
    char svc[MESH_SERVICE_MAX + 1];
    memcpy(svc, m->service, m->service_len);
    svc[m->service_len] = '\0';
    mesh_log_debug(LOG_SUB, "CANCEL from a client for %s request %s", svc, id);
    if (is_service(m, ROUTER_SERVICE_AGENT)) {
        agent_cancel(b, ident->data, ident->size, id);
        return;
    }
    if (is_mmi(m))
        return; /* answered at once: nothing left to cancel */
    if (router_broker_cancel_client(b, ident->data, ident->size, id) != 0)
        mesh_log_debug(LOG_SUB, "CANCEL for a request that is not in flight ignored");
}

void router__frontend_recv(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n, void *arg)
{
    router_broker_t *b = arg;
    if (n < 2 || frames[0].size == 0 || frames[0].size > ROUTER_IDENTITY_MAX) {
        router__log_bad(b, MESH_SIDE_CLIENT, frames, n, "too few frames");
        return;
    }
    mesh_proto_msg_t m;
    int rc = mesh_proto_decode(frames + 1, n - 1, MESH_SIDE_CLIENT, b->max_body, &m);
    if (rc) {
        router__log_bad(b, MESH_SIDE_CLIENT, frames, n,
                        rc == MESH_ETOOBIG ? "body too large" : "malformed frames");
        return;
    }
    bool created = false;
    router_client_t *c;
    switch (m.cmd) {
    case MESH_C_REQUEST:
        router__client_touch(b, frames[0].data, frames[0].size, &created);
        on_request(b, frames, n, &m);
        break;
    case MESH_C_HEARTBEAT:
        c = router__client_touch(b, frames[0].data, frames[0].size, &created);
        /* Answer a new client at once so it sees this router alive without
         * waiting for the heartbeat tick; later, the tick keeps it fed. */
        if (created || (c && mesh_hb_send_due(&c->hb, router__now(b)))) {
            if (router__send(b->front, frames[0].data, frames[0].size, MESH_SIDE_CLIENT,
                             MESH_C_HEARTBEAT, NULL, NULL, 0) == 0 &&
                c)
                mesh_hb_on_sent(&c->hb, router__now(b));
        }
        break;
    case MESH_C_CANCEL:
        router__client_touch(b, frames[0].data, frames[0].size, &created);
        on_cancel(b, frames, n, &m);
        break;
    case MESH_C_DISCONNECT:
        c = router_map_get(b->clients, frames[0].data, frames[0].size);
        if (c) {
            router_map_del(b->clients, c->identity, c->identity_len);
            free(c);
        }
        break;
    default:
        /* PARTIAL and FINAL travel router -> client only. */
        router__log_bad(b, MESH_SIDE_CLIENT, frames, n, "command not valid from a client");
        break;
    }
}
