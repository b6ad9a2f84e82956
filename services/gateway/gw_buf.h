/*
 * gw_buf.h - a growable byte buffer with a hard cap, reused across requests.
 *
 * The gateway keeps one buffer per purpose per connection (URL, body,
 * unparsed input, response) and reuses it for every request on that
 * connection, so a keep-alive connection stops allocating after its first
 * request. Every growth is checked against a caller-given limit, so a peer
 * can never make a buffer grow past a named constant or config value.
 */
#ifndef GATEWAY_GW_BUF_H
#define GATEWAY_GW_BUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} gateway_buf_t;

/* Make room for need more bytes, never beyond limit bytes in total.
 * 0, MESH_ETOOBIG (len + need > limit) or MESH_ENOMEM. */
int gateway_buf_reserve(gateway_buf_t *b, size_t need, size_t limit);

/* Append n bytes (see gateway_buf_reserve for the errors). */
int gateway_buf_append(gateway_buf_t *b, const void *p, size_t n, size_t limit);

/* Drop the first n bytes (n <= len), keeping the rest at the front. */
void gateway_buf_consume(gateway_buf_t *b, size_t n);

/* Forget the content; free the storage when it grew beyond keep bytes, so a
 * single large request does not pin memory for the connection's lifetime. */
void gateway_buf_reset(gateway_buf_t *b, size_t keep);

/* Free the storage. Safe on a zeroed buffer. */
void gateway_buf_free(gateway_buf_t *b);

#endif
