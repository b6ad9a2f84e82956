/*
 * test_events_trim.c - message sequence numbers survive log trimming.
 *
 * The memory service trims a conversation's log to MESH_HISTORY_MAX entries;
 * positions in the log then stop growing while the conversation's "seq" keeps
 * counting. The people transcript and the customer's event stream number
 * messages by seq, so after the log was trimmed a person's reply still
 * reaches the customer's event stream (numbered by position it would be
 * numbered like an entry the customer has already seen, and skipped).
 *
 * Whole mesh over HTTP (rules backend, real Redis), MESH_HISTORY_MAX=4: the
 * customer asks policy_qa for a person (user, assistant tool call, tool,
 * answer: 4 entries, seq 4), then writes twice while waiting (seq 6; the log
 * still holds 4 entries), a person claims and replies (seq 7).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"

#define T_TIMEOUT_MS 10000
#define KEY_ANNA     "anna-key-0123456789abcdef"

static mh_mesh_t *s_mesh;
static char s_conv[64];

static int group_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    o.env[MH_GATEWAY][0] = "MESH_PEOPLE_KEYS=anna:" KEY_ANNA;
    o.env[MH_MEMORY][0] = "MESH_HISTORY_MAX=4";
    s_mesh = mh_mesh_start(&o);
    if (!s_mesh)
        return -1;
    snprintf(s_conv, sizeof(s_conv), "trim-%d", (int)getpid());
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bool alive = s_mesh != NULL && mh_mesh_all_alive(s_mesh);
    bool clean = mh_mesh_stop(&s_mesh) == 0;
    return alive && clean ? 0 : -1;
}

static void customer(const char *text, const char *mid, mh_http_resp_t *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), s_conv);
    json_t *b = json_pack("{s:s, s:s, s:s}", "text", text, "agent", "policy_qa", "message_id", mid);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    memset(r, 0, sizeof(*r));
    assert_int_equal(mh_http("POST", url, body, NULL, T_TIMEOUT_MS, r), 0);
    free(body);
    assert_int_equal(r->status, 200);
}

static void person(const char *method, const char *action, const char *body, mh_http_resp_t *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/handoff/%s%s%s", mh_mesh_url(s_mesh), s_conv,
             action ? "/" : "", action ? action : "");
    const char *hdrs[] = {"Authorization: Bearer " KEY_ANNA, NULL};
    memset(r, 0, sizeof(*r));
    assert_int_equal(mh_http(method, url, body, hdrs, T_TIMEOUT_MS, r), 0);
}

/* Read the customer's event stream after seq until want shows (bounded). */
static char *events_until(long long after, const char *want)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(mh_mesh_http_port(s_mesh))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /v1/conversations/%s/events?after=%lld HTTP/1.1\r\nHost: t\r\n"
                     "Accept: text/event-stream\r\n\r\n",
                     s_conv, after);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(1, cap + 1);
    uint64_t deadline = mh_now_ms() + T_TIMEOUT_MS;
    while (len < cap && !strstr(buf, want)) {
        uint64_t now = mh_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) != 1)
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

static long long last_seq(const json_t *transcript)
{
    const json_t *msgs = json_object_get(transcript, "messages");
    return json_integer_value(
        json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "seq"));
}

static void test_seq_after_trim(void **state)
{
    (void)state;
    mh_http_resp_t r;
    customer("请帮我转人工", "t1", &r);
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    mh_http_resp_clear(&r);
    customer("还在吗？", "t2", &r);
    assert_string_equal(mh_json_str(r.json, "reply"), "");
    mh_http_resp_clear(&r);
    customer("我等一下", "t3", &r);
    assert_string_equal(mh_json_str(r.json, "reply"), "");
    mh_http_resp_clear(&r);

    /* The log holds the newest 4 entries, numbered 3..6 (not 1..4). */
    mh_http_resp_t t;
    person("GET", NULL, NULL, &t);
    assert_int_equal(t.status, 200);
    assert_int_equal(json_array_size(json_object_get(t.json, "messages")), 4);
    assert_int_equal(last_seq(t.json), 6);
    assert_string_equal(mh_json_str(json_array_get(json_object_get(t.json, "messages"), 3), "text"),
                        "我等一下");
    mh_http_resp_clear(&t);

    person("POST", "claim", "{}", &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    person("POST", "reply", "{\"text\":\"您好，我是客服 Anna，马上为您处理。\"}", &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);

    /* The customer saw everything up to 6: the reply arrives as number 7. */
    char *ev = events_until(6, "Anna");
    assert_non_null(strstr(ev, "event: message"));
    assert_non_null(strstr(ev, "\"seq\":7"));
    assert_non_null(strstr(ev, "客服 Anna"));
    free(ev);
}

int main(void)
{
    if (mh_init("events_trim") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_after_trim),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
