/*
 * ratelog.c - see ratelog.h.
 */
#include "ratelog.h"

bool router_ratelog_allow(router_ratelog_t *rl, uint64_t now, uint64_t *suppressed)
{
    if (now - rl->window_start >= ROUTER_RATELOG_WINDOW_MS || now < rl->window_start) {
        rl->window_start = now;
        rl->in_window = 0;
    }
    if (rl->in_window >= ROUTER_RATELOG_BURST) {
        rl->suppressed++;
        return false;
    }
    rl->in_window++;
    if (suppressed)
        *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return true;
}
