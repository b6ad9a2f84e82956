/*
 * test_memory_fixture.h - the fixture of the memory unit tests that drive
 * memory_ops_call (claims, handoff): a real redis-server (one per test
 * executable), a mesh_redis + memory_ops on a private uv loop, and a
 * blocking hiredis connection to inspect what is stored.
 * test_memory_ops.c uses it too, with memory_ops_run.
 *
 * Header-only (static functions): each test executable includes it once.
 */
#ifndef TEST_MEMORY_FIXTURE_H
#define TEST_MEMORY_FIXTURE_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "memory_ops.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_redis.h"
#include "mesh_harness.h"

#define TF_TTL_S            1000
#define TF_HISTORY_MAX      1000
#define TF_WAIT_MS          5000
#define TF_TICK_MS          5
#define TF_REDIS_TIMEOUT_MS 500

static mh_redis_t *s_tf_redis;

typedef struct {
    mh_loop_t lp;
    mesh_redis_t *r;
    memory_ops_t *ops;
    redisContext *sync; /* inspection connection */
} tf_t;

typedef struct {
    int calls;
    int status;
    char err[MESH_ERRMSG_MAX + 1];
    json_t *data;
    bool sync; /* refused or answered by memory_ops_call / memory_ops_run itself */
} tf_res_t;

/* Redis seen down by the fixture's connection (kept for test_channel_memory.c). */
__attribute__((unused)) static bool tf_cond_down(void *arg)
{
    return mh_cond_redis_down(((tf_t *)arg)->r);
}

static bool tf_cond_loaded(void *arg)
{
    return memory_ops_scripts_loaded(((tf_t *)arg)->ops);
}

static void tf_on_state(mesh_redis_t *r, bool up, void *arg)
{
    tf_t *fx = arg;
    (void)r;
    if (up && fx->ops != NULL)
        memory_ops_redis_up(fx->ops);
}

/* Connect mesh_redis and memory_ops (history_max) and wait until up with scripts loaded. */
static bool tf_open(tf_t *fx, uint32_t history_max)
{
    mesh_redis_opts_t o = {
        .host = "127.0.0.1",
        .port = mh_redis_port(s_tf_redis),
        .timeout_ms = TF_REDIS_TIMEOUT_MS,
        .reconnect_min_ms = 10,
        .reconnect_max_ms = 100,
    };
    fx->r = mesh_redis_new(&fx->lp.loop, &o, tf_on_state, fx);
    memory_ops_cfg_t cfg = {.ttl_s = TF_TTL_S, .history_max = history_max};
    fx->ops = fx->r != NULL ? memory_ops_new(fx->r, &cfg) : NULL;
    return fx->ops != NULL && mesh_redis_start(fx->r) == 0 &&
           mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, TF_WAIT_MS) &&
           mh_loop_run_until(&fx->lp, tf_cond_loaded, fx, TF_WAIT_MS);
}

static int tf_setup(void **state)
{
    tf_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL || mh_loop_init(&fx->lp, TF_TICK_MS) != 0)
        return -1;
    fx->sync = redisConnect("127.0.0.1", mh_redis_port(s_tf_redis));
    if (fx->sync == NULL || fx->sync->err)
        return -1;
    freeReplyObject(redisCommand(fx->sync, "FLUSHALL"));
    if (!tf_open(fx, TF_HISTORY_MAX))
        return -1;
    *state = fx;
    return 0;
}

static int tf_teardown(void **state)
{
    tf_t *fx = *state;
    mesh_redis_destroy(&fx->r);
    memory_ops_destroy(&fx->ops);
    int rc = mh_loop_close(&fx->lp);
    if (fx->sync != NULL)
        redisFree(fx->sync);
    free(fx);
    return rc;
}

static int tf_group_setup(void **state)
{
    (void)state;
    s_tf_redis = mh_redis_start(0);
    return s_tf_redis != NULL ? 0 : -1;
}

static int tf_group_teardown(void **state)
{
    (void)state;
    mh_redis_destroy(&s_tf_redis);
    return 0;
}

static void tf_res_clear(tf_res_t *res)
{
    json_decref(res->data);
    memset(res, 0, sizeof *res);
}

static void tf_on_done(int status, const char *errmsg, const json_t *data, void *arg)
{
    tf_res_t *res = arg;
    res->calls++;
    res->status = status;
    if (errmsg != NULL)
        snprintf(res->err, sizeof res->err, "%s", errmsg);
    if (data != NULL)
        res->data = json_deep_copy(data);
}

static bool tf_cond_done(void *arg)
{
    return ((tf_res_t *)arg)->calls > 0;
}

/* args_json parsed (NULL: none); a bad test JSON fails the test. */
static json_t *tf_args(const char *args_json)
{
    if (args_json == NULL)
        return NULL;
    json_error_t jerr;
    json_t *args = json_loads(args_json, 0, &jerr);
    if (args == NULL)
        fail_msg("bad test JSON: %s: %s", args_json, jerr.text);
    return args;
}

/*
 * The rest of a call that returned rc (and *now): either refused or answered
 * by the call itself (done never called), or answered once by done on the loop.
 */
static void tf_finish(tf_t *fx, tf_res_t *res, int rc, json_t *now)
{
    if (rc != 0 || now != NULL) {
        assert_int_equal(res->calls, 0);
        assert_true(rc == 0 || now == NULL);
        res->status = rc;
        res->data = now;
        res->sync = true;
        return;
    }
    assert_int_equal(res->calls, 0); /* never from inside the call */
    assert_true(mh_loop_run_until(&fx->lp, tf_cond_done, res, TF_WAIT_MS));
    assert_int_equal(res->calls, 1);
}

/* Run op (conv and tenant may be NULL) with args as JSON text (NULL: none). */
static void tf_call(tf_t *fx, tf_res_t *res, const char *op, const char *conv, const char *tenant,
                    const char *args_json)
{
    memset(res, 0, sizeof *res);
    json_t *args = tf_args(args_json);
    memory_req_t req = {.op = op, .conv = conv, .tenant = tenant, .args = args};
    json_t *now = NULL;
    int rc = memory_ops_call(fx->ops, &req, tf_on_done, res, &now, res->err, sizeof res->err);
    json_decref(args);
    tf_finish(fx, res, rc, now);
}

/* res must hold a success with data (the result of op); returns the data (owned by res). */
static json_t *tf_data_ok(const tf_res_t *res, const char *op)
{
    if (res->status != 0)
        fail_msg("%s failed: %d %s", op, res->status, res->err);
    assert_non_null(res->data);
    return res->data;
}

/* tf_call that must succeed with status 0; returns the data (owned by res). */
__attribute__((unused)) static json_t *tf_ok(tf_t *fx, tf_res_t *res, const char *op,
                                             const char *conv, const char *tenant,
                                             const char *args_json)
{
    tf_call(fx, res, op, conv, tenant, args_json);
    return tf_data_ok(res, op);
}

static redisReply *tf_cmd(tf_t *fx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(fx->sync, fmt, ap);
    va_end(ap);
    assert_non_null(rep);
    return rep;
}

static long long tf_int(tf_t *fx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(fx->sync, fmt, ap);
    va_end(ap);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

static const char *tf_str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("key %s: not a string", key);
    return json_string_value(v);
}

/* Stop the server and wait until the fixture's connection sees it down. */
__attribute__((unused)) static void tf_redis_down(tf_t *fx)
{
    assert_true(mh_redis_stop(s_tf_redis) >= 0);
    assert_true(mh_loop_run_until(&fx->lp, mh_cond_redis_down, fx->r, TF_WAIT_MS));
}

/* Start it again, reconnect the inspection connection, wait until the fixture's is up. */
__attribute__((unused)) static void tf_redis_up_again(tf_t *fx)
{
    assert_int_equal(mh_redis_restart(s_tf_redis), 0);
    redisFree(fx->sync);
    fx->sync = redisConnect("127.0.0.1", mh_redis_port(s_tf_redis));
    assert_true(fx->sync != NULL && fx->sync->err == 0);
    assert_true(mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, TF_WAIT_MS));
}

/* A test run with the fixture's per-test setup and teardown. */
#define TF_TEST(fn) cmocka_unit_test_setup_teardown(fn, tf_setup, tf_teardown)

/* main() of a test executable "<name>": the group runs against one redis-server. */
#define TF_MAIN(name, tests) tf_main(name, tests, sizeof(tests) / sizeof((tests)[0]))

__attribute__((unused)) static int tf_main(const char *name, const struct CMUnitTest *tests,
                                           size_t n)
{
    char log_name[64], test_name[64];
    snprintf(log_name, sizeof log_name, "test_%s", name);
    snprintf(test_name, sizeof test_name, "unit_%s", name);
    mesh_log_init(log_name, MESH_LOG_ERROR);
    if (mh_init(test_name) != 0)
        return 1;
    int failed = _cmocka_run_group_tests(name, tests, n, tf_group_setup, tf_group_teardown);
    return mh_finish(failed);
}

#endif
