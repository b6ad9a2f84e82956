/*
 * broker_req.c - the life of a request inside the broker: admission to a
 * service queue, dispatch to the worker with the most free capacity,
 * deadlines (one min-heap, one timer), replies, retry-once of idempotent
 * requests when their worker dies, and cancellation.
 *
 * Every request is in exactly one of: its pool's queue (REQ_QUEUED) or its
 * worker's list (REQ_INFLIGHT); it is in b->reqs (by id) and in the deadline
 * heap for its whole life. A request answered before its worker finished
 * (deadline or cancel) becomes an "orphan": it keeps the worker's capacity
 * slot until the worker's FINAL arrives, the worker dies, or
 * ROUTER_ORPHAN_GRACE_MS pass, so a slow worker is not sent more work than
 * it announced.
 */
#include "broker_int.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "router_metrics.h"

#define LOG_SUB "broker"

static router_req_t *req_of_link(router_list_t *l)
{
    return ROUTER_CONTAINER_OF(l, router_req_t, link);
}

static router_req_t *req_of_node(router_heap_node_t *n)
{
    return ROUTER_CONTAINER_OF(n, router_req_t, hnode);
}

/* When to look at req next: its deadline, or earlier while it waits in a
 * pool that has no worker at all (MESH_NOWORKER_WAIT_MS). */
static uint64_t req_expiry(const router_broker_t *b, const router_req_t *req)
{
    if (req->state == REQ_QUEUED && req->pool->n_workers == 0) {
        uint64_t since =
            req->enqueued_at > req->pool->empty_since ? req->enqueued_at : req->pool->empty_since;
        uint64_t nw = since + b->opts.noworker_ms;
        return nw < req->deadline ? nw : req->deadline;
    }
    return req->deadline;
}

void router__req_free(router_req_t *req)
{
    if (!req)
        return;
    mesh_request_clear(&req->msg);
    free(req);
}

/* ---- pools ---- */

router_pool_t *router__pool_get(router_broker_t *b, const char *name, size_t len, bool create)
{
    router_pool_t *p = router_map_get(b->pools, name, len);
    if (p || !create)
        return p;
    if (router_map_count(b->pools) >= ROUTER_SERVICES_MAX)
        return NULL;
    p = router_pool_new(name, len, router__now(b));
    if (!p)
        return NULL;
    if (router_map_put(b->pools, p->name, p->name_len, p) != 0) {
        router_pool_destroy(&p);
        return NULL;
    }
    return p;
}

void router__pool_gc(router_broker_t *b, router_pool_t *p)
{
    if (!p || p->n_workers > 0 || p->queued > 0 || p->dispatching)
        return;
    if (router_list_linked(&p->dirty))
        router_list_remove(&p->dirty);
    router_map_del(b->pools, p->name, p->name_len);
    router_pool_destroy(&p);
}

/* ---- answering ---- */

/* Send a broker-made FINAL to whoever asked. Does not detach or free. */
static void req_answer(router_broker_t *b, router_req_t *req, int status, const char *msg)
{
    if (req->pool) {
        router_metrics_request_done(req->pool->name, status);
        if (status == MESH_ETIMEDOUT)
            router_metrics_expired(req->pool->name);
    }
    if (req->forwarded) {
        router_broker_client_error(b, req->client, req->client_len, req->pool->name, req->msg.id,
                                   status, msg);
        req->forwarded = false;
        b->forwarded--;
        return;
    }
    router_reply_cb cb = req->cb;
    void *arg = req->arg;
    req->cb = NULL;
    if (!cb)
        return;
    mesh_reply_t rep;
    memset(&rep, 0, sizeof(rep));
    memcpy(rep.id, req->msg.id, req->id_len + 1);
    rep.status = status;
    snprintf(rep.err, sizeof(rep.err), "%s", msg ? msg : mesh_strerror(status));
    cb(ROUTER_REPLY_FINAL, &rep, arg);
    mesh_reply_clear(&rep);
}

/* Take req out of every structure (queue or worker, map, heap). */
static void req_detach(router_broker_t *b, router_req_t *req)
{
    if (req->state == REQ_QUEUED) {
        router_pool_unqueue(req->pool, &req->link);
    } else if (req->state == REQ_INFLIGHT) {
        if (router_list_linked(&req->link))
            router_list_remove(&req->link);
        if (req->worker)
            router_pool_release(req->worker);
        req->worker = NULL;
    }
    router_map_del(b->reqs, req->msg.id, req->id_len);
    router_heap_remove(&b->deadlines, &req->hnode);
}

/* An in-flight request was answered early: keep the worker slot for a while. */
static void req_orphan(router_broker_t *b, router_req_t *req)
{
    req->orphan = true;
    req->cb = NULL;
    req->arg = NULL;
    router_heap_update(&b->deadlines, &req->hnode, router__now(b) + ROUTER_ORPHAN_GRACE_MS);
}

void router__req_fail(router_broker_t *b, router_req_t *req, int status, const char *msg)
{
    router_pool_t *p = req->pool;
    if (req->state == REQ_INFLIGHT && req->worker) {
        /* Answer first (req_answer clears the callback), then keep the slot. */
        req_answer(b, req, status, msg);
        req_orphan(b, req);
        router__arm_deadlines(b);
        return;
    }
    req_detach(b, req);
    req_answer(b, req, status, msg);
    router__req_free(req);
    router__arm_deadlines(b);
    router__pool_gc(b, p);
}

void router__req_reply(router_broker_t *b, router_req_t *req, bool final, mesh_reply_t *rep,
                       const void *body, size_t body_len)
{
    if (!final) {
        if (req->orphan)
            return;
        if (req->forwarded) {
            if (router__send(b->front, req->client, req->client_len, MESH_SIDE_CLIENT,
                             MESH_C_PARTIAL, req->pool->name, body, body_len) == 0)
                router__client_sent(b, req->client, req->client_len);
        } else if (req->cb) {
            req->cb(ROUTER_REPLY_PARTIAL, rep, req->arg);
        }
        return;
    }
    router_pool_t *p = req->pool;
    req_detach(b, req);
    if (!req->orphan)
        router_metrics_request_done(p->name, rep->status);
    if (!req->orphan) {
        if (req->forwarded) {
            /* The worker's body is valid and carries the client's id: pass it on as is. */
            if (router__send(b->front, req->client, req->client_len, MESH_SIDE_CLIENT, MESH_C_FINAL,
                             p->name, body, body_len) == 0)
                router__client_sent(b, req->client, req->client_len);
            b->forwarded--;
        } else if (req->cb) {
            router_reply_cb cb = req->cb;
            req->cb = NULL;
            cb(ROUTER_REPLY_FINAL, rep, req->arg);
        }
    }
    router__req_free(req);
    router__arm_deadlines(b);
    /* A slot was freed: queued work may go now. */
    router__dispatch(b, p);
}

/* ---- admission and dispatch ---- */

static int send_request(router_broker_t *b, router_worker_t *w, router_req_t *req, uint64_t now)
{
    if (req->deadline <= now)
        return MESH_ETIMEDOUT;
    uint64_t remaining = req->deadline - now;
    /* The deadline travels relative, so every hop sees only what is left. */
    req->msg.deadline_ms =
        (uint32_t)(remaining > MESH_DEADLINE_MAX_MS ? MESH_DEADLINE_MAX_MS : remaining);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = mesh_request_encode(&req->msg, &sb);
    if (rc == 0)
        rc = router__send_worker(b, w, MESH_W_REQUEST, sb.data, sb.size);
    else
        rc = MESH_EINTERNAL;
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

void router__dispatch(router_broker_t *b, router_pool_t *p)
{
    if (p->dispatching) {
        p->again = true;
        return;
    }
    p->dispatching = true;
    do {
        p->again = false;
        while (p->queued > 0) {
            router_worker_t *w = router_pool_pick(p);
            if (!w)
                break;
            router_req_t *req = req_of_link(router_pool_dequeue(p));
            uint64_t now = router__now(b);
            int rc = send_request(b, w, req, now);
            if (rc == 0) {
                router_metrics_queue_wait(p->name, now - req->enqueued_at);
                req->state = REQ_INFLIGHT;
                req->worker = w;
                router_list_push_back(&w->reqs, &req->link);
                router_pool_mark_used(p, w);
                router_heap_update(&b->deadlines, &req->hnode, req->deadline);
                continue;
            }
            /* Not sent: back to the head, it keeps its place. */
            req->state = REQ_QUEUED;
            router_pool_enqueue_front(p, &req->link);
            if (rc == MESH_ETIMEDOUT) {
                router__req_fail(b, req, MESH_ETIMEDOUT, "deadline exceeded before dispatch");
            } else if (rc == MESH_EBUSY) {
                /* Outbound park queue full: stop here; the next FINAL or
                 * worker event dispatches again. */
                mesh_log_warn(LOG_SUB, "backend send queue full, service %s waits", p->name);
                break;
            } else if (rc == MESH_EINTERNAL || rc == MESH_EINVAL) {
                router__req_fail(b, req, MESH_EINTERNAL, "request could not be encoded");
            } else {
                /* The worker's connection is gone (EHOSTUNREACH) or broken. */
                router__worker_remove(b, w, "send failed");
            }
        }
    } while (p->again);
    p->dispatching = false;
    router__arm_deadlines(b);
}

static void idle_cb(uv_idle_t *h)
{
    router__dispatch_dirty(h->data);
}

void router__dispatch_later(router_broker_t *b, router_pool_t *p)
{
    if (!router_list_linked(&p->dirty))
        router_list_push_back(&b->dirty_pools, &p->dirty);
    if (b->idle && !uv_is_active((uv_handle_t *)b->idle))
        uv_idle_start(b->idle, idle_cb);
}

void router__dispatch_dirty(router_broker_t *b)
{
    router_list_t *l;
    while ((l = router_list_pop_front(&b->dirty_pools)) != NULL) {
        router_pool_t *p = ROUTER_CONTAINER_OF(l, router_pool_t, dirty);
        router__dispatch(b, p);
        router__pool_gc(b, p);
    }
    if (b->idle)
        uv_idle_stop(b->idle);
}

/*
 * Admit a new request (req->msg filled, id_len set, completion set): check
 * the id is unique, find the pool, enforce the queue bound, index it and
 * queue it; dispatch happens from the idle hook.
 */
static int req_enter(router_broker_t *b, router_req_t *req, const char *service, size_t len)
{
    if (router_map_get(b->reqs, req->msg.id, req->id_len))
        return MESH_EINVAL;
    if (router_map_count(b->reqs) >= ROUTER_REQUESTS_MAX)
        return MESH_EBUSY;
    router_pool_t *p = router__pool_get(b, service, len, true);
    if (!p)
        return router_map_count(b->pools) >= ROUTER_SERVICES_MAX ? MESH_ENOWORKER : MESH_ENOMEM;
    /* Requests that can be dispatched at once do not count against the bound. */
    if (p->queued >= (uint64_t)b->opts.queue_max + router_pool_free_slots(p)) {
        router__pool_gc(b, p);
        return MESH_EBUSY;
    }
    if (router_map_put(b->reqs, req->msg.id, req->id_len, req) != 0) {
        router__pool_gc(b, p);
        return MESH_ENOMEM;
    }
    uint64_t now = router__now(b);
    req->pool = p;
    req->state = REQ_QUEUED;
    req->enqueued_at = now;
    req->deadline = now + req->msg.deadline_ms;
    router_heap_node_init(&req->hnode);
    router_list_init(&req->link);
    router_pool_enqueue(p, &req->link);
    if (router_heap_push(&b->deadlines, &req->hnode, req_expiry(b, req)) != 0) {
        router_pool_unqueue(p, &req->link);
        router_map_del(b->reqs, req->msg.id, req->id_len);
        router__pool_gc(b, p);
        return MESH_ENOMEM;
    }
    router__arm_deadlines(b);
    router__dispatch_later(b, p);
    return 0;
}

static router_req_t *req_new(const mesh_request_t *msg)
{
    router_req_t *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    memcpy(&req->msg, msg, sizeof(req->msg));
    req->msg.args = NULL; /* taken by the caller on success only */
    req->id_len = strlen(req->msg.id);
    router_list_init(&req->link);
    router_heap_node_init(&req->hnode);
    return req;
}

static bool service_reserved(const char *service, size_t len)
{
    size_t mmi = sizeof(ROUTER_SERVICE_MMI_PREFIX) - 1;
    if (len >= mmi && memcmp(service, ROUTER_SERVICE_MMI_PREFIX, mmi) == 0)
        return true;
    return len == sizeof(ROUTER_SERVICE_AGENT) - 1 &&
           memcmp(service, ROUTER_SERVICE_AGENT, len) == 0;
}

int router_broker_submit(router_broker_t *b, const char *service, mesh_request_t *req,
                         router_reply_cb cb, void *arg)
{
    if (!b || !service || !req || !cb)
        return MESH_EINVAL;
    size_t len = strlen(service);
    if (!mesh_proto_service_valid(service, len) || service_reserved(service, len) ||
        req->id[0] == '\0' || req->deadline_ms == 0)
        return MESH_EINVAL;
    router_req_t *r = req_new(req);
    if (!r)
        return MESH_ENOMEM;
    r->cb = cb;
    r->arg = arg;
    r->msg.args = req->args;
    int rc = req_enter(b, r, service, len);
    if (rc) {
        r->msg.args = NULL; /* still the caller's */
        router__req_free(r);
        return rc;
    }
    req->args = NULL;
    return 0;
}

/* Called by the frontend for a client REQUEST to a worker service. */
int router__forward(router_broker_t *b, const void *client, size_t client_len, const char *service,
                    size_t service_len, mesh_request_t *msg)
{
    if (client_len == 0 || client_len > ROUTER_IDENTITY_MAX)
        return MESH_EINVAL;
    router_req_t *r = req_new(msg);
    if (!r)
        return MESH_ENOMEM;
    r->forwarded = true;
    memcpy(r->client, client, client_len);
    r->client_len = client_len;
    r->msg.args = msg->args;
    int rc = req_enter(b, r, service, service_len);
    if (rc) {
        r->msg.args = NULL;
        router__req_free(r);
        return rc;
    }
    msg->args = NULL;
    b->forwarded++;
    return 0;
}

/*
 * Forget req without answering anyone: a queued request leaves its queue;
 * one at a worker gets a worker CANCEL (best effort: the worker stops and
 * sends a data-less FINAL, or finishes normally) and stays as an orphan
 * holding the worker's slot until that FINAL or ROUTER_ORPHAN_GRACE_MS.
 */
static void req_cancel(router_broker_t *b, router_req_t *req)
{
    if (req->state == REQ_INFLIGHT && req->worker) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (mesh_cancel_encode(req->msg.id, &sb) == 0 &&
            router__send_worker(b, req->worker, MESH_W_CANCEL, sb.data, sb.size) != 0)
            mesh_log_debug(LOG_SUB, "CANCEL for %s not sent to its worker", req->msg.id);
        msgpack_sbuffer_destroy(&sb);
        if (req->forwarded) {
            req->forwarded = false;
            b->forwarded--;
        }
        req_orphan(b, req);
        router__arm_deadlines(b);
        return;
    }
    router_pool_t *p = req->pool;
    if (req->forwarded) {
        req->forwarded = false;
        b->forwarded--;
    }
    req_detach(b, req);
    router__req_free(req);
    router__arm_deadlines(b);
    router__pool_gc(b, p);
}

void router_broker_cancel(router_broker_t *b, const char *id)
{
    if (!b || !id)
        return;
    router_req_t *req = router_map_get(b->reqs, id, strlen(id));
    if (!req || req->orphan || req->forwarded)
        return;
    req_cancel(b, req);
}

int router_broker_cancel_client(router_broker_t *b, const void *client, size_t client_len,
                                const char *id)
{
    if (!b || !client || !id)
        return MESH_EINVAL;
    router_req_t *req = router_map_get(b->reqs, id, strlen(id));
    /* Only the client that sent a request may cancel it. */
    if (!req || req->orphan || !req->forwarded || req->client_len != client_len ||
        memcmp(req->client, client, client_len) != 0)
        return MESH_ENOTFOUND;
    if (req->pool)
        router_metrics_request_done(req->pool->name, MESH_ECANCELED);
    req_cancel(b, req);
    return 0;
}

/* ---- workers leaving ---- */

void router__worker_remove(router_broker_t *b, router_worker_t *w, const char *why)
{
    uint64_t now = router__now(b);
    router_pool_t *p = w->pool;
    char ident[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_log_sanitize(w->identity, w->identity_len, ident, sizeof(ident));
    mesh_log_info(LOG_SUB, "worker '%s' of %s removed: %s (%u in flight)", ident, p ? p->name : "?",
                  why, w->inflight);
    router_map_del(b->workers, w->identity, w->identity_len);
    /* Pin the pool: callbacks below may cancel requests, which must not
     * free the pool under us (router__pool_gc skips a dispatching pool). */
    bool pinned = false;
    if (p) {
        router_pool_remove_worker(p, w, now);
        pinned = p->dispatching;
        p->dispatching = true;
    }

    router_list_t *l;
    while ((l = router_list_pop_front(&w->reqs)) != NULL) {
        router_req_t *req = req_of_link(l);
        req->worker = NULL;
        if (req->orphan) {
            router_map_del(b->reqs, req->msg.id, req->id_len);
            router_heap_remove(&b->deadlines, &req->hnode);
            router__req_free(req);
            continue;
        }
        if (req->msg.idem && !req->retried && p) {
            /* Idempotent: run it once more on another worker, first in line. */
            req->retried = true;
            router_metrics_retry(p->name);
            req->state = REQ_QUEUED;
            req->enqueued_at = now;
            router_pool_enqueue_front(p, &req->link);
            router_heap_update(&b->deadlines, &req->hnode, req_expiry(b, req));
            mesh_log_info(LOG_SUB, "request %s retried after worker loss", req->msg.id);
            if (!req->forwarded && req->cb)
                req->cb(ROUTER_REPLY_RETRY, NULL, req->arg);
            continue;
        }
        /* Not idempotent (or already retried): it may have run; fail it. */
        req->state = 0;
        router_map_del(b->reqs, req->msg.id, req->id_len);
        router_heap_remove(&b->deadlines, &req->hnode);
        req_answer(b, req, MESH_EUNAVAIL, "worker lost while handling the request");
        router__req_free(req);
    }
    free(w);
    if (p) {
        p->dispatching = pinned;
        /* With no worker left, queued requests now wait at most MESH_NOWORKER_WAIT_MS. */
        if (p->n_workers == 0) {
            for (router_list_t *q = p->queue.next; q != &p->queue; q = q->next) {
                router_req_t *req = req_of_link(q);
                router_heap_update(&b->deadlines, &req->hnode, req_expiry(b, req));
            }
        }
        router__dispatch(b, p);
        router__pool_gc(b, p);
    }
    router__arm_deadlines(b);
}

/* ---- deadlines ---- */

void router__expire(router_broker_t *b)
{
    uint64_t now = router__now(b);
    router_heap_node_t *top;
    while ((top = router_heap_peek(&b->deadlines)) != NULL && top->key <= now) {
        router_req_t *req = req_of_node(top);
        if (req->orphan) {
            router_pool_t *p = req->pool;
            req_detach(b, req);
            router__req_free(req);
            if (p)
                router__dispatch_later(b, p);
            continue;
        }
        if (now >= req->deadline) {
            router__req_fail(b, req, MESH_ETIMEDOUT,
                             req->state == REQ_QUEUED ? "deadline exceeded waiting for a worker"
                                                      : "deadline exceeded");
            continue;
        }
        if (req->state == REQ_QUEUED && req->pool->n_workers == 0 && req_expiry(b, req) <= now) {
            char msg[MESH_ERRMSG_MAX + 1];
            snprintf(msg, sizeof(msg), "no worker for service %s", req->pool->name);
            router__req_fail(b, req, MESH_ENOWORKER, msg);
            continue;
        }
        /* Workers appeared meanwhile: only the real deadline remains. */
        router_heap_update(&b->deadlines, &req->hnode, req_expiry(b, req));
    }
}
