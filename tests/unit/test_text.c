/*
 * test_text.c - UTF-8 validity, code point counting and language detection
 * (lib/mesh/text.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/mesh_text.h"

#define VALID(lit) mesh_utf8_valid((lit), sizeof(lit) - 1)

static void test_utf8_valid_accepts(void **state)
{
    (void)state;
    assert_int_equal(VALID(""), 1);
    assert_int_equal(VALID("hello"), 1);
    assert_int_equal(VALID("\xc2\x80"), 1);                 /* U+0080, smallest 2-byte */
    assert_int_equal(VALID("\xdf\xbf"), 1);                 /* U+07FF */
    assert_int_equal(VALID("\xe0\xa0\x80"), 1);             /* U+0800, smallest 3-byte */
    assert_int_equal(VALID("\xe4\xbf\x9d\xe5\x8d\x95"), 1); /* 保单 */
    assert_int_equal(VALID("\xed\x9f\xbf"), 1);             /* U+D7FF, just below surrogates */
    assert_int_equal(VALID("\xee\x80\x80"), 1);             /* U+E000, just above */
    assert_int_equal(VALID("\xef\xbf\xbf"), 1);             /* U+FFFF */
    assert_int_equal(VALID("\xf0\x90\x80\x80"), 1);         /* U+10000 */
    assert_int_equal(VALID("\xf4\x8f\xbf\xbf"), 1);         /* U+10FFFF */
    assert_int_equal(VALID("a\0b"), 1);                     /* NUL is a valid code point */
}

static void test_utf8_valid_rejects_overlongs(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xc0\xaf"), 0); /* '/' in 2 bytes */
    assert_int_equal(VALID("\xc1\xbf"), 0);
    assert_int_equal(VALID("\xe0\x80\xaf"), 0);     /* '/' in 3 bytes */
    assert_int_equal(VALID("\xe0\x9f\xbf"), 0);     /* U+07FF in 3 bytes */
    assert_int_equal(VALID("\xf0\x80\x80\xaf"), 0); /* '/' in 4 bytes */
    assert_int_equal(VALID("\xf0\x8f\xbf\xbf"), 0); /* U+FFFF in 4 bytes */
}

static void test_utf8_valid_rejects_surrogates_and_range(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xed\xa0\x80"), 0);             /* U+D800 */
    assert_int_equal(VALID("\xed\xbf\xbf"), 0);             /* U+DFFF */
    assert_int_equal(VALID("\xed\xa0\xbd\xed\xb8\x80"), 0); /* CESU-8 pair */
    assert_int_equal(VALID("\xf4\x90\x80\x80"), 0);         /* U+110000 */
    assert_int_equal(VALID("\xf5\x80\x80\x80"), 0);
    assert_int_equal(VALID("\xff"), 0);
    assert_int_equal(VALID("\xfe"), 0);
}

static void test_utf8_valid_rejects_truncation(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xe4\xbf"), 0); /* 保 cut after 2 of 3 bytes */
    assert_int_equal(VALID("ok\xe4"), 0);
    assert_int_equal(VALID("\xf0\x90\x80"), 0);
    assert_int_equal(VALID("\xc2"), 0);
    assert_int_equal(VALID("\x80"), 0);         /* lone continuation */
    assert_int_equal(VALID("\xe4\x41\x9d"), 0); /* ASCII inside a sequence */
    /* A valid string cut by its length argument is invalid too. */
    const char *s = "\xe4\xbf\x9d";
    assert_int_equal(mesh_utf8_valid(s, 3), 1);
    assert_int_equal(mesh_utf8_valid(s, 2), 0);
    assert_int_equal(mesh_utf8_valid(NULL, 0), 1);
}

static void test_utf8_len(void **state)
{
    (void)state;
    assert_int_equal(mesh_utf8_len("", 0), 0);
    assert_int_equal(mesh_utf8_len("abc", 3), 3);
    const char *zh = "\xe4\xbf\x9d\xe5\x8d\x95P1"; /* 保单P1 */
    assert_int_equal(mesh_utf8_len(zh, strlen(zh)), 4);
    assert_int_equal(mesh_utf8_len("\xf0\x9f\x98\x80", 4), 1); /* one emoji */
    /* invalid bytes count one each */
    assert_int_equal(mesh_utf8_len("\xff\xfe"
                                   "a",
                                   3),
                     3);
    assert_int_equal(mesh_utf8_len("\xe4\xbf", 2), 2); /* truncated 3-byte sequence */
    assert_int_equal(mesh_utf8_len("\xc0\xaf", 2), 2); /* overlong: two invalid bytes */
}

static void test_text_lang(void **state)
{
    (void)state;
    assert_string_equal(mesh_text_lang("What does policy P10023 cover?"), "en");
    assert_string_equal(mesh_text_lang("\xe6\x88\x91\xe7\x9a\x84\xe4\xbf\x9d\xe5\x8d\x95 P10023"),
                        "zh"); /* 我的保单 */
    assert_string_equal(mesh_text_lang("P10023 \xe5\x85\x8d\xe8\xb5\x94\xe9\xa2\x9d?"),
                        "zh"); /* one CJK word in a mixed text */
    assert_string_equal(mesh_text_lang(""), "en");
    assert_string_equal(mesh_text_lang(NULL), "en");
    /* Range edges: U+3400 and U+9FFF are CJK, U+33FF and U+A000 are not. */
    assert_string_equal(mesh_text_lang("\xe3\x90\x80"), "zh");
    assert_string_equal(mesh_text_lang("\xe9\xbf\xbf"), "zh");
    assert_string_equal(mesh_text_lang("\xe3\x8f\xbf"), "en");
    assert_string_equal(mesh_text_lang("\xea\x80\x80"), "en");
    /* CJK compatibility ideographs U+F900..U+FAFF */
    assert_string_equal(mesh_text_lang("\xef\xa4\x80"), "zh");
    assert_string_equal(mesh_text_lang("\xef\xab\xbf"), "zh");
    assert_string_equal(mesh_text_lang("\xef\xac\x80"), "en");
    /* Non-CJK scripts and punctuation stay "en" (Japanese kana, full-width comma). */
    assert_string_equal(mesh_text_lang("\xe3\x81\x82\xef\xbc\x8c"), "en");
    assert_string_equal(mesh_text_lang("caf\xc3\xa9"), "en");
    /* Invalid bytes are skipped, a later ideograph still counts. */
    assert_string_equal(mesh_text_lang("\xff\xe4\xbf\x9d"), "zh");
    /* An overlong encoding never decodes into an ideograph. */
    assert_string_equal(mesh_text_lang("\xf0\x84\xbf\x9d"), "en");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid_accepts),
        cmocka_unit_test(test_utf8_valid_rejects_overlongs),
        cmocka_unit_test(test_utf8_valid_rejects_surrogates_and_range),
        cmocka_unit_test(test_utf8_valid_rejects_truncation),
        cmocka_unit_test(test_utf8_len),
        cmocka_unit_test(test_text_lang),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
