/*
 * test_gateway_drain.c - SIGTERM on the gateway: readiness goes false first.
 *
 * With MESH_DRAIN_DELAY_MS set (Kubernetes: the time a Service needs to stop
 * routing to a pod that is no longer ready), a gateway that gets SIGTERM
 * answers /readyz with 503 "draining" at once, keeps answering turns for the
 * delay, then closes its listener, finishes what is open and exits 0.
 * Without the delay it closes the listener at once (the default, so a local
 * Ctrl-C is immediate). Whole mesh, rules backend, real Redis.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"

#define T_DELAY_MS   1500
#define T_TIMEOUT_MS 10000

static void test_drain_delay(void **state)
{
    (void)state;
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    /* The delay is part of the drain grace (MESH_DRAIN_MS, 2 s in the harness). */
    o.env[MH_GATEWAY][0] = "MESH_DRAIN_DELAY_MS=1500";
    o.env[MH_GATEWAY][1] = "MESH_DRAIN_MS=10000";
    mh_mesh_t *m = mh_mesh_start(&o);
    assert_non_null(m);
    char url[256];
    snprintf(url, sizeof(url), "%s/readyz", mh_mesh_url(m));
    mh_http_resp_t r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(mh_http_get(url, &r), 0);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);

    mh_proc_t *gw = mh_mesh_proc(m, MH_GATEWAY, 0);
    uint64_t t0 = mh_now_ms();
    assert_int_equal(mh_proc_signal(gw, SIGTERM), 0);
    /* Readiness goes false first (polled with a bound, never slept on). */
    long status = 0;
    while (mh_now_ms() - t0 < T_TIMEOUT_MS) {
        memset(&r, 0, sizeof(r));
        if (mh_http_get(url, &r) == 0)
            status = r.status;
        bool draining = status == 503 && mh_json_error_code(r.json) != NULL &&
                        strcmp(mh_json_error_code(r.json), "draining") == 0;
        mh_http_resp_clear(&r);
        if (draining)
            break;
    }
    assert_int_equal(status, 503);
    /* ... while the gateway still serves: a turn is answered during the delay. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(mh_post_message(m, "drain-1", "我的保单 P10023 的免赔额是多少？", "d1", &r),
                     0);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    assert_true(mh_now_ms() - t0 < T_DELAY_MS); /* both happened inside the delay */
    /* Then it stops on its own and exits 0. */
    assert_int_equal(mh_proc_wait_exit(gw, T_DELAY_MS + T_TIMEOUT_MS), 0);
    assert_true(mh_now_ms() - t0 >= T_DELAY_MS);
    assert_int_equal(mh_mesh_stop(&m), 0);
}

static void test_no_delay(void **state)
{
    (void)state;
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    mh_mesh_t *m = mh_mesh_start(&o);
    assert_non_null(m);
    mh_proc_t *gw = mh_mesh_proc(m, MH_GATEWAY, 0);
    uint64_t t0 = mh_now_ms();
    assert_int_equal(mh_proc_signal(gw, SIGTERM), 0);
    assert_int_equal(mh_proc_wait_exit(gw, T_TIMEOUT_MS), 0);
    assert_true(mh_now_ms() - t0 < T_DELAY_MS);
    assert_int_equal(mh_mesh_stop(&m), 0);
}

int main(void)
{
    if (mh_init("gateway_drain") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drain_delay),
        cmocka_unit_test(test_no_delay),
    };
    return mh_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
