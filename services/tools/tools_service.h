/*
 * tools_service.h - the tools worker as a mesh service: the registry behind
 * a mesh_worker, wired into the mesh_service skeleton (main.c holds only the
 * config table and the definition).
 *
 * Config read from ctx->config: MESH_ROUTER_BACKENDS, MESH_DATA_DIR,
 * MESH_WORKER_CAPACITY (docs/configuration.md).
 */
#ifndef TOOLS_SERVICE_H
#define TOOLS_SERVICE_H

#include <stdint.h>

#include "mesh/mesh_service.h"

/* Load the data (a failure names the file and field and stops the start), connect, serve. */
int tools_service_start(mesh_service_ctx_t *ctx, void **state);

/* Stop taking work, let in-flight calls finish, then done(ctx). */
void tools_service_drain(void *state, uint64_t grace_ms, void (*done)(mesh_service_ctx_t *ctx),
                         mesh_service_ctx_t *ctx);

void tools_service_destroy(void **state);

/* SIGHUP: reload the data directory; on any error keep serving the old data. */
void tools_service_reload(void *state);

#endif
