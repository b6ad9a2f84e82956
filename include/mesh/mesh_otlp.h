/*
 * mesh_otlp.h - export finished spans as OTLP/HTTP JSON, never blocking.
 *
 * Spans are copied into a bounded queue (mesh_otlp_submit). A timer flushes
 * a batch every interval_ms, or as soon as batch_max spans wait: one POST of
 * an ExportTraceServiceRequest (mesh_trace_otlp_request) to
 * <endpoint>/v1/traces, through libcurl's multi interface driven by the uv
 * loop (sockets polled with uv_poll, curl's timeout on a uv_timer), so no
 * call ever waits on the network. One POST is in flight at a time.
 *
 * Loss is explicit and counted, never a stall: a span submitted while the
 * queue is full is dropped; a batch whose POST fails (collector down, non-2xx
 * answer, timeout) is dropped. Both count in stats.dropped, and the first
 * failure after a success is logged once.
 */
#ifndef MESH_OTLP_H
#define MESH_OTLP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mesh_trace.h"

#define MESH_OTLP_QUEUE_DEFAULT       1024
#define MESH_OTLP_BATCH_DEFAULT       128
#define MESH_OTLP_INTERVAL_MS_DEFAULT 1000
#define MESH_OTLP_TIMEOUT_MS_DEFAULT  2000
#define MESH_OTLP_QUEUE_MAX           65536 /* largest queue_max accepted */
#define MESH_OTLP_URL_MAX             512   /* endpoint URL bytes */

typedef struct mesh_otlp mesh_otlp_t;

typedef struct {
    const char *endpoint; /* "http://host:4318" (or a URL ending in /v1/traces); copied */
    const char *service;  /* resource service.name is "mesh-<service>"; copied */
    size_t queue_max;     /* spans buffered, 1..MESH_OTLP_QUEUE_MAX (0 = default) */
    size_t batch_max;     /* spans per POST, 1..queue_max (0 = default) */
    uint64_t interval_ms; /* flush period (0 = default) */
    uint64_t timeout_ms;  /* whole POST, connect included (0 = default) */
} mesh_otlp_opts_t;

typedef struct {
    uint64_t queued;       /* spans accepted into the queue */
    uint64_t exported;     /* spans the collector acknowledged (2xx) */
    uint64_t dropped;      /* spans lost: queue full or their POST failed */
    uint64_t posts_ok;     /* POSTs answered 2xx */
    uint64_t posts_failed; /* POSTs that failed */
} mesh_otlp_stats_t;

/* NULL on a bad option (empty endpoint, URL too long, bounds) or ENOMEM. */
mesh_otlp_t *mesh_otlp_new(uv_loop_t *loop, const mesh_otlp_opts_t *opts);

/* Copy sp into the queue. 0, or MESH_EBUSY when full (the span is dropped and counted). */
int mesh_otlp_submit(mesh_otlp_t *x, const mesh_span_t *sp);

/* A mesh_span_sink_fn: arg is the exporter. mesh_trace_set_sink(mesh_otlp_sink, x). */
void mesh_otlp_sink(const mesh_span_t *sp, void *arg);

/* Start a POST of the queued spans now if none is in flight. */
void mesh_otlp_flush(mesh_otlp_t *x);

/* Spans waiting in the queue. */
size_t mesh_otlp_pending(const mesh_otlp_t *x);

/* true while a POST is in flight. */
bool mesh_otlp_busy(const mesh_otlp_t *x);

void mesh_otlp_stats(const mesh_otlp_t *x, mesh_otlp_stats_t *out);

/*
 * Abort a POST in flight, drop (and count) what is queued, close the uv
 * handles and free; NULLs *x_p. Memory is released from the handles' close
 * callbacks, so the loop must run once more. Safe on NULL.
 */
void mesh_otlp_destroy(mesh_otlp_t **x_p);

#endif
