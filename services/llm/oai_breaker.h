/*
 * oai_breaker.h - a circuit breaker per model endpoint (openai backend).
 *
 * closed: requests flow; consecutive failures are counted, and threshold of
 *   them open the breaker.
 * open: requests are refused (the call falls back or fails at once) until
 *   open_ms have passed; then the next request is let through as a probe
 *   (half-open).
 * half-open: exactly one probe is in flight, others are refused; the probe's
 *   success closes the breaker, its failure opens it again for open_ms.
 * "Failure" = what the retry policy counts as retryable (connection errors,
 * 408/409/429/5xx, a broken stream); a request-specific 4xx is not the
 * endpoint's fault and counts as neither.
 */
#ifndef OAI_BREAKER_H
#define OAI_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    LLM_BREAKER_CLOSED = 0,
    LLM_BREAKER_OPEN = 1,
    LLM_BREAKER_HALF_OPEN = 2,
} llm_breaker_state_t;

typedef struct {
    llm_breaker_state_t state;
    uint32_t failures;  /* consecutive, while closed */
    uint32_t threshold; /* failures that open it, >= 1 */
    uint64_t open_ms;   /* how long it stays open */
    uint64_t opened_at; /* loop ms */
    bool probe_out;     /* half-open: the probe is in flight */
} llm_breaker_t;

void llm_breaker_init(llm_breaker_t *b, uint32_t threshold, uint64_t open_ms);

/* May a request go now? true for closed, and for the one probe of half-open. */
bool llm_breaker_allow(llm_breaker_t *b, uint64_t now);

void llm_breaker_success(llm_breaker_t *b);
void llm_breaker_failure(llm_breaker_t *b, uint64_t now);

/* An allowed request ended as neither (canceled, 4xx): a half-open probe slot is freed. */
void llm_breaker_release(llm_breaker_t *b);

const char *llm_breaker_state_name(llm_breaker_state_t s);

#endif
