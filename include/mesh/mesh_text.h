/*
 * mesh_text.h - small text helpers shared by the router and the workers.
 */
#ifndef MESH_TEXT_H
#define MESH_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int mesh_utf8_valid(const char *s, size_t len);

/* "zh" if the text contains any CJK ideograph (U+3400..U+9FFF, U+F900..U+FAFF), else "en". */
const char *mesh_text_lang(const char *s);

/* Number of UTF-8 code points in s[0..len) (invalid bytes count as one each). */
size_t mesh_utf8_len(const char *s, size_t len);

#endif
