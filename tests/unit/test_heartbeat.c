/*
 * test_heartbeat.c - liveness, heartbeat and backoff rules
 * (lib/mesh/heartbeat.c), table-driven against a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mesh/mesh_heartbeat.h"

typedef enum {
    EV_TRAFFIC, /* inbound traffic at t */
    EV_SENT,    /* outbound traffic at t */
    EV_CHECK,   /* expect send_due / peer_dead at t */
} ev_kind_t;

typedef struct {
    ev_kind_t kind;
    uint64_t t;
    bool send_due;
    bool dead;
} step_t;

typedef struct {
    const char *name;
    uint64_t interval;
    uint32_t liveness;
    step_t steps[12];
    size_t n;
} hb_case_t;

/* Start time far from 0 so nothing passes by accident of small numbers. */
#define T0 1000000

static const hb_case_t s_cases[] = {
    {"fresh link: nothing due, nobody dead",
     1000,
     3,
     {{EV_CHECK, T0, false, false}, {EV_CHECK, T0 + 999, false, false}},
     2},
    {"heartbeat due at exactly one interval of silence",
     1000,
     3,
     {{EV_CHECK, T0 + 999, false, false}, {EV_CHECK, T0 + 1000, true, false}},
     2},
    {"peer dead at exactly liveness*interval, not a ms before",
     1000,
     3,
     {{EV_CHECK, T0 + 2999, true, false}, {EV_CHECK, T0 + 3000, true, true}},
     2},
    {"any inbound traffic resets liveness",
     1000,
     3,
     {{EV_TRAFFIC, T0 + 2500, false, false},
      {EV_CHECK, T0 + 3000, true, false},
      {EV_CHECK, T0 + 5499, true, false},
      {EV_CHECK, T0 + 5500, true, true}},
     4},
    {"sending postpones the heartbeat (heartbeats only when idle)",
     1000,
     3,
     {{EV_SENT, T0 + 800, false, false},
      {EV_CHECK, T0 + 1000, false, false},
      {EV_CHECK, T0 + 1799, false, false},
      {EV_CHECK, T0 + 1800, true, false}},
     4},
    {"sending does not keep a silent peer alive",
     500,
     2,
     {{EV_SENT, T0 + 400, false, false},
      {EV_SENT, T0 + 900, false, false},
      {EV_CHECK, T0 + 1000, false, true}},
     3},
    {"liveness 1",
     100,
     1,
     {{EV_CHECK, T0 + 99, false, false}, {EV_CHECK, T0 + 100, true, true}},
     2},
    {"a clock behind the last event counts as no time",
     1000,
     3,
     {{EV_TRAFFIC, T0 + 5000, false, false},
      {EV_SENT, T0 + 5000, false, false},
      {EV_CHECK, T0 + 10, false, false}},
     3},
};

static void test_liveness_table(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(s_cases) / sizeof(s_cases[0]); c++) {
        const hb_case_t *hc = &s_cases[c];
        mesh_hb_t hb;
        mesh_hb_init(&hb, hc->interval, hc->liveness, 250, 8000, T0);
        for (size_t s = 0; s < hc->n; s++) {
            const step_t *st = &hc->steps[s];
            switch (st->kind) {
            case EV_TRAFFIC:
                mesh_hb_on_traffic(&hb, st->t);
                break;
            case EV_SENT:
                mesh_hb_on_sent(&hb, st->t);
                break;
            case EV_CHECK:
                if (mesh_hb_send_due(&hb, st->t) != st->send_due ||
                    mesh_hb_peer_dead(&hb, st->t) != st->dead) {
                    print_error("case '%s' step %zu at t0+%llu: due=%d dead=%d, want %d %d\n",
                                hc->name, s, (unsigned long long)(st->t - T0),
                                mesh_hb_send_due(&hb, st->t), mesh_hb_peer_dead(&hb, st->t),
                                st->send_due, st->dead);
                    fail();
                }
                break;
            }
        }
    }
}

typedef struct {
    uint64_t min, max;
    uint64_t want[8];
    size_t n;
} backoff_case_t;

static void test_backoff_table(void **state)
{
    (void)state;
    const backoff_case_t cases[] = {
        {250, 8000, {250, 500, 1000, 2000, 4000, 8000, 8000, 8000}, 8},
        {1000, 32000, {1000, 2000, 4000, 8000, 16000, 32000, 32000}, 7},
        {300, 1000, {300, 600, 1000, 1000}, 4}, /* cap not a power-of-two multiple */
        {5, 5, {5, 5, 5}, 3},                   /* min == max */
        {UINT64_MAX / 2 + 1, UINT64_MAX, {UINT64_MAX / 2 + 1, UINT64_MAX, UINT64_MAX}, 3},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        mesh_hb_t hb;
        mesh_hb_init(&hb, 1000, 3, cases[c].min, cases[c].max, 0);
        for (size_t k = 0; k < cases[c].n; k++) {
            uint64_t got = mesh_hb_next_backoff(&hb);
            if (got != cases[c].want[k]) {
                print_error("case %zu step %zu: %llu want %llu\n", c, k, (unsigned long long)got,
                            (unsigned long long)cases[c].want[k]);
                fail();
            }
        }
        /* a successful exchange starts over from the minimum */
        mesh_hb_reset_backoff(&hb);
        assert_int_equal(mesh_hb_next_backoff(&hb), cases[c].min);
    }
}

static void test_init_clamps(void **state)
{
    (void)state;
    mesh_hb_t hb;
    mesh_hb_init(&hb, 0, 0, 0, 0, 10);
    assert_true(hb.interval_ms >= 1);
    assert_true(hb.liveness >= 1);
    assert_true(hb.backoff_min_ms >= 1);
    assert_true(hb.backoff_max_ms >= hb.backoff_min_ms);
    assert_false(mesh_hb_peer_dead(&hb, 10));
    mesh_hb_init(&hb, 100, 3, 500, 100, 0); /* max below min: max becomes min */
    assert_int_equal(mesh_hb_next_backoff(&hb), 500);
    assert_int_equal(mesh_hb_next_backoff(&hb), 500);
}

static void test_monotonic_clock(void **state)
{
    (void)state;
    mesh_clock_fn clock = mesh_clock_monotonic_ms;
    uint64_t a = clock(NULL);
    uint64_t b = clock(NULL);
    assert_true(a > 0);
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_liveness_table),
        cmocka_unit_test(test_backoff_table),
        cmocka_unit_test(test_init_clamps),
        cmocka_unit_test(test_monotonic_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
