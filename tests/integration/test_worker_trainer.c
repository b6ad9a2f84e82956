/*
 * test_worker_trainer.c - the life_trainer digital worker (寿险代理人陪练) end
 * to end through the gateway's HTTP API on a whole mesh (rules backend, real
 * Redis, the shipped data/training bank): a session starts with a persona and
 * the first objection; two strategies in two conversations get two different
 * customer reactions; a whole session ends with the rubric score and its
 * evidence (the trainee's own words) in the FINAL's state.records.score,
 * computed by hand below from data/training/rubric.json; the stored state
 * agrees; an English session ends on "end training"; triage routes a new
 * conversation asking for practice to the trainer.
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

static const char *const START_ZH = "开始陪练 重疾险 has_social_insurance premium_pressure";
static const char *const T_EXPERIENCE = "您身边有没有人生过大病？后来家里怎么样？";
static const char *const T_CONTRAST =
    "医保是报销看病的钱，重疾险是确诊后一次性给付，用来弥补收入损失。";

static const char *turn(const char *conv, const char *text, mh_http_resp_t *r)
{
    return mh_turn(mh_group_mesh, conv, text, NULL, "life_trainer", r);
}

static const json_t *records(const mh_http_resp_t *r)
{
    const json_t *rec = json_object_get(json_object_get(r->json, "state"), "records");
    if (!json_is_object(rec))
        fail_msg("no state.records in the turn's answer: %s", r->body);
    return rec;
}

/* Start a Chinese session on has_social_insurance then premium_pressure. */
static void start_session(const char *conv)
{
    mh_http_resp_t r;
    const char *reply = turn(conv, START_ZH, &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "life_trainer");
    assert_true(mh_tool_called_ok(&r, "training.scenario"));
    assert_true(mh_tool_called_ok(&r, "state.update"));
    assert_string_equal(mh_turn_mode(&r), "training");
    const json_t *rec = records(&r);
    const json_t *objs = json_object_get(rec, "objections");
    assert_int_equal(json_array_size(objs), 2);
    assert_string_equal(mh_json_str(json_array_get(objs, 0), "id"), "has_social_insurance");
    assert_string_equal(mh_json_str(json_array_get(objs, 1), "id"), "premium_pressure");
    /* The persona is introduced (its intro from the scenario) and the first objection raised
     * in character. */
    const json_t *persona = json_object_get(rec, "persona");
    const char *intro = mh_json_str(json_object_get(persona, "intro"), "zh");
    assert_non_null(intro);
    mh_assert_has(reply, intro);
    mh_assert_has(reply, "我有医保了，不需要重疾险。");
    assert_int_equal(json_array_size(json_object_get(rec, "rubric")), 5);
    if (getenv("MESH_TEST_VERBOSE") != NULL) {
        char *dump = json_dumps(rec, JSON_COMPACT);
        fprintf(stderr, "records: %zu bytes\n", dump ? strlen(dump) : 0);
        free(dump);
    }
    mh_http_resp_clear(&r);
}

/* The pair, in two conversations: the same objection, two strategies. */
static void test_two_strategies_two_reactions(void **state)
{
    (void)state;
    char ca[64], cb[64];
    mh_conv_id(ca, sizeof(ca), "trainer-exp");
    mh_conv_id(cb, sizeof(cb), "trainer-con");
    start_session(ca);
    start_session(cb);
    mh_http_resp_t ra, rb;
    const char *a = turn(ca, T_EXPERIENCE, &ra);
    const char *b = turn(cb, T_CONTRAST, &rb);
    /* Asking about experience: the customer shares a story (objections.json). */
    mh_assert_has(a, "我舅舅前年中风");
    /* Contrasting reimbursement with a lump sum: a follow-up about lost income. */
    mh_assert_has(b, "工资这块是没人管的");
    assert_null(strstr(a, "工资这块"));
    assert_null(strstr(b, "舅舅"));
    /* Feedback and a better phrasing, separate from the customer's words. */
    mh_assert_has(a, "【教练点评】识别到的策略：询问客户亲身经历");
    mh_assert_has(b, "【教练点评】识别到的策略：对比报销型与给付型");
    mh_assert_has(a, "更好的说法：“您说得对，医保是基础");
    /* The strategy log in the state, with the trainee's words. */
    const json_t *la = json_array_get(json_object_get(records(&ra), "strategies"), 0);
    const json_t *lb = json_array_get(json_object_get(records(&rb), "strategies"), 0);
    assert_string_equal(mh_json_str(la, "strategy"), "ask_experience");
    assert_string_equal(mh_json_str(la, "quote"), T_EXPERIENCE);
    assert_string_equal(mh_json_str(lb, "strategy"), "contrast_reimbursement_lump_sum");
    assert_string_equal(mh_turn_mode(&ra), "training");
    mh_http_resp_clear(&ra);
    mh_http_resp_clear(&rb);
}

/*
 * A whole session scored on data/training/rubric.json, by hand:
 *  t1 ask_experience                 has_social_insurance 2 -> 1 (progress)
 *  t2 contrast                       -> 0: resolved; premium_pressure raised
 *  t3 explore_needs (+ empathy)      premium_pressure 2 -> 1
 *  t4 trial_close                    -> 0: resolved; done, 2 of 2
 * needs_discovery      10 + 35 (t1) + 35 (t3)                 = 80
 * product_knowledge    10 + 40 (t2)                           = 50
 * objection_handling    0 + 10 (t1) + 15 (t3) + 2 x 25        = 75
 * emotional_connection 10 + 20 (t1) + 35 (t3)                 = 65
 * closing               0 + 50 (t4) + 2 x 10                  = 70
 * total (25x80 + 20x50 + 25x75 + 15x65 + 15x70) / 100 = 6900 / 100 = 69
 */
static void test_scored_session(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "trainer-full");
    start_session(conv);
    mh_http_resp_t r;
    turn(conv, T_EXPERIENCE, &r);
    mh_http_resp_clear(&r);
    const char *reply = turn(conv, T_CONTRAST, &r);
    /* Resolved: the customer says so and raises the next objection. */
    mh_assert_has(reply, "两样不是一回事");
    mh_assert_has(reply, "我收入有限，每年几千块保费压力太大了。");
    mh_http_resp_clear(&r);
    static const char *const T3 = "我理解您的预算压力，您每个月的房贷和孩子开销大概多少？";
    reply = turn(conv, T3, &r);
    mh_assert_has(reply, "要是保费能控制在每月两三百");
    mh_assert_has(reply, "（同时用到：共情认同）");
    mh_http_resp_clear(&r);
    static const char *const T4 =
        "我给您做个保到70岁的方案试算，保额按三年收入，每月两百多，您看这样可以吗？";
    reply = turn(conv, T4, &r);
    mh_assert_has(reply, "你先给我算算");
    mh_assert_has(reply, "【陪练评分】总分 69/100（化解异议 2/2，共 4 轮）");
    mh_assert_has(
        reply,
        "需求挖掘（权重 25%）：80 分。依据：第1轮“您身边有没有人生过大病？后来家里怎么样？”");
    assert_string_equal(mh_turn_mode(&r), "training_done");

    const json_t *score = json_object_get(records(&r), "score");
    assert_int_equal(json_integer_value(json_object_get(score, "total")), 69);
    assert_int_equal(json_integer_value(json_object_get(score, "resolved")), 2);
    assert_int_equal(json_integer_value(json_object_get(score, "turns")), 4);
    const json_t *dims = json_object_get(score, "dimensions");
    static const char *const ids[] = {"needs_discovery", "product_knowledge", "objection_handling",
                                      "emotional_connection", "closing"};
    static const json_int_t want[] = {80, 50, 75, 65, 70};
    static const json_int_t weights[] = {25, 20, 25, 15, 15};
    assert_int_equal(json_array_size(dims), 5);
    for (size_t i = 0; i < 5; i++) {
        const json_t *d = json_array_get(dims, i);
        assert_string_equal(mh_json_str(d, "id"), ids[i]);
        assert_int_equal(json_integer_value(json_object_get(d, "score")), want[i]);
        assert_int_equal(json_integer_value(json_object_get(d, "weight")), weights[i]);
    }
    /* Evidence: quotes of the trainee's own messages, with turn and points. */
    const json_t *nd = json_object_get(json_array_get(dims, 0), "evidence");
    assert_int_equal(json_array_size(nd), 2);
    assert_string_equal(mh_json_str(json_array_get(nd, 0), "quote"), T_EXPERIENCE);
    assert_string_equal(mh_json_str(json_array_get(nd, 1), "quote"), T3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(nd, 1), "turn")), 3);
    const json_t *cl = json_object_get(json_array_get(dims, 4), "evidence");
    assert_string_equal(mh_json_str(json_array_get(cl, 0), "quote"), T4);
    assert_string_equal(mh_json_str(json_array_get(cl, 0), "strategy"), "trial_close");
    mh_http_resp_clear(&r);

    /* The stored conversation has the same score. */
    assert_int_equal(mh_get_conversation(mh_group_mesh, conv, &r), 0);
    assert_int_equal(r.status, 200);
    const json_t *st = json_object_get(r.json, "state");
    const json_t *rec = json_object_get(st, "records");
    if (json_is_string(rec)) { /* stored as text in the state hash */
        json_t *p = json_loads(json_string_value(rec), 0, NULL);
        assert_non_null(p);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "score"), "total")),
                         69);
        json_decref(p);
    } else {
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(rec, "score"), "total")), 69);
    }
    assert_string_equal(mh_json_str(st, "mode"), "training_done");
    mh_http_resp_clear(&r);

    /* After the session: the score again and how to restart. */
    reply = turn(conv, "谢谢", &r);
    mh_assert_has(reply, "总分 69/100");
    mh_http_resp_clear(&r);
}

static void test_english_end_training(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "trainer-en");
    mh_http_resp_t r;
    const char *reply =
        turn(conv, "start training critical illness has_million_medical think_later", &r);
    mh_assert_has(reply, "[Customer ");
    mh_assert_has(reply, "I already have a million-yuan medical policy. Isn't that enough?");
    mh_http_resp_clear(&r);
    reply = turn(conv,
                 "I understand. Your medical policy reimburses hospital bills, but critical "
                 "illness cover pays a lump sum for the income loss while you recover.",
                 &r);
    mh_assert_has(reply, "who pays for the year or two I spend recovering at home?");
    mh_assert_has(reply, "[Coach] Strategy detected: Contrasting reimbursement with a lump-sum "
                         "benefit (effective)");
    mh_http_resp_clear(&r);
    reply = turn(conv, "end training", &r);
    /* product_knowledge 10 + 40 = 50, emotional 10 + 35 = 45, objection handling 15,
     * needs 10, closing 0: (25x10 + 20x50 + 25x15 + 15x45 + 0) / 100 = 23. */
    mh_assert_has(reply, "[Score] Total 23/100 (objections resolved 0/2, 1 turns)");
    mh_assert_has(reply, "Product knowledge (weight 20%): 50. Evidence: turn 1 \"I understand.");
    assert_string_equal(mh_turn_mode(&r), "training_done");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(records(&r), "score"), "total")), 23);
    mh_http_resp_clear(&r);
}

/* A new conversation asking for practice goes to the trainer without naming it. */
static void test_triage(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "trainer-triage");
    mh_http_resp_t r;
    const char *reply = mh_turn(mh_group_mesh, conv,
                                "我是代理人，想开始陪练，练习重疾险的异议处理话术", NULL, NULL, &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "life_trainer");
    mh_assert_has(reply, "陪练开始");
    assert_string_equal(mh_turn_mode(&r), "training");
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("test_worker_trainer") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_strategies_two_reactions),
        cmocka_unit_test(test_scored_session),
        cmocka_unit_test(test_english_end_training),
        cmocka_unit_test(test_triage),
    };
    int failed = cmocka_run_group_tests(tests, mh_group_setup, mh_group_teardown);
    return mh_finish(failed);
}
