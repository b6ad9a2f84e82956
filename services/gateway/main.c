/*
 * main.c - mesh-gateway: the HTTP/1.1 edge of the mesh (docs/gateway.md).
 *
 * Follows the mesh_service.h skeleton: configuration from the environment,
 * start, drain on SIGTERM, destroy.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_service.h"

static mesh_config_entry_t gateway_config[] = {
    {"MESH_ROUTER_FRONTENDS", MESH_CFG_STRING, "tcp://127.0.0.1:7001", 0, 0,
     "router frontend endpoints, comma-separated (one per router)", 0, NULL},
    {"MESH_HTTP_HOST", MESH_CFG_STRING, "127.0.0.1", 0, 0,
     "HTTP listen address (0.0.0.0 in containers)", 0, NULL},
    {"MESH_HTTP_PORT", MESH_CFG_INT, "8080", 0, 65535, "HTTP listen port (0: any free port)", 0,
     NULL},
    {"MESH_HTTP_MAX_BODY", MESH_CFG_INT, "1048576", 1024, 16 * 1024 * 1024,
     "request body limit in bytes (413 above)", 0, NULL},
    {"MESH_HTTP_MAX_HEADER", MESH_CFG_INT, "16384", 1024, 65535,
     "request head (request line + headers) limit in bytes (431 above)", 0, NULL},
    {"MESH_HTTP_IDLE_MS", MESH_CFG_INT, "30000", 10, 3600000,
     "keep-alive idle timeout; also the time allowed to receive one request (408)", 0, NULL},
    {"MESH_HTTP_MAX_CONNS", MESH_CFG_INT, "10000", 1, 1000000,
     "open HTTP connections; more are refused with 503", 0, NULL},
    {"MESH_TURN_TIMEOUT_MS", MESH_CFG_INT, "30000", 1, 600000,
     "deadline of a turn (X-Mesh-Timeout-Ms may lower it)", 0, NULL},
    {"MESH_SSE_HEARTBEAT_MS", MESH_CFG_INT, "15000", 0, 600000,
     "idle interval after which a streamed answer gets a ': ping' comment (0: never)", 0, NULL},
    {"MESH_DATA_DIR", MESH_CFG_STRING, "./data", 0, 0,
     "agents/*.json: the models of /v1/models (re-read on SIGHUP)", 0, NULL},
    {"MESH_DRAIN_DELAY_MS", MESH_CFG_INT, "0", 0, 600000,
     "on SIGTERM, /readyz answers 503 this long before the listener closes (Kubernetes: a few "
     "seconds, so the Service stops routing here first)",
     0, NULL},
    {"MESH_WEB_DIR", MESH_CFG_STRING, "./web", 0, 0, "web pages: / and /console (route_static.c)",
     0, NULL},
    /* Read by the people API and the channels (route_people_auth.c, channels.c) at use;
     * listed here so --help documents them and bad numbers fail the start. */
    {"MESH_PEOPLE_KEYS", MESH_CFG_STRING, NULL, 0, 0,
     "people API keys inline, name:key,... (docs/people-api.md); never logged", 0, NULL},
    {"MESH_PEOPLE_KEYS_FILE", MESH_CFG_STRING, NULL, 0, 0,
     "file of people API keys, one name:key per line (re-read on each request)", 0, NULL},
    {"MESH_SLACK_SIGNING_SECRET", MESH_CFG_STRING, NULL, 0, 0,
     "Slack signing secret (with the bot token: enables /v1/channels/slack/events); never logged",
     0, NULL},
    {"MESH_SLACK_SIGNING_SECRET_FILE", MESH_CFG_STRING, NULL, 0, 0,
     "file holding the Slack signing secret", 0, NULL},
    {"MESH_SLACK_BOT_TOKEN", MESH_CFG_STRING, NULL, 0, 0,
     "Slack bot token for chat.postMessage; never logged", 0, NULL},
    {"MESH_SLACK_BOT_TOKEN_FILE", MESH_CFG_STRING, NULL, 0, 0, "file holding the Slack bot token",
     0, NULL},
    {"MESH_TELEGRAM_SECRET_TOKEN", MESH_CFG_STRING, NULL, 0, 0,
     "Telegram webhook secret_token (with the bot token: enables the webhook); never logged", 0,
     NULL},
    {"MESH_TELEGRAM_SECRET_TOKEN_FILE", MESH_CFG_STRING, NULL, 0, 0,
     "file holding the Telegram secret_token", 0, NULL},
    {"MESH_TELEGRAM_BOT_TOKEN", MESH_CFG_STRING, NULL, 0, 0,
     "Telegram bot token for sendMessage; never logged", 0, NULL},
    {"MESH_TELEGRAM_BOT_TOKEN_FILE", MESH_CFG_STRING, NULL, 0, 0,
     "file holding the Telegram bot token", 0, NULL},
    {"MESH_WECOM_TOKEN", MESH_CFG_STRING, NULL, 0, 0,
     "WeCom callback Token (msg_signature); never logged", 0, NULL},
    {"MESH_WECOM_TOKEN_FILE", MESH_CFG_STRING, NULL, 0, 0, "file holding the WeCom Token", 0, NULL},
    {"MESH_WECOM_AES_KEY", MESH_CFG_STRING, NULL, 0, 0,
     "WeCom EncodingAESKey (43 characters); never logged", 0, NULL},
    {"MESH_WECOM_AES_KEY_FILE", MESH_CFG_STRING, NULL, 0, 0,
     "file holding the WeCom EncodingAESKey", 0, NULL},
    {"MESH_WECOM_CORP_ID", MESH_CFG_STRING, NULL, 0, 0, "WeCom corp id; never logged", 0, NULL},
    {"MESH_WECOM_CORP_ID_FILE", MESH_CFG_STRING, NULL, 0, 0, "file holding the WeCom corp id", 0,
     NULL},
    {"MESH_WECOM_SECRET", MESH_CFG_STRING, NULL, 0, 0,
     "WeCom app corpsecret (gettoken); never logged", 0, NULL},
    {"MESH_WECOM_SECRET_FILE", MESH_CFG_STRING, NULL, 0, 0, "file holding the WeCom corpsecret", 0,
     NULL},
    {"MESH_WECOM_AGENT_ID", MESH_CFG_STRING, NULL, 0, 0,
     "WeCom app agent id (the five WeCom settings enable /v1/channels/wecom/callback); never "
     "logged",
     0, NULL},
    {"MESH_WECOM_AGENT_ID_FILE", MESH_CFG_STRING, NULL, 0, 0, "file holding the WeCom agent id", 0,
     NULL},
    {"MESH_WEBHOOK_SECRET", MESH_CFG_STRING, NULL, 0, 0,
     "HMAC secret of the generic webhook (enables /v1/channels/webhook); never logged", 0, NULL},
    {"MESH_WEBHOOK_SECRET_FILE", MESH_CFG_STRING, NULL, 0, 0,
     "file holding the generic webhook secret", 0, NULL},
    {"MESH_SLACK_API_BASE", MESH_CFG_STRING, "https://slack.com/api", 0, 0,
     "Slack Web API base URL (tests point it at a stub)", 0, NULL},
    {"MESH_TELEGRAM_API_BASE", MESH_CFG_STRING, "https://api.telegram.org", 0, 0,
     "Telegram Bot API base URL (tests point it at a stub)", 0, NULL},
    {"MESH_WECOM_API_BASE", MESH_CFG_STRING, "https://qyapi.weixin.qq.com", 0, 0,
     "WeCom API base URL (tests point it at a stub)", 0, NULL},
    {"MESH_CHANNEL_QUEUE_MAX", MESH_CFG_INT, "1000", 1, 1000000,
     "outbound messages queued per channel (a full queue records the answer as undeliverable)", 0,
     NULL},
    {"MESH_CHANNEL_MAX_ATTEMPTS", MESH_CFG_INT, "5", 1, 100,
     "attempts per outbound message (429/5xx/connection errors are retried)", 0, NULL},
    {"MESH_CHANNEL_BACKOFF_MS", MESH_CFG_INT, "500", 1, 3600000,
     "first retry delay of an outbound message, doubling", 0, NULL},
    {"MESH_CHANNEL_BACKOFF_MAX_MS", MESH_CFG_INT, "30000", 1, 3600000,
     "retry delay cap (a Retry-After replaces the delay, capped at 300 s)", 0, NULL},
    {"MESH_CHANNEL_HTTP_TIMEOUT_MS", MESH_CFG_INT, "10000", 1, 600000,
     "timeout of one outbound channel API call", 0, NULL},
};

#define N_CONFIG (sizeof(gateway_config) / sizeof(gateway_config[0]))

typedef struct {
    gateway_t *gw;
    char endpoint_storage[MESH_MAX_ROUTERS][256];
    void (*drain_done)(mesh_service_ctx_t *ctx);
    mesh_service_ctx_t *ctx;
} gateway_main_t;

static int64_t cfg_int(mesh_service_ctx_t *ctx, const char *name)
{
    return mesh_config_int(ctx->config, ctx->n_config, name);
}

static int gateway_main_start(mesh_service_ctx_t *ctx, void **state)
{
    int rc = MESH_ENOMEM;
    gateway_main_t *m = calloc(1, sizeof(*m));
    if (!m)
        goto fail;
    gateway_config_t cfg = {
        .http_host = mesh_config_str(ctx->config, ctx->n_config, "MESH_HTTP_HOST"),
        .http_port = (int)cfg_int(ctx, "MESH_HTTP_PORT"),
        .max_body = (size_t)cfg_int(ctx, "MESH_HTTP_MAX_BODY"),
        .max_header = (size_t)cfg_int(ctx, "MESH_HTTP_MAX_HEADER"),
        .idle_ms = (uint64_t)cfg_int(ctx, "MESH_HTTP_IDLE_MS"),
        .max_conns = (uint32_t)cfg_int(ctx, "MESH_HTTP_MAX_CONNS"),
        .turn_timeout_ms = (uint32_t)cfg_int(ctx, "MESH_TURN_TIMEOUT_MS"),
        .sse_heartbeat_ms = (uint64_t)cfg_int(ctx, "MESH_SSE_HEARTBEAT_MS"),
        .drain_delay_ms = (uint64_t)cfg_int(ctx, "MESH_DRAIN_DELAY_MS"),
        .data_dir = mesh_config_str(ctx->config, ctx->n_config, "MESH_DATA_DIR"),
        .client =
            {
                .heartbeat_ms = ctx->heartbeat_ms,
                .liveness = ctx->liveness,
                .reconnect_min_ms = ctx->reconnect_min_ms,
                .reconnect_max_ms = ctx->reconnect_max_ms,
                .zopts = ctx->zopts,
            },
    };
    int n = mesh_service_endpoints(ctx, "MESH_ROUTER_FRONTENDS", m->endpoint_storage,
                                   cfg.client.endpoints);
    if (n < 1) {
        mesh_log_error("gateway", "MESH_ROUTER_FRONTENDS: no valid endpoint");
        rc = MESH_ECONFIG;
        goto fail;
    }
    cfg.client.n_endpoints = n;
    m->gw = gateway_new(ctx->loop, ctx->zctx, &cfg);
    if (!m->gw) {
        rc = MESH_ECONFIG;
        goto fail;
    }
    rc = gateway_start(m->gw);
    if (rc < 0)
        goto fail;
    *state = m;
    return 0;
fail:
    if (m)
        gateway_destroy(&m->gw);
    free(m);
    return rc;
}

static void gateway_main_drained(void *arg)
{
    gateway_main_t *m = arg;
    if (m->drain_done) {
        void (*done)(mesh_service_ctx_t *) = m->drain_done;
        m->drain_done = NULL;
        done(m->ctx);
    }
}

static void gateway_main_drain(void *state, uint64_t grace_ms,
                               void (*done)(mesh_service_ctx_t *ctx), mesh_service_ctx_t *ctx)
{
    gateway_main_t *m = state;
    m->drain_done = done;
    m->ctx = ctx;
    gateway_drain(m->gw, gateway_main_drained, m);
}

static void gateway_main_destroy(void **state)
{
    gateway_main_t *m = *state;
    *state = NULL;
    if (!m)
        return;
    gateway_destroy(&m->gw);
    free(m);
}

static void gateway_main_reload(void *state)
{
    gateway_main_t *m = state;
    if (m && m->gw)
        gateway_reload(m->gw);
}

static const mesh_service_def_t gateway_def = {
    .name = "gateway",
    .summary = "HTTP/1.1 edge of the mesh: conversations in, turns to the routers",
    .config = gateway_config,
    .n_config = N_CONFIG,
    .start = gateway_main_start,
    .drain = gateway_main_drain,
    .destroy = gateway_main_destroy,
    .reload = gateway_main_reload,
};

int main(int argc, char **argv)
{
    return mesh_service_main(argc, argv, &gateway_def);
}
