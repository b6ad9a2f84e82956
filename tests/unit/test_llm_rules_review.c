/*
 * test_llm_rules_review.c - the health_review engine of the rules backend
 * (services/llm/rules_review*.c), driven directly with built llm.chat args
 * and hand-made tool results: the claim parsers (zh chat, en chat, JSON
 * body, lenient forms), every step of a review (lookups, fee.calc, the
 * decision record, the answer's table), waiting period, pre-existing
 * condition, policy not in force, unknown item -> handoff, multi-message
 * claims through the state's slots, and the recap of a decided claim.
 */
#define _GNU_SOURCE /* asprintf */
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
#include "mesh/mesh_text.h"
#include "rules.h"
#include "rules_review.h"
#include "test_rules_driver.h"

/* ---- hand-made tool results ---- */

/* policy.lookup of P10023 (shape of docs/protocol/services.md; clause texts as in
 * data/products/med-million-2024.json, shortened). */
#define POLICY_FMT                                                                                                   \
    "{\"policy_no\":\"%s\",\"status\":\"%s\",\"holder\":\"张*\","                                                   \
    "\"product\":{\"id\":\"med-million-2024\",\"name\":{\"zh\":"                                                     \
    "\"安心百万医疗险（2024版，示例）\","                                                               \
    "\"en\":\"Anxin Million Medical 2024 (sample)\"},\"type\":\"medical\"},"                                         \
    "\"start_date\":\"%s\",\"end_date\":\"%s\",\"social_insurance\":true,"                                           \
    "\"deductible\":10000,\"deductible_used\":0,\"ratio_with_social\":1.0,"                                          \
    "\"ratio_without_social\":0.6,\"waiting_period_days\":30,\"limit\":3000000,\"limit_used\":0,"                    \
    "\"coverages\":[],"                                                                                              \
    "\"exclusions\":["                                                                                               \
    "{\"id\":\"pre_existing\",\"clause\":\"3.1\",\"text\":{\"zh\":\"既往症\",\"en\":\"Pre-"                       \
    "existing "                                                                                                      \
    "conditions\"}},"                                                                                                \
    "{\"id\":\"waiting_period_illness\",\"clause\":\"3.1\",\"text\":{\"zh\":\"等待期内发生的疾病"           \
    "\",\"en\":\"Illness during the waiting period\"}},"                                                             \
    "{\"id\":\"trace_element_test\",\"clause\":\"3.2\",\"text\":{\"zh\":\"微量元素测定（如血清锌"         \
    "、铜、铁等微量元素检测）\",\"en\":\"Trace-element measurement\"}}],"                                \
    "\"clauses\":{"                                                                                                  \
    "\"1.2\":{\"zh\":\"保险期间为一年，以保险单载明的起讫日期为准。\",\"en\":\"The period of " \
    "insurance is one year.\"},"                                                                                     \
    "\"2.3\":{\"zh\":\"免赔额与赔付比例：年免赔额为1万元。\",\"en\":\"Deductible and ratio: "       \
    "CNY 10,000.\"},"                                                                                                \
    "\"2.4\":{\"zh\":\"等待期：自本合同生效之日起30日为等待期。\",\"en\":\"Waiting period: 30 "   \
    "days.\"},"                                                                                                      \
    "\"3.1\":{\"zh\":\"责任免除（疾病）：既往症；等待期内发生的疾病。\",\"en\":\"Exclusions " \
    "(illness).\"},"                                                                                                 \
    "\"3.2\":{\"zh\":\"责任免除（项目）：微量元素测定。\",\"en\":\"Exclusions (items).\"}}}"

static char *policy_json(const char *pno, const char *status, const char *start, const char *end)
{
    char *s = NULL;
    assert_true(asprintf(&s, POLICY_FMT, pno, status, start, end) > 0);
    return s;
}

/* medical.lookup for the seed bill (tools engineer's catalogue shape, contract section 10). */
static const char *const MED_SEED =
    "{\"items\":["
    "{\"query\":\"腹腔镜胆囊切除术\",\"match\":\"exact\",\"code\":\"SS-0101\",\"name\":"
    "\"腹腔镜胆囊切除术\",\"category\":\"手术费\",\"class\":\"surgery\",\"class_name\":{\"zh\":"
    "\"手术\",\"en\":\"surgery\"},\"exclusion_classes\":[]},"
    "{\"query\":\"唾液酸酶测定\",\"match\":\"exact\",\"code\":\"HY-0417\",\"name\":\"唾液酸酶测定"
    "\",\"category\":\"化验费\",\"class\":\"biochemical_enzyme\",\"class_name\":{\"zh\":"
    "\"生化酶学检查\",\"en\":\"biochemical enzyme test\"},\"exclusion_classes\":[]},"
    "{\"query\":\"床位费\",\"match\":\"exact\",\"code\":\"CW-0001\",\"name\":\"床位费\","
    "\"category\":\"床位费\",\"class\":\"ward\",\"class_name\":{\"zh\":\"住院床位\",\"en\":"
    "\"ward bed\"},\"exclusion_classes\":[]},"
    "{\"query\":\"微量元素测定\",\"match\":\"exact\",\"code\":\"HY-0520\",\"name\":\"微量元素测定"
    "\",\"category\":\"化验费\",\"class\":\"trace_element\",\"class_name\":{\"zh\":"
    "\"微量元素检查\",\"en\":\"trace-element test\"},\"exclusion_classes\":"
    "[\"trace_element_test\"]},"
    "{\"query\":\"神秘检查XYZ\",\"match\":\"none\"}]}";

/*
 * fee.calc of the payable seed lines, computed by hand with the formula of
 * docs/protocol/services.md (deductible 10,000 remaining, ratio 100%):
 *   腹腔镜胆囊切除术 28,000 - social 12,000 = 16,000; deductible 10,000 -> 6,000
 *   唾液酸酶测定        120 - 0              =    120; deductible      0 ->   120
 *   床位费              600 - 300            =    300; deductible      0 ->   300
 *   total 6,420.
 */
static const char *const FEE_SEED =
    "{\"ratio\":1.0,\"deductible_remaining_before\":10000,\"deductible_remaining_after\":0,"
    "\"limit_remaining_before\":3000000,\"total_claimed\":28720,\"total_reasonable\":28720,"
    "\"total_social_paid\":12300,\"total_deductible_applied\":10000,\"total_payable\":6420,"
    "\"capped\":false,\"lines\":["
    "{\"item\":\"腹腔镜胆囊切除术\",\"amount\":28000,\"reasonable\":28000,\"social_paid\":12000,"
    "\"other_paid\":0,\"base\":16000,\"deductible_applied\":10000,\"ratio\":1.0,\"payable\":6000,"
    "\"rule\":\"r\"},"
    "{\"item\":\"唾液酸酶测定\",\"amount\":120,\"reasonable\":120,\"social_paid\":0,\"other_paid\":"
    "0,\"base\":120,\"deductible_applied\":0,\"ratio\":1.0,\"payable\":120,\"rule\":\"r\"},"
    "{\"item\":\"床位费\",\"amount\":600,\"reasonable\":600,\"social_paid\":300,\"other_paid\":0,"
    "\"base\":300,\"deductible_applied\":0,\"ratio\":1.0,\"payable\":300,\"rule\":\"r\"}]}";

static const char *const SEED_ZH =
    "保单号 P10023，诊断：急性胆囊炎，医院：上海市第一人民医院，入院 2026-05-10，出院 "
    "2026-05-14，是否使用社保：是。费用明细：1. 腹腔镜胆囊切除术 手术费 28000 元 社保支付 "
    "12000；2. 唾液酸酶测定 化验费 120 元 社保支付 0；3. 床位费 床位费 600 元 社保支付 300；"
    "4. 微量元素测定 化验费 80 元 社保支付 0";

/* ---- call building ---- */

typedef rd_conv_t conv_t;

static const char *const TOOLS[] = {"policy.lookup", "medical.lookup", "fee.calc", "state.update",
                                    NULL};

/*
 * The results a test gives the engine's tool calls, by tool name (an absent
 * name: {"ok":true}); state.update is also merged into the state the next
 * step sees, as the router does.
 */
typedef struct {
    const char *name;
    const char *result;
    bool ok;
} fake_result_t;

typedef struct {
    const fake_result_t *results;
    size_t n_results;
} fake_results_t;

static char *fake_tool(rd_conv_t *c, const llm_rules_call_t *tc, bool *ok)
{
    const fake_results_t *fr = c->ctx;
    const char *text = "{\"ok\":true}";
    for (size_t k = 0; k < fr->n_results; k++) {
        if (strcmp(fr->results[k].name, tc->name) == 0) {
            text = fr->results[k].result;
            *ok = fr->results[k].ok;
        }
    }
    if (strcmp(tc->name, "state.update") == 0)
        rd_apply_update(c->state, tc->arguments);
    return strdup(text);
}

static void conv_init(conv_t *c, const char *lang)
{
    rd_conv_init(c, "health_review", llm_rules_health_review, lang, json_object());
    c->tools = TOOLS;
    c->tool = fake_tool;
}

/* Record the engine's tool calls as the router would, answered from results. */
static void conv_tools(conv_t *c, const llm_rules_out_t *out, const fake_result_t *results,
                       size_t n_results)
{
    fake_results_t fr = {results, n_results};
    c->ctx = &fr;
    rd_answer_calls(c, out);
    c->ctx = NULL;
}

static const llm_rules_call_t *find_call(const llm_rules_out_t *out, const char *name)
{
    for (size_t i = 0; i < out->n_calls; i++) {
        if (strcmp(out->calls[i].name, name) == 0)
            return &out->calls[i];
    }
    return NULL;
}

static const char *text_of(const llm_rules_out_t *out)
{
    assert_int_equal(out->type, LLM_RESULT_TEXT);
    return llm_buf_str(&out->text);
}

/* Answer the engine's tool calls with results, then run the next step into out. */
static void next_step(conv_t *c, llm_rules_out_t *out, const fake_result_t *results,
                      size_t n_results)
{
    conv_tools(c, out, results, n_results);
    llm_rules_out_clear(out);
    rd_run(c, out);
}

static double jnum(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

/* records.decision of a state or of state.update's arguments. */
static const json_t *decision_of(const json_t *o)
{
    return json_object_get(json_object_get(o, "records"), "decision");
}

/* Element i of o["lines"] (a decision record's or fee.calc's lines). */
static const json_t *dec_line(const json_t *o, size_t i)
{
    return json_array_get(json_object_get(o, "lines"), i);
}

/* Drive a whole review of message text under a policy; returns the final answer in
 * answer (caller clears) and leaves the conversation's state in c. */
static void review_all(conv_t *c, const char *text, const char *policy, const char *med,
                       const char *fee, llm_rules_out_t *answer)
{
    rd_append(c, "user", text);
    fake_result_t res[] = {{"policy.lookup", policy, true},
                           {"medical.lookup", med, true},
                           {"fee.calc", fee ? fee : "{}", true}};
    for (int step = 0; step < 6; step++) {
        llm_rules_out_t out;
        rd_run(c, &out);
        if (out.type == LLM_RESULT_TEXT) {
            *answer = out;
            return;
        }
        conv_tools(c, &out, res, 3);
        llm_rules_out_clear(&out);
    }
    fail_msg("no answer within 6 steps");
}

/* ---- parser ---- */

/* A fresh claim parsed from t (zh: the conversation is in Chinese). */
static void parse(review_claim_t *c, const char *t, bool zh)
{
    review_claim_init(c);
    review_parse_message(t, strlen(t), zh, c);
}

/* The facts a parse must find; NULL: not checked. */
typedef struct {
    const char *policy_no, *diagnosis, *hospital, *admission, *discharge;
} facts_t;

static void assert_facts(const review_claim_t *c, const facts_t *f)
{
    if (f->policy_no)
        assert_string_equal(c->policy_no, f->policy_no);
    if (f->diagnosis)
        assert_string_equal(c->diagnosis, f->diagnosis);
    if (f->hospital)
        assert_string_equal(c->hospital, f->hospital);
    if (f->admission)
        assert_string_equal(c->admission, f->admission);
    if (f->discharge)
        assert_string_equal(c->discharge, f->discharge);
}

#define ANY (-1) /* an amount not checked */

/* Bill line i; item/category NULL and amounts ANY: not checked. */
static void assert_line(const review_claim_t *c, size_t i, const char *item, const char *category,
                        int64_t amount_fen, int64_t social_fen)
{
    assert_true(i < c->n_lines);
    if (item)
        assert_string_equal(c->lines[i].item, item);
    if (category)
        assert_string_equal(c->lines[i].category, category);
    if (amount_fen != ANY)
        assert_int_equal(c->lines[i].amount_fen, amount_fen);
    if (social_fen != ANY)
        assert_int_equal(c->lines[i].social_fen, social_fen);
}

static void test_parse_seed_zh(void **state)
{
    (void)state;
    review_claim_t c;
    parse(&c, SEED_ZH, true);
    assert_facts(
        &c, &(facts_t){"P10023", "急性胆囊炎", "上海市第一人民医院", "2026-05-10", "2026-05-14"});
    assert_int_equal(c.social_used, REVIEW_YES);
    assert_int_equal(c.n_lines, 4);
    assert_line(&c, 1, "唾液酸酶测定", "化验费", 12000, 0);
    assert_line(&c, 2, "床位费", "床位费", 60000, 30000);
    assert_line(&c, 0, NULL, NULL, 2800000, 1200000);
    assert_string_equal(c.problems, "");
    assert_int_equal(review_claim_missing(&c), 0);
}

static void test_parse_en(void **state)
{
    (void)state;
    const char *t = "Policy P10023. Diagnosis: acute cholecystitis, hospital: Ruijin Hospital, "
                    "admitted 2026-05-10, discharged on 2026/05/14, social insurance used: no. "
                    "Bill: 1. Sialidase test, lab, 120 CNY, social insurance paid 0; 2. Bed fee, "
                    "bed, 1,200.50 CNY, social insurance paid 300";
    review_claim_t c;
    parse(&c, t, false);
    assert_facts(&c, &(facts_t){"P10023", "acute cholecystitis", "Ruijin Hospital", "2026-05-10",
                                "2026-05-14"});
    assert_int_equal(c.social_used, REVIEW_NO);
    assert_int_equal(c.n_lines, 2);
    assert_line(&c, 0, "Sialidase test", "lab", 12000, ANY);
    assert_line(&c, 1, "Bed fee", NULL, 120050, 30000);
}

static void test_parse_lenient(void **state)
{
    (void)state;
    /* Unnumbered lines separated by 、 and ；, glued amounts, ¥ prefix, 万, date range,
     * Chinese dates, social insurance stated before the label. */
    const char *t =
        "P10023 在上海市第一人民医院住院，住院日期 2026年5月10日 至 2026年5月14日，诊断为"
        "胆结石，未使用社保。费用明细：唾液酸酶测定化验费120元社保支付0、床位费 ¥600 "
        "社保300；手术费 手术费 1.2万元 社保支付 5000；维生素B12测定 化验费 45.5元";
    review_claim_t c;
    parse(&c, t, true);
    assert_facts(&c,
                 &(facts_t){"P10023", "胆结石", "上海市第一人民医院", "2026-05-10", "2026-05-14"});
    assert_int_equal(c.social_used, REVIEW_NO);
    assert_int_equal(c.n_lines, 4);
    assert_line(&c, 0, "唾液酸酶测定", "化验费", 12000, ANY);
    assert_line(&c, 1, "床位费", NULL, 60000, 30000);
    assert_line(&c, 2, NULL, NULL, 1200000, 500000);
    assert_line(&c, 3, "维生素B12测定", NULL, 4550, ANY);
}

static void test_parse_json(void **state)
{
    (void)state;
    const char *t = "{\"policy_no\":\"P10124\",\"diagnosis\":\"肺炎\",\"hospital\":\"华山医院\","
                    "\"admission_date\":\"2026-06-01\",\"discharge_date\":\"2026-06-05\","
                    "\"social_insurance_used\":false,\"pre_existing\":false,\"lines\":["
                    "{\"item\":\"唾液酸酶测定\",\"category\":\"化验费\",\"amount\":120,"
                    "\"social_paid\":0},{\"item\":\"床位费\",\"amount\":\"600.5\"}]}";
    review_claim_t c;
    parse(&c, t, true);
    assert_true(c.json_body);
    assert_facts(&c, &(facts_t){.policy_no = "P10124", .hospital = "华山医院"});
    assert_int_equal(c.social_used, REVIEW_NO);
    assert_int_equal(c.pre_existing, REVIEW_NO);
    assert_int_equal(c.n_lines, 2);
    assert_line(&c, 1, NULL, NULL, 60050, 0);
    assert_string_equal(c.problems, "");

    /* Wrong types are reported, not guessed. */
    const char *bad = "{\"policy_no\":\"X1\",\"admission_date\":\"tomorrow\",\"lines\":"
                      "[{\"item\":\"床位费\",\"amount\":-5},{\"amount\":3}]}";
    parse(&c, bad, false);
    assert_non_null(strstr(c.problems, "policy_no"));
    assert_non_null(strstr(c.problems, "admission_date"));
    assert_non_null(strstr(c.problems, "lines[0]"));
    assert_non_null(strstr(c.problems, "lines[1]"));
    assert_int_equal(c.n_lines, 0);

    /* Malformed JSON: a problem, not a crash. */
    review_claim_init(&c);
    review_parse_message("{\"policy_no\": ", 14, false, &c);
    review_parse_message("{\"a\":1,}", 8, false, &c);
    assert_non_null(strstr(c.problems, "malformed"));
}

static void test_dates(void **state)
{
    (void)state;
    char d[REVIEW_DATE_LEN + 1];
    assert_int_equal(review_read_date("2026-05-10", 10, d), 10);
    assert_string_equal(d, "2026-05-10");
    assert_int_equal(review_read_date("2026/5/9 x", 10, d), 8);
    assert_string_equal(d, "2026-05-09");
    assert_true(review_read_date("2026年5月10日", strlen("2026年5月10日"), d) > 0);
    assert_string_equal(d, "2026-05-10");
    assert_int_equal(review_read_date("2026-02-30", 10, d), 0);
    assert_int_equal(review_read_date("20260510", 8, d), 0);
    assert_int_equal(review_date_days("1970-01-01"), 0);
    assert_int_equal(review_date_days("2026-11-01") - review_date_days("2026-10-18"), 14);
    assert_int_equal(review_date_days("2024-03-01") - review_date_days("2024-02-28"), 2);
    assert_int_equal(review_date_days("2026-13-01"), -1);
}

static void test_parse_forms(void **state)
{
    (void)state;
    /* Fields separated by blanks only, "1、" markers, social insurance negated before its
     * label, "CNY 120" with the currency first. */
    const char *t =
        "保单号P10023 诊断：胆囊结石 医院：瑞金医院 入院日期：2026/5/10 出院日期：2026/5/12 "
        "未使用社保结算 费用明细 1、唾液酸酶测定 化验费 120元 社保支付0 2、普通病房床位费 "
        "床位费 600元 社保支付0 3、ALT 化验费 CNY 35";
    review_claim_t c;
    parse(&c, t, true);
    assert_facts(&c, &(facts_t){"P10023", "胆囊结石", "瑞金医院", "2026-05-10", "2026-05-12"});
    assert_int_equal(c.social_used, REVIEW_NO);
    assert_int_equal(c.n_lines, 3);
    assert_line(&c, 0, "唾液酸酶测定", NULL, 12000, ANY);
    assert_line(&c, 1, "普通病房床位费", "床位费", 60000, ANY);
    assert_line(&c, 2, "ALT", NULL, 3500, ANY);

    /* English, facts after the bill, pre-existing denied, an accident. */
    const char *e = "Bill: 1. CBC, lab, 60 CNY; 2. Bed fee, bed, CNY 300, social insurance paid "
                    "100. Policy P10023, diagnosis: wrist fracture from a fall accident, hospital: "
                    "Ruijin Hospital, admission date 2026-08-01, discharge date 2026-08-03, used "
                    "social insurance: yes, pre-existing: none";
    parse(&c, e, false);
    assert_facts(&c, &(facts_t){.policy_no = "P10023",
                                .hospital = "Ruijin Hospital",
                                .admission = "2026-08-01",
                                .discharge = "2026-08-03"});
    assert_int_equal(c.social_used, REVIEW_YES);
    assert_int_equal(c.pre_existing, REVIEW_NO);
    assert_int_equal(c.accident, REVIEW_YES);
    assert_int_equal(c.n_lines, 2);
    assert_line(&c, 1, NULL, NULL, 30000, 10000);
    assert_string_equal(c.problems, "");

    /* A line without an amount is reported by name. */
    const char *m = "费用明细：1. 唾液酸酶测定 化验费；2. 床位费 床位费 600 元";
    parse(&c, m, true);
    assert_int_equal(c.n_lines, 1);
    assert_non_null(strstr(c.problems, "唾液酸酶测定"));
}

/* ---- the steps ---- */

static void test_step1_parallel_lookups(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "zh");
    rd_append(&c, "user", SEED_ZH);
    llm_rules_out_t out;
    rd_run(&c, &out);
    assert_int_equal(out.type, LLM_RESULT_TOOL_CALLS);
    assert_int_equal(out.n_calls, 3);
    const llm_rules_call_t *pol = find_call(&out, "policy.lookup");
    const llm_rules_call_t *med = find_call(&out, "medical.lookup");
    const llm_rules_call_t *su = find_call(&out, "state.update");
    assert_non_null(pol);
    assert_non_null(med);
    assert_non_null(su);
    assert_string_equal(mh_json_str(pol->arguments, "policy_no"), "P10023");
    const json_t *items = json_object_get(med->arguments, "items");
    assert_int_equal(json_array_size(items), 4);
    assert_string_equal(json_string_value(json_array_get(items, 1)), "唾液酸酶测定");
    const json_t *slots = json_object_get(su->arguments, "slots");
    assert_string_equal(mh_json_str(slots, "diagnosis"), "急性胆囊炎");
    assert_true(json_is_true(json_object_get(slots, "social_insurance_used")));
    assert_non_null(strstr(mh_json_str(slots, "bill_lines"), "\"item\":\"唾液酸酶测定\""));
    /* Distinct call ids. */
    assert_string_not_equal(out.calls[0].id, out.calls[1].id);
    llm_rules_out_clear(&out);
    rd_conv_free(&c);
}

static void test_seed_review_paid(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "zh");
    char *pol = policy_json("P10023", "active", "2026-03-01", "2027-02-28");
    rd_append(&c, "user", SEED_ZH);
    fake_result_t res[] = {{"policy.lookup", pol, true},
                           {"medical.lookup", MED_SEED, true},
                           {"fee.calc", FEE_SEED, true}};
    llm_rules_out_t out;
    rd_run(&c, &out); /* step 1 */
    conv_tools(&c, &out, res, 3);
    llm_rules_out_clear(&out);

    rd_run(&c, &out); /* step 2: fee.calc on the payable lines only */
    assert_int_equal(out.n_calls, 1);
    assert_string_equal(out.calls[0].name, "fee.calc");
    const json_t *a = out.calls[0].arguments;
    assert_string_equal(mh_json_str(a, "policy_no"), "P10023");
    assert_true(json_is_true(json_object_get(a, "social_insurance_used")));
    const json_t *lines = json_object_get(a, "lines");
    assert_int_equal(json_array_size(lines), 3); /* 微量元素测定 is excluded */
    assert_string_equal(mh_json_str(json_array_get(lines, 1), "item"), "唾液酸酶测定");
    assert_true(jnum(json_array_get(lines, 1), "amount") == 120.0);
    conv_tools(&c, &out, res, 3);
    llm_rules_out_clear(&out);

    rd_run(&c, &out); /* step 3: the decision record */
    assert_int_equal(out.n_calls, 1);
    assert_string_equal(out.calls[0].name, "state.update");
    const json_t *dec = decision_of(out.calls[0].arguments);
    assert_non_null(dec);
    assert_null(json_object_get(out.calls[0].arguments, "handoff"));
    assert_string_equal(mh_json_str(dec, "status"), "partial");
    assert_true(jnum(dec, "total") == 6420.0);
    assert_true(jnum(dec, "total_claimed") == 28800.0);
    const json_t *l1 = dec_line(dec, 1);
    assert_string_equal(mh_json_str(l1, "decision"), "payable");
    assert_string_equal(mh_json_str(l1, "class"), "biochemical_enzyme");
    assert_true(jnum(l1, "payable") == 120.0);
    const json_t *l3 = dec_line(dec, 3);
    assert_string_equal(mh_json_str(l3, "decision"), "refused");
    assert_string_equal(mh_json_str(l3, "reason"), "excluded_class");
    assert_string_equal(mh_json_str(l3, "clause"), "3.2");
    conv_tools(&c, &out, res, 3);
    llm_rules_out_clear(&out);

    rd_run(&c, &out); /* step 4: the answer */
    const char *t = text_of(&out);
    assert_non_null(strstr(t, "保单核验（policy.lookup）"));
    assert_non_null(strstr(t, "已过等待期"));
    assert_non_null(strstr(t, "唾液酸酶测定：目录精确匹配，编码 HY-0417，分类“生化酶学检查”，"
                              "不属于本保单的除外类别 → 可赔付"));
    assert_non_null(strstr(t, "微量元素测定：目录精确匹配，编码 HY-0520，分类“微量元素检查”，"
                              "属于本保单除外类别"));
    /* The table rows, hand-computed above. */
    assert_non_null(strstr(t,
                           "| 腹腔镜胆囊切除术 | 28,000.00 | 12,000.00 | 0.00 | 10,000.00 | 100% | "
                           "6,000.00 | 赔付 |"));
    assert_non_null(
        strstr(t, "| 唾液酸酶测定 | 120.00 | 0.00 | 0.00 | 0.00 | 100% | 120.00 | 赔付 |"));
    assert_non_null(strstr(t, "| 床位费 | 600.00 | 300.00 | 0.00 | 0.00 | 100% | 300.00 | 赔付 |"));
    assert_non_null(strstr(t, "| 微量元素测定 | 80.00 | 0.00 | 80.00 | 0.00 | — | 0.00 | 拒赔 |"));
    assert_non_null(
        strstr(t, "| 合计 | 28,800.00 | 12,300.00 | 80.00 | 10,000.00 |  | 6,420.00 |  |"));
    assert_non_null(strstr(t, "审核结论：部分赔付。应付合计：6,420.00元。"));
    assert_non_null(strstr(t, "依据条款 3.2"));
    assert_non_null(strstr(t, "最终以保险公司审核为准"));
    llm_rules_out_clear(&out);
    free(pol);
    rd_conv_free(&c);
}

static void test_waiting_period_refused(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "en");
    /* Policy starts 2026-10-18; admitted 2026-11-01 = day 14 < 30: in the waiting period. */
    char *pol = policy_json("P10099", "active", "2026-10-18", "2027-10-17");
    const char *msg = "Policy P10099, diagnosis: pneumonia, hospital: Huashan Hospital, admitted "
                      "2026-11-01, discharged 2026-11-05, social insurance used: yes. Bill: 1. "
                      "唾液酸酶测定, lab, 120 CNY, social insurance paid 0";
    llm_rules_out_t ans;
    review_all(&c, msg, pol, MED_SEED, NULL, &ans);
    const char *t = text_of(&ans);
    assert_non_null(strstr(t, "2026-10-18 to 2026-11-16"));
    assert_non_null(strstr(t, "within the waiting period"));
    assert_non_null(
        strstr(t, "| 唾液酸酶测定 | 120.00 | 0.00 | 120.00 | 0.00 | — | 0.00 | refused |"));
    assert_non_null(strstr(t, "clause 2.4, 3.1"));
    assert_non_null(strstr(t, "Decision: refused. Total payable: CNY 0.00."));
    assert_non_null(strstr(t, "to be confirmed by the insurer's final review"));
    const json_t *dec = decision_of(c.state);
    assert_string_equal(mh_json_str(dec, "status"), "refused");
    const json_t *l0 = dec_line(dec, 0);
    assert_string_equal(mh_json_str(l0, "reason"), "waiting_period");
    llm_rules_out_clear(&ans);

    /* An accident has no waiting period. */
    conv_t c2;
    conv_init(&c2, "en");
    const char *acc = "Policy P10099, diagnosis: fracture after an accident, hospital: Huashan "
                      "Hospital, admitted 2026-11-01, discharged 2026-11-05, social insurance "
                      "used: yes. Bill: 1. 唾液酸酶测定, lab, 120 CNY, social insurance paid 0";
    const char *fee = "{\"ratio\":1.0,\"deductible_remaining_before\":10000,\"total_payable\":0,"
                      "\"lines\":[{\"item\":\"唾液酸酶测定\",\"deductible_applied\":120,\"ratio\":"
                      "1.0,\"payable\":0}]}";
    review_all(&c2, acc, pol, MED_SEED, fee, &ans);
    t = text_of(&ans);
    assert_non_null(strstr(t, "no waiting period applies"));
    assert_non_null(
        strstr(t, "| 唾液酸酶测定 | 120.00 | 0.00 | 0.00 | 120.00 | 100% | 0.00 | payable |"));
    llm_rules_out_clear(&ans);
    free(pol);
    rd_conv_free(&c);
    rd_conv_free(&c2);
}

static void test_pre_existing_and_not_in_force(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "zh");
    char *pol = policy_json("P10023", "active", "2026-03-01", "2027-02-28");
    const char *msg =
        "保单号 P10023，诊断：高血压，医院：华山医院，入院 2026-05-10，出院 2026-05-12，"
        "使用社保：是，既往症：有。费用明细：1. 床位费 床位费 600 元 社保支付 300";
    llm_rules_out_t ans;
    review_all(&c, msg, pol, MED_SEED, NULL, &ans);
    const char *t = text_of(&ans);
    assert_non_null(strstr(t, "属于既往症"));
    assert_non_null(strstr(t, "| 床位费 | 600.00 | 300.00 | 600.00 | 0.00 | — | 0.00 | 拒赔 |"));
    assert_non_null(strstr(t, "既往症属于责任免除，依据条款 3.1。"));
    llm_rules_out_clear(&ans);
    rd_conv_free(&c);

    /* Admission before the policy started: not in force (clause 1.2). */
    conv_init(&c, "zh");
    const char *early =
        "保单号 P10023，诊断：肺炎，医院：华山医院，入院 2026-02-10，出院 2026-02-12，"
        "使用社保：是。费用明细：1. 床位费 床位费 600 元 社保支付 300";
    review_all(&c, early, pol, MED_SEED, NULL, &ans);
    t = text_of(&ans);
    assert_non_null(strstr(t, "不在保险期间内，本次费用不予赔付（条款 1.2）"));
    const json_t *dec = decision_of(c.state);
    const json_t *l0 = dec_line(dec, 0);
    assert_string_equal(mh_json_str(l0, "reason"), "not_in_force");
    assert_string_equal(mh_json_str(l0, "clause"), "1.2");
    llm_rules_out_clear(&ans);
    free(pol);
    rd_conv_free(&c);
}

static void test_unknown_item_handoff(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "zh");
    char *pol = policy_json("P10023", "active", "2026-03-01", "2027-02-28");
    const char *msg = "保单号 P10023，诊断：急性胆囊炎，医院：上海市第一人民医院，入院 2026-05-10，"
                      "出院 2026-05-14，是否使用社保：是。费用明细：1. 唾液酸酶测定 化验费 120 元 "
                      "社保支付 0；2. 神秘检查XYZ 检查费 300 元 社保支付 0";
    const char *fee = "{\"ratio\":1.0,\"deductible_remaining_before\":10000,\"total_payable\":0,"
                      "\"lines\":[{\"item\":\"唾液酸酶测定\",\"deductible_applied\":120,\"ratio\":"
                      "1.0,\"payable\":0}]}";
    rd_append(&c, "user", msg);
    fake_result_t res[] = {
        {"policy.lookup", pol, true}, {"medical.lookup", MED_SEED, true}, {"fee.calc", fee, true}};
    llm_rules_out_t out;
    rd_run(&c, &out);
    next_step(&c, &out, res, 3); /* fee.calc on the one payable line */
    assert_string_equal(out.calls[0].name, "fee.calc");
    assert_int_equal(json_array_size(json_object_get(out.calls[0].arguments, "lines")), 1);
    next_step(&c, &out, res, 3); /* decision + handoff */
    const json_t *a = out.calls[0].arguments;
    const char *reason =
        json_string_value(json_object_get(json_object_get(a, "handoff"), "reason"));
    assert_non_null(reason);
    assert_non_null(strstr(reason, "医疗目录中未找到"));
    assert_non_null(strstr(reason, "神秘检查XYZ"));
    const json_t *dec = decision_of(a);
    assert_string_equal(mh_json_str(dec, "status"), "pending");
    const json_t *l1 = dec_line(dec, 1);
    assert_string_equal(mh_json_str(l1, "decision"), "pending");
    assert_string_equal(mh_json_str(l1, "reason"), "unknown_item");
    next_step(&c, &out, res, 3);
    const char *t = text_of(&out);
    assert_non_null(strstr(t, "神秘检查XYZ：医疗目录中未找到该项目 → 转人工审核"));
    assert_non_null(strstr(t, "| 神秘检查XYZ | 300.00 | 0.00 | — | — | — | 待定 | 待人工审核 |"));
    assert_non_null(strstr(t, "已为您转交人工审核员"));
    llm_rules_out_clear(&out);
    free(pol);
    rd_conv_free(&c);
}

static void test_multi_message_slots(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "zh");
    /* Message 1: facts only -> state.update {slots}, then ask for the rest. */
    rd_append(&c, "user", "保单号 P10023，诊断：急性胆囊炎，医院：上海市第一人民医院");
    llm_rules_out_t out;
    rd_run(&c, &out);
    assert_int_equal(out.n_calls, 1);
    assert_string_equal(out.calls[0].name, "state.update");
    conv_tools(&c, &out, NULL, 0);
    llm_rules_out_clear(&out);
    rd_run(&c, &out);
    const char *t = text_of(&out);
    assert_non_null(strstr(t, "已记录：保单号 P10023，诊断 急性胆囊炎，医院 上海市第一人民医院。"));
    assert_non_null(strstr(t, "还需要：入院日期、出院日期、是否使用社保结算、费用明细"));
    rd_append(&c, "assistant", t);
    llm_rules_out_clear(&out);

    /* A new turn: the context keeps only user messages and answers; the state keeps slots. */
    json_t *keep = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(c.messages, i, m)
    {
        const char *role = mh_json_str(m, "role");
        if (strcmp(role, "tool") != 0 && json_object_get(m, "tool_calls") == NULL)
            json_array_append(keep, m);
    }
    json_decref(c.messages);
    c.messages = keep;

    /* Message 2: the rest -> complete: lookups, and the merged slots recorded. */
    rd_append(&c, "user",
              "入院 2026-05-10，出院 2026-05-14，使用社保：是。费用明细：1. 唾液酸酶测定 化验费 "
              "120 元 社保支付 0");
    rd_run(&c, &out);
    assert_int_equal(out.n_calls, 3);
    const llm_rules_call_t *su = find_call(&out, "state.update");
    assert_non_null(su);
    const json_t *slots = json_object_get(su->arguments, "slots");
    assert_string_equal(mh_json_str(slots, "hospital"), "上海市第一人民医院");
    assert_string_equal(mh_json_str(slots, "admission_date"), "2026-05-10");
    assert_string_equal(json_string_value(json_object_get(
                            find_call(&out, "policy.lookup")->arguments, "policy_no")),
                        "P10023");
    llm_rules_out_clear(&out);
    rd_conv_free(&c);

    /* Without state (a router that passes none): the earlier messages are re-read. */
    conv_init(&c, "zh");
    rd_append(&c, "user", "保单号 P10023，诊断：急性胆囊炎，医院：上海市第一人民医院");
    rd_append(&c, "assistant", "已记录：……");
    rd_append(&c, "user",
              "入院 2026-05-10，出院 2026-05-14，使用社保：是。费用明细：1. 唾液酸酶测定 化验费 "
              "120 元 社保支付 0");
    rd_run(&c, &out);
    assert_non_null(find_call(&out, "policy.lookup"));
    llm_rules_out_clear(&out);
    rd_conv_free(&c);
}

/* A long customer-given diagnosis quoted back is cut on a character boundary:
 * the answer stays valid UTF-8 (fuzz_rules found "%.60s" cutting a character). */
static void test_recap_clips_utf8(void **state)
{
    (void)state;
    static const char *const msgs[] = {
        "保单号 P10023，诊断：2型糖尿病伴多发性周围神经病变及糖尿病肾病（CKD "
        "3期），医院：上海市第一"
        "人民医院",
        "保单号 "
        "P10023，诊断：急性胆囊炎，医院：上海交通大学医学院附属瑞金医院卢湾分院（原卢湾区中心医"
        "院）东院区",
    };
    for (size_t k = 0; k < sizeof(msgs) / sizeof(msgs[0]); k++) {
        conv_t c;
        conv_init(&c, "zh");
        rd_append(&c, "user", msgs[k]);
        llm_rules_out_t out;
        rd_run(&c, &out);
        /* Answer the tool steps (state.update echoes) until the engine speaks. */
        for (int step = 0; step < 4 && out.type == LLM_RESULT_TOOL_CALLS; step++) {
            conv_tools(&c, &out, NULL, 0);
            llm_rules_out_clear(&out);
            rd_run(&c, &out);
        }
        const char *t = text_of(&out);
        assert_true(mesh_utf8_valid(t, strlen(t)));
        assert_non_null(strstr(t, "P10023"));
        llm_rules_out_clear(&out);
        rd_conv_free(&c);
    }
}

static void test_ask_and_recap(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "en");
    rd_append(&c, "user", "hello, I need a claim review");
    llm_rules_out_t out;
    rd_run(&c, &out);
    const char *t = text_of(&out);
    assert_non_null(strstr(t, "the policy number"));
    assert_non_null(strstr(t, "the itemised bill"));
    llm_rules_out_clear(&out);
    rd_conv_free(&c);

    /* A decided claim and a message adding nothing: the decision again, no tools. */
    conv_init(&c, "zh");
    char *pol = policy_json("P10023", "active", "2026-03-01", "2027-02-28");
    llm_rules_out_t ans;
    review_all(&c, SEED_ZH, pol, MED_SEED, FEE_SEED, &ans);
    rd_append(&c, "assistant", text_of(&ans));
    llm_rules_out_clear(&ans);
    rd_append(&c, "user", "谢谢，P10023 的结果再说一下？");
    rd_run(&c, &out);
    t = text_of(&out);
    assert_non_null(strstr(t, "部分赔付，应付合计 6,420.00元"));
    assert_non_null(strstr(t, "微量元素测定（条款 3.2）"));
    llm_rules_out_clear(&out);
    free(pol);
    rd_conv_free(&c);
}

static void test_policy_not_found(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "en");
    const char *msg = "Policy P19999, diagnosis: flu, hospital: Huashan Hospital, admitted "
                      "2026-05-10, discharged 2026-05-11, social insurance used: yes. Bill: 1. "
                      "Bed fee, bed, 100 CNY, social insurance paid 0";
    llm_rules_out_t ans;
    fake_result_t res[] = {
        {"policy.lookup", "{\"code\":\"not_found\",\"message\":\"no policy P19999\"}", false}};
    rd_append(&c, "user", msg);
    llm_rules_out_t out;
    rd_run(&c, &out);
    conv_tools(&c, &out, res, 1);
    llm_rules_out_clear(&out);
    rd_run(&c, &ans);
    assert_non_null(strstr(text_of(&ans), "could not find policy P19999"));
    llm_rules_out_clear(&ans);
    rd_conv_free(&c);
}

/* A lapsed policy is not refused on its status alone: a person checks when it lapsed. A
 * policy of another type is not reviewed. */
static void test_lapsed_and_not_medical(void **state)
{
    (void)state;
    char *pol = policy_json("P10112", "lapsed", "2026-03-01", "2027-02-28");
    conv_t c;
    conv_init(&c, "zh");
    const char *msg = "保单号 P10112，诊断：急性胆囊炎，医院：上海市第一人民医院，入院 2026-05-10，"
                      "出院 2026-05-14，是否使用社保：是。费用明细：1. 唾液酸酶测定 化验费 120 元 "
                      "社保支付 0";
    llm_rules_out_t ans;
    review_all(&c, msg, pol, MED_SEED, NULL, &ans);
    const char *t = text_of(&ans);
    assert_non_null(strstr(t, "但保单已失效，入院时是否有效需人工核实"));
    assert_non_null(strstr(t, "保单已失效，需人工核实入院时保单是否有效：唾液酸酶测定"));
    assert_string_equal(mh_json_str(c.state, "handoff"), "pending");
    const json_t *dec = decision_of(c.state);
    assert_string_equal(mh_json_str(dec, "status"), "pending");
    llm_rules_out_clear(&ans);
    rd_conv_free(&c);
    free(pol);

    /* A critical-illness policy: no bill review. */
    char *ci = policy_json("P10200", "active", "2026-03-01", "2046-02-28");
    char *p = strstr(ci, "\"type\":\"medical\"");
    assert_non_null(p);
    memcpy(p, "\"type\":\"ci_____\"", strlen("\"type\":\"medical\""));
    conv_init(&c, "en");
    const char *en = "Policy P10200, diagnosis: flu, hospital: Huashan Hospital, admitted "
                     "2026-05-10, discharged 2026-05-11, social insurance used: yes. Bill: 1. "
                     "CBC, lab, 60 CNY";
    review_all(&c, en, ci, MED_SEED, NULL, &ans);
    assert_non_null(strstr(text_of(&ans), "is not a medical (million medical) policy"));
    assert_null(decision_of(c.state));
    llm_rules_out_clear(&ans);
    rd_conv_free(&c);
    free(ci);
}

/* ---- hostile input ---- */

static bool valid_utf8_prefix_cut(const char *s)
{
    /* The string must not end inside a UTF-8 sequence. */
    size_t l = strlen(s), k = l;
    while (k > 0 && ((unsigned char)s[k - 1] & 0xC0) == 0x80)
        k--;
    if (k == 0 || k == l)
        return true;
    unsigned char lead = (unsigned char)s[k - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return l - (k - 1) == need;
}

static void check_claim_bounds(const review_claim_t *c)
{
    assert_true(c->n_lines <= REVIEW_LINES_MAX);
    assert_true(strlen(c->diagnosis) <= REVIEW_TEXT_MAX);
    assert_true(strlen(c->hospital) <= REVIEW_TEXT_MAX);
    assert_true(strlen(c->problems) < REVIEW_PROBLEMS_MAX);
    for (size_t i = 0; i < c->n_lines; i++) {
        assert_true(strlen(c->lines[i].item) >= 1);
        assert_true(strlen(c->lines[i].item) <= REVIEW_ITEM_MAX);
        assert_true(strlen(c->lines[i].category) <= REVIEW_CATEGORY_MAX);
        assert_true(c->lines[i].amount_fen >= 0 && c->lines[i].amount_fen <= REVIEW_FEN_MAX);
        assert_true(c->lines[i].social_fen >= 0 &&
                    c->lines[i].social_fen <= c->lines[i].amount_fen);
    }
}

static void test_parse_hostile(void **state)
{
    (void)state;
    /* Random bytes drawn from the characters the parser cares about. */
    static const char *const atoms[] = {
        "1.",     "2、",        "元",       "社保",  "支付", "，",      "；",   "。",
        "、",     " ",          "120",      "9,999", ".",    "P10023",  "诊断", "医院：",
        "入院",   "2026-05-10", "费用明细", "\xff",  "\xe5", "¥",       "万",   "CNY",
        "social", "(1)",        "x",        "\n",    ":",    "99999999"};
    unsigned seed = 12345;
    char buf[4096];
    for (int round = 0; round < 2000; round++) {
        size_t len = 0;
        int n = (int)(rand_r(&seed) % 120);
        for (int k = 0; k < n; k++) {
            const char *a = atoms[rand_r(&seed) % (sizeof(atoms) / sizeof(atoms[0]))];
            size_t al = strlen(a);
            if (len + al >= sizeof(buf))
                break;
            memcpy(buf + len, a, al);
            len += al;
        }
        review_claim_t c;
        review_claim_init(&c);
        review_parse_message(buf, len, round % 2 == 0, &c);
        check_claim_bounds(&c);
        assert_true(valid_utf8_prefix_cut(c.problems));
    }

    /* More lines than the bound: capped, and said so. */
    char big[8192];
    size_t o = (size_t)snprintf(big, sizeof(big), "费用明细：");
    for (int i = 1; i <= REVIEW_LINES_MAX + 5; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%d. 床位费 床位费 %d 元 社保支付 0；", i,
                              100 + i);
    review_claim_t c;
    review_claim_init(&c);
    review_parse_message(big, o, true, &c);
    assert_int_equal(c.n_lines, REVIEW_LINES_MAX);
    assert_non_null(strstr(c.problems, "超过 40 行"));

    /* An amount beyond fee.calc's maximum is a problem, not an overflow. */
    const char *huge = "费用明细：1. 床位费 床位费 99999999999999999999 元 社保支付 0";
    parse(&c, huge, true);
    assert_int_equal(c.n_lines, 0);
    assert_non_null(strstr(c.problems, "缺少有效金额"));

    /* An item name over 200 bytes is cut on a character boundary. */
    char longname[1024];
    o = (size_t)snprintf(longname, sizeof(longname), "费用明细：1. ");
    for (int i = 0; i < 90; i++)
        o += (size_t)snprintf(longname + o, sizeof(longname) - o, "测");
    o += (size_t)snprintf(longname + o, sizeof(longname) - o, " 化验费 50 元");
    review_claim_init(&c);
    review_parse_message(longname, o, true, &c);
    assert_int_equal(c.n_lines, 1);
    assert_int_equal(strlen(c.lines[0].item), 198); /* 66 characters of 3 bytes */
    assert_true(valid_utf8_prefix_cut(c.lines[0].item));

    /* Garbage slots are ignored. */
    json_t *slots = json_pack("{s:s, s:i, s:s}", "bill_lines", "[{\"item\":", "policy_no", 5,
                              "admission_date", "soon");
    review_claim_init(&c);
    review_claim_from_slots(slots, &c);
    assert_true(review_claim_empty(&c));
    json_decref(slots);
}

/* Tool failures: unreadable policy result, catalogue error, settlement error. */
static void test_tool_failures(void **state)
{
    (void)state;
    char *pol = policy_json("P10023", "active", "2026-03-01", "2027-02-28");
    llm_rules_out_t ans;

    /* A policy.lookup result that is not JSON: the lookup failed, said plainly. */
    conv_t c;
    conv_init(&c, "zh");
    review_all(&c, SEED_ZH, "not json", MED_SEED, FEE_SEED, &ans);
    assert_non_null(strstr(text_of(&ans), "暂时无法查询保单 P10023"));
    llm_rules_out_clear(&ans);
    rd_conv_free(&c);

    /* medical.lookup failed: nothing is decided from wording; every line goes to a person. */
    conv_init(&c, "zh");
    rd_append(&c, "user", SEED_ZH);
    fake_result_t res[] = {
        {"policy.lookup", pol, true},
        {"medical.lookup", "{\"code\":\"tool_failed\",\"message\":\"x\"}", false},
        {"fee.calc", FEE_SEED, true}};
    llm_rules_out_t out;
    rd_run(&c, &out);
    next_step(&c, &out, res, 3);
    assert_string_equal(out.calls[0].name, "state.update"); /* no fee.calc: nothing payable */
    const json_t *a = out.calls[0].arguments;
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(a, "handoff"), "reason")),
               "医疗目录查询失败"));
    const json_t *dec = decision_of(a);
    assert_string_equal(mh_json_str(dec, "status"), "pending");
    llm_rules_out_clear(&out);
    rd_conv_free(&c);

    /* fee.calc failed: the payable lines are pending, handed over. */
    conv_init(&c, "en");
    rd_append(&c, "user", SEED_ZH);
    fake_result_t res2[] = {
        {"policy.lookup", pol, true},
        {"medical.lookup", MED_SEED, true},
        {"fee.calc", "{\"code\":\"invalid_tool_arguments\",\"message\":\"x\"}", false}};
    for (int step = 0; step < 3; step++) {
        rd_run(&c, &out);
        if (step == 2) {
            a = out.calls[0].arguments;
            assert_non_null(
                strstr(json_string_value(json_object_get(json_object_get(a, "handoff"), "reason")),
                       "settlement could not be computed"));
        }
        conv_tools(&c, &out, res2, 3);
        llm_rules_out_clear(&out);
    }
    rd_run(&c, &out);
    assert_non_null(
        strstr(text_of(&out), "| 唾液酸酶测定 | 120.00 | 0.00 | — | — | — | pending |"));
    llm_rules_out_clear(&out);
    rd_conv_free(&c);
    free(pol);
}

/* The largest claim: 40 lines with long names, all refused: the answer still fits. */
static void test_largest_answer(void **state)
{
    (void)state;
    char *pol = policy_json("P10023", "active", "2026-03-01", "2027-02-28");
    static char msg[16384], med[65536];
    size_t o = (size_t)snprintf(msg, sizeof(msg),
                                "保单号 P10023，诊断：急性胆囊炎，医院：上海市第一人民医院，入院 "
                                "2026-05-10，出院 2026-05-14，是否使用社保：是。费用明细：");
    size_t mo = (size_t)snprintf(med, sizeof(med), "{\"items\":[");
    for (int i = 1; i <= REVIEW_LINES_MAX; i++) {
        char name[256];
        size_t no = (size_t)snprintf(name, sizeof(name), "%02d", i);
        for (int k = 0; k < 60; k++)
            no += (size_t)snprintf(name + no, sizeof(name) - no, "微");
        o += (size_t)snprintf(msg + o, sizeof(msg) - o, "%d. %s 化验费 1234.56 元 社保支付 0；", i,
                              name);
        mo += (size_t)snprintf(med + mo, sizeof(med) - mo,
                               "%s{\"query\":\"%s\",\"match\":\"exact\",\"code\":\"LAB-0070\","
                               "\"name\":\"%s\",\"class\":\"trace_element\",\"class_name\":{\"zh\":"
                               "\"微量元素检查\",\"en\":\"trace-element test\"},"
                               "\"exclusion_classes\":[\"trace_element_test\"]}",
                               i > 1 ? "," : "", name, name);
    }
    snprintf(med + mo, sizeof(med) - mo, "]}");
    conv_t c;
    conv_init(&c, "zh");
    llm_rules_out_t ans;
    review_all(&c, msg, pol, med, NULL, &ans);
    const char *t = text_of(&ans);
    assert_true(strlen(t) < LLM_BUF_MAX);
    assert_non_null(strstr(t, "| 合计 | 49,382.40 | 0.00 | 49,382.40 | 0.00 |  | 0.00 |  |"));
    assert_non_null(strstr(t, "最终以保险公司审核为准"));
    const json_t *dec = decision_of(c.state);
    assert_int_equal(json_array_size(json_object_get(dec, "lines")), REVIEW_LINES_MAX);
    llm_rules_out_clear(&ans);
    rd_conv_free(&c);
    free(pol);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_seed_zh),
        cmocka_unit_test(test_parse_en),
        cmocka_unit_test(test_parse_lenient),
        cmocka_unit_test(test_parse_json),
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_step1_parallel_lookups),
        cmocka_unit_test(test_seed_review_paid),
        cmocka_unit_test(test_waiting_period_refused),
        cmocka_unit_test(test_pre_existing_and_not_in_force),
        cmocka_unit_test(test_unknown_item_handoff),
        cmocka_unit_test(test_multi_message_slots),
        cmocka_unit_test(test_recap_clips_utf8),
        cmocka_unit_test(test_ask_and_recap),
        cmocka_unit_test(test_policy_not_found),
        cmocka_unit_test(test_lapsed_and_not_medical),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_tool_failures),
        cmocka_unit_test(test_largest_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
