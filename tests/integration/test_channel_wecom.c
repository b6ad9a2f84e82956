/*
 * test_channel_wecom.c - WeCom callback end to end against
 * mesh-channels-stub, configured with the official sample's token, corp id
 * and EncodingAESKey:
 *   - URL verification with the official vector answers the plain msg;
 *   - an encrypted text message (built here: random | len | xml | corp id,
 *     AES-256-CBC with 32-byte PKCS#7 padding, signed) -> empty passive
 *     reply, then gettoken + exactly one message/send, also when WeCom
 *     retries the same MsgId;
 *   - bad signature, wrong corp id -> 401, nothing sent.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_channel_fixture.h"

#define TOKEN   "QDG6eK"
#define CORP    "wx5823bf96d3bd56c7"
#define AES_KEY "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

static int group_setup(void **state)
{
    (void)state;
    const char *env[] = {"MESH_WECOM_TOKEN=" TOKEN,
                         "MESH_WECOM_AES_KEY=" AES_KEY,
                         "MESH_WECOM_CORP_ID=" CORP,
                         "MESH_WECOM_SECRET=corp-secret",
                         "MESH_WECOM_AGENT_ID=1000002",
                         "MESH_WECOM_API_BASE=http://127.0.0.1:%d",
                         NULL};
    return cf_start(env);
}

static int group_teardown(void **state)
{
    (void)state;
    return cf_stop();
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void wecom_sig(const char *ts, const char *nonce, const char *data, char out[41])
{
    const char *s[4] = {TOKEN, ts, nonce, data};
    qsort(s, 4, sizeof s[0], cmp);
    const void *p[4] = {s[0], s[1], s[2], s[3]};
    size_t l[4] = {strlen(s[0]), strlen(s[1]), strlen(s[2]), strlen(s[3])};
    assert_int_equal(mesh_sha1_hex(p, l, 4, out), 0);
}

/* base64(AES(random16 | len | msg | corp)) */
static char *encrypt_msg(const char *msg, const char *corp)
{
    uint8_t key[40];
    size_t kl;
    assert_int_equal(mesh_base64_decode(AES_KEY "=", 44, key, sizeof key, &kl), 0);
    size_t ml = strlen(msg), cl = strlen(corp);
    size_t pl = 20 + ml + cl;
    uint8_t *pt = malloc(pl), *ct = malloc(pl + 64);
    mesh_random_bytes(pt, 16);
    pt[16] = (uint8_t)(ml >> 24);
    pt[17] = (uint8_t)(ml >> 16);
    pt[18] = (uint8_t)(ml >> 8);
    pt[19] = (uint8_t)ml;
    memcpy(pt + 20, msg, ml);
    memcpy(pt + 20 + ml, corp, cl);
    size_t ctl = 0;
    assert_int_equal(mesh_aes256_cbc_encrypt(key, key, pt, pl, 32, ct, pl + 64, &ctl), 0);
    char *b64 = malloc(ctl * 2 + 8);
    assert_int_equal(mesh_base64_encode(ct, ctl, b64, ctl * 2 + 8, NULL), 0);
    free(pt);
    free(ct);
    return b64;
}

static void wecom_post(const char *msgid, const char *from, const char *text, const char *corp,
                       bool good_sig, mh_http_resp_t *r)
{
    char *inner = NULL, *body = NULL, *path = NULL;
    asprintf(&inner,
             "<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]>"
             "</FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]>"
             "</MsgType><Content><![CDATA[%s]]></Content><MsgId>%s</MsgId><AgentID>1000002"
             "</AgentID></xml>",
             CORP, from, text, msgid);
    char *enc = encrypt_msg(inner, corp);
    char ts[32], sig[41];
    snprintf(ts, sizeof ts, "%ld", (long)time(NULL));
    wecom_sig(ts, "nonce123", enc, sig);
    if (!good_sig)
        sig[0] = sig[0] == 'a' ? 'b' : 'a';
    asprintf(&body,
             "<xml><ToUserName><![CDATA[%s]]></ToUserName><AgentID><![CDATA[1000002]]></AgentID>"
             "<Encrypt><![CDATA[%s]]></Encrypt></xml>",
             CORP, enc);
    asprintf(&path, "/v1/channels/wecom/callback?msg_signature=%s&timestamp=%s&nonce=nonce123", sig,
             ts);
    const char *h[] = {"Content-Type: text/xml", NULL};
    cf_post(path, body, h, r);
    free(inner);
    free(enc);
    free(body);
    free(path);
}

static void test_url_verification_vector(void **state)
{
    (void)state;
    char url[1024];
    snprintf(url, sizeof url,
             "%s/v1/channels/wecom/callback?msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
             "&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%%2FqYX3Zpb4"
             "yKa9SKld1DsH3Iyt3tP3zNdtp%%2B4RPcs8TgAE7OaBO%%2BFZXvnaqQ%%3D%%3D",
             mh_mesh_url(s_mesh));
    mh_http_resp_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(mh_http("GET", url, NULL, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "1616140317555161061");
    mh_http_resp_clear(&r);
    /* a wrong signature on the same request */
    char *p = strstr(url, "5c45ff");
    p[0] = '6';
    memset(&r, 0, sizeof r);
    assert_int_equal(mh_http("GET", url, NULL, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
}

static void test_message_once(void **state)
{
    (void)state;
    cf_stub_reset();
    mh_http_resp_t r;
    wecom_post("1234567890123456", "zhangsan", "What does policy P10023 cover?", CORP, true, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0); /* passive empty reply */
    mh_http_resp_clear(&r);
    json_t *reqs = cf_wait_requests("/cgi-bin/message/send", 1);
    assert_int_equal(json_array_size(reqs), 1);
    json_t *q = json_array_get(reqs, 0);
    assert_non_null(strstr(cf_str(q, "path"), "access_token=stub-access-token"));
    json_t *pb = json_loads(cf_str(q, "body"), 0, NULL);
    assert_string_equal(cf_str(pb, "touser"), "zhangsan");
    assert_string_equal(cf_str(pb, "msgtype"), "text");
    assert_int_equal(json_integer_value(json_object_get(pb, "agentid")), 1000002);
    assert_true(strlen(cf_str(json_object_get(pb, "text"), "content")) > 0);
    json_decref(pb);
    json_decref(reqs);
    reqs = cf_requests("/cgi-bin/gettoken");
    assert_int_equal(json_array_size(reqs), 1);
    assert_non_null(strstr(cf_str(json_array_get(reqs, 0), "path"), "corpid=" CORP));
    json_decref(reqs);
    /* WeCom retries the same MsgId: answered once */
    double dup0 = cf_metric("mesh_channel_inbound_total{channel=\"wecom\",outcome=\"duplicate\"}");
    wecom_post("1234567890123456", "zhangsan", "What does policy P10023 cover?", CORP, true, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    assert_true(cf_wait_metric(
        "mesh_channel_inbound_total{channel=\"wecom\",outcome=\"duplicate\"}", dup0 + 1));
    reqs = cf_requests("/cgi-bin/message/send");
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
    mh_get_conversation(s_mesh, "wecom:" CORP ":zhangsan", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(cf_str(json_object_get(r.json, "state"), "channel"), "wecom");
    mh_http_resp_clear(&r);
}

static void test_refused(void **state)
{
    (void)state;
    cf_stub_reset();
    mh_http_resp_t r;
    wecom_post("222", "lisi", "hello", CORP, false, &r);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    wecom_post("223", "lisi", "hello", "wxOTHERCORP0000000", true, &r);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    json_t *reqs = cf_requests("/cgi-bin/");
    assert_int_equal(json_array_size(reqs), 0);
    json_decref(reqs);
}

int main(void)
{
    if (mh_init("channel_wecom") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_verification_vector),
        cmocka_unit_test(test_message_once),
        cmocka_unit_test(test_refused),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return mh_finish(failed);
}
