/*
 * lg_scen.h - scripted multi-turn scenarios of the load generator
 * (mesh-loadgen --scenario NAME): bench/scenarios/<name>.json, format in
 * bench/README.md ("Scenarios").
 */
#ifndef LG_SCEN_H
#define LG_SCEN_H

#include <stddef.h>
#include <stdint.h>

#include "lg_hist.h"

#define LG_SCEN_MAX       8    /* scenarios in one run ("mixed" loads every file) */
#define LG_SCEN_CONVS_MAX 256  /* conversations per file */
#define LG_SCEN_MSGS_MAX  64   /* messages per conversation */
#define LG_SCEN_MSG_MAX   2048 /* bytes of one message after substitution */
#define LG_SCEN_NAME_MAX  64
#define LG_SCEN_FILE_MAX  (1024 * 1024) /* bytes of one scenario file */

typedef struct {
    size_t n_msgs;
    char **msgs; /* owned, NUL-terminated UTF-8 */
} lg_sconv_t;

/* One scenario file and the numbers measured for it. */
typedef struct {
    char name[LG_SCEN_NAME_MAX + 1];
    char agent[LG_SCEN_NAME_MAX + 1];
    size_t n_convs;
    lg_sconv_t *convs; /* owned */
    /* results (measured window only) */
    lg_hist_t hist;
    uint64_t ok;
    uint64_t errors;
} lg_scen_t;

typedef struct {
    size_t n;
    lg_scen_t s[LG_SCEN_MAX];
} lg_scen_set_t;

/* The names --scenario accepts (NULL-terminated); "mixed" loads every other one that exists. */
extern const char *const lg_scen_names[];

/*
 * Load scenario name ("mixed" = all of them) from dir into set. Returns 0, or
 * -1 after writing a message naming the file and the field into err.
 */
int lg_scen_load(const char *dir, const char *name, lg_scen_set_t *set, char *err, size_t err_size);

void lg_scen_free(lg_scen_set_t *set);

/*
 * Message msg with {policy} -> "P%05d" of policy and {n} -> seq, JSON-escaped
 * (without quotes) into out. Returns the length, or -1 when it does not fit.
 */
int lg_scen_render(const char *msg, int policy, unsigned long long seq, char *out, size_t out_size);

#endif
