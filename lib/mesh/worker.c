/*
 * worker.c - the worker side of the broker protocol (mesh_worker.h).
 *
 * One "link" per router backend endpoint: a DEALER socket, a mesh_hb_t and a
 * generation number that changes every time the socket is replaced. A
 * request remembers the link and generation it arrived on; an answer for a
 * generation that is gone is discarded (MESH_ECANCELED), because the router
 * that sent it has already failed or retried the request.
 *
 * Link states:
 *   no socket      waiting for reconnect_at (backoff after a dead router)
 *   announced      READY sent on this socket: heartbeats are sent when the
 *                  link is idle and the router must show traffic within
 *                  liveness * heartbeat_ms or it is declared dead
 *   quiet          socket open but not announced (set_ready(false), drain):
 *                  no heartbeats and no liveness check, because the router
 *                  forgot us after our DISCONNECT and will not heartbeat us.
 *                  Answers to requests still in flight go out normally.
 *
 * A single uv_timer ticks every min(heartbeat_ms / 2, reconnect_min_ms) and
 * walks the links; that is O(links) per tick and nothing per message.
 *
 * Workers never reply to a HEARTBEAT: each side heartbeats on its own
 * schedule (18/MDP), and replying would make two peers ping-pong.
 */
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_heartbeat.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_metrics.h"
#include "mesh/mesh_mp.h"
#include "mesh/mesh_proto.h"
#include "mesh/mesh_trace.h"
#include "mesh/mesh_uvzmq.h"
#include "mesh/mesh_worker.h"

#define SUBSYS "worker"
/* Request handles kept for reuse instead of freed (saves a malloc per request). */
#define WORKER_REQ_CACHE_MAX 256
/* Metric series bounds: ops come off the wire, so their label sets are capped
 * (further ones are counted under the overflow series). */
#define WORKER_METRIC_REQ_SERIES   256 /* (service, op, status) */
#define WORKER_METRIC_OP_SERIES    64  /* (service, op) */
#define WORKER_METRIC_SVC_SERIES   8   /* service */
#define WORKER_METRIC_OP_MALFORMED "_malformed"

/* Handler latency buckets, seconds: sub-millisecond Redis ops to minute-long model calls. */
static const double s_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25,   0.5,   1,      2.5,   5,    10,    30,   60};

typedef struct {
    mesh_worker_t *w;
    int index;
    char endpoint[MESH_ENDPOINT_MAX + 1];
    mesh_uvzmq_t *sock; /* NULL while waiting to reconnect */
    mesh_hb_t hb;
    uint64_t generation;
    uint64_t reconnect_at;
    uint64_t last_hb_at; /* last HEARTBEAT we sent */
    bool announced;      /* READY sent on the current socket */
    bool heard;          /* the router spoke on the current socket */
} worker_link_t;

struct mesh_worker_req {
    mesh_worker_t *w; /* NULL once the worker was destroyed */
    mesh_worker_req_t *prev, *next;
    int link;
    uint64_t generation;
    uint64_t deadline_at; /* uv_now() scale */
    uint64_t start_ns;    /* uv_hrtime() when handed to the handler */
    bool answered;        /* a FINAL already went out (drain grace expired) */
    bool canceled;        /* the router sent CANCEL for it (no more PARTIALs) */
    mesh_span_t span;     /* "<service> <op>", child of the request's traceparent */
    mesh_request_t msg;
};

struct mesh_worker {
    uv_loop_t *loop;
    void *zctx;
    char service[MESH_SERVICE_MAX + 1];
    uint32_t capacity;
    uint64_t heartbeat_ms;
    uint64_t tick_ms;
    size_t max_body;
    mesh_zsock_opts_t zopts;
    mesh_worker_handler_fn handler;
    void *arg;
    /* CANCEL (mesh_worker_set_cancel_handler); NULL: CANCEL is ignored */
    void (*cancel_fn)(mesh_worker_t *, mesh_worker_req_t *, void *);
    void *cancel_arg;

    worker_link_t links[MESH_MAX_ROUTERS];
    int n_links;

    uv_timer_t tick;
    uv_timer_t drain_timer;
    int open_handles;

    bool started;
    bool ready;
    bool draining;
    bool drain_fired; /* done_cb called (or about to be): no new requests */
    bool destroyed;
    void (*drain_cb)(mesh_worker_t *, void *);
    void *drain_arg;

    mesh_worker_req_t *reqs; /* held by the handler */
    uint32_t held;           /* requests held by the handler */
    uint32_t unanswered;     /* of those, without a FINAL sent */
    mesh_worker_req_t *free_reqs;
    uint32_t n_free;

    msgpack_sbuffer sb; /* reused for every encode */

    /* metrics (global registry; NULL when a registration failed) */
    mesh_metric_t *m_requests; /* mesh_worker_requests_total{service,op,status} */
    mesh_metric_t *m_latency;  /* mesh_worker_request_duration_seconds{service,op} */
    mesh_series_t *s_inflight; /* mesh_worker_inflight{service} */
    mesh_series_t *s_capacity; /* mesh_worker_capacity{service} */
};

/* ---- metrics -------------------------------------------------------------- */

static void metrics_init(mesh_worker_t *w)
{
    mesh_metrics_t *reg = mesh_metrics_global();
    w->m_requests = mesh_metrics_counter(
        reg, "mesh_worker_requests_total",
        "requests answered by this worker, by service, op and final status (mesh_err name)",
        "service,op,status", WORKER_METRIC_REQ_SERIES);
    w->m_latency = mesh_metrics_histogram(
        reg, "mesh_worker_request_duration_seconds",
        "time from a request reaching the handler to its FINAL, by service and op", "service,op",
        WORKER_METRIC_OP_SERIES, s_latency_bounds,
        sizeof(s_latency_bounds) / sizeof(s_latency_bounds[0]));
    mesh_metric_t *inflight = mesh_metrics_gauge(
        reg, "mesh_worker_inflight", "requests held by the handler now (capacity in use)",
        "service", WORKER_METRIC_SVC_SERIES);
    mesh_metric_t *capacity = mesh_metrics_gauge(
        reg, "mesh_worker_capacity", "requests this process accepts at once (announced in READY)",
        "service", WORKER_METRIC_SVC_SERIES);
    w->s_inflight = mesh_metric_at(inflight, w->service);
    w->s_capacity = mesh_metric_at(capacity, w->service);
    mesh_gauge_add(w->s_capacity, (double)w->capacity);
}

/* One request answered (or refused) with status; duration when it reached the handler. */
static void metrics_request(mesh_worker_t *w, const char *op, int status, uint64_t start_ns)
{
    mesh_counter_inc(mesh_metric_at(w->m_requests, w->service, op, mesh_err_name(status)));
    if (start_ns)
        mesh_histogram_observe(mesh_metric_at(w->m_latency, w->service, op),
                               mesh_metrics_since_s(start_ns));
}

/* ---- small helpers ------------------------------------------------------ */

static void copy_trunc_utf8(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    /* Do not cut a UTF-8 sequence in half: back off continuation bytes. */
    if (src[n] != '\0')
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/*
 * Read the "id" of a REQUEST body that failed to decode, so the router can
 * still be told. Runs the pre-scan first: the body came off the socket.
 */
static bool peek_id(const void *buf, size_t len, char out[MESH_ID_MAX + 1])
{
    if (mesh_mp_prescan(buf, len) != 0)
        return false;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    bool ok = false;
    if (msgpack_unpack_next(&up, buf, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &up.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 2 ||
                memcmp(k->via.str.ptr, "id", 2) != 0)
                continue;
            /* Ids share the conversation id alphabet; anything else cannot be echoed. */
            if (v->type == MSGPACK_OBJECT_STR && v->via.str.size >= 1 &&
                v->via.str.size <= MESH_ID_MAX &&
                mesh_conv_id_valid(v->via.str.ptr, v->via.str.size)) {
                memcpy(out, v->via.str.ptr, v->via.str.size);
                out[v->via.str.size] = '\0';
                ok = true;
            }
            break;
        }
    }
    msgpack_unpacked_destroy(&up);
    return ok;
}

static mesh_worker_req_t *req_alloc(mesh_worker_t *w)
{
    mesh_worker_req_t *r = w->free_reqs;
    if (r) {
        w->free_reqs = r->next;
        w->n_free--;
    } else {
        r = malloc(sizeof(*r));
        if (!r)
            return NULL;
    }
    memset(r, 0, sizeof(*r));
    return r;
}

static void req_release(mesh_worker_t *w, mesh_worker_req_t *r)
{
    mesh_request_clear(&r->msg);
    if (w && !w->destroyed && w->n_free < WORKER_REQ_CACHE_MAX) {
        r->next = w->free_reqs;
        w->free_reqs = r;
        w->n_free++;
        return;
    }
    free(r);
}

static void req_unlink(mesh_worker_t *w, mesh_worker_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        w->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* ---- sending ------------------------------------------------------------- */

/* Send [MESHW01][cmd]([service])([body]) on link. 0 or MESH_E*. */
static int link_send(worker_link_t *l, uint8_t cmd, const void *body, size_t len)
{
    if (!l->sock)
        return MESH_ECANCELED;
    mesh_frame_t fr[4];
    uint8_t cmdb;
    const char *svc = cmd == MESH_W_READY ? l->w->service : NULL;
    int n = mesh_proto_frames(MESH_SIDE_WORKER, cmd, svc, body, len, &cmdb, fr);
    if (n < 0)
        return n;
    int rc = mesh_uvzmq_send(l->sock, fr, (size_t)n);
    if (rc != 0) {
        mesh_log_error(SUBSYS, "send %s to %s failed: %s",
                       mesh_proto_cmd_name(MESH_SIDE_WORKER, cmd), l->endpoint, mesh_strerror(rc));
        return rc;
    }
    mesh_hb_on_sent(&l->hb, uv_now(l->w->loop));
    return 0;
}

/* Encode a reply into w->sb and send it as cmd (PARTIAL or FINAL) on link. */
static int link_send_reply(worker_link_t *l, uint8_t cmd, const char *id, int status,
                           const char *errmsg, const json_t *data)
{
    mesh_worker_t *w = l->w;
    mesh_reply_t rep;

    if (status > 0 || !mesh_err_known(status)) {
        mesh_log_warn(SUBSYS, "reply id=%s with unknown status %d sent as internal_error", id,
                      status);
        status = MESH_EINTERNAL;
    }
    memset(&rep, 0, sizeof(rep));
    copy_trunc_utf8(rep.id, sizeof(rep.id), id);
    rep.status = status;
    if (errmsg)
        copy_trunc_utf8(rep.err, sizeof(rep.err), errmsg);
    rep.data = (json_t *)data; /* borrowed by the encoder; never cleared here */

    w->sb.size = 0;
    int rc = mesh_reply_encode(&rep, &w->sb);
    if (rc != 0) {
        mesh_log_error(SUBSYS, "reply id=%s not encodable: %s", id, mesh_strerror(rc));
        if (cmd != MESH_W_FINAL)
            return MESH_EINVAL;
        /* The router must still get its FINAL. */
        rep.data = NULL;
        rep.status = MESH_EINTERNAL;
        copy_trunc_utf8(rep.err, sizeof(rep.err), "reply not encodable");
        w->sb.size = 0;
        rc = mesh_reply_encode(&rep, &w->sb);
        if (rc != 0)
            return MESH_EIO;
    }
    rc = link_send(l, cmd, w->sb.data, w->sb.size);
    if (rc == MESH_ECANCELED)
        return rc;
    return rc == 0 ? 0 : MESH_EIO;
}

/* ---- links --------------------------------------------------------------- */

static void on_link_recv(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n, void *arg);

static int link_announce(worker_link_t *l)
{
    mesh_worker_t *w = l->w;
    mesh_ready_t rdy = {.capacity = w->capacity};
    w->sb.size = 0;
    int rc = mesh_ready_encode(&rdy, &w->sb);
    if (rc == 0)
        rc = link_send(l, MESH_W_READY, w->sb.data, w->sb.size);
    if (rc != 0)
        return rc;
    l->announced = true;
    /* The liveness window starts with the announcement. */
    mesh_hb_on_traffic(&l->hb, uv_now(w->loop));
    return 0;
}

/* Drop the socket; the tick reconnects after the backoff. */
static void link_reset(worker_link_t *l, uint64_t delay)
{
    mesh_uvzmq_close(&l->sock);
    l->announced = false;
    l->heard = false;
    l->generation++;
    l->reconnect_at = uv_now(l->w->loop) + delay;
}

/* New socket, connect, READY when the worker is ready. MESH_EINVAL for a bad endpoint. */
static int link_open(worker_link_t *l)
{
    mesh_worker_t *w = l->w;
    uint64_t now = uv_now(w->loop);
    int rc;

    l->generation++;
    l->announced = false;
    l->heard = false;
    l->sock = mesh_uvzmq_new(w->loop, w->zctx, ZMQ_DEALER, &w->zopts, on_link_recv, l);
    if (!l->sock) {
        rc = MESH_EIO;
        goto retry;
    }
    rc = mesh_uvzmq_connect(l->sock, l->endpoint);
    if (rc != 0) {
        mesh_uvzmq_close(&l->sock);
        goto retry;
    }
    mesh_hb_on_traffic(&l->hb, now);
    if (w->ready && !w->draining)
        link_announce(l);
    return 0;

retry:
    l->reconnect_at = now + mesh_hb_next_backoff(&l->hb);
    return rc;
}

/* ---- requests ------------------------------------------------------------ */

static void handle_request(worker_link_t *l, const void *body, size_t len)
{
    mesh_worker_t *w = l->w;
    char sample[4 * MESH_LOG_SAMPLE_MAX + 4];
    char id[MESH_ID_MAX + 1];

    mesh_worker_req_t *req = req_alloc(w);
    if (!req) {
        mesh_log_error(SUBSYS, "out of memory for a request from %s", l->endpoint);
        if (peek_id(body, len, id))
            link_send_reply(l, MESH_W_FINAL, id, MESH_ENOMEM, "worker out of memory", NULL);
        return;
    }
    int rc = mesh_request_decode(body, len, &req->msg);
    if (rc != 0) {
        req_release(w, req);
        if (peek_id(body, len, id)) {
            mesh_log_warn(SUBSYS, "malformed REQUEST id=%s from %s: %s",
                          mesh_log_sanitize(id, strlen(id), sample, sizeof(sample)), l->endpoint,
                          mesh_strerror(rc));
            link_send_reply(l, MESH_W_FINAL, id, MESH_EPROTO, mesh_strerror(rc), NULL);
            metrics_request(w, WORKER_METRIC_OP_MALFORMED, MESH_EPROTO, 0);
        } else {
            mesh_log_warn(SUBSYS,
                          "malformed REQUEST without a readable id from %s dropped: %s, "
                          "body \"%s\"",
                          l->endpoint, mesh_strerror(rc),
                          mesh_log_sanitize(body, len, sample, sizeof(sample)));
        }
        return;
    }

    const mesh_request_t *m = &req->msg;
    if (mesh_log_get_level() <= MESH_LOG_DEBUG) {
        char sid[sizeof(sample)], sop[sizeof(sample)], sconv[sizeof(sample)];
        /* The request's context (trace id, the sender's span id, conv, tenant). */
        mesh_log_ctx_t dctx;
        mesh_log_ctx_set(&dctx, m->tp, m->conv, m->tenant);
        const mesh_log_ctx_t *dprev = mesh_log_ctx_swap(&dctx);
        mesh_log_debug(SUBSYS, "request id=%s op=%s conv=%s",
                       mesh_log_sanitize(m->id, strlen(m->id), sid, sizeof(sid)),
                       mesh_log_sanitize(m->op, strlen(m->op), sop, sizeof(sop)),
                       mesh_log_sanitize(m->conv, strlen(m->conv), sconv, sizeof(sconv)));
        mesh_log_ctx_swap(dprev);
    }

    if (w->drain_fired) {
        link_send_reply(l, MESH_W_FINAL, m->id, MESH_EUNAVAIL, "worker shutting down", NULL);
        metrics_request(w, m->op, MESH_EUNAVAIL, 0);
        req_release(w, req);
        return;
    }
    if (w->held >= w->capacity) {
        link_send_reply(l, MESH_W_FINAL, m->id, MESH_EBUSY, "worker at capacity", NULL);
        metrics_request(w, m->op, MESH_EBUSY, 0);
        req_release(w, req);
        return;
    }

    req->w = w;
    req->link = l->index;
    req->generation = l->generation;
    req->deadline_at = uv_now(w->loop) + m->deadline_ms;
    req->next = w->reqs;
    if (w->reqs)
        w->reqs->prev = req;
    w->reqs = req;
    w->held++;
    w->unanswered++;
    req->start_ns = uv_hrtime();
    mesh_gauge_add(w->s_inflight, 1);

    /*
     * The worker's span of this request: a child of the sender's span (the
     * request's traceparent), finished at mesh_worker_final. Lines logged
     * while the handler runs synchronously carry its trace id, this span id,
     * conv and tenant. The context lives on this stack: it is restored
     * before returning, and the handler's later callbacks set their own.
     */
    char span_name[MESH_SPAN_NAME_MAX + 1];
    char child_tp[MESH_TRACEPARENT_MAX + 1];
    mesh_log_ctx_t ctx;
    if (snprintf(span_name, sizeof(span_name), "%s %s", w->service, m->op) >=
        (int)sizeof(span_name))
        span_name[sizeof(span_name) - 1] = '\0'; /* truncated: still a usable name */
    mesh_span_start(&req->span, span_name, MESH_SPAN_SERVER, m->tp);
    mesh_span_child_tp(&req->span, child_tp);
    mesh_log_ctx_set(&ctx, child_tp, m->conv, m->tenant);
    const mesh_log_ctx_t *prev_ctx = mesh_log_ctx_swap(&ctx);
    /* The handler may answer, destroy the worker or close this link: touch nothing after. */
    w->handler(w, req, &req->msg, w->arg);
    mesh_log_ctx_swap(prev_ctx);
}

/*
 * CANCEL from the router: find the request it names among those held that
 * came on this link and generation (a router can only cancel its own), mark
 * it and tell the handler. Without a cancel handler the request just runs on.
 */
static void handle_cancel(worker_link_t *l, const void *body, size_t len)
{
    mesh_worker_t *w = l->w;
    char sample[4 * MESH_LOG_SAMPLE_MAX + 4];
    char id[MESH_ID_MAX + 1];

    if (mesh_cancel_decode(body, len, id) != 0) {
        mesh_log_warn(SUBSYS, "malformed CANCEL from %s dropped: body \"%s\"", l->endpoint,
                      mesh_log_sanitize(body, len, sample, sizeof(sample)));
        return;
    }
    mesh_worker_req_t *r = w->reqs;
    while (r && !(r->link == l->index && r->generation == l->generation && !r->answered &&
                  strcmp(r->msg.id, id) == 0))
        r = r->next;
    if (!r || r->canceled) {
        mesh_log_debug(SUBSYS, "CANCEL for unknown or finished id=%s ignored",
                       mesh_log_sanitize(id, strlen(id), sample, sizeof(sample)));
        return;
    }
    if (!w->cancel_fn)
        return;
    r->canceled = true;
    /* The handler may final r, destroy the worker or close this link: touch nothing after. */
    w->cancel_fn(w, r, w->cancel_arg);
}

static void on_link_recv(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n, void *arg)
{
    worker_link_t *l = arg;
    mesh_worker_t *w = l->w;
    char sample[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_proto_msg_t pm;

    if (w->destroyed)
        return;
    /* Any traffic proves the router alive, even a message we then refuse. */
    mesh_hb_on_traffic(&l->hb, uv_now(w->loop));
    if (!l->heard) {
        l->heard = true;
        mesh_hb_reset_backoff(&l->hb);
    }

    int rc = mesh_proto_decode(frames, n, MESH_SIDE_WORKER, w->max_body, &pm);
    if (rc != 0) {
        mesh_log_warn(SUBSYS, "bad message from %s: %s (%zu frames, first \"%s\")", l->endpoint,
                      mesh_strerror(rc), n,
                      n ? mesh_log_sanitize(frames[0].data, frames[0].size, sample, sizeof(sample))
                        : "");
        return;
    }
    switch (pm.cmd) {
    case MESH_W_HEARTBEAT:
        return;
    case MESH_W_REQUEST:
        handle_request(l, pm.body, pm.body_len);
        return;
    case MESH_W_CANCEL:
        handle_cancel(l, pm.body, pm.body_len);
        return;
    case MESH_W_DISCONNECT:
        if (!l->announced) {
            /* We already said goodbye on this link (not ready / draining). */
            mesh_log_debug(SUBSYS, "DISCONNECT from %s on a quiet link ignored", l->endpoint);
            return;
        }
        mesh_log_info(SUBSYS, "router %s sent DISCONNECT, reconnecting", l->endpoint);
        link_reset(l, mesh_hb_next_backoff(&l->hb));
        return;
    default:
        mesh_log_warn(SUBSYS, "unexpected %s from router %s dropped",
                      mesh_proto_cmd_name(MESH_SIDE_WORKER, pm.cmd), l->endpoint);
        return;
    }
}

/* ---- timers -------------------------------------------------------------- */

/*
 * A HEARTBEAT is due when we sent nothing for an interval (18/MDP), and also,
 * at most once per interval, when the peer said nothing for an interval:
 * while we stream answers we are never idle, and a router that only answers
 * heartbeats would otherwise look dead to us.
 */
static bool hb_due(const mesh_hb_t *hb, uint64_t last_hb_at, uint64_t now)
{
    if (mesh_hb_send_due(hb, now))
        return true;
    return now - hb->last_recv_ms >= hb->interval_ms && now - last_hb_at >= hb->interval_ms;
}

static void on_tick(uv_timer_t *t)
{
    mesh_worker_t *w = t->data;
    uint64_t now = uv_now(w->loop);

    for (int i = 0; i < w->n_links; i++) {
        worker_link_t *l = &w->links[i];
        if (!l->sock) {
            if (!w->draining && now >= l->reconnect_at)
                link_open(l);
            continue;
        }
        if (!l->announced)
            continue;
        /* Unread input is traffic too: after a blocked loop the router's
         * heartbeat may be waiting in the socket, read only after the timers. */
        if (mesh_hb_peer_dead(&l->hb, now) && !mesh_uvzmq_readable(l->sock)) {
            uint64_t delay = mesh_hb_next_backoff(&l->hb);
            mesh_log_warn(SUBSYS, "router %s silent for %llu ms, reconnecting in %llu ms",
                          l->endpoint, (unsigned long long)(now - l->hb.last_recv_ms),
                          (unsigned long long)delay);
            link_reset(l, delay);
            continue;
        }
        if (hb_due(&l->hb, l->last_hb_at, now) && link_send(l, MESH_W_HEARTBEAT, NULL, 0) == 0)
            l->last_hb_at = now;
    }
}

static void on_drain_timer(uv_timer_t *t)
{
    mesh_worker_t *w = t->data;
    if (w->drain_fired)
        return;
    w->drain_fired = true;
    if (w->unanswered)
        mesh_log_warn(SUBSYS, "drain grace over: failing %u open requests", w->unanswered);
    for (mesh_worker_req_t *r = w->reqs; r; r = r->next) {
        if (r->answered)
            continue;
        worker_link_t *l = &w->links[r->link];
        if (l->generation == r->generation)
            link_send_reply(l, MESH_W_FINAL, r->msg.id, MESH_EUNAVAIL, "worker shutting down",
                            NULL);
        metrics_request(w, r->msg.op, MESH_EUNAVAIL, r->start_ns);
        r->answered = true;
        w->unanswered--;
    }
    if (w->drain_cb)
        w->drain_cb(w, w->drain_arg); /* may destroy w */
}

/* ---- public API ---------------------------------------------------------- */

static bool zopts_unset(const mesh_zsock_opts_t *z)
{
    return z->linger_ms == 0 && z->max_msg_size == 0 && z->sndhwm == 0 && z->rcvhwm == 0;
}

mesh_worker_t *mesh_worker_new(uv_loop_t *loop, void *zctx, const mesh_worker_opts_t *opts,
                               mesh_worker_handler_fn handler, void *arg)
{
    if (!loop || !zctx || !opts || !handler) {
        mesh_log_error(SUBSYS, "mesh_worker_new: missing argument");
        return NULL;
    }
    const char *why = NULL;
    if (!opts->service || !mesh_proto_service_valid(opts->service, strlen(opts->service)))
        why = "invalid service name";
    else if (opts->n_endpoints < 1 || opts->n_endpoints > MESH_MAX_ROUTERS)
        why = "endpoint count out of range";
    else if (opts->capacity < 1 || opts->capacity > MESH_WORKER_CAPACITY_MAX)
        why = "capacity out of range";
    else if (opts->heartbeat_ms < 1 || opts->liveness < 1)
        why = "heartbeat interval and liveness must be positive";
    else if (opts->reconnect_min_ms < 1 || opts->reconnect_max_ms < opts->reconnect_min_ms)
        why = "reconnect delays must satisfy 0 < min <= max";
    for (int i = 0; !why && i < opts->n_endpoints; i++)
        if (!opts->endpoints[i] || !opts->endpoints[i][0] ||
            strlen(opts->endpoints[i]) > MESH_ENDPOINT_MAX)
            why = "empty or too long endpoint";
    if (why) {
        mesh_log_error(SUBSYS, "mesh_worker_new: %s", why);
        return NULL;
    }

    mesh_worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->loop = loop;
    w->zctx = zctx;
    memcpy(w->service, opts->service, strlen(opts->service) + 1);
    w->capacity = opts->capacity;
    w->heartbeat_ms = opts->heartbeat_ms;
    w->tick_ms = opts->heartbeat_ms / 2;
    if (w->tick_ms > opts->reconnect_min_ms)
        w->tick_ms = opts->reconnect_min_ms;
    if (w->tick_ms < 1)
        w->tick_ms = 1;
    w->zopts = opts->zopts;
    if (zopts_unset(&w->zopts))
        mesh_zsock_opts_default(&w->zopts);
    w->max_body = w->zopts.max_msg_size > 0 ? (size_t)w->zopts.max_msg_size : 0;
    w->handler = handler;
    w->arg = arg;
    w->ready = true;
    msgpack_sbuffer_init(&w->sb);
    metrics_init(w);

    uint64_t now = uv_now(loop);
    w->n_links = opts->n_endpoints;
    for (int i = 0; i < w->n_links; i++) {
        worker_link_t *l = &w->links[i];
        l->w = w;
        l->index = i;
        memcpy(l->endpoint, opts->endpoints[i], strlen(opts->endpoints[i]) + 1);
        mesh_hb_init(&l->hb, opts->heartbeat_ms, opts->liveness, opts->reconnect_min_ms,
                     opts->reconnect_max_ms, now);
    }
    uv_timer_init(loop, &w->tick);
    w->tick.data = w;
    uv_timer_init(loop, &w->drain_timer);
    w->drain_timer.data = w;
    w->open_handles = 2;
    return w;
}

int mesh_worker_start(mesh_worker_t *w)
{
    if (!w || w->destroyed)
        return MESH_EINVAL;
    if (w->started)
        return MESH_ESTATE;
    w->started = true;
    for (int i = 0; i < w->n_links; i++) {
        int rc = link_open(&w->links[i]);
        if (rc == MESH_EINVAL)
            return MESH_EINVAL; /* a malformed endpoint never heals */
    }
    uv_timer_start(&w->tick, on_tick, w->tick_ms, w->tick_ms);
    return 0;
}

void mesh_worker_set_ready(mesh_worker_t *w, bool ready)
{
    if (!w || w->destroyed || w->ready == ready)
        return;
    w->ready = ready;
    if (!w->started || w->draining)
        return;
    for (int i = 0; i < w->n_links; i++) {
        worker_link_t *l = &w->links[i];
        if (!ready) {
            if (l->sock && l->announced)
                link_send(l, MESH_W_DISCONNECT, NULL, 0);
            l->announced = false;
        } else {
            /* A fresh socket (new identity) so any router takes the READY as a new
             * worker. Requests from the old socket are answered as cancelled. */
            mesh_uvzmq_close(&l->sock);
            link_open(l);
        }
    }
}

const mesh_request_t *mesh_worker_req_msg(const mesh_worker_req_t *req)
{
    return req ? &req->msg : NULL;
}

uint64_t mesh_worker_req_remaining_ms(const mesh_worker_req_t *req)
{
    if (!req || !req->w)
        return 0;
    uint64_t now = uv_now(req->w->loop);
    return req->deadline_at > now ? req->deadline_at - now : 0;
}

/* The link req must answer on, or NULL when its connection was reset. */
static worker_link_t *req_link(mesh_worker_req_t *req)
{
    mesh_worker_t *w = req->w;
    if (!w || w->destroyed || req->answered)
        return NULL;
    worker_link_t *l = &w->links[req->link];
    if (l->generation != req->generation || !l->sock)
        return NULL;
    return l;
}

void mesh_worker_set_cancel_handler(mesh_worker_t *w,
                                    void (*fn)(mesh_worker_t *, mesh_worker_req_t *, void *),
                                    void *arg)
{
    if (!w)
        return;
    w->cancel_fn = fn;
    w->cancel_arg = arg;
}

bool mesh_worker_req_canceled(const mesh_worker_req_t *req)
{
    return req && req->canceled;
}

int mesh_worker_partial(mesh_worker_req_t *req, const json_t *data)
{
    if (!req)
        return MESH_EINVAL;
    if (req->canceled)
        return MESH_ECANCELED;
    worker_link_t *l = req_link(req);
    if (!l)
        return MESH_ECANCELED;
    return link_send_reply(l, MESH_W_PARTIAL, req->msg.id, 0, NULL, data);
}

int mesh_worker_final(mesh_worker_req_t *req, int status, const char *errmsg, const json_t *data)
{
    if (!req)
        return MESH_EINVAL;
    mesh_worker_t *w = req->w;
    if (!w) {
        /* Worker destroyed while the handler held the request. */
        req_release(NULL, req);
        return MESH_ECANCELED;
    }
    worker_link_t *l = req_link(req);
    int rc;
    if (req->canceled) {
        /* The router forgot the request already; this FINAL (no data) only
         * frees the capacity slot it keeps for it until the worker is done. */
        status = MESH_ECANCELED;
        if (l)
            link_send_reply(l, MESH_W_FINAL, req->msg.id, MESH_ECANCELED, "canceled", NULL);
        rc = MESH_ECANCELED;
    } else {
        rc = l ? link_send_reply(l, MESH_W_FINAL, req->msg.id, status, errmsg, data)
               : MESH_ECANCELED;
    }
    req_unlink(w, req);
    w->held--;
    mesh_gauge_add(w->s_inflight, -1);
    /* A request the drain already failed was counted then, with its real status. */
    if (!req->answered)
        metrics_request(w, req->msg.op, status, req->start_ns);
    mesh_span_finish(&req->span, status);
    if (!req->answered)
        w->unanswered--;
    req_release(w, req);
    if (w->draining && !w->drain_fired && w->unanswered == 0)
        uv_timer_start(&w->drain_timer, on_drain_timer, 0, 0); /* done_cb off this stack */
    return rc;
}

uint32_t mesh_worker_inflight(const mesh_worker_t *w)
{
    return w ? w->held : 0;
}

void mesh_worker_drain(mesh_worker_t *w, uint64_t grace_ms,
                       void (*done_cb)(mesh_worker_t *, void *), void *arg)
{
    if (!w || w->destroyed)
        return;
    if (w->draining) {
        mesh_log_warn(SUBSYS, "drain already in progress");
        return;
    }
    w->draining = true;
    w->drain_cb = done_cb;
    w->drain_arg = arg;
    for (int i = 0; i < w->n_links; i++) {
        worker_link_t *l = &w->links[i];
        if (l->sock && l->announced)
            link_send(l, MESH_W_DISCONNECT, NULL, 0);
        l->announced = false;
    }
    mesh_log_info(SUBSYS, "draining: %u requests in flight, grace %llu ms", w->unanswered,
                  (unsigned long long)grace_ms);
    uv_timer_start(&w->drain_timer, on_drain_timer, w->unanswered ? grace_ms : 0, 0);
}

static void on_handle_close(uv_handle_t *h)
{
    mesh_worker_t *w = h->data;
    if (--w->open_handles > 0)
        return;
    msgpack_sbuffer_destroy(&w->sb);
    free(w);
}

void mesh_worker_destroy(mesh_worker_t **w_p)
{
    if (!w_p || !*w_p)
        return;
    mesh_worker_t *w = *w_p;
    *w_p = NULL;
    if (w->destroyed)
        return;
    w->destroyed = true;
    mesh_gauge_add(w->s_capacity, -(double)w->capacity);
    mesh_gauge_add(w->s_inflight, -(double)w->held); /* handles outlive w: count them gone */
    for (int i = 0; i < w->n_links; i++)
        mesh_uvzmq_close(&w->links[i].sock);
    /* Requests still held by the handler stay valid: mesh_worker_final frees them. */
    for (mesh_worker_req_t *r = w->reqs; r; r = r->next)
        r->w = NULL;
    w->reqs = NULL;
    while (w->free_reqs) {
        mesh_worker_req_t *r = w->free_reqs;
        w->free_reqs = r->next;
        free(r);
    }
    uv_close((uv_handle_t *)&w->tick, on_handle_close);
    uv_close((uv_handle_t *)&w->drain_timer, on_handle_close);
}
