/*
 * test_service.c - the service skeleton (lib/mesh/service.c).
 *
 * mesh_service_main() returns its exit code instead of exiting, so each case
 * forks a child that runs it with a tiny test service and reports what the
 * skeleton did through an event pipe ("S" started, "D" drain called, "H"
 * reload, "X" destroyed). The parent waits on that pipe with poll() and a
 * bounded deadline, sends real signals, and checks the exit code and the
 * captured stdout/stderr. Every child is reaped (SIGKILL on a timeout).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh/mesh.h"

#define WAIT_MS 5000
#define OUT_MAX 16384

/* ------------------------------------------------------------ test services */

static int s_evfd = -1; /* child: where markers go */

static void mark(const char *s)
{
    ssize_t w = write(s_evfd, s, strlen(s));
    (void)w;
}

typedef struct {
    uv_timer_t timer;
    int stuck; /* drain never calls done */
} tsvc_t;

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void free_on_close(uv_handle_t *h)
{
    free(h->data);
}

static int tsvc_start_common(mesh_service_ctx_t *ctx, void **state, int stuck)
{
    tsvc_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MESH_ENOMEM;
    s->stuck = stuck;
    uv_timer_init(ctx->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_tick, 60000, 60000);
    *state = s;
    char line[256];
    snprintf(line, sizeof(line),
             "S hb=%llu live=%u rmin=%llu rmax=%llu drain=%llu maxmsg=%lld hwm=%d/%d zctx=%d\n",
             (unsigned long long)ctx->heartbeat_ms, ctx->liveness,
             (unsigned long long)ctx->reconnect_min_ms, (unsigned long long)ctx->reconnect_max_ms,
             (unsigned long long)ctx->drain_ms, (long long)ctx->zopts.max_msg_size,
             ctx->zopts.sndhwm, ctx->zopts.rcvhwm, ctx->zctx != NULL);
    mark(line);
    return 0;
}

static int tsvc_start(mesh_service_ctx_t *ctx, void **state)
{
    return tsvc_start_common(ctx, state, 0);
}

static int tsvc_start_stuck(mesh_service_ctx_t *ctx, void **state)
{
    return tsvc_start_common(ctx, state, 1);
}

static void tsvc_drain(void *state, uint64_t grace_ms, void (*done)(mesh_service_ctx_t *ctx),
                       mesh_service_ctx_t *ctx)
{
    tsvc_t *s = state;
    char line[64];
    snprintf(line, sizeof(line), "D grace=%llu\n", (unsigned long long)grace_ms);
    mark(line);
    if (s->stuck)
        return;
    uv_timer_stop(&s->timer);
    done(ctx);
}

static void tsvc_destroy(void **state)
{
    tsvc_t *s = *state;
    mark("X\n");
    if (s != NULL) {
        /* memory goes with the handle's close callback: the loop must run again */
        uv_close((uv_handle_t *)&s->timer, free_on_close);
    }
    *state = NULL;
}

static void tsvc_reload(void *state)
{
    (void)state;
    mark("H\n");
}

static int fail_start(mesh_service_ctx_t *ctx, void **state)
{
    (void)ctx;
    (void)state;
    mark("S\n");
    return MESH_EIO;
}

/* Ends by itself: a one-shot timer that closes itself. */
static void natural_close(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, free_on_close);
}

static int natural_start(mesh_service_ctx_t *ctx, void **state)
{
    uv_timer_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return MESH_ENOMEM;
    uv_timer_init(ctx->loop, t);
    t->data = t;
    uv_timer_start(t, natural_close, 1, 0);
    *state = (void *)1; /* non-NULL so destroy is called */
    mark("S\n");
    return 0;
}

static void natural_destroy(void **state)
{
    mark("X\n");
    *state = NULL;
}

static mesh_config_entry_t s_svc_config[] = {
    {.name = "MESH_TESTSVC_PORT",
     .type = MESH_CFG_INT,
     .def = "7000",
     .min = 1,
     .max = 65535,
     .help = "a port"},
    {.name = "MESH_TESTSVC_ENDPOINTS",
     .type = MESH_CFG_STRING,
     .def = "tcp://127.0.0.1:7002",
     .help = "router endpoints"},
};

static const mesh_service_def_t s_def = {
    .name = "test",
    .summary = "a test service",
    .config = s_svc_config,
    .n_config = 2,
    .start = tsvc_start,
    .drain = tsvc_drain,
    .destroy = tsvc_destroy,
    .reload = tsvc_reload,
};

static const mesh_service_def_t s_def_stuck = {
    .name = "stuck",
    .summary = "never drains",
    .start = tsvc_start_stuck,
    .drain = tsvc_drain,
    .destroy = tsvc_destroy,
};

static const mesh_service_def_t s_def_fail = {
    .name = "fail",
    .summary = "cannot start",
    .start = fail_start,
    .destroy = tsvc_destroy,
};

static const mesh_service_def_t s_def_natural = {
    .name = "natural",
    .summary = "ends by itself",
    .start = natural_start,
    .destroy = natural_destroy,
};

/* ------------------------------------------------------------ child runner */

typedef struct {
    pid_t pid;
    int out_fd, err_fd, ev_fd;
    char out[OUT_MAX], err[OUT_MAX], ev[OUT_MAX];
    size_t out_n, err_n, ev_n;
    int exit_code; /* -1 until exited; 128+sig when killed */
} child_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* env: NULL-terminated "K=V" list set in the child only. */
static void child_start(child_t *c, const mesh_service_def_t *def, const char *arg,
                        const char *const *env)
{
    int po[2], pe[2], pv[2];
    memset(c, 0, sizeof(*c));
    c->exit_code = -1;
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    assert_int_equal(pipe(pv), 0);
    fflush(stdout);
    fflush(stderr);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        close(po[0]);
        close(pe[0]);
        close(pv[0]);
        close(po[1]);
        close(pe[1]);
        s_evfd = pv[1];
        /* only what the case sets: not the developer's own MESH_* settings */
        const char *clear[] = {"MESH_LOG_LEVEL",          "MESH_HEARTBEAT_MS",
                               "MESH_HEARTBEAT_LIVENESS", "MESH_RECONNECT_MIN_MS",
                               "MESH_RECONNECT_MAX_MS",   "MESH_DRAIN_MS",
                               "MESH_MAX_MSG_BYTES",      "MESH_HWM",
                               "MESH_TESTSVC_PORT",       "MESH_TESTSVC_ENDPOINTS"};
        for (size_t k = 0; k < sizeof(clear) / sizeof(clear[0]); k++)
            unsetenv(clear[k]);
        for (const char *const *e = env; e != NULL && *e != NULL; e++)
            putenv((char *)*e);
        char *argv[] = {"mesh-test", (char *)arg, NULL};
        int rc = mesh_service_main(arg != NULL ? 2 : 1, argv, def);
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    close(po[1]);
    close(pe[1]);
    close(pv[1]);
    c->out_fd = po[0];
    c->err_fd = pe[0];
    c->ev_fd = pv[0];
}

/* Read whatever is available on the child's pipes within wait_ms. */
static void child_pump(child_t *c, int wait_ms)
{
    struct pollfd p[3] = {{c->out_fd, POLLIN, 0}, {c->err_fd, POLLIN, 0}, {c->ev_fd, POLLIN, 0}};
    int *fds[3] = {&c->out_fd, &c->err_fd, &c->ev_fd};
    char *bufs[3] = {c->out, c->err, c->ev};
    size_t *ns[3] = {&c->out_n, &c->err_n, &c->ev_n};

    if (poll(p, 3, wait_ms) <= 0)
        return;
    for (int k = 0; k < 3; k++) {
        if (p[k].fd < 0 || !(p[k].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t r = read(p[k].fd, bufs[k] + *ns[k], OUT_MAX - 1 - *ns[k]);
        if (r > 0) {
            *ns[k] += (size_t)r;
            bufs[k][*ns[k]] = '\0';
        } else {
            close(p[k].fd);
            *fds[k] = -1;
        }
    }
}

/* Wait until the event stream contains s. false on timeout. */
static bool child_wait_event(child_t *c, const char *s)
{
    uint64_t end = now_ms() + WAIT_MS;
    while (strstr(c->ev, s) == NULL) {
        if (now_ms() >= end || (c->ev_fd < 0 && c->out_fd < 0 && c->err_fd < 0))
            return false;
        child_pump(c, 50);
    }
    return true;
}

/* Wait for exit (reaping), draining the pipes. Kills the child on timeout. */
static int child_wait_exit(child_t *c)
{
    uint64_t end = now_ms() + WAIT_MS;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid) {
            /* collect the rest of the output: the write ends are closed now */
            while (c->out_fd >= 0 || c->err_fd >= 0 || c->ev_fd >= 0)
                child_pump(c, 100);
            c->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return c->exit_code;
        }
        if (now_ms() >= end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            print_error("child did not exit in time; stderr:\n%s\n", c->err);
            fail();
        }
        child_pump(c, 20);
    }
}

static void child_close(child_t *c)
{
    int *fds[3] = {&c->out_fd, &c->err_fd, &c->ev_fd};
    for (int k = 0; k < 3; k++) {
        if (*fds[k] >= 0)
            close(*fds[k]);
        *fds[k] = -1;
    }
}

static void expect_event(child_t *c, const char *s)
{
    if (!child_wait_event(c, s)) {
        kill(c->pid, SIGKILL);
        child_wait_exit(c);
        print_error("no event '%s'; events: %s\nstderr:\n%s\n", s, c->ev, c->err);
        fail();
    }
}

/* ------------------------------------------------------------ tests */

static void test_help(void **state)
{
    (void)state;
    child_t c;
    child_start(&c, &s_def, "--help", NULL);
    assert_int_equal(child_wait_exit(&c), 0);
    assert_memory_equal(c.out, "mesh-test - a test service\n", 27);
    char *usage = strstr(c.out, "Usage: mesh-test");
    char *envh = strstr(c.out, "\nEnvironment:\n");
    char *common = strstr(c.out, "MESH_HEARTBEAT_MS");
    char *hwm = strstr(c.out, "MESH_HWM");
    char *own = strstr(c.out, "MESH_TESTSVC_PORT");
    assert_non_null(usage);
    assert_non_null(envh);
    assert_non_null(common);
    assert_non_null(hwm);
    assert_non_null(own);
    assert_true(usage < envh && envh < common && hwm < own);
    const char *names[] = {"MESH_LOG_LEVEL",        "MESH_HEARTBEAT_LIVENESS",
                           "MESH_RECONNECT_MIN_MS", "MESH_RECONNECT_MAX_MS",
                           "MESH_DRAIN_MS",         "MESH_MAX_MSG_BYTES",
                           "MESH_TESTSVC_ENDPOINTS"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        assert_non_null(strstr(c.out, names[k]));
    assert_non_null(strstr(c.out, "(default: 1000)"));
    assert_non_null(strstr(c.out, "(default: 7000)  a port"));
    assert_int_equal(c.ev_n, 0); /* nothing started */
    child_close(&c);
}

static void test_version(void **state)
{
    (void)state;
    child_t c;
    child_start(&c, &s_def, "--version", NULL);
    assert_int_equal(child_wait_exit(&c), 0);
    assert_string_equal(c.out, "mesh-test " MESH_VERSION "\n");
    child_close(&c);
}

static void test_bad_argument(void **state)
{
    (void)state;
    child_t c;
    child_start(&c, &s_def, "--bogus\x1b", NULL);
    assert_int_equal(child_wait_exit(&c), 2);
    assert_non_null(strstr(c.err, "unknown argument '--bogus\\x1b'"));
    assert_int_equal(c.ev_n, 0);
    child_close(&c);
}

static void test_bad_config(void **state)
{
    (void)state;
    const struct {
        const char *env;
        const char *expect;
    } cases[] = {
        {"MESH_HEARTBEAT_MS=abc", "MESH_HEARTBEAT_MS: not an integer"},
        {"MESH_HEARTBEAT_MS=0", "MESH_HEARTBEAT_MS: out of range"},
        {"MESH_LOG_LEVEL=loud", "MESH_LOG_LEVEL:"},
        {"MESH_HWM=0", "MESH_HWM: out of range"},
        {"MESH_TESTSVC_PORT=70000", "MESH_TESTSVC_PORT: out of range"},
        {"MESH_RECONNECT_MIN_MS=9000", "MESH_RECONNECT_MIN_MS: must not exceed"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        child_t c;
        const char *env[] = {cases[k].env, NULL};
        child_start(&c, &s_def, NULL, env);
        assert_int_equal(child_wait_exit(&c), 2);
        if (strstr(c.err, cases[k].expect) == NULL) {
            print_error("env %s: stderr '%s' lacks '%s'\n", cases[k].env, c.err, cases[k].expect);
            fail();
        }
        assert_int_equal(c.ev_n, 0);
        child_close(&c);
    }
}

static void test_drain_on_sigterm(void **state)
{
    (void)state;
    child_t c;
    const char *env[] = {"MESH_HEARTBEAT_MS=250",
                         "MESH_HEARTBEAT_LIVENESS=5",
                         "MESH_RECONNECT_MIN_MS=100",
                         "MESH_RECONNECT_MAX_MS=3200",
                         "MESH_DRAIN_MS=4321",
                         "MESH_MAX_MSG_BYTES=65536",
                         "MESH_HWM=77",
                         "MESH_LOG_LEVEL=info",
                         "MESH_LOG_FORMAT=text", /* the lines below are the text format */
                         NULL};
    child_start(&c, &s_def, NULL, env);
    expect_event(&c, "S hb=250 live=5 rmin=100 rmax=3200 drain=4321 maxmsg=65536 hwm=77/77 "
                     "zctx=1\n");
    kill(c.pid, SIGTERM);
    expect_event(&c, "D grace=4321\n");
    assert_int_equal(child_wait_exit(&c), 0);
    char *d = strstr(c.ev, "D grace");
    char *x = strstr(c.ev, "X\n");
    assert_non_null(x);
    assert_true(d < x);
    char *started = strstr(c.err, " info test [service] started");
    char *draining = strstr(c.err, " info test [service] draining");
    char *stopped = strstr(c.err, " info test [service] stopped");
    assert_non_null(started);
    assert_non_null(draining);
    assert_non_null(stopped);
    assert_true(started < draining && draining < stopped);
    child_close(&c);
}

static void test_defaults_and_sigint(void **state)
{
    (void)state;
    child_t c;
    child_start(&c, &s_def, NULL, NULL);
    expect_event(&c, "S hb=1000 live=3 rmin=250 rmax=8000 drain=10000 maxmsg=1048576 "
                     "hwm=10000/10000 zctx=1\n");
    kill(c.pid, SIGINT);
    assert_int_equal(child_wait_exit(&c), 0);
    assert_non_null(strstr(c.ev, "D grace=10000\n"));
    assert_non_null(strstr(c.ev, "X\n"));
    child_close(&c);
}

static void test_second_signal_stops_now(void **state)
{
    (void)state;
    child_t c;
    const char *env[] = {"MESH_DRAIN_MS=600000", NULL};
    child_start(&c, &s_def_stuck, NULL, env);
    expect_event(&c, "S ");
    kill(c.pid, SIGTERM);
    expect_event(&c, "D grace=600000\n");
    kill(c.pid, SIGINT);
    /* well before the 10-minute grace */
    assert_int_equal(child_wait_exit(&c), 0);
    assert_non_null(strstr(c.ev, "X\n"));
    assert_non_null(strstr(c.err, "second signal"));
    child_close(&c);
}

static void test_drain_grace_expires(void **state)
{
    (void)state;
    child_t c;
    const char *env[] = {"MESH_DRAIN_MS=50", NULL};
    child_start(&c, &s_def_stuck, NULL, env);
    expect_event(&c, "S ");
    kill(c.pid, SIGTERM);
    assert_int_equal(child_wait_exit(&c), 0);
    assert_non_null(strstr(c.ev, "D grace=50\n"));
    assert_non_null(strstr(c.ev, "X\n"));
    assert_non_null(strstr(c.err, "expired"));
    child_close(&c);
}

static void test_sighup_reload(void **state)
{
    (void)state;
    child_t c;
    child_start(&c, &s_def, NULL, NULL);
    expect_event(&c, "S ");
    kill(c.pid, SIGHUP);
    expect_event(&c, "H\n");
    kill(c.pid, SIGTERM);
    assert_int_equal(child_wait_exit(&c), 0);
    child_close(&c);
}

static void test_sigpipe_ignored(void **state)
{
    (void)state;
    child_t c;
    child_start(&c, &s_def, NULL, NULL);
    expect_event(&c, "S ");
    kill(c.pid, SIGPIPE);
    /* still alive: a reload round trip proves the loop still runs */
    kill(c.pid, SIGHUP);
    expect_event(&c, "H\n");
    kill(c.pid, SIGTERM);
    assert_int_equal(child_wait_exit(&c), 0);
    child_close(&c);
}

static void test_start_failure(void **state)
{
    (void)state;
    child_t c;
    child_start(&c, &s_def_fail, NULL, NULL);
    assert_int_equal(child_wait_exit(&c), 1);
    assert_non_null(strstr(c.ev, "S\n"));
    assert_null(strstr(c.ev, "X\n")); /* nothing was stored: no destroy */
    assert_non_null(strstr(c.err, "start failed"));
    child_close(&c);
}

static void test_natural_end(void **state)
{
    (void)state;
    child_t c;
    child_start(&c, &s_def_natural, NULL, NULL);
    /* the signal handles are unref'd: the loop ends once the service's own timer closes */
    assert_int_equal(child_wait_exit(&c), 0);
    assert_non_null(strstr(c.ev, "S\nX\n"));
    assert_non_null(strstr(c.err, "stopped"));
    child_close(&c);
}

static void test_endpoints(void **state)
{
    (void)state;
    mesh_config_entry_t cfg[] = {
        {.name = "EPS", .type = MESH_CFG_STRING, .def = "x"},
    };
    mesh_service_ctx_t ctx;
    char storage[MESH_MAX_ROUTERS][256];
    const char *eps[MESH_MAX_ROUTERS];
    memset(&ctx, 0, sizeof(ctx));
    ctx.config = cfg;
    ctx.n_config = 1;
    mesh_log_set_level(MESH_LOG_OFF);

    cfg[0].s = "tcp://127.0.0.1:7002";
    assert_int_equal(mesh_service_endpoints(&ctx, "EPS", storage, eps), 1);
    assert_string_equal(eps[0], "tcp://127.0.0.1:7002");

    cfg[0].s = "tcp://a:1, ipc:///tmp/x ,inproc://r";
    assert_int_equal(mesh_service_endpoints(&ctx, "EPS", storage, eps), 3);
    assert_string_equal(eps[1], "ipc:///tmp/x");
    assert_string_equal(eps[2], "inproc://r");

    const char *bad[] = {"", "tcp://a,,tcp://b", "127.0.0.1:7002", "tcp://", "://x"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        cfg[0].s = bad[k];
        assert_int_equal(mesh_service_endpoints(&ctx, "EPS", storage, eps), MESH_ECONFIG);
    }
    /* more than MESH_MAX_ROUTERS */
    char many[MESH_MAX_ROUTERS * 16 + 32] = "";
    for (int k = 0; k <= MESH_MAX_ROUTERS; k++)
        strcat(many, k == 0 ? "tcp://h:1" : ",tcp://h:1");
    cfg[0].s = many;
    assert_int_equal(mesh_service_endpoints(&ctx, "EPS", storage, eps), MESH_ECONFIG);
    /* a name that is not in the table */
    assert_int_equal(mesh_service_endpoints(&ctx, "NOPE", storage, eps), MESH_ECONFIG);
    mesh_log_set_level(MESH_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_bad_argument),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_drain_on_sigterm),
        cmocka_unit_test(test_defaults_and_sigint),
        cmocka_unit_test(test_second_signal_stops_now),
        cmocka_unit_test(test_drain_grace_expires),
        cmocka_unit_test(test_sighup_reload),
        cmocka_unit_test(test_sigpipe_ignored),
        cmocka_unit_test(test_start_failure),
        cmocka_unit_test(test_natural_end),
        cmocka_unit_test(test_endpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
