/*
 * memory_metrics.h - the memory service's own metrics, in the process-wide
 * registry (mesh_metrics_global(), served on /metrics by the service
 * skeleton):
 *
 *   mesh_handoff_queue_length   gauge: conversations waiting for a person
 *                               (handoff pending), as the last handoff.list
 *                               saw them
 *   mesh_handoff_wait_seconds   histogram: from going pending (handoff_at)
 *                               to handoff.claim
 *
 * Registration is idempotent (the registry returns the existing family), so
 * every memory_ops_t of a process shares them. A failed registration leaves
 * a NULL series, which the recording functions accept (metrics never stop
 * an op).
 */
#ifndef MEMORY_METRICS_H
#define MEMORY_METRICS_H

#include "mesh/mesh_metrics.h"

typedef struct {
    mesh_series_t *queue_length; /* gauge */
    mesh_series_t *wait_s;       /* histogram */
} memory_metrics_t;

/* Register (or find) the families in the global registry and fill m. */
void memory_metrics_init(memory_metrics_t *m);

#endif
