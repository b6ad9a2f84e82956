/*
 * test_handoff_gate.c - the router's handoff gate through the whole mesh
 * over HTTP (gateway -> router -> memory/llm/tools -> Redis), rules backend.
 *
 * A person takes a conversation over by setting the state hash's "handoff"
 * field (here directly in Redis, as the memory handoff ops do): from then
 * on the bot stays silent (reply "", "handoff": <state>, no model or tool
 * step) while every customer message is still recorded in the log; when
 * the field is cleared the bot answers again.
 *
 * Then a mesh whose llm workers use the openai backend against a dead
 * endpoint: an agent with fallback_mode "handoff" (claims_intake) hands the
 * conversation to a person and answers with its fallback text (the next
 * message is gated), while an agent with fallback_mode "rules" (policy_qa)
 * is answered by the rules backend, both saying so in "fallback".
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis.h>

#include "mesh_harness.h"

static mh_mesh_t *s_mesh;

static int setup(void **state)
{
    (void)state;
    s_mesh = mh_mesh_start(NULL);
    return s_mesh ? 0 : -1;
}

/* The llm workers call a model endpoint where nothing listens. */
static int setup_dead_model(void **state)
{
    (void)state;
    static char tiers[256];
    int port = mh_free_port();
    if (port <= 0)
        return -1;
    snprintf(tiers, sizeof(tiers),
             "MESH_LLM_TIERS=small=http://127.0.0.1:%d/v1|m,large=http://127.0.0.1:%d/v1|m", port,
             port);
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    o.env[MH_LLM][0] = "MESH_LLM_BACKEND=openai";
    o.env[MH_LLM][1] = tiers;
    o.env[MH_LLM][2] = "MESH_LLM_RETRIES=0";
    o.env[MH_LLM][3] = "MESH_LLM_CONNECT_TIMEOUT_MS=500";
    s_mesh = mh_mesh_start(&o);
    return s_mesh ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

/* HSET / HDEL on the conversation's state hash in the mesh's Redis. */
static void state_hash(const char *conv, const char *field, const char *value)
{
    redisContext *c = redisConnect("127.0.0.1", mh_redis_port(mh_mesh_redis(s_mesh)));
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    char key[256];
    snprintf(key, sizeof(key), "mesh:{%s}:state", conv);
    redisReply *r = value ? redisCommand(c, "HSET %s %s %s", key, field, value)
                          : redisCommand(c, "HDEL %s %s", key, field);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    redisFree(c);
}

static void post_ok(const char *conv, const char *text, const char *mid, mh_http_resp_t *r)
{
    assert_int_equal(mh_post_message(s_mesh, conv, text, mid, r), 0);
    if (r->status != 200 || !r->json)
        fail_msg("turn %s on %s: status %ld, body %s %s", mid, conv, r->status,
                 r->body ? r->body : "", r->curl_err);
    assert_string_equal(mh_json_str(r->json, "message_id"), mid);
}

/* The conversation's stored log (GET /v1/conversations/{id}): messages and state. */
static void get_conv(const char *conv, mh_http_resp_t *r)
{
    assert_int_equal(mh_get_conversation(s_mesh, conv, r), 0);
    assert_int_equal(r->status, 200);
    assert_non_null(r->json);
}

/* The last message of the stored log. */
static json_t *last_message(const mh_http_resp_t *r)
{
    json_t *msgs = json_object_get(r->json, "messages");
    assert_true(json_array_size(msgs) > 0);
    return json_array_get(msgs, json_array_size(msgs) - 1);
}

static void assert_silent(const mh_http_resp_t *r, const char *handoff)
{
    assert_string_equal(mh_json_str(r->json, "reply"), "");
    assert_string_equal(mh_json_str(r->json, "handoff"), handoff);
    assert_int_equal(json_integer_value(json_object_get(r->json, "steps")), 0);
    assert_int_equal(json_array_size(json_object_get(r->json, "tool_calls")), 0);
    json_t *st = json_object_get(r->json, "state");
    assert_string_equal(mh_json_str(st, "handoff"), handoff);
}

static void test_gate_human_pending_release(void **state)
{
    (void)state;
    char conv[64];
    snprintf(conv, sizeof(conv), "conv-gate-%d", (int)getpid());
    mh_http_resp_t r;

    /* The bot answers while nobody holds the conversation. */
    post_ok(conv, "我的保单 P10023 保障什么？", "g-1", &r);
    assert_true(strlen(mh_json_str(r.json, "reply")) > 0);
    assert_null(json_object_get(r.json, "handoff"));
    assert_true(json_is_object(json_object_get(json_object_get(r.json, "state"), "slots")));
    assert_true(json_is_object(json_object_get(r.json, "usage")));
    assert_true(json_array_size(json_object_get(r.json, "tool_calls")) >= 1);
    mh_http_resp_clear(&r);

    /* A person holds it: the bot is silent, the message is in the log. */
    state_hash(conv, "handoff", "human");
    state_hash(conv, "handoff_reason", "customer asked for a person");
    post_ok(conv, "请问还在吗？我想和人工说话", "g-2", &r);
    assert_silent(&r, "human");
    assert_string_equal(mh_json_str(json_object_get(r.json, "state"), "handoff_reason"),
                        "customer asked for a person");
    mh_http_resp_clear(&r);
    get_conv(conv, &r);
    json_t *last = last_message(&r);
    assert_string_equal(mh_json_str(last, "role"), "user");
    assert_string_equal(mh_json_str(last, "text"), "请问还在吗？我想和人工说话");
    assert_string_equal(mh_json_str(json_object_get(r.json, "state"), "handoff"), "human");
    mh_http_resp_clear(&r);

    /* A retry of the gated message is a duplicate, still silent. */
    post_ok(conv, "请问还在吗？我想和人工说话", "g-2", &r);
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    assert_string_equal(mh_json_str(r.json, "reply"), "");
    mh_http_resp_clear(&r);

    /* Waiting for a person gates too. */
    state_hash(conv, "handoff", "pending");
    post_ok(conv, "my policy P10023: what is the deductible?", "g-3", &r);
    assert_silent(&r, "pending");
    mh_http_resp_clear(&r);
    get_conv(conv, &r);
    assert_string_equal(mh_json_str(last_message(&r), "text"),
                        "my policy P10023: what is the deductible?");
    mh_http_resp_clear(&r);

    /* Released: the bot answers again (and sees the gated messages in its history). */
    state_hash(conv, "handoff", NULL);
    post_ok(conv, "What is the deductible of policy P10023?", "g-4", &r);
    assert_true(strlen(mh_json_str(r.json, "reply")) > 0);
    assert_null(json_object_get(r.json, "handoff"));
    assert_true(json_integer_value(json_object_get(r.json, "steps")) >= 1);
    mh_http_resp_clear(&r);
    get_conv(conv, &r);
    last = last_message(&r);
    assert_string_equal(mh_json_str(last, "role"), "assistant");
    mh_http_resp_clear(&r);
}

static void test_fallback_modes(void **state)
{
    (void)state;
    char conv[64];
    snprintf(conv, sizeof(conv), "conv-fb-%d", (int)getpid());
    mh_http_resp_t r;
    /* fallback_mode "handoff": a person takes over, the customer is told so. */
    post_ok(conv, "我要报案，昨天下午在延安路追尾了", "f-1", &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "claims_intake");
    json_t *fb = json_object_get(r.json, "fallback");
    if (!json_is_object(fb))
        fail_msg("no fallback in %s", r.body);
    assert_string_equal(mh_json_str(fb, "mode"), "handoff");
    assert_non_null(strstr(mh_json_str(fb, "reason"), "model unavailable"));
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    const char *reply = mh_json_str(r.json, "reply");
    assert_true(reply && strlen(reply) > 0 && mh_has_cjk(reply));
    mh_http_resp_clear(&r);
    get_conv(conv, &r);
    json_t *st = json_object_get(r.json, "state");
    assert_string_equal(mh_json_str(st, "handoff"), "pending");
    assert_non_null(strstr(mh_json_str(st, "handoff_reason"), "model unavailable"));
    assert_non_null(mh_json_str(st, "handoff_at"));
    assert_string_equal(mh_json_str(last_message(&r), "role"), "assistant");
    mh_http_resp_clear(&r);
    /* From now on the gate holds: the bot is silent. */
    post_ok(conv, "车牌是沪A12345", "f-2", &r);
    assert_silent(&r, "pending");
    mh_http_resp_clear(&r);

    /* fallback_mode "rules": the rules backend answers, and says so. */
    snprintf(conv, sizeof(conv), "conv-fb-rules-%d", (int)getpid());
    post_ok(conv, "我的保单 P10023 保障什么？", "f-3", &r);
    assert_string_equal(mh_json_str(r.json, "agent"), "policy_qa");
    fb = json_object_get(r.json, "fallback");
    if (!json_is_object(fb))
        fail_msg("no fallback in %s", r.body);
    assert_string_equal(mh_json_str(fb, "backend"), "rules");
    assert_null(json_object_get(r.json, "handoff"));
    assert_true(strlen(mh_json_str(r.json, "reply")) > 0);
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("handoff_gate") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gate_human_pending_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback_modes, setup_dead_model, teardown),
    };
    return mh_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
