/*
 * main.c - mesh-gateway: the HTTP/1.1 edge of the mesh (docs/gateway.md).
 *
 * Follows the mesh_service.h skeleton: configuration from the environment,
 * start, drain on SIGTERM, destroy.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_service.h"

static mesh_config_entry_t gateway_config[] = {
    {"MESH_ROUTER_FRONTENDS", MESH_CFG_STRING, "tcp://127.0.0.1:7001", 0, 0,
     "router frontend endpoints, comma-separated (one per router)", 0, NULL},
    {"MESH_HTTP_HOST", MESH_CFG_STRING, "127.0.0.1", 0, 0,
     "HTTP listen address (0.0.0.0 in containers)", 0, NULL},
    {"MESH_HTTP_PORT", MESH_CFG_INT, "8080", 0, 65535, "HTTP listen port (0: any free port)", 0,
     NULL},
    {"MESH_HTTP_MAX_BODY", MESH_CFG_INT, "1048576", 1024, 16 * 1024 * 1024,
     "request body limit in bytes (413 above)", 0, NULL},
    {"MESH_HTTP_MAX_HEADER", MESH_CFG_INT, "16384", 1024, 65535,
     "request head (request line + headers) limit in bytes (431 above)", 0, NULL},
    {"MESH_HTTP_IDLE_MS", MESH_CFG_INT, "30000", 10, 3600000,
     "keep-alive idle timeout; also the time allowed to receive one request (408)", 0, NULL},
    {"MESH_HTTP_MAX_CONNS", MESH_CFG_INT, "10000", 1, 1000000,
     "open HTTP connections; more are refused with 503", 0, NULL},
    {"MESH_TURN_TIMEOUT_MS", MESH_CFG_INT, "30000", 1, 600000,
     "deadline of a turn (X-Mesh-Timeout-Ms may lower it)", 0, NULL},
};

#define N_CONFIG (sizeof(gateway_config) / sizeof(gateway_config[0]))

typedef struct {
    gateway_t *gw;
    char endpoint_storage[MESH_MAX_ROUTERS][256];
    void (*drain_done)(mesh_service_ctx_t *ctx);
    mesh_service_ctx_t *ctx;
} gateway_main_t;

static int64_t cfg_int(mesh_service_ctx_t *ctx, const char *name)
{
    return mesh_config_int(ctx->config, ctx->n_config, name);
}

static int gateway_main_start(mesh_service_ctx_t *ctx, void **state)
{
    int rc = MESH_ENOMEM;
    gateway_main_t *m = calloc(1, sizeof(*m));
    if (!m)
        goto fail;
    gateway_config_t cfg = {
        .http_host = mesh_config_str(ctx->config, ctx->n_config, "MESH_HTTP_HOST"),
        .http_port = (int)cfg_int(ctx, "MESH_HTTP_PORT"),
        .max_body = (size_t)cfg_int(ctx, "MESH_HTTP_MAX_BODY"),
        .max_header = (size_t)cfg_int(ctx, "MESH_HTTP_MAX_HEADER"),
        .idle_ms = (uint64_t)cfg_int(ctx, "MESH_HTTP_IDLE_MS"),
        .max_conns = (uint32_t)cfg_int(ctx, "MESH_HTTP_MAX_CONNS"),
        .turn_timeout_ms = (uint32_t)cfg_int(ctx, "MESH_TURN_TIMEOUT_MS"),
        .client =
            {
                .heartbeat_ms = ctx->heartbeat_ms,
                .liveness = ctx->liveness,
                .reconnect_min_ms = ctx->reconnect_min_ms,
                .reconnect_max_ms = ctx->reconnect_max_ms,
                .zopts = ctx->zopts,
            },
    };
    int n = mesh_service_endpoints(ctx, "MESH_ROUTER_FRONTENDS", m->endpoint_storage,
                                   cfg.client.endpoints);
    if (n < 1) {
        mesh_log_error("gateway", "MESH_ROUTER_FRONTENDS: no valid endpoint");
        rc = MESH_ECONFIG;
        goto fail;
    }
    cfg.client.n_endpoints = n;
    m->gw = gateway_new(ctx->loop, ctx->zctx, &cfg);
    if (!m->gw) {
        rc = MESH_ECONFIG;
        goto fail;
    }
    rc = gateway_start(m->gw);
    if (rc < 0)
        goto fail;
    *state = m;
    return 0;
fail:
    if (m)
        gateway_destroy(&m->gw);
    free(m);
    return rc;
}

static void gateway_main_drained(void *arg)
{
    gateway_main_t *m = arg;
    if (m->drain_done) {
        void (*done)(mesh_service_ctx_t *) = m->drain_done;
        m->drain_done = NULL;
        done(m->ctx);
    }
}

static void gateway_main_drain(void *state, uint64_t grace_ms,
                               void (*done)(mesh_service_ctx_t *ctx), mesh_service_ctx_t *ctx)
{
    gateway_main_t *m = state;
    m->drain_done = done;
    m->ctx = ctx;
    mesh_log_info("gateway", "draining: no new connections, finishing open requests");
    gateway_drain(m->gw, gateway_main_drained, m);
}

static void gateway_main_destroy(void **state)
{
    gateway_main_t *m = *state;
    *state = NULL;
    if (!m)
        return;
    gateway_destroy(&m->gw);
    free(m);
}

static const mesh_service_def_t gateway_def = {
    .name = "gateway",
    .summary = "HTTP/1.1 edge of the mesh: conversations in, turns to the routers",
    .config = gateway_config,
    .n_config = N_CONFIG,
    .start = gateway_main_start,
    .drain = gateway_main_drain,
    .destroy = gateway_main_destroy,
    .reload = NULL,
};

int main(int argc, char **argv)
{
    return mesh_service_main(argc, argv, &gateway_def);
}
