/*
 * harness_stub.c - the protocol-faithful model stub for tests (mesh_harness.h),
 * meshes whose llm workers use the openai backend against it, and the
 * requests it recorded.
 */
#define _GNU_SOURCE
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_harness.h"

/* Bound on the stub's start-up (its "listening on port" log line). */
#define MH_STUB_START_MS 5000
/* Bound on one MESH_LLM_TIERS entry: every tier's URL and model at one port. */
#define MH_TIERS_MAX 1024

int mh_openai_stub_start_on(int port, bool close_each, const char *record_name,
                            mh_proc_t **proc_out, char record_out[MH_PATH_MAX])
{
    /* The recorded exchanges live beside the harness: tests/stubs/openai. */
    char file[MH_PATH_MAX], scripts[MH_PATH_MAX];
    snprintf(file, sizeof(file), "%s", __FILE__);
    snprintf(scripts, sizeof(scripts), "%s/../stubs/openai", dirname(file));
    snprintf(record_out, MH_PATH_MAX, "%s/%s", mh_tmpdir(), record_name);
    *proc_out = NULL;
    if (port == 0)
        port = mh_free_port();
    if (port <= 0)
        return -1;
    char bin[MH_PATH_MAX], ports[16];
    mh_bin("openai-stub", bin, sizeof(bin));
    snprintf(ports, sizeof(ports), "%d", port);
    char *argv[] = {bin,     "--port",   ports,      "--scripts",
                    scripts, "--record", record_out, close_each ? "--close" : NULL,
                    NULL};
    *proc_out = mh_proc_spawn(close_each ? "openai-stub-close" : "openai-stub", argv, NULL);
    if (*proc_out == NULL || !mh_log_wait(*proc_out, 0, "listening on port", MH_STUB_START_MS)) {
        fprintf(stderr, "the openai stub did not start\n");
        return -1;
    }
    return port;
}

int mh_openai_stub_start(const char *record_name, mh_proc_t **proc_out,
                         char record_out[MH_PATH_MAX])
{
    return mh_openai_stub_start_on(0, false, record_name, proc_out, record_out);
}

/* "MESH_LLM_TIERS=" with every "tier=model" of tiers at the stub's port. 0 or -1 (too long). */
static int tiers_env(char *out, size_t size, int port, const char *tiers)
{
    size_t len = (size_t)snprintf(out, size, "MESH_LLM_TIERS=");
    for (const char *t = tiers; *t != '\0';) {
        size_t n = strcspn(t, ",");
        const char *eq = memchr(t, '=', n);
        if (eq == NULL)
            return -1;
        int w = snprintf(out + len, size - len, "%s%.*s=http://127.0.0.1:%d/v1|%.*s",
                         t == tiers ? "" : ",", (int)(eq - t), t, port,
                         (int)(n - (size_t)(eq - t) - 1), eq + 1);
        if (w < 0 || (size_t)w >= size - len)
            return -1;
        len += (size_t)w;
        t += n;
        if (*t == ',')
            t++;
    }
    return 0;
}

mh_mesh_t *mh_openai_mesh_start(int port, const char *tiers, const char *const llm_env[],
                                const mh_mesh_opts_t *opts)
{
    mh_mesh_opts_t o;
    if (opts != NULL)
        o = *opts;
    else
        memset(&o, 0, sizeof(o));
    char tiers_kv[MH_TIERS_MAX];
    if (tiers_env(tiers_kv, sizeof(tiers_kv), port, tiers) != 0) {
        fprintf(stderr, "mh_openai_mesh_start: bad or too long tiers \"%s\"\n", tiers);
        return NULL;
    }
    size_t n = 0;
    o.env[MH_LLM][n++] = "MESH_LLM_BACKEND=openai";
    o.env[MH_LLM][n++] = tiers_kv;
    for (size_t i = 0; llm_env != NULL && llm_env[i] != NULL; i++) {
        if (n + 1 >= MH_MAX_ENV) {
            fprintf(stderr, "mh_openai_mesh_start: more than %d llm entries\n", MH_MAX_ENV - 1);
            return NULL;
        }
        o.env[MH_LLM][n++] = llm_env[i];
    }
    o.env[MH_LLM][n] = NULL;
    /* mh_proc_spawn copies the environment: tiers_kv need not outlive this call. */
    return mh_mesh_start(&o);
}

int mh_openai_mesh_teardown(mh_mesh_t **mesh_p, mh_proc_t **stub_p)
{
    int rc = mh_mesh_teardown(mesh_p);
    mh_proc_destroy(stub_p);
    return rc;
}

json_t *mh_openai_stub_requests(const char *record, const char *model, const char *script)
{
    json_t *all = json_array();
    FILE *f = fopen(record, "r");
    if (f == NULL)
        return all;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        const char *m = mh_json_str(json_object_get(o, "body"), "model");
        const char *s = mh_json_str(o, "script");
        if ((model != NULL && m != NULL && strcmp(m, model) == 0) ||
            (script != NULL && s != NULL && strcmp(s, script) == 0))
            json_array_append(all, o);
        json_decref(o);
    }
    free(line);
    fclose(f);
    return all;
}
