/*
 * tools_data.h - the tools worker's data set: tool declarations
 * (tools.json), products (products/ *.json), policies (policies.json), the
 * medical catalogue (medical/catalogue.json) and the trainer's data
 * (training/), loaded from one directory and validated as a whole.
 *
 * tools.json may declare tools served elsewhere ("service": "memory" or
 * "router"); they are checked for shape and skipped: only "tools" entries
 * (the default) are indexed and served here.
 *
 * A tools_data_t is immutable once loaded. Reload builds a new one and
 * swaps it in only when it validated, so a bad edit never replaces good data.
 * Every validation error names the file and the field:
 *   "data/policies.json: policies[12].product_id: unknown product 'X'"
 */
#ifndef TOOLS_DATA_H
#define TOOLS_DATA_H

#include <jansson.h>
#include <stddef.h>

/* Bounds on what the data files may hold (they are configuration, but a
 * truncated or runaway file must fail cleanly, not exhaust memory). */
#define TOOLS_DATA_FILE_MAX (64 * 1024 * 1024) /* bytes of one data file */
#define TOOLS_PRODUCTS_MAX  256                /* files in products/ */
#define TOOLS_POLICIES_MAX  1000000            /* policies in policies.json */
#define TOOLS_TOOLS_MAX     64                 /* tools declared in tools.json */
#define TOOLS_NAME_MAX      64                 /* a tool name, bytes */
#define TOOLS_PATH_MAX      1024               /* a data file path, bytes */
#define TOOLS_ERR_MAX       512                /* a load error message, bytes */

typedef struct tools_data tools_data_t;

/*
 * Load and validate everything under dir. On success *out owns a new data
 * set. On failure returns MESH_ECONFIG (invalid content), MESH_EIO (a file
 * missing or unreadable) or MESH_ENOMEM, writes "<file>: <field>: <reason>"
 * into err, and *out is NULL.
 */
int tools_data_load(const char *dir, tools_data_t **out, char *err, size_t err_size);

void tools_data_destroy(tools_data_t **d_p);

/* The tools.json array (borrowed): every entry, including those served elsewhere. */
const json_t *tools_data_tools(const tools_data_t *d);

/* One tool declaration served by this worker, by name, or NULL (borrowed). */
const json_t *tools_data_tool(const tools_data_t *d, const char *name);

/* One product by id, or NULL (borrowed). */
const json_t *tools_data_product(const tools_data_t *d, const char *id);

/* One policy by number, or NULL (borrowed). */
const json_t *tools_data_policy(const tools_data_t *d, const char *policy_no);

size_t tools_data_policy_count(const tools_data_t *d);
size_t tools_data_product_count(const tools_data_t *d);

/* The medical catalogue (borrowed; never NULL once loaded). */
struct tools_catalogue;
const struct tools_catalogue *tools_data_catalogue(const tools_data_t *d);

/* The trainer's data (borrowed; never NULL once loaded). */
struct tools_training;
const struct tools_training *tools_data_training(const tools_data_t *d);

/* The "as_of" date of policies.json ("" when absent). */
const char *tools_data_as_of(const tools_data_t *d);

/*
 * Parse one JSON file of at most max_bytes, duplicate keys refused (shared by
 * every loader of the tools worker's data). 0, MESH_EIO (cannot read, not a
 * regular file) or MESH_ECONFIG (too big, invalid JSON); err names the file
 * (and the line and column of a JSON error).
 */
int tools_data_read_json(const char *path, long max_bytes, json_t **out, char *err,
                         size_t err_size);

/* printf into err[0..err_size) (nothing when err is NULL): the loaders' and
 * the registry's "file: field: reason" messages. */
void tools_errf(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* tools_errf, then return code: a tool's "bad arguments" / "tool failed" exit. */
int tools_fail(char *err, size_t err_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
