/*
 * test_router_heap.c - the router's deadline min-heap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "heap.h"

typedef struct {
    int id;
    router_heap_node_t node;
} item_t;

static void check_invariant(const router_heap_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        assert_int_equal(h->v[i]->idx, i);
        if (i > 0)
            assert_true(h->v[(i - 1) / 2]->key <= h->v[i]->key);
    }
}

static void test_pop_order(void **state)
{
    (void)state;
    router_heap_t h;
    router_heap_init(&h);
    uint64_t keys[] = {50, 10, 40, 20, 30, 10, 0, 99};
    item_t items[8];
    for (int i = 0; i < 8; i++) {
        items[i].id = i;
        router_heap_node_init(&items[i].node);
        assert_int_equal(router_heap_push(&h, &items[i].node, keys[i]), 0);
        check_invariant(&h);
    }
    assert_int_equal(router_heap_size(&h), 8);
    uint64_t last = 0;
    int tie_first = -1;
    for (int i = 0; i < 8; i++) {
        router_heap_node_t *n = router_heap_pop(&h);
        assert_non_null(n);
        assert_false(router_heap_contains(n));
        assert_true(n->key >= last);
        last = n->key;
        item_t *it = ROUTER_CONTAINER_OF(n, item_t, node);
        /* Equal keys come out in insertion order: item 1 before item 5. */
        if (n->key == 10 && tie_first < 0)
            tie_first = it->id;
    }
    assert_int_equal(tie_first, 1);
    assert_null(router_heap_pop(&h));
    router_heap_free(&h);
}

static void test_remove_and_update(void **state)
{
    (void)state;
    router_heap_t h;
    router_heap_init(&h);
    item_t items[100];
    for (int i = 0; i < 100; i++) {
        router_heap_node_init(&items[i].node);
        items[i].id = i;
        router_heap_push(&h, &items[i].node, (uint64_t)((i * 37) % 101));
    }
    /* Remove every third, move others around. */
    for (int i = 0; i < 100; i += 3)
        router_heap_remove(&h, &items[i].node);
    router_heap_remove(&h, &items[0].node); /* removing twice is a no-op */
    check_invariant(&h);
    for (int i = 1; i < 100; i += 3)
        router_heap_update(&h, &items[i].node, 1000 + (uint64_t)i);
    for (int i = 2; i < 100; i += 3)
        router_heap_update(&h, &items[i].node, 0);
    check_invariant(&h);
    /* The zero keys come first, then the rest in order. */
    router_heap_node_t *top = router_heap_peek(&h);
    assert_int_equal(top->key, 0);
    uint64_t last = 0;
    size_t count = 0;
    router_heap_node_t *n;
    while ((n = router_heap_pop(&h)) != NULL) {
        assert_true(n->key >= last);
        last = n->key;
        count++;
    }
    assert_int_equal(count, 100 - 34);
    router_heap_free(&h);
}

static void test_random_against_sort(void **state)
{
    (void)state;
    enum { N = 5000 };
    router_heap_t h;
    router_heap_init(&h);
    item_t *items = calloc(N, sizeof(*items));
    srand(7);
    for (int i = 0; i < N; i++) {
        router_heap_node_init(&items[i].node);
        router_heap_push(&h, &items[i].node, (uint64_t)(rand() % 1000));
    }
    for (int i = 0; i < N; i += 2)
        router_heap_update(&h, &items[i].node, (uint64_t)(rand() % 1000));
    check_invariant(&h);
    uint64_t last = 0;
    for (int i = 0; i < N; i++) {
        router_heap_node_t *n = router_heap_pop(&h);
        assert_non_null(n);
        assert_true(n->key >= last);
        last = n->key;
    }
    router_heap_free(&h);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pop_order),
        cmocka_unit_test(test_remove_and_update),
        cmocka_unit_test(test_random_against_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
