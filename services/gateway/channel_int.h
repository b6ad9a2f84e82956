/*
 * channel_int.h - what the channel files share (channels.c: config, state,
 * dispatcher and the inbound turn; channel_queue.c: outbound delivery;
 * channel_<platform>.c: one platform each). Internal to the gateway.
 */
#ifndef GATEWAY_CHANNEL_INT_H
#define GATEWAY_CHANNEL_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "channels.h"
#include "gateway_internal.h"
#include "mesh/mesh_crypto.h"
#include "mesh/mesh_httpc.h"
#include "mesh/mesh_limits.h"

#define CHANNEL_SUBSYS "channels"

/* Defaults of the delivery settings (docs/channels.md, configuration). */
#define CHANNEL_QUEUE_MAX_DEF      1000  /* MESH_CHANNEL_QUEUE_MAX: queued messages per channel */
#define CHANNEL_MAX_ATTEMPTS_DEF   5     /* MESH_CHANNEL_MAX_ATTEMPTS */
#define CHANNEL_BACKOFF_MS_DEF     500   /* MESH_CHANNEL_BACKOFF_MS: first retry delay */
#define CHANNEL_BACKOFF_MAX_MS_DEF 30000 /* MESH_CHANNEL_BACKOFF_MAX_MS: retry delay cap */
#define CHANNEL_HTTP_TIMEOUT_DEF   10000 /* MESH_CHANNEL_HTTP_TIMEOUT_MS: one API call */
/* A Retry-After longer than this is waited for only this long. */
#define CHANNEL_RETRY_AFTER_MAX_S 300
/* Signed requests older or newer than this are refused (Slack, webhook). */
#define CHANNEL_SIGNATURE_WINDOW_S 300
/* Secrets / tokens read from the environment or files, bytes. */
#define CHANNEL_SECRET_MAX   512
#define CHANNEL_BASE_URL_MAX 512
/* API response bodies read. */
#define CHANNEL_API_BODY_MAX (64 * 1024)
/* Longest `to` (compact JSON) a delivery carries (memory's conv.bind bound). */
#define CHANNEL_TO_MAX 1024
/* Platform message limits: Telegram 4096 characters, WeCom 2048 bytes,
 * Slack ~40000 characters (we split at 39000 bytes to stay clear). */
#define CHANNEL_TELEGRAM_TEXT_MAX 4096
#define CHANNEL_WECOM_TEXT_MAX    2048
#define CHANNEL_SLACK_TEXT_MAX    39000
/* Inbound turn: the conv.bind deadline. */
#define CHANNEL_BIND_DEADLINE_MS 5000

typedef enum {
    CHANNEL_SLACK = 0,
    CHANNEL_TELEGRAM,
    CHANNEL_WECOM,
    CHANNEL_WEBHOOK,
    CHANNEL_COUNT,
} channel_id_t;

typedef struct {
    char *slack_signing_secret; /* MESH_SLACK_SIGNING_SECRET(_FILE) */
    char *slack_bot_token;      /* MESH_SLACK_BOT_TOKEN(_FILE) */
    char slack_api_base[CHANNEL_BASE_URL_MAX + 1];
    char *telegram_secret;    /* MESH_TELEGRAM_SECRET_TOKEN(_FILE) */
    char *telegram_bot_token; /* MESH_TELEGRAM_BOT_TOKEN(_FILE) */
    char telegram_api_base[CHANNEL_BASE_URL_MAX + 1];
    char *wecom_token;    /* MESH_WECOM_TOKEN(_FILE): the callback's signature token */
    char *wecom_secret;   /* MESH_WECOM_SECRET(_FILE): the app's corpsecret (gettoken) */
    char *wecom_corp_id;  /* MESH_WECOM_CORP_ID */
    char *wecom_agent_id; /* MESH_WECOM_AGENT_ID */
    uint8_t wecom_aes_key[MESH_AES256_KEY]; /* from MESH_WECOM_AES_KEY(_FILE) (43 chars) */
    bool wecom_key_ok;
    char wecom_api_base[CHANNEL_BASE_URL_MAX + 1];
    char *webhook_secret; /* MESH_WEBHOOK_SECRET(_FILE) */
    size_t queue_max;
    uint32_t max_attempts;
    uint64_t backoff_ms, backoff_max_ms, http_timeout_ms;
} channel_cfg_t;

/* One message waiting for delivery (one platform API call once split). */
typedef struct channel_delivery {
    struct channel_delivery *next;
    channel_id_t chan;
    char conv[MESH_CONV_MAX + 1];
    char tp[MESH_TRACEPARENT_MAX + 1]; /* the outbound call's traceparent */
    json_t *to;
    char *text;
    size_t len;
    uint32_t attempts;
    uint64_t queued_ns;
} channel_delivery_t;

/* The outcome of one delivery attempt. */
typedef struct {
    bool ok;
    bool retry;         /* worth another attempt (429, 5xx, connection, platform "busy") */
    long retry_after_s; /* -1 when the platform said nothing */
    char reason[160];   /* why it failed (never the text, never a credential) */
} channel_outcome_t;

typedef struct channel_queue {
    struct gateway_channels *ch;
    channel_id_t chan;
    channel_delivery_t *head, *tail;
    size_t len;
    channel_delivery_t *inflight; /* taken from head, being sent */
    uint64_t http_id;             /* its request (0: none) */
    uv_timer_t timer;             /* backoff */
    bool timer_on;
} channel_queue_t;

struct channel_turn;

struct gateway_channels {
    gateway_t *gw;
    channel_cfg_t cfg;
    mesh_httpc_t *httpc;
    channel_queue_t q[CHANNEL_COUNT];
    struct channel_turn *turns; /* inbound turns in flight */
    uint32_t n_closing;         /* timers still closing at destroy */
    /* WeCom access token cache (channel_wecom.c) */
    char wecom_access_token[CHANNEL_SECRET_MAX + 1];
    uint64_t wecom_token_expires_ms; /* uv_now() based */
    bool closing;
};

typedef struct gateway_channels gateway_channels_t;

/* The channel state of gw, created on first use (NULL when out of memory). */
gateway_channels_t *channels_get(gateway_t *gw);

const char *channel_name(channel_id_t id);
/* 1 when the channel's credentials are configured. */
bool channel_enabled(const gateway_channels_t *ch, channel_id_t id);

/*
 * Run an inbound message: conv.bind, then the turn; the answer is queued for
 * delivery on chan (when the FINAL is not a duplicate and has a non-empty
 * reply). With sync_conn the answer is the HTTP response instead
 * (generic webhook without callback_url). text/to are copied. 0 or MESH_E*
 * (then nothing was started; the caller answers).
 */
int channel_inbound(gateway_channels_t *ch, channel_id_t chan, const gateway_http_req_t *req,
                    const char *conv, const json_t *to, const char *text, size_t len,
                    const char *message_id, const char *agent, gateway_http_conn_t *sync_conn);

/* Queue a delivery with traceparent tp (NULL: a new trace). As gateway_channels_deliver. */
int channel_deliver_tp(gateway_channels_t *ch, channel_id_t chan, const char *conv,
                       const json_t *to, const char *text, size_t len, const char *tp);

/* The queue calls the platform (channel_<platform>.c): start the API call(s)
 * for d, then call channel_queue_done exactly once (later, from the loop). */
int channel_slack_send(gateway_channels_t *ch, channel_delivery_t *d, uint64_t *http_id);
int channel_telegram_send(gateway_channels_t *ch, channel_delivery_t *d, uint64_t *http_id);
int channel_wecom_send(gateway_channels_t *ch, channel_delivery_t *d, uint64_t *http_id);
int channel_webhook_send(gateway_channels_t *ch, channel_delivery_t *d, uint64_t *http_id);
void channel_queue_done(gateway_channels_t *ch, channel_id_t chan, const channel_outcome_t *o);

/* Classify an HTTP response: transport errors, 429 and 5xx are retryable. */
void channel_outcome_http(const mesh_httpc_resp_t *r, channel_outcome_t *o);

/* Inbound handlers (channel_<platform>.c). */
void channel_slack_inbound(gateway_channels_t *ch, gateway_http_conn_t *conn,
                           const gateway_http_req_t *req);
void channel_telegram_inbound(gateway_channels_t *ch, gateway_http_conn_t *conn,
                              const gateway_http_req_t *req);
void channel_wecom_inbound(gateway_channels_t *ch, gateway_http_conn_t *conn,
                           const gateway_http_req_t *req);
void channel_webhook_inbound(gateway_channels_t *ch, gateway_http_conn_t *conn,
                             const gateway_http_req_t *req);

/* ---- shared by the platforms' inbound and outbound paths (channels.c) ---- */

/*
 * The request body as a JSON object into *body (caller decrefs). When it is
 * not one: counted "invalid", answered 400 invalid_json, -1.
 */
int channel_parse_body(gateway_http_conn_t *conn, channel_id_t chan, const gateway_http_req_t *req,
                       json_t **body);
/* Answer 200 {"ok":true} (the acknowledgement Slack and Telegram expect). */
void channel_ack_ok(gateway_http_conn_t *conn);
/*
 * channel_inbound with to (NULL: out of memory, MESH_ENOMEM). When it is not
 * accepted, answers 503 with Retry-After: 1 (every platform redelivers on a
 * non-2xx, and the message_id makes the redelivery a duplicate of nothing
 * started) and returns the error; on 0 the caller acknowledges (or, with
 * sync_conn, the turn answers).
 */
int channel_turn_start(gateway_channels_t *ch, channel_id_t chan, gateway_http_conn_t *conn,
                       const gateway_http_req_t *req, const char *conv, const json_t *to,
                       const char *text, size_t len, const char *message_id, const char *agent,
                       gateway_http_conn_t *sync_conn);
/* b (taken; NULL allowed) as compact JSON, malloc'd; NULL when b is NULL or out of memory. */
char *channel_json_body(json_t *b);
/*
 * POST body to url on the channels' HTTP client with Content-Type: ctype,
 * the extra header lines (NULL-terminated, at most CHANNEL_POST_EXTRA_MAX;
 * may be NULL) and traceparent: tp; done(resp, ch) gets the answer.
 */
#define CHANNEL_POST_EXTRA_MAX 4
int channel_post(gateway_channels_t *ch, const char *url, const char *ctype,
                 const char *const extra[], const char *tp, const char *body, mesh_httpc_cb done,
                 uint64_t *http_id);

/* Refuse with 401 {"error":{"code":"unauthorized"}}, logged once without the body. */
void channel_unauthorized(gateway_http_conn_t *conn, channel_id_t chan, const char *why);
/* Count an inbound request: mesh_channel_inbound_total{channel,outcome}. */
void channel_count_inbound(channel_id_t chan, const char *outcome);
/* The delivery metrics (channel_queue.c). */
void channel_metrics_init(void);

/* Unix seconds now (wall clock). */
int64_t channel_unix_s(void);
/* Parse a decimal unix timestamp and check it is within the signature window. */
bool channel_timestamp_fresh(const char *s, size_t len);

/* Queue internals (channel_queue.c). */
void channel_queues_init(gateway_channels_t *ch);
void channel_queues_close(gateway_channels_t *ch);

/*
 * The text of <tag>...</tag> in xml[0..len) into out (NUL-terminated, at
 * most size-1 bytes): CDATA verbatim, plain text with the five predefined
 * entities decoded (channel_wecom.c). 1 found, 0 absent, -1 too long or
 * malformed (an unknown entity, a nested element, no closing tag).
 */
int channel_xml_field(const char *xml, size_t len, const char *tag, char *out, size_t size);

/* Split text[0..len) into parts of at most max code points (or bytes when
 * bytes is true) at UTF-8 boundaries. Returns the byte length of the first part. */
size_t channel_split(const char *text, size_t len, size_t max, bool bytes);

#endif
