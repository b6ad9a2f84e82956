/*
 * heartbeat.c - liveness, heartbeat and reconnect backoff (mesh_heartbeat.h).
 *
 * Pure arithmetic on caller-supplied times. A clock that goes backwards (an
 * injected fake, or a time taken before the last event was recorded) counts
 * as no time elapsed, never as a huge unsigned difference.
 */
#include "mesh/mesh_heartbeat.h"

#include <uv.h>

#define NS_PER_MS 1000000u

static uint64_t elapsed(uint64_t since, uint64_t now)
{
    return now > since ? now - since : 0;
}

void mesh_hb_init(mesh_hb_t *hb, uint64_t interval_ms, uint32_t liveness, uint64_t backoff_min_ms,
                  uint64_t backoff_max_ms, uint64_t now)
{
    /* Out-of-contract values are clamped to the nearest sane one: a zero
     * interval or liveness would declare every peer dead at once. */
    hb->interval_ms = interval_ms > 0 ? interval_ms : 1;
    hb->liveness = liveness > 0 ? liveness : 1;
    hb->backoff_min_ms = backoff_min_ms > 0 ? backoff_min_ms : 1;
    hb->backoff_max_ms = backoff_max_ms >= hb->backoff_min_ms ? backoff_max_ms : hb->backoff_min_ms;
    hb->last_recv_ms = now;
    hb->last_send_ms = now;
    hb->backoff_ms = hb->backoff_min_ms;
}

void mesh_hb_on_traffic(mesh_hb_t *hb, uint64_t now)
{
    hb->last_recv_ms = now;
}

void mesh_hb_on_sent(mesh_hb_t *hb, uint64_t now)
{
    hb->last_send_ms = now;
}

bool mesh_hb_send_due(const mesh_hb_t *hb, uint64_t now)
{
    return elapsed(hb->last_send_ms, now) >= hb->interval_ms;
}

bool mesh_hb_peer_dead(const mesh_hb_t *hb, uint64_t now)
{
    return elapsed(hb->last_recv_ms, now) >= (uint64_t)hb->liveness * hb->interval_ms;
}

uint64_t mesh_hb_next_backoff(mesh_hb_t *hb)
{
    uint64_t delay = hb->backoff_ms;
    /* Double, capped; comparing with half the cap first cannot overflow. */
    if (hb->backoff_ms > hb->backoff_max_ms / 2)
        hb->backoff_ms = hb->backoff_max_ms;
    else
        hb->backoff_ms *= 2;
    return delay;
}

void mesh_hb_reset_backoff(mesh_hb_t *hb)
{
    hb->backoff_ms = hb->backoff_min_ms;
}

uint64_t mesh_clock_monotonic_ms(void *arg)
{
    (void)arg;
    return uv_hrtime() / NS_PER_MS;
}
