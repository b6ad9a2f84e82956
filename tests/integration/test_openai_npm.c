/*
 * test_openai_npm.c - the official `openai` npm package (tests/node, pinned
 * in package-lock.json) talks to the gateway's /v1/chat/completions and
 * /v1/models through the whole mesh: `node tests/node/openai_client.mjs`
 * runs its checks (streamed and not, errors) and must exit 0.
 *
 * Skipped (with a message saying how to enable it) ONLY when
 * tests/node/node_modules is missing: CI runs `npm ci` in tests/node first.
 * Node itself missing is a failure, not a skip.
 */
#define _GNU_SOURCE
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_harness.h"

#define NODE_TIMEOUT_MS 60000

static char s_node_dir[MH_PATH_MAX];
static mh_mesh_t *s_mesh;

static int group_setup(void **state)
{
    (void)state;
    s_mesh = mh_mesh_start(NULL);
    return s_mesh ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return mh_mesh_teardown(&s_mesh);
}

static void test_openai_npm_client(void **state)
{
    (void)state;
    char mod[MH_PATH_MAX + 64];
    snprintf(mod, sizeof(mod), "%s/node_modules/openai/package.json", s_node_dir);
    struct stat st;
    if (stat(mod, &st) != 0) {
        fprintf(stderr, "SKIP: %s missing: run `npm ci` in %s to run the openai npm client\n", mod,
                s_node_dir);
        skip();
    }
    char script[MH_PATH_MAX + 64], base[128], conv[64], node[] = "/usr/bin/env";
    snprintf(script, sizeof(script), "%s/openai_client.mjs", s_node_dir);
    snprintf(base, sizeof(base), "MESH_OPENAI_BASE_URL=%s/v1", mh_mesh_url(s_mesh));
    snprintf(conv, sizeof(conv), "MESH_TEST_CONV=npm-%d", (int)getpid());
    const char *path = getenv("PATH");
    char path_env[4096];
    snprintf(path_env, sizeof(path_env), "PATH=%s", path ? path : "/usr/bin:/bin");
    char *argv[] = {node, "node", script, NULL};
    const char *env[] = {base, conv, path_env, NULL};
    mh_proc_t *p = mh_proc_spawn("node-openai", argv, env);
    assert_non_null(p);
    int rc = mh_proc_wait_exit(p, NODE_TIMEOUT_MS);
    char *log = mh_log_read(p, 0);
    if (rc != 0 || !log || !strstr(log, "ALL OK"))
        fail_msg("node openai_client.mjs exited %d:\n%s", rc, log ? log : "(no output)");
    /* a few of the checks it reported */
    assert_non_null(strstr(log, "ok - the streamed answer equals the unstreamed one"));
    assert_non_null(strstr(log, "ok - a retried request gets the stored answer"));
    free(log);
    mh_proc_destroy(&p);
}

int main(void)
{
    if (mh_init("test_openai_npm") != 0)
        return 1;
    char file[MH_PATH_MAX];
    snprintf(file, sizeof(file), "%s", __FILE__);
    snprintf(s_node_dir, sizeof(s_node_dir), "%s/../node", dirname(file));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_npm_client),
    };
    return mh_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
