/*
 * rules_review_claim.c - the review claim as a JSON body, as conversation
 * slots, and across messages (merge, what is missing).
 *
 * JSON body (the user message text is one JSON object):
 *   {policy_no, diagnosis, hospital, admission_date, discharge_date,
 *    onset_date?, social_insurance_used, pre_existing?, accident?,
 *    lines: [{item, category?, amount, social_paid?}]}
 * Amounts are numbers (or numeric strings) in CNY; flags are booleans (or
 * "yes"/"no"/"是"/"否"). Wrong fields are reported back, never guessed.
 *
 * Slots (state.update, all scalars): policy_no, diagnosis, hospital,
 * admission_date, discharge_date, onset_date, social_insurance_used,
 * pre_existing, accident, bill_lines (the lines as compact JSON text).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mesh/mesh_err.h"
#include "rules_review.h"

void review_claim_init(review_claim_t *c)
{
    memset(c, 0, sizeof(*c));
    c->social_used = REVIEW_UNKNOWN;
    c->pre_existing = REVIEW_UNKNOWN;
    c->accident = REVIEW_UNKNOWN;
}

int64_t review_json_fen(const json_t *v)
{
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return -1;
    if (!isfinite(d) || d < 0 || d * 100.0 > (double)REVIEW_FEN_MAX)
        return -1;
    return (int64_t)llround(d * 100.0);
}

/* ---- JSON body ---- */

static void set_text(const json_t *o, const char *key, char *out, size_t cap, bool zh,
                     review_claim_t *c)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return;
    if (!json_is_string(v)) {
        review_problem(c, zh ? "%s 应为文本；" : "%s must be a string; ", key);
        return;
    }
    size_t l = json_string_length(v);
    const char *s = json_string_value(v);
    if (l > cap) {
        l = cap;
        while (l > 0 && ((unsigned char)s[l] & 0xC0) == 0x80)
            l--;
    }
    memcpy(out, s, l);
    out[l] = '\0';
}

static void set_date(const json_t *o, const char *key, char out[REVIEW_DATE_LEN + 1], bool zh,
                     review_claim_t *c)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return;
    char d[REVIEW_DATE_LEN + 1];
    if (!json_is_string(v) ||
        review_read_date(json_string_value(v), json_string_length(v), d) != json_string_length(v)) {
        review_problem(
            c, zh ? "%s 应为日期（如 2026-05-10）；" : "%s must be a date (e.g. 2026-05-10); ",
            key);
        return;
    }
    memcpy(out, d, sizeof(d));
}

static review_tri_t tri_of(const json_t *v, bool *bad)
{
    *bad = false;
    if (v == NULL || json_is_null(v))
        return REVIEW_UNKNOWN;
    if (json_is_boolean(v))
        return json_is_true(v) ? REVIEW_YES : REVIEW_NO;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        static const char *const yes[] = {"yes", "true", "y", "是", "有", "used", "已使用", NULL};
        static const char *const no[] = {"no", "false", "n", "否", "无", "没有", "未使用", NULL};
        for (size_t k = 0; yes[k] != NULL; k++) {
            if (strcasecmp(s, yes[k]) == 0)
                return REVIEW_YES;
        }
        for (size_t k = 0; no[k] != NULL; k++) {
            if (strcasecmp(s, no[k]) == 0)
                return REVIEW_NO;
        }
    }
    *bad = true;
    return REVIEW_UNKNOWN;
}

static void set_tri(const json_t *o, const char *key, review_tri_t *out, bool zh, review_claim_t *c)
{
    bool bad;
    review_tri_t t = tri_of(json_object_get(o, key), &bad);
    if (bad)
        review_problem(c, zh ? "%s 应为 true 或 false；" : "%s must be true or false; ", key);
    else if (t != REVIEW_UNKNOWN)
        *out = t;
}

/* An amount: a number, or a string holding one ("120", "120.50"). -1 when invalid. */
static int64_t amount_of(const json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        double d = strtod(s, &end);
        if (end == s || *end != '\0')
            return -1;
        json_t *tmp = json_real(d);
        int64_t f = review_json_fen(tmp);
        json_decref(tmp);
        return f;
    }
    return review_json_fen(v);
}

static void take_json_lines(const json_t *arr, bool zh, review_claim_t *c)
{
    if (!json_is_array(arr)) {
        review_problem(c, zh ? "lines 应为数组；" : "lines must be an array; ");
        return;
    }
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o)
    {
        if (c->n_lines >= REVIEW_LINES_MAX) {
            review_problem(c,
                           zh ? "费用明细超过 %d 行，多出的行未读取；"
                              : "more than %d bill lines: the rest were not read; ",
                           REVIEW_LINES_MAX);
            return;
        }
        const json_t *item = json_object_get(o, "item");
        if (!json_is_object(o) || !json_is_string(item) || json_string_length(item) == 0 ||
            json_string_length(item) > REVIEW_ITEM_MAX) {
            review_problem(c,
                           zh ? "lines[%zu] 需要 item（1..%d 字节的文本）；"
                              : "lines[%zu] needs an item (text of 1..%d bytes); ",
                           i, REVIEW_ITEM_MAX);
            continue;
        }
        int64_t amount = amount_of(json_object_get(o, "amount"));
        const json_t *sp = json_object_get(o, "social_paid");
        int64_t social = (sp == NULL || json_is_null(sp)) ? 0 : amount_of(sp);
        if (amount < 0 || social < 0) {
            review_problem(
                c,
                zh ? "lines[%zu]（%s）的 amount/social_paid 应为非负金额；"
                   : "lines[%zu] (%s): amount/social_paid must be non-negative amounts; ",
                i, json_string_value(item));
            continue;
        }
        review_line_t *ln = &c->lines[c->n_lines++];
        memset(ln, 0, sizeof(*ln));
        memcpy(ln->item, json_string_value(item), json_string_length(item) + 1);
        const json_t *cat = json_object_get(o, "category");
        if (json_is_string(cat) && json_string_length(cat) <= REVIEW_CATEGORY_MAX)
            memcpy(ln->category, json_string_value(cat), json_string_length(cat) + 1);
        ln->amount_fen = amount;
        ln->social_fen = social > amount ? amount : social;
    }
}

int review_parse_json(const char *text, size_t len, bool zh, review_claim_t *c)
{
    size_t a = 0, b = len;
    while (a < b && (text[a] == ' ' || text[a] == '\n' || text[a] == '\r' || text[a] == '\t'))
        a++;
    while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\n' || text[b - 1] == '\r' ||
                     text[b - 1] == '\t'))
        b--;
    if (b - a < 2 || text[a] != '{' || text[b - 1] != '}')
        return 0;
    c->json_body = true;
    if (b - a > REVIEW_JSON_MAX) {
        review_problem(c, zh ? "JSON 内容过长；" : "the JSON body is too long; ");
        return 1;
    }
    /* json_loadb checks UTF-8 itself: the message text is not guaranteed valid. */
    json_error_t jerr;
    json_t *root = json_loadb(text + a, b - a, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        review_problem(c,
                       zh ? "JSON 格式有误（第 %d 行第 %d 列），请检查后重新发送；"
                          : "the JSON body is malformed (line %d, column %d): please check it "
                            "and send it again; ",
                       jerr.line, jerr.column);
        json_decref(root);
        return 1;
    }
    const json_t *pno = json_object_get(root, "policy_no");
    if (json_is_string(pno)) {
        char p[LLM_POLICY_NO_LEN + 1];
        if (llm_rules_find_policy_no(json_string_value(pno), json_string_length(pno), p))
            memcpy(c->policy_no, p, sizeof(p));
        else
            review_problem(c, zh ? "policy_no 格式应为字母 P 加五位数字；"
                                 : "policy_no must be the letter P and five digits; ");
    }
    set_text(root, "diagnosis", c->diagnosis, REVIEW_TEXT_MAX, zh, c);
    set_text(root, "hospital", c->hospital, REVIEW_TEXT_MAX, zh, c);
    set_date(root, "admission_date", c->admission, zh, c);
    set_date(root, "discharge_date", c->discharge, zh, c);
    set_date(root, "onset_date", c->onset, zh, c);
    set_tri(root, "social_insurance_used", &c->social_used, zh, c);
    set_tri(root, "pre_existing", &c->pre_existing, zh, c);
    set_tri(root, "accident", &c->accident, zh, c);
    const json_t *lines = json_object_get(root, "lines");
    if (lines != NULL)
        take_json_lines(lines, zh, c);
    json_decref(root);
    return 1;
}

void review_parse_message(const char *text, size_t len, bool zh, review_claim_t *c)
{
    if (review_parse_json(text, len, zh, c))
        return;
    review_parse_chat(text, len, zh, c);
}

/* ---- slots ---- */

static const char *const s_slot_keys[] = {"policy_no",
                                          "diagnosis",
                                          "hospital",
                                          "admission_date",
                                          "discharge_date",
                                          "onset_date",
                                          "social_insurance_used",
                                          "pre_existing",
                                          "accident",
                                          "bill_lines",
                                          NULL};

int review_slots_have_claim(const json_t *slots)
{
    if (!json_is_object(slots))
        return 0;
    for (size_t k = 0; s_slot_keys[k] != NULL; k++) {
        const json_t *v = json_object_get(slots, s_slot_keys[k]);
        if (v != NULL && !json_is_null(v))
            return 1;
    }
    return 0;
}

static void slot_tri(const json_t *slots, const char *key, review_tri_t *out)
{
    bool bad;
    review_tri_t t = tri_of(json_object_get(slots, key), &bad);
    if (!bad && t != REVIEW_UNKNOWN)
        *out = t;
}

void review_claim_from_slots(const json_t *slots, review_claim_t *c)
{
    if (!json_is_object(slots))
        return;
    /* The slots were written by this engine (or a model told the same shape): read
     * them with the JSON-body rules, problems discarded. */
    review_claim_t tmp;
    review_claim_init(&tmp);
    const json_t *pno = json_object_get(slots, "policy_no");
    if (json_is_string(pno))
        llm_rules_find_policy_no(json_string_value(pno), json_string_length(pno), tmp.policy_no);
    set_text(slots, "diagnosis", tmp.diagnosis, REVIEW_TEXT_MAX, false, &tmp);
    set_text(slots, "hospital", tmp.hospital, REVIEW_TEXT_MAX, false, &tmp);
    set_date(slots, "admission_date", tmp.admission, false, &tmp);
    set_date(slots, "discharge_date", tmp.discharge, false, &tmp);
    set_date(slots, "onset_date", tmp.onset, false, &tmp);
    slot_tri(slots, "social_insurance_used", &tmp.social_used);
    slot_tri(slots, "pre_existing", &tmp.pre_existing);
    slot_tri(slots, "accident", &tmp.accident);
    const json_t *bl = json_object_get(slots, "bill_lines");
    if (json_is_string(bl)) {
        json_t *arr = json_loadb(json_string_value(bl), json_string_length(bl), 0, NULL);
        if (json_is_array(arr))
            take_json_lines(arr, false, &tmp);
        json_decref(arr);
    } else if (json_is_array(bl)) {
        take_json_lines(bl, false, &tmp);
    }
    tmp.problems[0] = '\0';
    *c = tmp;
}

static json_t *fen_json(int64_t fen)
{
    if (fen % 100 == 0)
        return json_integer(fen / 100);
    return json_real((double)fen / 100.0);
}

static json_t *str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

static json_t *tri_json(review_tri_t t)
{
    return t == REVIEW_UNKNOWN ? json_null() : json_boolean(t == REVIEW_YES);
}

json_t *review_claim_to_slots(const review_claim_t *c)
{
    json_t *lines = json_array();
    json_t *slots = json_object();
    char *text = NULL;
    if (lines == NULL || slots == NULL)
        goto fail;
    for (size_t i = 0; i < c->n_lines; i++) {
        const review_line_t *ln = &c->lines[i];
        json_t *o = json_pack("{s:s, s:o, s:o}", "item", ln->item, "amount",
                              fen_json(ln->amount_fen), "social_paid", fen_json(ln->social_fen));
        if (o == NULL)
            goto fail;
        if (ln->category[0] && json_object_set_new(o, "category", json_string(ln->category)) != 0) {
            json_decref(o);
            goto fail;
        }
        if (json_array_append_new(lines, o) != 0)
            goto fail;
    }
    if (c->n_lines > 0) {
        text = json_dumps(lines, JSON_COMPACT | JSON_REAL_PRECISION(15));
        if (text == NULL)
            goto fail;
    }
    if (json_object_set_new(slots, "policy_no", str_or_null(c->policy_no)) != 0 ||
        json_object_set_new(slots, "diagnosis", str_or_null(c->diagnosis)) != 0 ||
        json_object_set_new(slots, "hospital", str_or_null(c->hospital)) != 0 ||
        json_object_set_new(slots, "admission_date", str_or_null(c->admission)) != 0 ||
        json_object_set_new(slots, "discharge_date", str_or_null(c->discharge)) != 0 ||
        json_object_set_new(slots, "onset_date", str_or_null(c->onset)) != 0 ||
        json_object_set_new(slots, "social_insurance_used", tri_json(c->social_used)) != 0 ||
        json_object_set_new(slots, "pre_existing", tri_json(c->pre_existing)) != 0 ||
        json_object_set_new(slots, "accident", tri_json(c->accident)) != 0 ||
        json_object_set_new(slots, "bill_lines", text ? json_string(text) : json_null()) != 0)
        goto fail;
    free(text);
    json_decref(lines);
    return slots;

fail:
    free(text);
    json_decref(lines);
    json_decref(slots);
    return NULL;
}

/* ---- merging ---- */

static bool line_eq(const review_line_t *a, const review_line_t *b)
{
    return strcmp(a->item, b->item) == 0 && strcmp(a->category, b->category) == 0 &&
           a->amount_fen == b->amount_fen && a->social_fen == b->social_fen;
}

static void over_str(char *dst, const char *src, size_t size)
{
    if (src[0] != '\0')
        snprintf(dst, size, "%s", src);
}

void review_claim_merge(review_claim_t *base, const review_claim_t *msg, bool decided)
{
    if (msg->json_body) {
        *base = *msg;
        return;
    }
    over_str(base->policy_no, msg->policy_no, sizeof(base->policy_no));
    over_str(base->diagnosis, msg->diagnosis, sizeof(base->diagnosis));
    over_str(base->hospital, msg->hospital, sizeof(base->hospital));
    over_str(base->admission, msg->admission, sizeof(base->admission));
    over_str(base->discharge, msg->discharge, sizeof(base->discharge));
    over_str(base->onset, msg->onset, sizeof(base->onset));
    if (msg->social_used != REVIEW_UNKNOWN)
        base->social_used = msg->social_used;
    if (msg->pre_existing != REVIEW_UNKNOWN)
        base->pre_existing = msg->pre_existing;
    if (msg->accident != REVIEW_UNKNOWN)
        base->accident = msg->accident;
    if (msg->n_lines > 0) {
        bool replace = decided;
        for (size_t i = 0; i < base->n_lines && !replace; i++)
            replace = line_eq(&base->lines[i], &msg->lines[0]);
        if (replace)
            base->n_lines = 0;
        for (size_t i = 0; i < msg->n_lines && base->n_lines < REVIEW_LINES_MAX; i++)
            base->lines[base->n_lines++] = msg->lines[i];
    }
    memcpy(base->problems, msg->problems, sizeof(base->problems));
}

int review_claim_same(const review_claim_t *a, const review_claim_t *b)
{
    if (strcmp(a->policy_no, b->policy_no) != 0 || strcmp(a->diagnosis, b->diagnosis) != 0 ||
        strcmp(a->hospital, b->hospital) != 0 || strcmp(a->admission, b->admission) != 0 ||
        strcmp(a->discharge, b->discharge) != 0 || strcmp(a->onset, b->onset) != 0 ||
        a->social_used != b->social_used || a->pre_existing != b->pre_existing ||
        a->accident != b->accident || a->n_lines != b->n_lines)
        return 0;
    for (size_t i = 0; i < a->n_lines; i++) {
        if (!line_eq(&a->lines[i], &b->lines[i]))
            return 0;
    }
    return 1;
}

int review_claim_empty(const review_claim_t *c)
{
    return !c->policy_no[0] && !c->diagnosis[0] && !c->hospital[0] && !c->admission[0] &&
           !c->discharge[0] && !c->onset[0] && c->social_used == REVIEW_UNKNOWN &&
           c->pre_existing == REVIEW_UNKNOWN && c->accident == REVIEW_UNKNOWN && c->n_lines == 0;
}

unsigned review_claim_missing(const review_claim_t *c)
{
    unsigned m = 0;
    if (!c->policy_no[0])
        m |= REVIEW_MISS_POLICY;
    if (!c->diagnosis[0])
        m |= REVIEW_MISS_DIAGNOSIS;
    if (!c->hospital[0])
        m |= REVIEW_MISS_HOSPITAL;
    if (!c->admission[0])
        m |= REVIEW_MISS_ADMISSION;
    if (!c->discharge[0])
        m |= REVIEW_MISS_DISCHARGE;
    if (c->social_used == REVIEW_UNKNOWN)
        m |= REVIEW_MISS_SOCIAL;
    if (c->n_lines == 0)
        m |= REVIEW_MISS_LINES;
    return m;
}
