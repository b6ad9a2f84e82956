/*
 * ratelog.h - rate limit for repeated log lines about bad peer input.
 *
 * A peer that floods garbage must not flood the log: at most
 * ROUTER_RATELOG_BURST lines per ROUTER_RATELOG_WINDOW_MS per limiter; the
 * rest are counted and the count is reported with the next allowed line.
 */
#ifndef ROUTER_RATELOG_H
#define ROUTER_RATELOG_H

#include <stdbool.h>
#include <stdint.h>

#define ROUTER_RATELOG_BURST     10
#define ROUTER_RATELOG_WINDOW_MS 1000

typedef struct {
    uint64_t window_start;
    uint32_t in_window;
    uint64_t suppressed;
} router_ratelog_t;

/*
 * true when a line may be logged at time now; *suppressed (may be NULL)
 * receives how many lines were dropped since the last allowed one.
 */
bool router_ratelog_allow(router_ratelog_t *rl, uint64_t now, uint64_t *suppressed);

#endif
