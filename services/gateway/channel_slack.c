/*
 * channel_slack.c - Slack Events API (docs/channels.md, "Slack").
 *
 * Inbound POST /v1/channels/slack/events: the v0 signature
 * (X-Slack-Signature = "v0=" hex HMAC-SHA256(signing secret,
 * "v0:" X-Slack-Request-Timestamp ":" raw body)) within 5 minutes, then
 * url_verification (answer the challenge) or event_callback: a plain user
 * message (no subtype: edits, bot messages and joins are ignored; no bot_id)
 * becomes a turn of conversation slack:<team>:<channel>:<thread_ts or ts>
 * with message_id = event_id, acknowledged with 200 at once. A Slack retry
 * (X-Slack-Retry-Num) of the same event gets the stored answer from the
 * mesh (duplicate: true) and nothing is posted again.
 *
 * Outbound chat.postMessage {channel, text, thread_ts} with the bot token.
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

static bool signature_ok(const gateway_channels_t *ch, const gateway_http_req_t *req,
                         const char **why)
{
    const gateway_hdr_t *sig = &req->hdr[GATEWAY_HDR_SLACK_SIGNATURE];
    const gateway_hdr_t *ts = &req->hdr[GATEWAY_HDR_SLACK_TIMESTAMP];
    if (sig->state != GATEWAY_HDR_PRESENT || ts->state != GATEWAY_HDR_PRESENT) {
        *why = "missing X-Slack-Signature or X-Slack-Request-Timestamp";
        return false;
    }
    if (!channel_timestamp_fresh(ts->value, ts->len)) {
        *why = "stale or invalid X-Slack-Request-Timestamp";
        return false;
    }
    const char *secret = ch->cfg.slack_signing_secret;
    const void *parts[] = {"v0:", ts->value, ":", req->body};
    size_t lens[] = {3, ts->len, 1, req->body_len};
    uint8_t mac[MESH_SHA256_LEN];
    char want[3 + 2 * MESH_SHA256_LEN + 1] = "v0=";
    if (mesh_hmac_sha256(secret, strlen(secret), parts, lens, 4, mac) != 0) {
        *why = "signature check failed";
        return false;
    }
    mesh_hex_encode(mac, sizeof mac, want + 3);
    if (sig->len != sizeof want - 1 || !mesh_ct_equal(sig->value, want, sizeof want - 1)) {
        *why = "bad signature";
        return false;
    }
    return true;
}

static void ok_ignored(gateway_http_conn_t *conn, const char *what)
{
    channel_count_inbound(CHANNEL_SLACK, "ignored");
    mesh_log_debug(CHANNEL_SUBSYS, "slack: %s ignored", what);
    channel_ack_ok(conn);
}

static const char *str_of(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

void channel_slack_inbound(gateway_channels_t *ch, gateway_http_conn_t *conn,
                           const gateway_http_req_t *req)
{
    const char *why = NULL;
    json_t *body = NULL, *to = NULL;
    if (!signature_ok(ch, req, &why)) {
        channel_unauthorized(conn, CHANNEL_SLACK, why);
        return;
    }
    if (channel_parse_body(conn, CHANNEL_SLACK, req, &body) != 0)
        return;
    const char *type = str_of(body, "type");
    if (type && strcmp(type, "url_verification") == 0) {
        const json_t *c = json_object_get(body, "challenge");
        if (!json_is_string(c) || json_string_length(c) > 1024) {
            gateway_http_conn_respond_error(conn, 400, "invalid_field",
                                            "challenge: a string of at most 1024 bytes", NULL);
        } else {
            json_t *out = json_pack("{s:O}", "challenge", c);
            gateway_respond_json(ch->gw, conn, 200, out);
            json_decref(out);
            channel_count_inbound(CHANNEL_SLACK, "verification");
        }
        goto out;
    }
    if (!type || strcmp(type, "event_callback") != 0) {
        ok_ignored(conn, "non-event request");
        goto out;
    }
    const json_t *ev = json_object_get(body, "event");
    const char *etype = str_of(ev, "type");
    if (!etype || strcmp(etype, "message") != 0 || json_object_get(ev, "subtype") ||
        json_object_get(ev, "bot_id")) {
        ok_ignored(conn, "event (not a user message)");
        goto out;
    }
    const json_t *text = json_object_get(ev, "text");
    const char *channel = str_of(ev, "channel"), *ts = str_of(ev, "ts");
    const char *thread = str_of(ev, "thread_ts"), *team = str_of(body, "team_id");
    const char *event_id = str_of(body, "event_id");
    if (!team)
        team = str_of(ev, "team");
    if (!json_is_string(text) || json_string_length(text) == 0) {
        ok_ignored(conn, "message without text");
        goto out;
    }
    char conv[MESH_CONV_MAX + 2];
    int n = channel && ts && team
                ? snprintf(conv, sizeof conv, "slack:%s:%s:%s", team, channel, thread ? thread : ts)
                : -1;
    if (n < 0 || !mesh_conv_id_valid(conv, (size_t)n) || !event_id ||
        !gateway_message_id_valid(event_id, strlen(event_id)) ||
        json_string_length(text) > MESH_TEXT_MAX ||
        !mesh_utf8_valid(json_string_value(text), json_string_length(text))) {
        channel_count_inbound(CHANNEL_SLACK, "invalid");
        mesh_log_warn(CHANNEL_SUBSYS, "slack: event with missing or invalid team_id, channel, "
                                      "ts, event_id or text: refused (400)");
        gateway_http_conn_respond_error(conn, 400, "invalid_event",
                                        "team_id, event.channel, event.ts, event_id and "
                                        "event.text must be valid",
                                        "X-Slack-No-Retry: 1\r\n");
        goto out;
    }
    const gateway_hdr_t *retry = &req->hdr[GATEWAY_HDR_SLACK_RETRY_NUM];
    uint64_t retry_num = 0;
    if (retry->state == GATEWAY_HDR_PRESENT &&
        gateway_parse_uint(retry->value, retry->len, 1000, &retry_num) == 0)
        mesh_log_info(CHANNEL_SUBSYS, "slack: retry %llu of event %s",
                      (unsigned long long)retry_num, event_id);
    to = json_pack("{s:s,s:s}", "channel", channel, "thread_ts", thread ? thread : ts);
    /* Not accepted: answered 503, a non-2xx makes Slack retry later. */
    if (channel_turn_start(ch, CHANNEL_SLACK, conn, req, conv, to, json_string_value(text),
                           json_string_length(text), event_id, NULL, NULL) == 0)
        channel_ack_ok(conn);
out:
    json_decref(to);
    json_decref(body);
}

/* ---- outbound -------------------------------------------------------------------------- */

static void on_posted(const mesh_httpc_resp_t *r, void *arg)
{
    gateway_channels_t *ch = arg;
    channel_outcome_t o;
    channel_outcome_http(r, &o);
    if (o.ok) {
        /* HTTP 200 with {"ok": false, "error": ...} is Slack's failure. */
        json_t *b = json_loadb(r->body, r->body_len, 0, NULL);
        if (!json_is_true(json_object_get(b, "ok"))) {
            const char *e = json_string_value(json_object_get(b, "error"));
            o.ok = false;
            o.retry = e && (strcmp(e, "ratelimited") == 0 || strcmp(e, "rate_limited") == 0 ||
                            strcmp(e, "internal_error") == 0 || strcmp(e, "fatal_error") == 0);
            char clean[4 * MESH_LOG_SAMPLE_MAX + 4] = "unknown";
            if (e)
                mesh_log_sanitize(e, strlen(e), clean, sizeof clean);
            snprintf(o.reason, sizeof o.reason, "slack error %.100s", clean);
        }
        json_decref(b);
    }
    channel_queue_done(ch, CHANNEL_SLACK, &o);
}

int channel_slack_send(gateway_channels_t *ch, channel_delivery_t *d, uint64_t *http_id)
{
    const char *chan = json_string_value(json_object_get(d->to, "channel"));
    const char *thread = json_string_value(json_object_get(d->to, "thread_ts"));
    if (!chan)
        return MESH_EINVAL;
    json_t *b = json_pack("{s:s,s:s%}", "channel", chan, "text", d->text, d->len);
    if (b && thread)
        json_object_set_new(b, "thread_ts", json_string(thread));
    char *body = channel_json_body(b);
    if (!body)
        return MESH_ENOMEM;
    char url[CHANNEL_BASE_URL_MAX + 32], auth[CHANNEL_SECRET_MAX + 32];
    snprintf(url, sizeof url, "%s/chat.postMessage", ch->cfg.slack_api_base);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", ch->cfg.slack_bot_token);
    const char *const extra[] = {auth, NULL};
    int rc = channel_post(ch, url, "application/json; charset=utf-8", extra, d->tp, body, on_posted,
                          http_id);
    free(body);
    memset(auth, 0, sizeof auth);
    return rc;
}
