/*
 * test_log.c - log line formats (text and JSON), level filter and run-time
 * level steps, structured events and context, content switch, redaction
 * and sanitising (lib/mesh/log.c, log_redact.c). stderr is captured
 * through a pipe; every JSON line is parsed strictly with jansson.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

#define CAPTURE_MAX 65536

typedef struct {
    int saved;
    int rd;
} capture_t;

static void capture_begin(capture_t *c)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    close(fds[1]);
    c->rd = fds[0];
}

/* Restore stderr and return what was written (caller frees). */
static char *capture_end(capture_t *c)
{
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    char *buf = calloc(1, CAPTURE_MAX + 1);
    assert_non_null(buf);
    size_t got = 0;
    for (;;) {
        ssize_t r = read(c->rd, buf + got, CAPTURE_MAX - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(c->rd);
    return buf;
}

static void assert_matches(const char *s, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    if (rc != 0) {
        print_error("'%s' does not match '%s'\n", s, pattern);
        fail();
    }
}

static void test_line_format(void **state)
{
    (void)state;
    mesh_log_set_format(MESH_LOG_FORMAT_TEXT);
    capture_t c;
    mesh_log_init("router", MESH_LOG_DEBUG);
    capture_begin(&c);
    mesh_log_info("broker", "worker %s ready (%d)", "w1", 3);
    mesh_log_error(NULL, "no subsystem");
    char *out = capture_end(&c);
    assert_matches(out, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                        "info router \\[broker\\] worker w1 ready \\(3\\)\n"
                        "[0-9T:.Z-]{24} error router \\[-\\] no subsystem\n$");
    free(out);
}

static void test_level_filter(void **state)
{
    (void)state;
    mesh_log_set_format(MESH_LOG_FORMAT_TEXT);
    capture_t c;
    mesh_log_init("svc", MESH_LOG_WARN);
    assert_int_equal(mesh_log_get_level(), MESH_LOG_WARN);
    capture_begin(&c);
    mesh_log_debug("x", "d");
    mesh_log_info("x", "i");
    mesh_log_warn("x", "w");
    mesh_log_error("x", "e");
    mesh_log_set_level(MESH_LOG_OFF);
    mesh_log_error("x", "suppressed");
    mesh_log_write(MESH_LOG_OFF, "x", "never a level of its own");
    char *out = capture_end(&c);
    assert_null(strstr(out, " d\n"));
    assert_null(strstr(out, " i\n"));
    assert_non_null(strstr(out, " warn svc [x] w\n"));
    assert_non_null(strstr(out, " error svc [x] e\n"));
    assert_null(strstr(out, "suppressed"));
    assert_null(strstr(out, "never"));
    free(out);
    mesh_log_set_level(MESH_LOG_INFO);
}

static void test_one_line_per_event(void **state)
{
    (void)state;
    mesh_log_set_format(MESH_LOG_FORMAT_TEXT);
    capture_t c;
    mesh_log_init("svc", MESH_LOG_INFO);
    char *big = malloc(10000);
    assert_non_null(big);
    memset(big, 'z', 9999);
    big[9999] = '\0';
    capture_begin(&c);
    mesh_log_info("x", "forged\nline\r%s", "\x1b[31m");
    mesh_log_info("x", "%s", big);
    char *out = capture_end(&c);
    /* exactly two newlines: two events, two lines */
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    assert_non_null(strstr(out, "forged?line??[31m\n"));
    char *second = strchr(out, '\n') + 1;
    assert_true(strlen(second) < 2048 + 1);
    assert_non_null(strstr(second, "zzz...\n"));
    free(out);
    free(big);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    capture_t c;
    mesh_log_init("svc", MESH_LOG_INFO);
    capture_begin(&c);
    errno = ECONNRESET;
    mesh_log_info("x", "keeps errno");
    int e = errno;
    char *out = capture_end(&c);
    assert_int_equal(e, ECONNRESET);
    free(out);
}

static void test_service_name_truncated(void **state)
{
    (void)state;
    mesh_log_set_format(MESH_LOG_FORMAT_TEXT);
    capture_t c;
    mesh_log_init("a-very-long-service-name-that-goes-on-and-on", MESH_LOG_INFO);
    capture_begin(&c);
    mesh_log_info("x", "m");
    char *out = capture_end(&c);
    assert_non_null(strstr(out, " a-very-long-service-name-that-g [x] m\n"));
    free(out);
    mesh_log_init("svc", MESH_LOG_INFO);
}

static void test_level_parse(void **state)
{
    (void)state;
    mesh_log_level_t l;
    assert_int_equal(mesh_log_level_parse("debug", &l), 0);
    assert_int_equal(l, MESH_LOG_DEBUG);
    assert_int_equal(mesh_log_level_parse("INFO", &l), 0);
    assert_int_equal(l, MESH_LOG_INFO);
    assert_int_equal(mesh_log_level_parse("Warn", &l), 0);
    assert_int_equal(l, MESH_LOG_WARN);
    assert_int_equal(mesh_log_level_parse("error", &l), 0);
    assert_int_equal(l, MESH_LOG_ERROR);
    assert_int_equal(mesh_log_level_parse("off", &l), 0);
    assert_int_equal(l, MESH_LOG_OFF);
    assert_int_equal(mesh_log_level_parse("verbose", &l), MESH_EINVAL);
    assert_int_equal(mesh_log_level_parse("", &l), MESH_EINVAL);
    assert_int_equal(mesh_log_level_parse(NULL, &l), MESH_EINVAL);
}

static void test_sanitize(void **state)
{
    (void)state;
    char out[4 * MESH_LOG_SAMPLE_MAX + 4];
    assert_string_equal(mesh_log_sanitize("abc", 3, out, sizeof(out)), "abc");
    assert_string_equal(mesh_log_sanitize("a\nb\0c\\", 6, out, sizeof(out)), "a\\x0ab\\x00c\\x5c");
    assert_string_equal(mesh_log_sanitize("\xff\x7f", 2, out, sizeof(out)), "\\xff\\x7f");
    assert_string_equal(mesh_log_sanitize(NULL, 5, out, sizeof(out)), "");
    assert_string_equal(mesh_log_sanitize("", 0, out, sizeof(out)), "");

    /* more than MESH_LOG_SAMPLE_MAX bytes: the first ones and "..." */
    char in[200];
    memset(in, 'q', sizeof(in));
    mesh_log_sanitize(in, sizeof(in), out, sizeof(out));
    assert_int_equal(strlen(out), MESH_LOG_SAMPLE_MAX + 3);
    assert_string_equal(out + MESH_LOG_SAMPLE_MAX, "...");

    /* the worst case fits the documented size exactly */
    memset(in, 0x01, sizeof(in));
    mesh_log_sanitize(in, sizeof(in), out, sizeof(out));
    assert_int_equal(strlen(out), 4 * MESH_LOG_SAMPLE_MAX + 3);

    /* a smaller buffer never overflows and never cuts an escape */
    char small[10];
    memset(small, 'X', sizeof(small));
    mesh_log_sanitize("\x01\x02\x03", 3, small, 8);
    assert_string_equal(small, "\\x01...");
    assert_int_equal(small[8], 'X');
    assert_ptr_equal(mesh_log_sanitize("a", 1, NULL, 0), NULL);
}

/* ---- JSON lines ------------------------------------------------------------ */

#define TP_IN "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* Split out into lines and parse each strictly; returns the count, fills objs. */
static int parse_lines(char *out, json_t **objs, int max)
{
    int n = 0;
    char *line = out;
    while (*line != '\0') {
        char *nl = strchr(line, '\n');
        assert_non_null(nl); /* every line is terminated */
        *nl = '\0';
        assert_true(n < max);
        json_error_t jerr;
        objs[n] = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
        if (objs[n] == NULL) {
            print_error("not JSON (%s): %s\n", jerr.text, line);
            fail();
        }
        assert_true(json_is_object(objs[n]));
        assert_true(strlen(line) < 2048);
        n++;
        line = nl + 1;
    }
    return n;
}

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void free_objs(json_t **objs, int n)
{
    for (int i = 0; i < n; i++)
        json_decref(objs[i]);
}

static void test_json_line_shape_and_escaping(void **state)
{
    (void)state;
    capture_t c;
    mesh_log_set_format(MESH_LOG_FORMAT_JSON);
    mesh_log_init("router", MESH_LOG_DEBUG);
    capture_begin(&c);
    mesh_log_info("broker", "worker %s ready (%d)", "w1", 3);
    /* quotes, backslashes, every kind of control byte, invalid UTF-8, CJK */
    mesh_log_warn("x", "q\"b\\s\nnl\rcr\ttab\x01\x1f\x7f bad\xff\xc3( ok:保单");
    mesh_log_error(NULL, "no subsystem");
    char *out = capture_end(&c);
    json_t *o[8];
    int n = parse_lines(out, o, 8);
    assert_int_equal(n, 3);
    const char *keys[] = {"ts",      "level", "service", "event", "trace_id",
                          "span_id", "conv",  "tenant",  "msg"};
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            assert_non_null(jstr(o[i], keys[k]));
    assert_matches(jstr(o[0], "ts"),
                   "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$");
    assert_string_equal(jstr(o[0], "level"), "info");
    assert_string_equal(jstr(o[0], "service"), "router");
    assert_string_equal(jstr(o[0], "event"), "broker");
    assert_string_equal(jstr(o[0], "msg"), "worker w1 ready (3)");
    assert_string_equal(jstr(o[0], "trace_id"), "");
    assert_string_equal(jstr(o[1], "msg"),
                        "q\"b\\s\nnl\rcr\ttab\x01\x1f\x7f bad\xef\xbf\xbd\xef\xbf\xbd( ok:保单");
    assert_string_equal(jstr(o[2], "event"), "-");
    assert_string_equal(jstr(o[2], "level"), "error");
    free_objs(o, n);
    free(out);
}

static void test_json_truncated_line_stays_valid(void **state)
{
    (void)state;
    capture_t c;
    mesh_log_set_format(MESH_LOG_FORMAT_JSON);
    mesh_log_init("svc", MESH_LOG_INFO);
    char *big = malloc(10000);
    assert_non_null(big);
    /* escapes that expand 6x must not overflow or split the line either */
    for (int i = 0; i < 9999; i++)
        big[i] = (i % 2) ? 'z' : '\x01';
    big[9999] = '\0';
    capture_begin(&c);
    mesh_log_info("x", "%s", big);
    mesh_log_ev(MESH_LOG_INFO, "big.field", NULL, MESH_LF_S("small", "kept"),
                MESH_LF_S("huge", big + 1), MESH_LF_I("after", 7));
    char *out = capture_end(&c);
    json_t *o[4];
    int n = parse_lines(out, o, 4);
    assert_int_equal(n, 2);
    assert_true(json_is_true(json_object_get(o[0], "truncated")));
    const char *msg = jstr(o[0], "msg");
    assert_non_null(msg);
    assert_string_equal(msg + strlen(msg) - 3, "...");
    /* a field that does not fit is dropped whole; the others stay */
    assert_string_equal(jstr(o[1], "small"), "kept");
    assert_null(json_object_get(o[1], "huge"));
    assert_int_equal(json_integer_value(json_object_get(o[1], "after")), 7);
    assert_true(json_is_true(json_object_get(o[1], "truncated")));
    free_objs(o, n);
    free(out);
    free(big);
}

static void test_json_event_fields_and_context(void **state)
{
    (void)state;
    capture_t c;
    mesh_log_set_format(MESH_LOG_FORMAT_JSON);
    mesh_log_init("gateway", MESH_LOG_DEBUG);
    mesh_log_ctx_t ctx;
    mesh_log_ctx_set(&ctx, TP_IN, "conv-1", "acme");
    assert_string_equal(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(ctx.span_id, "00f067aa0ba902b7");
    mesh_log_ctx_t bad;
    mesh_log_ctx_set(&bad, "00-XYZ", "has space", NULL);
    assert_string_equal(bad.trace_id, "");
    assert_string_equal(bad.conv, "");

    capture_begin(&c);
    mesh_log_ev(MESH_LOG_WARN, "turn.failed", &ctx, MESH_LF_S("code", "deadline_exceeded"),
                MESH_LF_I("status", -5), MESH_LF_U("ms", 30000), MESH_LF_D("ratio", 0.5),
                MESH_LF_B("retried", true), MESH_LF_S("none", NULL));
    /* the printf API picks up the current context */
    const mesh_log_ctx_t *prev = mesh_log_ctx_swap(&ctx);
    assert_null(prev);
    mesh_log_error("http", "POST /v1/x 504");
    assert_ptr_equal(mesh_log_ctx_swap(prev), &ctx);
    mesh_log_error("http", "after");
    char *out = capture_end(&c);
    json_t *o[4];
    int n = parse_lines(out, o, 4);
    assert_int_equal(n, 3);
    assert_string_equal(jstr(o[0], "event"), "turn.failed");
    assert_string_equal(jstr(o[0], "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(jstr(o[0], "span_id"), "00f067aa0ba902b7");
    assert_string_equal(jstr(o[0], "conv"), "conv-1");
    assert_string_equal(jstr(o[0], "tenant"), "acme");
    assert_string_equal(jstr(o[0], "code"), "deadline_exceeded");
    assert_int_equal(json_integer_value(json_object_get(o[0], "status")), -5);
    assert_int_equal(json_integer_value(json_object_get(o[0], "ms")), 30000);
    assert_true(json_real_value(json_object_get(o[0], "ratio")) == 0.5);
    assert_true(json_is_true(json_object_get(o[0], "retried")));
    assert_true(json_is_null(json_object_get(o[0], "none")));
    assert_null(json_object_get(o[0], "msg"));
    assert_string_equal(jstr(o[1], "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(jstr(o[1], "msg"), "POST /v1/x 504");
    assert_string_equal(jstr(o[2], "trace_id"), "");
    free_objs(o, n);
    free(out);
}

static void test_text_format_shows_context_and_fields(void **state)
{
    (void)state;
    capture_t c;
    mesh_log_set_format(MESH_LOG_FORMAT_TEXT);
    mesh_log_init("memory", MESH_LOG_INFO);
    mesh_log_ctx_t ctx;
    mesh_log_ctx_set(&ctx, TP_IN, "c9", NULL);
    capture_begin(&c);
    mesh_log_ev(MESH_LOG_INFO, "op.done", &ctx, MESH_LF_S("op", "turn.end"), MESH_LF_I("n", 2));
    char *out = capture_end(&c);
    assert_non_null(strstr(out, " info memory [op.done] trace_id=4bf92f3577b34da6a3ce929d0e0e4736 "
                                "span_id=00f067aa0ba902b7 conv=c9 op=turn.end n=2\n"));
    free(out);
    mesh_log_set_format(MESH_LOG_FORMAT_JSON);
}

static void test_content_off_by_default_and_redacted_when_on(void **state)
{
    (void)state;
    capture_t c;
    const char *text = "我的手机 13812345678，身份证 11010519491231002X，车牌 沪A·12345";
    mesh_log_set_format(MESH_LOG_FORMAT_JSON);
    mesh_log_init("llm", MESH_LOG_INFO);
    assert_false(mesh_log_get_content());
    capture_begin(&c);
    mesh_log_ev(MESH_LOG_INFO, "call", NULL, MESH_LF_TEXT("text", text), MESH_LF_I("len", 9));
    mesh_log_set_content(true);
    mesh_log_ev(MESH_LOG_INFO, "call", NULL, MESH_LF_TEXT("text", text));
    mesh_log_set_content(false);
    /* printf text and plain string fields are redacted whatever the switch */
    mesh_log_info("x", "user said %s", text);
    mesh_log_ev(MESH_LOG_INFO, "y", NULL, MESH_LF_S("arg", "+86 138-1234-5678"));
    char *out = capture_end(&c);
    assert_null(strstr(out, "13812345678"));
    assert_null(strstr(out, "1234-5678"));
    assert_null(strstr(out, "11010519491231002X"));
    assert_null(strstr(out, "12345"));
    json_t *o[8];
    int n = parse_lines(out, o, 8);
    assert_int_equal(n, 4);
    assert_string_equal(jstr(o[0], "text"), "[omitted]");
    assert_string_equal(jstr(o[1], "text"), "我的手机 [phone]，身份证 [id]，车牌 [plate]");
    assert_string_equal(jstr(o[2], "msg"), "user said 我的手机 [phone]，身份证 [id]，车牌 [plate]");
    assert_string_equal(jstr(o[3], "arg"), "[phone]");
    free_objs(o, n);
    free(out);
}

static void redacts_to(const char *in, const char *want)
{
    char out[512];
    size_t n = mesh_log_redact(in, strlen(in), out, sizeof(out));
    assert_int_equal(n, strlen(out));
    if (strcmp(out, want) != 0) {
        print_error("redact('%s') = '%s', want '%s'\n", in, out, want);
        fail();
    }
}

static void test_redaction_patterns(void **state)
{
    (void)state;
    /* ID numbers: 17 digits + digit or X */
    redacts_to("id 110105194912310021 end", "id [id] end");
    redacts_to("id:11010519491231002x.", "id:[id].");
    redacts_to("1101051949123100211", "1101051949123100211"); /* 19 digits: not an id */
    /* phones */
    redacts_to("13812345678", "[phone]");
    redacts_to("call 138 1234 5678 now", "call [phone] now");
    redacts_to("+8613812345678", "[phone]");
    redacts_to("+86 139-1234-5678", "[phone]");
    redacts_to("86-15912345678", "[phone]");
    redacts_to("电话19912345678。", "电话[phone]。");
    redacts_to("12812345678", "12812345678");     /* second digit 2: not a mobile */
    redacts_to("138123456789", "138123456789");   /* 12 digits */
    redacts_to("a13812345678b", "a13812345678b"); /* inside a hex id */
    redacts_to("ts=1714567890123", "ts=1714567890123");
    /* plates, with and without the middle dot, new-energy (6) too */
    redacts_to("沪A12345", "[plate]");
    redacts_to("车牌沪A·12345的车", "车牌[plate]的车");
    redacts_to("粤B•D12345", "[plate]");
    redacts_to("京AD12345", "[plate]");
    redacts_to("沪a12345", "沪a12345");       /* lowercase letter */
    redacts_to("沪A1234", "沪A1234");         /* too short */
    redacts_to("保单 P10023", "保单 P10023"); /* policy numbers stay */
    /* a small buffer: never a partial mask or a cut UTF-8 sequence */
    char small[8];
    mesh_log_redact("保单13812345678", strlen("保单13812345678"), small, sizeof(small));
    assert_string_equal(small, "保单");
    assert_int_equal(mesh_log_redact(NULL, 3, small, sizeof(small)), 0);
    assert_string_equal(small, "");
}

static void test_level_steps_and_format_parse(void **state)
{
    (void)state;
    mesh_log_set_level(MESH_LOG_INFO);
    assert_int_equal(mesh_log_level_up(), MESH_LOG_DEBUG);
    assert_int_equal(mesh_log_level_up(), MESH_LOG_DEBUG); /* floor */
    assert_int_equal(mesh_log_level_down(), MESH_LOG_INFO);
    assert_int_equal(mesh_log_level_down(), MESH_LOG_WARN);
    assert_int_equal(mesh_log_level_down(), MESH_LOG_ERROR);
    assert_int_equal(mesh_log_level_down(), MESH_LOG_OFF);
    assert_int_equal(mesh_log_level_down(), MESH_LOG_OFF); /* ceiling */
    mesh_log_set_level(MESH_LOG_INFO);
    mesh_log_format_t f;
    assert_int_equal(mesh_log_format_parse("JSON", &f), 0);
    assert_int_equal(f, MESH_LOG_FORMAT_JSON);
    assert_int_equal(mesh_log_format_parse("text", &f), 0);
    assert_int_equal(f, MESH_LOG_FORMAT_TEXT);
    assert_int_equal(mesh_log_format_parse("xml", &f), MESH_EINVAL);
    assert_int_equal(mesh_log_format_parse(NULL, &f), MESH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_one_line_per_event),
        cmocka_unit_test(test_errno_preserved),
        cmocka_unit_test(test_service_name_truncated),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_json_line_shape_and_escaping),
        cmocka_unit_test(test_json_truncated_line_stays_valid),
        cmocka_unit_test(test_json_event_fields_and_context),
        cmocka_unit_test(test_text_format_shows_context_and_fields),
        cmocka_unit_test(test_content_off_by_default_and_redacted_when_on),
        cmocka_unit_test(test_redaction_patterns),
        cmocka_unit_test(test_level_steps_and_format_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
