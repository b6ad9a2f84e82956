/*
 * mesh_metrics.h - counters, gauges and histograms, rendered in the
 * Prometheus text exposition format 0.0.4.
 *
 * Model. A registry holds metric families (a name, a help line, a type and a
 * fixed list of label names). A family holds series, one per distinct tuple
 * of label values. Everything that can allocate happens when a family is
 * registered: its series table (max_series slots plus one overflow slot) and
 * its hash index are allocated then, so cardinality is bounded by
 * construction. Looking a series up (mesh_metric_with) fills a free slot the
 * first time a tuple is seen (label values are copied into the slot, never
 * allocated) and returns the same slot afterwards; once the family is full
 * every new tuple lands in the overflow series, whose label values are all
 * MESH_METRICS_OVERFLOW_VALUE. So label values taken from peers (an op name
 * off the wire) can never grow memory.
 *
 * Cost on the hot path. Every process runs one event loop thread, and a
 * registry is only touched from that thread: recording is a plain add on a
 * uint64 or a double, with no lock, no atomic and no allocation. Callers on
 * very hot paths keep the mesh_series_t pointer; others look it up per event
 * (a hash of the label values, no allocation).
 *
 * NULL safety. Every function taking a family or a series accepts NULL and
 * then does nothing (mesh_metric_with returns NULL), so instrumented code
 * works unchanged when a registration failed.
 *
 * Values. Counters hold an integer part (mesh_counter_inc/add) and a
 * fractional part (mesh_counter_addf, for amounts such as a cost in USD);
 * the rendered value is their sum. Gauges hold a double. Histograms have
 * fixed ascending upper bounds given at registration; the rendering is
 * cumulative, ends with le="+Inf" equal to _count, and carries _sum.
 *
 * Scrape-time values. Some values are cheaper to read than to track (queue
 * depth, open connections): a collector callback registered with
 * mesh_metrics_on_collect() runs at the start of every render and sets
 * gauges from the owner's state.
 */
#ifndef MESH_METRICS_H
#define MESH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define MESH_METRICS_FAMILIES_MAX    160  /* families in one registry */
#define MESH_METRICS_NAME_MAX        96   /* metric name bytes */
#define MESH_METRICS_HELP_MAX        256  /* help text bytes (longer is truncated) */
#define MESH_METRICS_LABELS_MAX      4    /* label names per family */
#define MESH_METRICS_LABEL_NAME_MAX  32   /* label name bytes */
#define MESH_METRICS_LABEL_VALUE_MAX 64   /* label value bytes (longer is truncated) */
#define MESH_METRICS_BUCKETS_MAX     24   /* histogram upper bounds, +Inf excluded */
#define MESH_METRICS_SERIES_MAX      4096 /* max_series of one family */
#define MESH_METRICS_COLLECTORS_MAX  32   /* collector callbacks per registry */
/* Label value of the series that absorbs tuples beyond a family's max_series. */
#define MESH_METRICS_OVERFLOW_VALUE "_overflow"
/* Content-Type of a rendering. */
#define MESH_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct mesh_metrics mesh_metrics_t; /* a registry */
typedef struct mesh_metric mesh_metric_t;   /* one family */
typedef struct mesh_series mesh_series_t;   /* one label tuple of a family */

typedef enum {
    MESH_METRIC_COUNTER = 0,
    MESH_METRIC_GAUGE,
    MESH_METRIC_HISTOGRAM,
} mesh_metric_type_t;

/* ---- registries ---------------------------------------------------------- */

/* A new empty registry, or NULL when out of memory. */
mesh_metrics_t *mesh_metrics_new(void);

/* Free the registry, its families and series. NULLs *reg_p. Safe on NULL. */
void mesh_metrics_destroy(mesh_metrics_t **reg_p);

/*
 * The process-wide registry that libmesh (worker, client, redis) and the
 * services record into, created on first use (NULL only when that creation
 * ran out of memory). mesh_metrics_global_free() releases it (the service
 * skeleton calls it at exit, after every user of it is gone).
 */
mesh_metrics_t *mesh_metrics_global(void);
void mesh_metrics_global_free(void);

/* ---- families ------------------------------------------------------------ */

/*
 * Register a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*; labels is a
 * comma-separated list of label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting
 * with "__", "le" not allowed on histograms) or NULL/"" for none;
 * 1 <= max_series <= MESH_METRICS_SERIES_MAX (a family without labels has
 * exactly one series, created here). Histograms take 1..MESH_METRICS_BUCKETS_MAX
 * strictly ascending finite upper bounds.
 *
 * Registering a name again with the same type and labels returns the
 * existing family (several workers or clients in one process share theirs);
 * with another type or labels it fails. Returns NULL (and logs one line) on
 * invalid arguments, a conflicting name, a full registry or no memory.
 */
mesh_metric_t *mesh_metrics_counter(mesh_metrics_t *reg, const char *name, const char *help,
                                    const char *labels, size_t max_series);
mesh_metric_t *mesh_metrics_gauge(mesh_metrics_t *reg, const char *name, const char *help,
                                  const char *labels, size_t max_series);
mesh_metric_t *mesh_metrics_histogram(mesh_metrics_t *reg, const char *name, const char *help,
                                      const char *labels, size_t max_series, const double *bounds,
                                      size_t n_bounds);

/* The family's registered name (NULL for NULL). */
const char *mesh_metric_name(const mesh_metric_t *m);

/*
 * The series for the label values values[0..n_labels) (NUL-terminated
 * strings; NULL is taken as ""). Values longer than
 * MESH_METRICS_LABEL_VALUE_MAX are truncated at a UTF-8 boundary and
 * invalid UTF-8 bytes are stored as '?'. A new tuple in a full family gets
 * the overflow series. Never allocates. NULL when m is NULL; for a family
 * without labels values may be NULL.
 */
mesh_series_t *mesh_metric_with(mesh_metric_t *m, const char *const *values);

/* mesh_metric_with on a literal list: mesh_metric_at(m, "llm", "chat"). */
#define mesh_metric_at(m, ...) mesh_metric_with((m), (const char *const[]){__VA_ARGS__})

/* Series in use in the family, the overflow series excluded. */
size_t mesh_metric_series_count(const mesh_metric_t *m);

/* ---- recording (no lock, no allocation; NULL series is a no-op) ---------- */

void mesh_counter_inc(mesh_series_t *s);
void mesh_counter_add(mesh_series_t *s, uint64_t n);
/* Adds v when v is finite and >= 0 (a counter never goes down); else ignored. */
void mesh_counter_addf(mesh_series_t *s, double v);

void mesh_gauge_set(mesh_series_t *s, double v);
void mesh_gauge_add(mesh_series_t *s, double v);

/* Count v in the first bucket whose bound is >= v (+Inf otherwise); NaN is ignored. */
void mesh_histogram_observe(mesh_series_t *s, double v);

/* Read back (tests, collectors): a counter's or gauge's value; a histogram's _count. */
double mesh_series_value(const mesh_series_t *s);
/* A histogram's _sum (0 for other types). */
double mesh_series_sum(const mesh_series_t *s);

/* Seconds since t0_ns, both on the uv_hrtime() clock (for latency observations). */
double mesh_metrics_since_s(uint64_t t0_ns);

/* ---- scrape-time collectors --------------------------------------------- */

typedef void (*mesh_metrics_collect_fn)(mesh_metrics_t *reg, void *arg);

/*
 * Call fn(reg, arg) at the start of every render, in registration order.
 * 0, MESH_EINVAL (NULL reg/fn) or MESH_EBUSY (MESH_METRICS_COLLECTORS_MAX reached).
 */
int mesh_metrics_on_collect(mesh_metrics_t *reg, mesh_metrics_collect_fn fn, void *arg);

/* Remove the (fn, arg) collector; no-op when it is not registered. */
void mesh_metrics_off_collect(mesh_metrics_t *reg, mesh_metrics_collect_fn fn, void *arg);

/* ---- rendering ----------------------------------------------------------- */

/*
 * Run the collectors, then render every family (registration order; series
 * in first-seen order, the overflow series last when used) in the text
 * format 0.0.4: "# HELP" (\ and newline escaped), "# TYPE", then the
 * samples, label values escaped (\, " and newline). *out gets a
 * NUL-terminated malloc'd buffer (caller frees), *len its length.
 * 0, MESH_EINVAL or MESH_ENOMEM.
 */
int mesh_metrics_render(mesh_metrics_t *reg, char **out, size_t *len);

#endif
