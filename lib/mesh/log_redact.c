/*
 * log_redact.c - mask personal data before text reaches a log line
 * (mesh_log_redact in mesh_log.h).
 *
 * Three patterns matter for insurance conversations in China: resident ID
 * numbers, mainland mobile numbers and vehicle plates. The scanner is a
 * hand-written matcher rather than regex(3): it runs on every logged string,
 * must not allocate, and has to understand the UTF-8 province characters of
 * plates. A match must start and end at an "ASCII alphanumeric boundary" so
 * hex request ids, timestamps and longer numbers are not mangled.
 */
#include <stdbool.h>
#include <string.h>

#include "mesh/mesh_log.h"

#define ID_DIGITS      17 /* then one check character, digit or X */
#define PHONE_DIGITS   11
#define PLATE_TAIL_MIN 5
#define PLATE_TAIL_MAX 6
#define UTF8_CJK_BYTES 3
#define MASK_ID        "[id]"
#define MASK_PHONE     "[phone]"
#define MASK_PLATE     "[plate]"
#define PHONE_CC       "86"
#define PHONE_CC_LEN   2
#define MIDDLE_DOT     "\xc2\xb7"     /* U+00B7, the dot printed on plates */
#define BULLET         "\xe2\x80\xa2" /* U+2022, a common stand-in for it */
#define KATAKANA_DOT   "\xe3\x83\xbb" /* U+30FB, another stand-in */

/* The one-character abbreviations of provinces used on plates (UTF-8). */
static const char s_provinces[] = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* True when position i of t[0..len) is not preceded/followed by an ASCII alnum. */
static bool boundary_before(const unsigned char *t, size_t i)
{
    return i == 0 || !is_alnum(t[i - 1]);
}

static bool boundary_at(const unsigned char *t, size_t len, size_t i)
{
    return i >= len || !is_alnum(t[i]);
}

/* 18-character resident ID number at i: its length or 0. */
static size_t match_id(const unsigned char *t, size_t len, size_t i)
{
    if (len - i < ID_DIGITS + 1)
        return 0;
    for (size_t k = 0; k < ID_DIGITS; k++)
        if (!is_digit(t[i + k]))
            return 0;
    unsigned char last = t[i + ID_DIGITS];
    if (!is_digit(last) && last != 'X' && last != 'x')
        return 0;
    return boundary_at(t, len, i + ID_DIGITS + 1) ? ID_DIGITS + 1 : 0;
}

/* The 11 digits 1[3-9]xxxxxxxxx at i, allowing one blank or dash after digit 3 and 7. */
static size_t match_mobile(const unsigned char *t, size_t len, size_t i)
{
    size_t p = i;
    for (int d = 0; d < PHONE_DIGITS; d++) {
        if ((d == 3 || d == 7) && p < len && (t[p] == ' ' || t[p] == '-') && p + 1 < len &&
            is_digit(t[p + 1]))
            p++;
        if (p >= len || !is_digit(t[p]))
            return 0;
        if (d == 0 && t[p] != '1')
            return 0;
        if (d == 1 && (t[p] < '3' || t[p] > '9'))
            return 0;
        p++;
    }
    return boundary_at(t, len, p) ? p - i : 0;
}

/* A mobile number at i, optionally after "+86" / "86" and one blank or dash. */
static size_t match_phone(const unsigned char *t, size_t len, size_t i)
{
    size_t p = i;
    if (t[p] == '+')
        p++;
    if (len - p >= PHONE_CC_LEN && memcmp(t + p, PHONE_CC, PHONE_CC_LEN) == 0) {
        size_t q = p + PHONE_CC_LEN;
        if (q < len && (t[q] == ' ' || t[q] == '-'))
            q++;
        size_t n = q < len ? match_mobile(t, len, q) : 0;
        if (n > 0)
            return q + n - i;
    }
    if (p != i)
        return 0; /* a '+' must be followed by the country code */
    return match_mobile(t, len, i);
}

static bool is_province(const unsigned char *t, size_t len, size_t i)
{
    if (len - i < UTF8_CJK_BYTES)
        return false;
    for (size_t k = 0; k + UTF8_CJK_BYTES <= sizeof(s_provinces) - 1; k += UTF8_CJK_BYTES)
        if (memcmp(t + i, s_provinces + k, UTF8_CJK_BYTES) == 0)
            return true;
    return false;
}

static size_t skip_sep(const unsigned char *t, size_t len, size_t p, const char *sep)
{
    size_t n = strlen(sep);
    return (len - p >= n && memcmp(t + p, sep, n) == 0) ? p + n : p;
}

/* A plate at i (province, letter, optional dot, 5..6 of [A-Z0-9]): its length or 0. */
static size_t match_plate(const unsigned char *t, size_t len, size_t i)
{
    if (!is_province(t, len, i))
        return 0;
    size_t p = i + UTF8_CJK_BYTES;
    if (p >= len || t[p] < 'A' || t[p] > 'Z')
        return 0;
    p++;
    size_t q = skip_sep(t, len, p, MIDDLE_DOT);
    if (q == p)
        q = skip_sep(t, len, p, BULLET);
    if (q == p)
        q = skip_sep(t, len, p, KATAKANA_DOT);
    if (q == p && q < len && (t[q] == ' ' || t[q] == '-'))
        q++;
    p = q;
    size_t n = 0;
    while (p + n < len && n < PLATE_TAIL_MAX &&
           (is_digit(t[p + n]) || (t[p + n] >= 'A' && t[p + n] <= 'Z')))
        n++;
    if (n < PLATE_TAIL_MIN || !boundary_at(t, len, p + n))
        return 0;
    return p + n - i;
}

/* Bytes of the UTF-8 sequence starting with c (1 for anything unexpected). */
static size_t utf8_seq_len(unsigned char c)
{
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    if (c >= 0xe0)
        return c <= 0xef ? 3 : 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    return 1;
}

size_t mesh_log_redact(const char *text, size_t len, char *out, size_t out_size)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t o = 0;

    if (out == NULL || out_size == 0)
        return 0;
    if (text == NULL)
        len = 0;
    size_t i = 0;
    while (i < len) {
        const char *mask = NULL;
        size_t n = 0;
        if (boundary_before(t, i)) {
            if (is_digit(t[i])) {
                n = match_id(t, len, i);
                mask = MASK_ID;
            }
            if (n == 0 && (is_digit(t[i]) || t[i] == '+')) {
                n = match_phone(t, len, i);
                mask = MASK_PHONE;
            }
            if (n == 0 && t[i] >= 0xe0) {
                n = match_plate(t, len, i);
                mask = MASK_PLATE;
            }
        }
        const char *src;
        size_t copy;
        if (n > 0) {
            src = mask;
            copy = strlen(mask);
        } else {
            n = utf8_seq_len(t[i]);
            if (n > len - i)
                n = len - i;
            src = text + i;
            copy = n;
        }
        if (o + copy > out_size - 1)
            break; /* never cut a sequence or a mask in half */
        memcpy(out + o, src, copy);
        o += copy;
        i += n;
    }
    out[o] = '\0';
    return o;
}
