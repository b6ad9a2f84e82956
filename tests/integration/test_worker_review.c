/*
 * test_worker_review.c - the health_review digital worker (健康险理赔审核) end
 * to end through the gateway's HTTP API on a whole mesh (rules backend, real
 * Redis, the real policy data and medical catalogue): the seed case
 * (唾液酸酶测定 under P10023, whose product excludes 微量元素测定: the
 * catalogue says it is a biochemical enzyme test -> paid), a waiting-period
 * refusal, a claim sent as a JSON body, a claim sent over two messages, an
 * unknown item -> handoff pending with the reason (the next message gets no
 * bot answer), and triage / agent switching into the worker. Amounts are
 * checked against values computed by hand in the comments (fee.calc formula,
 * docs/protocol/services.md).
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

#include "mesh_harness.h"

#define CALL_TIMEOUT_MS 5000

static mh_mesh_t *s_mesh;
static char s_start[16]; /* P10023's start_date, from policy.lookup through the mesh */

static int group_setup(void **state)
{
    (void)state;
    s_mesh = mh_mesh_start(NULL);
    if (s_mesh == NULL)
        return -1;
    json_t *data = NULL;
    int st = mh_policy_lookup(s_mesh, "P10023", CALL_TIMEOUT_MS, &data);
    const json_t *res = json_object_get(data, "result");
    const char *start = mh_json_str(res, "start_date");
    /* The hand-computed amounts below rest on these terms of P10023 (data/README.md). */
    if (st != 0 || start == NULL || strlen(start) != 10 ||
        json_integer_value(json_object_get(res, "deductible")) != 10000 ||
        json_number_value(json_object_get(res, "deductible_used")) != 0.0 ||
        strcmp(mh_json_str(res, "status"), "active") != 0) {
        fprintf(stderr, "policy.lookup P10023 through the mesh: status %d, unexpected terms\n", st);
        json_decref(data);
        return -1;
    }
    /* The scenarios below are admitted between 2026-05-10 and 2026-07-05: P10023 must be in
     * force then and past its 30-day waiting period (ISO dates compare as strings). */
    const char *end = mh_json_str(res, "end_date");
    if (strcmp(start, "2026-04-09") > 0 || end == NULL || strcmp(end, "2026-07-05") < 0) {
        fprintf(stderr,
                "P10023 runs %s..%s: the review scenarios need it in force from "
                "2026-04-09 to 2026-07-05\n",
                start, end ? end : "?");
        json_decref(data);
        return -1;
    }
    snprintf(s_start, sizeof(s_start), "%s", start);
    json_decref(data);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

static const char *turn(const char *conv, const char *text, const char *mid, mh_http_resp_t *r)
{
    return mh_turn(s_mesh, conv, text, mid, "health_review", r);
}

/* records.decision of the FINAL's state. */
static const json_t *decision(const mh_http_resp_t *r)
{
    const json_t *d = json_object_get(json_object_get(mh_turn_state(r), "records"), "decision");
    if (!json_is_object(d))
        fail_msg("no records.decision in the FINAL's state: %s", r->body);
    return d;
}

static const json_t *dline(const json_t *dec, size_t i)
{
    const json_t *l = json_array_get(json_object_get(dec, "lines"), i);
    if (!json_is_object(l))
        fail_msg("decision has no line %zu", i);
    return l;
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("%s is not a number", key);
    return json_number_value(v);
}

/* Names of the turn's tool calls, in order, joined by ','. */
static void tool_names(const mh_http_resp_t *r, char *out, size_t size)
{
    out[0] = '\0';
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(r->json, "tool_calls"), i, c)
    {
        size_t l = strlen(out);
        snprintf(out + l, size - l, "%s%s", l ? "," : "", mh_json_str(c, "name"));
    }
}

/* "YYYY-MM-DD" + days. */
static void add_days(const char *date, int days, char out[16])
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_non_null(strptime(date, "%Y-%m-%d", &tm));
    tm.tm_mday += days;
    tm.tm_hour = 12;
    time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

/*
 * The seed case, P10023 (deductible 10,000 unused, social insurance used ->
 * ratio 100%, clause 2.3). By hand, in bill order (fee.calc takes the
 * deductible from the first lines first):
 *   腹腔镜胆囊切除术 28,000 - social 12,000 = 16,000; deductible 10,000 -> 6,000.00
 *   唾液酸酶测定        120 - 0              =    120; deductible      0 ->   120.00
 *   普通病房床位费      600 - 300            =    300; deductible      0 ->   300.00
 *   微量元素测定         80: class trace_element -> exclusion trace_element_test (3.2), refused
 * total payable 6,420.00; claimed 28,800.00; social 12,300.00; excluded 80.00.
 */
static const char *const SEED =
    "保单号 P10023，诊断：急性胆囊炎，医院：上海市第一人民医院，入院 2026-05-10，出院 "
    "2026-05-14，是否使用社保：是。费用明细：1. 腹腔镜胆囊切除术 手术费 28000 元 社保支付 "
    "12000；2. 唾液酸酶测定 化验费 120 元 社保支付 0；3. 普通病房床位费 床位费 600 元 社保支付 "
    "300；4. 微量元素测定 化验费 80 元 社保支付 0";

static void test_seed_sialidase_paid(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "rv-seed");
    mh_http_resp_t r = {0};
    const char *reply = turn(conv, SEED, "m1", &r);
    char names[256];
    tool_names(&r, names, sizeof(names));
    mh_assert_has(names, "policy.lookup");
    mh_assert_has(names, "medical.lookup");
    mh_assert_has(names, "fee.calc");
    mh_assert_has(names, "state.update");

    /* The steps, each visible. */
    mh_assert_has(reply, "保单核验（policy.lookup）");
    mh_assert_has(reply, "已过等待期");
    mh_assert_has(reply, "唾液酸酶测定：目录精确匹配，编码 LAB-0001，分类“");
    mh_assert_has(reply, "不属于本保单的除外类别 → 可赔付");
    mh_assert_has(reply, "腹腔镜胆囊切除术：目录别名匹配（标准名称“腹腔镜下胆囊切除术”）");
    mh_assert_has(reply, "（条款 3.2）→ 拒赔");
    /* The table against the hand-computed values. */
    mh_assert_has(reply, "| 腹腔镜胆囊切除术 | 28,000.00 | 12,000.00 | 0.00 | 10,000.00 | 100% | "
                         "6,000.00 | 赔付 |");
    mh_assert_has(reply, "| 唾液酸酶测定 | 120.00 | 0.00 | 0.00 | 0.00 | 100% | 120.00 | 赔付 |");
    mh_assert_has(reply,
                  "| 普通病房床位费 | 600.00 | 300.00 | 0.00 | 0.00 | 100% | 300.00 | 赔付 |");
    mh_assert_has(reply, "| 微量元素测定 | 80.00 | 0.00 | 80.00 | 0.00 | — | 0.00 | 拒赔 |");
    mh_assert_has(reply, "| 合计 | 28,800.00 | 12,300.00 | 80.00 | 10,000.00 |  | 6,420.00 |  |");
    mh_assert_has(reply, "审核结论：部分赔付。应付合计：6,420.00元。");
    mh_assert_has(reply, "依据条款 3.2");
    mh_assert_has(reply, "最终以保险公司审核为准");

    /* records.decision in the FINAL's state. */
    const json_t *dec = decision(&r);
    assert_string_equal(mh_json_str(dec, "status"), "partial");
    assert_true(num(dec, "total") == 6420.0);
    assert_true(num(dec, "total_claimed") == 28800.0);
    const json_t *l1 = dline(dec, 1);
    assert_string_equal(mh_json_str(l1, "item"), "唾液酸酶测定");
    assert_string_equal(mh_json_str(l1, "decision"), "payable");
    assert_string_equal(mh_json_str(l1, "class"), "biochemical_enzyme");
    assert_true(num(l1, "payable") == 120.0);
    const json_t *l3 = dline(dec, 3);
    assert_string_equal(mh_json_str(l3, "decision"), "refused");
    assert_string_equal(mh_json_str(l3, "reason"), "excluded_class");
    assert_string_equal(mh_json_str(l3, "clause"), "3.2");
    const json_t *slots = json_object_get(mh_turn_state(&r), "slots");
    assert_string_equal(mh_json_str(slots, "policy_no"), "P10023");
    assert_string_equal(mh_json_str(slots, "hospital"), "上海市第一人民医院");
    assert_null(json_object_get(r.json, "handoff"));
    mh_http_resp_clear(&r);

    /* The stored conversation keeps the answer and the decision. */
    assert_int_equal(mh_get_conversation(s_mesh, conv, &r), 0);
    assert_int_equal(r.status, 200);
    mh_assert_has(r.body, "6,420.00");
    mh_assert_has(r.body, "biochemical_enzyme");
    mh_http_resp_clear(&r);

    /* A follow-up adding nothing gets the decision again, without tools. */
    reply = turn(conv, "谢谢，结果再说一下？", "m2", &r);
    mh_assert_has(reply, "部分赔付，应付合计 6,420.00元");
    assert_int_equal(json_array_size(json_object_get(r.json, "tool_calls")), 0);
    mh_http_resp_clear(&r);
}

/*
 * Waiting period: admitted 10 days after P10023's start date (< 30 days,
 * clause 2.4; exclusion clause 3.1), an illness: every line refused, 0 paid.
 */
static void test_waiting_period_refused(void **state)
{
    (void)state;
    char conv[64], adm[16], dis[16];
    mh_conv_id(conv, sizeof(conv), "rv-wait");
    add_days(s_start, 10, adm);
    add_days(s_start, 13, dis);
    char msg[1024];
    snprintf(msg, sizeof(msg),
             "保单号 P10023，诊断：肺炎，医院：复旦大学附属华山医院，入院 %s，出院 %s，使用社保："
             "是。费用明细：1. 唾液酸酶测定 化验费 120 元 社保支付 0；2. 胸部CT平扫 检查费 500 元 "
             "社保支付 200",
             adm, dis);
    mh_http_resp_t r = {0};
    const char *reply = turn(conv, msg, "m1", &r);
    char want[256];
    snprintf(want, sizeof(want), "本次疾病发生于 %s，在等待期内", adm);
    mh_assert_has(reply, want);
    mh_assert_has(reply, "| 唾液酸酶测定 | 120.00 | 0.00 | 120.00 | 0.00 | — | 0.00 | 拒赔 |");
    mh_assert_has(reply, "| 胸部CT平扫 | 500.00 | 200.00 | 500.00 | 0.00 | — | 0.00 | 拒赔 |");
    mh_assert_has(reply, "等待期内发生的疾病，不承担给付责任，依据条款 2.4, 3.1。");
    mh_assert_has(reply, "审核结论：拒赔。应付合计：0.00元。");
    char names[256];
    tool_names(&r, names, sizeof(names));
    assert_null(strstr(names, "fee.calc")); /* nothing payable: no settlement */
    const json_t *dec = decision(&r);
    assert_string_equal(mh_json_str(dec, "status"), "refused");
    assert_true(num(dec, "total") == 0.0);
    assert_string_equal(mh_json_str(dline(dec, 0), "reason"), "waiting_period");
    assert_string_equal(mh_json_str(dline(dec, 0), "clause"), "2.4, 3.1");
    mh_http_resp_clear(&r);
}

/*
 * A JSON body, social insurance not used -> ratio 60% (clause 2.3). By hand:
 *   胸部CT平扫         600 - 0 = 600;    deductible 600   -> 0.00 (9,400 left)
 *   注射用头孢曲松钠 15,000 - 0 = 15,000; deductible 9,400 -> (15,000 - 9,400) x 0.6 = 3,360.00
 * total 3,360.00, approved.
 */
static void test_json_body(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "rv-json");
    const char *body =
        "{\"policy_no\":\"P10023\",\"diagnosis\":\"社区获得性肺炎\",\"hospital\":\"复旦大学附属华山"
        "医院\",\"admission_date\":\"2026-06-01\",\"discharge_date\":\"2026-06-08\","
        "\"social_insurance_used\":false,\"lines\":["
        "{\"item\":\"胸部CT平扫\",\"category\":\"检查费\",\"amount\":600,\"social_paid\":0},"
        "{\"item\":\"注射用头孢曲松钠\",\"category\":\"药品费\",\"amount\":15000,"
        "\"social_paid\":0}]}";
    mh_http_resp_t r = {0};
    const char *reply = turn(conv, body, "m1", &r);
    mh_assert_has(reply, "| 胸部CT平扫 | 600.00 | 0.00 | 0.00 | 600.00 | 60% | 0.00 |");
    mh_assert_has(reply,
                  "| 注射用头孢曲松钠 | 15,000.00 | 0.00 | 0.00 | 9,400.00 | 60% | 3,360.00 |");
    mh_assert_has(reply, "3,360.00");
    const json_t *dec = decision(&r);
    assert_string_equal(mh_json_str(dec, "status"), "approved");
    assert_true(num(dec, "total") == 3360.0);
    assert_true(num(dline(dec, 1), "deductible_applied") == 9400.0);
    const json_t *slots = json_object_get(mh_turn_state(&r), "slots");
    assert_true(json_is_false(json_object_get(slots, "social_insurance_used")));
    mh_http_resp_clear(&r);
}

/* Two messages: the facts, then the bill; the second turn reviews the merged claim. */
static void test_two_messages(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "rv-two");
    mh_http_resp_t r = {0};
    const char *reply = turn(conv,
                             "Policy P10023, diagnosis: acute appendicitis, hospital: Ruijin "
                             "Hospital, admitted 2026-07-01, discharged 2026-07-05",
                             "m1", &r);
    mh_assert_has(reply, "whether social medical insurance was used");
    mh_assert_has(reply, "the itemised bill");
    assert_string_equal(mh_json_str(json_object_get(mh_turn_state(&r), "slots"), "diagnosis"),
                        "acute appendicitis");
    mh_http_resp_clear(&r);

    /* ALT (an alias of 丙氨酸氨基转移酶测定, a biochemical enzyme test) 120 alone: taken
     * whole by the deductible -> payable 0.00, approved. */
    reply = turn(conv,
                 "Social insurance used: yes. Bill: 1. ALT, lab, 120 CNY, social insurance "
                 "paid 0",
                 "m2", &r);
    mh_assert_has(reply, "Health claim review - policy P10023 | diagnosis: acute appendicitis");
    mh_assert_has(reply, "ALT: catalogue alias match (standard name \"丙氨酸氨基转移酶测定\")");
    mh_assert_has(reply, "| ALT | 120.00 | 0.00 | 0.00 | 120.00 | 100% | 0.00 | payable |");
    mh_assert_has(reply, "to be confirmed by the insurer's final review");
    assert_string_equal(mh_json_str(decision(&r), "status"), "approved");
    mh_http_resp_clear(&r);
}

/* An item the catalogue does not know: pending, handed to a person with the reason. */
static void test_unknown_item_handoff(void **state)
{
    (void)state;
    char conv[64];
    mh_conv_id(conv, sizeof(conv), "rv-unk");
    const char *msg = "保单号 P10023，诊断：急性胆囊炎，医院：上海市第一人民医院，入院 2026-05-10，"
                      "出院 2026-05-14，是否使用社保：是。费用明细：1. 唾液酸酶测定 化验费 120 元 "
                      "社保支付 0；2. 量子共振检测 检查费 300 元 社保支付 0";
    mh_http_resp_t r = {0};
    const char *reply = turn(conv, msg, "m1", &r);
    mh_assert_has(reply, "量子共振检测：医疗目录中未找到该项目 → 转人工审核");
    mh_assert_has(reply, "| 量子共振检测 | 300.00 | 0.00 | — | — | — | 待定 | 待人工审核 |");
    mh_assert_has(reply, "已为您转交人工审核员");
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    const json_t *st = mh_turn_state(&r);
    assert_string_equal(mh_json_str(st, "handoff"), "pending");
    mh_assert_has(mh_json_str(st, "handoff_reason"), "量子共振检测");
    const json_t *dec = decision(&r);
    assert_string_equal(mh_json_str(dec, "status"), "pending");
    assert_string_equal(mh_json_str(dline(dec, 1), "decision"), "pending");
    assert_string_equal(mh_json_str(dline(dec, 1), "reason"), "unknown_item");
    mh_http_resp_clear(&r);

    /* The conversation waits for a person: the next message gets no bot answer. */
    reply = turn(conv, "请问什么时候有结果？", "m2", &r);
    assert_string_equal(reply, "");
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    mh_http_resp_clear(&r);
}

/* Triage: a first message without an agent reaches health_review by its keywords; a
 * policy_qa conversation switches on "审核理赔". */
static void test_triage_and_switch(void **state)
{
    (void)state;
    char conv[64], url[256];
    mh_conv_id(conv, sizeof(conv), "rv-triage");
    snprintf(url, sizeof(url), "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), conv);
    json_t *b = json_pack("{s:s, s:s}", "text", SEED, "message_id", "m1");
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    mh_http_resp_t r = {0};
    assert_int_equal(mh_http("POST", url, body, NULL, 15000, &r), 0);
    free(body);
    assert_int_equal(r.status, 200);
    mh_assert_has(mh_json_str(r.json, "reply"), "【健康险理赔审核】保单 P10023");
    mh_http_resp_clear(&r);

    mh_conv_id(conv, sizeof(conv), "rv-switch");
    snprintf(url, sizeof(url), "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), conv);
    b = json_pack("{s:s, s:s, s:s}", "text", "我的保单 P10023 免赔额是多少？", "message_id", "m1",
                  "agent", "policy_qa");
    body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    assert_int_equal(mh_http("POST", url, body, NULL, 15000, &r), 0);
    free(body);
    assert_int_equal(r.status, 200);
    assert_null(strstr(mh_json_str(r.json, "reply"), "健康险理赔审核"));
    mh_http_resp_clear(&r);
    char msg[1024];
    snprintf(msg, sizeof(msg), "我要审核理赔。%s", SEED);
    b = json_pack("{s:s, s:s}", "text", msg, "message_id", "m2");
    body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    assert_int_equal(mh_http("POST", url, body, NULL, 15000, &r), 0);
    free(body);
    assert_int_equal(r.status, 200);
    mh_assert_has(mh_json_str(r.json, "reply"), "应付合计：6,420.00元");
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("test_worker_review") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_sialidase_paid),
        cmocka_unit_test(test_waiting_period_refused),
        cmocka_unit_test(test_json_body),
        cmocka_unit_test(test_two_messages),
        cmocka_unit_test(test_unknown_item_handoff),
        cmocka_unit_test(test_triage_and_switch),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
