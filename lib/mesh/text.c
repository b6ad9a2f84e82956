/*
 * text.c - UTF-8 validation, code point counting and language detection
 * (mesh_text.h).
 *
 * One decoder (utf8_next) serves all three functions so they agree on what a
 * valid sequence is: the shortest form only (no overlongs), no UTF-16
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF, and no truncated
 * sequence at the end of the buffer (RFC 3629, section 4).
 */
#include "mesh/mesh_text.h"

#include <stdint.h>
#include <string.h>

#define UNICODE_MAX 0x10FFFFu

/* CJK ranges that make a text "zh" (mesh_text.h). */
#define CJK_EXT_A_FIRST  0x3400u
#define CJK_UNIFIED_LAST 0x9FFFu
#define CJK_COMPAT_FIRST 0xF900u
#define CJK_COMPAT_LAST  0xFAFFu

/*
 * Decode one code point from s[0..len) (len >= 1). On success stores the
 * code point in *cp and returns the sequence length (1..4). Returns 0 when
 * the bytes at s do not start a valid sequence (the caller then skips one
 * byte).
 */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char b0 = s[0];
    size_t need;
    uint32_t c;
    uint32_t min;

    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
        c = b0 & 0x1Fu;
        min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        c = b0 & 0x0Fu;
        min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        c = b0 & 0x07u;
        min = 0x10000;
    } else {
        /* continuation byte, 0xC0/0xC1 (always overlong) or 0xF5.. (beyond U+10FFFF) */
        return 0;
    }
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0u) != 0x80u)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min || c > UNICODE_MAX || (c >= 0xD800u && c <= 0xDFFFu))
        return 0;
    *cp = c;
    return need;
}

int mesh_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    if (len > 0 && s == NULL)
        return 0;
    while (i < len) {
        uint32_t cp;
        size_t n;

        /* Fast path for ASCII runs, the common case in protocol strings. */
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        n = utf8_next(p + i, len - i, &cp);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

static int is_cjk(uint32_t cp)
{
    return (cp >= CJK_EXT_A_FIRST && cp <= CJK_UNIFIED_LAST) ||
           (cp >= CJK_COMPAT_FIRST && cp <= CJK_COMPAT_LAST);
}

const char *mesh_text_lang(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len;
    size_t i = 0;

    if (s == NULL)
        return "en";
    len = strlen(s);
    while (i < len) {
        uint32_t cp;
        size_t n;

        if (p[i] < 0x80) {
            i++;
            continue;
        }
        n = utf8_next(p + i, len - i, &cp);
        if (n == 0) {
            i++; /* invalid byte: skip it, keep looking */
            continue;
        }
        if (is_cjk(cp))
            return "zh";
        i += n;
    }
    return "en";
}

size_t mesh_utf8_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    size_t count = 0;

    if (s == NULL)
        return 0;
    while (i < len) {
        uint32_t cp;
        size_t n = p[i] < 0x80 ? 1 : utf8_next(p + i, len - i, &cp);

        i += n == 0 ? 1 : n;
        count++;
    }
    return count;
}
