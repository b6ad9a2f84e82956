/*
 * rules_intake.c - the claims_intake digital worker of the rules backend
 * (车险报案/查勘, first notice of loss). A pure function of the call: the
 * messages and call->state.
 *
 * A normal turn is two steps:
 *  1. the customer's message: extract every slot it mentions
 *     (rules_intake_extract.c), decide the next action and record it with one
 *     state.update {slots: <changed>, mode, records: {intake_asked,
 *     intake_batch}, handoff?};
 *  2. the state.update result: say it from the state (what was recorded,
 *     the next question / the batch list / the summary / the handoff).
 * The confirming turn (mode "confirm" or "done", everything collected, the
 * customer says yes) is three steps: claim.register + fee.calc in parallel;
 * state.update {mode: "done", records: {claim_no ...}}; the answer (claim
 * number, liability suggestion with criteria, payout estimate).
 *
 * Repeated failure to understand: a customer message that fills no slot and
 * carries no intent (before the claim is registered) is a miss, counted in
 * records.misunderstood by the step-1 state.update (llm_rules_misses_note);
 * the question is asked again. The LLM_RULES_MISSES_MAX-th miss in a row
 * adds handoff {reason: "not_understood: ..."} to that state.update and step 2
 * says a colleague takes over. A usable message resets the count.
 *
 * Modes (state "mode"): "" ask one question at a time; "batch" every missing
 * item in one numbered message, the next reply parsed as a whole; "confirm"
 * the summary was read back; "done" the claim is registered.
 * records.intake_asked: the slot the last question asked for (so a bare
 * answer like "来了" fills it); records.intake_batch: the batch list's slots
 * in order (so "1. ... 2. ..." maps to slots).
 *
 * The engine also merges the state.update arguments of the current turn into
 * its view of the state, so it does not depend on the router having done so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_json.h"
#include "rules.h"
#include "rules_intake.h"

#define TOOL_STATE     "state.update"
#define TOOL_REGISTER  "claim.register"
#define TOOL_FEE       "fee.calc"
#define MODE_BATCH     "batch"
#define MODE_CONFIRM   "confirm"
#define MODE_DONE      "done"
#define ASKED_FIX      "correction" /* intake_asked after "不对" with nothing new */
#define BATCH_LIST_MAX 512          /* records.intake_batch bytes */

/* The engine's view of the conversation state. */
typedef struct {
    json_t *slots;   /* owned */
    json_t *records; /* owned */
    char mode[16];
    bool handoff;
    char reason[160];
} view_t;

static bool is_zh(const llm_call_t *call)
{
    return strcmp(call->lang, "en") != 0;
}

/* Index of the last user message, or -1. */
static long last_user(const llm_call_t *call)
{
    for (size_t i = call->n_messages; i > 0; i--) {
        if (call->messages[i - 1].role == LLM_ROLE_USER)
            return (long)(i - 1);
    }
    return -1;
}

/* The arguments of an assistant tool call: an object or JSON text. New reference or NULL. */
static json_t *call_args(const json_t *c)
{
    const json_t *a = json_object_get(c, "arguments");
    if (json_is_object(a))
        return json_incref((json_t *)a);
    if (json_is_string(a)) {
        json_t *p = mesh_json_parse(json_string_value(a), json_string_length(a));
        if (json_is_object(p))
            return p;
        json_decref(p);
    }
    return NULL;
}

static void merge_obj(json_t *dst, const json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v)
    {
        if (json_is_null(v))
            json_object_del(dst, k);
        else
            json_object_set(dst, k, v);
    }
}

static void view_apply(view_t *v, const json_t *args)
{
    const json_t *s = json_object_get(args, "slots");
    if (json_is_object(s))
        merge_obj(v->slots, s);
    const json_t *r = json_object_get(args, "records");
    if (json_is_object(r))
        merge_obj(v->records, r);
    const json_t *m = json_object_get(args, "mode");
    if (json_is_string(m))
        snprintf(v->mode, sizeof(v->mode), "%s", json_string_value(m));
    const json_t *h = json_object_get(args, "handoff");
    if (json_is_object(h)) {
        v->handoff = true;
        const char *r2 = json_string_value(json_object_get(h, "reason"));
        snprintf(v->reason, sizeof(v->reason), "%s", r2 ? r2 : "");
    }
}

static void view_free(view_t *v)
{
    json_decref(v->slots);
    json_decref(v->records);
    memset(v, 0, sizeof(*v));
}

/* The state plus the state.update calls made after message index from. */
static int view_build(const llm_call_t *call, long from, view_t *v)
{
    memset(v, 0, sizeof(*v));
    const json_t *st = call->state;
    const json_t *s = json_object_get(st, "slots");
    const json_t *r = json_object_get(st, "records");
    v->slots = json_is_object(s) ? json_deep_copy(s) : json_object();
    v->records = json_is_object(r) ? json_deep_copy(r) : json_object();
    if (v->slots == NULL || v->records == NULL) {
        view_free(v);
        return MESH_ENOMEM;
    }
    const char *m = json_string_value(json_object_get(st, "mode"));
    snprintf(v->mode, sizeof(v->mode), "%s", m ? m : "");
    const char *h = json_string_value(json_object_get(st, "handoff"));
    v->handoff = h != NULL && (strcmp(h, "pending") == 0 || strcmp(h, "human") == 0);
    const char *hr = json_string_value(json_object_get(st, "handoff_reason"));
    snprintf(v->reason, sizeof(v->reason), "%s", hr ? hr : "");
    for (size_t i = from < 0 ? 0 : (size_t)from; i < call->n_messages; i++) {
        size_t k;
        const json_t *c;
        json_array_foreach(call->messages[i].tool_calls, k, c)
        {
            const char *name = json_string_value(json_object_get(c, "name"));
            if (name == NULL || strcmp(name, TOOL_STATE) != 0)
                continue;
            json_t *a = call_args(c);
            if (a != NULL)
                view_apply(v, a);
            json_decref(a);
        }
    }
    return 0;
}

static const char *slot_str(const json_t *slots, int slot)
{
    return json_string_value(json_object_get(slots, intake_slot_name(slot)));
}

static bool required(const json_t *slots, int slot)
{
    if (slot != INTAKE_TP_AMOUNT)
        return true;
    bool suggested;
    return strcmp(intake_effective_liability(slots, &suggested), "none") != 0;
}

/* Slots whose topic the customer just talked about come first ("对方..." -> plates). */
typedef struct {
    const char *const *cues;
    int slots[3];
} topic_t;

static const char *const s_cue_other[] = {"对方",      "对面",      "另一辆",       "他的车",
                                          "别人的车",  "other car", "other driver", "other vehicle",
                                          "their car", NULL};
static const char *const s_cue_police[] = {"交警", "警察", "报警", "police", NULL};
static const char *const s_cue_repair[] = {"修", "4s", "repair", "garage", NULL};
static const char *const s_cue_phone[] = {"电话", "手机", "phone", "call me", NULL};
static const char *const s_cue_policy[] = {"保单", "policy", NULL};

static const topic_t s_topics[] = {
    {s_cue_other, {INTAKE_PLATES, INTAKE_TP_AMOUNT, INTAKE_NONE}},
    {s_cue_police, {INTAKE_POLICE, INTAKE_LIABILITY, INTAKE_NONE}},
    {s_cue_repair, {INTAKE_DAMAGE, INTAKE_DAMAGE_AMOUNT, INTAKE_NONE}},
    {s_cue_phone, {INTAKE_CONTACT, INTAKE_NONE, INTAKE_NONE}},
    {s_cue_policy, {INTAKE_POLICY_NO, INTAKE_NONE, INTAKE_NONE}},
};

/* Missing required slots, in the order to ask them; returns how many. */
static size_t missing_slots(const json_t *slots, const char *text, size_t len,
                            int out[INTAKE_SLOT_N])
{
    size_t n = 0;
    bool taken[INTAKE_SLOT_N] = {false};
    for (size_t t = 0; text != NULL && t < sizeof(s_topics) / sizeof(s_topics[0]); t++) {
        if (!llm_rules_has_any(text, len, s_topics[t].cues))
            continue;
        for (int k = 0; k < 3 && s_topics[t].slots[k] != INTAKE_NONE; k++) {
            int s = s_topics[t].slots[k];
            if (!taken[s] && slot_str(slots, s) == NULL && required(slots, s)) {
                out[n++] = s;
                taken[s] = true;
            }
        }
    }
    for (int s = 0; s < INTAKE_SLOT_N; s++) {
        if (!taken[s] && slot_str(slots, s) == NULL && required(slots, s)) {
            out[n++] = s;
            taken[s] = true;
        }
    }
    return n;
}

/* Merge found into slots; changed gets the slots whose value differs. */
static int merge_found(json_t *slots, const json_t *found, json_t *changed, bool dispute, int asked)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)found, k, v)
    {
        if (dispute && strcmp(k, "liability") == 0)
            continue; /* "我不同意对方全责" is not a liability */
        /* how it happened is told once; later mentions of a collision add detail, not a
         * new account (unless it is the answer to that question) */
        if (strcmp(k, "description") == 0 && json_object_get(slots, k) != NULL &&
            asked != INTAKE_DESCRIPTION)
            continue;
        json_t *nv = json_incref(v);
        const json_t *old = json_object_get(slots, k);
        if (strcmp(k, "plates") == 0 && json_is_string(old)) {
            /* union, keeping the earlier plates first */
            char buf[INTAKE_PLATES_MAX * 24 + 4];
            snprintf(buf, sizeof(buf), "%s", json_string_value(old));
            const char *p = json_string_value(v);
            size_t count = 1;
            for (const char *q = buf; (q = strstr(q, "、")) != NULL; q += 3)
                count++;
            while (p != NULL && *p != '\0' && count < INTAKE_PLATES_MAX) {
                const char *e = strstr(p, "、");
                size_t pl = e ? (size_t)(e - p) : strlen(p);
                char one[24];
                if (pl < sizeof(one)) {
                    memcpy(one, p, pl);
                    one[pl] = '\0';
                    if (strstr(buf, one) == NULL && strlen(buf) + pl + 4 < sizeof(buf)) {
                        strcat(buf, "、");
                        strcat(buf, one);
                        count++;
                    }
                }
                p = e ? e + 3 : NULL;
            }
            json_decref(nv);
            nv = json_string(buf);
        }
        if (nv == NULL)
            return MESH_ENOMEM;
        if (json_equal(old, nv)) {
            json_decref(nv);
            continue;
        }
        if (json_object_set(slots, k, nv) != 0 || json_object_set(changed, k, nv) != 0) {
            json_decref(nv);
            return MESH_ENOMEM;
        }
        json_decref(nv);
    }
    return 0;
}

/* Extract from the customer's message, in batch mode answer by answer. */
static int extract_message(const view_t *v, const char *text, size_t len, int asked, json_t *found)
{
    const char *list = json_string_value(json_object_get(v->records, "intake_batch"));
    if (strcmp(v->mode, MODE_BATCH) == 0 && list != NULL) {
        int order[INTAKE_BATCH_ITEMS];
        size_t n_items = 0;
        char buf[BATCH_LIST_MAX];
        snprintf(buf, sizeof(buf), "%s", list);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n_items < INTAKE_BATCH_ITEMS;
             t = strtok_r(NULL, ",", &save)) {
            int s = intake_slot_by_name(t);
            if (s != INTAKE_NONE)
                order[n_items++] = s;
        }
        size_t starts[INTAKE_BATCH_ITEMS], lens[INTAKE_BATCH_ITEMS];
        size_t m = n_items ? intake_split_numbered(text, len, n_items, starts, lens) : 0;
        if (m > 0) {
            for (size_t k = 0; k < n_items; k++) {
                if (lens[k] == 0)
                    continue;
                json_t *part = json_object();
                if (part == NULL)
                    return MESH_ENOMEM;
                int rc = intake_extract(text + starts[k], lens[k], order[k], part);
                /* the numbered item's own slot wins over what other items said about it */
                const json_t *own = json_object_get(part, intake_slot_name(order[k]));
                if (rc == 0) {
                    const char *key;
                    json_t *val;
                    json_object_foreach(part, key, val)
                    {
                        if (json_object_get(found, key) == NULL || val == own)
                            json_object_set(found, key, val);
                    }
                }
                json_decref(part);
                if (rc != 0)
                    return rc;
            }
            return 0;
        }
    }
    return intake_extract(text, len, asked, found);
}

/* How a state.update accounts for the customer's message (records.misunderstood). */
typedef enum {
    MSG_UNDERSTOOD = 0, /* reset the miss count */
    MSG_MISSED,         /* count a miss; the third in a row hands over */
} msg_use_t;

static int add_state_update(const llm_call_t *call, llm_rules_out_t *out, json_t *changed,
                            const char *mode, json_t *records, const char *handoff_reason,
                            msg_use_t use)
{
    json_t *a = json_pack("{s:o, s:s, s:o}", "slots", changed, "mode", mode, "records", records);
    if (a != NULL && handoff_reason != NULL &&
        json_object_set_new(a, "handoff", json_pack("{s:s}", "reason", handoff_reason)) != 0) {
        json_decref(a);
        a = NULL;
    }
    if (a != NULL && handoff_reason == NULL) {
        bool zh = is_zh(call);
        int rc = llm_rules_misses_note(
            call, use == MSG_UNDERSTOOD,
            zh ? "连续 3 条消息没有提供报案信息" : "3 messages in a row gave no claim details", a);
        if (rc < 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return llm_rules_add_call(call, out, TOOL_STATE, a);
}

static const char *handoff_reason(const intake_intents_t *it, const json_t *found, bool zh)
{
    const char *inj = json_string_value(json_object_get(found, "injuries"));
    if (it->death || (inj && strcmp(inj, "death") == 0))
        return zh ? "death: 事故有人员死亡" : "death: someone died in the accident";
    if (it->injury || (inj && strcmp(inj, "injured") == 0))
        return zh ? "injury: 事故有人员受伤" : "injury: someone was injured in the accident";
    if (it->dispute)
        return zh ? "liability_dispute: 客户对事故责任有争议"
                  : "liability_dispute: the customer disputes the liability";
    if (it->human)
        return zh ? "customer_request: 客户要求人工服务"
                  : "customer_request: the customer asked for a person";
    return NULL;
}

/* A short summary text for claim.register. */
static int summary_text(const json_t *slots, bool zh, char **out)
{
    llm_buf_t b;
    llm_buf_init(&b);
    intake_say_summary(&b, slots, zh);
    int rc = llm_buf_error(&b);
    *out = rc == 0 ? strdup(llm_buf_str(&b)) : NULL;
    llm_buf_free(&b);
    return rc != 0 ? rc : (*out == NULL ? MESH_ENOMEM : 0);
}

static double amount_of(const json_t *slots, int slot)
{
    const char *s = slot_str(slots, slot);
    if (s == NULL || strcmp(s, "unknown") == 0)
        return 0.0;
    return strtod(s, NULL);
}

static int emit_register(const llm_call_t *call, const view_t *v, llm_rules_out_t *out)
{
    bool zh = is_zh(call);
    char *sum = NULL;
    int rc = summary_text(v->slots, zh, &sum);
    if (rc != 0)
        return rc;
    const char *pno = slot_str(v->slots, INTAKE_POLICY_NO);
    rc = llm_rules_add_call(call, out, TOOL_REGISTER,
                            json_pack("{s:s, s:s, s:O, s:s}", "policy_no", pno, "kind", "motor",
                                      "facts", v->slots, "summary", sum));
    free(sum);
    if (rc != 0)
        return rc;
    bool suggested;
    const char *liab = intake_effective_liability(v->slots, &suggested);
    return llm_rules_add_call(
        call, out, TOOL_FEE,
        json_pack("{s:s, s:s, s:s, s:f, s:f, s:b}", "mode", "motor", "policy_no", pno, "liability",
                  liab, "own_vehicle_damage", amount_of(v->slots, INTAKE_DAMAGE_AMOUNT),
                  "third_party_property", amount_of(v->slots, INTAKE_TP_AMOUNT),
                  "other_party_insured", 1));
}

/*
 * Filler words and marks: a message made of nothing else ("嗯嗯", "啊？",
 * "hmm", "what?") answers no question, even a free-text one that would
 * otherwise take the customer's words as they are.
 */
static const char *const s_filler[] = {
    "不知道", "不清楚",       "听不懂", "不明白", "这个", "那个", "什么", "不懂", "没懂",
    "嗯",     "啊",           "哦",     "噢",     "呃",   "额",   "唔",   "哈",   "嘛",
    "呢",     "吧",           "呀",     "啥",     "？",   "！",   "。",   "，",   "…",
    "～",     "i don't know", "dunno",  "what",   "hmm",  "huh",  "idk",  "erm",  "um",
    "uh",     "hm",           "eh",     "er",     "well", NULL};

static bool is_filler(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '?' || c == '!' || c == '.' ||
            c == ',' || c == '~') {
            i++;
            continue;
        }
        size_t k = 0;
        for (; s_filler[k] != NULL; k++) {
            size_t fl = strlen(s_filler[k]);
            if (fl <= len - i && llm_rules_find(s + i, fl, s_filler[k]) == 0) {
                i += fl;
                break;
            }
        }
        if (s_filler[k] == NULL)
            return false;
    }
    return true;
}

/* Step 1: the customer's message. */
static int on_user(const llm_call_t *call, long u, llm_rules_out_t *out)
{
    bool zh = is_zh(call);
    const llm_message_t *m = &call->messages[u];
    view_t v;
    int rc = view_build(call, u, &v);
    if (rc != 0)
        return rc;
    json_t *found = json_object(), *changed = json_object(), *records = json_object();
    if (found == NULL || changed == NULL || records == NULL) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    if (v.handoff) { /* the router's gate normally stops this turn before the model */
        out->type = LLM_RESULT_TEXT;
        llm_buf_puts(&out->text, zh ? "您的报案已转给人工同事处理，同事会尽快与您联系，请稍候。"
                                    : "Your report is with a colleague now; they will get back to "
                                      "you shortly.");
        rc = llm_buf_error(&out->text);
        goto cleanup;
    }
    intake_intents_t it;
    intake_intents(m->text, m->text_len, &it);
    const char *asked_name = json_string_value(json_object_get(v.records, "intake_asked"));
    int asked = asked_name ? intake_slot_by_name(asked_name) : INTAKE_NONE;
    bool confirming = strcmp(v.mode, MODE_CONFIRM) == 0 || strcmp(v.mode, MODE_DONE) == 0;
    if (it.human || it.batch || confirming || is_filler(m->text, m->text_len))
        asked = INTAKE_NONE;
    rc = extract_message(&v, m->text, m->text_len, asked, found);
    if (rc == 0)
        rc = merge_found(v.slots, found, changed, it.dispute, asked);
    if (rc != 0)
        goto cleanup;

    const char *reason = handoff_reason(&it, found, zh);
    int miss[INTAKE_SLOT_N];
    size_t n_miss = missing_slots(v.slots, m->text, m->text_len, miss);

    if (reason == NULL && confirming && n_miss == 0 && json_object_size(changed) == 0 &&
        it.confirm) {
        rc = emit_register(call, &v, out);
        goto cleanup;
    }

    const char *mode = v.mode;
    if (reason != NULL) {
        /* keep the mode: the person taking over sees where the intake stopped */
    } else if (n_miss == 0) {
        if (strcmp(v.mode, MODE_DONE) != 0 || json_object_size(changed) > 0)
            mode = MODE_CONFIRM;
    } else if (it.batch || strcmp(v.mode, MODE_BATCH) == 0) {
        mode = MODE_BATCH;
    } else {
        mode = "";
    }
    /* what to ask next */
    json_t *asked_v = NULL, *batch_v = json_null();
    if (reason == NULL && n_miss > 0 && strcmp(mode, MODE_BATCH) == 0) {
        char list[BATCH_LIST_MAX] = "";
        for (size_t k = 0; k < n_miss; k++) {
            if (k > 0)
                strcat(list, ",");
            strcat(list, intake_slot_name(miss[k]));
        }
        json_decref(batch_v);
        batch_v = json_string(list);
        asked_v = json_null();
    } else if (reason == NULL && n_miss > 0) {
        asked_v = json_string(intake_slot_name(miss[0]));
    } else if (reason == NULL && strcmp(mode, MODE_CONFIRM) == 0 && it.deny &&
               json_object_size(changed) == 0) {
        asked_v = json_string(ASKED_FIX);
    } else {
        asked_v = json_null();
    }
    if (json_object_set_new(records, "intake_asked", asked_v) != 0 ||
        json_object_set_new(records, "intake_batch", batch_v) != 0) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    /* A message that fills no slot and carries no intent is a miss (not once the claim is
     * registered: "thanks" then needs no handoff). */
    bool understood = json_object_size(found) > 0 || it.injury || it.death || it.dispute ||
                      it.human || it.batch || it.confirm || it.deny ||
                      strcmp(v.mode, MODE_DONE) == 0;
    rc = add_state_update(call, out, changed, mode, records, reason,
                          understood ? MSG_UNDERSTOOD : MSG_MISSED);
    changed = records = NULL; /* stolen */

cleanup:
    json_decref(found);
    json_decref(changed);
    json_decref(records);
    view_free(&v);
    return rc;
}

/* ---- step 2/3: after tool results ---- */

/* Parse a tool message: the result object (borrowed from *root) when it succeeded. */
static const json_t *tool_result(const llm_message_t *m, json_t **root)
{
    *root = mesh_json_parse(m->text, m->text_len);
    if (!json_is_object(*root) || !m->ok)
        return NULL;
    const json_t *ok = json_object_get(*root, "ok");
    if (json_is_boolean(ok))
        return json_is_true(ok) ? json_object_get(*root, "result") : NULL;
    return *root;
}

static void say_ack(llm_buf_t *b, const llm_call_t *call, long u, bool zh)
{
    /* the slots the state.update calls of this turn recorded */
    bool first = true;
    for (size_t i = (size_t)u; i < call->n_messages; i++) {
        size_t k;
        const json_t *c;
        json_array_foreach(call->messages[i].tool_calls, k, c)
        {
            const char *name = json_string_value(json_object_get(c, "name"));
            if (name == NULL || strcmp(name, TOOL_STATE) != 0)
                continue;
            json_t *a = call_args(c);
            const json_t *s = json_object_get(a, "slots");
            for (int slot = 0; slot < INTAKE_SLOT_N; slot++) {
                const json_t *val = json_object_get(s, intake_slot_name(slot));
                if (!json_is_string(val))
                    continue;
                llm_buf_puts(b, first ? (zh ? "好的，已记录：" : "Noted: ") : (zh ? "；" : "; "));
                llm_buf_printf(b, "%s%s", intake_label(slot, zh), zh ? " " : " ");
                intake_say_value(b, slot, json_string_value(val), zh);
                first = false;
            }
            json_decref(a);
        }
    }
    if (!first)
        llm_buf_puts(b, zh ? "。\n" : ".\n");
}

static bool first_turn(const llm_call_t *call)
{
    for (size_t i = 0; i < call->n_messages; i++) {
        if (call->messages[i].role == LLM_ROLE_ASSISTANT && call->messages[i].text_len > 0)
            return false;
    }
    return true;
}

static int say_state(const llm_call_t *call, long u, llm_rules_out_t *out)
{
    bool zh = is_zh(call);
    view_t v;
    int rc = view_build(call, u, &v);
    if (rc != 0)
        return rc;
    llm_buf_t *b = &out->text;
    out->type = LLM_RESULT_TEXT;
    if (v.handoff) {
        const char *why = strchr(v.reason, ':');
        why = why ? why + 1 : v.reason;
        while (*why == ' ')
            why++;
        /* the third message in a row that could not be used: say so, without the reason code */
        bool missed = strncmp(v.reason, "not_understood", 14) == 0;
        if (missed)
            llm_buf_puts(b, zh ? "抱歉，我没能理解您的消息，"
                               : "Sorry, I could not understand your messages. ");
        llm_buf_puts(b, zh ? "已为您转接人工服务" : "I have passed your report to a colleague");
        if (*why && !missed)
            llm_buf_printf(b, zh ? "（%s）" : " (%s)", why);
        llm_buf_puts(b, zh ? "。我们的同事会接手处理，并尽快与您联系；您已提供的信息都已保存，"
                             "不需要重复说明。"
                           : ". A colleague will take over and contact you shortly; what you "
                             "told me is saved, so you will not need to repeat it.");
        if (!missed)
            llm_buf_puts(b, zh ? "如有人员受伤，请先拨打 120 并确保安全。"
                               : " If anyone is hurt, call 120 first and stay safe.");
        rc = llm_buf_error(b);
        view_free(&v);
        return rc;
    }
    if (first_turn(call))
        llm_buf_puts(b, zh ? "您好，我是车险报案助手，帮您登记事故信息。\n"
                           : "Hello, I am the motor claims assistant; I will take down the "
                             "accident details.\n");
    say_ack(b, call, u, zh);
    const char *asked = json_string_value(json_object_get(v.records, "intake_asked"));
    const char *list = json_string_value(json_object_get(v.records, "intake_batch"));
    if (strcmp(v.mode, MODE_BATCH) == 0 && list != NULL) {
        llm_buf_puts(b,
                     zh ? "以下是还需要您提供的信息，您可以一次性回复（按编号或直接说都可以）：\n"
                        : "Here is everything I still need; answer in one message, numbered "
                          "or not:\n");
        char buf[BATCH_LIST_MAX];
        snprintf(buf, sizeof(buf), "%s", list);
        int k = 0;
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int s = intake_slot_by_name(t);
            if (s != INTAKE_NONE)
                llm_buf_printf(b, "%s%d. %s", k > 0 ? "\n" : "", k + 1, intake_question(s, zh));
            k += s != INTAKE_NONE;
        }
    } else if (strcmp(v.mode, MODE_CONFIRM) == 0) {
        if (asked != NULL && strcmp(asked, ASKED_FIX) == 0)
            llm_buf_puts(b, zh ? "好的，请告诉我哪一项需要修改，以及正确的内容。目前记录的信息：\n"
                               : "All right: tell me which item is wrong and what is correct. "
                                 "What I have now:\n");
        else
            llm_buf_puts(b, zh ? "信息已收集完整，请核对报案信息：\n"
                               : "I have everything; please check the report:\n");
        intake_say_summary(b, v.slots, zh);
        llm_buf_puts(b,
                     zh ? "以上信息是否正确？回复“确认”即提交报案；如需修改请直接告诉我正确的内容。"
                        : "Is this correct? Reply \"yes\" to file the claim, or tell me what to "
                          "change.");
    } else if (strcmp(v.mode, MODE_DONE) == 0) {
        const char *no = json_string_value(json_object_get(v.records, "claim_no"));
        llm_buf_printf(b,
                       zh ? "您的报案已登记，报案号 %s。查勘员会尽快联系您，还有其他需要帮忙的吗？"
                          : "Your claim is registered under number %s. Our surveyor will "
                            "contact you soon. Anything else I can help with?",
                       no ? no : "-");
    } else if (asked != NULL && intake_slot_by_name(asked) != INTAKE_NONE) {
        llm_buf_puts(b, intake_question(intake_slot_by_name(asked), zh));
    } else {
        llm_buf_puts(b, zh ? "请问还有什么需要补充的吗？" : "Is there anything else to add?");
    }
    rc = llm_buf_error(b);
    view_free(&v);
    return rc;
}

static int say_claim(const llm_call_t *call, long u, const json_t *reg, const json_t *fee,
                     llm_rules_out_t *out)
{
    bool zh = is_zh(call);
    view_t v;
    int rc = view_build(call, u, &v);
    if (rc != 0)
        return rc;
    llm_buf_t *b = &out->text;
    out->type = LLM_RESULT_TEXT;
    const char *no = json_string_value(json_object_get(reg, "claim_no"));
    bool created = !json_is_false(json_object_get(reg, "created"));
    if (created)
        llm_buf_printf(b,
                       zh ? "报案成功！您的报案号是 %s，请妥善保存。\n"
                          : "Your claim is filed. Your claim number is %s; please keep it.\n",
                       no ? no : "-");
    else
        llm_buf_printf(b,
                       zh ? "这起事故已经登记过，报案号仍是 %s（不会重复报案）。\n"
                          : "This accident is already registered; the claim number is still "
                            "%s (no duplicate claim was created).\n",
                       no ? no : "-");
    const char *fee_liab = json_string_value(json_object_get(fee, "liability"));
    intake_say_liability(b, v.slots, fee_liab, zh);
    if (fee != NULL)
        intake_say_estimate(b, fee, v.slots, zh);
    else
        llm_buf_puts(b, zh ? "赔付预估暂时无法计算，查勘定损后会告知您。\n"
                           : "The payout estimate is not available right now; you will get it "
                             "after the survey.\n");
    const char *phone = slot_str(v.slots, INTAKE_CONTACT);
    llm_buf_printf(b,
                   zh ? "接下来查勘员会通过 %s 联系您定损，请保留现场照片、行驶证、驾驶证，"
                        "如有交警出具的事故责任认定书请一并准备。"
                      : "Next, our surveyor will call you on %s to assess the damage. Keep the "
                        "photos of the scene, the vehicle and driving licences, and the police "
                        "accident report if there is one.",
                   phone ? phone : "-");
    rc = llm_buf_error(b);
    view_free(&v);
    return rc;
}

static int after_tools(const llm_call_t *call, long u, llm_rules_out_t *out)
{
    bool zh = is_zh(call);
    const llm_message_t *reg_m = NULL, *fee_m = NULL;
    bool state_after_reg = false;
    for (size_t i = (size_t)(u + 1); i < call->n_messages; i++) {
        const llm_message_t *m = &call->messages[i];
        if (m->role != LLM_ROLE_TOOL || m->name == NULL)
            continue;
        if (strcmp(m->name, TOOL_REGISTER) == 0)
            reg_m = m;
        else if (strcmp(m->name, TOOL_FEE) == 0)
            fee_m = m;
        else if (strcmp(m->name, TOOL_STATE) == 0 && reg_m != NULL)
            state_after_reg = true;
    }
    if (reg_m == NULL)
        return say_state(call, u, out);

    json_t *rroot = NULL, *froot = NULL;
    const json_t *reg = tool_result(reg_m, &rroot);
    const json_t *fee = fee_m ? tool_result(fee_m, &froot) : NULL;
    const char *no = json_string_value(json_object_get(reg, "claim_no"));
    int rc;
    if (no == NULL) {
        out->type = LLM_RESULT_TEXT;
        llm_buf_puts(
            &out->text,
            zh ? "抱歉，报案暂时没有登记成功，请稍后回复“确认”重试，或说“转人工”由同事为您登记。"
               : "Sorry, the claim could not be registered just now. Reply "
                 "\"yes\" to try again in a moment, or ask for a person.");
        rc = llm_buf_error(&out->text);
    } else if (!state_after_reg) {
        json_t *records =
            json_pack("{s:s, s:n, s:n}", "claim_no", no, "intake_asked", "intake_batch");
        const json_t *total = json_object_get(fee, "total_payable");
        if (records != NULL && json_is_number(total))
            json_object_set(records, "claim_estimate_total", (json_t *)total);
        json_t *empty = json_object();
        if (records == NULL || empty == NULL) {
            json_decref(records);
            json_decref(empty);
            rc = MESH_ENOMEM;
        } else {
            rc = add_state_update(call, out, empty, MODE_DONE, records, NULL, MSG_UNDERSTOOD);
        }
    } else {
        rc = say_claim(call, u, reg, fee, out);
    }
    json_decref(rroot);
    json_decref(froot);
    return rc;
}

int llm_rules_claims_intake(const llm_call_t *call, llm_rules_out_t *out)
{
    long u = last_user(call);
    size_t n = call->n_messages;
    if (u < 0) {
        out->type = LLM_RESULT_TEXT;
        llm_buf_puts(&out->text, is_zh(call) ? "您好，我是车险报案助手。请问发生了什么事故？"
                                             : "Hello, I am the motor claims assistant. What "
                                               "happened?");
        return llm_buf_error(&out->text);
    }
    if (n > 0 && call->messages[n - 1].role == LLM_ROLE_TOOL)
        return after_tools(call, u, out);
    return on_user(call, u, out);
}
