/*
 * harness_turn.c - the requests the integration tests make again and again:
 * a customer's turn, a person's people-API call, reading a streamed answer
 * on a raw connection, a strictly parsed /metrics scrape, and the cmocka
 * group setup/teardown of a default mesh (or one with people-API keys).
 * Failures are cmocka assertions: these helpers run only inside a cmocka test
 * (the group functions only as cmocka group setup/teardown).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"
#include "prom_parse.h"

#define TURN_TIMEOUT_MS    15000
#define PEOPLE_TIMEOUT_MS  10000
#define STREAM_CAP         (1 << 16)
#define METRICS_TIMEOUT_MS 10000

mh_mesh_t *mh_group_mesh;

int mh_mesh_teardown(mh_mesh_t **m_p)
{
    bool alive = *m_p != NULL && mh_mesh_all_alive(*m_p);
    bool clean = mh_mesh_stop(m_p) == 0;
    return alive && clean ? 0 : -1;
}

int mh_group_setup(void **state)
{
    (void)state;
    mh_group_mesh = mh_mesh_start(NULL);
    return mh_group_mesh != NULL ? 0 : -1;
}

int mh_people_group_setup(const char *people_keys, const char *const memory_env[], const char *tag,
                          char *conv, size_t conv_size)
{
    /* mh_proc_spawn copies the environment: keys_kv need not outlive this call. */
    char keys_kv[512];
    int n = snprintf(keys_kv, sizeof(keys_kv), "MESH_PEOPLE_KEYS=%s", people_keys);
    if (n < 0 || (size_t)n >= sizeof(keys_kv))
        return -1;
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    o.env[MH_GATEWAY][0] = keys_kv;
    for (size_t i = 0; memory_env != NULL && memory_env[i] != NULL; i++) {
        if (i + 1 >= MH_MAX_ENV)
            return -1;
        o.env[MH_MEMORY][i] = memory_env[i];
    }
    mh_group_mesh = mh_mesh_start(&o);
    if (mh_group_mesh == NULL)
        return -1;
    mh_conv_id(conv, conv_size, tag);
    return 0;
}

int mh_group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&mh_group_mesh);
}

const char *mh_turn(const mh_mesh_t *m, const char *conv, const char *text, const char *mid,
                    const char *agent, mh_http_resp_t *r)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/conversations/%s/messages", mh_mesh_url(m), conv);
    json_t *b = json_pack("{s:s}", "text", text);
    if (mid != NULL)
        json_object_set_new(b, "message_id", json_string(mid));
    if (agent != NULL)
        json_object_set_new(b, "agent", json_string(agent));
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    int rc = mh_http("POST", url, body, NULL, TURN_TIMEOUT_MS, r);
    free(body);
    if (rc != 0 || r->status != 200 || r->json == NULL)
        fail_msg("turn '%s' on %s: status %ld body %s %s", text, conv, r->status,
                 r->body ? r->body : "", r->curl_err);
    const char *reply = mh_json_str(r->json, "reply");
    assert_non_null(reply);
    if (getenv("MESH_TEST_VERBOSE") != NULL)
        fprintf(stderr, "> %s\n< %s\n\n", text, reply);
    return reply;
}

void mh_people_http(const mh_mesh_t *m, const char *method, const char *path, const char *key,
                    const char *body, mh_http_resp_t *r)
{
    char url[512], auth[300];
    snprintf(url, sizeof(url), "%s%s", mh_mesh_url(m), path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : "");
    const char *hdrs[] = {auth, NULL};
    memset(r, 0, sizeof(*r));
    assert_int_equal(mh_http(method, url, body, key ? hdrs : NULL, PEOPLE_TIMEOUT_MS, r), 0);
}

void mh_handoff_http(const mh_mesh_t *m, const char *method, const char *conv, const char *action,
                     const char *key, const char *body, mh_http_resp_t *r)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/handoff/%s%s%s", conv, action ? "/" : "",
             action ? action : "");
    mh_people_http(m, method, path, key, body, r);
}

char *mh_stream_until(const mh_mesh_t *m, const char *path, const char *extra, const char *want,
                      int timeout_ms)
{
    int fd = mh_tcp_connect(mh_mesh_http_port(m));
    char req[1024];
    int n =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n%s%sConnection: close\r\n\r\n",
                 path, extra ? extra : "", extra ? "\r\n" : "");
    assert_true(n > 0 && (size_t)n < sizeof(req));
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = STREAM_CAP, len = 0;
    char *buf = calloc(1, cap + 1);
    assert_non_null(buf);
    uint64_t deadline = mh_now_ms() + (uint64_t)timeout_ms;
    while (len < cap && !strstr(buf, want)) {
        uint64_t now = mh_now_ms();
        if (now >= deadline)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - now)) != 1)
            break;
        ssize_t r = read(fd, buf + len, cap - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
    }
    close(fd);
    return buf;
}

char *mh_events_until(const mh_mesh_t *m, const char *conv, long long after, const char *want,
                      int timeout_ms)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/conversations/%s/events?after=%lld", conv, after);
    return mh_stream_until(m, path, "Accept: text/event-stream", want, timeout_ms);
}

const json_t *mh_turn_state(const mh_http_resp_t *r)
{
    const json_t *s = json_object_get(r->json, "state");
    if (!json_is_object(s))
        fail_msg("no state in the turn's answer: %s", r->body);
    return s;
}

const char *mh_turn_mode(const mh_http_resp_t *r)
{
    const char *m = mh_json_str(mh_turn_state(r), "mode");
    return m ? m : "";
}

bool mh_tool_called_ok(const mh_http_resp_t *r, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(r->json, "tool_calls"), i, c)
    {
        const char *n = mh_json_str(c, "name");
        if (n != NULL && strcmp(n, name) == 0 && json_is_true(json_object_get(c, "ok")))
            return true;
    }
    return false;
}

void mh_assert_has(const char *s, const char *needle)
{
    if (s == NULL || strstr(s, needle) == NULL)
        fail_msg("'%s' not in:\n%s", needle, s ? s : "(null)");
}

void mh_conv_id(char *out, size_t size, const char *tag)
{
    snprintf(out, size, "%s-%d", tag, (int)getpid());
}

int mh_policy_lookup(mh_mesh_t *m, const char *policy_no, int timeout_ms, json_t **data_out)
{
    json_t *args =
        json_pack("{s:s, s:{s:s}}", "name", "policy.lookup", "arguments", "policy_no", policy_no);
    if (args == NULL)
        return -1;
    int st = mh_mesh_call(m, "tools", "tool.call", NULL, args, timeout_ms, data_out);
    json_decref(args);
    return st;
}

struct mh_prom *mh_metrics_scrape(int port, const char *who)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    mh_http_resp_t r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(mh_http("GET", url, NULL, NULL, METRICS_TIMEOUT_MS, &r), 0);
    assert_int_equal(r.status, 200);
    mh_prom_t *doc = NULL;
    char err[MH_PROM_ERR_MAX];
    if (mh_prom_parse(r.body, r.body_len, &doc, err, sizeof(err)) != 0)
        fail_msg("%s /metrics is not valid text format: %s", who, err);
    mh_http_resp_clear(&r);
    return doc;
}
