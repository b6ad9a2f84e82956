/*
 * channel_wecom.c - WeCom (企业微信) callback (docs/channels.md, "WeCom").
 *
 * GET /v1/channels/wecom/callback?msg_signature&timestamp&nonce&echostr: URL
 * verification. msg_signature = sha1(sorted(token, timestamp, nonce,
 * echostr) joined); echostr decrypts (AES-256-CBC, key = base64(
 * EncodingAESKey + "="), IV = the key's first 16 bytes, PKCS#7 padding on
 * 32-byte blocks) to random(16) | msg_len(4, big-endian) | msg | corp id;
 * the answer is msg as plain text.
 *
 * POST (same query, XML body with <Encrypt>): the signature over the
 * Encrypt value, the decrypted XML's corp id must be ours; a text message
 * becomes a turn of wecom:<corp_id>:<FromUserName> with message_id
 * wecom:<MsgId> (WeCom retries are answered once). The HTTP answer is
 * empty (passive reply: received, no retry); the answer goes through the
 * active message API: gettoken (cached until shortly before expires_in),
 * then message/send {touser, msgtype: text, agentid, text: {content}}.
 *
 * The XML reader is deliberately minimal: it finds <Tag>...</Tag> (CDATA or
 * plain text with the five predefined entities) for the few tags needed,
 * each bounded by a named size; nothing else of XML is interpreted.
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel_int.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_text.h"
#include "validate.h"

#define WECOM_PARAM_MAX       1024        /* one query parameter, decoded */
#define WECOM_ENCRYPT_MAX     (96 * 1024) /* the <Encrypt> value (base64) */
#define WECOM_FIELD_MAX       256         /* ToUserName, FromUserName, MsgType, MsgId */
#define WECOM_TOKEN_MARGIN_MS 60000       /* refresh the access token this long before it expires */

/* Percent-decode q's value of key into out (NUL-terminated). '+' stays '+'
 * (base64 never has spaces). 1 when present and within size, else 0. */
static int query_value(const gateway_http_req_t *req, const char *key, char *out, size_t size)
{
    const char *v;
    size_t vlen;
    if (!req->query || !gateway_query_param(req->query, req->query_len, key, &v, &vlen))
        return 0;
    size_t o = 0;
    for (size_t i = 0; i < vlen; i++) {
        char c = v[i];
        if (c == '%') {
            if (i + 2 >= vlen)
                return 0;
            char hex[3] = {v[i + 1], v[i + 2], 0};
            if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]))
                return 0;
            c = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        if (o + 1 >= size || c == '\0')
            return 0;
        out[o++] = c;
    }
    out[o] = '\0';
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* sha1(sorted(token, ts, nonce, data)) == sig, constant-time on the compare. */
static bool sig_ok(const gateway_channels_t *ch, const char *sig, const char *ts, const char *nonce,
                   const char *data)
{
    const char *s[4] = {ch->cfg.wecom_token, ts, nonce, data};
    qsort(s, 4, sizeof s[0], cmp_str);
    const void *parts[4] = {s[0], s[1], s[2], s[3]};
    size_t lens[4] = {strlen(s[0]), strlen(s[1]), strlen(s[2]), strlen(s[3])};
    char hex[2 * MESH_SHA1_LEN + 1];
    if (mesh_sha1_hex(parts, lens, 4, hex) != 0)
        return false;
    return strlen(sig) == 2 * MESH_SHA1_LEN && mesh_ct_equal(sig, hex, 2 * MESH_SHA1_LEN);
}

/*
 * Decrypt base64 b64 to msg (malloc'd, NUL-terminated): checks the padding,
 * the length prefix and that the receive id is our corp id. 0 or MESH_EINVAL.
 */
static int wecom_decrypt(const gateway_channels_t *ch, const char *b64, size_t b64_len, char **msg,
                         size_t *msg_len)
{
    int rc = MESH_EINVAL;
    size_t cap = b64_len / 4 * 3 + 3, clen = 0, plen = 0;
    uint8_t *ct = malloc(cap), *pt = malloc(cap);
    *msg = NULL;
    if (!ct || !pt) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    if (mesh_base64_decode(b64, b64_len, ct, cap, &clen) != 0 || clen < 32 ||
        mesh_aes256_cbc_decrypt(ch->cfg.wecom_aes_key, ch->cfg.wecom_aes_key, ct, clen, 32, pt,
                                &plen) != 0 ||
        plen < 20)
        goto cleanup;
    uint32_t n = (uint32_t)pt[16] << 24 | (uint32_t)pt[17] << 16 | (uint32_t)pt[18] << 8 | pt[19];
    if (n > plen - 20)
        goto cleanup;
    const char *corp = ch->cfg.wecom_corp_id;
    size_t rid_len = plen - 20 - n;
    if (rid_len != strlen(corp) || memcmp(pt + 20 + n, corp, rid_len) != 0)
        goto cleanup;
    *msg = malloc(n + 1);
    if (!*msg) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    memcpy(*msg, pt + 20, n);
    (*msg)[n] = '\0';
    *msg_len = n;
    rc = 0;
cleanup:
    free(ct);
    free(pt);
    return rc;
}

/*
 * The text of <tag>...</tag> in xml[0..len) into out (NUL-terminated, at
 * most size-1 bytes): CDATA taken verbatim, plain text with &lt; &gt; &amp;
 * &quot; &apos; decoded. 1 found, 0 absent, -1 too long or malformed.
 */
int channel_xml_field(const char *xml, size_t len, const char *tag, char *out, size_t size)
{
    char open[40], close[40];
    int ol = snprintf(open, sizeof open, "<%s>", tag);
    int cl = snprintf(close, sizeof close, "</%s>", tag);
    if (ol < 0 || cl < 0 || (size_t)cl >= sizeof close || size == 0)
        return -1;
    const char *p = memmem(xml, len, open, (size_t)ol);
    if (!p)
        return 0;
    p += ol;
    size_t rest = len - (size_t)(p - xml);
    const char *end = memmem(p, rest, close, (size_t)cl);
    if (!end)
        return -1;
    size_t n = (size_t)(end - p);
    static const char cd_open[] = "<![CDATA[", cd_close[] = "]]>";
    if (n >= sizeof cd_open - 1 + sizeof cd_close - 1 &&
        memcmp(p, cd_open, sizeof cd_open - 1) == 0 &&
        memcmp(end - (sizeof cd_close - 1), cd_close, sizeof cd_close - 1) == 0) {
        p += sizeof cd_open - 1;
        n -= sizeof cd_open - 1 + sizeof cd_close - 1;
        if (n >= size)
            return -1;
        memcpy(out, p, n);
        out[n] = '\0';
        return 1;
    }
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        char c = p[i];
        size_t adv = 1;
        if (c == '&') {
            size_t k;
            for (k = 0; k < sizeof ents / sizeof ents[0]; k++) {
                size_t el = strlen(ents[k].ent);
                if (i + el <= n && memcmp(p + i, ents[k].ent, el) == 0) {
                    c = ents[k].c;
                    adv = el;
                    break;
                }
            }
            if (k == sizeof ents / sizeof ents[0])
                return -1;
        } else if (c == '<') {
            return -1; /* nested elements are not expected in these fields */
        }
        if (o + 1 >= size)
            return -1;
        out[o++] = c;
        i += adv;
    }
    out[o] = '\0';
    return 1;
}

static void verify_url(gateway_channels_t *ch, gateway_http_conn_t *conn,
                       const gateway_http_req_t *req, const char *sig, const char *ts,
                       const char *nonce)
{
    char echostr[WECOM_PARAM_MAX];
    if (!query_value(req, "echostr", echostr, sizeof echostr)) {
        channel_unauthorized(conn, CHANNEL_WECOM, "missing echostr");
        return;
    }
    if (!sig_ok(ch, sig, ts, nonce, echostr)) {
        channel_unauthorized(conn, CHANNEL_WECOM, "bad msg_signature");
        return;
    }
    char *msg = NULL;
    size_t n = 0;
    if (wecom_decrypt(ch, echostr, strlen(echostr), &msg, &n) != 0) {
        channel_unauthorized(conn, CHANNEL_WECOM, "echostr does not decrypt for this corp id");
        return;
    }
    channel_count_inbound(CHANNEL_WECOM, "verification");
    gateway_http_conn_respond(conn, 200, "text/plain; charset=utf-8", NULL, msg, n);
    free(msg);
}

void channel_wecom_inbound(gateway_channels_t *ch, gateway_http_conn_t *conn,
                           const gateway_http_req_t *req)
{
    char sig[64], ts[32], nonce[128];
    if (!query_value(req, "msg_signature", sig, sizeof sig) ||
        !query_value(req, "timestamp", ts, sizeof ts) ||
        !query_value(req, "nonce", nonce, sizeof nonce)) {
        channel_unauthorized(conn, CHANNEL_WECOM, "missing msg_signature, timestamp or nonce");
        return;
    }
    if (req->method == HTTP_GET) {
        verify_url(ch, conn, req, sig, ts, nonce);
        return;
    }
    char *enc = NULL, *xml = NULL;
    json_t *to = NULL;
    size_t xml_len = 0;
    char *content = NULL;
    enc = malloc(WECOM_ENCRYPT_MAX + 1);
    content = malloc(MESH_TEXT_MAX + 1);
    if (!enc || !content) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        goto out;
    }
    if (channel_xml_field(req->body, req->body_len, "Encrypt", enc, WECOM_ENCRYPT_MAX + 1) != 1) {
        channel_count_inbound(CHANNEL_WECOM, "invalid");
        gateway_http_conn_respond_error(conn, 400, "invalid_xml", "no <Encrypt> element", NULL);
        goto out;
    }
    if (!sig_ok(ch, sig, ts, nonce, enc)) {
        channel_unauthorized(conn, CHANNEL_WECOM, "bad msg_signature");
        goto out;
    }
    if (wecom_decrypt(ch, enc, strlen(enc), &xml, &xml_len) != 0) {
        channel_unauthorized(conn, CHANNEL_WECOM, "message does not decrypt for this corp id");
        goto out;
    }
    char type[WECOM_FIELD_MAX], from[WECOM_FIELD_MAX], msgid[WECOM_FIELD_MAX];
    if (channel_xml_field(xml, xml_len, "MsgType", type, sizeof type) != 1 ||
        strcmp(type, "text") != 0) {
        channel_count_inbound(CHANNEL_WECOM, "ignored"); /* events, images, ...: received */
        gateway_http_conn_respond(conn, 200, "text/plain", NULL, "", 0);
        goto out;
    }
    char conv[MESH_CONV_MAX + 2], mid[MESH_ID_MAX + 2];
    int cn = -1, mn = -1;
    if (channel_xml_field(xml, xml_len, "FromUserName", from, sizeof from) == 1 &&
        channel_xml_field(xml, xml_len, "MsgId", msgid, sizeof msgid) == 1) {
        cn = snprintf(conv, sizeof conv, "wecom:%s:%s", ch->cfg.wecom_corp_id, from);
        mn = snprintf(mid, sizeof mid, "wecom:%s", msgid);
    }
    int got = channel_xml_field(xml, xml_len, "Content", content, MESH_TEXT_MAX + 1);
    if (cn < 0 || mn < 0 || !mesh_conv_id_valid(conv, (size_t)cn) ||
        !gateway_message_id_valid(mid, (size_t)mn) || got != 1 || content[0] == '\0' ||
        !mesh_utf8_valid(content, strlen(content))) {
        channel_count_inbound(CHANNEL_WECOM, "invalid");
        mesh_log_warn(CHANNEL_SUBSYS, "wecom: text message with a missing or invalid "
                                      "FromUserName, MsgId or Content: refused (400)");
        gateway_http_conn_respond_error(conn, 400, "invalid_message",
                                        "FromUserName, MsgId and Content must be valid", NULL);
        goto out;
    }
    to = json_pack("{s:s}", "touser", from);
    /* Passive reply: empty = received, WeCom does not retry; the answer
     * follows through the active message API. Not accepted: answered 503. */
    if (channel_turn_start(ch, CHANNEL_WECOM, conn, req, conv, to, content, strlen(content), mid,
                           NULL, NULL) == 0)
        gateway_http_conn_respond(conn, 200, "text/plain", NULL, "", 0);
out:
    json_decref(to);
    free(enc);
    free(xml);
    free(content);
}

/* ---- outbound: gettoken + message/send -------------------------------------------------- */

/* Percent-encode s into out (unreserved characters kept). 0 or -1 (too long). */
static int url_encode(const char *s, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        if (o + (keep ? 1 : 3) >= size)
            return -1;
        if (keep) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

static void on_sent(const mesh_httpc_resp_t *r, void *arg);

static int send_message(gateway_channels_t *ch, channel_delivery_t *d, uint64_t *http_id)
{
    const char *touser = json_string_value(json_object_get(d->to, "touser"));
    if (!touser)
        return MESH_EINVAL;
    json_t *b = json_pack("{s:s,s:s,s:I,s:{s:s%}}", "touser", touser, "msgtype", "text", "agentid",
                          (json_int_t)strtoll(ch->cfg.wecom_agent_id, NULL, 10), "text", "content",
                          d->text, d->len);
    char *body = channel_json_body(b);
    if (!body)
        return MESH_ENOMEM;
    char tok[3 * CHANNEL_SECRET_MAX + 1];
    char url[CHANNEL_BASE_URL_MAX + sizeof tok + 64];
    if (url_encode(ch->wecom_access_token, tok, sizeof tok) != 0) {
        free(body);
        return MESH_EINVAL;
    }
    snprintf(url, sizeof url, "%s/cgi-bin/message/send?access_token=%s", ch->cfg.wecom_api_base,
             tok);
    int rc = channel_post(ch, url, "application/json", NULL, d->tp, body, on_sent, http_id);
    free(body);
    memset(url, 0, sizeof url);
    memset(tok, 0, sizeof tok);
    return rc;
}

/* errcode of a WeCom API answer into o (0 = ok). */
static json_int_t wecom_errcode(const mesh_httpc_resp_t *r, channel_outcome_t *o, json_t **body)
{
    channel_outcome_http(r, o);
    *body = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    if (!o->ok)
        return -2;
    const json_t *ec = json_object_get(*body, "errcode");
    json_int_t code = json_is_integer(ec) ? json_integer_value(ec) : -3;
    if (code != 0) {
        o->ok = false;
        /* -1 busy, 45009 frequency limit, 42001/40014/42009 token expired/invalid */
        o->retry = code == -1 || code == 45009 || code == 42001 || code == 40014 || code == 42009;
        snprintf(o->reason, sizeof o->reason, "wecom errcode %" JSON_INTEGER_FORMAT, code);
    }
    return code;
}

static void on_sent(const mesh_httpc_resp_t *r, void *arg)
{
    gateway_channels_t *ch = arg;
    channel_outcome_t o;
    json_t *b = NULL;
    json_int_t code = wecom_errcode(r, &o, &b);
    if (code == 42001 || code == 40014 || code == 42009) {
        ch->wecom_access_token[0] = '\0'; /* fetched again on the retry */
        o.retry_after_s = 0;
    }
    json_decref(b);
    channel_queue_done(ch, CHANNEL_WECOM, &o);
}

static void on_token(const mesh_httpc_resp_t *r, void *arg)
{
    gateway_channels_t *ch = arg;
    channel_outcome_t o;
    json_t *b = NULL;
    wecom_errcode(r, &o, &b);
    channel_queue_t *q = &ch->q[CHANNEL_WECOM];
    const json_t *tok = json_object_get(b, "access_token");
    const json_t *exp = json_object_get(b, "expires_in");
    if (o.ok && (!json_is_string(tok) || json_string_length(tok) == 0 ||
                 json_string_length(tok) > CHANNEL_SECRET_MAX)) {
        o.ok = false;
        o.retry = false;
        snprintf(o.reason, sizeof o.reason, "wecom gettoken: no access_token");
    }
    if (!o.ok) {
        snprintf(o.reason + strlen(o.reason), sizeof o.reason - strlen(o.reason), " (gettoken)");
        json_decref(b);
        channel_queue_done(ch, CHANNEL_WECOM, &o);
        return;
    }
    memcpy(ch->wecom_access_token, json_string_value(tok), json_string_length(tok) + 1);
    uint64_t life_ms = json_is_integer(exp) && json_integer_value(exp) > 0
                           ? (uint64_t)json_integer_value(exp) * 1000u
                           : 7200000u;
    ch->wecom_token_expires_ms =
        uv_now(ch->gw->loop) +
        (life_ms > WECOM_TOKEN_MARGIN_MS ? life_ms - WECOM_TOKEN_MARGIN_MS : life_ms / 2);
    json_decref(b);
    uint64_t id = 0;
    int rc = q->inflight ? send_message(ch, q->inflight, &id) : MESH_ESTATE;
    if (rc == 0) {
        q->http_id = id;
        return;
    }
    channel_outcome_t f = {.retry_after_s = -1};
    snprintf(f.reason, sizeof f.reason, "message/send not started: %s", mesh_strerror(rc));
    channel_queue_done(ch, CHANNEL_WECOM, &f);
}

int channel_wecom_send(gateway_channels_t *ch, channel_delivery_t *d, uint64_t *http_id)
{
    if (ch->wecom_access_token[0] && uv_now(ch->gw->loop) < ch->wecom_token_expires_ms)
        return send_message(ch, d, http_id);
    char corp[3 * CHANNEL_SECRET_MAX + 1], secret[3 * CHANNEL_SECRET_MAX + 1];
    char url[CHANNEL_BASE_URL_MAX + sizeof corp + sizeof secret + 64];
    if (url_encode(ch->cfg.wecom_corp_id, corp, sizeof corp) != 0 ||
        url_encode(ch->cfg.wecom_secret, secret, sizeof secret) != 0)
        return MESH_EINVAL;
    snprintf(url, sizeof url, "%s/cgi-bin/gettoken?corpid=%s&corpsecret=%s", ch->cfg.wecom_api_base,
             corp, secret);
    mesh_httpc_opts_t o = {.method = "GET",
                           .url = url,
                           .timeout_ms = ch->cfg.http_timeout_ms,
                           .body_max = CHANNEL_API_BODY_MAX};
    int rc = mesh_httpc_request(ch->httpc, &o, on_token, ch, http_id);
    memset(url, 0, sizeof url);
    memset(secret, 0, sizeof secret);
    return rc;
}
