/*
 * test_gateway_openai.c - the OpenAI front door's request side
 * (services/gateway/openai_req.c): what a POST /v1/chat/completions body
 * must look like, the errors in OpenAI's shape for everything else, and the
 * conversation and message ids derived from a request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_msg.h"
#include "openai_req.h"

static int parse(const char *body, gateway_oai_req_t *r, gateway_oai_err_t *e)
{
    return gateway_oai_parse(body, strlen(body), r, e);
}

static void test_minimal_and_full(void **state)
{
    (void)state;
    gateway_oai_req_t r;
    gateway_oai_err_t e;
    assert_int_equal(
        parse("{\"model\":\"policy_qa\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r,
              &e),
        0);
    assert_string_equal(r.model, "policy_qa");
    assert_string_equal(r.text, "hi");
    assert_int_equal(r.text_len, 2);
    assert_int_equal(r.n_user, 1);
    assert_false(r.stream);
    assert_false(r.include_usage);
    assert_string_equal(r.user, "");
    gateway_oai_req_clear(&r);

    /* the last user message is the text; parts are joined; other roles count for usage */
    const char *full =
        "{\"model\":\"claims_intake\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"user\":\"cust-42\",\"temperature\":0.2,\"max_tokens\":100,\"n\":1,"
        "\"messages\":[{\"role\":\"system\",\"content\":\"be nice\"},"
        "{\"role\":\"user\",\"content\":\"first\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},"
        "{\"role\":\"tool\",\"content\":\"r\",\"tool_call_id\":\"x\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"我的\"},"
        "{\"type\":\"text\",\"text\":\"保单\"}]}]}";
    assert_int_equal(parse(full, &r, &e), 0);
    assert_string_equal(r.model, "claims_intake");
    assert_string_equal(r.text, "我的\n保单");
    assert_int_equal(r.n_user, 2);
    assert_true(r.stream);
    assert_true(r.include_usage);
    assert_string_equal(r.user, "cust-42");
    assert_int_equal(r.prompt_chars,
                     strlen("be nice") + strlen("first") + 1 + strlen("我的") + 1 + strlen("保单"));
    gateway_oai_req_clear(&r);
    gateway_oai_req_clear(&r); /* twice is harmless */
}

typedef struct {
    const char *why;
    const char *body;
    const char *param; /* expected param, NULL for null */
} bad_t;

static void test_invalid_requests(void **state)
{
    (void)state;
    static const bad_t bad[] = {
        {"empty", "", NULL},
        {"malformed JSON", "{\"model\":", NULL},
        {"trailing garbage", "{} x", NULL},
        {"not an object", "[1,2]", NULL},
        {"duplicate keys", "{\"model\":\"a\",\"model\":\"b\",\"messages\":[]}", NULL},
        {"model missing", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model"},
        {"model a number", "{\"model\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "model"},
        {"model bad chars",
         "{\"model\":\"gpt 4\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model"},
        {"messages missing", "{\"model\":\"m\"}", "messages"},
        {"messages empty", "{\"model\":\"m\",\"messages\":[]}", "messages"},
        {"messages an object", "{\"model\":\"m\",\"messages\":{\"role\":\"user\"}}", "messages"},
        {"message a string", "{\"model\":\"m\",\"messages\":[\"hi\"]}", "messages"},
        {"role missing", "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "messages"},
        {"role unknown", "{\"model\":\"m\",\"messages\":[{\"role\":\"boss\",\"content\":\"x\"}]}",
         "messages"},
        {"role a number", "{\"model\":\"m\",\"messages\":[{\"role\":1,\"content\":\"x\"}]}",
         "messages"},
        {"content a number", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
         "messages"},
        {"image part",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"x\"}}]}]}",
         "messages"},
        {"part without text",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
         "messages"},
        {"no user message",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", "messages"},
        {"last user empty", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
         "messages"},
        {"last user null", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":null}]}",
         "messages"},
        /* jansson refuses \u0000 while parsing: an invalid body, not a bad field */
        {"NUL in text",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", NULL},
        {"stream a string",
         "{\"model\":\"m\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"
         "}",
         "stream"},
        {"stream_options a list",
         "{\"model\":\"m\",\"stream_options\":[],\"messages\":[{\"role\":\"user\",\"content\":"
         "\"x\"}]"
         "}",
         "stream_options"},
        {"include_usage a number",
         "{\"model\":\"m\",\"stream_options\":{\"include_usage\":1},\"messages\":[{\"role\":"
         "\"user\",\"content\":\"x\"}]}",
         "stream_options"},
        {"n = 2", "{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "n"},
        {"user a number",
         "{\"model\":\"m\",\"user\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "user"},
        {"user empty",
         "{\"model\":\"m\",\"user\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "user"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gateway_oai_req_t r;
        gateway_oai_err_t e;
        if (parse(bad[i].body, &r, &e) != MESH_EPROTO)
            fail_msg("accepted: %s", bad[i].why);
        assert_null(r.text); /* nothing left to free */
        assert_int_equal(e.http_status, 400);
        assert_string_equal(e.type, "invalid_request_error");
        if (bad[i].param == NULL ? e.param != NULL
                                 : (e.param == NULL || strcmp(e.param, bad[i].param) != 0))
            fail_msg("%s: param %s, want %s", bad[i].why, e.param ? e.param : "null",
                     bad[i].param ? bad[i].param : "null");
        assert_true(strlen(e.message) > 0);

        /* the error body is OpenAI's shape, with every key present */
        char *js = gateway_oai_err_json(&e);
        assert_non_null(js);
        json_t *j = json_loads(js, 0, NULL);
        assert_non_null(j);
        json_t *err = json_object_get(j, "error");
        assert_true(json_is_object(err));
        assert_int_equal(json_object_size(err), 4);
        assert_string_equal(json_string_value(json_object_get(err, "message")), e.message);
        assert_string_equal(json_string_value(json_object_get(err, "type")),
                            "invalid_request_error");
        assert_true(json_is_string(json_object_get(err, "param")) ||
                    json_is_null(json_object_get(err, "param")));
        assert_true(json_is_string(json_object_get(err, "code")) ||
                    json_is_null(json_object_get(err, "code")));
        json_decref(j);
        free(js);
    }
}

static void test_oversize(void **state)
{
    (void)state;
    /* the last user message may have MESH_TEXT_MAX bytes, not one more */
    size_t n = MESH_TEXT_MAX;
    const char *head = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"";
    const char *tail = "\"}]}";
    char *body = malloc(strlen(head) + n + 1 + strlen(tail) + 1);
    for (int extra = 0; extra <= 1; extra++) {
        strcpy(body, head);
        memset(body + strlen(head), 'a', n + (size_t)extra);
        strcpy(body + strlen(head) + n + (size_t)extra, tail);
        gateway_oai_req_t r;
        gateway_oai_err_t e;
        int rc = parse(body, &r, &e);
        if (extra == 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.text_len, MESH_TEXT_MAX);
            gateway_oai_req_clear(&r);
        } else {
            assert_int_equal(rc, MESH_EPROTO);
            assert_string_equal(e.code, "message_too_long");
        }
    }
    free(body);

    /* too many messages */
    size_t cap = (GATEWAY_OAI_MESSAGES_MAX + 1) * 40 + 64;
    char *many = malloc(cap);
    size_t at = (size_t)sprintf(many, "{\"model\":\"m\",\"messages\":[");
    for (int i = 0; i <= GATEWAY_OAI_MESSAGES_MAX; i++)
        at += (size_t)sprintf(many + at, "%s{\"role\":\"user\",\"content\":\"x\"}", i ? "," : "");
    strcpy(many + at, "]}");
    gateway_oai_req_t r;
    gateway_oai_err_t e;
    assert_int_equal(parse(many, &r, &e), MESH_EPROTO);
    assert_string_equal(e.code, "too_many_messages");
    free(many);
}

static void test_ids(void **state)
{
    (void)state;
    char conv[MESH_CONV_MAX + 1];
    gateway_oai_user_conv("cust-42", 7, conv);
    assert_string_equal(conv, "cust-42");
    /* a user that is not a valid conversation id maps to a stable valid one */
    gateway_oai_user_conv("alice@example.com", 17, conv);
    assert_int_equal(strncmp(conv, "user-", 5), 0);
    assert_int_equal(strlen(conv), 5 + 32);
    assert_true(mesh_conv_id_valid(conv, strlen(conv)));
    char again[MESH_CONV_MAX + 1];
    gateway_oai_user_conv("alice@example.com", 17, again);
    assert_string_equal(conv, again);
    gateway_oai_user_conv("bob@example.com", 15, again);
    assert_string_not_equal(conv, again);

    /* message ids: deterministic in (conversation, user count, text), distinct otherwise */
    char a[MESH_ID_MAX + 1], b[MESH_ID_MAX + 1];
    gateway_oai_message_id("c1", 2, "hello", 5, a);
    gateway_oai_message_id("c1", 2, "hello", 5, b);
    assert_string_equal(a, b);
    assert_int_equal(strncmp(a, "oa-", 3), 0);
    assert_int_equal(strlen(a), 3 + 32);
    gateway_oai_message_id("c1", 3, "hello", 5, b);
    assert_string_not_equal(a, b);
    gateway_oai_message_id("c2", 2, "hello", 5, b);
    assert_string_not_equal(a, b);
    gateway_oai_message_id("c1", 2, "hellO", 5, b);
    assert_string_not_equal(a, b);
    /* the separator keeps field boundaries apart */
    gateway_oai_message_id("c1", 21, "hello", 5, a);
    gateway_oai_message_id("c12", 1, "hello", 5, b);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_and_full),
        cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
