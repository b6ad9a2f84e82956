/* validate.c - checks of client-controlled input (validate.h). */
#include "validate.h"

#include <string.h>
#include <strings.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* 1 if s[0..len) is 1..max bytes of alphanumerics and the bytes in extra. */
static int token_valid(const char *s, size_t len, size_t max, const char *extra)
{
    if (!s || len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_alnum(c) && (c == '\0' || !strchr(extra, c)))
            return 0;
    }
    return 1;
}

int gateway_message_id_valid(const char *s, size_t len)
{
    return token_valid(s, len, GATEWAY_MESSAGE_ID_MAX, "._:-");
}

int gateway_tenant_valid(const char *s, size_t len)
{
    return token_valid(s, len, MESH_TENANT_MAX, "._-");
}

int gateway_agent_valid(const char *s, size_t len)
{
    return token_valid(s, len, GATEWAY_AGENT_MAX, "._-");
}

int gateway_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    /* 19 digits always fit in a uint64_t without overflow checks. */
    if (!s || len == 0 || len > 19)
        return MESH_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return MESH_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v == 0 || v > max)
        return MESH_EINVAL;
    *out = v;
    return 0;
}

int gateway_query_param(const char *q, size_t qlen, const char *key, const char **val, size_t *vlen)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (q && i < qlen) {
        size_t end = i;
        while (end < qlen && q[end] != '&')
            end++;
        /* q[i..end) is one "k=v" or "k" */
        if (end - i >= klen && memcmp(q + i, key, klen) == 0 &&
            (end - i == klen || q[i + klen] == '=')) {
            size_t vs = i + klen + (end - i > klen ? 1 : 0);
            *val = q + vs;
            *vlen = end - vs;
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

int gateway_content_type_json(const char *s, size_t len)
{
    static const char want[] = "application/json";
    const size_t wlen = sizeof(want) - 1;
    if (len < wlen || strncasecmp(s, want, wlen) != 0)
        return 0;
    /* Exactly the type, or followed by blanks and/or ";parameters". */
    for (size_t i = wlen; i < len; i++) {
        if (s[i] == ';')
            return 1;
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    }
    return 1;
}
