/*
 * test_memory_handoff.c - the handoff queue of the memory service
 * (services/memory/memory_handoff.c): turn.end that leaves a conversation
 * pending queues it; handoff.claim / reply / note / release walk the state
 * machine; handoff.list lists and repairs the queue; the two metrics. Real
 * redis-server, memory_ops_call on a bare uv loop.
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

#include "memory_handoff.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_metrics.h"
#include "test_memory_fixture.h"

/* The value of a sample line "<name> <value>" in the global registry's rendering (-1: absent). */
static double metric(const char *name)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(mesh_metrics_render(mesh_metrics_global(), &text, &len), 0);
    double v = -1;
    size_t n = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    free(text);
    return v;
}

/* A turn whose turn.end writes state fields (JSON object text, may be NULL). */
static void turn_with_state(tf_t *fx, const char *conv, const char *mid, const char *state_json)
{
    tf_res_t r;
    char args[1024];
    snprintf(args, sizeof args, "{\"message_id\":\"%s\",\"owner\":\"o\",\"text\":\"hi %s\"}", mid,
             mid);
    tf_ok(fx, &r, "turn.begin", conv, NULL, args);
    tf_res_clear(&r);
    snprintf(args, sizeof args,
             "{\"message_id\":\"%s\",\"owner\":\"o\",\"messages\":[{\"role\":\"assistant\","
             "\"text\":\"ok\"}],\"reply\":{\"reply\":\"ok\"}%s%s}",
             mid, state_json != NULL ? ",\"state\":" : "", state_json != NULL ? state_json : "");
    tf_ok(fx, &r, "turn.end", conv, NULL, args);
    tf_res_clear(&r);
}

/* Put conv in the pending state through turn.end, as the router does. */
static void make_pending(tf_t *fx, const char *conv, const char *mid, long long at)
{
    char st[256];
    snprintf(st, sizeof st,
             "{\"agent\":\"claims_intake\",\"handoff\":\"pending\",\"handoff_reason\":\"injury "
             "reported\",\"handoff_at\":\"%lld\"}",
             at);
    turn_with_state(fx, conv, mid, st);
}

static long long zscore(tf_t *fx, const char *conv)
{
    redisReply *r = tf_cmd(fx, "ZSCORE mesh:{handoff}:queue %s", conv);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return v;
}

static char *hget(tf_t *fx, const char *conv, const char *field)
{
    redisReply *r = tf_cmd(fx, "HGET mesh:{%s}:state %s", conv, field);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

/* The log entry at index i (JSON parsed). */
static json_t *log_at(tf_t *fx, const char *list, const char *conv, long i)
{
    redisReply *r = tf_cmd(fx, "LINDEX mesh:{%s}:%s %ld", conv, list, i);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    json_t *m = json_loads(r->str, 0, NULL);
    freeReplyObject(r);
    assert_non_null(m);
    return m;
}

static void test_turn_end_queues_pending(void **state)
{
    tf_t *fx = *state;
    make_pending(fx, "hq1", "m1", 1700000000123LL);
    assert_int_equal(zscore(fx, "hq1"), 1700000000123LL);
    /* A conversation that is not pending is not queued. */
    turn_with_state(fx, "hq2", "m1", "{\"agent\":\"policy_qa\"}");
    assert_int_equal(zscore(fx, "hq2"), -1);
    /* Without handoff_at the score is the time of the turn.end. */
    turn_with_state(fx, "hq3", "m1", "{\"handoff\":\"pending\"}");
    assert_true(zscore(fx, "hq3") > 1700000000000LL);

    /* A lost ZADD (crash between the script and the ZADD) is repaired by the next turn.end
     * of the conversation (the router's handoff gate records each customer message). */
    freeReplyObject(tf_cmd(fx, "ZREM mesh:{handoff}:queue hq1"));
    turn_with_state(fx, "hq1", "m2", NULL);
    assert_int_equal(zscore(fx, "hq1"), 1700000000123LL);
    /* NX: a later turn never moves the wait's start. */
    make_pending(fx, "hq1", "m3", 1800000000000LL);
    assert_int_equal(zscore(fx, "hq1"), 1700000000123LL);
}

static void test_claim(void **state)
{
    tf_t *fx = *state;
    tf_res_t r;
    /* Not pending (bot answering; unknown conversation): ESTATE. */
    turn_with_state(fx, "hc", "m0", "{\"agent\":\"claims_intake\"}");
    tf_call(fx, &r, "handoff.claim", "hc", NULL, "{\"person\":\"alice\"}");
    assert_int_equal(r.status, MESH_ESTATE);
    tf_res_clear(&r);
    tf_call(fx, &r, "handoff.claim", "nobody", NULL, "{\"person\":\"alice\"}");
    assert_int_equal(r.status, MESH_ESTATE);
    tf_res_clear(&r);

    double waits0 = metric("mesh_handoff_wait_seconds_count");
    double sum0 = metric("mesh_handoff_wait_seconds_sum");
    long long at = (long long)time(NULL) * 1000LL - 90000; /* pending for 90 s */
    make_pending(fx, "hc", "m1", at);
    json_t *d = tf_ok(fx, &r, "handoff.claim", "hc", NULL, "{\"person\":\"alice\"}");
    assert_string_equal(tf_str(d, "state"), "human");
    assert_int_equal(json_integer_value(json_object_get(d, "since")), at);
    tf_res_clear(&r);
    char *h = hget(fx, "hc", "handoff"), *p = hget(fx, "hc", "handoff_person");
    assert_string_equal(h, "human");
    assert_string_equal(p, "alice");
    free(h);
    free(p);
    assert_true(metric("mesh_handoff_wait_seconds_count") == waits0 + 1);
    double waited = metric("mesh_handoff_wait_seconds_sum") - sum0;
    assert_true(waited >= 89.0 && waited < 150.0);
    /* Still in the queue (listed as held by a person until released). */
    assert_int_equal(zscore(fx, "hc"), at);

    /* Only a pending conversation can be claimed: a second claim names the holder. */
    tf_call(fx, &r, "handoff.claim", "hc", NULL, "{\"person\":\"bob\"}");
    assert_int_equal(r.status, MESH_ESTATE);
    assert_non_null(strstr(r.err, "alice"));
    tf_res_clear(&r);
    tf_call(fx, &r, "handoff.claim", "hc", NULL, "{\"person\":\"alice\"}");
    assert_int_equal(r.status, MESH_ESTATE);
    tf_res_clear(&r);
}

static void test_reply_note_release(void **state)
{
    tf_t *fx = *state;
    tf_res_t r;
    make_pending(fx, "hr", "m1", 1700000000000LL);
    /* Nobody holds it yet: no reply. */
    tf_call(fx, &r, "handoff.reply", "hr", NULL,
            "{\"person\":\"alice\",\"text\":\"hello\",\"message_id\":\"h1\"}");
    assert_int_equal(r.status, MESH_ESTATE);
    tf_res_clear(&r);
    tf_ok(fx, &r, "handoff.claim", "hr", NULL, "{\"person\":\"alice\"}");
    tf_res_clear(&r);

    /* Only the holder replies. */
    tf_call(fx, &r, "handoff.reply", "hr", NULL,
            "{\"person\":\"bob\",\"text\":\"hello\",\"message_id\":\"h1\"}");
    assert_int_equal(r.status, MESH_ESTATE);
    tf_res_clear(&r);
    long long log0 = tf_int(fx, "LLEN mesh:{hr}:log"), ctx0 = tf_int(fx, "LLEN mesh:{hr}:ctx");
    char *seq0 = hget(fx, "hr", "seq");
    json_t *d =
        tf_ok(fx, &r, "handoff.reply", "hr", NULL,
              "{\"person\":\"alice\",\"text\":\"您好，我是理赔员小王\",\"message_id\":\"h1\"}");
    assert_true(json_is_false(json_object_get(d, "duplicate")));
    tf_res_clear(&r);
    assert_int_equal(tf_int(fx, "LLEN mesh:{hr}:log"), log0 + 1);
    assert_int_equal(tf_int(fx, "LLEN mesh:{hr}:ctx"), ctx0 + 1); /* the model sees it later */
    char *seq1 = hget(fx, "hr", "seq");
    assert_int_equal(atoll(seq1), atoll(seq0) + 1);
    free(seq0);
    free(seq1);
    json_t *m = log_at(fx, "log", "hr", -1);
    assert_string_equal(tf_str(m, "role"), "assistant");
    assert_string_equal(tf_str(m, "name"), "human");
    assert_string_equal(tf_str(m, "person"), "alice");
    assert_string_equal(tf_str(m, "text"), "您好，我是理赔员小王");
    assert_string_equal(tf_str(m, "message_id"), "h1");
    assert_true(json_integer_value(json_object_get(m, "ts")) > 1700000000000LL);
    json_decref(m);
    /* Idempotent on message_id. */
    d = tf_ok(fx, &r, "handoff.reply", "hr", NULL,
              "{\"person\":\"alice\",\"text\":\"您好，我是理赔员小王\",\"message_id\":\"h1\"}");
    assert_true(json_is_true(json_object_get(d, "duplicate")));
    tf_res_clear(&r);
    assert_int_equal(tf_int(fx, "LLEN mesh:{hr}:log"), log0 + 1);

    /* A note: the log only, never the model's context. */
    tf_ok(fx, &r, "handoff.note", "hr", NULL,
          "{\"person\":\"alice\",\"text\":\"customer hurt his neck, asked for a call\"}");
    tf_res_clear(&r);
    assert_int_equal(tf_int(fx, "LLEN mesh:{hr}:log"), log0 + 2);
    assert_int_equal(tf_int(fx, "LLEN mesh:{hr}:ctx"), ctx0 + 1);
    m = log_at(fx, "log", "hr", -1);
    assert_string_equal(tf_str(m, "role"), "note");
    assert_string_equal(tf_str(m, "person"), "alice");
    assert_string_equal(tf_str(m, "text"), "customer hurt his neck, asked for a call");
    json_decref(m);
    tf_call(fx, &r, "handoff.note", "no-such-conv", NULL, "{\"person\":\"a\",\"text\":\"x\"}");
    assert_int_equal(r.status, MESH_ENOTFOUND);
    tf_res_clear(&r);

    /* Release: only by the holder; clears the handoff, notes the summary, leaves the queue. */
    tf_call(fx, &r, "handoff.release", "hr", NULL, "{\"person\":\"bob\",\"summary\":\"x\"}");
    assert_int_equal(r.status, MESH_ESTATE);
    tf_res_clear(&r);
    assert_true(zscore(fx, "hr") > 0);
    tf_ok(fx, &r, "handoff.release", "hr", NULL,
          "{\"person\":\"alice\",\"summary\":\"called back; claim continues with the bot\"}");
    tf_res_clear(&r);
    assert_int_equal(tf_int(fx, "HEXISTS mesh:{hr}:state handoff"), 0);
    assert_int_equal(tf_int(fx, "HEXISTS mesh:{hr}:state handoff_reason"), 0);
    assert_int_equal(tf_int(fx, "HEXISTS mesh:{hr}:state handoff_at"), 0);
    assert_int_equal(tf_int(fx, "HEXISTS mesh:{hr}:state handoff_person"), 0);
    assert_int_equal(zscore(fx, "hr"), -1);
    m = log_at(fx, "log", "hr", -1);
    assert_string_equal(tf_str(m, "role"), "note");
    assert_string_equal(tf_str(m, "text"), "called back; claim continues with the bot");
    json_decref(m);
    /* After the release: a new reply is refused, the retried one is still a duplicate. */
    tf_call(fx, &r, "handoff.reply", "hr", NULL,
            "{\"person\":\"alice\",\"text\":\"more\",\"message_id\":\"h2\"}");
    assert_int_equal(r.status, MESH_ESTATE);
    tf_res_clear(&r);
    d = tf_ok(fx, &r, "handoff.reply", "hr", NULL,
              "{\"person\":\"alice\",\"text\":\"您好，我是理赔员小王\",\"message_id\":\"h1\"}");
    assert_true(json_is_true(json_object_get(d, "duplicate")));
    tf_res_clear(&r);
    tf_call(fx, &r, "handoff.release", "hr", NULL, "{\"person\":\"alice\",\"summary\":\"x\"}");
    assert_int_equal(r.status, MESH_ESTATE);
    tf_res_clear(&r);
    /* The bot answers again: a turn that does not set handoff does not queue it. */
    turn_with_state(fx, "hr", "m2", NULL);
    assert_int_equal(zscore(fx, "hr"), -1);
}

static void test_list_and_repair(void **state)
{
    tf_t *fx = *state;
    tf_res_t r;
    make_pending(fx, "la", "m1", 1700000000001LL);
    make_pending(fx, "lb", "m1", 1700000000002LL);
    make_pending(fx, "lc", "m1", 1700000000003LL);
    make_pending(fx, "ld", "m1", 1700000000004LL);
    tf_ok(fx, &r, "handoff.claim", "lb", NULL, "{\"person\":\"alice\"}");
    tf_res_clear(&r);
    /* Stale members: state changed behind the queue's back, expired, and a foreign member. */
    freeReplyObject(tf_cmd(fx, "HDEL mesh:{lc}:state handoff"));
    freeReplyObject(tf_cmd(fx, "ZADD mesh:{handoff}:queue 1600000000000 gone"));
    freeReplyObject(tf_cmd(fx, "ZADD mesh:{handoff}:queue 1600000000001 bad{x}"));
    assert_int_equal(tf_int(fx, "ZCARD mesh:{handoff}:queue"), 6);

    json_t *d = tf_ok(fx, &r, "handoff.list", NULL, NULL, "{\"limit\":10}");
    json_t *items = json_object_get(d, "items");
    assert_int_equal(json_array_size(items), 3);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 3);
    json_t *a = json_array_get(items, 0), *b = json_array_get(items, 1),
           *dd = json_array_get(items, 2);
    /* Oldest first. */
    assert_string_equal(tf_str(a, "conversation_id"), "la");
    assert_int_equal(json_integer_value(json_object_get(a, "since")), 1700000000001LL);
    assert_string_equal(tf_str(a, "state"), "pending");
    assert_string_equal(tf_str(a, "reason"), "injury reported");
    assert_string_equal(tf_str(a, "agent"), "claims_intake");
    assert_null(json_object_get(a, "person"));
    assert_string_equal(tf_str(b, "conversation_id"), "lb");
    assert_string_equal(tf_str(b, "state"), "human");
    assert_string_equal(tf_str(b, "person"), "alice");
    assert_string_equal(tf_str(dd, "conversation_id"), "ld");
    tf_res_clear(&r);
    /* Repaired: the stale members are gone from the queue. */
    assert_int_equal(tf_int(fx, "ZCARD mesh:{handoff}:queue"), 3);
    assert_int_equal(zscore(fx, "lc"), -1);
    assert_int_equal(zscore(fx, "gone"), -1);
    /* Pending: la and ld (lb is held by alice). */
    assert_true(metric("mesh_handoff_queue_length") == 2);

    /* limit */
    d = tf_ok(fx, &r, "handoff.list", NULL, NULL, "{\"limit\":1}");
    assert_int_equal(json_array_size(json_object_get(d, "items")), 1);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 3);
    tf_res_clear(&r);
    /* default limit; an empty queue */
    freeReplyObject(tf_cmd(fx, "DEL mesh:{handoff}:queue"));
    d = tf_ok(fx, &r, "handoff.list", NULL, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(d, "items")), 0);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 0);
    tf_res_clear(&r);
    assert_true(metric("mesh_handoff_queue_length") == 0);
}

static void test_bad_args(void **state)
{
    tf_t *fx = *state;
    static const struct {
        const char *op, *conv, *args;
        int status;
        const char *err_has;
    } cases[] = {
        {"handoff.claim", "x", "{}", MESH_EPROTO, "person"},
        {"handoff.claim", "x", NULL, MESH_EPROTO, "args"},
        {"handoff.claim", "x", "{\"person\":\"\"}", MESH_EPROTO, "person"},
        {"handoff.claim", "x", "{\"person\":\"a\\nb\"}", MESH_EPROTO, "person"},
        {"handoff.claim", NULL, "{\"person\":\"a\"}", MESH_EPROTO, "conv"},
        {"handoff.reply", "x", "{\"person\":\"a\",\"text\":\"t\"}", MESH_EPROTO, "message_id"},
        {"handoff.reply", "x", "{\"person\":\"a\",\"message_id\":\"m\"}", MESH_EPROTO, "text"},
        {"handoff.reply", "x", "{\"person\":\"a\",\"text\":7,\"message_id\":\"m\"}", MESH_EPROTO,
         "text"},
        {"handoff.note", "x", "{\"person\":\"a\"}", MESH_EPROTO, "text"},
        {"handoff.release", "x", "{\"person\":\"a\"}", MESH_EPROTO, "summary"},
        {"handoff.list", NULL, "{\"limit\":0}", MESH_EPROTO, "limit"},
        {"handoff.list", NULL, "{\"limit\":501}", MESH_EPROTO, "limit"},
        {"handoff.list", NULL, "[]", MESH_EPROTO, "args"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tf_res_t r;
        tf_call(fx, &r, cases[i].op, cases[i].conv, NULL, cases[i].args);
        if (r.status != cases[i].status || strstr(r.err, cases[i].err_has) == NULL)
            fail_msg("case %zu (%s): status %d err '%s'", i, cases[i].op, r.status, r.err);
        assert_true(r.sync);
        tf_res_clear(&r);
    }
    char person[MEMORY_PERSON_MAX + 2];
    memset(person, 'p', sizeof person - 1);
    person[sizeof person - 1] = '\0';
    char args[512];
    snprintf(args, sizeof args, "{\"person\":\"%s\"}", person);
    tf_res_t r;
    tf_call(fx, &r, "handoff.claim", "x", NULL, args);
    assert_int_equal(r.status, MESH_ETOOBIG);
    tf_res_clear(&r);
}

static void test_redis_down(void **state)
{
    tf_t *fx = *state;
    tf_redis_down(fx);
    tf_res_t r;
    tf_call(fx, &r, "handoff.list", NULL, NULL, NULL);
    assert_int_equal(r.status, MESH_EUNAVAIL);
    tf_res_clear(&r);
    tf_call(fx, &r, "handoff.claim", "x", NULL, "{\"person\":\"a\"}");
    assert_int_equal(r.status, MESH_EUNAVAIL);
    tf_res_clear(&r);
    tf_redis_up_again(fx);
    tf_ok(fx, &r, "handoff.list", NULL, NULL, NULL);
    tf_res_clear(&r);
}

/* A list in flight when the connection goes away answers once (EUNAVAIL). */
static void test_list_inflight_destroyed(void **state)
{
    tf_t *fx = *state;
    make_pending(fx, "li", "m1", 1700000000000LL);
    tf_res_t r = {0};
    memory_req_t req = {.op = "handoff.list"};
    json_t *now = NULL;
    char err[256];
    assert_int_equal(memory_ops_call(fx->ops, &req, tf_on_done, &r, &now, err, sizeof err), 0);
    assert_null(now);
    mesh_redis_destroy(&fx->r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, MESH_EUNAVAIL);
    tf_res_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TF_TEST(test_turn_end_queues_pending),
        TF_TEST(test_claim),
        TF_TEST(test_reply_note_release),
        TF_TEST(test_list_and_repair),
        TF_TEST(test_bad_args),
        TF_TEST(test_redis_down),
        TF_TEST(test_list_inflight_destroyed),
    };
    return TF_MAIN("memory_handoff", tests);
}
