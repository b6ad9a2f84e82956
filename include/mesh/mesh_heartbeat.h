/*
 * mesh_heartbeat.h - liveness, heartbeat and reconnect backoff, clock injected.
 *
 * A pure state machine (no I/O, no timers): the caller feeds it the current
 * time in milliseconds and asks what to do. Shared by workers, the gateway's
 * client side and the router, so every hop uses the same rules:
 *
 *   - any inbound traffic from the peer resets liveness (mesh_hb_on_traffic);
 *   - a heartbeat is due when nothing was sent for interval_ms
 *     (mesh_hb_on_sent records outbound traffic);
 *   - the peer is dead when nothing arrived for liveness * interval_ms;
 *   - reconnect delays double from backoff_min_ms to backoff_max_ms and reset
 *     to the minimum after a successful exchange.
 */
#ifndef MESH_HEARTBEAT_H
#define MESH_HEARTBEAT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t interval_ms;
    uint32_t liveness;
    uint64_t backoff_min_ms;
    uint64_t backoff_max_ms;
    /* state */
    uint64_t last_recv_ms;
    uint64_t last_send_ms;
    uint64_t backoff_ms; /* next reconnect delay */
} mesh_hb_t;

/* Initialise at time now. interval_ms > 0, liveness >= 1, 0 < min <= max. */
void mesh_hb_init(mesh_hb_t *hb, uint64_t interval_ms, uint32_t liveness, uint64_t backoff_min_ms,
                  uint64_t backoff_max_ms, uint64_t now);
void mesh_hb_on_traffic(mesh_hb_t *hb, uint64_t now);
void mesh_hb_on_sent(mesh_hb_t *hb, uint64_t now);
bool mesh_hb_send_due(const mesh_hb_t *hb, uint64_t now);
bool mesh_hb_peer_dead(const mesh_hb_t *hb, uint64_t now);
/* Return the delay to wait before the next reconnect and double the next one (capped). */
uint64_t mesh_hb_next_backoff(mesh_hb_t *hb);
/* A successful exchange after reconnect: delays start from the minimum again. */
void mesh_hb_reset_backoff(mesh_hb_t *hb);

/* Injectable clock: returns milliseconds on a monotonic scale. */
typedef uint64_t (*mesh_clock_fn)(void *arg);
/* The default clock: uv_hrtime()/1e6. */
uint64_t mesh_clock_monotonic_ms(void *arg);

#endif
