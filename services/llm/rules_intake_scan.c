/*
 * rules_intake_scan.c - the byte-level scanners the claims_intake engine's
 * extraction and intent detection share: UTF-8 steps, clauses, keyword
 * search with negation (rules_intake.h, "scanning").
 */
#include <string.h>

#include "rules.h"
#include "rules_intake.h"

/* ---- UTF-8 and character helpers ---- */

size_t intake_u8len(unsigned char c)
{
    if (c >= 0xF0 && c <= 0xF7)
        return 4;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xC0 && c <= 0xDF)
        return 2;
    return 1;
}

/* Start of the code point before i (i > 0). */
size_t intake_u8prev(const char *s, size_t i)
{
    size_t j = i - 1;
    while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80)
        j--;
    return j;
}

bool intake_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

bool intake_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* 1 if the code point at s+i equals one of the NUL-separated list in set ("月\0日\0"). */
bool intake_cp_in(const char *s, size_t len, size_t i, const char *const *set)
{
    for (size_t k = 0; set[k] != NULL; k++) {
        size_t kl = strlen(set[k]);
        if (i + kl <= len && memcmp(s + i, set[k], kl) == 0)
            return true;
    }
    return false;
}

/* Clause marks: ，。！？；、 , . ! ? ; newline. */
static const char *const s_clause_marks[] = {"，", "。", "！", "？", "；", ",",
                                             "!",  "?",  ";",  "\n", "\r", NULL};

static bool intake_is_clause_mark(const char *s, size_t len, size_t i)
{
    if (s[i] == '.' && (i + 1 >= len || s[i + 1] == ' ' || s[i + 1] == '\n'))
        return true;
    return intake_cp_in(s, len, i, s_clause_marks);
}

/* The clause [*a, *b) around offset i. */
void intake_clause_at(const char *s, size_t len, size_t i, size_t *a, size_t *b)
{
    size_t x = i;
    while (x > 0) {
        size_t p = intake_u8prev(s, x);
        if (intake_is_clause_mark(s, len, p))
            break;
        x = p;
    }
    size_t y = i;
    while (y < len && !intake_is_clause_mark(s, len, y))
        y += intake_u8len((unsigned char)s[y]);
    *a = x;
    *b = y > len ? len : y;
}

/* Trim ASCII blanks and full-width spaces / trailing 了 marks off [*a, *b). */
void intake_trim(const char *s, size_t *a, size_t *b)
{
    while (*a < *b && (s[*a] == ' ' || s[*a] == '\t' || s[*a] == ':'))
        (*a)++;
    while (*b > *a && (s[*b - 1] == ' ' || s[*b - 1] == '\t'))
        (*b)--;
    while (*b >= *a + 3 && (memcmp(s + *b - 3, "：", 3) == 0 || memcmp(s + *b - 3, "　", 3) == 0))
        *b -= 3;
    while (*a + 3 <= *b && (memcmp(s + *a, "：", 3) == 0 || memcmp(s + *a, "　", 3) == 0))
        *a += 3;
}

/* Strict enough UTF-8 check: lead byte, continuation bytes, no truncation. */
bool intake_utf8_ok(const char *v, size_t n)
{
    const unsigned char *u = (const unsigned char *)v;
    for (size_t i = 0; i < n;) {
        size_t l = intake_u8len(u[i]);
        if ((l == 1 && u[i] >= 0x80) || i + l > n || u[i] == 0)
            return false;
        for (size_t k = 1; k < l; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                return false;
        }
        i += l;
    }
    return true;
}

/* First offset of any keyword, -1 if none; *kl its length. */
long intake_find_any(const char *s, size_t len, const char *const *kws, size_t *kl)
{
    long best = -1;
    for (size_t k = 0; kws[k] != NULL; k++) {
        long p = llm_rules_find(s, len, kws[k]);
        if (p >= 0 && (best < 0 || p < best)) {
            best = p;
            if (kl != NULL)
                *kl = strlen(kws[k]);
        }
    }
    return best;
}

/*
 * 1 if kw occurs at least once NOT negated: no negation word (没 无 不 未 /
 * no, not, n't, nobody, never) in the 9 bytes (3 CJK characters or a short
 * English phrase) before it.
 */
static const char *const s_neg[] = {"没",   "无",      "不",     "未",   "no ", "not ",
                                    "n't ", "nobody ", "never ", "none", NULL};

bool intake_has_positive(const char *s, size_t len, const char *kw)
{
    size_t kl = strlen(kw);
    size_t from = 0;
    while (from < len) {
        long p = llm_rules_find(s + from, len - from, kw);
        if (p < 0)
            return false;
        size_t at = from + (size_t)p;
        size_t ca, cb;
        intake_clause_at(s, len, at, &ca, &cb);
        size_t w0 = at > 12 ? at - 12 : 0;
        if (w0 < ca)
            w0 = ca;
        else
            while (w0 > ca && ((unsigned char)s[w0] & 0xC0) == 0x80)
                w0--;
        bool neg = false;
        for (size_t k = 0; s_neg[k] != NULL && !neg; k++)
            neg = llm_rules_find(s + w0, at - w0, s_neg[k]) >= 0;
        if (!neg)
            return true;
        from = at + kl;
    }
    return false;
}
