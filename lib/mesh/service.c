/*
 * service.c - the skeleton every service's main() runs (mesh_service.h).
 *
 * Life of a process:
 *   arguments -> config -> logging, loop, ZeroMQ context -> def->start ->
 *   uv_run -> (SIGINT/SIGTERM: def->drain, hard stop after MESH_DRAIN_MS;
 *   a second signal: stop now) -> def->destroy -> close every handle ->
 *   uv_loop_close -> zmq_ctx_term.
 *
 * The signal handles and the drain timer are unref'd: they never keep the
 * loop alive by themselves, so a service that has closed all of its own
 * handles ends the loop without calling done().
 */
#include "mesh/mesh_service.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "mesh/mesh.h"
#include "service_obs.h" /* logs+traces set-up (issue 7) */
#include "mesh/mesh_metrics.h"
#include "mesh/mesh_metrics_http.h"

/* Exit codes (mesh_service.h). */
#define EXIT_OK           0
#define EXIT_START_FAILED 1
#define EXIT_USAGE        2

/* uv_run passes to let close callbacks (and what they start) settle at exit. */
#define SHUTDOWN_SPINS_MAX 16
/* "NAME: reason" of a config error. */
#define CONFIG_ERR_MAX 512

/* The common table (docs/configuration.md, "Common to every service"). */
enum {
    C_LOG_LEVEL,
    C_HEARTBEAT_MS,
    C_LIVENESS,
    C_RECONNECT_MIN_MS,
    C_RECONNECT_MAX_MS,
    C_DRAIN_MS,
    C_MAX_MSG_BYTES,
    C_HWM,
    C_METRICS_HOST,
    C_METRICS_PORT,
    C_COUNT
};

#define MS_HOUR INT64_C(3600000)

static const mesh_config_entry_t s_common[C_COUNT] = {
    [C_LOG_LEVEL] = {.name = "MESH_LOG_LEVEL",
                     .type = MESH_CFG_STRING,
                     .def = "info",
                     .help = "log level: debug, info, warn, error, off"},
    [C_HEARTBEAT_MS] = {.name = "MESH_HEARTBEAT_MS",
                        .type = MESH_CFG_INT,
                        .def = "1000",
                        .min = 10,
                        .max = MS_HOUR,
                        .help = "heartbeat interval on every broker link (same everywhere)"},
    [C_LIVENESS] = {.name = "MESH_HEARTBEAT_LIVENESS",
                    .type = MESH_CFG_INT,
                    .def = "3",
                    .min = 1,
                    .max = 1000,
                    .help = "intervals of silence after which a peer is dead"},
    [C_RECONNECT_MIN_MS] = {.name = "MESH_RECONNECT_MIN_MS",
                            .type = MESH_CFG_INT,
                            .def = "250",
                            .min = 1,
                            .max = MS_HOUR,
                            .help = "first reconnect delay after a router is lost"},
    [C_RECONNECT_MAX_MS] = {.name = "MESH_RECONNECT_MAX_MS",
                            .type = MESH_CFG_INT,
                            .def = "8000",
                            .min = 1,
                            .max = MS_HOUR,
                            .help = "reconnect delay cap (doubling from the minimum)"},
    [C_DRAIN_MS] = {.name = "MESH_DRAIN_MS",
                    .type = MESH_CFG_INT,
                    .def = "10000",
                    .min = 0,
                    .max = MS_HOUR,
                    .help = "grace period for in-flight work on SIGTERM"},
    [C_MAX_MSG_BYTES] = {.name = "MESH_MAX_MSG_BYTES",
                         .type = MESH_CFG_INT,
                         .def = "1048576",
                         .min = 1024,
                         .max = INT64_C(1) << 30,
                         .help = "ZMQ_MAXMSGSIZE on every socket"},
    [C_HWM] = {.name = "MESH_HWM",
               .type = MESH_CFG_INT,
               .def = "10000",
               .min = 1,
               .max = 10000000,
               .help = "ZMQ_SNDHWM and ZMQ_RCVHWM on every socket"},
    [C_METRICS_HOST] = {.name = "MESH_METRICS_HOST",
                        .type = MESH_CFG_STRING,
                        .def = "127.0.0.1",
                        .help = "listen address of the Prometheus /metrics endpoint"},
    [C_METRICS_PORT] = {.name = "MESH_METRICS_PORT",
                        .type = MESH_CFG_INT,
                        .def = "0", /* replaced by metrics_default_port() */
                        .min = 0,
                        .max = 65535,
                        .help = "port of the /metrics endpoint, 0 = none (a taken port only "
                                "logs a warning)"},
};

/*
 * Default /metrics port per service, so a bare start of one of each on one
 * host works (docs/configuration.md). The gateway serves /metrics on its
 * main HTTP port already; a separate port is optional there.
 */
static const struct {
    const char *service;
    const char *port;
} s_metrics_ports[] = {
    {"router", "9101"},
    {"llm", "9102"},
    {"tools", "9103"},
    {"memory", "9104"},
};

static const char *metrics_default_port(const char *service)
{
    for (size_t i = 0; i < sizeof(s_metrics_ports) / sizeof(s_metrics_ports[0]); i++)
        if (strcmp(s_metrics_ports[i].service, service) == 0)
            return s_metrics_ports[i].port;
    return "0";
}

typedef enum { PHASE_RUNNING, PHASE_DRAINING, PHASE_STOPPING } phase_t;

/* The skeleton's own state, kept in ctx->state. */
typedef struct {
    const mesh_service_def_t *def;
    mesh_service_ctx_t *ctx;
    void *svc; /* the service object from def->start */
    phase_t phase;
    uv_signal_t sig_int;
    uv_signal_t sig_term;
    uv_signal_t sig_hup;
    uv_timer_t drain_timer;
    mesh_metrics_http_t *metrics_http; /* NULL when MESH_METRICS_PORT is 0 or taken */
} skel_t;

static void print_help(FILE *out, const mesh_service_def_t *def)
{
    fprintf(out, "mesh-%s - %s\n\n", def->name, def->summary != NULL ? def->summary : "");
    fprintf(out, "Usage: mesh-%s [--help | --version]\n\n", def->name);
    fprintf(out, "Every setting comes from the environment.\n\n");
    fprintf(out, "Environment:\n");
    /* One table so the columns line up: the common entries, then the service's. */
    size_t n_svc = def->config != NULL ? def->n_config : 0;
    mesh_config_entry_t *all = calloc(C_COUNT + n_svc, sizeof(*all));
    if (all == NULL) {
        mesh_config_entry_t common[C_COUNT];
        memcpy(common, s_common, sizeof(common));
        common[C_METRICS_PORT].def = metrics_default_port(def->name);
        mesh_config_help(out, common, C_COUNT);
        mesh_config_help(out, def->config, n_svc);
        return;
    }
    memcpy(all, s_common, sizeof(s_common));
    all[C_METRICS_PORT].def = metrics_default_port(def->name);
    if (n_svc > 0)
        memcpy(all + C_COUNT, def->config, n_svc * sizeof(*all));
    mesh_config_help(out, all, C_COUNT + n_svc);
    mesh__obs_help(out);
    free(all);
}

/* 0 to go on, or the exit code (+1, so 0 stays "go on"). */
static int handle_args(int argc, char **argv, const mesh_service_def_t *def)
{
    if (argc <= 1)
        return 0;
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_help(stdout, def);
        fflush(stdout);
        return EXIT_OK + 1;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("mesh-%s %s\n", def->name, MESH_VERSION);
        fflush(stdout);
        return EXIT_OK + 1;
    }
    char shown[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_log_sanitize(argv[1], strlen(argv[1]), shown, sizeof(shown));
    fprintf(stderr, "mesh-%s: unknown argument '%s'\nUsage: mesh-%s [--help | --version]\n",
            def->name, shown, def->name);
    return EXIT_USAGE + 1;
}

/* Load and check the common table into ctx. 0 or MESH_ECONFIG with err filled. */
static int load_common(mesh_config_entry_t *common, mesh_service_ctx_t *ctx,
                       mesh_log_level_t *level, char *err, size_t err_size)
{
    int rc = mesh_config_load(common, C_COUNT, err, err_size);
    if (rc != 0)
        return rc;
    if (mesh_log_level_parse(common[C_LOG_LEVEL].s, level) != 0) {
        char shown[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(common[C_LOG_LEVEL].s, strlen(common[C_LOG_LEVEL].s), shown,
                          sizeof(shown));
        snprintf(err, err_size, "MESH_LOG_LEVEL: not one of debug|info|warn|error|off: '%s'",
                 shown);
        return MESH_ECONFIG;
    }
    if (common[C_RECONNECT_MIN_MS].i > common[C_RECONNECT_MAX_MS].i) {
        snprintf(err, err_size, "MESH_RECONNECT_MIN_MS: must not exceed MESH_RECONNECT_MAX_MS");
        return MESH_ECONFIG;
    }
    ctx->heartbeat_ms = (uint64_t)common[C_HEARTBEAT_MS].i;
    ctx->liveness = (uint32_t)common[C_LIVENESS].i;
    ctx->reconnect_min_ms = (uint64_t)common[C_RECONNECT_MIN_MS].i;
    ctx->reconnect_max_ms = (uint64_t)common[C_RECONNECT_MAX_MS].i;
    ctx->drain_ms = (uint64_t)common[C_DRAIN_MS].i;
    mesh_zsock_opts_default(&ctx->zopts);
    ctx->zopts.max_msg_size = common[C_MAX_MSG_BYTES].i;
    ctx->zopts.sndhwm = (int)common[C_HWM].i;
    ctx->zopts.rcvhwm = (int)common[C_HWM].i;
    return 0;
}

static void stop_now(skel_t *sk)
{
    sk->phase = PHASE_STOPPING;
    uv_stop(sk->ctx->loop);
}

static void on_drain_done(mesh_service_ctx_t *ctx)
{
    skel_t *sk = ctx->state;
    if (sk == NULL || sk->phase == PHASE_STOPPING)
        return;
    mesh_log_info("service", "drained");
    stop_now(sk);
}

static void on_drain_timeout(uv_timer_t *t)
{
    skel_t *sk = t->data;
    if (sk->phase == PHASE_STOPPING)
        return;
    mesh_log_warn("service", "drain grace of %" PRIu64 " ms expired, stopping", sk->ctx->drain_ms);
    stop_now(sk);
}

static void begin_drain(skel_t *sk, int signum)
{
    sk->phase = PHASE_DRAINING;
    mesh_log_info("service", "draining (signal %d, grace %" PRIu64 " ms)", signum,
                  sk->ctx->drain_ms);
    if (sk->def->drain == NULL) {
        stop_now(sk);
        return;
    }
    uv_timer_start(&sk->drain_timer, on_drain_timeout, sk->ctx->drain_ms, 0);
    sk->def->drain(sk->svc, sk->ctx->drain_ms, on_drain_done, sk->ctx);
}

static void on_signal(uv_signal_t *h, int signum)
{
    skel_t *sk = h->data;

    if (signum == SIGHUP) {
        if (sk->def->reload != NULL && sk->phase == PHASE_RUNNING) {
            mesh_log_info("service", "reloading (SIGHUP)");
            sk->def->reload(sk->svc);
        }
        return;
    }
    switch (sk->phase) {
    case PHASE_RUNNING:
        begin_drain(sk, signum);
        break;
    case PHASE_DRAINING:
        mesh_log_warn("service", "second signal %d, stopping now", signum);
        stop_now(sk);
        break;
    case PHASE_STOPPING:
        break;
    }
}

static int skel_init_handles(skel_t *sk, uv_loop_t *loop)
{
    uv_signal_t *sigs[] = {&sk->sig_int, &sk->sig_term, &sk->sig_hup};
    int signums[] = {SIGINT, SIGTERM, SIGHUP};

    for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++) {
        if (uv_signal_init(loop, sigs[k]) != 0)
            return MESH_EIO;
        sigs[k]->data = sk;
        if (uv_signal_start(sigs[k], on_signal, signums[k]) != 0)
            return MESH_EIO;
        uv_unref((uv_handle_t *)sigs[k]);
    }
    if (uv_timer_init(loop, &sk->drain_timer) != 0)
        return MESH_EIO;
    sk->drain_timer.data = sk;
    uv_unref((uv_handle_t *)&sk->drain_timer);
    return 0;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Close every handle left on the loop and close the loop. 0 or MESH_EBUSY. */
static int close_loop(uv_loop_t *loop)
{
    for (int spin = 0; spin < SHUTDOWN_SPINS_MAX; spin++) {
        uv_walk(loop, close_walk_cb, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        if (uv_loop_close(loop) == 0)
            return 0;
    }
    return MESH_EBUSY;
}

/*
 * The process-level series and the /metrics listener. A listener that cannot
 * bind (the port is taken, e.g. by a second worker on the same host started
 * with the defaults) is logged and skipped: metrics are never a reason for a
 * service not to serve.
 */
/* GET /readyz on the metrics port: draining comes first (an orchestrator
 * stops routing to the instance before its work is handed back), then the
 * service's own check. */
static int skel_ready(void *arg, char *why, size_t why_size)
{
    skel_t *sk = arg;
    if (sk->phase != PHASE_RUNNING || sk->svc == NULL) {
        snprintf(why, why_size, "%s", sk->phase == PHASE_RUNNING ? "starting" : "draining");
        return MESH_EUNAVAIL;
    }
    if (sk->def->ready != NULL)
        return sk->def->ready(sk->svc, why, why_size);
    return 0;
}

static void metrics_start(skel_t *sk, mesh_config_entry_t *common)
{
    mesh_metrics_t *reg = mesh_metrics_global();
    mesh_metric_t *info =
        mesh_metrics_gauge(reg, "mesh_build_info",
                           "always 1; the service and its version as labels", "service,version", 1);
    mesh_gauge_set(mesh_metric_at(info, sk->def->name, MESH_VERSION), 1);
    mesh_metric_t *start =
        mesh_metrics_gauge(reg, "mesh_process_start_time_seconds",
                           "process start, seconds since the Unix epoch", NULL, 1);
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) == 0)
        mesh_gauge_set(mesh_metric_with(start, NULL), (double)tv.tv_sec + (double)tv.tv_usec / 1e6);

    int port = (int)common[C_METRICS_PORT].i;
    const char *host = common[C_METRICS_HOST].s;
    if (port == 0 || reg == NULL)
        return;
    sk->metrics_http = mesh_metrics_http_new(sk->ctx->loop, reg);
    if (sk->metrics_http == NULL || mesh_metrics_http_listen(sk->metrics_http, host, port) != 0) {
        mesh_log_warn("service", "metrics endpoint %s:%d not available, serving without it", host,
                      port);
        mesh_metrics_http_destroy(&sk->metrics_http);
        return;
    }
    mesh_metrics_http_set_ready(sk->metrics_http, skel_ready, sk);
    mesh_log_info("service", "metrics on http://%s:%d/metrics", host,
                  mesh_metrics_http_port(sk->metrics_http));
}

static void ignore_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}

int mesh_service_main(int argc, char **argv, const mesh_service_def_t *def)
{
    mesh_config_entry_t common[C_COUNT];
    mesh_service_ctx_t ctx;
    skel_t sk;
    uv_loop_t loop;
    char err[CONFIG_ERR_MAX];
    mesh_log_level_t level = MESH_LOG_INFO;
    bool loop_ok = false;
    int exit_code = EXIT_START_FAILED;
    int rc;

    if (def == NULL || def->name == NULL || def->start == NULL || def->destroy == NULL) {
        fprintf(stderr, "mesh: invalid service definition\n");
        return EXIT_START_FAILED;
    }
    rc = handle_args(argc, argv, def);
    if (rc != 0)
        return rc - 1;

    memset(&ctx, 0, sizeof(ctx));
    memset(&sk, 0, sizeof(sk));
    memcpy(common, s_common, sizeof(common));
    common[C_METRICS_PORT].def = metrics_default_port(def->name);
    ctx.name = def->name;
    ctx.config = def->config;
    ctx.n_config = def->n_config;
    err[0] = '\0';
    rc = load_common(common, &ctx, &level, err, sizeof(err));
    if (rc == 0 && def->config != NULL && def->n_config > 0)
        rc = mesh_config_load(def->config, def->n_config, err, sizeof(err));
    if (rc == 0)
        rc = mesh__obs_load(err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "mesh-%s: %s\n", def->name, err);
        return EXIT_USAGE;
    }

    mesh_log_init(def->name, level);
    ignore_sigpipe();
    if (uv_loop_init(&loop) != 0) {
        mesh_log_error("service", "uv_loop_init failed");
        return EXIT_START_FAILED;
    }
    loop_ok = true;
    ctx.loop = &loop;
    ctx.zctx = zmq_ctx_new();
    if (ctx.zctx == NULL) {
        mesh_log_error("service", "zmq_ctx_new failed: %s", zmq_strerror(errno));
        goto cleanup;
    }
    sk.def = def;
    sk.ctx = &ctx;
    sk.phase = PHASE_RUNNING;
    ctx.state = &sk;
    if (skel_init_handles(&sk, &loop) != 0) {
        mesh_log_error("service", "cannot install signal handlers");
        goto cleanup;
    }
    if (mesh__obs_start(&loop, def->name) != 0) {
        mesh_log_error("service", "cannot install the log level signal handlers");
        goto cleanup;
    }

    metrics_start(&sk, common);

    rc = def->start(&ctx, &sk.svc);
    if (rc != 0) {
        mesh_log_error("service", "start failed: %s", mesh_strerror(rc));
        goto cleanup;
    }
    mesh_log_info("service", "started (version %s, pid %ld)", MESH_VERSION, (long)getpid());
    uv_run(&loop, UV_RUN_DEFAULT);
    sk.phase = PHASE_STOPPING;
    exit_code = EXIT_OK;

cleanup:
    sk.phase = PHASE_STOPPING;
    /* A start that failed after storing its object still gets destroy. */
    if (sk.svc != NULL)
        def->destroy(&sk.svc);
    mesh__obs_stop();
    mesh_metrics_http_destroy(&sk.metrics_http);
    if (loop_ok && close_loop(&loop) != 0)
        mesh_log_error("service", "loop did not close cleanly");
    if (ctx.zctx != NULL) {
        while (zmq_ctx_term(ctx.zctx) != 0 && errno == EINTR)
            ;
        ctx.zctx = NULL;
    }
    ctx.state = NULL;
    /* Every user of the registry (workers, clients, the service) is gone now. */
    mesh_metrics_global_free();
    if (exit_code == EXIT_OK)
        mesh_log_info("service", "stopped");
    return exit_code;
}

int mesh_service_endpoints(mesh_service_ctx_t *ctx, const char *name,
                           char storage[MESH_MAX_ROUTERS][256],
                           const char *endpoints[MESH_MAX_ROUTERS])
{
    if (ctx == NULL || name == NULL || storage == NULL || endpoints == NULL)
        return MESH_EINVAL;
    const char *list = mesh_config_str(ctx->config, ctx->n_config, name);
    if (list == NULL) {
        mesh_log_error("service", "%s: not a configuration entry of this service", name);
        return MESH_ECONFIG;
    }
    int n = mesh_config_split(list, storage, MESH_MAX_ROUTERS);
    if (n < 0) {
        mesh_log_error("service",
                       "%s: want 1..%d comma-separated endpoints of at most %d bytes each", name,
                       MESH_MAX_ROUTERS, MESH_ENDPOINT_MAX - 1);
        return MESH_ECONFIG;
    }
    if (n == 0) {
        mesh_log_error("service", "%s: no endpoint given", name);
        return MESH_ECONFIG;
    }
    for (int k = 0; k < n; k++) {
        /* Every ZeroMQ endpoint is transport://address. */
        const char *sep = strstr(storage[k], "://");
        if (sep == NULL || sep == storage[k] || sep[3] == '\0') {
            char shown[4 * MESH_LOG_SAMPLE_MAX + 4];
            mesh_log_sanitize(storage[k], strlen(storage[k]), shown, sizeof(shown));
            mesh_log_error("service", "%s: not a transport://address endpoint: '%s'", name, shown);
            return MESH_ECONFIG;
        }
        endpoints[k] = storage[k];
    }
    return n;
}
