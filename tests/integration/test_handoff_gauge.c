/*
 * test_handoff_gauge.c - mesh_handoff_queue_length follows the queue even
 * when nobody lists it (no console open): the memory worker refreshes it
 * every MESH_HANDOFF_REFRESH_MS, and /readyz of the memory worker says
 * whether it reaches Redis.
 *
 * Whole mesh over HTTP (rules backend, real Redis): a customer asks
 * policy_qa for a person (handoff pending); memory's /metrics then shows
 * one pending conversation without any handoff.list having been sent. With
 * the refresh off (the gauge moves only on handoff.list) it would stay 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"
#include "prom_parse.h"

#define T_TIMEOUT_MS 10000

static int s_metrics_port;
static char s_metrics_env[48];
static mh_mesh_t *s_mesh;

static int group_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o;
    memset(&o, 0, sizeof(o));
    s_metrics_port = mh_free_port();
    if (s_metrics_port <= 0)
        return -1;
    snprintf(s_metrics_env, sizeof s_metrics_env, "MESH_METRICS_PORT=%d", s_metrics_port);
    o.env[MH_MEMORY][0] = s_metrics_env;
    o.env[MH_MEMORY][1] = "MESH_HANDOFF_REFRESH_MS=100";
    s_mesh = mh_mesh_start(&o);
    return s_mesh ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

/* mesh_handoff_queue_length from memory's /metrics (strictly parsed), -1 when absent. */
static double queue_length(void)
{
    mh_prom_t *doc = mh_metrics_scrape(s_metrics_port, "memory");
    double v = -1;
    if (mh_prom_find(doc, "mesh_handoff_queue_length", NULL, &v) != 1)
        v = -1;
    mh_prom_free(&doc);
    return v;
}

static void test_gauge_without_console(void **state)
{
    (void)state;
    assert_true(queue_length() == 0);
    mh_http_resp_t r;
    memset(&r, 0, sizeof r);
    char conv[64];
    snprintf(conv, sizeof conv, "gauge-%d", (int)getpid());
    assert_int_equal(mh_post_message(s_mesh, conv, "请帮我转人工", "g1", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(mh_json_str(r.json, "handoff"), "pending");
    mh_http_resp_clear(&r);
    /* Polled with a bound; nothing lists the queue meanwhile. */
    uint64_t deadline = mh_now_ms() + T_TIMEOUT_MS;
    double v = 0;
    while (mh_now_ms() < deadline && (v = queue_length()) != 1)
        ;
    assert_true(v == 1);

    /* The memory worker is ready while it reaches Redis. */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", s_metrics_port);
    memset(&r, 0, sizeof r);
    assert_int_equal(mh_http("GET", url, NULL, NULL, T_TIMEOUT_MS, &r), 0);
    assert_int_equal(r.status, 200);
    mh_http_resp_clear(&r);
}

int main(void)
{
    if (mh_init("handoff_gauge") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gauge_without_console),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
