/*
 * agent_json.c - compact JSON writer (agent_json.h).
 */
#include "agent_json.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"

#define JBUF_MIN_CAP  1024
#define JSON_REAL_MAX 64 /* "%.17g" of any double, plus ".0" */

/* Room for n more bytes. */
static int reserve(router_jbuf_t *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : JBUF_MIN_CAP;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return MESH_ENOMEM;
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (d == NULL)
        return MESH_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

static int put(router_jbuf_t *b, const char *s, size_t n)
{
    int rc = reserve(b, n);
    if (rc != 0)
        return rc;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static int put_char(router_jbuf_t *b, char c)
{
    int rc = reserve(b, 1);
    if (rc != 0)
        return rc;
    b->data[b->len++] = c;
    return 0;
}

/* Whether byte c is written as is inside a JSON string. */
static bool plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\';
}

/*
 * The end of the run of plain bytes starting at s[i]: eight bytes at a time
 * while none of them is a control byte, '"' or '\\' (the classic "has a byte
 * less than / equal to" bit tricks), then byte by byte.
 */
static size_t plain_run(const unsigned char *s, size_t i, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    while (n - i >= 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t q = x ^ (ones * '"');
        uint64_t bs = x ^ (ones * '\\');
        uint64_t hit = ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((bs - ones) & ~bs);
        if ((hit & highs) != 0)
            break;
        i += 8;
    }
    while (i < n && plain(s[i]))
        i++;
    return i;
}

/* A quoted, escaped string: runs of bytes that need no escape are copied at once. */
static int put_string(router_jbuf_t *b, const char *s, size_t n)
{
    /* Worst case every byte becomes \u00XX: reserve once. */
    if (n > (SIZE_MAX - 2) / 6)
        return MESH_ENOMEM;
    int rc = reserve(b, 6 * n + 2);
    if (rc != 0)
        return rc;
    const unsigned char *u = (const unsigned char *)s;
    char *o = b->data + b->len;
    *o++ = '"';
    size_t i = 0;
    for (;;) {
        size_t j = plain_run(u, i, n);
        memcpy(o, s + i, j - i);
        o += j - i;
        if (j == n)
            break;
        unsigned char c = u[j];
        i = j + 1;
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default: {
            static const char hex[] = "0123456789ABCDEF";
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0xF];
        }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}

static int put_integer(router_jbuf_t *b, json_int_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return put(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* A real the way jansson writes it: "%.<precision>g", ".0" when it would read
 * back as an integer, no '+' and no leading zeros in the exponent. */
static int put_real(router_jbuf_t *b, double v, int precision)
{
    char buf[JSON_REAL_MAX];
    int n = snprintf(buf, sizeof buf - 2, "%.*g", precision, v);
    if (n < 0 || (size_t)n >= sizeof buf - 2)
        return MESH_EINVAL;
    size_t len = (size_t)n;
    char *e = memchr(buf, 'e', len);
    if (e == NULL && memchr(buf, '.', len) == NULL) {
        buf[len++] = '.';
        buf[len++] = '0';
    }
    if (e != NULL) {
        char *start = e + 1;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (end < buf + len && *end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - buf));
            len -= (size_t)(end - start);
        }
    }
    return put(b, buf, len);
}

static int put_value(router_jbuf_t *b, const json_t *v, int precision, int depth)
{
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth >= ROUTER_JSON_DEPTH_MAX)
            return MESH_EINVAL;
        rc = put_char(b, '{');
        bool first = true;
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x)
        {
            if (rc == 0 && !first)
                rc = put_char(b, ',');
            first = false;
            if (rc == 0)
                rc = put_string(b, k, klen);
            if (rc == 0)
                rc = put_char(b, ':');
            if (rc == 0)
                rc = put_value(b, x, precision, depth + 1);
            if (rc != 0)
                return rc;
        }
        return rc == 0 ? put_char(b, '}') : rc;
    }
    case JSON_ARRAY: {
        if (depth >= ROUTER_JSON_DEPTH_MAX)
            return MESH_EINVAL;
        rc = put_char(b, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (i > 0)
                rc = put_char(b, ',');
            if (rc == 0)
                rc = put_value(b, json_array_get(v, i), precision, depth + 1);
        }
        return rc == 0 ? put_char(b, ']') : rc;
    }
    case JSON_STRING:
        return put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return put_integer(b, json_integer_value(v));
    case JSON_REAL:
        return put_real(b, json_real_value(v), precision);
    case JSON_TRUE:
        return put(b, "true", 4);
    case JSON_FALSE:
        return put(b, "false", 5);
    case JSON_NULL:
        return put(b, "null", 4);
    }
    return MESH_EINVAL;
}

int router__json_write(router_jbuf_t *b, const json_t *v, int precision)
{
    b->len = 0;
    if (v == NULL || precision < 1 || precision > 17)
        return MESH_EINVAL;
    int rc = put_value(b, v, precision, 0);
    if (rc != 0)
        b->len = 0;
    return rc;
}

void router__jbuf_reset(router_jbuf_t *b)
{
    if (b->cap > ROUTER_JSON_KEEP_MAX)
        router__jbuf_free(b);
    b->len = 0;
}

void router__jbuf_free(router_jbuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
