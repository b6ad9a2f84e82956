/*
 * oai_retry.h - the retry schedule of the openai backend.
 *
 * Retryable: HTTP 408, 409, 429 and every 5xx, connection errors, and a
 * stream that broke before any text was forwarded to the client. The delay
 * before retry n (0-based) is min(cap, base * 2^n) minus up to 25% jitter,
 * unless the server said Retry-After (seconds, fractional allowed, or an
 * HTTP date), which is honoured up to LLM_OAI_RETRY_AFTER_MAX_MS. A retry that
 * would start past the call's deadline is not made.
 */
#ifndef OAI_RETRY_H
#define OAI_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LLM_OAI_RETRY_AFTER_MAX_MS 60000 /* a longer Retry-After is taken as this */
#define LLM_OAI_JITTER             0.25  /* share of the delay removed at most */

/* true for the HTTP statuses worth another attempt. */
bool llm_oai_status_retryable(long http_status);

/* The backoff before retry n; r in [0, 1) picks the jitter. */
uint64_t llm_oai_backoff_ms(unsigned n, uint64_t base_ms, uint64_t cap_ms, double r);

/*
 * A Retry-After value (header value bytes, not NUL-terminated) in ms from
 * now_unix, clamped to [0, LLM_OAI_RETRY_AFTER_MAX_MS]; -1 when it is neither
 * a number of seconds nor an HTTP date.
 */
int64_t llm_oai_retry_after_ms(const char *v, size_t len, time_t now_unix);

#endif
