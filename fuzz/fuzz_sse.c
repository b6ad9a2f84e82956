/*
 * fuzz_sse.c - the SSE parser of the openai backend (services/llm/sse.c).
 *
 * The input is a response body from a model server (peer-controlled). The
 * first byte picks where the body is cut into two pieces, so splits inside
 * lines, CRLF pairs and UTF-8 sequences are explored too. Invariants:
 *   - no crash, no leak, no read past the input (ASan/UBSan);
 *   - feeding the body whole and feeding it in two pieces give the same
 *     result (text, calls, usage, status);
 *   - the text handed to the delta callback concatenates to the answer text
 *     and is valid UTF-8;
 *   - llm_sse_args_json always returns an object for every assembled call.
 * Build: add "sse" to the target list in fuzz/CMakeLists.txt, with
 * services/llm/sse.c and the jansson + mesh text sources it needs.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_text.h"
#include "sse.h"

typedef struct {
    char *text;
    size_t len;
} acc_t;

static void on_delta(const char *t, size_t n, void *arg)
{
    acc_t *a = arg;
    if (!mesh_utf8_valid(t, n))
        abort();
    char *p = realloc(a->text, a->len + n + 1);
    if (p == NULL)
        abort();
    memcpy(p + a->len, t, n);
    a->text = p;
    a->len += n;
}

static int run(const char *s, size_t n, size_t cut, acc_t *acc, char **summary)
{
    llm_sse_t *p = llm_sse_new();
    if (p == NULL)
        return -1;
    llm_sse_set_delta_cb(p, on_delta, acc);
    llm_sse_feed(p, s, cut);
    llm_sse_feed(p, s + cut, n - cut);
    int rc = llm_sse_finish(p);
    size_t tl;
    const char *t = llm_sse_text(p, &tl);
    if (tl != acc->len || (tl > 0 && memcmp(t, acc->text, tl) != 0))
        abort();
    json_t *calls = json_array();
    for (size_t i = 0; i < llm_sse_n_calls(p); i++) {
        const char *id, *name, *a;
        size_t al;
        llm_sse_call(p, i, &id, &name, &a, &al);
        json_t *args = llm_sse_args_json(a, al);
        if (!json_is_object(args))
            abort();
        json_array_append_new(calls,
                              json_pack("{s:s, s:s, s:o}", "id", id, "name", name, "args", args));
    }
    llm_usage_t u = {0};
    bool has_u = llm_sse_usage(p, &u);
    json_t *o =
        json_pack("{s:i, s:s%, s:o, s:b, s:I, s:I}", "rc", rc, "text", t, tl, "calls", calls, "u",
                  has_u, "pt", (json_int_t)u.prompt_tokens, "ct", (json_int_t)u.completion_tokens);
    *summary = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    llm_sse_destroy(&p);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cut_seed = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    size_t cut = n ? cut_seed % (n + 1) : 0;
    acc_t a1 = {0}, a2 = {0};
    char *s1 = NULL, *s2 = NULL;
    if (run(s, n, n, &a1, &s1) == 0 && run(s, n, cut, &a2, &s2) == 0) {
        if ((s1 == NULL) != (s2 == NULL) || (s1 && strcmp(s1, s2) != 0))
            abort();
    }
    free(s1);
    free(s2);
    free(a1.text);
    free(a2.text);
    return 0;
}
