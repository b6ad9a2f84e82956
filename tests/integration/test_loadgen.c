/*
 * test_loadgen.c - the benchmark's load generator against a real mesh:
 * closed loop completes turns with no errors and reports consistent numbers;
 * open loop holds the requested rate; an unreachable gateway is reported as
 * connection errors with exit status 1; bad arguments exit 2.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh_harness.h"

#define RUN_WAIT_MS 30000

/* Run mesh-loadgen with args; return its exit code and its JSON line (parsed, owned). */
static int run_loadgen(char *const args[], json_t **json)
{
    char bin[MH_PATH_MAX], name[32];
    static int seq;
    mh_bin("loadgen", bin, sizeof bin);
    snprintf(name, sizeof name, "loadgen-%d", ++seq);
    char *argv[24] = {bin};
    for (size_t i = 0; args[i] != NULL && i + 2 < sizeof argv / sizeof argv[0]; i++) {
        argv[i + 1] = args[i];
    }
    mh_proc_t *p = mh_proc_spawn(name, argv, NULL);
    assert_non_null(p);
    int rc = mh_proc_wait_exit(p, RUN_WAIT_MS);
    if (rc == -2) {
        mh_proc_kill9(p);
    }
    char *out = mh_log_read(p, 0);
    assert_non_null(out);
    *json = NULL;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == '{') {
            json_decref(*json);
            *json = json_loads(line, 0, NULL);
        }
    }
    free(out);
    mh_proc_destroy(&p);
    return rc;
}

static double num(const json_t *j, const char *key)
{
    return json_number_value(json_object_get(j, key));
}

static void test_closed_loop(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "%s", mh_mesh_url(mh_group_mesh));
    char *args[] = {"-u", url,   "-c", "4",   "-t", "3",   "-d", "1.5",
                    "-w", "0.3", "-P", "400", "-l", "mix", NULL};
    json_t *j = NULL;
    int rc = run_loadgen(args, &j);
    assert_int_equal(rc, 0);
    assert_non_null(j);
    assert_string_equal(mh_json_str(j, "mode"), "closed");
    assert_true(num(j, "turns_ok") >= 10);
    assert_int_equal((int)num(j, "errors"), 0);
    /* percentiles are ordered and the rate matches the count */
    assert_true(num(j, "p50_ms") > 0);
    assert_true(num(j, "p50_ms") <= num(j, "p90_ms"));
    assert_true(num(j, "p90_ms") <= num(j, "p99_ms"));
    assert_true(num(j, "p99_ms") <= num(j, "max_ms"));
    double tps = num(j, "turns_ok") / 1.5;
    assert_true(num(j, "turns_per_s") > tps * 0.99 && num(j, "turns_per_s") < tps * 1.01);
    json_decref(j);
}

static void test_open_loop_holds_rate(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "%s", mh_mesh_url(mh_group_mesh));
    char *args[] = {"-u", url, "-c", "4", "-d", "2", "-w", "0.5", "-r", "40", NULL};
    json_t *j = NULL;
    assert_int_equal(run_loadgen(args, &j), 0);
    assert_non_null(j);
    assert_string_equal(mh_json_str(j, "mode"), "open");
    assert_int_equal((int)num(j, "errors"), 0);
    /* 40 turns/s for 2 s: the schedule is kept, neither exceeded nor starved */
    double tps = num(j, "turns_per_s");
    if (tps < 32 || tps > 48) {
        fail_msg("open loop at 40 turns/s measured %.1f turns/s", tps);
    }
    json_decref(j);
}

static void test_unreachable_gateway(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", mh_free_port());
    char *args[] = {"-u", url, "-c", "2", "-d", "0.5", "-w", "0", NULL};
    json_t *j = NULL;
    assert_int_equal(run_loadgen(args, &j), 1);
    assert_non_null(j);
    assert_int_equal((int)num(j, "turns_ok"), 0);
    assert_true(json_integer_value(json_object_get(json_object_get(j, "errors_by"), "connect")) >
                0);
    json_decref(j);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char *bad1[] = {"-c", "0", NULL};
    char *bad2[] = {"-l", "fr", NULL};
    char *bad3[] = {"-u", "http://127.0.0.1:99999", NULL};
    json_t *j = NULL;
    assert_int_equal(run_loadgen(bad1, &j), 2);
    assert_null(j);
    assert_int_equal(run_loadgen(bad2, &j), 2);
    assert_int_equal(run_loadgen(bad3, &j), 2);
}

int main(void)
{
    if (mh_init("loadgen") != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_closed_loop),
        cmocka_unit_test(test_open_loop_holds_rate),
        cmocka_unit_test(test_unreachable_gateway),
        cmocka_unit_test(test_bad_arguments),
    };
    return mh_finish(cmocka_run_group_tests(tests, mh_group_setup, mh_group_teardown));
}
