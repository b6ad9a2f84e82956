/*
 * channel_webhook.c - the generic signed webhook (docs/channels.md,
 * "Generic webhook").
 *
 * POST /v1/channels/webhook with body {conversation_id, text, message_id,
 * callback_url?, agent?}, headers X-Mesh-Timestamp (unix seconds, within 5
 * minutes) and X-Mesh-Signature: sha256=<hex HMAC-SHA256(MESH_WEBHOOK_SECRET,
 * "<timestamp>.<raw body>")>. Without callback_url the answer is the
 * response (200, the turn's reply); with it the request is acknowledged
 * with 202 and the answer is POSTed to callback_url as
 * {conversation_id, message_id, reply}, signed the same way (the receiver
 * checks it with the same secret).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel_int.h"
#include "json_io.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_text.h"
#include "validate.h"

#define WEBHOOK_SIG_PREFIX "sha256="

/* "sha256=" + hex HMAC(secret, ts "." body) into out (7 + 64 + 1 bytes). */
static int webhook_sign(const char *secret, const char *ts, size_t ts_len, const char *body,
                        size_t body_len, char out[sizeof(WEBHOOK_SIG_PREFIX) + 2 * MESH_SHA256_LEN])
{
    const void *parts[] = {ts, ".", body};
    size_t lens[] = {ts_len, 1, body_len};
    uint8_t mac[MESH_SHA256_LEN];
    int rc = mesh_hmac_sha256(secret, strlen(secret), parts, lens, 3, mac);
    if (rc != 0)
        return rc;
    memcpy(out, WEBHOOK_SIG_PREFIX, sizeof(WEBHOOK_SIG_PREFIX) - 1);
    mesh_hex_encode(mac, sizeof mac, out + sizeof(WEBHOOK_SIG_PREFIX) - 1);
    return 0;
}

static void invalid(gateway_http_conn_t *conn, const char *msg)
{
    channel_count_inbound(CHANNEL_WEBHOOK, "invalid");
    gateway_http_conn_respond_error(conn, 400, "invalid_field", msg, NULL);
}

void channel_webhook_inbound(gateway_channels_t *ch, gateway_http_conn_t *conn,
                             const gateway_http_req_t *req)
{
    const gateway_hdr_t *sig = &req->hdr[GATEWAY_HDR_MESH_SIGNATURE];
    const gateway_hdr_t *ts = &req->hdr[GATEWAY_HDR_MESH_TIMESTAMP];
    if (sig->state != GATEWAY_HDR_PRESENT || ts->state != GATEWAY_HDR_PRESENT) {
        channel_unauthorized(conn, CHANNEL_WEBHOOK, "missing X-Mesh-Signature or X-Mesh-Timestamp");
        return;
    }
    if (!channel_timestamp_fresh(ts->value, ts->len)) {
        channel_unauthorized(conn, CHANNEL_WEBHOOK, "stale or invalid X-Mesh-Timestamp");
        return;
    }
    char want[sizeof(WEBHOOK_SIG_PREFIX) + 2 * MESH_SHA256_LEN];
    if (webhook_sign(ch->cfg.webhook_secret, ts->value, ts->len, req->body, req->body_len, want) !=
            0 ||
        sig->len != sizeof want - 1 || !mesh_ct_equal(sig->value, want, sizeof want - 1)) {
        channel_unauthorized(conn, CHANNEL_WEBHOOK, "bad signature");
        return;
    }
    json_t *body = NULL, *to = NULL;
    if (channel_parse_body(conn, CHANNEL_WEBHOOK, req, &body) != 0)
        return;
    const json_t *conv = json_object_get(body, "conversation_id");
    const json_t *text = json_object_get(body, "text");
    const json_t *mid = json_object_get(body, "message_id");
    const json_t *cb = json_object_get(body, "callback_url");
    const json_t *agent = json_object_get(body, "agent");
    if (!json_is_string(conv) ||
        !mesh_conv_id_valid(json_string_value(conv), json_string_length(conv))) {
        invalid(conn, "conversation_id: required, 1..128 bytes of [A-Za-z0-9._:-]");
        goto out;
    }
    if (!json_is_string(text) || json_string_length(text) == 0 ||
        json_string_length(text) > MESH_TEXT_MAX ||
        !mesh_utf8_valid(json_string_value(text), json_string_length(text))) {
        invalid(conn, "text: required, a string of 1..65536 bytes of UTF-8");
        goto out;
    }
    if (!json_is_string(mid) ||
        !gateway_message_id_valid(json_string_value(mid), json_string_length(mid))) {
        invalid(conn, "message_id: required, 1..64 bytes of [A-Za-z0-9._:-]");
        goto out;
    }
    if (agent && !json_is_null(agent) &&
        (!json_is_string(agent) ||
         !gateway_agent_valid(json_string_value(agent), json_string_length(agent)))) {
        invalid(conn, "agent: optional, a string of 1..64 bytes of [A-Za-z0-9._-]");
        goto out;
    }
    const char *agent_s = json_is_string(agent) ? json_string_value(agent) : NULL;
    if (cb && !json_is_null(cb)) {
        const char *u = json_string_value(cb);
        if (!u || json_string_length(cb) > MESH_HTTPC_URL_MAX ||
            (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)) {
            invalid(conn, "callback_url: optional, an http(s) URL of at most 2048 bytes");
            goto out;
        }
        to = json_pack("{s:O,s:O}", "callback_url", cb, "message_id", mid);
        if (channel_turn_start(ch, CHANNEL_WEBHOOK, conn, req, json_string_value(conv), to,
                               json_string_value(text), json_string_length(text),
                               json_string_value(mid), agent_s, NULL) != 0)
            goto out;
        json_t *ack =
            json_pack("{s:b,s:O,s:O}", "accepted", 1, "conversation_id", conv, "message_id", mid);
        gateway_respond_json(ch->gw, conn, 202, ack);
        json_decref(ack);
        goto out;
    }
    /* Synchronous: the turn's FINAL answers this request (channels.c). */
    to = json_object();
    channel_turn_start(ch, CHANNEL_WEBHOOK, conn, req, json_string_value(conv), to,
                       json_string_value(text), json_string_length(text), json_string_value(mid),
                       agent_s, conn);
out:
    json_decref(to);
    json_decref(body);
}

/* ---- outbound: the callback ----------------------------------------------------------- */

static void on_called_back(const mesh_httpc_resp_t *r, void *arg)
{
    gateway_channels_t *ch = arg;
    channel_outcome_t o;
    channel_outcome_http(r, &o);
    channel_queue_done(ch, CHANNEL_WEBHOOK, &o);
}

int channel_webhook_send(gateway_channels_t *ch, channel_delivery_t *d, uint64_t *http_id)
{
    const char *url = json_string_value(json_object_get(d->to, "callback_url"));
    const json_t *mid = json_object_get(d->to, "message_id");
    if (!url)
        return MESH_EINVAL;
    json_t *b = json_pack("{s:s,s:s%}", "conversation_id", d->conv, "reply", d->text, d->len);
    if (b && json_is_string(mid))
        json_object_set(b, "message_id", (json_t *)mid);
    char *body = channel_json_body(b);
    if (!body)
        return MESH_ENOMEM;
    char ts[32], sig[sizeof(WEBHOOK_SIG_PREFIX) + 2 * MESH_SHA256_LEN];
    int tl = snprintf(ts, sizeof ts, "%lld", (long long)channel_unix_s());
    int rc = webhook_sign(ch->cfg.webhook_secret, ts, (size_t)tl, body, strlen(body), sig);
    if (rc != 0) {
        free(body);
        return rc;
    }
    char h_ts[64], h_sig[128];
    snprintf(h_ts, sizeof h_ts, "X-Mesh-Timestamp: %s", ts);
    snprintf(h_sig, sizeof h_sig, "X-Mesh-Signature: %s", sig);
    const char *const extra[] = {h_ts, h_sig, NULL};
    rc = channel_post(ch, url, "application/json", extra, d->tp, body, on_called_back, http_id);
    free(body);
    return rc;
}
