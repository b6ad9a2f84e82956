/*
 * harness_internal.h - what the harness's .c files share (not for tests).
 */
#ifndef MESH_HARNESS_INTERNAL_H
#define MESH_HARNESS_INTERNAL_H

#include <sys/types.h>

#include "mesh_harness.h"

/* Processes the registry can hold at once (all tests of one executable). */
#define MH_REGISTRY_MAX 128

/* Record / forget a running child's pid (its process group id is the same). */
void mh__registry_add(pid_t pid);
void mh__registry_remove(pid_t pid);
/* SIGKILL every recorded process group; async-signal-safe. */
void mh__registry_kill_all(void);

/* Print the tail of every log in the temp dir (used by mh_finish on failure). */
void mh__dump_logs(void);

/* Read a whole file from offset from (NUL-terminated, malloc'd; NULL on error). */
char *mh__read_file(const char *path, size_t from, size_t *len_out);

#endif
