/*
 * backend_openai.c - the "openai" backend: any OpenAI-compatible Chat
 * Completions endpoint (vLLM, llama.cpp server, Ollama, hosted APIs) over
 * mesh_httpc (libcurl multi) on the worker's uv loop (docs/llm.md).
 *
 * One call = one or more attempts (HTTP requests) against the endpoint of the
 * call's tier, each streamed (SSE) into an llm_sse_t. Between attempts the
 * retry policy of oai_retry.h waits; every attempt asks the endpoint's
 * circuit breaker first (oai_breaker.h). A deadline timer ends the call at
 * call->deadline (a little earlier when the rules fallback must still
 * answer). When the model is unusable (breaker open, retries exhausted,
 * deadline, an error answer) and call->fallback is "rules", the built-in
 * rules backend answers in-process and the result says so; otherwise the
 * sink gets EUNAVAIL / EBUSY (rate limited) / ETIMEDOUT.
 *
 * Once text has been forwarded to the client (call->stream), a failure is
 * not retried and not answered by the fallback: the client already holds
 * part of an answer, and a second one would contradict it.
 *
 * Memory: a call struct holds two uv timers; it is freed when both have
 * closed, which never touches the llm_call_t or the sink.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "llm_backend.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_httpc.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_trace.h"
#include "oai_body.h"
#include "oai_breaker.h"
#include "oai_req.h"
#include "oai_retry.h"
#include "oai_tiers.h"
#include "sse.h"

extern const llm_backend_vtable_t llm_backend_openai;
extern const llm_backend_vtable_t llm_backend_rules;

#define OAI_KEY_MAX              4096 /* API key bytes (file or env) */
#define OAI_FALLBACK_RESERVE_MS  100  /* the deadline timer fires this early with a fallback */
#define OAI_CALL_ID_RANDOM       24   /* hex digits of a generated tool call id */
#define OAI_CHAT_PATH            "/chat/completions"
#define OAI_MSG_MAX              200 /* error text passed to the sink, bytes */
#define OAI_TEMPERATURE_TEXT_MAX 16

typedef struct oai_call oai_call_t;

typedef struct {
    char url[LLM_OAI_URL_MAX + 1];
    llm_breaker_t br;
} oai_endpoint_t;

typedef struct {
    llm_backend_t base; /* first */
    uv_loop_t *loop;
    mesh_httpc_t *httpc;
    llm_oai_tiers_t tiers;
    oai_endpoint_t eps[LLM_OAI_TIERS_MAX];
    size_t n_eps;
    size_t tier_ep[LLM_OAI_TIERS_MAX];
    char *auth; /* "Authorization: Bearer <key>" or NULL; never logged */
    uint64_t timeout_ms, connect_timeout_ms, backoff_ms, backoff_max_ms;
    uint32_t retries;
    uint32_t max_tokens;
    double temperature;
    llm_backend_t *rules;   /* the fallback */
    llm_oai_body_t *writer; /* request bodies: one reused buffer, the tools cache */
    oai_call_t *calls;
    const char *body; /* the body oai_start wrote for its first attempt (in writer) */
    size_t body_len;
    uint64_t rng;
} oai_backend_t;

struct oai_call {
    llm_handle_t base; /* first */
    oai_backend_t *b;
    const llm_call_t *call;
    llm_sink_t *sink;
    const llm_oai_tier_t *tier;
    oai_endpoint_t *ep;
    /* The writer holds this call's body, built by oai_start for the first attempt;
     * a retry writes it again (the call's inputs stay valid until the end). */
    bool body_ready;
    uint64_t req_id; /* the attempt's HTTP request, 0 when none in flight */
    bool aborted;    /* the SSE parser refused the body: it aborted the transfer */
    llm_sse_t *sse;
    long http_status;
    int64_t retry_after_ms;
    unsigned attempt; /* attempts started */
    bool forwarded;   /* text went to the client */
    bool allowed;     /* the current attempt holds a breaker admission */
    bool delivered;   /* terminal callback made (or canceled) */
    bool last_429;
    uv_timer_t deadline_timer;
    uv_timer_t retry_timer;
    int open_handles;
    llm_handle_t *fb_handle; /* a fallback call still running */
    llm_sink_t fb_sink;
    char fb_reason[OAI_MSG_MAX + 1];
    mesh_span_t span;
    char tp[MESH_TRACEPARENT_MAX + 1];
    oai_call_t *prev, *next;
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_next(oai_backend_t *b)
{
    /* xorshift64*: jitter and generated ids only, nothing secret */
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return b->rng * 0x2545F4914F6CDD1Dull;
}

static void call_link(oai_backend_t *b, oai_call_t *c)
{
    c->next = b->calls;
    if (b->calls != NULL)
        b->calls->prev = c;
    b->calls = c;
}

static void call_unlink(oai_backend_t *b, oai_call_t *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (b->calls == c)
        b->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void on_handle_closed(uv_handle_t *h)
{
    oai_call_t *c = h->data;
    if (--c->open_handles == 0) {
        llm_sse_destroy(&c->sse);
        free(c);
    }
}

/* Abandon the attempt's HTTP request (safe from inside its callbacks). */
static void http_stop(oai_call_t *c)
{
    if (c->req_id != 0) {
        mesh_httpc_cancel(c->b->httpc, c->req_id);
        c->req_id = 0;
    }
}

/* The call is over for the sink (delivered or canceled): release everything. */
static void call_release(oai_call_t *c)
{
    c->delivered = true;
    http_stop(c);
    if (c->allowed) {
        llm_breaker_release(&c->ep->br);
        c->allowed = false;
    }
    call_unlink(c->b, c);
    uv_timer_stop(&c->deadline_timer);
    uv_timer_stop(&c->retry_timer);
    uv_close((uv_handle_t *)&c->deadline_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->retry_timer, on_handle_closed);
}

static void span_end(oai_call_t *c, int status, bool fallback)
{
    mesh_span_attr_int(&c->span, "llm.attempts", c->attempt);
    if (fallback)
        mesh_span_attr_str(&c->span, "llm.fallback", "rules");
    mesh_span_finish(&c->span, status);
}

static void deliver_error(oai_call_t *c, int status, const char *msg)
{
    llm_sink_t *sink = c->sink;
    span_end(c, status, false);
    call_release(c);
    sink->on_error(sink, status, msg);
}

/* ---- the fallback ------------------------------------------------------- */

static void fb_delta(llm_sink_t *s, const char *text, size_t len)
{
    oai_call_t *c = s->arg;
    c->sink->on_delta(c->sink, text, len);
}

static void fb_done(llm_sink_t *s, const llm_result_t *res)
{
    oai_call_t *c = s->arg;
    llm_sink_t *sink = c->sink;
    llm_result_t r = *res;
    char reason[OAI_MSG_MAX + 1];
    memcpy(reason, c->fb_reason, sizeof(reason));
    r.model = "rules";
    r.fallback_reason = reason;
    c->fb_handle = NULL;
    span_end(c, 0, true);
    call_release(c);
    sink->on_done(sink, &r);
}

static void fb_error(llm_sink_t *s, int status, const char *msg)
{
    oai_call_t *c = s->arg;
    c->fb_handle = NULL;
    deliver_error(c, status, msg);
}

/*
 * The model cannot answer this call: the rules backend answers when the call
 * asks for that fallback and nothing was forwarded yet, else the sink gets status.
 */
static void unusable(oai_call_t *c, int status, const char *reason)
{
    char safe[4 * MESH_LOG_SAMPLE_MAX + 4];
    mesh_log_warn("llm", "model unusable tier=%s endpoint=%s: %s (%s)", c->tier->name, c->ep->url,
                  mesh_log_sanitize(reason, strlen(reason), safe, sizeof(safe)),
                  mesh_err_name(status));
    http_stop(c);
    if (c->allowed) {
        llm_breaker_release(&c->ep->br);
        c->allowed = false;
    }
    const char *fb = c->call->fallback;
    if (fb == NULL || strcmp(fb, "rules") != 0 || c->forwarded) {
        deliver_error(c, status, reason);
        return;
    }
    snprintf(c->fb_reason, sizeof(c->fb_reason), "%s: %s", mesh_err_name(status), reason);
    c->fb_sink.on_delta = fb_delta;
    c->fb_sink.on_done = fb_done;
    c->fb_sink.on_error = fb_error;
    c->fb_sink.arg = c;
    uv_timer_stop(&c->deadline_timer);
    uv_timer_stop(&c->retry_timer);
    llm_handle_t *h = NULL;
    int rc = llm_backend_start(c->b->rules, c->call, &c->fb_sink, &h);
    if (rc != 0) {
        deliver_error(c, status, reason);
        return;
    }
    if (h != NULL) /* not yet answered (a rules delay): c stays until fb_done */
        c->fb_handle = h;
}

/* ---- the answer --------------------------------------------------------- */

static void deliver_answer(oai_call_t *c)
{
    oai_backend_t *b = c->b;
    llm_sse_t *p = c->sse;
    llm_result_t res;
    memset(&res, 0, sizeof(res));
    size_t n = llm_sse_n_calls(p);
    llm_tool_call_t calls[LLM_SSE_CALLS_MAX];
    json_t *args[LLM_SSE_CALLS_MAX];
    char ids[LLM_SSE_CALLS_MAX][LLM_CALL_ID_MAX + 1];
    char names[LLM_SSE_CALLS_MAX][LLM_OAI_NAME_MAX + 1];
    uint64_t out_tokens = 0;
    size_t made = 0;
    int rc = 0;
    for (; made < n; made++) {
        const char *id, *name, *a;
        size_t alen;
        llm_sse_call(p, made, &id, &name, &a, &alen);
        if (id[0] == '\0') { /* some servers send no id: the router needs one */
            snprintf(ids[made], sizeof(ids[made]), "call_%016llx%zu",
                     (unsigned long long)rng_next(b), made);
            id = ids[made];
        }
        args[made] = llm_sse_args_json(a, alen);
        if (args[made] == NULL) {
            rc = MESH_ENOMEM;
            break;
        }
        llm_oai_name_in(name, names[made], sizeof(names[made])); /* "a__b" -> "a.b" */
        calls[made].id = id;
        calls[made].name = names[made];
        calls[made].arguments = args[made];
        out_tokens += llm_tokens_estimate(name, strlen(name)) + llm_tokens_estimate(a, alen);
    }
    if (rc != 0) {
        for (size_t i = 0; i < made; i++)
            json_decref(args[i]);
        deliver_error(c, rc, "out of memory assembling the tool calls");
        return;
    }
    if (n > 0) {
        res.type = LLM_RESULT_TOOL_CALLS;
        res.calls = calls;
        res.n_calls = n;
    } else {
        res.type = LLM_RESULT_TEXT;
        res.text = llm_sse_text(p, &res.text_len);
        out_tokens = llm_tokens_estimate(res.text, res.text_len);
    }
    if (!llm_sse_usage(p, &res.usage)) {
        res.usage.prompt_tokens = llm_call_prompt_tokens(c->call);
        res.usage.completion_tokens =
            out_tokens == 0 ? 1 : (out_tokens > UINT32_MAX ? UINT32_MAX : (uint32_t)out_tokens);
    }
    char model[LLM_SSE_MODEL_MAX + 1];
    snprintf(model, sizeof(model), "%s",
             llm_sse_model(p)[0] != '\0' ? llm_sse_model(p) : c->tier->model);
    res.model = model;
    llm_sink_t *sink = c->sink;
    span_end(c, 0, false);
    /* The parser (and so the text and calls) lives until the call struct is freed
     * from its close callbacks, after this callback returns. */
    call_release(c);
    sink->on_done(sink, &res);
    for (size_t i = 0; i < made; i++)
        json_decref(args[i]);
}

/* ---- attempts ----------------------------------------------------------- */

static void start_attempt(oai_call_t *c);

static void on_retry_timer(uv_timer_t *t)
{
    start_attempt(t->data);
}

/* A retryable failure of the current attempt: wait and retry, or give up. */
static void retry_or_give_up(oai_call_t *c, const char *why)
{
    oai_backend_t *b = c->b;
    uint64_t now = uv_now(b->loop);
    http_stop(c);
    if (c->allowed) {
        c->allowed = false;
        llm_breaker_failure(&c->ep->br, now);
    }
    if (c->forwarded) {
        deliver_error(c, MESH_EUNAVAIL, why);
        return;
    }
    int give_up = c->last_429 ? MESH_EBUSY : MESH_EUNAVAIL;
    if (c->attempt > b->retries) {
        unusable(c, give_up, why);
        return;
    }
    uint64_t delay = c->retry_after_ms >= 0
                         ? (uint64_t)c->retry_after_ms
                         : llm_oai_backoff_ms(c->attempt - 1, b->backoff_ms, b->backoff_max_ms,
                                              (double)(rng_next(b) >> 11) / 9007199254740992.0);
    if (now + delay >= c->call->deadline) {
        unusable(c, give_up, why);
        return;
    }
    mesh_log_info("llm", "retrying model call tier=%s in %llu ms (attempt %u failed: %s)",
                  c->tier->name, (unsigned long long)delay, c->attempt, why);
    uv_timer_start(&c->retry_timer, on_retry_timer, delay, 0);
}

static void sse_delta(const char *text, size_t len, void *arg)
{
    oai_call_t *c = arg;
    if (!c->call->stream || c->http_status != 200)
        return;
    c->forwarded = true;
    c->sink->on_delta(c->sink, text, len);
}

static int on_write(long status, const char *ptr, size_t n, void *arg)
{
    oai_call_t *c = arg;
    if (c->http_status == 0)
        c->http_status = status;
    if (llm_sse_feed(c->sse, ptr, n) != 0) {
        c->aborted = true;
        return MESH_ETOOBIG; /* over a bound: abort the transfer */
    }
    return 0;
}

static void on_header(const char *buf, size_t n, void *arg)
{
    oai_call_t *c = arg;
    static const char ra[] = "retry-after:";
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        c->retry_after_ms = -1; /* a new response (e.g. after 100 Continue) */
        return;
    }
    if (n > sizeof(ra) - 1 && strncasecmp(buf, ra, sizeof(ra) - 1) == 0)
        c->retry_after_ms =
            llm_oai_retry_after_ms(buf + sizeof(ra) - 1, n - (sizeof(ra) - 1), time(NULL));
}

static void on_transfer_done(const mesh_httpc_resp_t *r, void *arg)
{
    oai_call_t *c = arg;
    char why[OAI_MSG_MAX + 1];
    long status = r->status;
    c->req_id = 0;
    c->http_status = status;
    c->last_429 = status == 429;

    if (r->error != 0 && !c->aborted) {
        if (r->error == MESH_ETIMEDOUT && uv_now(c->b->loop) >= c->call->deadline) {
            if (c->allowed) {
                c->allowed = false;
                llm_breaker_failure(&c->ep->br, uv_now(c->b->loop));
            }
            unusable(c, MESH_ETIMEDOUT, "the model did not answer before the deadline");
            return;
        }
        snprintf(why, sizeof(why), "connection: %s", r->errmsg);
        retry_or_give_up(c, why);
        return;
    }
    int prc = c->aborted ? MESH_ETOOBIG : llm_sse_finish(c->sse);
    if (status == 200 && prc == 0) {
        if (c->allowed) {
            c->allowed = false;
            llm_breaker_success(&c->ep->br);
        }
        deliver_answer(c);
        return;
    }
    const char *em = llm_sse_error(c->sse);
    if (status != 200) {
        snprintf(why, sizeof(why), "HTTP %ld%s%s", status, em[0] ? ": " : "", em);
        if (llm_oai_status_retryable(status)) {
            retry_or_give_up(c, why);
            return;
        }
        /* A 4xx about this request (or the key) is not the endpoint failing. vLLM
         * refuses tool_choice "auto" unless started for it: say how to fix that. */
        if (status == 400 && strstr(em, "auto") != NULL && strstr(em, "tool") != NULL)
            snprintf(why, sizeof(why),
                     "HTTP 400: the server refuses tool_choice \"auto\" "
                     "(vLLM: start it with --enable-auto-tool-choice "
                     "--tool-call-parser <parser>)");
        unusable(c, MESH_EUNAVAIL, why);
        return;
    }
    if (prc == MESH_ETOOBIG || prc == MESH_ENOMEM) {
        unusable(c, MESH_EUNAVAIL, "the model's answer exceeded a size limit");
        return;
    }
    if (prc == MESH_EUNAVAIL)
        snprintf(why, sizeof(why), "error in the stream: %s", em);
    else if (llm_sse_malformed(c->sse) > 0)
        snprintf(why, sizeof(why), "malformed JSON in the stream");
    else
        snprintf(why, sizeof(why), "the stream ended before the answer was complete");
    retry_or_give_up(c, why);
}

#define OAI_TP_LINE_MAX (sizeof("traceparent: ") + MESH_TRACEPARENT_MAX + 1)
#define OAI_HEADERS_MAX 6 /* request header lines of one attempt, with the NULL */

/* The attempt's request headers into h (lines borrowed from c->b and tp). */
static void make_headers(const oai_call_t *c, const char *h[OAI_HEADERS_MAX],
                         char tp[OAI_TP_LINE_MAX])
{
    size_t n = 0;
    h[n++] = "Content-Type: application/json";
    h[n++] = "Accept: text/event-stream";
    h[n++] = "User-Agent: mesh-llm";
    if (c->b->auth != NULL)
        h[n++] = c->b->auth;
    if (c->tp[0] != '\0') {
        snprintf(tp, OAI_TP_LINE_MAX, "traceparent: %s", c->tp);
        h[n++] = tp;
    }
    h[n] = NULL;
}

static void start_attempt(oai_call_t *c)
{
    oai_backend_t *b = c->b;
    uint64_t now = uv_now(b->loop);
    if (now >= c->call->deadline) {
        unusable(c, MESH_ETIMEDOUT, "the deadline passed before the model answered");
        return;
    }
    if (!llm_breaker_allow(&c->ep->br, now)) {
        unusable(c, MESH_EUNAVAIL, "circuit breaker open for the model endpoint");
        return;
    }
    c->allowed = true;
    c->attempt++;
    c->http_status = 0;
    c->retry_after_ms = -1;
    llm_sse_destroy(&c->sse);
    c->sse = llm_sse_new();
    c->aborted = false;
    if (c->sse == NULL) {
        unusable(c, MESH_ENOMEM, "out of memory starting the model request");
        return;
    }
    llm_sse_set_delta_cb(c->sse, sse_delta, c);
    const char *body = NULL;
    size_t body_len = 0;
    if (!c->body_ready) {
        llm_oai_req_opts_t ro = {.model = c->tier->model,
                                 .max_completion_tokens = b->max_tokens,
                                 .temperature = b->temperature};
        if (llm_oai_body_write(b->writer, c->call, &ro, &body, &body_len) != 0) {
            unusable(c, MESH_ENOMEM, "out of memory starting the model request");
            return;
        }
    } else {
        body = b->body;
        body_len = b->body_len;
    }
    c->body_ready = false; /* the next attempt writes it again */
    char url[LLM_OAI_URL_MAX + sizeof(OAI_CHAT_PATH)];
    snprintf(url, sizeof(url), "%s%s", c->ep->url, OAI_CHAT_PATH);
    uint64_t left = c->call->deadline - now;
    uint64_t tmo = b->timeout_ms < left ? b->timeout_ms : left;
    const char *headers[OAI_HEADERS_MAX];
    char tp[OAI_TP_LINE_MAX];
    make_headers(c, headers, tp);
    mesh_httpc_opts_t o = {.method = "POST",
                           .url = url,
                           .headers = headers,
                           .body = body, /* copied by mesh_httpc */
                           .body_len = body_len,
                           .timeout_ms = tmo};
    mesh_httpc_ext_t x = {.on_data = on_write,
                          .on_header = on_header,
                          .connect_timeout_ms =
                              b->connect_timeout_ms < tmo ? b->connect_timeout_ms : tmo};
    int rc = mesh_httpc_request_ext(b->httpc, &o, &x, on_transfer_done, c, &c->req_id);
    if (rc == MESH_ENOMEM) {
        c->req_id = 0;
        unusable(c, MESH_ENOMEM, "out of memory starting the model request");
    } else if (rc != 0) {
        c->req_id = 0;
        retry_or_give_up(c, "could not start the HTTP transfer");
    }
}

static void on_deadline(uv_timer_t *t)
{
    oai_call_t *c = t->data;
    uv_timer_stop(&c->retry_timer);
    if (c->req_id != 0 && c->allowed) {
        /* A model that stalls until the deadline counts against its endpoint. */
        c->allowed = false;
        llm_breaker_failure(&c->ep->br, uv_now(c->b->loop));
    }
    if (c->forwarded) {
        http_stop(c);
        deliver_error(c, MESH_ETIMEDOUT, "deadline exceeded while the model was answering");
        return;
    }
    unusable(c, MESH_ETIMEDOUT, "the model did not answer before the deadline");
}

/* ---- vtable ------------------------------------------------------------- */

static int read_key(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return MESH_ECONFIG;
    char buf[OAI_KEY_MAX + 1];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n == 0 || n > OAI_KEY_MAX)
        return MESH_ECONFIG;
    buf[n] = '\0';
    *out = strdup(buf);
    memset(buf, 0, sizeof(buf));
    return *out != NULL ? 0 : MESH_ENOMEM;
}

static int set_auth(oai_backend_t *b, const char *key)
{
    for (const char *p = key; *p; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7E)
            return MESH_ECONFIG; /* a header cannot carry it */
    }
    size_t n = strlen(key) + sizeof("Authorization: Bearer ");
    b->auth = malloc(n);
    if (b->auth == NULL)
        return MESH_ENOMEM;
    snprintf(b->auth, n, "Authorization: Bearer %s", key);
    return 0;
}

static const char *cfg_str(const llm_backend_config_t *cfg, const char *name)
{
    const char *s = cfg->config ? mesh_config_str(cfg->config, cfg->n_config, name) : NULL;
    return s != NULL ? s : "";
}

static int64_t cfg_int(const llm_backend_config_t *cfg, const char *name, int64_t def)
{
    if (cfg->config == NULL || mesh_config_find(cfg->config, cfg->n_config, name) == NULL)
        return def;
    return mesh_config_int(cfg->config, cfg->n_config, name);
}

static void oai_destroy(llm_backend_t **b_p);

static llm_backend_t *oai_create(uv_loop_t *loop, const llm_backend_config_t *cfg)
{
    oai_backend_t *b = calloc(1, sizeof(*b));
    char err[MESH_ERRMSG_MAX];
    if (b == NULL)
        return NULL;
    b->base.vt = &llm_backend_openai;
    b->loop = loop;
    b->rng = uv_hrtime() | 1;
    llm_backend_t *self = &b->base;

    const char *file = cfg_str(cfg, "MESH_LLM_TIERS_FILE");
    int rc = file[0]
                 ? llm_oai_tiers_load_file(file, &b->tiers, err, sizeof(err))
                 : llm_oai_tiers_parse(cfg_str(cfg, "MESH_LLM_TIERS"), &b->tiers, err, sizeof(err));
    if (rc != 0) {
        mesh_log_error("llm", "%s: %s", file[0] ? "MESH_LLM_TIERS_FILE" : "MESH_LLM_TIERS", err);
        goto fail;
    }
    uint32_t threshold = (uint32_t)cfg_int(cfg, "MESH_LLM_BREAKER_FAILURES", 5);
    uint64_t open_ms = (uint64_t)cfg_int(cfg, "MESH_LLM_BREAKER_OPEN_MS", 30000);
    for (size_t i = 0; i < b->tiers.n; i++) {
        size_t e = 0;
        while (e < b->n_eps && strcmp(b->eps[e].url, b->tiers.t[i].url) != 0)
            e++;
        if (e == b->n_eps) {
            memcpy(b->eps[e].url, b->tiers.t[i].url, sizeof(b->eps[e].url));
            llm_breaker_init(&b->eps[e].br, threshold, open_ms);
            b->n_eps++;
        }
        b->tier_ep[i] = e;
    }
    const char *key = cfg_str(cfg, "MESH_LLM_API_KEY");
    const char *key_file = cfg_str(cfg, "MESH_LLM_API_KEY_FILE");
    if (key_file[0]) {
        char *k = NULL;
        rc = read_key(key_file, &k);
        if (rc == 0)
            rc = set_auth(b, k);
        if (k != NULL) {
            memset(k, 0, strlen(k));
            free(k);
        }
        if (rc != 0) {
            mesh_log_error("llm",
                           "MESH_LLM_API_KEY_FILE: unreadable, empty, longer than %d "
                           "bytes or not printable ASCII",
                           OAI_KEY_MAX);
            goto fail;
        }
    } else if (key[0] && set_auth(b, key) != 0) {
        mesh_log_error("llm", "MESH_LLM_API_KEY: not printable ASCII");
        goto fail;
    }
    b->timeout_ms = (uint64_t)cfg_int(cfg, "MESH_LLM_TIMEOUT_MS", 60000);
    b->connect_timeout_ms = (uint64_t)cfg_int(cfg, "MESH_LLM_CONNECT_TIMEOUT_MS", 2000);
    b->retries = (uint32_t)cfg_int(cfg, "MESH_LLM_RETRIES", 2);
    b->backoff_ms = (uint64_t)cfg_int(cfg, "MESH_LLM_BACKOFF_MS", 500);
    b->backoff_max_ms = (uint64_t)cfg_int(cfg, "MESH_LLM_BACKOFF_MAX_MS", 8000);
    b->max_tokens = (uint32_t)cfg_int(cfg, "MESH_LLM_MAX_TOKENS", 1024);
    const char *temp = cfg_str(cfg, "MESH_LLM_TEMPERATURE");
    b->temperature = 0.2;
    if (temp[0]) {
        char *end = NULL;
        double t = strtod(temp, &end);
        if (end == temp || *end != '\0' || !(t >= 0 && t <= 2)) {
            mesh_log_error("llm", "MESH_LLM_TEMPERATURE: want a number in [0, 2]");
            goto fail;
        }
        b->temperature = t;
    }
    llm_backend_config_t rcfg = {.delay_ms = 0, .config = cfg->config, .n_config = cfg->n_config};
    b->rules = llm_backend_rules.create(loop, &rcfg);
    b->httpc = mesh_httpc_new(loop);
    b->writer = llm_oai_body_new();
    if (b->rules == NULL || b->httpc == NULL || b->writer == NULL)
        goto fail;
    for (size_t i = 0; i < b->tiers.n; i++)
        mesh_log_info("llm", "openai tier %s: %s model %s", b->tiers.t[i].name, b->tiers.t[i].url,
                      b->tiers.t[i].model);
    return self;
fail:
    oai_destroy(&self);
    return NULL;
}

static void oai_cancel(llm_handle_t *h)
{
    oai_call_t *c = (oai_call_t *)h;
    if (c->fb_handle != NULL) {
        llm_backend_cancel(c->fb_handle);
        c->fb_handle = NULL;
    }
    if (!c->delivered) {
        mesh_span_finish(&c->span, MESH_ECANCELED);
        call_release(c);
    }
}

static void oai_destroy(llm_backend_t **b_p)
{
    oai_backend_t *b = (oai_backend_t *)*b_p;
    if (b == NULL)
        return;
    while (b->calls != NULL)
        oai_cancel(&b->calls->base);
    llm_backend_destroy(&b->rules);
    mesh_httpc_destroy(&b->httpc);
    llm_oai_body_destroy(&b->writer);
    if (b->auth != NULL) {
        memset(b->auth, 0, strlen(b->auth));
        free(b->auth);
    }
    free(b);
    *b_p = NULL;
}

static int oai_start(llm_backend_t *base, const llm_call_t *call, llm_sink_t *sink,
                     llm_handle_t **handle_out)
{
    oai_backend_t *b = (oai_backend_t *)base;
    *handle_out = NULL;
    const llm_oai_tier_t *tier = llm_oai_tiers_find(&b->tiers, call->tier);
    if (tier == NULL)
        return MESH_ECONFIG;
    /* The body first: the request leaves as soon as the call is set up. */
    llm_oai_req_opts_t ro = {.model = tier->model,
                             .max_completion_tokens = b->max_tokens,
                             .temperature = b->temperature};
    if (llm_oai_body_write(b->writer, call, &ro, &b->body, &b->body_len) != 0)
        return MESH_ENOMEM;
    oai_call_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return MESH_ENOMEM;
    c->body_ready = true;
    c->base.backend = base;
    c->b = b;
    c->call = call;
    c->sink = sink;
    c->tier = tier;
    c->ep = &b->eps[b->tier_ep[tier - b->tiers.t]];
    uv_timer_init(b->loop, &c->deadline_timer);
    uv_timer_init(b->loop, &c->retry_timer);
    c->deadline_timer.data = c;
    c->retry_timer.data = c;
    c->open_handles = 2;
    call_link(b, c);

    /* The model call's span: a child of the llm worker's span of this request. */
    mesh_span_start(&c->span, "llm.openai chat", MESH_SPAN_CLIENT, call->traceparent);
    mesh_span_attr_str(&c->span, "llm.tier", tier->name);
    mesh_span_attr_str(&c->span, "llm.model", tier->model);
    mesh_span_child_tp(&c->span, c->tp);

    uint64_t now = uv_now(b->loop);
    uint64_t left = call->deadline > now ? call->deadline - now : 0;
    uint64_t reserve = 0;
    if (call->fallback != NULL && strcmp(call->fallback, "rules") == 0)
        reserve = left / 10 < OAI_FALLBACK_RESERVE_MS ? left / 10 : OAI_FALLBACK_RESERVE_MS;
    uv_timer_start(&c->deadline_timer, on_deadline, left - reserve, 0);
    start_attempt(c);
    c->body_ready = false; /* c is still allocated: it is freed from close callbacks */
    if (!c->delivered)
        *handle_out = &c->base;
    return 0;
}

const llm_backend_vtable_t llm_backend_openai = {
    .name = "openai",
    .create = oai_create,
    .destroy = oai_destroy,
    .start_call = oai_start,
    .cancel = oai_cancel,
};
