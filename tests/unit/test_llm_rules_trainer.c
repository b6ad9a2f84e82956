/*
 * test_llm_rules_trainer.c - the life_trainer engine of the rules backend
 * (services/llm/rules_trainer*.c), driven directly with hand-made tool
 * results: session start (the scenario call, its seed and objection ids, the
 * state.update, the persona and the first objection), strategy detection,
 * two strategies giving two different customer reactions, progress through
 * the objections (resolve, harden, repeat, moving on), the rubric score with
 * the trainee's own words as evidence (computed by hand below), an end
 * command, English, and the texts for no session and tool errors.
 *
 * A small router stand-in runs each turn: it calls the engine step by step,
 * answers training.scenario with the hand-made scenario below and applies
 * state.update to the conversation state as the router does (records merged
 * by key, mode set), then calls again, until the engine answers with text.
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
#include "rules.h"
#include "rules_trainer.h"
#include "mesh_harness.h"
#include "test_rules_driver.h"

/* ---- a hand-made training.scenario result: 2 objections, 6 strategies, the rubric ---- */

static const char *const SCENARIO =
    "{\"persona\":{\"name\":{\"zh\":\"王先生\",\"en\":\"Mr Wang\"},\"age\":35,"
    "\"job\":{\"id\":\"teacher\",\"zh\":\"中学教师\",\"en\":\"teacher\"},"
    "\"family\":{\"id\":\"f\",\"zh\":\"已婚\",\"en\":\"married\"},"
    "\"income_band\":{\"id\":\"middle\",\"zh\":\"月收入约1.2万元\",\"en\":\"earns 12,000\"},"
    "\"attitudes\":[{\"id\":\"trusts_social_insurance\",\"zh\":\"信任社保\",\"en\":\"trusts "
    "social insurance\"}],"
    "\"intro\":{\"zh\":\"王先生，35岁，中学教师；已婚；月收入约1.2万元。态度：信任社保。\","
    "\"en\":\"Mr Wang, 35, teacher; married; earns 12,000. Attitudes: trusts social "
    "insurance.\"}},"
    "\"product\":{\"id\":\"ci-guard-2024\",\"name\":{\"zh\":\"守护重大疾病保险\",\"en\":"
    "\"Guardian Critical Illness\"},\"type\":\"critical_illness\"},"
    "\"objections\":["
    "{\"id\":\"has_social_insurance\",\"text\":{\"zh\":\"我有医保了，不需要重疾险。\",\"en\":\"I "
    "have social insurance, I don't need it.\"},\"themes\":[{\"zh\":\"t\",\"en\":\"t\"}],"
    "\"resistance\":2,\"reactions\":{"
    "\"ask_experience\":{\"zh\":\"说到这个，我舅舅前年中风了。\",\"en\":\"Now that you ask, my "
    "uncle had a stroke.\",\"effect\":\"progress\"},"
    "\"contrast_reimbursement_lump_sum\":{\"zh\":\"那我半年上不了班，工资谁管？\",\"en\":\"So if "
    "I can't work for six months, who replaces my salary?\",\"effect\":\"progress\"},"
    "\"empathy\":{\"zh\":\"嗯，社保挺好的。\",\"en\":\"Yes, social insurance is good.\","
    "\"effect\":\"stall\"},"
    "\"pressure_close\":{\"zh\":\"你一上来就催我买？\",\"en\":\"You're pushing me already?\","
    "\"effect\":\"harden\"},"
    "\"product_dump\":{\"zh\":\"听不懂。\",\"en\":\"I don't follow.\",\"effect\":\"stall\"},"
    "\"trial_close\":{\"zh\":\"先别急着出方案。\",\"en\":\"Hold on with the proposal.\","
    "\"effect\":\"stall\"}},"
    "\"resolved\":{\"zh\":\"医保管看病，重疾险管生活。\",\"en\":\"One pays the doctors, the other "
    "keeps us going.\"},"
    "\"repeat\":{\"zh\":\"我还是觉得有医保就够了。\",\"en\":\"I still think social insurance is "
    "enough.\"},"
    "\"better_phrasing\":{\"zh\":\"医保报销看病的钱，重疾险一次性给付。\",\"en\":\"Social "
    "insurance reimburses bills; critical illness cover pays a lump sum.\"}},"
    "{\"id\":\"think_later\",\"text\":{\"zh\":\"我再考虑考虑。\",\"en\":\"Let me think about "
    "it.\"},\"themes\":[{\"zh\":\"t\",\"en\":\"t\"}],\"resistance\":2,\"reactions\":{"
    "\"ask_experience\":{\"zh\":\"其实我不确定保额。\",\"en\":\"I'm unsure about the "
    "amount.\",\"effect\":\"progress\"},"
    "\"contrast_reimbursement_lump_sum\":{\"zh\":\"区别我懂了。\",\"en\":\"I get the "
    "difference.\",\"effect\":\"stall\"},"
    "\"empathy\":{\"zh\":\"你不催我，我倒愿意听。\",\"en\":\"Since you don't push, I'll "
    "listen.\",\"effect\":\"progress\"},"
    "\"pressure_close\":{\"zh\":\"你越催我越不想买。\",\"en\":\"The more you push, the less I "
    "want it.\",\"effect\":\"harden\"},"
    "\"product_dump\":{\"zh\":\"信息太多了。\",\"en\":\"Too much information.\",\"effect\":"
    "\"stall\"},"
    "\"trial_close\":{\"zh\":\"行，周末再约。\",\"en\":\"Fine, let's meet at the weekend.\","
    "\"effect\":\"resolve\"}},"
    "\"resolved\":{\"zh\":\"好，先做个方案。\",\"en\":\"Fine, prepare a plan.\"},"
    "\"repeat\":{\"zh\":\"还是等等吧。\",\"en\":\"Let's wait.\"},"
    "\"better_phrasing\":{\"zh\":\"您主要还在考虑哪一点？\",\"en\":\"What are you still "
    "weighing?\"}}],"
    "\"strategies\":["
    "{\"id\":\"pressure_close\",\"name\":{\"zh\":\"施压逼单\",\"en\":\"Pressure close\"},"
    "\"quality\":\"poor\",\"min_hits\":1,\"keywords\":{\"zh\":[\"今天必须\",\"不买就\"],\"en\":"
    "[\"right now\",\"last chance\"]},\"coach\":{\"zh\":\"施压会让客户防御。\",\"en\":\"Pressure "
    "makes customers defensive.\"}},"
    "{\"id\":\"product_dump\",\"name\":{\"zh\":\"堆砌产品条款\",\"en\":\"Product dump\"},"
    "\"quality\":\"poor\",\"min_hits\":3,\"keywords\":{\"zh\":[\"轻症\",\"中症\",\"豁免\","
    "\"身故\"],\"en\":[\"mild illness\",\"waiver\",\"death benefit\"]},\"coach\":{\"zh\":"
    "\"先问需求。\",\"en\":\"Ask about needs first.\"}},"
    "{\"id\":\"ask_experience\",\"name\":{\"zh\":\"询问客户亲身经历\",\"en\":\"Asking about the "
    "customer's own experience\"},\"quality\":\"good\",\"min_hits\":1,\"keywords\":{\"zh\":"
    "[\"身边有没有\",\"经历过\"],\"en\":[\"have you ever\",\"anyone you know\"]},\"coach\":"
    "{\"zh\":\"很好：请客户讲自己的经历。\",\"en\":\"Good: ask about their experience.\"}},"
    "{\"id\":\"contrast_reimbursement_lump_sum\",\"name\":{\"zh\":\"对比报销型与给付型\",\"en\":"
    "\"Contrasting reimbursement with a lump-sum benefit\"},\"quality\":\"good\",\"min_hits\":1,"
    "\"keywords\":{\"zh\":[\"报销\",\"一次性\",\"给付\",\"收入损失\"],\"en\":[\"reimburse\","
    "\"lump sum\",\"income loss\"]},\"coach\":{\"zh\":\"很好：讲清报销与给付。\",\"en\":\"Good: "
    "reimbursement versus lump sum.\"}},"
    "{\"id\":\"trial_close\",\"name\":{\"zh\":\"温和推进\",\"en\":\"Trial close\"},\"quality\":"
    "\"good\",\"min_hits\":1,\"keywords\":{\"zh\":[\"方案\",\"试算\",\"约个时间\",\"周末\"],"
    "\"en\":[\"proposal\",\"quote\",\"next step\"]},\"coach\":{\"zh\":\"好：温和推进。\",\"en\":"
    "\"Good: gentle next step.\"}},"
    "{\"id\":\"empathy\",\"name\":{\"zh\":\"共情认同\",\"en\":\"Empathy\"},\"quality\":\"good\","
    "\"min_hits\":1,\"keywords\":{\"zh\":[\"理解\",\"明白您\",\"您的顾虑\"],\"en\":[\"i "
    "understand\",\"that makes sense\"]},\"coach\":{\"zh\":\"很好：先认同感受。\",\"en\":\"Good: "
    "acknowledge the feeling.\"}}],"
    "\"rubric\":["
    "{\"id\":\"needs_discovery\",\"name\":{\"zh\":\"需求挖掘\",\"en\":\"Needs discovery\"},"
    "\"weight\":25,\"criteria\":{\"zh\":\"c\",\"en\":\"c\"},\"base\":10,\"per_resolved\":0,"
    "\"evidence\":[{\"strategy\":\"ask_experience\",\"points\":35}]},"
    "{\"id\":\"product_knowledge\",\"name\":{\"zh\":\"产品知识\",\"en\":\"Product knowledge\"},"
    "\"weight\":20,\"criteria\":{\"zh\":\"c\",\"en\":\"c\"},\"base\":10,\"per_resolved\":0,"
    "\"evidence\":[{\"strategy\":\"contrast_reimbursement_lump_sum\",\"points\":40},"
    "{\"strategy\":\"product_dump\",\"points\":-10}]},"
    "{\"id\":\"objection_handling\",\"name\":{\"zh\":\"异议处理\",\"en\":\"Objection "
    "handling\"},\"weight\":25,\"criteria\":{\"zh\":\"c\",\"en\":\"c\"},\"base\":0,"
    "\"per_resolved\":25,\"evidence\":[{\"strategy\":\"empathy\",\"points\":15},{\"strategy\":"
    "\"pressure_close\",\"points\":-20}]},"
    "{\"id\":\"emotional_connection\",\"name\":{\"zh\":\"情绪连接\",\"en\":\"Emotional "
    "connection\"},\"weight\":15,\"criteria\":{\"zh\":\"c\",\"en\":\"c\"},\"base\":10,"
    "\"per_resolved\":0,\"evidence\":[{\"strategy\":\"empathy\",\"points\":35},{\"strategy\":"
    "\"ask_experience\",\"points\":20},{\"strategy\":\"pressure_close\",\"points\":-30}]},"
    "{\"id\":\"closing\",\"name\":{\"zh\":\"成交引导\",\"en\":\"Closing\"},\"weight\":15,"
    "\"criteria\":{\"zh\":\"c\",\"en\":\"c\"},\"base\":0,\"per_resolved\":10,\"evidence\":"
    "[{\"strategy\":\"trial_close\",\"points\":50},{\"strategy\":\"pressure_close\",\"points\":"
    "-20}]}]}";

/* ---- a conversation and a router stand-in ---- */

#define CONV_MSGS_MAX 128

typedef struct {
    rd_conv_t d;
    llm_message_t m[CONV_MSGS_MAX];
    json_t *scenario_args;      /* the last training.scenario arguments */
    const char *scenario_error; /* answer training.scenario with this error message */
    bool no_state_tool;         /* do not offer state.update */
} conv_t;

/* The engine's call built directly (not through llm_call_parse) from the conversation. */
static void build_call(conv_t *c, llm_call_t *call, llm_tool_t tools[2])
{
    size_t n = json_array_size(c->d.messages);
    assert_true(n <= CONV_MSGS_MAX);
    for (size_t i = 0; i < n; i++) {
        const json_t *j = json_array_get(c->d.messages, i);
        const char *role = json_string_value(json_object_get(j, "role"));
        llm_message_t *m = &c->m[i];
        memset(m, 0, sizeof(*m));
        m->role = strcmp(role, "user") == 0        ? LLM_ROLE_USER
                  : strcmp(role, "assistant") == 0 ? LLM_ROLE_ASSISTANT
                                                   : LLM_ROLE_TOOL;
        const json_t *t = json_object_get(j, "text");
        m->text = t ? json_string_value(t) : "";
        m->text_len = t ? json_string_length(t) : 0;
        m->name = json_string_value(json_object_get(j, "name"));
        m->tool_call_id = json_string_value(json_object_get(j, "tool_call_id"));
        const json_t *ok = json_object_get(j, "ok");
        m->ok = ok == NULL || json_is_true(ok);
        m->tool_calls = json_object_get(j, "tool_calls");
    }
    tools[0] = (llm_tool_t){.name = "training.scenario", .description = "", .parameters = NULL};
    tools[1] = (llm_tool_t){.name = "state.update", .description = "", .parameters = NULL};
    memset(call, 0, sizeof(*call));
    call->id = "req";
    call->agent = "life_trainer";
    call->tier = "large";
    call->system = "";
    call->lang = c->d.lang;
    call->messages = c->m;
    call->n_messages = n;
    call->tools = tools;
    call->n_tools = c->no_state_tool ? 1 : 2;
    call->state = c->d.state;
    call->fallback = "rules";
    call->response_format = "";
}

static int step(rd_conv_t *d, llm_rules_out_t *out)
{
    llm_call_t call;
    llm_tool_t tools[2];
    build_call((conv_t *)d, &call, tools); /* d is the conv_t's first member */
    return llm_rules_life_trainer(&call, out);
}

/*
 * training.scenario: the hand-made scenario (or the error asked for);
 * state.update: applied as the router does (records merged by key, null
 * deletes, mode set), the records within the router's bound.
 */
static char *run_tool(rd_conv_t *d, const llm_rules_call_t *tc, bool *ok)
{
    conv_t *c = (conv_t *)d;
    if (strcmp(tc->name, "training.scenario") == 0) {
        json_decref(c->scenario_args);
        c->scenario_args = json_incref(tc->arguments);
        if (c->scenario_error == NULL)
            return strdup(SCENARIO);
        char text[256];
        snprintf(text, sizeof(text), "{\"code\":\"invalid_tool_arguments\",\"message\":\"%s\"}",
                 c->scenario_error);
        *ok = false;
        return strdup(text);
    }
    assert_string_equal(tc->name, "state.update");
    rd_apply_update(d->state, tc->arguments);
    /* The records must fit the router's bound (ROUTER_RECORDS_MAX, 64 KiB). */
    char *dump = json_dumps(json_object_get(d->state, "records"), JSON_COMPACT);
    assert_non_null(dump);
    assert_true(strlen(dump) <= 64 * 1024);
    free(dump);
    return strdup("{\"slots\":{},\"mode\":\"training\"}");
}

static void conv_init(conv_t *c, const char *lang)
{
    memset(c, 0, sizeof(*c));
    rd_conv_init(&c->d, "life_trainer", llm_rules_life_trainer, lang,
                 json_pack("{s:{}}", "records"));
    c->d.step = step;
    c->d.tool = run_tool;
    c->d.max_steps = 4;
    c->d.trace_env = "TRAINER_TEST_PRINT"; /* to read the answers while debugging */
}

static void conv_free(conv_t *c)
{
    rd_conv_free(&c->d);
    json_decref(c->scenario_args);
}

/* One turn: the engine's steps until it answers with text (at most 4). New text. */
static char *turn(conv_t *c, const char *user)
{
    return strdup(rd_say(&c->d, user));
}

static const json_t *rec_get(conv_t *c, const char *key)
{
    return rd_record(&c->d, key);
}

static const char *mode_of(conv_t *c)
{
    return rd_mode(&c->d);
}

static void start_zh(conv_t *c)
{
    conv_init(c, "zh");
    char *t = turn(c, "开始陪练 重疾险");
    assert_int_equal(c->d.steps, 3); /* scenario, state.update, answer */
    free(t);
}

/* ---- tests ---- */

static void test_start(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "zh");
    char *t = turn(&c, "开始陪练 重疾险 has_social_insurance think_later");
    assert_int_equal(c.d.steps, 3);
    /* The scenario call: the critical-illness product, a seed from the message, the ids. */
    assert_string_equal(json_string_value(json_object_get(c.scenario_args, "product_id")),
                        "ci-guard-2024");
    const char *seed = json_string_value(json_object_get(c.scenario_args, "seed"));
    assert_non_null(seed);
    assert_int_equal(strlen(seed), 17);
    const json_t *set = json_object_get(c.scenario_args, "objection_set");
    assert_int_equal(json_array_size(set), 2);
    assert_string_equal(json_string_value(json_array_get(set, 0)), "has_social_insurance");
    assert_string_equal(json_string_value(json_array_get(set, 1)), "think_later");
    /* The session is recorded. */
    assert_string_equal(mode_of(&c), "training");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec_get(&c, "persona"), "name"), "zh")),
        "王先生");
    assert_int_equal(json_array_size(rec_get(&c, "objections")), 2);
    assert_int_equal(json_integer_value(rec_get(&c, "turn")), 0);
    assert_int_equal(json_array_size(rec_get(&c, "strategies")), 0);
    assert_int_equal(json_array_size(rec_get(&c, "rubric")), 5);
    /* The answer: the persona and the first objection in character. */
    rd_assert_has(t, "王先生，35岁，中学教师");
    rd_assert_has(t, "【客户·王先生】我有医保了，不需要重疾险。");
    free(t);

    /* The same start message gives the same seed; another one another seed. */
    conv_t d;
    conv_init(&d, "zh");
    free(turn(&d, "开始陪练 重疾险 has_social_insurance think_later"));
    assert_string_equal(json_string_value(json_object_get(d.scenario_args, "seed")), seed);
    conv_t e;
    conv_init(&e, "zh");
    free(turn(&e, "我想练习一下重疾险销售"));
    assert_string_not_equal(json_string_value(json_object_get(e.scenario_args, "seed")), seed);
    assert_null(json_object_get(e.scenario_args, "objection_set"));
    conv_free(&c);
    conv_free(&d);
    conv_free(&e);
}

static void test_detect(void **state)
{
    (void)state;
    json_t *sc = json_loads(SCENARIO, 0, NULL);
    const json_t *bank = json_object_get(sc, "strategies");
    json_t *det = NULL;
    const char *s;
#define DETECT(text) trainer_detect(bank, text, strlen(text), &det)
    s = DETECT("您身边有没有人生过大病？");
    assert_string_equal(s, "ask_experience");
    json_decref(det);
    /* More hits win among good strategies: contrast (4) over empathy (1). */
    s = DETECT("我理解。医保只管报销，重疾险是确诊后一次性给付，弥补收入损失。");
    assert_string_equal(s, "contrast_reimbursement_lump_sum");
    assert_int_equal(json_array_size(det), 2);
    json_decref(det);
    /* A poor strategy wins over any good one. */
    s = DETECT("我理解您，但今天必须定下来。");
    assert_string_equal(s, "pressure_close");
    assert_int_equal(json_array_size(det), 2);
    json_decref(det);
    /* product_dump needs 3 keywords. */
    s = DETECT("轻症和中症都赔。");
    assert_string_equal(s, "none");
    json_decref(det);
    s = DETECT("轻症、中症、身故都保，还有豁免。");
    assert_string_equal(s, "product_dump");
    json_decref(det);
    /* English, case-insensitive. */
    s = DETECT("Have you ever seen a friend get seriously ill?");
    assert_string_equal(s, "ask_experience");
    json_decref(det);
    /* A Chinese negation before a keyword does not count; a later plain one does. */
    s = DETECT("我不理解。");
    assert_string_equal(s, "none");
    json_decref(det);
    s = DETECT("我不理解您为什么这么说，但我理解您的担心。");
    assert_string_equal(s, "empathy");
    json_decref(det);
    s = DETECT("好的。");
    assert_string_equal(s, "none");
    assert_int_equal(json_array_size(det), 0);
    json_decref(det);
#undef DETECT
    json_decref(sc);
}

/* The pair: asking about experience vs contrasting reimbursement with a lump sum. */
static void test_two_strategies_two_reactions(void **state)
{
    (void)state;
    conv_t a, b;
    start_zh(&a);
    start_zh(&b);
    char *ta = turn(&a, "您身边有没有人生过大病？");
    char *tb = turn(&b, "医保只管报销，重疾险是确诊后一次性给付，弥补收入损失。");
    assert_int_equal(a.d.steps, 2); /* state.update, answer */
    /* Asking about experience: the customer opens up and tells a story. */
    rd_assert_has(ta, "【客户·王先生】说到这个，我舅舅前年中风了。");
    /* Contrasting reimbursement with a lump sum: a follow-up about income. */
    rd_assert_has(tb, "【客户·王先生】那我半年上不了班，工资谁管？");
    assert_null(strstr(ta, "工资谁管"));
    assert_null(strstr(tb, "舅舅"));
    /* Coach feedback and a better phrasing after each trainee turn. */
    rd_assert_has(ta, "【教练点评】识别到的策略：询问客户亲身经历（有效）");
    rd_assert_has(ta, "更好的说法：“医保报销看病的钱，重疾险一次性给付。”");
    rd_assert_has(tb, "识别到的策略：对比报销型与给付型（有效）");
    /* The log quotes the trainee. */
    const json_t *la = json_array_get(rec_get(&a, "strategies"), 0);
    assert_string_equal(json_string_value(json_object_get(la, "strategy")), "ask_experience");
    assert_string_equal(json_string_value(json_object_get(la, "quote")),
                        "您身边有没有人生过大病？");
    assert_string_equal(json_string_value(json_object_get(la, "objection")),
                        "has_social_insurance");
    const json_t *lb = json_array_get(rec_get(&b, "strategies"), 0);
    assert_string_equal(json_string_value(json_object_get(lb, "strategy")),
                        "contrast_reimbursement_lump_sum");
    assert_int_equal(json_integer_value(rec_get(&a, "turn")), 1);
    assert_int_equal(json_integer_value(rec_get(&a, "resistance")), 1);
    free(ta);
    free(tb);
    conv_free(&a);
    conv_free(&b);
}

/*
 * A whole session, scored by hand:
 *  turn 1 ask_experience             objection 1: resistance 2 -> 1
 *  turn 2 contrast (+ empathy)       -> 0: resolved; objection 2 raised
 *  turn 3 pressure_close             objection 2: 2 -> 3 (harden)
 *  turn 4 trial_close (+ empathy)    resolve: done, 2 of 2 resolved
 * needs_discovery      10 + 35 (t1)                              = 45
 * product_knowledge    10 + 40 (t2)                              = 50
 * objection_handling    0 + 15 (t2) - 20 (t3) + 15 (t4) + 2 x 25 = 60
 * emotional_connection 10 + 20 (t1) + 35 (t2) - 30 (t3) + 35 (t4) = 70
 * closing               0 - 20 (t3) + 50 (t4) + 2 x 10           = 50
 * total (25x45 + 20x50 + 25x60 + 15x70 + 15x50) / 100 = 54.25   -> 54
 */
static void test_session_and_score(void **state)
{
    (void)state;
    conv_t c;
    start_zh(&c);
    free(turn(&c, "您身边有没有人生过大病？"));
    char *t2 = turn(&c, "我理解。医保只管报销，重疾险是确诊后一次性给付，弥补收入损失。");
    rd_assert_has(t2, "那我半年上不了班，工资谁管？……医保管看病，重疾险管生活。");
    rd_assert_has(t2, "（客户又想到一个顾虑）\n【客户·王先生】我再考虑考虑。");
    rd_assert_has(t2, "（同时用到：共情认同）");
    assert_int_equal(json_integer_value(rec_get(&c, "current")), 1);
    char *t3 = turn(&c, "您今天必须签，不买就后悔！");
    rd_assert_has(t3, "【客户·王先生】你越催我越不想买。");
    rd_assert_has(t3, "识别到的策略：施压逼单（需改进）");
    assert_int_equal(json_integer_value(rec_get(&c, "resistance")), 3);
    assert_string_equal(mode_of(&c), "training");
    char *t4 = turn(&c, "我明白您的顾虑，我先给您做个方案试算，周末约个时间再聊，好吗？");
    rd_assert_has(t4, "行，周末再约。");
    rd_assert_has(t4, "本次陪练结束");
    rd_assert_has(t4, "【陪练评分】总分 54/100（化解异议 2/2，共 4 轮）");
    rd_assert_has(t4, "需求挖掘（权重 25%）：45 分。依据：第1轮“您身边有没有人生过大病？”（+35）");
    rd_assert_has(t4, "产品知识（权重 20%）：50 分");
    rd_assert_has(t4, "异议处理（权重 25%）：60 分");
    rd_assert_has(t4, "情绪连接（权重 15%）：70 分");
    rd_assert_has(t4, "成交引导（权重 15%）：50 分");
    assert_string_equal(mode_of(&c), "training_done");

    const json_t *score = rec_get(&c, "score");
    assert_int_equal(json_integer_value(json_object_get(score, "total")), 54);
    assert_int_equal(json_integer_value(json_object_get(score, "resolved")), 2);
    const json_t *dims = json_object_get(score, "dimensions");
    static const json_int_t want[] = {45, 50, 60, 70, 50};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(dims, i), "score")),
                         want[i]);
    /* Evidence: the trainee's own words, with turn and points. */
    const json_t *ev = json_object_get(json_array_get(dims, 3), "evidence");
    assert_int_equal(json_array_size(ev), 4);
    const json_t *e3 = json_array_get(ev, 2);
    assert_int_equal(json_integer_value(json_object_get(e3, "turn")), 3);
    assert_int_equal(json_integer_value(json_object_get(e3, "points")), -30);
    assert_string_equal(json_string_value(json_object_get(e3, "quote")),
                        "您今天必须签，不买就后悔！");

    /* After the session: the score and how to start again. */
    char *t5 = turn(&c, "谢谢");
    rd_assert_has(t5, "总分 54/100");
    rd_assert_has(t5, "开始陪练");
    free(t2);
    free(t3);
    free(t4);
    free(t5);
    conv_free(&c);
}

static void test_end_command(void **state)
{
    (void)state;
    conv_t c;
    start_zh(&c);
    free(turn(&c, "您身边有没有人生过大病？"));
    char *t = turn(&c, "结束陪练");
    rd_assert_has(t, "本次陪练到此结束");
    /* 10 + 35 = 45; 0 resolved -> objection handling 0; emotional 10 + 20 = 30; closing 0;
     * product 10: total (25x45 + 20x10 + 0 + 15x30 + 0) / 100 = 17.75 -> 18. */
    rd_assert_has(t, "总分 18/100（化解异议 0/2，共 1 轮）");
    rd_assert_has(t, "产品知识（权重 20%）：10 分。依据：本次没有相关表现");
    assert_string_equal(mode_of(&c), "training_done");
    const json_t *out0 = json_array_get(rec_get(&c, "outcomes"), 0);
    assert_false(json_is_true(json_object_get(out0, "resolved")));
    free(t);
    conv_free(&c);
}

static void test_repeat_and_move_on(void **state)
{
    (void)state;
    conv_t c;
    start_zh(&c);
    char *t = turn(&c, "好的。");
    /* No strategy: the customer repeats the objection; the coach says so. */
    rd_assert_has(t, "【客户·王先生】我还是觉得有医保就够了。");
    rd_assert_has(t, "没有识别出明确的话术策略");
    free(t);
    free(turn(&c, "嗯嗯。"));
    free(turn(&c, "这样啊。"));
    t = turn(&c, "是吗。");
    /* Fourth turn without progress: the customer moves on unconvinced. */
    rd_assert_has(t, "先放一放吧");
    rd_assert_has(t, "我再考虑考虑。");
    assert_int_equal(json_integer_value(rec_get(&c, "current")), 1);
    const json_t *out0 = json_array_get(rec_get(&c, "outcomes"), 0);
    assert_false(json_is_true(json_object_get(out0, "resolved")));
    assert_int_equal(json_integer_value(json_object_get(out0, "turns")), 4);
    free(t);
    conv_free(&c);
}

static void test_english(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "en");
    char *t = turn(&c, "start training critical illness");
    rd_assert_has(t, "Mr Wang, 35, teacher");
    rd_assert_has(t, "[Customer Mr Wang] I have social insurance, I don't need it.");
    free(t);
    t = turn(&c, "Have you ever seen anyone you know fall seriously ill?");
    rd_assert_has(t, "[Customer Mr Wang] Now that you ask, my uncle had a stroke.");
    rd_assert_has(t, "[Coach] Strategy detected: Asking about the customer's own experience");
    rd_assert_has(t, "A better phrasing: \"Social insurance reimburses bills");
    free(t);
    t = turn(&c, "end training");
    rd_assert_has(t, "[Score] Total 18/100 (objections resolved 0/2, 1 turns)");
    rd_assert_has(t, "Needs discovery (weight 25%): 45. Evidence: turn 1 \"Have you ever seen "
                     "anyone you know fall seriously ill?\" (+35)");
    free(t);
    conv_free(&c);
}

static void test_no_session_and_errors(void **state)
{
    (void)state;
    conv_t c;
    conv_init(&c, "zh");
    char *t = turn(&c, "你好");
    assert_int_equal(c.d.steps, 1);
    rd_assert_has(t, "开始陪练 重疾险");
    free(t);
    /* A scenario error (unknown objection id) is explained. */
    c.scenario_error = "objection_set[0]: unknown objection";
    t = turn(&c, "开始陪练 no_such_objection");
    rd_assert_has(t, "无法生成陪练场景（objection_set[0]: unknown objection）");
    assert_string_equal(mode_of(&c), "");
    free(t);
    conv_free(&c);

    /* Without state.update the engine still answers (nothing is kept). */
    conv_init(&c, "zh");
    c.no_state_tool = true;
    t = turn(&c, "开始陪练");
    assert_int_equal(c.d.steps, 2);
    rd_assert_has(t, "我有医保了，不需要重疾险。");
    free(t);
    conv_free(&c);
}

static void test_quote(void **state)
{
    (void)state;
    json_t *q = trainer_quote("  line one\nline two  ", 22);
    assert_string_equal(json_string_value(q), "line one line two");
    json_decref(q);
    char big[400];
    memset(big, 'a', sizeof(big));
    q = trainer_quote(big, sizeof(big));
    assert_int_equal(json_string_length(q), TRAINER_QUOTE_MAX + 3);
    assert_non_null(strstr(json_string_value(q), "\xE2\x80\xA6"));
    json_decref(q);
    /* 50 three-byte characters: cut on a code point. */
    char zh[200] = "";
    for (int i = 0; i < 50; i++)
        strcat(zh, "保");
    q = trainer_quote(zh, strlen(zh));
    assert_non_null(q);
    assert_int_equal(json_string_length(q) % 3, 0);
    json_decref(q);
    /* Invalid UTF-8 is replaced, never dropped into JSON. */
    q = trainer_quote("ab\xff\xfe"
                      "cd",
                      6);
    assert_string_equal(json_string_value(q), "ab??cd");
    json_decref(q);
}

/* Records written by someone else (a model before a fallback): odd values never crash the
 * engine or overflow its arithmetic, and it still answers. */
static void test_garbage_records(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"objections\":[1,2],\"strategy_bank\":[],\"current\":0}",
        "{\"objections\":[{\"id\":\"x\",\"resistance\":9223372036854775807}],"
        "\"strategy_bank\":[{\"id\":\"s\",\"keywords\":{\"zh\":[\"好\"]},\"min_hits\":-5}],"
        "\"current\":0,\"turn\":9223372036854775807,\"attempts\":-9223372036854775807,"
        "\"rubric\":[{\"id\":\"d\",\"weight\":9223372036854775807,\"base\":-7,"
        "\"per_resolved\":9223372036854775807,\"evidence\":[{\"strategy\":\"s\","
        "\"points\":9223372036854775807}]}],\"strategies\":\"nope\",\"outcomes\":{}}",
        "{\"objections\":[{}],\"strategy_bank\":[7],\"current\":0,\"persona\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        conv_t c;
        conv_init(&c, "zh");
        json_t *rec = json_loads(bad[i], 0, NULL);
        assert_non_null(rec);
        json_object_set_new(c.d.state, "records", rec);
        json_object_set_new(c.d.state, "mode", json_string("training"));
        for (int k = 0; k < 6; k++)
            free(turn(&c, k == 5 ? "结束陪练" : "好"));
        conv_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_two_strategies_two_reactions),
        cmocka_unit_test(test_session_and_score),
        cmocka_unit_test(test_end_command),
        cmocka_unit_test(test_repeat_and_move_on),
        cmocka_unit_test(test_english),
        cmocka_unit_test(test_no_session_and_errors),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_garbage_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
