/*
 * tools_training.c - the trainer's data (data/training/) and the
 * training.scenario tool (tools_training.h).
 *
 * Files (all "_sample": true, docs/workers/life_trainer.md):
 *   objections.json  {product_type, default_set: [ids], strategies: [...], objections: [...]}
 *   personas.json    {names, ages, jobs, families, income_bands, attitudes, attitudes_per_persona}
 *   rubric.json      {dimensions: [{id, name, weight, criteria, evidence, per_resolved}]}
 *
 * Determinism: the seed string is hashed (FNV-1a 64) into a splitmix64
 * generator; the persona's blocks are drawn in a fixed order, then the
 * objection order. Nothing else (no clock, no global state) enters.
 */
#include "tools_training.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "tools_check.h"
#include "tools_data_int.h"

#define TRAINING_FILE_MAX   (4 * 1024 * 1024) /* bytes of one training file */
#define TRAINING_TEXT_MAX   1000              /* characters of one zh/en text */
#define TRAINING_ID_MAX     64                /* characters of an id */
#define TRAINING_KW_MAX     32                /* characters of one keyword */
#define TRAINING_INTRO_MAX  1024              /* bytes of a persona intro */
#define TRAINING_AGE_MIN    18
#define TRAINING_AGE_MAX    70
#define TRAINING_HITS_MAX   10
#define TRAINING_RESIST_MAX 5
#define TRAINING_POINTS_MAX 100

struct tools_training {
    json_t *objections; /* objections.json */
    json_t *personas;   /* personas.json */
    json_t *rubric;     /* rubric.json */
    json_t *by_id;      /* objection id -> objection (borrowed from objections) */
};

static const char *const s_effects[] = {"resolve", "progress", "stall", "harden", NULL};
static const char *const s_qualities[] = {"good", "neutral", "poor", NULL};

/* ---- helpers ---- */

static int read_file_json(const char *path, json_t **out, char *err, size_t err_size)
{
    return tools_data_read_json(path, TRAINING_FILE_MAX, out, err, err_size);
}

static bool in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(s, list[i]) == 0)
            return true;
    }
    return false;
}

/* An id: 1..TRAINING_ID_MAX of [a-z0-9_] (tools.json's objection id pattern). */
static bool id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TRAINING_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return false;
    }
    return true;
}

static int check_id(tools_check_t *c, const json_t *obj, const char *key, const char **out)
{
    int rc = tools_check_str(c, obj, key, true, TRAINING_ID_MAX, out);
    if (rc == 0 && !id_valid(*out))
        return tools_check_fail(c, key, "must match [a-z0-9_]{1,64}");
    return rc;
}

/* The "_sample": true marker every sample file carries. */
static int check_sample(tools_check_t *c, const json_t *root)
{
    bool sample = false;
    int rc = tools_check_bool(c, root, "_sample", &sample);
    if (rc == 0 && !sample)
        return tools_check_fail(c, "_sample", "must be true (the training data is sample data)");
    return rc;
}

/* An array under key of min..max entries. */
static int check_array(tools_check_t *c, const json_t *obj, const char *key, size_t min, size_t max,
                       const json_t **out)
{
    const json_t *a = json_object_get(obj, key);
    *out = NULL;
    if (a == NULL)
        return tools_check_fail(c, key, "is required");
    if (!json_is_array(a))
        return tools_check_fail(c, key, "must be an array");
    if (json_array_size(a) < min || json_array_size(a) > max)
        return tools_check_fail(c, key, "must have %zu to %zu entries", min, max);
    *out = a;
    return 0;
}

/* A list of strings (keywords): 0..TRAINING_KEYWORDS_MAX of 1..TRAINING_KW_MAX characters. */
static int check_keywords(tools_check_t *c, const json_t *obj, const char *key)
{
    const json_t *a;
    int rc = check_array(c, obj, key, 0, TRAINING_KEYWORDS_MAX, &a);
    size_t i;
    const json_t *v;
    if (rc != 0)
        return rc;
    json_array_foreach(a, i, v)
    {
        char k[TRAINING_ID_MAX + 16];
        snprintf(k, sizeof(k), "%s[%zu]", key, i);
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > TRAINING_KW_MAX * 4 ||
            strlen(json_string_value(v)) != json_string_length(v))
            return tools_check_fail(c, k, "must be a non-empty string of at most %d characters",
                                    TRAINING_KW_MAX);
        /* Detection folds the trainee's text to lower case (llm_rules_find): an upper-case
         * keyword could never match. */
        for (const char *p = json_string_value(v); *p != '\0'; p++) {
            if (*p >= 'A' && *p <= 'Z')
                return tools_check_fail(c, k, "must be lower case (matching ignores case)");
        }
    }
    return 0;
}

/* A reaction {zh, en, effect}; at "path". */
static int check_reaction(tools_check_t *c, const json_t *r, const char *path)
{
    char saved[TOOLS_CHECK_PATH_MAX];
    const char *effect = NULL;
    int rc;

    memcpy(saved, c->path, sizeof(saved));
    tools_check_at(c, "%s", path);
    if ((rc = tools_check_object(c, r, NULL)) == 0 &&
        (rc = tools_check_str(c, r, "zh", true, TRAINING_TEXT_MAX, NULL)) == 0 &&
        (rc = tools_check_str(c, r, "en", true, TRAINING_TEXT_MAX, NULL)) == 0 &&
        (rc = tools_check_str(c, r, "effect", true, TRAINING_ID_MAX, &effect)) == 0 &&
        !in_list(effect, s_effects))
        rc = tools_check_fail(c, "effect", "must be one of resolve, progress, stall, harden");
    memcpy(c->path, saved, sizeof(saved));
    return rc;
}

/* ---- objections.json ---- */

static int check_strategy(tools_check_t *c, const json_t *s, size_t i, json_t *seen)
{
    const char *id = NULL, *quality = NULL;
    const json_t *kw;
    long long hits = 0;
    char path[TOOLS_CHECK_PATH_MAX];
    int rc;

    tools_check_at(c, "strategies[%zu]", i);
    if ((rc = tools_check_object(c, s, NULL)) != 0 || (rc = check_id(c, s, "id", &id)) != 0)
        return rc;
    if (json_object_get(seen, id) != NULL)
        return tools_check_fail(c, "id", "duplicate strategy '%s'", id);
    if ((rc = tools_check_text(c, s, "name", TRAINING_TEXT_MAX)) != 0 ||
        (rc = tools_check_str(c, s, "quality", true, TRAINING_ID_MAX, &quality)) != 0)
        return rc;
    if (!in_list(quality, s_qualities))
        return tools_check_fail(c, "quality", "must be one of good, neutral, poor");
    if ((rc = tools_check_int(c, s, "min_hits", 1, TRAINING_HITS_MAX, &hits)) != 0 ||
        (rc = tools_check_object(c, json_object_get(s, "keywords"), "keywords")) != 0)
        return rc;
    kw = json_object_get(s, "keywords");
    tools_check_at(c, "strategies[%zu].keywords", i);
    if ((rc = check_keywords(c, kw, "zh")) != 0 || (rc = check_keywords(c, kw, "en")) != 0)
        return rc;
    if (json_array_size(json_object_get(kw, "zh")) + json_array_size(json_object_get(kw, "en")) ==
        0)
        return tools_check_fail(c, NULL, "needs at least one keyword");
    tools_check_at(c, "strategies[%zu]", i);
    if ((rc = tools_check_text(c, s, "coach", TRAINING_TEXT_MAX)) != 0)
        return rc;
    snprintf(path, sizeof(path), "strategies[%zu].default_reaction", i);
    if ((rc = check_reaction(c, json_object_get(s, "default_reaction"), path)) != 0)
        return rc;
    return json_object_set_new(seen, id, json_true()) == 0 ? 0 : MESH_ENOMEM;
}

static int check_objection(tools_check_t *c, const json_t *o, size_t i, const json_t *strategies,
                           json_t *by_id)
{
    const char *id = NULL, *key;
    const json_t *themes, *reactions, *r, *v;
    long long resist = 0;
    size_t k;
    int rc;

    tools_check_at(c, "objections[%zu]", i);
    if ((rc = tools_check_object(c, o, NULL)) != 0 || (rc = check_id(c, o, "id", &id)) != 0)
        return rc;
    if (json_object_get(by_id, id) != NULL)
        return tools_check_fail(c, "id", "duplicate objection '%s'", id);
    if ((rc = tools_check_text(c, o, "text", TRAINING_TEXT_MAX)) != 0 ||
        (rc = check_array(c, o, "themes", 1, 10, &themes)) != 0 ||
        (rc = tools_check_int(c, o, "resistance", 1, TRAINING_RESIST_MAX, &resist)) != 0 ||
        (rc = tools_check_text(c, o, "resolved", TRAINING_TEXT_MAX)) != 0 ||
        (rc = tools_check_text(c, o, "repeat", TRAINING_TEXT_MAX)) != 0 ||
        (rc = tools_check_text(c, o, "better_phrasing", TRAINING_TEXT_MAX)) != 0)
        return rc;
    json_array_foreach(themes, k, v)
    {
        tools_check_at(c, "objections[%zu].themes[%zu]", i, k);
        if ((rc = tools_check_object(c, v, NULL)) != 0 ||
            (rc = tools_check_str(c, v, "zh", true, TRAINING_TEXT_MAX, NULL)) != 0 ||
            (rc = tools_check_str(c, v, "en", true, TRAINING_TEXT_MAX, NULL)) != 0)
            return rc;
    }
    tools_check_at(c, "objections[%zu]", i);
    reactions = json_object_get(o, "reactions");
    if ((rc = tools_check_object(c, reactions, "reactions")) != 0)
        return rc;
    if (json_object_size(reactions) < 3)
        return tools_check_fail(c, "reactions", "needs reactions to at least 3 strategies");
    json_object_foreach((json_t *)reactions, key, r)
    {
        char path[TOOLS_CHECK_PATH_MAX];
        tools_check_at(c, "objections[%zu].reactions", i);
        if (json_object_get(strategies, key) == NULL)
            return tools_check_fail(c, key, "unknown strategy");
        snprintf(path, sizeof(path), "objections[%zu].reactions.%.64s", i, key);
        if ((rc = check_reaction(c, r, path)) != 0)
            return rc;
    }
    return json_object_set(by_id, id, (json_t *)o) == 0 ? 0 : MESH_ENOMEM;
}

static int check_objections(tools_check_t *c, const json_t *root, json_t *by_id)
{
    const json_t *a, *v, *set;
    const char *ptype = NULL;
    json_t *seen = json_object();
    size_t i;
    int rc;

    if (seen == NULL)
        return MESH_ENOMEM;
    if ((rc = tools_check_object(c, root, NULL)) != 0 || (rc = check_sample(c, root)) != 0 ||
        (rc = tools_check_str(c, root, "product_type", true, TRAINING_ID_MAX, &ptype)) != 0 ||
        (rc = check_array(c, root, "strategies", 1, TRAINING_STRATEGIES_MAX, &a)) != 0)
        goto cleanup;
    json_array_foreach(a, i, v)
    {
        if ((rc = check_strategy(c, v, i, seen)) != 0)
            goto cleanup;
    }
    tools_check_at(c, "%s", "");
    if ((rc = check_array(c, root, "objections", 1, TRAINING_OBJECTIONS_MAX, &a)) != 0)
        goto cleanup;
    json_array_foreach(a, i, v)
    {
        if ((rc = check_objection(c, v, i, seen, by_id)) != 0)
            goto cleanup;
    }
    tools_check_at(c, "%s", "");
    if ((rc = check_array(c, root, "default_set", TRAINING_DEFAULT_COUNT, TRAINING_OBJECTIONS_MAX,
                          &set)) != 0)
        goto cleanup;
    json_array_foreach(set, i, v)
    {
        char k[48];
        snprintf(k, sizeof(k), "default_set[%zu]", i);
        if (!json_is_string(v) || json_object_get(by_id, json_string_value(v)) == NULL) {
            rc = tools_check_fail(c, k, "unknown objection");
            goto cleanup;
        }
    }
cleanup:
    json_decref(seen);
    return rc;
}

/* ---- personas.json ---- */

/* A block of entries {id?, zh, en, ...}. */
static int check_block(tools_check_t *c, const json_t *root, const char *key, bool with_id)
{
    const json_t *a, *v;
    json_t *seen = json_object();
    size_t i;
    int rc;

    if (seen == NULL)
        return MESH_ENOMEM;
    tools_check_at(c, "%s", "");
    if ((rc = check_array(c, root, key, 1, TRAINING_BLOCK_MAX, &a)) != 0)
        goto cleanup;
    json_array_foreach(a, i, v)
    {
        const char *id = NULL;
        tools_check_at(c, "%s[%zu]", key, i);
        if ((rc = tools_check_object(c, v, NULL)) != 0 ||
            (rc = tools_check_str(c, v, "zh", true, TRAINING_TEXT_MAX, NULL)) != 0 ||
            (rc = tools_check_str(c, v, "en", true, TRAINING_TEXT_MAX, NULL)) != 0)
            goto cleanup;
        if (with_id) {
            if ((rc = check_id(c, v, "id", &id)) != 0)
                goto cleanup;
            if (json_object_get(seen, id) != NULL) {
                rc = tools_check_fail(c, "id", "duplicate id '%s'", id);
                goto cleanup;
            }
            if (json_object_set_new(seen, id, json_true()) != 0) {
                rc = MESH_ENOMEM;
                goto cleanup;
            }
        }
    }
cleanup:
    json_decref(seen);
    return rc;
}

static int check_personas(tools_check_t *c, const json_t *root, const json_t *by_id)
{
    const json_t *a, *v;
    long long per = 0;
    size_t i;
    int rc;

    if ((rc = tools_check_object(c, root, NULL)) != 0 || (rc = check_sample(c, root)) != 0 ||
        (rc = check_block(c, root, "names", false)) != 0 ||
        (rc = check_block(c, root, "jobs", true)) != 0 ||
        (rc = check_block(c, root, "families", true)) != 0 ||
        (rc = check_block(c, root, "income_bands", true)) != 0 ||
        (rc = check_block(c, root, "attitudes", true)) != 0)
        return rc;
    tools_check_at(c, "%s", "");
    if ((rc = check_array(c, root, "ages", 1, TRAINING_BLOCK_MAX, &a)) != 0)
        return rc;
    json_array_foreach(a, i, v)
    {
        char k[48];
        snprintf(k, sizeof(k), "ages[%zu]", i);
        if (!json_is_integer(v) || json_integer_value(v) < TRAINING_AGE_MIN ||
            json_integer_value(v) > TRAINING_AGE_MAX)
            return tools_check_fail(c, k, "must be an integer between %d and %d", TRAINING_AGE_MIN,
                                    TRAINING_AGE_MAX);
    }
    a = json_object_get(root, "attitudes");
    if ((rc = tools_check_int(c, root, "attitudes_per_persona", 1, (long long)json_array_size(a),
                              &per)) != 0)
        return rc;
    json_array_foreach(a, i, v)
    {
        const json_t *objs = json_object_get(v, "objections"), *o;
        size_t k;
        tools_check_at(c, "attitudes[%zu]", i);
        if (objs == NULL)
            continue;
        if ((rc = check_array(c, v, "objections", 0, TRAINING_SET_MAX, &objs)) != 0)
            return rc;
        json_array_foreach(objs, k, o)
        {
            char key[48];
            snprintf(key, sizeof(key), "objections[%zu]", k);
            if (!json_is_string(o) || json_object_get(by_id, json_string_value(o)) == NULL)
                return tools_check_fail(c, key, "unknown objection");
        }
    }
    return 0;
}

/* ---- rubric.json ---- */

static int check_rubric(tools_check_t *c, const json_t *root, const json_t *strategies)
{
    const json_t *a, *v;
    json_t *seen = json_object();
    long long total = 0;
    size_t i;
    int rc;

    if (seen == NULL)
        return MESH_ENOMEM;
    if ((rc = tools_check_object(c, root, NULL)) != 0 || (rc = check_sample(c, root)) != 0 ||
        (rc = check_array(c, root, "dimensions", 1, TRAINING_RUBRIC_MAX, &a)) != 0)
        goto cleanup;
    json_array_foreach(a, i, v)
    {
        const char *id = NULL;
        const json_t *ev, *e;
        long long w = 0, x = 0;
        size_t k;
        tools_check_at(c, "dimensions[%zu]", i);
        if ((rc = tools_check_object(c, v, NULL)) != 0 || (rc = check_id(c, v, "id", &id)) != 0)
            goto cleanup;
        if (json_object_get(seen, id) != NULL) {
            rc = tools_check_fail(c, "id", "duplicate dimension '%s'", id);
            goto cleanup;
        }
        if (json_object_set_new(seen, id, json_true()) != 0) {
            rc = MESH_ENOMEM;
            goto cleanup;
        }
        if ((rc = tools_check_text(c, v, "name", TRAINING_TEXT_MAX)) != 0 ||
            (rc = tools_check_text(c, v, "criteria", TRAINING_TEXT_MAX)) != 0 ||
            (rc = tools_check_int(c, v, "weight", 1, 100, &w)) != 0 ||
            (rc = tools_check_int(c, v, "base", 0, TRAINING_POINTS_MAX, &x)) != 0 ||
            (rc = tools_check_int(c, v, "per_resolved", 0, TRAINING_POINTS_MAX, &x)) != 0 ||
            (rc = check_array(c, v, "evidence", 0, TRAINING_STRATEGIES_MAX, &ev)) != 0)
            goto cleanup;
        total += w;
        json_array_foreach(ev, k, e)
        {
            const char *sid = NULL;
            tools_check_at(c, "dimensions[%zu].evidence[%zu]", i, k);
            if ((rc = tools_check_object(c, e, NULL)) != 0 ||
                (rc = check_id(c, e, "strategy", &sid)) != 0 ||
                (rc = tools_check_int(c, e, "points", -TRAINING_POINTS_MAX, TRAINING_POINTS_MAX,
                                      &x)) != 0)
                goto cleanup;
            if (json_object_get(strategies, sid) == NULL) {
                rc = tools_check_fail(c, "strategy", "unknown strategy '%s'", sid);
                goto cleanup;
            }
        }
    }
    tools_check_at(c, "%s", "");
    if (total != 100)
        rc = tools_check_fail(c, "dimensions", "weights must add up to 100 (they add up to %lld)",
                              total);
cleanup:
    json_decref(seen);
    return rc;
}

/* ---- load ---- */

static int load_one(const char *dir, const char *name, json_t **out, char *path, size_t path_size,
                    char *err, size_t err_size)
{
    size_t dl = strlen(dir);
    const char *sep = (dl > 0 && dir[dl - 1] == '/') ? "" : "/";
    int n = snprintf(path, path_size, "%s%s%s/%s", dir, sep, TRAINING_SUBDIR, name);

    if (n < 0 || (size_t)n >= path_size) {
        tools_errf(err, err_size, "%s: path too long", dir);
        return MESH_ECONFIG;
    }
    return read_file_json(path, out, err, err_size);
}

int tools_training_load(const char *data_dir, tools_training_t **out, char *err, size_t err_size)
{
    char path[TOOLS_PATH_MAX];
    tools_training_t *t = NULL;
    json_t *strategies = NULL;
    tools_check_t c;
    int rc;

    *out = NULL;
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (data_dir == NULL || data_dir[0] == '\0') {
        tools_errf(err, err_size, "MESH_DATA_DIR: empty");
        return MESH_ECONFIG;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->by_id = json_object()) == NULL || (strategies = json_object()) == NULL) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    if ((rc = load_one(data_dir, "objections.json", &t->objections, path, sizeof(path), err,
                       err_size)) != 0)
        goto cleanup;
    tools_check_init(&c, path, err, err_size);
    if ((rc = check_objections(&c, t->objections, t->by_id)) != 0)
        goto cleanup;
    {
        size_t i;
        const json_t *s;
        json_array_foreach(json_object_get(t->objections, "strategies"), i, s)
        {
            if (json_object_set(strategies, json_string_value(json_object_get(s, "id")),
                                (json_t *)s) != 0) {
                rc = MESH_ENOMEM;
                goto cleanup;
            }
        }
    }
    if ((rc = load_one(data_dir, "personas.json", &t->personas, path, sizeof(path), err,
                       err_size)) != 0)
        goto cleanup;
    tools_check_init(&c, path, err, err_size);
    if ((rc = check_personas(&c, t->personas, t->by_id)) != 0)
        goto cleanup;
    if ((rc = load_one(data_dir, "rubric.json", &t->rubric, path, sizeof(path), err, err_size)) !=
        0)
        goto cleanup;
    tools_check_init(&c, path, err, err_size);
    if ((rc = check_rubric(&c, t->rubric, strategies)) != 0)
        goto cleanup;
    *out = t;
    t = NULL;
cleanup:
    if (rc == MESH_ENOMEM)
        tools_errf(err, err_size, "%s/%s: out of memory while loading", data_dir, TRAINING_SUBDIR);
    json_decref(strategies);
    tools_training_destroy(&t);
    return rc;
}

void tools_training_destroy(tools_training_t **t_p)
{
    if (t_p == NULL || *t_p == NULL)
        return;
    tools_training_t *t = *t_p;
    json_decref(t->objections);
    json_decref(t->personas);
    json_decref(t->rubric);
    json_decref(t->by_id);
    free(t);
    *t_p = NULL;
}

/* ---- the scenario ---- */

typedef struct {
    uint64_t s;
} rng_t;

static void rng_seed(rng_t *r, const char *seed, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a 64 offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)seed[i];
        h *= 1099511628211ULL;
    }
    r->s = h;
}

/* splitmix64: small, fast and the same on every platform. */
static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t rng_below(rng_t *r, size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next(r) % n);
}

static const json_t *pick(rng_t *r, const json_t *a)
{
    return json_array_get(a, rng_below(r, json_array_size(a)));
}

static const char *s_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

/* true when attitude at leads to one of the objection ids in set. */
static bool attitude_fits(const json_t *at, const json_t *set)
{
    size_t i, k;
    const json_t *o, *v;
    json_array_foreach(json_object_get(at, "objections"), i, o)
    {
        json_array_foreach(set, k, v)
        {
            if (json_equal(o, v))
                return true;
        }
    }
    return false;
}

/*
 * The persona: one name, age, job, family and income band, and
 * attitudes_per_persona distinct attitudes. With an objection set, the
 * attitudes that lead to those objections come first (a customer who raises
 * "I have social insurance" trusts social insurance), the rest are drawn.
 */
static json_t *persona_build(const tools_training_t *t, const json_t *set, rng_t *r)
{
    const json_t *p = t->personas;
    const json_t *name = pick(r, json_object_get(p, "names"));
    const json_t *age = pick(r, json_object_get(p, "ages"));
    const json_t *job = pick(r, json_object_get(p, "jobs"));
    const json_t *fam = pick(r, json_object_get(p, "families"));
    const json_t *inc = pick(r, json_object_get(p, "income_bands"));
    const json_t *atts = json_object_get(p, "attitudes");
    size_t n_att = json_array_size(atts);
    size_t want = (size_t)json_integer_value(json_object_get(p, "attitudes_per_persona"));
    size_t idx[TRAINING_BLOCK_MAX];
    char zh[TRAINING_INTRO_MAX], en[TRAINING_INTRO_MAX];
    json_t *chosen = json_array(), *out = NULL;
    int nz, ne;

    if (chosen == NULL)
        return NULL;
    /* Fitting attitudes first (in file order), then a partial Fisher-Yates over the rest. */
    size_t fit = 0;
    for (size_t i = 0; i < n_att; i++)
        idx[i] = i;
    for (size_t i = 0; i < n_att && fit < want; i++) {
        if (attitude_fits(json_array_get(atts, i), set)) {
            size_t tmp = idx[fit];
            idx[fit] = idx[i];
            idx[i] = tmp;
            fit++;
        }
    }
    for (size_t i = fit; i < want && i < n_att; i++) {
        size_t j = i + rng_below(r, n_att - i);
        size_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
    for (size_t i = 0; i < want && i < n_att; i++) {
        if (json_array_append(chosen, json_array_get(atts, idx[i])) != 0)
            goto fail;
    }
    long long a = json_integer_value(age);
    nz = snprintf(zh, sizeof(zh), "%s，%lld岁，%s；%s；%s。态度：", s_of(name, "zh"), a,
                  s_of(job, "zh"), s_of(fam, "zh"), s_of(inc, "zh"));
    ne = snprintf(en, sizeof(en), "%s, %lld, %s; %s; %s. Attitudes: ", s_of(name, "en"), a,
                  s_of(job, "en"), s_of(fam, "en"), s_of(inc, "en"));
    for (size_t i = 0; i < json_array_size(chosen); i++) {
        const json_t *at = json_array_get(chosen, i);
        if (nz > 0 && (size_t)nz < sizeof(zh))
            nz += snprintf(zh + nz, sizeof(zh) - (size_t)nz, "%s%s", i ? "；" : "", s_of(at, "zh"));
        if (ne > 0 && (size_t)ne < sizeof(en))
            ne += snprintf(en + ne, sizeof(en) - (size_t)ne, "%s%s", i ? "; " : "", s_of(at, "en"));
    }
    if (nz < 0 || ne < 0 || (size_t)nz + 4 >= sizeof(zh) || (size_t)ne + 2 >= sizeof(en))
        goto fail; /* the texts are bounded by validation; this cannot fit only on bad data */
    strcat(zh, "。");
    strcat(en, ".");
    out = json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:{s:s, s:s}}", "name", name, "age", age, "job",
                    job, "family", fam, "income_band", inc, "attitudes", chosen, "intro", "zh", zh,
                    "en", en);
fail:
    json_decref(chosen);
    return out;
}

/* Append id to ids unless present or full. */
static void add_id(const char **ids, size_t *n, size_t max, const char *id)
{
    if (*n >= max || id == NULL)
        return;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(ids[i], id) == 0)
            return;
    }
    ids[(*n)++] = id;
}

/*
 * The session's objections: the ones asked for, in order; else those the
 * persona's attitudes lead to, then the default set in seeded order, up to
 * TRAINING_DEFAULT_COUNT.
 */
static int choose_objections(const tools_training_t *t, const json_t *persona, const json_t *set,
                             rng_t *r, const char **ids, size_t *n, char *err, size_t err_size)
{
    *n = 0;
    if (json_array_size(set) > 0) {
        size_t i;
        const json_t *v;
        if (json_array_size(set) > TRAINING_SET_MAX) {
            tools_errf(err, err_size, "objection_set: more than %d objections", TRAINING_SET_MAX);
            return MESH_EBADARGS;
        }
        json_array_foreach(set, i, v)
        {
            const char *id = json_string_value(v);
            if (id == NULL || json_object_get(t->by_id, id) == NULL) {
                tools_errf(err, err_size, "objection_set[%zu]: unknown objection", i);
                return MESH_EBADARGS;
            }
            size_t before = *n;
            add_id(ids, n, TRAINING_SET_MAX, id);
            if (*n == before) {
                tools_errf(err, err_size, "objection_set[%zu]: duplicate objection '%s'", i, id);
                return MESH_EBADARGS;
            }
        }
        return 0;
    }
    size_t i, k;
    const json_t *v, *o;
    json_array_foreach(json_object_get(persona, "attitudes"), i, v)
    {
        json_array_foreach(json_object_get(v, "objections"), k, o)
            add_id(ids, n, TRAINING_DEFAULT_COUNT, json_string_value(o));
    }
    const json_t *def = json_object_get(t->objections, "default_set");
    size_t nd = json_array_size(def);
    size_t order[TRAINING_OBJECTIONS_MAX];
    for (i = 0; i < nd; i++)
        order[i] = i;
    for (i = 0; i + 1 < nd; i++) {
        size_t j = i + rng_below(r, nd - i);
        size_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    for (i = 0; i < nd; i++)
        add_id(ids, n, TRAINING_DEFAULT_COUNT, json_string_value(json_array_get(def, order[i])));
    return 0;
}

/* One objection of the result: every strategy has a reaction (the bank's default if needed). */
static json_t *objection_out(const tools_training_t *t, const char *id)
{
    const json_t *o = json_object_get(t->by_id, id);
    const json_t *own = json_object_get(o, "reactions");
    json_t *reactions = json_object();
    size_t i;
    const json_t *s;

    if (reactions == NULL)
        return NULL;
    json_array_foreach(json_object_get(t->objections, "strategies"), i, s)
    {
        const char *sid = s_of(s, "id");
        const json_t *r = json_object_get(own, sid);
        if (r == NULL)
            r = json_object_get(s, "default_reaction");
        if (json_object_set(reactions, sid, (json_t *)r) != 0) {
            json_decref(reactions);
            return NULL;
        }
    }
    return json_pack(
        "{s:s, s:O, s:O, s:O, s:o, s:O, s:O, s:O}", "id", id, "text", json_object_get(o, "text"),
        "themes", json_object_get(o, "themes"), "resistance", json_object_get(o, "resistance"),
        "reactions", reactions, "resolved", json_object_get(o, "resolved"), "repeat",
        json_object_get(o, "repeat"), "better_phrasing", json_object_get(o, "better_phrasing"));
}

/* What a trainee needs to know of the product (not its whole clause text). */
static json_t *product_summary(const json_t *p)
{
    json_t *covs = json_array();
    size_t i;
    const json_t *c;

    if (covs == NULL)
        return NULL;
    json_array_foreach(json_object_get(p, "coverages"), i, c)
    {
        json_t *o = json_pack("{s:O, s:O, s:O}", "id", json_object_get(c, "id"), "name",
                              json_object_get(c, "name"), "clause", json_object_get(c, "clause"));
        if (o == NULL || json_array_append_new(covs, o) != 0) {
            json_decref(covs);
            return NULL;
        }
    }
    json_t *out = json_pack("{s:O, s:O, s:O, s:o}", "id", json_object_get(p, "id"), "name",
                            json_object_get(p, "name"), "type", json_object_get(p, "type"),
                            "coverages", covs);
    static const char *const extra[] = {"waiting_period_days", "severe_illness_count",
                                        "mild_illness_ratio", "period_years", NULL};
    for (i = 0; out != NULL && extra[i] != NULL; i++) {
        json_t *v = json_object_get(p, extra[i]);
        if (v != NULL && !json_is_null(v) && json_object_set(out, extra[i], v) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

int tools_training_build(const tools_training_t *t, const json_t *product, const json_t *args,
                         json_t **result, char *err, size_t err_size)
{
    const char *ids[TRAINING_SET_MAX];
    size_t n = 0;
    json_t *persona = NULL, *objs = NULL, *summary = NULL;
    rng_t r;
    int rc;

    *result = NULL;
    const json_t *seed = json_object_get(args, "seed");
    if (!json_is_string(seed) || json_string_length(seed) == 0 ||
        json_string_length(seed) > TRAINING_SEED_MAX) {
        tools_errf(err, err_size, "seed: must be a string of 1 to %d bytes", TRAINING_SEED_MAX);
        return MESH_EBADARGS;
    }
    const json_t *set = json_object_get(args, "objection_set");
    if (set != NULL && !json_is_array(set)) {
        tools_errf(err, err_size, "objection_set: must be an array");
        return MESH_EBADARGS;
    }
    const char *ptype = s_of(product, "type");
    if (strcmp(ptype, s_of(t->objections, "product_type")) != 0) {
        tools_errf(err, err_size, "product_id: training covers %s products only",
                   s_of(t->objections, "product_type"));
        return MESH_EBADARGS;
    }
    rng_seed(&r, json_string_value(seed), json_string_length(seed));
    if ((persona = persona_build(t, set, &r)) == NULL) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    if ((rc = choose_objections(t, persona, set, &r, ids, &n, err, err_size)) != 0)
        goto cleanup;
    if ((objs = json_array()) == NULL) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = objection_out(t, ids[i]);
        if (o == NULL || json_array_append_new(objs, o) != 0) {
            rc = MESH_ENOMEM;
            goto cleanup;
        }
    }
    if ((summary = product_summary(product)) == NULL) {
        rc = MESH_ENOMEM;
        goto cleanup;
    }
    *result =
        json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "persona", persona, "product", summary,
                  "objections", objs, "strategies", json_object_get(t->objections, "strategies"),
                  "rubric", json_object_get(t->rubric, "dimensions"), "seed", seed);
    rc = *result != NULL ? 0 : MESH_ENOMEM;
cleanup:
    if (rc == MESH_ENOMEM)
        tools_errf(err, err_size, "out of memory");
    json_decref(persona);
    json_decref(objs);
    json_decref(summary);
    return rc;
}

int tools_training_scenario(const tools_data_t *d, const json_t *args, json_t **result, char *err,
                            size_t err_size)
{
    *result = NULL;
    if (d->training == NULL) {
        tools_errf(err, err_size, "training data not loaded");
        return MESH_ETOOL;
    }
    const char *pid = json_string_value(json_object_get(args, "product_id"));
    if (pid == NULL) {
        tools_errf(err, err_size, "product_id: required");
        return MESH_EBADARGS;
    }
    const json_t *product = tools_data_product(d, pid);
    if (product == NULL) {
        tools_errf(err, err_size, "product_id: unknown product");
        return MESH_ENOTFOUND;
    }
    return tools_training_build(d->training, product, args, result, err, err_size);
}
