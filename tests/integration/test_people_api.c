/*
 * test_people_api.c - the people API of human handoff (docs/people-api.md)
 * through a whole mesh over HTTP (gateway -> router -> memory -> Redis),
 * rules backend.
 *
 * A claims_intake conversation reporting an injury goes pending (the agent's
 * own rule). Then, as people with API keys from MESH_PEOPLE_KEYS and
 * MESH_PEOPLE_KEYS_FILE: authentication (401 without/with a wrong key), the
 * queue, claim and its conflicts (409), a reply (idempotent on message_id)
 * that lands in the log, an internal note, the transcript with the worker's
 * slots, the customer's event stream (the reply arrives, the note never
 * does), the console's queue stream, and the release. The pure helpers
 * (key table parsing, constant-time compare, web path mapping) are checked
 * directly (gateway_core is linked).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"
#include "route_people.h"

#define T_TIMEOUT_MS 10000
#define KEY_WANG     "wang-key-0123456789abcdef"
#define KEY_LI       "li-key-0123456789abcdef01"
#define KEY_ZHAO     "zhao-key-from-the-file-0123"

static mh_mesh_t *s_mesh;
static char s_keys_file_env[MH_PATH_MAX + 32];
static char s_web_env[MH_PATH_MAX + 32];
static char s_conv[64];
static mh_proc_t *s_stub;
static int s_stub_port;
static char s_tg_env[96];

static int group_setup(void **state)
{
    (void)state;
    char path[MH_PATH_MAX];
    snprintf(path, sizeof(path), "%s/people.keys", mh_tmpdir());
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "# people keys\nzhao:" KEY_ZHAO "\nshort:abc\n");
    fclose(f);
    snprintf(s_keys_file_env, sizeof(s_keys_file_env), "MESH_PEOPLE_KEYS_FILE=%s", path);
    const char *src = getenv("MESH_SOURCE_DIR");
    snprintf(s_web_env, sizeof(s_web_env), "MESH_WEB_DIR=%s/web", src ? src : ".");
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    o.env[MH_GATEWAY][0] = "MESH_PEOPLE_KEYS=wang:" KEY_WANG ",li:" KEY_LI;
    o.env[MH_GATEWAY][1] = s_keys_file_env;
    o.env[MH_GATEWAY][2] = s_web_env;
    /* A Telegram API stand-in (tests/stubs/channels) for the delivery of replies. */
    char stub_bin[MH_PATH_MAX];
    snprintf(stub_bin, sizeof(stub_bin), "%s", mh_bin("channels-stub", path, sizeof(path)));
    s_stub_port = mh_free_port();
    if (access(stub_bin, X_OK) == 0 && s_stub_port > 0) {
        char port[16];
        snprintf(port, sizeof(port), "%d", s_stub_port);
        char *const argv[] = {stub_bin, "--port", port, NULL};
        s_stub = mh_proc_spawn("channels-stub", argv, NULL);
        snprintf(s_tg_env, sizeof(s_tg_env), "MESH_TELEGRAM_API_BASE=http://127.0.0.1:%d",
                 s_stub_port);
        o.env[MH_GATEWAY][3] = s_tg_env;
        o.env[MH_GATEWAY][4] = "MESH_TELEGRAM_BOT_TOKEN=123456:people-test-token";
        o.env[MH_GATEWAY][5] = "MESH_TELEGRAM_SECRET_TOKEN=people-test-secret";
    }
    s_mesh = mh_mesh_start(&o);
    if (!s_mesh)
        return -1;
    snprintf(s_conv, sizeof(s_conv), "people-%d", (int)getpid());
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = mh_mesh_teardown(&s_mesh);
    mh_proc_destroy(&s_stub);
    return rc;
}

/* The message of a transcript with field == value, or NULL. */
static const json_t *find_msg(const json_t *transcript, const char *field, const char *value)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(transcript, "messages"), i, m)
    {
        const char *v = mh_json_str(m, field);
        if (v && strcmp(v, value) == 0)
            return m;
    }
    return NULL;
}

static const json_t *queue_item(const json_t *q, const char *conv)
{
    size_t i;
    const json_t *it;
    json_array_foreach(json_object_get(q, "items"), i, it)
    {
        const char *c = mh_json_str(it, "conversation_id");
        if (c && strcmp(c, conv) == 0)
            return it;
    }
    return NULL;
}

/* ---- pure helpers ------------------------------------------------------- */

static void test_helpers(void **state)
{
    (void)state;
    static char names[GATEWAY_PEOPLE_KEYS_MAX][GATEWAY_PEOPLE_NAME_MAX + 1];
    static char keys[GATEWAY_PEOPLE_KEYS_MAX][GATEWAY_PEOPLE_KEY_MAX + 1];
    size_t n = 0, bad = 0;
    const char env[] = " a:0123456789abcdef , nocolon, b:short,,c: fedcba9876543210fedc ";
    assert_int_equal(gateway_people_keys_parse(env, strlen(env), ',', names, keys, &n, &bad), 0);
    assert_int_equal(n, 2);
    assert_int_equal(bad, 2); /* no colon; key under GATEWAY_PEOPLE_KEY_MIN */
    assert_string_equal(names[0], "a");
    assert_string_equal(keys[0], "0123456789abcdef");
    assert_string_equal(names[1], "c");
    assert_string_equal(keys[1], "fedcba9876543210fedc");
    assert_true(gateway_people_key_equal("abc", 3, "abc", 3));
    assert_false(gateway_people_key_equal("abc", 3, "abd", 3));
    assert_false(gateway_people_key_equal("abc", 3, "abc\0", 4));
    assert_false(gateway_people_key_equal("", 0, "a", 1));

    char out[GATEWAY_WEB_NAME_MAX + 1];
    assert_int_equal(gateway_web_path_map("/", 1, out, sizeof(out)), 1);
    assert_string_equal(out, "index.html");
    assert_int_equal(gateway_web_path_map("/console", 8, out, sizeof(out)), 1);
    assert_string_equal(out, "console.html");
    assert_int_equal(gateway_web_path_map("/web/js/chat.js", 15, out, sizeof(out)), 1);
    assert_string_equal(out, "js/chat.js");
    static const char *const refused[] = {
        "/web/../etc/passwd", "/web/a/../../x", "/web/.env", "/web//x",
        "/web/a%2e%2e",       "/web/",          "/web/a/"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(gateway_web_path_map(refused[i], strlen(refused[i]), out, sizeof(out)),
                         -1);
    assert_int_equal(gateway_web_path_map("/v1/models", 10, out, sizeof(out)), 0);
    assert_string_equal(gateway_web_content_type("a.css"), "text/css; charset=utf-8");
    assert_string_equal(gateway_web_content_type("x/b.js"), "text/javascript; charset=utf-8");
    assert_string_equal(gateway_web_content_type("noext"), "application/octet-stream");
}

/* ---- static pages ------------------------------------------------------- */

static void test_static(void **state)
{
    (void)state;
    char url[512];
    mh_http_resp_t r;
    snprintf(url, sizeof(url), "%s/", mh_mesh_url(s_mesh));
    memset(&r, 0, sizeof(r));
    assert_int_equal(mh_http_get(url, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<!doctype html>"));
    assert_non_null(strstr(r.body, "/web/chat.js"));
    mh_http_resp_clear(&r);
    snprintf(url, sizeof(url), "%s/console", mh_mesh_url(s_mesh));
    assert_int_equal(mh_http_get(url, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "/web/console.js"));
    mh_http_resp_clear(&r);
    /* Content type and caching headers, over a raw connection to see them. */
    char *raw = mh_stream_until(s_mesh, "/web/style.css", NULL, "\r\n\r\n", T_TIMEOUT_MS);
    assert_non_null(strstr(raw, "HTTP/1.1 200"));
    assert_non_null(strstr(raw, "Content-Type: text/css; charset=utf-8"));
    assert_non_null(strstr(raw, "Cache-Control: public, max-age=300"));
    free(raw);
    raw = mh_stream_until(s_mesh, "/", NULL, "\r\n\r\n", T_TIMEOUT_MS);
    assert_non_null(strstr(raw, "Content-Type: text/html; charset=utf-8"));
    assert_non_null(strstr(raw, "Cache-Control: no-cache"));
    assert_non_null(strstr(raw, "Content-Security-Policy: default-src 'self'"));
    free(raw);
    /* Traversal and unknown files: 404, nothing outside the directory. */
    raw = mh_stream_until(s_mesh, "/web/../CMakeLists.txt", NULL, "\r\n\r\n", T_TIMEOUT_MS);
    assert_non_null(strstr(raw, "HTTP/1.1 404"));
    free(raw);
    raw = mh_stream_until(s_mesh, "/web/%2e%2e/README.md", NULL, "\r\n\r\n", T_TIMEOUT_MS);
    assert_non_null(strstr(raw, "HTTP/1.1 404"));
    free(raw);
    snprintf(url, sizeof(url), "%s/web/nope.js", mh_mesh_url(s_mesh));
    assert_int_equal(mh_http_get(url, &r), 0);
    assert_int_equal(r.status, 404);
    mh_http_resp_clear(&r);
    snprintf(url, sizeof(url), "%s/console", mh_mesh_url(s_mesh));
    assert_int_equal(mh_http("POST", url, "{}", NULL, T_TIMEOUT_MS, &r), 0);
    assert_int_equal(r.status, 405);
    mh_http_resp_clear(&r);
}

/* ---- authentication ----------------------------------------------------- */

static void test_auth(void **state)
{
    (void)state;
    mh_http_resp_t r;
    mh_people_http(s_mesh, "GET", "/v1/handoff/queue", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(mh_json_error_code(r.json), "unauthorized");
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "GET", "/v1/handoff/queue", "wang-key-0123456789abcdeX", NULL, &r);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "GET", "/v1/handoff/queue", "abc", NULL,
                   &r); /* the file's too-short key: skipped */
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "GET", "/v1/handoff/queue", KEY_ZHAO, NULL, &r); /* from the file */
    assert_int_equal(r.status, 200);
    assert_true(json_is_array(json_object_get(r.json, "items")));
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "GET", "/v1/handoff/queue", KEY_LI, NULL, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    /* The key is never logged. */
    assert_int_equal(mh_log_count(mh_mesh_proc(s_mesh, MH_GATEWAY, 0), 0, "0123456789abcde"), 0);
    /* Every endpoint is guarded, including the stream. */
    mh_people_http(s_mesh, "POST", "/v1/handoff/x/claim", NULL, "{}", &r);
    assert_int_equal(r.status, 401);
    mh_http_resp_clear(&r);
    char *raw = mh_stream_until(s_mesh, "/v1/handoff/events", NULL, "\r\n\r\n", T_TIMEOUT_MS);
    assert_non_null(strstr(raw, "HTTP/1.1 401"));
    free(raw);
}

/* ---- the walk ----------------------------------------------------------- */

static void test_walk(void **state)
{
    (void)state;
    mh_http_resp_t r, t;
    char path[256];
    /* The customer reports an injury: claims_intake hands over (its own rule). */
    mh_turn(s_mesh, s_conv, "昨天下午三点在延安路口被追尾了，我们这边有人受伤了", NULL,
            "claims_intake", &r);
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    json_t *final_slots = json_incref(json_object_get(json_object_get(r.json, "state"), "slots"));
    assert_true(json_is_object(final_slots));
    assert_true(json_object_size(final_slots) > 0);
    mh_http_resp_clear(&r);

    mh_people_http(s_mesh, "GET", "/v1/handoff/queue", KEY_WANG, NULL, &r);
    assert_int_equal(r.status, 200);
    const json_t *it = queue_item(r.json, s_conv);
    assert_non_null(it);
    assert_string_equal(mh_json_str(it, "state"), "pending");
    assert_string_equal(mh_json_str(it, "agent"), "claims_intake");
    assert_non_null(strstr(mh_json_str(it, "reason"), "injur"));
    mh_http_resp_clear(&r);

    /* The console's queue stream shows it. */
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", KEY_WANG);
    char *raw = mh_stream_until(s_mesh, "/v1/handoff/events", auth, s_conv, T_TIMEOUT_MS);
    assert_non_null(strstr(raw, "text/event-stream"));
    assert_non_null(strstr(raw, "event: queue"));
    assert_non_null(strstr(raw, s_conv));
    free(raw);

    /* Unknown conversation: 404; bad id: 400; reply before a claim: 409. */
    mh_people_http(s_mesh, "POST", "/v1/handoff/no-such-conv-xyz/claim", KEY_WANG, NULL, &r);
    assert_int_equal(r.status, 404);
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "POST", "/v1/handoff/bad$id/claim", KEY_WANG, NULL, &r);
    assert_int_equal(r.status, 400);
    mh_http_resp_clear(&r);
    snprintf(path, sizeof(path), "/v1/handoff/%s/reply", s_conv);
    mh_people_http(s_mesh, "POST", path, KEY_WANG, "{\"text\":\"hello\"}", &r);
    assert_int_equal(r.status, 409);
    assert_string_equal(mh_json_error_code(r.json), "conflict");
    mh_http_resp_clear(&r);

    /* Claim: wang gets it, li conflicts. */
    snprintf(path, sizeof(path), "/v1/handoff/%s/claim", s_conv);
    mh_people_http(s_mesh, "POST", path, KEY_WANG, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(mh_json_str(r.json, "state"), "human");
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "POST", path, KEY_LI, NULL, &r);
    assert_int_equal(r.status, 409);
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "GET", path, KEY_WANG, NULL, &r); /* claim is POST only */
    assert_int_equal(r.status, 405);
    mh_http_resp_clear(&r);

    /* Reply: bad bodies refused; li is not the holder; wang's reply is recorded once. */
    snprintf(path, sizeof(path), "/v1/handoff/%s/reply", s_conv);
    mh_people_http(s_mesh, "POST", path, KEY_WANG, "{\"text\":\"\"}", &r);
    assert_int_equal(r.status, 400);
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "POST", path, KEY_WANG, "{\"text\":", &r);
    assert_int_equal(r.status, 400);
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "POST", path, KEY_LI, "{\"text\":\"x\",\"message_id\":\"l1\"}", &r);
    assert_int_equal(r.status, 409);
    mh_http_resp_clear(&r);
    static const char reply[] = "{\"text\":\"您好，我是理赔员小王，请问伤者情况如何？\","
                                "\"message_id\":\"w1\"}";
    mh_people_http(s_mesh, "POST", path, KEY_WANG, reply, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_false(json_object_get(r.json, "duplicate")));
    /* A web conversation: nothing to push, the page reads the events stream. */
    assert_string_equal(mh_json_str(json_object_get(r.json, "delivery"), "status"), "not_needed");
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "POST", path, KEY_WANG, reply, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    mh_http_resp_clear(&r);

    /* A note: internal. */
    snprintf(path, sizeof(path), "/v1/handoff/%s/note", s_conv);
    mh_people_http(s_mesh, "POST", path, KEY_WANG, "{\"text\":\"internal: called the customer\"}",
                   &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);

    /* The transcript: the reply (once), the note, the slots as the FINAL had them. */
    snprintf(path, sizeof(path), "/v1/handoff/%s", s_conv);
    mh_people_http(s_mesh, "GET", path, KEY_LI, NULL, &t);
    assert_int_equal(t.status, 200);
    const json_t *hm = find_msg(t.json, "message_id", "w1");
    assert_non_null(hm);
    assert_string_equal(mh_json_str(hm, "name"), "human");
    assert_string_equal(mh_json_str(hm, "person"), "wang");
    assert_true(json_integer_value(json_object_get(hm, "seq")) > 0);
    int humans = 0;
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(t.json, "messages"), i, m)
    {
        const char *nm = mh_json_str(m, "name");
        humans += nm && strcmp(nm, "human") == 0;
    }
    assert_int_equal(humans, 1);
    const json_t *note = find_msg(t.json, "text", "internal: called the customer");
    assert_non_null(note);
    assert_string_equal(mh_json_str(note, "role"), "note");
    assert_true(json_equal(json_object_get(t.json, "slots"), final_slots));
    assert_true(json_is_object(json_object_get(t.json, "records")));
    const json_t *ho = json_object_get(t.json, "handoff");
    assert_string_equal(mh_json_str(ho, "state"), "human");
    assert_string_equal(mh_json_str(ho, "person"), "wang");
    assert_true(json_integer_value(json_object_get(ho, "since")) > 0);
    assert_string_equal(mh_json_str(t.json, "agent"), "claims_intake");
    json_int_t reply_seq = json_integer_value(json_object_get(hm, "seq"));
    json_decref(final_slots);

    /* The customer's event stream: the reply arrives, the note never does. */
    snprintf(path, sizeof(path), "/v1/conversations/%s/events?after=%lld", s_conv,
             (long long)(reply_seq - 1));
    raw = mh_stream_until(s_mesh, path, NULL, "event: handoff", T_TIMEOUT_MS);
    assert_non_null(strstr(raw, "text/event-stream"));
    assert_non_null(strstr(raw, "event: message"));
    assert_non_null(strstr(raw, "理赔员小王"));
    assert_non_null(strstr(raw, "\"state\":\"human\""));
    assert_null(strstr(raw, "internal: called the customer"));
    free(raw);
    mh_http_resp_clear(&t);

    /* Release: only the holder; then the queue no longer has it. */
    snprintf(path, sizeof(path), "/v1/handoff/%s/release", s_conv);
    mh_people_http(s_mesh, "POST", path, KEY_LI, "{\"summary\":\"x\"}", &r);
    assert_int_equal(r.status, 409);
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "POST", path, KEY_WANG,
                   "{\"summary\":\"injury claim handled by phone\"}", &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "GET", "/v1/handoff/queue", KEY_WANG, NULL, &r);
    assert_null(queue_item(r.json, s_conv));
    mh_http_resp_clear(&r);
    snprintf(path, sizeof(path), "/v1/handoff/%s", s_conv);
    mh_people_http(s_mesh, "GET", path, KEY_WANG, NULL, &t);
    assert_string_equal(mh_json_str(json_object_get(t.json, "handoff"), "state"), "bot");
    assert_non_null(find_msg(t.json, "text", "injury claim handled by phone"));
    mh_http_resp_clear(&t);
    /* A second release: not held any more. */
    mh_people_http(s_mesh, "POST", path, KEY_WANG, NULL, &r);
    assert_int_equal(r.status, 405); /* GET-only path: the transcript */
    mh_http_resp_clear(&r);
    snprintf(path, sizeof(path), "/v1/handoff/%s/release", s_conv);
    mh_people_http(s_mesh, "POST", path, KEY_WANG, NULL, &r);
    assert_int_equal(r.status, 409);
    mh_http_resp_clear(&r);
}

/* ---- a reply reaches the customer's channel -------------------------- */

/* The stub's recorded sendMessage bodies containing needle (count). */
static int stub_sent(const char *needle)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_requests", s_stub_port);
    mh_http_resp_t r;
    memset(&r, 0, sizeof(r));
    if (mh_http("GET", url, NULL, NULL, T_TIMEOUT_MS, &r) != 0 || !json_is_array(r.json)) {
        mh_http_resp_clear(&r);
        return -1;
    }
    int n = 0;
    size_t i;
    const json_t *q;
    json_array_foreach(r.json, i, q)
    {
        const char *path = mh_json_str(q, "path"), *body = mh_json_str(q, "body");
        n += path && body && strstr(path, "/sendMessage") && strstr(body, needle) &&
             strstr(body, "\"chat_id\":4242");
    }
    mh_http_resp_clear(&r);
    return n;
}

static void test_reply_delivered(void **state)
{
    (void)state;
    if (!s_stub)
        skip(); /* mesh-channels-stub not built */
    static const char conv[] = "tg:4242";
    json_t *args = json_pack("{s:s, s:{s:i}}", "channel", "telegram", "to", "chat_id", 4242);
    mh_http_resp_t r;
    /* The conversation is bound to Telegram (what the webhook does), then asks for a person. */
    assert_int_equal(mh_mesh_call(s_mesh, "memory", "conv.bind", conv, args, T_TIMEOUT_MS, NULL),
                     0);
    json_decref(args);
    mh_turn(s_mesh, conv, "I had an accident, I want to talk to a human", NULL, "claims_intake",
            &r);
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "POST", "/v1/handoff/tg:4242/claim", KEY_WANG, NULL, &r);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    mh_people_http(s_mesh, "POST", "/v1/handoff/tg:4242/reply", KEY_WANG,
                   "{\"text\":\"Wang here, calling you now\",\"message_id\":\"tg-r1\"}", &r);
    assert_int_equal(r.status, 200);
    const json_t *d = json_object_get(r.json, "delivery");
    assert_string_equal(mh_json_str(d, "channel"), "telegram");
    assert_string_equal(mh_json_str(d, "status"), "queued");
    mh_http_resp_clear(&r);
    /* Exactly one sendMessage to chat 4242 with the person's text (bounded wait). */
    uint64_t deadline = mh_now_ms() + T_TIMEOUT_MS;
    while (stub_sent("Wang here, calling you now") < 1 && mh_now_ms() < deadline)
        poll(NULL, 0, 50); /* between polls of the condition (bounded by the deadline) */
    assert_int_equal(stub_sent("Wang here, calling you now"), 1);
    /* A retried reply (same message_id) is not sent twice. */
    mh_people_http(s_mesh, "POST", "/v1/handoff/tg:4242/reply", KEY_WANG,
                   "{\"text\":\"Wang here, calling you now\",\"message_id\":\"tg-r1\"}", &r);
    assert_string_equal(mh_json_str(json_object_get(r.json, "delivery"), "status"), "duplicate");
    mh_http_resp_clear(&r);
    assert_int_equal(stub_sent("Wang here, calling you now"), 1);
}

int main(void)
{
    if (mh_init("people_api") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_static),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_walk),
        cmocka_unit_test(test_reply_delivered),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
