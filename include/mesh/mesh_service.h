/*
 * mesh_service.h - the one skeleton every service's main.c follows.
 *
 *   int main(int argc, char **argv) { return mesh_service_main(argc, argv, &def); }
 *
 * mesh_service_main():
 *   1. handles --help (summary + every environment variable with its default,
 *      common ones included) and --version, rejects other arguments (exit 2);
 *   2. loads the common and the service's config tables from the
 *      environment; a bad value prints "NAME: reason" and exits 2;
 *   3. initialises logging, the uv loop and the ZeroMQ context;
 *   4. calls def->start; a failure exits 1;
 *   5. SIGINT/SIGTERM begin a drain: def->drain is called with a grace of
 *      MESH_DRAIN_MS and must call done() when finished (the skeleton also
 *      stops after the grace period); a second SIGINT/SIGTERM stops at once.
 *      SIGHUP calls def->reload when set. SIGPIPE is ignored;
 *   6. when stopping: def->destroy, every remaining handle closed, the loop
 *      closed, the ZeroMQ context terminated; exit 0.
 */
#ifndef MESH_SERVICE_H
#define MESH_SERVICE_H

#include <stdint.h>
#include <uv.h>

#include "mesh_config.h"
#include "mesh_limits.h"
#include "mesh_zsock.h"

typedef struct mesh_service_ctx {
    uv_loop_t *loop;
    void *zctx;
    const char *name;
    /* service config table, loaded */
    mesh_config_entry_t *config;
    size_t n_config;
    /* common settings, loaded */
    uint64_t heartbeat_ms;     /* MESH_HEARTBEAT_MS */
    uint32_t liveness;         /* MESH_HEARTBEAT_LIVENESS */
    uint64_t reconnect_min_ms; /* MESH_RECONNECT_MIN_MS */
    uint64_t reconnect_max_ms; /* MESH_RECONNECT_MAX_MS */
    uint64_t drain_ms;         /* MESH_DRAIN_MS */
    mesh_zsock_opts_t zopts;   /* MESH_MAX_MSG_BYTES, MESH_HWM */
    /* internal */
    void *state;
} mesh_service_ctx_t;

typedef struct {
    const char *name;            /* "router", also the log service name */
    const char *summary;         /* one line for --help */
    mesh_config_entry_t *config; /* service-specific entries (may be NULL) */
    size_t n_config;
    /* Create the service and start serving. Store the service object in *state. 0 or MESH_E*. */
    int (*start)(mesh_service_ctx_t *ctx, void **state);
    /* Stop taking new work, finish in-flight work, then call done(ctx). */
    void (*drain)(void *state, uint64_t grace_ms, void (*done)(mesh_service_ctx_t *ctx),
                  mesh_service_ctx_t *ctx);
    /* Release everything; *state is NULLed. */
    void (*destroy)(void **state);
    /* Optional: SIGHUP. */
    void (*reload)(void *state);
    /* Optional: readiness for GET /readyz on the metrics port (0 = ready, else
     * not ready with a short reason in why). Without it a running service is
     * ready; while draining every service answers 503 "draining" first. */
    int (*ready)(void *state, char *why, size_t why_size);
} mesh_service_def_t;

int mesh_service_main(int argc, char **argv, const mesh_service_def_t *def);

/*
 * Helper for services: parse the comma-separated endpoint list in the config
 * entry name into endpoints (pointers into storage). Returns the count or MESH_ECONFIG.
 */
int mesh_service_endpoints(mesh_service_ctx_t *ctx, const char *name,
                           char storage[MESH_MAX_ROUTERS][256],
                           const char *endpoints[MESH_MAX_ROUTERS]);

#endif
