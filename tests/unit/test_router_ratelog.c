/*
 * test_router_ratelog.c - the rate limit on log lines about bad peer input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelog.h"

static void test_burst_then_count(void **state)
{
    (void)state;
    router_ratelog_t rl = {0};
    uint64_t suppressed = 99;
    uint64_t t = 1000;
    for (int i = 0; i < ROUTER_RATELOG_BURST; i++) {
        assert_true(router_ratelog_allow(&rl, t, &suppressed));
        assert_int_equal(suppressed, 0);
    }
    /* A flood within the window is counted, not logged. */
    for (int i = 0; i < 500; i++)
        assert_false(router_ratelog_allow(&rl, t + 10, NULL));
    assert_false(router_ratelog_allow(&rl, t + ROUTER_RATELOG_WINDOW_MS - 1, NULL));
    /* Next window: one line again, reporting what was dropped. */
    assert_true(router_ratelog_allow(&rl, t + ROUTER_RATELOG_WINDOW_MS, &suppressed));
    assert_int_equal(suppressed, 501);
    assert_true(router_ratelog_allow(&rl, t + ROUTER_RATELOG_WINDOW_MS + 1, &suppressed));
    assert_int_equal(suppressed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
