/*
 * test_memory_fixture.h - the fixture of the memory unit tests that drive
 * memory_ops_call (claims, handoff): a real redis-server (one per test
 * executable), a mesh_redis + memory_ops on a private uv loop, and a
 * blocking hiredis connection to inspect what is stored.
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
#include "mesh/mesh_redis.h"
#include "mesh_harness.h"

#define TF_TTL_S            1000
#define TF_HISTORY_MAX      1000
#define TF_WAIT_MS          5000
#define TF_TICK_MS          5
#define TF_REDIS_TIMEOUT_MS 500

static mh_redis_t *s_tf_redis;

typedef struct {
    uv_loop_t loop;
    uv_timer_t tick;
    mesh_redis_t *r;
    memory_ops_t *ops;
    redisContext *sync;
} tf_t;

typedef struct {
    int calls;
    int status;
    char err[MESH_ERRMSG_MAX + 1];
    json_t *data;
    bool sync; /* refused or answered by memory_ops_call itself */
} tf_res_t;

static void tf_on_tick(uv_timer_t *t)
{
    (void)t;
}

typedef bool (*tf_cond_fn)(void *arg);

static bool tf_run_until(tf_t *fx, tf_cond_fn cond, void *arg, uint64_t timeout_ms)
{
    uint64_t deadline = mh_now_ms() + timeout_ms;
    uv_ref((uv_handle_t *)&fx->tick);
    bool ok;
    while (!(ok = cond(arg)) && mh_now_ms() < deadline)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_unref((uv_handle_t *)&fx->tick);
    return ok;
}

static bool tf_cond_up(void *arg)
{
    return mesh_redis_up(((tf_t *)arg)->r);
}

static bool tf_cond_down(void *arg)
{
    return !mesh_redis_up(((tf_t *)arg)->r);
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

static int tf_setup(void **state)
{
    tf_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL || uv_loop_init(&fx->loop) != 0)
        return -1;
    uv_timer_init(&fx->loop, &fx->tick);
    uv_timer_start(&fx->tick, tf_on_tick, TF_TICK_MS, TF_TICK_MS);
    uv_unref((uv_handle_t *)&fx->tick);
    fx->sync = redisConnect("127.0.0.1", mh_redis_port(s_tf_redis));
    if (fx->sync == NULL || fx->sync->err)
        return -1;
    freeReplyObject(redisCommand(fx->sync, "FLUSHALL"));
    mesh_redis_opts_t o = {
        .host = "127.0.0.1",
        .port = mh_redis_port(s_tf_redis),
        .timeout_ms = TF_REDIS_TIMEOUT_MS,
        .reconnect_min_ms = 10,
        .reconnect_max_ms = 100,
    };
    fx->r = mesh_redis_new(&fx->loop, &o, tf_on_state, fx);
    memory_ops_cfg_t cfg = {.ttl_s = TF_TTL_S, .history_max = TF_HISTORY_MAX};
    fx->ops = fx->r != NULL ? memory_ops_new(fx->r, &cfg) : NULL;
    if (fx->ops == NULL || mesh_redis_start(fx->r) != 0 ||
        !tf_run_until(fx, tf_cond_up, fx, TF_WAIT_MS) ||
        !tf_run_until(fx, tf_cond_loaded, fx, TF_WAIT_MS))
        return -1;
    *state = fx;
    return 0;
}

static int tf_teardown(void **state)
{
    tf_t *fx = *state;
    mesh_redis_destroy(&fx->r);
    memory_ops_destroy(&fx->ops);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&fx->loop);
    if (fx->sync != NULL)
        redisFree(fx->sync);
    free(fx);
    return rc == 0 ? 0 : -1;
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

/* Run op (conv and tenant may be NULL) with args as JSON text (NULL: none). */
static void tf_call(tf_t *fx, tf_res_t *res, const char *op, const char *conv, const char *tenant,
                    const char *args_json)
{
    memset(res, 0, sizeof *res);
    json_t *args = NULL;
    if (args_json != NULL) {
        json_error_t jerr;
        args = json_loads(args_json, 0, &jerr);
        if (args == NULL)
            fail_msg("bad test JSON: %s: %s", args_json, jerr.text);
    }
    memory_req_t req = {.op = op, .conv = conv, .tenant = tenant, .args = args};
    json_t *now = NULL;
    int rc = memory_ops_call(fx->ops, &req, tf_on_done, res, &now, res->err, sizeof res->err);
    json_decref(args);
    if (rc != 0 || now != NULL) {
        assert_int_equal(res->calls, 0);
        assert_true(rc == 0 || now == NULL);
        res->status = rc;
        res->data = now;
        res->sync = true;
        return;
    }
    assert_int_equal(res->calls, 0); /* never from inside the call */
    assert_true(tf_run_until(fx, tf_cond_done, res, TF_WAIT_MS));
    assert_int_equal(res->calls, 1);
}

/* tf_call that must succeed with status 0; returns the data (owned by res). */
static json_t *tf_ok(tf_t *fx, tf_res_t *res, const char *op, const char *conv, const char *tenant,
                     const char *args_json)
{
    tf_call(fx, res, op, conv, tenant, args_json);
    if (res->status != 0)
        fail_msg("%s failed: %d %s", op, res->status, res->err);
    assert_non_null(res->data);
    return res->data;
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

#endif
