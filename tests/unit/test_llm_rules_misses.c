/*
 * test_llm_rules_misses.c - repeated failure to understand (issue 5) in the
 * rules engines: llm_rules_misses_note (rules_text.c) directly, and whole
 * conversations of policy_qa, claims_intake and health_review driven through
 * llm_call_parse + the engine with a small in-test "router" that applies
 * state.update the way the router does (records merged by key, handoff ->
 * pending + reason) and answers policy.lookup with a canned policy.
 *
 * Each engine: the opening message is not counted, two misses keep asking
 * (records.misunderstood 1, 2), the third hands off with reason
 * "not_understood: ..." and a reply saying a colleague takes over; a usable
 * message resets the count to 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "llm_backend.h"
#include "llm_call.h"
#include "mesh/mesh_err.h"
#include "rules.h"
#include "test_rules_driver.h"

/* A policy.lookup result (shape of docs/protocol/services.md), trimmed to what is asked. */
static const char *const POLICY =
    "{\"policy_no\":\"P10023\",\"status\":\"active\",\"holder\":\"张*\","
    "\"product\":{\"id\":\"med-million-2024\",\"name\":{\"zh\":\"安心百万医疗险\","
    "\"en\":\"Anxin Million Medical\"},\"type\":\"medical\"},"
    "\"start_date\":\"2026-03-01\",\"end_date\":\"2027-02-28\",\"social_insurance\":true,"
    "\"deductible\":10000,\"deductible_used\":2000,\"ratio_with_social\":1.0,"
    "\"ratio_without_social\":0.6,\"waiting_period_days\":30,\"limit\":3000000,"
    "\"limit_used\":8000,\"coverages\":[],\"exclusions\":[]}";

static const char *const TOOLS[] = {"policy.lookup", "state.update", NULL};

static char *run_tool(rd_conv_t *c, const llm_rules_call_t *tc, bool *ok)
{
    if (strcmp(tc->name, "policy.lookup") == 0)
        return strdup(POLICY);
    return rd_tool_default(c, tc, ok);
}

typedef rd_conv_t conv_t;

static void conv_init(conv_t *c, const char *agent, rd_engine_fn engine, const char *lang)
{
    rd_conv_init(c, agent, engine, lang, NULL);
    c->tier = "small";
    c->system = "test";
    c->tools = TOOLS;
    c->tool = run_tool;
}

/* records.misunderstood, -1 when absent. */
static long misses(const conv_t *c)
{
    const json_t *v = rd_record(c, "misunderstood");
    return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static const char *handoff(const conv_t *c)
{
    return mh_json_str(c->state, "handoff");
}

static const char *reason(const conv_t *c)
{
    return mh_json_str(c->state, "handoff_reason");
}

/*
 * The shared scenario: an opening message (not counted), two misses that keep
 * asking (ask_mark in each reply), the third that hands off.
 */
static void three_misses(conv_t *c, const char *opening, const char *const miss[3],
                         const char *ask_mark, const char *colleague)
{
    rd_say(c, opening);
    assert_int_equal(misses(c), -1);
    for (int k = 0; k < 2; k++) {
        const char *r = rd_say(c, miss[k]);
        assert_int_equal(misses(c), k + 1);
        assert_null(handoff(c));
        rd_assert_has(r, ask_mark);
        assert_int_equal(c->updates, 1); /* one state.update step, then the question */
        assert_int_equal(c->steps, 2);
    }
    const char *r = rd_say(c, miss[2]);
    assert_int_equal(misses(c), LLM_RULES_MISSES_MAX);
    assert_non_null(handoff(c));
    assert_string_equal(handoff(c), "pending");
    assert_non_null(reason(c));
    assert_true(strncmp(reason(c), "not_understood: ", 16) == 0);
    assert_true(strlen(reason(c)) <= 500);
    rd_assert_has(r, colleague);
    rd_assert_hasnt(r, ask_mark);
}

/* ---- policy_qa ---- */

static const char *const PQ_MISS_ZH[3] = {"嗯", "我不知道", "随便吧"};
static const char *const PQ_MISS_EN[3] = {"hmm", "no idea", "whatever"};

static void test_policy_qa_hands_off(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "policy_qa", llm_rules_policy_qa, "zh");
    three_misses(&c, "你好", PQ_MISS_ZH, "请提供您的保单号", "同事");
    rd_conv_free(&c);

    conv_init(&c, "policy_qa", llm_rules_policy_qa, "en");
    three_misses(&c, "hello", PQ_MISS_EN, "policy number", "colleague");
    rd_assert_has(reason(&c), "policy number");
    rd_conv_free(&c);
}

static void test_policy_qa_reset(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "policy_qa", llm_rules_policy_qa, "zh");
    rd_say(&c, "你好");
    rd_say(&c, PQ_MISS_ZH[0]);
    rd_say(&c, PQ_MISS_ZH[1]);
    assert_int_equal(misses(&c), 2);
    /* usable: the lookup and the reset run in parallel, then the answer */
    const char *r = rd_say(&c, "我的保单 P10023 免赔额是多少？");
    assert_int_equal(misses(&c), 0);
    assert_int_equal(c.updates, 1);
    assert_int_equal(c.steps, 2);
    rd_assert_has(r, "P10023");
    assert_null(handoff(&c));
    /* understood again with a count of 0: no state.update at all */
    rd_say(&c, "等待期呢？");
    assert_int_equal(c.updates, 0);
    rd_conv_free(&c);

    /* no state.update offered: nothing is counted, the question is asked each time */
    conv_init(&c, "policy_qa", llm_rules_policy_qa, "en");
    json_t *args =
        json_pack("{s:s, s:s, s:s, s:[{s:s, s:s},{s:s, s:s},{s:s, s:s}], s:O, "
                  "s:[{s:s}]}",
                  "agent", "policy_qa", "system", "t", "lang", "en", "messages", "role", "user",
                  "text", "hi", "role", "assistant", "text", "Your policy number?", "role", "user",
                  "text", "hmm", "state", c.state, "tools", "name", "policy.lookup");
    llm_parsed_t p;
    char err[128];
    assert_int_equal(llm_call_parse("t", args, 1000000, &p, err, sizeof(err)), 0);
    llm_rules_out_t out;
    llm_rules_out_init(&out);
    assert_int_equal(llm_rules_policy_qa(&p.call, &out), 0);
    assert_int_equal(out.type, LLM_RESULT_TEXT);
    rd_assert_has(llm_buf_str(&out.text), "policy number");
    llm_rules_out_clear(&out);
    llm_call_clear(&p);
    json_decref(args);
    rd_conv_free(&c);
}

/* ---- claims_intake ---- */

static const char *const CI_MISS_ZH[3] = {"嗯嗯", "啊？", "这个嘛"};

static void test_intake_hands_off(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "claims_intake", llm_rules_claims_intake, "zh");
    three_misses(&c, "我要报案", CI_MISS_ZH, "什么时候发生", "同事");
    rd_assert_hasnt(c.reply, "120"); /* the injury advice is for injury handoffs */
    rd_conv_free(&c);

    const char *const en[3] = {"hmm", "what?", "well"};
    conv_init(&c, "claims_intake", llm_rules_claims_intake, "en");
    three_misses(&c, "I want to report an accident", en, "When did", "colleague");
    rd_conv_free(&c);
}

static void test_intake_reset(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "claims_intake", llm_rules_claims_intake, "zh");
    rd_say(&c, "我要报案");
    rd_say(&c, CI_MISS_ZH[0]);
    rd_say(&c, CI_MISS_ZH[1]);
    assert_int_equal(misses(&c), 2);
    rd_say(&c, "昨天下午三点");
    assert_int_equal(misses(&c), 0);
    assert_non_null(json_object_get(json_object_get(c.state, "slots"), "accident_time"));
    /* the next miss starts at 1 again: no handoff */
    rd_say(&c, CI_MISS_ZH[2]);
    assert_int_equal(misses(&c), 1);
    assert_null(handoff(&c));
    /* an intent without a slot (asks for all questions at once) is understood */
    rd_say(&c, "你一次性把问题发我");
    assert_int_equal(misses(&c), 0);
    rd_conv_free(&c);
}

/* ---- health_review ---- */

static const char *const HR_MISS_ZH[3] = {"嗯", "好的吧", "不知道怎么弄"};

static void test_review_hands_off(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "health_review", llm_rules_health_review, "zh");
    three_misses(&c, "你好，我要理赔审核", HR_MISS_ZH, "保单号", "同事");
    rd_conv_free(&c);

    const char *const en[3] = {"hmm", "what do you mean", "ok then"};
    conv_init(&c, "health_review", llm_rules_health_review, "en");
    three_misses(&c, "hello, I need a claim review", en, "the policy number", "colleague");
    rd_conv_free(&c);
}

static void test_review_reset(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "health_review", llm_rules_health_review, "zh");
    rd_say(&c, "你好，我要理赔审核");
    rd_say(&c, HR_MISS_ZH[0]);
    rd_say(&c, HR_MISS_ZH[1]);
    assert_int_equal(misses(&c), 2);
    /* a field is read: recorded with the reset in the same state.update */
    const char *r = rd_say(&c, "保单号 P10023");
    assert_int_equal(misses(&c), 0);
    assert_int_equal(c.updates, 1);
    rd_assert_has(r, "P10023");
    rd_say(&c, HR_MISS_ZH[2]);
    assert_int_equal(misses(&c), 1);
    assert_null(handoff(&c));
    rd_conv_free(&c);
}

/* ---- the helper ---- */

static void note(const char *lang, const char *history_json, const char *state_json,
                 bool understood, json_t **args, int *rc)
{
    json_error_t je;
    json_t *msgs = json_loads(history_json, 0, &je);
    json_t *state = json_loads(state_json, 0, &je);
    assert_non_null(msgs);
    assert_non_null(state);
    json_t *a = json_pack("{s:s, s:s, s:s, s:o, s:o}", "agent", "policy_qa", "system", "t", "lang",
                          lang, "messages", msgs, "state", state);
    llm_parsed_t p;
    char err[128];
    assert_int_equal(llm_call_parse("t", a, 1000000, &p, err, sizeof(err)), 0);
    *args = json_object();
    *rc = llm_rules_misses_note(&p.call, understood, NULL, *args);
    llm_call_clear(&p);
    json_decref(a);
}

static void test_helper(void **st)
{
    (void)st;
    const char *asked = "[{\"role\":\"user\",\"text\":\"hi\"},{\"role\":\"assistant\",\"text\":"
                        "\"Your policy number?\"},{\"role\":\"user\",\"text\":\"hmm\"}]";
    json_t *a;
    int rc;
    /* first miss after a question */
    note("en", asked, "{\"records\":{}}", false, &a, &rc);
    assert_int_equal(rc, 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(a, "records"), "misunderstood")), 1);
    assert_null(json_object_get(a, "handoff"));
    json_decref(a);
    /* the third: the handoff, generic reason in the call's language */
    note("zh", asked, "{\"records\":{\"misunderstood\":2}}", false, &a, &rc);
    assert_int_equal(rc, 2);
    const char *r = json_string_value(json_object_get(json_object_get(a, "handoff"), "reason"));
    assert_non_null(r);
    assert_true(strncmp(r, "not_understood: ", 16) == 0);
    json_decref(a);
    /* a count at the maximum: a released handoff, starts over at 1 */
    note("en", asked, "{\"records\":{\"misunderstood\":3}}", false, &a, &rc);
    assert_int_equal(rc, 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(a, "records"), "misunderstood")), 1);
    json_decref(a);
    /* garbage in the state counts as 0 */
    note("en", asked, "{\"records\":{\"misunderstood\":\"lots\"}}", false, &a, &rc);
    assert_int_equal(rc, 1);
    json_decref(a);
    /* the opening message is never a miss */
    note("en", "[{\"role\":\"user\",\"text\":\"hmm\"}]", "{}", false, &a, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(json_object_size(a), 0);
    json_decref(a);
    /* understood with no count: nothing; with a count: reset to 0 */
    note("en", asked, "{}", true, &a, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(json_object_size(a), 0);
    json_decref(a);
    note("en", asked, "{\"records\":{\"misunderstood\":2}}", true, &a, &rc);
    assert_int_equal(rc, 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(a, "records"), "misunderstood")), 0);
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helper),          cmocka_unit_test(test_policy_qa_hands_off),
        cmocka_unit_test(test_policy_qa_reset), cmocka_unit_test(test_intake_hands_off),
        cmocka_unit_test(test_intake_reset),    cmocka_unit_test(test_review_hands_off),
        cmocka_unit_test(test_review_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
