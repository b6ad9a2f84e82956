/*
 * llm_backend.c - the backend registry and the vtable dispatch helpers.
 *
 * Adding a backend: write backend_<name>.c defining a const
 * llm_backend_vtable_t, declare it below and add it to s_backends. Nothing
 * else in the worker or the router changes.
 */
#include <stdio.h>
#include <string.h>

#include "llm_backend.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

extern const llm_backend_vtable_t llm_backend_rules;
extern const llm_backend_vtable_t llm_backend_openai;

static const llm_backend_vtable_t *const s_backends[] = {
    &llm_backend_rules,
    &llm_backend_openai,
};

#define N_BACKENDS (sizeof(s_backends) / sizeof(s_backends[0]))

const llm_backend_vtable_t *llm_backend_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < N_BACKENDS; i++) {
        if (strcmp(s_backends[i]->name, name) == 0)
            return s_backends[i];
    }
    return NULL;
}

const char *llm_backend_names(void)
{
    /* Built once from s_backends (single-threaded service). */
    static char names[N_BACKENDS * 32];
    if (names[0] == '\0') {
        size_t off = 0;
        for (size_t i = 0; i < N_BACKENDS && off < sizeof(names); i++) {
            int n = snprintf(names + off, sizeof(names) - off, "%s%s", i ? "," : "",
                             s_backends[i]->name);
            if (n < 0)
                break;
            off += (size_t)n;
        }
    }
    return names;
}

llm_backend_t *llm_backend_new(const char *name, uv_loop_t *loop, const llm_backend_config_t *cfg)
{
    const llm_backend_vtable_t *vt = llm_backend_find(name);
    if (vt == NULL) {
        char safe[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_error(
            "llm", "unknown backend '%s' (known: %s)",
            mesh_log_sanitize(name ? name : "", name ? strlen(name) : 0, safe, sizeof(safe)),
            llm_backend_names());
        return NULL;
    }
    llm_backend_t *b = vt->create(loop, cfg);
    if (b == NULL) {
        mesh_log_error("llm", "backend '%s' failed to start", vt->name);
        return NULL;
    }
    return b;
}

void llm_backend_destroy(llm_backend_t **b_p)
{
    if (b_p == NULL || *b_p == NULL)
        return;
    (*b_p)->vt->destroy(b_p);
    *b_p = NULL;
}

int llm_backend_start(llm_backend_t *b, const llm_call_t *call, llm_sink_t *sink,
                      llm_handle_t **handle_out)
{
    *handle_out = NULL;
    return b->vt->start_call(b, call, sink, handle_out);
}

void llm_backend_cancel(llm_handle_t *h)
{
    if (h == NULL)
        return;
    h->backend->vt->cancel(h);
}

const char *llm_backend_name(const llm_backend_t *b)
{
    return b->vt->name;
}

/*
 * UTF-8 code points of s[0..len): bytes that are not continuation bytes
 * (10xxxxxx). Eight bytes at a time: a byte is a continuation byte when its
 * bit 7 is set and its bit 6 is not, so (x & ~(x << 1)) >> 7 has a 1 in
 * exactly those byte lanes. The lanes are summed in a word for up to 255
 * words (no lane overflows), then folded (8-bit lanes to 16-bit lanes, then
 * one multiply). No popcount instruction is needed. The tool messages of a
 * turn are kilobytes long: this is the usage estimate's only pass over them.
 */
static uint64_t code_points(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    const uint64_t lsb = 0x0101010101010101u;
    const uint64_t even = 0x00FF00FF00FF00FFu;
    uint64_t cont = 0;
    size_t i = 0;
    while (len - i >= 8) {
        size_t words = (len - i) / 8;
        if (words > 255)
            words = 255;
        uint64_t lanes = 0;
        for (size_t w = 0; w < words; w++, i += 8) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            lanes += ((x & ~(x << 1)) >> 7) & lsb;
        }
        lanes = (lanes & even) + ((lanes >> 8) & even);
        cont += (lanes * 0x0001000100010001u) >> 48;
    }
    for (; i < len; i++)
        cont += (p[i] & 0xC0) == 0x80;
    return len - cont;
}

uint32_t llm_tokens_estimate(const char *s, size_t len)
{
    uint64_t t = (code_points(s, len) + 3) / 4;
    return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

uint32_t llm_call_prompt_tokens(const llm_call_t *call)
{
    uint64_t t = llm_tokens_estimate(call->system, call->system_len);
    for (size_t i = 0; i < call->n_messages; i++)
        t += llm_tokens_estimate(call->messages[i].text, call->messages[i].text_len);
    if (t == 0)
        t = 1;
    return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}
