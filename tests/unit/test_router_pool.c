/*
 * test_router_pool.c - worker pools: selection by free capacity, LRU ties,
 * queue order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service_pool.h"

static router_worker_t *worker(uint32_t capacity)
{
    router_worker_t *w = calloc(1, sizeof(*w));
    w->capacity = capacity;
    router_list_init(&w->reqs);
    return w;
}

static void test_most_free_capacity(void **state)
{
    (void)state;
    router_pool_t *p = router_pool_new("tools", 5, 0);
    router_worker_t *a = worker(1), *b = worker(3);
    assert_int_equal(router_pool_add_worker(p, a), 0);
    assert_int_equal(router_pool_add_worker(p, b), 0);
    assert_int_equal(router_pool_capacity(p), 4);
    /* b has 3 free, a has 1. */
    router_worker_t *w = router_pool_pick(p);
    assert_ptr_equal(w, b);
    router_pool_mark_used(p, w);
    assert_ptr_equal(router_pool_pick(p), b); /* 2 vs 1 */
    router_pool_mark_used(p, b);
    /* 1 vs 1: a was never used, so a is least recently used. */
    assert_ptr_equal(router_pool_pick(p), a);
    router_pool_mark_used(p, a);
    assert_ptr_equal(router_pool_pick(p), b);
    router_pool_mark_used(p, b);
    assert_int_equal(router_pool_free_slots(p), 0);
    assert_null(router_pool_pick(p)); /* all full */
    router_pool_release(a);
    assert_ptr_equal(router_pool_pick(p), a);
    router_pool_remove_worker(p, a, 10);
    router_pool_remove_worker(p, b, 20);
    assert_int_equal(p->n_workers, 0);
    assert_int_equal(p->empty_since, 20);
    router_pool_destroy(&p);
    free(a);
    free(b);
}

static void test_lru_round_robin(void **state)
{
    (void)state;
    router_pool_t *p = router_pool_new("llm", 3, 0);
    router_worker_t *w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = worker(10);
        router_pool_add_worker(p, w[i]);
    }
    /* Equal workers: each dispatch + completion rotates through all of them. */
    int hits[3] = {0};
    for (int round = 0; round < 9; round++) {
        router_worker_t *x = router_pool_pick(p);
        router_pool_mark_used(p, x);
        router_pool_release(x);
        for (int i = 0; i < 3; i++)
            if (x == w[i])
                hits[i]++;
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(hits[i], 3);
    /* Removing a middle worker keeps indices consistent. */
    router_pool_remove_worker(p, w[0], 1);
    assert_int_equal(p->n_workers, 2);
    for (size_t i = 0; i < p->n_workers; i++)
        assert_int_equal(p->workers[i]->pool_idx, i);
    router_pool_destroy(&p);
    for (int i = 0; i < 3; i++)
        free(w[i]);
}

static void test_queue_order(void **state)
{
    (void)state;
    router_pool_t *p = router_pool_new("memory", 6, 0);
    router_list_t n[4];
    for (int i = 0; i < 4; i++)
        router_list_init(&n[i]);
    router_pool_enqueue(p, &n[0]);
    router_pool_enqueue(p, &n[1]);
    router_pool_enqueue(p, &n[2]);
    router_pool_enqueue_front(p, &n[3]); /* a retry goes first */
    assert_int_equal(p->queued, 4);
    router_pool_unqueue(p, &n[1]);
    router_pool_unqueue(p, &n[1]); /* twice: no-op */
    assert_int_equal(p->queued, 3);
    assert_ptr_equal(router_pool_dequeue(p), &n[3]);
    assert_ptr_equal(router_pool_dequeue(p), &n[0]);
    assert_ptr_equal(router_pool_dequeue(p), &n[2]);
    assert_null(router_pool_dequeue(p));
    assert_int_equal(p->queued, 0);
    router_pool_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_most_free_capacity),
        cmocka_unit_test(test_lru_round_robin),
        cmocka_unit_test(test_queue_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
