/*
 * test_llm_rules_intake.c - the claims_intake engine of the rules backend,
 * pure: slot extraction tables (Chinese and English), intents, numbered batch
 * answers, and whole conversations driven through llm_call_parse + the
 * engine with a small in-test "router" that applies state.update the way
 * the router does and answers claim.register / fee.calc with canned results.
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
#include "rules.h"
#include "rules_intake.h"
#include "mesh_harness.h"
#include "test_rules_driver.h"

/* ---- extraction tables ---- */

typedef struct {
    const char *text;
    int asked;
    const char *expect; /* JSON object: slot -> value; "!slot" keys must be absent */
} xcase_t;

static const xcase_t s_cases[] = {
    /* the seed sentence of issue 3: six slots at once */
    {"昨天下午三点在延安路和人追尾了，对方全责，车灯坏了，没人受伤", INTAKE_NONE,
     "{\"accident_time\":\"昨天下午三点\",\"place\":\"延安路\",\"description\":\"和人追尾了\","
     "\"liability\":\"none\",\"damage\":\"车灯坏了\",\"injuries\":\"none\",\"!plates\":1,"
     "\"!police\":1,\"!contact\":1}"},
    {"我的车是沪A·12345，对方是苏E12345D", INTAKE_NONE, "{\"plates\":\"沪A12345、苏E12345D\"}"},
    {"京a88888", INTAKE_NONE, "{\"plates\":\"京A88888\"}"},
    {"电话13800138000，保单号p10003", INTAKE_NONE,
     "{\"contact\":\"13800138000\",\"policy_no\":\"P10003\"}"},
    {"交警来了，认定我主责", INTAKE_NONE, "{\"police\":\"yes\",\"liability\":\"major\"}"},
    {"没报警，我们自行协商的，各占一半", INTAKE_NONE,
     "{\"police\":\"no\",\"liability\":\"equal\"}"},
    {"交警认定对方主责", INTAKE_NONE, "{\"police\":\"yes\",\"liability\":\"minor\"}"},
    {"我全责", INTAKE_NONE, "{\"liability\":\"full\"}"},
    {"全责", INTAKE_LIABILITY, "{\"liability\":\"full\"}"},
    {"全责", INTAKE_NONE, "{\"!liability\":1}"},
    {"还没定责", INTAKE_NONE, "{\"liability\":\"undetermined\"}"},
    {"来了", INTAKE_POLICE, "{\"police\":\"yes\"}"},
    {"没有", INTAKE_INJURIES, "{\"injuries\":\"none\"}"},
    {"我没受伤但对方司机受伤了", INTAKE_NONE, "{\"injuries\":\"injured\"}"},
    {"今天早上8点半在中山路和解放路交叉口被追尾", INTAKE_NONE,
     "{\"accident_time\":\"今天早上8点半\",\"place\":\"中山路和解放路交叉口\","
     "\"description\":\"被追尾\"}"},
    {"长江路口", INTAKE_PLACE, "{\"place\":\"长江路口\"}"},
    {"我在等红灯，后面的车撞上来了", INTAKE_DESCRIPTION,
     "{\"description\":\"我在等红灯，后面的车撞上来了\"}"},
    {"修车大概3000，对方的车损失5千元", INTAKE_NONE,
     "{\"damage_amount\":\"3000\",\"third_party_damage_amount\":\"5000\"}"},
    {"1.2万元", INTAKE_NONE, "{\"damage_amount\":\"12000\"}"},
    {"2500", INTAKE_DAMAGE_AMOUNT, "{\"damage_amount\":\"2500\"}"},
    {"不清楚", INTAKE_TP_AMOUNT, "{\"third_party_damage_amount\":\"unknown\"}"},
    {"我现在有点忙，你一次性把问题发我", INTAKE_NONE,
     "{\"!accident_time\":1,\"!place\":1,\"!description\":1,\"!damage_amount\":1}"},
    {"下午3点在南京路，车牌沪B55555", INTAKE_NONE,
     "{\"accident_time\":\"下午3点\",\"place\":\"南京路\",\"plates\":\"沪B55555\","
     "\"!damage_amount\":1}"},
    /* English */
    {"Yesterday at 3 pm I was rear-ended on Yan'an Road, the other driver was fully at fault, "
     "my rear bumper is damaged and nobody was hurt",
     INTAKE_NONE,
     "{\"accident_time\":\"Yesterday 3 pm\",\"place\":\"Yan'an Road\",\"liability\":\"none\","
     "\"injuries\":\"none\",\"damage\":\"my rear bumper is damaged and nobody was hurt\"}"},
    {"It was 50/50 and the police came", INTAKE_NONE,
     "{\"liability\":\"equal\",\"police\":\"yes\"}"},
    {"It was mostly my fault", INTAKE_NONE, "{\"liability\":\"major\"}"},
    {"repair will cost about CNY 4,500", INTAKE_NONE, "{\"damage_amount\":\"4500\"}"},
    {"call me on 139 1234 5678", INTAKE_NONE, "{\"contact\":\"13912345678\"}"},
};

static void test_extract_table(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof(s_cases) / sizeof(s_cases[0]); i++) {
        const xcase_t *c = &s_cases[i];
        json_t *found = json_object();
        assert_int_equal(intake_extract(c->text, strlen(c->text), c->asked, found), 0);
        json_t *exp = json_loads(c->expect, 0, NULL);
        assert_non_null(exp);
        const char *k;
        json_t *v;
        json_object_foreach(exp, k, v)
        {
            const json_t *got = json_object_get(found, k[0] == '!' ? k + 1 : k);
            if (k[0] == '!') {
                if (got != NULL)
                    fail_msg("case %zu '%s': %s should be absent, got '%s'", i, c->text, k + 1,
                             json_string_value(got));
                continue;
            }
            if (!json_is_string(got) || strcmp(json_string_value(got), json_string_value(v)) != 0)
                fail_msg("case %zu '%s': %s = '%s', want '%s'", i, c->text, k,
                         got ? json_string_value(got) : "(absent)", json_string_value(v));
        }
        json_decref(exp);
        json_decref(found);
    }
}

typedef struct {
    const char *text;
    bool injury, death, dispute, human, batch, confirm, deny;
} icase_t;

static void test_intents(void **st)
{
    (void)st;
    static const icase_t t[] = {
        {"没人受伤", false, false, false, false, false, false, false},
        {"有人受伤了，送医院了", true, false, false, false, false, false, false},
        {"对方司机当场死亡", true, true, false, false, false, false, false},
        {"我不同意对方全责", false, false, true, false, false, false, false},
        {"对方不认", false, false, true, false, false, false, false},
        {"转人工", false, false, false, true, false, false, false},
        {"I want to talk to a human", false, false, false, true, false, false, false},
        {"我现在有点忙，你一次性把问题发我", false, false, false, false, true, false, false},
        {"send me all the questions at once", false, false, false, false, true, false, false},
        {"确认", false, false, false, false, false, true, false},
        {"对", false, false, false, false, false, true, false},
        {"对方全责", false, false, false, false, false, false, false},
        {"不对，地点错了", false, false, false, false, false, false, true},
        {"yes, correct", false, false, false, false, false, true, false},
        {"no, the place is wrong", false, false, false, false, false, false, true},
        {"nobody was hurt", false, false, false, false, false, false, false},
        {"my passenger was injured", true, false, false, false, false, false, false},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        intake_intents_t it;
        intake_intents(t[i].text, strlen(t[i].text), &it);
        if (it.injury != t[i].injury || it.death != t[i].death || it.dispute != t[i].dispute ||
            it.human != t[i].human || it.batch != t[i].batch || it.confirm != t[i].confirm ||
            it.deny != t[i].deny)
            fail_msg("intents of '%s': injury %d death %d dispute %d human %d batch %d confirm %d "
                     "deny %d",
                     t[i].text, it.injury, it.death, it.dispute, it.human, it.batch, it.confirm,
                     it.deny);
    }
}

static void test_split_numbered(void **st)
{
    (void)st;
    const char *s = "1. 沪A12345和沪B67890\n2、交警来了 3）13800138000；(4) P10003 ⑤3.5万";
    size_t starts[5], lens[5];
    assert_int_equal(intake_split_numbered(s, strlen(s), 5, starts, lens), 5);
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*s", (int)lens[0], s + starts[0]);
    assert_string_equal(buf, "沪A12345和沪B67890");
    snprintf(buf, sizeof(buf), "%.*s", (int)lens[1], s + starts[1]);
    assert_string_equal(buf, "交警来了");
    snprintf(buf, sizeof(buf), "%.*s", (int)lens[2], s + starts[2]);
    assert_string_equal(buf, "13800138000");
    snprintf(buf, sizeof(buf), "%.*s", (int)lens[3], s + starts[3]);
    assert_string_equal(buf, "P10003");
    snprintf(buf, sizeof(buf), "%.*s", (int)lens[4], s + starts[4]);
    assert_string_equal(buf, "3.5万");
    /* "3.5万" / "3:30" are not markers; not numbered at all -> 0 */
    const char *t = "下午3:30，修车3.5万";
    assert_int_equal(intake_split_numbered(t, strlen(t), 5, starts, lens), 0);
}

/* ---- a conversation driven through the engine ---- */

typedef struct {
    rd_conv_t d;
    int registers; /* claim.register calls */
    int fees;      /* fee.calc calls */
    json_t *reg_args, *fee_args;
} conv_t;

/* The shape of the tools service's fee.calc motor result (services/tools/tool_motor.c):
 * insured not liable, own damage 3,000, the other party insured. */
static const char *FEE_RESULT =
    "{\"estimate\":true,\"mode\":\"motor\",\"liability\":\"none\",\"share\":0,"
    "\"lines\":[{\"item\":\"own_vehicle_damage\",\"item_name\":{\"zh\":\"本车车辆损失\","
    "\"en\":\"own vehicle damage\"},\"amount\":3000,\"covered_by\":\"other_party_compulsory\","
    "\"payable\":2000,\"rule\":\"min(3000, 2000)\",\"rule_zh\":\"对方交强险财产限额内\","
    "\"clause\":\"1.1\"},{\"item\":\"own_vehicle_damage\",\"item_name\":{\"zh\":"
    "\"本车车辆损失\",\"en\":\"own vehicle damage\"},\"amount\":1000,\"covered_by\":"
    "\"other_party_third_party\",\"payable\":1000,\"rule\":\"1000 x 100%\",\"rule_zh\":"
    "\"按对方责任比例\",\"clause\":\"2.2\"}],\"total_payable\":0,\"total_other_party\":3000}";

static char *run_tool(rd_conv_t *d, const llm_rules_call_t *tc, bool *ok)
{
    conv_t *c = (conv_t *)d; /* d is c's first member */
    const char *name = tc->name;
    const json_t *a = tc->arguments;
    if (strcmp(name, "claim.register") == 0) {
        c->registers++;
        json_decref(c->reg_args);
        c->reg_args = json_deep_copy(a);
        return strdup(c->registers == 1
                          ? "{\"claim_no\":\"CLM20261129000001\",\"created\":true,"
                            "\"status\":\"registered\",\"registered_at\":1795910000000,"
                            "\"policy_no\":\"P10003\",\"kind\":\"motor\"}"
                          : "{\"claim_no\":\"CLM20261129000001\",\"created\":false,"
                            "\"status\":\"registered\",\"registered_at\":1795910000000,"
                            "\"policy_no\":\"P10003\",\"kind\":\"motor\"}");
    }
    if (strcmp(name, "fee.calc") == 0) {
        c->fees++;
        json_decref(c->fee_args);
        c->fee_args = json_deep_copy(a);
        return strdup(FEE_RESULT);
    }
    return rd_tool_default(d, tc, ok);
}

static const char *const TOOLS[] = {"policy.lookup", "state.update", "claim.register", "fee.calc",
                                    NULL};

static void conv_init(conv_t *c, const char *lang)
{
    memset(c, 0, sizeof(*c));
    rd_conv_init(&c->d, "claims_intake", llm_rules_claims_intake, lang, NULL);
    c->d.tier = "large";
    c->d.system = "intake";
    c->d.tools = TOOLS;
    c->d.tool = run_tool;
    c->d.trace_env = "INTAKE_TRACE"; /* print the conversation (for the docs) */
}

static void conv_free(conv_t *c)
{
    rd_conv_free(&c->d);
    json_decref(c->reg_args);
    json_decref(c->fee_args);
}

static const char *say(conv_t *c, const char *text)
{
    return rd_say(&c->d, text);
}

static const char *slot(conv_t *c, const char *name)
{
    return rd_slot(&c->d, name);
}

static const char *mode(conv_t *c)
{
    return rd_mode(&c->d);
}

/* Seed scenario 1: batch mode on request, then one reply answering everything. */
static void test_batch_mode(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "zh");
    const char *r = say(&c, "我要报案");
    rd_assert_has(r, "车险报案助手");
    rd_assert_has(r, "什么时候");
    assert_int_equal(c.d.steps, 2);

    r = say(&c, "昨天下午三点在延安路和人追尾了，对方全责，车灯坏了，没人受伤");
    assert_string_equal(slot(&c, "accident_time"), "昨天下午三点");
    assert_string_equal(slot(&c, "place"), "延安路");
    assert_string_equal(slot(&c, "liability"), "none");
    assert_string_equal(slot(&c, "damage"), "车灯坏了");
    assert_string_equal(slot(&c, "injuries"), "none");
    assert_non_null(slot(&c, "description"));
    rd_assert_has(r, "已记录");
    rd_assert_has(r, "车牌"); /* the other party was mentioned: its plate comes next */

    r = say(&c, "我现在有点忙，你一次性把问题发我");
    assert_string_equal(mode(&c), "batch");
    /* plates, police, damage amount, contact, policy number; not the third party's amount
     * (the insured has no liability) */
    rd_assert_has(r, "1. ");
    rd_assert_has(r, "5. ");
    rd_assert_hasnt(r, "6. ");
    rd_assert_has(r, "车牌");
    rd_assert_has(r, "交警");
    rd_assert_has(r, "保单号");
    rd_assert_hasnt(r, "对方车辆的损失");

    r = say(&c, "1. 沪A12345，对方沪B67890 2. 来了 3. 3000元 4. 13800138000 5. P10003");
    assert_string_equal(slot(&c, "plates"), "沪A12345、沪B67890");
    assert_string_equal(slot(&c, "police"), "yes");
    assert_string_equal(slot(&c, "damage_amount"), "3000");
    assert_string_equal(slot(&c, "contact"), "13800138000");
    assert_string_equal(slot(&c, "policy_no"), "P10003");
    assert_string_equal(mode(&c), "confirm");
    rd_assert_has(r, "请核对");
    rd_assert_has(r, "延安路");
    rd_assert_has(r, "无责");
    rd_assert_has(r, "确认");
    assert_int_equal(c.registers, 0);

    r = say(&c, "确认");
    assert_int_equal(c.d.first_n_calls, 2); /* claim.register + fee.calc in one step */
    assert_int_equal(c.d.steps, 3);
    assert_int_equal(c.registers, 1);
    assert_int_equal(c.fees, 1);
    assert_string_equal(json_string_value(json_object_get(c.reg_args, "kind")), "motor");
    assert_string_equal(json_string_value(json_object_get(c.reg_args, "policy_no")), "P10003");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c.reg_args, "facts"), "place")),
        "延安路");
    assert_string_equal(json_string_value(json_object_get(c.fee_args, "mode")), "motor");
    assert_string_equal(json_string_value(json_object_get(c.fee_args, "liability")), "none");
    assert_true(json_number_value(json_object_get(c.fee_args, "own_vehicle_damage")) == 3000.0);
    assert_true(json_number_value(json_object_get(c.fee_args, "third_party_property")) == 0.0);
    assert_string_equal(mode(&c), "done");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c.d.state, "records"), "claim_no")),
        "CLM20261129000001");
    rd_assert_has(r, "CLM20261129000001");
    rd_assert_has(r, "责任建议");
    rd_assert_has(r, "无责");
    rd_assert_has(r, "主责70%");        /* the criteria */
    rd_assert_has(r, "财产损失2000元"); /* 交强险 limits with liability */
    rd_assert_has(r, "财产损失100元");  /* and without */
    rd_assert_has(r, "仅为估算");
    rd_assert_has(r, "对方交强险预估赔付 2,000元");
    rd_assert_has(r, "您的保单预估赔付合计：0元；对方保险公司预估赔付：3,000元");

    /* a second confirmation: the tool answers created=false, same number, said so */
    r = say(&c, "确认");
    assert_int_equal(c.registers, 2);
    rd_assert_has(r, "CLM20261129000001");
    rd_assert_has(r, "不会重复报案");
    conv_free(&c);
}

/* Seed scenario 2: out-of-order answers; questions follow the customer. */
static void test_out_of_order(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "zh");
    const char *r = say(&c, "我要报案，今天早上8点在中山路被追尾了");
    assert_string_equal(slot(&c, "accident_time"), "今天早上8点");
    assert_string_equal(slot(&c, "place"), "中山路");
    rd_assert_has(r, "车牌"); /* description known; plates next by default order */

    /* asked for plates, answers about the police and liability instead */
    r = say(&c, "交警来了，定了对方全责");
    assert_string_equal(slot(&c, "police"), "yes");
    assert_string_equal(slot(&c, "liability"), "none");
    assert_null(slot(&c, "plates"));
    rd_assert_has(r, "车牌"); /* still missing: asked again */

    r = say(&c, "我的车是浙A11111，对方的车牌是浙B22222");
    assert_string_equal(slot(&c, "plates"), "浙A11111、浙B22222");
    rd_assert_has(r, "受伤");

    /* talks about the repair: the repair questions come before the default order */
    r = say(&c, "没人受伤，后保险杠撞凹了，4S店说修要2000块");
    assert_string_equal(slot(&c, "injuries"), "none");
    assert_string_equal(slot(&c, "damage_amount"), "2000");
    assert_non_null(slot(&c, "damage"));
    rd_assert_has(r, "电话");

    r = say(&c, "保单号P10003，电话13900001111");
    assert_string_equal(mode(&c), "confirm");
    rd_assert_has(r, "中山路");

    /* a correction in confirm mode re-reads the summary, no claim yet */
    r = say(&c, "不对，地点是在中山路和延安路路口");
    assert_string_equal(slot(&c, "place"), "中山路和延安路路口");
    assert_string_equal(mode(&c), "confirm");
    assert_int_equal(c.registers, 0);
    rd_assert_has(r, "中山路和延安路路口");

    r = say(&c, "没问题");
    assert_int_equal(c.registers, 1);
    rd_assert_has(r, "CLM20261129000001");
    conv_free(&c);
}

static void test_handoff_injury(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "zh");
    const char *r = say(&c, "刚才在人民路撞了一个骑电动车的，对方受伤了");
    assert_string_equal(json_string_value(json_object_get(c.d.state, "handoff")), "pending");
    rd_assert_has(json_string_value(json_object_get(c.d.state, "handoff_reason")), "injury");
    assert_string_equal(slot(&c, "injuries"), "injured");
    assert_string_equal(slot(&c, "place"), "人民路");
    rd_assert_has(r, "人工");
    rd_assert_has(r, "同事");
    /* without the router's gate the engine still does not carry on the intake */
    r = say(&c, "P10003");
    rd_assert_has(r, "同事");
    assert_int_equal(c.registers, 0);
    conv_free(&c);
}

static void test_handoff_dispute_and_request(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "zh");
    say(&c, "我要报案");
    const char *r = say(&c, "我不同意对方全责的说法，对方不认");
    assert_string_equal(json_string_value(json_object_get(c.d.state, "handoff")), "pending");
    rd_assert_has(json_string_value(json_object_get(c.d.state, "handoff_reason")),
                  "liability_dispute");
    assert_null(slot(&c, "liability")); /* a disputed liability is not recorded */
    rd_assert_has(r, "同事");
    conv_free(&c);

    conv_init(&c, "en");
    r = say(&c, "I had an accident, can I talk to a human?");
    assert_string_equal(json_string_value(json_object_get(c.d.state, "handoff")), "pending");
    rd_assert_has(json_string_value(json_object_get(c.d.state, "handoff_reason")),
                  "customer_request");
    rd_assert_has(r, "colleague");
    conv_free(&c);
}

static void test_english(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "en");
    const char *r = say(&c, "I want to file a claim. Yesterday at 3 pm I was rear-ended on "
                            "Yan'an Road, my rear bumper is damaged and nobody was hurt");
    assert_string_equal(slot(&c, "place"), "Yan'an Road");
    assert_string_equal(slot(&c, "injuries"), "none");
    rd_assert_has(r, "Noted");
    r = say(&c, "send me all the questions at once");
    assert_string_equal(mode(&c), "batch");
    rd_assert_has(r, "1. ");
    /* unnumbered answers in any order */
    r = say(&c, "policy P10003, phone 13800138000, plates 沪A12345 and 沪C99999, the police came "
                "and said the other driver was fully at fault, repair will cost about 1500 yuan");
    assert_string_equal(slot(&c, "liability"), "none");
    assert_string_equal(slot(&c, "police"), "yes");
    assert_string_equal(slot(&c, "damage_amount"), "1500");
    assert_string_equal(mode(&c), "confirm");
    rd_assert_has(r, "Is this correct?");
    r = say(&c, "yes");
    assert_int_equal(c.registers, 1);
    rd_assert_has(r, "claim number is CLM20261129000001");
    rd_assert_has(r, "ESTIMATE");
    rd_assert_has(r, "major 70%");
    rd_assert_has(r, "the other party's compulsory insurance pays CNY 2,000");
    conv_free(&c);
}

/* Liability not decided: suggestion from the description, third-party amount asked. */
static void test_liability_suggestion(void **st)
{
    (void)st;
    json_t *slots =
        json_pack("{s:s, s:s}", "liability", "undetermined", "description", "我追尾了前车");
    bool suggested;
    assert_string_equal(intake_effective_liability(slots, &suggested), "full");
    assert_true(suggested);
    json_object_set_new(slots, "description", json_string("等红灯时被追尾"));
    assert_string_equal(intake_effective_liability(slots, &suggested), "none");
    json_object_set_new(slots, "liability", json_string("minor"));
    assert_string_equal(intake_effective_liability(slots, &suggested), "minor");
    assert_false(suggested);
    llm_buf_t b;
    llm_buf_init(&b);
    intake_say_liability(&b, slots, NULL, true);
    rd_assert_has(llm_buf_str(&b), "次责（事故责任比例 30%）");
    llm_buf_free(&b);
    json_decref(slots);

    conv_t c;
    conv_init(&c, "zh");
    say(&c, "昨天在北京路我追尾了前车，没人受伤，车头撞坏了，交警还没认定责任");
    assert_string_equal(slot(&c, "liability"), "undetermined");
    const char *r = say(&c, "一次性把问题发我");
    rd_assert_has(r,
                  "对方车辆的损失"); /* the insured may be liable: the other side's loss matters */
    conv_free(&c);
}

/* The integration test's second seed conversation: the insured mainly at fault. */
static void test_major_fault_amounts(void **st)
{
    (void)st;
    conv_t c;
    conv_init(&c, "zh");
    const char *r = say(&c, "我要报案，今天早上8点在中山路变道时和一辆车剐蹭了");
    assert_string_equal(slot(&c, "accident_time"), "今天早上8点");
    assert_string_equal(slot(&c, "place"), "中山路");
    assert_string_equal(slot(&c, "description"), "变道时和一辆车剐蹭了");
    rd_assert_has(r, "车牌");
    r = say(&c, "交警来了，认定我主责");
    assert_string_equal(slot(&c, "liability"), "major");
    assert_null(slot(&c, "plates"));
    rd_assert_has(r, "车牌");
    say(&c, "没人受伤，我的车是浙A11111，对方是浙B22222，对方车门凹了，修要5.2万");
    assert_string_equal(slot(&c, "plates"), "浙A11111、浙B22222");
    assert_string_equal(slot(&c, "third_party_damage_amount"), "52000");
    assert_null(slot(&c, "damage_amount"));
    r = say(&c, "我的车左前门刮花了，修车大概8000元，电话13900001111，保单P10003");
    assert_string_equal(slot(&c, "damage_amount"), "8000");
    assert_string_equal(slot(&c, "description"), "变道时和一辆车剐蹭了");
    assert_string_equal(mode(&c), "confirm");
    r = say(&c, "没问题");
    assert_int_equal(c.registers, 1);
    assert_string_equal(json_string_value(json_object_get(c.fee_args, "liability")), "major");
    assert_true(json_number_value(json_object_get(c.fee_args, "own_vehicle_damage")) == 8000.0);
    assert_true(json_number_value(json_object_get(c.fee_args, "third_party_property")) == 52000.0);
    conv_free(&c);
}

/* Hostile text never crashes the extractors and values stay bounded. */
static void test_adversarial_text(void **st)
{
    (void)st;
    static char big[INTAKE_TEXT_MAX * 2 + 1];
    for (size_t i = 0; i + 3 <= sizeof(big) - 1; i += 3)
        memcpy(big + i, (i / 3) % 2 ? "在" : "路", 3);
    const char *inputs[] = {"",
                            "\xff\xfe\x80\xe5\xbb",
                            "1.",
                            "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳",
                            "(1)(2)(3)(4)(5)",
                            "沪A",
                            "沪A1234567890",
                            "99999999999999999999元",
                            "1.2.3.4万元",
                            "在",
                            "对",
                            big};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        json_t *found = json_object();
        assert_int_equal(intake_extract(inputs[i], strlen(inputs[i]), INTAKE_PLACE, found), 0);
        const char *k;
        json_t *v;
        json_object_foreach(found, k, v)
        {
            assert_true(json_is_string(v));
            assert_true(json_string_length(v) <= INTAKE_VALUE_MAX);
        }
        json_decref(found);
        intake_intents_t it;
        intake_intents(inputs[i], strlen(inputs[i]), &it);
        size_t starts[INTAKE_BATCH_ITEMS], lens[INTAKE_BATCH_ITEMS];
        size_t n =
            intake_split_numbered(inputs[i], strlen(inputs[i]), INTAKE_BATCH_ITEMS, starts, lens);
        assert_true(n <= INTAKE_BATCH_ITEMS + 1);
        for (size_t k2 = 0; k2 < INTAKE_BATCH_ITEMS; k2++)
            assert_true(starts[k2] + lens[k2] <= strlen(inputs[i]));
    }
    /* a whole conversation of nonsense still answers with text every turn */
    conv_t c;
    conv_init(&c, "zh");
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]) - 1; i++)
        assert_non_null(say(&c, inputs[i][0] ? inputs[i] : "?"));
    conv_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_table),
        cmocka_unit_test(test_intents),
        cmocka_unit_test(test_split_numbered),
        cmocka_unit_test(test_batch_mode),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_handoff_injury),
        cmocka_unit_test(test_handoff_dispute_and_request),
        cmocka_unit_test(test_english),
        cmocka_unit_test(test_liability_suggestion),
        cmocka_unit_test(test_major_fault_amounts),
        cmocka_unit_test(test_adversarial_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
