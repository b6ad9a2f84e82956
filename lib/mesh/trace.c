/*
 * trace.c - W3C traceparent handling and spans (mesh_trace.h).
 *
 * Ids come from mesh_id_new() (a per-thread xoshiro generator seeded from
 * the kernel), so making a span costs no system call. The OTLP/JSON
 * rendering follows the OTLP JSON encoding: trace and span ids as lowercase
 * hex strings, 64-bit integers (times, intValue) as decimal strings, enums
 * as integers, lowerCamelCase keys.
 */
#include "mesh/mesh_trace.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mesh/mesh.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_msg.h"

/* Offsets in "vv-<32>-<16>-ff". */
#define TP_VERSION_LEN 2
#define TP_TRACE_OFF   3
#define TP_PARENT_OFF  (TP_TRACE_OFF + MESH_TRACE_ID_HEX + 1)
#define TP_FLAGS_OFF   (TP_PARENT_OFF + MESH_SPAN_ID_HEX + 1)
#define TP_FLAGS_LEN   2
#define NS_PER_SEC     UINT64_C(1000000000)
#define NS_PER_MS      1e6
/* Decimal digits of a uint64 + NUL. */
#define U64_DEC_MAX 21

static mesh_span_sink_fn s_sink;
static void *s_sink_arg;

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* n lowercase hex digits, not all zero. */
static bool hex_nonzero(const char *s, size_t n)
{
    bool nz = false;
    for (size_t i = 0; i < n; i++) {
        int v = hex_val(s[i]);
        if (v < 0)
            return false;
        nz |= v != 0;
    }
    return nz;
}

int mesh_traceparent_parse(const char *s, size_t len, mesh_traceparent_t *out)
{
    if (s == NULL || out == NULL || len < MESH_TRACEPARENT_MAX)
        return MESH_EINVAL;
    int v0 = hex_val(s[0]), v1 = hex_val(s[1]);
    if (v0 < 0 || v1 < 0 || (v0 == 0xf && v1 == 0xf))
        return MESH_EINVAL;
    bool v00 = v0 == 0 && v1 == 0;
    /* Version 00 is exactly 55 bytes; a later version may append "-...". */
    if (v00 ? len != MESH_TRACEPARENT_MAX
            : (len > MESH_TRACEPARENT_MAX && s[MESH_TRACEPARENT_MAX] != '-'))
        return MESH_EINVAL;
    if (s[TP_VERSION_LEN] != '-' || s[TP_PARENT_OFF - 1] != '-' || s[TP_FLAGS_OFF - 1] != '-')
        return MESH_EINVAL;
    if (!hex_nonzero(s + TP_TRACE_OFF, MESH_TRACE_ID_HEX) ||
        !hex_nonzero(s + TP_PARENT_OFF, MESH_SPAN_ID_HEX))
        return MESH_EINVAL;
    int f0 = hex_val(s[TP_FLAGS_OFF]), f1 = hex_val(s[TP_FLAGS_OFF + 1]);
    if (f0 < 0 || f1 < 0)
        return MESH_EINVAL;
    memcpy(out->trace_id, s + TP_TRACE_OFF, MESH_TRACE_ID_HEX);
    out->trace_id[MESH_TRACE_ID_HEX] = '\0';
    memcpy(out->parent_id, s + TP_PARENT_OFF, MESH_SPAN_ID_HEX);
    out->parent_id[MESH_SPAN_ID_HEX] = '\0';
    out->flags = (uint8_t)(f0 << 4 | f1);
    return 0;
}

void mesh_traceparent_format(const char *trace_id, const char *span_id, uint8_t flags,
                             char out[MESH_TRACEPARENT_MAX + 1])
{
    snprintf(out, MESH_TRACEPARENT_MAX + 1, "00-%.32s-%.16s-%02x", trace_id, span_id,
             (unsigned)flags);
}

void mesh_trace_id_new(char out[MESH_TRACE_ID_HEX + 1])
{
    do {
        mesh_id_new(out);
    } while (!hex_nonzero(out, MESH_TRACE_ID_HEX));
}

void mesh_span_id_new(char out[MESH_SPAN_ID_HEX + 1])
{
    char id[MESH_TRACE_ID_HEX + 1];
    do {
        mesh_id_new(id);
    } while (!hex_nonzero(id, MESH_SPAN_ID_HEX));
    memcpy(out, id, MESH_SPAN_ID_HEX);
    out[MESH_SPAN_ID_HEX] = '\0';
}

uint64_t mesh_trace_now_unix_nano(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Copy at most cap bytes of src into dst[cap+1]. */
static void copy_capped(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strnlen(src, cap) : 0;
    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
}

static void span_open(mesh_span_t *sp, const char *name, mesh_span_kind_t kind)
{
    memset(sp, 0, sizeof(*sp));
    copy_capped(sp->name, MESH_SPAN_NAME_MAX, name);
    sp->kind = kind;
    mesh_span_id_new(sp->span_id);
    sp->start_unix_nano = mesh_trace_now_unix_nano();
}

void mesh_span_start(mesh_span_t *sp, const char *name, mesh_span_kind_t kind, const char *tp)
{
    mesh_traceparent_t in;
    span_open(sp, name, kind);
    if (tp != NULL && mesh_traceparent_parse(tp, strnlen(tp, MESH_TRACEPARENT_MAX + 1), &in) == 0) {
        memcpy(sp->trace_id, in.trace_id, sizeof(sp->trace_id));
        memcpy(sp->parent_span_id, in.parent_id, sizeof(sp->parent_span_id));
        sp->flags = in.flags;
    } else {
        mesh_trace_id_new(sp->trace_id);
        sp->flags = MESH_TRACE_FLAG_SAMPLED;
    }
}

void mesh_span_start_child(mesh_span_t *sp, const char *name, mesh_span_kind_t kind,
                           const mesh_span_t *parent)
{
    span_open(sp, name, kind);
    memcpy(sp->trace_id, parent->trace_id, sizeof(sp->trace_id));
    memcpy(sp->parent_span_id, parent->span_id, sizeof(sp->parent_span_id));
    sp->flags = parent->flags;
}

void mesh_span_child_tp(const mesh_span_t *sp, char out[MESH_TRACEPARENT_MAX + 1])
{
    mesh_traceparent_format(sp->trace_id, sp->span_id, sp->flags, out);
}

static mesh_span_attr_t *attr_slot(mesh_span_t *sp, const char *key)
{
    if (key == NULL || sp->n_attrs >= MESH_SPAN_ATTRS_MAX)
        return NULL;
    mesh_span_attr_t *a = &sp->attrs[sp->n_attrs++];
    copy_capped(a->key, MESH_SPAN_ATTR_KEY_MAX, key);
    return a;
}

void mesh_span_attr_str(mesh_span_t *sp, const char *key, const char *value)
{
    mesh_span_attr_t *a = attr_slot(sp, key);
    if (a == NULL)
        return;
    a->is_int = false;
    /* Truncation must not leave half a UTF-8 sequence behind. */
    copy_capped(a->s, MESH_SPAN_ATTR_VALUE_MAX, value);
    size_t n = strlen(a->s);
    if (value != NULL && n == MESH_SPAN_ATTR_VALUE_MAX) {
        while (n > 0 && ((unsigned char)a->s[n - 1] & 0xc0) == 0x80)
            n--;
        if (n > 0 && (unsigned char)a->s[n - 1] >= 0xc0)
            n--;
        a->s[n] = '\0';
    }
}

void mesh_span_attr_int(mesh_span_t *sp, const char *key, int64_t value)
{
    mesh_span_attr_t *a = attr_slot(sp, key);
    if (a == NULL)
        return;
    a->is_int = true;
    a->i = value;
}

void mesh_span_finish(mesh_span_t *sp, int mesh_status)
{
    if (sp->end_unix_nano == 0)
        sp->end_unix_nano = mesh_trace_now_unix_nano();
    if (sp->end_unix_nano < sp->start_unix_nano)
        sp->end_unix_nano = sp->start_unix_nano; /* the wall clock stepped back */
    if (mesh_status == 0) {
        sp->status = MESH_SPAN_OK;
        sp->status_msg[0] = '\0';
    } else {
        sp->status = MESH_SPAN_ERROR;
        copy_capped(sp->status_msg, MESH_SPAN_STATUS_MSG_MAX, mesh_err_name(mesh_status));
    }
    if (s_sink != NULL)
        s_sink(sp, s_sink_arg);
}

void mesh_span_log_ctx(const mesh_span_t *sp, mesh_log_ctx_t *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    memcpy(ctx->trace_id, sp->trace_id, sizeof(ctx->trace_id));
    memcpy(ctx->span_id, sp->span_id, sizeof(ctx->span_id));
}

void mesh_trace_set_sink(mesh_span_sink_fn fn, void *arg)
{
    s_sink = fn;
    s_sink_arg = arg;
}

/* ---- JSON renderings --------------------------------------------------------- */

static json_t *u64_string(uint64_t v)
{
    char buf[U64_DEC_MAX];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return json_string(buf);
}

/* json_object_set_new that remembers a failure in *ok. */
static void put(json_t *obj, const char *key, json_t *val, bool *ok)
{
    if (val == NULL || json_object_set_new(obj, key, val) != 0)
        *ok = false;
}

static json_t *otlp_attr(const char *key, json_t *any_value)
{
    if (any_value == NULL)
        return NULL;
    return json_pack("{s:s, s:o}", "key", key, "value", any_value);
}

static json_t *otlp_attrs(const mesh_span_t *sp)
{
    json_t *arr = json_array();
    for (size_t k = 0; arr != NULL && k < sp->n_attrs; k++) {
        const mesh_span_attr_t *a = &sp->attrs[k];
        char num[U64_DEC_MAX + 1];
        json_t *v;
        if (a->is_int) {
            /* intValue is a signed 64-bit integer: a decimal string in OTLP/JSON. */
            snprintf(num, sizeof(num), "%" PRId64, a->i);
            v = json_pack("{s:s}", "intValue", num);
        } else {
            v = json_pack("{s:s}", "stringValue", a->s);
        }
        if (json_array_append_new(arr, otlp_attr(a->key, v)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *mesh_span_otlp_json(const mesh_span_t *sp)
{
    bool ok = true;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    put(o, "traceId", json_string(sp->trace_id), &ok);
    put(o, "spanId", json_string(sp->span_id), &ok);
    if (sp->parent_span_id[0] != '\0')
        put(o, "parentSpanId", json_string(sp->parent_span_id), &ok);
    put(o, "name", json_string(sp->name), &ok);
    put(o, "kind", json_integer(sp->kind), &ok);
    put(o, "startTimeUnixNano", u64_string(sp->start_unix_nano), &ok);
    put(o, "endTimeUnixNano", u64_string(sp->end_unix_nano), &ok);
    put(o, "attributes", otlp_attrs(sp), &ok);
    json_t *st = json_object();
    if (st != NULL) {
        put(st, "code", json_integer(sp->status), &ok);
        if (sp->status_msg[0] != '\0')
            put(st, "message", json_string(sp->status_msg), &ok);
    }
    put(o, "status", st, &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *mesh_trace_otlp_request(const char *service, const mesh_span_t *spans, size_t n)
{
    json_t *list = json_array();
    for (size_t k = 0; list != NULL && k < n; k++) {
        if (json_array_append_new(list, mesh_span_otlp_json(&spans[k])) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    if (list == NULL)
        return NULL;
    char svc[MESH_SERVICE_MAX + sizeof("mesh-")];
    snprintf(svc, sizeof(svc), "mesh-%s", service != NULL ? service : "unknown");
    return json_pack("{s:[{s:{s:[{s:s, s:{s:s}}]}, s:[{s:{s:s, s:s}, s:o}]}]}", "resourceSpans",
                     "resource", "attributes", "key", "service.name", "value", "stringValue", svc,
                     "scopeSpans", "scope", "name", "mesh", "version", MESH_VERSION, "spans", list);
}

static const char *status_name(mesh_span_status_t st)
{
    switch (st) {
    case MESH_SPAN_OK:
        return "ok";
    case MESH_SPAN_ERROR:
        return "error";
    default:
        return "unset";
    }
}

json_t *mesh_span_record_json(const mesh_span_t *sp)
{
    bool ok = true;
    json_t *o = json_object();
    json_t *attrs = json_object();
    if (o == NULL || attrs == NULL) {
        json_decref(o);
        json_decref(attrs);
        return NULL;
    }
    for (size_t k = 0; k < sp->n_attrs; k++) {
        const mesh_span_attr_t *a = &sp->attrs[k];
        put(attrs, a->key, a->is_int ? json_integer(a->i) : json_string(a->s), &ok);
    }
    uint64_t end =
        sp->end_unix_nano > sp->start_unix_nano ? sp->end_unix_nano : sp->start_unix_nano;
    put(o, "name", json_string(sp->name), &ok);
    put(o, "trace_id", json_string(sp->trace_id), &ok);
    put(o, "span_id", json_string(sp->span_id), &ok);
    put(o, "parent_span_id", json_string(sp->parent_span_id), &ok);
    put(o, "start_unix_nano", json_integer((json_int_t)sp->start_unix_nano), &ok);
    put(o, "end_unix_nano", json_integer((json_int_t)end), &ok);
    put(o, "duration_ms", json_real((double)(end - sp->start_unix_nano) / NS_PER_MS), &ok);
    put(o, "status", json_string(status_name(sp->status)), &ok);
    if (sp->status_msg[0] != '\0')
        put(o, "error", json_string(sp->status_msg), &ok);
    put(o, "attributes", attrs, &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
