/*
 * prom_parse.c - strict Prometheus text format 0.0.4 parser (prom_parse.h).
 *
 * One pass over the lines. Families are tracked in order of appearance; the
 * "current" family is the one the last line belonged to, and a line of a
 * family seen before that is not the current one breaks the grouping rule.
 * Histogram checks run per label set (the labels minus le) when a family's
 * group ends.
 */
#include "prom_parse.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROM_NAME_MAX   128
#define PROM_LABELS_MAX 8
#define PROM_VALUE_MAX  256

typedef struct {
    char name[PROM_NAME_MAX];
    char value[PROM_VALUE_MAX];
} prom_label_t;

typedef struct {
    char name[PROM_NAME_MAX];
    int family;
    size_t n_labels;
    prom_label_t labels[PROM_LABELS_MAX];
    char key[1024]; /* canonical label set, le excluded */
    bool has_le;
    double le;
    double value;
} prom_sample_t;

typedef struct {
    char name[PROM_NAME_MAX];
    char type[16];
    bool has_help, has_type, has_samples, closed;
    size_t first_sample; /* index into samples */
} prom_family_t;

struct mh_prom {
    prom_sample_t *samples;
    size_t n_samples, cap_samples;
    prom_family_t *fams;
    size_t n_fams, cap_fams;
    int current; /* family of the previous line, -1 none */
};

typedef struct {
    int line;
    char *err;
    size_t err_size;
} pctx_t;

static int fail(pctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(pctx_t *c, const char *fmt, ...)
{
    if (c->err && c->err_size) {
        int n = snprintf(c->err, c->err_size, "line %d: ", c->line);
        va_list ap;
        va_start(ap, fmt);
        if (n >= 0 && (size_t)n < c->err_size)
            vsnprintf(c->err + n, c->err_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- lexical helpers ------------------------------------------------------ */

static bool is_name_char(char ch, bool first, bool colon)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_')
        return true;
    if (colon && ch == ':')
        return true;
    return !first && ch >= '0' && ch <= '9';
}

/* Read a name at *p (metric names allow ':'); its length, 0 when none. */
static size_t read_name(const char *p, const char *end, bool colon, char out[PROM_NAME_MAX])
{
    size_t n = 0;
    while (p + n < end && is_name_char(p[n], n == 0, colon))
        n++;
    if (n == 0 || n >= PROM_NAME_MAX)
        return 0;
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char ch = s[i];
        size_t len;
        if (ch < 0x80) {
            i++;
            continue;
        }
        if (ch >= 0xC2 && ch <= 0xDF)
            len = 2;
        else if (ch >= 0xE0 && ch <= 0xEF)
            len = 3;
        else if (ch >= 0xF0 && ch <= 0xF4)
            len = 4;
        else
            return false;
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        if ((ch == 0xE0 && s[i + 1] < 0xA0) || (ch == 0xED && s[i + 1] > 0x9F) ||
            (ch == 0xF0 && s[i + 1] < 0x90) || (ch == 0xF4 && s[i + 1] > 0x8F))
            return false;
        i += len;
    }
    return true;
}

/* A Go-syntax float: +Inf, -Inf, NaN, or a decimal number. */
static bool parse_float(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "Inf") == 0) {
        *out = INFINITY;
        return true;
    }
    if (strcmp(buf, "-Inf") == 0) {
        *out = -INFINITY;
        return true;
    }
    if (strcmp(buf, "NaN") == 0) {
        *out = NAN;
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == 'e' || ch == 'E' || ch == '+' ||
              ch == '-'))
            return false; /* no hex, no "inf"/"nan" spellings, no blanks */
    }
    char *end = NULL;
    *out = strtod(buf, &end);
    return end == buf + n;
}

static bool parse_int64(const char *s, size_t n)
{
    size_t i = 0;
    if (n > 0 && s[0] == '-')
        i = 1;
    if (i >= n || n - i > 19)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* ---- families ------------------------------------------------------------- */

static int family_find(const mh_prom_t *p, const char *name)
{
    for (size_t i = 0; i < p->n_fams; i++)
        if (strcmp(p->fams[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int family_add(mh_prom_t *p, const char *name)
{
    if (p->n_fams == p->cap_fams) {
        size_t cap = p->cap_fams ? p->cap_fams * 2 : 32;
        prom_family_t *f = realloc(p->fams, cap * sizeof(*f));
        if (!f)
            return -1;
        p->fams = f;
        p->cap_fams = cap;
    }
    prom_family_t *f = &p->fams[p->n_fams];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    return (int)p->n_fams++;
}

static bool ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n <= k || strcmp(s + n - k, suffix) != 0)
        return false;
    *stem = n - k;
    return true;
}

/* The family a sample name belongs to (creating an untyped one); -1 on OOM. */
static int family_of_sample(mh_prom_t *p, const char *name)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t k = 0; k < 3; k++) {
        size_t stem;
        if (!ends_with(name, suffixes[k], &stem))
            continue;
        char base[PROM_NAME_MAX];
        memcpy(base, name, stem);
        base[stem] = '\0';
        int f = family_find(p, base);
        if (f >= 0 && (strcmp(p->fams[f].type, "histogram") == 0 ||
                       (k > 0 && strcmp(p->fams[f].type, "summary") == 0)))
            return f;
    }
    int f = family_find(p, name);
    if (f >= 0)
        return f;
    f = family_add(p, name);
    if (f >= 0)
        snprintf(p->fams[f].type, sizeof(p->fams[f].type), "untyped");
    return f;
}

/* Histogram invariants of family f, run when its group ends. */
static int check_histogram(pctx_t *c, const mh_prom_t *p, int f)
{
    const prom_family_t *fam = &p->fams[f];
    char bname[PROM_NAME_MAX + 8], sname[PROM_NAME_MAX + 8], cname[PROM_NAME_MAX + 8];
    snprintf(bname, sizeof(bname), "%s_bucket", fam->name);
    snprintf(sname, sizeof(sname), "%s_sum", fam->name);
    snprintf(cname, sizeof(cname), "%s_count", fam->name);

    for (size_t i = fam->first_sample; i < p->n_samples; i++) {
        const prom_sample_t *s = &p->samples[i];
        if (s->family != f)
            continue;
        if (strcmp(s->name, fam->name) == 0)
            return fail(c, "histogram %s has a plain sample", fam->name);
        if (strcmp(s->name, bname) != 0 && s->has_le)
            return fail(c, "%s carries le", s->name);
        if (strcmp(s->name, bname) == 0 && !s->has_le)
            return fail(c, "%s without le", s->name);
        if (isnan(s->value) || s->value < 0)
            return fail(c, "%s{%s} negative or NaN", s->name, s->key);
        /* Check each label set once, at its first sample. */
        bool first = true;
        for (size_t j = fam->first_sample; j < i && first; j++)
            if (p->samples[j].family == f && strcmp(p->samples[j].key, s->key) == 0)
                first = false;
        if (!first)
            continue;
        double prev_le = -INFINITY, prev_count = 0, inf_count = -1, count = -1;
        bool have_sum = false;
        for (size_t j = i; j < p->n_samples; j++) {
            const prom_sample_t *t = &p->samples[j];
            if (t->family != f || strcmp(t->key, s->key) != 0)
                continue;
            if (strcmp(t->name, bname) == 0) {
                if (!(t->le > prev_le))
                    return fail(c, "%s{%s}: le %g not above the previous %g", bname, s->key, t->le,
                                prev_le);
                if (t->value < prev_count)
                    return fail(c, "%s{%s}: bucket counts decrease at le %g", bname, s->key, t->le);
                prev_le = t->le;
                prev_count = t->value;
                if (isinf(t->le))
                    inf_count = t->value;
            } else if (strcmp(t->name, cname) == 0) {
                count = t->value;
            } else if (strcmp(t->name, sname) == 0) {
                have_sum = true;
            }
        }
        if (inf_count < 0)
            return fail(c, "%s{%s}: no le=\"+Inf\" bucket", bname, s->key);
        if (count < 0)
            return fail(c, "%s{%s}: missing", cname, s->key);
        if (!have_sum)
            return fail(c, "%s{%s}: missing", sname, s->key);
        if (count != inf_count)
            return fail(c, "%s{%s}: +Inf bucket %g != _count %g", fam->name, s->key, inf_count,
                        count);
    }
    return 0;
}

/* Close the current family's group (if any) and run its checks. */
static int close_current(pctx_t *c, mh_prom_t *p)
{
    if (p->current < 0)
        return 0;
    int f = p->current;
    p->current = -1;
    p->fams[f].closed = true;
    if (strcmp(p->fams[f].type, "histogram") == 0)
        return check_histogram(c, p, f);
    return 0;
}

/* Make family f the current one; a family whose group ended before is an error. */
static int enter_family(pctx_t *c, mh_prom_t *p, int f)
{
    if (p->current == f)
        return 0;
    if (close_current(c, p) != 0)
        return -1;
    if (p->fams[f].closed)
        return fail(c, "lines of %s are not one uninterrupted group", p->fams[f].name);
    p->current = f;
    return 0;
}

/* ---- lines ---------------------------------------------------------------- */

static int parse_comment(pctx_t *c, mh_prom_t *p, const char *s, const char *end)
{
    bool help = (size_t)(end - s) >= 7 && memcmp(s, "# HELP ", 7) == 0;
    bool type = (size_t)(end - s) >= 7 && memcmp(s, "# TYPE ", 7) == 0;
    if (!help && !type)
        return 0; /* any other comment is ignored by the format */
    const char *q = s + 7;
    char name[PROM_NAME_MAX];
    size_t n = read_name(q, end, true, name);
    if (n == 0)
        return fail(c, "%s without a valid metric name", help ? "HELP" : "TYPE");
    q += n;
    int f = family_find(p, name);
    if (f < 0 && (f = family_add(p, name)) < 0)
        return fail(c, "out of memory");
    if (enter_family(c, p, f) != 0)
        return -1;
    prom_family_t *fam = &p->fams[f];
    if (fam->has_samples)
        return fail(c, "%s for %s after its samples", help ? "HELP" : "TYPE", name);
    if (help) {
        if (fam->has_help)
            return fail(c, "second HELP for %s", name);
        fam->has_help = true;
        if (q == end)
            return 0;
        if (*q != ' ')
            return fail(c, "HELP %s: no blank after the name", name);
        for (q++; q < end; q++) {
            if (*q != '\\')
                continue;
            if (q + 1 >= end || (q[1] != '\\' && q[1] != 'n'))
                return fail(c, "HELP %s: invalid escape", name);
            q++;
        }
        return 0;
    }
    if (fam->has_type)
        return fail(c, "second TYPE for %s", name);
    if (q >= end || *q != ' ')
        return fail(c, "TYPE %s: no type", name);
    q++;
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t k = 0; k < 5; k++) {
        if ((size_t)(end - q) == strlen(types[k]) && memcmp(q, types[k], strlen(types[k])) == 0) {
            fam->has_type = true;
            snprintf(fam->type, sizeof(fam->type), "%s", types[k]);
            return 0;
        }
    }
    return fail(c, "TYPE %s: unknown type", name);
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const prom_label_t *)a)->name, ((const prom_label_t *)b)->name);
}

/* Parse {k="v",...} at *pp into s. */
static int parse_labels(pctx_t *c, const char **pp, const char *end, prom_sample_t *s)
{
    const char *q = *pp + 1; /* past '{' */
    for (;;) {
        if (q < end && *q == '}') {
            q++;
            break;
        }
        if (s->n_labels >= PROM_LABELS_MAX)
            return fail(c, "too many labels");
        prom_label_t *l = &s->labels[s->n_labels];
        size_t n = read_name(q, end, false, l->name);
        if (n == 0)
            return fail(c, "invalid label name");
        q += n;
        if (q + 1 >= end || q[0] != '=' || q[1] != '"')
            return fail(c, "label %s: expected =\"", l->name);
        q += 2;
        size_t o = 0;
        for (;;) {
            if (q >= end)
                return fail(c, "label %s: unterminated value", l->name);
            char ch = *q++;
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (q >= end)
                    return fail(c, "label %s: dangling escape", l->name);
                char e = *q++;
                if (e == 'n')
                    ch = '\n';
                else if (e == '\\' || e == '"')
                    ch = e;
                else
                    return fail(c, "label %s: invalid escape \\%c", l->name, e);
            } else if (ch == '\n') {
                return fail(c, "label %s: raw newline", l->name);
            }
            if (o + 1 >= PROM_VALUE_MAX)
                return fail(c, "label %s: value too long", l->name);
            l->value[o++] = ch;
        }
        l->value[o] = '\0';
        for (size_t k = 0; k < s->n_labels; k++)
            if (strcmp(s->labels[k].name, l->name) == 0)
                return fail(c, "label %s twice", l->name);
        s->n_labels++;
        if (q < end && *q == ',') {
            q++;
            continue;
        }
        if (q < end && *q == '}') {
            q++;
            break;
        }
        return fail(c, "expected , or } after label %s", l->name);
    }
    *pp = q;
    return 0;
}

static int parse_sample(pctx_t *c, mh_prom_t *p, const char *s, const char *end)
{
    if (p->n_samples == p->cap_samples) {
        size_t cap = p->cap_samples ? p->cap_samples * 2 : 256;
        prom_sample_t *ns = realloc(p->samples, cap * sizeof(*ns));
        if (!ns)
            return fail(c, "out of memory");
        p->samples = ns;
        p->cap_samples = cap;
    }
    prom_sample_t *sm = &p->samples[p->n_samples];
    memset(sm, 0, sizeof(*sm));
    const char *q = s;
    size_t n = read_name(q, end, true, sm->name);
    if (n == 0)
        return fail(c, "invalid metric name");
    q += n;
    if (q < end && *q == '{' && parse_labels(c, &q, end, sm) != 0)
        return -1;
    if (q >= end || *q != ' ')
        return fail(c, "%s: expected a blank before the value", sm->name);
    q++;
    const char *v = q;
    while (q < end && *q != ' ')
        q++;
    if (!parse_float(v, (size_t)(q - v), &sm->value))
        return fail(c, "%s: invalid value \"%.*s\"", sm->name, (int)(q - v), v);
    if (q < end) {
        q++;
        if (!parse_int64(q, (size_t)(end - q)))
            return fail(c, "%s: invalid timestamp", sm->name);
    }

    /* Canonical key (sorted, le excluded) for duplicates and histogram sets. */
    prom_label_t sorted[PROM_LABELS_MAX];
    size_t ns = 0;
    for (size_t k = 0; k < sm->n_labels; k++) {
        if (strcmp(sm->labels[k].name, "le") == 0) {
            sm->has_le = true;
            if (!parse_float(sm->labels[k].value, strlen(sm->labels[k].value), &sm->le) ||
                isnan(sm->le))
                return fail(c, "%s: invalid le \"%s\"", sm->name, sm->labels[k].value);
            continue;
        }
        sorted[ns++] = sm->labels[k];
    }
    qsort(sorted, ns, sizeof(sorted[0]), label_cmp);
    size_t o = 0;
    for (size_t k = 0; k < ns; k++) {
        int w = snprintf(sm->key + o, sizeof(sm->key) - o, "%s%s=%s", k ? "," : "", sorted[k].name,
                         sorted[k].value);
        if (w < 0 || (size_t)w >= sizeof(sm->key) - o)
            return fail(c, "%s: label set too long", sm->name);
        o += (size_t)w;
    }

    int f = family_of_sample(p, sm->name);
    if (f < 0)
        return fail(c, "out of memory");
    if (enter_family(c, p, f) != 0)
        return -1;
    prom_family_t *fam = &p->fams[f];
    if (!fam->has_samples) {
        fam->has_samples = true;
        fam->first_sample = p->n_samples;
    }
    sm->family = f;
    if (strcmp(fam->type, "counter") == 0 && (isnan(sm->value) || sm->value < 0))
        return fail(c, "counter %s negative or NaN", sm->name);
    for (size_t i = fam->first_sample; i < p->n_samples; i++) {
        const prom_sample_t *t = &p->samples[i];
        if (t->family == f && strcmp(t->name, sm->name) == 0 && strcmp(t->key, sm->key) == 0 &&
            t->has_le == sm->has_le && (!t->has_le || t->le == sm->le))
            return fail(c, "%s{%s} appears twice", sm->name, sm->key);
    }
    p->n_samples++;
    return 0;
}

int mh_prom_parse(const char *text, size_t len, mh_prom_t **out, char *err, size_t err_size)
{
    pctx_t c = {.line = 0, .err = err, .err_size = err_size};
    if (err && err_size)
        err[0] = '\0';
    if (!text || !out)
        return fail(&c, "no input");
    *out = NULL;
    if (len > 0 && text[len - 1] != '\n')
        return fail(&c, "the text does not end with a newline");
    if (memchr(text, '\r', len))
        return fail(&c, "carriage return in the text");
    if (memchr(text, '\0', len))
        return fail(&c, "NUL byte in the text");
    if (!utf8_valid((const unsigned char *)text, len))
        return fail(&c, "invalid UTF-8");
    mh_prom_t *p = calloc(1, sizeof(*p));
    if (!p)
        return fail(&c, "out of memory");
    p->current = -1;
    const char *s = text, *stop = text + len;
    while (s < stop) {
        const char *end = memchr(s, '\n', (size_t)(stop - s));
        c.line++;
        int rc = 0;
        if (end == s)
            rc = 0; /* empty lines are ignored */
        else if (*s == '#')
            rc = parse_comment(&c, p, s, end);
        else
            rc = parse_sample(&c, p, s, end);
        if (rc != 0) {
            mh_prom_free(&p);
            return -1;
        }
        s = end + 1;
    }
    if (close_current(&c, p) != 0) {
        mh_prom_free(&p);
        return -1;
    }
    *out = p;
    return 0;
}

void mh_prom_free(mh_prom_t **p_p)
{
    if (!p_p || !*p_p)
        return;
    free((*p_p)->samples);
    free((*p_p)->fams);
    free(*p_p);
    *p_p = NULL;
}

const char *mh_prom_type(const mh_prom_t *p, const char *family)
{
    int f = p ? family_find(p, family) : -1;
    return f >= 0 ? p->fams[f].type : NULL;
}

/* Whether sample s has every k=v pair of match. */
static bool sample_matches(const prom_sample_t *s, const char *match)
{
    if (!match || !*match)
        return true;
    const char *q = match;
    while (*q) {
        const char *comma = strchr(q, ',');
        size_t n = comma ? (size_t)(comma - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        if (!eq)
            return false;
        size_t kn = (size_t)(eq - q), vn = n - kn - 1;
        bool found = false;
        for (size_t k = 0; k < s->n_labels && !found; k++)
            found = strlen(s->labels[k].name) == kn && memcmp(s->labels[k].name, q, kn) == 0 &&
                    strlen(s->labels[k].value) == vn && memcmp(s->labels[k].value, eq + 1, vn) == 0;
        if (!found)
            return false;
        q += n;
        if (*q == ',')
            q++;
    }
    return true;
}

int mh_prom_find(const mh_prom_t *p, const char *name, const char *match, double *sum)
{
    int n = 0;
    double total = 0;
    for (size_t i = 0; p && i < p->n_samples; i++) {
        const prom_sample_t *s = &p->samples[i];
        if (strcmp(s->name, name) != 0 || !sample_matches(s, match))
            continue;
        n++;
        total += s->value;
    }
    if (sum)
        *sum = total;
    return n;
}

double mh_prom_sum(const mh_prom_t *p, const char *name, const char *match)
{
    double sum = 0;
    mh_prom_find(p, name, match, &sum);
    return sum;
}

int mh_prom_label_values(const mh_prom_t *p, const char *name, const char *label, const char *match)
{
    int distinct = 0;
    for (size_t i = 0; p && i < p->n_samples; i++) {
        const prom_sample_t *s = &p->samples[i];
        if (strcmp(s->name, name) != 0 || !sample_matches(s, match))
            continue;
        const char *v = NULL;
        for (size_t k = 0; k < s->n_labels; k++)
            if (strcmp(s->labels[k].name, label) == 0)
                v = s->labels[k].value;
        if (!v)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const prom_sample_t *t = &p->samples[j];
            if (strcmp(t->name, name) != 0 || !sample_matches(t, match))
                continue;
            for (size_t k = 0; k < t->n_labels; k++)
                if (strcmp(t->labels[k].name, label) == 0 && strcmp(t->labels[k].value, v) == 0)
                    seen = true;
        }
        if (!seen)
            distinct++;
    }
    return distinct;
}

size_t mh_prom_samples(const mh_prom_t *p)
{
    return p ? p->n_samples : 0;
}
