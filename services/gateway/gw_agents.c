/*
 * gw_agents.c - the catalogue of digital workers (gw_agents.h).
 */
#include "gw_agents.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "validate.h"

#define LOG_SUB "gateway"

struct gateway_agents {
    gateway_agent_t *items;
    size_t n;
};

static void copy_utf8(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    if (src[n] != '\0')
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static const char *description_of(const json_t *d)
{
    if (json_is_string(d))
        return json_string_value(d);
    if (json_is_object(d)) {
        const char *en = json_string_value(json_object_get(d, "en"));
        const char *zh = json_string_value(json_object_get(d, "zh"));
        return en ? en : zh ? zh : "";
    }
    return "";
}

/* Read one agent file into a. 0, or a reason to skip it. */
static int load_one(const char *path, gateway_agent_t *a)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return MESH_ENOTFOUND;
    if (st.st_size > GATEWAY_AGENT_FILE_MAX)
        return MESH_ETOOBIG;
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return MESH_EPROTO;
    int rc = MESH_EPROTO;
    const json_t *name = json_object_get(root, "name");
    if (json_is_string(name) &&
        gateway_agent_valid(json_string_value(name), json_string_length(name))) {
        memcpy(a->name, json_string_value(name), json_string_length(name) + 1);
        copy_utf8(a->description, sizeof(a->description),
                  description_of(json_object_get(root, "description")));
        a->created = (int64_t)st.st_mtime;
        rc = 0;
    }
    json_decref(root);
    return rc;
}

static int by_name(const void *x, const void *y)
{
    return strcmp(((const gateway_agent_t *)x)->name, ((const gateway_agent_t *)y)->name);
}

int gateway_agents_load(const char *data_dir, gateway_agents_t **out)
{
    if (!data_dir || !out)
        return MESH_EINVAL;
    *out = NULL;
    char dir[4096];
    if (snprintf(dir, sizeof(dir), "%s/agents", data_dir) >= (int)sizeof(dir))
        return MESH_EINVAL;
    DIR *d = opendir(dir);
    if (!d)
        return MESH_ENOTFOUND;
    gateway_agents_t *a = calloc(1, sizeof(*a));
    if (a)
        a->items = calloc(GATEWAY_AGENTS_MAX, sizeof(*a->items));
    if (!a || !a->items) {
        closedir(d);
        gateway_agents_destroy(&a);
        return MESH_ENOMEM;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0 || e->d_name[0] == '.')
            continue;
        if (a->n >= GATEWAY_AGENTS_MAX) {
            mesh_log_warn(LOG_SUB, "more than %d agent files: the rest are not listed",
                          GATEWAY_AGENTS_MAX);
            break;
        }
        char path[4096 + 256];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        gateway_agent_t *ag = &a->items[a->n];
        int rc = load_one(path, ag);
        if (rc != 0) {
            char s[4 * 64 + 4];
            mesh_log_warn(LOG_SUB, "agent file %s skipped: %s",
                          mesh_log_sanitize(e->d_name, n, s, sizeof(s)), mesh_strerror(rc));
            continue;
        }
        if (gateway_agents_find(a, ag->name, strlen(ag->name)) != NULL)
            continue; /* first file wins; the router refuses duplicates anyway */
        a->n++;
    }
    closedir(d);
    qsort(a->items, a->n, sizeof(*a->items), by_name);
    *out = a;
    return 0;
}

size_t gateway_agents_count(const gateway_agents_t *a)
{
    return a ? a->n : 0;
}

const gateway_agent_t *gateway_agents_at(const gateway_agents_t *a, size_t i)
{
    return (a && i < a->n) ? &a->items[i] : NULL;
}

const gateway_agent_t *gateway_agents_find(const gateway_agents_t *a, const char *name, size_t len)
{
    if (!a || !name)
        return NULL;
    for (size_t i = 0; i < a->n; i++)
        if (strlen(a->items[i].name) == len && memcmp(a->items[i].name, name, len) == 0)
            return &a->items[i];
    return NULL;
}

void gateway_agents_destroy(gateway_agents_t **a_p)
{
    if (!a_p || !*a_p)
        return;
    free((*a_p)->items);
    free(*a_p);
    *a_p = NULL;
}
