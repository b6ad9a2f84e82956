/*
 * test_zsock.c - every socket leaves mesh_zsock_new with its limits set.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zmq.h>

#include <cmocka.h>

#include "mesh/mesh_limits.h"
#include "mesh/mesh_zsock.h"

static int get_int(void *sock, int opt)
{
    int v = -12345;
    size_t len = sizeof(v);
    assert_int_equal(zmq_getsockopt(sock, opt, &v, &len), 0);
    return v;
}

static int64_t get_i64(void *sock, int opt)
{
    int64_t v = -12345;
    size_t len = sizeof(v);
    assert_int_equal(zmq_getsockopt(sock, opt, &v, &len), 0);
    return v;
}

static void test_defaults(void **state)
{
    mesh_zsock_opts_t o;
    memset(&o, 0x7f, sizeof(o));
    mesh_zsock_opts_default(&o);
    assert_int_equal(o.linger_ms, 200);
    assert_int_equal(o.max_msg_size, MESH_MAX_MSG_BYTES_DEFAULT);
    assert_int_equal(o.sndhwm, 10000);
    assert_int_equal(o.rcvhwm, 10000);
    mesh_zsock_opts_default(NULL); /* no crash */
}

static void test_null_opts_apply_defaults(void **state)
{
    void *ctx = zmq_ctx_new();
    void *s = mesh_zsock_new(ctx, ZMQ_DEALER, NULL);
    assert_non_null(s);
    assert_int_equal(get_int(s, ZMQ_LINGER), 200);
    assert_int_equal(get_i64(s, ZMQ_MAXMSGSIZE), MESH_MAX_MSG_BYTES_DEFAULT);
    assert_int_equal(get_int(s, ZMQ_SNDHWM), 10000);
    assert_int_equal(get_int(s, ZMQ_RCVHWM), 10000);
    assert_int_equal(get_int(s, ZMQ_IMMEDIATE), 0);
    mesh_zsock_destroy(&s);
    assert_null(s);
    zmq_ctx_term(ctx);
}

static void test_custom_opts(void **state)
{
    void *ctx = zmq_ctx_new();
    mesh_zsock_opts_t o = {.linger_ms = 0, .max_msg_size = 4096, .sndhwm = 7, .rcvhwm = 9};
    void *s = mesh_zsock_new(ctx, ZMQ_ROUTER, &o);
    assert_non_null(s);
    assert_int_equal(get_int(s, ZMQ_LINGER), 0);
    assert_int_equal(get_i64(s, ZMQ_MAXMSGSIZE), 4096);
    assert_int_equal(get_int(s, ZMQ_SNDHWM), 7);
    assert_int_equal(get_int(s, ZMQ_RCVHWM), 9);
    mesh_zsock_destroy(&s);
    zmq_ctx_term(ctx);
}

/* ROUTER_MANDATORY: a send to an identity nobody has fails instead of vanishing. */
static void test_router_mandatory(void **state)
{
    void *ctx = zmq_ctx_new();
    void *r = mesh_zsock_new(ctx, ZMQ_ROUTER, NULL);
    assert_non_null(r);
    assert_int_equal(zmq_bind(r, "inproc://zsock-mandatory"), 0);
    int rc = zmq_send(r, "nobody", 6, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    assert_int_equal(rc, -1);
    assert_int_equal(errno, EHOSTUNREACH);
    mesh_zsock_destroy(&r);
    zmq_ctx_term(ctx);
}

/* Values that would switch a limit off are refused. */
static void test_invalid(void **state)
{
    void *ctx = zmq_ctx_new();
    mesh_zsock_opts_t bad[] = {
        {.linger_ms = -1, .max_msg_size = 10, .sndhwm = 1, .rcvhwm = 1},
        {.linger_ms = 0, .max_msg_size = -1, .sndhwm = 1, .rcvhwm = 1},
        {.linger_ms = 0, .max_msg_size = 0, .sndhwm = 1, .rcvhwm = 1},
        {.linger_ms = 0, .max_msg_size = 10, .sndhwm = 0, .rcvhwm = 1},
        {.linger_ms = 0, .max_msg_size = 10, .sndhwm = 1, .rcvhwm = 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_null(mesh_zsock_new(ctx, ZMQ_DEALER, &bad[i]));
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_null(mesh_zsock_new(NULL, ZMQ_DEALER, NULL));
    assert_int_equal(errno, EINVAL);
    assert_null(mesh_zsock_new(ctx, 12345, NULL)); /* bad type: zmq's own error */
    void *none = NULL;
    mesh_zsock_destroy(&none);
    mesh_zsock_destroy(NULL);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),    cmocka_unit_test(test_null_opts_apply_defaults),
        cmocka_unit_test(test_custom_opts), cmocka_unit_test(test_router_mandatory),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
