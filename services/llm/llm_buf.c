/*
 * llm_buf.c - capped growable text buffer (see llm_buf.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_buf.h"
#include "mesh/mesh_err.h"

void llm_buf_init(llm_buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void llm_buf_free(llm_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Make room for need more bytes plus the NUL. */
static int reserve(llm_buf_t *b, size_t need)
{
    if (b->err != 0)
        return b->err;
    if (need > LLM_BUF_MAX || b->len + need > LLM_BUF_MAX) {
        b->err = MESH_ETOOBIG;
        return b->err;
    }
    size_t want = b->len + need + 1;
    if (want <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : LLM_BUF_INIT;
    while (cap < want)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) {
        b->err = MESH_ENOMEM;
        return b->err;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

int llm_buf_append(llm_buf_t *b, const char *s, size_t len)
{
    int rc = reserve(b, len);
    if (rc != 0)
        return rc;
    if (len > 0)
        memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int llm_buf_puts(llm_buf_t *b, const char *s)
{
    return llm_buf_append(b, s, strlen(s));
}

int llm_buf_printf(llm_buf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (b->err == 0)
            b->err = MESH_EINVAL;
        return b->err;
    }
    if ((size_t)n < sizeof(tmp))
        return llm_buf_append(b, tmp, (size_t)n);
    /* Longer than the stack buffer: format straight into the buffer. */
    int rc = reserve(b, (size_t)n);
    if (rc != 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int llm_buf_append_clip(llm_buf_t *b, const char *s, size_t len, size_t max)
{
    if (len > max) {
        len = max;
        /* Back up over continuation bytes so the cut lands on a code point start. */
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    return llm_buf_append(b, s, len);
}

const char *llm_buf_str(const llm_buf_t *b)
{
    return b->data ? b->data : "";
}

int llm_buf_error(const llm_buf_t *b)
{
    return b->err;
}
