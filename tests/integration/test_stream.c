/*
 * test_stream.c - token streaming end to end: POST
 * /v1/conversations/{id}/messages with "Accept: text/event-stream" through
 * the whole mesh (gateway -> router -> llm rules backend / tools / memory ->
 * Redis), read by a small SSE client that timestamps every event as it
 * arrives off the socket.
 *
 * The rules backend holds each model call for MESH_LLM_DELAY_MS, so the
 * stream's head arrives long before the first delta, and a client can leave
 * while the answer is still being produced.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"

#define DELAY_MS        400 /* MESH_LLM_DELAY_MS of this mesh */
#define STREAM_WAIT_MS  8000
#define CALL_TIMEOUT_MS 5000

/* ---- the mesh --------------------------------------------------------------- */

static mh_mesh_t *s_mesh;

static int group_setup(void **state)
{
    (void)state;
    static char delay[64];
    snprintf(delay, sizeof(delay), "MESH_LLM_DELAY_MS=%d", DELAY_MS);
    mh_mesh_opts_t o = {0};
    o.env[MH_LLM][0] = delay;
    o.env[MH_GATEWAY][0] = "MESH_SSE_HEARTBEAT_MS=100";
    s_mesh = mh_mesh_start(&o);
    return s_mesh ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

static void turn_path(char *out, size_t n, const char *conv)
{
    snprintf(out, n, "/v1/conversations/%s/messages", conv);
}

static const mh_sse_ev_t *find_event(const mh_sse_t *c, const char *name, int from)
{
    for (int i = from; i < c->n_ev; i++)
        if (strcmp(c->ev[i].event, name) == 0)
            return &c->ev[i];
    return NULL;
}

/* Deltas arrive as separate events before the final one, their text adds up to the
 * reply, the head comes before the model answered, and heartbeats fill the wait. */
static void test_stream_deltas_then_final(void **state)
{
    (void)state;
    char conv[64], path[128];
    snprintf(conv, sizeof(conv), "sse-a-%d", (int)getpid());
    turn_path(path, sizeof(path), conv);
    mh_sse_t c;
    mh_sse_open(&c, mh_mesh_http_port(s_mesh), path,
                "{\"text\": \"我的保单 P10023 保障什么？\", \"message_id\": \"s1\"}",
                "text/event-stream");
    mh_sse_run(&c, STREAM_WAIT_MS);
    assert_int_equal(c.status, 200);
    assert_non_null(strcasestr(c.head, "Content-Type: text/event-stream"));
    /* proxies must not buffer the stream, caches must not keep it (docs/operations.md) */
    assert_non_null(strcasestr(c.head, "X-Accel-Buffering: no"));
    assert_non_null(strcasestr(c.head, "Cache-Control: no-store"));
    assert_true(c.chunked);
    assert_true(c.done);

    /* the head is written at once, not when the answer is ready */
    assert_true(c.head_ms > 0);
    assert_true(c.head_ms - c.sent_ms < DELAY_MS);
    /* two model calls of DELAY_MS each (tool call, then the answer): pings meanwhile */
    assert_true(c.pings >= 2);

    int n_delta = 0, first_delta = -1;
    char *text = NULL;
    size_t text_len = 0;
    int final_at = -1;
    for (int i = 0; i < c.n_ev; i++) {
        if (strcmp(c.ev[i].event, "delta") == 0) {
            assert_int_equal(final_at, -1); /* never after the final */
            json_t *d = json_loads(c.ev[i].data, 0, NULL);
            assert_non_null(d);
            const char *t = mh_json_str(d, "text");
            assert_non_null(t);
            mh_buf_append(&text, &text_len, t, strlen(t));
            json_decref(d);
            if (first_delta < 0)
                first_delta = i;
            n_delta++;
        } else if (strcmp(c.ev[i].event, "final") == 0) {
            final_at = i;
        }
    }
    assert_true(n_delta >= 3);
    assert_true(final_at > first_delta);
    assert_int_equal(final_at, c.n_ev - 1); /* final is the last event */
    /* the first delta waited for two model calls */
    assert_true(c.ev[first_delta].at_ms - c.sent_ms >= 2 * DELAY_MS - 50);

    json_t *fin = json_loads(c.ev[final_at].data, 0, NULL);
    assert_non_null(fin);
    assert_string_equal(mh_json_str(fin, "conversation_id"), conv);
    assert_string_equal(mh_json_str(fin, "message_id"), "s1");
    assert_string_equal(mh_json_str(fin, "reply"), text);
    assert_true(mh_has_cjk(text));

    /* the tool activity: policy_qa looked the policy up */
    const mh_sse_ev_t *tool = find_event(&c, "tool", 0);
    assert_non_null(tool);
    json_t *tj = json_loads(tool->data, 0, NULL);
    assert_non_null(tj);
    assert_string_equal(mh_json_str(tj, "name"), "policy.lookup");
    json_decref(tj);
    assert_true(tool - c.ev < first_delta);

    /* the same answer as the non-streamed route gives for this message (stored) */
    mh_http_resp_t r;
    assert_int_equal(mh_post_message(s_mesh, conv, "我的保单 P10023 保障什么？", "s1", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(mh_json_str(r.json, "reply"), text);
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    mh_http_resp_clear(&r);
    json_decref(fin);
    free(text);
    mh_sse_close(&c);
}

/* A failed turn ends the stream with an error event. */
static void test_stream_error_event(void **state)
{
    (void)state;
    char conv[64], path[128];
    snprintf(conv, sizeof(conv), "sse-e-%d", (int)getpid());
    turn_path(path, sizeof(path), conv);
    mh_sse_t c;
    /* a deadline shorter than one model call: the turn times out */
    mh_sse_open_h(&c, mh_mesh_http_port(s_mesh), path, "{\"text\": \"P10023 保障什么？\"}",
                  "text/event-stream", "X-Mesh-Timeout-Ms: 100\r\n");
    mh_sse_run(&c, STREAM_WAIT_MS);
    assert_int_equal(c.status, 200);
    assert_true(c.done);
    assert_true(c.n_ev >= 1);
    const mh_sse_ev_t *e = &c.ev[c.n_ev - 1];
    assert_string_equal(e->event, "error");
    json_t *j = json_loads(e->data, 0, NULL);
    assert_non_null(j);
    assert_string_equal(mh_json_error_code(j), "deadline_exceeded");
    json_decref(j);
    assert_null(find_event(&c, "final", 0));
    mh_sse_close(&c);

    /* Without the Accept header the same request is an ordinary JSON error. */
    mh_http_resp_t r;
    const char *const h[] = {"X-Mesh-Timeout-Ms: 100", NULL};
    char url[256];
    snprintf(url, sizeof(url), "%s%s", mh_mesh_url(s_mesh), path);
    assert_int_equal(
        mh_http("POST", url, "{\"text\": \"P10023 保障什么？\"}", h, CALL_TIMEOUT_MS, &r), 0);
    assert_int_equal(r.status, 504);
    assert_string_equal(mh_json_error_code(r.json), "deadline_exceeded");
    mh_http_resp_clear(&r);
}

/* A client leaving mid-stream (here during the turn's tool call) cancels the
 * turn: the router hears the CANCEL, the services stay healthy, and the
 * conversation goes on with the next message. */
static void test_stream_client_disconnect(void **state)
{
    (void)state;
    char conv[64], path[128];
    snprintf(conv, sizeof(conv), "sse-d-%d", (int)getpid());
    turn_path(path, sizeof(path), conv);
    mh_proc_t *router = mh_mesh_proc(s_mesh, MH_ROUTER, 0);
    size_t rmark = mh_log_mark(router);

    mh_sse_t c;
    mh_sse_open(&c, mh_mesh_http_port(s_mesh), path,
                "{\"text\": \"P10023 的免赔额是多少？\", \"message_id\": \"d1\"}",
                "text/event-stream");
    uint64_t until = mh_now_ms() + STREAM_WAIT_MS;
    while (!find_event(&c, "tool", 0) && mh_now_ms() < until && mh_sse_pump(&c, 20)) {
    }
    assert_non_null(find_event(&c, "tool", 0));
    assert_null(find_event(&c, "final", 0));
    mh_sse_close(&c);

    /* The gateway sent CANCEL and the router handed it to the turn. */
    assert_true(
        mh_log_wait(router, rmark, "CANCEL from a client for agent request", STREAM_WAIT_MS));
    assert_true(mh_log_wait(router, rmark, "cancelled by the client", STREAM_WAIT_MS));

    /* The conversation is not stuck: the next turn runs. */
    mh_http_resp_t r;
    assert_int_equal(mh_post_message(s_mesh, conv, "P10023 的免赔额是多少？", "d2", &r), 0);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    /* Both user messages are in the log: nothing the customer said is lost. */
    assert_int_equal(mh_get_conversation(s_mesh, conv, &r), 0);
    assert_int_equal(r.status, 200);
    const json_t *msgs = json_object_get(r.json, "messages");
    int users = 0;
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const char *role = mh_json_str(json_array_get(msgs, i), "role");
        users += role && strcmp(role, "user") == 0;
    }
    assert_int_equal(users, 2);
    mh_http_resp_clear(&r);
    assert_true(mh_mesh_all_alive(s_mesh));
}

/* ---- a model that streams slowly: the openai backend against the stub ------------ */

#define SLOW_TOKENS   12
#define SLOW_TOKEN_MS 150

/* Write a stub script that streams SLOW_TOKENS content deltas SLOW_TOKEN_MS apart. */
static void write_slow_script(const char *dir)
{
    json_t *sse = json_array();
    json_array_append_new(sse,
                          json_pack("{s:s, s:s, s:i, s:s, s:[{s:i, s:{s:s, s:s}, s:n}]}", "id",
                                    "chatcmpl-slow", "object", "chat.completion.chunk", "created",
                                    1764374400, "model", "slow", "choices", "index", 0, "delta",
                                    "role", "assistant", "content", "", "finish_reason"));
    for (int i = 0; i < SLOW_TOKENS; i++) {
        char tok[32];
        snprintf(tok, sizeof(tok), "片段%d ", i);
        json_array_append_new(sse, json_pack("{s:s, s:s, s:i, s:s, s:[{s:i, s:{s:s}, s:n}]}", "id",
                                             "chatcmpl-slow", "object", "chat.completion.chunk",
                                             "created", 1764374400, "model", "slow", "choices",
                                             "index", 0, "delta", "content", tok, "finish_reason"));
    }
    json_array_append_new(sse, json_pack("{s:s, s:s, s:i, s:s, s:[{s:i, s:{}, s:s}]}", "id",
                                         "chatcmpl-slow", "object", "chat.completion.chunk",
                                         "created", 1764374400, "model", "slow", "choices", "index",
                                         0, "delta", "finish_reason", "stop"));
    json_array_append_new(sse, json_string("[DONE]"));
    json_t *script = json_pack("{s:[{s:[{s:i, s:o}]}]}", "steps", "attempts", "token_delay_ms",
                               SLOW_TOKEN_MS, "sse", sse);
    char path[MH_PATH_MAX];
    snprintf(path, sizeof(path), "%s/slow.json", dir);
    assert_int_equal(json_dump_file(script, path, JSON_INDENT(1)), 0);
    json_decref(script);
}

/* The client leaves after a few deltas of a slowly streamed answer: the router
 * cancels the model call and records what was already said, marked interrupted. */
static void test_stream_disconnect_records_interrupted(void **state)
{
    (void)state;
    char dir[MH_PATH_MAX], bin[MH_PATH_MAX], ports[16], tiers[256];
    snprintf(dir, sizeof(dir), "%s/slow-scripts", mh_tmpdir());
    assert_int_equal(mkdir(dir, 0700), 0);
    write_slow_script(dir);
    int port = mh_free_port();
    assert_true(port > 0);
    mh_bin("openai-stub", bin, sizeof(bin));
    snprintf(ports, sizeof(ports), "%d", port);
    char *argv[] = {bin, "--port", ports, "--scripts", dir, NULL};
    mh_proc_t *stub = mh_proc_spawn("openai-stub-slow", argv, NULL);
    assert_non_null(stub);
    assert_true(mh_log_wait(stub, 0, "listening on port", 5000));
    snprintf(tiers, sizeof(tiers), "MESH_LLM_TIERS=small=http://127.0.0.1:%d/v1|slow", port);
    mh_mesh_opts_t o = {0};
    o.env[MH_LLM][0] = "MESH_LLM_BACKEND=openai";
    o.env[MH_LLM][1] = tiers;
    o.env[MH_LLM][2] = "MESH_LLM_RETRIES=0";
    mh_mesh_t *m = mh_mesh_start(&o);
    assert_non_null(m);

    char conv[64], path[128];
    snprintf(conv, sizeof(conv), "sse-i-%d", (int)getpid());
    turn_path(path, sizeof(path), conv);
    mh_sse_t c;
    mh_sse_open(&c, mh_mesh_http_port(m), path, "{\"text\": \"讲个故事\", \"message_id\": \"i1\"}",
                "text/event-stream");
    /* three deltas, arriving one model token apart, then leave */
    uint64_t until = mh_now_ms() + STREAM_WAIT_MS;
    int n_delta = 0;
    while (n_delta < 3 && mh_now_ms() < until && mh_sse_pump(&c, 20)) {
        n_delta = 0;
        for (int i = 0; i < c.n_ev; i++)
            n_delta += strcmp(c.ev[i].event, "delta") == 0;
    }
    assert_int_equal(n_delta, 3);
    const mh_sse_ev_t *d0 = find_event(&c, "delta", 0);
    const mh_sse_ev_t *d1 = find_event(&c, "delta", (int)(d0 - c.ev) + 1);
    /* paced by the model, not batched by the mesh */
    assert_true(d1->at_ms - d0->at_ms >= SLOW_TOKEN_MS / 2);
    assert_null(find_event(&c, "final", 0));
    mh_sse_close(&c);

    /* the interrupted answer lands in the log: some of the text, not all of it */
    bool found = false;
    mh_http_resp_t r = {0};
    until = mh_now_ms() + STREAM_WAIT_MS;
    while (!found && mh_now_ms() < until) {
        mh_http_resp_clear(&r);
        assert_int_equal(mh_get_conversation(m, conv, &r), 0);
        const json_t *msgs = json_object_get(r.json, "messages");
        for (size_t i = 0; i < json_array_size(msgs); i++) {
            const json_t *msg = json_array_get(msgs, i);
            if (json_is_true(json_object_get(msg, "interrupted"))) {
                const char *text = mh_json_str(msg, "text");
                assert_string_equal(mh_json_str(msg, "role"), "assistant");
                assert_non_null(text);
                assert_non_null(strstr(text, "片段0 片段1 片段2 "));
                assert_null(strstr(text, "片段11"));
                found = true;
            }
        }
        if (!found)
            poll(NULL, 0, 20); /* bounded poll of a condition, not a synchronisation sleep */
    }
    if (!found)
        fail_msg("no interrupted answer in the log: %s", r.body ? r.body : "");
    mh_http_resp_clear(&r);
    assert_true(mh_mesh_all_alive(m));
    assert_int_equal(mh_mesh_stop(&m), 0);
    mh_proc_destroy(&stub);
}

int main(void)
{
    if (mh_init("test_stream") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_deltas_then_final),
        cmocka_unit_test(test_stream_error_event),
        cmocka_unit_test(test_stream_client_disconnect),
        cmocka_unit_test(test_stream_disconnect_records_interrupted),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
