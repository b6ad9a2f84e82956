/*
 * test_log.c - log line format, level filter and sanitising
 * (lib/mesh/log.c). stderr is captured through a pipe.
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
