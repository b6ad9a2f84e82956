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

#include "test_memory_fixture.h"

/* ------------------------------------------------------------ running ops */

/* Run op with args given as JSON text (NULL for none); res must be cleared by the caller. */
static void op(tf_t *fx, tf_res_t *res, const char *name, const char *conv, const char *args_json)
{
    memset(res, 0, sizeof *res);
    json_t *args = tf_args(args_json);
    int rc = memory_ops_run(fx->ops, name, conv, args, tf_on_done, res, res->err, sizeof res->err);
    json_decref(args);
    tf_finish(fx, res, rc, NULL);
}

static json_t *op_ok(tf_t *fx, tf_res_t *res, const char *name, const char *conv,
                     const char *args_json)
{
    op(fx, res, name, conv, args_json);
    return tf_data_ok(res, name);
}

static void begin(tf_t *fx, tf_res_t *res, const char *conv, const char *mid, const char *owner,
                  const char *text)
{
    char args[512];
    snprintf(args, sizeof args, "{\"message_id\":\"%s\",\"owner\":\"%s\",\"text\":\"%s\"}", mid,
             owner, text);
    op(fx, res, "turn.begin", conv, args);
}

static void end(tf_t *fx, tf_res_t *res, const char *conv, const char *mid, const char *owner,
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
static void turn(tf_t *fx, const char *conv, const char *mid, const char *text)
{
    tf_res_t res;
    begin(fx, &res, conv, mid, "owner-t", text);
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    end(fx, &res, conv, mid, "owner-t", "answer");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
}

static bool jbool(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    assert_true(json_is_boolean(v));
    return json_is_true(v);
}

/* ------------------------------------------------------------------ tests */

static void test_begin_appends_once(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    json_t *d = op_ok(fx, &res, "turn.begin", "c1",
                      "{\"message_id\":\"m1\",\"owner\":\"o1\",\"text\":\"你好, I crashed\"}");
    assert_false(jbool(d, "duplicate"));
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 1);
    json_t *m = json_array_get(hist, 0);
    assert_string_equal(tf_str(m, "role"), "user");
    assert_string_equal(tf_str(m, "text"), "你好, I crashed");
    assert_string_equal(tf_str(m, "message_id"), "m1");
    assert_true(json_integer_value(json_object_get(m, "ts")) > 1600000000000LL);
    assert_true(json_is_object(json_object_get(d, "state")));
    assert_non_null(json_object_get(json_object_get(d, "state"), "created"));
    tf_res_clear(&res);

    /* A retried begin (same message, same owner) does not append again. */
    d = op_ok(fx, &res, "turn.begin", "c1",
              "{\"message_id\":\"m1\",\"owner\":\"o1\",\"text\":\"你好, I crashed\"}");
    assert_false(jbool(d, "duplicate"));
    assert_int_equal(json_array_size(json_object_get(d, "history")), 1);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{c1}:log"), 1);

    /* Stored as compact JSON text. */
    redisReply *raw = tf_cmd(fx, "LINDEX mesh:{c1}:log 0");
    assert_int_equal(raw->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(raw->str, "{\"role\":\"user\",\"text\":"));
    assert_null(strstr(raw->str, "\": "));
    freeReplyObject(raw);
}

static void test_history_window(void **state)
{
    tf_t *fx = *state;
    char mid[16];
    for (int i = 0; i < 12; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        turn(fx, "cw", mid, "question");
    }
    /* 24 messages stored; begin asks for 5: the last 4 plus the new user message. */
    tf_res_t res;
    json_t *d = op_ok(fx, &res, "turn.begin", "cw",
                      "{\"message_id\":\"last\",\"owner\":\"o\",\"text\":\"newest\",\"window\":5}");
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 5);
    assert_string_equal(tf_str(json_array_get(hist, 4), "text"), "newest");
    assert_string_equal(tf_str(json_array_get(hist, 3), "role"), "assistant");
    assert_string_equal(tf_str(json_array_get(hist, 2), "message_id"), "m11");
    tf_res_clear(&res);

    /* Default window is 20. */
    d = op_ok(fx, &res, "turn.begin", "cw",
              "{\"message_id\":\"last\",\"owner\":\"o\",\"text\":\"newest\"}");
    assert_int_equal(json_array_size(json_object_get(d, "history")), MEMORY_WINDOW_DEFAULT);
    tf_res_clear(&res);

    /* window 0: no history at all (not "everything"). */
    d = op_ok(fx, &res, "turn.begin", "cw",
              "{\"message_id\":\"last\",\"owner\":\"o\",\"text\":\"newest\",\"window\":0}");
    assert_int_equal(json_array_size(json_object_get(d, "history")), 0);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cw}:log"), 25);
}

static void test_duplicate_after_end(void **state)
{
    tf_t *fx = *state;
    turn(fx, "cd", "m1", "hello");
    assert_int_equal(tf_int(fx, "LLEN mesh:{cd}:log"), 2);

    /* The channel retries the same message: the stored answer comes back. */
    tf_res_t res;
    json_t *d = op_ok(fx, &res, "turn.begin", "cd",
                      "{\"message_id\":\"m1\",\"owner\":\"o2\",\"text\":\"hello\"}");
    assert_true(jbool(d, "duplicate"));
    json_t *reply = json_object_get(d, "reply");
    assert_true(json_is_object(reply));
    assert_string_equal(tf_str(reply, "reply"), "answer");
    assert_string_equal(tf_str(reply, "agent"), "policy_qa");
    assert_null(json_object_get(d, "history"));
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cd}:log"), 2);
    /* A duplicate takes no lease: nothing will run for it. */
    assert_int_equal(tf_int(fx, "EXISTS mesh:{cd}:lease"), 0);
}

static void test_end_twice_is_noop(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    begin(fx, &res, "ce", "m1", "o1", "hi");
    tf_res_clear(&res);
    json_t *d = op_ok(fx, &res, "turn.end", "ce",
                      "{\"message_id\":\"m1\",\"owner\":\"o1\","
                      "\"messages\":[{\"role\":\"assistant\",\"text\":\"a\",\"ts\":5}],"
                      "\"state\":{\"agent\":\"auto_claims\",\"slot.plate\":\"沪A12345\"},"
                      "\"reply\":{\"reply\":\"a\"}}");
    assert_false(jbool(d, "duplicate"));
    tf_res_clear(&res);
    d = op_ok(fx, &res, "turn.end", "ce",
              "{\"message_id\":\"m1\",\"owner\":\"o1\","
              "\"messages\":[{\"role\":\"assistant\",\"text\":\"b\"}],"
              "\"state\":{\"agent\":\"other\"},\"reply\":{\"reply\":\"b\"}}");
    assert_true(jbool(d, "duplicate"));
    tf_res_clear(&res);

    assert_int_equal(tf_int(fx, "LLEN mesh:{ce}:log"), 2);
    redisReply *rep = tf_cmd(fx, "HGET mesh:{ce}:state agent");
    assert_string_equal(rep->str, "auto_claims");
    freeReplyObject(rep);
    rep = tf_cmd(fx, "HGET mesh:{ce}:state turns");
    assert_string_equal(rep->str, "1");
    freeReplyObject(rep);
    rep = tf_cmd(fx, "GET mesh:{ce}:idem:m1");
    assert_string_equal(rep->str, "{\"reply\":\"a\"}");
    freeReplyObject(rep);
    /* A message with ts keeps it; compact JSON. */
    rep = tf_cmd(fx, "LINDEX mesh:{ce}:log 1");
    assert_string_equal(rep->str, "{\"role\":\"assistant\",\"text\":\"a\",\"ts\":5}");
    freeReplyObject(rep);
    /* end released the lease held by its owner. */
    assert_int_equal(tf_int(fx, "EXISTS mesh:{ce}:lease"), 0);

    /* State shows in the next begin. */
    d = op_ok(fx, &res, "turn.begin", "ce",
              "{\"message_id\":\"m2\",\"owner\":\"o\",\"text\":\"x\"}");
    json_t *st = json_object_get(d, "state");
    assert_string_equal(tf_str(st, "agent"), "auto_claims");
    assert_string_equal(tf_str(st, "slot.plate"), "沪A12345");
    assert_string_equal(tf_str(st, "turns"), "1");
    assert_non_null(json_object_get(st, "created"));
    assert_non_null(json_object_get(st, "updated"));
    tf_res_clear(&res);
}

static void test_lease(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    begin(fx, &res, "cl", "m1", "A", "one");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    redisReply *rep = tf_cmd(fx, "GET mesh:{cl}:lease");
    assert_string_equal(rep->str, "A");
    freeReplyObject(rep);
    long long pttl = tf_int(fx, "PTTL mesh:{cl}:lease");
    assert_true(pttl > 0 && pttl <= MEMORY_LEASE_DEFAULT_MS);

    /* Another router's turn on the same conversation: EBUSY, nothing appended. */
    begin(fx, &res, "cl", "m2", "B", "two");
    assert_int_equal(res.status, MESH_EBUSY);
    assert_false(res.sync);
    assert_non_null(strstr(res.err, "lease"));
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cl}:log"), 1);

    /* turn.abort by a non-holder does not release it. */
    op(fx, &res, "turn.abort", "cl", "{\"message_id\":\"m2\",\"owner\":\"B\"}");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "EXISTS mesh:{cl}:lease"), 1);
    assert_int_equal(tf_int(fx, "EXISTS mesh:{cl}:idem:m1"), 1);

    /* The holder aborts: lease released; the pending marker (with the user
     * message's sequence number) and the message are kept. */
    json_t *d = op_ok(fx, &res, "turn.abort", "cl", "{\"message_id\":\"m1\",\"owner\":\"A\"}");
    assert_int_equal(json_object_size(d), 0);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "EXISTS mesh:{cl}:lease"), 0);
    rep = tf_cmd(fx, "GET mesh:{cl}:idem:m1");
    assert_string_equal(rep->str, "pending:1");
    freeReplyObject(rep);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cl}:log"), 1);

    /* Now B gets through. */
    begin(fx, &res, "cl", "m2", "B", "two");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);

    /* A short lease expires on its own (a crashed router does not block forever). */
    op(fx, &res, "turn.begin", "cl2",
       "{\"message_id\":\"m1\",\"owner\":\"A\",\"text\":\"x\",\"lease_ms\":1}");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    uint64_t deadline = mh_now_ms() + TF_WAIT_MS;
    while (tf_int(fx, "EXISTS mesh:{cl2}:lease") != 0 && mh_now_ms() < deadline)
        ;
    begin(fx, &res, "cl2", "m1", "C", "x");
    assert_int_equal(res.status, 0);
    /* C resumes the same message: still appended only once. */
    assert_int_equal(json_array_size(json_object_get(res.data, "history")), 1);
    tf_res_clear(&res);
}

/* Wait (bounded) until the key is gone, e.g. a short lease expired. */
static void wait_key_gone(tf_t *fx, const char *key)
{
    uint64_t deadline = mh_now_ms() + TF_WAIT_MS;
    while (tf_int(fx, "EXISTS %s", key) != 0 && mh_now_ms() < deadline)
        ;
    assert_int_equal(tf_int(fx, "EXISTS %s", key), 0);
}

static void renew(tf_t *fx, tf_res_t *res, const char *conv, const char *owner, int lease_ms)
{
    char args[256];
    snprintf(args, sizeof args, "{\"owner\":\"%s\",\"lease_ms\":%d}", owner, lease_ms);
    op(fx, res, "lease.renew", conv, args);
}

/* lease.renew extends the owner's lease, never another owner's, never a lapsed one. */
static void test_lease_renew(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    op(fx, &res, "turn.begin", "cr1",
       "{\"message_id\":\"m1\",\"owner\":\"A\",\"text\":\"x\",\"lease_ms\":400}");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    assert_true(tf_int(fx, "PTTL mesh:{cr1}:lease") <= 400);

    /* The owner renews: the lease now lives lease_ms from the renewal. */
    renew(fx, &res, "cr1", "A", 60000);
    assert_int_equal(res.status, 0);
    assert_true(jbool(res.data, "held"));
    assert_null(json_object_get(res.data, "holder"));
    tf_res_clear(&res);
    long long pttl = tf_int(fx, "PTTL mesh:{cr1}:lease");
    assert_true(pttl > 50000 && pttl <= 60000);

    /* Another owner cannot extend (or take) it, and learns who holds it. */
    renew(fx, &res, "cr1", "B", 100);
    assert_int_equal(res.status, 0);
    assert_false(jbool(res.data, "held"));
    assert_string_equal(tf_str(res.data, "holder"), "A");
    tf_res_clear(&res);
    assert_true(tf_int(fx, "PTTL mesh:{cr1}:lease") > 50000);
    redisReply *rep = tf_cmd(fx, "GET mesh:{cr1}:lease");
    assert_string_equal(rep->str, "A");
    freeReplyObject(rep);

    /* A lapsed lease is not taken back by a renewal: held false, no holder. */
    freeReplyObject(tf_cmd(fx, "PEXPIRE mesh:{cr1}:lease 1"));
    wait_key_gone(fx, "mesh:{cr1}:lease");
    renew(fx, &res, "cr1", "A", 60000);
    assert_int_equal(res.status, 0);
    assert_false(jbool(res.data, "held"));
    assert_null(json_object_get(res.data, "holder"));
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "EXISTS mesh:{cr1}:lease"), 0);
}

/* turn.end of a turn whose lease expired and was taken over writes nothing. */
static void test_end_lease_lost(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    op(fx, &res, "turn.begin", "cx",
       "{\"message_id\":\"m1\",\"owner\":\"A\",\"text\":\"first\",\"lease_ms\":1}");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    wait_key_gone(fx, "mesh:{cx}:lease");
    /* Another router's turn takes the conversation over. */
    begin(fx, &res, "cx", "m2", "B", "second");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);

    end(fx, &res, "cx", "m1", "A", "late answer");
    assert_int_equal(res.status, MESH_ESTATE);
    assert_false(res.sync);
    assert_non_null(strstr(res.err, "lease lost"));
    tf_res_clear(&res);
    /* Nothing written: the log holds the two user messages, m1 is still pending. */
    assert_int_equal(tf_int(fx, "LLEN mesh:{cx}:log"), 2);
    redisReply *rep = tf_cmd(fx, "GET mesh:{cx}:idem:m1");
    assert_string_equal(rep->str, "pending:1");
    freeReplyObject(rep);
    rep = tf_cmd(fx, "GET mesh:{cx}:lease");
    assert_string_equal(rep->str, "B");
    freeReplyObject(rep);
    assert_int_equal(tf_int(fx, "HEXISTS mesh:{cx}:state turns"), 0);

    /* B finishes normally. */
    end(fx, &res, "cx", "m2", "B", "answer two");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);

    /* A lease that lapsed without anyone taking it does not stop turn.end:
     * no other turn ran in between. */
    op(fx, &res, "turn.begin", "cy",
       "{\"message_id\":\"m1\",\"owner\":\"A\",\"text\":\"slow\",\"lease_ms\":1}");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    wait_key_gone(fx, "mesh:{cy}:lease");
    end(fx, &res, "cy", "m1", "A", "still recorded");
    assert_int_equal(res.status, 0);
    assert_false(jbool(res.data, "duplicate"));
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cy}:log"), 2);
}

/*
 * A message interrupted mid-turn (router died, turn aborted) and retried
 * after later messages were recorded: the retry's history ends at its own
 * user message, the message is not appended again, and once answered the
 * message id is a duplicate as before.
 */
static void test_retry_pending_history(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    turn(fx, "cp", "m0", "earlier question");
    begin(fx, &res, "cp", "mA", "o1", "question A");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    redisReply *rep = tf_cmd(fx, "GET mesh:{cp}:idem:mA");
    assert_string_equal(rep->str, "pending:3");
    freeReplyObject(rep);
    /* The turn fails: abort keeps the marker. */
    op_ok(fx, &res, "turn.abort", "cp", "{\"message_id\":\"mA\",\"owner\":\"o1\"}");
    tf_res_clear(&res);
    rep = tf_cmd(fx, "GET mesh:{cp}:idem:mA");
    assert_string_equal(rep->str, "pending:3");
    freeReplyObject(rep);

    /* B is asked and answered in between. */
    begin(fx, &res, "cp", "mB", "o2", "question B");
    assert_int_equal(res.status, 0);
    assert_string_equal(tf_str(json_array_get(json_object_get(res.data, "history"), 3), "text"),
                        "question B");
    tf_res_clear(&res);
    end(fx, &res, "cp", "mB", "o2", "answer B");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cp}:log"), 5);

    /* A is retried: history ends at A, B's messages are not in it. */
    json_t *d = op_ok(fx, &res, "turn.begin", "cp",
                      "{\"message_id\":\"mA\",\"owner\":\"o3\",\"text\":\"question A\"}");
    assert_false(jbool(d, "duplicate"));
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 3);
    assert_string_equal(tf_str(json_array_get(hist, 0), "text"), "earlier question");
    assert_string_equal(tf_str(json_array_get(hist, 1), "role"), "assistant");
    assert_string_equal(tf_str(json_array_get(hist, 2), "text"), "question A");
    assert_string_equal(tf_str(json_array_get(hist, 2), "message_id"), "mA");
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cp}:log"), 5); /* not appended again */

    /* The window ends at A too. */
    d = op_ok(fx, &res, "turn.begin", "cp",
              "{\"message_id\":\"mA\",\"owner\":\"o3\",\"text\":\"question A\",\"window\":2}");
    hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 2);
    assert_string_equal(tf_str(json_array_get(hist, 0), "role"), "assistant");
    assert_string_equal(tf_str(json_array_get(hist, 1), "message_id"), "mA");
    tf_res_clear(&res);

    /* A is answered now; the answer goes to the end of the log. */
    end(fx, &res, "cp", "mA", "o3", "answer A");
    assert_int_equal(res.status, 0);
    assert_false(jbool(res.data, "duplicate"));
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cp}:log"), 6);
    rep = tf_cmd(fx, "HGET mesh:{cp}:state seq");
    assert_string_equal(rep->str, "6");
    freeReplyObject(rep);

    /* Duplicate detection of finished answers still works for both. */
    d = op_ok(fx, &res, "turn.begin", "cp",
              "{\"message_id\":\"mA\",\"owner\":\"o4\",\"text\":\"question A\"}");
    assert_true(jbool(d, "duplicate"));
    assert_string_equal(tf_str(json_object_get(d, "reply"), "reply"), "answer A");
    tf_res_clear(&res);
    d = op_ok(fx, &res, "turn.begin", "cp",
              "{\"message_id\":\"mB\",\"owner\":\"o4\",\"text\":\"question B\"}");
    assert_true(jbool(d, "duplicate"));
    assert_string_equal(tf_str(json_object_get(d, "reply"), "reply"), "answer B");
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cp}:log"), 6);
}

/* A retry after an abort does not append the user message a second time. */
static void test_abort_keeps_marker(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    for (int i = 0; i < 3; i++) {
        begin(fx, &res, "ca", "m1", "o1", "hello");
        assert_int_equal(res.status, 0);
        assert_int_equal(json_array_size(json_object_get(res.data, "history")), 1);
        tf_res_clear(&res);
        op_ok(fx, &res, "turn.abort", "ca", "{\"message_id\":\"m1\",\"owner\":\"o1\"}");
        tf_res_clear(&res);
        assert_int_equal(tf_int(fx, "EXISTS mesh:{ca}:lease"), 0);
    }
    assert_int_equal(tf_int(fx, "LLEN mesh:{ca}:log"), 1);
    redisReply *rep = tf_cmd(fx, "HGET mesh:{ca}:state seq");
    assert_string_equal(rep->str, "1");
    freeReplyObject(rep);
    turn(fx, "ca", "m1", "hello");
    assert_int_equal(tf_int(fx, "LLEN mesh:{ca}:log"), 2);
}

/* The pending message was trimmed away: the retry gets it back as its history alone. */
static void test_retry_pending_trimmed(void **state)
{
    tf_t *fx = *state;
    mesh_redis_destroy(&fx->r);
    memory_ops_destroy(&fx->ops);
    assert_true(tf_open(fx, 3));
    tf_res_t res;
    begin(fx, &res, "cq", "mA", "o1", "question A");
    tf_res_clear(&res);
    op_ok(fx, &res, "turn.abort", "cq", "{\"message_id\":\"mA\",\"owner\":\"o1\"}");
    tf_res_clear(&res);
    turn(fx, "cq", "m1", "one");
    turn(fx, "cq", "m2", "two");
    assert_int_equal(tf_int(fx, "LLEN mesh:{cq}:log"), 3);

    json_t *d = op_ok(fx, &res, "turn.begin", "cq",
                      "{\"message_id\":\"mA\",\"owner\":\"o2\",\"text\":\"question A\"}");
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 1);
    assert_string_equal(tf_str(json_array_get(hist, 0), "role"), "user");
    assert_string_equal(tf_str(json_array_get(hist, 0), "text"), "question A");
    assert_string_equal(tf_str(json_array_get(hist, 0), "message_id"), "mA");
    tf_res_clear(&res);
    /* Nothing appended for the retry. */
    assert_int_equal(tf_int(fx, "LLEN mesh:{cq}:log"), 3);
    redisReply *rep = tf_cmd(fx, "LINDEX mesh:{cq}:log -1");
    assert_non_null(strstr(rep->str, "\"assistant\""));
    freeReplyObject(rep);

    /* A log that does not match the sequence numbers (a foreign writer
     * appended without counting) is not trusted either. */
    begin(fx, &res, "cz", "mZ", "o1", "question Z");
    tf_res_clear(&res);
    freeReplyObject(tf_cmd(fx, "RPUSH mesh:{cz}:log %s", "{\"role\":\"user\",\"text\":\"x\"}"));
    d = op_ok(fx, &res, "turn.begin", "cz",
              "{\"message_id\":\"mZ\",\"owner\":\"o1\",\"text\":\"question Z\"}");
    hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 1);
    assert_string_equal(tf_str(json_array_get(hist, 0), "message_id"), "mZ");
    tf_res_clear(&res);
}

/* A marker written before sequence numbers existed ("pending") is still a pending marker. */
static void test_legacy_pending_marker(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    freeReplyObject(tf_cmd(fx, "RPUSH mesh:{cv}:log %s",
                           "{\"role\":\"user\",\"text\":\"old\",\"message_id\":\"m1\"}"));
    freeReplyObject(tf_cmd(fx, "SET mesh:{cv}:idem:m1 pending"));
    json_t *d = op_ok(fx, &res, "turn.begin", "cv",
                      "{\"message_id\":\"m1\",\"owner\":\"o\",\"text\":\"old\"}");
    assert_false(jbool(d, "duplicate"));
    assert_int_equal(json_array_size(json_object_get(d, "history")), 1);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cv}:log"), 1);
    end(fx, &res, "cv", "m1", "o", "answered");
    assert_int_equal(res.status, 0);
    assert_false(jbool(res.data, "duplicate"));
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cv}:log"), 2);
}

/* Two begins on one conversation in flight at once: exactly one wins. */
static void test_concurrent_begin(void **state)
{
    tf_t *fx = *state;
    tf_res_t a = {0}, b = {0};
    json_t *args_a = json_pack("{s:s, s:s, s:s}", "message_id", "ma", "owner", "A", "text", "a");
    json_t *args_b = json_pack("{s:s, s:s, s:s}", "message_id", "mb", "owner", "B", "text", "b");
    char err[256];
    assert_int_equal(
        memory_ops_run(fx->ops, "turn.begin", "cc", args_a, tf_on_done, &a, err, sizeof err), 0);
    assert_int_equal(
        memory_ops_run(fx->ops, "turn.begin", "cc", args_b, tf_on_done, &b, err, sizeof err), 0);
    json_decref(args_a);
    json_decref(args_b);
    assert_true(mh_loop_run_until(&fx->lp, tf_cond_done, &a, TF_WAIT_MS));
    assert_true(mh_loop_run_until(&fx->lp, tf_cond_done, &b, TF_WAIT_MS));
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, MESH_EBUSY);
    tf_res_clear(&a);
    tf_res_clear(&b);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cc}:log"), 1);
}

static void test_ttl_and_hash_tags(void **state)
{
    tf_t *fx = *state;
    turn(fx, "conv:42.a-b", "m1", "hi");
    tf_res_t res;
    begin(fx, &res, "conv:42.a-b", "m2", "owner-t", "again");
    tf_res_clear(&res);

    redisReply *keys = tf_cmd(fx, "KEYS *");
    assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
    /* log, ctx, state, idem:m1, idem:m2, lease */
    assert_int_equal(keys->elements, 6);
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = keys->element[i]->str;
        assert_true(strncmp(k, "mesh:{conv:42.a-b}:", 19) == 0);
        long long ttl = tf_int(fx, "PTTL %s", k);
        if (strstr(k, ":lease") != NULL) {
            assert_true(ttl > 0 && ttl <= MEMORY_LEASE_DEFAULT_MS);
        } else {
            /* Every conversation key carries the conversation TTL. */
            assert_true(ttl > (TF_TTL_S - 10) * 1000LL && ttl <= TF_TTL_S * 1000LL);
        }
    }
    freeReplyObject(keys);

    /* TTL is refreshed on each turn. */
    freeReplyObject(tf_cmd(fx, "EXPIRE mesh:{conv:42.a-b}:log 50"));
    freeReplyObject(tf_cmd(fx, "EXPIRE mesh:{conv:42.a-b}:state 50"));
    freeReplyObject(tf_cmd(fx, "EXPIRE mesh:{conv:42.a-b}:ctx 50"));
    turn(fx, "conv:42.a-b", "m3", "third");
    assert_true(tf_int(fx, "TTL mesh:{conv:42.a-b}:log") > TF_TTL_S - 10);
    assert_true(tf_int(fx, "TTL mesh:{conv:42.a-b}:state") > TF_TTL_S - 10);
    assert_true(tf_int(fx, "TTL mesh:{conv:42.a-b}:ctx") > TF_TTL_S - 10);
}

static void test_history_trimmed(void **state)
{
    tf_t *fx = *state;
    /* A second ops instance with MESH_HISTORY_MAX = 5. */
    mesh_redis_destroy(&fx->r);
    memory_ops_destroy(&fx->ops);
    assert_true(tf_open(fx, 5));
    char mid[16];
    for (int i = 0; i < 4; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        turn(fx, "ct", mid, "q");
    }
    assert_int_equal(tf_int(fx, "LLEN mesh:{ct}:log"), 5);
    tf_res_t res;
    json_t *d = op_ok(fx, &res, "conv.get", "ct", NULL);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 5);
    json_t *msgs = json_object_get(d, "messages");
    assert_int_equal(json_array_size(msgs), 5);
    /* The newest survive: the last is the assistant answer of m3. */
    assert_string_equal(tf_str(json_array_get(msgs, 4), "role"), "assistant");
    assert_string_equal(tf_str(json_array_get(msgs, 3), "message_id"), "m3");
    tf_res_clear(&res);
}

static void test_conv_get(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    op(fx, &res, "conv.get", "nobody", "{}");
    assert_int_equal(res.status, MESH_ENOTFOUND);
    assert_false(res.sync);
    tf_res_clear(&res);

    turn(fx, "cg", "m1", "one");
    turn(fx, "cg", "m2", "two");
    json_t *d = op_ok(fx, &res, "conv.get", "cg", "{\"limit\":3}");
    assert_string_equal(tf_str(d, "conversation_id"), "cg");
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 4);
    json_t *msgs = json_object_get(d, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    assert_string_equal(tf_str(json_array_get(msgs, 0), "role"), "assistant");
    assert_string_equal(tf_str(json_array_get(msgs, 1), "text"), "two");
    json_t *st = json_object_get(d, "state");
    assert_string_equal(tf_str(st, "turns"), "2");
    assert_string_equal(tf_str(st, "agent"), "policy_qa");
    tf_res_clear(&res);

    d = op_ok(fx, &res, "conv.get", "cg", "{\"limit\":0}");
    assert_int_equal(json_array_size(json_object_get(d, "messages")), 0);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 4);
    tf_res_clear(&res);

    /* A stored entry that is not a JSON object is skipped, not fatal. */
    freeReplyObject(tf_cmd(fx, "RPUSH mesh:{cg}:log %s", "not json"));
    d = op_ok(fx, &res, "conv.get", "cg", NULL);
    assert_int_equal(json_array_size(json_object_get(d, "messages")), 4);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 5);
    tf_res_clear(&res);
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
    tf_t *fx = *state;
    turn(fx, "cr", "m0", "warm");
    redisContext *mon = redisConnect("127.0.0.1", mh_redis_port(s_tf_redis));
    assert_true(mon != NULL && mon->err == 0);
    struct timeval tv = {.tv_sec = TF_WAIT_MS / 1000};
    redisSetTimeout(mon, tv);
    redisReply *ok = redisCommand(mon, "MONITOR");
    assert_non_null(ok);
    freeReplyObject(ok);

    turn(fx, "cr", "m1", "counted");
    freeReplyObject(tf_cmd(fx, "ECHO end-of-turn-marker"));

    /* begin + end: exactly two commands reached Redis. */
    assert_int_equal(monitored_commands(mon, "end-of-turn-marker"), 2);
    redisFree(mon);
}

static void test_noscript_fallback(void **state)
{
    tf_t *fx = *state;
    /* The script cache is flushed behind the service's back (failover, restart). */
    freeReplyObject(tf_cmd(fx, "SCRIPT FLUSH"));
    turn(fx, "cn", "m1", "still works");
    assert_int_equal(tf_int(fx, "LLEN mesh:{cn}:log"), 2);
}

static void test_redis_down(void **state)
{
    tf_t *fx = *state;
    tf_redis_down(fx);
    tf_res_t res;
    begin(fx, &res, "cu", "m1", "o", "hi");
    assert_int_equal(res.status, MESH_EUNAVAIL);
    assert_true(res.sync);
    assert_non_null(strstr(res.err, "redis"));
    tf_res_clear(&res);
    op(fx, &res, "conv.get", "cu", NULL);
    assert_int_equal(res.status, MESH_EUNAVAIL);
    tf_res_clear(&res);

    tf_redis_up_again(fx);
    begin(fx, &res, "cu", "m1", "o", "hi");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
}

/* A Redis that stops answering: the op times out and answers EUNAVAIL. */
static void test_redis_hung(void **state)
{
    tf_t *fx = *state;
    redisReply *info = tf_cmd(fx, "INFO server");
    const char *p = strstr(info->str, "process_id:");
    assert_non_null(p);
    pid_t pid = (pid_t)atol(p + strlen("process_id:"));
    freeReplyObject(info);
    assert_true(pid > 0);

    assert_int_equal(kill(pid, SIGSTOP), 0);
    tf_res_t res;
    uint64_t t0 = mh_now_ms();
    begin(fx, &res, "ch", "m1", "o", "hello?");
    uint64_t took = mh_now_ms() - t0;
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_int_equal(res.status, MESH_EUNAVAIL);
    assert_false(res.sync);
    assert_non_null(strstr(res.err, "deadline"));
    assert_true(took + 5 >= TF_REDIS_TIMEOUT_MS && took < TF_REDIS_TIMEOUT_MS + 1000);
    tf_res_clear(&res);

    /* Back: reconnects on its own and serves again. */
    assert_true(mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, TF_WAIT_MS));
    begin(fx, &res, "ch", "m2", "o", "there?");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
}

/* An op in flight when the connection fails answers EUNAVAIL exactly once. */
static void test_inflight_when_destroyed(void **state)
{
    tf_t *fx = *state;
    tf_res_t res = {0};
    json_t *args = json_pack("{s:s, s:s, s:s}", "message_id", "m", "owner", "o", "text", "t");
    char err[256];
    assert_int_equal(
        memory_ops_run(fx->ops, "turn.begin", "ci", args, tf_on_done, &res, err, sizeof err), 0);
    json_decref(args);
    /* ops may go first: the op does not reference it. */
    memory_ops_destroy(&fx->ops);
    mesh_redis_destroy(&fx->r);
    assert_int_equal(res.calls, 1);
    assert_int_equal(res.status, MESH_EUNAVAIL);
    tf_res_clear(&res);
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
    tf_t *fx = *state;
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
        tf_res_t res;
        op(fx, &res, c->op, c->conv, c->args);
        if (res.status != c->status || !res.sync || strstr(res.err, c->err_has) == NULL)
            fail_msg("case %zu (%s %.60s): status %d sync %d err '%s', want %d with '%s'", i, c->op,
                     c->args ? c->args : "(null)", res.status, res.sync, res.err, c->status,
                     c->err_has);
        tf_res_clear(&res);
    }
    /* Nothing reached Redis. */
    redisReply *keys = tf_cmd(fx, "KEYS *");
    assert_int_equal(keys->elements, 0);
    freeReplyObject(keys);
}

static void test_unknown_keys_kept(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    begin(fx, &res, "ck", "m1", "o", "hi");
    tf_res_clear(&res);
    op_ok(fx, &res, "turn.end", "ck",
          "{\"message_id\":\"m1\",\"owner\":\"o\",\"ignored\":1,\"reply\":{},"
          "\"messages\":[{\"role\":\"assistant\",\"text\":\"\",\"tool_calls\":"
          "[{\"id\":\"c1\",\"name\":\"policy.lookup\",\"arguments\":{\"policy_no\":\"P00001\"}}]},"
          "{\"role\":\"tool\",\"name\":\"policy.lookup\",\"tool_call_id\":\"c1\",\"ok\":true,"
          "\"text\":\"{}\",\"x-extra\":[1,2]}]}");
    tf_res_clear(&res);
    json_t *d = op_ok(fx, &res, "conv.get", "ck", NULL);
    json_t *msgs = json_object_get(d, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    json_t *calls = json_object_get(json_array_get(msgs, 1), "tool_calls");
    assert_string_equal(tf_str(json_array_get(calls, 0), "name"), "policy.lookup");
    json_t *tool = json_array_get(msgs, 2);
    assert_true(jbool(tool, "ok"));
    assert_int_equal(json_array_size(json_object_get(tool, "x-extra")), 2);
    /* ts was set by memory. */
    assert_true(json_is_integer(json_object_get(tool, "ts")));
    tf_res_clear(&res);
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
static void end_with_tools(tf_t *fx, tf_res_t *res, const char *conv, const char *mid,
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
static void tool_turn(tf_t *fx, const char *conv, const char *mid, const char *text,
                      const char *answer)
{
    tf_res_t res;
    begin(fx, &res, conv, mid, "owner-t", text);
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    end_with_tools(fx, &res, conv, mid, "owner-t", answer);
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
}

/* Every history entry is a user message or an assistant answer without tool calls. */
static void assert_context_only(const json_t *hist)
{
    size_t i;
    const json_t *m;
    json_array_foreach(hist, i, m)
    {
        const char *role = tf_str(m, "role");
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
    tf_t *fx = *state;
    tool_turn(fx, "cc1", "m1", "我的保单 P10023 保障什么？", "answer one");
    tool_turn(fx, "cc1", "m2", "免赔额是多少？", "answer two");
    /* Log: 2 x (user, assistant+tool_calls, tool, answer). ctx: 2 x (user, answer). */
    assert_int_equal(tf_int(fx, "LLEN mesh:{cc1}:log"), 8);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cc1}:ctx"), 4);
    static const int log_of_ctx[] = {0, 3, 4, 7};
    for (int i = 0; i < 4; i++) {
        redisReply *c = tf_cmd(fx, "LINDEX mesh:{cc1}:ctx %d", i);
        redisReply *l = tf_cmd(fx, "LINDEX mesh:{cc1}:log %d", log_of_ctx[i]);
        assert_int_equal(c->type, REDIS_REPLY_STRING);
        assert_int_equal(l->type, REDIS_REPLY_STRING);
        assert_string_equal(c->str, l->str); /* same bytes: compact JSON, same ts */
        freeReplyObject(c);
        freeReplyObject(l);
    }

    /* The next question's history: no tool message, no tool call, ends at the question. */
    tf_res_t res;
    json_t *d = op_ok(fx, &res, "turn.begin", "cc1",
                      "{\"message_id\":\"m3\",\"owner\":\"o\",\"text\":\"等待期多久？\"}");
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 5);
    assert_context_only(hist);
    assert_string_equal(tf_str(json_array_get(hist, 0), "text"), "我的保单 P10023 保障什么？");
    assert_string_equal(tf_str(json_array_get(hist, 1), "text"), "answer one");
    assert_string_equal(tf_str(json_array_get(hist, 1), "agent"), "policy_qa");
    assert_string_equal(tf_str(json_array_get(hist, 3), "text"), "answer two");
    assert_string_equal(tf_str(json_array_get(hist, 4), "message_id"), "m3");
    tf_res_clear(&res);

    /* The window counts ctx entries. */
    d = op_ok(fx, &res, "turn.begin", "cc1",
              "{\"message_id\":\"m3\",\"owner\":\"o\",\"text\":\"等待期多久？\",\"window\":2}");
    hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 2);
    assert_string_equal(tf_str(json_array_get(hist, 0), "text"), "answer two");
    tf_res_clear(&res);

    /* conv.get still reads the whole log, tool results included. */
    d = op_ok(fx, &res, "conv.get", "cc1", NULL);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 9);
    json_t *msgs = json_object_get(d, "messages");
    assert_int_equal(json_array_size(msgs), 9);
    assert_string_equal(tf_str(json_array_get(msgs, 2), "role"), "tool");
    assert_string_equal(tf_str(json_array_get(msgs, 2), "text"), big_tool_text());
    assert_int_equal(json_array_size(json_object_get(json_array_get(msgs, 1), "tool_calls")), 1);
    tf_res_clear(&res);

    /* An assistant message with an empty tool_calls list is an answer: it goes to ctx. */
    op_ok(fx, &res, "turn.end", "cc1",
          "{\"message_id\":\"m3\",\"owner\":\"o\",\"reply\":{},"
          "\"messages\":[{\"role\":\"assistant\",\"text\":\"three\",\"tool_calls\":[]},"
          "{\"role\":\"tool\",\"text\":\"{}\"}]}");
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cc1}:log"), 11);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cc1}:ctx"), 6);
    redisReply *last = tf_cmd(fx, "LINDEX mesh:{cc1}:ctx -1");
    assert_non_null(strstr(last->str, "\"three\""));
    freeReplyObject(last);
}

/* ctx is trimmed to MESH_HISTORY_MAX and carries the conversation TTL, like the log. */
static void test_ctx_trim_and_ttl(void **state)
{
    tf_t *fx = *state;
    mesh_redis_destroy(&fx->r);
    memory_ops_destroy(&fx->ops);
    assert_true(tf_open(fx, 3));
    char mid[16];
    for (int i = 0; i < 3; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        tool_turn(fx, "ct2", mid, "question", "answer");
    }
    assert_int_equal(tf_int(fx, "LLEN mesh:{ct2}:log"), 3);
    assert_int_equal(tf_int(fx, "LLEN mesh:{ct2}:ctx"), 3);
    /* The newest survive: m1's answer, m2's question and answer. */
    redisReply *r = tf_cmd(fx, "LINDEX mesh:{ct2}:ctx 1");
    assert_non_null(strstr(r->str, "\"message_id\":\"m2\""));
    freeReplyObject(r);
    long long ttl = tf_int(fx, "PTTL mesh:{ct2}:ctx");
    assert_true(ttl > (TF_TTL_S - 10) * 1000LL && ttl <= TF_TTL_S * 1000LL);

    /* turn.begin and turn.end both refresh it. */
    freeReplyObject(tf_cmd(fx, "EXPIRE mesh:{ct2}:ctx 50"));
    tf_res_t res;
    begin(fx, &res, "ct2", "m9", "o", "again");
    tf_res_clear(&res);
    assert_true(tf_int(fx, "TTL mesh:{ct2}:ctx") > TF_TTL_S - 10);
    assert_int_equal(tf_int(fx, "LLEN mesh:{ct2}:ctx"), 3);
    freeReplyObject(tf_cmd(fx, "EXPIRE mesh:{ct2}:ctx 50"));
    end(fx, &res, "ct2", "m9", "o", "done");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    assert_true(tf_int(fx, "TTL mesh:{ct2}:ctx") > TF_TTL_S - 10);
}

/*
 * ctx changes only together with the log, in the same script: a refused
 * begin (lease busy), a refused end (lease lost), a duplicate end and a
 * duplicate begin leave both lists as they were.
 */
static void test_ctx_atomic_with_log(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    tool_turn(fx, "ca2", "m0", "first", "zero");
    op(fx, &res, "turn.begin", "ca2",
       "{\"message_id\":\"m1\",\"owner\":\"A\",\"text\":\"x\",\"lease_ms\":60000}");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{ca2}:log"), 5);
    assert_int_equal(tf_int(fx, "LLEN mesh:{ca2}:ctx"), 3);

    begin(fx, &res, "ca2", "m2", "B", "y"); /* lease busy */
    assert_int_equal(res.status, MESH_EBUSY);
    tf_res_clear(&res);
    end_with_tools(fx, &res, "ca2", "m1", "B", "wrong owner"); /* lease held by A */
    assert_int_equal(res.status, MESH_ESTATE);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{ca2}:log"), 5);
    assert_int_equal(tf_int(fx, "LLEN mesh:{ca2}:ctx"), 3);

    end_with_tools(fx, &res, "ca2", "m1", "A", "one");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{ca2}:log"), 8);
    assert_int_equal(tf_int(fx, "LLEN mesh:{ca2}:ctx"), 4);
    end_with_tools(fx, &res, "ca2", "m1", "A", "one again"); /* duplicate */
    assert_true(jbool(res.data, "duplicate"));
    tf_res_clear(&res);
    begin(fx, &res, "ca2", "m1", "C", "x"); /* duplicate */
    assert_true(jbool(res.data, "duplicate"));
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{ca2}:log"), 8);
    assert_int_equal(tf_int(fx, "LLEN mesh:{ca2}:ctx"), 4);
    /* seq still counts log messages (the markers rely on it). */
    redisReply *rep = tf_cmd(fx, "HGET mesh:{ca2}:state seq");
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
    tf_t *fx = *state;
    tf_res_t res;
    tool_turn(fx, "cr2", "m0", "earlier question", "earlier answer");
    begin(fx, &res, "cr2", "mA", "o1", "question A");
    tf_res_clear(&res);
    op_ok(fx, &res, "turn.abort", "cr2", "{\"message_id\":\"mA\",\"owner\":\"o1\"}");
    tf_res_clear(&res);
    tool_turn(fx, "cr2", "mB", "question B", "answer B");
    tool_turn(fx, "cr2", "mC", "question C", "answer C");
    assert_int_equal(tf_int(fx, "LLEN mesh:{cr2}:ctx"), 7);

    json_t *d = op_ok(fx, &res, "turn.begin", "cr2",
                      "{\"message_id\":\"mA\",\"owner\":\"o2\",\"text\":\"question A\"}");
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 3);
    assert_context_only(hist);
    assert_string_equal(tf_str(json_array_get(hist, 0), "text"), "earlier question");
    assert_string_equal(tf_str(json_array_get(hist, 1), "text"), "earlier answer");
    assert_string_equal(tf_str(json_array_get(hist, 2), "message_id"), "mA");
    tf_res_clear(&res);
    /* Not appended again to either list. */
    assert_int_equal(tf_int(fx, "LLEN mesh:{cr2}:log"), 13);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cr2}:ctx"), 7);

    /* Answered now: its answer goes to the end of both lists. */
    end_with_tools(fx, &res, "cr2", "mA", "o2", "answer A");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{cr2}:ctx"), 8);
    redisReply *rep = tf_cmd(fx, "LINDEX mesh:{cr2}:ctx -1");
    assert_non_null(strstr(rep->str, "answer A"));
    freeReplyObject(rep);
}

/*
 * A conversation recorded before ctx existed (log only): the first begin
 * builds ctx once from the log, keeping the user messages and the answers.
 */
static void test_ctx_built_from_old_log(void **state)
{
    tf_t *fx = *state;
    static const char *const old[] = {
        "{\"role\":\"user\",\"text\":\"P10023?\",\"message_id\":\"m0\",\"ts\":1}",
        "{\"role\":\"assistant\",\"text\":\"\",\"tool_calls\":[{\"id\":\"call_1\","
        "\"name\":\"policy.lookup\",\"arguments\":{}}],\"ts\":2}",
        "{\"role\":\"tool\",\"name\":\"policy.lookup\",\"text\":\"{}\",\"ts\":3}",
        "{\"role\":\"assistant\",\"text\":\"old answer\",\"ts\":4}",
        "not json",
    };
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        freeReplyObject(tf_cmd(fx, "RPUSH mesh:{co}:log %s", old[i]));
    freeReplyObject(tf_cmd(fx, "HSET mesh:{co}:state seq 5 turns 1"));

    tf_res_t res;
    json_t *d = op_ok(fx, &res, "turn.begin", "co",
                      "{\"message_id\":\"m1\",\"owner\":\"o\",\"text\":\"deductible?\"}");
    json_t *hist = json_object_get(d, "history");
    assert_int_equal(json_array_size(hist), 3);
    assert_context_only(hist);
    assert_string_equal(tf_str(json_array_get(hist, 0), "text"), "P10023?");
    assert_string_equal(tf_str(json_array_get(hist, 1), "text"), "old answer");
    assert_string_equal(tf_str(json_array_get(hist, 2), "text"), "deductible?");
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{co}:ctx"), 3);
    assert_int_equal(tf_int(fx, "LLEN mesh:{co}:log"), 6);
    long long ttl = tf_int(fx, "PTTL mesh:{co}:ctx");
    assert_true(ttl > 0 && ttl <= TF_TTL_S * 1000LL);
    /* Once only: the next begin does not copy the log again. */
    end(fx, &res, "co", "m1", "o", "new answer");
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "LLEN mesh:{co}:ctx"), 4);
}

/* turn.end "trace" is stored per turn in the traces hash (atomically, with the TTL);
 * trace.get reads it back. */
static void test_trace_stored_per_turn(void **state)
{
    tf_t *fx = *state;
    tf_res_t res;
    turn(fx, "ctr", "m1", "first"); /* turn 1: no trace sent */
    begin(fx, &res, "ctr", "m2", "owner-t", "second");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    op(fx, &res, "turn.end", "ctr",
       "{\"message_id\":\"m2\",\"owner\":\"owner-t\",\"messages\":[],\"reply\":{},"
       "\"trace\":[{\"name\":\"router turn\",\"span_id\":\"00f067aa0ba902b7\"}]}");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    /* One declared hash per conversation (issue 7): field = turn number, with the TTL. */
    assert_true(tf_int(fx, "TTL mesh:{ctr}:traces") > 0);
    assert_int_equal(tf_int(fx, "HLEN mesh:{ctr}:traces"), 1);
    assert_int_equal(tf_int(fx, "HEXISTS mesh:{ctr}:traces 2"), 1);
    assert_int_equal(tf_int(fx, "EXISTS mesh:{ctr}:trace:2"), 0);

    json_t *d = op_ok(fx, &res, "trace.get", "ctr", "{\"turn\":2}");
    assert_int_equal(json_integer_value(json_object_get(d, "turn")), 2);
    json_t *spans = json_object_get(d, "spans");
    assert_int_equal(json_array_size(spans), 1);
    assert_string_equal(tf_str(json_array_get(spans, 0), "span_id"), "00f067aa0ba902b7");
    tf_res_clear(&res);

    op(fx, &res, "trace.get", "ctr", "{\"turn\":1}"); /* a turn without a trace */
    assert_int_equal(res.status, MESH_ENOTFOUND);
    tf_res_clear(&res);
    op(fx, &res, "trace.get", "ctr", "{\"turn\":0}");
    assert_int_equal(res.status, MESH_EINVAL);
    tf_res_clear(&res);
    op(fx, &res, "trace.get", "ctr", "{\"turn\":\"2\"}");
    assert_int_equal(res.status, MESH_EINVAL);
    tf_res_clear(&res);

    /* A malformed trace is refused before anything is written. */
    begin(fx, &res, "ctr", "m3", "owner-t", "third");
    assert_int_equal(res.status, 0);
    tf_res_clear(&res);
    op(fx, &res, "turn.end", "ctr",
       "{\"message_id\":\"m3\",\"owner\":\"owner-t\",\"messages\":[],\"reply\":{},"
       "\"trace\":[1]}");
    assert_int_equal(res.status, MESH_EINVAL);
    tf_res_clear(&res);
    assert_int_equal(tf_int(fx, "HEXISTS mesh:{ctr}:traces 3"), 0);
}

/* Timelines written by an older memory (a per-turn string key) stay readable. */
static void test_trace_old_key_fallback(void **state)
{
    tf_t *fx = *state;
    turn(fx, "cto", "m1", "first");
    freeReplyObject(tf_cmd(fx, "SET mesh:{cto}:trace:1 [{\"name\":\"old\"}] EX 100"));
    tf_res_t res;
    json_t *d = op_ok(fx, &res, "trace.get", "cto", "{\"turn\":1}");
    assert_string_equal(tf_str(json_array_get(json_object_get(d, "spans"), 0), "name"), "old");
    tf_res_clear(&res);
    /* The hash wins when both exist. */
    freeReplyObject(tf_cmd(fx, "HSET mesh:{cto}:traces 1 [{\"name\":\"new\"}]"));
    d = op_ok(fx, &res, "trace.get", "cto", "{\"turn\":1}");
    assert_string_equal(tf_str(json_array_get(json_object_get(d, "spans"), 0), "name"), "new");
    tf_res_clear(&res);
}

/* The traces hash keeps the newest 100 turns' timelines (bounded like the log). */
static void test_trace_hash_bounded(void **state)
{
    tf_t *fx = *state;
    char mid[16], args[256];
    tf_res_t res;
    for (int i = 1; i <= 103; i++) {
        snprintf(mid, sizeof mid, "m%d", i);
        begin(fx, &res, "ctb", mid, "owner-t", "q");
        assert_int_equal(res.status, 0);
        tf_res_clear(&res);
        snprintf(args, sizeof args,
                 "{\"message_id\":\"%s\",\"owner\":\"owner-t\",\"messages\":[],\"reply\":{},"
                 "\"trace\":[{\"name\":\"turn %d\"}]}",
                 mid, i);
        op(fx, &res, "turn.end", "ctb", args);
        assert_int_equal(res.status, 0);
        tf_res_clear(&res);
    }
    assert_int_equal(tf_int(fx, "HLEN mesh:{ctb}:traces"), 100);
    assert_int_equal(tf_int(fx, "HEXISTS mesh:{ctb}:traces 3"), 0);
    assert_int_equal(tf_int(fx, "HEXISTS mesh:{ctb}:traces 4"), 1);
    op(fx, &res, "trace.get", "ctb", "{\"turn\":3}");
    assert_int_equal(res.status, MESH_ENOTFOUND);
    tf_res_clear(&res);
    json_t *d = op_ok(fx, &res, "trace.get", "ctb", "{\"turn\":103}");
    assert_string_equal(tf_str(json_array_get(json_object_get(d, "spans"), 0), "name"), "turn 103");
    tf_res_clear(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TF_TEST(test_begin_appends_once),
        TF_TEST(test_history_window),
        TF_TEST(test_duplicate_after_end),
        TF_TEST(test_end_twice_is_noop),
        TF_TEST(test_lease),
        TF_TEST(test_lease_renew),
        TF_TEST(test_end_lease_lost),
        TF_TEST(test_retry_pending_history),
        TF_TEST(test_abort_keeps_marker),
        TF_TEST(test_retry_pending_trimmed),
        TF_TEST(test_legacy_pending_marker),
        TF_TEST(test_concurrent_begin),
        TF_TEST(test_ttl_and_hash_tags),
        TF_TEST(test_history_trimmed),
        TF_TEST(test_conv_get),
        TF_TEST(test_two_round_trips),
        TF_TEST(test_noscript_fallback),
        TF_TEST(test_redis_down),
        TF_TEST(test_redis_hung),
        TF_TEST(test_inflight_when_destroyed),
        TF_TEST(test_malformed_args),
        TF_TEST(test_unknown_keys_kept),
        TF_TEST(test_ctx_holds_context_only),
        TF_TEST(test_ctx_trim_and_ttl),
        TF_TEST(test_ctx_atomic_with_log),
        TF_TEST(test_ctx_retry_pending),
        TF_TEST(test_ctx_built_from_old_log),
        TF_TEST(test_trace_stored_per_turn),
        TF_TEST(test_trace_old_key_fallback),
        TF_TEST(test_trace_hash_bounded),
    };
    return TF_MAIN("memory_ops", tests);
}
