/*
 * memory_worker.c - mesh_worker <-> memory ops glue (memory_worker.h).
 */
#include "memory_worker.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

#define MW_SUBSYS  "memory"
#define MW_SERVICE "memory"

struct memory_worker {
    mesh_worker_t *worker;
    mesh_redis_t *redis;
    memory_ops_t *ops;
    /* The handoff queue gauge is refreshed every queue_refresh_ms while Redis
     * is up, so MeshHandoffQueueLong sees a current value with no console open.
     * The timer is freed in its close callback. */
    uv_timer_t *queue_timer;
    uint64_t queue_refresh_ms;
    void (*drain_done)(void *arg);
    void *drain_arg;
};

static void on_queue_timer(uv_timer_t *t)
{
    memory_worker_t *mw = t->data;
    if (mesh_redis_up(mw->redis))
        memory_ops_refresh_queue(mw->ops); /* a failure only leaves the gauge as it was */
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void on_op_done(int status, const char *errmsg, const json_t *data, void *arg)
{
    mesh_worker_req_t *req = arg;
    /* EBUSY (a conversation busy on another router) is routine under load:
     * sanitize the id only when the info line is written at all. */
    if (status != 0 && mesh_log_get_level() <= MESH_LOG_INFO) {
        const mesh_request_t *msg = mesh_worker_req_msg(req);
        char id[4 * MESH_LOG_SAMPLE_MAX + 4] = "";
        if (msg != NULL)
            mesh_log_sanitize(msg->id, strlen(msg->id), id, sizeof id);
        mesh_log_info(MW_SUBSYS, "request %s: %s: %s", id, mesh_err_name(status),
                      errmsg != NULL ? errmsg : "");
    }
    mesh_worker_final(req, status, errmsg, data);
}

static void on_request(mesh_worker_t *w, mesh_worker_req_t *req, const mesh_request_t *msg,
                       void *arg)
{
    (void)w;
    memory_worker_t *mw = arg;
    char err[MESH_ERRMSG_MAX + 1] = "";
    memory_req_t mreq = {
        .op = msg->op, .conv = msg->conv, .tenant = msg->tenant, .args = msg->args};
    json_t *now = NULL;
    int rc = memory_ops_call(mw->ops, &mreq, on_op_done, req, &now, err, sizeof err);
    if (rc == 0 && now != NULL) { /* a tool outcome decided without Redis */
        mesh_worker_final(req, 0, NULL, now);
        json_decref(now);
        return;
    }
    if (rc == 0)
        return;
    /* err may quote the client's op name: it went through mesh_log_sanitize. */
    if (mesh_log_get_level() <= MESH_LOG_INFO) {
        char id[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(msg->id, strlen(msg->id), id, sizeof id);
        mesh_log_info(MW_SUBSYS, "request %s refused: %s: %s", id, mesh_err_name(rc), err);
    }
    mesh_worker_final(req, rc, err, NULL);
}

static void on_redis_state(mesh_redis_t *r, bool up, void *arg)
{
    (void)r;
    memory_worker_t *mw = arg;
    if (up) {
        mesh_log_info(MW_SUBSYS, "redis up: announcing to the routers");
        memory_ops_redis_up(mw->ops);
    } else {
        mesh_log_warn(MW_SUBSYS, "redis down: withdrawing from the routers");
    }
    mesh_worker_set_ready(mw->worker, up);
}

memory_worker_t *memory_worker_new(uv_loop_t *loop, void *zctx, const memory_worker_cfg_t *cfg)
{
    if (loop == NULL || cfg == NULL)
        return NULL;
    memory_worker_t *mw = calloc(1, sizeof *mw);
    if (mw == NULL)
        return NULL;
    mesh_worker_opts_t wo = cfg->worker;
    wo.service = MW_SERVICE;
    mw->redis = mesh_redis_new(loop, &cfg->redis, on_redis_state, mw);
    if (mw->redis == NULL)
        goto fail;
    mw->ops = memory_ops_new(mw->redis, &cfg->ops);
    if (mw->ops == NULL)
        goto fail;
    mw->worker = mesh_worker_new(loop, zctx, &wo, on_request, mw);
    if (mw->worker == NULL)
        goto fail;
    mw->queue_timer = malloc(sizeof *mw->queue_timer);
    if (mw->queue_timer == NULL || uv_timer_init(loop, mw->queue_timer) != 0) {
        free(mw->queue_timer);
        mw->queue_timer = NULL;
        goto fail;
    }
    mw->queue_timer->data = mw;
    mw->queue_refresh_ms = cfg->queue_refresh_ms;
    /* Never keeps the loop alive: a drained worker still ends its loop. */
    uv_unref((uv_handle_t *)mw->queue_timer);
    /* Not announced until Redis answers. */
    mesh_worker_set_ready(mw->worker, false);
    return mw;

fail:
    memory_worker_destroy(&mw);
    return NULL;
}

int memory_worker_start(memory_worker_t *mw)
{
    if (mw == NULL)
        return MESH_EINVAL;
    int rc = mesh_worker_start(mw->worker);
    if (rc != 0)
        return rc;
    if (mw->queue_refresh_ms > 0)
        uv_timer_start(mw->queue_timer, on_queue_timer, mw->queue_refresh_ms, mw->queue_refresh_ms);
    return mesh_redis_start(mw->redis);
}

bool memory_worker_redis_up(const memory_worker_t *mw)
{
    return mw != NULL && mesh_redis_up(mw->redis);
}

static void on_worker_drained(mesh_worker_t *w, void *arg)
{
    (void)w;
    memory_worker_t *mw = arg;
    if (mw->drain_done != NULL)
        mw->drain_done(mw->drain_arg);
}

void memory_worker_drain(memory_worker_t *mw, uint64_t grace_ms, void (*done)(void *arg), void *arg)
{
    if (mw == NULL)
        return;
    mw->drain_done = done;
    mw->drain_arg = arg;
    mesh_worker_drain(mw->worker, grace_ms, on_worker_drained, mw);
}

void memory_worker_destroy(memory_worker_t **mw_p)
{
    if (mw_p == NULL || *mw_p == NULL)
        return;
    memory_worker_t *mw = *mw_p;
    *mw_p = NULL;
    /*
     * Redis first: it completes every op in flight (ECANCELED -> the op
     * answers EUNAVAIL) while the worker can still send the FINALs. The
     * state callback is not called on destroy.
     */
    if (mw->queue_timer != NULL) {
        uv_close((uv_handle_t *)mw->queue_timer, on_timer_closed);
        mw->queue_timer = NULL;
    }
    mesh_redis_destroy(&mw->redis);
    memory_ops_destroy(&mw->ops);
    mesh_worker_destroy(&mw->worker);
    free(mw);
}
