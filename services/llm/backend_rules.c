/*
 * backend_rules.c - the built-in deterministic "rules" backend.
 *
 * No model: each agent has a hand-written engine (rules_agents.c). With no
 * simulated delay (MESH_LLM_DELAY_MS=0, the default) a call completes inside
 * start_call, which is the cheapest path at thousands of turns per second.
 * With a delay, the answer is computed when a uv_timer fires, never by
 * blocking the loop; this is how tests and demos hold a call in flight.
 * A call whose deadline is closer than the delay ends with MESH_ETIMEDOUT at
 * the deadline, as a real model call would.
 */
#include <stdlib.h>
#include <string.h>

#include "llm_backend.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "rules.h"

extern const llm_backend_vtable_t llm_backend_rules;

typedef struct rules_call rules_call_t;

typedef struct {
    llm_backend_t base; /* first: the vtable dispatch casts */
    uv_loop_t *loop;
    uint64_t delay_ms;
    rules_call_t *pending; /* calls waiting for their timer */
} rules_backend_t;

struct rules_call {
    llm_handle_t base; /* first */
    uv_timer_t timer;  /* memory freed from its close callback */
    const llm_call_t *call;
    llm_sink_t *sink;
    bool times_out; /* the deadline comes before the delay ends */
    rules_call_t *prev, *next;
};

static void link_call(rules_backend_t *rb, rules_call_t *c)
{
    c->prev = NULL;
    c->next = rb->pending;
    if (rb->pending != NULL)
        rb->pending->prev = c;
    rb->pending = c;
}

static void unlink_call(rules_backend_t *rb, rules_call_t *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        rb->pending = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void on_call_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Completion tokens of a tool call: its name and the keys and string values of its arguments. */
static uint32_t tool_call_tokens(const char *name, const json_t *args)
{
    uint64_t t = llm_tokens_estimate(name, strlen(name));
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)args, key, v)
    {
        t += llm_tokens_estimate(key, strlen(key));
        if (json_is_string(v))
            t += llm_tokens_estimate(json_string_value(v), json_string_length(v));
        else
            t += 1;
    }
    return t == 0 ? 1 : (t > UINT32_MAX ? UINT32_MAX : (uint32_t)t);
}

/* Compute the answer and deliver it: deltas (when streaming), then the terminal callback. */
static void run(const llm_call_t *call, llm_sink_t *sink)
{
    llm_rules_out_t out;
    llm_rules_out_init(&out);
    int rc = llm_rules_answer(call, &out);
    if (rc != 0) {
        llm_rules_out_clear(&out);
        mesh_log_warn("llm", "rules engine failed: %s", mesh_strerror(rc));
        sink->on_error(sink, rc == MESH_ENOMEM ? MESH_ENOMEM : MESH_EINTERNAL,
                       "the rules engine could not compose an answer");
        return;
    }
    llm_result_t res = {.type = out.type, .model = "rules"};
    res.usage.prompt_tokens = llm_call_prompt_tokens(call);
    llm_tool_call_t tc[LLM_RULES_CALLS_MAX];
    if (out.type == LLM_RESULT_TEXT) {
        res.text = llm_buf_str(&out.text);
        res.text_len = out.text.len;
        uint32_t t = llm_tokens_estimate(res.text, res.text_len);
        res.usage.completion_tokens = t ? t : 1;
        if (call->stream) {
            size_t off = 0;
            while (off < res.text_len) {
                size_t n = llm_rules_next_delta(res.text + off, res.text_len - off);
                sink->on_delta(sink, res.text + off, n);
                off += n;
            }
        }
    } else {
        for (size_t i = 0; i < out.n_calls; i++) {
            tc[i].id = out.calls[i].id;
            tc[i].name = out.calls[i].name;
            tc[i].arguments = out.calls[i].arguments;
            res.usage.completion_tokens += tool_call_tokens(tc[i].name, tc[i].arguments);
        }
        res.calls = tc;
        res.n_calls = out.n_calls;
    }
    sink->on_done(sink, &res); /* may free call and sink: touch neither after this */
    llm_rules_out_clear(&out);
}

static void on_timer(uv_timer_t *t)
{
    rules_call_t *c = t->data;
    rules_backend_t *rb = (rules_backend_t *)c->base.backend;
    const llm_call_t *call = c->call;
    llm_sink_t *sink = c->sink;
    bool times_out = c->times_out;
    /* Detach and schedule the close before calling out, so whatever the sink does (even
     * destroying the backend) cannot reach this call again. */
    unlink_call(rb, c);
    uv_close((uv_handle_t *)&c->timer, on_call_closed);
    if (times_out)
        sink->on_error(sink, MESH_ETIMEDOUT, "deadline exceeded before the model answered");
    else
        run(call, sink);
}

static llm_backend_t *rules_create(uv_loop_t *loop, const llm_backend_config_t *cfg)
{
    rules_backend_t *rb = calloc(1, sizeof(*rb));
    if (rb == NULL)
        return NULL;
    rb->base.vt = &llm_backend_rules;
    rb->loop = loop;
    rb->delay_ms = cfg != NULL ? cfg->delay_ms : 0;
    if (rb->delay_ms > LLM_DELAY_MAX_MS)
        rb->delay_ms = LLM_DELAY_MAX_MS;
    return &rb->base;
}

static void rules_destroy(llm_backend_t **b_p)
{
    rules_backend_t *rb = (rules_backend_t *)*b_p;
    if (rb == NULL)
        return;
    while (rb->pending != NULL) {
        rules_call_t *c = rb->pending;
        unlink_call(rb, c);
        uv_close((uv_handle_t *)&c->timer, on_call_closed);
    }
    free(rb);
    *b_p = NULL;
}

static int rules_start(llm_backend_t *b, const llm_call_t *call, llm_sink_t *sink,
                       llm_handle_t **handle_out)
{
    rules_backend_t *rb = (rules_backend_t *)b;
    *handle_out = NULL;
    uint64_t now = uv_now(rb->loop);
    uint64_t remaining = call->deadline > now ? call->deadline - now : 0;

    if (rb->delay_ms == 0) {
        if (remaining == 0)
            sink->on_error(sink, MESH_ETIMEDOUT, "deadline exceeded before the call started");
        else
            run(call, sink);
        return 0;
    }

    rules_call_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return MESH_ENOMEM;
    if (uv_timer_init(rb->loop, &c->timer) != 0) {
        free(c);
        return MESH_EINTERNAL;
    }
    c->timer.data = c;
    c->base.backend = b;
    c->call = call;
    c->sink = sink;
    uint64_t wait = rb->delay_ms;
    if (remaining < wait) {
        wait = remaining;
        c->times_out = true;
    }
    uv_timer_start(&c->timer, on_timer, wait, 0);
    link_call(rb, c);
    *handle_out = &c->base;
    return 0;
}

static void rules_cancel(llm_handle_t *h)
{
    rules_call_t *c = (rules_call_t *)h;
    unlink_call((rules_backend_t *)c->base.backend, c);
    uv_close((uv_handle_t *)&c->timer, on_call_closed);
}

const llm_backend_vtable_t llm_backend_rules = {
    .name = "rules",
    .create = rules_create,
    .destroy = rules_destroy,
    .start_call = rules_start,
    .cancel = rules_cancel,
};
