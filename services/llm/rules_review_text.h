/*
 * rules_review_text.h - byte-level helpers shared by the review parsers
 * (rules_review_parse.c: header facts; rules_review_lines.c: bill lines).
 * Inputs are peer bytes: every helper takes the buffer length and never reads
 * past it; UTF-8 is not assumed valid.
 */
#ifndef LLM_RULES_REVIEW_TEXT_H
#define LLM_RULES_REVIEW_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static inline bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static inline bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* s[i..n) starts with lit (ASCII case-insensitive; lit is lower case). */
static inline bool at(const char *s, size_t n, size_t i, const char *lit)
{
    size_t l = strlen(lit);
    if (i > n || n - i < l)
        return false;
    for (size_t k = 0; k < l; k++) {
        if (lower((unsigned char)s[i + k]) != (unsigned char)lit[k])
            return false;
    }
    return true;
}

/* Bytes of the UTF-8 sequence led by c (1 for a stray byte). */
static inline size_t u8len(unsigned char c)
{
    if (c >= 0xF0 && c <= 0xF7)
        return 4;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xC0 && c <= 0xDF)
        return 2;
    return 1;
}

/* Whitespace at s[i]: ASCII blank or the ideographic space; its length, else 0. */
static inline size_t space_at(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return 0;
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '\t')
        return 1;
    if (at(s, n, i, "\xE3\x80\x80"))
        return 3;
    return 0;
}

/* A full stop / semicolon / newline: ends a bill line and a header value. */
static inline size_t stop_at(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return 0;
    unsigned char c = (unsigned char)s[i];
    if (c == ';' || c == '\n' || c == '\r')
        return 1;
    if (at(s, n, i, "\xEF\xBC\x9B") || at(s, n, i, "\xE3\x80\x82")) /* ； 。 */
        return 3;
    return 0;
}

/* A stop mark, or an English full stop (". " or a final "."; not "12.50"): ends a bill line. */
static inline size_t line_stop_at(const char *s, size_t n, size_t i)
{
    size_t l = stop_at(s, n, i);
    if (l == 0 && i < n && s[i] == '.' && (i + 1 == n || s[i + 1] == ' '))
        l = 1;
    return l;
}

/* A comma (not the thousands comma of "1,200"). */
static inline size_t comma_at(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return 0;
    if (s[i] == ',') {
        if (i > 0 && i + 1 < n && is_digit((unsigned char)s[i - 1]) &&
            is_digit((unsigned char)s[i + 1]))
            return 0;
        return 1;
    }
    if (at(s, n, i, "\xEF\xBC\x8C")) /* ， */
        return 3;
    return 0;
}

static inline size_t dunhao_at(const char *s, size_t n, size_t i) /* 、 */
{
    return at(s, n, i, "\xE3\x80\x81") ? 3 : 0;
}

static inline size_t colon_at(const char *s, size_t n, size_t i)
{
    if (i < n && (s[i] == ':' || s[i] == '='))
        return 1;
    return at(s, n, i, "\xEF\xBC\x9A") ? 3 : 0; /* ： */
}

/* Copy s[0..len) into out (size cap+1), trimmed, cut back to a code point boundary. */
static inline void copy_clip(char *out, size_t cap, const char *s, size_t len)
{
    while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len > cap) {
        len = cap;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(out, s, len);
    out[len] = '\0';
}

/* Length of the first of words at s[i] (ASCII words must end there), else 0. */
static inline size_t word_at(const char *s, size_t n, size_t i, const char *const *words)
{
    for (size_t k = 0; words[k] != NULL; k++) {
        size_t l = strlen(words[k]);
        if (!at(s, n, i, words[k]))
            continue;
        if (is_alpha((unsigned char)words[k][0]) && i + l < n && is_alpha((unsigned char)s[i + l]))
            continue;
        return l;
    }
    return 0;
}

/* Read 1..max digits; returns count, value in *v. */
static inline size_t read_digits(const char *s, size_t n, size_t i, size_t max, long *v)
{
    size_t k = 0;
    *v = 0;
    while (i + k < n && k < max && is_digit((unsigned char)s[i + k])) {
        *v = *v * 10 + (s[i + k] - '0');
        k++;
    }
    return k;
}

#endif
