/*
 * rules_trainer_score.c - the life_trainer's score on the published rubric
 * (data/training/rubric.json, carried in the session's records).
 *
 * A dimension's score = base + per trainee turn the best positive points of
 * the strategies detected in it plus the worst penalty among them (a turn
 * counts once per dimension) + per_resolved for each resolved objection,
 * clamped to 0..100. Every turn that earned or lost points is evidence: the
 * trainee's own words quoted from the log. Total = sum(weight x score) /
 * sum(weight), rounded.
 */
#include <stdint.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "rules_trainer.h"

#define SCORE_MAX  100
#define WEIGHT_MAX 100 /* the loader's bounds; records may come from a model, so clamp */
#define POINTS_MAX 100

static json_int_t clamp(json_int_t v, json_int_t lo, json_int_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static json_int_t int_in(const json_t *o, const char *key, json_int_t lo, json_int_t hi)
{
    return clamp(json_integer_value(json_object_get(o, key)), lo, hi);
}

/* The points dim gives strategy id, and whether it lists it. */
static bool points_of(const json_t *dim, const char *id, json_int_t *points)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(dim, "evidence"), i, e)
    {
        const char *sid = json_string_value(json_object_get(e, "strategy"));
        if (sid != NULL && strcmp(sid, id) == 0) {
            *points = int_in(e, "points", -POINTS_MAX, POINTS_MAX);
            return true;
        }
    }
    return false;
}

static json_t *score_dimension(const json_t *dim, const json_t *log, json_int_t resolved)
{
    json_int_t score = int_in(dim, "base", 0, SCORE_MAX);
    json_t *evidence = json_array();
    size_t i;
    const json_t *entry;

    if (evidence == NULL)
        return NULL;
    json_array_foreach(log, i, entry)
    {
        json_int_t best = 0, worst = 0;
        const char *best_id = NULL, *worst_id = NULL;
        size_t k;
        const json_t *d;
        json_array_foreach(json_object_get(entry, "detected"), k, d)
        {
            json_int_t p = 0;
            const char *id = json_string_value(d);
            if (id == NULL || !points_of(dim, id, &p))
                continue;
            if (p > best) {
                best = p;
                best_id = id;
            } else if (p < worst) {
                worst = p;
                worst_id = id;
            }
        }
        if (best_id == NULL && worst_id == NULL)
            continue;
        score += best + worst;
        if (json_array_size(evidence) < TRAINER_EVIDENCE_MAX) {
            json_t *ev = json_pack("{s:O, s:s, s:I, s:O}", "turn", json_object_get(entry, "turn"),
                                   "strategy", best_id != NULL ? best_id : worst_id, "points",
                                   best + worst, "quote", json_object_get(entry, "quote"));
            if (ev == NULL || json_array_append_new(evidence, ev) != 0) {
                json_decref(evidence);
                return NULL;
            }
        }
    }
    score += int_in(dim, "per_resolved", 0, POINTS_MAX) * resolved;
    if (score < 0)
        score = 0;
    if (score > SCORE_MAX)
        score = SCORE_MAX;
    return json_pack("{s:O*, s:O*, s:I, s:I, s:o}", "id", json_object_get(dim, "id"), "name",
                     json_object_get(dim, "name"), "weight", int_in(dim, "weight", 0, WEIGHT_MAX),
                     "score", score, "evidence", evidence);
}

json_t *trainer_score(const json_t *rec)
{
    const json_t *log = json_object_get(rec, "strategies");
    json_int_t resolved = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(rec, "outcomes"), i, v)
    {
        if (json_is_true(json_object_get(v, "resolved")))
            resolved++;
    }
    json_t *dims = json_array();
    json_int_t sum = 0, weights = 0;
    if (dims == NULL)
        return NULL;
    json_array_foreach(json_object_get(rec, "rubric"), i, v)
    {
        json_t *d = score_dimension(v, log, resolved);
        if (d == NULL || json_array_append_new(dims, d) != 0) {
            json_decref(dims);
            return NULL;
        }
        json_int_t w = int_in(v, "weight", 0, WEIGHT_MAX);
        sum += w * json_integer_value(json_object_get(d, "score"));
        weights += w;
    }
    /* Rounded half up (both are non-negative). */
    json_int_t total = weights > 0 ? (2 * sum + weights) / (2 * weights) : 0;
    return json_pack("{s:I, s:I, s:I, s:I, s:o}", "total", total, "resolved", resolved,
                     "objections", (json_int_t)json_array_size(json_object_get(rec, "objections")),
                     "turns", int_in(rec, "turn", 0, INT32_MAX), "dimensions", dims);
}

/* The score section: total, then per dimension its score and up to
 * TRAINER_EVIDENCE_SHOW quotes with the turn and the points they earned. */
int trainer_score_text(const json_t *score, bool zh, llm_buf_t *b)
{
    llm_buf_printf(b,
                   zh ? "\n\n【陪练评分】总分 %lld/100（化解异议 %lld/%lld，共 %lld 轮）"
                      : "\n\n[Score] Total %lld/100 (objections resolved %lld/%lld, %lld turns)",
                   (long long)json_integer_value(json_object_get(score, "total")),
                   (long long)json_integer_value(json_object_get(score, "resolved")),
                   (long long)json_integer_value(json_object_get(score, "objections")),
                   (long long)json_integer_value(json_object_get(score, "turns")));
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(score, "dimensions"), i, d)
    {
        llm_buf_printf(b, zh ? "\n· %s（权重 %lld%%）：%lld 分" : "\n- %s (weight %lld%%): %lld",
                       trainer_loc(d, "name", zh),
                       (long long)json_integer_value(json_object_get(d, "weight")),
                       (long long)json_integer_value(json_object_get(d, "score")));
        const json_t *ev = json_object_get(d, "evidence");
        if (json_array_size(ev) == 0) {
            llm_buf_puts(b, zh ? "。依据：本次没有相关表现" : ". Evidence: none in this session");
            continue;
        }
        llm_buf_puts(b, zh ? "。依据：" : ". Evidence: ");
        size_t k;
        const json_t *e;
        json_array_foreach(ev, k, e)
        {
            if (k >= TRAINER_EVIDENCE_SHOW)
                break;
            const char *quote = json_string_value(json_object_get(e, "quote"));
            llm_buf_printf(b, zh ? "%s第%lld轮“%s”（%+lld）" : "%sturn %lld \"%s\" (%+lld)",
                           k ? (zh ? "；" : "; ") : "",
                           (long long)json_integer_value(json_object_get(e, "turn")),
                           quote != NULL ? quote : "",
                           (long long)json_integer_value(json_object_get(e, "points")));
        }
    }
    return llm_buf_error(b);
}
