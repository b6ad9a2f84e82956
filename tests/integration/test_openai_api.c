/*
 * test_openai_api.c - the OpenAI-compatible front door through the whole mesh
 * (gateway -> router -> llm rules backend / tools / memory -> Redis):
 * POST /v1/chat/completions answered as a chat.completion, and streamed as
 * chat.completion.chunk events ending with [DONE] (usage chunk on request);
 * conversation ids from the header, from `user`, or fresh; retries answered
 * from the stored reply; errors in OpenAI's shape with their HTTP status;
 * GET /v1/models. Every response is parsed strictly: each documented key is
 * checked for presence and type, unknown top-level keys are refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"

#define DELAY_MS        150
#define STREAM_WAIT_MS  8000
#define CALL_TIMEOUT_MS 8000

/* ---- plain requests over the same raw client (headers are checked too) ----- */

typedef struct {
    int status;
    char *head;
    json_t *json;
} resp_t;

/* One request with Connection: close; the body is read to the end. */
static void http_req(int port, const char *method, const char *path, const char *headers,
                     const char *body, resp_t *out)
{
    mh_sse_t c;
    memset(&c, 0, sizeof(c));
    c.fd = mh_tcp_connect(port);
    char *req = NULL;
    int n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%sContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     method, path, body ? "Content-Type: application/json\r\n" : "",
                     headers ? headers : "", body ? strlen(body) : 0, body ? body : "");
    assert_int_equal(write(c.fd, req, (size_t)n), n);
    free(req);
    uint64_t until = mh_now_ms() + CALL_TIMEOUT_MS;
    while (!c.closed && mh_now_ms() < until)
        mh_sse_pump(&c, 50);
    assert_true(c.closed);
    assert_true(c.head_ms > 0);
    out->status = c.status;
    out->head = strdup(c.head);
    out->json = json_loads(c.body ? c.body : "", 0, NULL);
    if (!out->json)
        fail_msg("%s %s: body is not JSON: %s", method, path, c.body ? c.body : "");
    mh_sse_close(&c);
}

static void resp_clear(resp_t *r)
{
    free(r->head);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* Value of response header name (static buffer), or NULL. */
static const char *header(const char *head, const char *name)
{
    static char v[256];
    char want[128];
    snprintf(want, sizeof(want), "\r\n%s: ", name);
    const char *p = strcasestr(head, want);
    if (!p)
        return NULL;
    p += strlen(want);
    size_t n = strcspn(p, "\r");
    snprintf(v, sizeof(v), "%.*s", (int)n, p);
    return v;
}

/* Exactly these keys (NULL-terminated list), no others. */
static void assert_keys(const json_t *o, const char *const keys[])
{
    assert_true(json_is_object(o));
    size_t n = 0;
    for (; keys[n]; n++)
        if (!json_object_get(o, keys[n]))
            fail_msg("key %s missing", keys[n]);
    if (json_object_size(o) != n) {
        char *s = json_dumps(o, JSON_COMPACT);
        fail_msg("unexpected keys in %s", s);
    }
}

static void assert_oai_error(const resp_t *r, int status, const char *type, const char *code)
{
    if (r->status != status)
        fail_msg("status %d, want %d", r->status, status);
    static const char *const top[] = {"error", NULL};
    assert_keys(r->json, top);
    const json_t *e = json_object_get(r->json, "error");
    static const char *const keys[] = {"message", "type", "param", "code", NULL};
    assert_keys(e, keys);
    assert_true(json_is_string(json_object_get(e, "message")));
    assert_true(strlen(mh_json_str(e, "message")) > 0);
    assert_string_equal(mh_json_str(e, "type"), type);
    assert_true(json_is_string(json_object_get(e, "param")) ||
                json_is_null(json_object_get(e, "param")));
    if (code)
        assert_string_equal(mh_json_str(e, "code"), code);
}

/* A chat.completion, strictly; returns the content (borrowed). */
static const char *assert_completion(const json_t *j, const char *model)
{
    static const char *const top[] = {"id", "object", "created", "model", "choices", "usage", NULL};
    assert_keys(j, top);
    assert_int_equal(strncmp(mh_json_str(j, "id"), "chatcmpl-", 9), 0);
    assert_string_equal(mh_json_str(j, "object"), "chat.completion");
    assert_true(json_is_integer(json_object_get(j, "created")));
    assert_true(json_integer_value(json_object_get(j, "created")) > 1700000000);
    assert_string_equal(mh_json_str(j, "model"), model);
    const json_t *choices = json_object_get(j, "choices");
    assert_true(json_is_array(choices));
    assert_int_equal(json_array_size(choices), 1);
    const json_t *ch = json_array_get(choices, 0);
    static const char *const ck[] = {"index", "message", "finish_reason", NULL};
    assert_keys(ch, ck);
    assert_int_equal(json_integer_value(json_object_get(ch, "index")), 0);
    assert_string_equal(mh_json_str(ch, "finish_reason"), "stop");
    const json_t *msg = json_object_get(ch, "message");
    static const char *const mk[] = {"role", "content", NULL};
    assert_keys(msg, mk);
    assert_string_equal(mh_json_str(msg, "role"), "assistant");
    const json_t *u = json_object_get(j, "usage");
    static const char *const uk[] = {"prompt_tokens", "completion_tokens", "total_tokens", NULL};
    assert_keys(u, uk);
    json_int_t p = json_integer_value(json_object_get(u, "prompt_tokens"));
    json_int_t c = json_integer_value(json_object_get(u, "completion_tokens"));
    assert_true(p > 0 && c > 0);
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), p + c);
    const char *content = mh_json_str(msg, "content");
    assert_non_null(content);
    return content;
}

/* ---- the mesh --------------------------------------------------------------- */

static mh_mesh_t *s_mesh;
static int s_port;
static char s_gw_data[MH_PATH_MAX]; /* the gateway's own MESH_DATA_DIR (a copy) */

static int group_setup(void **state)
{
    (void)state;
    static char delay[64], gw_data_env[MH_PATH_MAX + 32];
    snprintf(delay, sizeof(delay), "MESH_LLM_DELAY_MS=%d", DELAY_MS);
    /* The gateway reads agents from a copy, so the reload test can add one. */
    const char *data = getenv("MESH_DATA_DIR");
    char cmd[3 * MH_PATH_MAX];
    snprintf(s_gw_data, sizeof(s_gw_data), "%s/gw-data", mh_tmpdir());
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -r '%s/agents' '%s/'", s_gw_data,
             data ? data : "data", s_gw_data);
    if (system(cmd) != 0)
        return -1;
    snprintf(gw_data_env, sizeof(gw_data_env), "MESH_DATA_DIR=%s", s_gw_data);
    mh_mesh_opts_t o = {0};
    o.env[MH_LLM][0] = delay;
    o.env[MH_GATEWAY][0] = gw_data_env;
    s_mesh = mh_mesh_start(&o);
    if (!s_mesh)
        return -1;
    s_port = mh_mesh_http_port(s_mesh);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

#define Q_ZH "我的保单 P10023 保障什么？"

static char *chat_body(const char *model, const char *user, bool stream, bool usage)
{
    json_t *b = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "model", model, "messages", "role",
                          "system", "content", "You are helpful.", "role", "user", "content", Q_ZH);
    if (user)
        json_object_set_new(b, "user", json_string(user));
    if (stream)
        json_object_set_new(b, "stream", json_true());
    if (usage)
        json_object_set_new(b, "stream_options", json_pack("{s:b}", "include_usage", 1));
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

static int count_role(const mh_mesh_t *m, const char *conv, const char *role)
{
    mh_http_resp_t r;
    assert_int_equal(mh_get_conversation(m, conv, &r), 0);
    assert_int_equal(r.status, 200);
    const json_t *msgs = json_object_get(r.json, "messages");
    int n = 0;
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const char *ro = mh_json_str(json_array_get(msgs, i), "role");
        n += ro && strcmp(ro, role) == 0;
    }
    mh_http_resp_clear(&r);
    return n;
}

static char s_reply[8192]; /* the non-streamed answer, for the streamed test */

static void test_completion_header_conv(void **state)
{
    (void)state;
    char conv[64], hdr[128];
    snprintf(conv, sizeof(conv), "oa-h-%d", (int)getpid());
    snprintf(hdr, sizeof(hdr), "X-Mesh-Conversation-Id: %s\r\n", conv);
    char *body = chat_body("policy_qa", "ignored-when-header", false, false);
    resp_t r;
    http_req(s_port, "POST", "/v1/chat/completions", hdr, body, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(r.head, "X-Mesh-Conversation-Id"), conv);
    const char *content = assert_completion(r.json, "policy_qa");
    assert_true(mh_has_cjk(content));
    assert_non_null(strstr(content, "P10023"));
    snprintf(s_reply, sizeof(s_reply), "%s", content);
    char id1[128];
    snprintf(id1, sizeof(id1), "%s", mh_json_str(r.json, "id"));
    resp_clear(&r);
    assert_int_equal(count_role(s_mesh, conv, "user"), 1);

    /* The same request again (a client retry): the stored answer, nothing run twice. */
    http_req(s_port, "POST", "/v1/chat/completions", hdr, body, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(assert_completion(r.json, "policy_qa"), s_reply);
    assert_string_equal(mh_json_str(r.json, "id"), id1);
    resp_clear(&r);
    assert_int_equal(count_role(s_mesh, conv, "user"), 1);

    /* An explicit message id makes it a new message. */
    char hdr2[256];
    snprintf(hdr2, sizeof(hdr2), "%sX-Mesh-Message-Id: m-explicit\r\n", hdr);
    http_req(s_port, "POST", "/v1/chat/completions", hdr2, body, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(mh_json_str(r.json, "id"), "chatcmpl-m-explicit");
    resp_clear(&r);
    assert_int_equal(count_role(s_mesh, conv, "user"), 2);
    free(body);
}

static void test_completion_user_and_fresh_conv(void **state)
{
    (void)state;
    char user[64];
    snprintf(user, sizeof(user), "cust-%d", (int)getpid());
    char *body = chat_body("policy_qa", user, false, false);
    resp_t r;
    http_req(s_port, "POST", "/v1/chat/completions", NULL, body, &r);
    free(body);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(r.head, "X-Mesh-Conversation-Id"), user);
    assert_completion(r.json, "policy_qa");
    resp_clear(&r);
    assert_int_equal(count_role(s_mesh, user, "user"), 1);

    /* neither header nor user: a fresh conversation, named in the response header */
    body = chat_body("policy_qa", NULL, false, false);
    http_req(s_port, "POST", "/v1/chat/completions", NULL, body, &r);
    free(body);
    assert_int_equal(r.status, 200);
    char conv[160];
    const char *h = header(r.head, "X-Mesh-Conversation-Id");
    assert_non_null(h);
    snprintf(conv, sizeof(conv), "%s", h);
    assert_int_equal(strncmp(conv, "oa-", 3), 0);
    resp_clear(&r);
    assert_int_equal(count_role(s_mesh, conv, "user"), 1);
}

static void test_completion_streamed(void **state)
{
    (void)state;
    assert_true(s_reply[0] != '\0'); /* test_completion_header_conv ran */
    char conv[64], hdr[128], path[] = "/v1/chat/completions";
    snprintf(conv, sizeof(conv), "oa-s-%d", (int)getpid());
    snprintf(hdr, sizeof(hdr), "X-Mesh-Conversation-Id: %s\r\n", conv);
    char *body = chat_body("policy_qa", NULL, true, true);
    mh_sse_t c;
    mh_sse_open_h(&c, s_port, path, body, "*/*", hdr);
    free(body);
    mh_sse_run(&c, STREAM_WAIT_MS);
    assert_int_equal(c.status, 200);
    assert_non_null(strcasestr(c.head, "Content-Type: text/event-stream"));
    assert_string_equal(header(c.head, "X-Mesh-Conversation-Id"), conv);
    assert_true(c.done);
    assert_true(c.n_ev >= 5);

    /* data-only events; the last one is [DONE] */
    for (int i = 0; i < c.n_ev; i++)
        assert_string_equal(c.ev[i].event, "");
    assert_string_equal(c.ev[c.n_ev - 1].data, "[DONE]");

    char id[128] = "";
    char *text = NULL;
    size_t text_len = 0;
    int content_chunks = 0, stop_at = -1, usage_at = -1;
    for (int i = 0; i < c.n_ev - 1; i++) {
        json_t *j = json_loads(c.ev[i].data, 0, NULL);
        if (!j)
            fail_msg("event %d is not JSON: %s", i, c.ev[i].data);
        assert_string_equal(mh_json_str(j, "object"), "chat.completion.chunk");
        assert_string_equal(mh_json_str(j, "model"), "policy_qa");
        assert_true(json_is_integer(json_object_get(j, "created")));
        if (!id[0])
            snprintf(id, sizeof(id), "%s", mh_json_str(j, "id"));
        assert_string_equal(mh_json_str(j, "id"), id); /* one id for the whole stream */
        const json_t *choices = json_object_get(j, "choices");
        assert_true(json_is_array(choices));
        if (json_array_size(choices) == 0) {
            /* the usage chunk: after the finish, before [DONE] */
            usage_at = i;
            const json_t *u = json_object_get(j, "usage");
            json_int_t p = json_integer_value(json_object_get(u, "prompt_tokens"));
            json_int_t cc = json_integer_value(json_object_get(u, "completion_tokens"));
            assert_true(p > 0 && cc > 0);
            assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), p + cc);
            json_decref(j);
            continue;
        }
        assert_int_equal(json_array_size(choices), 1);
        const json_t *ch = json_array_get(choices, 0);
        assert_int_equal(json_integer_value(json_object_get(ch, "index")), 0);
        const json_t *delta = json_object_get(ch, "delta");
        assert_true(json_is_object(delta));
        const json_t *fr = json_object_get(ch, "finish_reason");
        if (json_is_string(fr)) {
            assert_string_equal(json_string_value(fr), "stop");
            assert_int_equal(json_object_size(delta), 0);
            stop_at = i;
        } else {
            assert_true(json_is_null(fr));
            assert_int_equal(stop_at, -1);
            if (content_chunks == 0)
                assert_string_equal(mh_json_str(delta, "role"), "assistant");
            const char *t = mh_json_str(delta, "content");
            assert_non_null(t);
            mh_buf_append(&text, &text_len, t, strlen(t));
            content_chunks++;
        }
        json_decref(j);
    }
    assert_true(content_chunks >= 3); /* streamed in pieces, not one blob */
    assert_int_equal(stop_at, c.n_ev - 3);
    assert_int_equal(usage_at, c.n_ev - 2);
    assert_int_equal(strncmp(id, "chatcmpl-", 9), 0);
    /* the same question gets the same (deterministic) answer as unstreamed */
    assert_string_equal(text, s_reply);
    free(text);
    mh_sse_close(&c);

    /* without include_usage there is no usage chunk */
    body = chat_body("policy_qa", NULL, true, false);
    mh_sse_open_h(&c, s_port, path, body, "text/event-stream", "");
    free(body);
    mh_sse_run(&c, STREAM_WAIT_MS);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.ev[c.n_ev - 1].data, "[DONE]");
    for (int i = 0; i < c.n_ev - 1; i++)
        assert_null(strstr(c.ev[i].data, "\"usage\""));
    mh_sse_close(&c);
}

static void test_errors(void **state)
{
    (void)state;
    resp_t r;
    http_req(s_port, "POST", "/v1/chat/completions", NULL, "{\"model\": ", &r);
    assert_oai_error(&r, 400, "invalid_request_error", "invalid_json");
    resp_clear(&r);

    http_req(s_port, "POST", "/v1/chat/completions", NULL, "{\"model\": \"policy_qa\"}", &r);
    assert_oai_error(&r, 400, "invalid_request_error", NULL);
    assert_string_equal(mh_json_str(json_object_get(r.json, "error"), "param"), "messages");
    resp_clear(&r);

    http_req(s_port, "POST", "/v1/chat/completions", NULL,
             "{\"model\": \"policy_qa\", \"messages\": \"hi\"}", &r);
    assert_oai_error(&r, 400, "invalid_request_error", NULL);
    resp_clear(&r);

    char *body = chat_body("gpt-4o", NULL, false, false);
    http_req(s_port, "POST", "/v1/chat/completions", NULL, body, &r);
    assert_oai_error(&r, 404, "invalid_request_error", "model_not_found");
    assert_string_equal(mh_json_str(json_object_get(r.json, "error"), "param"), "model");
    resp_clear(&r);
    free(body);

    /* a deadline shorter than the model: 504 */
    body = chat_body("policy_qa", NULL, false, false);
    http_req(s_port, "POST", "/v1/chat/completions", "X-Mesh-Timeout-Ms: 50\r\n", body, &r);
    assert_oai_error(&r, 504, "server_error", "timeout");
    resp_clear(&r);
    http_req(s_port, "POST", "/v1/chat/completions", "X-Mesh-Conversation-Id: bad id!\r\n", body,
             &r);
    assert_oai_error(&r, 400, "invalid_request_error", "invalid_conversation_id");
    resp_clear(&r);
    free(body);

    /* wrong method */
    http_req(s_port, "GET", "/v1/chat/completions", NULL, NULL, &r);
    assert_int_equal(r.status, 405);
    resp_clear(&r);
}

static void test_models(void **state)
{
    (void)state;
    resp_t r;
    http_req(s_port, "GET", "/v1/models", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    static const char *const top[] = {"object", "data", NULL};
    assert_keys(r.json, top);
    assert_string_equal(mh_json_str(r.json, "object"), "list");
    const json_t *data = json_object_get(r.json, "data");
    assert_true(json_array_size(data) >= 1);
    bool policy_qa = false;
    for (size_t i = 0; i < json_array_size(data); i++) {
        const json_t *m = json_array_get(data, i);
        static const char *const mk[] = {"id",       "object",      "created",
                                         "owned_by", "description", NULL};
        assert_keys(m, mk);
        assert_string_equal(mh_json_str(m, "object"), "model");
        assert_true(json_is_integer(json_object_get(m, "created")));
        assert_true(json_is_string(json_object_get(m, "owned_by")));
        if (strcmp(mh_json_str(m, "id"), "policy_qa") == 0) {
            policy_qa = true;
            assert_non_null(strcasestr(mh_json_str(m, "description"), "policy"));
        }
    }
    assert_true(policy_qa);
    resp_clear(&r);
    http_req(s_port, "POST", "/v1/models", NULL, "{}", &r);
    assert_int_equal(r.status, 405);
    resp_clear(&r);
}

static bool lists_model(const char *id)
{
    resp_t r;
    http_req(s_port, "GET", "/v1/models", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    bool found = false;
    const json_t *data = json_object_get(r.json, "data");
    for (size_t i = 0; i < json_array_size(data); i++)
        found |= strcmp(mh_json_str(json_array_get(data, i), "id"), id) == 0;
    resp_clear(&r);
    return found;
}

/* SIGHUP re-reads the agents; a broken file is skipped, the rest still listed. */
static void test_models_reload(void **state)
{
    (void)state;
    assert_false(lists_model("night_shift"));
    char path[MH_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/agents/night_shift.json", s_gw_data);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"name\": \"night_shift\", \"description\": \"answers at night\"}", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/agents/broken.json", s_gw_data);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"name\": ", f);
    fclose(f);
    mh_proc_t *gw = mh_mesh_proc(s_mesh, MH_GATEWAY, 0);
    size_t mark = mh_log_mark(gw);
    assert_int_equal(mh_proc_signal(gw, SIGHUP), 0);
    assert_true(mh_log_wait(gw, mark, "agent(s) in the catalogue", 5000));
    assert_true(mh_log_wait(gw, mark, "broken.json skipped", 100));
    assert_true(lists_model("night_shift"));
    assert_true(lists_model("policy_qa"));
    assert_true(mh_proc_alive(gw));
}

int main(void)
{
    if (mh_init("test_openai_api") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_header_conv),
        cmocka_unit_test(test_completion_user_and_fresh_conv),
        cmocka_unit_test(test_completion_streamed),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_models_reload),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
