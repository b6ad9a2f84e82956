/*
 * oai_breaker.c - the endpoint circuit breaker (oai_breaker.h).
 */
#include "oai_breaker.h"

#include <string.h>

void llm_breaker_init(llm_breaker_t *b, uint32_t threshold, uint64_t open_ms)
{
    memset(b, 0, sizeof(*b));
    b->threshold = threshold > 0 ? threshold : 1;
    b->open_ms = open_ms;
}

bool llm_breaker_allow(llm_breaker_t *b, uint64_t now)
{
    switch (b->state) {
    case LLM_BREAKER_CLOSED:
        return true;
    case LLM_BREAKER_OPEN:
        if (now - b->opened_at < b->open_ms)
            return false;
        b->state = LLM_BREAKER_HALF_OPEN;
        b->probe_out = true;
        return true;
    case LLM_BREAKER_HALF_OPEN:
        if (b->probe_out)
            return false;
        b->probe_out = true;
        return true;
    }
    return false;
}

void llm_breaker_success(llm_breaker_t *b)
{
    b->state = LLM_BREAKER_CLOSED;
    b->failures = 0;
    b->probe_out = false;
}

void llm_breaker_failure(llm_breaker_t *b, uint64_t now)
{
    if (b->state == LLM_BREAKER_CLOSED && ++b->failures < b->threshold)
        return;
    b->state = LLM_BREAKER_OPEN;
    b->opened_at = now;
    b->failures = 0;
    b->probe_out = false;
}

void llm_breaker_release(llm_breaker_t *b)
{
    if (b->state == LLM_BREAKER_HALF_OPEN)
        b->probe_out = false;
}

const char *llm_breaker_state_name(llm_breaker_state_t s)
{
    switch (s) {
    case LLM_BREAKER_CLOSED:
        return "closed";
    case LLM_BREAKER_OPEN:
        return "open";
    case LLM_BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}
