/*
 * channel_telegram.c - Telegram Bot API webhook (docs/channels.md, "Telegram").
 *
 * Inbound POST /v1/channels/telegram/webhook: the header
 * X-Telegram-Bot-Api-Secret-Token must equal the configured secret
 * (constant-time). A `message` update with text from a non-bot becomes a
 * turn of conversation tg:<chat_id> with message_id tg:<update_id>, so a
 * redelivered update gets the stored answer and nothing is sent twice.
 * Other updates are acknowledged and ignored.
 *
 * Outbound sendMessage {chat_id, text[, message_thread_id]}, split at 4096
 * characters (code points).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel_int.h"
#include "json_io.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_text.h"

void channel_telegram_inbound(gateway_channels_t *ch, gateway_http_conn_t *conn,
                              const gateway_http_req_t *req)
{
    const gateway_hdr_t *h = &req->hdr[GATEWAY_HDR_TELEGRAM_SECRET];
    const char *secret = ch->cfg.telegram_secret;
    size_t slen = strlen(secret);
    if (h->state != GATEWAY_HDR_PRESENT || h->len != slen ||
        !mesh_ct_equal(h->value, secret, slen)) {
        channel_unauthorized(conn, CHANNEL_TELEGRAM,
                             h->state == GATEWAY_HDR_PRESENT
                                 ? "wrong X-Telegram-Bot-Api-Secret-Token"
                                 : "missing X-Telegram-Bot-Api-Secret-Token");
        return;
    }
    json_t *body = NULL, *to = NULL;
    if (channel_parse_body(conn, CHANNEL_TELEGRAM, req, &body) != 0)
        return;
    const json_t *uid = json_object_get(body, "update_id");
    const json_t *msg = json_object_get(body, "message");
    const json_t *text = json_object_get(msg, "text");
    const json_t *chat_id = json_object_get(json_object_get(msg, "chat"), "id");
    if (!json_is_integer(uid) || json_integer_value(uid) < 0) {
        channel_count_inbound(CHANNEL_TELEGRAM, "invalid");
        gateway_http_conn_respond_error(conn, 400, "invalid_update",
                                        "update_id: a non-negative integer", NULL);
        goto out;
    }
    if (!json_is_object(msg) || !json_is_string(text) || json_string_length(text) == 0 ||
        json_is_true(json_object_get(json_object_get(msg, "from"), "is_bot"))) {
        channel_count_inbound(CHANNEL_TELEGRAM, "ignored");
        channel_ack_ok(conn); /* edits, joins, stickers, other bots: nothing to answer */
        goto out;
    }
    if (!json_is_integer(chat_id) || json_string_length(text) > MESH_TEXT_MAX ||
        !mesh_utf8_valid(json_string_value(text), json_string_length(text))) {
        channel_count_inbound(CHANNEL_TELEGRAM, "invalid");
        gateway_http_conn_respond_error(conn, 400, "invalid_update",
                                        "message.chat.id and message.text must be valid", NULL);
        goto out;
    }
    char conv[MESH_CONV_MAX + 1], mid[MESH_ID_MAX + 1];
    snprintf(conv, sizeof conv, "tg:%" JSON_INTEGER_FORMAT, json_integer_value(chat_id));
    snprintf(mid, sizeof mid, "tg:%" JSON_INTEGER_FORMAT, json_integer_value(uid));
    to = json_pack("{s:I}", "chat_id", json_integer_value(chat_id));
    const json_t *thread = json_object_get(msg, "message_thread_id");
    if (to && json_is_integer(thread))
        json_object_set(to, "message_thread_id", (json_t *)thread);
    /* Not accepted: answered 503, Telegram redelivers on a non-2xx. */
    if (channel_turn_start(ch, CHANNEL_TELEGRAM, conn, req, conv, to, json_string_value(text),
                           json_string_length(text), mid, NULL, NULL) == 0)
        channel_ack_ok(conn);
out:
    json_decref(to);
    json_decref(body);
}

/* ---- outbound -------------------------------------------------------------------------- */

static void on_sent(const mesh_httpc_resp_t *r, void *arg)
{
    gateway_channels_t *ch = arg;
    channel_outcome_t o;
    channel_outcome_http(r, &o);
    json_t *b = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    if (o.ok && !json_is_true(json_object_get(b, "ok"))) {
        o.ok = false;
        o.retry = false;
        snprintf(o.reason, sizeof o.reason, "telegram answered ok=false");
    }
    /* Flood control also says how long to wait in the body. */
    const json_t *ra = json_object_get(json_object_get(b, "parameters"), "retry_after");
    if (!o.ok && o.retry_after_s < 0 && json_is_integer(ra) && json_integer_value(ra) >= 0)
        o.retry_after_s = (long)json_integer_value(ra);
    const json_t *code = json_object_get(b, "error_code");
    if (!o.ok && json_is_integer(code))
        snprintf(o.reason, sizeof o.reason, "telegram error %" JSON_INTEGER_FORMAT,
                 json_integer_value(code));
    json_decref(b);
    channel_queue_done(ch, CHANNEL_TELEGRAM, &o);
}

int channel_telegram_send(gateway_channels_t *ch, channel_delivery_t *d, uint64_t *http_id)
{
    const json_t *chat = json_object_get(d->to, "chat_id");
    if (!json_is_integer(chat) && !json_is_string(chat))
        return MESH_EINVAL;
    json_t *b = json_pack("{s:O,s:s%}", "chat_id", chat, "text", d->text, d->len);
    const json_t *thread = json_object_get(d->to, "message_thread_id");
    if (b && json_is_integer(thread))
        json_object_set(b, "message_thread_id", (json_t *)thread);
    char *body = channel_json_body(b);
    if (!body)
        return MESH_ENOMEM;
    char url[CHANNEL_BASE_URL_MAX + CHANNEL_SECRET_MAX + 32];
    snprintf(url, sizeof url, "%s/bot%s/sendMessage", ch->cfg.telegram_api_base,
             ch->cfg.telegram_bot_token);
    int rc = channel_post(ch, url, "application/json", NULL, d->tp, body, on_sent, http_id);
    free(body);
    memset(url, 0, sizeof url);
    return rc;
}
