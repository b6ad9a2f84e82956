/*
 * test_memory_ops.c - the memory ops (services/memory/memory_ops.c) against a
 * real redis-server, driven directly on a uv loop (no router).
 *
 * The Redis data is inspected with a second, blocking hiredis connection, so
 * the tests check what is actually stored: one log entry per message, key
 * names with the hash tag, TTLs, trimming, command counts.
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "memory_args.h"
#include "memory_ops.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_redis.h"
#include "mesh_harness.h"

#define T_TTL_S            1000 /* MESH_CONV_TTL_S in these tests */
#define T_HISTORY_MAX      1000 /* MESH_HISTORY_MAX in these tests */
#define T_WAIT_MS          5000 /* bound on any wait */
#define T_TICK_MS          5
#define T_REDIS_TIMEOUT_MS 500

static mh_redis_t *s_redis;

/* ------------------------------------------------------------ fixture */

typedef struct {
    uv_loop_t loop;
    uv_timer_t tick;
    mesh_redis_t *r;
    memory_ops_t *ops;
    redisContext *sync; /* inspection connection */
} fx_t;

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

typedef bool (*cond_fn)(void *arg);

static bool run_until(fx_t *fx, cond_fn cond, void *arg, uint64_t timeout_ms)
{
    uint64_t deadline = mh_now_ms() + timeout_ms;
    uv_ref((uv_handle_t *)&fx->tick);
    bool ok;
    while (!(ok = cond(arg)) && mh_now_ms() < deadline)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_unref((uv_handle_t *)&fx->tick);
    return ok;
}

static bool cond_up(void *arg)
{
    return mesh_redis_up(((fx_t *)arg)->r);
}

static bool cond_down(void *arg)
{
    return !mesh_redis_up(((fx_t *)arg)->r);
}

static bool cond_loaded(void *arg)
{
    return memory_ops_scripts_loaded(((fx_t *)arg)->ops);
}

static void on_state(mesh_redis_t *r, bool up, void *arg)
{
    fx_t *fx = arg;
    (void)r;
    if (up && fx->ops != NULL)
        memory_ops_redis_up(fx->ops);
}

static redisReply *sync_cmd(fx_t *fx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(fx->sync, fmt, ap);
    va_end(ap);
    assert_non_null(rep);
    return rep;
}

static long long sync_int(fx_t *fx, const char *fmt, ...)
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

static void fx_open(fx_t *fx, uint32_t history_max)
{
    mesh_redis_opts_t o = {
        .host = "127.0.0.1",
        .port = mh_redis_port(s_redis),
        .timeout_ms = T_REDIS_TIMEOUT_MS,
        .reconnect_min_ms = 10,
        .reconnect_max_ms = 100,
    };
    fx->r = mesh_redis_new(&fx->loop, &o, on_state, fx);
    assert_non_null(fx->r);
    memory_ops_cfg_t cfg = {.ttl_s = T_TTL_S, .history_max = history_max};
    fx->ops = memory_ops_new(fx->r, &cfg);
    assert_non_null(fx->ops);
    assert_int_equal(mesh_redis_start(fx->r), 0);
    assert_true(run_until(fx, cond_up, fx, T_WAIT_MS));
    assert_true(run_until(fx, cond_loaded, fx, T_WAIT_MS));
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL || uv_loop_init(&fx->loop) != 0)
        return -1;
    uv_timer_init(&fx->loop, &fx->tick);
    uv_timer_start(&fx->tick, on_tick, T_TICK_MS, T_TICK_MS);
    uv_unref((uv_handle_t *)&fx->tick);
    fx->sync = redisConnect("127.0.0.1", mh_redis_port(s_redis));
    if (fx->sync == NULL || fx->sync->err)
        return -1;
    freeReplyObject(redisCommand(fx->sync, "FLUSHALL"));
    fx_open(fx, T_HISTORY_MAX);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
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

static int group_setup(void **state)
{
    (void)state;
    s_redis = mh_redis_start(0);
    return s_redis != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mh_redis_destroy(&s_redis);
    return 0;
}

/* ------------------------------------------------------------ running ops */

typedef struct {
    int calls;
    int status;
    char err[MESH_ERRMSG_MAX + 1];
    json_t *data;
    bool sync; /* refused by memory_ops_run itself */
} result_t;

static void result_clear(result_t *res)
{
    json_decref(res->data);
    memset(res, 0, sizeof *res);
}

static void on_done(int status, const char *errmsg, const json_t *data, void *arg)
{
    result_t *res = arg;
    res->calls++;
    res->status = status;
    if (errmsg != NULL)
        snprintf(res->err, sizeof res->err, "%s", errmsg);
    if (data != NULL)
        res->data = json_deep_copy(data);
}

static bool cond_done(void *arg)
{
    return ((result_t *)arg)->calls > 0;
}

/* Run op with args given as JSON text (NULL for none); res must be cleared by the caller. */
static void op(fx_t *fx, result_t *res, const char *name, const char *conv, const char *args_json)
{
    memset(res, 0, sizeof *res);
    json_t *args = NULL;
    if (args_json != NULL) {
        json_error_t jerr;
        args = json_loads(args_json, 0, &jerr);
        if (args == NULL)
            fail_msg("bad test JSON: %s: %s", args_json, jerr.text);
    }
    int rc = memory_ops_run(fx->ops, name, conv, args, on_done, res, res->err, sizeof res->err);
    json_decref(args);
    if (rc != 0) {
        assert_int_equal(res->calls, 0);
        res->status = rc;
        res->sync = true;
        return;
    }
    /* Never called back from inside memory_ops_run. */
    assert_int_equal(res->calls, 0);
    assert_true(run_until(fx, cond_done, res, T_WAIT_MS));
    assert_int_equal(res->calls, 1);
}

static json_t *op_ok(fx_t *fx, result_t *res, const char *name, const char *conv,
                     const char *args_json)
{
    op(fx, res, name, conv, args_json);
    if (res->status != 0)
        fail_msg("%s failed: %d %s", name, res->status, res->err);
    assert_non_null(res->data);
    return res->data;
}

static void begin(fx_t *fx, result_t *res, const char *conv, const char *mid, const char *owner,
                  const char *text)
{
    char args[512];
    snprintf(args, sizeof args, "{\"message_id\":\"%s\",\"owner\":\"%s\",\"text\":\"%s\"}", mid,
             owner, text);
    op(fx, res, "turn.begin", conv, args);
}

static void end(fx_t *fx, result_t *res, const char *conv, const char *mid, const char *owner,
                const char *reply_text)
{
    char args[1024];
    snprintf(args, sizeof args,
             "{\"message_id\":\"%s\",\"owner\":\"%s\","
             "\"messages\":[{\"role\":\"assistant\",\"text\":\"%s\",\"agent\":\"policy_qa\"}],"
             "\"state\":{\"agent\":\"policy_qa\"},"
             "\"reply\":{\"reply\":\"%s\",\"agent\":\"policy_qa\"}}",
             mid, owner, reply_text, reply_text);
    op(fx, res, "turn.end", conv, args);
}

/* One complete turn (begin + end) that must succeed. */
static void turn(fx_t *fx, const char *conv, const char *mid, const char *text)
{
    result_t res;
    begin(fx, &res, conv, mid, "owner-t", text);
    assert_int_equal(res.status, 0);
    result_clear(&res);
    end(fx, &res, conv, mid, "owner-t", "answer");
    assert_int_equal(res.status, 0);
    result_clear(&res);
}

static bool jbool(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    assert_true(json_is_boolean(v));
    return json_is_true(v);
}

static const char *jstr(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* ------------------------------------------------------------------ tests */

static void test_begin_appends_once(void **state)
{
    fx_t *fx = *state;
    result_t res;
    json_t *d = op_ok(fx, &res, "turn.begin", "c1",
                      "{\"message_id\":\"m1\",\"owner\":\"o1\",\"text\":\"你好, I crashed\"}");
    assert_false(jbool(d, "duplicate"));
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 1);
    json_t *m = json_array_get(hist, 0);
    assert_string_equal(jstr(m, "role"), "user");
    assert_string_equal(jstr(m, "text"), "你好, I crashed");
    assert_string_equal(jstr(m, "message_id"), "m1");
    assert_true(json_integer_value(json_object_get(m, "ts")) > 1600000000000LL);
    assert_true(json_is_object(json_object_get(d, "state")));
    assert_non_null(json_object_get(json_object_get(d, "state"), "created"));
    result_clear(&res);

    /* A retried begin (same message, same owner) does not append again. */
    d = op_ok(fx, &res, "turn.begin", "c1",
              "{\"message_id\":\"m1\",\"owner\":\"o1\",\"text\":\"你好, I crashed\"}");
    assert_false(jbool(d, "duplicate"));
    assert_int_equal(json_array_size(json_object_get(d, "history")), 1);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{c1}:log"), 1);

    /* Stored as compact JSON text. */
    redisReply *raw = sync_cmd(fx, "LINDEX mesh:{c1}:log 0");
    assert_int_equal(raw->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(raw->str, "{\"role\":\"user\",\"text\":"));
    assert_null(strstr(raw->str, "\": "));
    freeReplyObject(raw);
}

static void test_history_window(void **state)
{
    fx_t *fx = *state;
    char mid[16];
    for (int i = 0; i < 12; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        turn(fx, "cw", mid, "question");
    }
    /* 24 messages stored; begin asks for 5: the last 4 plus the new user message. */
    result_t res;
    json_t *d = op_ok(fx, &res, "turn.begin", "cw",
                      "{\"message_id\":\"last\",\"owner\":\"o\",\"text\":\"newest\",\"window\":5}");
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 5);
    assert_string_equal(jstr(json_array_get(hist, 4), "text"), "newest");
    assert_string_equal(jstr(json_array_get(hist, 3), "role"), "assistant");
    assert_string_equal(jstr(json_array_get(hist, 2), "message_id"), "m11");
    result_clear(&res);

    /* Default window is 20. */
    d = op_ok(fx, &res, "turn.begin", "cw",
              "{\"message_id\":\"last\",\"owner\":\"o\",\"text\":\"newest\"}");
    assert_int_equal(json_array_size(json_object_get(d, "history")), MEMORY_WINDOW_DEFAULT);
    result_clear(&res);

    /* window 0: no history at all (not "everything"). */
    d = op_ok(fx, &res, "turn.begin", "cw",
              "{\"message_id\":\"last\",\"owner\":\"o\",\"text\":\"newest\",\"window\":0}");
    assert_int_equal(json_array_size(json_object_get(d, "history")), 0);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cw}:log"), 25);
}

static void test_duplicate_after_end(void **state)
{
    fx_t *fx = *state;
    turn(fx, "cd", "m1", "hello");
    assert_int_equal(sync_int(fx, "LLEN mesh:{cd}:log"), 2);

    /* The channel retries the same message: the stored answer comes back. */
    result_t res;
    json_t *d = op_ok(fx, &res, "turn.begin", "cd",
                      "{\"message_id\":\"m1\",\"owner\":\"o2\",\"text\":\"hello\"}");
    assert_true(jbool(d, "duplicate"));
    json_t *reply = json_object_get(d, "reply");
    assert_true(json_is_object(reply));
    assert_string_equal(jstr(reply, "reply"), "answer");
    assert_string_equal(jstr(reply, "agent"), "policy_qa");
    assert_null(json_object_get(d, "history"));
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cd}:log"), 2);
    /* A duplicate takes no lease: nothing will run for it. */
    assert_int_equal(sync_int(fx, "EXISTS mesh:{cd}:lease"), 0);
}

static void test_end_twice_is_noop(void **state)
{
    fx_t *fx = *state;
    result_t res;
    begin(fx, &res, "ce", "m1", "o1", "hi");
    result_clear(&res);
    json_t *d = op_ok(fx, &res, "turn.end", "ce",
                      "{\"message_id\":\"m1\",\"owner\":\"o1\","
                      "\"messages\":[{\"role\":\"assistant\",\"text\":\"a\",\"ts\":5}],"
                      "\"state\":{\"agent\":\"auto_claims\",\"slot.plate\":\"沪A12345\"},"
                      "\"reply\":{\"reply\":\"a\"}}");
    assert_false(jbool(d, "duplicate"));
    result_clear(&res);
    d = op_ok(fx, &res, "turn.end", "ce",
              "{\"message_id\":\"m1\",\"owner\":\"o1\","
              "\"messages\":[{\"role\":\"assistant\",\"text\":\"b\"}],"
              "\"state\":{\"agent\":\"other\"},\"reply\":{\"reply\":\"b\"}}");
    assert_true(jbool(d, "duplicate"));
    result_clear(&res);

    assert_int_equal(sync_int(fx, "LLEN mesh:{ce}:log"), 2);
    redisReply *rep = sync_cmd(fx, "HGET mesh:{ce}:state agent");
    assert_string_equal(rep->str, "auto_claims");
    freeReplyObject(rep);
    rep = sync_cmd(fx, "HGET mesh:{ce}:state turns");
    assert_string_equal(rep->str, "1");
    freeReplyObject(rep);
    rep = sync_cmd(fx, "GET mesh:{ce}:idem:m1");
    assert_string_equal(rep->str, "{\"reply\":\"a\"}");
    freeReplyObject(rep);
    /* A message with ts keeps it; compact JSON. */
    rep = sync_cmd(fx, "LINDEX mesh:{ce}:log 1");
    assert_string_equal(rep->str, "{\"role\":\"assistant\",\"text\":\"a\",\"ts\":5}");
    freeReplyObject(rep);
    /* end released the lease held by its owner. */
    assert_int_equal(sync_int(fx, "EXISTS mesh:{ce}:lease"), 0);

    /* State shows in the next begin. */
    d = op_ok(fx, &res, "turn.begin", "ce",
              "{\"message_id\":\"m2\",\"owner\":\"o\",\"text\":\"x\"}");
    json_t *st = json_object_get(d, "state");
    assert_string_equal(jstr(st, "agent"), "auto_claims");
    assert_string_equal(jstr(st, "slot.plate"), "沪A12345");
    assert_string_equal(jstr(st, "turns"), "1");
    assert_non_null(json_object_get(st, "created"));
    assert_non_null(json_object_get(st, "updated"));
    result_clear(&res);
}

static void test_lease(void **state)
{
    fx_t *fx = *state;
    result_t res;
    begin(fx, &res, "cl", "m1", "A", "one");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    redisReply *rep = sync_cmd(fx, "GET mesh:{cl}:lease");
    assert_string_equal(rep->str, "A");
    freeReplyObject(rep);
    long long pttl = sync_int(fx, "PTTL mesh:{cl}:lease");
    assert_true(pttl > 0 && pttl <= MEMORY_LEASE_DEFAULT_MS);

    /* Another router's turn on the same conversation: EBUSY, nothing appended. */
    begin(fx, &res, "cl", "m2", "B", "two");
    assert_int_equal(res.status, MESH_EBUSY);
    assert_false(res.sync);
    assert_non_null(strstr(res.err, "lease"));
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cl}:log"), 1);

    /* turn.abort by a non-holder does not release it. */
    op(fx, &res, "turn.abort", "cl", "{\"message_id\":\"m2\",\"owner\":\"B\"}");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "EXISTS mesh:{cl}:lease"), 1);
    assert_int_equal(sync_int(fx, "EXISTS mesh:{cl}:idem:m1"), 1);

    /* The holder aborts: lease released; the pending marker (with the user
     * message's sequence number) and the message are kept. */
    json_t *d = op_ok(fx, &res, "turn.abort", "cl", "{\"message_id\":\"m1\",\"owner\":\"A\"}");
    assert_int_equal(json_object_size(d), 0);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "EXISTS mesh:{cl}:lease"), 0);
    rep = sync_cmd(fx, "GET mesh:{cl}:idem:m1");
    assert_string_equal(rep->str, "pending:1");
    freeReplyObject(rep);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cl}:log"), 1);

    /* Now B gets through. */
    begin(fx, &res, "cl", "m2", "B", "two");
    assert_int_equal(res.status, 0);
    result_clear(&res);

    /* A short lease expires on its own (a crashed router does not block forever). */
    op(fx, &res, "turn.begin", "cl2",
       "{\"message_id\":\"m1\",\"owner\":\"A\",\"text\":\"x\",\"lease_ms\":1}");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    uint64_t deadline = mh_now_ms() + T_WAIT_MS;
    while (sync_int(fx, "EXISTS mesh:{cl2}:lease") != 0 && mh_now_ms() < deadline)
        ;
    begin(fx, &res, "cl2", "m1", "C", "x");
    assert_int_equal(res.status, 0);
    /* C resumes the same message: still appended only once. */
    assert_int_equal(json_array_size(json_object_get(res.data, "history")), 1);
    result_clear(&res);
}

/* Wait (bounded) until the key is gone, e.g. a short lease expired. */
static void wait_key_gone(fx_t *fx, const char *key)
{
    uint64_t deadline = mh_now_ms() + T_WAIT_MS;
    while (sync_int(fx, "EXISTS %s", key) != 0 && mh_now_ms() < deadline)
        ;
    assert_int_equal(sync_int(fx, "EXISTS %s", key), 0);
}

static void renew(fx_t *fx, result_t *res, const char *conv, const char *owner, int lease_ms)
{
    char args[256];
    snprintf(args, sizeof args, "{\"owner\":\"%s\",\"lease_ms\":%d}", owner, lease_ms);
    op(fx, res, "lease.renew", conv, args);
}

/* lease.renew extends the owner's lease, never another owner's, never a lapsed one. */
static void test_lease_renew(void **state)
{
    fx_t *fx = *state;
    result_t res;
    op(fx, &res, "turn.begin", "cr1",
       "{\"message_id\":\"m1\",\"owner\":\"A\",\"text\":\"x\",\"lease_ms\":400}");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    assert_true(sync_int(fx, "PTTL mesh:{cr1}:lease") <= 400);

    /* The owner renews: the lease now lives lease_ms from the renewal. */
    renew(fx, &res, "cr1", "A", 60000);
    assert_int_equal(res.status, 0);
    assert_true(jbool(res.data, "held"));
    assert_null(json_object_get(res.data, "holder"));
    result_clear(&res);
    long long pttl = sync_int(fx, "PTTL mesh:{cr1}:lease");
    assert_true(pttl > 50000 && pttl <= 60000);

    /* Another owner cannot extend (or take) it, and learns who holds it. */
    renew(fx, &res, "cr1", "B", 100);
    assert_int_equal(res.status, 0);
    assert_false(jbool(res.data, "held"));
    assert_string_equal(jstr(res.data, "holder"), "A");
    result_clear(&res);
    assert_true(sync_int(fx, "PTTL mesh:{cr1}:lease") > 50000);
    redisReply *rep = sync_cmd(fx, "GET mesh:{cr1}:lease");
    assert_string_equal(rep->str, "A");
    freeReplyObject(rep);

    /* A lapsed lease is not taken back by a renewal: held false, no holder. */
    freeReplyObject(sync_cmd(fx, "PEXPIRE mesh:{cr1}:lease 1"));
    wait_key_gone(fx, "mesh:{cr1}:lease");
    renew(fx, &res, "cr1", "A", 60000);
    assert_int_equal(res.status, 0);
    assert_false(jbool(res.data, "held"));
    assert_null(json_object_get(res.data, "holder"));
    result_clear(&res);
    assert_int_equal(sync_int(fx, "EXISTS mesh:{cr1}:lease"), 0);
}

/* turn.end of a turn whose lease expired and was taken over writes nothing. */
static void test_end_lease_lost(void **state)
{
    fx_t *fx = *state;
    result_t res;
    op(fx, &res, "turn.begin", "cx",
       "{\"message_id\":\"m1\",\"owner\":\"A\",\"text\":\"first\",\"lease_ms\":1}");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    wait_key_gone(fx, "mesh:{cx}:lease");
    /* Another router's turn takes the conversation over. */
    begin(fx, &res, "cx", "m2", "B", "second");
    assert_int_equal(res.status, 0);
    result_clear(&res);

    end(fx, &res, "cx", "m1", "A", "late answer");
    assert_int_equal(res.status, MESH_ESTATE);
    assert_false(res.sync);
    assert_non_null(strstr(res.err, "lease lost"));
    result_clear(&res);
    /* Nothing written: the log holds the two user messages, m1 is still pending. */
    assert_int_equal(sync_int(fx, "LLEN mesh:{cx}:log"), 2);
    redisReply *rep = sync_cmd(fx, "GET mesh:{cx}:idem:m1");
    assert_string_equal(rep->str, "pending:1");
    freeReplyObject(rep);
    rep = sync_cmd(fx, "GET mesh:{cx}:lease");
    assert_string_equal(rep->str, "B");
    freeReplyObject(rep);
    assert_int_equal(sync_int(fx, "HEXISTS mesh:{cx}:state turns"), 0);

    /* B finishes normally. */
    end(fx, &res, "cx", "m2", "B", "answer two");
    assert_int_equal(res.status, 0);
    result_clear(&res);

    /* A lease that lapsed without anyone taking it does not stop turn.end:
     * no other turn ran in between. */
    op(fx, &res, "turn.begin", "cy",
       "{\"message_id\":\"m1\",\"owner\":\"A\",\"text\":\"slow\",\"lease_ms\":1}");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    wait_key_gone(fx, "mesh:{cy}:lease");
    end(fx, &res, "cy", "m1", "A", "still recorded");
    assert_int_equal(res.status, 0);
    assert_false(jbool(res.data, "duplicate"));
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cy}:log"), 2);
}

/*
 * A message interrupted mid-turn (router died, turn aborted) and retried
 * after later messages were recorded: the retry's history ends at its own
 * user message, the message is not appended again, and once answered the
 * message id is a duplicate as before.
 */
static void test_retry_pending_history(void **state)
{
    fx_t *fx = *state;
    result_t res;
    turn(fx, "cp", "m0", "earlier question");
    begin(fx, &res, "cp", "mA", "o1", "question A");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    redisReply *rep = sync_cmd(fx, "GET mesh:{cp}:idem:mA");
    assert_string_equal(rep->str, "pending:3");
    freeReplyObject(rep);
    /* The turn fails: abort keeps the marker. */
    op_ok(fx, &res, "turn.abort", "cp", "{\"message_id\":\"mA\",\"owner\":\"o1\"}");
    result_clear(&res);
    rep = sync_cmd(fx, "GET mesh:{cp}:idem:mA");
    assert_string_equal(rep->str, "pending:3");
    freeReplyObject(rep);

    /* B is asked and answered in between. */
    begin(fx, &res, "cp", "mB", "o2", "question B");
    assert_int_equal(res.status, 0);
    assert_string_equal(jstr(json_array_get(json_object_get(res.data, "history"), 3), "text"),
                        "question B");
    result_clear(&res);
    end(fx, &res, "cp", "mB", "o2", "answer B");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cp}:log"), 5);

    /* A is retried: history ends at A, B's messages are not in it. */
    json_t *d = op_ok(fx, &res, "turn.begin", "cp",
                      "{\"message_id\":\"mA\",\"owner\":\"o3\",\"text\":\"question A\"}");
    assert_false(jbool(d, "duplicate"));
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 3);
    assert_string_equal(jstr(json_array_get(hist, 0), "text"), "earlier question");
    assert_string_equal(jstr(json_array_get(hist, 1), "role"), "assistant");
    assert_string_equal(jstr(json_array_get(hist, 2), "text"), "question A");
    assert_string_equal(jstr(json_array_get(hist, 2), "message_id"), "mA");
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cp}:log"), 5); /* not appended again */

    /* The window ends at A too. */
    d = op_ok(fx, &res, "turn.begin", "cp",
              "{\"message_id\":\"mA\",\"owner\":\"o3\",\"text\":\"question A\",\"window\":2}");
    hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 2);
    assert_string_equal(jstr(json_array_get(hist, 0), "role"), "assistant");
    assert_string_equal(jstr(json_array_get(hist, 1), "message_id"), "mA");
    result_clear(&res);

    /* A is answered now; the answer goes to the end of the log. */
    end(fx, &res, "cp", "mA", "o3", "answer A");
    assert_int_equal(res.status, 0);
    assert_false(jbool(res.data, "duplicate"));
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cp}:log"), 6);
    rep = sync_cmd(fx, "HGET mesh:{cp}:state seq");
    assert_string_equal(rep->str, "6");
    freeReplyObject(rep);

    /* Duplicate detection of finished answers still works for both. */
    d = op_ok(fx, &res, "turn.begin", "cp",
              "{\"message_id\":\"mA\",\"owner\":\"o4\",\"text\":\"question A\"}");
    assert_true(jbool(d, "duplicate"));
    assert_string_equal(jstr(json_object_get(d, "reply"), "reply"), "answer A");
    result_clear(&res);
    d = op_ok(fx, &res, "turn.begin", "cp",
              "{\"message_id\":\"mB\",\"owner\":\"o4\",\"text\":\"question B\"}");
    assert_true(jbool(d, "duplicate"));
    assert_string_equal(jstr(json_object_get(d, "reply"), "reply"), "answer B");
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cp}:log"), 6);
}

/* A retry after an abort does not append the user message a second time. */
static void test_abort_keeps_marker(void **state)
{
    fx_t *fx = *state;
    result_t res;
    for (int i = 0; i < 3; i++) {
        begin(fx, &res, "ca", "m1", "o1", "hello");
        assert_int_equal(res.status, 0);
        assert_int_equal(json_array_size(json_object_get(res.data, "history")), 1);
        result_clear(&res);
        op_ok(fx, &res, "turn.abort", "ca", "{\"message_id\":\"m1\",\"owner\":\"o1\"}");
        result_clear(&res);
        assert_int_equal(sync_int(fx, "EXISTS mesh:{ca}:lease"), 0);
    }
    assert_int_equal(sync_int(fx, "LLEN mesh:{ca}:log"), 1);
    redisReply *rep = sync_cmd(fx, "HGET mesh:{ca}:state seq");
    assert_string_equal(rep->str, "1");
    freeReplyObject(rep);
    turn(fx, "ca", "m1", "hello");
    assert_int_equal(sync_int(fx, "LLEN mesh:{ca}:log"), 2);
}

/* The pending message was trimmed away: the retry gets it back as its history alone. */
static void test_retry_pending_trimmed(void **state)
{
    fx_t *fx = *state;
    mesh_redis_destroy(&fx->r);
    memory_ops_destroy(&fx->ops);
    fx_open(fx, 3);
    result_t res;
    begin(fx, &res, "cq", "mA", "o1", "question A");
    result_clear(&res);
    op_ok(fx, &res, "turn.abort", "cq", "{\"message_id\":\"mA\",\"owner\":\"o1\"}");
    result_clear(&res);
    turn(fx, "cq", "m1", "one");
    turn(fx, "cq", "m2", "two");
    assert_int_equal(sync_int(fx, "LLEN mesh:{cq}:log"), 3);

    json_t *d = op_ok(fx, &res, "turn.begin", "cq",
                      "{\"message_id\":\"mA\",\"owner\":\"o2\",\"text\":\"question A\"}");
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 1);
    assert_string_equal(jstr(json_array_get(hist, 0), "role"), "user");
    assert_string_equal(jstr(json_array_get(hist, 0), "text"), "question A");
    assert_string_equal(jstr(json_array_get(hist, 0), "message_id"), "mA");
    result_clear(&res);
    /* Nothing appended for the retry. */
    assert_int_equal(sync_int(fx, "LLEN mesh:{cq}:log"), 3);
    redisReply *rep = sync_cmd(fx, "LINDEX mesh:{cq}:log -1");
    assert_non_null(strstr(rep->str, "\"assistant\""));
    freeReplyObject(rep);

    /* A log that does not match the sequence numbers (a foreign writer
     * appended without counting) is not trusted either. */
    begin(fx, &res, "cz", "mZ", "o1", "question Z");
    result_clear(&res);
    freeReplyObject(sync_cmd(fx, "RPUSH mesh:{cz}:log %s", "{\"role\":\"user\",\"text\":\"x\"}"));
    d = op_ok(fx, &res, "turn.begin", "cz",
              "{\"message_id\":\"mZ\",\"owner\":\"o1\",\"text\":\"question Z\"}");
    hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 1);
    assert_string_equal(jstr(json_array_get(hist, 0), "message_id"), "mZ");
    result_clear(&res);
}

/* A marker written before sequence numbers existed ("pending") is still a pending marker. */
static void test_legacy_pending_marker(void **state)
{
    fx_t *fx = *state;
    result_t res;
    freeReplyObject(sync_cmd(fx, "RPUSH mesh:{cv}:log %s",
                             "{\"role\":\"user\",\"text\":\"old\",\"message_id\":\"m1\"}"));
    freeReplyObject(sync_cmd(fx, "SET mesh:{cv}:idem:m1 pending"));
    json_t *d = op_ok(fx, &res, "turn.begin", "cv",
                      "{\"message_id\":\"m1\",\"owner\":\"o\",\"text\":\"old\"}");
    assert_false(jbool(d, "duplicate"));
    assert_int_equal(json_array_size(json_object_get(d, "history")), 1);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cv}:log"), 1);
    end(fx, &res, "cv", "m1", "o", "answered");
    assert_int_equal(res.status, 0);
    assert_false(jbool(res.data, "duplicate"));
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cv}:log"), 2);
}

/* Two begins on one conversation in flight at once: exactly one wins. */
static void test_concurrent_begin(void **state)
{
    fx_t *fx = *state;
    result_t a = {0}, b = {0};
    json_t *args_a = json_pack("{s:s, s:s, s:s}", "message_id", "ma", "owner", "A", "text", "a");
    json_t *args_b = json_pack("{s:s, s:s, s:s}", "message_id", "mb", "owner", "B", "text", "b");
    char err[256];
    assert_int_equal(
        memory_ops_run(fx->ops, "turn.begin", "cc", args_a, on_done, &a, err, sizeof err), 0);
    assert_int_equal(
        memory_ops_run(fx->ops, "turn.begin", "cc", args_b, on_done, &b, err, sizeof err), 0);
    json_decref(args_a);
    json_decref(args_b);
    assert_true(run_until(fx, cond_done, &a, T_WAIT_MS));
    assert_true(run_until(fx, cond_done, &b, T_WAIT_MS));
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, MESH_EBUSY);
    result_clear(&a);
    result_clear(&b);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cc}:log"), 1);
}

static void test_ttl_and_hash_tags(void **state)
{
    fx_t *fx = *state;
    turn(fx, "conv:42.a-b", "m1", "hi");
    result_t res;
    begin(fx, &res, "conv:42.a-b", "m2", "owner-t", "again");
    result_clear(&res);

    redisReply *keys = sync_cmd(fx, "KEYS *");
    assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
    /* log, ctx, state, idem:m1, idem:m2, lease */
    assert_int_equal(keys->elements, 6);
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = keys->element[i]->str;
        assert_true(strncmp(k, "mesh:{conv:42.a-b}:", 19) == 0);
        long long ttl = sync_int(fx, "PTTL %s", k);
        if (strstr(k, ":lease") != NULL) {
            assert_true(ttl > 0 && ttl <= MEMORY_LEASE_DEFAULT_MS);
        } else {
            /* Every conversation key carries the conversation TTL. */
            assert_true(ttl > (T_TTL_S - 10) * 1000LL && ttl <= T_TTL_S * 1000LL);
        }
    }
    freeReplyObject(keys);

    /* TTL is refreshed on each turn. */
    freeReplyObject(sync_cmd(fx, "EXPIRE mesh:{conv:42.a-b}:log 50"));
    freeReplyObject(sync_cmd(fx, "EXPIRE mesh:{conv:42.a-b}:state 50"));
    freeReplyObject(sync_cmd(fx, "EXPIRE mesh:{conv:42.a-b}:ctx 50"));
    turn(fx, "conv:42.a-b", "m3", "third");
    assert_true(sync_int(fx, "TTL mesh:{conv:42.a-b}:log") > T_TTL_S - 10);
    assert_true(sync_int(fx, "TTL mesh:{conv:42.a-b}:state") > T_TTL_S - 10);
    assert_true(sync_int(fx, "TTL mesh:{conv:42.a-b}:ctx") > T_TTL_S - 10);
}

static void test_history_trimmed(void **state)
{
    fx_t *fx = *state;
    /* A second ops instance with MESH_HISTORY_MAX = 5. */
    mesh_redis_destroy(&fx->r);
    memory_ops_destroy(&fx->ops);
    fx_open(fx, 5);
    char mid[16];
    for (int i = 0; i < 4; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        turn(fx, "ct", mid, "q");
    }
    assert_int_equal(sync_int(fx, "LLEN mesh:{ct}:log"), 5);
    result_t res;
    json_t *d = op_ok(fx, &res, "conv.get", "ct", NULL);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 5);
    json_t *msgs = json_object_get(d, "messages");
    assert_int_equal(json_array_size(msgs), 5);
    /* The newest survive: the last is the assistant answer of m3. */
    assert_string_equal(jstr(json_array_get(msgs, 4), "role"), "assistant");
    assert_string_equal(jstr(json_array_get(msgs, 3), "message_id"), "m3");
    result_clear(&res);
}

static void test_conv_get(void **state)
{
    fx_t *fx = *state;
    result_t res;
    op(fx, &res, "conv.get", "nobody", "{}");
    assert_int_equal(res.status, MESH_ENOTFOUND);
    assert_false(res.sync);
    result_clear(&res);

    turn(fx, "cg", "m1", "one");
    turn(fx, "cg", "m2", "two");
    json_t *d = op_ok(fx, &res, "conv.get", "cg", "{\"limit\":3}");
    assert_string_equal(jstr(d, "conversation_id"), "cg");
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 4);
    json_t *msgs = json_object_get(d, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    assert_string_equal(jstr(json_array_get(msgs, 0), "role"), "assistant");
    assert_string_equal(jstr(json_array_get(msgs, 1), "text"), "two");
    json_t *st = json_object_get(d, "state");
    assert_string_equal(jstr(st, "turns"), "2");
    assert_string_equal(jstr(st, "agent"), "policy_qa");
    result_clear(&res);

    d = op_ok(fx, &res, "conv.get", "cg", "{\"limit\":0}");
    assert_int_equal(json_array_size(json_object_get(d, "messages")), 0);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 4);
    result_clear(&res);

    /* A stored entry that is not a JSON object is skipped, not fatal. */
    freeReplyObject(sync_cmd(fx, "RPUSH mesh:{cg}:log %s", "not json"));
    d = op_ok(fx, &res, "conv.get", "cg", NULL);
    assert_int_equal(json_array_size(json_object_get(d, "messages")), 4);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 5);
    result_clear(&res);
}

/* Top-level commands seen by MONITOR (script-internal ones are tagged "lua"). */
static int monitored_commands(redisContext *mon, const char *marker)
{
    int n = 0;
    for (;;) {
        redisReply *line = NULL;
        if (redisGetReply(mon, (void **)&line) != REDIS_OK || line == NULL)
            fail_msg("MONITOR stream ended before the marker");
        bool is_marker = line->str != NULL && strstr(line->str, marker) != NULL;
        bool in_script = line->str != NULL && strstr(line->str, " lua]") != NULL;
        freeReplyObject(line);
        if (is_marker)
            return n;
        if (!in_script)
            n++;
    }
}

static void test_two_round_trips(void **state)
{
    fx_t *fx = *state;
    turn(fx, "cr", "m0", "warm");
    redisContext *mon = redisConnect("127.0.0.1", mh_redis_port(s_redis));
    assert_true(mon != NULL && mon->err == 0);
    struct timeval tv = {.tv_sec = T_WAIT_MS / 1000};
    redisSetTimeout(mon, tv);
    redisReply *ok = redisCommand(mon, "MONITOR");
    assert_non_null(ok);
    freeReplyObject(ok);

    turn(fx, "cr", "m1", "counted");
    freeReplyObject(sync_cmd(fx, "ECHO end-of-turn-marker"));

    /* begin + end: exactly two commands reached Redis. */
    assert_int_equal(monitored_commands(mon, "end-of-turn-marker"), 2);
    redisFree(mon);
}

static void test_noscript_fallback(void **state)
{
    fx_t *fx = *state;
    /* The script cache is flushed behind the service's back (failover, restart). */
    freeReplyObject(sync_cmd(fx, "SCRIPT FLUSH"));
    turn(fx, "cn", "m1", "still works");
    assert_int_equal(sync_int(fx, "LLEN mesh:{cn}:log"), 2);
}

static void test_redis_down(void **state)
{
    fx_t *fx = *state;
    assert_true(mh_redis_stop(s_redis) >= 0);
    assert_true(run_until(fx, cond_down, fx, T_WAIT_MS));
    result_t res;
    begin(fx, &res, "cu", "m1", "o", "hi");
    assert_int_equal(res.status, MESH_EUNAVAIL);
    assert_true(res.sync);
    assert_non_null(strstr(res.err, "redis"));
    result_clear(&res);
    op(fx, &res, "conv.get", "cu", NULL);
    assert_int_equal(res.status, MESH_EUNAVAIL);
    result_clear(&res);

    assert_int_equal(mh_redis_restart(s_redis), 0);
    redisFree(fx->sync);
    fx->sync = redisConnect("127.0.0.1", mh_redis_port(s_redis));
    assert_true(fx->sync != NULL && fx->sync->err == 0);
    assert_true(run_until(fx, cond_up, fx, T_WAIT_MS));
    begin(fx, &res, "cu", "m1", "o", "hi");
    assert_int_equal(res.status, 0);
    result_clear(&res);
}

/* A Redis that stops answering: the op times out and answers EUNAVAIL. */
static void test_redis_hung(void **state)
{
    fx_t *fx = *state;
    redisReply *info = sync_cmd(fx, "INFO server");
    const char *p = strstr(info->str, "process_id:");
    assert_non_null(p);
    pid_t pid = (pid_t)atol(p + strlen("process_id:"));
    freeReplyObject(info);
    assert_true(pid > 0);

    assert_int_equal(kill(pid, SIGSTOP), 0);
    result_t res;
    uint64_t t0 = mh_now_ms();
    begin(fx, &res, "ch", "m1", "o", "hello?");
    uint64_t took = mh_now_ms() - t0;
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_int_equal(res.status, MESH_EUNAVAIL);
    assert_false(res.sync);
    assert_non_null(strstr(res.err, "deadline"));
    assert_true(took + 5 >= T_REDIS_TIMEOUT_MS && took < T_REDIS_TIMEOUT_MS + 1000);
    result_clear(&res);

    /* Back: reconnects on its own and serves again. */
    assert_true(run_until(fx, cond_up, fx, T_WAIT_MS));
    begin(fx, &res, "ch", "m2", "o", "there?");
    assert_int_equal(res.status, 0);
    result_clear(&res);
}

/* An op in flight when the connection fails answers EUNAVAIL exactly once. */
static void test_inflight_when_destroyed(void **state)
{
    fx_t *fx = *state;
    result_t res = {0};
    json_t *args = json_pack("{s:s, s:s, s:s}", "message_id", "m", "owner", "o", "text", "t");
    char err[256];
    assert_int_equal(
        memory_ops_run(fx->ops, "turn.begin", "ci", args, on_done, &res, err, sizeof err), 0);
    json_decref(args);
    /* ops may go first: the op does not reference it. */
    memory_ops_destroy(&fx->ops);
    mesh_redis_destroy(&fx->r);
    assert_int_equal(res.calls, 1);
    assert_int_equal(res.status, MESH_EUNAVAIL);
    result_clear(&res);
}

typedef struct {
    const char *op;
    const char *conv;
    const char *args; /* JSON or NULL */
    int status;
    const char *err_has;
} bad_case_t;

static void test_malformed_args(void **state)
{
    fx_t *fx = *state;
    static char big_text[MESH_TEXT_MAX + 64];
    memset(big_text, 'x', sizeof big_text - 1);
    static char big_args[sizeof big_text + 128];
    snprintf(big_args, sizeof big_args, "{\"message_id\":\"m\",\"owner\":\"o\",\"text\":\"%s\"}",
             big_text);
    static char many_msgs[8192];
    {
        size_t n = (size_t)snprintf(many_msgs, sizeof many_msgs,
                                    "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},"
                                    "\"messages\":[");
        for (int i = 0; i <= MEMORY_MESSAGES_MAX; i++)
            n += (size_t)snprintf(many_msgs + n, sizeof many_msgs - n, "%s{\"role\":\"tool\"}",
                                  i ? "," : "");
        snprintf(many_msgs + n, sizeof many_msgs - n, "]}");
    }
    static char many_fields[8192];
    {
        size_t n = (size_t)snprintf(many_fields, sizeof many_fields,
                                    "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},"
                                    "\"state\":{");
        for (int i = 0; i <= MEMORY_STATE_FIELDS_MAX; i++)
            n += (size_t)snprintf(many_fields + n, sizeof many_fields - n, "%s\"f%d\":\"v\"",
                                  i ? "," : "", i);
        snprintf(many_fields + n, sizeof many_fields - n, "}}");
    }
    const bad_case_t cases[] = {
        {"turn.nope", "c", "{}", MESH_EUNKNOWNOP, "turn.nope"},
        {"", "c", "{}", MESH_EUNKNOWNOP, "unknown"},
        {"conv.get", "", NULL, MESH_EPROTO, "conv"},
        {"conv.get", "bad conv!", NULL, MESH_EPROTO, "conv"},
        {"conv.get", "{c}", NULL, MESH_EPROTO, "conv"},
        {"conv.get", "c", "[1]", MESH_EPROTO, "args"},
        {"conv.get", "c", "{\"limit\":1001}", MESH_EPROTO, "limit"},
        {"conv.get", "c", "{\"limit\":-1}", MESH_EPROTO, "limit"},
        {"conv.get", "c", "{\"limit\":\"5\"}", MESH_EPROTO, "limit"},
        {"turn.begin", "c", NULL, MESH_EPROTO, "args"},
        {"turn.begin", "c", "{\"owner\":\"o\",\"text\":\"t\"}", MESH_EPROTO, "message_id"},
        {"turn.begin", "c", "{\"message_id\":7,\"owner\":\"o\",\"text\":\"t\"}", MESH_EPROTO,
         "message_id"},
        {"turn.begin", "c", "{\"message_id\":\"\",\"owner\":\"o\",\"text\":\"t\"}", MESH_EPROTO,
         "message_id"},
        {"turn.begin", "c",
         "{\"message_id\":\"0123456789012345678901234567890123456789012345678901234567890123X\","
         "\"owner\":\"o\",\"text\":\"t\"}",
         MESH_ETOOBIG, "message_id"},
        {"turn.begin", "c", "{\"message_id\":\"a\\nb\",\"owner\":\"o\",\"text\":\"t\"}",
         MESH_EPROTO, "message_id"},
        {"turn.begin", "c", "{\"message_id\":\"m\",\"text\":\"t\"}", MESH_EPROTO, "owner"},
        {"turn.begin", "c", "{\"message_id\":\"m\",\"owner\":\"o\"}", MESH_EPROTO, "text"},
        {"turn.begin", "c", "{\"message_id\":\"m\",\"owner\":\"o\",\"text\":\"\"}", MESH_EPROTO,
         "text"},
        {"turn.begin", "c", big_args, MESH_ETOOBIG, "text"},
        {"turn.begin", "c", "{\"message_id\":\"m\",\"owner\":\"o\",\"text\":\"t\",\"window\":201}",
         MESH_EPROTO, "window"},
        {"turn.begin", "c", "{\"message_id\":\"m\",\"owner\":\"o\",\"text\":\"t\",\"window\":true}",
         MESH_EPROTO, "window"},
        {"turn.begin", "c", "{\"message_id\":\"m\",\"owner\":\"o\",\"text\":\"t\",\"lease_ms\":0}",
         MESH_EPROTO, "lease_ms"},
        {"turn.end", "c", "{\"message_id\":\"m\",\"owner\":\"o\"}", MESH_EPROTO, "reply"},
        {"turn.end", "c", "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":\"x\"}", MESH_EPROTO,
         "reply"},
        {"turn.end", "c", "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},\"messages\":{}}",
         MESH_EPROTO, "messages"},
        {"turn.end", "c", many_msgs, MESH_ETOOBIG, "messages"},
        {"turn.end", "c",
         "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},\"messages\":[{\"role\":\"bot\"}]}",
         MESH_EPROTO, "messages[0].role"},
        {"turn.end", "c",
         "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},"
         "\"messages\":[{\"role\":\"tool\"},{\"role\":\"tool\",\"text\":3}]}",
         MESH_EPROTO, "messages[1].text"},
        {"turn.end", "c",
         "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},"
         "\"messages\":[{\"role\":\"tool\",\"ok\":\"yes\"}]}",
         MESH_EPROTO, "messages[0].ok"},
        {"turn.end", "c",
         "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},"
         "\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[1]}]}",
         MESH_EPROTO, "tool_calls[0]"},
        {"turn.end", "c",
         "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},"
         "\"messages\":[{\"role\":\"assistant\",\"ts\":-1}]}",
         MESH_EPROTO, "messages[0].ts"},
        {"turn.end", "c", "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},\"state\":[]}",
         MESH_EPROTO, "state"},
        {"turn.end", "c",
         "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},\"state\":{\"agent\":1}}", MESH_EPROTO,
         "state.agent"},
        {"turn.end", "c",
         "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},\"state\":{\"turns\":\"9\"}}",
         MESH_EPROTO, "state.turns"},
        {"turn.end", "c", many_fields, MESH_ETOOBIG, "state"},
        {"turn.abort", "c", "{\"message_id\":\"m\"}", MESH_EPROTO, "owner"},
        {"turn.abort", "c", "{\"owner\":\"o\"}", MESH_EPROTO, "message_id"},
        {"turn.end", "c",
         "{\"message_id\":\"m\",\"owner\":\"o\",\"reply\":{},\"state\":{\"seq\":\"9\"}}",
         MESH_EPROTO, "state.seq"},
        {"lease.renew", "c", NULL, MESH_EPROTO, "args"},
        {"lease.renew", "c", "{\"lease_ms\":100}", MESH_EPROTO, "owner"},
        {"lease.renew", "c", "{\"owner\":\"\"}", MESH_EPROTO, "owner"},
        {"lease.renew", "c", "{\"owner\":\"o\",\"lease_ms\":0}", MESH_EPROTO, "lease_ms"},
        {"lease.renew", "c", "{\"owner\":\"o\",\"lease_ms\":600001}", MESH_EPROTO, "lease_ms"},
        {"lease.renew", "", "{\"owner\":\"o\"}", MESH_EPROTO, "conv"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case_t *c = &cases[i];
        result_t res;
        op(fx, &res, c->op, c->conv, c->args);
        if (res.status != c->status || !res.sync || strstr(res.err, c->err_has) == NULL)
            fail_msg("case %zu (%s %.60s): status %d sync %d err '%s', want %d with '%s'", i, c->op,
                     c->args ? c->args : "(null)", res.status, res.sync, res.err, c->status,
                     c->err_has);
        result_clear(&res);
    }
    /* Nothing reached Redis. */
    redisReply *keys = sync_cmd(fx, "KEYS *");
    assert_int_equal(keys->elements, 0);
    freeReplyObject(keys);
}

static void test_unknown_keys_kept(void **state)
{
    fx_t *fx = *state;
    result_t res;
    begin(fx, &res, "ck", "m1", "o", "hi");
    result_clear(&res);
    op_ok(fx, &res, "turn.end", "ck",
          "{\"message_id\":\"m1\",\"owner\":\"o\",\"ignored\":1,\"reply\":{},"
          "\"messages\":[{\"role\":\"assistant\",\"text\":\"\",\"tool_calls\":"
          "[{\"id\":\"c1\",\"name\":\"policy.lookup\",\"arguments\":{\"policy_no\":\"P00001\"}}]},"
          "{\"role\":\"tool\",\"name\":\"policy.lookup\",\"tool_call_id\":\"c1\",\"ok\":true,"
          "\"text\":\"{}\",\"x-extra\":[1,2]}]}");
    result_clear(&res);
    json_t *d = op_ok(fx, &res, "conv.get", "ck", NULL);
    json_t *msgs = json_object_get(d, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    json_t *calls = json_object_get(json_array_get(msgs, 1), "tool_calls");
    assert_string_equal(jstr(json_array_get(calls, 0), "name"), "policy.lookup");
    json_t *tool = json_array_get(msgs, 2);
    assert_true(jbool(tool, "ok"));
    assert_int_equal(json_array_size(json_object_get(tool, "x-extra")), 2);
    /* ts was set by memory. */
    assert_true(json_is_integer(json_object_get(tool, "ts")));
    result_clear(&res);
}

/* ------------------------------------------------------------ ctx list */

/* A tool result as big as a real policy.lookup result (~7 KB of JSON text, no quotes,
 * so it embeds in the test's args as is). */
static const char *big_tool_text(void)
{
    static char text[7204];
    if (text[0] == '\0') {
        size_t n = 0;
        text[n++] = '[';
        while (n + 4 < sizeof text) {
            memcpy(text + n, "0,", 2);
            n += 2;
        }
        memcpy(text + n, "0]", 3);
    }
    return text;
}

/*
 * turn.end with the full shape of a tool-using turn: the assistant asking for
 * policy.lookup, the (big) tool result, and the final answer.
 */
static void end_with_tools(fx_t *fx, result_t *res, const char *conv, const char *mid,
                           const char *owner, const char *answer)
{
    static char args[16384];
    snprintf(args, sizeof args,
             "{\"message_id\":\"%s\",\"owner\":\"%s\",\"messages\":["
             "{\"role\":\"assistant\",\"text\":\"\",\"agent\":\"policy_qa\",\"tool_calls\":"
             "[{\"id\":\"call_1\",\"name\":\"policy.lookup\",\"arguments\":{\"policy_no\":"
             "\"P10023\"}}]},"
             "{\"role\":\"tool\",\"name\":\"policy.lookup\",\"tool_call_id\":\"call_1\","
             "\"ok\":true,\"text\":\"%s\"},"
             "{\"role\":\"assistant\",\"text\":\"%s\",\"agent\":\"policy_qa\"}],"
             "\"state\":{\"agent\":\"policy_qa\"},\"reply\":{\"reply\":\"%s\"}}",
             mid, owner, big_tool_text(), answer, answer);
    op(fx, res, "turn.end", conv, args);
}

/* One tool-using turn (begin + end with tools) that must succeed. */
static void tool_turn(fx_t *fx, const char *conv, const char *mid, const char *text,
                      const char *answer)
{
    result_t res;
    begin(fx, &res, conv, mid, "owner-t", text);
    assert_int_equal(res.status, 0);
    result_clear(&res);
    end_with_tools(fx, &res, conv, mid, "owner-t", answer);
    assert_int_equal(res.status, 0);
    result_clear(&res);
}

/* Every history entry is a user message or an assistant answer without tool calls. */
static void assert_context_only(const json_t *hist)
{
    size_t i;
    const json_t *m;
    json_array_foreach(hist, i, m)
    {
        const char *role = jstr(m, "role");
        if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
            fail_msg("history[%zu] has role %s", i, role);
        assert_int_equal(json_array_size(json_object_get(m, "tool_calls")), 0);
        assert_null(json_object_get(m, "tool_call_id"));
    }
}

/*
 * The log keeps every message; ctx keeps the user messages and the final
 * answers, as the very same JSON strings; turn.begin's history comes from
 * ctx, so old tool results never come back.
 */
static void test_ctx_holds_context_only(void **state)
{
    fx_t *fx = *state;
    tool_turn(fx, "cc1", "m1", "我的保单 P10023 保障什么？", "answer one");
    tool_turn(fx, "cc1", "m2", "免赔额是多少？", "answer two");
    /* Log: 2 x (user, assistant+tool_calls, tool, answer). ctx: 2 x (user, answer). */
    assert_int_equal(sync_int(fx, "LLEN mesh:{cc1}:log"), 8);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cc1}:ctx"), 4);
    static const int log_of_ctx[] = {0, 3, 4, 7};
    for (int i = 0; i < 4; i++) {
        redisReply *c = sync_cmd(fx, "LINDEX mesh:{cc1}:ctx %d", i);
        redisReply *l = sync_cmd(fx, "LINDEX mesh:{cc1}:log %d", log_of_ctx[i]);
        assert_int_equal(c->type, REDIS_REPLY_STRING);
        assert_int_equal(l->type, REDIS_REPLY_STRING);
        assert_string_equal(c->str, l->str); /* same bytes: compact JSON, same ts */
        freeReplyObject(c);
        freeReplyObject(l);
    }

    /* The next question's history: no tool message, no tool call, ends at the question. */
    result_t res;
    json_t *d = op_ok(fx, &res, "turn.begin", "cc1",
                      "{\"message_id\":\"m3\",\"owner\":\"o\",\"text\":\"等待期多久？\"}");
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 5);
    assert_context_only(hist);
    assert_string_equal(jstr(json_array_get(hist, 0), "text"), "我的保单 P10023 保障什么？");
    assert_string_equal(jstr(json_array_get(hist, 1), "text"), "answer one");
    assert_string_equal(jstr(json_array_get(hist, 1), "agent"), "policy_qa");
    assert_string_equal(jstr(json_array_get(hist, 3), "text"), "answer two");
    assert_string_equal(jstr(json_array_get(hist, 4), "message_id"), "m3");
    result_clear(&res);

    /* The window counts ctx entries. */
    d = op_ok(fx, &res, "turn.begin", "cc1",
              "{\"message_id\":\"m3\",\"owner\":\"o\",\"text\":\"等待期多久？\",\"window\":2}");
    hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 2);
    assert_string_equal(jstr(json_array_get(hist, 0), "text"), "answer two");
    result_clear(&res);

    /* conv.get still reads the whole log, tool results included. */
    d = op_ok(fx, &res, "conv.get", "cc1", NULL);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 9);
    json_t *msgs = json_object_get(d, "messages");
    assert_int_equal(json_array_size(msgs), 9);
    assert_string_equal(jstr(json_array_get(msgs, 2), "role"), "tool");
    assert_string_equal(jstr(json_array_get(msgs, 2), "text"), big_tool_text());
    assert_int_equal(json_array_size(json_object_get(json_array_get(msgs, 1), "tool_calls")), 1);
    result_clear(&res);

    /* An assistant message with an empty tool_calls list is an answer: it goes to ctx. */
    op_ok(fx, &res, "turn.end", "cc1",
          "{\"message_id\":\"m3\",\"owner\":\"o\",\"reply\":{},"
          "\"messages\":[{\"role\":\"assistant\",\"text\":\"three\",\"tool_calls\":[]},"
          "{\"role\":\"tool\",\"text\":\"{}\"}]}");
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cc1}:log"), 11);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cc1}:ctx"), 6);
    redisReply *last = sync_cmd(fx, "LINDEX mesh:{cc1}:ctx -1");
    assert_non_null(strstr(last->str, "\"three\""));
    freeReplyObject(last);
}

/* ctx is trimmed to MESH_HISTORY_MAX and carries the conversation TTL, like the log. */
static void test_ctx_trim_and_ttl(void **state)
{
    fx_t *fx = *state;
    mesh_redis_destroy(&fx->r);
    memory_ops_destroy(&fx->ops);
    fx_open(fx, 3);
    char mid[16];
    for (int i = 0; i < 3; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        tool_turn(fx, "ct2", mid, "question", "answer");
    }
    assert_int_equal(sync_int(fx, "LLEN mesh:{ct2}:log"), 3);
    assert_int_equal(sync_int(fx, "LLEN mesh:{ct2}:ctx"), 3);
    /* The newest survive: m1's answer, m2's question and answer. */
    redisReply *r = sync_cmd(fx, "LINDEX mesh:{ct2}:ctx 1");
    assert_non_null(strstr(r->str, "\"message_id\":\"m2\""));
    freeReplyObject(r);
    long long ttl = sync_int(fx, "PTTL mesh:{ct2}:ctx");
    assert_true(ttl > (T_TTL_S - 10) * 1000LL && ttl <= T_TTL_S * 1000LL);

    /* turn.begin and turn.end both refresh it. */
    freeReplyObject(sync_cmd(fx, "EXPIRE mesh:{ct2}:ctx 50"));
    result_t res;
    begin(fx, &res, "ct2", "m9", "o", "again");
    result_clear(&res);
    assert_true(sync_int(fx, "TTL mesh:{ct2}:ctx") > T_TTL_S - 10);
    assert_int_equal(sync_int(fx, "LLEN mesh:{ct2}:ctx"), 3);
    freeReplyObject(sync_cmd(fx, "EXPIRE mesh:{ct2}:ctx 50"));
    end(fx, &res, "ct2", "m9", "o", "done");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    assert_true(sync_int(fx, "TTL mesh:{ct2}:ctx") > T_TTL_S - 10);
}

/*
 * ctx changes only together with the log, in the same script: a refused
 * begin (lease busy), a refused end (lease lost), a duplicate end and a
 * duplicate begin leave both lists as they were.
 */
static void test_ctx_atomic_with_log(void **state)
{
    fx_t *fx = *state;
    result_t res;
    tool_turn(fx, "ca2", "m0", "first", "zero");
    op(fx, &res, "turn.begin", "ca2",
       "{\"message_id\":\"m1\",\"owner\":\"A\",\"text\":\"x\",\"lease_ms\":60000}");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{ca2}:log"), 5);
    assert_int_equal(sync_int(fx, "LLEN mesh:{ca2}:ctx"), 3);

    begin(fx, &res, "ca2", "m2", "B", "y"); /* lease busy */
    assert_int_equal(res.status, MESH_EBUSY);
    result_clear(&res);
    end_with_tools(fx, &res, "ca2", "m1", "B", "wrong owner"); /* lease held by A */
    assert_int_equal(res.status, MESH_ESTATE);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{ca2}:log"), 5);
    assert_int_equal(sync_int(fx, "LLEN mesh:{ca2}:ctx"), 3);

    end_with_tools(fx, &res, "ca2", "m1", "A", "one");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{ca2}:log"), 8);
    assert_int_equal(sync_int(fx, "LLEN mesh:{ca2}:ctx"), 4);
    end_with_tools(fx, &res, "ca2", "m1", "A", "one again"); /* duplicate */
    assert_true(jbool(res.data, "duplicate"));
    result_clear(&res);
    begin(fx, &res, "ca2", "m1", "C", "x"); /* duplicate */
    assert_true(jbool(res.data, "duplicate"));
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{ca2}:log"), 8);
    assert_int_equal(sync_int(fx, "LLEN mesh:{ca2}:ctx"), 4);
    /* seq still counts log messages (the markers rely on it). */
    redisReply *rep = sync_cmd(fx, "HGET mesh:{ca2}:state seq");
    assert_string_equal(rep->str, "8");
    freeReplyObject(rep);
}

/*
 * A retried message after a tool-using turn was answered in between: the
 * history ends at the retried question (found in ctx), B's question and
 * answer are left out, and no tool message appears.
 */
static void test_ctx_retry_pending(void **state)
{
    fx_t *fx = *state;
    result_t res;
    tool_turn(fx, "cr2", "m0", "earlier question", "earlier answer");
    begin(fx, &res, "cr2", "mA", "o1", "question A");
    result_clear(&res);
    op_ok(fx, &res, "turn.abort", "cr2", "{\"message_id\":\"mA\",\"owner\":\"o1\"}");
    result_clear(&res);
    tool_turn(fx, "cr2", "mB", "question B", "answer B");
    tool_turn(fx, "cr2", "mC", "question C", "answer C");
    assert_int_equal(sync_int(fx, "LLEN mesh:{cr2}:ctx"), 7);

    json_t *d = op_ok(fx, &res, "turn.begin", "cr2",
                      "{\"message_id\":\"mA\",\"owner\":\"o2\",\"text\":\"question A\"}");
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 3);
    assert_context_only(hist);
    assert_string_equal(jstr(json_array_get(hist, 0), "text"), "earlier question");
    assert_string_equal(jstr(json_array_get(hist, 1), "text"), "earlier answer");
    assert_string_equal(jstr(json_array_get(hist, 2), "message_id"), "mA");
    result_clear(&res);
    /* Not appended again to either list. */
    assert_int_equal(sync_int(fx, "LLEN mesh:{cr2}:log"), 13);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cr2}:ctx"), 7);

    /* Answered now: its answer goes to the end of both lists. */
    end_with_tools(fx, &res, "cr2", "mA", "o2", "answer A");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{cr2}:ctx"), 8);
    redisReply *rep = sync_cmd(fx, "LINDEX mesh:{cr2}:ctx -1");
    assert_non_null(strstr(rep->str, "answer A"));
    freeReplyObject(rep);
}

/*
 * A conversation recorded before ctx existed (log only): the first begin
 * builds ctx once from the log, keeping the user messages and the answers.
 */
static void test_ctx_built_from_old_log(void **state)
{
    fx_t *fx = *state;
    static const char *const old[] = {
        "{\"role\":\"user\",\"text\":\"P10023?\",\"message_id\":\"m0\",\"ts\":1}",
        "{\"role\":\"assistant\",\"text\":\"\",\"tool_calls\":[{\"id\":\"call_1\","
        "\"name\":\"policy.lookup\",\"arguments\":{}}],\"ts\":2}",
        "{\"role\":\"tool\",\"name\":\"policy.lookup\",\"text\":\"{}\",\"ts\":3}",
        "{\"role\":\"assistant\",\"text\":\"old answer\",\"ts\":4}",
        "not json",
    };
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        freeReplyObject(sync_cmd(fx, "RPUSH mesh:{co}:log %s", old[i]));
    freeReplyObject(sync_cmd(fx, "HSET mesh:{co}:state seq 5 turns 1"));

    result_t res;
    json_t *d = op_ok(fx, &res, "turn.begin", "co",
                      "{\"message_id\":\"m1\",\"owner\":\"o\",\"text\":\"deductible?\"}");
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 3);
    assert_context_only(hist);
    assert_string_equal(jstr(json_array_get(hist, 0), "text"), "P10023?");
    assert_string_equal(jstr(json_array_get(hist, 1), "text"), "old answer");
    assert_string_equal(jstr(json_array_get(hist, 2), "text"), "deductible?");
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{co}:ctx"), 3);
    assert_int_equal(sync_int(fx, "LLEN mesh:{co}:log"), 6);
    long long ttl = sync_int(fx, "PTTL mesh:{co}:ctx");
    assert_true(ttl > 0 && ttl <= T_TTL_S * 1000LL);
    /* Once only: the next begin does not copy the log again. */
    end(fx, &res, "co", "m1", "o", "new answer");
    result_clear(&res);
    assert_int_equal(sync_int(fx, "LLEN mesh:{co}:ctx"), 4);
}

/* turn.end "trace" is stored per turn in the traces hash (atomically, with the TTL);
 * trace.get reads it back. */
static void test_trace_stored_per_turn(void **state)
{
    fx_t *fx = *state;
    result_t res;
    turn(fx, "ctr", "m1", "first"); /* turn 1: no trace sent */
    begin(fx, &res, "ctr", "m2", "owner-t", "second");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    op(fx, &res, "turn.end", "ctr",
       "{\"message_id\":\"m2\",\"owner\":\"owner-t\",\"messages\":[],\"reply\":{},"
       "\"trace\":[{\"name\":\"router turn\",\"span_id\":\"00f067aa0ba902b7\"}]}");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    /* One declared hash per conversation (issue 7): field = turn number, with the TTL. */
    assert_true(sync_int(fx, "TTL mesh:{ctr}:traces") > 0);
    assert_int_equal(sync_int(fx, "HLEN mesh:{ctr}:traces"), 1);
    assert_int_equal(sync_int(fx, "HEXISTS mesh:{ctr}:traces 2"), 1);
    assert_int_equal(sync_int(fx, "EXISTS mesh:{ctr}:trace:2"), 0);

    json_t *d = op_ok(fx, &res, "trace.get", "ctr", "{\"turn\":2}");
    assert_int_equal(json_integer_value(json_object_get(d, "turn")), 2);
    json_t *spans = json_object_get(d, "spans");
    assert_int_equal(json_array_size(spans), 1);
    assert_string_equal(jstr(json_array_get(spans, 0), "span_id"), "00f067aa0ba902b7");
    result_clear(&res);

    op(fx, &res, "trace.get", "ctr", "{\"turn\":1}"); /* a turn without a trace */
    assert_int_equal(res.status, MESH_ENOTFOUND);
    result_clear(&res);
    op(fx, &res, "trace.get", "ctr", "{\"turn\":0}");
    assert_int_equal(res.status, MESH_EINVAL);
    result_clear(&res);
    op(fx, &res, "trace.get", "ctr", "{\"turn\":\"2\"}");
    assert_int_equal(res.status, MESH_EINVAL);
    result_clear(&res);

    /* A malformed trace is refused before anything is written. */
    begin(fx, &res, "ctr", "m3", "owner-t", "third");
    assert_int_equal(res.status, 0);
    result_clear(&res);
    op(fx, &res, "turn.end", "ctr",
       "{\"message_id\":\"m3\",\"owner\":\"owner-t\",\"messages\":[],\"reply\":{},"
       "\"trace\":[1]}");
    assert_int_equal(res.status, MESH_EINVAL);
    result_clear(&res);
    assert_int_equal(sync_int(fx, "HEXISTS mesh:{ctr}:traces 3"), 0);
}

/* Timelines written by an older memory (a per-turn string key) stay readable. */
static void test_trace_old_key_fallback(void **state)
{
    fx_t *fx = *state;
    turn(fx, "cto", "m1", "first");
    freeReplyObject(sync_cmd(fx, "SET mesh:{cto}:trace:1 [{\"name\":\"old\"}] EX 100"));
    result_t res;
    json_t *d = op_ok(fx, &res, "trace.get", "cto", "{\"turn\":1}");
    assert_string_equal(jstr(json_array_get(json_object_get(d, "spans"), 0), "name"), "old");
    result_clear(&res);
    /* The hash wins when both exist. */
    freeReplyObject(sync_cmd(fx, "HSET mesh:{cto}:traces 1 [{\"name\":\"new\"}]"));
    d = op_ok(fx, &res, "trace.get", "cto", "{\"turn\":1}");
    assert_string_equal(jstr(json_array_get(json_object_get(d, "spans"), 0), "name"), "new");
    result_clear(&res);
}

/* The traces hash keeps the newest 100 turns' timelines (bounded like the log). */
static void test_trace_hash_bounded(void **state)
{
    fx_t *fx = *state;
    char mid[16], args[256];
    result_t res;
    for (int i = 1; i <= 103; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        begin(fx, &res, "ctb", mid, "owner-t", "q");
        assert_int_equal(res.status, 0);
        result_clear(&res);
        snprintf(args, sizeof args,
                 "{\"message_id\":\"%s\",\"owner\":\"owner-t\",\"messages\":[],\"reply\":{},"
                 "\"trace\":[{\"name\":\"turn %d\"}]}",
                 mid, i);
        op(fx, &res, "turn.end", "ctb", args);
        assert_int_equal(res.status, 0);
        result_clear(&res);
    }
    assert_int_equal(sync_int(fx, "HLEN mesh:{ctb}:traces"), 100);
    assert_int_equal(sync_int(fx, "HEXISTS mesh:{ctb}:traces 3"), 0);
    assert_int_equal(sync_int(fx, "HEXISTS mesh:{ctb}:traces 4"), 1);
    op(fx, &res, "trace.get", "ctb", "{\"turn\":3}");
    assert_int_equal(res.status, MESH_ENOTFOUND);
    result_clear(&res);
    json_t *d = op_ok(fx, &res, "trace.get", "ctb", "{\"turn\":103}");
    assert_string_equal(jstr(json_array_get(json_object_get(d, "spans"), 0), "name"), "turn 103");
    result_clear(&res);
}

int main(void)
{
    mesh_log_init("test_memory_ops", MESH_LOG_ERROR);
    if (mh_init("unit_memory_ops") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_begin_appends_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_after_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_twice_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_lease_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_pending_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_keeps_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_pending_trimmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_pending_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_begin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_and_hash_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_trimmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conv_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noscript_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_hung, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflight_when_destroyed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctx_holds_context_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctx_trim_and_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctx_atomic_with_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctx_retry_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctx_built_from_old_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_stored_per_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_old_key_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_hash_bounded, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
