/*
 * harness_stub.c - the protocol-faithful model stub for tests (mesh_harness.h).
 */
#define _GNU_SOURCE
#include <libgen.h>
#include <stdio.h>

#include "mesh_harness.h"

int mh_openai_stub_start(const char *record_name, mh_proc_t **proc_out,
                         char record_out[MH_PATH_MAX])
{
    /* The recorded exchanges live beside the harness: tests/stubs/openai. */
    char file[MH_PATH_MAX], scripts[MH_PATH_MAX];
    snprintf(file, sizeof(file), "%s", __FILE__);
    snprintf(scripts, sizeof(scripts), "%s/../stubs/openai", dirname(file));
    snprintf(record_out, MH_PATH_MAX, "%s/%s", mh_tmpdir(), record_name);
    *proc_out = NULL;
    int port = mh_free_port();
    if (port < 0)
        return -1;
    char bin[MH_PATH_MAX], ports[16];
    mh_bin("openai-stub", bin, sizeof(bin));
    snprintf(ports, sizeof(ports), "%d", port);
    char *argv[] = {bin, "--port", ports, "--scripts", scripts, "--record", record_out, NULL};
    *proc_out = mh_proc_spawn("openai-stub", argv, NULL);
    if (*proc_out == NULL || !mh_log_wait(*proc_out, 0, "listening on port", 5000)) {
        fprintf(stderr, "the openai stub did not start\n");
        return -1;
    }
    return port;
}
