/*
 * rules_trainer.c - the "life_trainer" digital worker of the rules backend
 * (寿险代理人陪练): the step dispatcher.
 *
 * Steps of a turn (the engine is called once per step; rules_trainer.h has
 * the records it keeps):
 *  - session start ("开始陪练 重疾险", "start training critical illness", any
 *    training words when no session runs; optional objection ids such as
 *    has_social_insurance): training.scenario {product_id, seed, objection_set?}
 *    with the seed derived from the start message's text; on its result
 *    state.update records the session (mode "training"); on that result the
 *    answer introduces the persona and raises the first objection in character;
 *  - a trainee message while a session runs: state.update with the reaction,
 *    the progress and the log (rules_trainer_turn.c), then the answer: the
 *    customer's reaction, the coach's feedback and a better phrasing, and the
 *    score once the session is over (an end command ends it at once);
 *  - anything else: how to start.
 * The reply language is call->lang.
 */
#include "rules_trainer.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_json.h"

/* Phrases that always (re)start a session. */
static const char *const START_STRONG[] = {
    "开始陪练",         "开始练习",   "开始训练",       "开始培训",       "重新开始",
    "再来一次",         "再练一次",   "start training", "start practice", "start a training",
    "start a practice", "start role", "new session",    "restart",        NULL};

/* Words that start a session when none is running. */
static const char *const START_WEAK[] = {
    "陪练",     "练习",     "培训",      "训练",     "演练",      "开始",  "training",
    "practice", "practise", "role-play", "roleplay", "role play", "start", NULL};

static const char *const END_WORDS[] = {"结束陪练",      "结束练习",
                                        "结束训练",      "结束培训",
                                        "打分",          "评分",
                                        "end training",  "end the training",
                                        "stop training", "finish training",
                                        "end session",   "end the session",
                                        "score me",      NULL};

static bool tool_offered(const llm_call_t *call, const char *name)
{
    for (size_t i = 0; i < call->n_tools; i++) {
        if (strcmp(call->tools[i].name, name) == 0)
            return true;
    }
    return false;
}

/* Index of the last user message, or -1. */
static long last_user(const llm_call_t *call)
{
    for (size_t i = call->n_messages; i > 0; i--) {
        if (call->messages[i - 1].role == LLM_ROLE_USER)
            return (long)(i - 1);
    }
    return -1;
}

/* The tool result message answering call id, or NULL. */
static const llm_message_t *result_of(const llm_call_t *call, size_t from, const char *id)
{
    for (size_t i = from; i < call->n_messages; i++) {
        const llm_message_t *m = &call->messages[i];
        if (m->role == LLM_ROLE_TOOL && m->tool_call_id != NULL && strcmp(m->tool_call_id, id) == 0)
            return m;
    }
    return NULL;
}

/* The arguments of one assistant tool call: an object, or JSON text (OpenAI style). New. */
static json_t *call_args(const json_t *c)
{
    const json_t *a = json_object_get(c, "arguments");
    if (json_is_object(a))
        return json_incref((json_t *)a);
    if (json_is_string(a)) {
        json_t *j = mesh_json_parse(json_string_value(a), json_string_length(a));
        if (json_is_object(j))
            return j;
        json_decref(j);
    }
    return NULL;
}

/*
 * Visit this turn's successful state.update calls in order (those after the
 * last user message whose result was not an error).
 */
typedef void (*update_fn)(const json_t *args, void *arg);

static void each_update(const llm_call_t *call, update_fn fn, void *arg)
{
    long q = last_user(call);
    for (size_t i = (size_t)(q + 1); i < call->n_messages; i++) {
        const llm_message_t *m = &call->messages[i];
        if (m->role != LLM_ROLE_ASSISTANT || m->tool_calls == NULL)
            continue;
        size_t k;
        const json_t *c;
        json_array_foreach(m->tool_calls, k, c)
        {
            const char *name = json_string_value(json_object_get(c, "name"));
            const char *id = json_string_value(json_object_get(c, "id"));
            if (name == NULL || strcmp(name, TRAINER_TOOL_STATE) != 0 || id == NULL)
                continue;
            const llm_message_t *r = result_of(call, i + 1, id);
            if (r == NULL || !r->ok)
                continue;
            json_t *args = call_args(c);
            if (args != NULL)
                fn(args, arg);
            json_decref(args);
        }
    }
}

static void merge_records(const json_t *args, void *arg)
{
    json_t *rec = arg;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(args, "records"), k, v)
    {
        if (json_is_null(v))
            json_object_del(rec, k);
        else
            json_object_set(rec, k, v);
    }
}

json_t *trainer_records(const llm_call_t *call)
{
    const json_t *cur = json_object_get(call->state, "records");
    json_t *rec = json_is_object(cur) ? json_copy((json_t *)cur) : json_object();
    if (rec != NULL)
        each_update(call, merge_records, rec);
    return rec;
}

static void last_mode(const json_t *args, void *arg)
{
    const json_t *m = json_object_get(args, "mode");
    if (json_is_string(m))
        *(const char **)arg = json_string_value(m);
}

const char *trainer_mode(const llm_call_t *call)
{
    const char *mode = json_string_value(json_object_get(call->state, "mode"));
    /* The pointer stays valid: arguments live in call's messages (parsed text is not
     * kept, so string arguments fall back to the state's mode). */
    long q = last_user(call);
    for (size_t i = (size_t)(q + 1); i < call->n_messages; i++) {
        const llm_message_t *m = &call->messages[i];
        size_t k;
        const json_t *c;
        json_array_foreach(m->tool_calls, k, c)
        {
            const char *name = json_string_value(json_object_get(c, "name"));
            const char *id = json_string_value(json_object_get(c, "id"));
            const json_t *a = json_object_get(c, "arguments");
            if (name == NULL || strcmp(name, TRAINER_TOOL_STATE) != 0 || id == NULL ||
                !json_is_object(a))
                continue;
            const llm_message_t *r = result_of(call, i + 1, id);
            if (r != NULL && r->ok)
                last_mode(a, &mode);
        }
    }
    return mode != NULL ? mode : "";
}

const char *trainer_loc(const json_t *o, const char *key, bool zh)
{
    const char *s = llm_rules_loc(json_object_get(o, key), zh, NULL);
    return s != NULL ? s : "";
}

static bool session_active(const char *mode, const json_t *rec)
{
    const json_t *objs = json_object_get(rec, "objections");
    json_int_t cur = json_integer_value(json_object_get(rec, "current"));
    return strcmp(mode, TRAINER_MODE) == 0 && json_array_size(objs) > 0 && cur >= 0 &&
           (size_t)cur < json_array_size(objs) &&
           json_is_array(json_object_get(rec, "strategy_bank"));
}

/* "s" + 16 hex digits of FNV-1a 64 over the start message: the session's seed. */
static void seed_of(const char *s, size_t len, char out[18])
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    snprintf(out, 18, "s%016llx", (unsigned long long)h);
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Objection ids named in the start message: tokens of [a-z0-9_] with an underscore. */
static json_t *objection_ids(const char *s, size_t len)
{
    json_t *ids = json_array();
    size_t i = 0;
    while (ids != NULL && i < len && json_array_size(ids) < TRAINER_SET_MAX) {
        if (!id_char(s[i])) {
            i++;
            continue;
        }
        size_t st = i;
        while (i < len && id_char(s[i]))
            i++;
        size_t n = i - st;
        if (n < 3 || n > TRAINER_ID_MAX || memchr(s + st, '_', n) == NULL || s[st] == '_')
            continue;
        /* Not glued to other letters (e.g. upper case): a whole token only. */
        if ((st > 0 && ((s[st - 1] >= 'A' && s[st - 1] <= 'Z'))) ||
            (i < len && s[i] >= 'A' && s[i] <= 'Z'))
            continue;
        json_t *v = json_stringn(s + st, n);
        bool dup = false;
        size_t k;
        const json_t *e;
        json_array_foreach(ids, k, e) dup = dup || json_equal(e, v);
        if (v == NULL || (!dup && json_array_append(ids, v) != 0)) {
            json_decref(v);
            json_decref(ids);
            return NULL;
        }
        json_decref(v);
    }
    return ids;
}

static int start_session(const llm_call_t *call, const llm_message_t *m, llm_rules_out_t *out)
{
    bool zh = strcmp(call->lang, "zh") == 0;
    if (!tool_offered(call, TRAINER_TOOL_SCENARIO)) {
        out->type = LLM_RESULT_TEXT;
        llm_buf_puts(&out->text,
                     zh ? "抱歉，陪练场景工具（training.scenario）暂不可用，请稍后再试。"
                        : "Sorry, the training scenario tool (training.scenario) is "
                          "not available right now. Please try again later.");
        return llm_buf_error(&out->text);
    }
    char seed[18];
    seed_of(m->text, m->text_len, seed);
    json_t *ids = objection_ids(m->text, m->text_len);
    json_t *args = json_pack("{s:s, s:s}", "product_id", TRAINER_PRODUCT, "seed", seed);
    if (args != NULL && json_array_size(ids) > 0)
        json_object_set(args, "objection_set", ids);
    json_decref(ids);
    return llm_rules_add_call(call, out, TRAINER_TOOL_SCENARIO, args);
}

static int help_text(const llm_call_t *call, const json_t *rec, const char *mode,
                     llm_rules_out_t *out)
{
    bool zh = strcmp(call->lang, "zh") == 0;
    const json_t *score = json_object_get(rec, "score");
    out->type = LLM_RESULT_TEXT;
    if (strcmp(mode, TRAINER_MODE_DONE) == 0 && json_is_object(score))
        llm_buf_printf(&out->text,
                       zh ? "上一次陪练已经结束，总分 %lld/100。发送“开始陪练 重疾险”可以再练一次。"
                          : "The last training session is over, total score %lld/100. Send "
                            "\"start training critical illness\" to practise again.",
                       (long long)json_integer_value(json_object_get(score, "total")));
    else
        llm_buf_puts(&out->text,
                     zh ? "我是寿险代理人陪练：我扮演客户，针对重疾险提出异议，你来回应；每轮后教练"
                          "给出点评和更好的说法，"
                          "结束时按需求挖掘、产品知识、异议处理、情绪连接、成交引导五个维度打分。"
                          "发送“开始陪练 重疾险”开始（可附异议编号，如 "
                          "has_social_insurance），发送“结束陪练”结束并打分。"
                        : "I am the life-agent trainer: I play a customer raising objections to "
                          "critical illness cover and you answer; after each of your turns the "
                          "coach gives feedback and a better phrasing, and at the end you are "
                          "scored on needs discovery, product knowledge, objection handling, "
                          "emotional connection and closing. Send \"start training critical "
                          "illness\" to begin (objection ids such as has_social_insurance may "
                          "follow) and \"end training\" to finish and get your score.");
    return llm_buf_error(&out->text);
}

/* Records of a new session from the scenario (a training.scenario result). New. */
static json_t *start_records(const json_t *sc)
{
    const json_t *objs = json_object_get(sc, "objections");
    json_t *rec = json_pack(
        "{s:O, s:O*, s:O, s:O, s:O, s:i, s:i, s:O, s:i, s:[], s:[], s:{s:i, s:b}, s:n}", "persona",
        json_object_get(sc, "persona"), "product", json_object_get(sc, "product"), "objections",
        objs, "strategy_bank", json_object_get(sc, "strategies"), "rubric",
        json_object_get(sc, "rubric"), "turn", 0, "current", 0, "resistance",
        json_object_get(json_array_get(objs, 0), "resistance"), "attempts", 0, "strategies",
        "outcomes", "last", "turn", 0, "start", 1, "score");
    return rec;
}

static bool scenario_valid(const json_t *sc)
{
    const json_t *objs = json_object_get(sc, "objections");
    return json_is_object(json_object_get(sc, "persona")) && json_array_size(objs) > 0 &&
           json_is_integer(json_object_get(json_array_get(objs, 0), "resistance")) &&
           json_is_array(json_object_get(sc, "strategies")) &&
           json_is_array(json_object_get(sc, "rubric"));
}

/* The answer that opens a session. */
static int intro_text(const json_t *rec, bool zh, llm_buf_t *b)
{
    const json_t *persona = json_object_get(rec, "persona");
    const json_t *objs = json_object_get(rec, "objections");
    const char *name = trainer_loc(persona, "name", zh);
    if (zh) {
        llm_buf_printf(b, "陪练开始！今天你要拜访的客户：\n【客户画像】%s\n【产品】%s\n",
                       trainer_loc(persona, "intro", zh),
                       trainer_loc(json_object_get(rec, "product"), "name", zh));
        llm_buf_printf(b,
                       "客户会依次提出 %zu "
                       "个异议，请像面对真实客户一样回应；每轮之后教练会点评并给出更好的说法。"
                       "发送“结束陪练”可随时结束并打分。\n\n【客户·%s】%s",
                       json_array_size(objs), name,
                       trainer_loc(json_array_get(objs, 0), "text", zh));
    } else {
        llm_buf_printf(b, "Training starts! Today's customer:\n[Persona] %s\n[Product] %s\n",
                       trainer_loc(persona, "intro", zh),
                       trainer_loc(json_object_get(rec, "product"), "name", zh));
        llm_buf_printf(b,
                       "The customer will raise %zu objections one at a time. Answer as you "
                       "would a real customer; after each turn the coach gives feedback and a "
                       "better phrasing. Send \"end training\" at any time to finish and get "
                       "your score.\n\n[Customer %s] %s",
                       json_array_size(objs), name,
                       trainer_loc(json_array_get(objs, 0), "text", zh));
    }
    return llm_buf_error(b);
}

/* The answer after this turn's records update (or without one: from rec directly). */
static int answer_from(const json_t *rec, bool zh, llm_rules_out_t *out)
{
    out->type = LLM_RESULT_TEXT;
    const json_t *last = json_object_get(rec, "last");
    if (json_is_true(json_object_get(last, "start")))
        return intro_text(rec, zh, &out->text);
    return trainer_turn_answer(rec, zh, &out->text);
}

/* Record (state.update) then answer; or answer at once when state.update is not offered. */
static int record_or_answer(const llm_call_t *call, const json_t *rec, json_t *upd,
                            const char *mode, llm_rules_out_t *out)
{
    if (upd == NULL)
        return MESH_ENOMEM;
    if (tool_offered(call, TRAINER_TOOL_STATE)) {
        json_t *args = json_pack("{s:o}", "records", upd);
        if (args != NULL && mode != NULL)
            json_object_set_new(args, "mode", json_string(mode));
        return llm_rules_add_call(call, out, TRAINER_TOOL_STATE, args);
    }
    json_t *merged = json_copy((json_t *)rec);
    if (merged == NULL || json_object_update(merged, upd) != 0) {
        json_decref(merged);
        json_decref(upd);
        return MESH_ENOMEM;
    }
    json_decref(upd);
    int rc = answer_from(merged, strcmp(call->lang, "zh") == 0, out);
    json_decref(merged);
    return rc;
}

static int scenario_error(const llm_call_t *call, const llm_message_t *m, llm_rules_out_t *out)
{
    bool zh = strcmp(call->lang, "zh") == 0;
    json_t *e = mesh_json_parse(m->text, m->text_len);
    const json_t *eo = json_object_get(e, "error");
    const char *msg = json_string_value(json_object_get(eo != NULL ? eo : e, "message"));
    out->type = LLM_RESULT_TEXT;
    llm_buf_puts(&out->text, zh ? "抱歉，无法生成陪练场景"
                                : "Sorry, the training scenario could not be prepared");
    if (msg != NULL) {
        llm_buf_puts(&out->text, zh ? "（" : " (");
        llm_buf_append_clip(&out->text, msg, strlen(msg), LLM_FIELD_MAX);
        llm_buf_puts(&out->text, zh ? "）" : ")");
    }
    llm_buf_puts(&out->text, zh ? "。请检查异议编号后重新发送“开始陪练 重疾险”。"
                                : ". Please check the objection ids and send \"start training "
                                  "critical illness\" again.");
    json_decref(e);
    return llm_buf_error(&out->text);
}

static int after_tools(const llm_call_t *call, llm_rules_out_t *out)
{
    bool zh = strcmp(call->lang, "zh") == 0;
    const llm_message_t *m = &call->messages[call->n_messages - 1];
    const char *name = m->name != NULL ? m->name : "";
    int rc;

    if (strcmp(name, TRAINER_TOOL_SCENARIO) == 0) {
        if (!m->ok)
            return scenario_error(call, m, out);
        json_t *sc = mesh_json_parse(m->text, m->text_len);
        const json_t *res = json_object_get(sc, "result"); /* a whole {ok, result} outcome */
        if (!json_is_object(res))
            res = sc;
        if (!scenario_valid(res)) {
            json_decref(sc);
            return scenario_error(call, m, out);
        }
        json_t *rec = trainer_records(call);
        rc = rec != NULL ? record_or_answer(call, rec, start_records(res), TRAINER_MODE, out)
                         : MESH_ENOMEM;
        json_decref(rec);
        json_decref(sc);
        return rc;
    }
    json_t *rec = trainer_records(call);
    if (rec == NULL)
        return MESH_ENOMEM;
    if (strcmp(name, TRAINER_TOOL_STATE) == 0 && m->ok &&
        json_is_object(json_object_get(rec, "last")) &&
        json_array_size(json_object_get(rec, "objections")) > 0) {
        rc = answer_from(rec, zh, out);
    } else {
        out->type = LLM_RESULT_TEXT;
        llm_buf_puts(&out->text, zh ? "抱歉，记录陪练进度时出错，请重新发送上一条消息。"
                                    : "Sorry, the training progress could not be recorded. "
                                      "Please send your last message again.");
        rc = llm_buf_error(&out->text);
    }
    json_decref(rec);
    return rc;
}

static int on_user(const llm_call_t *call, llm_rules_out_t *out)
{
    long q = last_user(call);
    json_t *rec = trainer_records(call);
    const char *mode = trainer_mode(call);
    int rc;

    if (rec == NULL)
        return MESH_ENOMEM;
    if (q < 0) {
        rc = help_text(call, rec, mode, out);
        goto cleanup;
    }
    const llm_message_t *m = &call->messages[q];
    bool active = session_active(mode, rec);
    if (llm_rules_has_any(m->text, m->text_len, START_STRONG) ||
        (!active && llm_rules_has_any(m->text, m->text_len, START_WEAK) &&
         !llm_rules_has_any(m->text, m->text_len, END_WORDS))) {
        rc = start_session(call, m, out);
        goto cleanup;
    }
    if (!active) {
        rc = help_text(call, rec, mode, out);
        goto cleanup;
    }
    bool end = llm_rules_has_any(m->text, m->text_len, END_WORDS) != 0;
    json_t *upd = trainer_turn_update(rec, m->text, m->text_len, end);
    bool done = upd != NULL && json_is_true(json_object_get(json_object_get(upd, "last"), "done"));
    rc = record_or_answer(call, rec, upd, done ? TRAINER_MODE_DONE : NULL, out);
cleanup:
    json_decref(rec);
    return rc;
}

int llm_rules_life_trainer(const llm_call_t *call, llm_rules_out_t *out)
{
    size_t n = call->n_messages;
    if (n > 0 && call->messages[n - 1].role == LLM_ROLE_TOOL)
        return after_tools(call, out);
    return on_user(call, out);
}
