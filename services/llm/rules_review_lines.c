/*
 * rules_review_lines.c - read the bill lines of a chat message: one line is
 * an item, an optional category, the amount and the amount paid by social
 * insurance, in zh or en:
 *   唾液酸酶测定 化验费 120 元 社保支付 0
 *   Sialidase test, lab, 120 CNY, social insurance paid 0
 *   唾液酸酶测定化验费120元社保支付0
 * Fields are separated by blanks, or by commas when the line has any (so
 * English names may contain blanks). Amounts are read into integer fen.
 */
#include <stdio.h>
#include <string.h>

#include "rules_review.h"
#include "rules_review_text.h"

static const char *const s_units[] = {"元", "块", "cny", "rmb", "yuan", NULL};
static const char *const s_currency_prefix[] = {"¥", "￥", "cny", "rmb", NULL};
static const char *const s_social_kw[] = {"社保支付", "社保报销", "社保", "医保支付", "医保报销",
                                          "医保",     "统筹支付", "统筹", "social",   NULL};
static const char *const s_amount_kw[] = {"申请金额", "金额",   "费用金额", "amount",
                                          "claimed",  "billed", NULL};
static const char *const s_fillers[] = {"insurance", "paid", "pays", "payment", "支付",
                                        "报销",      "by",   "of",   "medical", NULL};

/* Known bill categories: a trailing one is split off an item ("唾液酸酶测定化验费"). */
static const char *const s_categories_zh[] = {
    "化验费",   "检验费", "检查费", "床位费", "药品费", "西药费", "中药费",
    "中成药费", "草药费", "手术费", "治疗费", "材料费", "护理费", "诊查费",
    "诊疗费",   "放射费", "输血费", "输氧费", "麻醉费", "其他费", NULL};
static const char *const s_categories_en[] = {
    "lab",         "laboratory",   "examination", "exam",      "bed",       "drug",    "drugs",
    "medicine",    "medicines",    "surgery",     "operation", "treatment", "nursing", "materials",
    "consumables", "consultation", "radiology",   "imaging",   "other",     NULL};

/* A whole token equal to one of words. */
static bool token_is(const char *t, size_t l, const char *const *words)
{
    for (size_t k = 0; words[k] != NULL; k++) {
        if (strlen(words[k]) == l && at(t, l, 0, words[k]))
            return true;
    }
    return false;
}

/*
 * A number at s[i..n): digits with optional thousands commas and decimals,
 * optional 万. Returns bytes consumed (0 if none), value in fen (-1 when out of range).
 */
static size_t read_amount(const char *s, size_t n, size_t i, int64_t *fen)
{
    size_t k = i;
    int64_t whole = 0;
    bool big = false;
    if (k >= n || !is_digit((unsigned char)s[k]))
        return 0;
    while (k < n) {
        unsigned char c = (unsigned char)s[k];
        if (is_digit(c)) {
            if (whole > REVIEW_FEN_MAX)
                big = true;
            else
                whole = whole * 10 + (c - '0');
            k++;
        } else if (c == ',' && k + 3 < n && is_digit((unsigned char)s[k + 1]) &&
                   is_digit((unsigned char)s[k + 2]) && is_digit((unsigned char)s[k + 3]) &&
                   (k + 4 >= n || !is_digit((unsigned char)s[k + 4]))) {
            k++; /* thousands separator */
        } else {
            break;
        }
    }
    int64_t frac = 0; /* in 1/1000 */
    if (k + 1 < n && s[k] == '.' && is_digit((unsigned char)s[k + 1])) {
        k++;
        int digits = 0;
        while (k < n && is_digit((unsigned char)s[k])) {
            if (digits < 3) {
                frac = frac * 10 + (s[k] - '0');
                digits++;
            }
            k++;
        }
        while (digits < 3) {
            frac *= 10;
            digits++;
        }
    }
    int64_t v = whole * 100 + (frac + 5) / 10; /* half-up to the fen */
    if (at(s, n, k, "万")) {
        k += 3;
        if (whole > REVIEW_FEN_MAX / 1000000)
            big = true;
        else
            v *= 10000;
    }
    *fen = (big || v > REVIEW_FEN_MAX) ? -1 : v;
    return k - i;
}

typedef enum { TOK_TEXT, TOK_NUM } tok_kind_t;

#define LINE_TOKENS_MAX 32

typedef struct {
    tok_kind_t kind;
    const char *s;
    size_t len;
    int group; /* comma-separated field index */
    int64_t fen;
} tok_t;

typedef struct {
    tok_t t[LINE_TOKENS_MAX];
    size_t n;
} toks_t;

static void tok_push(toks_t *tk, tok_kind_t kind, const char *s, size_t len, int group, int64_t fen)
{
    if (tk->n >= LINE_TOKENS_MAX || len == 0)
        return;
    tk->t[tk->n++] = (tok_t){kind, s, len, group, fen};
}

/* Does a glued number at s[i] count as an amount (unit after it, currency or keyword before)? */
static bool glued_amount(const char *s, size_t n, size_t start, size_t i, size_t num_len)
{
    size_t after = i + num_len;
    while (space_at(s, n, after))
        after += space_at(s, n, after);
    if (word_at(s, n, after, s_units))
        return true;
    for (size_t k = 0; s_currency_prefix[k] != NULL; k++) {
        size_t l = strlen(s_currency_prefix[k]);
        if (i >= start + l && at(s, n, i - l, s_currency_prefix[k]))
            return true;
    }
    static const char *const kw_end[] = {"社保", "医保", "支付", "报销", "统筹", "金额", NULL};
    for (size_t k = 0; kw_end[k] != NULL; k++) {
        size_t l = strlen(kw_end[k]);
        if (i >= start + l && at(s, n, i - l, kw_end[k]))
            return true;
    }
    return false;
}

/*
 * Split one raw field s[a..b) into text and number tokens: a field that is a
 * number (with unit/currency) is a number; inside text, a number is split
 * out only when it is clearly an amount (unit after, currency or keyword
 * before), so "维生素B12测定" stays one name.
 */
static void split_field(const char *s, size_t a, size_t b, int group, toks_t *tk)
{
    size_t i = a, text_start = a;
    while (i < b) {
        unsigned char c = (unsigned char)s[i];
        bool prefix_ok = i == a || !is_alpha((unsigned char)s[i - 1]) ||
                         (i >= a + 3 && (at(s, b, i - 3, "cny") || at(s, b, i - 3, "rmb")));
        if (is_digit(c) && prefix_ok && (i == a || !is_digit((unsigned char)s[i - 1]))) {
            int64_t fen;
            size_t l = read_amount(s, b, i, &fen);
            if (l > 0 && (i + l == b || glued_amount(s, b, a, i, l))) {
                /* Text before it (minus a currency prefix) is its own token. */
                size_t te = i;
                for (size_t k = 0; s_currency_prefix[k] != NULL; k++) {
                    size_t pl = strlen(s_currency_prefix[k]);
                    if (te >= text_start + pl && at(s, b, te - pl, s_currency_prefix[k])) {
                        te -= pl;
                        break;
                    }
                }
                tok_push(tk, TOK_TEXT, s + text_start, te - text_start, group, 0);
                tok_push(tk, TOK_NUM, s + i, l, group, fen);
                i += l;
                while (space_at(s, b, i))
                    i += space_at(s, b, i);
                i += word_at(s, b, i, s_units);
                text_start = i;
                continue;
            }
            i += l > 0 ? l : 1;
            continue;
        }
        i += u8len(c);
    }
    if (text_start < b)
        tok_push(tk, TOK_TEXT, s + text_start, b - text_start, group, 0);
}

/* Tokenise a bill line: fields by commas (when any) or by blanks. */
static bool tokenize_line(const char *s, size_t n, toks_t *tk)
{
    bool comma_mode = false;
    for (size_t i = 0; i < n; i += u8len((unsigned char)s[i])) {
        if (comma_at(s, n, i)) {
            comma_mode = true;
            break;
        }
    }
    int group = 0;
    size_t i = 0, start = 0;
    while (i <= n) {
        size_t cl = i < n ? comma_at(s, n, i) : 0;
        size_t sl = i < n ? space_at(s, n, i) : 0;
        size_t co = i < n ? colon_at(s, n, i) : 0;
        if (i == n || cl || sl || co) {
            if (i > start)
                split_field(s, start, i, group, tk);
            if (i == n)
                break;
            if (cl || (co && comma_mode))
                group++;
            else if (!comma_mode)
                group++;
            i += cl + sl + co;
            start = i;
            continue;
        }
        i += u8len((unsigned char)s[i]);
    }
    return comma_mode;
}

/* Strip a leading "1." / "1、" / "(1)" / "（1）" / "①" marker; returns the offset after it. */
size_t review_line_marker(const char *s, size_t n)
{
    size_t i = 0;
    while (space_at(s, n, i))
        i += space_at(s, n, i);
    size_t j = i;
    bool paren = false;
    if (at(s, n, j, "(")) {
        j += 1;
        paren = true;
    } else if (at(s, n, j, "（")) {
        j += 3;
        paren = true;
    }
    long v;
    size_t d = read_digits(s, n, j, 3, &v);
    if (d == 0)
        return i;
    j += d;
    if (paren) {
        if (at(s, n, j, ")"))
            j += 1;
        else if (at(s, n, j, "）"))
            j += 3;
        else
            return i;
    } else if (j < n && (s[j] == '.' || s[j] == ')')) {
        j += 1;
    } else if (at(s, n, j, "、") || at(s, n, j, "）") || at(s, n, j, "．")) {
        j += 3;
    } else {
        return i;
    }
    if (j < n && is_digit((unsigned char)s[j]))
        return i; /* "12.50" is an amount, not a marker */
    return j;
}

static bool is_category(const char *t, size_t l)
{
    if (token_is(t, l, s_categories_zh) || token_is(t, l, s_categories_en))
        return true;
    /* Any CJK word ending in 费 ("fee") is a bill category. */
    return l >= 6 && (unsigned char)t[0] >= 0xE0 && at(t, l, l - 3, "费");
}

/* Append token text to out (joined by a space), clipped to cap bytes. */
static void join_token(char *out, size_t cap, const char *s, size_t l)
{
    size_t used = strlen(out);
    if (used > 0 && used < cap) {
        out[used++] = ' ';
        out[used] = '\0';
    }
    if (used >= cap)
        return;
    copy_clip(out + used, cap - used, s, l);
}

/*
 * One bill line. Returns 1 when a line was read into *ln, 0 when the text
 * had no item and no amount, -1 when it had an item but no amount.
 */
int review_line_parse(const char *s, size_t n, review_line_t *ln)
{
    memset(ln, 0, sizeof(*ln));
    size_t m = review_line_marker(s, n);
    toks_t tk = {.n = 0};
    bool comma_mode = tokenize_line(s + m, n - m, &tk);
    bool have_amount = false, pending_social = false, have_social = false;
    int text_groups[LINE_TOKENS_MAX];
    size_t n_text = 0;
    for (size_t k = 0; k < tk.n; k++) {
        tok_t *t = &tk.t[k];
        if (t->kind == TOK_NUM) {
            if (pending_social && !have_social) {
                ln->social_fen = t->fen;
                have_social = true;
                pending_social = false;
            } else if (!have_amount) {
                ln->amount_fen = t->fen;
                have_amount = true;
            }
            continue;
        }
        /* Text: a leading unit belongs to the number before it ("元社保支付"). */
        size_t ul = word_at(t->s, t->len, 0, s_units);
        t->s += ul;
        t->len -= ul;
        if (t->len == 0 || token_is(t->s, t->len, s_units))
            continue;
        size_t sk = word_at(t->s, t->len, 0, s_social_kw);
        if (sk > 0) {
            pending_social = true;
            continue;
        }
        if (pending_social && token_is(t->s, t->len, s_fillers))
            continue;
        if (word_at(t->s, t->len, 0, s_amount_kw) == t->len) {
            continue;
        }
        if (!have_amount && n_text < LINE_TOKENS_MAX)
            text_groups[n_text++] = (int)k;
    }
    if (n_text == 0)
        return have_amount ? -1 : 0;
    /* Item and category: comma mode = first field item, second field category;
     * blank mode = the last word is the category when it looks like one. */
    const tok_t *first = &tk.t[text_groups[0]];
    const tok_t *last = &tk.t[text_groups[n_text - 1]];
    size_t item_toks = n_text;
    if (comma_mode) {
        item_toks = 0;
        while (item_toks < n_text && tk.t[text_groups[item_toks]].group == first->group)
            item_toks++;
    } else if (n_text >= 2 && is_category(last->s, last->len)) {
        item_toks = n_text - 1;
    }
    for (size_t k = 0; k < item_toks; k++)
        join_token(ln->item, REVIEW_ITEM_MAX, tk.t[text_groups[k]].s, tk.t[text_groups[k]].len);
    if (item_toks < n_text) {
        int g = tk.t[text_groups[item_toks]].group;
        for (size_t k = item_toks; k < n_text && tk.t[text_groups[k]].group == g; k++)
            join_token(ln->category, REVIEW_CATEGORY_MAX, tk.t[text_groups[k]].s,
                       tk.t[text_groups[k]].len);
    } else {
        /* "唾液酸酶测定化验费": split a known category glued to the item. */
        size_t il = strlen(ln->item);
        for (size_t k = 0; s_categories_zh[k] != NULL; k++) {
            size_t cl = strlen(s_categories_zh[k]);
            if (il > cl && strcmp(ln->item + il - cl, s_categories_zh[k]) == 0) {
                memcpy(ln->category, s_categories_zh[k], cl + 1);
                ln->item[il - cl] = '\0';
                break;
            }
        }
    }
    if (ln->item[0] == '\0')
        return have_amount ? -1 : 0;
    if (!have_amount)
        return -1;
    return 1;
}

/* Add one parsed line (or note the problem). */
void review_line_take(const char *s, size_t n, bool zh, review_claim_t *c)
{
    review_line_t ln;
    int r = review_line_parse(s, n, &ln);
    if (r == 0)
        return;
    if (r < 0 || ln.amount_fen < 0 || ln.social_fen < 0) {
        char name[64];
        copy_clip(name, 48, ln.item[0] ? ln.item : s, ln.item[0] ? strlen(ln.item) : n);
        review_problem(
            c, zh ? "费用明细“%s”缺少有效金额；" : "bill line \"%s\" has no valid amount; ", name);
        return;
    }
    if (c->n_lines >= REVIEW_LINES_MAX) {
        review_problem(c,
                       zh ? "费用明细超过 %d 行，多出的行未读取；"
                          : "more than %d bill lines: the rest were not read; ",
                       REVIEW_LINES_MAX);
        return;
    }
    if (ln.social_fen > ln.amount_fen)
        ln.social_fen = ln.amount_fen;
    c->lines[c->n_lines++] = ln;
}

/* Next numbering marker "k." at a boundary in s[i..n), or n. */
size_t review_line_next_marker(const char *s, size_t n, size_t i, long k)
{
    char want[24];
    size_t wl = (size_t)snprintf(want, sizeof(want), "%ld", k);
    for (; i < n; i += u8len((unsigned char)s[i])) {
        if (!at(s, n, i, want) || (i + wl < n && is_digit((unsigned char)s[i + wl])))
            continue;
        if (i > 0 && (is_digit((unsigned char)s[i - 1]) || is_alpha((unsigned char)s[i - 1]) ||
                      s[i - 1] == '.' || s[i - 1] == '-' || s[i - 1] == '/'))
            continue;
        if (review_line_marker(s + i, n - i) > 0)
            return i;
    }
    return n;
}

bool review_line_has_money(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (word_at(s, n, i, s_units) || word_at(s, n, i, s_currency_prefix) ||
            word_at(s, n, i, s_social_kw))
            return true;
    }
    return false;
}
