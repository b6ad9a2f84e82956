/* tools_service.c - the tools worker service (tools_service.h). */
#include "tools_service.h"

#include <stdio.h>
#include <stdlib.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_worker.h"
#include "tools_registry.h"

#define LOG_SUBSYS "tools"

typedef struct {
    mesh_service_ctx_t *ctx;
    mesh_worker_t *worker;
    tools_registry_t *reg;
    const char *data_dir; /* points into the environment (mesh_config) */
    char ep_storage[MESH_MAX_ROUTERS][256];
    void (*done)(mesh_service_ctx_t *ctx);
} tools_service_t;

/* Every request is answered synchronously: tools are pure lookups and arithmetic. */
static void on_request(mesh_worker_t *w, mesh_worker_req_t *req, const mesh_request_t *msg,
                       void *arg)
{
    tools_service_t *svc = arg;
    char err[MESH_ERRMSG_MAX + 1];
    json_t *data = NULL;

    (void)w;
    int status = tools_registry_handle(svc->reg, msg->op, msg->args, &data, err, sizeof(err));
    int rc = mesh_worker_final(req, status, status != 0 ? err : NULL, data);
    if (rc != 0 && rc != MESH_ECANCELED)
        mesh_log_warn(LOG_SUBSYS, "final for %s failed: %s", msg->op, mesh_strerror(rc));
    json_decref(data);
}

int tools_service_start(mesh_service_ctx_t *ctx, void **state)
{
    char err[TOOLS_ERR_MAX];
    const char *endpoints[MESH_MAX_ROUTERS] = {0};
    mesh_worker_opts_t opts = {0};
    tools_service_t *svc;
    int n, rc;

    *state = NULL;
    svc = calloc(1, sizeof(*svc));
    if (svc == NULL)
        return MESH_ENOMEM;
    svc->ctx = ctx;
    svc->data_dir = mesh_config_str(ctx->config, ctx->n_config, "MESH_DATA_DIR");
    svc->reg = tools_registry_new();
    if (svc->reg == NULL) {
        rc = MESH_ENOMEM;
        goto fail;
    }
    if ((rc = tools_registry_load(svc->reg, svc->data_dir, err, sizeof(err))) != 0) {
        mesh_log_error(LOG_SUBSYS, "cannot load data: %s", err);
        goto fail;
    }
    n = mesh_service_endpoints(ctx, "MESH_ROUTER_BACKENDS", svc->ep_storage, endpoints);
    if (n <= 0) {
        mesh_log_error(LOG_SUBSYS, "MESH_ROUTER_BACKENDS: no valid endpoint");
        rc = MESH_ECONFIG;
        goto fail;
    }
    opts.service = "tools";
    for (int i = 0; i < n; i++)
        opts.endpoints[i] = endpoints[i];
    opts.n_endpoints = n;
    opts.capacity = (uint32_t)mesh_config_int(ctx->config, ctx->n_config, "MESH_WORKER_CAPACITY");
    opts.heartbeat_ms = ctx->heartbeat_ms;
    opts.liveness = ctx->liveness;
    opts.reconnect_min_ms = ctx->reconnect_min_ms;
    opts.reconnect_max_ms = ctx->reconnect_max_ms;
    opts.zopts = ctx->zopts;
    svc->worker = mesh_worker_new(ctx->loop, ctx->zctx, &opts, on_request, svc);
    if (svc->worker == NULL) {
        rc = MESH_ENOMEM;
        goto fail;
    }
    if ((rc = mesh_worker_start(svc->worker)) != 0) {
        mesh_log_error(LOG_SUBSYS, "worker start failed: %s", mesh_strerror(rc));
        goto fail;
    }
    mesh_log_info(LOG_SUBSYS, "serving %d router(s), capacity %u, data %s", n, opts.capacity,
                  svc->data_dir);
    *state = svc;
    return 0;
fail : {
    void *s = svc;
    tools_service_destroy(&s);
}
    return rc;
}

static void on_drained(mesh_worker_t *w, void *arg)
{
    tools_service_t *svc = arg;

    (void)w;
    if (svc->done != NULL) {
        void (*done)(mesh_service_ctx_t *) = svc->done;
        svc->done = NULL;
        done(svc->ctx);
    }
}

void tools_service_drain(void *state, uint64_t grace_ms, void (*done)(mesh_service_ctx_t *ctx),
                         mesh_service_ctx_t *ctx)
{
    tools_service_t *svc = state;

    svc->done = done;
    svc->ctx = ctx;
    mesh_worker_drain(svc->worker, grace_ms, on_drained, svc);
}

void tools_service_destroy(void **state)
{
    tools_service_t *svc;

    if (state == NULL || *state == NULL)
        return;
    svc = *state;
    mesh_worker_destroy(&svc->worker);
    tools_registry_destroy(&svc->reg);
    free(svc);
    *state = NULL;
}

void tools_service_reload(void *state)
{
    tools_service_t *svc = state;
    char err[TOOLS_ERR_MAX];

    if (tools_registry_load(svc->reg, svc->data_dir, err, sizeof(err)) != 0)
        mesh_log_error(LOG_SUBSYS, "reload failed, keeping the previous data: %s", err);
    else
        mesh_log_info(LOG_SUBSYS, "reloaded %s", svc->data_dir);
}
