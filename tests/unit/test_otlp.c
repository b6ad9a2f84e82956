/*
 * test_otlp.c - the OTLP/HTTP JSON exporter (lib/mesh/otlp.c) against a stub
 * collector on loopback: batches arrive whole and in bounded sizes; with
 * the collector down or refusing, spans are dropped and counted and nothing
 * blocks; the queue bound holds; destroy with a POST in flight is clean.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_otlp.h"
#include "otlp_stub.h"

#define WAIT_MS 5000
#define TP      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

typedef bool (*cond_fn)(void *arg);

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/*
 * Run the loop until cond holds or WAIT_MS passes. The exporter's timers
 * are unref'd (they must not keep a service alive), so a ref'd tick stands
 * in for the service's own handles; it also wakes the loop to re-check cond
 * while the stub collector works in its thread.
 */
static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 1, 1);
    uint64_t end = now_ms() + WAIT_MS;
    bool ok = true;
    while (!cond(arg)) {
        if (now_ms() > end) {
            ok = false;
            break;
        }
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static void close_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void make_span(mesh_span_t *sp, int i)
{
    mesh_span_start(sp, "step", MESH_SPAN_INTERNAL, TP);
    mesh_span_attr_int(sp, "i", i);
    sp->end_unix_nano = sp->start_unix_nano + 1000;
    sp->status = MESH_SPAN_OK;
}

typedef struct {
    otlp_stub_t *stub;
    int want_spans;
} stub_wait_t;

static bool stub_has_spans(void *arg)
{
    stub_wait_t *w = arg;
    json_t *all = otlp_stub_spans(w->stub);
    bool ok = all != NULL && (int)json_array_size(all) >= w->want_spans;
    json_decref(all);
    return ok;
}

typedef struct {
    mesh_otlp_t *x;
    uint64_t want_failed;
} exp_wait_t;

static bool exporter_settled(void *arg)
{
    exp_wait_t *w = arg;
    mesh_otlp_stats_t st;
    mesh_otlp_stats(w->x, &st);
    return st.posts_failed >= w->want_failed && !mesh_otlp_busy(w->x) &&
           mesh_otlp_pending(w->x) == 0;
}

static bool exporter_idle(void *arg)
{
    exp_wait_t *w = arg;
    mesh_otlp_stats_t st;
    mesh_otlp_stats(w->x, &st);
    return !mesh_otlp_busy(w->x) && mesh_otlp_pending(w->x) == 0 &&
           st.exported + st.dropped == st.queued;
}

static void test_batches_arrive(void **state)
{
    (void)state;
    otlp_stub_t stub;
    assert_int_equal(otlp_stub_start(&stub, 200), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", stub.port);
    mesh_otlp_opts_t o = {.endpoint = url,
                          .service = "router",
                          .queue_max = 16,
                          .batch_max = 3,
                          .interval_ms = 20,
                          .timeout_ms = 2000};
    mesh_otlp_t *x = mesh_otlp_new(&loop, &o);
    assert_non_null(x);
    for (int i = 0; i < 7; i++) {
        mesh_span_t sp;
        make_span(&sp, i);
        assert_int_equal(mesh_otlp_submit(x, &sp), 0);
    }
    stub_wait_t w = {&stub, 7};
    assert_true(run_until(&loop, stub_has_spans, &w));
    exp_wait_t ew = {x, 0};
    assert_true(run_until(&loop, exporter_idle, &ew));

    mesh_otlp_stats_t st;
    mesh_otlp_stats(x, &st);
    assert_int_equal(st.queued, 7);
    assert_int_equal(st.exported, 7);
    assert_int_equal(st.dropped, 0);
    /* batches of at most 3: at least 3 POSTs, each to /v1/traces */
    int n = otlp_stub_requests(&stub);
    assert_true(n >= 3);
    assert_int_equal(st.posts_ok, (uint64_t)n);
    for (int i = 0; i < n; i++)
        assert_string_equal(stub.paths[i], "/v1/traces");
    json_t *all = otlp_stub_spans(&stub);
    assert_int_equal(json_array_size(all), 7);
    /* every span arrived once, with the service's resource name */
    bool seen[7] = {false};
    size_t k;
    json_t *e;
    json_array_foreach(all, k, e)
    {
        assert_string_equal(json_string_value(json_object_get(e, "service")), "mesh-router");
        json_t *sp = json_object_get(e, "span");
        assert_string_equal(json_string_value(json_object_get(sp, "traceId")),
                            "4bf92f3577b34da6a3ce929d0e0e4736");
        json_t *a = json_array_get(json_object_get(sp, "attributes"), 0);
        int i = atoi(json_string_value(json_object_get(json_object_get(a, "value"), "intValue")));
        assert_true(i >= 0 && i < 7 && !seen[i]);
        seen[i] = true;
    }
    json_decref(all);
    mesh_otlp_destroy(&x);
    assert_null(x);
    close_loop(&loop);
    otlp_stub_stop(&stub);
}

static void test_collector_down_drops_and_counts(void **state)
{
    (void)state;
    /* a port nobody listens on: take one and close it */
    otlp_stub_t probe;
    assert_int_equal(otlp_stub_start(&probe, 200), 0);
    int dead_port = probe.port;
    otlp_stub_stop(&probe);

    uv_loop_t loop;
    uv_loop_init(&loop);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", dead_port);
    mesh_otlp_opts_t o = {.endpoint = url,
                          .service = "llm",
                          .queue_max = 4,
                          .batch_max = 2,
                          .interval_ms = 10,
                          .timeout_ms = 500};
    mesh_otlp_t *x = mesh_otlp_new(&loop, &o);
    assert_non_null(x);
    mesh_log_level_t lvl = mesh_log_get_level();
    mesh_log_set_level(MESH_LOG_ERROR); /* the one "export failed" warning is expected */

    /* submitting never waits: 10 spans into a queue of 4, no loop turn between */
    uint64_t t0 = uv_hrtime();
    int busy = 0;
    for (int i = 0; i < 10; i++) {
        mesh_span_t sp;
        make_span(&sp, i);
        busy += mesh_otlp_submit(x, &sp) == MESH_EBUSY;
    }
    uint64_t spent_us = (uv_hrtime() - t0) / 1000;
    assert_int_equal(busy, 6);
    assert_true(spent_us < 50000);

    exp_wait_t w = {x, 2};
    assert_true(run_until(&loop, exporter_settled, &w));
    mesh_otlp_stats_t st;
    mesh_otlp_stats(x, &st);
    assert_int_equal(st.queued, 4);
    assert_int_equal(st.exported, 0);
    assert_int_equal(st.dropped, 10);
    assert_int_equal(st.posts_ok, 0);
    assert_true(st.posts_failed >= 2);
    mesh_log_set_level(lvl);
    mesh_otlp_destroy(&x);
    close_loop(&loop);
}

static void test_collector_refusing_drops(void **state)
{
    (void)state;
    otlp_stub_t stub;
    assert_int_equal(otlp_stub_start(&stub, 503), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/traces", stub.port);
    mesh_otlp_opts_t o = {.endpoint = url, .service = "tools", .interval_ms = 10};
    mesh_otlp_t *x = mesh_otlp_new(&loop, &o);
    assert_non_null(x);
    mesh_log_level_t lvl = mesh_log_get_level();
    mesh_log_set_level(MESH_LOG_ERROR);
    mesh_span_t sp;
    make_span(&sp, 0);
    assert_int_equal(mesh_otlp_submit(x, &sp), 0);
    exp_wait_t w = {x, 1};
    assert_true(run_until(&loop, exporter_settled, &w));
    mesh_otlp_stats_t st;
    mesh_otlp_stats(x, &st);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.exported, 0);
    /* the full URL was used as given */
    assert_int_equal(otlp_stub_requests(&stub), 1);
    assert_string_equal(stub.paths[0], "/v1/traces");
    mesh_log_set_level(lvl);
    mesh_otlp_destroy(&x);
    close_loop(&loop);
    otlp_stub_stop(&stub);
}

static void test_sink_and_destroy_in_flight(void **state)
{
    (void)state;
    otlp_stub_t stub;
    assert_int_equal(otlp_stub_start(&stub, 200), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", stub.port);
    mesh_otlp_opts_t o = {.endpoint = url, .service = "memory", .batch_max = 1};
    mesh_otlp_t *x = mesh_otlp_new(&loop, &o);
    assert_non_null(x);
    /* finished spans reach the exporter through the trace sink */
    mesh_trace_set_sink(mesh_otlp_sink, x);
    mesh_span_t sp;
    mesh_span_start(&sp, "memory turn.end", MESH_SPAN_SERVER, TP);
    mesh_span_finish(&sp, 0);
    mesh_trace_set_sink(NULL, NULL);
    assert_int_equal(mesh_otlp_pending(x), 1);
    /* start the POST, then destroy with it in flight: no leak, no callback after */
    mesh_otlp_flush(x);
    assert_true(mesh_otlp_busy(x));
    uv_run(&loop, UV_RUN_NOWAIT);
    mesh_otlp_destroy(&x);
    close_loop(&loop);
    otlp_stub_stop(&stub);
}

static void test_bad_options(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mesh_otlp_opts_t o = {.endpoint = "", .service = "x"};
    assert_null(mesh_otlp_new(&loop, &o));
    o.endpoint = "http://127.0.0.1:1";
    o.queue_max = 2;
    o.batch_max = 3; /* batch larger than the queue */
    assert_null(mesh_otlp_new(&loop, &o));
    o.batch_max = 0;
    o.queue_max = MESH_OTLP_QUEUE_MAX + 1;
    assert_null(mesh_otlp_new(&loop, &o));
    char big[MESH_OTLP_URL_MAX + 8];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    o.queue_max = 0;
    o.endpoint = big;
    assert_null(mesh_otlp_new(&loop, &o));
    assert_null(mesh_otlp_new(&loop, NULL));
    assert_int_equal(mesh_otlp_submit(NULL, NULL), MESH_EINVAL);
    mesh_otlp_destroy(NULL);
    close_loop(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_arrive),
        cmocka_unit_test(test_collector_down_drops_and_counts),
        cmocka_unit_test(test_collector_refusing_drops),
        cmocka_unit_test(test_sink_and_destroy_in_flight),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
