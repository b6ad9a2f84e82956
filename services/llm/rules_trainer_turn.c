/*
 * rules_trainer_turn.c - one trainee turn of the life_trainer engine: which
 * strategy the trainee used, how the customer reacts (the objection bank's
 * reaction to that strategy and its effect), how far the session advances,
 * and the answer: the customer in character, then the coach.
 *
 * Effects (data/training/objections.json): resolve settles the objection,
 * progress lowers its resistance by one, stall leaves it, harden raises it
 * (at most TRAINER_RESIST_EXTRA above where it started). At resistance 0 the
 * customer accepts the point and raises the next objection; after
 * TRAINER_ATTEMPTS_MAX turns without that the customer moves on unconvinced,
 * as a real one would. No strategy detected: the customer repeats the
 * objection.
 */
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_text.h"
#include "rules_trainer.h"

/* An integer of the records, dflt when absent. Records may have been written by a model
 * (the rules engine takes over a session on fallback), so values are clamped to
 * [-TRAINER_INT_MAX, TRAINER_INT_MAX]: no arithmetic below can overflow. */
static json_int_t int_of(const json_t *o, const char *key, json_int_t dflt)
{
    const json_t *v = json_object_get(o, key);
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : dflt;
    return i < -TRAINER_INT_MAX ? -TRAINER_INT_MAX : i > TRAINER_INT_MAX ? TRAINER_INT_MAX : i;
}

/* 1 when text[0..at) ends with a Chinese negation (不 / 没): "我不理解" is not empathy. */
static int negated(const char *text, size_t at)
{
    static const char *const NEG[] = {"\xE4\xB8\x8D", "\xE6\xB2\xA1"}; /* 不, 没 */
    if (at < 3)
        return 0;
    for (size_t i = 0; i < sizeof(NEG) / sizeof(NEG[0]); i++) {
        if (memcmp(text + at - 3, NEG[i], 3) == 0)
            return 1;
    }
    return 0;
}

/* 1 when kw occurs in text[0..len) at least once without a negation before it. */
static int occurs(const char *text, size_t len, const char *kw)
{
    size_t from = 0;
    while (from < len) {
        long at = llm_rules_find(text + from, len - from, kw);
        if (at < 0)
            return 0;
        if (!negated(text, from + (size_t)at))
            return 1;
        from += (size_t)at + 1;
    }
    return 0;
}

/* Distinct keywords of list found in text. */
static size_t hits_of(const json_t *list, const char *text, size_t len)
{
    size_t n = 0, i;
    const json_t *k;
    json_array_foreach(list, i, k)
    {
        const char *kw = json_string_value(k);
        if (kw != NULL && kw[0] != '\0' && occurs(text, len, kw))
            n++;
    }
    return n;
}

const char *trainer_detect(const json_t *bank, const char *text, size_t len, json_t **detected)
{
    const char *poor = NULL, *best = NULL;
    size_t best_hits = 0, i;
    const json_t *s;

    *detected = json_array();
    json_array_foreach(bank, i, s)
    {
        const char *id = json_string_value(json_object_get(s, "id"));
        const json_t *kw = json_object_get(s, "keywords");
        json_int_t min = int_of(s, "min_hits", 1);
        if (id == NULL)
            continue;
        size_t h = hits_of(json_object_get(kw, "zh"), text, len) +
                   hits_of(json_object_get(kw, "en"), text, len);
        if (h == 0 || (json_int_t)h < (min > 0 ? min : 1))
            continue;
        if (*detected != NULL)
            json_array_append_new(*detected, json_string(id));
        const char *q = json_string_value(json_object_get(s, "quality"));
        if (q != NULL && strcmp(q, "poor") == 0) {
            if (poor == NULL)
                poor = id;
        } else if (h > best_hits) {
            best = id;
            best_hits = h;
        }
    }
    if (poor != NULL)
        return poor;
    return best != NULL ? best : TRAINER_STRATEGY_NONE;
}

json_t *trainer_quote(const char *text, size_t len)
{
    char buf[TRAINER_QUOTE_MAX + 8];
    size_t o = 0, i = 0;
    bool cut = false;

    /* Skip leading white space. */
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
        i++;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (i + n > len || (n > 1 && !mesh_utf8_valid(text + i, n)) || (n == 1 && c >= 0x80)) {
            n = 1;
            c = '?'; /* invalid UTF-8 byte */
        }
        if (o + n > TRAINER_QUOTE_MAX) {
            cut = true;
            break;
        }
        if (n == 1)
            buf[o++] = (c == '\n' || c == '\r' || c == '\t' || c < 0x20) ? ' ' : (char)c;
        else
            memcpy(buf + o, text + i, n), o += n;
        i += n;
    }
    while (o > 0 && buf[o - 1] == ' ')
        o--;
    if (cut) {
        memcpy(buf + o, "\xE2\x80\xA6", 3); /* … */
        o += 3;
    }
    return json_stringn(buf, o);
}

static int append_new(json_t *a, json_t *v)
{
    return v != NULL && json_array_append_new(a, v) == 0 ? 0 : MESH_ENOMEM;
}

/* The objection the customer raises at index i, or NULL. */
static const json_t *objection_at(const json_t *rec, json_int_t i)
{
    if (i < 0)
        return NULL;
    return json_array_get(json_object_get(rec, "objections"), (size_t)i);
}

json_t *trainer_turn_update(const json_t *rec, const char *text, size_t len, bool end)
{
    const json_t *objs = json_object_get(rec, "objections");
    json_int_t n = (json_int_t)json_array_size(objs);
    json_int_t cur = int_of(rec, "current", 0);
    json_int_t turn = int_of(rec, "turn", 0);
    json_int_t attempts = int_of(rec, "attempts", 0);
    const json_t *o = objection_at(rec, cur);
    json_int_t r = int_of(rec, "resistance", int_of(o, "resistance", 1));
    const json_t *log0 = json_object_get(rec, "strategies");
    const json_t *out0 = json_object_get(rec, "outcomes");
    json_t *log = json_is_array(log0) ? json_deep_copy(log0) : json_array();
    json_t *outcomes = json_is_array(out0) ? json_deep_copy(out0) : json_array();
    json_t *upd = json_object(), *last = NULL, *detected = NULL;
    int rc = 0;

    if (log == NULL || outcomes == NULL || upd == NULL || o == NULL)
        goto fail;
    const char *oid = json_string_value(json_object_get(o, "id"));
    if (end) {
        /* The objection on the table is left unresolved; later ones were never raised. */
        rc = append_new(outcomes, json_pack("{s:s?, s:b, s:I}", "objection", oid, "resolved", 0,
                                            "turns", attempts));
        last = json_pack("{s:I, s:b, s:b}", "turn", turn, "ended", 1, "done", 1);
        cur = n;
    } else {
        const char *strategy =
            trainer_detect(json_object_get(rec, "strategy_bank"), text, len, &detected);
        const json_t *reaction = json_object_get(json_object_get(o, "reactions"), strategy);
        const char *effect = json_string_value(json_object_get(reaction, "effect"));
        json_int_t start = int_of(o, "resistance", 1);
        json_int_t idx = cur;
        const char *outcome = "open";
        if (effect == NULL)
            effect = "stall";
        if (strcmp(effect, "resolve") == 0)
            r = 0;
        else if (strcmp(effect, "progress") == 0)
            r--;
        else if (strcmp(effect, "harden") == 0 && r < start + TRAINER_RESIST_EXTRA)
            r++;
        turn++;
        attempts++;
        if (r <= 0 || attempts >= TRAINER_ATTEMPTS_MAX) {
            outcome = r <= 0 ? "resolved" : "moved_on";
            rc = append_new(outcomes, json_pack("{s:s?, s:b, s:I}", "objection", oid, "resolved",
                                                r <= 0, "turns", attempts));
            cur++;
            attempts = 0;
            r = int_of(objection_at(rec, cur), "resistance", 1);
        }
        if (rc == 0 && json_array_size(log) < TRAINER_LOG_MAX)
            rc = append_new(log,
                            json_pack("{s:I, s:s?, s:s, s:O, s:s, s:o}", "turn", turn, "objection",
                                      oid, "strategy", strategy, "detected", detected, "effect",
                                      effect, "quote", trainer_quote(text, len)));
        last = json_pack("{s:I, s:I, s:s?, s:s, s:s, s:s, s:I, s:b}", "turn", turn, "index", idx,
                         "objection", oid, "strategy", strategy, "effect", effect, "outcome",
                         outcome, "next", cur < n ? cur : (json_int_t)-1, "done", cur >= n);
    }
    if (rc != 0 || last == NULL)
        goto fail;
    if (json_object_set_new(upd, "turn", json_integer(turn)) != 0 ||
        json_object_set_new(upd, "current", json_integer(cur)) != 0 ||
        json_object_set_new(upd, "resistance", json_integer(r)) != 0 ||
        json_object_set_new(upd, "attempts", json_integer(attempts)) != 0 ||
        json_object_set(upd, "strategies", log) != 0 ||
        json_object_set(upd, "outcomes", outcomes) != 0 || json_object_set(upd, "last", last) != 0)
        goto fail;
    if (cur >= n) {
        /* Over: score the whole session (the records as they will be after this update). */
        json_t *after = json_copy((json_t *)rec);
        json_t *score = NULL;
        if (after != NULL && json_object_update(after, upd) == 0)
            score = trainer_score(after);
        json_decref(after);
        if (score == NULL || json_object_set_new(upd, "score", score) != 0)
            goto fail;
    }
    json_decref(log);
    json_decref(outcomes);
    json_decref(last);
    json_decref(detected);
    return upd;
fail:
    json_decref(log);
    json_decref(outcomes);
    json_decref(last);
    json_decref(detected);
    json_decref(upd);
    return NULL;
}

/* The bank entry of a strategy id, or NULL. */
static const json_t *strategy_entry(const json_t *rec, const char *id)
{
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(rec, "strategy_bank"), i, s)
    {
        const char *sid = json_string_value(json_object_get(s, "id"));
        if (sid != NULL && id != NULL && strcmp(sid, id) == 0)
            return s;
    }
    return NULL;
}

/* The other strategies of the last log entry (those besides the primary one), as names. */
static void other_strategies(const json_t *rec, const char *primary, bool zh, llm_buf_t *b)
{
    const json_t *log = json_object_get(rec, "strategies");
    const json_t *e = json_array_get(log, json_array_size(log) - 1);
    size_t i, shown = 0;
    const json_t *d;
    json_array_foreach(json_object_get(e, "detected"), i, d)
    {
        const char *id = json_string_value(d);
        if (id == NULL || strcmp(id, primary) == 0)
            continue;
        llm_buf_puts(b, shown == 0 ? (zh ? "（同时用到：" : " (also used: ") : (zh ? "、" : ", "));
        llm_buf_puts(b, trainer_loc(strategy_entry(rec, id), "name", zh));
        shown++;
    }
    if (shown > 0)
        llm_buf_puts(b, zh ? "）" : ")");
}

static void coach(const json_t *rec, const json_t *last, const json_t *o, bool zh, llm_buf_t *b)
{
    const char *strategy = json_string_value(json_object_get(last, "strategy"));
    const json_t *s = strategy_entry(rec, strategy);
    llm_buf_puts(b, zh ? "\n\n【教练点评】" : "\n\n[Coach] ");
    if (s == NULL) {
        llm_buf_puts(
            b, zh ? "这一轮没有识别出明确的话术策略，客户只是重复了异议。建议先认同客户的感受，"
                    "再用开放式问题了解客户的经历，或讲清报销与给付的区别。"
                  : "No clear strategy was detected this turn, so the customer just "
                    "repeated the objection. Acknowledge the feeling first, then ask about "
                    "the customer's own experience or contrast reimbursement with a "
                    "lump-sum benefit.");
    } else {
        const char *q = json_string_value(json_object_get(s, "quality"));
        bool poor = q != NULL && strcmp(q, "poor") == 0;
        llm_buf_printf(b, zh ? "识别到的策略：%s（%s）" : "Strategy detected: %s (%s)",
                       trainer_loc(s, "name", zh),
                       poor ? (zh ? "需改进" : "needs work") : (zh ? "有效" : "effective"));
        other_strategies(rec, strategy, zh, b);
        llm_buf_puts(b, zh ? "。" : ". ");
        llm_buf_puts(b, trainer_loc(s, "coach", zh));
    }
    llm_buf_printf(b, zh ? "\n更好的说法：“%s”" : "\nA better phrasing: \"%s\"",
                   trainer_loc(o, "better_phrasing", zh));
}

int trainer_turn_answer(const json_t *rec, bool zh, llm_buf_t *b)
{
    const json_t *last = json_object_get(rec, "last");
    const json_t *persona = json_object_get(rec, "persona");
    const char *name = trainer_loc(persona, "name", zh);
    const json_t *score = json_object_get(rec, "score");

    if (json_is_true(json_object_get(last, "ended"))) {
        llm_buf_puts(b, zh ? "好的，本次陪练到此结束。"
                           : "All right, this training session ends here.");
        if (json_is_object(score))
            trainer_score_text(score, zh, b);
        return llm_buf_error(b);
    }
    const json_t *o = objection_at(rec, int_of(last, "index", -1));
    const char *strategy = json_string_value(json_object_get(last, "strategy"));
    const char *outcome = json_string_value(json_object_get(last, "outcome"));
    if (o == NULL || strategy == NULL || outcome == NULL) {
        llm_buf_puts(b, zh ? "抱歉，陪练记录不完整，请发送“开始陪练 重疾险”重新开始。"
                           : "Sorry, the training record is incomplete. Send \"start training "
                             "critical illness\" to start again.");
        return llm_buf_error(b);
    }
    const json_t *reaction = json_object_get(json_object_get(o, "reactions"), strategy);
    const char *said = llm_rules_loc(reaction, zh, NULL);
    if (said == NULL) /* no strategy: the customer repeats the objection */
        said = trainer_loc(o, "repeat", zh);
    llm_buf_printf(b, zh ? "【客户·%s】%s" : "[Customer %s] %s", name, said);
    if (strcmp(outcome, "resolved") == 0) {
        llm_buf_printf(b, zh ? "……%s" : " ... %s", trainer_loc(o, "resolved", zh));
    } else if (strcmp(outcome, "moved_on") == 0) {
        llm_buf_puts(b, zh ? "……算了，这个问题我还是没想通，先放一放吧。"
                           : " ... Never mind, I'm still not convinced. Let's leave that for now.");
    }
    json_int_t next = int_of(last, "next", -1);
    if (strcmp(outcome, "open") != 0 && next >= 0)
        llm_buf_printf(b,
                       zh ? "\n（客户又想到一个顾虑）\n【客户·%s】%s"
                          : "\n(The customer thinks of another concern)\n[Customer %s] %s",
                       name, trainer_loc(objection_at(rec, next), "text", zh));
    coach(rec, last, o, zh, b);
    if (json_is_true(json_object_get(last, "done"))) {
        llm_buf_puts(b, zh ? "\n\n客户的异议都处理完了，本次陪练结束。"
                           : "\n\nThe customer has no more objections; the session is over.");
        if (json_is_object(score))
            trainer_score_text(score, zh, b);
    }
    return llm_buf_error(b);
}
