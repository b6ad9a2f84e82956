/*
 * memory_metrics.c - the handoff metrics (memory_metrics.h).
 */
#include "memory_metrics.h"

#include <stddef.h>

/* Waits for a person range from seconds (someone was watching) to a day. */
static const double s_wait_bounds[] = {1,   5,    15,   30,   60,    120,  300,
                                       600, 1800, 3600, 7200, 14400, 86400};

void memory_metrics_init(memory_metrics_t *m)
{
    mesh_metrics_t *reg = mesh_metrics_global();
    mesh_metric_t *q =
        mesh_metrics_gauge(reg, "mesh_handoff_queue_length",
                           "Conversations waiting for a person (handoff pending), refreshed every "
                           "MESH_HANDOFF_REFRESH_MS and by every handoff.list",
                           NULL, 1);
    mesh_metric_t *w = mesh_metrics_histogram(
        reg, "mesh_handoff_wait_seconds",
        "Seconds from a conversation going pending to a person claiming it (handoff.claim)", NULL,
        1, s_wait_bounds, sizeof s_wait_bounds / sizeof s_wait_bounds[0]);
    m->queue_length = mesh_metric_with(q, NULL);
    m->wait_s = mesh_metric_with(w, NULL);
}
