/*
 * rules_review_parse.c - read a health claim from a semi-structured chat
 * message (zh or en):
 *
 *   保单号 P10023，诊断：急性胆囊炎，医院：上海市第一人民医院，入院 2026-05-10，
 *   出院 2026-05-14，是否使用社保：是。费用明细：1. 唾液酸酶测定 化验费 120 元
 *   社保支付 0；2. 床位费 床位费 600 元 社保支付 300
 *
 * The message has header facts (found by their labels, in any order) and a
 * bill: the part after a bill keyword (费用明细, bill ...) or from the first
 * "1." / "1、" marker. Bill lines are split at numbering markers and at
 * ；; 。 newline ". " (and 、 when the lines are not numbered); each line is
 * read by rules_review_lines.c. Without a bill keyword or numbering, any
 * sentence with an amount in 元/CNY/¥ and no header label is a line. Header
 * facts after the bill are read too. Lenient on purpose: what cannot be read
 * stays unknown and the engine asks for it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rules_review.h"
#include "rules_review_text.h"

void review_problem(review_claim_t *c, const char *fmt, ...)
{
    size_t used = strlen(c->problems);
    if (used + 1 >= sizeof(c->problems))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->problems + used, sizeof(c->problems) - used, fmt, ap);
    va_end(ap);
    /* A cut may have split a UTF-8 sequence: drop the partial tail. */
    size_t l = strlen(c->problems);
    size_t k = l;
    while (k > 0 && ((unsigned char)c->problems[k - 1] & 0xC0) == 0x80)
        k--;
    if (k > 0 && ((unsigned char)c->problems[k - 1] & 0x80) != 0 &&
        k - 1 + u8len((unsigned char)c->problems[k - 1]) > l)
        c->problems[k - 1] = '\0';
}

/* ---- dates ---- */

static int days_in_month(long y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days inverse). */
static long days_from_civil(long y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

long review_date_days(const char *s)
{
    if (s == NULL || strlen(s) != REVIEW_DATE_LEN || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < REVIEW_DATE_LEN; i++) {
        if (i != 4 && i != 7 && !is_digit((unsigned char)s[i]))
            return -1;
    }
    long y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -1;
    return days_from_civil(y, m, d);
}

size_t review_read_date(const char *s, size_t len, char out[REVIEW_DATE_LEN + 1])
{
    long y, m, d;
    size_t i = read_digits(s, len, 0, 4, &y);
    if (i != 4)
        return 0;
    size_t sep_len;
    bool cjk = false;
    char sep = 0;
    if (i < len && (s[i] == '-' || s[i] == '/' || s[i] == '.')) {
        sep = s[i];
        sep_len = 1;
    } else if (at(s, len, i, "\xE5\xB9\xB4")) { /* 年 */
        cjk = true;
        sep_len = 3;
    } else {
        return 0;
    }
    i += sep_len;
    size_t k = read_digits(s, len, i, 2, &m);
    if (k == 0)
        return 0;
    i += k;
    if (cjk) {
        if (!at(s, len, i, "\xE6\x9C\x88")) /* 月 */
            return 0;
        i += 3;
    } else {
        if (i >= len || s[i] != sep)
            return 0;
        i++;
    }
    k = read_digits(s, len, i, 2, &d);
    if (k == 0)
        return 0;
    i += k;
    if (i < len && is_digit((unsigned char)s[i]))
        return 0;
    if (at(s, len, i, "\xE6\x97\xA5") || at(s, len, i, "\xE5\x8F\xB7")) /* 日 号 */
        i += 3;
    char buf[16];
    snprintf(buf, sizeof(buf), "%04ld-%02ld-%02ld", y, m, d);
    if (review_date_days(buf) < 0)
        return 0;
    memcpy(out, buf, REVIEW_DATE_LEN + 1);
    return i;
}

/* ---- labels ---- */

static const char *const L_POLICY[] = {"保单号",        "保单",   "policy no",
                                       "policy number", "policy", NULL};
static const char *const L_DIAG[] = {"诊断", "病名", "diagnosis", "diagnosed with", NULL};
static const char *const L_HOSP[] = {"就诊医院", "医院名称", "医院", "hospital", NULL};
static const char *const L_ADM[] = {
    "入院日期",          "入院时间",       "入院",        "住院日期", "住院时间",  "住院期间",
    "date of admission", "admission date", "admitted on", "admitted", "admission", NULL};
static const char *const L_DIS[] = {"出院日期",          "出院时间",       "出院",
                                    "date of discharge", "discharge date", "discharged on",
                                    "discharged",        "discharge",      NULL};
static const char *const L_ONSET[] = {"发病日期",   "发病时间",      "发病",  "起病",
                                      "onset date", "date of onset", "onset", NULL};
static const char *const L_SOCIAL[] = {
    "社保", "医保", "social medical insurance", "social insurance", "social_insurance_used", NULL};
static const char *const L_PRE[] = {"既往症",       "既往病史",    "既往史", "pre-existing",
                                    "pre_existing", "preexisting", NULL};
static const char *const L_ACC[] = {"意外", "accident", NULL};

static const char *const *const s_all_labels[] = {L_POLICY, L_DIAG,   L_HOSP, L_ADM, L_DIS,
                                                  L_ONSET,  L_SOCIAL, L_PRE,  L_ACC};

/* ASCII labels must not start inside a word ("readmission"). */
static bool label_boundary_ok(const char *s, size_t i, const char *lbl)
{
    if (!is_alpha((unsigned char)lbl[0]) || i == 0)
        return true;
    return !is_alpha((unsigned char)s[i - 1]);
}

/* Social-insurance words followed by 支付/paid are a bill line's field, not the header flag. */
static bool social_is_line_field(const char *s, size_t n, size_t i)
{
    while (space_at(s, n, i))
        i += space_at(s, n, i);
    return at(s, n, i, "支付") || at(s, n, i, "报销") || at(s, n, i, "统筹") ||
           at(s, n, i, "paid") || at(s, n, i, "pays") || at(s, n, i, "payment");
}

/* Hospital labels need a colon or a space after them ("医院：X"), not a hospital's name. */
static bool hospital_label_ok(const char *s, size_t n, size_t i)
{
    return colon_at(s, n, i) || space_at(s, n, i);
}

/*
 * Earliest occurrence of any label of set in s[0..n) (longest on ties).
 * Returns the label's start or -1; *end gets the offset after it.
 */
static long find_label(const char *s, size_t n, const char *const *set, size_t *end)
{
    long best = -1;
    size_t best_end = 0;
    for (size_t k = 0; set[k] != NULL; k++) {
        const char *lbl = set[k];
        size_t l = strlen(lbl);
        for (size_t i = 0; i + l <= n; i++) {
            if (!at(s, n, i, lbl) || !label_boundary_ok(s, i, lbl))
                continue;
            if (set == L_SOCIAL && social_is_line_field(s, n, i + l))
                continue;
            if (set == L_HOSP && !hospital_label_ok(s, n, i + l))
                continue;
            if (best < 0 || (long)i < best || ((long)i == best && i + l > best_end)) {
                best = (long)i;
                best_end = i + l;
            }
            break;
        }
    }
    *end = best_end;
    return best;
}

/*
 * A label at s[i] that starts a new field: followed by a colon, a date or a
 * policy number ("医院：", "入院 2026-05-10", "保单号 P10023"), so a value ends
 * before it even without a comma ("诊断：胆囊结石 医院：瑞金医院").
 */
static bool field_label_at(const char *s, size_t n, size_t i)
{
    for (size_t k = 0; k < sizeof(s_all_labels) / sizeof(s_all_labels[0]); k++) {
        for (size_t j = 0; s_all_labels[k][j] != NULL; j++) {
            const char *lbl = s_all_labels[k][j];
            if (!at(s, n, i, lbl) || !label_boundary_ok(s, i, lbl))
                continue;
            size_t e = i + strlen(lbl);
            while (space_at(s, n, e))
                e += space_at(s, n, e);
            if (colon_at(s, n, e))
                return true;
            while (e < n && (at(s, n, e, "日期") || at(s, n, e, "时间")))
                e += 6;
            char tmp[REVIEW_DATE_LEN + 1];
            if (review_read_date(s + e, n - e, tmp) > 0)
                return true;
            char pno[LLM_POLICY_NO_LEN + 1];
            if (e < n && (s[e] == 'P' || s[e] == 'p') &&
                llm_rules_find_policy_no(s + e, n - e < 7 ? n - e : 7, pno))
                return true;
        }
    }
    return false;
}

static bool has_any_label(const char *s, size_t n)
{
    for (size_t k = 0; k < sizeof(s_all_labels) / sizeof(s_all_labels[0]); k++) {
        size_t e;
        if (find_label(s, n, s_all_labels[k], &e) >= 0)
            return true;
    }
    return false;
}

/* Skip blanks and one colon, plus the filler words given. */
static size_t skip_filler(const char *s, size_t n, size_t i, const char *const *words)
{
    for (;;) {
        size_t l = space_at(s, n, i);
        if (l == 0)
            l = colon_at(s, n, i);
        if (l == 0 && words != NULL) {
            for (size_t k = 0; words[k] != NULL; k++) {
                if (at(s, n, i, words[k])) {
                    l = strlen(words[k]);
                    break;
                }
            }
        }
        if (l == 0)
            return i;
        i += l;
    }
}

/* End of a header text value starting at i. */
static size_t value_end(const char *s, size_t n, size_t i)
{
    while (i < n) {
        if (stop_at(s, n, i) || comma_at(s, n, i))
            return i;
        size_t d = dunhao_at(s, n, i);
        if (d == 0)
            d = space_at(s, n, i);
        if (d) {
            size_t j = i + d;
            while (space_at(s, n, j))
                j += space_at(s, n, j);
            if (field_label_at(s, n, j))
                return i;
        }
        if (s[i] == '.' && (i + 1 == n || s[i + 1] == ' '))
            return i;
        i += u8len((unsigned char)s[i]);
    }
    return n;
}

/* ---- header fields ---- */

static const char *const s_text_fillers[] = {"为", "是", "is", "of", NULL};

static void read_text_field(const char *s, size_t n, const char *const *set, char *out, size_t cap)
{
    size_t e;
    if (out[0] != '\0' || find_label(s, n, set, &e) < 0)
        return;
    size_t v = skip_filler(s, n, e, s_text_fillers);
    size_t ve = value_end(s, n, v);
    if (ve > v)
        copy_clip(out, cap, s + v, ve - v);
}

/* "在上海市第一人民医院住院" without a label: the name ending in 医院. */
static void guess_hospital(const char *s, size_t n, char *out, size_t cap)
{
    if (out[0] != '\0')
        return;
    const char *kw = "医院";
    for (size_t i = 0; i + 6 <= n; i++) {
        if (!at(s, n, i, kw))
            continue;
        size_t b = i;
        /* Walk back over CJK characters (3-byte sequences) up to 13 of them. */
        int chars = 0;
        while (b >= 3 && chars < 13) {
            unsigned char c = (unsigned char)s[b - 3];
            if (c < 0xE4 || c > 0xE9) /* CJK unified ideographs live in E4..E9 leads */
                break;
            if (at(s, n, b - 3, "在") || at(s, n, b - 3, "于") || at(s, n, b - 3, "到"))
                break;
            b -= 3;
            chars++;
        }
        if (chars >= 2)
            copy_clip(out, cap, s + b, i + 6 - b);
        return;
    }
}

static const char *const s_date_fillers[] = {"于", "在", "on", "date", "日期", "时间", NULL};

/* A date after the label (or right before it: "2026-05-10入院"). */
static size_t date_after(const char *s, size_t n, size_t e, char out[REVIEW_DATE_LEN + 1])
{
    size_t v = skip_filler(s, n, e, s_date_fillers);
    size_t l = review_read_date(s + v, n - v, out);
    return l ? v + l : 0;
}

static bool date_before(const char *s, size_t start, char out[REVIEW_DATE_LEN + 1])
{
    size_t b = start;
    while (b > 0 && (s[b - 1] == ' '))
        b--;
    for (size_t back = 8; back <= 18 && back <= b; back++) {
        char tmp[REVIEW_DATE_LEN + 1];
        size_t l = review_read_date(s + b - back, back, tmp);
        if (l == back) {
            memcpy(out, tmp, sizeof(tmp));
            return true;
        }
    }
    return false;
}

static const char *const s_range_words[] = {"至", "到", "~", "～", "-", "—", "to", NULL};

static void read_dates(const char *s, size_t n, review_claim_t *c)
{
    size_t e;
    long p;
    if (c->admission[0] == '\0' && (p = find_label(s, n, L_ADM, &e)) >= 0) {
        size_t after = date_after(s, n, e, c->admission);
        if (after == 0) {
            date_before(s, (size_t)p, c->admission);
        } else if (c->discharge[0] == '\0') {
            /* "住院 2026-05-10 至 2026-05-14" */
            size_t v = skip_filler(s, n, after, s_range_words);
            if (v > after)
                review_read_date(s + v, n - v, c->discharge);
        }
    }
    if (c->discharge[0] == '\0' && (p = find_label(s, n, L_DIS, &e)) >= 0) {
        if (date_after(s, n, e, c->discharge) == 0)
            date_before(s, (size_t)p, c->discharge);
    }
    if (c->onset[0] == '\0' && (p = find_label(s, n, L_ONSET, &e)) >= 0) {
        if (date_after(s, n, e, c->onset) == 0)
            date_before(s, (size_t)p, c->onset);
    }
}

/* Yes/no word at s[i..n): REVIEW_YES / REVIEW_NO / REVIEW_UNKNOWN. */
static review_tri_t yes_no_at(const char *s, size_t n, size_t i)
{
    static const char *const no_words[] = {"否",    "无",   "没有", "没用",     "未使用",
                                           "未用",  "不是", "不",   "not used", "unused",
                                           "false", "none", "no",   NULL};
    static const char *const yes_words[] = {"是",   "有",  "已使用", "已用", "使用",
                                            "用了", "yes", "true",   "used", NULL};
    for (size_t k = 0; no_words[k] != NULL; k++) {
        if (at(s, n, i, no_words[k])) {
            size_t l = strlen(no_words[k]);
            if (is_alpha((unsigned char)no_words[k][0]) && i + l < n &&
                is_alpha((unsigned char)s[i + l]))
                continue;
            return REVIEW_NO;
        }
    }
    for (size_t k = 0; yes_words[k] != NULL; k++) {
        if (at(s, n, i, yes_words[k])) {
            size_t l = strlen(yes_words[k]);
            if (is_alpha((unsigned char)yes_words[k][0]) && i + l < n &&
                is_alpha((unsigned char)s[i + l]))
                continue;
            return REVIEW_YES;
        }
    }
    return REVIEW_UNKNOWN;
}

/* Does s[from..to) contain w? */
static bool has_between(const char *s, size_t from, size_t to, const char *w)
{
    return llm_rules_find(s + from, to - from, w) >= 0;
}

static const char *const s_flag_fillers[] = {"结算", "情况", "used", "?", "？", NULL};

/*
 * A yes/no fact: the value after the label, else the words just before it
 * (未使用社保, 无既往症, not an accident), else `presence` when the label
 * alone means yes (既往症, 意外) or unknown (社保).
 */
static review_tri_t read_flag(const char *s, size_t n, const char *const *set,
                              review_tri_t presence)
{
    size_t e;
    long p = find_label(s, n, set, &e);
    if (p < 0)
        return REVIEW_UNKNOWN;
    size_t v = skip_filler(s, n, e, s_flag_fillers);
    review_tri_t t = yes_no_at(s, n, v);
    if (t != REVIEW_UNKNOWN)
        return t;
    size_t from = (size_t)p > 15 ? (size_t)p - 15 : 0;
    while (from < (size_t)p && ((unsigned char)s[from] & 0xC0) == 0x80)
        from++;
    size_t to = (size_t)p;
    if (has_between(s, from, to, "是否"))
        return REVIEW_UNKNOWN;
    static const char *const neg[] = {"未",   "没",  "不",      "无",     "非",
                                      "not ", "no ", "without", "didn't", NULL};
    for (size_t k = 0; neg[k] != NULL; k++) {
        if (has_between(s, from, to, neg[k]))
            return REVIEW_NO;
    }
    static const char *const pos[] = {"已", "使用", "用了", "有", "used ", "with ", NULL};
    for (size_t k = 0; pos[k] != NULL; k++) {
        if (has_between(s, from, to, pos[k]))
            return REVIEW_YES;
    }
    return presence;
}

/* Parse the header facts found in s[0..n) into c (facts already known are kept). */
static void parse_header(const char *s, size_t n, review_claim_t *c)
{
    if (c->policy_no[0] == '\0') {
        char pno[LLM_POLICY_NO_LEN + 1];
        if (llm_rules_find_policy_no(s, n, pno))
            memcpy(c->policy_no, pno, sizeof(pno));
    }
    read_text_field(s, n, L_DIAG, c->diagnosis, REVIEW_TEXT_MAX);
    read_text_field(s, n, L_HOSP, c->hospital, REVIEW_TEXT_MAX);
    read_dates(s, n, c);
    if (c->social_used == REVIEW_UNKNOWN)
        c->social_used = read_flag(s, n, L_SOCIAL, REVIEW_UNKNOWN);
    if (c->pre_existing == REVIEW_UNKNOWN)
        c->pre_existing = read_flag(s, n, L_PRE, REVIEW_YES);
    if (c->accident == REVIEW_UNKNOWN)
        c->accident = read_flag(s, n, L_ACC, REVIEW_YES);
}

/* A sentence that looks like a bill line although no bill section was marked. */
static bool looks_like_line(const char *s, size_t n)
{
    return !has_any_label(s, n) && review_line_has_money(s, n);
}

/* Where the bill starts: after a bill keyword, else at the first "1." marker; -1 if neither. */
static const char *const s_bill_kw[] = {
    "费用明细",      "费用清单",   "账单明细",   "收费明细", "明细", "itemised bill",
    "itemized bill", "bill lines", "bill items", "bill",     NULL};

static long bill_start(const char *s, size_t n, bool *numbered)
{
    size_t e;
    long kw = find_label(s, n, s_bill_kw, &e);
    *numbered = false;
    for (size_t i = 0; i < n; i += u8len((unsigned char)s[i])) {
        bool boundary =
            i == 0 || s[i - 1] == ' ' || s[i - 1] == '\n' || s[i - 1] == ':' || s[i - 1] == ';' ||
            s[i - 1] == ',' ||
            (i >= 3 && (at(s, n, i - 3, "：") || at(s, n, i - 3, "；") || at(s, n, i - 3, "，") ||
                        at(s, n, i - 3, "。") || at(s, n, i - 3, "\xE3\x80\x80")));
        if (boundary && s[i] == '1' && review_line_marker(s + i, n - i) > 0) {
            *numbered = true;
            if (kw < 0)
                return (long)i;
            break;
        }
    }
    if (kw >= 0)
        return (long)skip_filler(s, n, e, NULL);
    return -1;
}

void review_parse_chat(const char *s, size_t n, bool zh, review_claim_t *c)
{
    bool numbered;
    long bs = bill_start(s, n, &numbered);
    if (bs < 0) {
        /* No bill section: sentences with an amount are lines, the rest is header. */
        size_t i = 0;
        while (i < n) {
            size_t j = i;
            while (j < n && !line_stop_at(s, n, j))
                j += u8len((unsigned char)s[j]);
            if (j > n)
                j = n;
            if (looks_like_line(s + i, j - i))
                review_line_take(s + i, j - i, zh, c);
            else
                parse_header(s + i, j - i, c);
            i = j + (j < n ? line_stop_at(s, n, j) : 0);
        }
        /* Header facts may span sentences ("入院 2026-05-10。诊断..."): read the whole too. */
        parse_header(s, n, c);
        guess_hospital(s, n, c->hospital, REVIEW_TEXT_MAX);
        return;
    }
    parse_header(s, (size_t)bs, c);
    if (numbered) {
        /* Line k runs from marker k to marker k+1; a stop mark inside ends it early and
         * what follows ("。是否使用社保：是") is header text. */
        size_t i = review_line_next_marker(s, n, (size_t)bs, 1);
        if (i > (size_t)bs && has_any_label(s + bs, i - (size_t)bs))
            parse_header(s + bs, i - (size_t)bs, c);
        for (long k = 1; i < n; k++) {
            size_t next = review_line_next_marker(s, n, i + 1, k + 1);
            size_t e = i + review_line_marker(s + i, next - i); /* "2. " is no full stop */
            while (e < next && !line_stop_at(s, n, e))
                e += u8len((unsigned char)s[e]);
            if (e > next)
                e = next;
            review_line_take(s + i, e - i, zh, c);
            if (e < next) {
                size_t rest = e + line_stop_at(s, n, e);
                if (next > rest && has_any_label(s + rest, next - rest))
                    parse_header(s + rest, next - rest, c);
            }
            i = next;
        }
    } else {
        /* Unnumbered: lines end at a stop mark or 、. */
        size_t i = (size_t)bs;
        while (i < n) {
            size_t e = i;
            while (e < n && !line_stop_at(s, n, e) && !dunhao_at(s, n, e))
                e += u8len((unsigned char)s[e]);
            if (e > n)
                e = n;
            if (e > i) {
                review_line_t probe;
                if (review_line_parse(s + i, e - i, &probe) <= 0 && has_any_label(s + i, e - i))
                    parse_header(s + i, e - i, c);
                else
                    review_line_take(s + i, e - i, zh, c);
            }
            if (e >= n)
                break;
            size_t sl = line_stop_at(s, n, e);
            i = e + (sl ? sl : dunhao_at(s, n, e));
        }
    }
    guess_hospital(s, (size_t)bs, c->hospital, REVIEW_TEXT_MAX);
}
