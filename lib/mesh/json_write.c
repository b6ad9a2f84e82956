/*
 * json_write.c - compact JSON writer into a growing buffer (mesh_json.h).
 *
 * Shared by memory (stored messages) and the router (tool results as
 * message text). Byte for byte what json_dumps(JSON_COMPACT |
 * JSON_ENCODE_ANY | JSON_REAL_PRECISION(p)) writes, several times faster.
 */
#include "mesh/mesh_json.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"

#define JBUF_MIN_CAP  256
#define JSON_REAL_MAX 64 /* "%.17g" of any double, plus ".0" */

/* Room for n more bytes (and the final NUL); false once an append failed. */
static bool reserve(mesh_jbuf_t *b, size_t n)
{
    if (b->err != 0)
        return false;
    if (b->cap - b->len > n)
        return true;
    size_t cap = b->cap ? b->cap : JBUF_MIN_CAP;
    while (cap - b->len <= n) {
        if (cap > SIZE_MAX / 2) {
            b->err = MESH_ENOMEM;
            return false;
        }
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (d == NULL) {
        b->err = MESH_ENOMEM;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void mesh_jbuf_raw(mesh_jbuf_t *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void put_char(mesh_jbuf_t *b, char c)
{
    if (reserve(b, 1))
        b->data[b->len++] = c;
}

/* Whether byte c is written as is inside a JSON string. */
static bool plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\';
}

/*
 * The end of the run of plain bytes starting at s[i]: eight bytes at a time
 * while none of them is a control byte, '"' or '\\' (the classic "has a byte
 * less than / equal to" bit tricks, which never miss one), then byte by byte.
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

/* The escape sequence of a byte that is not plain, into out (at most 6 bytes). */
static size_t escape(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789ABCDEF";
    out[0] = '\\';
    switch (c) {
    case '"':
        out[1] = '"';
        return 2;
    case '\\':
        out[1] = '\\';
        return 2;
    case '\b':
        out[1] = 'b';
        return 2;
    case '\f':
        out[1] = 'f';
        return 2;
    case '\n':
        out[1] = 'n';
        return 2;
    case '\r':
        out[1] = 'r';
        return 2;
    case '\t':
        out[1] = 't';
        return 2;
    default:
        out[1] = 'u';
        out[2] = '0';
        out[3] = '0';
        out[4] = hex[c >> 4];
        out[5] = hex[c & 0xF];
        return 6;
    }
}

void mesh_jbuf_string(mesh_jbuf_t *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    /* Invariant: before each run is copied there is room for the rest of the
     * string and the closing quote, so a run is a bare memcpy; an escape
     * (up to 6 bytes for 1) makes room again for what follows it. */
    if (n > SIZE_MAX - 8 || !reserve(b, n + 2))
        return;
    b->data[b->len++] = '"';
    size_t i = 0;
    for (;;) {
        size_t j = plain_run(u, i, n);
        memcpy(b->data + b->len, s + i, j - i);
        b->len += j - i;
        if (j == n)
            break;
        if (!reserve(b, 6 + (n - j - 1) + 1))
            return;
        b->len += escape(u[j], b->data + b->len);
        i = j + 1;
    }
    b->data[b->len++] = '"';
}

void mesh_jbuf_u64(mesh_jbuf_t *b, uint64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    mesh_jbuf_raw(b, p, (size_t)(tmp + sizeof tmp - p));
}

static void put_integer(mesh_jbuf_t *b, json_int_t v)
{
    if (v < 0) {
        put_char(b, '-');
        mesh_jbuf_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        mesh_jbuf_u64(b, (uint64_t)v);
    }
}

/* A real the way jansson writes it: "%.17g", ".0" when it would read back as
 * an integer, no '+' and no leading zeros in the exponent. */
static void put_real(mesh_jbuf_t *b, double v, int precision)
{
    char buf[JSON_REAL_MAX];
    int n = snprintf(buf, sizeof buf - 2, "%.*g", precision, v);
    if (n < 0 || (size_t)n >= sizeof buf - 2) {
        b->err = MESH_EINVAL;
        return;
    }
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
    mesh_jbuf_raw(b, buf, len);
}

static void put_value(mesh_jbuf_t *b, const json_t *v, int precision, int depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth >= MESH_JSON_WRITE_DEPTH_MAX) {
            b->err = MESH_EINVAL;
            return;
        }
        put_char(b, '{');
        bool first = true;
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x)
        {
            if (!first)
                put_char(b, ',');
            first = false;
            mesh_jbuf_string(b, k, klen);
            put_char(b, ':');
            put_value(b, x, precision, depth + 1);
        }
        put_char(b, '}');
        return;
    }
    case JSON_ARRAY: {
        if (depth >= MESH_JSON_WRITE_DEPTH_MAX) {
            b->err = MESH_EINVAL;
            return;
        }
        put_char(b, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n && b->err == 0; i++) {
            if (i > 0)
                put_char(b, ',');
            put_value(b, json_array_get(v, i), precision, depth + 1);
        }
        put_char(b, ']');
        return;
    }
    case JSON_STRING:
        mesh_jbuf_string(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        put_integer(b, json_integer_value(v));
        return;
    case JSON_REAL:
        put_real(b, json_real_value(v), precision);
        return;
    case JSON_TRUE:
        mesh_jbuf_raw(b, "true", 4);
        return;
    case JSON_FALSE:
        mesh_jbuf_raw(b, "false", 5);
        return;
    case JSON_NULL:
        mesh_jbuf_raw(b, "null", 4);
        return;
    }
    b->err = MESH_EINVAL;
}

void mesh_jbuf_value(mesh_jbuf_t *b, const json_t *v, int precision)
{
    if (v == NULL || precision < 1 || precision > MESH_JSON_PRECISION_MAX) {
        b->err = b->err ? b->err : MESH_EINVAL;
        return;
    }
    put_value(b, v, precision, 0);
}

int mesh_json_write(mesh_jbuf_t *b, const json_t *v, int precision)
{
    b->len = 0;
    b->err = 0;
    mesh_jbuf_value(b, v, precision);
    if (b->err != 0)
        b->len = 0;
    return b->err;
}

void mesh_jbuf_reset(mesh_jbuf_t *b, size_t keep_max)
{
    if (b->cap > keep_max)
        mesh_jbuf_free(b);
    b->len = 0;
    b->err = 0;
}

void mesh_jbuf_free(mesh_jbuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

char *mesh_jbuf_finish(mesh_jbuf_t *b, size_t *len_out, int *rc_out)
{
    char *s = NULL;
    int rc = b->err;
    if (rc == 0 && reserve(b, 0)) {
        b->data[b->len] = '\0';
        s = b->data;
        *len_out = b->len;
    } else {
        rc = b->err ? b->err : MESH_ENOMEM;
        free(b->data);
    }
    memset(b, 0, sizeof *b);
    *rc_out = rc;
    return s;
}
