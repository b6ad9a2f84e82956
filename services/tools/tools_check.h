/*
 * tools_check.h - field checks for the data files, with errors that name the
 * file and the field ("data/policies.json: policies[12].status: must be one
 * of active, lapsed, expired").
 *
 * A tools_check_t carries the file's display name and the path of the object
 * being checked (e.g. "policies[12]"); each check looks at one key of that
 * object. Every check returns 0 or MESH_ECONFIG after writing the message.
 */
#ifndef TOOLS_CHECK_H
#define TOOLS_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define TOOLS_CHECK_PATH_MAX 256
#define TOOLS_DATE_LEN       10 /* YYYY-MM-DD */

typedef struct {
    const char *file;                /* e.g. "data/policies.json" */
    char path[TOOLS_CHECK_PATH_MAX]; /* object path, "" for the top level */
    char *err;
    size_t err_size;
} tools_check_t;

void tools_check_init(tools_check_t *c, const char *file, char *err, size_t err_size);

/* Set the object path (printf-style). */
void tools_check_at(tools_check_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write "<file>: <path>.<key>: <message>" and return MESH_ECONFIG. key may be NULL. */
int tools_check_fail(tools_check_t *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* obj must be an object. */
int tools_check_object(tools_check_t *c, const json_t *obj, const char *key);

/* A string of 1..max_chars UTF-8 characters; *out borrowed (NULL if absent and optional). */
int tools_check_str(tools_check_t *c, const json_t *obj, const char *key, bool required,
                    size_t max_chars, const char **out);

/* A number in [min, max]; with nullable, JSON null is accepted and *out is NULL. */
int tools_check_num(tools_check_t *c, const json_t *obj, const char *key, bool nullable, double min,
                    double max, const json_t **out);

/* An integer in [min, max]. */
int tools_check_int(tools_check_t *c, const json_t *obj, const char *key, long long min,
                    long long max, long long *out);

int tools_check_bool(tools_check_t *c, const json_t *obj, const char *key, bool *out);

/* A {zh, en} text pair: both non-empty strings of at most max_chars. */
int tools_check_text(tools_check_t *c, const json_t *obj, const char *key, size_t max_chars);

/* A calendar date "YYYY-MM-DD"; *out (if non-NULL) borrowed. */
int tools_check_date(tools_check_t *c, const json_t *obj, const char *key, const char **out);

/* 1 if s is a valid calendar date YYYY-MM-DD (years 1900..2199). */
int tools_date_valid(const char *s);

#endif
