/*
 * redis.c - hiredis 0.14 async on a libuv loop, plus what hiredis lacks:
 * command timeouts, a connect timeout and automatic reconnect (mesh_redis.h).
 *
 * Ownership of a command. Every accepted command is one cmd_t node with two
 * independent owners:
 *   - our FIFO (in_list): the node is waiting for its one user callback;
 *   - hiredis (in_hiredis): the node is the privdata of a hiredis callback
 *     that hiredis will call exactly once, with a reply or with NULL when the
 *     context is freed.
 * The user callback is called exactly once, by whichever event unlinks the
 * node from the FIFO first (the reply, a timeout, a lost connection, destroy).
 * The node is freed when both owners have let go, so a late hiredis callback
 * (e.g. from redisAsyncFree after we already failed the command) only frees
 * memory and never reaches the user twice.
 *
 * A connection is detached from us (ac->data = NULL, r->ac = NULL) before it
 * is freed, so hiredis' NULL-reply and disconnect callbacks that run during
 * the free see no mesh_redis_t and touch nothing of ours.
 *
 * Connection states: DOWN (no context; a reconnect may be scheduled),
 * CONNECTING (TCP connect and the PING handshake in flight), UP (PONG seen).
 * "Up" means Redis answered, not merely that the kernel accepted the TCP
 * connection (a SIGSTOPped server still completes the TCP handshake). The
 * handshake PING is queued right after the connect because hiredis 0.14 only
 * notices a completed connect on the first write event.
 *
 * Timeouts. Commands complete in FIFO order, so only the oldest pending one
 * can be the first to expire. One uv_timer is armed for the oldest deadline;
 * when it fires and the oldest is not yet due (it completed meanwhile), the
 * timer is re-armed for the new oldest. The handshake PING's deadline is the
 * connect deadline, so the same timer bounds connects.
 *
 * The struct is freed in the close callback of its timers, never inline, so
 * destroy may be called from inside any callback of this module: the memory
 * stays valid until the current call stack has unwound.
 */
#include "mesh/mesh_redis.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_metrics.h"

#define REDIS_TIMEOUT_DEFAULT_MS       2000
#define REDIS_RECONNECT_MIN_DEFAULT_MS 250
#define REDIS_RECONNECT_MAX_DEFAULT_MS 8000
#define REDIS_HOST_MAX                 255 /* host name bytes */
#define REDIS_SUBSYS                   "redis"
/* Metric label: the command name, lower-cased, at most this many bytes. */
#define REDIS_METRIC_CMD_MAX    23
#define REDIS_METRIC_CMD_SERIES 32 /* distinct commands */
#define REDIS_METRIC_ERR_SERIES 96 /* (command, kind) */

/* Command latency buckets, seconds: Redis answers in tens of microseconds when healthy. */
static const double s_latency_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

typedef struct {
    mesh_metric_t *latency; /* mesh_redis_command_duration_seconds{command} */
    mesh_metric_t *errors;  /* mesh_redis_command_errors_total{command,kind} */
    mesh_series_t *up;      /* mesh_redis_up */
    mesh_series_t *losses;  /* mesh_redis_connection_losses_total */
} redis_metrics_t;

typedef enum {
    REDIS_STATE_DOWN = 0,
    REDIS_STATE_CONNECTING,
    REDIS_STATE_UP,
} redis_state_t;

typedef struct cmd cmd_t;
struct cmd {
    cmd_t *next, *prev;
    mesh_redis_t *r; /* valid while in_list */
    mesh_redis_cb cb;
    void *arg;
    uint64_t deadline_ms; /* monotonic */
    bool in_list;
    bool in_hiredis;
    bool internal;                       /* the handshake PING: not counted, not a user command */
    uint64_t start_ns;                   /* uv_hrtime() when queued */
    char name[REDIS_METRIC_CMD_MAX + 1]; /* metric label */
};

struct mesh_redis {
    uv_loop_t *loop;
    char *host;
    int port;
    uint64_t timeout_ms;
    uint64_t reconnect_min_ms;
    uint64_t reconnect_max_ms;
    mesh_redis_state_cb state_cb;
    void *state_arg;

    redisAsyncContext *ac; /* NULL while DOWN */
    redis_state_t state;
    uint64_t backoff_ms; /* delay of the next reconnect */
    bool started;
    bool destroyed;
    int open_handles; /* timers not yet closed; the struct dies at 0 */

    uv_timer_t timeout_timer;
    uv_timer_t retry_timer;

    cmd_t *head, *tail; /* pending FIFO, oldest first */
    size_t n_pending;   /* user commands in the FIFO */
    redis_metrics_t m;
};

static void connect_now(mesh_redis_t *r);
static void on_timeout_timer(uv_timer_t *t);
static void on_retry_timer(uv_timer_t *t);

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* --------------------------------------------------------------- metrics */

static void metrics_init(redis_metrics_t *m)
{
    mesh_metrics_t *reg = mesh_metrics_global();
    m->latency =
        mesh_metrics_histogram(reg, "mesh_redis_command_duration_seconds",
                               "time from queueing a command to its reply (or failure), by command",
                               "command", REDIS_METRIC_CMD_SERIES, s_latency_bounds,
                               sizeof(s_latency_bounds) / sizeof(s_latency_bounds[0]));
    m->errors = mesh_metrics_counter(
        reg, "mesh_redis_command_errors_total",
        "commands that failed, by command and kind: reply_error (an error reply), "
        "deadline_exceeded, unavailable (not connected or connection lost)",
        "command,kind", REDIS_METRIC_ERR_SERIES);
    m->up = mesh_metric_with(mesh_metrics_gauge(reg, "mesh_redis_up",
                                                "Redis connections of this process that are up "
                                                "(answered PING)",
                                                NULL, 1),
                             NULL);
    m->losses = mesh_metric_with(
        mesh_metrics_counter(reg, "mesh_redis_connection_losses_total",
                             "times an established Redis connection was lost", NULL, 1),
        NULL);
}

/* The label of a command: argv[0] lower-cased, [a-z0-9._-] kept, others '_'. */
static void metrics_cmd_name(char out[REDIS_METRIC_CMD_MAX + 1], const char *name, size_t len)
{
    size_t n = len < REDIS_METRIC_CMD_MAX ? len : REDIS_METRIC_CMD_MAX;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-'))
            ch = '_';
        out[i] = ch;
    }
    out[n] = '\0';
}

/* A user command completed with status (and reply when status is 0). */
static void metrics_done(mesh_redis_t *r, const cmd_t *c, int status, const redisReply *reply)
{
    if (c->internal || status == MESH_ECANCELED)
        return; /* the handshake, and shutdown, are not command outcomes */
    mesh_histogram_observe(mesh_metric_at(r->m.latency, c->name),
                           mesh_metrics_since_s(c->start_ns));
    const char *kind = NULL;
    if (status != 0)
        kind = mesh_err_name(status);
    else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        kind = "reply_error";
    if (kind != NULL)
        mesh_counter_inc(mesh_metric_at(r->m.errors, c->name, kind));
}

/* ------------------------------------------------------------------ FIFO */

static void fifo_push(mesh_redis_t *r, cmd_t *c)
{
    c->prev = r->tail;
    c->next = NULL;
    if (r->tail != NULL)
        r->tail->next = c;
    else
        r->head = c;
    r->tail = c;
    c->in_list = true;
    c->r = r;
    if (!c->internal)
        r->n_pending++;
}

static void fifo_unlink(mesh_redis_t *r, cmd_t *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        r->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        r->tail = c->prev;
    c->next = c->prev = NULL;
    c->in_list = false;
    c->r = NULL;
    if (!c->internal)
        r->n_pending--;
}

static void cmd_release(cmd_t *c)
{
    if (!c->in_list && !c->in_hiredis)
        free(c);
}

/*
 * Unlink c and call its callback once. The callback may re-enter this module
 * (new commands, destroy); nothing of c is touched after it returns except
 * through cmd_release, which only looks at c's own flags.
 */
static void cmd_complete(mesh_redis_t *r, cmd_t *c, int status, redisReply *reply)
{
    fifo_unlink(r, c);
    metrics_done(r, c, status, reply);
    c->cb(r, status, reply, c->arg);
    cmd_release(c);
}

/* Complete every pending command with status (each exactly once). */
static void fail_all(mesh_redis_t *r, int status)
{
    /* Pop from the head each time: a callback may itself fail the rest. */
    while (r->head != NULL)
        cmd_complete(r, r->head, status, NULL);
}

/* ---------------------------------------------------------------- timers */

static void arm_timeout(mesh_redis_t *r)
{
    if (r->destroyed || r->head == NULL)
        return;
    uint64_t now = mono_ms();
    uint64_t delay = r->head->deadline_ms > now ? r->head->deadline_ms - now : 0;
    uv_timer_start(&r->timeout_timer, on_timeout_timer, delay, 0);
}

static void schedule_reconnect(mesh_redis_t *r)
{
    if (r->destroyed)
        return;
    uint64_t delay = r->backoff_ms;
    r->backoff_ms =
        r->backoff_ms * 2 > r->reconnect_max_ms ? r->reconnect_max_ms : r->backoff_ms * 2;
    uv_timer_start(&r->retry_timer, on_retry_timer, delay, 0);
}

/* ------------------------------------------------------------ teardown */

/*
 * Drop the current connection: detach it, fail every pending command with
 * status, free the context (unless hiredis is already freeing it), tell the
 * owner when it was up, and schedule a reconnect.
 */
static void drop_connection(mesh_redis_t *r, int status, bool free_ac, const char *why)
{
    redisAsyncContext *ac = r->ac;
    bool was_up = r->state == REDIS_STATE_UP;

    r->ac = NULL;
    r->state = REDIS_STATE_DOWN;
    if (ac != NULL)
        ac->data = NULL;
    if (was_up) {
        mesh_gauge_add(r->m.up, -1);
        if (!r->destroyed)
            mesh_counter_inc(r->m.losses);
    }
    if (was_up && !r->destroyed)
        mesh_log_warn(REDIS_SUBSYS, "connection to %s:%d lost: %s", r->host, r->port, why);
    else if (!r->destroyed)
        mesh_log_debug(REDIS_SUBSYS, "connect to %s:%d failed: %s", r->host, r->port, why);

    fail_all(r, status);
    /*
     * Outside a hiredis callback this frees at once (running the NULL-reply
     * callbacks of the detached nodes, which only release them); inside one,
     * hiredis defers the free until the callback returns.
     */
    if (ac != NULL && free_ac)
        redisAsyncFree(ac);
    if (was_up && !r->destroyed && r->state_cb != NULL)
        r->state_cb(r, false, r->state_arg);
    if (!r->destroyed && r->state == REDIS_STATE_DOWN && r->ac == NULL &&
        !uv_is_active((uv_handle_t *)&r->retry_timer))
        schedule_reconnect(r);
}

static void on_timeout_timer(uv_timer_t *t)
{
    mesh_redis_t *r = t->data;
    if (r->head == NULL)
        return;
    if (r->head->deadline_ms <= mono_ms()) {
        drop_connection(r, MESH_ETIMEDOUT, true, "command timed out");
        return;
    }
    arm_timeout(r);
}

static void on_retry_timer(uv_timer_t *t)
{
    mesh_redis_t *r = t->data;
    if (!r->destroyed && r->ac == NULL)
        connect_now(r);
}

/* ------------------------------------------------------ hiredis callbacks */

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    cmd_t *c = privdata;
    c->in_hiredis = false;
    if (!c->in_list) {
        /* Already completed by a timeout, a drop or destroy. */
        cmd_release(c);
        return;
    }
    mesh_redis_t *r = c->r;
    if (reply == NULL) {
        /*
         * hiredis is freeing the context after an I/O error or EOF and runs
         * every pending callback with NULL: treat the first as the loss of
         * the connection (which fails all the others at once).
         */
        const char *why = ac->errstr != NULL && ac->errstr[0] != '\0' ? ac->errstr : "closed";
        char clean[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(why, strlen(why), clean, sizeof clean);
        drop_connection(r, MESH_EUNAVAIL, false, clean);
        return;
    }
    cmd_complete(r, c, 0, reply);
}

static void on_pong(mesh_redis_t *r, int status, redisReply *reply, void *arg)
{
    (void)arg;
    if (status != 0 || r->destroyed)
        return; /* the connection is already being dropped */
    if (reply->type == REDIS_REPLY_ERROR) {
        char clean[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(reply->str, reply->len, clean, sizeof clean);
        mesh_log_warn(REDIS_SUBSYS, "%s:%d refused PING: %s", r->host, r->port, clean);
        drop_connection(r, MESH_EUNAVAIL, true, "handshake refused");
        return;
    }
    r->state = REDIS_STATE_UP;
    mesh_gauge_add(r->m.up, 1);
    r->backoff_ms = r->reconnect_min_ms;
    mesh_log_info(REDIS_SUBSYS, "connected to %s:%d", r->host, r->port);
    if (r->state_cb != NULL)
        r->state_cb(r, true, r->state_arg);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    mesh_redis_t *r = cac->data;
    if (r == NULL || status == REDIS_OK)
        return; /* success is reported by the PONG */
    /*
     * hiredis frees the context right after this callback (and runs the
     * PING's callback with NULL): detach it, never free it here.
     */
    const char *why = cac->errstr[0] != '\0' ? cac->errstr : "connect failed";
    char clean[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_log_sanitize(why, strlen(why), clean, sizeof clean);
    drop_connection(r, MESH_EUNAVAIL, false, clean);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    mesh_redis_t *r = cac->data;
    if (r == NULL)
        return; /* detached: we dropped it ourselves */
    const char *why = status == REDIS_OK ? "closed" : cac->errstr;
    char clean[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_log_sanitize(why, strlen(why), clean, sizeof clean);
    drop_connection(r, MESH_EUNAVAIL, false, clean);
}

/* ---------------------------------------------------------------- connect */

/* Queue c on ac; on success c is owned by both the FIFO and hiredis. */
static int cmd_send(mesh_redis_t *r, cmd_t *c, int argc, const char **argv, const size_t *argvlen)
{
    if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, argvlen) != REDIS_OK)
        return MESH_EUNAVAIL;
    c->in_hiredis = true;
    bool was_empty = r->head == NULL;
    fifo_push(r, c);
    if (was_empty || !uv_is_active((uv_handle_t *)&r->timeout_timer))
        arm_timeout(r);
    return 0;
}

static void connect_now(mesh_redis_t *r)
{
    const char *why = "out of memory";
    cmd_t *ping = NULL;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (ac == NULL)
        goto fail;
    if (ac->err != 0) {
        why = ac->errstr;
        goto fail;
    }
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        why = "cannot attach to the loop";
        goto fail;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);

    ping = calloc(1, sizeof *ping);
    if (ping == NULL)
        goto fail;
    ping->cb = on_pong;
    ping->internal = true;
    ping->deadline_ms = mono_ms() + r->timeout_ms; /* the connect deadline */
    r->ac = ac;
    r->state = REDIS_STATE_CONNECTING;
    static const char *ping_argv[] = {"PING"};
    if (cmd_send(r, ping, 1, ping_argv, NULL) != 0) {
        r->ac = NULL;
        r->state = REDIS_STATE_DOWN;
        why = "cannot queue PING";
        goto fail;
    }
    return;

fail:
    if (ac != NULL) {
        char clean[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(why, strlen(why), clean, sizeof clean);
        mesh_log_debug(REDIS_SUBSYS, "connect to %s:%d failed: %s", r->host, r->port, clean);
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    free(ping);
    schedule_reconnect(r);
}

/* ------------------------------------------------------------------ public */

mesh_redis_t *mesh_redis_new(uv_loop_t *loop, const mesh_redis_opts_t *opts,
                             mesh_redis_state_cb state_cb, void *arg)
{
    if (loop == NULL || opts == NULL || opts->host == NULL || opts->host[0] == '\0' ||
        strlen(opts->host) > REDIS_HOST_MAX || opts->port <= 0 || opts->port > 65535)
        return NULL;
    mesh_redis_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->host = strdup(opts->host);
    if (r->host == NULL) {
        free(r);
        return NULL;
    }
    r->loop = loop;
    r->port = opts->port;
    r->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : REDIS_TIMEOUT_DEFAULT_MS;
    r->reconnect_min_ms =
        opts->reconnect_min_ms > 0 ? opts->reconnect_min_ms : REDIS_RECONNECT_MIN_DEFAULT_MS;
    r->reconnect_max_ms =
        opts->reconnect_max_ms > 0 ? opts->reconnect_max_ms : REDIS_RECONNECT_MAX_DEFAULT_MS;
    if (r->reconnect_max_ms < r->reconnect_min_ms)
        r->reconnect_max_ms = r->reconnect_min_ms;
    r->backoff_ms = r->reconnect_min_ms;
    r->state_cb = state_cb;
    r->state_arg = arg;
    /* uv_timer_init cannot fail on a valid loop. */
    uv_timer_init(loop, &r->timeout_timer);
    uv_timer_init(loop, &r->retry_timer);
    r->timeout_timer.data = r;
    r->retry_timer.data = r;
    r->open_handles = 2;
    metrics_init(&r->m);
    return r;
}

int mesh_redis_start(mesh_redis_t *r)
{
    if (r == NULL || r->destroyed)
        return MESH_EINVAL;
    if (r->started)
        return 0;
    r->started = true;
    connect_now(r);
    return 0;
}

bool mesh_redis_up(const mesh_redis_t *r)
{
    return r != NULL && r->state == REDIS_STATE_UP;
}

/* Commands whose replies do not follow the one-reply-per-command FIFO. */
static bool command_unsupported(const char *name, size_t len)
{
    static const char *const names[] = {"subscribe",    "psubscribe",   "ssubscribe", "unsubscribe",
                                        "punsubscribe", "sunsubscribe", "monitor"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (len == strlen(names[i]) && strncasecmp(name, names[i], len) == 0)
            return true;
    }
    return false;
}

int mesh_redis_command(mesh_redis_t *r, mesh_redis_cb cb, void *arg, int argc, const char **argv,
                       const size_t *argvlen)
{
    if (r == NULL || cb == NULL || argc < 1 || argv == NULL || argv[0] == NULL)
        return MESH_EINVAL;
    size_t len0 = argvlen != NULL ? argvlen[0] : strlen(argv[0]);
    if (command_unsupported(argv[0], len0))
        return MESH_EINVAL;
    if (r->destroyed || r->state != REDIS_STATE_UP || r->ac == NULL) {
        if (!r->destroyed) {
            char name[REDIS_METRIC_CMD_MAX + 1];
            metrics_cmd_name(name, argv[0], len0);
            mesh_counter_inc(mesh_metric_at(r->m.errors, name, mesh_err_name(MESH_EUNAVAIL)));
        }
        return MESH_EUNAVAIL;
    }
    cmd_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return MESH_ENOMEM;
    c->start_ns = uv_hrtime();
    metrics_cmd_name(c->name, argv[0], len0);
    c->cb = cb;
    c->arg = arg;
    c->deadline_ms = mono_ms() + r->timeout_ms;
    int rc = cmd_send(r, c, argc, argv, argvlen);
    if (rc != 0)
        free(c);
    return rc;
}

size_t mesh_redis_pending(const mesh_redis_t *r)
{
    return r != NULL ? r->n_pending : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    mesh_redis_t *r = h->data;
    if (--r->open_handles == 0) {
        free(r->host);
        free(r);
    }
}

void mesh_redis_destroy(mesh_redis_t **r_p)
{
    if (r_p == NULL || *r_p == NULL)
        return;
    mesh_redis_t *r = *r_p;
    *r_p = NULL;
    if (r->destroyed)
        return;
    r->destroyed = true;
    uv_timer_stop(&r->retry_timer);
    drop_connection(r, MESH_ECANCELED, true, "destroyed");
    /* A callback run by drop_connection cannot have re-queued anything:
     * commands are refused once destroyed. */
    uv_close((uv_handle_t *)&r->timeout_timer, on_timer_closed);
    uv_close((uv_handle_t *)&r->retry_timer, on_timer_closed);
}
