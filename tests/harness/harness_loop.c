/*
 * harness_loop.c - a private uv loop for unit tests that drive libmesh or a
 * service's core directly: a repeating tick timer wakes the loop so that a
 * condition and its deadline are checked even while nothing else happens.
 * The tick is unref'd between waits, so it never keeps the loop alive by
 * itself.
 */
#include <stdbool.h>
#include <stdint.h>

#include "mesh/mesh_redis.h"
#include "mesh_harness.h"

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

int mh_loop_init(mh_loop_t *l, uint64_t tick_ms)
{
    if (uv_loop_init(&l->loop) != 0)
        return -1;
    uv_timer_init(&l->loop, &l->tick);
    uv_timer_start(&l->tick, on_tick, tick_ms, tick_ms);
    uv_unref((uv_handle_t *)&l->tick);
    return 0;
}

bool mh_loop_run_until(mh_loop_t *l, mh_cond_fn cond, void *arg, uint64_t timeout_ms)
{
    uint64_t deadline = mh_now_ms() + timeout_ms;
    uv_ref((uv_handle_t *)&l->tick);
    bool ok;
    while (!(ok = cond(arg)) && mh_now_ms() < deadline)
        uv_run(&l->loop, UV_RUN_ONCE);
    uv_unref((uv_handle_t *)&l->tick);
    return ok;
}

int mh_loop_close(mh_loop_t *l)
{
    uv_close((uv_handle_t *)&l->tick, NULL);
    /* Every other handle must be closed by now: the loop then closes cleanly. */
    uv_run(&l->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&l->loop) == 0 ? 0 : -1;
}

bool mh_cond_redis_up(void *redis)
{
    return mesh_redis_up(redis);
}

bool mh_cond_redis_down(void *redis)
{
    return !mesh_redis_up(redis);
}
