/*
 * broker.c - broker lifecycle, sockets, timers, heartbeats and client replies.
 *
 * The request machinery lives in broker_req.c, the per-socket protocol
 * handling in broker_backend.c (workers) and broker_frontend.c (clients).
 */
#include "broker_int.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

#define LOG_SUB "broker"

uint64_t router__now(const router_broker_t *b)
{
    return uv_now(b->loop);
}

uint64_t router_broker_now(const router_broker_t *b)
{
    return router__now(b);
}

int router__send(mesh_uvzmq_t *s, const void *ident, size_t ident_len, mesh_side_t side,
                 uint8_t cmd, const char *service, const void *body, size_t body_len)
{
    mesh_frame_t frames[1 + MESH_MAX_FRAMES];
    uint8_t cmd_storage;
    if (!s)
        return MESH_EIO;
    frames[0].data = ident;
    frames[0].size = ident_len;
    int n = mesh_proto_frames(side, cmd, service, body, body_len, &cmd_storage, frames + 1);
    if (n < 0)
        return n;
    return mesh_uvzmq_send(s, frames, (size_t)n + 1);
}

int router__send_worker(router_broker_t *b, router_worker_t *w, uint8_t cmd, const void *body,
                        size_t body_len)
{
    int rc = router__send(b->back, w->identity, w->identity_len, MESH_SIDE_WORKER, cmd, NULL, body,
                          body_len);
    if (rc == 0)
        mesh_hb_on_sent(&w->hb, router__now(b));
    return rc;
}

void router__log_bad(router_broker_t *b, mesh_side_t side, const mesh_frame_t *frames, size_t n,
                     const char *reason)
{
    router_ratelog_t *rl = side == MESH_SIDE_CLIENT ? &b->bad_front : &b->bad_back;
    uint64_t suppressed = 0;
    if (!router_ratelog_allow(rl, router__now(b), &suppressed))
        return;
    char ident[4 * MESH_LOG_SAMPLE_MAX + 4];
    char sample[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_log_sanitize(n > 0 ? frames[0].data : "", n > 0 ? frames[0].size : 0, ident,
                      sizeof(ident));
    /* Show the frame after the identity: the signature, or the garbage in its place. */
    mesh_log_sanitize(n > 1 ? frames[1].data : "", n > 1 ? frames[1].size : 0, sample,
                      sizeof(sample));
    mesh_log_warn(LOG_SUB,
                  "[%s] dropped message from peer '%s': %s (frames=%zu, first='%s', "
                  "suppressed=%llu)",
                  side == MESH_SIDE_CLIENT ? "frontend" : "backend", ident, reason, n, sample,
                  (unsigned long long)suppressed);
}

router_client_t *router__client_touch(router_broker_t *b, const void *ident, size_t len,
                                      bool *created)
{
    uint64_t now = router__now(b);
    *created = false;
    router_client_t *c = router_map_get(b->clients, ident, len);
    if (c) {
        mesh_hb_on_traffic(&c->hb, now);
        return c;
    }
    if (router_map_count(b->clients) >= ROUTER_CLIENTS_MAX || len > ROUTER_IDENTITY_MAX)
        return NULL; /* still served, just not heartbeated */
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    memcpy(c->identity, ident, len);
    c->identity_len = len;
    mesh_hb_init(&c->hb, b->opts.heartbeat_ms, b->opts.liveness, 1, 1, now);
    if (router_map_put(b->clients, c->identity, c->identity_len, c) != 0) {
        free(c);
        return NULL;
    }
    *created = true;
    return c;
}

void router__client_sent(router_broker_t *b, const void *ident, size_t len)
{
    router_client_t *c = router_map_get(b->clients, ident, len);
    if (c)
        mesh_hb_on_sent(&c->hb, router__now(b));
}

static void client_remove(router_broker_t *b, router_client_t *c)
{
    router_map_del(b->clients, c->identity, c->identity_len);
    free(c);
}

int router_broker_client_reply(router_broker_t *b, const void *client, size_t client_len,
                               const char *service, bool final, const mesh_reply_t *rep)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = mesh_reply_encode(rep, &sb);
    if (rc == 0)
        rc = router__send(b->front, client, client_len, MESH_SIDE_CLIENT,
                          final ? MESH_C_FINAL : MESH_C_PARTIAL, service, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (rc == 0) {
        router__client_sent(b, client, client_len);
    } else {
        char ident[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(client, client_len, ident, sizeof(ident));
        mesh_log_debug(LOG_SUB, "[frontend] reply %s to client '%s' not sent: %s", rep->id, ident,
                       mesh_err_name(rc));
    }
    return rc;
}

int router_broker_client_error(router_broker_t *b, const void *client, size_t client_len,
                               const char *service, const char *id, int status, const char *msg)
{
    mesh_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    snprintf(rep.id, sizeof(rep.id), "%s", id);
    rep.status = status;
    snprintf(rep.err, sizeof(rep.err), "%s", msg ? msg : mesh_strerror(status));
    return router_broker_client_reply(b, client, client_len, service, true, &rep);
}

/* ---- timers ---- */

static void deadline_timer_cb(uv_timer_t *t)
{
    router_broker_t *b = t->data;
    b->deadline_armed = 0;
    router__expire(b);
    router__arm_deadlines(b);
}

void router__arm_deadlines(router_broker_t *b)
{
    if (!b->deadline_timer)
        return;
    router_heap_node_t *top = router_heap_peek(&b->deadlines);
    if (!top) {
        if (b->deadline_armed) {
            uv_timer_stop(b->deadline_timer);
            b->deadline_armed = 0;
        }
        return;
    }
    /* Re-arm only when the earliest key changed: uv_timer_start is O(log n) too,
     * but most heap changes do not move the top. */
    if (b->deadline_armed == top->key + 1)
        return;
    uint64_t now = router__now(b);
    uint64_t delay = top->key > now ? top->key - now : 0;
    uv_timer_start(b->deadline_timer, deadline_timer_cb, delay, 0);
    b->deadline_armed = top->key + 1; /* +1 so a key of 0 still reads as armed */
}

/* Collect, then act: the maps must not change while they are iterated. */
static void heartbeat_workers(router_broker_t *b, uint64_t now)
{
    size_t n = router_map_count(b->workers);
    if (n == 0)
        return;
    router_worker_t **dead = calloc(n, sizeof(*dead));
    size_t n_dead = 0;
    size_t pos = 0;
    router_worker_t *w;
    while ((w = router_map_next(b->workers, &pos)) != NULL) {
        if (mesh_hb_peer_dead(&w->hb, now)) {
            if (dead)
                dead[n_dead++] = w;
        } else if (mesh_hb_send_due(&w->hb, now)) {
            router__send_worker(b, w, MESH_W_HEARTBEAT, NULL, 0);
        }
    }
    for (size_t i = 0; i < n_dead; i++)
        router__worker_remove(b, dead[i], "heartbeat expired");
    free(dead);
}

static void heartbeat_clients(router_broker_t *b, uint64_t now)
{
    size_t n = router_map_count(b->clients);
    if (n == 0)
        return;
    router_client_t **dead = calloc(n, sizeof(*dead));
    size_t n_dead = 0;
    size_t pos = 0;
    router_client_t *c;
    while ((c = router_map_next(b->clients, &pos)) != NULL) {
        if (mesh_hb_peer_dead(&c->hb, now)) {
            if (dead)
                dead[n_dead++] = c;
        } else if (mesh_hb_send_due(&c->hb, now)) {
            if (router__send(b->front, c->identity, c->identity_len, MESH_SIDE_CLIENT,
                             MESH_C_HEARTBEAT, NULL, NULL, 0) == 0)
                mesh_hb_on_sent(&c->hb, now);
        }
    }
    /* A silent client is forgotten: no more heartbeats to a peer that left.
     * Its requests still run; their replies are dropped if it is gone. */
    for (size_t i = 0; i < n_dead; i++)
        client_remove(b, dead[i]);
    free(dead);
}

static void hb_timer_cb(uv_timer_t *t)
{
    router_broker_t *b = t->data;
    uint64_t now = router__now(b);
    heartbeat_workers(b, now);
    heartbeat_clients(b, now);
}

static void timer_free_cb(uv_handle_t *h)
{
    free(h);
}

static void timer_close(uv_timer_t **t_p)
{
    if (!*t_p)
        return;
    uv_timer_stop(*t_p);
    uv_close((uv_handle_t *)*t_p, timer_free_cb);
    *t_p = NULL;
}

static void idle_close(uv_idle_t **i_p)
{
    if (!*i_p)
        return;
    uv_idle_stop(*i_p);
    uv_close((uv_handle_t *)*i_p, timer_free_cb);
    *i_p = NULL;
}

/* ---- lifecycle ---- */

router_broker_t *router_broker_new(uv_loop_t *loop, void *zctx, const router_broker_opts_t *opts)
{
    if (!loop || !zctx || !opts || !opts->frontend || !opts->backend || opts->heartbeat_ms == 0 ||
        opts->liveness == 0 || strlen(opts->frontend) > MESH_ENDPOINT_MAX ||
        strlen(opts->backend) > MESH_ENDPOINT_MAX)
        return NULL;
    router_broker_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->loop = loop;
    b->zctx = zctx;
    b->opts = *opts;
    snprintf(b->frontend, sizeof(b->frontend), "%s", opts->frontend);
    snprintf(b->backend, sizeof(b->backend), "%s", opts->backend);
    b->opts.frontend = b->frontend;
    b->opts.backend = b->backend;
    b->max_body = opts->zopts.max_msg_size > 0 ? (size_t)opts->zopts.max_msg_size
                                               : (size_t)MESH_MAX_MSG_BYTES_DEFAULT;
    router_heap_init(&b->deadlines);
    router_list_init(&b->dirty_pools);
    b->workers = router_map_new();
    b->clients = router_map_new();
    b->pools = router_map_new();
    b->reqs = router_map_new();
    if (!b->workers || !b->clients || !b->pools || !b->reqs)
        goto fail;
    return b;
fail:
    router_broker_destroy(&b);
    return NULL;
}

static uv_timer_t *timer_new(router_broker_t *b)
{
    uv_timer_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    uv_timer_init(b->loop, t);
    t->data = b;
    return t;
}

int router_broker_start(router_broker_t *b)
{
    int rc = MESH_ENOMEM;
    b->front =
        mesh_uvzmq_new(b->loop, b->zctx, ZMQ_ROUTER, &b->opts.zopts, router__frontend_recv, b);
    b->back = mesh_uvzmq_new(b->loop, b->zctx, ZMQ_ROUTER, &b->opts.zopts, router__backend_recv, b);
    if (!b->front || !b->back)
        goto fail;
    rc = mesh_uvzmq_bind(b->front, b->frontend);
    if (rc) {
        mesh_log_error(LOG_SUB, "cannot bind frontend %s: %s", b->frontend, mesh_strerror(rc));
        goto fail;
    }
    rc = mesh_uvzmq_bind(b->back, b->backend);
    if (rc) {
        mesh_log_error(LOG_SUB, "cannot bind backend %s: %s", b->backend, mesh_strerror(rc));
        goto fail;
    }
    rc = MESH_ENOMEM;
    b->deadline_timer = timer_new(b);
    b->hb_timer = timer_new(b);
    b->idle = calloc(1, sizeof(*b->idle));
    if (!b->deadline_timer || !b->hb_timer || !b->idle)
        goto fail;
    uv_idle_init(b->loop, b->idle);
    b->idle->data = b;
    /* Requests submitted before start are dispatched now. */
    if (!router_list_empty(&b->dirty_pools))
        router__dispatch_later(b, ROUTER_CONTAINER_OF(b->dirty_pools.next, router_pool_t, dirty));
    uint64_t tick = b->opts.heartbeat_ms / 2 ? b->opts.heartbeat_ms / 2 : 1;
    uv_timer_start(b->hb_timer, hb_timer_cb, tick, tick);
    mesh_log_info(LOG_SUB, "frontend %s, backend %s, heartbeat %llu ms x %u", b->frontend,
                  b->backend, (unsigned long long)b->opts.heartbeat_ms, b->opts.liveness);
    return 0;
fail:
    mesh_uvzmq_close(&b->front);
    mesh_uvzmq_close(&b->back);
    timer_close(&b->deadline_timer);
    timer_close(&b->hb_timer);
    free(b->idle); /* never initialised on this path */
    b->idle = NULL;
    return rc;
}

void router_broker_set_agent_handler(router_broker_t *b, router_agent_fn fn, void *arg)
{
    b->agent_fn = fn;
    b->agent_arg = arg;
}

void router_broker_set_draining(router_broker_t *b, bool draining)
{
    b->draining = draining;
}

bool router_broker_draining(const router_broker_t *b)
{
    return b->draining;
}

size_t router_broker_forwarded(const router_broker_t *b)
{
    return b->forwarded;
}

uint32_t router_broker_workers(const router_broker_t *b, const char *service)
{
    router_pool_t *p = router_map_get(b->pools, service, strlen(service));
    return p ? (uint32_t)p->n_workers : 0;
}

void router_broker_pool_stats(const router_broker_t *b,
                              void (*fn)(const router_pool_stats_t *st, void *arg), void *arg)
{
    size_t pos = 0;
    router_pool_t *p;
    while ((p = router_map_next(b->pools, &pos)) != NULL) {
        uint64_t cap = router_pool_capacity(p);
        uint64_t free_slots = router_pool_free_slots(p);
        router_pool_stats_t st = {
            .service = p->name,
            .queued = p->queued,
            .workers = (uint32_t)p->n_workers,
            .capacity = cap,
            .in_use = cap >= free_slots ? cap - free_slots : 0,
        };
        fn(&st, arg);
    }
}

void router_broker_disconnect_all(router_broker_t *b)
{
    size_t n = router_map_count(b->workers);
    router_worker_t **ws = n ? calloc(n, sizeof(*ws)) : NULL;
    size_t k = 0, pos = 0;
    router_worker_t *w;
    while (ws && (w = router_map_next(b->workers, &pos)) != NULL)
        ws[k++] = w;
    for (size_t i = 0; i < k; i++) {
        router__send_worker(b, ws[i], MESH_W_DISCONNECT, NULL, 0);
        router__worker_remove(b, ws[i], "router shutting down");
    }
    free(ws);
    pos = 0;
    router_client_t *c;
    while ((c = router_map_next(b->clients, &pos)) != NULL)
        router__send(b->front, c->identity, c->identity_len, MESH_SIDE_CLIENT, MESH_C_DISCONNECT,
                     NULL, NULL, 0);
}

void router_broker_destroy(router_broker_t **b_p)
{
    if (!b_p || !*b_p)
        return;
    router_broker_t *b = *b_p;
    mesh_uvzmq_close(&b->front);
    mesh_uvzmq_close(&b->back);
    timer_close(&b->deadline_timer);
    timer_close(&b->hb_timer);
    idle_close(&b->idle);
    /* The heap touches its nodes when freed: free it before the requests. */
    router_heap_free(&b->deadlines);
    void *v;
    size_t pos = 0;
    if (b->reqs) {
        while ((v = router_map_next(b->reqs, &pos)) != NULL)
            router__req_free(v);
    }
    pos = 0;
    if (b->workers) {
        while ((v = router_map_next(b->workers, &pos)) != NULL)
            free(v);
    }
    pos = 0;
    if (b->clients) {
        while ((v = router_map_next(b->clients, &pos)) != NULL)
            free(v);
    }
    pos = 0;
    if (b->pools) {
        while ((v = router_map_next(b->pools, &pos)) != NULL) {
            router_pool_t *p = v;
            router_pool_destroy(&p);
        }
    }
    router_map_destroy(&b->reqs);
    router_map_destroy(&b->workers);
    router_map_destroy(&b->clients);
    router_map_destroy(&b->pools);
    free(b);
    *b_p = NULL;
}
