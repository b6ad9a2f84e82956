/*
 * test_scaling.c - two routers and two workers of every service: 40 turns
 * over 20 conversations sent at once (curl multi) all succeed, and every
 * worker of every service served some of them (its debug log has
 * "request id=" lines), i.e. adding a process adds capacity with no
 * reconfiguration.
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

#include "mesh_harness.h"

#define N_CONV           20
#define TURNS_PER_CONV   2
#define N_TURNS          (N_CONV * TURNS_PER_CONV)
#define MULTI_TIMEOUT_MS 30000

static mh_mesh_t *s_mesh;

static int group_setup(void **state)
{
    (void)state;
    mh_mesh_opts_t o = {0};
    for (int s = 0; s < MH_GATEWAY; s++) {
        o.count[s] = 2;
    }
    s_mesh = mh_mesh_start(&o);
    return s_mesh != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

static void test_load_spreads_over_workers(void **state)
{
    (void)state;
    static mh_http_req_t reqs[N_TURNS];
    static char bodies[N_TURNS][256];
    /* every turn names its policy, so the two turns of a conversation may run in any order */
    static const char *const questions[TURNS_PER_CONV] = {"我的保单 P10023 保障什么？",
                                                          "What is the deductible of P10023?"};
    size_t marks[MH_N_SVC][MH_MAX_PER_SERVICE];
    for (int s = 0; s < MH_N_SVC; s++) {
        for (int i = 0; i < mh_mesh_count(s_mesh, (mh_svc_t)s); i++) {
            marks[s][i] = mh_log_mark(mh_mesh_proc(s_mesh, (mh_svc_t)s, i));
        }
    }
    for (int c = 0; c < N_CONV; c++) {
        for (int t = 0; t < TURNS_PER_CONV; t++) {
            int k = c * TURNS_PER_CONV + t;
            snprintf(bodies[k], sizeof bodies[k], "{\"text\":\"%s\",\"message_id\":\"sc-%d-%d\"}",
                     questions[t], c, t);
            memset(&reqs[k], 0, sizeof reqs[k]);
            reqs[k].method = "POST";
            reqs[k].body = bodies[k];
            snprintf(reqs[k].url, sizeof reqs[k].url,
                     "%s/v1/conversations/conv-scale-%d-%d/messages", mh_mesh_url(s_mesh),
                     (int)getpid(), c);
        }
    }
    int answered = mh_http_multi(reqs, N_TURNS, MULTI_TIMEOUT_MS);
    int ok = 0;
    for (int k = 0; k < N_TURNS; k++) {
        if (reqs[k].resp.status == 200 && mh_json_str(reqs[k].resp.json, "reply") != NULL) {
            ok++;
        } else {
            fprintf(stderr, "turn %d: %ld %s %s\n", k, reqs[k].resp.status,
                    reqs[k].resp.body != NULL ? reqs[k].resp.body : "", reqs[k].resp.curl_err);
        }
    }
    for (int k = 0; k < N_TURNS; k++) {
        mh_http_resp_clear(&reqs[k].resp);
    }
    assert_int_equal(answered, N_TURNS);
    assert_int_equal(ok, N_TURNS);

    static const mh_svc_t workers[] = {MH_LLM, MH_TOOLS, MH_MEMORY};
    for (size_t w = 0; w < sizeof workers / sizeof workers[0]; w++) {
        mh_svc_t s = workers[w];
        for (int i = 0; i < mh_mesh_count(s_mesh, s); i++) {
            mh_proc_t *p = mh_mesh_proc(s_mesh, s, i);
            int n = mh_log_count(p, marks[s][i], "request id=");
            mh_note("%s served %d requests", mh_proc_name(p), n);
            if (n < 1) {
                fail_msg("%s served no request (log %s)", mh_proc_name(p), mh_proc_log(p));
            }
        }
    }
}

int main(void)
{
    if (mh_init("scaling") != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_spreads_over_workers),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
