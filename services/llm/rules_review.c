/*
 * rules_review.c - the health_review digital worker of the rules backend
 * (健康险理赔审核): which step of the review a call is at.
 *
 * A call's messages end with the customer's message and this turn's tool
 * calls and results. The step follows from what this turn already did:
 *   step 1 (nothing yet): read the claim = the state's slots (facts of earlier
 *     messages; without slots, the earlier user messages since the last
 *     review) merged with this message. Essentials missing or input problems
 *     -> state.update {slots} when the message added facts, then ask for what
 *     is missing. Complete -> policy.lookup + medical.lookup (every item) +
 *     state.update {slots}, in parallel.
 *   step 2 (policy and catalogue results in): decide every line
 *     (rules_review_decide.c); payable lines -> fee.calc (health mode).
 *   step 3 (settled, or nothing to settle): state.update {records: {decision},
 *     handoff: {reason} when a line is pending}.
 *   step 4: the answer (rules_review_answer.c).
 * A message that adds nothing to a decided claim gets the decision again.
 * Repeated failure to understand: while the claim is incomplete, a message
 * from which no claim field could be read is a miss, counted by the step-1
 * state.update (records.misunderstood, llm_rules_misses_note) before asking
 * again; the LLM_RULES_MISSES_MAX-th in a row also sets handoff
 * {reason: "not_understood: ..."} and step 2 says a colleague takes over. A
 * message with a field resets the count (folded into the slots update).
 * The claim of later steps is the one recorded with this turn's state.update
 * (its arguments), so merging a message twice cannot duplicate its lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "rules_review.h"

/* Marks of a review answer in the history (the first words of review_answer; lower
 * case: llm_rules_find folds ASCII case). */
#define ANSWER_MARK_ZH "【健康险理赔审核】"
#define ANSWER_MARK_EN "health claim review - policy"

#define REVIEW_MISSES_KEY     "misunderstood"  /* records key of llm_rules_misses_note */
#define REVIEW_NOT_UNDERSTOOD "not_understood" /* its handoff reason's code (14 bytes) */

typedef struct {
    const llm_call_t *call;
    bool zh;
    long q; /* the customer's message of this turn, -1 when none */
    const llm_message_t *pol, *med, *fee;
    json_t *slots_args;  /* owned: slots of this turn's first state.update, or NULL */
    bool decision_done;  /* this turn's state.update carried records.decision */
    bool slots_recorded; /* this turn's state.update carried slots */
    bool miss_noted;     /* this turn's state.update carried records.misunderstood */
    bool miss_handoff;   /* ... and the handoff of the third miss in a row */
} turn_t;

static bool offered(const llm_call_t *call, const char *name)
{
    for (size_t i = 0; i < call->n_tools; i++) {
        if (strcmp(call->tools[i].name, name) == 0)
            return true;
    }
    return false;
}

/* A call's arguments as an object: a map, or JSON text (OpenAI style). New reference. */
static json_t *call_args(const json_t *c)
{
    const json_t *a = json_object_get(c, "arguments");
    if (json_is_object(a))
        return json_incref((json_t *)a);
    if (json_is_string(a)) {
        json_t *o = json_loadb(json_string_value(a), json_string_length(a), 0, NULL);
        if (json_is_object(o))
            return o;
        json_decref(o);
    }
    return NULL;
}

static void turn_read(const llm_call_t *call, turn_t *t)
{
    memset(t, 0, sizeof(*t));
    t->call = call;
    t->zh = strcmp(call->lang, "zh") == 0;
    t->q = -1;
    for (size_t i = call->n_messages; i > 0; i--) {
        if (call->messages[i - 1].role == LLM_ROLE_USER) {
            t->q = (long)(i - 1);
            break;
        }
    }
    for (size_t i = (size_t)(t->q + 1); i < call->n_messages; i++) {
        const llm_message_t *m = &call->messages[i];
        if (m->role == LLM_ROLE_TOOL && m->name != NULL) {
            if (strcmp(m->name, REVIEW_TOOL_POLICY) == 0)
                t->pol = m;
            else if (strcmp(m->name, REVIEW_TOOL_MED) == 0)
                t->med = m;
            else if (strcmp(m->name, REVIEW_TOOL_FEE) == 0)
                t->fee = m;
            continue;
        }
        if (m->role != LLM_ROLE_ASSISTANT || m->tool_calls == NULL)
            continue;
        size_t k;
        const json_t *c;
        json_array_foreach(m->tool_calls, k, c)
        {
            const json_t *name = json_object_get(c, "name");
            if (!json_is_string(name) || strcmp(json_string_value(name), REVIEW_TOOL_STATE) != 0)
                continue;
            json_t *args = call_args(c);
            if (args == NULL)
                continue;
            const json_t *records = json_object_get(args, "records");
            if (json_object_get(records, "decision") != NULL)
                t->decision_done = true;
            if (json_object_get(records, REVIEW_MISSES_KEY) != NULL)
                t->miss_noted = true;
            const char *reason =
                json_string_value(json_object_get(json_object_get(args, "handoff"), "reason"));
            if (reason != NULL && strncmp(reason, REVIEW_NOT_UNDERSTOOD, 14) == 0)
                t->miss_handoff = true;
            const json_t *slots = json_object_get(args, "slots");
            if (json_is_object(slots) && t->slots_args == NULL) {
                t->slots_args = json_incref((json_t *)slots);
                t->slots_recorded = true;
            }
            json_decref(args);
        }
    }
}

static void turn_clear(turn_t *t)
{
    json_decref(t->slots_args);
    t->slots_args = NULL;
}

/*
 * A tool message's outcome. The router stores the result (ok) or the error
 * object with the message's ok flag; a whole {ok, result|error} is accepted
 * too. Returns the parsed root (caller decrefs; NULL when not JSON) and the
 * payload borrowed from it.
 */
static json_t *tool_outcome(const llm_message_t *m, const json_t **payload, bool *ok)
{
    *payload = NULL;
    *ok = false;
    json_t *root = json_loadb(m->text, m->text_len, 0, NULL);
    if (!json_is_object(root))
        return root;
    const json_t *okv = json_object_get(root, "ok");
    if (json_is_boolean(okv)) {
        *ok = json_is_true(okv);
        *payload = json_object_get(root, *ok ? "result" : "error");
    } else {
        *ok = m->ok;
        *payload = root;
    }
    return root;
}

static const char *error_code(const json_t *err)
{
    const json_t *c = json_object_get(err, "code");
    return json_is_string(c) ? json_string_value(c) : "";
}

/* ---- the claim ---- */

static bool is_review_answer(const llm_message_t *m)
{
    return m->role == LLM_ROLE_ASSISTANT &&
           (llm_rules_find(m->text, m->text_len, ANSWER_MARK_ZH) >= 0 ||
            llm_rules_find(m->text, m->text_len, ANSWER_MARK_EN) >= 0);
}

/*
 * The claim as it stood before this turn's message: the state's slots, or
 * (no slots: a router that does not pass state) the user messages since the
 * last review answer. *decided: a decision exists for it.
 */
static void claim_before(const turn_t *t, review_claim_t *base, bool *decided)
{
    const llm_call_t *call = t->call;
    const json_t *slots = json_object_get(call->state, "slots");
    const json_t *records = json_object_get(call->state, "records");
    review_claim_init(base);
    *decided = json_is_object(json_object_get(records, "decision"));
    if (review_slots_have_claim(slots)) {
        review_claim_from_slots(slots, base);
        return;
    }
    size_t from = 0;
    for (size_t i = (size_t)(t->q > 0 ? t->q : 0); i > 0; i--) {
        if (is_review_answer(&call->messages[i - 1])) {
            from = i;
            *decided = true;
            break;
        }
    }
    if (t->q <= (long)from)
        return;
    review_claim_t *msg = malloc(sizeof(*msg));
    if (msg == NULL)
        return; /* out of memory: the claim is read from this message alone */
    for (size_t i = from; i < (size_t)t->q; i++) {
        const llm_message_t *m = &call->messages[i];
        if (m->role != LLM_ROLE_USER)
            continue;
        review_claim_init(msg);
        review_parse_message(m->text, m->text_len, t->zh, msg);
        review_claim_merge(base, msg, false);
    }
    free(msg);
    base->problems[0] = '\0';
}

/* This turn's message parsed (its problems are what the customer is told about). */
static void claim_message(const turn_t *t, review_claim_t *msg)
{
    review_claim_init(msg);
    if (t->q >= 0) {
        const llm_message_t *m = &t->call->messages[t->q];
        review_parse_message(m->text, m->text_len, t->zh, msg);
    }
}

/* ---- answers without a review ---- */

static void missing_list(llm_buf_t *b, unsigned miss, bool zh)
{
    static const struct {
        unsigned bit;
        const char *zh, *en;
    } names[] = {
        {REVIEW_MISS_POLICY, "保单号", "the policy number"},
        {REVIEW_MISS_DIAGNOSIS, "诊断", "the diagnosis"},
        {REVIEW_MISS_HOSPITAL, "就诊医院", "the hospital"},
        {REVIEW_MISS_ADMISSION, "入院日期", "the admission date"},
        {REVIEW_MISS_DISCHARGE, "出院日期", "the discharge date"},
        {REVIEW_MISS_SOCIAL, "是否使用社保结算", "whether social medical insurance was used"},
        {REVIEW_MISS_LINES, "费用明细（项目、类别、金额、社保支付金额）",
         "the itemised bill (item, category, amount, amount paid by social insurance)"},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(miss & names[i].bit))
            continue;
        if (n++ > 0)
            llm_buf_puts(b, zh ? "、" : ", ");
        llm_buf_puts(b, zh ? names[i].zh : names[i].en);
    }
}

/* Bytes of a customer-given diagnosis or hospital name quoted back, and of a clause id. */
#define REVIEW_FACT_CLIP   60
#define REVIEW_CLAUSE_CLIP 16

static void known_facts(llm_buf_t *b, const review_claim_t *c, bool zh)
{
    size_t n = 0;
#define FACT(cond, ...)                                                                            \
    do {                                                                                           \
        if (cond) {                                                                                \
            llm_buf_puts(b, n++ ? (zh ? "，" : ", ") : "");                                        \
            llm_buf_printf(b, __VA_ARGS__);                                                        \
        }                                                                                          \
    } while (0)
    FACT(c->policy_no[0], zh ? "保单号 %s" : "policy %s", c->policy_no);
    /* Customer text: clipped on a UTF-8 boundary (printf's %.60s would cut a
     * character in half and the answer must be valid UTF-8). */
    FACT(c->diagnosis[0], "%s", zh ? "诊断 " : "diagnosis ");
    if (c->diagnosis[0])
        llm_buf_append_clip(b, c->diagnosis, strlen(c->diagnosis), REVIEW_FACT_CLIP);
    FACT(c->hospital[0], "%s", zh ? "医院 " : "hospital ");
    if (c->hospital[0])
        llm_buf_append_clip(b, c->hospital, strlen(c->hospital), REVIEW_FACT_CLIP);
    FACT(c->admission[0], zh ? "入院 %s" : "admitted %s", c->admission);
    FACT(c->discharge[0], zh ? "出院 %s" : "discharged %s", c->discharge);
    FACT(c->social_used != REVIEW_UNKNOWN, "%s",
         c->social_used == REVIEW_YES ? (zh ? "已使用社保" : "social insurance used")
                                      : (zh ? "未使用社保" : "social insurance not used"));
    FACT(c->n_lines > 0, zh ? "费用明细 %zu 项" : "%zu bill lines", c->n_lines);
#undef FACT
}

static int ask(const turn_t *t, const review_claim_t *c, const char *problems, llm_rules_out_t *out)
{
    bool zh = t->zh;
    llm_buf_t *b = &out->text;
    out->type = LLM_RESULT_TEXT;
    unsigned miss = review_claim_missing(c);
    if (review_claim_empty(c)) {
        llm_buf_puts(b, zh ? "您好，我是健康险理赔审核助手。请提供理赔资料："
                           : "Hello, I review "
                             "health insurance "
                             "claims. Please send "
                             "the claim: ");
    } else {
        llm_buf_puts(b, zh ? "已记录：" : "Noted: ");
        known_facts(b, c, zh);
        llm_buf_puts(b, zh ? "。" : ". ");
        if (miss)
            llm_buf_puts(b, zh ? "为完成审核，还需要：" : "To finish the review I still need ");
    }
    if (miss) {
        missing_list(b, miss, zh);
        llm_buf_puts(b, zh ? "。" : ". ");
    }
    if (problems != NULL && problems[0]) {
        llm_buf_puts(b, zh ? "请检查：" : "Please check: ");
        llm_buf_append_clip(b, problems, strlen(problems), REVIEW_PROBLEMS_MAX);
        llm_buf_puts(b, "\n");
    }
    llm_buf_puts(
        b, zh ? "\n可以一次发送，例如：保单号 P10023，诊断：急性胆囊炎，医院：上海市第一人民医院，"
                "入院 2026-05-10，出院 2026-05-14，是否使用社保：是。费用明细：1. "
                "唾液酸酶测定 化验费 120 元 社保支付 0；2. 床位费 床位费 600 元 社保支付 "
                "300。也可以发送 JSON 格式（字段见说明文档）。"
              : "\nYou can send it in one message, e.g.: Policy P10023, diagnosis: acute "
                "cholecystitis, hospital: Shanghai First People's Hospital, admitted "
                "2026-05-10, discharged 2026-05-14, social insurance used: yes. Bill: 1. "
                "Sialidase test, lab, 120 CNY, social insurance paid 0; 2. Bed fee, bed, "
                "600 CNY, social insurance paid 300. A JSON body works too (fields in the "
                "documentation).");
    return llm_buf_error(b);
}

static int recap(const turn_t *t, const json_t *decision, llm_rules_out_t *out)
{
    bool zh = t->zh;
    llm_buf_t *b = &out->text;
    out->type = LLM_RESULT_TEXT;
    const json_t *pno = json_object_get(decision, "policy_no");
    const json_t *st = json_object_get(decision, "status");
    int64_t total = review_json_fen(json_object_get(decision, "total"));
    llm_buf_printf(b,
                   zh ? "保单 %s 本次理赔的初审结论已给出："
                      : "The first review of the claim "
                        "under policy %s is done: ",
                   json_is_string(pno) ? json_string_value(pno) : "?");
    const char *s = json_is_string(st) ? json_string_value(st) : "";
    llm_buf_puts(b, strcmp(s, "approved") == 0  ? (zh ? "全部赔付" : "approved in full")
                    : strcmp(s, "partial") == 0 ? (zh ? "部分赔付" : "partially approved")
                    : strcmp(s, "refused") == 0
                        ? (zh ? "拒赔" : "refused")
                        : (zh ? "部分项目待人工审核" : "pending human review"));
    llm_buf_puts(b, zh ? "，应付合计 " : ", total payable ");
    if (!zh)
        llm_buf_puts(b, "CNY ");
    review_fen(b, total >= 0 ? total : 0);
    llm_buf_puts(b, zh ? "元" : "");
    if (total == 0 && (strcmp(s, "approved") == 0 || strcmp(s, "partial") == 0))
        llm_buf_puts(b, zh ? "（可赔付的费用已全部计入年免赔额）"
                           : " (the covered costs all went "
                             "to the annual deductible)");
    llm_buf_puts(b, zh ? "。" : ". ");
    size_t i, n = 0;
    const json_t *ln;
    json_array_foreach(json_object_get(decision, "lines"), i, ln)
    {
        const json_t *d = json_object_get(ln, "decision");
        const json_t *item = json_object_get(ln, "item");
        const json_t *clause = json_object_get(ln, "clause");
        if (!json_is_string(d) || strcmp(json_string_value(d), "refused") != 0 ||
            !json_is_string(item))
            continue;
        llm_buf_puts(b, n++ == 0 ? (zh ? "拒赔项目：" : "Refused: ") : (zh ? "；" : "; "));
        llm_buf_append_clip(b, json_string_value(item), json_string_length(item), 60);
        if (json_is_string(clause)) {
            llm_buf_puts(b, zh ? "（条款 " : " (clause ");
            llm_buf_append_clip(b, json_string_value(clause), json_string_length(clause),
                                REVIEW_CLAUSE_CLIP);
            llm_buf_puts(b, zh ? "）" : ")");
        }
    }
    if (n > 0)
        llm_buf_puts(b, zh ? "。" : ". ");
    llm_buf_puts(b, zh ? "如需审核新的理赔，请发送新的住院信息和费用明细。以上为初审结果，最终以保"
                         "险公司审核为准。"
                       : "To review another claim, send its hospital stay and itemised bill. This "
                         "is a first review, to be confirmed by the insurer's final review.");
    return llm_buf_error(b);
}

static int policy_error(const turn_t *t, const review_claim_t *c, const json_t *err,
                        llm_rules_out_t *out)
{
    bool zh = t->zh;
    out->type = LLM_RESULT_TEXT;
    const char *code = error_code(err);
    if (strcmp(code, "not_found") == 0)
        llm_buf_printf(&out->text,
                       zh ? "抱歉，没有找到保单 %s，请核对保单号后重新发送（其他理赔资料已记录）。"
                          : "Sorry, I could not find policy %s. Please check the policy number and "
                            "send it again (the rest of the claim is noted).",
                       c->policy_no);
    else
        llm_buf_printf(
            &out->text,
            zh ? "抱歉，暂时无法查询保单 %s，请稍后再试。"
               : "Sorry, I could not look up policy %s just now. Please try again later.",
            c->policy_no);
    return llm_buf_error(&out->text);
}

static int not_medical(const turn_t *t, const review_claim_t *c, llm_rules_out_t *out)
{
    out->type = LLM_RESULT_TEXT;
    llm_buf_printf(&out->text,
                   t->zh ? "保单 %s 不是医疗保险（百万医疗）保单，医疗费用理赔审核不适用；"
                           "如需报案或咨询保单，请说明您的需求。"
                         : "Policy %s is not a medical (million medical) policy, so a medical bill "
                           "review does not apply. Tell me if you want to report a claim or ask "
                           "about the policy.",
                   c->policy_no);
    return llm_buf_error(&out->text);
}

/* ---- tool calls ---- */

/*
 * The step-1 state.update: the claim's slots (c, NULL for none) and the miss
 * count (understood: the message gave at least one claim field). Nothing is
 * called when there is nothing to record; *emitted tells.
 */
static int emit_state(const llm_call_t *call, const review_claim_t *c, bool understood,
                      llm_rules_out_t *out, bool *emitted)
{
    *emitted = false;
    json_t *args = json_object();
    if (args == NULL)
        return MESH_ENOMEM;
    if (c != NULL) {
        json_t *slots = review_claim_to_slots(c);
        if (slots == NULL || json_object_set_new(args, "slots", slots) != 0) {
            json_decref(args);
            return MESH_ENOMEM;
        }
    }
    int rc =
        llm_rules_misses_note(call, understood,
                              strcmp(call->lang, "zh") == 0
                                  ? "连续 3 条消息中没有可以读取的理赔资料"
                                  : "3 messages in a row without any claim details I could read",
                              args);
    if (rc < 0 || json_object_size(args) == 0) {
        json_decref(args);
        return rc < 0 ? rc : 0;
    }
    *emitted = true;
    return llm_rules_add_call(call, out, REVIEW_TOOL_STATE, args);
}

/* After the state.update of the third miss in a row: a colleague takes over. */
static int say_handoff(const turn_t *t, llm_rules_out_t *out)
{
    out->type = LLM_RESULT_TEXT;
    llm_buf_puts(&out->text,
                 t->zh ? "抱歉，我没能从您的消息中读到理赔资料。我已请人工同事接手，同事会尽快在"
                         "这里回复您；您已提供的信息都已保存。"
                       : "Sorry, I could not read any claim details from your messages. I have "
                         "asked a colleague to take over; they will answer you here shortly, and "
                         "what you sent is saved.");
    return llm_buf_error(&out->text);
}

static int emit_lookups(const turn_t *t, const review_claim_t *c, bool changed, bool understood,
                        llm_rules_out_t *out)
{
    const llm_call_t *call = t->call;
    int rc = llm_rules_add_call(call, out, REVIEW_TOOL_POLICY,
                                json_pack("{s:s}", "policy_no", c->policy_no));
    if (rc == 0 && offered(call, REVIEW_TOOL_MED)) {
        json_t *items = json_array();
        for (size_t i = 0; items != NULL && i < c->n_lines; i++) {
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++)
                seen = strcmp(c->lines[k].item, c->lines[i].item) == 0;
            if (!seen && json_array_append_new(items, json_string(c->lines[i].item)) != 0) {
                json_decref(items);
                items = NULL;
            }
        }
        rc = llm_rules_add_call(call, out, REVIEW_TOOL_MED,
                                items ? json_pack("{s:o}", "items", items) : NULL);
    }
    /* the slots when they changed, and the reset of the miss count when this message was
     * read; a message read as nothing is no miss here: the claim is complete */
    if (rc == 0 && (changed || understood) && !t->miss_noted && offered(call, REVIEW_TOOL_STATE)) {
        bool emitted;
        rc = emit_state(call, changed ? c : NULL, true, out, &emitted);
    }
    return rc;
}

static int emit_fee(const turn_t *t, const review_claim_t *c, const review_line_decision_t *d,
                    llm_rules_out_t *out)
{
    json_t *lines = json_array();
    if (lines == NULL)
        return MESH_ENOMEM;
    for (size_t i = 0; i < c->n_lines; i++) {
        if (d[i].verdict != REVIEW_PAYABLE)
            continue;
        const review_line_t *ln = &c->lines[i];
        json_t *o =
            json_pack("{s:s, s:f, s:f}", "item", ln->item, "amount", (double)ln->amount_fen / 100.0,
                      "social_paid", (double)ln->social_fen / 100.0);
        if (o != NULL && ln->category[0])
            json_object_set_new(o, "category", json_string(ln->category));
        if (o == NULL || json_array_append_new(lines, o) != 0) {
            json_decref(lines);
            return MESH_ENOMEM;
        }
    }
    return llm_rules_add_call(t->call, out, REVIEW_TOOL_FEE,
                              json_pack("{s:s, s:b, s:o}", "policy_no", c->policy_no,
                                        "social_insurance_used", c->social_used == REVIEW_YES,
                                        "lines", lines));
}

static int emit_decision(const turn_t *t, const review_result_t *r, llm_rules_out_t *out)
{
    json_t *rec = review_decision_record(r);
    if (rec == NULL)
        return MESH_ENOMEM;
    json_t *args = json_pack("{s:{s:o}}", "records", "decision", rec);
    if (args == NULL)
        return MESH_ENOMEM;
    char reason[REVIEW_REASON_MAX + 1];
    review_handoff_reason(r, reason, sizeof(reason));
    if (reason[0] &&
        json_object_set_new(args, "handoff", json_pack("{s:s}", "reason", reason)) != 0) {
        json_decref(args);
        return MESH_ENOMEM;
    }
    return llm_rules_add_call(t->call, out, REVIEW_TOOL_STATE, args);
}

/* ---- steps ---- */

/* Steps 2..4: the policy and catalogue results are in. */
static int review(const turn_t *t, const review_claim_t *c, llm_rules_out_t *out)
{
    int rc = 0;
    const json_t *policy, *med = NULL, *fee = NULL;
    bool pol_ok, med_ok = false, fee_ok = false;
    json_t *pol_root = tool_outcome(t->pol, &policy, &pol_ok);
    json_t *med_root = NULL, *fee_root = NULL;
    review_line_decision_t *d = calloc(REVIEW_LINES_MAX, sizeof(*d));
    if (d == NULL) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    if (!pol_ok || !json_is_object(policy)) {
        rc = policy_error(t, c, policy, out);
        goto cleanup;
    }
    review_policy_t pol;
    review_policy_read(policy, c, &pol);
    if (!pol.medical) {
        rc = not_medical(t, c, out);
        goto cleanup;
    }
    if (t->med != NULL)
        med_root = tool_outcome(t->med, &med, &med_ok);
    review_decide(c, &pol, med_ok ? json_object_get(med, "items") : NULL, d);

    bool any_payable = false;
    for (size_t i = 0; i < c->n_lines; i++)
        any_payable |= d[i].verdict == REVIEW_PAYABLE;
    if (any_payable) {
        if (t->fee == NULL && offered(t->call, REVIEW_TOOL_FEE) && !t->decision_done) {
            rc = emit_fee(t, c, d, out);
            goto cleanup;
        }
        if (t->fee != NULL)
            fee_root = tool_outcome(t->fee, &fee, &fee_ok);
        review_settle(c, fee, fee_ok && json_is_object(fee), d);
    }
    review_result_t r = {.zh = t->zh,
                         .claim = c,
                         .pol = &pol,
                         .d = d,
                         .fee = fee_ok && json_is_object(fee) ? fee : NULL};
    if (!t->decision_done && offered(t->call, REVIEW_TOOL_STATE)) {
        rc = emit_decision(t, &r, out);
        goto cleanup;
    }
    out->type = LLM_RESULT_TEXT;
    rc = review_answer(&r, &out->text);

cleanup:
    free(d);
    json_decref(pol_root);
    json_decref(med_root);
    json_decref(fee_root);
    return rc;
}

int llm_rules_health_review(const llm_call_t *call, llm_rules_out_t *out)
{
    turn_t t;
    turn_read(call, &t);
    int rc;
    review_claim_t *base = malloc(sizeof(*base));
    review_claim_t *msg = malloc(sizeof(*msg));
    review_claim_t *claim = malloc(sizeof(*claim));
    if (base == NULL || msg == NULL || claim == NULL) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    bool decided = false;
    claim_before(&t, base, &decided);
    claim_message(&t, msg);
    if (t.slots_args != NULL) {
        /* Later step: the claim is what this turn recorded. */
        review_claim_init(claim);
        review_claim_from_slots(t.slots_args, claim);
    } else {
        *claim = *base;
        review_claim_merge(claim, msg, decided);
    }
    memcpy(claim->problems, msg->problems, sizeof(claim->problems));
    bool changed = !review_claim_same(claim, base);

    /* no claim field could be read from this turn's message: a miss (llm_rules_misses_note) */
    bool understood = !review_claim_empty(msg) || msg->problems[0] != '\0';

    if (t.pol != NULL) {
        rc = review(&t, claim, out);
        goto cleanup;
    }
    if (t.miss_handoff) {
        rc = say_handoff(&t, out);
        goto cleanup;
    }
    if (review_claim_missing(claim) != 0 || claim->problems[0] != '\0') {
        bool emitted = false;
        rc = 0;
        if (t.q >= 0 && !t.slots_recorded && !t.miss_noted && offered(call, REVIEW_TOOL_STATE))
            rc = emit_state(call, changed ? claim : NULL, understood, out, &emitted);
        if (rc == 0 && !emitted)
            rc = ask(&t, claim, claim->problems, out);
        goto cleanup;
    }
    const json_t *decision = json_object_get(json_object_get(call->state, "records"), "decision");
    if (!changed && json_is_object(decision) && !t.slots_recorded) {
        rc = recap(&t, decision, out);
        goto cleanup;
    }
    if (!offered(call, REVIEW_TOOL_POLICY)) {
        out->type = LLM_RESULT_TEXT;
        llm_buf_puts(&out->text, t.zh ? "抱歉，暂时无法查询保单，无法完成审核，请联系人工客服。"
                                      : "Sorry, I cannot look up the policy right now, so I cannot "
                                        "review the claim. Please ask for a human agent.");
        rc = llm_buf_error(&out->text);
        goto cleanup;
    }
    rc = emit_lookups(&t, claim, changed && !t.slots_recorded, understood, out);

cleanup:
    free(base);
    free(msg);
    free(claim);
    turn_clear(&t);
    return rc;
}
