/*
 * oai_body.c - one-pass writer of the Chat Completions body (oai_body.h).
 *
 * Every branch mirrors llm_oai_req_json + json_dumps(JSON_COMPACT) in
 * oai_req.c: the same keys in the same order, the same strings (C strings
 * where that code passes them through json_pack "s", i.e. cut at a NUL), the
 * same U+FFFD replacement of invalid UTF-8. The unit tests compare the two
 * byte for byte.
 */
#include "oai_body.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_json.h"
#include "mesh/mesh_text.h"

#define JSON_PRECISION 17 /* jansson's default: what json_dumps writes reals with */

/* One cached tool: its inputs (owned copies) as the key. */
typedef struct {
    char *name;
    char *description;
    json_t *parameters; /* NULL when the tool had none */
} cached_tool_t;

typedef struct {
    cached_tool_t *tools;
    size_t n_tools; /* 0: the slot is empty */
    char *text;     /* the "tools" array's JSON text */
    size_t text_len;
} tools_entry_t;

struct llm_oai_body {
    mesh_jbuf_t buf;     /* the body */
    mesh_jbuf_t scratch; /* tool-call arguments, the tools text on a miss */
    tools_entry_t cache[LLM_OAI_TOOLS_CACHE_N];
    size_t next_slot; /* round-robin replacement */
    double temp;      /* the temperature temp_text was written for */
    char temp_text[MESH_JSON_NUMBER_MAX];
    size_t temp_len; /* 0: temp_text not written yet */
    size_t hits, misses;
};

/* ---- strings ------------------------------------------------------------ */

static void put_lit(mesh_jbuf_t *b, const char *s)
{
    mesh_jbuf_raw(b, s, strlen(s));
}

/*
 * mesh_utf8_valid(s, n), with ASCII skipped eight bytes at a time first (the
 * prompts and schemas are mostly ASCII); the rest is checked from the first
 * non-ASCII byte on, which is always the start of a sequence.
 */
static bool text_valid(const char *s, size_t n)
{
    size_t i = 0;
    while (n - i >= 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if ((x & 0x8080808080808080u) != 0)
            break;
        i += 8;
    }
    while (i < n && (unsigned char)s[i] < 0x80)
        i++;
    return i == n || mesh_utf8_valid(s + i, n - i);
}

/* s[0..n) as a JSON string, invalid UTF-8 replaced by U+FFFD (oai_req.c str_json). */
static void put_text(mesh_jbuf_t *b, const char *s, size_t n)
{
    if (text_valid(s, n)) {
        mesh_jbuf_string(b, s, n);
        return;
    }
    size_t o = 0;
    char *out = llm_oai_utf8_repair(s, n, &o);
    if (out == NULL) {
        b->err = b->err ? b->err : MESH_ENOMEM;
        return;
    }
    mesh_jbuf_string(b, out, o);
    free(out);
}

/* A C string that json_pack "s" would take (valid UTF-8 up to its NUL), else EINVAL. */
static void put_cstr(mesh_jbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (!text_valid(s, n)) {
        b->err = b->err ? b->err : MESH_EINVAL;
        return;
    }
    mesh_jbuf_string(b, s, n);
}

/* A tool name mapped for OpenAI ('.' -> "__"). */
static void put_mapped_name(mesh_jbuf_t *b, const char *name)
{
    char mapped[LLM_OAI_NAME_MAX + 1];
    llm_oai_name_out(name, mapped, sizeof(mapped));
    put_cstr(b, mapped);
}

/* ---- messages ----------------------------------------------------------- */

/* [{id, type: "function", function: {name, arguments: <JSON text>}}] (oai_req.c tool_calls_json).
 */
static void put_tool_calls(llm_oai_body_t *w, const json_t *calls)
{
    mesh_jbuf_t *b = &w->buf;
    mesh_jbuf_raw(b, "[", 1);
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        if (i > 0)
            mesh_jbuf_raw(b, ",", 1);
        const json_t *args = json_object_get(c, "arguments");
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *name = json_string_value(json_object_get(c, "name"));
        put_lit(b, "{\"id\":");
        put_cstr(b, id ? id : "");
        put_lit(b, ",\"type\":\"function\",\"function\":{\"name\":");
        put_mapped_name(b, name ? name : "");
        put_lit(b, ",\"arguments\":");
        if (json_is_string(args)) {
            put_cstr(b, json_string_value(args));
        } else if (args == NULL) {
            put_lit(b, "\"{}\"");
        } else {
            mesh_jbuf_reset(&w->scratch, LLM_OAI_BODY_KEEP_MAX);
            mesh_jbuf_value(&w->scratch, args, JSON_PRECISION);
            if (w->scratch.err != 0) {
                b->err = b->err ? b->err : w->scratch.err;
                return;
            }
            mesh_jbuf_string(b, w->scratch.data ? w->scratch.data : "", w->scratch.len);
        }
        put_lit(b, "}}");
    }
    mesh_jbuf_raw(b, "]", 1);
}

static void put_history(llm_oai_body_t *w, const llm_call_t *call)
{
    mesh_jbuf_t *b = &w->buf;
    for (size_t i = 0; i < call->n_messages && b->err == 0; i++) {
        const llm_message_t *m = &call->messages[i];
        switch (m->role) {
        case LLM_ROLE_USER:
            put_lit(b, ",{\"role\":\"user\",\"content\":");
            put_text(b, m->text, m->text_len);
            break;
        case LLM_ROLE_ASSISTANT:
            put_lit(b, ",{\"role\":\"assistant\",\"content\":");
            if (m->tool_calls != NULL && json_array_size(m->tool_calls) > 0) {
                if (m->text_len == 0)
                    put_lit(b, "null");
                else
                    put_text(b, m->text, m->text_len);
                put_lit(b, ",\"tool_calls\":");
                put_tool_calls(w, m->tool_calls);
            } else {
                put_text(b, m->text, m->text_len);
            }
            break;
        case LLM_ROLE_TOOL:
            put_lit(b, ",{\"role\":\"tool\",\"tool_call_id\":");
            put_cstr(b, m->tool_call_id ? m->tool_call_id : "");
            put_lit(b, ",\"content\":");
            put_text(b, m->text, m->text_len);
            break;
        default:
            continue;
        }
        mesh_jbuf_raw(b, "}", 1);
    }
}

/* ---- the tools cache ---------------------------------------------------- */

/*
 * a and b are the same value AND write the same bytes: objects compared key
 * by key in iteration order (the order the writer emits), reals bit for bit
 * (0.0 and -0.0 write differently).
 */
static bool same_value(const json_t *a, const json_t *b, int depth)
{
    if (a == b)
        return true;
    if (a == NULL || b == NULL || json_typeof(a) != json_typeof(b) ||
        depth >= MESH_JSON_WRITE_DEPTH_MAX)
        return false;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        void *ia = json_object_iter((json_t *)a);
        void *ib = json_object_iter((json_t *)b);
        while (ia != NULL && ib != NULL) {
            size_t ka = json_object_iter_key_len(ia), kb = json_object_iter_key_len(ib);
            if (ka != kb || memcmp(json_object_iter_key(ia), json_object_iter_key(ib), ka) != 0 ||
                !same_value(json_object_iter_value(ia), json_object_iter_value(ib), depth + 1))
                return false;
            ia = json_object_iter_next((json_t *)a, ia);
            ib = json_object_iter_next((json_t *)b, ib);
        }
        return ia == NULL && ib == NULL;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++) {
            if (!same_value(json_array_get(a, i), json_array_get(b, i), depth + 1))
                return false;
        }
        return true;
    }
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL: {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof(x)) == 0;
    }
    default: /* true, false, null: the type says it all */
        return true;
    }
}

static bool entry_matches(const tools_entry_t *e, const llm_call_t *call)
{
    if (e->n_tools != call->n_tools)
        return false;
    for (size_t i = 0; i < call->n_tools; i++) {
        const llm_tool_t *t = &call->tools[i];
        const cached_tool_t *k = &e->tools[i];
        const char *desc = t->description ? t->description : "";
        if (strcmp(k->name, t->name) != 0 || strcmp(k->description, desc) != 0)
            return false;
        if ((k->parameters == NULL) != (t->parameters == NULL))
            return false;
        if (t->parameters != NULL && !same_value(k->parameters, t->parameters, 0))
            return false;
    }
    return true;
}

static void entry_clear(tools_entry_t *e)
{
    for (size_t i = 0; i < e->n_tools; i++) {
        free(e->tools[i].name);
        free(e->tools[i].description);
        json_decref(e->tools[i].parameters);
    }
    free(e->tools);
    free(e->text);
    memset(e, 0, sizeof(*e));
}

/* Keep text as the tools text of call (best effort: a failed copy caches nothing). */
static void entry_store(llm_oai_body_t *w, const llm_call_t *call, const char *text, size_t len)
{
    if (len > LLM_OAI_TOOLS_CACHE_TEXT_MAX || call->n_tools == 0)
        return;
    tools_entry_t *e = &w->cache[w->next_slot];
    w->next_slot = (w->next_slot + 1) % LLM_OAI_TOOLS_CACHE_N;
    entry_clear(e);
    e->tools = calloc(call->n_tools, sizeof(*e->tools));
    e->text = malloc(len + 1);
    if (e->tools == NULL || e->text == NULL)
        goto fail;
    memcpy(e->text, text, len);
    e->text[len] = '\0';
    e->text_len = len;
    for (size_t i = 0; i < call->n_tools; i++) {
        const llm_tool_t *t = &call->tools[i];
        cached_tool_t *k = &e->tools[i];
        e->n_tools = i + 1; /* entry_clear frees what was made so far */
        k->name = strdup(t->name);
        k->description = strdup(t->description ? t->description : "");
        /* A deep copy: the request's json_t is freed with the request. */
        k->parameters = t->parameters ? json_deep_copy(t->parameters) : NULL;
        if (k->name == NULL || k->description == NULL ||
            (t->parameters != NULL && k->parameters == NULL))
            goto fail;
    }
    return;
fail:
    entry_clear(e);
}

/* The tools array (oai_req.c tools_json) into b. */
static void write_tools(mesh_jbuf_t *b, const llm_call_t *call)
{
    mesh_jbuf_raw(b, "[", 1);
    for (size_t i = 0; i < call->n_tools; i++) {
        const llm_tool_t *t = &call->tools[i];
        if (i > 0)
            mesh_jbuf_raw(b, ",", 1);
        put_lit(b, "{\"type\":\"function\",\"function\":{\"name\":");
        put_mapped_name(b, t->name);
        put_lit(b, ",\"description\":");
        put_cstr(b, t->description ? t->description : "");
        put_lit(b, ",\"parameters\":");
        if (t->parameters != NULL)
            mesh_jbuf_value(b, t->parameters, JSON_PRECISION);
        else
            put_lit(b, "{\"type\":\"object\",\"properties\":{}}");
        put_lit(b, "}}");
    }
    mesh_jbuf_raw(b, "]", 1);
}

static void put_tools(llm_oai_body_t *w, const llm_call_t *call)
{
    for (size_t i = 0; i < LLM_OAI_TOOLS_CACHE_N; i++) {
        const tools_entry_t *e = &w->cache[i];
        if (e->n_tools > 0 && entry_matches(e, call)) {
            w->hits++;
            mesh_jbuf_raw(&w->buf, e->text, e->text_len);
            return;
        }
    }
    w->misses++;
    mesh_jbuf_reset(&w->scratch, LLM_OAI_BODY_KEEP_MAX);
    write_tools(&w->scratch, call);
    if (w->scratch.err != 0) {
        w->buf.err = w->buf.err ? w->buf.err : w->scratch.err;
        return;
    }
    mesh_jbuf_raw(&w->buf, w->scratch.data, w->scratch.len);
    entry_store(w, call, w->scratch.data, w->scratch.len);
}

/* ---- the body ----------------------------------------------------------- */

/* The temperature as jansson writes a real; formatted once per value (it is the
 * backend's setting, the same on every call), since "%.17g" alone costs a microsecond. */
static void put_temperature(llm_oai_body_t *w, double t)
{
    if (w->temp_len == 0 || memcmp(&w->temp, &t, sizeof(t)) != 0) {
        json_t *r = json_real(t);
        mesh_jbuf_t tmp = {0};
        int rc = r != NULL ? mesh_json_write(&tmp, r, JSON_PRECISION) : MESH_ENOMEM;
        json_decref(r);
        if (rc != 0 || tmp.len >= sizeof(w->temp_text)) {
            mesh_jbuf_free(&tmp);
            w->temp_len = 0;
            w->buf.err = w->buf.err ? w->buf.err : (rc != 0 ? rc : MESH_EINVAL);
            return;
        }
        memcpy(w->temp_text, tmp.data, tmp.len);
        w->temp_len = tmp.len;
        w->temp = t;
        mesh_jbuf_free(&tmp);
    }
    mesh_jbuf_raw(&w->buf, w->temp_text, w->temp_len);
}

int llm_oai_body_write(llm_oai_body_t *w, const llm_call_t *call, const llm_oai_req_opts_t *o,
                       const char **body, size_t *len)
{
    mesh_jbuf_t *b = &w->buf;
    mesh_jbuf_reset(b, LLM_OAI_BODY_KEEP_MAX);
    put_lit(b, "{\"model\":");
    put_cstr(b, o->model);
    put_lit(b, ",\"messages\":[");
    /* Every message below starts with ','; the first one's is dropped here. */
    size_t first = b->len;
    if (call->system_len > 0) {
        put_lit(b, ",{\"role\":\"system\",\"content\":");
        put_text(b, call->system, call->system_len);
        mesh_jbuf_raw(b, "}", 1);
    }
    char *facts = llm_oai_req_facts(call->state);
    if (facts != NULL) {
        put_lit(b, ",{\"role\":\"system\",\"content\":");
        put_cstr(b, facts);
        mesh_jbuf_raw(b, "}", 1);
        free(facts);
    }
    put_history(w, call);
    if (b->err == 0 && b->len > first) {
        memmove(b->data + first, b->data + first + 1, b->len - first - 1);
        b->len--;
    }
    mesh_jbuf_raw(b, "]", 1);
    if (call->n_tools > 0) {
        put_lit(b, ",\"tools\":");
        put_tools(w, call);
        put_lit(b, ",\"tool_choice\":\"auto\"");
    }
    put_lit(b, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    if (o->max_completion_tokens > 0) {
        put_lit(b, ",\"max_completion_tokens\":");
        mesh_jbuf_u64(b, o->max_completion_tokens);
    }
    if (o->temperature >= 0) {
        put_lit(b, ",\"temperature\":");
        put_temperature(w, o->temperature);
    }
    if (call->response_format != NULL && strcmp(call->response_format, "json") == 0)
        put_lit(b, ",\"response_format\":{\"type\":\"json_object\"}");
    mesh_jbuf_raw(b, "}", 1);
    if (b->err != 0) {
        int rc = b->err;
        mesh_jbuf_reset(b, 0);
        return rc;
    }
    /* NUL-terminate without counting it (mesh_jbuf keeps room for one byte). */
    b->data[b->len] = '\0';
    *body = b->data;
    *len = b->len;
    return 0;
}

/* ---- lifetime ----------------------------------------------------------- */

llm_oai_body_t *llm_oai_body_new(void)
{
    return calloc(1, sizeof(llm_oai_body_t));
}

void llm_oai_body_destroy(llm_oai_body_t **w_p)
{
    if (w_p == NULL || *w_p == NULL)
        return;
    llm_oai_body_t *w = *w_p;
    for (size_t i = 0; i < LLM_OAI_TOOLS_CACHE_N; i++)
        entry_clear(&w->cache[i]);
    mesh_jbuf_free(&w->buf);
    mesh_jbuf_free(&w->scratch);
    free(w);
    *w_p = NULL;
}

void llm_oai_body_cache_stats(const llm_oai_body_t *w, size_t *hits, size_t *misses)
{
    *hits = w->hits;
    *misses = w->misses;
}
