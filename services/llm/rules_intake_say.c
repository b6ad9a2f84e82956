/*
 * rules_intake_say.c - the texts of the claims_intake engine: questions,
 * labels, the read-back summary, the liability suggestion with its criteria
 * and the payout estimate. Chinese and English; the caller picks by call->lang.
 */
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "rules_intake.h"

typedef struct {
    const char *label_zh, *label_en;
    const char *q_zh, *q_en;
} slot_text_t;

static const slot_text_t s_text[INTAKE_SLOT_N] = {
    [INTAKE_ACCIDENT_TIME] = {"出险时间", "time of the accident",
                              "请问事故是什么时候发生的？（例如：昨天下午三点）",
                              "When did the accident happen? (e.g. yesterday at 3 pm)"},
    [INTAKE_PLACE] = {"出险地点", "place", "事故发生在哪里？说一下路名或路口就可以。",
                      "Where did it happen? A road name or junction is enough."},
    [INTAKE_DESCRIPTION] = {"事故经过", "how it happened",
                            "能简单说一下事故经过吗？（例如：等红灯时被后车追尾）",
                            "Could you briefly describe how it happened? (e.g. I was rear-ended "
                            "while waiting at a red light)"},
    [INTAKE_PLATES] = {"涉事车牌", "plates of the vehicles",
                       "请提供涉事车辆的车牌号（您的车和对方的车，例如 沪A12345）。",
                       "What are the plate numbers of the vehicles involved (yours and the other "
                       "car's, e.g. 沪A12345)?"},
    [INTAKE_INJURIES] = {"人员伤亡", "injuries", "有没有人受伤？", "Was anyone injured?"},
    [INTAKE_DAMAGE] = {"车辆损失", "damage", "车辆哪些部位受损了？",
                       "What was damaged on the vehicles?"},
    [INTAKE_POLICE] = {"交警处理", "police", "交警到现场处理了吗？",
                       "Did the traffic police come to the scene?"},
    [INTAKE_LIABILITY] =
        {"事故责任（您方）", "liability (yours)",
         "责任是怎么认定的？您方是全责、主责、同责、次责还是无责？还没认定也可以告诉我。",
         "How was liability decided: are you fully, mainly, equally, partly or "
         "not at fault? Tell me if it has not been decided yet."},
    [INTAKE_DAMAGE_AMOUNT] = {"本车损失金额（预估）", "own vehicle repair estimate",
                              "您的车维修大概需要多少钱？估计即可，不清楚可以说“不清楚”。",
                              "Roughly how much will your car's repair cost? An estimate is "
                              "fine; say \"not sure\" if you don't know."},
    [INTAKE_TP_AMOUNT] = {"对方损失金额（预估）", "other party's damage estimate",
                          "对方车辆的损失大概多少钱？估计即可，不清楚可以说“不清楚”。",
                          "Roughly how much is the other party's damage? An estimate is fine; "
                          "say \"not sure\" if you don't know."},
    [INTAKE_CONTACT] = {"联系电话", "contact phone", "请留一个联系电话，方便查勘员联系您。",
                        "Which phone number can our surveyor call you on?"},
    [INTAKE_POLICY_NO] = {"保单号", "policy number",
                          "请提供您的车险保单号（字母 P 加 5 位数字，例如 P10003）。",
                          "What is your motor policy number (the letter P and 5 digits, e.g. "
                          "P10003)?"},
};

const char *intake_question(int slot, bool zh)
{
    if (slot < 0 || slot >= INTAKE_SLOT_N)
        return "";
    return zh ? s_text[slot].q_zh : s_text[slot].q_en;
}

const char *intake_label(int slot, bool zh)
{
    if (slot < 0 || slot >= INTAKE_SLOT_N)
        return "";
    return zh ? s_text[slot].label_zh : s_text[slot].label_en;
}

static const char *liability_word(const char *code, bool zh)
{
    static const struct {
        const char *code, *zh, *en;
    } t[] = {
        {"full", "全责", "fully at fault"},    {"major", "主责", "mainly at fault"},
        {"equal", "同责", "equally at fault"}, {"minor", "次责", "partly at fault"},
        {"none", "无责", "not at fault"},      {"undetermined", "尚未认定", "not decided yet"}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(code, t[i].code) == 0)
            return zh ? t[i].zh : t[i].en;
    }
    return code;
}

void intake_say_value(llm_buf_t *b, int slot, const char *v, bool zh)
{
    switch (slot) {
    case INTAKE_INJURIES:
        llm_buf_puts(b, strcmp(v, "none") == 0      ? (zh ? "无人受伤" : "nobody injured")
                        : strcmp(v, "death") == 0   ? (zh ? "有人员死亡" : "someone died")
                        : strcmp(v, "injured") == 0 ? (zh ? "有人受伤" : "someone injured")
                                                    : v);
        return;
    case INTAKE_POLICE:
        llm_buf_puts(b, strcmp(v, "yes") == 0  ? (zh ? "交警已到场处理" : "the police came")
                        : strcmp(v, "no") == 0 ? (zh ? "未报警/交警未到场" : "no police")
                                               : v);
        return;
    case INTAKE_LIABILITY:
        llm_buf_puts(b, liability_word(v, zh));
        return;
    case INTAKE_DAMAGE_AMOUNT:
    case INTAKE_TP_AMOUNT:
        if (strcmp(v, "unknown") == 0) {
            llm_buf_puts(b, zh ? "暂不清楚" : "not known yet");
            return;
        }
        llm_rules_money(b, strtod(v, NULL), zh);
        return;
    default:
        llm_buf_append_clip(b, v, strlen(v), INTAKE_VALUE_MAX);
        return;
    }
}

void intake_say_summary(llm_buf_t *b, const json_t *slots, bool zh)
{
    for (int i = 0; i < INTAKE_SLOT_N; i++) {
        const json_t *v = json_object_get(slots, intake_slot_name(i));
        if (!json_is_string(v))
            continue;
        llm_buf_printf(b, "- %s%s", intake_label(i, zh), zh ? "：" : ": ");
        intake_say_value(b, i, json_string_value(v), zh);
        llm_buf_puts(b, "\n");
    }
}

const char *intake_effective_liability(const json_t *slots, bool *suggested)
{
    const char *code = json_string_value(json_object_get(slots, "liability"));
    *suggested = false;
    if (code != NULL && intake_liability_share(code) >= 0)
        return code;
    *suggested = true;
    const char *d = json_string_value(json_object_get(slots, "description"));
    if (d == NULL)
        return "equal";
    size_t n = strlen(d);
    static const char *const rear_victim[] = {
        "被追尾",         "被撞",   "被后车", "对方追尾", "rear-ended by", "was rear-ended",
        "got rear-ended", "hit me", "hit my", "被刮",     "被蹭",          NULL};
    static const char *const rear_cause[] = {
        "追尾",         "我撞",         "撞了",           "倒车",     "i hit",
        "i rear-ended", "rear-ended a", "rear-ended the", "i backed", NULL};
    if (llm_rules_has_any(d, n, rear_victim))
        return "none";
    if (llm_rules_has_any(d, n, rear_cause))
        return "full";
    return "equal";
}

void intake_say_liability(llm_buf_t *b, const json_t *slots, const char *fee_liability, bool zh)
{
    bool suggested;
    /* the liability fee.calc was asked with is this same one; fee_liability (its echo) is
     * used only when the slots give none */
    const char *code = intake_effective_liability(slots, &suggested);
    if (suggested && json_object_get(slots, "description") == NULL && fee_liability != NULL &&
        intake_liability_share(fee_liability) >= 0)
        code = fee_liability;
    int share = intake_liability_share(code);
    if (zh) {
        llm_buf_printf(b, "【责任建议】您方%s（事故责任比例 %d%%）。", liability_word(code, true),
                       share);
        if (suggested)
            llm_buf_puts(
                b, "交警或双方尚未认定责任，这是根据您描述的经过给出的初步建议"
                   "（追尾时后车通常负全部责任，被追尾一方通常无责；其他情形先按同等责任估算），"
                   "最终以交警的事故责任认定书为准。\n");
        else
            llm_buf_puts(
                b, "依据是您提供的责任认定结果，最终以交警的事故责任认定书或双方协议为准。\n");
        llm_buf_puts(b,
                     "判断标准：事故责任比例 全责100%、主责70%、同责50%、次责30%、无责0%"
                     "（交管或双方未约定比例时适用）；交强险分项限额：有责时死亡伤残18万元、"
                     "医疗费用1.8万元、财产损失2000元，无责时死亡伤残1.8万元、医疗费用1800元、"
                     "财产损失100元；商业三者险只赔超过交强险分项限额的部分，按责任比例计算。\n");
    } else {
        llm_buf_printf(b, "Liability suggestion: you are %s (liability share %d%%). ",
                       liability_word(code, false), share);
        if (suggested)
            llm_buf_puts(b, "Liability has not been decided by the police or the parties, so this "
                            "is a first suggestion from how you described the accident (in a "
                            "rear-end collision the car behind is usually fully at fault and the "
                            "car hit has no fault; other cases are estimated as equal fault). The "
                            "police accident report decides.\n");
        else
            llm_buf_puts(b, "It follows the liability decision you told me about; the police "
                            "accident report or the parties' agreement decides.\n");
        llm_buf_puts(b,
                     "Criteria: liability shares full 100%, major 70%, equal 50%, minor 30%, "
                     "none 0% (when the police or the parties set no percentage); compulsory "
                     "insurance (交强险) sub-limits with liability: death/disability CNY 180,000, "
                     "medical CNY 18,000, property CNY 2,000; without liability: CNY 18,000, "
                     "CNY 1,800 and CNY 100; the commercial third-party cover pays only above "
                     "each compulsory sub-limit, by the liability share.\n");
    }
}

static double num(const json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* Who pays a line (fee.calc motor "covered_by"). */
static const char *payer(const char *code, bool zh)
{
    static const struct {
        const char *code, *zh, *en;
    } t[] = {
        {"compulsory", "您的交强险", "your compulsory insurance (交强险)"},
        {"third_party", "您的商业三者险", "your third-party liability cover"},
        {"vehicle_damage", "您的车损险", "your own-vehicle damage cover"},
        {"other_party_compulsory", "对方交强险", "the other party's compulsory insurance"},
        {"other_party_third_party", "对方三者险", "the other party's third-party cover"},
    };
    for (size_t i = 0; code != NULL && i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(code, t[i].code) == 0)
            return zh ? t[i].zh : t[i].en;
    }
    return code;
}

void intake_say_estimate(llm_buf_t *b, const json_t *fee, const json_t *slots, bool zh)
{
    llm_buf_puts(b, zh ? "【赔付预估（仅为估算，以查勘定损和核赔结果为准）】\n"
                       : "Payout estimate (an ESTIMATE only; the survey and the claim review "
                         "decide):\n");
    const json_t *lines = json_object_get(fee, "lines");
    size_t i;
    const json_t *l;
    json_array_foreach(lines, i, l)
    {
        if (i >= LLM_LIST_MAX)
            break;
        const char *item = llm_rules_loc(json_object_get(l, "item_name"), zh, NULL);
        if (item == NULL)
            item = llm_rules_loc(json_object_get(l, "item"), zh, NULL);
        const char *by = payer(json_string_value(json_object_get(l, "covered_by")), zh);
        const char *clause = json_string_value(json_object_get(l, "clause"));
        llm_buf_puts(b, "- ");
        if (item != NULL)
            llm_buf_append_clip(b, item, strlen(item), LLM_FIELD_MAX);
        llm_buf_puts(b, zh ? "：损失 " : ": loss ");
        llm_rules_money(b, num(json_object_get(l, "amount")), zh);
        llm_buf_puts(b, zh ? "，" : ", ");
        if (by != NULL)
            llm_buf_append_clip(b, by, strlen(by), LLM_FIELD_MAX);
        llm_buf_puts(b, zh ? "预估赔付 " : " pays ");
        llm_rules_money(b, num(json_object_get(l, "payable")), zh);
        if (clause != NULL) { /* clipped on a UTF-8 boundary, never mid-character */
            llm_buf_puts(b, zh ? "（条款 " : " (clause ");
            llm_buf_append_clip(b, clause, strlen(clause), 16);
            llm_buf_puts(b, zh ? "）" : ")");
        }
        const char *rule = json_string_value(json_object_get(l, zh ? "rule_zh" : "rule"));
        if (rule == NULL)
            rule = llm_rules_loc(json_object_get(l, "rule"), zh, NULL);
        if (rule != NULL) {
            llm_buf_puts(b, zh ? "：" : ": ");
            llm_buf_append_clip(b, rule, strlen(rule), LLM_FIELD_MAX);
        }
        llm_buf_puts(b, "\n");
    }
    llm_buf_puts(b, zh ? "您的保单预估赔付合计：" : "Estimated total under your policy: ");
    llm_rules_money(b, num(json_object_get(fee, "total_payable")), zh);
    const json_t *other = json_object_get(fee, "total_other_party");
    if (json_is_number(other)) {
        llm_buf_puts(b, zh ? "；对方保险公司预估赔付："
                           : "; estimated from the other party's insurer: ");
        llm_rules_money(b, num(other), zh);
    }
    llm_buf_puts(b, zh ? "（均为估算）。\n" : " (estimates).\n");
    const json_t *own = json_object_get(slots, "damage_amount");
    const json_t *tp = json_object_get(slots, "third_party_damage_amount");
    if ((json_is_string(own) && strcmp(json_string_value(own), "unknown") == 0) ||
        (json_is_string(tp) && strcmp(json_string_value(tp), "unknown") == 0))
        llm_buf_puts(b, zh ? "金额不清楚的项目暂按 0 元估算，定损后会更新。\n"
                           : "Amounts you did not know yet are counted as 0 here; the survey will "
                             "update them.\n");
}
