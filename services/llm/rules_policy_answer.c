/*
 * rules_policy_answer.c - compose policy_qa's answer from a policy.lookup
 * result (docs/protocol/services.md, tools, policy.lookup).
 *
 * The question picks the topics (keywords in zh and en); each topic is one
 * or two sentences built only from the policy data, citing the clause ids it
 * rests on. A topic the data does not carry is answered with an explicit
 * "the policy does not say" sentence instead of a guess. A policy that is not
 * in force gets a notice first.
 */
#include <string.h>

#include "mesh/mesh_err.h"
#include "rules.h"

/* Bytes of the question scanned for topic keywords. */
#define QUESTION_SCAN_MAX 4096
/* Bytes of a clause id quoted in a citation. */
#define CLAUSE_ID_MAX 32
/* Bytes of a date quoted from the policy. */
#define DATE_TEXT_MAX 32

enum {
    T_DEDUCTIBLE = 1 << 0,
    T_WAITING = 1 << 1,
    T_EXCLUSIONS = 1 << 2,
    T_RATIO = 1 << 3,
    T_PERIOD = 1 << 4,
    T_LIMIT = 1 << 5,
    T_HOSPITAL = 1 << 6,
    T_COVERAGE = 1 << 7,
};

static const char *const kw_deductible[] = {"免赔", "deductible", "excess", NULL};
static const char *const kw_waiting[] = {"等待期", "观察期", "waiting", NULL};
static const char *const kw_exclusions[] = {
    "不赔",  "不保",      "除外",      "免责",    "免除",         "不在保", "不包括",
    "exclu", "not cover", "n't cover", "not pay", "not included", NULL};
static const char *const kw_ratio[] = {"比例", "报销", "ratio", "reimburse", "percent", NULL};
static const char *const kw_period[] = {
    "有效",   "到期",     "期限",  "保险期间",      "生效",       "失效",     "valid", "expir",
    "status", "in force", "lapse", "policy period", "start date", "end date", NULL};
static const char *const kw_limit[] = {"保额",  "限额",        "额度",    "保险金额",
                                       "limit", "sum insured", "maximum", NULL};
static const char *const kw_hospital[] = {"医院", "hospital", "ward", NULL};
/* Weak limit cues: only used when no other topic matched ("how much is the deductible"). */
static const char *const kw_limit_weak[] = {"how much", "最多", "最高", "赔多少", "多少钱", NULL};

/* Keywords that mark the clause a scalar term rests on (searched in clause texts). */
static const char *const ck_deductible[] = {"免赔", "deductible", NULL};
static const char *const ck_waiting[] = {"等待期", "waiting period", NULL};
static const char *const ck_ratio[] = {"比例", "ratio", NULL};
static const char *const ck_period[] = {"保险期间", "保险期限", "policy period",
                                        "period of insurance", NULL};
static const char *const ck_hospital[] = {"医院", "hospital", NULL};
static const char *const ck_limit[] = {"保险金额", "年度总限额", "sum insured", "annual limit",
                                       NULL};

typedef struct {
    llm_buf_t *b;
    bool zh;
    bool first; /* no sentence written yet (en: no leading space) */
    const json_t *policy;
} ans_t;

static unsigned detect_topics(const char *q, size_t qlen)
{
    if (qlen > QUESTION_SCAN_MAX)
        qlen = QUESTION_SCAN_MAX;
    unsigned t = 0;
    if (llm_rules_has_any(q, qlen, kw_deductible))
        t |= T_DEDUCTIBLE;
    if (llm_rules_has_any(q, qlen, kw_waiting))
        t |= T_WAITING;
    if (llm_rules_has_any(q, qlen, kw_exclusions))
        t |= T_EXCLUSIONS;
    if (llm_rules_has_any(q, qlen, kw_ratio))
        t |= T_RATIO;
    if (llm_rules_has_any(q, qlen, kw_period))
        t |= T_PERIOD;
    if (llm_rules_has_any(q, qlen, kw_limit))
        t |= T_LIMIT;
    if (llm_rules_has_any(q, qlen, kw_hospital))
        t |= T_HOSPITAL;
    if (t == 0 && llm_rules_has_any(q, qlen, kw_limit_weak))
        t |= T_LIMIT;
    if (t == 0)
        t = T_COVERAGE;
    return t;
}

/* Start a sentence: in English, separate it from the previous one by a space. */
static void sentence(ans_t *a)
{
    if (!a->zh && !a->first)
        llm_buf_puts(a->b, " ");
    a->first = false;
}

static void say(ans_t *a, const char *zh, const char *en)
{
    llm_buf_puts(a->b, a->zh ? zh : en);
}

static int get_num(const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return 0;
    *out = json_number_value(v);
    return 1;
}

static void money(ans_t *a, double v)
{
    llm_rules_money(a->b, v, a->zh);
}

/* A clause id from a JSON value: a non-empty string, clipped. NULL otherwise. */
static const char *clause_id(const json_t *v, size_t *len)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return NULL;
    *len = json_string_length(v);
    if (*len > CLAUSE_ID_MAX)
        *len = CLAUSE_ID_MAX;
    return json_string_value(v);
}

/* Append a citation of ids[0..n): zh "（条款 2.1、2.2）", en " (clause 2.1)". */
static void cite(ans_t *a, const char *const *ids, const size_t *lens, size_t n)
{
    if (n == 0)
        return;
    say(a, "（条款 ", n > 1 ? " (clauses " : " (clause ");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            say(a, "、", ", ");
        llm_buf_append_clip(a->b, ids[i], lens[i], CLAUSE_ID_MAX);
    }
    say(a, "）", ")");
}

static void cite_one(ans_t *a, const json_t *v)
{
    size_t len;
    const char *id = clause_id(v, &len);
    if (id != NULL)
        cite(a, &id, &len, 1);
}

/* Append a data field (clipped) without its own closing mark: the answer adds its own. */
static void data_text(ans_t *a, const char *s, size_t len)
{
    for (;;) {
        if (len >= 3 && (memcmp(s + len - 3, "\xE3\x80\x82", 3) == 0 ||  /* 。 */
                         memcmp(s + len - 3, "\xEF\xBC\x9B", 3) == 0)) { /* ； */
            len -= 3;
        } else if (len >= 1 && (s[len - 1] == '.' || s[len - 1] == ';' || s[len - 1] == ' ')) {
            len -= 1;
        } else {
            break;
        }
    }
    llm_buf_append_clip(a->b, s, len, LLM_FIELD_MAX);
}

/* Byte offset of the first occurrence of any of keys in s[0..len), or -1. */
static long first_offset(const char *s, size_t len, const char *const *keys)
{
    long best = -1;
    for (size_t k = 0; keys[k] != NULL; k++) {
        long off = llm_rules_find(s, len, keys[k]);
        if (off >= 0 && (best < 0 || off < best))
            best = off;
    }
    return best;
}

/*
 * Cite the one clause a scalar term rests on: of the clauses whose text
 * mentions one of keys, the one that mentions it earliest (a clause titled
 * "免赔额与赔付比例：..." beats one that mentions the deductible in passing);
 * ties go to data order.
 */
static void cite_best(ans_t *a, const char *const *keys)
{
    const json_t *clauses = json_object_get(a->policy, "clauses");
    if (!json_is_object(clauses))
        return;
    const char *best = NULL;
    long best_off = -1;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)clauses, key, val)
    {
        if (key[0] == '\0')
            continue;
        size_t len = 0;
        const char *t = llm_rules_loc(val, a->zh, &len);
        long off = t != NULL ? first_offset(t, len, keys) : -1;
        if (off < 0) {
            t = llm_rules_loc(val, !a->zh, &len);
            off = t != NULL ? first_offset(t, len, keys) : -1;
        }
        if (off >= 0 && (best == NULL || off < best_off)) {
            best = key;
            best_off = off;
        }
    }
    if (best != NULL) {
        size_t kl = strlen(best);
        if (kl > CLAUSE_ID_MAX)
            kl = CLAUSE_ID_MAX;
        cite(a, &best, &kl, 1);
    }
}

/* The policy number if it looks like one (it is quoted back to the customer). */
static const char *policy_no(const json_t *policy)
{
    const json_t *v = json_object_get(policy, "policy_no");
    char norm[LLM_POLICY_NO_LEN + 1];
    if (!json_is_string(v) || json_string_length(v) != LLM_POLICY_NO_LEN ||
        !llm_rules_find_policy_no(json_string_value(v), LLM_POLICY_NO_LEN, norm))
        return NULL;
    return json_string_value(v);
}

static const char *status_of(const json_t *policy)
{
    const json_t *v = json_object_get(policy, "status");
    return json_is_string(v) ? json_string_value(v) : "";
}

static void status_name(ans_t *a, const char *st)
{
    if (strcmp(st, "active") == 0)
        say(a, "有效", "in force");
    else if (strcmp(st, "lapsed") == 0)
        say(a, "已失效", "lapsed (not in force)");
    else if (strcmp(st, "expired") == 0)
        say(a, "已到期", "expired (not in force)");
    else
        say(a, "未知", "unknown");
}

static void intro(ans_t *a)
{
    const char *pno = policy_no(a->policy);
    const json_t *product = json_object_get(a->policy, "product");
    size_t nl = 0;
    const char *name = llm_rules_loc(json_object_get(product, "name"), a->zh, &nl);
    sentence(a);
    say(a, "关于您的保单", "About your policy");
    if (pno != NULL)
        llm_buf_printf(a->b, " %s", pno);
    if (name != NULL) {
        /* Product names carry their own brackets ("…（2024版）"), so use other marks. */
        say(a, "「", " - ");
        llm_buf_append_clip(a->b, name, nl, LLM_FIELD_MAX);
        say(a, "」", "");
    }
    say(a, "：", ":");
}

static void not_in_force_notice(ans_t *a)
{
    const char *st = status_of(a->policy);
    const json_t *end = json_object_get(a->policy, "end_date");
    if (strcmp(st, "lapsed") == 0) {
        sentence(a);
        say(a, "请注意：该保单目前已失效，不在保障有效期内，以下内容仅供参考。",
            "Please note: this policy has lapsed and is not in force; the terms below are for "
            "reference only.");
    } else if (strcmp(st, "expired") == 0) {
        sentence(a);
        if (json_is_string(end)) {
            say(a, "请注意：该保单已于", "Please note: this policy expired on ");
            llm_buf_append_clip(a->b, json_string_value(end), json_string_length(end),
                                DATE_TEXT_MAX);
            say(a, "到期，目前不在保障有效期内，以下内容仅供参考。",
                " and is not in force; the terms below are for reference only.");
        } else {
            say(a, "请注意：该保单已到期，目前不在保障有效期内，以下内容仅供参考。",
                "Please note: this policy has expired and is not in force; the terms below are "
                "for reference only.");
        }
    }
}

static void not_in_policy(ans_t *a, const char *zh_topic, const char *en_topic)
{
    sentence(a);
    say(a, "保单中没有关于", "The policy does not say anything about ");
    say(a, zh_topic, en_topic);
    say(a, "的约定。", ".");
}

static void topic_deductible(ans_t *a)
{
    double d, used;
    if (!get_num(a->policy, "deductible", &d)) {
        not_in_policy(a, "免赔额", "a deductible");
        return;
    }
    sentence(a);
    if (d <= 0) {
        say(a, "本保单没有免赔额", "This policy has no deductible");
        cite_best(a, ck_deductible);
        say(a, "。", ".");
        return;
    }
    say(a, "年免赔额为", "The annual deductible is ");
    money(a, d);
    if (get_num(a->policy, "deductible_used", &used)) {
        double left = d - used > 0 ? d - used : 0;
        say(a, "，本保单年度已使用", "; ");
        money(a, used);
        say(a, "，剩余", " has been used this policy year, so ");
        money(a, left);
        say(a, "", " remains");
    }
    cite_best(a, ck_deductible);
    say(a, "。", ".");
}

static void topic_waiting(ans_t *a)
{
    double days;
    if (!get_num(a->policy, "waiting_period_days", &days)) {
        not_in_policy(a, "等待期", "a waiting period");
        return;
    }
    sentence(a);
    if (days <= 0) {
        say(a, "本保单没有等待期", "This policy has no waiting period");
    } else {
        long long n = (long long)days;
        say(a, "等待期为", "The waiting period is ");
        llm_buf_printf(a->b, a->zh ? "%lld天" : "%lld days", n);
    }
    cite_best(a, ck_waiting);
    say(a, "。", ".");
}

/* Marks that separate the items of an exclusion text ("牙科治疗、牙科保健、洗牙"). */
#define SEP(lit)                                                                                   \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }
static const struct {
    const char *s;
    size_t len;
} s_item_seps[] = {SEP("、"), SEP("，"), SEP("；"), SEP("（"), SEP("）"),    SEP("："),
                   SEP(", "), SEP("; "), SEP("("),  SEP(")"),  SEP(" and "), SEP(" or ")};
#undef SEP
/* Shortest item worth matching, bytes: two CJK characters, or a 4-letter English word. */
#define ITEM_MIN 4

/* Length of the separator at s[0..len), 0 if none. Called per byte: first-byte filter. */
static size_t sep_at(const char *s, size_t len)
{
    unsigned char c = (unsigned char)s[0];
    if (c != 0xE3 && c != 0xEF && c != ',' && c != ';' && c != '(' && c != ')' && c != ' ')
        return 0;
    for (size_t k = 0; k < sizeof(s_item_seps) / sizeof(s_item_seps[0]); k++) {
        size_t l = s_item_seps[k].len;
        if (l <= len && s_item_seps[k].s[0] == s[0] && memcmp(s, s_item_seps[k].s, l) == 0)
            return l;
    }
    return 0;
}

/* 1 if item s[0..len) (case-folded) occurs in q. */
static int item_in(const char *s, size_t len, const char *q, size_t qlen)
{
    while (len > 0 && (s[0] == ' ' || s[0] == '.'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '.'))
        len--;
    if (len < ITEM_MIN || len > LLM_FIELD_MAX || len > qlen)
        return 0;
    char key[LLM_FIELD_MAX + 1];
    for (size_t k = 0; k < len; k++)
        key[k] = (s[k] >= 'A' && s[k] <= 'Z') ? (char)(s[k] - 'A' + 'a') : s[k];
    key[len] = '\0';
    const char *kws[] = {key, NULL};
    return llm_rules_has_any(q, qlen, kws);
}

/*
 * If the question names an excluded item ("牙科治疗赔吗？", "is dental treatment
 * covered?"), say first that it is excluded, citing its clause. Items are the
 * pieces of each exclusion text between separators, in the answer's
 * language. Returns 1 if one was named.
 */
static int exclusion_named(ans_t *a, const char *q, size_t qlen)
{
    const json_t *ex = json_object_get(a->policy, "exclusions");
    size_t i;
    const json_t *e;
    json_array_foreach(ex, i, e)
    {
        if (i >= LLM_LIST_MAX)
            break;
        size_t tl = 0;
        const char *t = llm_rules_loc(json_object_get(e, "text"), a->zh, &tl);
        if (t == NULL)
            continue;
        size_t start = 0, pos = 0;
        while (pos <= tl) {
            size_t sl = pos < tl ? sep_at(t + pos, tl - pos) : 0;
            if (pos < tl && sl == 0) {
                pos++;
                continue;
            }
            if (item_in(t + start, pos - start, q, qlen)) {
                sentence(a);
                say(a, "您问到的「", "What you asked about (");
                data_text(a, t + start, pos - start);
                say(a, "」属于责任免除，不在保障范围内",
                    ") is excluded: the policy does not cover it");
                cite_one(a, json_object_get(e, "clause"));
                say(a, "。", ".");
                return 1;
            }
            if (pos == tl)
                break;
            pos += sl;
            start = pos;
        }
    }
    return 0;
}

static void topic_exclusions(ans_t *a)
{
    const json_t *ex = json_object_get(a->policy, "exclusions");
    size_t n = json_is_array(ex) ? json_array_size(ex) : 0;
    if (n == 0) {
        sentence(a);
        say(a, "保单中没有关于责任免除的约定。",
            "The policy does not say anything about exclusions.");
        return;
    }
    sentence(a);
    say(a, "以下情形不在保障范围内（责任免除）：", "The policy does not cover: ");
    size_t i, shown = 0;
    const json_t *e;
    json_array_foreach(ex, i, e)
    {
        if (shown == LLM_LIST_MAX)
            break;
        size_t tl = 0;
        const char *t = llm_rules_loc(json_object_get(e, "text"), a->zh, &tl);
        if (t == NULL)
            continue;
        if (shown > 0)
            say(a, "；", "; ");
        data_text(a, t, tl);
        cite_one(a, json_object_get(e, "clause"));
        shown++;
    }
    if (shown < n)
        llm_buf_printf(a->b, a->zh ? "；等，共%zu项" : "; and more (%zu in all)", n);
    say(a, "。", ".");
}

static void topic_ratio(ans_t *a)
{
    double with = 0, without = 0;
    int hw = get_num(a->policy, "ratio_with_social", &with);
    int ho = get_num(a->policy, "ratio_without_social", &without);
    if (!hw && !ho) {
        not_in_policy(a, "赔付比例", "a payout ratio");
        return;
    }
    sentence(a);
    if (hw && ho) {
        say(a, "赔付比例：经社保报销后的费用按", "Payout ratio: ");
        llm_rules_percent(a->b, with);
        say(a, "赔付，未经社保报销的按", " when social insurance was used to settle the bill, ");
        llm_rules_percent(a->b, without);
        say(a, "赔付", " when it was not");
    } else {
        say(a, "赔付比例为", "The payout ratio is ");
        llm_rules_percent(a->b, hw ? with : without);
    }
    cite_best(a, ck_ratio);
    say(a, "。", ".");

    const json_t *si = json_object_get(a->policy, "social_insurance");
    if (!json_is_boolean(si) || !hw || !ho)
        return;
    sentence(a);
    if (json_is_true(si)) {
        say(a, "您已参加社保，就医时使用社保结算可适用", "You have social insurance, so ");
        llm_rules_percent(a->b, with);
        say(a, "的比例。", " applies when you use it at the hospital.");
    } else {
        say(a, "您未参加社保，适用", "You have no social insurance, so ");
        llm_rules_percent(a->b, without);
        say(a, "的比例。", " applies.");
    }
}

static void topic_period(ans_t *a)
{
    const json_t *start = json_object_get(a->policy, "start_date");
    const json_t *end = json_object_get(a->policy, "end_date");
    sentence(a);
    if (json_is_string(start) && json_is_string(end)) {
        say(a, "保险期间为", "The policy period is ");
        llm_buf_append_clip(a->b, json_string_value(start), json_string_length(start),
                            DATE_TEXT_MAX);
        say(a, "至", " to ");
        llm_buf_append_clip(a->b, json_string_value(end), json_string_length(end), DATE_TEXT_MAX);
        say(a, "，保单状态：", "; status: ");
    } else {
        say(a, "保单中没有关于保险期间的约定；保单状态：",
            "The policy does not say anything about its period; status: ");
    }
    status_name(a, status_of(a->policy));
    cite_best(a, ck_period);
    say(a, "。", ".");
}

static void topic_hospital(ans_t *a)
{
    const json_t *h = json_object_get(a->policy, "hospital_rule");
    size_t len = 0;
    const char *t = llm_rules_loc(h, a->zh, &len);
    if (t == NULL) {
        not_in_policy(a, "就医医院范围", "which hospitals are covered");
        return;
    }
    sentence(a);
    say(a, "就医医院范围：", "Hospitals covered: ");
    data_text(a, t, len);
    if (json_is_string(json_object_get(h, "clause")))
        cite_one(a, json_object_get(h, "clause"));
    else
        cite_best(a, ck_hospital);
    say(a, "。", ".");
}

/* "name, limit X (clause c)" for each coverage; returns how many were listed. */
static size_t list_coverages(ans_t *a, const json_t *cov, const char *zh_sep, const char *en_sep)
{
    size_t i, shown = 0;
    const json_t *c;
    json_array_foreach(cov, i, c)
    {
        if (shown == LLM_LIST_MAX)
            break;
        size_t nl = 0;
        const char *name = llm_rules_loc(json_object_get(c, "name"), a->zh, &nl);
        if (name == NULL)
            continue;
        if (shown > 0)
            say(a, "；", "; ");
        llm_buf_append_clip(a->b, name, nl, LLM_FIELD_MAX);
        double lim;
        if (get_num(c, "limit", &lim)) {
            say(a, zh_sep, en_sep);
            money(a, lim);
        }
        cite_one(a, json_object_get(c, "clause"));
        shown++;
    }
    size_t n = json_array_size(cov);
    if (shown > 0 && shown < n)
        llm_buf_printf(a->b, a->zh ? "；等，共%zu项" : "; and more (%zu in all)", n);
    return shown;
}

static void topic_limit(ans_t *a)
{
    double lim, used;
    int has_lim = get_num(a->policy, "limit", &lim);
    const json_t *cov = json_object_get(a->policy, "coverages");
    bool has_cov = json_is_array(cov) && json_array_size(cov) > 0;
    if (!has_lim && !has_cov) {
        not_in_policy(a, "保险金额", "the sum insured");
        return;
    }
    if (has_lim) {
        sentence(a);
        say(a, "保险金额（年度总限额）为", "The sum insured (annual limit) is ");
        money(a, lim);
        if (get_num(a->policy, "limit_used", &used)) {
            double left = lim - used > 0 ? lim - used : 0;
            say(a, "，已使用", "; ");
            money(a, used);
            say(a, "，剩余", " used, ");
            money(a, left);
            say(a, "", " remaining");
        }
        cite_best(a, ck_limit);
        say(a, "。", ".");
    }
    if (has_cov) {
        sentence(a);
        say(a, "各项保障的限额：", "Limits per coverage: ");
        list_coverages(a, cov, "", " ");
        say(a, "。", ".");
    }
}

static void topic_coverage(ans_t *a)
{
    const json_t *cov = json_object_get(a->policy, "coverages");
    sentence(a);
    if (!json_is_array(cov) || json_array_size(cov) == 0) {
        say(a, "保单中没有关于保障责任的约定。",
            "The policy does not say anything about what it covers.");
        return;
    }
    say(a, "保障内容：", "The policy covers: ");
    list_coverages(a, cov, "，限额", ", limit ");
    say(a, "。", ".");
    sentence(a);
    say(a, "如需了解免赔额、赔付比例、等待期或责任免除，请继续提问。",
        "Ask me about the deductible, payout ratio, waiting period or exclusions for details.");
}

int llm_rules_policy_answer(const json_t *policy, const char *q, size_t qlen, bool zh,
                            llm_buf_t *out)
{
    ans_t a = {.b = out, .zh = zh, .first = out->len == 0, .policy = policy};
    unsigned topics = detect_topics(q, qlen);
    if (qlen > QUESTION_SCAN_MAX)
        qlen = QUESTION_SCAN_MAX;

    intro(&a);
    not_in_force_notice(&a);
    /* A named excluded item answers "is X covered / reimbursed / excluded?" on its own;
     * other topics asked alongside are still answered. */
    if (exclusion_named(&a, q, qlen))
        topics &= ~(unsigned)(T_COVERAGE | T_RATIO | T_EXCLUSIONS);
    if (topics & T_DEDUCTIBLE)
        topic_deductible(&a);
    if (topics & T_WAITING)
        topic_waiting(&a);
    if (topics & T_EXCLUSIONS)
        topic_exclusions(&a);
    if (topics & T_RATIO)
        topic_ratio(&a);
    if (topics & T_PERIOD)
        topic_period(&a);
    if (topics & T_LIMIT)
        topic_limit(&a);
    if (topics & T_HOSPITAL)
        topic_hospital(&a);
    if (topics & T_COVERAGE)
        topic_coverage(&a);
    return llm_buf_error(out);
}
