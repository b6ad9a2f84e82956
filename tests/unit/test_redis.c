/*
 * test_redis.c - mesh_redis (lib/mesh/redis.c) against a real redis-server.
 *
 * The server is a child process on a free loopback port. Outages are real:
 * SIGSTOP (the kernel still accepts TCP, Redis never answers: the timeout
 * path), SIGKILL (connection reset: the lost-connection path) and a restart
 * on the same port (the reconnect path). Every wait runs the uv loop until a
 * condition holds, bounded by a deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_redis.h"
#include "mesh_harness.h"

#define T_TIMEOUT_MS       300 /* mesh_redis command / connect timeout in these tests */
#define T_RECONNECT_MIN_MS 20  /* first reconnect delay */
#define T_RECONNECT_MAX_MS 160
#define T_WAIT_MS          5000  /* bound on any "until" wait */
#define T_SLACK_MS         250   /* scheduling slack allowed on top of a timeout */
#define T_TICK_MS          5     /* wakes the loop so conditions and deadlines are checked */
#define T_BURST            5     /* commands in flight during an outage */
#define T_READY_MS         10000 /* bound on redis-server answering PING */
#define T_POLL_PAUSE_MS    5     /* pause between two PING probes of the server */

/* ------------------------------------------------------------ the server */

static mh_proc_t *s_server;
static int s_port;

static int wait_server_ping(void)
{
    uint64_t deadline = mh_now_ms() + T_READY_MS;
    while (mh_now_ms() < deadline) {
        if (mh_redis_ping(s_port, 200))
            return 0;
        if (!mh_proc_alive(s_server))
            return -1;
        struct timespec ts = {0, T_POLL_PAUSE_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int group_setup(void **state)
{
    (void)state;
    s_port = mh_free_port();
    if (s_port <= 0)
        return -1;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", s_port);
    char *argv[] = {"/usr/bin/redis-server",
                    "--port",
                    port_s,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    (char *)mh_tmpdir(),
                    NULL};
    s_server = mh_proc_spawn("redis", argv, NULL);
    if (s_server == NULL)
        return -1;
    return wait_server_ping();
}

static int group_teardown(void **state)
{
    (void)state;
    mh_proc_destroy(&s_server);
    return 0;
}

/* Make sure the server runs (a test may have stopped or killed it). */
static void server_ensure_running(void)
{
    mh_proc_signal(s_server, SIGCONT);
    if (!mh_proc_alive(s_server))
        assert_int_equal(mh_proc_restart(s_server), 0);
    assert_int_equal(wait_server_ping(), 0);
}

/* ------------------------------------------------------------ the fixture */

typedef struct {
    mh_loop_t lp;
    mesh_redis_t *r;
    int ups, downs;
} fx_t;

static void on_state(mesh_redis_t *r, bool up, void *arg)
{
    (void)r;
    fx_t *fx = arg;
    if (up)
        fx->ups++;
    else
        fx->downs++;
}

static mesh_redis_t *fx_redis(fx_t *fx, int port)
{
    mesh_redis_opts_t o = {
        .host = "127.0.0.1",
        .port = port,
        .timeout_ms = T_TIMEOUT_MS,
        .reconnect_min_ms = T_RECONNECT_MIN_MS,
        .reconnect_max_ms = T_RECONNECT_MAX_MS,
    };
    return mesh_redis_new(&fx->lp.loop, &o, on_state, fx);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL || mh_loop_init(&fx->lp, T_TICK_MS) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    mesh_redis_destroy(&fx->r);
    /* Every handle of the module must close: the loop then closes cleanly. */
    int rc = mh_loop_close(&fx->lp);
    free(fx);
    server_ensure_running();
    return rc;
}

static void fx_start_up(fx_t *fx)
{
    fx->r = fx_redis(fx, s_port);
    assert_non_null(fx->r);
    assert_int_equal(mesh_redis_start(fx->r), 0);
    assert_true(mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, T_WAIT_MS));
    assert_int_equal(fx->ups, 1);
}

/* ------------------------------------------------------------ one command */

#define CALL_STR_MAX 64

typedef struct {
    int calls;
    int status;
    int type;
    long long integer;
    char str[CALL_STR_MAX];
    size_t len;
    uint64_t done_at;
    /* re-entrancy probes */
    mesh_redis_t *resend_on; /* issue a command from inside the callback */
    int resend_rc;
    mesh_redis_t **destroy_on; /* destroy the client from inside the callback */
} call_t;

static void on_call(mesh_redis_t *r, int status, redisReply *reply, void *arg)
{
    call_t *c = arg;
    c->calls++;
    c->status = status;
    c->done_at = mh_now_ms();
    if (reply != NULL) {
        c->type = reply->type;
        c->integer = reply->integer;
        if (reply->str != NULL) {
            c->len = reply->len;
            memcpy(c->str, reply->str, reply->len < CALL_STR_MAX ? reply->len : CALL_STR_MAX);
        }
    }
    if (c->resend_on != NULL) {
        static const char *argv[] = {"PING"};
        c->resend_rc = mesh_redis_command(c->resend_on, on_call, c, 1, argv, NULL);
    }
    if (c->destroy_on != NULL)
        mesh_redis_destroy(c->destroy_on);
}

static bool cond_called(void *arg)
{
    return ((call_t *)arg)->calls > 0;
}

typedef struct {
    call_t *calls;
    int n;
} calls_t;

static bool cond_all_called(void *arg)
{
    calls_t *cs = arg;
    for (int i = 0; i < cs->n; i++) {
        if (cs->calls[i].calls == 0)
            return false;
    }
    return true;
}

static int cmd(fx_t *fx, call_t *c, const char *a0, const char *a1, const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    int argc = a2 != NULL ? 3 : (a1 != NULL ? 2 : 1);
    return mesh_redis_command(fx->r, on_call, c, argc, argv, NULL);
}

/* Run one command to completion; returns the call record. */
static call_t cmd_sync(fx_t *fx, const char *a0, const char *a1, const char *a2)
{
    call_t c = {0};
    assert_int_equal(cmd(fx, &c, a0, a1, a2), 0);
    assert_true(mh_loop_run_until(&fx->lp, cond_called, &c, T_WAIT_MS));
    assert_int_equal(c.calls, 1);
    return c;
}

/* ------------------------------------------------------------------ tests */

static void test_bad_options(void **state)
{
    fx_t *fx = *state;
    mesh_redis_opts_t o = {.host = NULL, .port = 6379};
    assert_null(mesh_redis_new(&fx->lp.loop, &o, NULL, NULL));
    o.host = "127.0.0.1";
    o.port = 0;
    assert_null(mesh_redis_new(&fx->lp.loop, &o, NULL, NULL));
    o.port = 70000;
    assert_null(mesh_redis_new(&fx->lp.loop, &o, NULL, NULL));
    assert_null(mesh_redis_new(&fx->lp.loop, NULL, NULL, NULL));
}

static void test_commands(void **state)
{
    fx_t *fx = *state;
    fx_start_up(fx);

    call_t c = cmd_sync(fx, "SET", "mesh:test:k", "v1");
    assert_int_equal(c.status, 0);
    assert_int_equal(c.type, REDIS_REPLY_STATUS);

    c = cmd_sync(fx, "GET", "mesh:test:k", NULL);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.type, REDIS_REPLY_STRING);
    assert_int_equal(c.len, 2);
    assert_memory_equal(c.str, "v1", 2);

    /* Binary safe: a value with a NUL byte round-trips with its length. */
    const char bin[] = {'a', '\0', 'b'};
    const char *argv[] = {"SET", "mesh:test:bin", bin};
    size_t lens[] = {3, 13, sizeof bin};
    call_t s = {0};
    assert_int_equal(mesh_redis_command(fx->r, on_call, &s, 3, argv, lens), 0);
    assert_true(mh_loop_run_until(&fx->lp, cond_called, &s, T_WAIT_MS));
    c = cmd_sync(fx, "STRLEN", "mesh:test:bin", NULL);
    assert_int_equal(c.type, REDIS_REPLY_INTEGER);
    assert_int_equal(c.integer, 3);

    /* A Redis error is a reply (status 0), not a transport failure. */
    c = cmd_sync(fx, "INCR", "mesh:test:k", NULL);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.type, REDIS_REPLY_ERROR);

    /* Many commands in flight complete in order, each exactly once. */
    call_t many[50];
    memset(many, 0, sizeof many);
    for (int i = 0; i < 50; i++)
        assert_int_equal(cmd(fx, &many[i], "INCR", "mesh:test:ctr", NULL), 0);
    assert_int_equal(mesh_redis_pending(fx->r), 50);
    calls_t cs = {many, 50};
    assert_true(mh_loop_run_until(&fx->lp, cond_all_called, &cs, T_WAIT_MS));
    for (int i = 0; i < 50; i++) {
        assert_int_equal(many[i].calls, 1);
        assert_int_equal(many[i].integer, i + 1);
    }
    assert_int_equal(mesh_redis_pending(fx->r), 0);
    assert_int_equal(fx->downs, 0);
}

static void test_invalid_commands(void **state)
{
    fx_t *fx = *state;
    fx_start_up(fx);
    call_t c = {0};
    /* Pub/sub and MONITOR break the one-reply-per-command FIFO: refused. */
    assert_int_equal(cmd(fx, &c, "SUBSCRIBE", "ch", NULL), MESH_EINVAL);
    assert_int_equal(cmd(fx, &c, "psubscribe", "ch*", NULL), MESH_EINVAL);
    assert_int_equal(cmd(fx, &c, "MONITOR", NULL, NULL), MESH_EINVAL);
    assert_int_equal(mesh_redis_command(fx->r, on_call, &c, 0, NULL, NULL), MESH_EINVAL);
    assert_int_equal(mesh_redis_command(fx->r, NULL, &c, 1, (const char *[]){"PING"}, NULL),
                     MESH_EINVAL);
    assert_int_equal(c.calls, 0);
    assert_int_equal(mesh_redis_pending(fx->r), 0);
}

static void test_unavailable_before_up(void **state)
{
    fx_t *fx = *state;
    fx->r = fx_redis(fx, s_port);
    assert_non_null(fx->r);
    call_t c = {0};
    /* Not started: down, so refused at once and the callback never runs. */
    assert_false(mesh_redis_up(fx->r));
    assert_int_equal(cmd(fx, &c, "PING", NULL, NULL), MESH_EUNAVAIL);
    assert_int_equal(mesh_redis_start(fx->r), 0);
    /* Connecting (handshake not answered yet): still refused. */
    assert_int_equal(cmd(fx, &c, "PING", NULL, NULL), MESH_EUNAVAIL);
    assert_true(mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, T_WAIT_MS));
    assert_int_equal(c.calls, 0);
    assert_int_equal(fx->ups, 1);
}

static void test_timeout_on_stopped_server(void **state)
{
    fx_t *fx = *state;
    fx_start_up(fx);

    assert_int_equal(mh_proc_signal(s_server, SIGSTOP), 0);
    call_t calls[T_BURST];
    memset(calls, 0, sizeof calls);
    uint64_t t0 = mh_now_ms();
    for (int i = 0; i < T_BURST; i++) {
        calls[i].resend_on = fx->r; /* a retry from the callback must be refused, not queued */
        assert_int_equal(cmd(fx, &calls[i], "INCR", "mesh:test:stopped", NULL), 0);
    }
    assert_int_equal(mesh_redis_pending(fx->r), T_BURST);
    calls_t cs = {calls, T_BURST};
    assert_true(mh_loop_run_until(&fx->lp, cond_all_called, &cs, T_WAIT_MS));
    for (int i = 0; i < T_BURST; i++) {
        assert_int_equal(calls[i].calls, 1);
        assert_int_equal(calls[i].status, MESH_ETIMEDOUT);
        assert_int_equal(calls[i].resend_rc, MESH_EUNAVAIL);
        /* Not before the timeout, not much after it. */
        assert_true(calls[i].done_at - t0 + 5 >= T_TIMEOUT_MS);
        assert_true(calls[i].done_at - t0 <= T_TIMEOUT_MS + T_SLACK_MS);
    }
    assert_int_equal(mesh_redis_pending(fx->r), 0);
    assert_int_equal(fx->downs, 1);
    assert_false(mesh_redis_up(fx->r));

    /* Down: refused immediately, the callback is not called. */
    call_t late = {0};
    uint64_t t1 = mh_now_ms();
    assert_int_equal(cmd(fx, &late, "PING", NULL, NULL), MESH_EUNAVAIL);
    assert_true(mh_now_ms() - t1 < 50);

    /* While stopped, reconnects reach TCP but never the PONG: stays down. */
    mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, 3 * T_TIMEOUT_MS);
    assert_false(mesh_redis_up(fx->r));
    assert_int_equal(fx->ups, 1);

    assert_int_equal(mh_proc_signal(s_server, SIGCONT), 0);
    assert_true(mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, T_WAIT_MS));
    assert_int_equal(fx->ups, 2);
    call_t c = cmd_sync(fx, "PING", NULL, NULL);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.type, REDIS_REPLY_STATUS);
    assert_int_equal(late.calls, 0);
}

static void test_killed_server(void **state)
{
    fx_t *fx = *state;
    fx_start_up(fx);

    /* In-flight commands when the server dies fail once, at once (reset). */
    assert_int_equal(mh_proc_signal(s_server, SIGSTOP), 0);
    call_t calls[T_BURST];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < T_BURST; i++)
        assert_int_equal(cmd(fx, &calls[i], "PING", NULL, NULL), 0);
    uint64_t t0 = mh_now_ms();
    mh_proc_kill9(s_server);
    calls_t cs = {calls, T_BURST};
    assert_true(mh_loop_run_until(&fx->lp, cond_all_called, &cs, T_WAIT_MS));
    for (int i = 0; i < T_BURST; i++) {
        assert_int_equal(calls[i].calls, 1);
        assert_int_equal(calls[i].status, MESH_EUNAVAIL);
        assert_true(calls[i].done_at - t0 < T_TIMEOUT_MS);
    }
    assert_int_equal(fx->downs, 1);

    /* Down with nothing listening: EUNAVAIL immediately, repeatedly. */
    mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, 2 * T_TIMEOUT_MS);
    assert_false(mesh_redis_up(fx->r));
    for (int i = 0; i < 3; i++) {
        call_t c = {0};
        assert_int_equal(cmd(fx, &c, "PING", NULL, NULL), MESH_EUNAVAIL);
        assert_int_equal(c.calls, 0);
    }

    /* Restarted on the same port: reconnects on its own, state_cb(true). */
    assert_int_equal(mh_proc_restart(s_server), 0);
    assert_int_equal(wait_server_ping(), 0);
    assert_true(mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, T_WAIT_MS));
    assert_int_equal(fx->ups, 2);
    call_t c = cmd_sync(fx, "SET", "mesh:test:after", "1");
    assert_int_equal(c.status, 0);
    assert_int_equal(c.type, REDIS_REPLY_STATUS);
}

static void test_server_shutdown_idle(void **state)
{
    fx_t *fx = *state;
    fx_start_up(fx);
    /* No command pending: the loss is seen through the disconnect callback. */
    assert_true(mh_proc_stop(s_server, 5000) >= 0);
    assert_true(mh_loop_run_until(&fx->lp, mh_cond_redis_down, fx->r, T_WAIT_MS));
    assert_int_equal(fx->downs, 1);
    assert_int_equal(mh_proc_restart(s_server), 0);
    assert_true(mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, T_WAIT_MS));
    assert_int_equal(fx->ups, 2);
}

static void test_destroy_fails_pending(void **state)
{
    fx_t *fx = *state;
    fx_start_up(fx);
    assert_int_equal(mh_proc_signal(s_server, SIGSTOP), 0);
    call_t calls[T_BURST];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < T_BURST; i++)
        assert_int_equal(cmd(fx, &calls[i], "PING", NULL, NULL), 0);
    mesh_redis_destroy(&fx->r);
    assert_null(fx->r);
    /* Synchronously, each exactly once, with ECANCELED; no state_cb on destroy. */
    for (int i = 0; i < T_BURST; i++) {
        assert_int_equal(calls[i].calls, 1);
        assert_int_equal(calls[i].status, MESH_ECANCELED);
    }
    assert_int_equal(fx->downs, 0);
    mesh_redis_destroy(&fx->r); /* idempotent on NULL */
}

static void test_destroy_from_callback(void **state)
{
    fx_t *fx = *state;
    fx_start_up(fx);
    /* The first reply's callback destroys the client while hiredis is still
     * dispatching; the others must fail once, and nothing touches freed memory
     * (ASan build). */
    call_t calls[T_BURST];
    memset(calls, 0, sizeof calls);
    calls[0].destroy_on = &fx->r;
    for (int i = 0; i < T_BURST; i++)
        assert_int_equal(cmd(fx, &calls[i], "PING", NULL, NULL), 0);
    calls_t cs = {calls, T_BURST};
    assert_true(mh_loop_run_until(&fx->lp, cond_all_called, &cs, T_WAIT_MS));
    assert_null(fx->r);
    assert_int_equal(calls[0].status, 0);
    for (int i = 1; i < T_BURST; i++) {
        assert_int_equal(calls[i].calls, 1);
        assert_int_equal(calls[i].status, MESH_ECANCELED);
    }
}

static void test_destroy_from_timeout_callback(void **state)
{
    fx_t *fx = *state;
    fx_start_up(fx);
    assert_int_equal(mh_proc_signal(s_server, SIGSTOP), 0);
    call_t calls[T_BURST];
    memset(calls, 0, sizeof calls);
    calls[0].destroy_on = &fx->r;
    for (int i = 0; i < T_BURST; i++)
        assert_int_equal(cmd(fx, &calls[i], "PING", NULL, NULL), 0);
    calls_t cs = {calls, T_BURST};
    assert_true(mh_loop_run_until(&fx->lp, cond_all_called, &cs, T_WAIT_MS));
    assert_null(fx->r);
    assert_int_equal(calls[0].status, MESH_ETIMEDOUT);
    for (int i = 0; i < T_BURST; i++)
        assert_int_equal(calls[i].calls, 1);
    /* The client was destroyed inside the failure: no state_cb afterwards. */
    assert_int_equal(fx->downs, 0);
}

/* A TCP listener that never answers: a Redis that accepts and hangs. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int accept_all(int lfd)
{
    int n = 0;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            break;
        close(fd);
        n++;
    }
    return n;
}

static bool cond_never(void *arg)
{
    (void)arg;
    return false;
}

static void test_connect_timeout_and_backoff(void **state)
{
    fx_t *fx = *state;
    int port = 0;
    int lfd = silent_listener(&port);
    fx->r = fx_redis(fx, port);
    assert_non_null(fx->r);
    assert_int_equal(mesh_redis_start(fx->r), 0);
    uint64_t window = 6 * T_TIMEOUT_MS;
    mh_loop_run_until(&fx->lp, cond_never, NULL, window);
    int attempts = accept_all(lfd);
    close(lfd);
    /* The handshake timed out and the client tried again... */
    assert_true(attempts >= 2);
    /* ...but paced by timeout + backoff, not in a hot loop. */
    assert_true((uint64_t)attempts <= window / T_TIMEOUT_MS + 1);
    assert_false(mesh_redis_up(fx->r));
    assert_int_equal(fx->ups, 0);
    assert_int_equal(fx->downs, 0); /* never up, so never "went down" */
}

static void test_refused_then_up(void **state)
{
    fx_t *fx = *state;
    /* Nothing listens yet: connect is refused, retried with backoff. */
    mh_proc_kill9(s_server);
    fx->r = fx_redis(fx, s_port);
    assert_non_null(fx->r);
    assert_int_equal(mesh_redis_start(fx->r), 0);
    mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, 4 * T_RECONNECT_MAX_MS);
    assert_false(mesh_redis_up(fx->r));
    assert_int_equal(mh_proc_restart(s_server), 0);
    assert_true(mh_loop_run_until(&fx->lp, mh_cond_redis_up, fx->r, T_WAIT_MS));
    assert_int_equal(fx->ups, 1);
    call_t c = cmd_sync(fx, "PING", NULL, NULL);
    assert_int_equal(c.status, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    mesh_log_init("test_redis", MESH_LOG_WARN);
    if (mh_init("unit_redis") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unavailable_before_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_on_stopped_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_shutdown_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_fails_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_from_timeout_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout_and_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_then_up, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
