/*
 * broker_backend.c - the worker side of the broker (backend ROUTER socket).
 *
 * Every message is validated (frame shape by mesh_proto_decode, then the
 * body by its decoder) before any state is touched. 18/MDP rules:
 *   - a worker record exists only after a valid READY;
 *   - READY for "mmi.*" (or the router's own "agent") -> DISCONNECT, no record;
 *   - a second READY from a known worker -> DISCONNECT, worker removed;
 *   - any other command from an unknown worker -> DISCONNECT;
 *   - DISCONNECT from a worker -> removed; any traffic counts as heartbeat.
 */
#include "broker_int.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

#define LOG_SUB "broker"

static void send_disconnect(router_broker_t *b, const mesh_frame_t *ident)
{
    router__send(b->back, ident->data, ident->size, MESH_SIDE_WORKER, MESH_W_DISCONNECT, NULL, NULL,
                 0);
}

static bool service_refused(const char *s, size_t len)
{
    size_t mmi = sizeof(ROUTER_SERVICE_MMI_PREFIX) - 1;
    if (len >= mmi && memcmp(s, ROUTER_SERVICE_MMI_PREFIX, mmi) == 0)
        return true;
    return len == sizeof(ROUTER_SERVICE_AGENT) - 1 && memcmp(s, ROUTER_SERVICE_AGENT, len) == 0;
}

static void on_ready(router_broker_t *b, const mesh_frame_t *frames, size_t n,
                     const mesh_proto_msg_t *m, router_worker_t *w)
{
    const mesh_frame_t *ident = &frames[0];
    if (w) {
        send_disconnect(b, ident);
        router__worker_remove(b, w, "second READY");
        return;
    }
    if (service_refused(m->service, m->service_len)) {
        router__log_bad(b, MESH_SIDE_WORKER, frames, n, "READY for a reserved service");
        send_disconnect(b, ident);
        return;
    }
    mesh_ready_t rdy;
    int rc = mesh_ready_decode(m->body, m->body_len, &rdy);
    if (rc) {
        router__log_bad(b, MESH_SIDE_WORKER, frames, n, "invalid READY body");
        send_disconnect(b, ident);
        return;
    }
    if (router_map_count(b->workers) >= ROUTER_WORKERS_MAX) {
        mesh_log_warn(LOG_SUB, "worker limit %d reached, READY refused", ROUTER_WORKERS_MAX);
        send_disconnect(b, ident);
        return;
    }
    router_pool_t *p = router__pool_get(b, m->service, m->service_len, true);
    w = calloc(1, sizeof(*w));
    if (!p || !w)
        goto refuse;
    memcpy(w->identity, ident->data, ident->size);
    w->identity_len = ident->size;
    w->capacity = rdy.capacity;
    router_list_init(&w->reqs);
    uint64_t now = router__now(b);
    mesh_hb_init(&w->hb, b->opts.heartbeat_ms, b->opts.liveness, 1, 1, now);
    if (router_pool_add_worker(p, w) != 0)
        goto refuse;
    if (router_map_put(b->workers, w->identity, w->identity_len, w) != 0) {
        router_pool_remove_worker(p, w, now);
        goto refuse;
    }
    char id[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_log_sanitize(w->identity, w->identity_len, id, sizeof(id));
    mesh_log_info(LOG_SUB, "worker '%s' ready for %s, capacity %u (%zu workers)", id, p->name,
                  w->capacity, p->n_workers);
    router__dispatch(b, p);
    return;
refuse:
    mesh_log_error(LOG_SUB, "out of memory registering a worker");
    free(w);
    send_disconnect(b, ident);
    router__pool_gc(b, p);
}

static void on_reply(router_broker_t *b, const mesh_frame_t *frames, size_t n,
                     const mesh_proto_msg_t *m, router_worker_t *w)
{
    mesh_reply_t rep;
    int rc = mesh_reply_decode(m->body, m->body_len, &rep);
    if (rc) {
        router__log_bad(b, MESH_SIDE_WORKER, frames, n,
                        m->cmd == MESH_W_FINAL ? "invalid FINAL body" : "invalid PARTIAL body");
        return;
    }
    router_req_t *req = router_map_get(b->reqs, rep.id, strlen(rep.id));
    if (!req || req->state != REQ_INFLIGHT || req->worker != w) {
        /* Late answer after a retry elsewhere, or a confused worker. */
        mesh_log_debug(LOG_SUB, "reply for request %s not assigned to this worker dropped", rep.id);
        mesh_reply_clear(&rep);
        return;
    }
    router__req_reply(b, req, m->cmd == MESH_W_FINAL, &rep, m->body, m->body_len);
    mesh_reply_clear(&rep);
}

void router__backend_recv(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n, void *arg)
{
    router_broker_t *b = arg;
    if (n < 2 || frames[0].size == 0 || frames[0].size > ROUTER_IDENTITY_MAX) {
        router__log_bad(b, MESH_SIDE_WORKER, frames, n, "too few frames");
        return;
    }
    mesh_proto_msg_t m;
    int rc = mesh_proto_decode(frames + 1, n - 1, MESH_SIDE_WORKER, b->max_body, &m);
    if (rc) {
        router__log_bad(b, MESH_SIDE_WORKER, frames, n,
                        rc == MESH_ETOOBIG ? "body too large" : "malformed frames");
        return;
    }
    router_worker_t *w = router_map_get(b->workers, frames[0].data, frames[0].size);
    if (w)
        mesh_hb_on_traffic(&w->hb, router__now(b));

    switch (m.cmd) {
    case MESH_W_READY:
        on_ready(b, frames, n, &m, w);
        break;
    case MESH_W_HEARTBEAT:
        if (!w)
            send_disconnect(b, &frames[0]);
        break;
    case MESH_W_DISCONNECT:
        if (w)
            router__worker_remove(b, w, "worker sent DISCONNECT");
        break;
    case MESH_W_PARTIAL:
    case MESH_W_FINAL:
        if (!w) {
            router__log_bad(b, MESH_SIDE_WORKER, frames, n, "reply from an unregistered worker");
            send_disconnect(b, &frames[0]);
            break;
        }
        on_reply(b, frames, n, &m, w);
        break;
    default:
        /* REQUEST travels router -> worker only. */
        router__log_bad(b, MESH_SIDE_WORKER, frames, n, "command not valid from a worker");
        send_disconnect(b, &frames[0]);
        if (w)
            router__worker_remove(b, w, "protocol violation");
        break;
    }
}
