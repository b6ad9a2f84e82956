/*
 * test_memory_claims.c - op tool.call on the memory service: claim.register
 * and claim.get (services/memory/memory_claims.c) against a real
 * redis-server, driven through memory_ops_call on a bare uv loop.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "memory_claims.h"
#include "mesh/mesh_log.h"
#include "test_memory_fixture.h"

#define REG_ARGS(policy)                                                                           \
    "{\"name\":\"claim.register\",\"call_id\":\"call-1\",\"arguments\":{\"policy_no\":\"" policy   \
    "\",\"kind\":\"motor\",\"facts\":{\"accident_time\":\"2026-11-28 15:00\","                     \
    "\"place\":\"延安路\",\"injuries\":false,\"damage_cny\":3500},"                             \
    "\"summary\":\"昨天下午三点在延安路追尾，对方全责，车灯坏了，没人受伤\"}}"

/* Today's UTC date as yyyymmdd (what the claim number carries). */
static void today(char out[9])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 9, "%Y%m%d", &tm);
}

static bool matches(const char *re, const char *s)
{
    regex_t rx;
    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

static const json_t *result_of(const json_t *data)
{
    assert_true(json_is_true(json_object_get(data, "ok")));
    const json_t *r = json_object_get(data, "result");
    assert_true(json_is_object(r));
    return r;
}

static const char *error_code(const json_t *data)
{
    assert_true(json_is_false(json_object_get(data, "ok")));
    return tf_str(json_object_get(data, "error"), "code");
}

static const char *error_message(const json_t *data)
{
    return tf_str(json_object_get(data, "error"), "message");
}

/* Same conversation + policy -> the first claim (created false); another conversation or
 * another policy -> a new number. */
static void test_register_idempotent(void **state)
{
    tf_t *fx = *state;
    tf_res_t a, b, c, d;
    uint64_t t0 = (uint64_t)time(NULL) * 1000u;
    const json_t *ra = result_of(tf_ok(fx, &a, "tool.call", "conv-a", "acme", REG_ARGS("P10023")));
    char date[9], re[64];
    today(date);
    snprintf(re, sizeof re, "^CLM%s[0-9]{6}$", date);
    const char *no = tf_str(ra, "claim_no");
    assert_true(matches(re, no));
    assert_true(json_is_true(json_object_get(ra, "created")));
    assert_string_equal(tf_str(ra, "status"), "registered");
    assert_string_equal(tf_str(ra, "policy_no"), "P10023");
    assert_string_equal(tf_str(ra, "kind"), "motor");
    json_int_t at = json_integer_value(json_object_get(ra, "registered_at"));
    assert_true((uint64_t)at >= t0 && (uint64_t)at < t0 + 60000u);

    /* The retried call: same number, created false, same registration time. */
    const json_t *rb = result_of(tf_ok(fx, &b, "tool.call", "conv-a", "acme", REG_ARGS("P10023")));
    assert_string_equal(tf_str(rb, "claim_no"), no);
    assert_true(json_is_false(json_object_get(rb, "created")));
    assert_int_equal(json_integer_value(json_object_get(rb, "registered_at")), at);

    /* Another conversation, same policy: a second claim. */
    const json_t *rc = result_of(tf_ok(fx, &c, "tool.call", "conv-b", "acme", REG_ARGS("P10023")));
    assert_true(json_is_true(json_object_get(rc, "created")));
    assert_string_not_equal(tf_str(rc, "claim_no"), no);
    assert_true(matches(re, tf_str(rc, "claim_no")));
    /* Same conversation, another policy: also a new claim. */
    const json_t *rd = result_of(tf_ok(fx, &d, "tool.call", "conv-a", "acme", REG_ARGS("P10024")));
    assert_true(json_is_true(json_object_get(rd, "created")));
    assert_string_not_equal(tf_str(rd, "claim_no"), no);
    assert_string_not_equal(tf_str(rd, "claim_no"), tf_str(rc, "claim_no"));

    assert_int_equal(tf_int(fx, "HLEN mesh:{claims}:records"), 3);
    assert_int_equal(tf_int(fx, "HLEN mesh:{claims}:idem"), 3);
    redisReply *idem = tf_cmd(fx, "HGET mesh:{claims}:idem conv-a|P10023");
    assert_int_equal(idem->type, REDIS_REPLY_STRING);
    assert_string_equal(idem->str, no);
    freeReplyObject(idem);
    /* No TTL: a claim is a record, not a cache. */
    assert_int_equal(tf_int(fx, "TTL mesh:{claims}:records"), -1);
    tf_res_clear(&a);
    tf_res_clear(&b);
    tf_res_clear(&c);
    tf_res_clear(&d);
}

/* The sequence: six digits at least, more after the millionth; taken numbers are skipped. */
static void test_sequence_format(void **state)
{
    tf_t *fx = *state;
    char date[9], taken[32], want[32];
    today(date);
    snprintf(taken, sizeof taken, "CLM%s000005", date);
    freeReplyObject(tf_cmd(fx, "SET mesh:{claims}:seq 4"));
    freeReplyObject(
        tf_cmd(fx, "HSET mesh:{claims}:records %s {\"claim_no\":\"%s\"}", taken, taken));
    tf_res_t r;
    snprintf(want, sizeof want, "CLM%s000006", date);
    assert_string_equal(
        tf_str(result_of(tf_ok(fx, &r, "tool.call", "cs1", NULL, REG_ARGS("P10023"))), "claim_no"),
        want);
    tf_res_clear(&r);

    freeReplyObject(tf_cmd(fx, "SET mesh:{claims}:seq 999999"));
    snprintf(want, sizeof want, "CLM%s1000000", date);
    assert_string_equal(
        tf_str(result_of(tf_ok(fx, &r, "tool.call", "cs2", NULL, REG_ARGS("P10023"))), "claim_no"),
        want);
    tf_res_clear(&r);
}

/* claim.get returns the whole stored record; an unknown number is not_found. */
static void test_get(void **state)
{
    tf_t *fx = *state;
    tf_res_t r, g;
    const json_t *reg = result_of(tf_ok(fx, &r, "tool.call", "conv-g", "acme", REG_ARGS("P10023")));
    char args[256];
    snprintf(args, sizeof args, "{\"name\":\"claim.get\",\"arguments\":{\"claim_no\":\"%s\"}}",
             tf_str(reg, "claim_no"));
    /* Another tenant does not see it. */
    tf_ok(fx, &g, "tool.call", NULL, "other", args);
    assert_string_equal(error_code(g.data), "not_found");
    tf_res_clear(&g);
    /* No conversation needed (the gateway asks without one). */
    const json_t *rec = result_of(tf_ok(fx, &g, "tool.call", NULL, "acme", args));
    assert_string_equal(tf_str(rec, "claim_no"), tf_str(reg, "claim_no"));
    assert_string_equal(tf_str(rec, "conversation_id"), "conv-g");
    assert_string_equal(tf_str(rec, "tenant"), "acme");
    assert_string_equal(tf_str(rec, "policy_no"), "P10023");
    assert_string_equal(tf_str(rec, "kind"), "motor");
    assert_string_equal(tf_str(rec, "status"), "registered");
    assert_string_equal(tf_str(rec, "summary"),
                        "昨天下午三点在延安路追尾，对方全责，车灯坏了，没人受伤");
    const json_t *facts = json_object_get(rec, "facts");
    assert_string_equal(tf_str(facts, "place"), "延安路");
    assert_true(json_is_false(json_object_get(facts, "injuries")));
    assert_int_equal(json_integer_value(json_object_get(facts, "damage_cny")), 3500);
    assert_int_equal(json_integer_value(json_object_get(rec, "registered_at")),
                     json_integer_value(json_object_get(reg, "registered_at")));
    tf_res_clear(&g);

    tf_ok(fx, &g, "tool.call", NULL, NULL,
          "{\"name\":\"claim.get\",\"arguments\":{\"claim_no\":\"CLM20260101999999\"}}");
    assert_string_equal(error_code(g.data), "not_found");
    assert_false(g.sync); /* decided by Redis */
    tf_res_clear(&g);
    tf_res_clear(&r);
}

typedef struct {
    const char *conv;
    const char *args;
    int status;          /* 0: a tool outcome */
    const char *code;    /* tool error code when status is 0 */
    const char *err_has; /* in the message (tool error or err) */
} bad_t;

static void test_invalid(void **state)
{
    tf_t *fx = *state;
    static const bad_t cases[] = {
        {"cv",
         "{\"name\":\"claim.register\",\"arguments\":{\"kind\":\"motor\",\"facts\":{},"
         "\"summary\":\"s\"}}",
         0, "invalid_tool_arguments", "policy_no"},
        {"cv",
         "{\"name\":\"claim.register\",\"arguments\":{\"policy_no\":\"X1\",\"kind\":\"motor\","
         "\"facts\":{},\"summary\":\"s\"}}",
         0, "invalid_tool_arguments", "policy_no"},
        {"cv",
         "{\"name\":\"claim.register\",\"arguments\":{\"policy_no\":\"P10023\",\"kind\":"
         "\"boat\",\"facts\":{},\"summary\":\"s\"}}",
         0, "invalid_tool_arguments", "kind"},
        {"cv",
         "{\"name\":\"claim.register\",\"arguments\":{\"policy_no\":\"P10023\",\"kind\":"
         "\"motor\",\"facts\":[],\"summary\":\"s\"}}",
         0, "invalid_tool_arguments", "facts"},
        {"cv",
         "{\"name\":\"claim.register\",\"arguments\":{\"policy_no\":\"P10023\",\"kind\":"
         "\"motor\",\"facts\":{},\"summary\":\"\"}}",
         0, "invalid_tool_arguments", "summary"},
        {"cv",
         "{\"name\":\"claim.register\",\"arguments\":{\"policy_no\":\"P10023\",\"kind\":"
         "\"motor\",\"facts\":{},\"summary\":\"s\",\"extra\":1}}",
         0, "invalid_tool_arguments", "extra"},
        {"cv", "{\"name\":\"claim.get\",\"arguments\":{\"claim_no\":\"CLM1\"}}", 0,
         "invalid_tool_arguments", "claim_no"},
        {"cv", "{\"name\":\"claim.get\"}", 0, "invalid_tool_arguments", "claim_no"},
        {"cv", "{\"name\":\"claim.delete\",\"arguments\":{}}", 0, "unknown_tool", "claim.delete"},
        /* No conversation: the idempotency key cannot be formed. */
        {NULL, REG_ARGS("P10023"), 0, "tool_failed", "conv"},
        /* Malformed requests: status EPROTO, as the tools service. */
        {"cv", "{\"arguments\":{}}", MESH_EPROTO, NULL, "name"},
        {"cv", "{\"name\":\"\"}", MESH_EPROTO, NULL, "name"},
        {"cv", "{\"name\":\"claim.get\",\"arguments\":[1]}", MESH_EPROTO, NULL, "arguments"},
        {"cv", "{\"name\":\"claim.get\",\"arguments\":{},\"call_id\":7}", MESH_EPROTO, NULL,
         "call_id"},
        {"cv", "[1]", MESH_EPROTO, NULL, "args"},
        {"bad{conv}", REG_ARGS("P10023"), MESH_EPROTO, NULL, "conv"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tf_res_t r;
        tf_call(fx, &r, "tool.call", cases[i].conv, NULL, cases[i].args);
        if (r.status != cases[i].status)
            fail_msg("case %zu: status %d, want %d (%s)", i, r.status, cases[i].status, r.err);
        assert_true(r.sync); /* decided before Redis */
        if (cases[i].status == 0) {
            assert_string_equal(error_code(r.data), cases[i].code);
            if (strstr(error_message(r.data), cases[i].err_has) == NULL)
                fail_msg("case %zu: message '%s' lacks '%s'", i, error_message(r.data),
                         cases[i].err_has);
        } else if (strstr(r.err, cases[i].err_has) == NULL) {
            fail_msg("case %zu: err '%s' lacks '%s'", i, r.err, cases[i].err_has);
        }
        tf_res_clear(&r);
    }
    /* Facts over the bound. */
    json_t *args =
        json_pack("{s:s, s:{s:s, s:s, s:{}, s:s}}", "name", "claim.register", "arguments",
                  "policy_no", "P10023", "kind", "health", "facts", "summary", "s");
    char *big = malloc(MEMORY_CLAIM_FACTS_MAX + 1);
    memset(big, 'x', MEMORY_CLAIM_FACTS_MAX);
    big[MEMORY_CLAIM_FACTS_MAX] = '\0';
    json_object_set_new(json_object_get(json_object_get(args, "arguments"), "facts"), "notes",
                        json_string(big));
    free(big);
    char *text = json_dumps(args, JSON_COMPACT);
    json_decref(args);
    tf_res_t r;
    tf_call(fx, &r, "tool.call", "cv", NULL, text);
    free(text);
    assert_int_equal(r.status, 0);
    assert_string_equal(error_code(r.data), "invalid_tool_arguments");
    assert_non_null(strstr(error_message(r.data), "facts"));
    tf_res_clear(&r);
    /* Nothing reached Redis. */
    assert_int_equal(tf_int(fx, "EXISTS mesh:{claims}:records mesh:{claims}:seq"), 0);

    /* memory_ops_run reports an immediate tool outcome as an error code. */
    json_t *ga = json_loads("{\"name\":\"nope\"}", 0, NULL);
    char err[256] = "";
    assert_int_equal(
        memory_ops_run(fx->ops, "tool.call", "cv", ga, tf_on_done, &r, err, sizeof err),
        MESH_EUNKNOWNTOOL);
    assert_non_null(strstr(err, "nope"));
    json_decref(ga);
    assert_int_equal(r.calls, 0);
}

/* Redis down: status EUNAVAIL (a transport failure, not a tool outcome). */
static void test_redis_down(void **state)
{
    tf_t *fx = *state;
    tf_redis_down(fx);
    tf_res_t r;
    tf_call(fx, &r, "tool.call", "cd", NULL, REG_ARGS("P10023"));
    assert_int_equal(r.status, MESH_EUNAVAIL);
    assert_null(r.data);
    tf_res_clear(&r);
    tf_call(fx, &r, "tool.call", NULL, NULL,
            "{\"name\":\"claim.get\",\"arguments\":{\"claim_no\":\"CLM20260101000001\"}}");
    assert_int_equal(r.status, MESH_EUNAVAIL);
    tf_res_clear(&r);
    tf_redis_up_again(fx);
    assert_true(mh_loop_run_until(&fx->lp, tf_cond_loaded, fx, TF_WAIT_MS));
    result_of(tf_ok(fx, &r, "tool.call", "cd", NULL, REG_ARGS("P10023")));
    tf_res_clear(&r);
}

/* Drop "description" keys recursively (documentation, not validation). */
static void strip_descriptions(json_t *v)
{
    if (json_is_object(v)) {
        json_object_del(v, "description");
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            strip_descriptions(x);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            strip_descriptions(x);
        }
    }
}

/* The embedded claim.register schema is the one data/tools.json offers the models. */
static void test_schema_matches_tools_json(void **state)
{
    (void)state;
    const char *dir = getenv("MESH_DATA_DIR");
    if (dir == NULL)
        skip();
    char path[512];
    snprintf(path, sizeof path, "%s/tools.json", dir);
    json_error_t jerr;
    json_t *tools = json_load_file(path, 0, &jerr);
    assert_non_null(tools);
    const json_t *params = NULL;
    size_t i;
    json_t *t;
    json_t *arr = json_is_array(tools) ? tools : json_object_get(tools, "tools");
    json_array_foreach(arr, i, t)
    {
        if (json_is_string(json_object_get(t, "name")) &&
            strcmp(json_string_value(json_object_get(t, "name")), "claim.register") == 0)
            params = json_object_get(t, "parameters");
    }
    assert_non_null(params);
    json_t *want = json_deep_copy(params);
    strip_descriptions(want);
    json_t *have = json_loads(memory_claims_schema("claim.register"), 0, NULL);
    assert_non_null(have);
    assert_true(json_equal(want, have));
    json_decref(want);
    json_decref(have);
    json_decref(tools);
    assert_null(memory_claims_schema("policy.lookup"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TF_TEST(test_register_idempotent),
        TF_TEST(test_sequence_format),
        TF_TEST(test_get),
        TF_TEST(test_invalid),
        TF_TEST(test_redis_down),
        cmocka_unit_test(test_schema_matches_tools_json),
    };
    return TF_MAIN("memory_claims", tests);
}
