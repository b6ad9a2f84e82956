/*
 * json_parse.c - fast JSON text -> json_t (mesh/mesh_json.h).
 *
 * One pass over the text, recursive descent with a depth bound. A string
 * without escapes is handed to jansson straight from the input; a string
 * with escapes is decoded into a scratch area first. The scratch is one
 * allocation of the input's length, made on the first escape and used as a
 * bump area: a decoded string is never longer than its escaped form, so the
 * decoded strings of one text always fit, and a key stays intact while its
 * value is parsed.
 */
#include "mesh/mesh_json.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;   /* next byte */
    const char *end; /* one past the last byte */
    size_t len;      /* of the whole text: the scratch size */
    char *scratch;   /* NULL until the first escape */
    size_t used;     /* scratch bytes handed out */
    int depth;
} parser_t;

static json_t *parse_value(parser_t *ps);

static void skip_ws(parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Four hex digits at p (p has at least 4 bytes). -1 when one is not hex. */
static int32_t hex4(const char *p)
{
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = (v << 4) | d;
    }
    return v;
}

static char *put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* A \u escape at q (just after the 'u'); writes its UTF-8 at *o. New q or NULL. */
static const char *unescape_u(const char *q, const char *end, char **o)
{
    if (end - q < 4)
        return NULL;
    int32_t cp = hex4(q);
    q += 4;
    if (cp <= 0) /* not hex, or U+0000 (refused, as jansson does by default) */
        return NULL;
    if (cp >= 0xDC00 && cp <= 0xDFFF) /* a low surrogate first */
        return NULL;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - q < 6 || q[0] != '\\' || q[1] != 'u')
            return NULL;
        int32_t lo = hex4(q + 2);
        if (lo < 0xDC00 || lo > 0xDFFF)
            return NULL;
        q += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    *o = put_utf8(*o, (uint32_t)cp);
    return q;
}

/*
 * The string whose opening quote was just consumed: *out and *out_len point into
 * the input (no escapes) or into the scratch. false when malformed / ENOMEM.
 */
static bool parse_string(parser_t *ps, const char **out, size_t *out_len)
{
    const char *start = ps->p;
    const char *q = start;
    while (q < ps->end) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            *out = start;
            *out_len = (size_t)(q - start);
            ps->p = q + 1;
            return true;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            return false;
        q++;
    }
    if (q >= ps->end)
        return false;
    if (ps->scratch == NULL) {
        ps->scratch = malloc(ps->len);
        if (ps->scratch == NULL)
            return false;
    }
    char *first = ps->scratch + ps->used;
    char *o = first;
    memcpy(o, start, (size_t)(q - start));
    o += q - start;
    while (q < ps->end) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            *out = first;
            *out_len = (size_t)(o - first);
            ps->used += *out_len;
            ps->p = q + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c != '\\') {
            *o++ = (char)c;
            q++;
            continue;
        }
        if (++q >= ps->end)
            return false;
        switch (*q++) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '/':
            *o++ = '/';
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u':
            q = unescape_u(q, ps->end, &o);
            if (q == NULL)
                return false;
            break;
        default:
            return false;
        }
    }
    return false;
}

/* An integer that fits int64, or a real that fits a double. */
static json_t *parse_number(parser_t *ps)
{
    const char *s = ps->p;
    const char *q = s;
    const char *end = ps->end;
    bool neg = false, real = false;
    if (q < end && *q == '-') {
        neg = true;
        q++;
    }
    if (q >= end || !is_digit(*q))
        return NULL;
    if (*q == '0')
        q++;
    else
        while (q < end && is_digit(*q))
            q++;
    if (q < end && *q == '.') {
        real = true;
        if (++q >= end || !is_digit(*q))
            return NULL;
        while (q < end && is_digit(*q))
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        real = true;
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || !is_digit(*q))
            return NULL;
        while (q < end && is_digit(*q))
            q++;
    }
    size_t n = (size_t)(q - s);
    if (n > MESH_JSON_NUMBER_MAX)
        return NULL;
    ps->p = q;
    if (!real) {
        uint64_t acc = 0;
        for (const char *d = neg ? s + 1 : s; d < q; d++) {
            uint64_t digit = (uint64_t)(*d - '0');
            if (acc > (UINT64_MAX - digit) / 10)
                return NULL;
            acc = acc * 10 + digit;
        }
        if (!neg && acc > (uint64_t)INT64_MAX)
            return NULL;
        if (neg && acc > (uint64_t)INT64_MAX + 1)
            return NULL;
        json_int_t v =
            neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(json_int_t)acc) : (json_int_t)acc;
        return json_integer(v);
    }
    char buf[MESH_JSON_NUMBER_MAX + 1];
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *stop = NULL;
    double d = strtod(buf, &stop);
    if (stop != buf + n || isinf(d))
        return NULL;
    return json_real(d);
}

static json_t *parse_object(parser_t *ps)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return obj;
    }
    for (;;) {
        const char *key;
        size_t klen;
        if (ps->p >= ps->end || *ps->p != '"')
            goto fail;
        ps->p++;
        if (!parse_string(ps, &key, &klen))
            goto fail;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            goto fail;
        ps->p++;
        json_t *v = parse_value(ps);
        if (v == NULL || json_object_setn_new_nocheck(obj, key, klen, v) != 0)
            goto fail; /* setn_new frees v on failure */
        skip_ws(ps);
        if (ps->p >= ps->end)
            goto fail;
        char c = *ps->p++;
        if (c == '}')
            return obj;
        if (c != ',')
            goto fail;
        skip_ws(ps);
    }
fail:
    json_decref(obj);
    return NULL;
}

static json_t *parse_array(parser_t *ps)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return arr;
    }
    for (;;) {
        json_t *v = parse_value(ps);
        if (v == NULL || json_array_append_new(arr, v) != 0)
            goto fail;
        skip_ws(ps);
        if (ps->p >= ps->end)
            goto fail;
        char c = *ps->p++;
        if (c == ']')
            return arr;
        if (c != ',')
            goto fail;
    }
fail:
    json_decref(arr);
    return NULL;
}

static json_t *parse_literal(parser_t *ps, const char *word, size_t n, json_t *v)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return NULL;
    ps->p += n;
    return v;
}

static json_t *parse_value(parser_t *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return NULL;
    char c = *ps->p;
    switch (c) {
    case '{':
    case '[': {
        if (ps->depth >= MESH_JSON_DEPTH_MAX)
            return NULL;
        ps->p++;
        ps->depth++;
        json_t *v = c == '{' ? parse_object(ps) : parse_array(ps);
        ps->depth--;
        return v;
    }
    case '"': {
        const char *s;
        size_t n;
        ps->p++;
        if (!parse_string(ps, &s, &n))
            return NULL;
        return json_stringn_nocheck(s, n);
    }
    case 't':
        return parse_literal(ps, "true", 4, json_true());
    case 'f':
        return parse_literal(ps, "false", 5, json_false());
    case 'n':
        return parse_literal(ps, "null", 4, json_null());
    default:
        return parse_number(ps);
    }
}

json_t *mesh_json_parse(const char *s, size_t len)
{
    if (s == NULL)
        return NULL;
    parser_t ps = {.p = s, .end = s + len, .len = len};
    skip_ws(&ps);
    json_t *v = NULL;
    if (ps.p < ps.end && (*ps.p == '{' || *ps.p == '['))
        v = parse_value(&ps);
    if (v != NULL) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            json_decref(v);
            v = NULL;
        }
    }
    free(ps.scratch);
    return v;
}
