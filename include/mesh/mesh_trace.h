/*
 * mesh_trace.h - spans and W3C trace context for every hop of a turn.
 *
 * A request carries a W3C traceparent ("tp" in the REQUEST body, the
 * "traceparent" header at the HTTP edge and towards model/channel APIs):
 *   00-<trace-id 32 hex>-<parent-id 16 hex>-<flags 2 hex>
 * Each hop that handles the request opens a span: same trace id, a fresh
 * span id, parent = the parent-id of the incoming traceparent. Requests it
 * sends on carry a traceparent whose parent-id is its own span id
 * (mesh_span_child_tp), so the spans of one turn form a tree.
 *
 * A finished span goes to the process's sink (mesh_trace_set_sink; the
 * service skeleton installs the OTLP exporter of mesh_otlp.h when
 * MESH_OTLP_ENDPOINT is set). Spans are plain structs with fixed-size
 * fields: opening, annotating and finishing one never allocates.
 */
#ifndef MESH_TRACE_H
#define MESH_TRACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_limits.h"
#include "mesh_log.h"

#define MESH_SPAN_NAME_MAX       64 /* span name bytes */
#define MESH_SPAN_ATTRS_MAX      8  /* attributes per span; more are dropped */
#define MESH_SPAN_ATTR_KEY_MAX   32 /* attribute key bytes */
#define MESH_SPAN_ATTR_VALUE_MAX 96 /* string attribute value bytes */
#define MESH_SPAN_STATUS_MSG_MAX 64 /* status message bytes (an error name) */
#define MESH_TRACE_FLAG_SAMPLED  0x01

/* A parsed traceparent. */
typedef struct {
    char trace_id[MESH_TRACE_ID_HEX + 1];
    char parent_id[MESH_SPAN_ID_HEX + 1];
    uint8_t flags;
} mesh_traceparent_t;

/*
 * Parse a traceparent per W3C Trace Context: lowercase hex only, version
 * "ff" invalid, all-zero trace or parent id invalid; version 00 must be
 * exactly 55 bytes, a higher version at least 55 with a '-' after the flags
 * when longer. 0 or MESH_EINVAL (out untouched).
 */
int mesh_traceparent_parse(const char *s, size_t len, mesh_traceparent_t *out);

/* Write "00-<trace_id>-<span_id>-<flags>" (55 chars + NUL) into out. */
void mesh_traceparent_format(const char *trace_id, const char *span_id, uint8_t flags,
                             char out[MESH_TRACEPARENT_MAX + 1]);

/* A fresh random non-zero span id (16 hex + NUL) / trace id (32 hex + NUL). */
void mesh_span_id_new(char out[MESH_SPAN_ID_HEX + 1]);
void mesh_trace_id_new(char out[MESH_TRACE_ID_HEX + 1]);

/* Wall clock in nanoseconds since the Unix epoch (span timestamps). */
uint64_t mesh_trace_now_unix_nano(void);

/* OTLP status codes. */
typedef enum {
    MESH_SPAN_UNSET = 0,
    MESH_SPAN_OK = 1,
    MESH_SPAN_ERROR = 2,
} mesh_span_status_t;

/* OTLP span kinds (the subset used). */
typedef enum {
    MESH_SPAN_INTERNAL = 1,
    MESH_SPAN_SERVER = 2,
    MESH_SPAN_CLIENT = 3,
} mesh_span_kind_t;

typedef struct {
    char key[MESH_SPAN_ATTR_KEY_MAX + 1];
    bool is_int;
    int64_t i;
    char s[MESH_SPAN_ATTR_VALUE_MAX + 1];
} mesh_span_attr_t;

typedef struct {
    char name[MESH_SPAN_NAME_MAX + 1];
    char trace_id[MESH_TRACE_ID_HEX + 1];
    char span_id[MESH_SPAN_ID_HEX + 1];
    char parent_span_id[MESH_SPAN_ID_HEX + 1]; /* "" for a root span */
    uint8_t flags;
    mesh_span_kind_t kind;
    uint64_t start_unix_nano;
    uint64_t end_unix_nano; /* 0 while open */
    mesh_span_status_t status;
    char status_msg[MESH_SPAN_STATUS_MSG_MAX + 1];
    size_t n_attrs;
    mesh_span_attr_t attrs[MESH_SPAN_ATTRS_MAX];
} mesh_span_t;

/*
 * Open span sp now: a child of traceparent tp when tp is a valid one (NULL,
 * "" or invalid: the root of a new sampled trace). name is truncated to
 * MESH_SPAN_NAME_MAX bytes.
 */
void mesh_span_start(mesh_span_t *sp, const char *name, mesh_span_kind_t kind, const char *tp);

/* Open sp as a child of the open span parent (same trace). */
void mesh_span_start_child(mesh_span_t *sp, const char *name, mesh_span_kind_t kind,
                           const mesh_span_t *parent);

/* The traceparent requests sent on behalf of sp carry (parent-id = sp's span id). */
void mesh_span_child_tp(const mesh_span_t *sp, char out[MESH_TRACEPARENT_MAX + 1]);

/*
 * Attributes (copied, truncated to their limits; beyond MESH_SPAN_ATTRS_MAX
 * they are dropped). Values must not be personal data: they are exported.
 */
void mesh_span_attr_str(mesh_span_t *sp, const char *key, const char *value);
void mesh_span_attr_int(mesh_span_t *sp, const char *key, int64_t value);

/*
 * Close sp now with a mesh status (0 -> OK, else ERROR with mesh_err_name as
 * the message) and hand it to the sink. end_unix_nano already set (a span
 * recorded after the fact) is kept.
 */
void mesh_span_finish(mesh_span_t *sp, int mesh_status);

/* The log context of sp (its trace and span id; conv/tenant left empty). */
void mesh_span_log_ctx(const mesh_span_t *sp, mesh_log_ctx_t *ctx);

/* Where finished spans go (called on the loop thread; must copy the span). */
typedef void (*mesh_span_sink_fn)(const mesh_span_t *sp, void *arg);
/* Install the process's sink (NULL: finished spans are discarded). */
void mesh_trace_set_sink(mesh_span_sink_fn fn, void *arg);

/*
 * One span as an OTLP/JSON Span object (hex ids, nanosecond times as decimal
 * strings, kind and status.code as integers, attributes as KeyValue list).
 * NULL on ENOMEM.
 */
json_t *mesh_span_otlp_json(const mesh_span_t *sp);

/*
 * A whole OTLP ExportTraceServiceRequest for spans[0..n) of one service:
 * {"resourceSpans":[{"resource":{"attributes":[service.name]},
 *   "scopeSpans":[{"scope":{"name":"mesh","version":..},"spans":[..]}]}]}.
 * NULL on ENOMEM.
 */
json_t *mesh_trace_otlp_request(const char *service, const mesh_span_t *spans, size_t n);

/*
 * The compact record of a span kept in a turn's timeline (memory stores it;
 * GET .../turns/{n}/trace shows it):
 * {"name","trace_id","span_id","parent_span_id","start_unix_nano",
 *  "end_unix_nano","duration_ms","status":"ok|error|unset","error"?,"attributes":{..}}.
 * The nanosecond times are integers. NULL on ENOMEM.
 */
json_t *mesh_span_record_json(const mesh_span_t *sp);

#endif
