/*
 * fuzz_rules.c - the rules backend's engines (services/llm/rules*.c) over
 * untrusted customer text, conversation state and tool results.
 *
 * Input layout (fuzz/README.md; the seeds in fuzz/corpus/rules follow it):
 *   byte 0      flags: bit 0 lang zh (else en), bit 1 no lang (llm_call_parse
 *               guesses it), bit 2 stream, bit 3 an orphan tool message (no
 *               call asked for it) after the last user message, bits 4-6 its
 *               tool name (TOOLS[], 7 = no name), bit 7 no tools offered
 *   then        <state> RS <user 1> RS <user 2> ... GS <tool text 1> GS <tool text 2> ...
 *               (RS = 0x1e, GS = 0x1d). <state> is the call's state when it
 *               parses (mesh_json_parse) as a JSON object. A tool text starting
 *               with NAK (0x15) is a failed tool result (ok: false).
 * Texts that are not valid UTF-8 get '?' for each bad byte: llm.chat args come
 * through jansson, which only holds valid UTF-8 (NUL bytes stay).
 *
 * For each agent ("policy_qa", "claims_intake", "health_review",
 * "life_trainer") the target plays the router: for each user message it runs
 * the engine up to STEPS_MAX times, answering each tool call with the next
 * tool text (cycling; "{}" when there is none) except state.update, which it
 * merges into the state the way the router does, until the engine answers
 * with text. Every call goes through llm_call_parse, as in the worker.
 *
 * Invariants (abort on violation):
 *   - llm_call_parse accepts every call the target builds;
 *   - an engine returns 0 or MESH_ETOOBIG (MESH_ENOMEM cannot happen under
 *     the fuzzer, so it means an input was mistaken for a failed allocation);
 *   - a text answer is valid UTF-8 of at most LLM_BUF_MAX bytes without
 *     calls, and llm_rules_next_delta cuts it into valid UTF-8 pieces of
 *     1..LLM_DELTA_MAX bytes (the streamed deltas);
 *   - a tool call answer has 1..LLM_RULES_CALLS_MAX calls, each with a known
 *     tool name, a non-empty id unique within the conversation, and a JSON
 *     object as arguments;
 *   - the engines are pure: the same call answered twice gives equal answers.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm_call.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_json.h"
#include "mesh/mesh_text.h"
#include "rules.h"

#define RS        0x1e
#define GS        0x1d
#define NAK       0x15
#define USERS_MAX 4  /* user messages taken from one input */
#define TOOLS_MAX 16 /* tool texts taken from one input */
#define STEPS_MAX 6  /* engine calls per user message */
#define INPUT_MAX (64 * 1024)

static const char *const AGENTS[] = {"policy_qa", "claims_intake", "health_review", "life_trainer"};
/* The tools the agents use (data/tools.json); index 7 of the flag bits = no name. */
static const char *const TOOLS[] = {"policy.lookup",    "medical.lookup", "fee.calc",
                                    "state.update",     "claim.register", "claim.get",
                                    "training.scenario"};
#define N_TOOLS (sizeof(TOOLS) / sizeof(TOOLS[0]))

typedef struct {
    const char *p;
    size_t n;
} piece_t;

typedef struct {
    uint8_t flags;
    piece_t state;
    piece_t users[USERS_MAX];
    size_t n_users;
    piece_t tools[TOOLS_MAX];
    size_t n_tools;
} input_t;

/* Bytes of the UTF-8 sequence a lead byte starts, 0 for a byte that cannot lead. */
static size_t seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

/* A JSON string of s[0..n) with every byte that is not part of valid UTF-8 as '?'. */
static json_t *jtext(const char *s, size_t n)
{
    char *buf = malloc(n + 1);
    if (buf == NULL)
        abort();
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t k = seq_len((unsigned char)s[i]);
        if (k != 0 && i + k <= n && mesh_utf8_valid(s + i, k)) {
            memcpy(buf + w, s + i, k);
            w += k;
            i += k;
        } else {
            buf[w++] = '?';
            i++;
        }
    }
    json_t *j = json_stringn(buf, w);
    free(buf);
    if (j == NULL)
        abort(); /* the text is valid UTF-8 now */
    return j;
}

static void split(const uint8_t *data, size_t size, input_t *in)
{
    memset(in, 0, sizeof(*in));
    in->flags = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    const char *gs = memchr(s, GS, n);
    size_t conv_n = gs != NULL ? (size_t)(gs - s) : n;

    /* state RS user RS user ... */
    size_t at = 0, idx = 0;
    while (at <= conv_n) {
        const char *rs = memchr(s + at, RS, conv_n - at);
        size_t end = rs != NULL ? (size_t)(rs - s) : conv_n;
        piece_t pc = {s + at, end - at};
        if (idx == 0)
            in->state = pc;
        else if (in->n_users < USERS_MAX)
            in->users[in->n_users++] = pc;
        idx++;
        at = end + 1;
    }
    /* GS tool text GS tool text ... */
    while (gs != NULL && in->n_tools < TOOLS_MAX) {
        const char *p = gs + 1;
        size_t left = n - (size_t)(p - s);
        gs = memchr(p, GS, left);
        in->tools[in->n_tools++] = (piece_t){p, gs != NULL ? (size_t)(gs - p) : left};
    }
}

/* The router's merge of a state.update into the state (contracts section 2); the result. */
static json_t *state_update(json_t *state, const json_t *a)
{
    static const char *const MAPS[] = {"slots", "records"};
    for (size_t m = 0; m < 2; m++) {
        const json_t *upd = json_object_get(a, MAPS[m]);
        if (!json_is_object(upd))
            continue;
        json_t *cur = json_object_get(state, MAPS[m]);
        if (!json_is_object(cur)) {
            cur = json_object();
            json_object_set_new(state, MAPS[m], cur);
        }
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)upd, k, v)
        {
            if (json_is_null(v))
                json_object_del(cur, k);
            else
                json_object_set(cur, k, v);
        }
    }
    const json_t *mode = json_object_get(a, "mode");
    if (json_is_string(mode))
        json_object_set(state, "mode", (json_t *)mode);
    const json_t *h = json_object_get(a, "handoff");
    if (json_is_object(h)) {
        json_object_set_new(state, "handoff", json_string("pending"));
        if (json_is_string(json_object_get(h, "reason")))
            json_object_set(state, "handoff_reason", json_object_get(h, "reason"));
    }
    json_t *slots = json_object_get(state, "slots");
    json_t *res =
        json_is_object(slots) ? json_pack("{s:O}", "slots", slots) : json_pack("{s:{}}", "slots");
    if (res == NULL)
        abort();
    return res;
}

static int known_tool(const char *name)
{
    for (size_t i = 0; i < N_TOOLS; i++) {
        if (strcmp(name, TOOLS[i]) == 0)
            return 1;
    }
    return 0;
}

/* A comparable rendering of an answer (text, or the calls as JSON). */
static char *render(const llm_rules_out_t *out)
{
    if (out->type == LLM_RESULT_TEXT)
        return strdup(llm_buf_str(&out->text));
    json_t *a = json_array();
    for (size_t i = 0; i < out->n_calls; i++)
        json_array_append_new(a, json_pack("[s, s, O]", out->calls[i].id, out->calls[i].name,
                                           out->calls[i].arguments));
    char *s = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(a);
    return s;
}

static void check_answer(int rc, const llm_rules_out_t *out, json_t *ids)
{
    /* MESH_ENOMEM cannot be real here (libFuzzer stops a run over its malloc
     * limit itself): an engine returning it took some input for an allocation
     * failure, e.g. json_string() refusing text it cut in a UTF-8 sequence. */
    if (rc != 0 && rc != MESH_ETOOBIG)
        abort();
    if (rc != 0)
        return;
    if (out->type == LLM_RESULT_TEXT) {
        const char *t = llm_buf_str(&out->text);
        size_t n = out->text.len;
        if (out->n_calls != 0 || n > LLM_BUF_MAX || !mesh_utf8_valid(t, n))
            abort();
        for (size_t at = 0; at < n;) {
            size_t d = llm_rules_next_delta(t + at, n - at);
            if (d == 0 || d > LLM_DELTA_MAX || d > n - at || !mesh_utf8_valid(t + at, d))
                abort();
            at += d;
        }
        return;
    }
    if (out->type != LLM_RESULT_TOOL_CALLS || out->n_calls == 0 ||
        out->n_calls > LLM_RULES_CALLS_MAX)
        abort();
    for (size_t i = 0; i < out->n_calls; i++) {
        const llm_rules_call_t *c = &out->calls[i];
        if (c->name == NULL || !known_tool(c->name) || c->id[0] == '\0' ||
            !json_is_object(c->arguments) || json_object_get(ids, c->id) != NULL)
            abort();
        json_object_set_new(ids, c->id, json_true());
    }
}

/* The llm.chat args of the next step. */
static json_t *make_args(const input_t *in, const char *agent, json_t *messages, json_t *state)
{
    json_t *args =
        json_pack("{s:s, s:s, s:s, s:b, s:O, s:O}", "agent", agent, "tier", "small", "system",
                  "fuzz", "stream", (in->flags & 4) != 0, "messages", messages, "state", state);
    if (args == NULL)
        abort();
    if (!(in->flags & 2))
        json_object_set_new(args, "lang", json_string(in->flags & 1 ? "zh" : "en"));
    if (!(in->flags & 0x80)) {
        json_t *tools = json_array();
        for (size_t i = 0; i < N_TOOLS; i++)
            json_array_append_new(tools, json_pack("{s:s}", "name", TOOLS[i]));
        json_object_set_new(args, "tools", tools);
    }
    return args;
}

/* One engine step: parse the call, answer it twice, check. Returns rc; out filled. */
static int step(const input_t *in, const char *agent, json_t *messages, json_t *state,
                llm_rules_out_t *out, json_t *ids)
{
    json_t *args = make_args(in, agent, messages, state);
    llm_parsed_t p;
    char err[256];
    if (llm_call_parse("fuzz", args, 0, &p, err, sizeof(err)) != 0)
        abort();
    llm_rules_out_init(out);
    int rc = llm_rules_answer(&p.call, out);
    check_answer(rc, out, ids);

    llm_rules_out_t again;
    llm_rules_out_init(&again);
    int rc2 = llm_rules_answer(&p.call, &again);
    if (rc2 != rc)
        abort();
    if (rc == 0) {
        char *a = render(out), *b = render(&again);
        if (a == NULL || b == NULL || strcmp(a, b) != 0)
            abort();
        free(a);
        free(b);
    }
    llm_rules_out_clear(&again);
    llm_call_clear(&p);
    json_decref(args);
    return rc;
}

static void tool_message(json_t *messages, const char *name, const char *id, const piece_t *t)
{
    int ok = !(t->n > 0 && (unsigned char)t->p[0] == NAK);
    size_t skip = ok ? 0 : 1;
    json_t *m = json_pack("{s:s, s:o, s:b}", "role", "tool", "text",
                          jtext(t->p + skip, t->n - skip), "ok", ok);
    if (name != NULL)
        json_object_set_new(m, "name", json_string(name));
    if (id != NULL)
        json_object_set_new(m, "tool_call_id", json_string(id));
    json_array_append_new(messages, m);
}

static void run_agent(const input_t *in, const char *agent, const json_t *state0)
{
    json_t *state = json_deep_copy(state0);
    json_t *messages = json_array();
    json_t *ids = json_object();
    size_t next_tool = 0;
    static const piece_t EMPTY = {"{}", 2};

    for (size_t u = 0; u < in->n_users; u++) {
        json_array_append_new(messages, json_pack("{s:s, s:o}", "role", "user", "text",
                                                  jtext(in->users[u].p, in->users[u].n)));
        if (u + 1 == in->n_users && (in->flags & 8)) {
            unsigned k = (in->flags >> 4) & 7;
            tool_message(messages, k < N_TOOLS ? TOOLS[k] : NULL, "call_1",
                         in->n_tools > 0 ? &in->tools[next_tool++ % in->n_tools] : &EMPTY);
        }
        for (int s = 0; s < STEPS_MAX; s++) {
            llm_rules_out_t out;
            int rc = step(in, agent, messages, state, &out, ids);
            if (rc != 0) {
                llm_rules_out_clear(&out);
                goto done;
            }
            if (out.type == LLM_RESULT_TEXT) {
                json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "assistant", "text",
                                                          llm_buf_str(&out.text)));
                llm_rules_out_clear(&out);
                break;
            }
            json_t *calls = json_array();
            for (size_t i = 0; i < out.n_calls; i++)
                json_array_append_new(calls, json_pack("{s:s, s:s, s:O}", "id", out.calls[i].id,
                                                       "name", out.calls[i].name, "arguments",
                                                       out.calls[i].arguments));
            json_array_append_new(messages, json_pack("{s:s, s:s, s:o}", "role", "assistant",
                                                      "text", "", "tool_calls", calls));
            for (size_t i = 0; i < out.n_calls; i++) {
                const llm_rules_call_t *c = &out.calls[i];
                if (strcmp(c->name, "state.update") == 0) {
                    json_t *res = state_update(state, c->arguments);
                    char *txt = json_dumps(res, JSON_COMPACT);
                    piece_t pc = {txt, strlen(txt)};
                    tool_message(messages, c->name, c->id, &pc);
                    free(txt);
                    json_decref(res);
                } else {
                    tool_message(messages, c->name, c->id,
                                 in->n_tools > 0 ? &in->tools[next_tool++ % in->n_tools] : &EMPTY);
                }
            }
            llm_rules_out_clear(&out);
        }
    }
done:
    json_decref(ids);
    json_decref(messages);
    json_decref(state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > INPUT_MAX)
        return 0;
    input_t in;
    split(data, size, &in);
    if (in.n_users == 0)
        return 0;
    json_t *state = mesh_json_parse(in.state.p, in.state.n);
    if (!json_is_object(state)) {
        json_decref(state);
        state = json_object();
    }
    for (size_t a = 0; a < sizeof(AGENTS) / sizeof(AGENTS[0]); a++)
        run_agent(&in, AGENTS[a], state);
    json_decref(state);
    return 0;
}
