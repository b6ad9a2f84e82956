/*
 * llm_buf.h - a small growable text buffer with a hard cap, for composing
 * answers without large allocations.
 *
 * Appends past LLM_BUF_MAX are refused and latch the buffer's error; the
 * caller checks llm_buf_error() once at the end instead of after every
 * append. The contents are always NUL-terminated.
 */
#ifndef LLM_BUF_H
#define LLM_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define LLM_BUF_MAX  (32 * 1024) /* one composed answer, bytes */
#define LLM_BUF_INIT 1024        /* first allocation */

typedef struct {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    int err; /* 0, MESH_ETOOBIG or MESH_ENOMEM: the first failure */
} llm_buf_t;

void llm_buf_init(llm_buf_t *b);
void llm_buf_free(llm_buf_t *b);

int llm_buf_append(llm_buf_t *b, const char *s, size_t len);
int llm_buf_puts(llm_buf_t *b, const char *s);
int llm_buf_printf(llm_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Append at most max bytes of s[0..len), cut back to a UTF-8 code point
 * boundary, so a long peer-supplied field cannot crowd out the answer.
 */
int llm_buf_append_clip(llm_buf_t *b, const char *s, size_t len, size_t max);

/* The contents ("" when empty; never NULL). */
const char *llm_buf_str(const llm_buf_t *b);

/* The first error an append hit, 0 if none. */
int llm_buf_error(const llm_buf_t *b);

#endif
