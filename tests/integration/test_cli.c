/*
 * test_cli.c - the command-line contract every mesh-* binary follows
 * (mesh_service.h): --help lists the environment variables and exits 0,
 * --version prints the version, an unknown argument or a bad variable value
 * exits 2 naming the culprit, and SIGTERM drains and exits 0.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh_harness.h"

#define EXIT_WAIT_MS  5000  /* bound on a --help/--version/bad-config run */
#define START_WAIT_MS 10000 /* bound on "started" in a service log */
#define STOP_WAIT_MS  6000  /* bound on exit after SIGTERM (MESH_DRAIN_MS is 2000 here) */

typedef struct {
    const char *svc;
    const char *vars[4]; /* variables its --help must mention */
} cli_case_t;

static const cli_case_t cases[] = {
    {"router", {"MESH_FRONTEND_BIND", "MESH_BACKEND_BIND", "MESH_HEARTBEAT_MS", NULL}},
    {"llm", {"MESH_ROUTER_BACKENDS", "MESH_LLM_BACKEND", "MESH_HEARTBEAT_MS", NULL}},
    {"tools", {"MESH_ROUTER_BACKENDS", "MESH_DATA_DIR", "MESH_WORKER_CAPACITY", NULL}},
    {"memory", {"MESH_ROUTER_BACKENDS", "MESH_REDIS_PORT", "MESH_CONV_TTL_S", NULL}},
    {"gateway", {"MESH_ROUTER_FRONTENDS", "MESH_HTTP_PORT", "MESH_TURN_TIMEOUT_MS", NULL}},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* Failures are collected over all binaries, so one run reports every broken one. */
static char s_problems[8192];

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
    size_t used = strlen(s_problems);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_problems + used, sizeof s_problems - used, fmt, ap);
    va_end(ap);
    used = strlen(s_problems);
    if (used + 1 < sizeof s_problems) {
        s_problems[used] = '\n';
        s_problems[used + 1] = '\0';
    }
}

static void assert_no_problems(void)
{
    if (s_problems[0] != '\0') {
        fprintf(stderr, "%s", s_problems);
        s_problems[0] = '\0';
        fail_msg("see the problems above");
    }
}

/* Run mesh-<svc> with one argument and env; return its exit code and its output. */
static int run_once(const char *svc, const char *arg, const char *const env[], char **output)
{
    char bin[MH_PATH_MAX], name[64];
    mh_bin(svc, bin, sizeof bin);
    static int seq;
    snprintf(name, sizeof name, "%s-cli-%d", svc, ++seq);
    char *argv[] = {bin, (char *)arg, NULL};
    mh_proc_t *p = mh_proc_spawn(name, argv, env);
    assert_non_null(p);
    int rc = mh_proc_wait_exit(p, EXIT_WAIT_MS);
    if (rc == -2) {
        mh_proc_kill9(p);
    }
    *output = mh_log_read(p, 0);
    mh_proc_destroy(&p);
    return rc;
}

static void test_help_lists_variables(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        char *out = NULL;
        int rc = run_once(cases[i].svc, "--help", NULL, &out);
        assert_non_null(out);
        if (rc != 0) {
            fail_msg("mesh-%s --help exited %d: %s", cases[i].svc, rc, out);
        }
        for (size_t k = 0; cases[i].vars[k] != NULL; k++) {
            if (strstr(out, cases[i].vars[k]) == NULL) {
                fail_msg("mesh-%s --help does not mention %s:\n%s", cases[i].svc, cases[i].vars[k],
                         out);
            }
        }
        /* the common settings are listed by every binary */
        assert_non_null(strstr(out, "MESH_LOG_LEVEL"));
        assert_non_null(strstr(out, "MESH_DRAIN_MS"));
        free(out);
    }
}

static void test_version(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        char *out = NULL;
        int rc = run_once(cases[i].svc, "--version", NULL, &out);
        assert_non_null(out);
        char want[64];
        snprintf(want, sizeof want, "mesh-%s ", cases[i].svc);
        if (rc != 0 || strstr(out, want) == NULL) {
            problem("mesh-%s --version exited %d: %s", cases[i].svc, rc, out);
        }
        free(out);
    }
    assert_no_problems();
}

static void test_unknown_argument_exits_2(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        char *out = NULL;
        int rc = run_once(cases[i].svc, "--no-such-flag", NULL, &out);
        if (rc != 2) {
            problem("mesh-%s --no-such-flag exited %d (want 2): %s", cases[i].svc, rc,
                    out != NULL ? out : "");
        }
        free(out);
    }
    assert_no_problems();
}

static void test_bad_value_exits_2_naming_variable(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"MESH_HEARTBEAT_MS=abc", "MESH_HEARTBEAT_MS"},
        {"MESH_HEARTBEAT_MS=-5", "MESH_HEARTBEAT_MS"},
        {"MESH_LOG_LEVEL=loud", "MESH_LOG_LEVEL"},
    };
    for (size_t i = 0; i < N_CASES; i++) {
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            const char *env[] = {bad[k][0], NULL};
            char *out = NULL;
            int rc = run_once(cases[i].svc, NULL, env, &out);
            assert_non_null(out);
            if (rc != 2 || strstr(out, bad[k][1]) == NULL) {
                problem("mesh-%s with %s exited %d (want 2 naming %s): %s", cases[i].svc, bad[k][0],
                        rc, bad[k][1], out);
            }
            free(out);
        }
    }
    /* a service-specific variable too */
    const char *env[] = {"MESH_HTTP_PORT=99999999", NULL};
    char *out = NULL;
    int rc = run_once("gateway", NULL, env, &out);
    if (rc != 2 || out == NULL || strstr(out, "MESH_HTTP_PORT") == NULL) {
        problem("mesh-gateway with MESH_HTTP_PORT=99999999 exited %d: %s", rc,
                out != NULL ? out : "");
    }
    free(out);
    assert_no_problems();
}

static void test_sigterm_exits_0(void **state)
{
    (void)state;
    mh_redis_t *redis = mh_redis_start(0);
    assert_non_null(redis);
    char fe[64], be[64], http[16], rport[16], data[MH_PATH_MAX + 32];
    snprintf(fe, sizeof fe, "tcp://127.0.0.1:%d", mh_free_port());
    snprintf(be, sizeof be, "tcp://127.0.0.1:%d", mh_free_port());
    snprintf(http, sizeof http, "%d", mh_free_port());
    snprintf(rport, sizeof rport, "%d", mh_redis_port(redis));
    const char *dd = getenv("MESH_DATA_DIR");
    snprintf(data, sizeof data, "MESH_DATA_DIR=%s", dd != NULL ? dd : "./data");
    char fe_bind[96], be_bind[96], fe_list[96], be_list[96], http_port[48], redis_port[48];
    snprintf(fe_bind, sizeof fe_bind, "MESH_FRONTEND_BIND=%s", fe);
    snprintf(be_bind, sizeof be_bind, "MESH_BACKEND_BIND=%s", be);
    snprintf(fe_list, sizeof fe_list, "MESH_ROUTER_FRONTENDS=%s", fe);
    snprintf(be_list, sizeof be_list, "MESH_ROUTER_BACKENDS=%s", be);
    snprintf(http_port, sizeof http_port, "MESH_HTTP_PORT=%s", http);
    snprintf(redis_port, sizeof redis_port, "MESH_REDIS_PORT=%s", rport);
    const char *common[] = {"MESH_LOG_LEVEL=info", "MESH_DRAIN_MS=2000", "MESH_HEARTBEAT_MS=100",
                            data};
    const char *specific[N_CASES][3] = {{fe_bind, be_bind, NULL},
                                        {be_list, NULL, NULL},
                                        {be_list, NULL, NULL},
                                        {be_list, redis_port, NULL},
                                        {fe_list, http_port, NULL}};
    mh_proc_t *procs[N_CASES] = {NULL};
    for (size_t i = 0; i < N_CASES; i++) {
        const char *env[8] = {common[0],      common[1],      common[2], common[3],
                              specific[i][0], specific[i][1], NULL};
        char bin[MH_PATH_MAX], name[64];
        mh_bin(cases[i].svc, bin, sizeof bin);
        snprintf(name, sizeof name, "%s-term", cases[i].svc);
        char *argv[] = {bin, NULL};
        procs[i] = mh_proc_spawn(name, argv, env);
        assert_non_null(procs[i]);
    }
    for (size_t i = 0; i < N_CASES; i++) {
        if (!mh_log_wait(procs[i], 0, "started", START_WAIT_MS)) {
            problem("mesh-%s did not log \"started\" (log %s)", cases[i].svc,
                    mh_proc_log(procs[i]));
        }
    }
    assert_no_problems();
    /* gateway and workers first, the router last, as an operator would */
    static const size_t order[] = {4, 1, 2, 3, 0};
    for (size_t k = 0; k < N_CASES; k++) {
        size_t i = order[k];
        if (!mh_proc_alive(procs[i])) {
            problem("mesh-%s died before SIGTERM (log %s)", cases[i].svc, mh_proc_log(procs[i]));
            continue;
        }
        assert_int_equal(mh_proc_signal(procs[i], SIGTERM), 0);
        int rc = mh_proc_wait_exit(procs[i], STOP_WAIT_MS);
        if (rc != 0) {
            problem("mesh-%s exited %d after SIGTERM (want 0; log %s)", cases[i].svc, rc,
                    mh_proc_log(procs[i]));
        }
        mh_proc_destroy(&procs[i]);
    }
    mh_redis_destroy(&redis);
    assert_no_problems();
}

int main(void)
{
    if (mh_init("cli") != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_lists_variables),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_unknown_argument_exits_2),
        cmocka_unit_test(test_bad_value_exits_2_naming_variable),
        cmocka_unit_test(test_sigterm_exits_0),
    };
    return mh_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
