/*
 * test_early_start.c - the router's early start (docs/router.md, "Early
 * start") through a whole mesh (rules backend, real Redis): a turn's first
 * llm.chat leaves before memory answers turn.begin and is used only when
 * memory's answer asks for exactly the same call.
 *
 * Each case reads the router's mesh_router_early_start_total{outcome} before
 * and after its turns and checks the answers themselves:
 *   - a new conversation and its follow-ups: every turn's early call is used,
 *     none resent, and the answers carry what earlier turns said (slots);
 *   - a streamed turn whose early call answered before memory did: the held
 *     deltas and final reach the client in order;
 *   - a restarted router knows nothing: its guess for a conversation with
 *     history is wrong, the call is resent with memory's context, and the
 *     answer still uses the slots of the turn before the restart;
 *   - a duplicate message_id: the early call is dropped, the stored answer
 *     comes back;
 *   - a conversation a person holds: no early call at all;
 *   - MESH_EARLY_START=cached: no early call for a conversation the router
 *     never saw, one for its second turn; =off: none.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh_harness.h"
#include "prom_parse.h"

static int s_metrics_port;

static mh_mesh_t *start_mesh(const char *early)
{
    static char port_env[48], early_env[48];
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    s_metrics_port = mh_free_port();
    if (s_metrics_port <= 0)
        return NULL;
    snprintf(port_env, sizeof(port_env), "MESH_METRICS_PORT=%d", s_metrics_port);
    o.env[MH_ROUTER][0] = port_env;
    if (early) {
        snprintf(early_env, sizeof(early_env), "MESH_EARLY_START=%s", early);
        o.env[MH_ROUTER][1] = early_env;
    }
    return mh_mesh_start(&o);
}

/* mesh_router_early_start_total{outcome} on the (only) router now. */
static double early(const char *outcome)
{
    char match[64];
    snprintf(match, sizeof(match), "outcome=%s", outcome);
    mh_prom_t *doc = mh_metrics_scrape(s_metrics_port, "router");
    double v = mh_prom_sum(doc, "mesh_router_early_start_total", match);
    mh_prom_free(&doc);
    return v;
}

typedef struct {
    double used, mismatch, dropped;
} counts_t;

static counts_t counts(void)
{
    counts_t c = {early("used"), early("mismatch"), early("dropped")};
    return c;
}

static void assert_delta(counts_t before, double used, double mismatch, double dropped)
{
    counts_t now = counts();
    if (now.used - before.used != used || now.mismatch - before.mismatch != mismatch ||
        now.dropped - before.dropped != dropped)
        fail_msg("early start: used +%g mismatch +%g dropped +%g, want +%g +%g +%g",
                 now.used - before.used, now.mismatch - before.mismatch,
                 now.dropped - before.dropped, used, mismatch, dropped);
}

static const char *slot(const mh_http_resp_t *r, const char *name)
{
    return mh_json_str(json_object_get(mh_turn_state(r), "slots"), name);
}

/* ---- on (the default) ---- */

static void test_new_conversation_and_follow_ups(void **state)
{
    mh_mesh_t *m = *state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "early-new");
    mh_http_resp_t r;
    counts_t c = counts();
    mh_turn(m, conv, "我要报案", "n1", "claims_intake", &r);
    mh_http_resp_clear(&r);
    assert_delta(c, 1, 0, 0); /* never seen: guessed new, and it was */

    c = counts();
    mh_turn(m, conv, "昨天下午三点在延安路和人追尾了，对方全责，车灯坏了，没人受伤", "n2",
            "claims_intake", &r);
    assert_string_equal(slot(&r, "place"), "延安路");
    mh_http_resp_clear(&r);
    assert_delta(c, 1, 0, 0); /* the router's own context: memory confirmed it */

    c = counts();
    const char *reply = mh_turn(m, conv, "对方车牌是浙B22222", "n3", "claims_intake", &r);
    /* this turn's model call saw the slots of the turns before it */
    assert_string_equal(slot(&r, "place"), "延安路");
    assert_string_equal(slot(&r, "accident_time"), "昨天下午三点");
    assert_non_null(reply);
    mh_http_resp_clear(&r);
    assert_delta(c, 1, 0, 0);
}

/* A streamed turn whose early call answered before memory did: the held
 * deltas and the final reach the client in order, the deltas adding up to
 * the reply. The rules model answers in microseconds, memory needs a Redis
 * script, so this happens at once; a few turns make sure of it (the
 * router's debug line says how many replies it held). */
static void test_held_replies_stream_in_order(void **state)
{
    mh_mesh_t *m = *state;
    mh_proc_t *router = mh_mesh_proc(m, MH_ROUTER, 0);
    size_t mark = mh_log_mark(router);
    bool held = false;
    for (int i = 0; i < 5 && !held; i++) {
        char conv[64], path[160];
        snprintf(conv, sizeof(conv), "early-sse-%d-%d", (int)getpid(), i);
        snprintf(path, sizeof(path), "/v1/conversations/%s/messages", conv);
        mh_sse_t c;
        mh_sse_open(&c, mh_mesh_http_port(m), path,
                    "{\"text\": \"What does my policy P10023 cover?\", \"agent\": \"policy_qa\"}",
                    "text/event-stream");
        mh_sse_run(&c, 10000);
        assert_int_equal(c.status, 200);
        assert_true(c.done);
        char *text = NULL;
        size_t len = 0;
        int n_delta = 0;
        const char *final = NULL;
        for (int k = 0; k < c.n_ev; k++) {
            if (strcmp(c.ev[k].event, "delta") == 0) {
                assert_null(final); /* never a delta after the final */
                json_t *d = json_loads(c.ev[k].data, 0, NULL);
                assert_non_null(d);
                mh_buf_append(&text, &len, mh_json_str(d, "text"), strlen(mh_json_str(d, "text")));
                json_decref(d);
                n_delta++;
            } else if (strcmp(c.ev[k].event, "final") == 0) {
                final = c.ev[k].data;
            }
        }
        assert_non_null(final);
        assert_true(n_delta >= 2);
        json_t *f = json_loads(final, 0, NULL);
        assert_non_null(f);
        assert_string_equal(text, mh_json_str(f, "reply"));
        json_decref(f);
        free(text);
        mh_sse_close(&c);
        held = mh_log_count(router, mark, "replies held") > 0;
    }
    assert_true(held);
}

static void test_duplicate_drops_the_early_call(void **state)
{
    mh_mesh_t *m = *state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "early-dup");
    mh_http_resp_t r;
    const char *reply =
        mh_turn(m, conv, "What does my policy P10023 cover?", "d1", "policy_qa", &r);
    char *first = strdup(reply);
    mh_http_resp_clear(&r);

    counts_t c = counts();
    reply = mh_turn(m, conv, "What does my policy P10023 cover?", "d1", "policy_qa", &r);
    assert_string_equal(reply, first);
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    mh_http_resp_clear(&r);
    free(first);
    assert_delta(c, 0, 0, 1); /* asked early, never used: cancelled */
}

static void test_person_holds_no_early_call(void **state)
{
    mh_mesh_t *m = *state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "early-person");
    mh_http_resp_t r;
    mh_turn(m, conv, "刚才在人民路撞了一个骑电动车的，对方受伤了", "p1", NULL, &r);
    assert_string_equal(mh_json_str(mh_turn_state(&r), "handoff"), "pending");
    mh_http_resp_clear(&r);

    counts_t c = counts();
    const char *reply = mh_turn(m, conv, "我的保单号是P10003", "p2", NULL, &r);
    assert_string_equal(reply, ""); /* the bot is silent */
    mh_http_resp_clear(&r);
    assert_delta(c, 0, 0, 0); /* the cached state said a person has it: no model call */
}

static void test_restarted_router_resends(void **state)
{
    mh_mesh_t *m = *state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "early-restart");
    mh_http_resp_t r;
    mh_turn(m, conv, "昨天下午三点在延安路和人追尾了，对方全责，车灯坏了，没人受伤", "r1",
            "claims_intake", &r);
    assert_string_equal(slot(&r, "place"), "延安路");
    mh_http_resp_clear(&r);

    assert_int_equal(mh_mesh_restart(m, MH_ROUTER, 0), 0);
    assert_int_equal(mh_mesh_wait_ready(m, 20000), 0);
    counts_t c = counts(); /* a fresh process: all zero */
    assert_true(c.used == 0 && c.mismatch == 0 && c.dropped == 0);

    mh_turn(m, conv, "对方车牌是浙B22222", "r2", "claims_intake", &r);
    /* memory's context won: the slots of the turn before the restart are there */
    assert_string_equal(slot(&r, "place"), "延安路");
    assert_string_equal(slot(&r, "accident_time"), "昨天下午三点");
    mh_http_resp_clear(&r);
    assert_delta(c, 0, 1, 0); /* guessed "new", memory said otherwise: resent */

    c = counts();
    mh_turn(m, conv, "我的保单号是P10003", "r3", "claims_intake", &r);
    assert_string_equal(slot(&r, "place"), "延安路");
    mh_http_resp_clear(&r);
    assert_delta(c, 1, 0, 0); /* known again after one turn */
}

/* ---- cached / off ---- */

/* One policy_qa turn whose answer is not looked at (mh_turn checks it is one). */
static void policy_turn(mh_mesh_t *m, const char *conv, const char *text, const char *mid)
{
    mh_http_resp_t r;
    mh_turn(m, conv, text, mid, "policy_qa", &r);
    mh_http_resp_clear(&r);
}

static void test_cached_mode(void **state)
{
    (void)state;
    mh_mesh_t *m = start_mesh("cached");
    assert_non_null(m);
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "early-cached");
    counts_t c = counts();
    policy_turn(m, conv, "What does my policy P10023 cover?", "c1");
    assert_delta(c, 0, 0, 0); /* never seen: waits for memory */
    c = counts();
    policy_turn(m, conv, "And the deductible?", "c2");
    assert_delta(c, 1, 0, 0);
    assert_int_equal(mh_mesh_teardown(&m), 0);
}

static void test_off_mode(void **state)
{
    (void)state;
    mh_mesh_t *m = start_mesh("off");
    assert_non_null(m);
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "early-off");
    policy_turn(m, conv, "What does my policy P10023 cover?", "o1");
    policy_turn(m, conv, "And the deductible?", "o2");
    counts_t c = counts();
    assert_true(c.used == 0 && c.mismatch == 0 && c.dropped == 0);
    assert_int_equal(mh_mesh_teardown(&m), 0);
}

static int group_setup(void **state)
{
    mh_mesh_t *m = start_mesh(NULL);
    *state = m;
    return m ? 0 : -1;
}

static int group_teardown(void **state)
{
    mh_mesh_t *m = *state;
    return mh_mesh_teardown(&m);
}

int main(void)
{
    if (mh_init("test_early_start") != 0)
        return 1;
    const struct CMUnitTest on[] = {
        cmocka_unit_test(test_new_conversation_and_follow_ups),
        cmocka_unit_test(test_held_replies_stream_in_order),
        cmocka_unit_test(test_duplicate_drops_the_early_call),
        cmocka_unit_test(test_person_holds_no_early_call),
        cmocka_unit_test(test_restarted_router_resends),
    };
    const struct CMUnitTest modes[] = {
        cmocka_unit_test(test_cached_mode),
        cmocka_unit_test(test_off_mode),
    };
    int failed = cmocka_run_group_tests_name("on", on, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("modes", modes, NULL, NULL);
    return mh_finish(failed);
}
