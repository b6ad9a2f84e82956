/*
 * config.c - 12-factor configuration from the environment (mesh_config.h).
 *
 * Values are read once at start-up. Integers must be plain decimal (an
 * optional sign, digits, nothing else) so "10ms" or " 5" are refused rather
 * than silently read as 10 or 5. A string entry whose default is NULL is
 * optional: when unset it loads as "" (never NULL, so callers need no check).
 */
#include "mesh/mesh_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

/* Longest value accepted from the environment (a path or an endpoint list). */
#define CONFIG_VALUE_MAX 4096
/* Bytes of one item of mesh_config_split (the array's second dimension). */
#define CONFIG_ITEM_SIZE 256

/* Parse a whole decimal int64. 0 or MESH_EINVAL (empty, junk, overflow). */
static int parse_int64(const char *s, int64_t *out)
{
    const char *p = s;

    if (*p == '+' || *p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return MESH_EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return MESH_EINVAL;
    *out = (int64_t)v;
    return 0;
}

static void set_err(char *err, size_t err_size, const char *name, const char *reason,
                    const char *value)
{
    if (err == NULL || err_size == 0)
        return;
    if (value != NULL) {
        char shown[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(value, strlen(value), shown, sizeof(shown));
        snprintf(err, err_size, "%s: %s: '%s'", name, reason, shown);
    } else {
        snprintf(err, err_size, "%s: %s", name, reason);
    }
}

static int load_one(mesh_config_entry_t *e, char *err, size_t err_size)
{
    const char *env = getenv(e->name);
    const char *v = (env != NULL && env[0] != '\0') ? env : e->def;

    if (v != NULL && strnlen(v, CONFIG_VALUE_MAX + 1) > CONFIG_VALUE_MAX) {
        set_err(err, err_size, e->name, "value too long", NULL);
        return MESH_ECONFIG;
    }
    switch (e->type) {
    case MESH_CFG_INT: {
        int64_t i = 0;
        if (v == NULL) {
            set_err(err, err_size, e->name, "required, not set", NULL);
            return MESH_ECONFIG;
        }
        if (parse_int64(v, &i) != 0) {
            set_err(err, err_size, e->name, "not an integer", v);
            return MESH_ECONFIG;
        }
        if (i < e->min || i > e->max) {
            char reason[96];
            snprintf(reason, sizeof(reason), "out of range [%" PRId64 ", %" PRId64 "]", e->min,
                     e->max);
            set_err(err, err_size, e->name, reason, v);
            return MESH_ECONFIG;
        }
        e->i = i;
        e->s = v;
        return 0;
    }
    case MESH_CFG_STRING:
        e->s = v != NULL ? v : "";
        e->i = 0;
        return 0;
    }
    set_err(err, err_size, e->name, "unknown entry type", NULL);
    return MESH_ECONFIG;
}

int mesh_config_load(mesh_config_entry_t *table, size_t n, char *err, size_t err_size)
{
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (table == NULL && n > 0) {
        set_err(err, err_size, "config", "no table", NULL);
        return MESH_ECONFIG;
    }
    for (size_t k = 0; k < n; k++) {
        if (table[k].name == NULL) {
            set_err(err, err_size, "config", "entry without a name", NULL);
            return MESH_ECONFIG;
        }
        int rc = load_one(&table[k], err, err_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

mesh_config_entry_t *mesh_config_find(mesh_config_entry_t *table, size_t n, const char *name)
{
    if (table == NULL || name == NULL)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        if (table[k].name != NULL && strcmp(table[k].name, name) == 0)
            return &table[k];
    }
    return NULL;
}

int64_t mesh_config_int(mesh_config_entry_t *table, size_t n, const char *name)
{
    mesh_config_entry_t *e = mesh_config_find(table, n, name);
    return e != NULL ? e->i : 0;
}

const char *mesh_config_str(mesh_config_entry_t *table, size_t n, const char *name)
{
    mesh_config_entry_t *e = mesh_config_find(table, n, name);
    return e != NULL ? e->s : NULL;
}

void mesh_config_help(FILE *out, const mesh_config_entry_t *table, size_t n)
{
    int width = 0;

    if (out == NULL || table == NULL)
        return;
    for (size_t k = 0; k < n; k++) {
        int w = table[k].name != NULL ? (int)strlen(table[k].name) : 0;
        if (w > width)
            width = w;
    }
    for (size_t k = 0; k < n; k++) {
        const mesh_config_entry_t *e = &table[k];
        if (e->name == NULL)
            continue;
        fprintf(out, "  %-*s  (default: %s)  %s\n", width, e->name,
                e->def != NULL ? e->def : "none", e->help != NULL ? e->help : "");
    }
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int mesh_config_split(const char *list, char items[][CONFIG_ITEM_SIZE], int max)
{
    int count = 0;
    const char *p = list;

    if (list == NULL || items == NULL || max < 0)
        return MESH_EINVAL;
    /* An empty (or blank) list has no items; "a,,b" or "a," has an empty one. */
    while (is_space(*p))
        p++;
    if (*p == '\0')
        return 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma != NULL ? comma : p + strlen(p);
        const char *b = p;
        const char *e = end;
        while (b < e && is_space(*b))
            b++;
        while (e > b && is_space(e[-1]))
            e--;
        size_t len = (size_t)(e - b);
        if (len == 0 || len >= CONFIG_ITEM_SIZE || count >= max)
            return MESH_EINVAL;
        memcpy(items[count], b, len);
        items[count][len] = '\0';
        count++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return count;
}
