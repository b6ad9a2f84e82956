/*
 * channels.c - the chat channels' common part (channels.h): configuration
 * from the environment, the URL dispatcher, the inbound turn (conv.bind,
 * then the turn, then the answer to the delivery queue or to the waiting
 * HTTP request) and the lifecycle.
 */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel_int.h"
#include "json_io.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_metrics.h"
#include "mesh/mesh_trace.h"
#include "route_people.h"
#include "validate.h"

static const char *const s_names[CHANNEL_COUNT] = {
    [CHANNEL_SLACK] = "slack",
    [CHANNEL_TELEGRAM] = "telegram",
    [CHANNEL_WECOM] = "wecom",
    [CHANNEL_WEBHOOK] = "webhook",
};

const char *channel_name(channel_id_t id)
{
    return id < CHANNEL_COUNT ? s_names[id] : "unknown";
}

int64_t channel_unix_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

bool channel_timestamp_fresh(const char *s, size_t len)
{
    uint64_t v;
    if (gateway_parse_uint(s, len, (uint64_t)INT64_MAX, &v) < 0)
        return false;
    int64_t d = channel_unix_s() - (int64_t)v;
    return d <= CHANNEL_SIGNATURE_WINDOW_S && d >= -CHANNEL_SIGNATURE_WINDOW_S;
}

size_t channel_split(const char *text, size_t len, size_t max, bool bytes)
{
    if (bytes) {
        if (len <= max)
            return len;
        size_t n = max;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
        return n > 0 ? n : max;
    }
    size_t cps = 0, i = 0;
    while (i < len) {
        if (((unsigned char)text[i] & 0xC0) != 0x80) {
            if (cps == max)
                return i;
            cps++;
        }
        i++;
    }
    return len;
}

/* ---- configuration ---------------------------------------------------------- */

/* The value of name, else the contents of the file named by name_FILE
 * (trailing blanks and newlines trimmed), else NULL. Never logs a value. */
static char *secret_env(const char *name)
{
    const char *v = getenv(name);
    if (v && v[0]) {
        if (strlen(v) > CHANNEL_SECRET_MAX) {
            mesh_log_warn(CHANNEL_SUBSYS, "%s is longer than %d bytes: ignored", name,
                          CHANNEL_SECRET_MAX);
            return NULL;
        }
        return strdup(v);
    }
    char fname[96];
    snprintf(fname, sizeof fname, "%s_FILE", name);
    const char *path = getenv(fname);
    if (!path || !path[0])
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        mesh_log_warn(CHANNEL_SUBSYS, "%s: cannot open %s: %s", fname, path, strerror(errno));
        return NULL;
    }
    char buf[CHANNEL_SECRET_MAX + 2];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n > CHANNEL_SECRET_MAX) {
        mesh_log_warn(CHANNEL_SUBSYS, "%s: the file is longer than %d bytes: ignored", fname,
                      CHANNEL_SECRET_MAX);
        return NULL;
    }
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    if (n == 0 || memchr(buf, 0, n))
        return NULL;
    return strdup(buf);
}

static void base_env(const char *name, const char *def, char *out, size_t size)
{
    const char *v = getenv(name);
    if (!v || !v[0] || (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
        strlen(v) >= size) {
        if (v && v[0])
            mesh_log_warn(CHANNEL_SUBSYS,
                          "%s must be an http(s) URL shorter than %zu bytes: "
                          "using %s",
                          name, size, def);
        v = def;
    }
    snprintf(out, size, "%s", v);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/') /* the paths are appended with their own '/' */
        out[--n] = '\0';
}

static uint64_t uint_env(const char *name, uint64_t def, uint64_t min, uint64_t max)
{
    const char *v = getenv(name);
    uint64_t x;
    if (!v || !v[0])
        return def;
    if (gateway_parse_uint(v, strlen(v), max, &x) < 0 || x < min) {
        mesh_log_warn(CHANNEL_SUBSYS, "%s must be an integer %llu..%llu: using %llu", name,
                      (unsigned long long)min, (unsigned long long)max, (unsigned long long)def);
        return def;
    }
    return x;
}

static void cfg_load(channel_cfg_t *c)
{
    c->slack_signing_secret = secret_env("MESH_SLACK_SIGNING_SECRET");
    c->slack_bot_token = secret_env("MESH_SLACK_BOT_TOKEN");
    base_env("MESH_SLACK_API_BASE", "https://slack.com/api", c->slack_api_base,
             sizeof c->slack_api_base);
    c->telegram_secret = secret_env("MESH_TELEGRAM_SECRET_TOKEN");
    c->telegram_bot_token = secret_env("MESH_TELEGRAM_BOT_TOKEN");
    base_env("MESH_TELEGRAM_API_BASE", "https://api.telegram.org", c->telegram_api_base,
             sizeof c->telegram_api_base);
    c->wecom_token = secret_env("MESH_WECOM_TOKEN");
    c->wecom_secret = secret_env("MESH_WECOM_SECRET");
    c->wecom_corp_id = secret_env("MESH_WECOM_CORP_ID");
    c->wecom_agent_id = secret_env("MESH_WECOM_AGENT_ID");
    base_env("MESH_WECOM_API_BASE", "https://qyapi.weixin.qq.com", c->wecom_api_base,
             sizeof c->wecom_api_base);
    char *aes = secret_env("MESH_WECOM_AES_KEY");
    if (aes) {
        /* EncodingAESKey: 43 base64 characters; the key is base64(key + "="). */
        char b64[48];
        size_t n = 0;
        if (strlen(aes) == 43) {
            snprintf(b64, sizeof b64, "%s=", aes);
            uint8_t key[40];
            if (mesh_base64_decode(b64, 44, key, sizeof key, &n) == 0 && n == MESH_AES256_KEY) {
                memcpy(c->wecom_aes_key, key, MESH_AES256_KEY);
                c->wecom_key_ok = true;
            }
        }
        if (!c->wecom_key_ok)
            mesh_log_warn(CHANNEL_SUBSYS, "MESH_WECOM_AES_KEY is not a 43-character "
                                          "EncodingAESKey: WeCom stays disabled");
        free(aes);
    }
    c->webhook_secret = secret_env("MESH_WEBHOOK_SECRET");
    c->queue_max = (size_t)uint_env("MESH_CHANNEL_QUEUE_MAX", CHANNEL_QUEUE_MAX_DEF, 1, 1000000);
    c->max_attempts =
        (uint32_t)uint_env("MESH_CHANNEL_MAX_ATTEMPTS", CHANNEL_MAX_ATTEMPTS_DEF, 1, 100);
    c->backoff_ms = uint_env("MESH_CHANNEL_BACKOFF_MS", CHANNEL_BACKOFF_MS_DEF, 1, 3600000);
    c->backoff_max_ms =
        uint_env("MESH_CHANNEL_BACKOFF_MAX_MS", CHANNEL_BACKOFF_MAX_MS_DEF, 1, 3600000);
    c->http_timeout_ms =
        uint_env("MESH_CHANNEL_HTTP_TIMEOUT_MS", CHANNEL_HTTP_TIMEOUT_DEF, 1, 600000);
}

static void secret_free(char **s)
{
    if (*s) {
        /* Do not leave credentials in freed memory. */
        volatile char *p = *s;
        for (size_t i = 0; p[i]; i++)
            p[i] = 0;
        free(*s);
        *s = NULL;
    }
}

static void cfg_free(channel_cfg_t *c)
{
    secret_free(&c->slack_signing_secret);
    secret_free(&c->slack_bot_token);
    secret_free(&c->telegram_secret);
    secret_free(&c->telegram_bot_token);
    secret_free(&c->wecom_token);
    secret_free(&c->wecom_secret);
    secret_free(&c->wecom_corp_id);
    secret_free(&c->wecom_agent_id);
    secret_free(&c->webhook_secret);
    memset(c->wecom_aes_key, 0, sizeof c->wecom_aes_key);
}

bool channel_enabled(const gateway_channels_t *ch, channel_id_t id)
{
    const channel_cfg_t *c = &ch->cfg;
    switch (id) {
    case CHANNEL_SLACK:
        return c->slack_signing_secret && c->slack_bot_token;
    case CHANNEL_TELEGRAM:
        return c->telegram_secret && c->telegram_bot_token;
    case CHANNEL_WECOM:
        return c->wecom_token && c->wecom_key_ok && c->wecom_corp_id && c->wecom_secret &&
               c->wecom_agent_id;
    case CHANNEL_WEBHOOK:
        return c->webhook_secret != NULL;
    default:
        return false;
    }
}

/* ---- state -------------------------------------------------------------------- */

gateway_channels_t *channels_get(gateway_t *gw)
{
    if (gw->channels)
        return gw->channels->closing ? NULL : gw->channels;
    gateway_channels_t *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    ch->gw = gw;
    ch->httpc = mesh_httpc_new(gw->loop);
    if (!ch->httpc) {
        free(ch);
        return NULL;
    }
    cfg_load(&ch->cfg);
    channel_metrics_init();
    channel_queues_init(ch);
    gw->channels = ch;
    for (int i = 0; i < CHANNEL_COUNT; i++)
        mesh_log_info(CHANNEL_SUBSYS, "channel %s %s", s_names[i],
                      channel_enabled(ch, (channel_id_t)i) ? "enabled" : "not configured");
    return ch;
}

/* ---- metrics ------------------------------------------------------------------- */

static mesh_metric_t *s_inbound;

void channel_count_inbound(channel_id_t chan, const char *outcome)
{
    if (!s_inbound)
        s_inbound =
            mesh_metrics_counter(mesh_metrics_global(), "mesh_channel_inbound_total",
                                 "Inbound channel requests by outcome.", "channel,outcome", 64);
    mesh_counter_inc(mesh_metric_at(s_inbound, channel_name(chan), outcome));
}

void channel_unauthorized(gateway_http_conn_t *conn, channel_id_t chan, const char *why)
{
    channel_count_inbound(chan, "unauthorized");
    mesh_log_warn(CHANNEL_SUBSYS, "%s: request refused (401): %s", channel_name(chan), why);
    gateway_http_conn_respond_error(conn, 401, "unauthorized", why, NULL);
}

/* ---- shared request/response steps of the platforms ----------------------------- */

int channel_parse_body(gateway_http_conn_t *conn, channel_id_t chan, const gateway_http_req_t *req,
                       json_t **body)
{
    char err[160];
    if (gateway_json_parse_object(req->body, req->body_len, body, err, sizeof err) == 0)
        return 0;
    channel_count_inbound(chan, "invalid");
    gateway_http_conn_respond_error(conn, 400, "invalid_json", err, NULL);
    return -1;
}

void channel_ack_ok(gateway_http_conn_t *conn)
{
    static const char body[] = "{\"ok\":true}";
    gateway_http_conn_respond(conn, 200, NULL, NULL, body, sizeof body - 1);
}

int channel_turn_start(gateway_channels_t *ch, channel_id_t chan, gateway_http_conn_t *conn,
                       const gateway_http_req_t *req, const char *conv, const json_t *to,
                       const char *text, size_t len, const char *message_id, const char *agent,
                       gateway_http_conn_t *sync_conn)
{
    int rc = to ? channel_inbound(ch, chan, req, conv, to, text, len, message_id, agent, sync_conn)
                : MESH_ENOMEM;
    if (rc != 0)
        gateway_http_conn_respond_error(conn, 503, "unavailable", mesh_strerror(rc),
                                        "Retry-After: 1\r\n");
    return rc;
}

char *channel_json_body(json_t *b)
{
    char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    return body;
}

int channel_post(gateway_channels_t *ch, const char *url, const char *ctype,
                 const char *const extra[], const char *tp, const char *body, mesh_httpc_cb done,
                 uint64_t *http_id)
{
    char h_ct[96], h_tp[80];
    const char *hdrs[CHANNEL_POST_EXTRA_MAX + 3];
    size_t n = 0;
    snprintf(h_ct, sizeof h_ct, "Content-Type: %s", ctype);
    hdrs[n++] = h_ct;
    for (size_t i = 0; extra && extra[i]; i++) {
        if (i == CHANNEL_POST_EXTRA_MAX)
            return MESH_EINVAL;
        hdrs[n++] = extra[i];
    }
    snprintf(h_tp, sizeof h_tp, "traceparent: %s", tp);
    hdrs[n++] = h_tp;
    hdrs[n] = NULL;
    mesh_httpc_opts_t o = {.method = "POST",
                           .url = url,
                           .headers = hdrs,
                           .body = body,
                           .body_len = strlen(body),
                           .timeout_ms = ch->cfg.http_timeout_ms,
                           .body_max = CHANNEL_API_BODY_MAX};
    return mesh_httpc_request(ch->httpc, &o, done, ch, http_id);
}

/* ---- inbound turns -------------------------------------------------------------- */

typedef struct channel_turn {
    struct channel_turn *next, *prev;
    gateway_channels_t *ch;
    channel_id_t chan;
    uint64_t handle;
    gateway_http_conn_t *conn; /* synchronous answer (generic webhook), else NULL */
    mesh_request_t turn;       /* sent once conv.bind answered */
    json_t *to;
    char conv[MESH_CONV_MAX + 1];
    char message_id[MESH_ID_MAX + 1];
} channel_turn_t;

static void turn_unlink(channel_turn_t *t)
{
    gateway_channels_t *ch = t->ch;
    if (t->prev)
        t->prev->next = t->next;
    else
        ch->turns = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

static void turn_free(channel_turn_t *t)
{
    turn_unlink(t);
    if (t->conn)
        gateway_http_conn_on_abort(t->conn, NULL, NULL);
    mesh_request_clear(&t->turn);
    json_decref(t->to);
    free(t);
}

/* The client of a synchronous webhook went away: forget the turn (it still
 * completes in the mesh and is recorded; a retry gets the stored answer). */
static void turn_abort(gateway_http_conn_t *conn, void *arg)
{
    (void)conn;
    channel_turn_t *t = arg;
    mesh_client_cancel(t->ch->gw->client, t->handle);
    t->conn = NULL;
    turn_free(t);
}

/* The synchronous answer: the turn's FINAL data reduced to the documented fields. */
static void turn_respond(channel_turn_t *t, const mesh_reply_t *rep)
{
    gateway_http_conn_t *conn = t->conn;
    gateway_http_conn_on_abort(conn, NULL, NULL);
    t->conn = NULL;
    if (rep->status != 0) {
        gateway_respond_status(conn, rep->status, rep->err);
        return;
    }
    const json_t *d = rep->data;
    const json_t *reply = json_object_get(d, "reply");
    const char *rs = json_is_string(reply) ? json_string_value(reply) : "";
    size_t rl = json_is_string(reply) ? json_string_length(reply) : 0;
    json_t *out =
        json_pack("{s:s,s:s,s:s%,s:b}", "conversation_id", t->conv, "message_id", t->message_id,
                  "reply", rs, rl, "duplicate", json_is_true(json_object_get(d, "duplicate")));
    static const char *const extra[] = {"agent", "handoff", "state", "usage"};
    for (size_t i = 0; out && i < sizeof extra / sizeof extra[0]; i++) {
        json_t *v = json_object_get(d, extra[i]);
        if (v && !json_is_null(v))
            json_object_set(out, extra[i], v);
    }
    if (!out) {
        gateway_http_conn_respond_error(conn, 500, "internal_error", "out of memory", NULL);
        return;
    }
    gateway_respond_json(t->ch->gw, conn, 200, out);
    json_decref(out);
}

static void on_turn(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)client;
    if (!final)
        return;
    channel_turn_t *t = arg;
    t->handle = 0;
    if (t->conn) {
        turn_respond(t, rep);
        turn_free(t);
        return;
    }
    const char *cname = channel_name(t->chan);
    if (rep->status != 0) {
        channel_count_inbound(t->chan, "turn_failed");
        mesh_log_error(CHANNEL_SUBSYS, "%s: turn of %s failed: %s", cname, t->conv,
                       mesh_err_name(rep->status));
        turn_free(t);
        return;
    }
    const json_t *reply = json_object_get(rep->data, "reply");
    if (json_is_true(json_object_get(rep->data, "duplicate"))) {
        /* A platform retry of a message already answered: answered once. */
        channel_count_inbound(t->chan, "duplicate");
        mesh_log_info(CHANNEL_SUBSYS, "%s: %s message %s is a duplicate: not delivered again",
                      cname, t->conv, t->message_id);
    } else if (json_is_string(reply) && json_string_length(reply) > 0) {
        int rc = channel_deliver_tp(t->ch, t->chan, t->conv, t->to, json_string_value(reply),
                                    json_string_length(reply), t->turn.tp);
        if (rc != 0 && rc != MESH_EBUSY) /* EBUSY was recorded as undeliverable already */
            mesh_log_error(CHANNEL_SUBSYS, "%s: answer of %s not queued: %s", cname, t->conv,
                           mesh_strerror(rc));
    } else {
        /* Empty reply: a person holds the conversation (handoff gate). */
        mesh_log_debug(CHANNEL_SUBSYS, "%s: %s answered nothing (handoff)", cname, t->conv);
    }
    turn_free(t);
}

static void turn_send(channel_turn_t *t)
{
    gateway_t *gw = t->ch->gw;
    int rc = mesh_client_request(gw->client, "agent", &t->turn, on_turn, t, &t->handle);
    if (rc == 0)
        return;
    mesh_log_error(CHANNEL_SUBSYS, "%s: turn of %s not sent: %s", channel_name(t->chan), t->conv,
                   mesh_strerror(rc));
    channel_count_inbound(t->chan, "turn_failed");
    if (t->conn) {
        gateway_http_conn_t *conn = t->conn;
        gateway_http_conn_on_abort(conn, NULL, NULL);
        t->conn = NULL;
        gateway_respond_status(conn, rc == MESH_ENOWORKER ? MESH_EUNAVAIL : rc, NULL);
    }
    turn_free(t);
}

static void on_bind(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)client;
    if (!final)
        return;
    channel_turn_t *t = arg;
    t->handle = 0;
    if (rep->status != 0) /* the answer still goes out on the channel it came from */
        mesh_log_warn(CHANNEL_SUBSYS, "%s: conv.bind of %s failed: %s", channel_name(t->chan),
                      t->conv, mesh_err_name(rep->status));
    turn_send(t);
}

int channel_inbound(gateway_channels_t *ch, channel_id_t chan, const gateway_http_req_t *req,
                    const char *conv, const json_t *to, const char *text, size_t len,
                    const char *message_id, const char *agent, gateway_http_conn_t *sync_conn)
{
    gateway_t *gw = ch->gw;
    mesh_request_t bind = {0};
    int rc = MESH_ENOMEM;
    channel_turn_t *t = calloc(1, sizeof(*t));
    if (!t)
        return MESH_ENOMEM;
    t->ch = ch;
    t->chan = chan;
    snprintf(t->conv, sizeof t->conv, "%s", conv);
    snprintf(t->message_id, sizeof t->message_id, "%s", message_id);
    t->to = json_deep_copy(to);
    mesh_request_t *m = &t->turn;
    memcpy(m->op, "turn", sizeof("turn"));
    snprintf(m->conv, sizeof m->conv, "%s", conv);
    memcpy(m->tenant, MESH_TENANT_DEFAULT, sizeof(MESH_TENANT_DEFAULT));
    const gateway_hdr_t *h = &req->hdr[GATEWAY_HDR_TRACEPARENT];
    if (h->state == GATEWAY_HDR_PRESENT && h->len == MESH_TRACEPARENT_MAX &&
        mesh_traceparent_valid(h->value, h->len))
        memcpy(m->tp, h->value, h->len + 1);
    else
        mesh_traceparent_new(m->tp);
    m->deadline_ms = gw->cfg.turn_timeout_ms;
    m->args = json_pack("{s:s,s:s%}", "message_id", message_id, "text", text, len);
    if (!t->to || !m->args ||
        (agent && json_object_set_new(m->args, "agent", json_string(agent)) < 0))
        goto fail;

    memcpy(bind.op, "conv.bind", sizeof("conv.bind"));
    memcpy(bind.conv, m->conv, sizeof bind.conv);
    memcpy(bind.tenant, m->tenant, sizeof bind.tenant);
    memcpy(bind.tp, m->tp, sizeof bind.tp);
    bind.deadline_ms = CHANNEL_BIND_DEADLINE_MS;
    bind.idem = true;
    bind.args = json_pack("{s:s,s:O}", "channel", channel_name(chan), "to", t->to);
    if (!bind.args)
        goto fail;
    rc = mesh_client_request(gw->client, "memory", &bind, on_bind, t, &t->handle);
    if (rc != 0)
        goto fail;
    mesh_request_clear(&bind);
    t->next = ch->turns;
    if (ch->turns)
        ch->turns->prev = t;
    ch->turns = t;
    if (sync_conn) {
        t->conn = sync_conn;
        gateway_http_conn_on_abort(sync_conn, turn_abort, t);
    }
    channel_count_inbound(chan, "accepted");
    return 0;
fail:
    mesh_request_clear(&bind);
    mesh_request_clear(&t->turn);
    json_decref(t->to);
    free(t);
    return rc;
}

/* ---- routes ----------------------------------------------------------------------- */

static int rest_is(const char *rest, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(rest, lit, len) == 0;
}

void gateway_route_channel(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req)
{
    const size_t plen = sizeof(GATEWAY_CHANNELS_PREFIX) - 1;
    const char *rest = req->path + plen;
    size_t rlen = req->path_len - plen;
    channel_id_t id;
    bool get_ok = false;
    if (rest_is(rest, rlen, "slack/events")) {
        id = CHANNEL_SLACK;
    } else if (rest_is(rest, rlen, "telegram/webhook")) {
        id = CHANNEL_TELEGRAM;
    } else if (rest_is(rest, rlen, "wecom/callback")) {
        id = CHANNEL_WECOM;
        get_ok = true;
    } else if (rest_is(rest, rlen, "webhook")) {
        id = CHANNEL_WEBHOOK;
    } else {
        gateway_http_conn_respond_error(conn, 404, "not_found", "no such resource", NULL);
        return;
    }
    if (req->method != HTTP_POST && !(get_ok && req->method == HTTP_GET)) {
        gateway_http_conn_respond_error(conn, 405, "method_not_allowed",
                                        "method not allowed for this path",
                                        get_ok ? "Allow: GET, POST\r\n" : "Allow: POST\r\n");
        return;
    }
    gateway_channels_t *ch = channels_get(gw);
    if (!ch) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    if (!channel_enabled(ch, id)) {
        channel_count_inbound(id, "not_enabled");
        gateway_http_conn_respond_error(conn, 404, "not_enabled",
                                        "this channel is not configured on this gateway", NULL);
        return;
    }
    switch (id) {
    case CHANNEL_SLACK:
        channel_slack_inbound(ch, conn, req);
        break;
    case CHANNEL_TELEGRAM:
        channel_telegram_inbound(ch, conn, req);
        break;
    case CHANNEL_WECOM:
        channel_wecom_inbound(ch, conn, req);
        break;
    default:
        channel_webhook_inbound(ch, conn, req);
        break;
    }
}

/* ---- GET /v1/deliveries/failed -------------------------------------------------- */

typedef struct {
    gateway_t *gw;
    gateway_http_conn_t *conn;
    uint64_t handle;
} failed_call_t;

static void failed_abort(gateway_http_conn_t *conn, void *arg)
{
    (void)conn;
    failed_call_t *f = arg;
    mesh_client_cancel(f->gw->client, f->handle);
    free(f);
}

static void on_failed_list(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)client;
    if (!final)
        return;
    failed_call_t *f = arg;
    gateway_http_conn_on_abort(f->conn, NULL, NULL);
    if (rep->status != 0)
        gateway_respond_status(f->conn, rep->status, rep->err);
    else
        gateway_respond_json(f->gw, f->conn, 200, rep->data);
    free(f);
}

void gateway_route_deliveries_failed(gateway_t *gw, gateway_http_conn_t *conn,
                                     const gateway_http_req_t *req)
{
    char person[GATEWAY_PEOPLE_NAME_MAX + 1];
    if (req->method != HTTP_GET) {
        gateway_http_conn_respond_error(conn, 405, "method_not_allowed",
                                        "method not allowed for this path", "Allow: GET\r\n");
        return;
    }
    if (!gateway_people_auth(conn, req, person, sizeof person))
        return; /* answered (401/503) */
    uint64_t limit = 50;
    const char *v;
    size_t vlen;
    if (req->query && gateway_query_param(req->query, req->query_len, "limit", &v, &vlen) &&
        gateway_parse_uint(v, vlen, 500, &limit) < 0) {
        gateway_http_conn_respond_error(conn, 400, "invalid_field", "limit: an integer 1..500",
                                        NULL);
        return;
    }
    failed_call_t *f = calloc(1, sizeof(*f));
    mesh_request_t m = {0};
    if (!f)
        goto oom;
    f->gw = gw;
    f->conn = conn;
    memcpy(m.op, "delivery.list", sizeof("delivery.list"));
    memcpy(m.tenant, MESH_TENANT_DEFAULT, sizeof(MESH_TENANT_DEFAULT));
    mesh_traceparent_new(m.tp);
    m.deadline_ms = CHANNEL_BIND_DEADLINE_MS;
    m.idem = true;
    m.args = json_pack("{s:I}", "limit", (json_int_t)limit);
    if (!m.args)
        goto oom;
    int rc = mesh_client_request(gw->client, "memory", &m, on_failed_list, f, &f->handle);
    mesh_request_clear(&m);
    if (rc != 0) {
        free(f);
        gateway_respond_status(conn, rc == MESH_ENOWORKER ? MESH_EUNAVAIL : rc, NULL);
        return;
    }
    gateway_http_conn_on_abort(conn, failed_abort, f);
    return;
oom:
    free(f);
    mesh_request_clear(&m);
    gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
}

/* ---- public delivery + lifecycle ------------------------------------------------- */

int gateway_channels_deliver(gateway_t *gw, const char *conv, const char *channel, const json_t *to,
                             const char *text, size_t len)
{
    if (!gw || !conv || !channel || !text)
        return MESH_EINVAL;
    if (strcmp(channel, "web") == 0)
        return 0; /* the web chat reads the conversation */
    channel_id_t id = CHANNEL_COUNT;
    for (int i = 0; i < CHANNEL_COUNT; i++)
        if (strcmp(channel, s_names[i]) == 0)
            id = (channel_id_t)i;
    if (id == CHANNEL_COUNT || !json_is_object(to))
        return MESH_EINVAL;
    if (id == CHANNEL_WEBHOOK && !json_is_string(json_object_get(to, "callback_url")))
        return 0; /* synchronous webhook: the client reads the conversation */
    gateway_channels_t *ch = channels_get(gw);
    if (!ch)
        return MESH_ENOMEM;
    if (!channel_enabled(ch, id))
        return MESH_ENOTFOUND;
    return channel_deliver_tp(ch, id, conv, to, text, len, NULL);
}

static void channels_free_if_closed(gateway_channels_t *ch)
{
    if (ch->n_closing == 0) {
        cfg_free(&ch->cfg);
        free(ch);
    }
}

void channel_queue_timer_closed(gateway_channels_t *ch);
void channel_queue_timer_closed(gateway_channels_t *ch)
{
    ch->n_closing--;
    channels_free_if_closed(ch);
}

void gateway_channels_destroy(gateway_t *gw)
{
    if (!gw || !gw->channels)
        return;
    gateway_channels_t *ch = gw->channels;
    gw->channels = NULL;
    ch->closing = true;
    while (ch->turns) {
        channel_turn_t *t = ch->turns;
        if (t->handle)
            mesh_client_cancel(gw->client, t->handle);
        if (!t->conn)
            mesh_log_warn(CHANNEL_SUBSYS,
                          "%s: turn of %s still running at shutdown: its answer "
                          "stays in the conversation, not delivered",
                          channel_name(t->chan), t->conv);
        turn_free(t);
    }
    channel_queues_close(ch); /* logs what was still queued, closes the timers */
    mesh_httpc_destroy(&ch->httpc);
    channels_free_if_closed(ch);
}
