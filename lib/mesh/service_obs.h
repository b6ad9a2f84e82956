/*
 * service_obs.h - logs and traces set-up of the service skeleton (internal
 * to libmesh; service.c calls it). Kept apart from service.c so the
 * skeleton's own flow stays readable.
 *
 *   mesh__obs_load   MESH_LOG_FORMAT, MESH_LOG_CONTENT and the MESH_OTLP_*
 *                    variables from the environment ("NAME: reason" on error)
 *   mesh__obs_start  apply them: log format and content switch, SIGUSR1
 *                    (one level more verbose) / SIGUSR2 (one level quieter),
 *                    the OTLP exporter as the span sink when an endpoint is set
 *   mesh__obs_stop   detach the sink and close the exporter and signal handles
 *                    (the loop must run once more, as for every handle)
 *   mesh__obs_help   print the variables for --help
 */
#ifndef MESH_SERVICE_OBS_H
#define MESH_SERVICE_OBS_H

#include <stddef.h>
#include <stdio.h>
#include <uv.h>

/* 0 or MESH_ECONFIG with err filled. */
int mesh__obs_load(char *err, size_t err_size);
/* 0 or MESH_EIO (signal handles); an exporter that cannot start is logged and skipped. */
int mesh__obs_start(uv_loop_t *loop, const char *service);
void mesh__obs_stop(void);
void mesh__obs_help(FILE *out);

#endif
