/*
 * test_llm_rules.c - the rules backend's policy_qa digital worker, driven
 * in-process through the backend interface (llm_backend.h) with built
 * messages: asking for the policy number, the policy.lookup tool call,
 * numbers from history, every answer topic in zh and en, tool errors,
 * policies not in force, streaming deltas, usage, unknown agents.
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
#include <uv.h>

#include "llm_backend.h"
#include "llm_call.h"
#include "llm_reply.h"
#include "rules.h"

/* ---- a sample policy.lookup result (shape of docs/protocol/services.md) ---- */

static const char *const SAMPLE_POLICY =
    "{\"policy_no\":\"P10023\",\"status\":\"active\",\"holder\":\"张*\","
    "\"product\":{\"id\":\"med-million-2024\",\"name\":{\"zh\":\"安心百万医疗险\","
    "\"en\":\"Anxin Million Medical\"},\"type\":\"medical\"},"
    "\"start_date\":\"2026-03-01\",\"end_date\":\"2027-02-28\",\"social_insurance\":true,"
    "\"deductible\":10000,\"deductible_used\":2000,\"ratio_with_social\":1.0,"
    "\"ratio_without_social\":0.6,\"waiting_period_days\":30,\"limit\":3000000,"
    "\"limit_used\":8000,"
    "\"hospital_rule\":{\"zh\":\"二级及以上公立医院普通部\",\"en\":\"Ordinary wards of public "
    "hospitals of grade II or above\",\"clause\":\"2.5\"},"
    "\"coverages\":[{\"id\":\"general_medical\",\"name\":{\"zh\":\"一般医疗保险金\",\"en\":"
    "\"General medical benefit\"},\"limit\":3000000,\"clause\":\"2.1\"},"
    "{\"id\":\"ci_medical\",\"name\":{\"zh\":\"重大疾病医疗保险金\",\"en\":\"Critical-illness "
    "medical benefit\"},\"limit\":6000000,\"clause\":\"2.2\"}],"
    "\"exclusions\":[{\"id\":\"pre_existing\",\"text\":{\"zh\":\"既往症\",\"en\":\"Pre-existing "
    "conditions\"},\"clause\":\"3.1\"},{\"id\":\"dental\",\"text\":{\"zh\":\"牙科治疗、洗牙\","
    "\"en\":\"Dental treatment, tooth cleaning\"},\"clause\":\"3.2\"}],"
    "\"clauses\":{"
    "\"1.2\":{\"zh\":\"保险期间为一年。\",\"en\":\"The period of insurance is one year.\"},"
    "\"2.1\":{\"zh\":\"一般医疗保险金：扣除剩余免赔额后按约定比例给付，在等待期后……\",\"en\":"
    "\"General medical benefit: paid after the remaining deductible at the agreed ratio, after "
    "the waiting period.\"},"
    "\"2.3\":{\"zh\":\"免赔额与赔付比例：年免赔额为1万元……\",\"en\":\"Deductible and ratio: the "
    "annual deductible is CNY 10,000.\"},"
    "\"2.4\":{\"zh\":\"等待期：自本合同生效之日起30日为等待期。\",\"en\":\"Waiting period: 30 "
    "days.\"}}}";

/* ---- helpers ---- */

typedef struct {
    int n_delta;
    char deltas[64][LLM_DELTA_MAX + 1];
    size_t delta_len[64];
    int done;
    int error;
    int status;
    char errmsg[256];
    json_t *final; /* llm_reply_final of the result */
} capture_t;

static void cap_delta(llm_sink_t *s, const char *t, size_t n)
{
    capture_t *c = s->arg;
    assert_true(c->n_delta < 64);
    assert_true(n <= LLM_DELTA_MAX);
    memcpy(c->deltas[c->n_delta], t, n);
    c->deltas[c->n_delta][n] = '\0';
    c->delta_len[c->n_delta] = n;
    c->n_delta++;
}

static void cap_done(llm_sink_t *s, const llm_result_t *r)
{
    capture_t *c = s->arg;
    c->done++;
    c->final = llm_reply_final(r, "rules", 0);
    assert_non_null(c->final);
}

static void cap_error(llm_sink_t *s, int status, const char *msg)
{
    capture_t *c = s->arg;
    c->error++;
    c->status = status;
    snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg);
}

/* Run args through parse + the rules backend (no delay: completes synchronously). */
static void run_args(json_t *args, capture_t *c)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    llm_backend_config_t cfg = {.delay_ms = 0};
    llm_backend_t *b = llm_backend_new("rules", &loop, &cfg);
    assert_non_null(b);

    llm_parsed_t p;
    char err[256];
    int rc = llm_call_parse("req-1", args, uv_now(&loop) + 10000, &p, err, sizeof(err));
    assert_int_equal(rc, 0);

    memset(c, 0, sizeof(*c));
    llm_sink_t sink = {cap_delta, cap_done, cap_error, c};
    llm_handle_t *h = (llm_handle_t *)1;
    assert_int_equal(llm_backend_start(b, &p.call, &sink, &h), 0);
    assert_null(h); /* completed inside start_call */
    assert_int_equal(c->done + c->error, 1);

    llm_call_clear(&p);
    llm_backend_destroy(&b);
    assert_null(b);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    json_decref(args);
}

static json_t *tools_lookup(void)
{
    return json_pack("[{s:s, s:s, s:{s:s}}]", "name", "policy.lookup", "description",
                     "Look up a policy", "parameters", "type", "object");
}

static json_t *msg(const char *role, const char *text)
{
    return json_pack("{s:s, s:s}", "role", role, "text", text);
}

static json_t *assistant_lookup(const char *id, const char *pno)
{
    return json_pack("{s:s, s:s, s:[{s:s, s:s, s:{s:s}}]}", "role", "assistant", "text", "",
                     "tool_calls", "id", id, "name", "policy.lookup", "arguments", "policy_no",
                     pno);
}

static json_t *tool_msg(const char *id, const char *text, int ok)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:b}", "role", "tool", "name", "policy.lookup",
                     "tool_call_id", id, "text", text, "ok", ok);
}

/* {ok:true, result:<policy>} as the tool worker returns it. */
static char *wrapped(const char *policy_json)
{
    json_t *p = json_loads(policy_json, 0, NULL);
    assert_non_null(p);
    json_t *w = json_pack("{s:b, s:o}", "ok", 1, "result", p);
    char *s = json_dumps(w, JSON_COMPACT);
    json_decref(w);
    return s;
}

/* Sample policy with fields changed: set (key -> JSON text), "null" deletes. */
static char *policy_with(const char *key, const char *value_json)
{
    json_t *p = json_loads(SAMPLE_POLICY, 0, NULL);
    assert_non_null(p);
    if (strcmp(value_json, "null") == 0)
        json_object_del(p, key);
    else
        json_object_set_new(p, key, json_loads(value_json, JSON_DECODE_ANY, NULL));
    char *s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    return s;
}

static json_t *args_new(const char *lang, json_t *messages, json_t *tools, int stream)
{
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:o, s:b}", "agent", "policy_qa", "tier", "small",
                          "system", "You answer policy questions.", "lang", lang, "messages",
                          messages, "stream", stream);
    assert_non_null(a);
    if (tools != NULL)
        json_object_set_new(a, "tools", tools);
    return a;
}

/* Run the question q against a lookup result (tool text) and return the answer text. */
static char *answer(const char *lang, const char *q, const char *tool_text, int ok)
{
    json_t *msgs = json_pack("[o, o, o]", msg("user", q), assistant_lookup("call_1", "P10023"),
                             tool_msg("call_1", tool_text, ok));
    capture_t c;
    run_args(args_new(lang, msgs, tools_lookup(), 0), &c);
    assert_int_equal(c.done, 1);
    assert_string_equal(json_string_value(json_object_get(c.final, "type")), "text");
    char *text = strdup(json_string_value(json_object_get(c.final, "text")));
    json_decref(c.final);
    return text;
}

static int has_cjk(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; u[i]; i++) {
        if (u[i] >= 0xE3 && u[i] <= 0xE9) /* lead bytes of U+3000..U+9FFF */
            return 1;
    }
    return 0;
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("expected \"%s\" in: %s", (needle), (hay));                                   \
    } while (0)

#define assert_not_contains(hay, needle)                                                           \
    do {                                                                                           \
        if (strstr((hay), (needle)) != NULL)                                                       \
            fail_msg("did not expect \"%s\" in: %s", (needle), (hay));                             \
    } while (0)

static void assert_zh(const char *t)
{
    if (!has_cjk(t))
        fail_msg("expected a Chinese answer: %s", t);
}

static void assert_en(const char *t)
{
    if (has_cjk(t))
        fail_msg("expected an English answer: %s", t);
}

/* ---- asking for the number and calling the tool ---- */

static void test_asks_for_policy_no(void **state)
{
    (void)state;
    capture_t c;
    run_args(args_new("zh", json_pack("[o]", msg("user", "我的保单保障什么？")), tools_lookup(), 0),
             &c);
    assert_string_equal(json_string_value(json_object_get(c.final, "type")), "text");
    const char *t = json_string_value(json_object_get(c.final, "text"));
    assert_string_equal(t, "请提供您的保单号（例如 P10023），我来为您查询保障内容。");
    json_decref(c.final);

    run_args(args_new("en", json_pack("[o]", msg("user", "What does my policy cover?")),
                      tools_lookup(), 0),
             &c);
    t = json_string_value(json_object_get(c.final, "text"));
    assert_contains(t, "policy number");
    assert_en(t);
    json_decref(c.final);
}

/* A customer asking for a person gets a recorded handoff, then a confirmation;
 * without the state.update tool, or already in handoff, the engine never asks. */
static void test_asks_for_a_person(void **state)
{
    (void)state;
    json_t *tools = tools_lookup();
    json_array_append_new(tools,
                          json_pack("{s:s, s:s, s:{s:s}}", "name", "state.update", "description",
                                    "Record state", "parameters", "type", "object"));
    capture_t c;
    run_args(args_new("zh", json_pack("[o]", msg("user", "帮我转人工吧")), json_incref(tools), 0),
             &c);
    assert_string_equal(json_string_value(json_object_get(c.final, "type")), "tool_calls");
    json_t *call = json_array_get(json_object_get(c.final, "calls"), 0);
    assert_string_equal(json_string_value(json_object_get(call, "name")), "state.update");
    const char *reason = json_string_value(
        json_object_get(json_object_get(json_object_get(call, "arguments"), "handoff"), "reason"));
    assert_non_null(reason);
    assert_contains(reason, "customer_request");
    json_decref(c.final);

    /* After the tool result: the confirmation in the customer's language. */
    json_t *msgs = json_pack("[o, {s:s, s:s, s:[{s:s, s:s, s:{}}]}, {s:s, s:s, s:s, s:s, s:b}]",
                             msg("user", "I want to talk to a human please"), "role", "assistant",
                             "text", "", "tool_calls", "id", "call_1", "name", "state.update",
                             "arguments", "role", "tool", "name", "state.update", "tool_call_id",
                             "call_1", "text", "{\"ok\":true,\"result\":{}}", "ok", 1);
    run_args(args_new("en", msgs, json_incref(tools), 0), &c);
    const char *t = json_string_value(json_object_get(c.final, "text"));
    assert_non_null(t);
    assert_contains(t, "colleague");
    assert_en(t);
    json_decref(c.final);

    /* Already waiting for a person: no second handoff; the question is handled as usual. */
    json_t *a =
        args_new("zh", json_pack("[o]", msg("user", "人工客服在吗")), json_incref(tools), 0);
    json_object_set_new(a, "state", json_pack("{s:s}", "handoff", "pending"));
    run_args(a, &c);
    assert_string_equal(json_string_value(json_object_get(c.final, "type")), "text");
    json_decref(c.final);

    /* The agent does not offer state.update: never asked for. */
    run_args(args_new("zh", json_pack("[o]", msg("user", "转人工")), tools_lookup(), 0), &c);
    assert_string_equal(json_string_value(json_object_get(c.final, "type")), "text");
    json_decref(c.final);
    json_decref(tools);
}

static void test_tool_call_normalised(void **state)
{
    (void)state;
    capture_t c;
    run_args(args_new("zh", json_pack("[o]", msg("user", "我的保单p10023保障什么？")),
                      tools_lookup(), 1),
             &c);
    assert_int_equal(c.n_delta, 0); /* tool calls are never streamed */
    assert_string_equal(json_string_value(json_object_get(c.final, "type")), "tool_calls");
    json_t *calls = json_object_get(c.final, "calls");
    assert_int_equal(json_array_size(calls), 1);
    json_t *c0 = json_array_get(calls, 0);
    assert_string_equal(json_string_value(json_object_get(c0, "id")), "call_1");
    assert_string_equal(json_string_value(json_object_get(c0, "name")), "policy.lookup");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c0, "arguments"), "policy_no")),
        "P10023");
    assert_string_equal(json_string_value(json_object_get(c.final, "backend")), "rules");
    json_t *usage = json_object_get(c.final, "usage");
    assert_true(json_integer_value(json_object_get(usage, "prompt_tokens")) >= 1);
    assert_true(json_integer_value(json_object_get(usage, "completion_tokens")) >= 1);
    json_decref(c.final);
}

static void test_number_from_history(void **state)
{
    (void)state;
    char *res = wrapped(SAMPLE_POLICY);
    json_t *msgs = json_pack("[o, o, o, o, o]", msg("user", "我的保单 P10023 保障什么？"),
                             assistant_lookup("call_1", "P10023"), tool_msg("call_1", res, 1),
                             msg("assistant", "关于您的保单……"), msg("user", "免赔额是多少？"));
    capture_t c;
    run_args(args_new("zh", msgs, tools_lookup(), 0), &c);
    assert_string_equal(json_string_value(json_object_get(c.final, "type")), "tool_calls");
    json_t *c0 = json_array_get(json_object_get(c.final, "calls"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "id")), "call_2");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c0, "arguments"), "policy_no")),
        "P10023");
    json_decref(c.final);

    /* Only a previous lookup result carries the number (bare result text, no wrapper). */
    msgs = json_pack("[o, o, o, o]", msg("user", "查一下我的保单"),
                     tool_msg("call_9", SAMPLE_POLICY, 1), msg("assistant", "好的"),
                     msg("user", "等待期多久？"));
    run_args(args_new("zh", msgs, tools_lookup(), 0), &c);
    c0 = json_array_get(json_object_get(c.final, "calls"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c0, "arguments"), "policy_no")),
        "P10023");
    json_decref(c.final);

    /* The most recent mention wins. */
    msgs = json_pack("[o, o, o]", msg("user", "P10001 和 P10002"), msg("assistant", "?"),
                     msg("user", "what is the deductible?"));
    run_args(args_new("en", msgs, tools_lookup(), 0), &c);
    c0 = json_array_get(json_object_get(c.final, "calls"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c0, "arguments"), "policy_no")),
        "P10002");
    json_decref(c.final);

    /* Without the lookup tool: answered from the earlier result. */
    msgs = json_pack("[o, o, o, o, o]", msg("user", "P10023"), assistant_lookup("call_1", "P10023"),
                     tool_msg("call_1", res, 1), msg("assistant", "..."),
                     msg("user", "What is the deductible?"));
    run_args(args_new("en", msgs, NULL, 0), &c);
    assert_string_equal(json_string_value(json_object_get(c.final, "type")), "text");
    assert_contains(json_string_value(json_object_get(c.final, "text")), "CNY 10,000");
    json_decref(c.final);
    free(res);
}

/* ---- answer topics, zh and en ---- */

static void check_topic(const char *q_zh, const char *q_en, const char *const *want_zh,
                        const char *const *want_en)
{
    char *res = wrapped(SAMPLE_POLICY);
    char *t = answer("zh", q_zh, res, 1);
    assert_zh(t);
    assert_contains(t, "P10023");
    for (size_t i = 0; want_zh[i]; i++)
        assert_contains(t, want_zh[i]);
    free(t);
    t = answer("en", q_en, res, 1);
    assert_en(t);
    assert_contains(t, "P10023");
    for (size_t i = 0; want_en[i]; i++)
        assert_contains(t, want_en[i]);
    free(t);
    free(res);
}

static void test_topic_deductible(void **state)
{
    (void)state;
    const char *zh[] = {"年免赔额为1万元", "已使用2,000元", "剩余8,000元", "（条款 2.3）", NULL};
    const char *en[] = {"CNY 10,000", "CNY 2,000", "CNY 8,000 remains", "(clause 2.3)", NULL};
    check_topic("我的免赔额是多少？", "How much is my deductible?", zh, en);
}

static void test_topic_waiting(void **state)
{
    (void)state;
    const char *zh[] = {"等待期为30天", "（条款 2.4）", NULL};
    const char *en[] = {"30 days", "(clause 2.4)", NULL};
    check_topic("等待期多长？", "Is there a waiting period?", zh, en);
}

static void test_topic_exclusions(void **state)
{
    (void)state;
    const char *zh[] = {"责任免除", "既往症（条款 3.1）", "牙科治疗、洗牙（条款 3.2）", NULL};
    const char *en[] = {"does not cover", "Pre-existing conditions (clause 3.1)",
                        "Dental treatment, tooth cleaning (clause 3.2)", NULL};
    check_topic("哪些情况不赔？", "What is not covered?", zh, en);
    check_topic("责任免除有哪些？", "What are the exclusions?", zh, en);

    /* Naming an excluded item gets a direct answer. */
    char *res = wrapped(SAMPLE_POLICY);
    char *t = answer("zh", "牙科治疗能报吗？不赔吗？", res, 1);
    assert_contains(t, "您问到的「牙科治疗」属于责任免除");
    free(t);
    t = answer("en", "Is dental treatment excluded?", res, 1);
    assert_contains(t, "(Dental treatment) is excluded");
    assert_contains(t, "(clause 3.2)");
    assert_not_contains(t, "Pre-existing"); /* the named item alone, not the whole list */
    free(t);
    /* One item of a longer exclusion text; "报销" does not drag in the payout ratio. */
    t = answer("zh", "洗牙能报销吗？", res, 1);
    assert_contains(t, "您问到的「洗牙」属于责任免除，不在保障范围内（条款 3.2）");
    assert_not_contains(t, "赔付比例");
    free(t);
    t = answer("en", "Is tooth cleaning covered?", res, 1);
    assert_contains(t, "(tooth cleaning) is excluded");
    assert_not_contains(t, "The policy covers");
    free(t);
    /* A covered item is not reported as excluded. */
    t = answer("zh", "住院费用保障吗？", res, 1);
    assert_not_contains(t, "属于责任免除");
    free(t);
    free(res);
}

static void test_topic_ratio(void **state)
{
    (void)state;
    const char *zh[] = {"100%", "60%", "（条款 2.3）", "您已参加社保", NULL};
    const char *en[] = {"100%", "60%", "(clause 2.3)", "You have social insurance", NULL};
    check_topic("赔付比例是多少？", "What is the reimbursement ratio?", zh, en);
}

static void test_topic_period(void **state)
{
    (void)state;
    const char *zh[] = {"2026-03-01", "2027-02-28", "保单状态：有效", "（条款 1.2）", NULL};
    const char *en[] = {"2026-03-01 to 2027-02-28", "status: in force", "(clause 1.2)", NULL};
    check_topic("保单什么时候到期？", "Is my policy still valid?", zh, en);
}

static void test_topic_limit(void **state)
{
    (void)state;
    const char *zh[] = {"300万元", "剩余2,992,000元", "一般医疗保险金300万元（条款 2.1）",
                        "重大疾病医疗保险金600万元（条款 2.2）", NULL};
    const char *en[] = {"CNY 3,000,000", "CNY 2,992,000 remaining",
                        "General medical benefit CNY 3,000,000 (clause 2.1)",
                        "CNY 6,000,000 (clause 2.2)", NULL};
    check_topic("保额有多少？", "What is the limit?", zh, en);
}

static void test_topic_coverage(void **state)
{
    (void)state;
    const char *zh[] = {"安心百万医疗险", "保障内容", "一般医疗保险金，限额300万元（条款 2.1）",
                        "重大疾病医疗保险金，限额600万元（条款 2.2）", NULL};
    const char *en[] = {"Anxin Million Medical", "covers",
                        "General medical benefit, limit CNY 3,000,000 (clause 2.1)", NULL};
    check_topic("我的保单保障什么？", "What does my policy cover?", zh, en);
}

static void test_topic_hospital(void **state)
{
    (void)state;
    const char *zh[] = {"二级及以上公立医院普通部（条款 2.5）", NULL};
    const char *en[] = {"grade II or above (clause 2.5)", NULL};
    check_topic("哪些医院可以看？", "Which hospitals can I use?", zh, en);
}

static void test_topic_missing_from_policy(void **state)
{
    (void)state;
    char *p = policy_with("deductible", "null");
    char *res = wrapped(p);
    char *t = answer("zh", "免赔额多少？", res, 1);
    assert_contains(t, "保单中没有关于免赔额的约定");
    assert_not_contains(t, "年免赔额为");
    free(t);
    t = answer("en", "What is the deductible?", res, 1);
    assert_contains(t, "The policy does not say anything about a deductible");
    free(t);
    free(res);
    free(p);

    p = policy_with("waiting_period_days", "null");
    res = wrapped(p);
    t = answer("zh", "等待期多长？", res, 1);
    assert_contains(t, "保单中没有关于等待期的约定");
    free(t);
    free(res);
    free(p);
}

/* ---- tool errors and policies not in force ---- */

static void test_not_found(void **state)
{
    (void)state;
    const char *err = "{\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":\"no policy\"}}";
    json_t *msgs = json_pack("[o, o, o]", msg("user", "保单 P99999 保障什么？"),
                             assistant_lookup("call_1", "P99999"), tool_msg("call_1", err, 0));
    capture_t c;
    run_args(args_new("zh", msgs, tools_lookup(), 0), &c);
    const char *t = json_string_value(json_object_get(c.final, "text"));
    assert_contains(t, "没有找到保单号 P99999");
    assert_contains(t, "核对");
    json_decref(c.final);

    /* The error object alone with ok:false on the message. */
    msgs = json_pack("[o, o, o]", msg("user", "policy P99999 please"),
                     assistant_lookup("call_1", "P99999"),
                     tool_msg("call_1", "{\"code\":\"not_found\",\"message\":\"x\"}", 0));
    run_args(args_new("en", msgs, tools_lookup(), 0), &c);
    t = json_string_value(json_object_get(c.final, "text"));
    assert_contains(t, "could not find policy P99999");
    assert_contains(t, "check");
    assert_en(t);
    json_decref(c.final);

    /* Any other failure: say the lookup failed, not that the policy is missing. */
    msgs = json_pack("[o, o, o]", msg("user", "P10023"), assistant_lookup("call_1", "P10023"),
                     tool_msg("call_1", "not json at all", 0));
    run_args(args_new("en", msgs, tools_lookup(), 0), &c);
    t = json_string_value(json_object_get(c.final, "text"));
    assert_contains(t, "could not look up policy P10023");
    json_decref(c.final);
}

static void test_lapsed_and_expired(void **state)
{
    (void)state;
    char *p = policy_with("status", "\"lapsed\"");
    char *res = wrapped(p);
    char *t = answer("zh", "我的保单保障什么？", res, 1);
    assert_contains(t, "已失效");
    assert_contains(t, "不在保障有效期内");
    free(t);
    t = answer("en", "What does it cover?", res, 1);
    assert_contains(t, "not in force");
    free(t);
    free(res);
    free(p);

    p = policy_with("status", "\"expired\"");
    res = wrapped(p);
    t = answer("zh", "免赔额？", res, 1);
    assert_contains(t, "已于2027-02-28到期");
    assert_contains(t, "不在保障有效期内");
    free(t);
    t = answer("en", "deductible?", res, 1);
    assert_contains(t, "expired on 2027-02-28 and is not in force");
    free(t);
    free(res);
    free(p);

    /* Active policies get no such notice. */
    res = wrapped(SAMPLE_POLICY);
    t = answer("en", "deductible?", res, 1);
    assert_not_contains(t, "not in force");
    free(t);
    free(res);
}

/* ---- streaming ---- */

static int utf8_piece_ok(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t l = u[i] < 0x80 ? 1 : u[i] >= 0xF0 ? 4 : u[i] >= 0xE0 ? 3 : u[i] >= 0xC0 ? 2 : 0;
        if (l == 0 || i + l > n)
            return 0;
        for (size_t k = 1; k < l; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                return 0;
        }
        i += l;
    }
    return 1;
}

static void check_stream(const char *lang, const char *q)
{
    char *res = wrapped(SAMPLE_POLICY);
    json_t *msgs = json_pack("[o, o, o]", msg("user", q), assistant_lookup("call_1", "P10023"),
                             tool_msg("call_1", res, 1));
    capture_t c;
    run_args(args_new(lang, msgs, tools_lookup(), 1), &c);
    const char *t = json_string_value(json_object_get(c.final, "text"));
    assert_true(c.n_delta > 2);
    char joined[8192] = "";
    size_t off = 0;
    for (int i = 0; i < c.n_delta; i++) {
        assert_true(c.delta_len[i] > 0);
        assert_true(utf8_piece_ok(c.deltas[i], c.delta_len[i]));
        memcpy(joined + off, c.deltas[i], c.delta_len[i]);
        off += c.delta_len[i];
    }
    joined[off] = '\0';
    assert_string_equal(joined, t);
    json_decref(c.final);
    free(res);
}

static void test_stream_deltas(void **state)
{
    (void)state;
    check_stream("zh", "哪些情况不赔？");
    check_stream("en", "What is not covered?");

    /* Not streaming: no deltas. */
    char *res = wrapped(SAMPLE_POLICY);
    json_t *msgs = json_pack("[o, o, o]", msg("user", "保障什么"),
                             assistant_lookup("call_1", "P10023"), tool_msg("call_1", res, 1));
    capture_t c;
    run_args(args_new("zh", msgs, tools_lookup(), 0), &c);
    assert_int_equal(c.n_delta, 0);
    json_decref(c.final);
    free(res);
}

static void test_next_delta_boundaries(void **state)
{
    (void)state;
    /* A long run of CJK without marks is cut before LLM_DELTA_MAX, on a code point. */
    char s[600];
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        memcpy(s + n, "保", 3);
        n += 3;
    }
    size_t off = 0, pieces = 0;
    while (off < n) {
        size_t d = llm_rules_next_delta(s + off, n - off);
        assert_true(d >= 1 && d <= LLM_DELTA_MAX);
        assert_int_equal(d % 3, 0);
        off += d;
        pieces++;
    }
    assert_int_equal(off, n);
    assert_true(pieces >= 4);
    /* Marks end a piece. */
    assert_int_equal(llm_rules_next_delta("你好。再见", strlen("你好。再见")), strlen("你好。"));
    assert_int_equal(llm_rules_next_delta("Hi. Bye", 7), 4);
    assert_int_equal(llm_rules_next_delta("CNY 10,000 ok", 13), 13);
}

/* ---- other agents, usage, helpers ---- */

static void test_unknown_agent(void **state)
{
    (void)state;
    json_t *a = json_pack("{s:s, s:s, s:[o]}", "agent", "pet_insurance", "lang", "en", "messages",
                          msg("user", "I had an accident"));
    capture_t c;
    run_args(a, &c);
    const char *t = json_string_value(json_object_get(c.final, "text"));
    assert_contains(t, "not available in the rules backend");
    assert_contains(t, "pet_insurance");
    json_decref(c.final);

    a = json_pack("{s:s, s:s, s:[o]}", "agent", "pet_insurance", "lang", "zh", "messages",
                  msg("user", "我出车祸了"));
    run_args(a, &c);
    t = json_string_value(json_object_get(c.final, "text"));
    assert_contains(t, "暂不可用");
    assert_zh(t);
    json_decref(c.final);

    /* lang absent: detected from the last user message. */
    a = json_pack("{s:s, s:[o]}", "agent", "policy_qa", "messages", msg("user", "你好"));
    run_args(a, &c);
    assert_zh(json_string_value(json_object_get(c.final, "text")));
    json_decref(c.final);
}

static void test_usage_deterministic(void **state)
{
    (void)state;
    /* system "abcdefgh" (8 cps -> 2) + "你好" (2 cps -> 1) = 3 prompt tokens. */
    json_t *a = json_pack("{s:s, s:s, s:s, s:[o]}", "agent", "policy_qa", "lang", "zh", "system",
                          "abcdefgh", "messages", msg("user", "你好"));
    capture_t c;
    run_args(a, &c);
    json_t *u = json_object_get(c.final, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 3);
    const char *t = json_string_value(json_object_get(c.final, "text"));
    uint32_t want = llm_tokens_estimate(t, strlen(t));
    assert_true(want >= 1);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), want);
    json_decref(c.final);
    assert_int_equal(llm_tokens_estimate("", 0), 0);
    assert_int_equal(llm_tokens_estimate("abcde", 5), 2);
    assert_int_equal(llm_tokens_estimate("保单保单", strlen("保单保单")), 1);

    /* The word-at-a-time count agrees with a byte-by-byte count at every
     * length and alignment, for ASCII, 2-, 3- and 4-byte sequences. */
    static const char sample[] = "ab é 保单 😀 P10023，免赔额？xyz\x80\xbf\xc0\xff end";
    size_t n = sizeof sample - 1;
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; off + len <= n; len++) {
            uint64_t cps = 0;
            for (size_t i = off; i < off + len; i++)
                cps += ((unsigned char)sample[i] & 0xC0) != 0x80;
            assert_int_equal(llm_tokens_estimate(sample + off, len), (cps + 3) / 4);
        }
    }
    /* Long texts (the count is folded every 255 words): 5 KB of mixed text. */
    static char big[5000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = sample[(i * 7) % n];
    for (size_t len = 2030; len <= sizeof big; len += 997) {
        uint64_t cps = 0;
        for (size_t i = 0; i < len; i++)
            cps += ((unsigned char)big[i] & 0xC0) != 0x80;
        assert_int_equal(llm_tokens_estimate(big, len), (cps + 3) / 4);
    }
}

static void test_policy_no_scan(void **state)
{
    (void)state;
    char out[LLM_POLICY_NO_LEN + 1];
#define FIND(s) llm_rules_find_policy_no((s), strlen(s), out)
    assert_int_equal(FIND("p10023"), 1);
    assert_string_equal(out, "P10023");
    assert_int_equal(FIND("保单号P10023。"), 1);
    assert_string_equal(out, "P10023");
    assert_int_equal(FIND("P1002"), 0);
    assert_int_equal(FIND("P100234"), 0);
    assert_int_equal(FIND("XP10023"), 0);
    assert_int_equal(FIND("AP1 P12345 and p54321!"), 1);
    assert_string_equal(out, "P54321");
    assert_int_equal(FIND(""), 0);
#undef FIND
}

static void test_money_format(void **state)
{
    (void)state;
    struct {
        double v;
        int zh;
        const char *want;
    } cases[] = {
        {10000, 1, "1万元"},      {3000000, 1, "300万元"},       {8000, 1, "8,000元"},
        {15000, 1, "15,000元"},   {8000.5, 1, "8,000.50元"},     {0, 1, "0元"},
        {10000, 0, "CNY 10,000"}, {1234567, 0, "CNY 1,234,567"}, {99.99, 0, "CNY 99.99"},
        {-2500, 0, "-CNY 2,500"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        llm_buf_t b;
        llm_buf_init(&b);
        assert_int_equal(llm_rules_money(&b, cases[i].v, cases[i].zh), 0);
        assert_string_equal(llm_buf_str(&b), cases[i].want);
        llm_buf_free(&b);
    }
    llm_buf_t b;
    llm_buf_init(&b);
    llm_rules_percent(&b, 1.0);
    llm_buf_puts(&b, " ");
    llm_rules_percent(&b, 0.6);
    llm_buf_puts(&b, " ");
    llm_rules_percent(&b, 0.655);
    assert_string_equal(llm_buf_str(&b), "100% 60% 65.5%");
    llm_buf_free(&b);
}

static void test_buf_cap(void **state)
{
    (void)state;
    llm_buf_t b;
    llm_buf_init(&b);
    char chunk[1000];
    memset(chunk, 'x', sizeof(chunk));
    while (llm_buf_append(&b, chunk, sizeof(chunk)) == 0)
        ;
    assert_true(b.len <= LLM_BUF_MAX);
    assert_int_equal(llm_buf_error(&b), -4 /* MESH_ETOOBIG */);
    llm_buf_free(&b);
    /* Clipping never splits a code point. */
    llm_buf_init(&b);
    llm_buf_append_clip(&b, "保单号", strlen("保单号"), 4);
    assert_string_equal(llm_buf_str(&b), "保");
    llm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asks_for_policy_no),
        cmocka_unit_test(test_asks_for_a_person),
        cmocka_unit_test(test_tool_call_normalised),
        cmocka_unit_test(test_number_from_history),
        cmocka_unit_test(test_topic_deductible),
        cmocka_unit_test(test_topic_waiting),
        cmocka_unit_test(test_topic_exclusions),
        cmocka_unit_test(test_topic_ratio),
        cmocka_unit_test(test_topic_period),
        cmocka_unit_test(test_topic_limit),
        cmocka_unit_test(test_topic_coverage),
        cmocka_unit_test(test_topic_hospital),
        cmocka_unit_test(test_topic_missing_from_policy),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_lapsed_and_expired),
        cmocka_unit_test(test_stream_deltas),
        cmocka_unit_test(test_next_delta_boundaries),
        cmocka_unit_test(test_unknown_agent),
        cmocka_unit_test(test_usage_deterministic),
        cmocka_unit_test(test_policy_no_scan),
        cmocka_unit_test(test_money_format),
        cmocka_unit_test(test_buf_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
