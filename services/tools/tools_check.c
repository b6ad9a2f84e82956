/* tools_check.c - field checks for the data files (tools_check.h). */
#include "tools_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_text.h"

#define DATE_YEAR_MIN 1900
#define DATE_YEAR_MAX 2199

void tools_check_init(tools_check_t *c, const char *file, char *err, size_t err_size)
{
    c->file = file;
    c->path[0] = '\0';
    c->err = err;
    c->err_size = err_size;
    if (err != NULL && err_size > 0)
        err[0] = '\0';
}

void tools_check_at(tools_check_t *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->path, sizeof(c->path), fmt, ap);
    va_end(ap);
}

int tools_check_fail(tools_check_t *c, const char *key, const char *fmt, ...)
{
    char msg[TOOLS_CHECK_PATH_MAX];
    char field[TOOLS_CHECK_PATH_MAX * 2];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->path[0] != '\0' && key != NULL)
        snprintf(field, sizeof(field), "%s.%s", c->path, key);
    else if (key != NULL)
        snprintf(field, sizeof(field), "%s", key);
    else if (c->path[0] != '\0')
        snprintf(field, sizeof(field), "%s", c->path);
    else
        snprintf(field, sizeof(field), "(top level)");
    if (c->err != NULL && c->err_size > 0)
        snprintf(c->err, c->err_size, "%s: %s: %s", c->file, field, msg);
    return MESH_ECONFIG;
}

int tools_check_object(tools_check_t *c, const json_t *obj, const char *key)
{
    if (!json_is_object(obj))
        return tools_check_fail(c, key, "must be an object");
    return 0;
}

int tools_check_str(tools_check_t *c, const json_t *obj, const char *key, bool required,
                    size_t max_chars, const char **out)
{
    const json_t *v = json_object_get(obj, key);

    if (out != NULL)
        *out = NULL;
    if (v == NULL) {
        if (required)
            return tools_check_fail(c, key, "is required");
        return 0;
    }
    if (!json_is_string(v))
        return tools_check_fail(c, key, "must be a string");
    size_t bytes = json_string_length(v);
    if (bytes == 0)
        return tools_check_fail(c, key, "must not be empty");
    if (strlen(json_string_value(v)) != bytes)
        return tools_check_fail(c, key, "must not contain NUL");
    if (mesh_utf8_len(json_string_value(v), bytes) > max_chars)
        return tools_check_fail(c, key, "longer than %zu characters", max_chars);
    if (out != NULL)
        *out = json_string_value(v);
    return 0;
}

int tools_check_num(tools_check_t *c, const json_t *obj, const char *key, bool nullable, double min,
                    double max, const json_t **out)
{
    const json_t *v = json_object_get(obj, key);

    if (out != NULL)
        *out = NULL;
    if (v == NULL)
        return tools_check_fail(c, key, "is required");
    if (json_is_null(v)) {
        if (nullable)
            return 0;
        return tools_check_fail(c, key, "must be a number, not null");
    }
    if (!json_is_number(v))
        return tools_check_fail(c, key, "must be a number");
    double d = json_number_value(v);
    if (d < min || d > max)
        return tools_check_fail(c, key, "must be between %.15g and %.15g", min, max);
    if (out != NULL)
        *out = v;
    return 0;
}

int tools_check_int(tools_check_t *c, const json_t *obj, const char *key, long long min,
                    long long max, long long *out)
{
    const json_t *v = json_object_get(obj, key);

    if (v == NULL)
        return tools_check_fail(c, key, "is required");
    if (!json_is_integer(v))
        return tools_check_fail(c, key, "must be an integer");
    long long i = json_integer_value(v);
    if (i < min || i > max)
        return tools_check_fail(c, key, "must be between %lld and %lld", min, max);
    if (out != NULL)
        *out = i;
    return 0;
}

int tools_check_bool(tools_check_t *c, const json_t *obj, const char *key, bool *out)
{
    const json_t *v = json_object_get(obj, key);

    if (v == NULL)
        return tools_check_fail(c, key, "is required");
    if (!json_is_boolean(v))
        return tools_check_fail(c, key, "must be true or false");
    if (out != NULL)
        *out = json_is_true(v);
    return 0;
}

int tools_check_text(tools_check_t *c, const json_t *obj, const char *key, size_t max_chars)
{
    const json_t *v = json_object_get(obj, key);
    char saved[TOOLS_CHECK_PATH_MAX];
    int rc;

    if (v == NULL)
        return tools_check_fail(c, key, "is required");
    if (!json_is_object(v))
        return tools_check_fail(c, key, "must be an object {zh, en}");
    memcpy(saved, c->path, sizeof(saved));
    if (saved[0] != '\0')
        tools_check_at(c, "%s.%s", saved, key);
    else
        tools_check_at(c, "%s", key);
    rc = tools_check_str(c, v, "zh", true, max_chars, NULL);
    if (rc == 0)
        rc = tools_check_str(c, v, "en", true, max_chars, NULL);
    memcpy(c->path, saved, sizeof(saved));
    return rc;
}

static int days_in_month(int y, int m)
{
    static const int DAYS[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : DAYS[m - 1];
}

int tools_date_valid(const char *s)
{
    int y = 0, m = 0, d = 0;

    if (s == NULL || strlen(s) != TOOLS_DATE_LEN || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < TOOLS_DATE_LEN; i++) {
        if (i == 4 || i == 7)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < DATE_YEAR_MIN || y > DATE_YEAR_MAX || m < 1 || m > 12)
        return 0;
    return d >= 1 && d <= days_in_month(y, m);
}

int tools_check_date(tools_check_t *c, const json_t *obj, const char *key, const char **out)
{
    const char *s = NULL;
    int rc = tools_check_str(c, obj, key, true, TOOLS_DATE_LEN, &s);

    if (rc != 0)
        return rc;
    if (!tools_date_valid(s))
        return tools_check_fail(c, key, "must be a date YYYY-MM-DD");
    if (out != NULL)
        *out = s;
    return 0;
}
