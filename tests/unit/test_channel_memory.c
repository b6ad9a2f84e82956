/*
 * test_channel_memory.c - the memory ops of the chat channels
 * (services/memory/memory_bind.c) on a real redis-server: conv.bind,
 * delivery.record, delivery.list, and their argument checks.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memory_bind.h"
#include "mesh/mesh_log.h"
#include "test_memory_fixture.h"

static void test_bind(void **state)
{
    tf_t *fx = *state;
    tf_res_t r;
    json_t *d = tf_ok(fx, &r, "conv.bind", "tg:42", NULL,
                      "{\"channel\":\"telegram\",\"to\":{\"chat_id\":42}}");
    assert_true(json_is_object(d));
    tf_res_clear(&r);
    redisReply *rep = tf_cmd(fx, "HMGET mesh:{tg:42}:state channel channel_to");
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_string_equal(rep->element[0]->str, "telegram");
    assert_string_equal(rep->element[1]->str, "{\"chat_id\":42}");
    freeReplyObject(rep);
    long long ttl = tf_int(fx, "TTL mesh:{tg:42}:state");
    assert_true(ttl > 0 && ttl <= TF_TTL_S);
    /* the last channel wins */
    tf_ok(fx, &r, "conv.bind", "tg:42", NULL,
          "{\"channel\":\"webhook\",\"to\":{\"callback_url\":\"http://x/cb\"}}");
    tf_res_clear(&r);
    rep = tf_cmd(fx, "HGET mesh:{tg:42}:state channel");
    assert_string_equal(rep->str, "webhook");
    freeReplyObject(rep);
    /* conv.get shows the binding in the state */
    d = tf_ok(fx, &r, "conv.get", "tg:42", NULL, "{}");
    const json_t *st = json_object_get(d, "state");
    assert_string_equal(tf_str(st, "channel"), "webhook");
    tf_res_clear(&r);
}

static void test_record_and_list(void **state)
{
    tf_t *fx = *state;
    tf_res_t r;
    tf_ok(fx, &r, "conv.bind", "slack:T1:C1:1.2", NULL,
          "{\"channel\":\"slack\",\"to\":{\"channel\":\"C1\",\"thread_ts\":\"1.2\"}}");
    tf_res_clear(&r);
    json_t *d = tf_ok(fx, &r, "delivery.record", "slack:T1:C1:1.2", NULL,
                      "{\"channel\":\"slack\",\"to\":{\"channel\":\"C1\",\"thread_ts\":\"1.2\"},"
                      "\"text\":\"the answer\",\"reason\":\"http 500 after 3 attempts\"}");
    assert_true(json_is_true(json_object_get(d, "recorded")));
    tf_res_clear(&r);
    /* the note is in the conversation's log */
    redisReply *rep = tf_cmd(fx, "LRANGE mesh:{slack:T1:C1:1.2}:log -1 -1");
    assert_int_equal(rep->elements, 1);
    json_t *note = json_loads(rep->element[0]->str, 0, NULL);
    freeReplyObject(rep);
    assert_string_equal(tf_str(note, "role"), "note");
    assert_string_equal(tf_str(note, "event"), "undelivered");
    assert_string_equal(tf_str(note, "channel"), "slack");
    assert_string_equal(tf_str(note, "text"), "the answer");
    assert_string_equal(tf_str(note, "reason"), "http 500 after 3 attempts");
    assert_true(json_is_integer(json_object_get(note, "ts")));
    json_decref(note);
    /* a conversation that does not exist (expired): still on the failed list */
    d = tf_ok(fx, &r, "delivery.record", "tg:7", NULL,
              "{\"channel\":\"telegram\",\"to\":{\"chat_id\":7},\"text\":\"x\",\"reason\":\"r\"}");
    assert_true(json_is_false(json_object_get(d, "recorded")));
    tf_res_clear(&r);
    assert_int_equal(tf_int(fx, "EXISTS mesh:{tg:7}:log"), 0);
    d = tf_ok(fx, &r, "delivery.list", NULL, NULL, "{\"limit\":10}");
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 2);
    const json_t *items = json_object_get(d, "items");
    assert_int_equal(json_array_size(items), 2);
    /* newest first */
    assert_string_equal(tf_str(json_array_get(items, 0), "conversation_id"), "tg:7");
    const json_t *first = json_array_get(items, 1);
    assert_string_equal(tf_str(first, "conversation_id"), "slack:T1:C1:1.2");
    assert_string_equal(tf_str(first, "text"), "the answer");
    assert_string_equal(tf_str(json_object_get(first, "to"), "channel"), "C1");
    tf_res_clear(&r);
    d = tf_ok(fx, &r, "delivery.list", NULL, NULL, "{\"limit\":1}");
    assert_int_equal(json_array_size(json_object_get(d, "items")), 1);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 2);
    tf_res_clear(&r);
}

static void test_bad_args(void **state)
{
    tf_t *fx = *state;
    tf_res_t r;
    tf_call(fx, &r, "conv.bind", "c1", NULL, "{\"channel\":\"irc\",\"to\":{}}");
    assert_int_equal(r.status, MESH_EPROTO);
    assert_true(r.sync);
    tf_res_clear(&r);
    tf_call(fx, &r, "conv.bind", "c1", NULL, "{\"channel\":\"slack\",\"to\":\"C1\"}");
    assert_int_equal(r.status, MESH_EPROTO);
    tf_res_clear(&r);
    tf_call(fx, &r, "conv.bind", NULL, NULL, "{\"channel\":\"slack\",\"to\":{}}");
    assert_int_equal(r.status, MESH_EPROTO);
    tf_res_clear(&r);
    char big[2200];
    int n = snprintf(big, sizeof big, "{\"channel\":\"slack\",\"to\":{\"x\":\"");
    memset(big + n, 'a', 1100);
    snprintf(big + n + 1100, sizeof big - (size_t)n - 1100, "\"}}");
    tf_call(fx, &r, "conv.bind", "c1", NULL, big);
    assert_int_equal(r.status, MESH_ETOOBIG);
    tf_res_clear(&r);
    tf_call(fx, &r, "delivery.record", "c1", NULL,
            "{\"channel\":\"slack\",\"to\":{},\"text\":\"\",\"reason\":\"r\"}");
    assert_int_equal(r.status, MESH_EPROTO);
    tf_res_clear(&r);
    tf_call(fx, &r, "delivery.list", NULL, NULL, "{\"limit\":0}");
    assert_int_equal(r.status, MESH_EPROTO);
    tf_res_clear(&r);
    tf_call(fx, &r, "delivery.list", NULL, NULL, "{\"limit\":501}");
    assert_int_equal(r.status, MESH_EPROTO);
    tf_res_clear(&r);
    tf_call(fx, &r, "conv.bind", "bad id!", NULL, "{\"channel\":\"slack\",\"to\":{}}");
    assert_int_equal(r.status, MESH_EPROTO);
    tf_res_clear(&r);
    assert_int_equal(tf_int(fx, "DBSIZE"), 0);
}

int main(void)
{
    mesh_log_init("test_channel_memory", MESH_LOG_ERROR);
    (void)tf_cond_down; /* fixture helper these tests do not need */
    if (mh_init("unit_channel_memory") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bind, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_record_and_list, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, tf_setup, tf_teardown),
    };
    int failed = cmocka_run_group_tests(tests, tf_group_setup, tf_group_teardown);
    return mh_finish(failed);
}
