/*
 * test_worker_intake.c - the claims_intake digital worker (车险报案) end to
 * end through the gateway's HTTP API on a whole mesh (rules backend, real
 * Redis): the two seed scenarios of issue 3 (batch mode on request;
 * out-of-order answers), the claim registered exactly once (a duplicate
 * message_id and a second confirmation both give the same claim number;
 * GET /v1/claims/{no}), the payout estimate against hand-computed amounts
 * (policy P10003, motor), and a handoff on injury (state handoff pending with
 * the reason; the next message gets no bot answer).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"

/* A message for the claims_intake worker. */
static const char *turn(const char *conv, const char *text, const char *mid, mh_http_resp_t *r)
{
    return mh_turn(mh_group_mesh, conv, text, mid, "claims_intake", r);
}

static const char *slot(const mh_http_resp_t *r, const char *name)
{
    return mh_json_str(json_object_get(mh_turn_state(r), "slots"), name);
}

static void assert_slot(const mh_http_resp_t *r, const char *name, const char *want)
{
    const char *got = slot(r, name);
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("slot %s = '%s', want '%s' (%s)", name, got ? got : "(absent)", want, r->body);
}

/* GET /v1/claims/<no>: asserts 200 and returns the record (caller decrefs). */
static json_t *get_claim(const char *no)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/claims/%s", mh_mesh_url(mh_group_mesh), no);
    mh_http_resp_t r;
    assert_int_equal(mh_http_get(url, &r), 0);
    if (r.status != 200 || r.json == NULL)
        fail_msg("GET %s: %ld %s", url, r.status, r.body ? r.body : "");
    json_t *j = json_incref(r.json);
    mh_http_resp_clear(&r);
    return j;
}

/* Seed scenario 1: batch mode on request; the claim registered once. */
static void test_seed_batch_mode(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "intake-batch");
    mh_http_resp_t r;

    const char *reply = turn(conv, "我要报案", "b1", &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "claims_intake");
    mh_assert_has(reply, "什么时候");
    mh_http_resp_clear(&r);

    reply = turn(conv, "昨天下午三点在延安路和人追尾了，对方全责，车灯坏了，没人受伤", "b2", &r);
    assert_slot(&r, "accident_time", "昨天下午三点");
    assert_slot(&r, "place", "延安路");
    assert_slot(&r, "liability", "none"); /* 对方全责 -> the insured has no liability */
    assert_slot(&r, "damage", "车灯坏了");
    assert_slot(&r, "injuries", "none");
    assert_non_null(slot(&r, "description"));
    assert_true(mh_tool_called_ok(&r, "state.update"));
    mh_assert_has(reply, "车牌"); /* the other party came up: its plate is asked next */
    mh_http_resp_clear(&r);

    reply = turn(conv, "我现在有点忙，你一次性把问题发我", "b3", &r);
    assert_string_equal(mh_turn_mode(&r), "batch");
    mh_assert_has(reply, "1. ");
    mh_assert_has(reply, "5. ");
    assert_true(strstr(reply, "6. ") == NULL);
    mh_http_resp_clear(&r);

    reply =
        turn(conv, "1. 沪A12345，对方沪B67890\n2. 交警来了\n3. 3000元\n4. 13800138000\n5. P10003",
             "b4", &r);
    assert_slot(&r, "plates", "沪A12345、沪B67890");
    assert_slot(&r, "police", "yes");
    assert_slot(&r, "damage_amount", "3000");
    assert_slot(&r, "contact", "13800138000");
    assert_slot(&r, "policy_no", "P10003");
    assert_string_equal(mh_turn_mode(&r), "confirm");
    mh_assert_has(reply, "请核对");
    mh_http_resp_clear(&r);

    reply = turn(conv, "确认", "b5", &r);
    assert_true(mh_tool_called_ok(&r, "claim.register"));
    assert_true(mh_tool_called_ok(&r, "fee.calc"));
    assert_string_equal(mh_turn_mode(&r), "done");
    const char *no = mh_json_str(json_object_get(mh_turn_state(&r), "records"), "claim_no");
    assert_non_null(no);
    assert_true(strncmp(no, "CLM", 3) == 0 && strlen(no) == 3 + 8 + 6);
    char claim_no[32];
    snprintf(claim_no, sizeof(claim_no), "%s", no);
    mh_assert_has(reply, claim_no);
    mh_assert_has(reply, "责任建议");
    mh_assert_has(reply, "主责70%");
    mh_assert_has(reply, "财产损失2000元");
    mh_assert_has(reply, "仅为估算");
    /*
     * Hand computation (P10003, motor-2024, the other party insured), insured not liable,
     * own repair 3,000, no third-party loss:
     *   the other party (fully liable) 交强险 pays own damage up to its with-liability
     *   property sub-limit: min(3,000, 2,000) = 2,000; the rest 1,000 is the other party's
     *   share (100%) through its 三者险 = 1,000; the insured's 车损险 pays 1,000 x 0% = 0.
     *   Under the customer's policy: 0; from the other party's insurer: 3,000.
     */
    mh_assert_has(reply, "对方交强险预估赔付 2,000元");
    mh_assert_has(reply, "您的保单预估赔付合计：0元；对方保险公司预估赔付：3,000元");
    char first_reply[8192];
    snprintf(first_reply, sizeof(first_reply), "%s", reply);
    mh_http_resp_clear(&r);

    json_t *rec = get_claim(claim_no);
    assert_string_equal(mh_json_str(rec, "claim_no"), claim_no);
    assert_string_equal(mh_json_str(rec, "policy_no"), "P10003");
    assert_string_equal(mh_json_str(rec, "kind"), "motor");
    assert_string_equal(mh_json_str(rec, "conversation_id"), conv);
    assert_string_equal(mh_json_str(json_object_get(rec, "facts"), "place"), "延安路");
    assert_string_equal(mh_json_str(json_object_get(rec, "facts"), "plates"), "沪A12345、沪B67890");
    json_decref(rec);

    /* the same message again (a client retry): the recorded answer, no new turn */
    reply = turn(conv, "确认", "b5", &r);
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    assert_string_equal(reply, first_reply);
    mh_http_resp_clear(&r);

    /* a second confirmation: claim.register runs again and returns the same number */
    reply = turn(conv, "确认", "b6", &r);
    assert_true(mh_tool_called_ok(&r, "claim.register"));
    mh_assert_has(reply, claim_no);
    mh_assert_has(reply, "不会重复报案");
    assert_string_equal(mh_json_str(json_object_get(mh_turn_state(&r), "records"), "claim_no"),
                        claim_no);
    mh_http_resp_clear(&r);

    /* the stored conversation has the state too */
    assert_int_equal(mh_get_conversation(mh_group_mesh, conv, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(mh_json_str(json_object_get(r.json, "state"), "mode"), "done");
    mh_http_resp_clear(&r);
}

/* Seed scenario 2: out-of-order answers; the insured mainly at fault with a third-party loss. */
static void test_seed_out_of_order(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "intake-ooo");
    mh_http_resp_t r;

    const char *reply = turn(conv, "我要报案，今天早上8点在中山路变道时和一辆车剐蹭了", "o1", &r);
    assert_slot(&r, "accident_time", "今天早上8点");
    assert_slot(&r, "place", "中山路");
    mh_assert_has(reply, "车牌");
    mh_http_resp_clear(&r);

    /* asked for the plates; answers about the police and the liability instead */
    reply = turn(conv, "交警来了，认定我主责", "o2", &r);
    assert_slot(&r, "police", "yes");
    assert_slot(&r, "liability", "major");
    assert_null(slot(&r, "plates"));
    mh_assert_has(reply, "车牌");
    mh_http_resp_clear(&r);

    reply =
        turn(conv, "没人受伤，我的车是浙A11111，对方是浙B22222，对方车门凹了，修要5.2万", "o3", &r);
    assert_slot(&r, "plates", "浙A11111、浙B22222");
    assert_slot(&r, "injuries", "none");
    assert_slot(&r, "third_party_damage_amount", "52000");
    mh_http_resp_clear(&r);

    reply = turn(conv, "我的车左前门刮花了，修车大概8000元，电话13900001111，保单P10003", "o4", &r);
    assert_slot(&r, "damage_amount", "8000");
    assert_string_equal(mh_turn_mode(&r), "confirm");
    mh_assert_has(reply, "主责");
    mh_http_resp_clear(&r);

    reply = turn(conv, "没问题", "o5", &r);
    assert_true(mh_tool_called_ok(&r, "fee.calc"));
    const char *no = mh_json_str(json_object_get(mh_turn_state(&r), "records"), "claim_no");
    assert_non_null(no);
    mh_assert_has(reply, no);
    mh_assert_has(reply, "主责（事故责任比例 70%）");
    /*
     * Hand computation (P10003, motor-2024, third-party limit 1,000,000, post-2020 rules,
     * no 事故责任免赔率), insured 主责 = 70%, the other party 次责 and insured:
     *   third-party property 52,000: own 交强险 property sub-limit with liability 2,000;
     *   三者险 (52,000 - 2,000) x 70% = 35,000 (< 1,000,000);
     *   own vehicle 8,000: the other party (has liability) 交强险 pays min(8,000, 2,000) =
     *   2,000; the rest 6,000: 车损险 6,000 x 70% = 4,200, the other party's 三者险
     *   6,000 x 30% = 1,800.
     *   Under the customer's policy 2,000 + 35,000 + 4,200 = 41,200; from the other
     *   party's insurer 2,000 + 1,800 = 3,800.
     */
    mh_assert_has(reply, "您的商业三者险预估赔付 35,000元");
    mh_assert_has(reply, "您的车损险预估赔付 4,200元");
    mh_assert_has(reply, "您的保单预估赔付合计：41,200元；对方保险公司预估赔付：3,800元");
    mh_http_resp_clear(&r);
}

/* Handoff on injury: state pending with the reason; the next message gets no bot answer. */
static void test_handoff_on_injury(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "intake-injury");
    mh_http_resp_t r;
    /* no agent asked for: the triage keywords of data/agents/claims_intake.json route it */
    const char *reply =
        mh_turn(mh_group_mesh, conv, "刚才在人民路撞了一个骑电动车的，对方受伤了", "i1", NULL, &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "claims_intake");
    /* the HTTP answer says how the worker was chosen */
    assert_string_equal(mh_json_str(json_object_get(r.json, "triage"), "by"), "keywords");
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    assert_string_equal(mh_json_str(mh_turn_state(&r), "handoff"), "pending");
    mh_assert_has(mh_json_str(mh_turn_state(&r), "handoff_reason"), "injury");
    mh_assert_has(reply, "同事");
    mh_http_resp_clear(&r);

    assert_int_equal(mh_get_conversation(mh_group_mesh, conv, &r), 0);
    assert_string_equal(mh_json_str(json_object_get(r.json, "state"), "handoff"), "pending");
    mh_http_resp_clear(&r);

    reply = turn(conv, "我的保单号是P10003", "i2", &r);
    assert_string_equal(reply, "");
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    mh_http_resp_clear(&r);
}

/* A policy_qa conversation switches to claims_intake on a switch phrase. */
static void test_switch_to_intake(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "intake-switch");
    mh_http_resp_t r;
    mh_turn(mh_group_mesh, conv, "What does my policy P10023 cover?", "s1", "policy_qa", &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "policy_qa");
    mh_http_resp_clear(&r);
    const char *reply =
        mh_turn(mh_group_mesh, conv, "I want to file a claim, I was rear-ended yesterday at 5 pm",
                "s2", NULL, &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "claims_intake");
    assert_string_equal(mh_json_str(json_object_get(r.json, "triage"), "by"), "switch");
    assert_slot(&r, "accident_time", "yesterday 5 pm");
    assert_true(strstr(reply, "Noted") != NULL);
    mh_http_resp_clear(&r);
}

/*
 * The load generator's claims_intake scenario (bench/scenarios/claims_intake.json) against
 * this mesh: every scripted turn succeeds and the per-scenario row is reported.
 */
static void test_loadgen_scenario(void **state)
{
    (void)state;
    const char *src = getenv("MESH_SOURCE_DIR");
    if (src == NULL) {
        mh_note("MESH_SOURCE_DIR unset: loadgen scenario test skipped");
        skip();
    }
    char bin[MH_PATH_MAX], dir[MH_PATH_MAX], url[128];
    mh_bin("loadgen", bin, sizeof(bin));
    snprintf(dir, sizeof(dir), "%s/bench/scenarios", src);
    snprintf(url, sizeof(url), "%s", mh_mesh_url(mh_group_mesh));
    char *argv[] = {bin,
                    "-u",
                    url,
                    "-c",
                    "4",
                    "-d",
                    "1",
                    "-w",
                    "0.2",
                    "-q",
                    "--scenario",
                    "claims_intake",
                    "--scenario-dir",
                    dir,
                    NULL};
    mh_proc_t *p = mh_proc_spawn("loadgen-intake", argv, NULL);
    assert_non_null(p);
    int rc = mh_proc_wait_exit(p, 20000);
    if (rc == -2)
        mh_proc_kill9(p);
    assert_int_equal(rc, 0);
    char *out = mh_log_read(p, 0);
    assert_non_null(out);
    json_t *j = NULL;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == '{') {
            json_decref(j);
            j = json_loads(line, 0, NULL);
        }
    }
    free(out);
    mh_proc_destroy(&p);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "errors")), 0);
    assert_true(json_integer_value(json_object_get(j, "turns_ok")) >= 10);
    json_t *sc = json_array_get(json_object_get(j, "scenarios"), 0);
    assert_string_equal(mh_json_str(sc, "name"), "claims_intake");
    assert_string_equal(mh_json_str(sc, "agent"), "claims_intake");
    assert_int_equal(json_integer_value(json_object_get(sc, "turns_ok")),
                     json_integer_value(json_object_get(j, "turns_ok")));
    json_decref(j);
}

int main(void)
{
    if (mh_init("test_worker_intake") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_batch_mode),   cmocka_unit_test(test_seed_out_of_order),
        cmocka_unit_test(test_handoff_on_injury), cmocka_unit_test(test_switch_to_intake),
        cmocka_unit_test(test_loadgen_scenario),
    };
    int failed = cmocka_run_group_tests(tests, mh_group_setup, mh_group_teardown);
    return mh_finish(failed);
}
