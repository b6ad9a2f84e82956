/*
 * test_handoff_flow.c - a whole handoff seen from both sides, over HTTP on a
 * whole mesh (rules backend, real Redis):
 *
 *   1. the customer asks for a person: claims_intake hands over (pending);
 *   2. while pending and while a person holds it, the bot stays silent
 *      (reply "", handoff set, no model step), and every customer message
 *      is recorded: the person sees them all in the transcript, in order;
 *   3. the person's reply reaches the customer's event stream;
 *   4. after the release the bot answers the next message again, and the
 *      conversation keeps its collected slots.
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
    s_mesh = mh_mesh_start(&o);
    if (!s_mesh)
        return -1;
    snprintf(s_conv, sizeof(s_conv), "flow-%d", (int)getpid());
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
    json_t *b =
        json_pack("{s:s, s:s, s:s}", "text", text, "agent", "claims_intake", "message_id", mid);
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

/* Position of the user message with text in the transcript (-1 when absent). */
static int user_pos(const json_t *transcript, const char *text)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(transcript, "messages"), i, m)
    {
        const char *role = mh_json_str(m, "role"), *t = mh_json_str(m, "text");
        if (role && t && strcmp(role, "user") == 0 && strcmp(t, text) == 0)
            return (int)i;
    }
    return -1;
}

static void test_flow(void **state)
{
    (void)state;
    mh_http_resp_t r;
    static const char m1[] =
        "I had an accident on Yan'an Road yesterday, I want to talk to a human";
    static const char m2[] = "hello? is anyone there";
    static const char m3[] = "my plate is 沪A12345";
    static const char m4[] = "thanks, I will wait for the call";

    /* 1. The customer asks for a person. */
    customer(m1, "c1", &r);
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    assert_true(strlen(mh_json_str(r.json, "reply")) > 0); /* the agent says a colleague comes */
    mh_http_resp_clear(&r);

    /* 2a. Pending: the bot is silent, the message is kept. */
    customer(m2, "c2", &r);
    assert_string_equal(mh_json_str(r.json, "reply"), "");
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    assert_int_equal(json_integer_value(json_object_get(r.json, "steps")), 0);
    mh_http_resp_clear(&r);

    /* 2b. A person claims it; the bot stays silent while they hold it. */
    person("POST", "claim", NULL, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    customer(m3, "c3", &r);
    assert_string_equal(mh_json_str(r.json, "reply"), "");
    assert_string_equal(mh_json_str(r.json, "handoff"), "human");
    mh_http_resp_clear(&r);

    /* Nothing the customer said is lost: all three in order, and no bot answer after m1. */
    mh_http_resp_t t;
    person("GET", NULL, NULL, &t);
    assert_int_equal(t.status, 200);
    int p1 = user_pos(t.json, m1), p2 = user_pos(t.json, m2), p3 = user_pos(t.json, m3);
    assert_true(p1 >= 0 && p2 > p1 && p3 > p2);
    const json_t *msgs = json_object_get(t.json, "messages");
    for (size_t i = (size_t)p2; i < json_array_size(msgs); i++) {
        const json_t *m = json_array_get(msgs, i);
        const char *role = mh_json_str(m, "role");
        assert_true(strcmp(role, "user") == 0 || strcmp(role, "note") == 0);
    }
    long long last_seq =
        json_integer_value(json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "seq"));
    mh_http_resp_clear(&t);

    /* 3. The person answers; the customer's event stream gets it. */
    person("POST", "reply", "{\"text\":\"Hi, this is Anna from claims. I will call you now.\"}",
           &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    char *ev = events_until(last_seq, "Anna from claims");
    assert_non_null(strstr(ev, "event: message"));
    assert_non_null(strstr(ev, "\"name\":\"human\""));
    assert_non_null(strstr(ev, "Anna from claims"));
    free(ev);

    /* 4. Release: the bot answers again, the slots are still there. */
    person("POST", "release", "{\"summary\":\"called the customer, continue the intake\"}", &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    customer(m4, "c4", &r);
    assert_true(strlen(mh_json_str(r.json, "reply")) > 0);
    assert_null(json_object_get(r.json, "handoff"));
    assert_true(json_integer_value(json_object_get(r.json, "steps")) > 0);
    mh_http_resp_clear(&r);
    person("GET", NULL, NULL, &t);
    assert_string_equal(mh_json_str(json_object_get(t.json, "handoff"), "state"), "bot");
    assert_true(user_pos(t.json, m4) > p3);
    assert_true(json_object_size(json_object_get(t.json, "slots")) > 0);
    mh_http_resp_clear(&t);
}

int main(void)
{
    if (mh_init("handoff_flow") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
