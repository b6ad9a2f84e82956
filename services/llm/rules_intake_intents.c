/*
 * rules_intake_intents.c - what a customer message asks for besides facts
 * (handoff triggers, batch mode, confirmation) and the numbered answers of a
 * batch-mode reply.
 */
#include <string.h>

#include "rules.h"
#include "rules_intake.h"

/* ---- intents ---- */

static const char *const s_batch[] = {"一次性",
                                      "一起发",
                                      "都发给我",
                                      "都发我",
                                      "所有问题",
                                      "全部问题",
                                      "一起问",
                                      "有点忙",
                                      "all the questions",
                                      "all questions",
                                      "at once",
                                      "in one go",
                                      "in one message",
                                      "i'm busy",
                                      "i am busy",
                                      NULL};
static const char *const s_dispute[] = {
    "不同意", "不认",   "有争议",       "争议",    "不服",        "不承认",       "不接受",
    "扯皮",   "不认可", "disagree",     "dispute", "don't agree", "do not agree", "doesn't agree",
    "denies", "deny",   "won't accept", "refuses", NULL};
static const char *const s_death[] = {"死亡", "身亡",   "去世",  "死了", "遇难",
                                      "died", "killed", "death", "dead", NULL};
static const char *const s_injury[] = {"受伤",     "伤了",    "住院",  "骨折", "流血",
                                       "伤者",     "送医",    "injur", "hurt", "hospital",
                                       "bleeding", "wounded", NULL};
static const char *const s_confirm[] = {
    "确认", "没问题",  "是的",    "正确",  "没错", "可以", "好的",      "对的",
    "yes",  "correct", "confirm", "right", "ok",   "sure", "that's it", NULL};
static const char *const s_deny[] = {"不对",   "不是",    "错了",  "有误",        "修改",
                                     "改一下", "不正确",  "wrong", "not correct", "incorrect",
                                     "change", "mistake", NULL};

/* "对" alone as a yes: not part of 对方/对面/不对/对了吗 ... */
static bool bare_dui(const char *s, size_t len)
{
    size_t from = 0;
    while (from < len) {
        long p = llm_rules_find(s + from, len - from, "对");
        if (p < 0)
            return false;
        size_t at = from + (size_t)p;
        bool before_ok = at < 3 || memcmp(s + at - 3, "不", 3) != 0;
        bool after_ok =
            at + 6 > len || (memcmp(s + at + 3, "方", 3) != 0 && memcmp(s + at + 3, "面", 3) != 0 &&
                             memcmp(s + at + 3, "于", 3) != 0);
        if (before_ok && after_ok)
            return true;
        from = at + 3;
    }
    return false;
}

void intake_intents(const char *s, size_t len, intake_intents_t *it)
{
    memset(it, 0, sizeof(*it));
    if (len > INTAKE_TEXT_MAX)
        len = INTAKE_TEXT_MAX;
    it->human = llm_rules_wants_human(s, len);
    it->batch = llm_rules_has_any(s, len, s_batch);
    it->dispute = llm_rules_has_any(s, len, s_dispute);
    for (size_t k = 0; s_death[k] != NULL && !it->death; k++)
        it->death = intake_has_positive(s, len, s_death[k]);
    for (size_t k = 0; s_injury[k] != NULL && !it->injury; k++)
        it->injury = intake_has_positive(s, len, s_injury[k]);
    it->injury = it->injury || it->death;
    it->deny = llm_rules_has_any(s, len, s_deny);
    /* English "no" as a word at the start counts as a denial. */
    if (len >= 2 && (s[0] == 'n' || s[0] == 'N') && (s[1] == 'o' || s[1] == 'O') &&
        (len == 2 || !intake_is_alpha((unsigned char)s[2])))
        it->deny = true;
    if (!it->deny)
        it->confirm = llm_rules_has_any(s, len, s_confirm) || bare_dui(s, len);
}

/* ---- numbered batch answers ---- */

static const char *const s_circled[] = {"①", "②", "③", "④", "⑤", "⑥", "⑦", "⑧", "⑨", "⑩",
                                        "⑪", "⑫", "⑬", "⑭", "⑮", "⑯", "⑰", "⑱", "⑲", "⑳"};

/* A marker at s+i: its number (1-based) and *mlen, or 0. */
static int marker_at(const char *s, size_t len, size_t i, size_t *mlen)
{
    for (int k = 0; k < 20; k++) {
        size_t cl = strlen(s_circled[k]);
        if (i + cl <= len && memcmp(s + i, s_circled[k], cl) == 0) {
            *mlen = cl;
            return k + 1;
        }
    }
    size_t j = i;
    bool paren = false;
    if (j < len && s[j] == '(') {
        paren = true;
        j++;
    } else if (j + 3 <= len && memcmp(s + j, "（", 3) == 0) {
        paren = true;
        j += 3;
    }
    if (j >= len || !intake_is_digit((unsigned char)s[j]))
        return 0;
    int num = 0;
    size_t d0 = j;
    while (j < len && intake_is_digit((unsigned char)s[j]) && j - d0 < 2)
        num = num * 10 + (s[j++] - '0');
    if (j < len && intake_is_digit((unsigned char)s[j]))
        return 0;
    static const char *const ends[] = {".", "、", ")", "）", ":", "：", NULL};
    static const char *const pends[] = {")", "）", NULL};
    const char *const *e = paren ? pends : ends;
    for (size_t k = 0; e[k] != NULL; k++) {
        size_t el = strlen(e[k]);
        if (j + el <= len && memcmp(s + j, e[k], el) == 0) {
            size_t after = j + el;
            bool dotlike = e[k][0] == '.' || e[k][0] == ':';
            if (dotlike && after < len && intake_is_digit((unsigned char)s[after]))
                return 0; /* "3.5万", "3:30" */
            *mlen = after - i;
            return num;
        }
    }
    return 0;
}

size_t intake_split_numbered(const char *s, size_t len, size_t n_items, size_t *starts,
                             size_t *lens)
{
    size_t pos[INTAKE_BATCH_ITEMS + 1], mend[INTAKE_BATCH_ITEMS + 1];
    int nums[INTAKE_BATCH_ITEMS + 1];
    size_t n = 0;
    for (size_t k = 0; k < n_items; k++) {
        starts[k] = 0;
        lens[k] = 0;
    }
    for (size_t i = 0; i < len && n <= INTAKE_BATCH_ITEMS;) {
        bool boundary =
            i == 0 || s[i - 1] == ' ' || s[i - 1] == '\n' || s[i - 1] == '\t' || s[i - 1] == ',' ||
            s[i - 1] == ';' ||
            (i >= 3 && (memcmp(s + i - 3, "，", 3) == 0 || memcmp(s + i - 3, "；", 3) == 0 ||
                        memcmp(s + i - 3, "。", 3) == 0 || memcmp(s + i - 3, "　", 3) == 0));
        size_t ml = 0;
        int num = boundary ? marker_at(s, len, i, &ml) : 0;
        if (num >= 1 && (size_t)num <= n_items && n < INTAKE_BATCH_ITEMS + 1) {
            pos[n] = i;
            mend[n] = i + ml;
            nums[n] = num;
            n++;
            i += ml;
            continue;
        }
        i += intake_u8len((unsigned char)s[i]);
    }
    for (size_t m = 0; m < n; m++) {
        size_t a = mend[m], b = m + 1 < n ? pos[m + 1] : len;
        /* drop the separator before the next marker */
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\n' || s[b - 1] == ',' || s[b - 1] == ';'))
            b--;
        while (b >= a + 3 && (memcmp(s + b - 3, "，", 3) == 0 || memcmp(s + b - 3, "；", 3) == 0 ||
                              memcmp(s + b - 3, "。", 3) == 0))
            b -= 3;
        intake_trim(s, &a, &b);
        starts[nums[m] - 1] = a;
        lens[nums[m] - 1] = b - a;
    }
    return n;
}
