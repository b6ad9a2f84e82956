/*
 * test_channel_fixture.h - what the channel integration tests share: a
 * mesh-channels-stub (the platforms' APIs, tests/stubs/channels) and a
 * whole mesh whose gateway is configured to call it, plus helpers to read
 * what the stub received, script it, read the gateway's metrics, and sign
 * requests. Header-only (static functions): one include per test.
 */
#ifndef TEST_CHANNEL_FIXTURE_H
#define TEST_CHANNEL_FIXTURE_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mesh/mesh_crypto.h"
#include "mesh_harness.h"

#define CF_WAIT_MS      20000
#define CF_PEOPLE_KEY   "ops-key-0123456789abcdef"
#define CF_MAX_ATTEMPTS "3"

static mh_mesh_t *s_mesh;
static mh_proc_t *s_stub;
static int s_stub_port;
static char s_env_buf[16][320];

/* Start the stub and a mesh whose gateway gets env (NULL-terminated, may use
 * "%d" once for the stub's port) plus the fast delivery settings. */
static __attribute__((unused)) int cf_start(const char *const env[])
{
    s_stub_port = mh_free_port();
    if (s_stub_port < 0)
        return -1;
    char bin[MH_PATH_MAX], port[16];
    mh_bin("channels-stub", bin, sizeof bin);
    snprintf(port, sizeof port, "%d", s_stub_port);
    char *argv[] = {bin, "--port", port, NULL};
    s_stub = mh_proc_spawn("channels-stub", argv, NULL);
    if (!s_stub || !mh_log_wait(s_stub, 0, "listening on port", 5000)) {
        fprintf(stderr, "the channels stub did not start\n");
        return -1;
    }
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof o);
    size_t n = 0;
    for (size_t i = 0; env[i] && n < 10; i++, n++) {
        /* "%d" in an entry stands for the stub's port */
        const char *pct = strstr(env[i], "%d");
        if (pct)
            snprintf(s_env_buf[n], sizeof s_env_buf[n], "%.*s%d%s", (int)(pct - env[i]), env[i],
                     s_stub_port, pct + 2);
        else
            snprintf(s_env_buf[n], sizeof s_env_buf[n], "%s", env[i]);
        o.env[MH_GATEWAY][n] = s_env_buf[n];
    }
    o.env[MH_GATEWAY][n++] = "MESH_CHANNEL_BACKOFF_MS=50";
    o.env[MH_GATEWAY][n++] = "MESH_CHANNEL_BACKOFF_MAX_MS=200";
    o.env[MH_GATEWAY][n++] = "MESH_CHANNEL_MAX_ATTEMPTS=" CF_MAX_ATTEMPTS;
    o.env[MH_GATEWAY][n++] = "MESH_CHANNEL_HTTP_TIMEOUT_MS=5000";
    o.env[MH_GATEWAY][n++] = "MESH_PEOPLE_KEYS=ops:" CF_PEOPLE_KEY;
    s_mesh = mh_mesh_start(&o);
    return s_mesh ? 0 : -1;
}

static __attribute__((unused)) int cf_stop(void)
{
    bool alive = s_mesh && mh_mesh_all_alive(s_mesh);
    bool clean = mh_mesh_stop(&s_mesh) == 0;
    mh_proc_destroy(&s_stub);
    return alive && clean ? 0 : -1;
}

static __attribute__((unused)) void cf_stub_url(char *out, size_t size, const char *path)
{
    snprintf(out, size, "http://127.0.0.1:%d%s", s_stub_port, path);
}

static __attribute__((unused)) void cf_stub_post(const char *path, const char *body)
{
    char url[256];
    mh_http_resp_t r;
    memset(&r, 0, sizeof r);
    cf_stub_url(url, sizeof url, path);
    if (mh_http("POST", url, body, NULL, 5000, &r) != 0 || r.status != 200)
        fail_msg("stub %s: %ld %s", path, r.status, r.curl_err);
    mh_http_resp_clear(&r);
}

static __attribute__((unused)) void cf_stub_reset(void)
{
    cf_stub_post("/_reset", "{}");
}

/* The API requests the stub received whose path contains sub (new reference). */
static __attribute__((unused)) json_t *cf_requests(const char *sub)
{
    char url[256];
    mh_http_resp_t r;
    memset(&r, 0, sizeof r);
    cf_stub_url(url, sizeof url, "/_requests");
    if (mh_http("GET", url, NULL, NULL, 5000, &r) != 0 || !json_is_array(r.json))
        fail_msg("stub /_requests: %ld %s", r.status, r.curl_err);
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(r.json, i, v)
    {
        const char *p = json_string_value(json_object_get(v, "path"));
        if (p && strstr(p, sub))
            json_array_append(out, v);
    }
    mh_http_resp_clear(&r);
    return out;
}

/* Wait (bounded) until at least n requests matching sub arrived; returns them. */
static __attribute__((unused)) json_t *cf_wait_requests(const char *sub, size_t n)
{
    uint64_t until = mh_now_ms() + CF_WAIT_MS;
    for (;;) {
        json_t *a = cf_requests(sub);
        if (json_array_size(a) >= n || mh_now_ms() > until)
            return a;
        json_decref(a);
        struct timespec ts = {0, 20 * 1000 * 1000}; /* poll interval, not a synchronisation */
        nanosleep(&ts, NULL);
    }
}

/* The sum of the gateway's metric samples whose line starts with prefix. */
static __attribute__((unused)) double cf_metric(const char *prefix)
{
    char url[256];
    mh_http_resp_t r;
    memset(&r, 0, sizeof r);
    snprintf(url, sizeof url, "%s/metrics", mh_mesh_url(s_mesh));
    if (mh_http("GET", url, NULL, NULL, 5000, &r) != 0)
        fail_msg("metrics: %s", r.curl_err);
    double sum = 0;
    size_t pl = strlen(prefix);
    for (const char *p = r.body; p && *p;) {
        if (strncmp(p, prefix, pl) == 0) {
            const char *sp = strchr(p, ' ');
            const char *nl = strchr(p, '\n');
            if (sp && (!nl || sp < nl))
                sum += strtod(sp + 1, NULL);
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    mh_http_resp_clear(&r);
    return sum;
}

/* Wait (bounded) until the metric sum reaches at least want. */
static __attribute__((unused)) bool cf_wait_metric(const char *prefix, double want)
{
    uint64_t until = mh_now_ms() + CF_WAIT_MS;
    while (mh_now_ms() < until) {
        if (cf_metric(prefix) >= want)
            return true;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* hex HMAC-SHA256(secret, a . b . c) */
static __attribute__((unused)) void cf_hmac_hex(const char *secret, const char *a, const char *b,
                                                const char *c, char out[65])
{
    const void *parts[] = {a, b, c};
    size_t lens[] = {strlen(a), strlen(b), strlen(c)};
    uint8_t mac[MESH_SHA256_LEN];
    if (mesh_hmac_sha256(secret, strlen(secret), parts, lens, 3, mac) != 0)
        fail_msg("hmac");
    mesh_hex_encode(mac, sizeof mac, out);
}

/* POST body to the gateway path with headers; r filled. */
static __attribute__((unused)) void cf_post(const char *path, const char *body,
                                            const char *const *headers, mh_http_resp_t *r)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", mh_mesh_url(s_mesh), path);
    memset(r, 0, sizeof *r);
    if (mh_http("POST", url, body, headers, 20000, r) != 0)
        fail_msg("POST %s: %s", path, r->curl_err);
}

/* GET /v1/deliveries/failed with the people key (key NULL: none). */
static __attribute__((unused)) void cf_failed(const char *key, mh_http_resp_t *r)
{
    char url[512], auth[128];
    snprintf(url, sizeof url, "%s/v1/deliveries/failed", mh_mesh_url(s_mesh));
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key ? key : "");
    const char *h[] = {auth, NULL};
    memset(r, 0, sizeof *r);
    if (mh_http("GET", url, NULL, key ? h : NULL, 5000, r) != 0)
        fail_msg("GET failed: %s", r->curl_err);
}

/* Wait until GET /v1/deliveries/failed lists conv; returns its entry (new ref) or NULL. */
static __attribute__((unused)) json_t *cf_wait_failed(const char *conv)
{
    uint64_t until = mh_now_ms() + CF_WAIT_MS;
    while (mh_now_ms() < until) {
        mh_http_resp_t r;
        cf_failed(CF_PEOPLE_KEY, &r);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(r.json, "items"), i, v)
        {
            const char *c = json_string_value(json_object_get(v, "conversation_id"));
            if (c && strcmp(c, conv) == 0) {
                json_incref(v);
                mh_http_resp_clear(&r);
                return v;
            }
        }
        mh_http_resp_clear(&r);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static const char *cf_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (!s)
        fail_msg("%s: not a string", k);
    return s;
}

#endif
