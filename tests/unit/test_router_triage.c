/*
 * test_router_triage.c - the llm triage (agent_triage.c): the system prompt
 * built from the agents' descriptions (both languages, every agent, the
 * answer format, the per-description and total bounds), the parser of the
 * model's answer (only a loaded agent's name is accepted; null, invalid
 * JSON, unknown names, wrong types, oversize answers are refused with a
 * reason), and the agent loop with MESH_TRIAGE=llm against fake workers
 * (test_router_util.h): the triage llm.chat as designed, the model's choice
 * taken, its timeout / error / unknown answer falling back to keywords, a
 * cancel while it runs, and no triage for existing conversations or
 * requested agents.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_turn.h"
#include "agents.h"
#include "test_router_util.h"

/* Agents of the generated data dir for the bound test. */
#define MANY_AGENTS 60

static router_agents_t *load_shipped(void)
{
    const char *dir = getenv("MESH_DATA_DIR");
    router_agents_t *a = NULL;
    char err[512];
    if (!dir)
        dir = "data";
    int rc = router_agents_load(dir, "policy_qa", &a, err, sizeof(err));
    if (rc != 0)
        fail_msg("shipped data does not load: %s", err);
    return a;
}

/* ---- prompt ---- */

static void test_prompt_lists_every_agent(void **state)
{
    (void)state;
    router_agents_t *a = load_shipped();
    size_t listed = 0;
    char *p = router_triage_prompt(a, &listed);
    assert_non_null(p);
    assert_int_equal(listed, router_agents_count(a));
    assert_true(strlen(p) <= ROUTER_TRIAGE_PROMPT_MAX);
    for (size_t i = 0; i < router_agents_count(a); i++) {
        const router_agent_t *ag = router_agents_at(a, i);
        char line[64];
        snprintf(line, sizeof(line), "- %s\n", ag->name);
        assert_non_null(strstr(p, line));
        /* Both languages of the description, as the agent file has them. */
        const json_t *desc = json_object_get(ag->def, "description");
        assert_non_null(strstr(p, json_string_value(json_object_get(desc, "zh"))));
        assert_non_null(strstr(p, json_string_value(json_object_get(desc, "en"))));
    }
    /* The answer format, in both languages. */
    assert_non_null(strstr(p, "{\"agent\": \"<name>\"}"));
    assert_non_null(strstr(p, "{\"agent\": null}"));
    assert_non_null(strstr(p, "不确定时回答"));
    /* Valid UTF-8 (the llm.chat system string). */
    json_t *s = json_string(p);
    assert_non_null(s);
    json_decref(s);
    free(p);
    router_agents_unref(&a);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void remove_dir(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tools.json", dir);
    unlink(path);
    for (int i = 0; i < MANY_AGENTS; i++) {
        snprintf(path, sizeof(path), "%s/agents/a%02d.json", dir, i);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/agents", dir);
    rmdir(path);
    rmdir(dir);
}

/*
 * MANY_AGENTS agents whose zh description is 2000 bytes of 保 (3 bytes each,
 * with a newline inside) and whose en one is 1500 bytes: more than the
 * prompt may hold.
 */
static router_agents_t *load_many(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/mesh-triage-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof(path), "%s/agents", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/tools.json", dir);
    assert_int_equal(write_file(path, "[{\"name\": \"policy.lookup\", \"description\": \"d\", "
                                      "\"parameters\": {\"type\": \"object\"}, "
                                      "\"idempotent\": true}]"),
                     0);
    char zh[2001 + 1], en[1500 + 1];
    size_t n = 0;
    while (n + 3 <= 2000) {
        memcpy(zh + n, n == 300 ? "\n保" : "保", n == 300 ? 4 : 3);
        n += n == 300 ? 4 : 3;
    }
    zh[n] = '\0';
    memset(en, 'e', 1500);
    en[1500] = '\0';
    for (int i = 0; i < MANY_AGENTS; i++) {
        json_t *doc = json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:[s], s:s, s:i, s:{s:s, s:s}}",
                                "name", "", "description", "zh", zh, "en", en, "prompt", "zh",
                                "提示", "en", "prompt", "tools", "policy.lookup", "tier", "small",
                                "max_steps", 2, "fallback", "zh", "抱歉", "en", "sorry");
        char name[8];
        snprintf(name, sizeof(name), "a%02d", i);
        json_object_set_new(doc, "name", json_string(name));
        snprintf(path, sizeof(path), "%s/agents/%s.json", dir, name);
        assert_int_equal(json_dump_file(doc, path, 0), 0);
        json_decref(doc);
    }
    router_agents_t *a = NULL;
    char err[512];
    if (router_agents_load(dir, "a00", &a, err, sizeof(err)) != 0)
        fail_msg("generated data does not load: %s", err);
    return a;
}

static void test_prompt_bounds(void **state)
{
    (void)state;
    char dir[64];
    router_agents_t *a = load_many(dir, sizeof(dir));
    size_t listed = 0;
    char *p = router_triage_prompt(a, &listed);
    assert_non_null(p);
    /* The total bound: some agents are left out, the prompt still ends with
     * the answer format. */
    assert_true(strlen(p) <= ROUTER_TRIAGE_PROMPT_MAX);
    assert_true(listed > 0);
    assert_true(listed < MANY_AGENTS);
    assert_non_null(strstr(p, "- a00\n"));
    char last[16];
    snprintf(last, sizeof(last), "- a%02zu\n", listed - 1);
    assert_non_null(strstr(p, last));
    snprintf(last, sizeof(last), "- a%02zu\n", listed);
    assert_null(strstr(p, last));
    assert_non_null(strstr(p, "{\"agent\": null}"));
    /* Each description cut at ROUTER_TRIAGE_DESC_MAX on a code point
     * boundary (valid UTF-8 as a whole), its newline flattened. */
    json_t *s = json_string(p);
    assert_non_null(s);
    json_decref(s);
    const char *zh = strstr(p, "  zh: ");
    assert_non_null(zh);
    const char *eol = strchr(zh + 6, '\n');
    assert_non_null(eol);
    size_t zlen = (size_t)(eol - (zh + 6));
    assert_true(zlen <= ROUTER_TRIAGE_DESC_MAX);
    assert_true(zlen > ROUTER_TRIAGE_DESC_MAX - 4);
    const char *en = strstr(p, "  en: ");
    eol = strchr(en + 6, '\n');
    assert_int_equal((size_t)(eol - (en + 6)), ROUTER_TRIAGE_DESC_MAX);
    free(p);
    router_agents_unref(&a);
    remove_dir(dir);
}

/* ---- answer ---- */

static const router_agent_t *parse(router_agents_t *a, const char *text, const char **why)
{
    *why = NULL;
    return router_triage_parse(a, text, strlen(text), why);
}

static void test_parse_accepts_loaded_agent(void **state)
{
    (void)state;
    router_agents_t *a = load_shipped();
    const char *why;
    const router_agent_t *ag = parse(a, "{\"agent\":\"health_review\"}", &why);
    assert_non_null(ag);
    assert_ptr_equal(ag, router_agents_find(a, "health_review"));
    assert_null(why);
    /* Whitespace and a ```json fence around the object are tolerated. */
    ag = parse(a, "  \n{\"agent\": \"life_trainer\", \"why\": \"训练\"}\n ", &why);
    assert_non_null(ag);
    assert_string_equal(ag->name, "life_trainer");
    ag = parse(a, "```json\n{\"agent\": \"claims_intake\"}\n```", &why);
    assert_non_null(ag);
    assert_string_equal(ag->name, "claims_intake");
    ag = parse(a, "```\n{\"agent\": \"policy_qa\"}```", &why);
    assert_non_null(ag);
    assert_string_equal(ag->name, "policy_qa");
    router_agents_unref(&a);
}

static void expect_refused(router_agents_t *a, const char *text, const char *why_part)
{
    const char *why;
    const router_agent_t *ag = parse(a, text, &why);
    if (ag)
        fail_msg("'%s' accepted as %s", text, ag->name);
    assert_non_null(why);
    if (!strstr(why, why_part))
        fail_msg("'%s': reason '%s', wanted '%s'", text, why, why_part);
}

static void test_parse_refuses(void **state)
{
    (void)state;
    router_agents_t *a = load_shipped();
    expect_refused(a, "{\"agent\": null}", "null");
    expect_refused(a, "{}", "null");
    expect_refused(a, "{\"agent\": \"nobody\"}", "unknown agent");
    expect_refused(a, "{\"agent\": \"triage\"}", "unknown agent");
    expect_refused(a, "{\"agent\": \"HEALTH_REVIEW\"}", "unknown agent");
    expect_refused(a, "{\"agent\": 3}", "not a name");
    expect_refused(a, "{\"agent\": [\"policy_qa\"]}", "not a name");
    /* An embedded NUL: jansson refuses it while parsing. */
    expect_refused(a, "{\"agent\": \"policy_qa\\u0000x\"}", "not a JSON object");
    expect_refused(a, "{\"agent\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "not a name");
    expect_refused(a, "policy_qa", "not a JSON object");
    expect_refused(a, "[\"policy_qa\"]", "not a JSON object");
    expect_refused(a, "{\"agent\": \"policy_qa\"", "not a JSON object");
    expect_refused(a, "{\"agent\": \"policy_qa\"} trailing", "not a JSON object");
    expect_refused(a, "{\"agent\": \"policy_qa\", \"agent\": \"x\"}", "not a JSON object");
    expect_refused(a, "", "not a JSON object");
    expect_refused(a, "``````", "not a JSON object");
    expect_refused(a, "```{\"agent\": \"policy_qa\"}```", "not a JSON object");
    /* Oversize: refused before parsing. */
    size_t n = ROUTER_TRIAGE_ANSWER_MAX + 1;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"agent\": \"policy_qa\"}", 22);
    big[n] = '\0';
    expect_refused(a, big, "too long");
    /* One byte less is fine (trailing whitespace). */
    const char *why;
    assert_non_null(router_triage_parse(a, big, n - 1, &why));
    free(big);
    /* NULL text, NULL why. */
    assert_null(router_triage_parse(a, NULL, 0, NULL));
    assert_null(router_triage_parse(a, "{}", 2, NULL));
    router_agents_unref(&a);
}

/* ---- the agent loop with MESH_TRIAGE=llm (fake workers) ---- */

#define CLIENT_ID "triage-client"

static int loop_setup(void **state)
{
    rt_fx_opts_t o = {.tag = "tri", .conv_queue_max = 4, .lease_ms = 30000, .client_id = CLIENT_ID};
    if (rt_fx_setup(state, &o) != 0)
        return -1;
    rt_fx_t *fx = *state;
    /* What main.c sets from MESH_TRIAGE=llm (white box: the loop's options). */
    fx->al->opts.triage_llm = true;
    fx->al->opts.triage_tier = "tiny";
    fx->al->opts.triage_timeout_ms = 2000;
    return 0;
}

static void send_turn(rt_fx_t *fx, const char *id, const char *conv, const char *text,
                      const char *agent)
{
    json_t *args = json_pack("{s:s, s:s}", "message_id", id, "text", text);
    if (agent)
        json_object_set_new(args, "agent", json_string(agent));
    assert_int_equal(rt_client_request(fx->client, "agent", id, "turn", conv, 5000, false, args),
                     0);
    json_decref(args);
}

/* The next llm.chat must be the triage call; kept in *r. */
static void next_triage(rt_fx_t *fx, mesh_request_t *r)
{
    rt_next_req(fx, fx->llm, r, "llm.chat");
    assert_string_equal(rt_jstr(r->args, "agent"), "triage");
}

/* The next llm.chat must be agent's step: answered with text. */
static void step_answer(rt_fx_t *fx, const char *agent, const char *text)
{
    mesh_request_t r;
    rt_next_req(fx, fx->llm, &r, "llm.chat");
    assert_string_equal(rt_jstr(r.args, "agent"), agent);
    rt_reply(fx->llm, &r, 0, rt_text_reply(text));
    mesh_request_clear(&r);
}

/* turn.end answered, then the client's FINAL: its agent and triage.by. */
static void expect_final(rt_fx_t *fx, const char *id, const char *agent, const char *by)
{
    mesh_request_t end;
    rt_end_ok(fx, &end);
    assert_string_equal(rt_jstr(json_object_get(end.args, "state"), "agent"), agent);
    mesh_request_clear(&end);
    mesh_reply_t rep;
    rt_client_final(fx, id, &rep);
    assert_int_equal(rep.status, 0);
    assert_string_equal(rt_jstr(rep.data, "agent"), agent);
    assert_string_equal(rt_jstr(json_object_get(rep.data, "triage"), "by"), by);
    mesh_reply_clear(&rep);
    rt_wait_idle(fx);
}

static void test_loop_model_chooses(void **state)
{
    rt_fx_t *fx = *state;
    /* The keywords would pick policy_qa ("Policy"). */
    send_turn(fx, "a1", "conv-a", "a Policy question", NULL);
    rt_begin_with(fx, "a1", json_object());
    mesh_request_t r;
    next_triage(fx, &r);
    /* The designed call: tier, JSON, no tools, no state, no rules fallback,
     * the message alone, the agents in the prompt, a bounded deadline. */
    assert_string_equal(rt_jstr(r.args, "tier"), "tiny");
    assert_string_equal(rt_jstr(r.args, "response_format"), "json");
    assert_string_equal(rt_jstr(r.args, "fallback"), "");
    assert_int_equal(json_array_size(json_object_get(r.args, "tools")), 0);
    assert_int_equal(json_object_size(json_object_get(r.args, "state")), 0);
    assert_false(json_is_true(json_object_get(r.args, "stream")));
    const json_t *msgs = json_object_get(r.args, "messages");
    assert_int_equal(json_array_size(msgs), 1);
    assert_string_equal(rt_jstr(json_array_get(msgs, 0), "role"), "user");
    assert_string_equal(rt_jstr(json_array_get(msgs, 0), "text"), "a Policy question");
    assert_non_null(strstr(rt_jstr(r.args, "system"), "- claims\n"));
    assert_non_null(strstr(rt_jstr(r.args, "system"), "- policy_qa\n"));
    assert_true(r.deadline_ms > 0 && r.deadline_ms <= 2000);
    rt_reply(fx->llm, &r, 0,
             json_pack("{s:s, s:s, s:{s:i, s:i}}", "type", "text", "text",
                       "```json\n{\"agent\": \"claims\"}\n```", "usage", "prompt_tokens", 100,
                       "completion_tokens", 5));
    mesh_request_clear(&r);
    step_answer(fx, "claims", "claims here");
    expect_final(fx, "a1", "claims", "llm");
}

static void test_loop_timeout_falls_back(void **state)
{
    rt_fx_t *fx = *state;
    fx->al->opts.triage_timeout_ms = 100;
    send_turn(fx, "b1", "conv-b", "a Policy question", NULL);
    rt_begin_with(fx, "b1", json_object());
    mesh_request_t r;
    next_triage(fx, &r);
    assert_true(r.deadline_ms <= 100);
    /* Not answered: at its deadline the keywords decide. */
    step_answer(fx, "policy_qa", "policy here");
    /* The model's late answer is dropped. */
    rt_reply(fx->llm, &r, 0, rt_text_reply("{\"agent\": \"claims\"}"));
    mesh_request_clear(&r);
    expect_final(fx, "b1", "policy_qa", "keywords");
}

static void test_loop_error_and_unknown_fall_back(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "c1", "conv-c", "my claim", NULL);
    rt_begin_with(fx, "c1", json_object());
    mesh_request_t r;
    next_triage(fx, &r);
    rt_reply(fx->llm, &r, MESH_EUNAVAIL, NULL);
    mesh_request_clear(&r);
    step_answer(fx, "claims", "claims here");
    expect_final(fx, "c1", "claims", "keywords");

    /* An unknown name; no keyword either: the default agent. */
    send_turn(fx, "c2", "conv-c2", "hello", NULL);
    rt_begin_with(fx, "c2", json_object());
    next_triage(fx, &r);
    rt_reply(fx->llm, &r, 0, rt_text_reply("{\"agent\": \"underwriter\"}"));
    mesh_request_clear(&r);
    step_answer(fx, "policy_qa", "hi");
    expect_final(fx, "c2", "policy_qa", "default");

    /* Tool calls instead of text: refused too. */
    send_turn(fx, "c3", "conv-c3", "my claim", NULL);
    rt_begin_with(fx, "c3", json_object());
    next_triage(fx, &r);
    rt_reply(fx->llm, &r, 0,
             rt_calls_reply(
                 json_pack("[{s:s, s:s, s:{}}]", "id", "x", "name", "policy.lookup", "arguments")));
    mesh_request_clear(&r);
    step_answer(fx, "claims", "claims here");
    expect_final(fx, "c3", "claims", "keywords");
}

static void test_loop_no_triage_for_known_agent(void **state)
{
    rt_fx_t *fx = *state;
    /* An existing conversation keeps its agent. */
    send_turn(fx, "d1", "conv-d", "a Policy question", NULL);
    rt_begin_with(fx, "d1", json_pack("{s:s}", "agent", "claims"));
    step_answer(fx, "claims", "still claims");
    expect_final(fx, "d1", "claims", "state");
    /* A requested agent. */
    send_turn(fx, "d2", "conv-d2", "my claim", "policy_qa");
    rt_begin_with(fx, "d2", json_object());
    step_answer(fx, "policy_qa", "policy here");
    expect_final(fx, "d2", "policy_qa", "requested");
    /* MESH_TRIAGE=keywords: no call at all. */
    fx->al->opts.triage_llm = false;
    send_turn(fx, "d3", "conv-d3", "my claim", NULL);
    rt_begin_with(fx, "d3", json_object());
    step_answer(fx, "claims", "claims here");
    expect_final(fx, "d3", "claims", "keywords");
}

static void test_loop_cancel_during_triage(void **state)
{
    rt_fx_t *fx = *state;
    send_turn(fx, "e1", "conv-e", "a Policy question", NULL);
    rt_begin_with(fx, "e1", json_object());
    mesh_request_t r;
    next_triage(fx, &r);
    router_agent_loop_cancel(fx->al, CLIENT_ID, strlen(CLIENT_ID), "e1");
    /* Nothing was said: turn.abort (the message stays pending), no answer. */
    mesh_request_t ab;
    rt_next_req(fx, fx->memory, &ab, "turn.abort");
    rt_reply(fx->memory, &ab, 0, json_object());
    mesh_request_clear(&ab);
    rt_reply(fx->llm, &r, 0, rt_text_reply("{\"agent\": \"claims\"}"));
    mesh_request_clear(&r);
    rt_no_req(fx, fx->llm, 30);
    rt_no_client_message(fx, 20);
    rt_wait_idle(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_lists_every_agent),
        cmocka_unit_test(test_prompt_bounds),
        cmocka_unit_test(test_parse_accepts_loaded_agent),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test_setup_teardown(test_loop_model_chooses, loop_setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_loop_timeout_falls_back, loop_setup, rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_loop_error_and_unknown_fall_back, loop_setup,
                                        rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_loop_no_triage_for_known_agent, loop_setup,
                                        rt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_loop_cancel_during_triage, loop_setup, rt_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
