/*
 * tools_data.c - load the tools worker's data directory (tools_data.h):
 * file reading, the products/ scan, the index accessors. The field checks
 * live in tools_data_decl.c, tools_data_products.c and tools_data_policies.c.
 */
#include "tools_data.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mesh/mesh_err.h"
#include "tools_data_int.h"

#define JSON_SUFFIX     ".json"
#define PRODUCTS_SUBDIR "products"
#define CATALOGUE_FILE  "medical/catalogue.json"

/* "<dir>/<name>" into out; MESH_ECONFIG when it does not fit. */
static int join_path(char *out, size_t out_size, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    const char *sep = (dl > 0 && dir[dl - 1] == '/') ? "" : "/";
    int n = snprintf(out, out_size, "%s%s%s", dir, sep, name);

    return (n < 0 || (size_t)n >= out_size) ? MESH_ECONFIG : 0;
}

void tools_errf(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

int tools_fail(char *err, size_t err_size, int code, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && err_size > 0) {
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

int tools_data_read_json(const char *path, long max_bytes, json_t **out, char *err, size_t err_size)
{
    struct stat st;
    json_error_t je;

    *out = NULL;
    if (stat(path, &st) != 0) {
        tools_errf(err, err_size, "%s: cannot read: %s", path, strerror(errno));
        return MESH_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        tools_errf(err, err_size, "%s: not a regular file", path);
        return MESH_EIO;
    }
    if (st.st_size > max_bytes) {
        tools_errf(err, err_size, "%s: larger than %ld bytes", path, max_bytes);
        return MESH_ECONFIG;
    }
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (*out == NULL) {
        tools_errf(err, err_size, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column, je.text);
        return MESH_ECONFIG;
    }
    return 0;
}

/* A data file of this set: at most TOOLS_DATA_FILE_MAX bytes. */
static int read_json(const char *path, json_t **out, char *err, size_t err_size)
{
    return tools_data_read_json(path, TOOLS_DATA_FILE_MAX, out, err, err_size);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_json_suffix(const char *name)
{
    size_t n = strlen(name), s = strlen(JSON_SUFFIX);

    return n > s && name[0] != '.' && strcmp(name + n - s, JSON_SUFFIX) == 0;
}

/* Sorted list of products/ *.json names (caller frees each and the array). */
static int list_products(const char *pdir, char ***names_out, size_t *n_out, char *err,
                         size_t err_size)
{
    DIR *dh = opendir(pdir);
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *de;

    *names_out = NULL;
    *n_out = 0;
    if (dh == NULL) {
        tools_errf(err, err_size, "%s: cannot open directory: %s", pdir, strerror(errno));
        return MESH_EIO;
    }
    names = calloc(TOOLS_PRODUCTS_MAX, sizeof(*names));
    if (names == NULL) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    while ((de = readdir(dh)) != NULL) {
        if (!has_json_suffix(de->d_name))
            continue;
        if (n == TOOLS_PRODUCTS_MAX) {
            tools_errf(err, err_size, "%s: more than %d product files", pdir, TOOLS_PRODUCTS_MAX);
            rc = MESH_ECONFIG;
            goto cleanup;
        }
        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            rc = MESH_ENOMEM;
            goto cleanup;
        }
        n++;
    }
    if (n == 0) {
        tools_errf(err, err_size, "%s: no product files (*.json)", pdir);
        rc = MESH_ECONFIG;
        goto cleanup;
    }
    qsort(names, n, sizeof(*names), cmp_names);
cleanup:
    closedir(dh);
    if (rc != 0 && names != NULL) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        names = NULL;
        n = 0;
    }
    *names_out = names;
    *n_out = n;
    return rc;
}

/* Remember a validated product's exclusion ids (the catalogue's exclusion classes refer to them).
 */
static int collect_exclusions(tools_data_t *d, const json_t *product)
{
    size_t i;
    const json_t *ex;

    json_array_foreach(json_object_get(product, "exclusions"), i, ex)
    {
        if (json_object_set_new(d->exclusion_ids, json_string_value(json_object_get(ex, "id")),
                                json_true()) != 0)
            return MESH_ENOMEM;
    }
    return 0;
}

static int load_catalogue(tools_data_t *d, const char *dir, char *err, size_t err_size)
{
    char path[TOOLS_PATH_MAX];
    json_t *root = NULL;
    tools_check_t c;
    int rc;

    if ((rc = join_path(path, sizeof(path), dir, CATALOGUE_FILE)) != 0) {
        tools_errf(err, err_size, "%s: path too long", dir);
        return rc;
    }
    if ((rc = read_json(path, &root, err, err_size)) != 0)
        return rc;
    tools_check_init(&c, path, err, err_size);
    rc = tools_catalogue_build(&c, root, d->exclusion_ids, &d->catalogue);
    json_decref(root);
    return rc;
}

static int load_products(tools_data_t *d, const char *dir, char *err, size_t err_size)
{
    char pdir[TOOLS_PATH_MAX], path[TOOLS_PATH_MAX];
    char **names = NULL;
    size_t n = 0;
    json_t *product = NULL;
    int rc;

    if ((rc = join_path(pdir, sizeof(pdir), dir, PRODUCTS_SUBDIR)) != 0) {
        tools_errf(err, err_size, "%s: path too long", dir);
        return rc;
    }
    if ((rc = list_products(pdir, &names, &n, err, err_size)) != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char file_id[TOOLS_PATH_MAX];
        tools_check_t c;

        if ((rc = join_path(path, sizeof(path), pdir, names[i])) != 0) {
            tools_errf(err, err_size, "%s: path too long", pdir);
            break;
        }
        if ((rc = read_json(path, &product, err, err_size)) != 0)
            break;
        snprintf(file_id, sizeof(file_id), "%.*s", (int)(strlen(names[i]) - strlen(JSON_SUFFIX)),
                 names[i]);
        tools_check_init(&c, path, err, err_size);
        rc = tools_data_check_product(&c, product, file_id);
        if (rc == 0)
            rc = collect_exclusions(d, product);
        if (rc == 0 && json_object_set_new(d->products, file_id, product) != 0)
            rc = MESH_ENOMEM;
        else if (rc != 0)
            json_decref(product);
        product = NULL;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int tools_data_load(const char *dir, tools_data_t **out, char *err, size_t err_size)
{
    char path[TOOLS_PATH_MAX];
    tools_data_t *d = NULL;
    tools_check_t c;
    int rc;

    *out = NULL;
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (dir == NULL || dir[0] == '\0') {
        tools_errf(err, err_size, "MESH_DATA_DIR: empty");
        return MESH_ECONFIG;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return MESH_ENOMEM;
    d->tools_by_name = json_object();
    d->products = json_object();
    d->policies = json_object();
    d->exclusion_ids = json_object();
    if (d->tools_by_name == NULL || d->products == NULL || d->policies == NULL ||
        d->exclusion_ids == NULL) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }

    if ((rc = load_products(d, dir, err, err_size)) != 0)
        goto cleanup;

    if ((rc = join_path(path, sizeof(path), dir, "tools.json")) != 0)
        goto cleanup;
    if ((rc = read_json(path, &d->tools, err, err_size)) != 0)
        goto cleanup;
    tools_check_init(&c, path, err, err_size);
    if ((rc = tools_data_check_tools(&c, d->tools, d)) != 0)
        goto cleanup;

    if ((rc = join_path(path, sizeof(path), dir, "policies.json")) != 0)
        goto cleanup;
    if ((rc = read_json(path, &d->policies_file, err, err_size)) != 0)
        goto cleanup;
    tools_check_init(&c, path, err, err_size);
    if ((rc = tools_data_check_policies(&c, d->policies_file, d)) != 0)
        goto cleanup;

    if ((rc = load_catalogue(d, dir, err, err_size)) != 0)
        goto cleanup;
    if ((rc = tools_training_load(dir, &d->training, err, err_size)) != 0)
        goto cleanup;

    *out = d;
    return 0;
cleanup:
    if (rc == MESH_ENOMEM)
        tools_errf(err, err_size, "%s: out of memory while loading", dir);
    tools_data_destroy(&d);
    return rc;
}

void tools_data_destroy(tools_data_t **d_p)
{
    tools_data_t *d;

    if (d_p == NULL || *d_p == NULL)
        return;
    d = *d_p;
    json_decref(d->tools);
    json_decref(d->tools_by_name);
    json_decref(d->products);
    json_decref(d->policies);
    json_decref(d->policies_file);
    json_decref(d->exclusion_ids);
    tools_catalogue_destroy(&d->catalogue);
    tools_training_destroy(&d->training);
    free(d);
    *d_p = NULL;
}

const json_t *tools_data_tools(const tools_data_t *d)
{
    return d->tools;
}

const json_t *tools_data_tool(const tools_data_t *d, const char *name)
{
    return json_object_get(d->tools_by_name, name);
}

const json_t *tools_data_product(const tools_data_t *d, const char *id)
{
    return json_object_get(d->products, id);
}

const json_t *tools_data_policy(const tools_data_t *d, const char *policy_no)
{
    return json_object_get(d->policies, policy_no);
}

size_t tools_data_policy_count(const tools_data_t *d)
{
    return json_object_size(d->policies);
}

size_t tools_data_product_count(const tools_data_t *d)
{
    return json_object_size(d->products);
}

const struct tools_catalogue *tools_data_catalogue(const tools_data_t *d)
{
    return d->catalogue;
}

const struct tools_training *tools_data_training(const tools_data_t *d)
{
    return d->training;
}

const char *tools_data_as_of(const tools_data_t *d)
{
    return d->as_of;
}
