/*
 * lg_hist.c - the log-linear histogram of lg_hist.h.
 */
#include "lg_hist.h"

#include <string.h>

#define SUB_COUNT  (1u << LG_HIST_SUB_BITS)       /* exact range: [0, SUB_COUNT) */
#define HALF_COUNT (1u << (LG_HIST_SUB_BITS - 1)) /* buckets per power of two above it */

void lg_hist_init(lg_hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min_us = UINT64_MAX;
}

static int msb64(uint64_t v)
{
    return 63 - __builtin_clzll(v);
}

uint32_t lg_hist_index(uint64_t us)
{
    if (us < SUB_COUNT) {
        return (uint32_t)us;
    }
    /* e >= 1: the value's top LG_HIST_SUB_BITS bits pick the bucket */
    uint32_t e = (uint32_t)(msb64(us) - LG_HIST_SUB_BITS + 1);
    uint32_t sub = (uint32_t)(us >> e); /* in [HALF_COUNT, SUB_COUNT) */
    uint32_t idx = e * HALF_COUNT + sub;
    return idx < LG_HIST_BUCKETS ? idx : LG_HIST_BUCKETS - 1;
}

uint64_t lg_hist_bucket_high(uint32_t index)
{
    if (index < SUB_COUNT) {
        return index;
    }
    uint32_t e = index / HALF_COUNT - 1;
    uint64_t sub = index - e * HALF_COUNT;
    return ((sub + 1) << e) - 1;
}

void lg_hist_record(lg_hist_t *h, uint64_t us)
{
    h->counts[lg_hist_index(us)]++;
    h->total++;
    h->sum_us += (double)us;
    if (us < h->min_us) {
        h->min_us = us;
    }
    if (us > h->max_us) {
        h->max_us = us;
    }
}

uint64_t lg_hist_quantile(const lg_hist_t *h, double q)
{
    if (h->total == 0) {
        return 0;
    }
    if (q <= 0.0) {
        return h->min_us;
    }
    /* the rank of the q-th value, 1-based, rounded up as HdrHistogram does */
    uint64_t rank = (uint64_t)(q * (double)h->total + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > h->total) {
        rank = h->total;
    }
    uint64_t seen = 0;
    for (uint32_t i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t high = lg_hist_bucket_high(i);
            return high < h->max_us ? high : h->max_us;
        }
    }
    return h->max_us;
}

double lg_hist_mean(const lg_hist_t *h)
{
    return h->total > 0 ? h->sum_us / (double)h->total : 0.0;
}
