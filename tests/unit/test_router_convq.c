/*
 * test_router_convq.c - per-conversation ordering of turns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "convq.h"
#include "mesh/mesh_err.h"

static void test_fifo_per_conversation(void **state)
{
    (void)state;
    router_convq_t *q = router_convq_new(2);
    router_convq_item_t a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, b1 = {0};
    bool head;
    assert_int_equal(router_convq_push(q, "conv-a", &a1, &head), 0);
    assert_true(head);
    assert_int_equal(router_convq_push(q, "conv-a", &a2, &head), 0);
    assert_false(head);
    assert_int_equal(router_convq_push(q, "conv-b", &b1, &head), 0);
    assert_true(head); /* other conversations run in parallel */
    assert_int_equal(router_convq_push(q, "conv-a", &a3, &head), 0);
    assert_false(head);
    /* Two wait behind a1 already: the bound is 2. */
    assert_int_equal(router_convq_push(q, "conv-a", &a4, &head), MESH_EBUSY);
    assert_null(a4.conv);
    assert_int_equal(router_convq_count(q), 2);

    assert_true(router_convq_is_head(&a1));
    assert_false(router_convq_is_head(&a2));
    /* The head finishes: a2 is next, in arrival order. */
    assert_ptr_equal(router_convq_remove(q, &a1), &a2);
    assert_true(router_convq_is_head(&a2));
    /* A waiting one leaves (deadline): nobody new starts. */
    assert_null(router_convq_remove(q, &a3));
    assert_null(router_convq_remove(q, &a2));
    assert_int_equal(router_convq_count(q), 1);
    assert_null(router_convq_remove(q, &b1));
    assert_int_equal(router_convq_count(q), 0);
    /* An idle conversation was freed; it can start again. */
    assert_int_equal(router_convq_push(q, "conv-a", &a4, &head), 0);
    assert_true(head);
    router_convq_destroy(&q);
    assert_null(q);
}

static void test_zero_waiting_and_bad_ids(void **state)
{
    (void)state;
    router_convq_t *q = router_convq_new(0);
    router_convq_item_t a = {0}, b = {0};
    bool head;
    assert_int_equal(router_convq_push(q, "c", &a, &head), 0);
    assert_int_equal(router_convq_push(q, "c", &b, &head), MESH_EBUSY);
    assert_int_equal(router_convq_push(q, "", &b, &head), MESH_EINVAL);
    router_convq_destroy(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_per_conversation),
        cmocka_unit_test(test_zero_waiting_and_bad_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
