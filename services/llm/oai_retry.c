/*
 * oai_retry.c - retry schedule and Retry-After parsing (oai_retry.h).
 */
#include "oai_retry.h"

#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_AFTER_TEXT_MAX 64 /* a Retry-After value we look at, bytes */

bool llm_oai_status_retryable(long s)
{
    return s == 408 || s == 409 || s == 429 || (s >= 500 && s <= 599);
}

uint64_t llm_oai_backoff_ms(unsigned n, uint64_t base_ms, uint64_t cap_ms, double r)
{
    uint64_t d = base_ms;
    for (unsigned i = 0; i < n && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    if (r < 0 || r >= 1)
        r = 0;
    return d - (uint64_t)((double)d * LLM_OAI_JITTER * r);
}

int64_t llm_oai_retry_after_ms(const char *v, size_t len, time_t now_unix)
{
    char buf[RETRY_AFTER_TEXT_MAX + 1];
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len > 0 &&
           (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r' || v[len - 1] == '\n'))
        len--;
    if (len == 0 || len > RETRY_AFTER_TEXT_MAX)
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    double ms;
    char *end = NULL;
    double secs = strtod(buf, &end);
    if (end == buf + len && (buf[0] >= '0' && buf[0] <= '9')) {
        if (!isfinite(secs) || secs < 0)
            return -1;
        ms = secs * 1000.0;
    } else {
        time_t at = curl_getdate(buf, NULL);
        if (at == (time_t)-1)
            return -1;
        ms = at <= now_unix ? 0 : (double)(at - now_unix) * 1000.0;
    }
    if (ms > LLM_OAI_RETRY_AFTER_MAX_MS)
        ms = LLM_OAI_RETRY_AFTER_MAX_MS;
    return (int64_t)ms;
}
