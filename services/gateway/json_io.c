/* json_io.c - JSON in and out of the gateway (json_io.h). */
#include "json_io.h"

#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"

/* Length of the valid UTF-8 sequence at s[0..left), or 0 if it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    unsigned min;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int gateway_json_append_str(gateway_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX (6 bytes), plus the quotes. */
    if (len > (GATEWAY_JSON_OUT_MAX - 2) / 6)
        return MESH_ETOOBIG;
    int rc = gateway_buf_reserve(b, len * 6 + 2, GATEWAY_JSON_OUT_MAX);
    if (rc < 0)
        return rc;
    char *o = b->data + b->len;
    const unsigned char *p = (const unsigned char *)s;
    *o++ = '"';
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0xf];
            i++;
        } else if (c < 0x80) {
            *o++ = (char)c;
            i++;
        } else {
            size_t n = utf8_seq_len(p + i, len - i);
            if (n == 0) {
                *o++ = '?';
                i++;
            } else {
                memcpy(o, p + i, n);
                o += n;
                i += n;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}

static int append_lit(gateway_buf_t *b, const char *lit)
{
    return gateway_buf_append(b, lit, strlen(lit), GATEWAY_JSON_OUT_MAX);
}

int gateway_json_error_body(gateway_buf_t *b, const char *code, const char *message)
{
    int rc;
    if ((rc = append_lit(b, "{\"error\":{\"code\":")) < 0 ||
        (rc = gateway_json_append_str(b, code, strlen(code))) < 0 ||
        (rc = append_lit(b, ",\"message\":")) < 0 ||
        (rc = gateway_json_append_str(b, message, strlen(message))) < 0 ||
        (rc = append_lit(b, "}}")) < 0)
        return rc;
    return 0;
}

int gateway_json_dump(gateway_buf_t *b, const json_t *v)
{
    const size_t flags = JSON_COMPACT;
    b->len = 0;
    /* Try the space we have; jansson tells the size it needs when it is short. */
    size_t need = json_dumpb(v, b->data, b->cap, flags);
    if (need == 0)
        return MESH_EINVAL;
    if (need <= b->cap) {
        b->len = need;
        return 0;
    }
    int rc = gateway_buf_reserve(b, need, GATEWAY_JSON_OUT_MAX);
    if (rc < 0)
        return rc;
    size_t got = json_dumpb(v, b->data, b->cap, flags);
    if (got != need)
        return MESH_EINVAL;
    b->len = got;
    return 0;
}

int gateway_json_parse_object(const char *body, size_t len, json_t **out, char *err,
                              size_t err_size)
{
    json_error_t jerr;
    *out = NULL;
    if (len == 0) {
        snprintf(err, err_size, "empty body, expected a JSON object");
        return MESH_EPROTO;
    }
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        snprintf(err, err_size, "%s at line %d column %d", jerr.text, jerr.line, jerr.column);
        return MESH_EPROTO;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        snprintf(err, err_size, "body must be a JSON object");
        return MESH_EPROTO;
    }
    *out = v;
    return 0;
}
