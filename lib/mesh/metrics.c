/*
 * metrics.c - the metrics registry and its Prometheus text rendering
 * (mesh_metrics.h).
 *
 * A family owns one array of max_series + 1 series slots (the last is the
 * overflow series), one array of bucket counters for all of them, and an
 * open-addressing hash index (linear probing, never deleted from: series
 * live as long as the family). All three are allocated when the family is
 * registered; mesh_metric_with() only fills slots, so recording and lookups
 * never allocate.
 *
 * Histogram buckets are stored per bucket (not cumulative) so an observation
 * touches one counter; the rendering sums them up. Observations above the
 * last bound are only in _count, which is what le="+Inf" shows.
 */
#include "mesh/mesh_metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

#define SUBSYS "metrics"
/* First size of the render buffer; it doubles as needed. */
#define RENDER_INITIAL 16384
/* Longest formatted number ("%.17g" of a double, or a uint64). */
#define NUM_MAX 40

struct mesh_series {
    mesh_metric_t *fam;
    uint64_t u;        /* counter: integer part; histogram: _count */
    double d;          /* counter: fractional part; gauge: value; histogram: _sum */
    uint64_t *buckets; /* histogram: per-bound counts (not cumulative) */
    uint32_t hash;
    bool used;
    char values[MESH_METRICS_LABELS_MAX][MESH_METRICS_LABEL_VALUE_MAX + 1];
};

struct mesh_metric {
    mesh_metrics_t *reg;
    mesh_metric_type_t type;
    char name[MESH_METRICS_NAME_MAX + 1];
    char help[MESH_METRICS_HELP_MAX + 1];
    size_t n_labels;
    char labels[MESH_METRICS_LABELS_MAX][MESH_METRICS_LABEL_NAME_MAX + 1];
    double bounds[MESH_METRICS_BUCKETS_MAX];
    size_t n_bounds;
    size_t max_series;
    size_t n_series;
    mesh_series_t *series; /* max_series + 1; series[max_series] is the overflow */
    uint64_t *bucket_store;
    uint32_t *index; /* slot + 1, 0 = empty */
    size_t index_mask;
    bool overflow_used;
};

typedef struct {
    mesh_metrics_collect_fn fn;
    void *arg;
} collector_t;

struct mesh_metrics {
    mesh_metric_t *fams[MESH_METRICS_FAMILIES_MAX];
    size_t n_fams;
    collector_t collectors[MESH_METRICS_COLLECTORS_MAX];
    size_t n_collectors;
};

static mesh_metrics_t *s_global;

/* ---- registries ---------------------------------------------------------- */

mesh_metrics_t *mesh_metrics_new(void)
{
    return calloc(1, sizeof(mesh_metrics_t));
}

static void family_free(mesh_metric_t *m)
{
    if (!m)
        return;
    free(m->series);
    free(m->bucket_store);
    free(m->index);
    free(m);
}

void mesh_metrics_destroy(mesh_metrics_t **reg_p)
{
    if (!reg_p || !*reg_p)
        return;
    mesh_metrics_t *reg = *reg_p;
    *reg_p = NULL;
    for (size_t i = 0; i < reg->n_fams; i++)
        family_free(reg->fams[i]);
    free(reg);
}

mesh_metrics_t *mesh_metrics_global(void)
{
    if (!s_global)
        s_global = mesh_metrics_new();
    return s_global;
}

void mesh_metrics_global_free(void)
{
    mesh_metrics_destroy(&s_global);
}

/* ---- names --------------------------------------------------------------- */

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (colon && c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

static bool metric_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > MESH_METRICS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i], i == 0, true))
            return false;
    return true;
}

/* Split "a,b,c" into out; the count or -1 when a name is invalid or too many. */
static int parse_labels(const char *list, mesh_metric_type_t type,
                        char out[MESH_METRICS_LABELS_MAX][MESH_METRICS_LABEL_NAME_MAX + 1])
{
    if (!list || !*list)
        return 0;
    int n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n >= MESH_METRICS_LABELS_MAX || len == 0 || len > MESH_METRICS_LABEL_NAME_MAX)
            return -1;
        for (size_t i = 0; i < len; i++)
            if (!name_char(p[i], i == 0, false))
                return -1;
        if (len >= 2 && p[0] == '_' && p[1] == '_')
            return -1; /* reserved for Prometheus itself */
        if (type == MESH_METRIC_HISTOGRAM && len == 2 && memcmp(p, "le", 2) == 0)
            return -1;
        memcpy(out[n], p, len);
        out[n][len] = '\0';
        for (int k = 0; k < n; k++)
            if (strcmp(out[k], out[n]) == 0)
                return -1;
        n++;
        if (!end)
            return n;
        p = end + 1;
    }
}

/* ---- label values -------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    /* Overlong three- and four-byte forms, surrogates, beyond U+10FFFF. */
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

/* Copy v into dst (MESH_METRICS_LABEL_VALUE_MAX + 1 bytes) as valid, truncated UTF-8. */
static void value_copy(char *dst, const char *v)
{
    size_t o = 0;
    if (v) {
        const unsigned char *s = (const unsigned char *)v;
        size_t n = strlen(v);
        size_t i = 0;
        while (i < n) {
            size_t len = utf8_seq(s + i, n - i);
            if (len == 0) {
                if (o + 1 > MESH_METRICS_LABEL_VALUE_MAX)
                    break;
                dst[o++] = '?';
                i++;
                continue;
            }
            if (o + len > MESH_METRICS_LABEL_VALUE_MAX)
                break;
            memcpy(dst + o, s + i, len);
            o += len;
            i += len;
        }
    }
    dst[o] = '\0';
}

static uint32_t values_hash(char vals[][MESH_METRICS_LABEL_VALUE_MAX + 1], size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t k = 0; k < n; k++) {
        for (const unsigned char *p = (const unsigned char *)vals[k]; *p; p++) {
            h ^= *p;
            h *= 16777619u;
        }
        h ^= 0xFFu; /* separator: ("ab","") and ("a","b") differ */
        h *= 16777619u;
    }
    return h;
}

/* ---- families ------------------------------------------------------------ */

static bool same_shape(const mesh_metric_t *m, mesh_metric_type_t type, size_t n_labels,
                       char labels[][MESH_METRICS_LABEL_NAME_MAX + 1], const double *bounds,
                       size_t n_bounds)
{
    if (m->type != type || m->n_labels != n_labels)
        return false;
    for (size_t k = 0; k < n_labels; k++)
        if (strcmp(m->labels[k], labels[k]) != 0)
            return false;
    if (type == MESH_METRIC_HISTOGRAM) {
        if (m->n_bounds != n_bounds)
            return false;
        for (size_t k = 0; k < n_bounds; k++)
            if (m->bounds[k] != bounds[k])
                return false;
    }
    return true;
}

static size_t index_size(size_t max_series)
{
    size_t cap = 8;
    while (cap < 2 * (max_series + 1))
        cap <<= 1;
    return cap;
}

static mesh_metric_t *family_register(mesh_metrics_t *reg, mesh_metric_type_t type,
                                      const char *name, const char *help, const char *labels,
                                      size_t max_series, const double *bounds, size_t n_bounds)
{
    char lnames[MESH_METRICS_LABELS_MAX][MESH_METRICS_LABEL_NAME_MAX + 1];
    const char *why = NULL;
    int n_labels = 0;

    if (!reg)
        return NULL;
    if (!metric_name_valid(name))
        why = "invalid metric name";
    else if ((n_labels = parse_labels(labels, type, lnames)) < 0)
        why = "invalid label names";
    else if (n_labels == 0)
        max_series = 1;
    else if (max_series < 1 || max_series > MESH_METRICS_SERIES_MAX)
        why = "max_series out of range";
    if (!why && type == MESH_METRIC_HISTOGRAM) {
        if (!bounds || n_bounds < 1 || n_bounds > MESH_METRICS_BUCKETS_MAX)
            why = "histogram needs 1..MESH_METRICS_BUCKETS_MAX bounds";
        for (size_t k = 0; !why && k < n_bounds; k++)
            if (!isfinite(bounds[k]) || (k > 0 && bounds[k] <= bounds[k - 1]))
                why = "histogram bounds must be finite and strictly ascending";
    }
    if (why) {
        mesh_log_error(SUBSYS, "register %s: %s", name && metric_name_valid(name) ? name : "?",
                       why);
        return NULL;
    }
    for (size_t i = 0; i < reg->n_fams; i++) {
        mesh_metric_t *m = reg->fams[i];
        if (strcmp(m->name, name) != 0)
            continue;
        if (same_shape(m, type, (size_t)n_labels, lnames, bounds, n_bounds))
            return m;
        mesh_log_error(SUBSYS, "register %s: already registered with another type or labels", name);
        return NULL;
    }
    if (reg->n_fams >= MESH_METRICS_FAMILIES_MAX) {
        mesh_log_error(SUBSYS, "register %s: registry full (%d families)", name,
                       MESH_METRICS_FAMILIES_MAX);
        return NULL;
    }

    mesh_metric_t *m = calloc(1, sizeof(*m));
    if (!m)
        goto nomem;
    m->reg = reg;
    m->type = type;
    memcpy(m->name, name, strlen(name) + 1);
    if (help) {
        size_t hn = strnlen(help, MESH_METRICS_HELP_MAX);
        memcpy(m->help, help, hn);
        m->help[hn] = '\0';
    }
    m->n_labels = (size_t)n_labels;
    memcpy(m->labels, lnames, sizeof(lnames));
    m->max_series = max_series;
    m->series = calloc(max_series + 1, sizeof(*m->series));
    size_t cap = index_size(max_series);
    m->index = calloc(cap, sizeof(*m->index));
    m->index_mask = cap - 1;
    if (!m->series || !m->index)
        goto nomem;
    if (type == MESH_METRIC_HISTOGRAM) {
        memcpy(m->bounds, bounds, n_bounds * sizeof(*bounds));
        m->n_bounds = n_bounds;
        m->bucket_store = calloc((max_series + 1) * n_bounds, sizeof(*m->bucket_store));
        if (!m->bucket_store)
            goto nomem;
    }
    for (size_t i = 0; i <= max_series; i++) {
        m->series[i].fam = m;
        if (m->bucket_store)
            m->series[i].buckets = m->bucket_store + i * n_bounds;
    }
    mesh_series_t *ov = &m->series[max_series];
    for (size_t k = 0; k < m->n_labels; k++)
        memcpy(ov->values[k], MESH_METRICS_OVERFLOW_VALUE, sizeof(MESH_METRICS_OVERFLOW_VALUE));
    if (m->n_labels == 0) {
        m->series[0].used = true; /* the one series of a family without labels */
        m->n_series = 1;
    }
    reg->fams[reg->n_fams++] = m;
    return m;

nomem:
    family_free(m);
    mesh_log_error(SUBSYS, "register %s: out of memory", name);
    return NULL;
}

mesh_metric_t *mesh_metrics_counter(mesh_metrics_t *reg, const char *name, const char *help,
                                    const char *labels, size_t max_series)
{
    return family_register(reg, MESH_METRIC_COUNTER, name, help, labels, max_series, NULL, 0);
}

mesh_metric_t *mesh_metrics_gauge(mesh_metrics_t *reg, const char *name, const char *help,
                                  const char *labels, size_t max_series)
{
    return family_register(reg, MESH_METRIC_GAUGE, name, help, labels, max_series, NULL, 0);
}

mesh_metric_t *mesh_metrics_histogram(mesh_metrics_t *reg, const char *name, const char *help,
                                      const char *labels, size_t max_series, const double *bounds,
                                      size_t n_bounds)
{
    return family_register(reg, MESH_METRIC_HISTOGRAM, name, help, labels, max_series, bounds,
                           n_bounds);
}

const char *mesh_metric_name(const mesh_metric_t *m)
{
    return m ? m->name : NULL;
}

size_t mesh_metric_series_count(const mesh_metric_t *m)
{
    return m ? m->n_series : 0;
}

mesh_series_t *mesh_metric_with(mesh_metric_t *m, const char *const *values)
{
    char vals[MESH_METRICS_LABELS_MAX][MESH_METRICS_LABEL_VALUE_MAX + 1];

    if (!m)
        return NULL;
    if (m->n_labels == 0)
        return &m->series[0];
    if (!values)
        return NULL;
    for (size_t k = 0; k < m->n_labels; k++)
        value_copy(vals[k], values[k]);
    uint32_t h = values_hash(vals, m->n_labels);
    size_t i = h & m->index_mask;
    for (;; i = (i + 1) & m->index_mask) {
        uint32_t slot = m->index[i];
        if (slot == 0)
            break;
        mesh_series_t *s = &m->series[slot - 1];
        if (s->hash != h)
            continue;
        size_t k = 0;
        while (k < m->n_labels && strcmp(s->values[k], vals[k]) == 0)
            k++;
        if (k == m->n_labels)
            return s;
    }
    if (m->n_series >= m->max_series) {
        if (!m->overflow_used) {
            m->overflow_used = true;
            mesh_log_warn(SUBSYS, "%s: more than %zu label sets, further ones counted as %s",
                          m->name, m->max_series, MESH_METRICS_OVERFLOW_VALUE);
        }
        return &m->series[m->max_series];
    }
    /* The index has at least twice as many cells as series, so i is free. */
    mesh_series_t *s = &m->series[m->n_series];
    memcpy(s->values, vals, m->n_labels * sizeof(vals[0]));
    s->hash = h;
    s->used = true;
    m->index[i] = (uint32_t)(m->n_series + 1);
    m->n_series++;
    return s;
}

/* ---- recording ----------------------------------------------------------- */

void mesh_counter_inc(mesh_series_t *s)
{
    if (s)
        s->u++;
}

void mesh_counter_add(mesh_series_t *s, uint64_t n)
{
    if (s)
        s->u += n;
}

void mesh_counter_addf(mesh_series_t *s, double v)
{
    if (s && isfinite(v) && v >= 0)
        s->d += v;
}

void mesh_gauge_set(mesh_series_t *s, double v)
{
    if (s)
        s->d = v;
}

void mesh_gauge_add(mesh_series_t *s, double v)
{
    if (s)
        s->d += v;
}

void mesh_histogram_observe(mesh_series_t *s, double v)
{
    if (!s || !s->buckets || isnan(v))
        return;
    const mesh_metric_t *m = s->fam;
    for (size_t k = 0; k < m->n_bounds; k++) {
        if (v <= m->bounds[k]) {
            s->buckets[k]++;
            break;
        }
    }
    s->u++;
    s->d += v;
}

double mesh_series_value(const mesh_series_t *s)
{
    if (!s)
        return 0;
    switch (s->fam->type) {
    case MESH_METRIC_COUNTER:
        return (double)s->u + s->d;
    case MESH_METRIC_GAUGE:
        return s->d;
    case MESH_METRIC_HISTOGRAM:
        return (double)s->u;
    }
    return 0;
}

double mesh_series_sum(const mesh_series_t *s)
{
    return s && s->fam->type == MESH_METRIC_HISTOGRAM ? s->d : 0;
}

double mesh_metrics_since_s(uint64_t t0_ns)
{
    uint64_t now = uv_hrtime();
    return now > t0_ns ? (double)(now - t0_ns) / 1e9 : 0.0;
}

/* ---- collectors ---------------------------------------------------------- */

int mesh_metrics_on_collect(mesh_metrics_t *reg, mesh_metrics_collect_fn fn, void *arg)
{
    if (!reg || !fn)
        return MESH_EINVAL;
    if (reg->n_collectors >= MESH_METRICS_COLLECTORS_MAX)
        return MESH_EBUSY;
    reg->collectors[reg->n_collectors++] = (collector_t){.fn = fn, .arg = arg};
    return 0;
}

void mesh_metrics_off_collect(mesh_metrics_t *reg, mesh_metrics_collect_fn fn, void *arg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_collectors; i++) {
        if (reg->collectors[i].fn != fn || reg->collectors[i].arg != arg)
            continue;
        memmove(&reg->collectors[i], &reg->collectors[i + 1],
                (reg->n_collectors - i - 1) * sizeof(reg->collectors[0]));
        reg->n_collectors--;
        return;
    }
}

/* ---- rendering ----------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    bool failed;
} obuf_t;

static void ob_put(obuf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : RENDER_INITIAL;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void ob_str(obuf_t *b, const char *s)
{
    ob_put(b, s, strlen(s));
}

/* HELP escaping: backslash and newline. Label values also escape the quote. */
static void ob_escaped(obuf_t *b, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (!rep)
            continue;
        ob_put(b, run, (size_t)(s - run));
        ob_str(b, rep);
        run = s + 1;
    }
    ob_put(b, run, (size_t)(s - run));
}

/* A double as the text format wants it: shortest round-trip form, +Inf, -Inf, NaN. */
static void fmt_double(char out[NUM_MAX], double v)
{
    if (isnan(v)) {
        memcpy(out, "NaN", 4);
        return;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 5);
        return;
    }
    if (v == 0) {
        memcpy(out, "0", 2); /* no "-0" */
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, NUM_MAX, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* name{l1="v1",...[,le="x"]} value\n */
static void ob_sample(obuf_t *b, const mesh_metric_t *m, const char *suffix, const mesh_series_t *s,
                      const char *le, const char *value)
{
    ob_str(b, m->name);
    ob_str(b, suffix);
    if (m->n_labels > 0 || le) {
        ob_put(b, "{", 1);
        for (size_t k = 0; k < m->n_labels; k++) {
            if (k > 0)
                ob_put(b, ",", 1);
            ob_str(b, m->labels[k]);
            ob_put(b, "=\"", 2);
            ob_escaped(b, s->values[k], true);
            ob_put(b, "\"", 1);
        }
        if (le) {
            if (m->n_labels > 0)
                ob_put(b, ",", 1);
            ob_str(b, "le=\"");
            ob_str(b, le);
            ob_put(b, "\"", 1);
        }
        ob_put(b, "}", 1);
    }
    ob_put(b, " ", 1);
    ob_str(b, value);
    ob_put(b, "\n", 1);
}

static void render_series(obuf_t *b, const mesh_metric_t *m, const mesh_series_t *s)
{
    char num[NUM_MAX], le[NUM_MAX];
    switch (m->type) {
    case MESH_METRIC_COUNTER:
        if (s->d == 0)
            snprintf(num, sizeof(num), "%llu", (unsigned long long)s->u);
        else
            fmt_double(num, (double)s->u + s->d);
        ob_sample(b, m, "", s, NULL, num);
        return;
    case MESH_METRIC_GAUGE:
        fmt_double(num, s->d);
        ob_sample(b, m, "", s, NULL, num);
        return;
    case MESH_METRIC_HISTOGRAM: {
        uint64_t cum = 0;
        for (size_t k = 0; k < m->n_bounds; k++) {
            cum += s->buckets[k];
            fmt_double(le, m->bounds[k]);
            snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
            ob_sample(b, m, "_bucket", s, le, num);
        }
        snprintf(num, sizeof(num), "%llu", (unsigned long long)s->u);
        ob_sample(b, m, "_bucket", s, "+Inf", num);
        fmt_double(num, s->d);
        ob_sample(b, m, "_sum", s, NULL, num);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)s->u);
        ob_sample(b, m, "_count", s, NULL, num);
        return;
    }
    }
}

static const char *type_name(mesh_metric_type_t t)
{
    switch (t) {
    case MESH_METRIC_COUNTER:
        return "counter";
    case MESH_METRIC_GAUGE:
        return "gauge";
    case MESH_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

int mesh_metrics_render(mesh_metrics_t *reg, char **out, size_t *len)
{
    if (!reg || !out || !len)
        return MESH_EINVAL;
    *out = NULL;
    *len = 0;
    /* A collector may unregister itself: walk a snapshot. */
    collector_t cs[MESH_METRICS_COLLECTORS_MAX];
    size_t n_cs = reg->n_collectors;
    memcpy(cs, reg->collectors, n_cs * sizeof(cs[0]));
    for (size_t i = 0; i < n_cs; i++)
        cs[i].fn(reg, cs[i].arg);

    obuf_t b = {0};
    for (size_t i = 0; i < reg->n_fams; i++) {
        const mesh_metric_t *m = reg->fams[i];
        ob_str(&b, "# HELP ");
        ob_str(&b, m->name);
        ob_put(&b, " ", 1);
        ob_escaped(&b, m->help, false);
        ob_str(&b, "\n# TYPE ");
        ob_str(&b, m->name);
        ob_put(&b, " ", 1);
        ob_str(&b, type_name(m->type));
        ob_put(&b, "\n", 1);
        for (size_t k = 0; k < m->n_series; k++)
            render_series(&b, m, &m->series[k]);
        if (m->overflow_used)
            render_series(&b, m, &m->series[m->max_series]);
    }
    if (!b.p)
        ob_put(&b, "", 0); /* an empty registry renders as an empty document */
    if (b.failed) {
        free(b.p);
        return MESH_ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
