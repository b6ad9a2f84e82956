/*
 * mesh_config.h - 12-factor configuration from the environment.
 *
 * Each binary declares a table of mesh_config_entry_t (name, type, default,
 * bounds, help). mesh_config_load() reads every entry from the environment,
 * applies defaults, checks types and bounds, and reports the first bad value
 * naming the variable. mesh_config_help() prints the table for --help.
 *
 * The table owns no memory beyond what mesh_config_load() stores: string
 * values point into the environment or at the default literal.
 */
#ifndef MESH_CONFIG_H
#define MESH_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    MESH_CFG_INT,    /* int64 within [min, max] */
    MESH_CFG_STRING, /* any non-empty string (empty means default) */
} mesh_config_type_t;

typedef struct {
    const char *name; /* e.g. "MESH_HEARTBEAT_MS" */
    mesh_config_type_t type;
    const char *def;  /* default value as text */
    int64_t min, max; /* bounds for MESH_CFG_INT */
    const char *help; /* one line */
    /* filled by mesh_config_load: */
    int64_t i;
    const char *s;
} mesh_config_entry_t;

/*
 * Load every entry. On error writes "NAME: reason" into err (if non-NULL) and
 * returns MESH_ECONFIG; entries before the bad one are filled.
 */
int mesh_config_load(mesh_config_entry_t *table, size_t n, char *err, size_t err_size);

/* Look an entry up by name (NULL if absent). */
mesh_config_entry_t *mesh_config_find(mesh_config_entry_t *table, size_t n, const char *name);
int64_t mesh_config_int(mesh_config_entry_t *table, size_t n, const char *name);
const char *mesh_config_str(mesh_config_entry_t *table, size_t n, const char *name);

/* Print "  NAME  (default: X)  help" lines for --help. */
void mesh_config_help(FILE *out, const mesh_config_entry_t *table, size_t n);

/*
 * Split a comma-separated list (e.g. router endpoints) into at most max items
 * of at most item_size-1 bytes each. Returns the count (>= 0) or MESH_EINVAL
 * when an item is empty or too long or there are more than max.
 */
int mesh_config_split(const char *list, char items[][256], int max);

#endif
