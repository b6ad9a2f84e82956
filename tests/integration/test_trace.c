/*
 * test_trace.c - logs and traces across the whole mesh (real processes):
 *   - every line every service writes is one JSON object with the common
 *     keys (ts, level, service, event, trace_id, span_id, conv, tenant);
 *   - a request that fails carries its traceparent's trace id into the
 *     gateway's error log line;
 *   - a message with a phone number, an ID number and a plate is answered,
 *     and none of them appears in any service's log (debug level, content
 *     logging off by default);
 *   - with MESH_OTLP_ENDPOINT pointing at a collector that is down, turns
 *     are still answered (export never blocks a turn);
 *   - with a live (stub) collector: a turn sent with a known traceparent has
 *     a timeline (GET .../turns/1/trace) with one span per hop (router
 *     turn, queue, turn.begin, llm.chat x2, tool.call, turn.end), all of the
 *     request's trace, chained to the gateway's span; the collector receives
 *     the gateway's, the router's and the workers' spans with the same ids.
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

#include <jansson.h>
#include "mesh_harness.h"
#include "../unit/otlp_stub.h"

#define TP_IN       "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TRACE_IN    "5bf92f3577b34da6a3ce929d0e0e4736"
#define LOG_WAIT_MS 5000
#define TURN_MS     15000
#define PHONE       "13912345678"
#define ID_NUMBER   "11010519491231002X"
#define PLATE       "沪A·12345"
#define PARENT_IN   "00f067aa0ba902b7"
#define EXPORT_MS   10000

static mh_mesh_t *s_mesh;
static char s_otlp_env[96];

static int group_setup(void **state)
{
    (void)state;
    /* A collector that is down: a port that was free a moment ago. */
    int dead = mh_free_port();
    snprintf(s_otlp_env, sizeof(s_otlp_env), "MESH_OTLP_ENDPOINT=http://127.0.0.1:%d", dead);
    mh_mesh_opts_t o = {0};
    o.env_all[0] = s_otlp_env;
    o.env_all[1] = "MESH_OTLP_INTERVAL_MS=50";
    o.env_all[2] = "MESH_OTLP_TIMEOUT_MS=200";
    s_mesh = mh_mesh_start(&o);
    return s_mesh != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

/* Every line of every process log of the mesh, checked; returns the lines seen. */
static int check_all_lines_json(void)
{
    int lines = 0;
    for (int s = 0; s < MH_N_SVC; s++) {
        for (int i = 0; i < mh_mesh_count(s_mesh, (mh_svc_t)s); i++) {
            mh_proc_t *p = mh_mesh_proc(s_mesh, (mh_svc_t)s, i);
            char *text = mh_log_read(p, 0);
            assert_non_null(text);
            char *save = NULL;
            for (char *line = strtok_r(text, "\n", &save); line != NULL;
                 line = strtok_r(NULL, "\n", &save)) {
                json_error_t jerr;
                json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
                if (!json_is_object(o))
                    fail_msg("%s: not a JSON line (%s): %s", mh_proc_name(p), jerr.text, line);
                const char *keys[] = {"ts",       "level",   "service", "event",
                                      "trace_id", "span_id", "conv",    "tenant"};
                for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                    if (!json_is_string(json_object_get(o, keys[k])))
                        fail_msg("%s: line without \"%s\": %s", mh_proc_name(p), keys[k], line);
                if (strcmp(json_string_value(json_object_get(o, "service")), mh_svc_names[s]) != 0)
                    fail_msg("%s: wrong service in %s", mh_proc_name(p), line);
                json_decref(o);
                lines++;
            }
            free(text);
        }
    }
    return lines;
}

static void test_every_line_is_json(void **state)
{
    (void)state;
    mh_http_resp_t r;
    char conv[64];
    snprintf(conv, sizeof(conv), "trace-json-%d", (int)getpid());
    assert_int_equal(mh_post_message(s_mesh, conv, "我的保单 P10023 保障什么？", "m1", &r), 0);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    /* the worker's request line (debug) and the startup lines are in there */
    assert_true(mh_log_wait(mh_mesh_proc(s_mesh, MH_LLM, 0), 0, "call start id=", LOG_WAIT_MS));
    assert_true(check_all_lines_json() > 10);
}

static void test_error_line_carries_trace_id(void **state)
{
    (void)state;
    mh_proc_t *gw = mh_mesh_proc(s_mesh, MH_GATEWAY, 0);
    size_t mark = mh_log_mark(gw);
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/conversations/trace-err-%d/messages", mh_mesh_url(s_mesh),
             (int)getpid());
    const char *hdrs[] = {"traceparent: " TP_IN, NULL};
    mh_http_resp_t r;
    assert_int_equal(mh_http("POST", url, "{not json", hdrs, TURN_MS, &r), 0);
    assert_int_equal(r.status, 400);
    mh_http_resp_clear(&r);
    /* the gateway's warn line for the 400, with the request's trace id */
    assert_true(mh_log_wait(gw, mark, "\"level\":\"warn\"", LOG_WAIT_MS));
    char *text = mh_log_read(gw, mark);
    assert_non_null(text);
    bool found = false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL && !found;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *lvl = json_string_value(json_object_get(o, "level"));
        const char *tid = json_string_value(json_object_get(o, "trace_id"));
        const char *msg = json_string_value(json_object_get(o, "msg"));
        found = lvl != NULL && strcmp(lvl, "warn") == 0 && tid != NULL &&
                strcmp(tid, TRACE_IN) == 0 && msg != NULL && strstr(msg, "400") != NULL;
        json_decref(o);
    }
    if (!found)
        fail_msg("no warn line with trace id %s for the 400 in:\n%s", TRACE_IN, text);
    free(text);
}

static void test_personal_data_not_logged(void **state)
{
    (void)state;
    mh_http_resp_t r;
    char conv[64];
    snprintf(conv, sizeof(conv), "trace-pii-%d", (int)getpid());
    const char *text =
        "我的保单 P10023 保障什么？电话 " PHONE "，身份证 " ID_NUMBER "，车牌 " PLATE;
    assert_int_equal(mh_post_message(s_mesh, conv, text, "m1", &r), 0);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
    /* the turn went through every service (debug logs included) */
    assert_true(mh_log_wait(mh_mesh_proc(s_mesh, MH_LLM, 0), 0, conv, LOG_WAIT_MS) ||
                mh_log_count(mh_mesh_proc(s_mesh, MH_MEMORY, 0), 0, conv) > 0);
    for (int s = 0; s < MH_N_SVC; s++) {
        for (int i = 0; i < mh_mesh_count(s_mesh, (mh_svc_t)s); i++) {
            mh_proc_t *p = mh_mesh_proc(s_mesh, (mh_svc_t)s, i);
            const char *pii[] = {PHONE, ID_NUMBER, PLATE};
            for (size_t k = 0; k < sizeof(pii) / sizeof(pii[0]); k++)
                if (mh_log_count(p, 0, pii[k]) != 0)
                    fail_msg("%s logged personal data '%s'", mh_proc_name(p), pii[k]);
        }
    }
}

static void test_collector_down_never_blocks(void **state)
{
    (void)state;
    /* Several turns in a row, each answered well within its deadline while
     * every service's exporter (if it has spans) fails to reach the collector. */
    for (int k = 0; k < 3; k++) {
        mh_http_resp_t r;
        char conv[64], mid[16];
        snprintf(conv, sizeof(conv), "trace-down-%d", (int)getpid());
        snprintf(mid, sizeof(mid), "m%d", k);
        assert_int_equal(mh_post_message(s_mesh, conv, "免赔额是多少？保单 P10023", mid, &r), 0);
        assert_int_equal(r.status, 200);
        assert_true(r.seconds < 5.0);
        mh_http_resp_clear(&r);
    }
    assert_true(mh_mesh_all_alive(s_mesh));
}

/* ---- a live collector: timeline and exported spans ---------------------- */

static otlp_stub_t s_stub;
static char s_stub_env[96];

static int live_setup(void **state)
{
    (void)state;
    if (otlp_stub_start(&s_stub, 200) != 0)
        return -1;
    snprintf(s_stub_env, sizeof(s_stub_env), "MESH_OTLP_ENDPOINT=http://127.0.0.1:%d", s_stub.port);
    mh_mesh_opts_t o = {0};
    o.env_all[0] = s_stub_env;
    o.env_all[1] = "MESH_OTLP_INTERVAL_MS=50";
    s_mesh = mh_mesh_start(&o);
    return s_mesh != NULL ? 0 : -1;
}

static int live_teardown(void **state)
{
    int rc = group_teardown(state);
    otlp_stub_stop(&s_stub);
    return rc;
}

/* The timeline span named name (exactly n of them); the first one. */
static const json_t *span_named(const json_t *spans, const char *name, size_t n)
{
    const json_t *first = NULL;
    size_t count = 0, i;
    const json_t *sp;
    json_array_foreach(spans, i, sp)
    {
        if (strcmp(mh_json_str(sp, "name") ?: "", name) == 0) {
            if (first == NULL)
                first = sp;
            count++;
        }
    }
    if (count != n)
        fail_msg("%zu spans named \"%s\", expected %zu", count, name, n);
    return first;
}

/* The exported span of service (resource service.name "mesh-<svc>") with the given span id / parent
 * id (NULL: any). */
static const json_t *exported(const json_t *all, const char *service, const char *name,
                              const char *span_id, const char *parent_id)
{
    size_t i;
    const json_t *e;
    json_array_foreach(all, i, e)
    {
        const json_t *sp = json_object_get(e, "span");
        if (strcmp(mh_json_str(e, "service") ?: "", service) != 0 ||
            strcmp(mh_json_str(sp, "traceId") ?: "", TRACE_IN) != 0)
            continue;
        if (name != NULL && strcmp(mh_json_str(sp, "name") ?: "", name) != 0)
            continue;
        if (span_id != NULL && strcmp(mh_json_str(sp, "spanId") ?: "", span_id) != 0)
            continue;
        if (parent_id != NULL && strcmp(mh_json_str(sp, "parentSpanId") ?: "", parent_id) != 0)
            continue;
        return sp;
    }
    return NULL;
}

static void test_turn_timeline_and_export(void **state)
{
    (void)state;
    char conv[64], url[256];
    snprintf(conv, sizeof(conv), "trace-live-%d", (int)getpid());
    snprintf(url, sizeof(url), "%s/v1/conversations/%s/messages", mh_mesh_url(s_mesh), conv);
    const char *hdrs[] = {"traceparent: " TP_IN, NULL};
    mh_http_resp_t r;
    assert_int_equal(mh_http("POST", url,
                             "{\"text\":\"我的保单 P10023 保障什么？\",\"message_id\":\"m1\"}",
                             hdrs, TURN_MS, &r),
                     0);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);

    snprintf(url, sizeof(url), "%s/v1/conversations/%s/turns/1/trace", mh_mesh_url(s_mesh), conv);
    assert_int_equal(mh_http_get(url, &r), 0);
    if (r.status != 200)
        fail_msg("trace route: %ld %s", r.status, r.body ? r.body : "");
    assert_string_equal(mh_json_str(r.json, "trace_id"), TRACE_IN);
    const json_t *spans = json_object_get(r.json, "spans");
    assert_true(json_is_array(spans));
    size_t i;
    const json_t *sp;
    json_array_foreach(spans, i, sp)
    {
        assert_string_equal(mh_json_str(sp, "trace_id"), TRACE_IN);
        assert_true(json_is_integer(json_object_get(sp, "start_unix_nano")));
        assert_true(json_is_number(json_object_get(sp, "duration_ms")));
    }
    const json_t *turn = span_named(spans, "router turn", 1);
    const json_t *queue = span_named(spans, "router queue", 1);
    const json_t *begin = span_named(spans, "memory turn.begin", 1);
    const json_t *llm = span_named(spans, "llm llm.chat", 2);
    const json_t *tool = span_named(spans, "tools tool.call", 1);
    const json_t *end = span_named(spans, "memory turn.end", 1);
    const char *turn_id = mh_json_str(turn, "span_id");
    const json_t *children[] = {queue, begin, llm, tool, end};
    for (size_t k = 0; k < sizeof(children) / sizeof(children[0]); k++)
        assert_string_equal(mh_json_str(children[k], "parent_span_id"), turn_id);
    json_array_foreach(spans, i, sp)
    {
        if (sp != turn)
            assert_string_equal(mh_json_str(sp, "parent_span_id"), turn_id);
    }
    assert_string_equal(mh_json_str(begin, "status"), "ok");
    assert_string_equal(mh_json_str(tool, "status"), "ok");

    /* The gateway's span (child of the client's) is the router turn's parent. */
    const char *gw_span = mh_json_str(turn, "parent_span_id");
    assert_non_null(gw_span);
    assert_int_equal(strlen(gw_span), 16);
    char *tool_id = strdup(mh_json_str(tool, "span_id"));
    char *begin_id = strdup(mh_json_str(begin, "span_id"));
    char *turn_sid = strdup(turn_id);
    char *gw_sid = strdup(gw_span);
    char *llm_ids[2] = {NULL, NULL};
    size_t n_llm = 0;
    json_array_foreach(spans, i, sp)
    {
        if (strcmp(mh_json_str(sp, "name"), "llm llm.chat") == 0 && n_llm < 2)
            llm_ids[n_llm++] = strdup(mh_json_str(sp, "span_id"));
    }
    (void)llm;
    mh_http_resp_clear(&r);

    /* The collector gets every hop's span: poll until the workers' arrived. */
    uint64_t until = mh_now_ms() + EXPORT_MS;
    json_t *all = NULL;
    bool complete = false;
    while (!complete && mh_now_ms() < until) {
        json_decref(all);
        all = otlp_stub_spans(&s_stub);
        assert_non_null(all);
        complete = exported(all, "mesh-gateway", NULL, gw_sid, PARENT_IN) != NULL &&
                   exported(all, "mesh-router", "router turn", turn_sid, gw_sid) != NULL &&
                   exported(all, "mesh-memory", "memory turn.begin", NULL, begin_id) != NULL &&
                   exported(all, "mesh-tools", "tools tool.call", NULL, tool_id) != NULL &&
                   exported(all, "mesh-llm", "llm llm.chat", NULL, llm_ids[0]) != NULL &&
                   exported(all, "mesh-llm", "llm llm.chat", NULL, llm_ids[1]) != NULL;
        if (!complete)
            poll(NULL, 0, 20); /* the exporters post every 50 ms */
    }
    if (!complete)
        fail_msg("collector lacks spans of the turn: %s",
                 all ? json_dumps(all, JSON_COMPACT) : "(bad body)");
    json_decref(all);
    assert_true(otlp_stub_requests(&s_stub) > 0);
    free(tool_id);
    free(begin_id);
    free(turn_sid);
    free(gw_sid);
    free(llm_ids[0]);
    free(llm_ids[1]);
}

static void test_trace_unknown_turn_404(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/conversations/trace-none-%d/turns/7/trace",
             mh_mesh_url(s_mesh), (int)getpid());
    mh_http_resp_t r;
    assert_int_equal(mh_http_get(url, &r), 0);
    assert_int_equal(r.status, 404);
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("trace") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_line_is_json),
        cmocka_unit_test(test_error_line_carries_trace_id),
        cmocka_unit_test(test_personal_data_not_logged),
        cmocka_unit_test(test_collector_down_never_blocks),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_turn_timeline_and_export),
        cmocka_unit_test(test_trace_unknown_turn_404),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    failed += cmocka_run_group_tests(live, live_setup, live_teardown);
    return mh_finish(failed);
}
