/*
 * lg_hist.h - a log-linear latency histogram (the HdrHistogram idea, small).
 *
 * Values are microseconds. Below 2^LG_HIST_SUB_BITS they are counted
 * exactly; above, each power-of-two range is split into 2^(LG_HIST_SUB_BITS-1)
 * linear buckets, so a reported percentile is within 1/64 (1.6 %) of the
 * true value whatever its magnitude. Recording is O(1) with no allocation.
 */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB_BITS 7
#define LG_HIST_MAX_EXP  40 /* values up to ~2^46 us: far beyond any timeout */
#define LG_HIST_BUCKETS  ((LG_HIST_MAX_EXP + 2) << (LG_HIST_SUB_BITS - 1))

typedef struct {
    uint64_t counts[LG_HIST_BUCKETS];
    uint64_t total;
    uint64_t min_us;
    uint64_t max_us;
    double sum_us;
} lg_hist_t;

void lg_hist_init(lg_hist_t *h);
void lg_hist_record(lg_hist_t *h, uint64_t us);
/* Value at quantile q in [0, 1] (highest value of its bucket, capped by max). 0 when empty. */
uint64_t lg_hist_quantile(const lg_hist_t *h, double q);
double lg_hist_mean(const lg_hist_t *h);

/* Bucket index of a value, and the highest value a bucket holds (exposed for tests). */
uint32_t lg_hist_index(uint64_t us);
uint64_t lg_hist_bucket_high(uint32_t index);

#endif
