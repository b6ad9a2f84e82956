/*
 * test_llm_openai_backend.c - the openai backend on a real uv loop against
 * the stub server (a real process on loopback): streamed deltas forwarded
 * only when asked and concatenating to the answer, tool-call arguments
 * handed over as objects (and {"_raw"} when the model's are not JSON), a
 * call canceled in flight gets no callback, destroy with a call in flight,
 * the deadline without a fallback (ETIMEDOUT), a 4xx that is not retried,
 * vLLM's 400 for tool_choice "auto" answered with the fix in the message,
 * and every uv handle closed afterwards (uv_loop_close == 0).
 */
#define _GNU_SOURCE
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
#include <uv.h>

#include "llm_backend.h"
#include "mesh/mesh_err.h"
#include "mesh_harness.h"

static mh_proc_t *s_stub;
static char s_tiers[256];
static char s_record[MH_PATH_MAX];

typedef struct {
    int deltas, done, error, status;
    char text[4096];
    char deltas_text[4096];
    char model[128];
    char args[1024];
    size_t n_calls;
} capture_t;

static void cap_delta(llm_sink_t *s, const char *t, size_t n)
{
    capture_t *c = s->arg;
    c->deltas++;
    strncat(c->deltas_text, t, n);
}

static void cap_done(llm_sink_t *s, const llm_result_t *r)
{
    capture_t *c = s->arg;
    c->done++;
    snprintf(c->model, sizeof(c->model), "%s", r->model ? r->model : "");
    if (r->type == LLM_RESULT_TEXT) {
        snprintf(c->text, sizeof(c->text), "%.*s", (int)r->text_len, r->text);
    } else {
        c->n_calls = r->n_calls;
        char *a = json_dumps(r->calls[0].arguments, JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(c->args, sizeof(c->args), "%s", a);
        free(a);
    }
}

static void cap_error(llm_sink_t *s, int status, const char *msg)
{
    capture_t *c = s->arg;
    c->error++;
    c->status = status;
    snprintf(c->text, sizeof(c->text), "%s", msg ? msg : "");
}

typedef struct {
    uv_loop_t loop;
    mesh_config_entry_t cfg[8];
    llm_backend_t *b;
    llm_message_t msg;
    json_t *state;
    llm_call_t call;
    llm_sink_t sink;
    capture_t cap;
    char text[128];
} fx_t;

static void fx_init(fx_t *f, const char *script, bool stream, uint64_t deadline_ms)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    const char *names[][2] = {
        {"MESH_LLM_TIERS", s_tiers}, {"MESH_LLM_API_KEY", "k"}, {"MESH_LLM_TEMPERATURE", "0"}};
    size_t n = 0;
    for (; n < 3; n++) {
        f->cfg[n].name = names[n][0];
        f->cfg[n].type = MESH_CFG_STRING;
        f->cfg[n].s = names[n][1];
    }
    const char *ints[][2] = {{"MESH_LLM_RETRIES", "1"}, {"MESH_LLM_BACKOFF_MS", "20"}};
    for (size_t i = 0; i < 2; i++, n++) {
        f->cfg[n].name = ints[i][0];
        f->cfg[n].type = MESH_CFG_INT;
        f->cfg[n].i = atoi(ints[i][1]);
    }
    llm_backend_config_t bc = {.config = f->cfg, .n_config = n};
    f->b = llm_backend_new("openai", &f->loop, &bc);
    assert_non_null(f->b);
    snprintf(f->text, sizeof(f->text), "#stub:%s test", script);
    f->msg = (llm_message_t){.role = LLM_ROLE_USER, .text = f->text, .text_len = strlen(f->text)};
    f->state = json_object();
    f->call = (llm_call_t){.id = "r1",
                           .agent = "policy_qa",
                           .tier = "nope", /* unknown: the first tier */
                           .system = "",
                           .lang = "en",
                           .messages = &f->msg,
                           .n_messages = 1,
                           .stream = stream,
                           .deadline = uv_now(&f->loop) + deadline_ms,
                           .state = f->state,
                           .fallback = "",
                           .response_format = ""};
    f->sink = (llm_sink_t){cap_delta, cap_done, cap_error, &f->cap};
}

static void run_until_answer(fx_t *f, int timeout_ms)
{
    uint64_t end = mh_now_ms() + (uint64_t)timeout_ms;
    while (f->cap.done + f->cap.error == 0 && mh_now_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void fx_close(fx_t *f)
{
    llm_backend_destroy(&f->b);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* close callbacks */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    json_decref(f->state);
}

static int count_requests(const char *script)
{
    char needle[96];
    snprintf(needle, sizeof(needle), "\"script\":\"%s\"", script);
    return mh_file_count(s_record, 0, needle);
}

/* ---- tests ---- */

static void test_stream_deltas_concatenate(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f, "text_stream", true, 5000);
    llm_handle_t *h = NULL;
    assert_int_equal(llm_backend_start(f.b, &f.call, &f.sink, &h), 0);
    assert_non_null(h);
    run_until_answer(&f, 5000);
    assert_int_equal(f.cap.done, 1);
    assert_string_equal(f.cap.text, "Streamed 答案：保单 P10023 有效。");
    assert_string_equal(f.cap.deltas_text, f.cap.text);
    assert_int_equal(f.cap.deltas, 6);
    assert_string_equal(f.cap.model, "stub-model");
    fx_close(&f);

    /* not streamed: the same answer, no deltas */
    fx_init(&f, "text_stream", false, 5000);
    assert_int_equal(llm_backend_start(f.b, &f.call, &f.sink, &h), 0);
    run_until_answer(&f, 5000);
    assert_int_equal(f.cap.done, 1);
    assert_int_equal(f.cap.deltas, 0);
    fx_close(&f);
}

static void test_tool_arguments_as_objects(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f, "tool_split", false, 5000);
    llm_handle_t *h = NULL;
    assert_int_equal(llm_backend_start(f.b, &f.call, &f.sink, &h), 0);
    run_until_answer(&f, 5000);
    assert_int_equal(f.cap.done, 1);
    assert_int_equal(f.cap.n_calls, 1);
    assert_string_equal(f.cap.args, "{\"policy_no\":\"P10023\"}");
    fx_close(&f);

    fx_init(&f, "tool_bad_args", false, 5000);
    assert_int_equal(llm_backend_start(f.b, &f.call, &f.sink, &h), 0);
    run_until_answer(&f, 5000);
    assert_int_equal(f.cap.done, 1);
    assert_string_equal(f.cap.args, "{\"_raw\":\"{policy_no: P10023\"}");
    fx_close(&f);
}

static void test_cancel_in_flight(void **state)
{
    (void)state;
    fx_t f;
    int before = count_requests("stall");
    fx_init(&f, "stall", true, 10000);
    llm_handle_t *h = NULL;
    assert_int_equal(llm_backend_start(f.b, &f.call, &f.sink, &h), 0);
    assert_non_null(h);
    /* run until the stub has the request and the first deltas arrived */
    uint64_t end = mh_now_ms() + 5000;
    while (f.cap.deltas < 1 && mh_now_ms() < end)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_true(f.cap.deltas >= 1);
    assert_int_equal(count_requests("stall"), before + 1);
    llm_backend_cancel(h);
    /* nothing more: no terminal callback, even past the deadline's worth of loop */
    end = mh_now_ms() + 200;
    while (mh_now_ms() < end)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(f.cap.done + f.cap.error, 0);
    fx_close(&f);
}

static void test_destroy_with_call_in_flight(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f, "stall", false, 10000);
    llm_handle_t *h = NULL;
    assert_int_equal(llm_backend_start(f.b, &f.call, &f.sink, &h), 0);
    uint64_t end = mh_now_ms() + 300;
    while (mh_now_ms() < end)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    fx_close(&f); /* destroy cancels silently and every handle closes */
    assert_int_equal(f.cap.done + f.cap.error, 0);
}

static void test_deadline_without_fallback(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f, "stall", false, 400);
    llm_handle_t *h = NULL;
    uint64_t t0 = mh_now_ms();
    assert_int_equal(llm_backend_start(f.b, &f.call, &f.sink, &h), 0);
    run_until_answer(&f, 5000);
    assert_int_equal(f.cap.error, 1);
    assert_int_equal(f.cap.status, MESH_ETIMEDOUT);
    assert_true(mh_now_ms() - t0 < 1500);
    fx_close(&f);
}

static void test_4xx_not_retried(void **state)
{
    (void)state;
    fx_t f;
    int before = count_requests("no_such_script");
    fx_init(&f, "no_such_script", false, 5000); /* the stub answers 404 */
    llm_handle_t *h = NULL;
    assert_int_equal(llm_backend_start(f.b, &f.call, &f.sink, &h), 0);
    run_until_answer(&f, 5000);
    assert_int_equal(f.cap.error, 1);
    assert_int_equal(f.cap.status, MESH_EUNAVAIL);
    assert_int_equal(count_requests("no_such_script"), before + 1);
    fx_close(&f);
}

static void test_vllm_auto_tool_choice_hint(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f, "vllm_no_auto_tool_choice", false, 5000);
    llm_handle_t *h = NULL;
    assert_int_equal(llm_backend_start(f.b, &f.call, &f.sink, &h), 0);
    run_until_answer(&f, 5000);
    assert_int_equal(f.cap.error, 1);
    assert_int_equal(f.cap.status, MESH_EUNAVAIL);
    assert_non_null(strstr(f.cap.text, "--enable-auto-tool-choice"));
    fx_close(&f);
}

static int setup(void **state)
{
    (void)state;
    char file[MH_PATH_MAX], scripts[MH_PATH_MAX], bin[MH_PATH_MAX], ports[16];
    snprintf(file, sizeof(file), "%s", __FILE__);
    snprintf(scripts, sizeof(scripts), "%s/../stubs/openai", dirname(file));
    snprintf(s_record, sizeof(s_record), "%s/requests.jsonl", mh_tmpdir());
    int port = mh_free_port();
    mh_bin("openai-stub", bin, sizeof(bin));
    snprintf(ports, sizeof(ports), "%d", port);
    char *argv[] = {bin, "--port", ports, "--scripts", scripts, "--record", s_record, NULL};
    s_stub = mh_proc_spawn("openai-stub", argv, NULL);
    if (s_stub == NULL || !mh_log_wait(s_stub, 0, "listening on port", 5000))
        return -1;
    snprintf(s_tiers, sizeof(s_tiers), "small=http://127.0.0.1:%d/v1|stub-model", port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mh_proc_destroy(&s_stub);
    return 0;
}

int main(void)
{
    if (mh_init("llm_openai_backend") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_deltas_concatenate),
        cmocka_unit_test(test_tool_arguments_as_objects),
        cmocka_unit_test(test_cancel_in_flight),
        cmocka_unit_test(test_destroy_with_call_in_flight),
        cmocka_unit_test(test_deadline_without_fallback),
        cmocka_unit_test(test_4xx_not_retried),
        cmocka_unit_test(test_vllm_auto_tool_choice_hint),
    };
    return mh_finish(cmocka_run_group_tests(tests, setup, teardown));
}
