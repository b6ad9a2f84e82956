/*
 * test_handoff_queue.c - the handoff queue through the whole mesh. A libmesh
 * client drives the memory service through the router as the router's agent
 * loop would: turn.begin + turn.end that sets handoff=pending (what
 * state.update {handoff} leads to). Then a person's ops walk the
 * conversation: handoff.list shows it, handoff.claim takes it, handoff.reply
 * answers (twice: idempotent), handoff.note adds an internal note,
 * handoff.release gives it back to the bot. The conversation's log is read
 * over HTTP (GET /v1/conversations/{id}), and the memory service's /metrics
 * shows the queue length and the wait.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "mesh_harness.h"
#include "prom_parse.h"

#define CALL_TIMEOUT_MS 5000

static mh_mesh_t *s_mesh;
static int s_metrics_port;
static char s_metrics_env[48];
static char s_conv[64];
static char s_conv2[64];

static int group_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof o);
    s_metrics_port = mh_free_port();
    if (s_metrics_port <= 0)
        return -1;
    snprintf(s_metrics_env, sizeof s_metrics_env, "MESH_METRICS_PORT=%d", s_metrics_port);
    o.env[MH_MEMORY][0] = s_metrics_env;
    s_mesh = mh_mesh_start(&o);
    if (s_mesh == NULL)
        return -1;
    snprintf(s_conv, sizeof s_conv, "conv-handoff-%d", (int)getpid());
    snprintf(s_conv2, sizeof s_conv2, "conv-handoff2-%d", (int)getpid());
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

/* One memory op through the router; returns the status, *data (caller decrefs) the data. */
static int mem(const char *op, const char *conv, const char *args_json, json_t **data)
{
    json_t *args = args_json != NULL ? json_loads(args_json, 0, NULL) : NULL;
    if (args_json != NULL && args == NULL)
        fail_msg("bad test JSON %s", args_json);
    json_t *d = NULL;
    int st = mh_mesh_call(s_mesh, "memory", op, conv, args, CALL_TIMEOUT_MS, &d);
    json_decref(args);
    if (data != NULL)
        *data = d;
    else
        json_decref(d);
    return st;
}

/* A customer turn recorded the way the router does, with state fields for turn.end. */
static void turn(const char *conv, const char *mid, const char *text, const char *state_json)
{
    char args[1024];
    snprintf(args, sizeof args, "{\"message_id\":\"%s\",\"owner\":\"it-%s\",\"text\":\"%s\"}", mid,
             mid, text);
    assert_int_equal(mem("turn.begin", conv, args, NULL), 0);
    snprintf(args, sizeof args,
             "{\"message_id\":\"%s\",\"owner\":\"it-%s\",\"messages\":[{\"role\":\"assistant\","
             "\"text\":\"我这就为您转接人工客服。\",\"agent\":\"claims_intake\"}],"
             "\"reply\":{\"reply\":\"转人工\"},\"state\":%s}",
             mid, mid, state_json);
    assert_int_equal(mem("turn.end", conv, args, NULL), 0);
}

/* Memory's /metrics, parsed strictly. */
static mh_prom_t *scrape(void)
{
    return mh_metrics_scrape(s_metrics_port, "memory");
}

/* The list item of conv in a handoff.list reply, or NULL. */
static const json_t *find_item(const json_t *data, const char *conv)
{
    size_t i;
    const json_t *it;
    json_array_foreach(json_object_get(data, "items"), i, it)
    {
        const char *c = mh_json_str(it, "conversation_id");
        if (c != NULL && strcmp(c, conv) == 0)
            return it;
    }
    return NULL;
}

static void test_walk(void **state)
{
    (void)state;
    char st[512];
    long long at = (long long)time(NULL) * 1000LL - 30000; /* went pending 30 s ago */
    snprintf(st, sizeof st,
             "{\"agent\":\"claims_intake\",\"handoff\":\"pending\",\"handoff_reason\":\"有人受伤\","
             "\"handoff_at\":\"%lld\"}",
             at);
    turn(s_conv, "m1", "我们这边有人受伤了", st);
    /* A second conversation stays pending throughout. */
    turn(s_conv2, "m1", "I want to talk to a person",
         "{\"agent\":\"claims_intake\",\"handoff\":\"pending\",\"handoff_reason\":\"asked for a "
         "person\"}");

    json_t *d = NULL;
    assert_int_equal(mem("handoff.list", NULL, "{\"limit\":50}", &d), 0);
    const json_t *it = find_item(d, s_conv);
    assert_non_null(it);
    assert_string_equal(mh_json_str(it, "state"), "pending");
    assert_string_equal(mh_json_str(it, "reason"), "有人受伤");
    assert_string_equal(mh_json_str(it, "agent"), "claims_intake");
    assert_int_equal(json_integer_value(json_object_get(it, "since")), at);
    assert_non_null(find_item(d, s_conv2));
    assert_true(json_integer_value(json_object_get(d, "total")) >= 2);
    json_decref(d);
    mh_prom_t *doc = scrape();
    assert_true(mh_prom_sum(doc, "mesh_handoff_queue_length", NULL) >= 2);
    double waits0 = mh_prom_sum(doc, "mesh_handoff_wait_seconds_count", NULL);
    mh_prom_free(&doc);

    /* A reply before anyone claimed it: refused. */
    assert_int_equal(mem("handoff.reply", s_conv,
                         "{\"person\":\"wang\",\"text\":\"x\",\"message_id\":\"h0\"}", NULL),
                     MESH_ESTATE);
    assert_int_equal(mem("handoff.claim", s_conv, "{\"person\":\"wang\"}", &d), 0);
    assert_string_equal(mh_json_str(d, "state"), "human");
    json_decref(d);
    assert_int_equal(mem("handoff.claim", s_conv, "{\"person\":\"li\"}", NULL), MESH_ESTATE);
    doc = scrape();
    assert_true(mh_prom_sum(doc, "mesh_handoff_wait_seconds_count", NULL) == waits0 + 1);
    /* Waited ~30 s: counted in the le="60" bucket, not in le="15". */
    assert_true(mh_prom_sum(doc, "mesh_handoff_wait_seconds_bucket", "le=60") >= 1);
    mh_prom_free(&doc);

    /* The holder answers; a retry of the same message_id is a duplicate. */
    static const char reply[] =
        "{\"person\":\"wang\",\"text\":\"您好，我是理赔员小王，请问伤者现在情况如何？\","
        "\"message_id\":\"h1\"}";
    assert_int_equal(mem("handoff.reply", s_conv, reply, &d), 0);
    assert_true(json_is_false(json_object_get(d, "duplicate")));
    json_decref(d);
    assert_int_equal(mem("handoff.reply", s_conv, reply, &d), 0);
    assert_true(json_is_true(json_object_get(d, "duplicate")));
    json_decref(d);
    assert_int_equal(mem("handoff.reply", s_conv,
                         "{\"person\":\"li\",\"text\":\"x\",\"message_id\":\"h2\"}", NULL),
                     MESH_ESTATE);
    assert_int_equal(mem("handoff.note", s_conv,
                         "{\"person\":\"wang\",\"text\":\"已电话联系，伤者轻伤\"}", NULL),
                     0);
    assert_int_equal(mem("handoff.list", NULL, NULL, &d), 0);
    it = find_item(d, s_conv);
    assert_non_null(it);
    assert_string_equal(mh_json_str(it, "state"), "human");
    assert_string_equal(mh_json_str(it, "person"), "wang");
    json_decref(d);

    assert_int_equal(
        mem("handoff.release", s_conv,
            "{\"person\":\"wang\",\"summary\":\"伤者轻伤，已安排医疗费用垫付，其余由机器人继续\"}",
            NULL),
        0);
    assert_int_equal(mem("handoff.list", NULL, NULL, &d), 0);
    assert_null(find_item(d, s_conv));
    assert_non_null(find_item(d, s_conv2));
    json_decref(d);

    /* The log over HTTP: the person's reply (once), the note, the release note; state cleared. */
    mh_http_resp_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(mh_get_conversation(s_mesh, s_conv, &r), 0);
    assert_int_equal(r.status, 200);
    const json_t *msgs = json_object_get(r.json, "messages");
    size_t n = json_array_size(msgs);
    assert_true(n >= 5);
    int human_replies = 0;
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *name = mh_json_str(m, "name");
        if (name != NULL && strcmp(name, "human") == 0)
            human_replies++;
    }
    assert_int_equal(human_replies, 1);
    const json_t *rep = json_array_get(msgs, n - 3), *note = json_array_get(msgs, n - 2),
                 *rel = json_array_get(msgs, n - 1);
    assert_string_equal(mh_json_str(rep, "role"), "assistant");
    assert_string_equal(mh_json_str(rep, "person"), "wang");
    assert_string_equal(mh_json_str(rep, "message_id"), "h1");
    assert_string_equal(mh_json_str(note, "role"), "note");
    assert_string_equal(mh_json_str(note, "text"), "已电话联系，伤者轻伤");
    assert_string_equal(mh_json_str(rel, "role"), "note");
    assert_non_null(strstr(mh_json_str(rel, "text"), "医疗费用垫付"));
    const json_t *state_obj = json_object_get(r.json, "state");
    assert_null(json_object_get(state_obj, "handoff"));
    assert_null(json_object_get(state_obj, "handoff_person"));
    mh_http_resp_clear(&r);

    /* The metrics after the release: conv2 is still pending. */
    doc = scrape();
    assert_true(mh_prom_sum(doc, "mesh_handoff_queue_length", NULL) >= 1);
    assert_non_null(mh_prom_type(doc, "mesh_handoff_wait_seconds"));
    assert_string_equal(mh_prom_type(doc, "mesh_handoff_wait_seconds"), "histogram");
    assert_string_equal(mh_prom_type(doc, "mesh_handoff_queue_length"), "gauge");
    mh_prom_free(&doc);
}

int main(void)
{
    if (mh_init("integration_handoff_queue") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
