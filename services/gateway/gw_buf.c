/* gw_buf.c - growable byte buffer with a hard cap (gw_buf.h). */
#include "gw_buf.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"

/* Smallest allocation: most request heads and JSON bodies fit. */
#define GATEWAY_BUF_MIN 1024

int gateway_buf_reserve(gateway_buf_t *b, size_t need, size_t limit)
{
    if (need > limit || b->len > limit - need)
        return MESH_ETOOBIG;
    size_t want = b->len + need;
    if (want <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : GATEWAY_BUF_MIN;
    while (cap < want)
        cap = cap > limit / 2 ? limit : cap * 2;
    if (cap < want)
        cap = want;
    /* One spare byte so callers may NUL-terminate text content. */
    char *p = realloc(b->data, cap + 1);
    if (!p)
        return MESH_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int gateway_buf_append(gateway_buf_t *b, const void *p, size_t n, size_t limit)
{
    if (n == 0)
        return 0;
    int rc = gateway_buf_reserve(b, n, limit);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void gateway_buf_consume(gateway_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void gateway_buf_reset(gateway_buf_t *b, size_t keep)
{
    b->len = 0;
    if (b->cap > keep)
        gateway_buf_free(b);
}

void gateway_buf_free(gateway_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
