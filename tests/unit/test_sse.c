/*
 * test_sse.c - the SSE parser and chunk assembly of the openai backend
 * (services/llm/sse.c): every recorded stream of the stub server
 * (tests/stubs/openai/<name>.json) fed split at every byte position and byte by
 * byte must give the same answer as fed whole; then each quirk and bound.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mesh/mesh_err.h"
#include "sse.h"

/* ---- helpers ---- */

typedef struct {
    char text[8192];
    size_t len;
    int deltas;
} deltas_t;

static void on_delta(const char *t, size_t n, void *arg)
{
    deltas_t *d = arg;
    assert_true(d->len + n < sizeof(d->text));
    memcpy(d->text + d->len, t, n);
    d->len += n;
    d->text[d->len] = '\0';
    d->deltas++;
}

/* A summary of the parsed answer, comparable across ways of feeding it. */
static char *summary(llm_sse_t *p, int rc)
{
    json_t *o = json_object();
    size_t tl;
    const char *t = llm_sse_text(p, &tl);
    json_object_set_new(o, "rc", json_integer(rc));
    json_object_set_new(o, "text", json_stringn(t, tl));
    json_object_set_new(o, "model", json_string(llm_sse_model(p)));
    json_object_set_new(o, "finish", json_string(llm_sse_finish_reason(p)));
    llm_usage_t u;
    if (llm_sse_usage(p, &u))
        json_object_set_new(
            o, "usage",
            json_pack("{s:i, s:i}", "in", (int)u.prompt_tokens, "out", (int)u.completion_tokens));
    json_t *calls = json_array();
    for (size_t i = 0; i < llm_sse_n_calls(p); i++) {
        const char *id, *name, *a;
        size_t al;
        llm_sse_call(p, i, &id, &name, &a, &al);
        json_array_append_new(calls,
                              json_pack("{s:s, s:s, s:s%}", "id", id, "name", name, "args", a, al));
    }
    json_object_set_new(o, "calls", calls);
    json_object_set_new(o, "error", json_string(llm_sse_error(p)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* Parse data fed in pieces ending at cuts[0..n) (ascending); returns the summary. */
static char *parse_cuts(const char *data, size_t len, const size_t *cuts, size_t n, deltas_t *d)
{
    llm_sse_t *p = llm_sse_new();
    assert_non_null(p);
    if (d != NULL)
        llm_sse_set_delta_cb(p, on_delta, d);
    size_t off = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t end = i < n ? cuts[i] : len;
        assert_int_equal(llm_sse_feed(p, data + off, end - off), 0);
        off = end;
    }
    int rc = llm_sse_finish(p);
    char *s = summary(p, rc);
    llm_sse_destroy(&p);
    assert_null(p);
    return s;
}

static char *parse_whole(const char *data, deltas_t *d)
{
    return parse_cuts(data, strlen(data), NULL, 0, d);
}

/* The stub's SSE body of one scripted response (as openai_stub.c writes it). */
static char *sse_body(const json_t *resp)
{
    const json_t *evs = json_object_get(resp, "sse");
    bool crlf = json_is_true(json_object_get(resp, "crlf"));
    const char *nl = crlf ? "\r\n" : "\n";
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    size_t i;
    const json_t *ev;
    json_array_foreach(evs, i, ev)
    {
        char *d = json_is_string(ev) ? strdup(json_string_value(ev)) : json_dumps(ev, JSON_COMPACT);
        size_t need = strlen(d) + 16;
        while (len + need >= cap)
            out = realloc(out, cap *= 2);
        len += (size_t)(d[0] == ':' ? sprintf(out + len, "%s%s", d, nl)
                                    : sprintf(out + len, "data: %s%s%s", d, nl, nl));
        free(d);
    }
    return out;
}

static char s_dir[1024];

static const char *scripts_dir(void)
{
    char file[1024];
    snprintf(file, sizeof(file), "%s", __FILE__);
    snprintf(s_dir, sizeof(s_dir), "%s/../stubs/openai", dirname(file));
    return s_dir;
}

/* ---- every recorded stream, split everywhere ---- */

static void check_splits(const char *body, const char *what)
{
    size_t len = strlen(body);
    deltas_t dw = {0};
    char *whole = parse_whole(body, &dw);
    for (size_t k = 1; k < len; k++) {
        deltas_t dk = {0};
        char *s = parse_cuts(body, len, &k, 1, &dk);
        if (strcmp(s, whole) != 0)
            fail_msg("%s split at %zu:\n%s\nvs whole:\n%s", what, k, s, whole);
        assert_string_equal(dk.text, dw.text);
        free(s);
    }
    size_t *cuts = malloc(len * sizeof(size_t));
    for (size_t k = 0; k + 1 < len; k++)
        cuts[k] = k + 1;
    deltas_t db = {0};
    char *bytes = parse_cuts(body, len, cuts, len ? len - 1 : 0, &db);
    assert_string_equal(bytes, whole);
    assert_string_equal(db.text, dw.text);
    free(cuts);
    free(bytes);
    free(whole);
}

static void test_recorded_streams_split_anywhere(void **state)
{
    (void)state;
    DIR *d = opendir(scripts_dir());
    assert_non_null(d);
    struct dirent *e;
    int streams = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", s_dir, e->d_name);
        json_error_t je;
        json_t *script = json_load_file(path, 0, &je);
        if (script == NULL)
            fail_msg("%s: %s", path, je.text);
        size_t si, ai;
        json_t *step, *att;
        json_array_foreach(json_object_get(script, "steps"), si, step)
        {
            json_array_foreach(json_object_get(step, "attempts"), ai, att)
            {
                if (json_object_get(att, "sse") == NULL)
                    continue;
                char *body = sse_body(att);
                check_splits(body, e->d_name);
                free(body);
                streams++;
            }
        }
        json_decref(script);
    }
    closedir(d);
    assert_true(streams >= 12);
}

/* ---- specific shapes ---- */

#define CH(delta)                                                                                  \
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m1\",\"choices\":[{"     \
    "\"index\":0,\"delta\":" delta ",\"finish_reason\":null}]}\n\n"
#define FIN(reason)                                                                                \
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"" reason       \
    "\"}]}\n\n"
#define USAGE                                                                                      \
    "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":15,\"completion_tokens\":12," \
    "\"total_tokens\":27}}\n\n"
#define DONE "data: [DONE]\n\n"

static llm_sse_t *run(const char *body, int want_rc)
{
    llm_sse_t *p = llm_sse_new();
    assert_int_equal(llm_sse_feed(p, body, strlen(body)), 0);
    assert_int_equal(llm_sse_finish(p), want_rc);
    return p;
}

static void test_text_usage_done(void **state)
{
    (void)state;
    deltas_t d = {0};
    llm_sse_t *p = llm_sse_new();
    llm_sse_set_delta_cb(p, on_delta, &d);
    const char *b = CH("{\"role\":\"assistant\",\"content\":\"\"}") CH("{\"content\":\"Hel\"}")
        CH("{\"content\":\"lo 世界\"}") FIN("stop") USAGE DONE;
    assert_int_equal(llm_sse_feed(p, b, strlen(b)), 0);
    assert_int_equal(llm_sse_finish(p), 0);
    size_t n;
    assert_string_equal(llm_sse_text(p, &n), "Hello 世界");
    assert_string_equal(d.text, "Hello 世界");
    assert_int_equal(d.deltas, 2); /* empty content is not a delta */
    llm_usage_t u;
    assert_true(llm_sse_usage(p, &u));
    assert_int_equal(u.prompt_tokens, 15);
    assert_int_equal(u.completion_tokens, 12);
    assert_string_equal(llm_sse_model(p), "m1");
    assert_string_equal(llm_sse_finish_reason(p), "stop");
    assert_int_equal(llm_sse_n_calls(p), 0);
    llm_sse_destroy(&p);
}

static void test_line_ends_comments_multiline(void **state)
{
    (void)state;
    /* CR-only and CRLF line ends, a comment, an event: field, data split over two lines. */
    const char *b = ": ping\r"
                    "event: message\r\n"
                    "data: {\"choices\":[{\"index\":0,\r\n"
                    "data: \"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\r\r"
                    "data:[DONE]\r\n\r\n";
    llm_sse_t *p = run(b, 0);
    assert_string_equal(llm_sse_text(p, NULL), "ok");
    llm_sse_destroy(&p);
    /* no trailing blank line at the end of the body: the last event still counts */
    p = run(CH("{\"content\":\"x\"}") "data: {\"choices\":[{\"delta\":{},\"finish_reason\":"
                                      "\"stop\"}]}",
            0);
    assert_string_equal(llm_sse_text(p, NULL), "x");
    llm_sse_destroy(&p);
}

static void test_tool_calls_assembled(void **state)
{
    (void)state;
    const char *b =
        CH("{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{"
           "\"name\":\"policy.lookup\",\"arguments\":\"\"}}]}")
            CH("{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\","
               "\"function\":{\"name\":\"fee.calc\",\"arguments\":\"{\\\"a\\\"\"}}]}")
                CH("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"policy_"
                   "no\\\":\"}}]}")
                    CH("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\":1}\"}}]}")
                        CH("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                           "\"\\\"P1\\\"}\"}}]}") FIN("tool_calls") USAGE DONE;
    llm_sse_t *p = run(b, 0);
    assert_int_equal(llm_sse_n_calls(p), 2);
    const char *id, *name, *a;
    size_t al;
    llm_sse_call(p, 0, &id, &name, &a, &al);
    assert_string_equal(id, "call_a");
    assert_string_equal(name, "policy.lookup");
    assert_string_equal(a, "{\"policy_no\":\"P1\"}");
    llm_sse_call(p, 1, &id, &name, &a, &al);
    assert_string_equal(id, "call_b");
    assert_string_equal(name, "fee.calc");
    assert_string_equal(a, "{\"a\":1}");
    llm_sse_destroy(&p);
}

static void test_ollama_index0_and_whole_calls(void **state)
{
    (void)state;
    /* Every call on index 0, each whole in one delta; one with arguments as an object;
     * one without an index at all (old Ollama). */
    const char *b = CH("{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"t1\","
                       "\"arguments\":\"{\\\"x\\\":1}\"}}]}")
        CH("{\"tool_calls\":[{\"index\":0,\"id\":\"c2\",\"function\":{\"name\":\"t2\","
           "\"arguments\":{\"y\":2}}}]}")
            CH("{\"tool_calls\":[{\"id\":\"c3\",\"function\":{\"name\":\"t3\",\"arguments\":"
               "\"{}\"}}]}") FIN("tool_calls") DONE;
    llm_sse_t *p = run(b, 0);
    assert_int_equal(llm_sse_n_calls(p), 3);
    const char *id, *name, *a;
    size_t al;
    llm_sse_call(p, 1, &id, &name, &a, &al);
    assert_string_equal(id, "c2");
    assert_string_equal(name, "t2");
    assert_string_equal(a, "{\"y\":2}");
    llm_sse_call(p, 2, &id, &name, &a, &al);
    assert_string_equal(id, "c3");
    llm_sse_destroy(&p);
}

static void test_errors_and_truncation(void **state)
{
    (void)state;
    llm_sse_t *p = run(CH("{\"content\":\"par\"}") "data: {\"error\":{\"message\":\"boom\","
                                                   "\"type\":\"server_error\",\"code\":500}}\n\n",
                       MESH_EUNAVAIL);
    assert_string_equal(llm_sse_error(p), "boom");
    assert_string_equal(llm_sse_error_code(p), "500"); /* vLLM: an integer code */
    llm_sse_destroy(&p);
    /* the stream ends with neither [DONE] nor a finish_reason */
    p = run(CH("{\"content\":\"cut\"}"), MESH_EPROTO);
    llm_sse_destroy(&p);
    /* malformed JSON in an event */
    p = run(CH("{\"content\":\"a\"}") "data: {\"choices\": [\n\n" FIN("stop") DONE, MESH_EPROTO);
    assert_int_equal(llm_sse_malformed(p), 1);
    llm_sse_destroy(&p);
    /* a tool call that never got a name */
    p = run(CH("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}") DONE,
            MESH_EPROTO);
    llm_sse_destroy(&p);
    /* nothing at all */
    p = run("", MESH_EPROTO);
    llm_sse_destroy(&p);
}

static void test_json_bodies(void **state)
{
    (void)state;
    llm_sse_t *p = run("\r\n {\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"big\","
                       "\"choices\":[{\"index\":0,\"finish_reason\":\"tool_calls\",\"message\":{"
                       "\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"k1\","
                       "\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},"
                       "{\"id\":\"k2\",\"type\":\"function\",\"function\":{\"name\":\"b\","
                       "\"arguments\":\"{\\\"q\\\":1}\"}}]}}],\"usage\":{\"prompt_tokens\":3,"
                       "\"completion_tokens\":4}}",
                       0);
    assert_int_equal(llm_sse_n_calls(p), 2); /* no index: numbered by position */
    assert_string_equal(llm_sse_model(p), "big");
    llm_sse_destroy(&p);
    p = run("{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"code\":"
            "\"rate_limit_exceeded\"}}",
            MESH_EUNAVAIL);
    assert_string_equal(llm_sse_error(p), "Rate limit reached");
    assert_string_equal(llm_sse_error_code(p), "rate_limit_exceeded");
    llm_sse_destroy(&p);
}

static void test_bounds(void **state)
{
    (void)state;
    /* one line longer than LLM_SSE_LINE_MAX */
    llm_sse_t *p = llm_sse_new();
    char *big = malloc(LLM_SSE_LINE_MAX + 16);
    memset(big, 'a', LLM_SSE_LINE_MAX + 15);
    memcpy(big, "data: ", 6);
    big[LLM_SSE_LINE_MAX + 15] = '\0';
    assert_int_equal(llm_sse_feed(p, big, strlen(big)), MESH_ETOOBIG);
    assert_int_equal(llm_sse_feed(p, DONE, strlen(DONE)), MESH_ETOOBIG); /* latched */
    assert_int_equal(llm_sse_finish(p), MESH_ETOOBIG);
    llm_sse_destroy(&p);
    free(big);
    /* more tool calls than LLM_SSE_CALLS_MAX */
    p = llm_sse_new();
    int rc = 0;
    for (int i = 0; i <= LLM_SSE_CALLS_MAX && rc == 0; i++) {
        char ev[256];
        snprintf(ev, sizeof(ev),
                 "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":%d,\"id\":\"c%d\","
                 "\"function\":{\"name\":\"t\",\"arguments\":\"{}\"}}]}}]}\n\n",
                 i, i);
        rc = llm_sse_feed(p, ev, strlen(ev));
    }
    assert_int_equal(rc, MESH_ETOOBIG);
    llm_sse_destroy(&p);
    /* one call's arguments past LLM_SSE_ARGS_MAX, in fragments */
    p = llm_sse_new();
    rc = llm_sse_feed(p,
                      CH("{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":"
                         "\"t\"}}]}"),
                      strlen(CH("{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{"
                                "\"name\":\"t\"}}]}")));
    char frag[1200];
    char piece[1024];
    memset(piece, 'x', sizeof(piece) - 1);
    piece[sizeof(piece) - 1] = '\0';
    snprintf(frag, sizeof(frag),
             "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
             "\"arguments\":\"%s\"}}]}}]}\n\n",
             piece);
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = llm_sse_feed(p, frag, strlen(frag));
    assert_int_equal(rc, MESH_ETOOBIG);
    llm_sse_destroy(&p);
}

static void test_args_json(void **state)
{
    (void)state;
    json_t *a = llm_sse_args_json("{\"policy_no\":\"P1\"}", 18);
    assert_string_equal(json_string_value(json_object_get(a, "policy_no")), "P1");
    json_decref(a);
    a = llm_sse_args_json(" \n", 2);
    assert_true(json_is_object(a) && json_object_size(a) == 0);
    json_decref(a);
    a = llm_sse_args_json("{policy_no: P1", 14);
    assert_string_equal(json_string_value(json_object_get(a, "_raw")), "{policy_no: P1");
    json_decref(a);
    a = llm_sse_args_json("[1,2]", 5); /* valid JSON, not an object */
    assert_string_equal(json_string_value(json_object_get(a, "_raw")), "[1,2]");
    json_decref(a);
    a = llm_sse_args_json("\xff\xfe", 2);
    assert_non_null(json_object_get(a, "_raw"));
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded_streams_split_anywhere),
        cmocka_unit_test(test_text_usage_done),
        cmocka_unit_test(test_line_ends_comments_multiline),
        cmocka_unit_test(test_tool_calls_assembled),
        cmocka_unit_test(test_ollama_index0_and_whole_calls),
        cmocka_unit_test(test_errors_and_truncation),
        cmocka_unit_test(test_json_bodies),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_args_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
