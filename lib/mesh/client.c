/*
 * client.c - the client side of the broker protocol (mesh_client.h).
 *
 * One DEALER per router frontend. A router starts "unknown": right after
 * connecting the client sends a HEARTBEAT, which the router answers; the
 * router counts as alive from its first frame on, and as dead once it has
 * been silent for liveness * heartbeat_ms. A dead router's socket is closed,
 * its in-flight requests complete with MESH_EUNAVAIL, and a new socket is
 * opened after a capped exponential backoff.
 *
 * The gateway keeps thousands of requests in flight, so every per-request
 * operation is O(1) or O(log n):
 *   - an open-addressing map (linear probing, backward-shift deletion) finds
 *     a request by the id carried in PARTIAL/FINAL;
 *   - a slot table with generation counters turns a cancel handle into the
 *     request without a search, and makes stale handles harmless;
 *   - a binary min-heap on the deadline drives one uv_timer for all
 *     requests; it is re-armed only when the earliest deadline changes;
 *   - a doubly linked list per router finds the requests to fail when that
 *     router dies.
 * Request records are recycled through a small cache; the request body is
 * encoded into one reused buffer (ZeroMQ copies it on send).
 *
 * Callbacks may call any client function, including mesh_client_destroy():
 * every loop that calls callbacks re-checks the state after each call, and
 * the client's memory is freed only from its timers' close callbacks.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_heartbeat.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_metrics.h"
#include "mesh/mesh_proto.h"
#include "mesh/mesh_uvzmq.h"

#define SUBSYS "client"
/* A request's local timer fires this long after its deadline, so a FINAL the
 * router sends right at the deadline still wins. */
#define CLIENT_DEADLINE_GRACE_MS 50
/* Request records kept for reuse. */
#define CLIENT_REQ_CACHE_MAX 1024
/* Smallest id-map and slot-table sizes (the map is a power of two). */
#define CLIENT_TABLE_MIN 64
/* Metric label sets: services a client talks to, times final statuses. */
#define CLIENT_METRIC_REQ_SERIES 128
#define CLIENT_METRIC_SVC_SERIES 16

/* Request latency buckets, seconds: readiness probes to whole agent turns. */
static const double s_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,      2.5,   5,    10,    30,   60,  120};

typedef struct client_req creq_t;

struct client_req {
    uint64_t handle;
    uint32_t slot;
    uint32_t hash; /* FNV-1a of id */
    size_t id_len;
    char id[MESH_ID_MAX + 1];
    int router;
    creq_t *rprev, *rnext; /* the router's in-flight list */
    size_t heap_idx;
    uint64_t deadline_at; /* uv_now() scale, grace included */
    uint64_t start_ns;    /* uv_hrtime() when sent */
    char service[MESH_SERVICE_MAX + 1];
    mesh_client_cb cb;
    void *arg;
};

typedef struct {
    mesh_client_t *c;
    int index;
    char endpoint[MESH_ENDPOINT_MAX + 1];
    mesh_uvzmq_t *sock; /* NULL while waiting to reconnect */
    mesh_hb_t hb;
    bool alive;
    uint64_t reconnect_at;
    uint64_t last_hb_at; /* last HEARTBEAT we sent */
    creq_t *reqs;
} client_router_t;

struct mesh_client {
    uv_loop_t *loop;
    void *zctx;
    mesh_zsock_opts_t zopts;
    size_t max_body;
    uint64_t tick_ms;

    client_router_t routers[MESH_MAX_ROUTERS];
    int n_routers;
    uint32_t rr;

    uv_timer_t tick;
    uv_timer_t deadline;
    int open_handles;
    bool started;
    bool destroyed;
    bool armed;
    uint64_t armed_at;

    /* id -> request */
    creq_t **map;
    size_t map_cap; /* power of two, 0 before first use */
    size_t map_count;
    /* deadline min-heap */
    creq_t **heap;
    size_t heap_len, heap_cap;
    /* handle -> request */
    creq_t **slots;
    uint32_t *slot_gen;
    uint32_t *free_slots;
    uint32_t n_slots, n_free_slots;

    creq_t *cache; /* recycled records, linked through rnext */
    uint32_t n_cache;
    uint32_t inflight;
    msgpack_sbuffer sb;

    /* metrics (global registry; NULL when a registration failed) */
    mesh_metric_t *m_requests; /* mesh_client_requests_total{service,status} */
    mesh_metric_t *m_latency;  /* mesh_client_request_duration_seconds{service} */
    mesh_series_t *s_inflight; /* mesh_client_inflight */
    mesh_series_t *s_alive;    /* mesh_client_routers_alive */
};

/* ---- metrics -------------------------------------------------------------- */

static void metrics_init(mesh_client_t *c)
{
    mesh_metrics_t *reg = mesh_metrics_global();
    c->m_requests = mesh_metrics_counter(
        reg, "mesh_client_requests_total",
        "requests this process sent to routers, by service and final status (mesh_err name; "
        "local deadline, lost router and cancel included)",
        "service,status", CLIENT_METRIC_REQ_SERIES);
    c->m_latency = mesh_metrics_histogram(
        reg, "mesh_client_request_duration_seconds",
        "time from sending a request to its FINAL (or local failure), by service", "service",
        CLIENT_METRIC_SVC_SERIES, s_latency_bounds,
        sizeof(s_latency_bounds) / sizeof(s_latency_bounds[0]));
    c->s_inflight = mesh_metric_with(
        mesh_metrics_gauge(reg, "mesh_client_inflight",
                           "requests this process has in flight at routers", NULL, 1),
        NULL);
    c->s_alive = mesh_metric_with(
        mesh_metrics_gauge(reg, "mesh_client_routers_alive",
                           "routers this process's clients currently consider alive", NULL, 1),
        NULL);
}

/* q completed with status (0 or MESH_E*); canceled requests have no latency. */
static void metrics_done(mesh_client_t *c, const creq_t *q, int status)
{
    mesh_counter_inc(mesh_metric_at(c->m_requests, q->service, mesh_err_name(status)));
    if (status != MESH_ECANCELED)
        mesh_histogram_observe(mesh_metric_at(c->m_latency, q->service),
                               mesh_metrics_since_s(q->start_ns));
}

static uint32_t fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* ---- id map -------------------------------------------------------------- */

static int map_rehash(mesh_client_t *c, size_t cap)
{
    creq_t **m = calloc(cap, sizeof(*m));
    if (!m)
        return MESH_ENOMEM;
    size_t mask = cap - 1;
    for (size_t i = 0; i < c->map_cap; i++) {
        creq_t *q = c->map[i];
        if (!q)
            continue;
        size_t j = q->hash & mask;
        while (m[j])
            j = (j + 1) & mask;
        m[j] = q;
    }
    free(c->map);
    c->map = m;
    c->map_cap = cap;
    return 0;
}

/* Make room for one more entry; the load factor stays at or below 1/2. */
static int map_reserve(mesh_client_t *c)
{
    if ((c->map_count + 1) * 2 <= c->map_cap)
        return 0;
    return map_rehash(c, c->map_cap ? c->map_cap * 2 : CLIENT_TABLE_MIN);
}

static creq_t *map_find(const mesh_client_t *c, const char *id, size_t len, uint32_t hash)
{
    if (!c->map_cap)
        return NULL;
    size_t mask = c->map_cap - 1;
    for (size_t j = hash & mask;; j = (j + 1) & mask) {
        creq_t *q = c->map[j];
        if (!q)
            return NULL;
        if (q->hash == hash && q->id_len == len && memcmp(q->id, id, len) == 0)
            return q;
    }
}

static void map_insert(mesh_client_t *c, creq_t *q)
{
    size_t mask = c->map_cap - 1;
    size_t j = q->hash & mask;
    while (c->map[j])
        j = (j + 1) & mask;
    c->map[j] = q;
    c->map_count++;
}

static void map_remove(mesh_client_t *c, creq_t *q)
{
    size_t mask = c->map_cap - 1;
    size_t i = q->hash & mask;
    while (c->map[i] != q)
        i = (i + 1) & mask;
    /* Backward-shift deletion: pull later entries of the probe run into the hole. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        creq_t *e = c->map[j];
        if (!e)
            break;
        size_t home = e->hash & mask;
        /* e may move to i unless its home lies cyclically in (i, j]. */
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        c->map[i] = e;
        i = j;
    }
    c->map[i] = NULL;
    c->map_count--;
}

/* ---- deadline heap ------------------------------------------------------- */

static int heap_reserve(mesh_client_t *c)
{
    if (c->heap_len < c->heap_cap)
        return 0;
    size_t cap = c->heap_cap ? c->heap_cap * 2 : CLIENT_TABLE_MIN;
    creq_t **h = realloc(c->heap, cap * sizeof(*h));
    if (!h)
        return MESH_ENOMEM;
    c->heap = h;
    c->heap_cap = cap;
    return 0;
}

static void heap_set(mesh_client_t *c, size_t i, creq_t *q)
{
    c->heap[i] = q;
    q->heap_idx = i;
}

static void heap_up(mesh_client_t *c, size_t i)
{
    creq_t *q = c->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (c->heap[p]->deadline_at <= q->deadline_at)
            break;
        heap_set(c, i, c->heap[p]);
        i = p;
    }
    heap_set(c, i, q);
}

static void heap_down(mesh_client_t *c, size_t i)
{
    creq_t *q = c->heap[i];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= c->heap_len)
            break;
        size_t m = l;
        if (l + 1 < c->heap_len && c->heap[l + 1]->deadline_at < c->heap[l]->deadline_at)
            m = l + 1;
        if (c->heap[m]->deadline_at >= q->deadline_at)
            break;
        heap_set(c, i, c->heap[m]);
        i = m;
    }
    heap_set(c, i, q);
}

static void heap_push(mesh_client_t *c, creq_t *q)
{
    heap_set(c, c->heap_len++, q);
    heap_up(c, q->heap_idx);
}

static void heap_remove(mesh_client_t *c, creq_t *q)
{
    size_t i = q->heap_idx;
    creq_t *last = c->heap[--c->heap_len];
    if (last == q)
        return;
    heap_set(c, i, last);
    heap_up(c, i);
    heap_down(c, last->heap_idx);
}

/* ---- handle slots -------------------------------------------------------- */

static int slot_reserve(mesh_client_t *c)
{
    if (c->n_free_slots)
        return 0;
    uint32_t cap = c->n_slots ? c->n_slots * 2 : CLIENT_TABLE_MIN;
    if (cap <= c->n_slots)
        return MESH_ENOMEM;
    creq_t **s = realloc(c->slots, cap * sizeof(*s));
    if (!s)
        return MESH_ENOMEM;
    c->slots = s;
    uint32_t *g = realloc(c->slot_gen, cap * sizeof(*g));
    if (!g)
        return MESH_ENOMEM;
    c->slot_gen = g;
    uint32_t *f = realloc(c->free_slots, cap * sizeof(*f));
    if (!f)
        return MESH_ENOMEM;
    c->free_slots = f;
    for (uint32_t i = c->n_slots; i < cap; i++) {
        c->slots[i] = NULL;
        c->slot_gen[i] = 1;
    }
    /* Push in reverse so low slots are used first. */
    for (uint32_t i = cap; i > c->n_slots; i--)
        c->free_slots[c->n_free_slots++] = i - 1;
    c->n_slots = cap;
    return 0;
}

static void slot_take(mesh_client_t *c, creq_t *q)
{
    uint32_t s = c->free_slots[--c->n_free_slots];
    c->slots[s] = q;
    q->slot = s;
    q->handle = ((uint64_t)c->slot_gen[s] << 32) | ((uint64_t)s + 1);
}

static void slot_put(mesh_client_t *c, creq_t *q)
{
    c->slots[q->slot] = NULL;
    c->slot_gen[q->slot]++;
    c->free_slots[c->n_free_slots++] = q->slot;
}

/* ---- request records ----------------------------------------------------- */

static creq_t *creq_alloc(mesh_client_t *c)
{
    creq_t *q = c->cache;
    if (q) {
        c->cache = q->rnext;
        c->n_cache--;
        return q;
    }
    return malloc(sizeof(*q));
}

static void creq_free(mesh_client_t *c, creq_t *q)
{
    if (c->n_cache < CLIENT_REQ_CACHE_MAX) {
        q->rnext = c->cache;
        c->cache = q;
        c->n_cache++;
        return;
    }
    free(q);
}

/* Take q out of every index; the record itself is not freed. */
static void creq_unlink(mesh_client_t *c, creq_t *q)
{
    client_router_t *r = &c->routers[q->router];
    map_remove(c, q);
    heap_remove(c, q);
    slot_put(c, q);
    if (q->rprev)
        q->rprev->rnext = q->rnext;
    else
        r->reqs = q->rnext;
    if (q->rnext)
        q->rnext->rprev = q->rprev;
    c->inflight--;
    mesh_gauge_add(c->s_inflight, -1);
}

static void on_deadline(uv_timer_t *t);

static void arm_deadline(mesh_client_t *c)
{
    if (c->destroyed)
        return;
    if (c->heap_len == 0) {
        if (c->armed)
            uv_timer_stop(&c->deadline);
        c->armed = false;
        return;
    }
    uint64_t at = c->heap[0]->deadline_at;
    if (c->armed && c->armed_at == at)
        return;
    uint64_t now = uv_now(c->loop);
    uv_timer_start(&c->deadline, on_deadline, at > now ? at - now : 0, 0);
    c->armed = true;
    c->armed_at = at;
}

/* Complete q locally (deadline, router lost, destroy): remove it, then call its callback. */
static void creq_fail(mesh_client_t *c, creq_t *q, int status)
{
    mesh_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    memcpy(rep.id, q->id, q->id_len + 1);
    rep.status = status;
    const char *msg = mesh_strerror(status);
    size_t ml = strnlen(msg, MESH_ERRMSG_MAX);
    memcpy(rep.err, msg, ml);
    rep.err[ml] = '\0';
    mesh_client_cb cb = q->cb;
    void *arg = q->arg;
    metrics_done(c, q, status);
    creq_unlink(c, q);
    creq_free(c, q);
    cb(c, true, &rep, arg);
}

static void on_deadline(uv_timer_t *t)
{
    mesh_client_t *c = t->data;
    c->armed = false;
    uint64_t now = uv_now(c->loop);
    while (!c->destroyed && c->heap_len && c->heap[0]->deadline_at <= now)
        creq_fail(c, c->heap[0], MESH_ETIMEDOUT);
    arm_deadline(c);
}

/* ---- routers ------------------------------------------------------------- */

static void on_router_recv(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n, void *arg);

static int router_send(client_router_t *r, uint8_t cmd, const char *service, const void *body,
                       size_t len)
{
    if (!r->sock)
        return MESH_EUNAVAIL;
    mesh_frame_t fr[4];
    uint8_t cmdb;
    int n = mesh_proto_frames(MESH_SIDE_CLIENT, cmd, service, body, len, &cmdb, fr);
    if (n < 0)
        return n;
    int rc = mesh_uvzmq_send(r->sock, fr, (size_t)n);
    if (rc == 0)
        mesh_hb_on_sent(&r->hb, uv_now(r->c->loop));
    return rc;
}

/* The one place alive changes, so the process-wide gauge follows it. */
static void router_set_alive(client_router_t *r, bool alive)
{
    if (r->alive == alive)
        return;
    r->alive = alive;
    mesh_gauge_add(r->c->s_alive, alive ? 1 : -1);
}

/* Open a socket to r and say hello; on failure retry after the backoff. */
static int router_open(client_router_t *r)
{
    mesh_client_t *c = r->c;
    uint64_t now = uv_now(c->loop);
    int rc;

    router_set_alive(r, false);
    r->sock = mesh_uvzmq_new(c->loop, c->zctx, ZMQ_DEALER, &c->zopts, on_router_recv, r);
    if (!r->sock) {
        rc = MESH_EIO;
        goto retry;
    }
    rc = mesh_uvzmq_connect(r->sock, r->endpoint);
    if (rc != 0) {
        mesh_uvzmq_close(&r->sock);
        goto retry;
    }
    /* The liveness window starts now; the router answers this HEARTBEAT. */
    mesh_hb_on_traffic(&r->hb, now);
    if (router_send(r, MESH_C_HEARTBEAT, NULL, NULL, 0) == 0)
        r->last_hb_at = now;
    return 0;

retry:
    r->reconnect_at = now + mesh_hb_next_backoff(&r->hb);
    return rc;
}

/* Router lost: close its socket, fail its requests, reconnect after delay. */
static void router_down(client_router_t *r, uint64_t delay)
{
    mesh_client_t *c = r->c;
    router_set_alive(r, false);
    mesh_uvzmq_close(&r->sock);
    r->reconnect_at = uv_now(c->loop) + delay;
    /* Callbacks may send new requests: r is not alive, so none land here. */
    while (r->reqs && !c->destroyed)
        creq_fail(c, r->reqs, MESH_EUNAVAIL);
    arm_deadline(c);
}

static void handle_reply(client_router_t *r, uint8_t cmd, const void *body, size_t len)
{
    mesh_client_t *c = r->c;
    char sample[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_reply_t rep;

    int rc = mesh_reply_decode(body, len, &rep);
    if (rc != 0) {
        mesh_log_warn(SUBSYS, "malformed %s body from %s dropped: %s, body \"%s\"",
                      mesh_proto_cmd_name(MESH_SIDE_CLIENT, cmd), r->endpoint, mesh_strerror(rc),
                      mesh_log_sanitize(body, len, sample, sizeof(sample)));
        return;
    }
    size_t id_len = strnlen(rep.id, sizeof(rep.id));
    creq_t *q = map_find(c, rep.id, id_len, fnv1a(rep.id, id_len));
    if (!q || q->router != r->index) {
        mesh_log_debug(SUBSYS, "%s for unknown id=%s from %s dropped",
                       mesh_proto_cmd_name(MESH_SIDE_CLIENT, cmd),
                       mesh_log_sanitize(rep.id, id_len, sample, sizeof(sample)), r->endpoint);
        mesh_reply_clear(&rep);
        return;
    }
    mesh_client_cb cb = q->cb;
    void *arg = q->arg;
    if (cmd == MESH_C_FINAL) {
        metrics_done(c, q, rep.status);
        creq_unlink(c, q);
        creq_free(c, q);
        arm_deadline(c);
        cb(c, true, &rep, arg);
    } else {
        cb(c, false, &rep, arg);
    }
    mesh_reply_clear(&rep);
}

static void on_router_recv(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n, void *arg)
{
    client_router_t *r = arg;
    mesh_client_t *c = r->c;
    char sample[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_proto_msg_t pm;

    if (c->destroyed)
        return;
    mesh_hb_on_traffic(&r->hb, uv_now(c->loop));
    int rc = mesh_proto_decode(frames, n, MESH_SIDE_CLIENT, c->max_body, &pm);
    if (rc == 0 && pm.cmd == MESH_C_DISCONNECT) {
        mesh_log_info(SUBSYS, "router %s sent DISCONNECT: failing %s requests, reconnecting",
                      r->endpoint, r->reqs ? "its" : "no");
        router_down(r, mesh_hb_next_backoff(&r->hb));
        return;
    }
    if (!r->alive) {
        router_set_alive(r, true);
        mesh_hb_reset_backoff(&r->hb);
        mesh_log_info(SUBSYS, "router %s up", r->endpoint);
    }
    if (rc != 0) {
        mesh_log_warn(SUBSYS, "bad message from %s: %s (%zu frames, first \"%s\")", r->endpoint,
                      mesh_strerror(rc), n,
                      n ? mesh_log_sanitize(frames[0].data, frames[0].size, sample, sizeof(sample))
                        : "");
        return;
    }
    switch (pm.cmd) {
    case MESH_C_HEARTBEAT:
        return;
    case MESH_C_PARTIAL:
    case MESH_C_FINAL:
        handle_reply(r, pm.cmd, pm.body, pm.body_len);
        return;
    default:
        mesh_log_warn(SUBSYS, "unexpected %s from router %s dropped",
                      mesh_proto_cmd_name(MESH_SIDE_CLIENT, pm.cmd), r->endpoint);
        return;
    }
}

/*
 * A HEARTBEAT is due when we sent nothing for an interval (18/MDP), and also,
 * at most once per interval, when the router said nothing for an interval:
 * a gateway busy sending requests is never idle, and a router that only
 * answers heartbeats would otherwise look dead while it works on long turns.
 */
static bool hb_due(const mesh_hb_t *hb, uint64_t last_hb_at, uint64_t now)
{
    if (mesh_hb_send_due(hb, now))
        return true;
    return now - hb->last_recv_ms >= hb->interval_ms && now - last_hb_at >= hb->interval_ms;
}

static void on_tick(uv_timer_t *t)
{
    mesh_client_t *c = t->data;
    uint64_t now = uv_now(c->loop);

    for (int i = 0; i < c->n_routers && !c->destroyed; i++) {
        client_router_t *r = &c->routers[i];
        if (!r->sock) {
            if (now >= r->reconnect_at)
                router_open(r);
            continue;
        }
        /* Unread input is traffic too: after a blocked loop the router's
         * heartbeat may be waiting in the socket, read only after the timers. */
        if (mesh_hb_peer_dead(&r->hb, now) && !mesh_uvzmq_readable(r->sock)) {
            uint64_t delay = mesh_hb_next_backoff(&r->hb);
            if (r->alive)
                mesh_log_warn(SUBSYS, "router %s silent for %llu ms, reconnecting in %llu ms",
                              r->endpoint, (unsigned long long)(now - r->hb.last_recv_ms),
                              (unsigned long long)delay);
            else
                mesh_log_debug(SUBSYS, "router %s not answering, retry in %llu ms", r->endpoint,
                               (unsigned long long)delay);
            router_down(r, delay);
            continue;
        }
        if (hb_due(&r->hb, r->last_hb_at, now) &&
            router_send(r, MESH_C_HEARTBEAT, NULL, NULL, 0) == 0)
            r->last_hb_at = now;
    }
}

/* Live router for conv (hash, probing forward) or the next one round robin; -1 if none. */
static int pick_router(mesh_client_t *c, const char *conv)
{
    int n = c->n_routers;
    size_t conv_len = strnlen(conv, MESH_CONV_MAX + 1);
    if (conv_len) {
        int start = (int)(fnv1a(conv, conv_len) % (uint32_t)n);
        for (int i = 0; i < n; i++) {
            int k = (start + i) % n;
            if (c->routers[k].alive && c->routers[k].sock)
                return k;
        }
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int k = (int)((c->rr + (uint32_t)i) % (uint32_t)n);
        if (c->routers[k].alive && c->routers[k].sock) {
            c->rr = (uint32_t)(k + 1) % (uint32_t)n;
            return k;
        }
    }
    return -1;
}

/* ---- public API ---------------------------------------------------------- */

mesh_client_t *mesh_client_new(uv_loop_t *loop, void *zctx, const mesh_client_opts_t *opts)
{
    if (!loop || !zctx || !opts) {
        mesh_log_error(SUBSYS, "mesh_client_new: missing argument");
        return NULL;
    }
    const char *why = NULL;
    if (opts->n_endpoints < 1 || opts->n_endpoints > MESH_MAX_ROUTERS)
        why = "endpoint count out of range";
    else if (opts->heartbeat_ms < 1 || opts->liveness < 1)
        why = "heartbeat interval and liveness must be positive";
    else if (opts->reconnect_min_ms < 1 || opts->reconnect_max_ms < opts->reconnect_min_ms)
        why = "reconnect delays must satisfy 0 < min <= max";
    for (int i = 0; !why && i < opts->n_endpoints; i++)
        if (!opts->endpoints[i] || !opts->endpoints[i][0] ||
            strlen(opts->endpoints[i]) > MESH_ENDPOINT_MAX)
            why = "empty or too long endpoint";
    if (why) {
        mesh_log_error(SUBSYS, "mesh_client_new: %s", why);
        return NULL;
    }

    mesh_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->zctx = zctx;
    c->zopts = opts->zopts;
    if (c->zopts.linger_ms == 0 && c->zopts.max_msg_size == 0 && c->zopts.sndhwm == 0 &&
        c->zopts.rcvhwm == 0)
        mesh_zsock_opts_default(&c->zopts);
    c->max_body = c->zopts.max_msg_size > 0 ? (size_t)c->zopts.max_msg_size : 0;
    c->tick_ms = opts->heartbeat_ms / 2;
    if (c->tick_ms > opts->reconnect_min_ms)
        c->tick_ms = opts->reconnect_min_ms;
    if (c->tick_ms < 1)
        c->tick_ms = 1;
    msgpack_sbuffer_init(&c->sb);
    metrics_init(c);

    uint64_t now = uv_now(loop);
    c->n_routers = opts->n_endpoints;
    for (int i = 0; i < c->n_routers; i++) {
        client_router_t *r = &c->routers[i];
        r->c = c;
        r->index = i;
        memcpy(r->endpoint, opts->endpoints[i], strlen(opts->endpoints[i]) + 1);
        mesh_hb_init(&r->hb, opts->heartbeat_ms, opts->liveness, opts->reconnect_min_ms,
                     opts->reconnect_max_ms, now);
    }
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    uv_timer_init(loop, &c->deadline);
    c->deadline.data = c;
    c->open_handles = 2;
    return c;
}

int mesh_client_start(mesh_client_t *c)
{
    if (!c || c->destroyed)
        return MESH_EINVAL;
    if (c->started)
        return MESH_ESTATE;
    c->started = true;
    for (int i = 0; i < c->n_routers; i++)
        if (router_open(&c->routers[i]) == MESH_EINVAL)
            return MESH_EINVAL; /* a malformed endpoint never heals */
    uv_timer_start(&c->tick, on_tick, c->tick_ms, c->tick_ms);
    return 0;
}

int mesh_client_request(mesh_client_t *c, const char *service, const mesh_request_t *req,
                        mesh_client_cb cb, void *arg, uint64_t *handle)
{
    if (!c || c->destroyed || !service || !req || !cb || req->deadline_ms == 0)
        return MESH_EINVAL;
    if (!mesh_proto_service_valid(service, strnlen(service, MESH_SERVICE_MAX + 1)))
        return MESH_EINVAL;
    size_t id_len = strnlen(req->id, sizeof(req->id));
    if (id_len > MESH_ID_MAX)
        return MESH_EINVAL;

    int ri = pick_router(c, req->conv);
    if (ri < 0)
        return MESH_ENOWORKER;
    client_router_t *r = &c->routers[ri];

    if (map_reserve(c) != 0 || heap_reserve(c) != 0 || slot_reserve(c) != 0)
        return MESH_ENOMEM;
    creq_t *q = creq_alloc(c);
    if (!q)
        return MESH_ENOMEM;

    /* Encode a copy only when something has to change (fresh id, clamped deadline). */
    const mesh_request_t *send = req;
    mesh_request_t copy;
    if (id_len == 0 || req->deadline_ms > MESH_DEADLINE_MAX_MS) {
        copy = *req;
        if (id_len == 0) {
            char fresh[33];
            mesh_id_new(fresh);
            id_len = strlen(fresh);
            memcpy(copy.id, fresh, id_len + 1);
        }
        if (copy.deadline_ms > MESH_DEADLINE_MAX_MS)
            copy.deadline_ms = MESH_DEADLINE_MAX_MS;
        send = &copy;
    }
    memcpy(q->id, send->id, id_len);
    q->id[id_len] = '\0';
    q->id_len = id_len;
    q->hash = fnv1a(q->id, id_len);
    int rc;
    if (map_find(c, q->id, id_len, q->hash)) {
        rc = MESH_EINVAL; /* the same id is already in flight */
        goto err;
    }

    c->sb.size = 0;
    rc = mesh_request_encode(send, &c->sb);
    if (rc != 0)
        goto err;
    rc = router_send(r, MESH_C_REQUEST, service, c->sb.data, c->sb.size);
    if (rc != 0) {
        if (rc != MESH_EBUSY && rc != MESH_ENOMEM)
            rc = MESH_EIO;
        goto err;
    }

    q->router = ri;
    q->start_ns = uv_hrtime();
    memcpy(q->service, service, strnlen(service, MESH_SERVICE_MAX) + 1);
    q->cb = cb;
    q->arg = arg;
    q->deadline_at = uv_now(c->loop) + send->deadline_ms + CLIENT_DEADLINE_GRACE_MS;
    map_insert(c, q);
    heap_push(c, q);
    slot_take(c, q);
    q->rprev = NULL;
    q->rnext = r->reqs;
    if (r->reqs)
        r->reqs->rprev = q;
    r->reqs = q;
    c->inflight++;
    mesh_gauge_add(c->s_inflight, 1);
    arm_deadline(c);
    if (handle)
        *handle = q->handle;
    return 0;

err:
    creq_free(c, q);
    return rc;
}

void mesh_client_cancel(mesh_client_t *c, uint64_t handle)
{
    if (!c || handle == 0)
        return;
    uint32_t low = (uint32_t)(handle & 0xffffffffu);
    if (low == 0 || low > c->n_slots)
        return;
    uint32_t s = low - 1;
    creq_t *q = c->slots[s];
    if (!q || c->slot_gen[s] != (uint32_t)(handle >> 32))
        return;
    /* Tell the router (best effort): it drops the queued request or stops the
     * worker / agent turn working on it. A failed send changes nothing here:
     * the request is forgotten either way and a late answer is dropped. */
    client_router_t *r = &c->routers[q->router];
    c->sb.size = 0;
    if (r->sock && mesh_cancel_encode(q->id, &c->sb) == 0 &&
        router_send(r, MESH_C_CANCEL, q->service, c->sb.data, c->sb.size) != 0)
        mesh_log_debug(SUBSYS, "CANCEL for %s not sent to %s", q->id, r->endpoint);
    metrics_done(c, q, MESH_ECANCELED);
    creq_unlink(c, q);
    creq_free(c, q);
    arm_deadline(c);
}

int mesh_client_routers_alive(const mesh_client_t *c)
{
    if (!c)
        return 0;
    int n = 0;
    for (int i = 0; i < c->n_routers; i++)
        if (c->routers[i].alive && c->routers[i].sock)
            n++;
    return n;
}

uint32_t mesh_client_inflight(const mesh_client_t *c)
{
    return c ? c->inflight : 0;
}

static void on_handle_close(uv_handle_t *h)
{
    mesh_client_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    while (c->cache) {
        creq_t *q = c->cache;
        c->cache = q->rnext;
        free(q);
    }
    free(c->map);
    free(c->heap);
    free(c->slots);
    free(c->slot_gen);
    free(c->free_slots);
    msgpack_sbuffer_destroy(&c->sb);
    free(c);
}

void mesh_client_destroy(mesh_client_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    mesh_client_t *c = *c_p;
    *c_p = NULL;
    if (c->destroyed)
        return;
    c->destroyed = true;
    uv_timer_stop(&c->deadline);
    c->armed = false;
    /* Callbacks may cancel other requests: always take the current earliest. */
    while (c->heap_len)
        creq_fail(c, c->heap[0], MESH_ECANCELED);
    for (int i = 0; i < c->n_routers; i++) {
        router_set_alive(&c->routers[i], false);
        mesh_uvzmq_close(&c->routers[i].sock);
    }
    uv_close((uv_handle_t *)&c->tick, on_handle_close);
    uv_close((uv_handle_t *)&c->deadline, on_handle_close);
}
