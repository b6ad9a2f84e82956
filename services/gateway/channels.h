/*
 * channels.h - chat channels on the gateway (docs/channels.md): inbound
 * webhooks (Slack Events API, Telegram, WeCom, a generic signed webhook)
 * that run a turn, and the outbound delivery of answers through the
 * platforms' APIs (libcurl, mesh_httpc.h).
 *
 *   POST     /v1/channels/slack/events      channel_slack.c
 *   POST     /v1/channels/telegram/webhook  channel_telegram.c
 *   GET/POST /v1/channels/wecom/callback    channel_wecom.c
 *   POST     /v1/channels/webhook           channel_webhook.c
 *   GET      /v1/deliveries/failed          channels.c (people API key)
 *
 * A channel whose credentials are not configured answers 404 not_enabled.
 * Bad signatures, stale timestamps and wrong secrets answer 401 (logged once,
 * never with the body). Credentials come only from the environment or from
 * files (*_FILE variables) and are never logged.
 *
 * The channel state is created on first use from the environment and freed
 * by gateway_destroy (gateway_channels_destroy).
 */
#ifndef GATEWAY_CHANNELS_H
#define GATEWAY_CHANNELS_H

#include <jansson.h>
#include <stddef.h>

#include "gateway.h"
#include "http_conn.h"

#define GATEWAY_CHANNELS_PREFIX        "/v1/channels/"
#define GATEWAY_DELIVERIES_FAILED_PATH "/v1/deliveries/failed"

/*
 * Queue text[0..len) for delivery to `to` on channel (slack | telegram |
 * wecom | webhook | web) for conversation conv: bounded queue per channel
 * (MESH_CHANNEL_QUEUE_MAX), retries on 429/5xx/connection errors honouring
 * Retry-After, split as the platform needs. An answer that finally cannot
 * be delivered is recorded with memory op delivery.record (never dropped)
 * and listed by GET /v1/deliveries/failed. Channel "web", and "webhook"
 * without a callback_url in `to`, have nothing to send: 0 at once.
 * Returns 0 (queued or nothing to send), MESH_EINVAL (unknown channel, bad
 * `to`), MESH_ENOTFOUND (channel not configured) or MESH_EBUSY (queue full:
 * the failure is recorded as for an undeliverable answer). `to` and text
 * are copied.
 */
int gateway_channels_deliver(gateway_t *gw, const char *conv, const char *channel, const json_t *to,
                             const char *text, size_t len);

/* The routes above (routes.c calls these). */
void gateway_route_channel(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req);
void gateway_route_deliveries_failed(gateway_t *gw, gateway_http_conn_t *conn,
                                     const gateway_http_req_t *req);

/* Cancel channel turns and deliveries in flight and free the state (gateway_destroy). */
void gateway_channels_destroy(gateway_t *gw);

#endif
