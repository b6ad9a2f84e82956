/*
 * test_llm_sse_fast.c - the SSE parser (services/llm/sse.c) parses chunks
 * with mesh_json_parse and hands what that refuses to jansson: the verdicts
 * must stay jansson's (JSON_ALLOW_NUL): "\u0000" in content is accepted and
 * delivered, invalid UTF-8 or malformed JSON is a malformed event, and the
 * first content delta is reported as soon as its chunk is parsed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "sse.h"

typedef struct {
    char text[256];
    size_t len;
    int calls;
} deltas_t;

static void on_delta(const char *text, size_t len, void *arg)
{
    deltas_t *d = arg;
    assert_true(d->len + len <= sizeof(d->text));
    memcpy(d->text + d->len, text, len);
    d->len += len;
    d->calls++;
}

#define CHUNK(content)                                                                             \
    "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":" content "}}]}\n\n"

static void test_nul_in_content_is_kept(void **state)
{
    (void)state;
    llm_sse_t *p = llm_sse_new();
    deltas_t d = {0};
    llm_sse_set_delta_cb(p, on_delta, &d);
    static const char body[] = CHUNK("\"a\\u0000b\"") "data: [DONE]\n\n";
    assert_int_equal(llm_sse_feed(p, body, sizeof(body) - 1), 0);
    assert_int_equal(llm_sse_finish(p), 0);
    assert_int_equal(d.len, 3);
    assert_memory_equal(d.text, "a\0b", 3);
    assert_int_equal(llm_sse_malformed(p), 0);
    llm_sse_destroy(&p);
}

static void test_bad_utf8_and_bad_json_are_malformed(void **state)
{
    (void)state;
    llm_sse_t *p = llm_sse_new();
    deltas_t d = {0};
    llm_sse_set_delta_cb(p, on_delta, &d);
    static const char body[] = CHUNK("\"ok \"") CHUNK("\"\xFF\"") CHUNK("\"x\" oops")
        CHUNK("\"\\ud800\"") CHUNK("\"end\"") "data: [DONE]\n\n";
    assert_int_equal(llm_sse_feed(p, body, sizeof(body) - 1), 0);
    assert_int_equal(llm_sse_finish(p), MESH_EPROTO);
    assert_int_equal(llm_sse_malformed(p), 3);
    assert_int_equal(d.calls, 2);
    assert_memory_equal(d.text, "ok end", 6);
    llm_sse_destroy(&p);
}

static void test_first_delta_reported_at_once(void **state)
{
    (void)state;
    llm_sse_t *p = llm_sse_new();
    deltas_t d = {0};
    llm_sse_set_delta_cb(p, on_delta, &d);
    /* The role chunk (empty content) says nothing; the first token's chunk is
     * reported the moment its blank line arrives, before any further byte. */
    static const char role[] = CHUNK("\"\"");
    static const char tok[] = CHUNK("\"Hello\"");
    assert_int_equal(llm_sse_feed(p, role, sizeof(role) - 1), 0);
    assert_int_equal(d.calls, 0);
    assert_int_equal(llm_sse_feed(p, tok, sizeof(tok) - 2), 0); /* without the last LF */
    assert_int_equal(d.calls, 0);
    assert_int_equal(llm_sse_feed(p, "\n", 1), 0);
    assert_int_equal(d.calls, 1);
    assert_memory_equal(d.text, "Hello", 5);
    assert_string_equal(llm_sse_model(p), "m");
    llm_sse_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nul_in_content_is_kept),
        cmocka_unit_test(test_bad_utf8_and_bad_json_are_malformed),
        cmocka_unit_test(test_first_delta_reported_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
