/*
 * sse.c - SSE parser and chunk assembly of streamed chat completions (sse.h).
 *
 * Two layers: bytes -> lines -> events (the SSE framing, resumable at any
 * byte), and events -> answer (each event's data is one JSON chunk). Nothing
 * is kept of an event once it is dispatched, so the memory held is bounded
 * by one line, one event, the answer text and the tool calls.
 */
#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_json.h"
#include "mesh/mesh_text.h"

#define SSE_FINISH_MAX 32 /* finish_reason bytes kept */
#define SSE_INIT_CAP   256

typedef struct {
    char *d;
    size_t len, cap;
} sbuf_t;

typedef struct {
    int64_t index;
    char id[LLM_CALL_ID_MAX + 1];
    char name[LLM_TOOL_NAME_MAX + 1];
    sbuf_t args;
} sse_call_t;

enum { MODE_UNKNOWN = 0, MODE_SSE, MODE_JSON };

struct llm_sse {
    int err;
    int mode;
    uint64_t total;
    bool skip_lf; /* the last byte was a CR: a LF right after it ends nothing */
    sbuf_t line;
    sbuf_t data;
    bool have_data;
    sbuf_t body; /* MODE_JSON */
    sbuf_t text;
    sse_call_t calls[LLM_SSE_CALLS_MAX];
    size_t n_calls;
    bool done;     /* [DONE] */
    bool finished; /* a finish_reason, or a whole completion body */
    bool got_usage;
    llm_usage_t usage;
    uint32_t malformed;
    bool has_error;
    char error[LLM_SSE_ERR_MAX + 1];
    char error_code[64];
    char model[LLM_SSE_MODEL_MAX + 1];
    char finish_reason[SSE_FINISH_MAX + 1];
    llm_sse_delta_fn delta_fn;
    void *delta_arg;
};

/* Append s[0..n) to b, refusing to grow past max (MESH_ETOOBIG). Keeps a NUL after the data. */
static int sbuf_append(sbuf_t *b, const char *s, size_t n, size_t max)
{
    if (n > max || b->len + n > max)
        return MESH_ETOOBIG;
    size_t want = b->len + n + 1;
    if (want > b->cap) {
        size_t cap = b->cap ? b->cap : SSE_INIT_CAP;
        while (cap < want)
            cap *= 2;
        char *d = realloc(b->d, cap);
        if (d == NULL)
            return MESH_ENOMEM;
        b->d = d;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->d + b->len, s, n);
    b->len += n;
    b->d[b->len] = '\0';
    return 0;
}

static void sbuf_free(sbuf_t *b)
{
    free(b->d);
    memset(b, 0, sizeof(*b));
}

/* Copy a string into a fixed field; longer than the field -> cut on a UTF-8 boundary. */
static void copy_clip(char *dst, size_t size, const char *s, size_t n)
{
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static int latch(llm_sse_t *p, int rc)
{
    if (rc != 0 && p->err == 0)
        p->err = rc;
    return p->err;
}

llm_sse_t *llm_sse_new(void)
{
    return calloc(1, sizeof(llm_sse_t));
}

void llm_sse_destroy(llm_sse_t **p_p)
{
    if (p_p == NULL || *p_p == NULL)
        return;
    llm_sse_t *p = *p_p;
    sbuf_free(&p->line);
    sbuf_free(&p->data);
    sbuf_free(&p->body);
    sbuf_free(&p->text);
    for (size_t i = 0; i < p->n_calls; i++)
        sbuf_free(&p->calls[i].args);
    free(p);
    *p_p = NULL;
}

void llm_sse_set_delta_cb(llm_sse_t *p, llm_sse_delta_fn fn, void *arg)
{
    p->delta_fn = fn;
    p->delta_arg = arg;
}

/* ---- events -> answer ---------------------------------------------------- */

static void take_error(llm_sse_t *p, const json_t *e)
{
    p->has_error = true;
    const char *msg = NULL;
    if (json_is_string(e)) {
        msg = json_string_value(e);
    } else {
        msg = json_string_value(json_object_get(e, "message"));
        const json_t *code = json_object_get(e, "code");
        if (code == NULL || json_is_null(code))
            code = json_object_get(e, "type");
        /* OpenAI sends a string (or null), vLLM an integer (the HTTP status). */
        if (json_is_string(code))
            copy_clip(p->error_code, sizeof(p->error_code), json_string_value(code),
                      json_string_length(code));
        else if (json_is_integer(code))
            snprintf(p->error_code, sizeof(p->error_code), "%lld",
                     (long long)json_integer_value(code));
    }
    if (msg == NULL)
        msg = "the model server reported an error";
    copy_clip(p->error, sizeof(p->error), msg, strlen(msg));
}

/* One tool-call delta (or a whole call). pos = the item's position, used when it has no index. */
static int tool_delta(llm_sse_t *p, const json_t *tc, int64_t pos)
{
    if (!json_is_object(tc))
        return 0;
    const json_t *ji = json_object_get(tc, "index");
    int64_t idx = json_is_integer(ji) ? json_integer_value(ji) : pos;
    const json_t *jid = json_object_get(tc, "id");
    const char *id =
        json_is_string(jid) && json_string_length(jid) > 0 ? json_string_value(jid) : NULL;
    const json_t *fn = json_object_get(tc, "function");
    const json_t *jname = json_object_get(fn, "name");
    const json_t *jargs = json_object_get(fn, "arguments");

    sse_call_t *c = NULL;
    for (size_t i = p->n_calls; i-- > 0;) {
        if (p->calls[i].index == idx) {
            c = &p->calls[i];
            break;
        }
    }
    /* Ollama numbers every call 0: a different id on a used index is a new call. */
    if (c != NULL && id != NULL && c->id[0] != '\0' && strcmp(c->id, id) != 0)
        c = NULL;
    if (c == NULL) {
        if (p->n_calls >= LLM_SSE_CALLS_MAX)
            return MESH_ETOOBIG;
        c = &p->calls[p->n_calls++];
        memset(c, 0, sizeof(*c));
        c->index = idx;
    }
    if (id != NULL && c->id[0] == '\0') {
        if (json_string_length(jid) > LLM_CALL_ID_MAX)
            return MESH_ETOOBIG;
        memcpy(c->id, id, json_string_length(jid) + 1);
    }
    if (json_is_string(jname) && json_string_length(jname) > 0 && c->name[0] == '\0') {
        if (json_string_length(jname) > LLM_TOOL_NAME_MAX)
            return MESH_ETOOBIG;
        memcpy(c->name, json_string_value(jname), json_string_length(jname) + 1);
    }
    if (json_is_string(jargs)) {
        return sbuf_append(&c->args, json_string_value(jargs), json_string_length(jargs),
                           LLM_SSE_ARGS_MAX);
    }
    if (json_is_object(jargs)) {
        /* Some servers send the arguments as an object instead of JSON text. */
        char *s = json_dumps(jargs, JSON_COMPACT);
        if (s == NULL)
            return MESH_ENOMEM;
        int rc = sbuf_append(&c->args, s, strlen(s), LLM_SSE_ARGS_MAX);
        free(s);
        return rc;
    }
    return 0;
}

static int take_text(llm_sse_t *p, const json_t *content)
{
    if (!json_is_string(content) || json_string_length(content) == 0)
        return 0;
    const char *s = json_string_value(content);
    size_t n = json_string_length(content);
    int rc = sbuf_append(&p->text, s, n, LLM_SSE_TEXT_MAX);
    if (rc == 0 && p->delta_fn != NULL)
        p->delta_fn(s, n, p->delta_arg);
    return rc;
}

/* One chunk (or a whole completion when whole is true). */
static int handle_json(llm_sse_t *p, const char *s, size_t n, bool whole)
{
    /* mesh_json_parse (valid UTF-8 only) builds the same values several times
     * faster; what it refuses (malformed JSON, "\u0000" which JSON_ALLOW_NUL
     * accepts) goes to jansson, whose verdict stands. */
    json_t *o = mesh_utf8_valid(s, n) ? mesh_json_parse(s, n) : NULL;
    if (o == NULL) {
        json_error_t je;
        o = json_loadb(s, n, JSON_ALLOW_NUL, &je);
    }
    if (!json_is_object(o)) {
        json_decref(o);
        p->malformed++;
        return 0;
    }
    int rc = 0;
    const json_t *e = json_object_get(o, "error");
    if (e != NULL && !json_is_null(e)) {
        take_error(p, e);
        goto out;
    }
    const json_t *m = json_object_get(o, "model");
    if (json_is_string(m) && p->model[0] == '\0')
        copy_clip(p->model, sizeof(p->model), json_string_value(m), json_string_length(m));
    const json_t *u = json_object_get(o, "usage");
    if (json_is_object(u)) {
        const json_t *pt = json_object_get(u, "prompt_tokens");
        const json_t *ct = json_object_get(u, "completion_tokens");
        if (json_is_integer(pt) && json_is_integer(ct) && json_integer_value(pt) >= 0 &&
            json_integer_value(ct) >= 0) {
            p->got_usage = true;
            p->usage.prompt_tokens =
                json_integer_value(pt) > UINT32_MAX ? UINT32_MAX : (uint32_t)json_integer_value(pt);
            p->usage.completion_tokens =
                json_integer_value(ct) > UINT32_MAX ? UINT32_MAX : (uint32_t)json_integer_value(ct);
        }
    }
    const json_t *choices = json_object_get(o, "choices");
    if (!json_is_array(choices))
        goto out;
    if (whole)
        p->finished = true; /* a whole completion is complete by construction */
    /* n = 1: the first choice is the answer (the usage chunk has none). */
    const json_t *ch = json_array_get(choices, 0);
    if (!json_is_object(ch))
        goto out;
    const json_t *d = json_object_get(ch, whole ? "message" : "delta");
    if (json_is_object(d)) {
        rc = take_text(p, json_object_get(d, "content"));
        const json_t *tcs = json_object_get(d, "tool_calls");
        size_t i;
        const json_t *tc;
        json_array_foreach(tcs, i, tc)
        {
            if (rc != 0)
                break;
            /* Without an index a streamed delta continues call 0; a whole message's
             * calls are numbered by position. */
            rc = tool_delta(p, tc, whole ? (int64_t)i : 0);
        }
    }
    const json_t *fr = json_object_get(ch, "finish_reason");
    if (json_is_string(fr)) {
        copy_clip(p->finish_reason, sizeof(p->finish_reason), json_string_value(fr),
                  json_string_length(fr));
        p->finished = true;
    }
out:
    json_decref(o);
    return rc;
}

static int dispatch(llm_sse_t *p)
{
    if (!p->have_data)
        return 0;
    p->have_data = false;
    const char *s = p->data.d;
    size_t n = p->data.len;
    p->data.len = 0;
    if (n >= 6 && memcmp(s, "[DONE]", 6) == 0) {
        p->done = true;
        return 0;
    }
    return handle_json(p, s, n, false);
}

/* ---- bytes -> lines -> events -------------------------------------------- */

static int process_line(llm_sse_t *p)
{
    const char *l = p->line.d;
    size_t n = p->line.len;
    p->line.len = 0;
    if (n == 0)
        return dispatch(p);
    if (l[0] == ':')
        return 0; /* comment (keep-alive) */
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    if (flen != 4 || memcmp(l, "data", 4) != 0)
        return 0; /* event, id, retry and unknown fields: nothing we need */
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = (size_t)(l + n - v);
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    int rc = 0;
    if (p->have_data)
        rc = sbuf_append(&p->data, "\n", 1, LLM_SSE_LINE_MAX);
    if (rc == 0)
        rc = sbuf_append(&p->data, v, vlen, LLM_SSE_LINE_MAX);
    p->have_data = true;
    return rc;
}

static int feed_sse(llm_sse_t *p, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (p->skip_lf) {
            p->skip_lf = false;
            if (s[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < len && s[j] != '\n' && s[j] != '\r')
            j++;
        int rc = sbuf_append(&p->line, s + i, j - i, LLM_SSE_LINE_MAX);
        if (rc != 0)
            return rc;
        if (j == len)
            break;
        if (s[j] == '\r')
            p->skip_lf = true;
        rc = process_line(p);
        if (rc != 0)
            return rc;
        i = j + 1;
    }
    return 0;
}

int llm_sse_feed(llm_sse_t *p, const char *data, size_t len)
{
    if (p->err != 0)
        return p->err;
    if (len > LLM_SSE_BODY_MAX || p->total + len > LLM_SSE_BODY_MAX)
        return latch(p, MESH_ETOOBIG);
    p->total += len;
    if (p->mode == MODE_UNKNOWN) {
        /* Blank bytes before the first token mean nothing in either format. */
        while (len > 0 && (*data == ' ' || *data == '\t' || *data == '\r' || *data == '\n')) {
            data++;
            len--;
        }
        if (len == 0)
            return 0;
        p->mode = *data == '{' ? MODE_JSON : MODE_SSE;
    }
    if (p->mode == MODE_JSON)
        return latch(p, sbuf_append(&p->body, data, len, LLM_SSE_BODY_MAX));
    return latch(p, feed_sse(p, data, len));
}

int llm_sse_finish(llm_sse_t *p)
{
    if (p->err != 0)
        return p->err;
    int rc = 0;
    if (p->mode == MODE_JSON) {
        rc = handle_json(p, p->body.d, p->body.len, true);
    } else if (p->mode == MODE_SSE) {
        if (p->line.len > 0)
            rc = process_line(p);
        if (rc == 0)
            rc = dispatch(p);
    }
    if (latch(p, rc) != 0)
        return p->err;
    if (p->has_error)
        return MESH_EUNAVAIL;
    if (p->malformed > 0 || (!p->done && !p->finished))
        return MESH_EPROTO;
    for (size_t i = 0; i < p->n_calls; i++) {
        if (p->calls[i].name[0] == '\0')
            return MESH_EPROTO;
    }
    return 0;
}

bool llm_sse_complete(const llm_sse_t *p)
{
    return p->done || p->finished;
}

uint32_t llm_sse_malformed(const llm_sse_t *p)
{
    return p->malformed;
}

const char *llm_sse_error(const llm_sse_t *p)
{
    return p->error;
}

const char *llm_sse_error_code(const llm_sse_t *p)
{
    return p->error_code;
}

const char *llm_sse_text(const llm_sse_t *p, size_t *len)
{
    if (len != NULL)
        *len = p->text.len;
    return p->text.d != NULL ? p->text.d : "";
}

const char *llm_sse_model(const llm_sse_t *p)
{
    return p->model;
}

const char *llm_sse_finish_reason(const llm_sse_t *p)
{
    return p->finish_reason;
}

bool llm_sse_usage(const llm_sse_t *p, llm_usage_t *u)
{
    if (p->got_usage && u != NULL)
        *u = p->usage;
    return p->got_usage;
}

size_t llm_sse_n_calls(const llm_sse_t *p)
{
    return p->n_calls;
}

void llm_sse_call(const llm_sse_t *p, size_t i, const char **id, const char **name,
                  const char **args, size_t *args_len)
{
    const sse_call_t *c = &p->calls[i];
    *id = c->id;
    *name = c->name;
    *args = c->args.d != NULL ? c->args.d : "";
    *args_len = c->args.len;
}

json_t *llm_sse_args_json(const char *args, size_t len)
{
    size_t i = 0;
    while (i < len && (args[i] == ' ' || args[i] == '\t' || args[i] == '\r' || args[i] == '\n'))
        i++;
    if (i == len)
        return json_object();
    json_error_t je;
    json_t *o = json_loadb(args, len, 0, &je);
    if (json_is_object(o))
        return o;
    json_decref(o);
    /* Invalid UTF-8 cannot travel in a msgpack str: say so instead of the bytes. */
    json_t *raw = json_stringn(args, len);
    if (raw == NULL)
        raw = json_string("(arguments were not valid UTF-8)");
    return raw != NULL ? json_pack("{s:o}", "_raw", raw) : NULL;
}
