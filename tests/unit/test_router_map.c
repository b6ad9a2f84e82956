/*
 * test_router_map.c - the router's byte-string hash map (identities, ids).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "strmap.h"

typedef struct {
    char key[16];
    size_t len;
} entry_t;

static void test_binary_keys(void **state)
{
    (void)state;
    router_map_t *m = router_map_new();
    assert_non_null(m);
    /* ZeroMQ auto identities start with a NUL byte. */
    unsigned char a[5] = {0, 1, 2, 3, 4};
    unsigned char b[5] = {0, 1, 2, 3, 5};
    int va = 1, vb = 2;
    assert_int_equal(router_map_put(m, a, 5, &va), 0);
    assert_int_equal(router_map_put(m, b, 5, &vb), 0);
    assert_int_equal(router_map_put(m, a, 5, &vb), MESH_EINVAL);
    assert_ptr_equal(router_map_get(m, a, 5), &va);
    assert_ptr_equal(router_map_get(m, b, 5), &vb);
    assert_null(router_map_get(m, a, 4));
    assert_ptr_equal(router_map_del(m, a, 5), &va);
    assert_null(router_map_get(m, a, 5));
    assert_int_equal(router_map_count(m), 1);
    router_map_destroy(&m);
    assert_null(m);
}

static void test_many_with_deletes(void **state)
{
    (void)state;
    enum { N = 20000 };
    router_map_t *m = router_map_new();
    entry_t *e = calloc(N, sizeof(*e));
    for (int i = 0; i < N; i++) {
        e[i].len = (size_t)snprintf(e[i].key, sizeof(e[i].key), "req-%d", i);
        assert_int_equal(router_map_put(m, e[i].key, e[i].len, &e[i]), 0);
    }
    assert_int_equal(router_map_count(m), N);
    /* Delete a pseudo-random half; backward-shift must keep the rest findable. */
    for (int i = 0; i < N; i++)
        if ((i * 7919) % 3 == 0)
            assert_ptr_equal(router_map_del(m, e[i].key, e[i].len), &e[i]);
    for (int i = 0; i < N; i++) {
        void *v = router_map_get(m, e[i].key, e[i].len);
        if ((i * 7919) % 3 == 0)
            assert_null(v);
        else
            assert_ptr_equal(v, &e[i]);
    }
    size_t pos = 0, seen = 0;
    while (router_map_next(m, &pos))
        seen++;
    assert_int_equal(seen, router_map_count(m));
    router_map_destroy(&m);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_keys),
        cmocka_unit_test(test_many_with_deletes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
