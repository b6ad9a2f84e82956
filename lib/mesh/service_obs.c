/*
 * service_obs.c - logs and traces set-up of the service skeleton
 * (service_obs.h): configuration, run-time log level signals and the OTLP
 * span exporter.
 *
 * The state is process-wide (one service per process, one loop), like the
 * logger's own settings.
 */
#include "service_obs.h"

#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include "mesh/mesh_config.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_otlp.h"
#include "mesh/mesh_trace.h"

#define MS_MINUTE INT64_C(60000)

enum {
    O_LOG_FORMAT,
    O_LOG_CONTENT,
    O_OTLP_ENDPOINT,
    O_OTLP_QUEUE,
    O_OTLP_BATCH,
    O_OTLP_INTERVAL_MS,
    O_OTLP_TIMEOUT_MS,
    O_COUNT
};

/* docs/configuration.md, "Logs and traces". */
static mesh_config_entry_t s_obs_cfg[O_COUNT] = {
    [O_LOG_FORMAT] = {.name = "MESH_LOG_FORMAT",
                      .type = MESH_CFG_STRING,
                      .def = "json",
                      .help = "log line format: json (one object per line) or text"},
    [O_LOG_CONTENT] = {.name = "MESH_LOG_CONTENT",
                       .type = MESH_CFG_INT,
                       .def = "0",
                       .min = 0,
                       .max = 1,
                       .help = "1 = log message text, redacted (debugging only; never in "
                               "production)"},
    [O_OTLP_ENDPOINT] = {.name = "MESH_OTLP_ENDPOINT",
                         .type = MESH_CFG_STRING,
                         .def = NULL,
                         .help = "OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (spans go "
                                 "to <it>/v1/traces); unset = no span export"},
    [O_OTLP_QUEUE] = {.name = "MESH_OTLP_QUEUE",
                      .type = MESH_CFG_INT,
                      .def = "1024",
                      .min = 1,
                      .max = MESH_OTLP_QUEUE_MAX,
                      .help = "spans buffered for export; more are dropped and counted"},
    [O_OTLP_BATCH] = {.name = "MESH_OTLP_BATCH",
                      .type = MESH_CFG_INT,
                      .def = "128",
                      .min = 1,
                      .max = MESH_OTLP_QUEUE_MAX,
                      .help = "spans per export POST (at most MESH_OTLP_QUEUE)"},
    [O_OTLP_INTERVAL_MS] = {.name = "MESH_OTLP_INTERVAL_MS",
                            .type = MESH_CFG_INT,
                            .def = "1000",
                            .min = 1,
                            .max = MS_MINUTE,
                            .help = "span export period"},
    [O_OTLP_TIMEOUT_MS] = {.name = "MESH_OTLP_TIMEOUT_MS",
                           .type = MESH_CFG_INT,
                           .def = "2000",
                           .min = 1,
                           .max = MS_MINUTE,
                           .help = "bound on one export POST, connect included"},
};

static struct {
    bool loaded;
    mesh_log_format_t format;
    bool signals;
    uv_signal_t usr1;
    uv_signal_t usr2;
    mesh_otlp_t *otlp;
} s_obs;

int mesh__obs_load(char *err, size_t err_size)
{
    int rc = mesh_config_load(s_obs_cfg, O_COUNT, err, err_size);
    if (rc != 0)
        return rc;
    if (mesh_log_format_parse(s_obs_cfg[O_LOG_FORMAT].s, &s_obs.format) != 0) {
        char shown[4 * MESH_LOG_SAMPLE_MAX + 4];
        const char *v = s_obs_cfg[O_LOG_FORMAT].s;
        mesh_log_sanitize(v, strlen(v), shown, sizeof(shown));
        snprintf(err, err_size, "MESH_LOG_FORMAT: not one of json|text: '%s'", shown);
        return MESH_ECONFIG;
    }
    if (s_obs_cfg[O_OTLP_BATCH].i > s_obs_cfg[O_OTLP_QUEUE].i) {
        snprintf(err, err_size, "MESH_OTLP_BATCH: must not exceed MESH_OTLP_QUEUE");
        return MESH_ECONFIG;
    }
    s_obs.loaded = true;
    return 0;
}

static const char *const s_level_names[] = {"debug", "info", "warn", "error", "off"};

static void on_level_signal(uv_signal_t *h, int signum)
{
    mesh_log_level_t before = mesh_log_get_level();
    mesh_log_level_t now = signum == SIGUSR1 ? mesh_log_level_up() : mesh_log_level_down();
    (void)h;
    /* Said at warn so that it shows unless logging is (now) off. */
    if (now != before)
        mesh_log_ev(MESH_LOG_WARN, "log.level", NULL, MESH_LF_S("from", s_level_names[before]),
                    MESH_LF_S("to", s_level_names[now]),
                    MESH_LF_S("signal", signum == SIGUSR1 ? "SIGUSR1" : "SIGUSR2"));
}

static int start_signals(uv_loop_t *loop)
{
    if (uv_signal_init(loop, &s_obs.usr1) != 0)
        return MESH_EIO;
    if (uv_signal_init(loop, &s_obs.usr2) != 0) {
        uv_close((uv_handle_t *)&s_obs.usr1, NULL);
        return MESH_EIO;
    }
    s_obs.signals = true;
    if (uv_signal_start(&s_obs.usr1, on_level_signal, SIGUSR1) != 0 ||
        uv_signal_start(&s_obs.usr2, on_level_signal, SIGUSR2) != 0)
        return MESH_EIO;
    /* Like the skeleton's other signal handles: never keep the loop alive. */
    uv_unref((uv_handle_t *)&s_obs.usr1);
    uv_unref((uv_handle_t *)&s_obs.usr2);
    return 0;
}

static void start_exporter(uv_loop_t *loop, const char *service)
{
    const char *endpoint = s_obs_cfg[O_OTLP_ENDPOINT].s;
    if (endpoint == NULL || endpoint[0] == '\0')
        return;
    mesh_otlp_opts_t o = {
        .endpoint = endpoint,
        .service = service,
        .queue_max = (size_t)s_obs_cfg[O_OTLP_QUEUE].i,
        .batch_max = (size_t)s_obs_cfg[O_OTLP_BATCH].i,
        .interval_ms = (uint64_t)s_obs_cfg[O_OTLP_INTERVAL_MS].i,
        .timeout_ms = (uint64_t)s_obs_cfg[O_OTLP_TIMEOUT_MS].i,
    };
    s_obs.otlp = mesh_otlp_new(loop, &o);
    char shown[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_log_sanitize(endpoint, strlen(endpoint), shown, sizeof(shown));
    if (s_obs.otlp == NULL) {
        mesh_log_warn("otlp", "cannot export spans to '%s' (bad URL?): tracing stays local", shown);
        return;
    }
    mesh_trace_set_sink(mesh_otlp_sink, s_obs.otlp);
    mesh_log_info("otlp", "exporting spans to %s", shown);
}

int mesh__obs_start(uv_loop_t *loop, const char *service)
{
    if (s_obs.loaded) {
        mesh_log_set_format(s_obs.format);
        mesh_log_set_content(s_obs_cfg[O_LOG_CONTENT].i != 0);
        if (s_obs_cfg[O_LOG_CONTENT].i != 0)
            mesh_log_warn("service", "MESH_LOG_CONTENT=1: message text is logged (redacted)");
    }
    int rc = start_signals(loop);
    if (rc != 0)
        return rc;
    if (s_obs.loaded)
        start_exporter(loop, service);
    return 0;
}

void mesh__obs_stop(void)
{
    mesh_trace_set_sink(NULL, NULL);
    if (s_obs.otlp != NULL) {
        mesh_otlp_stats_t st;
        mesh_otlp_stats(s_obs.otlp, &st);
        size_t unsent = mesh_otlp_pending(s_obs.otlp);
        mesh_otlp_destroy(&s_obs.otlp);
        mesh_log_ev(MESH_LOG_INFO, "otlp.stopped", NULL, MESH_LF_U("exported", st.exported),
                    MESH_LF_U("dropped", st.dropped), MESH_LF_U("unsent", unsent));
    }
    if (s_obs.signals) {
        s_obs.signals = false;
        if (!uv_is_closing((uv_handle_t *)&s_obs.usr1))
            uv_close((uv_handle_t *)&s_obs.usr1, NULL);
        if (!uv_is_closing((uv_handle_t *)&s_obs.usr2))
            uv_close((uv_handle_t *)&s_obs.usr2, NULL);
    }
}

void mesh__obs_help(FILE *out)
{
    mesh_config_help(out, s_obs_cfg, O_COUNT);
}
