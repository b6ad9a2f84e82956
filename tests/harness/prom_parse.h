/*
 * prom_parse.h - a strict parser of the Prometheus text exposition format
 * 0.0.4, for tests: it fails on anything a conforming exposition must not
 * contain, with a message naming the line.
 *
 * Checked:
 *   - the text is UTF-8, uses '\n' line ends (no '\r'), and ends with '\n';
 *   - "# HELP name text": valid name, only \\ and \n escapes, at most one per
 *     name; "# TYPE name type": valid name, type counter|gauge|histogram|
 *     summary|untyped, at most one per name, before the family's first sample;
 *     HELP and TYPE come before the family's samples;
 *   - samples: metric name [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 *     [a-zA-Z_][a-zA-Z0-9_]* (no duplicates in one sample), label values
 *     quoted with only \\, \" and \n escapes, a float value (Go syntax:
 *     decimal, +Inf, -Inf, NaN) and an optional integer timestamp;
 *   - every family's lines form one uninterrupted group; no sample (name
 *     plus label set) appears twice;
 *   - counters (and a histogram's buckets, _count and _sum) are not negative
 *     nor NaN;
 *   - histograms: per label set, _bucket samples carry le, in strictly
 *     increasing le order, with non-decreasing counts; le="+Inf" present and
 *     equal to _count; _count and _sum present; no le on _sum/_count.
 */
#ifndef MESH_PROM_PARSE_H
#define MESH_PROM_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define MH_PROM_ERR_MAX 256

typedef struct mh_prom mh_prom_t;

/*
 * Parse text[0..len). 0 and *out set (free with mh_prom_free), or -1 with a
 * "line N: reason" message in err (if non-NULL).
 */
int mh_prom_parse(const char *text, size_t len, mh_prom_t **out, char *err, size_t err_size);

void mh_prom_free(mh_prom_t **p_p);

/* The family's TYPE ("counter", ...; "untyped" when samples had no TYPE), NULL if absent. */
const char *mh_prom_type(const mh_prom_t *p, const char *family);

/*
 * Samples named name (a full sample name, e.g. "x_bucket") whose labels
 * include every pair of match ("k=v,k2=v2"; NULL or "" matches all). Returns
 * their number; *sum (if non-NULL) gets the sum of their values.
 */
int mh_prom_find(const mh_prom_t *p, const char *name, const char *match, double *sum);

/* Sum of the values of the matching samples (0 when none). */
double mh_prom_sum(const mh_prom_t *p, const char *name, const char *match);

/*
 * Number of distinct values of label `label` among the samples named name
 * that match `match` (for "one series per service" checks).
 */
int mh_prom_label_values(const mh_prom_t *p, const char *name, const char *label,
                         const char *match);

/* Total samples parsed. */
size_t mh_prom_samples(const mh_prom_t *p);

#endif
