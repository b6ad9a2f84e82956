/*
 * test_rules_driver.h - the small "router" the rules-engine unit tests
 * (tests/unit/test_llm_rules_*.c) drive their engine with: a conversation
 * (wire-format messages + the state the router keeps), one engine step
 * through llm_call_parse, the engine's tool calls recorded as the router
 * records them, state.update applied the way the router applies it
 * (contracts section 2: slots and records merged by key with
 * mh_json_merge, mode set, handoff -> "pending" + reason), and a turn loop
 * that runs steps until the engine answers with text.
 *
 * Header-only (static inline): each tests/unit/test_*.c is its own
 * executable. Include after <cmocka.h> and <jansson.h>.
 */
#ifndef TEST_RULES_DRIVER_H
#define TEST_RULES_DRIVER_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_call.h"
#include "mesh_harness.h"
#include "rules.h"

typedef struct rd_conv rd_conv_t;

typedef int (*rd_engine_fn)(const llm_call_t *call, llm_rules_out_t *out);
/* Answer one tool call: a malloc'd result text, *ok its ok flag (preset true). */
typedef char *(*rd_tool_fn)(rd_conv_t *c, const llm_rules_call_t *call, bool *ok);
/* Run one engine step into out (already initialised); 0 or the engine's error. */
typedef int (*rd_step_fn)(rd_conv_t *c, llm_rules_out_t *out);

struct rd_conv {
    /* Set by the test (rd_conv_init sets agent, engine, lang; the rest default). */
    const char *agent;
    const char *tier;         /* NULL: not sent */
    const char *system;       /* NULL: not sent */
    const char *lang;         /* NULL: not sent */
    const char *const *tools; /* NULL-terminated tool names offered */
    rd_engine_fn engine;      /* used by rd_step */
    rd_step_fn step;          /* NULL: rd_step */
    rd_tool_fn tool;          /* NULL: rd_tool_default */
    int max_steps;            /* engine steps a turn may take before it fails */
    const char *trace_env;    /* if this variable is set, print each turn */
    void *ctx;                /* the test's own */
    json_t *messages;         /* wire-format history */
    json_t *state;            /* {slots, mode, records, handoff, handoff_reason} */
    int steps;                /* engine steps of the last turn */
    int updates;              /* state.update calls of the last turn */
    size_t first_n_calls;     /* calls of the first step of the last turn that made calls */
    char reply[16384];        /* the last text answer */
};

/* state is stolen (NULL: {slots:{}, records:{}}). */
static inline void rd_conv_init(rd_conv_t *c, const char *agent, rd_engine_fn engine,
                                const char *lang, json_t *state)
{
    memset(c, 0, sizeof(*c));
    c->agent = agent;
    c->engine = engine;
    c->lang = lang;
    c->max_steps = 6;
    c->messages = json_array();
    c->state = state != NULL ? state : json_pack("{s:{}, s:{}}", "slots", "records");
    assert_non_null(c->messages);
    assert_non_null(c->state);
}

static inline void rd_conv_free(rd_conv_t *c)
{
    json_decref(c->messages);
    json_decref(c->state);
}

static inline void rd_append(rd_conv_t *c, const char *role, const char *text)
{
    json_array_append_new(c->messages, json_pack("{s:s, s:s}", "role", role, "text", text));
}

/* obj[key] as an object, created empty if absent. */
static inline json_t *rd_obj(json_t *obj, const char *key)
{
    json_t *o = json_object_get(obj, key);
    if (o == NULL) {
        o = json_object();
        json_object_set_new(obj, key, o);
    }
    return o;
}

/* Apply a state.update's arguments to state the way the router does. */
static inline void rd_apply_update(json_t *state, const json_t *a)
{
    const json_t *slots = json_object_get(a, "slots");
    if (slots != NULL)
        mh_json_merge(rd_obj(state, "slots"), slots);
    const json_t *records = json_object_get(a, "records");
    if (records != NULL)
        mh_json_merge(rd_obj(state, "records"), records);
    const json_t *m = json_object_get(a, "mode");
    if (json_is_string(m))
        json_object_set(state, "mode", (json_t *)m);
    const json_t *h = json_object_get(a, "handoff");
    if (json_is_object(h)) {
        json_object_set_new(state, "handoff", json_string("pending"));
        json_object_set(state, "handoff_reason", json_object_get(h, "reason"));
    }
}

/* state.update applied, answered with the router's result {"slots": ...}. */
static inline char *rd_state_update(rd_conv_t *c, const json_t *a)
{
    rd_apply_update(c->state, a);
    json_t *res = json_pack("{s:O}", "slots", rd_obj(c->state, "slots"));
    char *s = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    return s;
}

/* Only state.update is expected. */
static inline char *rd_tool_default(rd_conv_t *c, const llm_rules_call_t *call, bool *ok)
{
    (void)ok;
    if (strcmp(call->name, "state.update") == 0)
        return rd_state_update(c, call->arguments);
    fail_msg("unexpected tool %s", call->name);
    return NULL;
}

/* One engine step: the call's wire arguments through llm_call_parse, then the engine. */
static inline int rd_step(rd_conv_t *c, llm_rules_out_t *out)
{
    json_t *args = json_pack("{s:s, s:O, s:O, s:[]}", "agent", c->agent, "messages", c->messages,
                             "state", c->state, "tools");
    assert_non_null(args);
    if (c->tier != NULL)
        json_object_set_new(args, "tier", json_string(c->tier));
    if (c->system != NULL)
        json_object_set_new(args, "system", json_string(c->system));
    if (c->lang != NULL)
        json_object_set_new(args, "lang", json_string(c->lang));
    for (const char *const *t = c->tools; t != NULL && *t != NULL; t++)
        json_array_append_new(json_object_get(args, "tools"), json_pack("{s:s}", "name", *t));
    llm_parsed_t p;
    char err[256];
    assert_int_equal(llm_call_parse("t", args, 1000000, &p, err, sizeof(err)), 0);
    int rc = c->engine(&p.call, out);
    llm_call_clear(&p);
    json_decref(args);
    return rc;
}

/* Run one step into out (initialised here; the caller clears it). */
static inline void rd_run(rd_conv_t *c, llm_rules_out_t *out)
{
    llm_rules_out_init(out);
    assert_int_equal(c->step != NULL ? c->step(c, out) : rd_step(c, out), 0);
}

/*
 * Record out's tool calls as the router does: the assistant message with the
 * calls, then one tool message per call with the test's answer to it.
 */
static inline void rd_answer_calls(rd_conv_t *c, const llm_rules_out_t *out)
{
    assert_int_equal(out->type, LLM_RESULT_TOOL_CALLS);
    json_t *calls = json_array();
    for (size_t i = 0; i < out->n_calls; i++)
        json_array_append_new(calls,
                              json_pack("{s:s, s:s, s:O}", "id", out->calls[i].id, "name",
                                        out->calls[i].name, "arguments", out->calls[i].arguments));
    json_array_append_new(c->messages, json_pack("{s:s, s:s, s:o}", "role", "assistant", "text", "",
                                                 "tool_calls", calls));
    for (size_t i = 0; i < out->n_calls; i++) {
        const llm_rules_call_t *tc = &out->calls[i];
        if (strcmp(tc->name, "state.update") == 0)
            c->updates++;
        bool ok = true;
        char *res = c->tool != NULL ? c->tool(c, tc, &ok) : rd_tool_default(c, tc, &ok);
        assert_non_null(res);
        json_array_append_new(c->messages,
                              json_pack("{s:s, s:s, s:s, s:s, s:b}", "role", "tool", "name",
                                        tc->name, "tool_call_id", tc->id, "text", res, "ok", ok));
        free(res);
    }
}

/* One customer turn: run the engine until it answers with text (at most max_steps). */
static inline const char *rd_say(rd_conv_t *c, const char *text)
{
    rd_append(c, "user", text);
    c->steps = 0;
    c->updates = 0;
    for (int step = 0; step < c->max_steps; step++) {
        llm_rules_out_t out;
        rd_run(c, &out);
        c->steps++;
        if (out.type == LLM_RESULT_TEXT) {
            const char *t = llm_buf_str(&out.text);
            assert_true(strlen(t) < sizeof(c->reply));
            snprintf(c->reply, sizeof(c->reply), "%s", t);
            if (c->trace_env != NULL && getenv(c->trace_env) != NULL) /* read the talk */
                printf("> %s\n< %s\n\n", text, c->reply);
            rd_append(c, "assistant", c->reply);
            llm_rules_out_clear(&out);
            return c->reply;
        }
        if (step == 0)
            c->first_n_calls = out.n_calls;
        rd_answer_calls(c, &out);
        llm_rules_out_clear(&out);
    }
    fail_msg("no text answer within %d steps", c->max_steps);
    return NULL;
}

/* State accessors: slots.name, mode ("" when absent), records.key. */
static inline const char *rd_slot(const rd_conv_t *c, const char *name)
{
    return json_string_value(json_object_get(json_object_get(c->state, "slots"), name));
}

static inline const char *rd_mode(const rd_conv_t *c)
{
    const char *m = json_string_value(json_object_get(c->state, "mode"));
    return m ? m : "";
}

static inline const json_t *rd_record(const rd_conv_t *c, const char *key)
{
    return json_object_get(json_object_get(c->state, "records"), key);
}

static inline void rd_assert_has(const char *s, const char *needle)
{
    if (strstr(s, needle) == NULL)
        fail_msg("'%s' not in:\n%s", needle, s);
}

static inline void rd_assert_hasnt(const char *s, const char *needle)
{
    if (strstr(s, needle) != NULL)
        fail_msg("'%s' unexpectedly in:\n%s", needle, s);
}

#endif /* TEST_RULES_DRIVER_H */
