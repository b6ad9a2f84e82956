/*
 * schema.c - a JSON Schema subset validator for tool arguments (mesh_schema.h).
 *
 * Two passes share one walker style:
 *   check    - the schema itself: every supported keyword has the right type,
 *              patterns compile, nesting is bounded. A malformed schema is a
 *              configuration error (MESH_EINVAL), never a crash.
 *   validate - the value against a checked schema, stopping at the first
 *              violation, whose message names the JSON path of the value
 *              ("$.lines[2].amount") and the rule ("must be >= 0").
 *
 * mesh_schema_validate() runs check first on every call: schemas are small
 * (a tool's parameters) and the check compiles each pattern once into a
 * per-call cache that validate then reuses, so a pattern under "items" is
 * compiled once, not once per array element.
 *
 * Messages contain only the path and schema-defined text (limits, enum
 * values, the pattern), never the offending value, so a peer cannot smuggle
 * control bytes through them; property names in paths are escaped.
 */
#include "mesh/mesh_schema.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_text.h"

#define SCHEMA_PATH_MAX   256  /* bytes of a rendered path, longer ones end in "..." */
#define SCHEMA_KEY_SHOWN  48   /* bytes of one property name shown in a path */
#define SCHEMA_RE_CACHE   32   /* compiled patterns kept per call */
#define SCHEMA_ENUM_SHOWN 8    /* enum values listed in a message */
#define SCHEMA_NUM_BUF    32   /* one formatted number */
#define SCHEMA_DUMP_MAX   64   /* bytes of one dumped enum/const value */
#define SCHEMA_INT_EXACT  1e15 /* reals below this print as integers when integral */

/* A path rendered into a fixed buffer; push/pop by saved length. */
typedef struct {
    char buf[SCHEMA_PATH_MAX];
    size_t len;
} path_t;

typedef struct {
    const json_t *node; /* the "pattern" string node of the schema */
    regex_t re;
} re_entry_t;

typedef struct {
    re_entry_t cache[SCHEMA_RE_CACHE];
    size_t n_cache;
    bool fill_cache; /* check pass stores compiled patterns for validate */
    char *err;
    size_t err_size;
} ctx_t;

static const char *const TYPE_NAMES[] = {"string", "number", "integer", "boolean",
                                         "object", "array",  "null"};

/* ---- small helpers ---------------------------------------------------- */

static void set_err(ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;

    if (ctx->err == NULL || ctx->err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(ctx->err, ctx->err_size, fmt, ap);
    va_end(ap);
}

static size_t path_push_raw(path_t *p, const char *s)
{
    size_t saved = p->len;
    size_t n = strlen(s);
    const size_t tail = 4; /* "..." + NUL */

    if (p->len + n + 1 <= sizeof(p->buf)) {
        memcpy(p->buf + p->len, s, n + 1);
        p->len += n;
    } else if (p->len + tail <= sizeof(p->buf)) {
        /* Does not fit: end the rendering in "..." once; deeper pushes are no-ops. */
        if (p->len < 3 || strcmp(p->buf + p->len - 3, "...") != 0) {
            memcpy(p->buf + p->len, "...", tail);
            p->len += 3;
        }
    }
    return saved;
}

static void path_pop(path_t *p, size_t saved)
{
    p->len = saved;
    p->buf[saved] = '\0';
}

static bool key_is_plain(const char *k, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Push ".key" for plain keys, else ["key"] with non-printable bytes as \xNN. */
static size_t path_push_key(path_t *p, const char *k, size_t n)
{
    char seg[SCHEMA_KEY_SHOWN * 4 + 16];
    size_t o = 0;
    bool plain = key_is_plain(k, n);
    size_t shown = n > SCHEMA_KEY_SHOWN ? SCHEMA_KEY_SHOWN : n;

    seg[o++] = plain ? '.' : '[';
    if (!plain)
        seg[o++] = '"';
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            seg[o++] = (char)c;
        } else {
            o += (size_t)snprintf(seg + o, sizeof(seg) - o, "\\x%02x", c);
        }
    }
    if (shown < n) {
        memcpy(seg + o, "...", 3);
        o += 3;
    }
    if (!plain) {
        seg[o++] = '"';
        seg[o++] = ']';
    }
    seg[o] = '\0';
    return path_push_raw(p, seg);
}

static size_t path_push_index(path_t *p, size_t i)
{
    char seg[32];

    snprintf(seg, sizeof(seg), "[%zu]", i);
    return path_push_raw(p, seg);
}

static void path_init(path_t *p, const char *root)
{
    p->len = 0;
    p->buf[0] = '\0';
    path_push_raw(p, root);
}

static void fmt_num(const json_t *v, char out[SCHEMA_NUM_BUF])
{
    if (json_is_integer(v)) {
        snprintf(out, SCHEMA_NUM_BUF, "%lld", (long long)json_integer_value(v));
        return;
    }
    double d = json_number_value(v);
    if (d == floor(d) && fabs(d) < SCHEMA_INT_EXACT)
        snprintf(out, SCHEMA_NUM_BUF, "%.0f", d);
    else
        snprintf(out, SCHEMA_NUM_BUF, "%.15g", d);
}

/* Compare two numbers: <0, 0, >0. Integers compare exactly. */
static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    double x = json_number_value(a), y = json_number_value(b);
    return (x > y) - (x < y);
}

/* Equality for enum/const: numbers by value (1 == 1.0), everything else structurally. */
static bool value_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(a, b) == 0;
    return json_equal((json_t *)a, (json_t *)b) != 0;
}

static bool is_integral(const json_t *v)
{
    if (json_is_integer(v))
        return true;
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    return d == floor(d);
}

static bool type_matches(const char *type, const json_t *v)
{
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "number") == 0)
        return json_is_number(v);
    if (strcmp(type, "integer") == 0)
        return is_integral(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    if (strcmp(type, "null") == 0)
        return json_is_null(v);
    return false;
}

static bool type_name_known(const char *s)
{
    for (size_t i = 0; i < sizeof(TYPE_NAMES) / sizeof(TYPE_NAMES[0]); i++) {
        if (strcmp(s, TYPE_NAMES[i]) == 0)
            return true;
    }
    return false;
}

static const char *value_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
    default:
        return "null";
    }
}

static bool is_nonneg_int(const json_t *v)
{
    return is_integral(v) && json_number_value(v) >= 0;
}

/* ---- regex cache ------------------------------------------------------ */

static const regex_t *cache_find(ctx_t *ctx, const json_t *node)
{
    for (size_t i = 0; i < ctx->n_cache; i++) {
        if (ctx->cache[i].node == node)
            return &ctx->cache[i].re;
    }
    return NULL;
}

static void cache_free(ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->n_cache; i++)
        regfree(&ctx->cache[i].re);
    ctx->n_cache = 0;
}

/* ---- check pass ------------------------------------------------------- */

static int check_node(ctx_t *ctx, const json_t *schema, path_t *sp, int depth);

static int check_bad(ctx_t *ctx, const path_t *sp, const char *kw, const char *what)
{
    set_err(ctx, "schema %s/%s: %s", sp->buf, kw, what);
    return MESH_EINVAL;
}

static int check_type_kw(ctx_t *ctx, const json_t *t, const path_t *sp)
{
    if (json_is_string(t)) {
        if (!type_name_known(json_string_value(t)))
            return check_bad(ctx, sp, "type", "unknown type name");
        return 0;
    }
    if (!json_is_array(t) || json_array_size(t) == 0)
        return check_bad(ctx, sp, "type", "must be a type name or a non-empty array of them");
    size_t i;
    const json_t *el;
    json_array_foreach(t, i, el)
    {
        if (!json_is_string(el) || !type_name_known(json_string_value(el)))
            return check_bad(ctx, sp, "type", "unknown type name in array");
    }
    return 0;
}

static int check_pattern(ctx_t *ctx, const json_t *pat, const path_t *sp)
{
    if (!json_is_string(pat))
        return check_bad(ctx, sp, "pattern", "must be a string");
    if (strlen(json_string_value(pat)) != json_string_length(pat))
        return check_bad(ctx, sp, "pattern", "must not contain NUL");

    regex_t re;
    if (regcomp(&re, json_string_value(pat), REG_EXTENDED | REG_NOSUB) != 0)
        return check_bad(ctx, sp, "pattern", "not a valid POSIX extended regular expression");
    if (ctx->fill_cache && ctx->n_cache < SCHEMA_RE_CACHE && cache_find(ctx, pat) == NULL) {
        ctx->cache[ctx->n_cache].node = pat;
        ctx->cache[ctx->n_cache].re = re;
        ctx->n_cache++;
    } else {
        regfree(&re);
    }
    return 0;
}

static int check_properties(ctx_t *ctx, const json_t *props, path_t *sp, int depth)
{
    if (!json_is_object(props))
        return check_bad(ctx, sp, "properties", "must be an object of schemas");
    const char *k;
    const json_t *sub;
    json_object_foreach((json_t *)props, k, sub)
    {
        size_t s1 = path_push_raw(sp, "/properties/");
        path_push_raw(sp, k);
        int rc = check_node(ctx, sub, sp, depth + 1);
        path_pop(sp, s1);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int check_required(ctx_t *ctx, const json_t *req, const path_t *sp)
{
    if (!json_is_array(req))
        return check_bad(ctx, sp, "required", "must be an array of property names");
    size_t i;
    const json_t *el;
    json_array_foreach(req, i, el)
    {
        if (!json_is_string(el))
            return check_bad(ctx, sp, "required", "must be an array of property names");
    }
    return 0;
}

static int check_node(ctx_t *ctx, const json_t *schema, path_t *sp, int depth)
{
    const json_t *v;
    int rc;

    if (depth > MESH_MP_MAX_DEPTH) {
        set_err(ctx, "schema %s: nested deeper than %d levels", sp->buf, MESH_MP_MAX_DEPTH);
        return MESH_EINVAL;
    }
    if (!json_is_object(schema)) {
        set_err(ctx, "schema %s: must be an object", sp->buf);
        return MESH_EINVAL;
    }
    if ((v = json_object_get(schema, "type")) != NULL && (rc = check_type_kw(ctx, v, sp)) != 0)
        return rc;
    if ((v = json_object_get(schema, "properties")) != NULL &&
        (rc = check_properties(ctx, v, sp, depth)) != 0)
        return rc;
    if ((v = json_object_get(schema, "required")) != NULL && (rc = check_required(ctx, v, sp)) != 0)
        return rc;
    if ((v = json_object_get(schema, "additionalProperties")) != NULL && !json_is_boolean(v))
        return check_bad(ctx, sp, "additionalProperties", "only true or false is supported");
    if ((v = json_object_get(schema, "enum")) != NULL &&
        (!json_is_array(v) || json_array_size(v) == 0))
        return check_bad(ctx, sp, "enum", "must be a non-empty array");

    static const char *const NUM_KW[] = {"minimum", "maximum"};
    for (size_t i = 0; i < 2; i++) {
        if ((v = json_object_get(schema, NUM_KW[i])) != NULL && !json_is_number(v))
            return check_bad(ctx, sp, NUM_KW[i], "must be a number");
    }
    /* exclusiveMinimum/Maximum: a number (draft 6+) or a boolean modifier (draft 4). */
    static const char *const EXCL_KW[] = {"exclusiveMinimum", "exclusiveMaximum"};
    for (size_t i = 0; i < 2; i++) {
        if ((v = json_object_get(schema, EXCL_KW[i])) != NULL && !json_is_number(v) &&
            !json_is_boolean(v))
            return check_bad(ctx, sp, EXCL_KW[i], "must be a number");
    }
    static const char *const COUNT_KW[] = {"minLength", "maxLength", "minItems", "maxItems"};
    for (size_t i = 0; i < 4; i++) {
        if ((v = json_object_get(schema, COUNT_KW[i])) != NULL && !is_nonneg_int(v))
            return check_bad(ctx, sp, COUNT_KW[i], "must be a non-negative integer");
    }
    if ((v = json_object_get(schema, "pattern")) != NULL && (rc = check_pattern(ctx, v, sp)) != 0)
        return rc;
    if ((v = json_object_get(schema, "items")) != NULL) {
        if (!json_is_object(v))
            return check_bad(ctx, sp, "items", "must be a schema object (tuple form unsupported)");
        size_t s1 = path_push_raw(sp, "/items");
        rc = check_node(ctx, v, sp, depth + 1);
        path_pop(sp, s1);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- validate pass ---------------------------------------------------- */

static int validate_node(ctx_t *ctx, const json_t *schema, const json_t *value, path_t *vp,
                         int depth);

static int fail(ctx_t *ctx, const path_t *vp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ctx_t *ctx, const path_t *vp, const char *fmt, ...)
{
    char rule[MESH_ERRMSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rule, sizeof(rule), fmt, ap);
    va_end(ap);
    set_err(ctx, "%s: %s", vp->buf, rule);
    return MESH_EBADARGS;
}

static int validate_type(ctx_t *ctx, const json_t *t, const json_t *value, const path_t *vp)
{
    char want[96];
    size_t o = 0;

    if (json_is_string(t)) {
        if (type_matches(json_string_value(t), value))
            return 0;
        return fail(ctx, vp, "must be of type %s (got %s)", json_string_value(t),
                    value_type_name(value));
    }
    size_t i;
    const json_t *el;
    json_array_foreach(t, i, el)
    {
        if (type_matches(json_string_value(el), value))
            return 0;
    }
    want[0] = '\0';
    json_array_foreach(t, i, el)
    {
        int n =
            snprintf(want + o, sizeof(want) - o, "%s%s", i ? " or " : "", json_string_value(el));
        if (n < 0 || (size_t)n >= sizeof(want) - o)
            break;
        o += (size_t)n;
    }
    return fail(ctx, vp, "must be of type %s (got %s)", want, value_type_name(value));
}

static void dump_value(const json_t *v, char *out, size_t out_size)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

    if (s == NULL) {
        snprintf(out, out_size, "?");
        return;
    }
    if (strlen(s) > SCHEMA_DUMP_MAX)
        snprintf(out, out_size, "%.*s...", SCHEMA_DUMP_MAX, s);
    else
        snprintf(out, out_size, "%s", s);
    free(s);
}

static int validate_enum(ctx_t *ctx, const json_t *en, const json_t *value, const path_t *vp)
{
    char list[MESH_ERRMSG_MAX];
    size_t o = 0;
    size_t i;
    const json_t *el;

    json_array_foreach(en, i, el)
    {
        if (value_equal(el, value))
            return 0;
    }
    list[0] = '\0';
    json_array_foreach(en, i, el)
    {
        char one[SCHEMA_DUMP_MAX + 8];
        int n;

        if (i == SCHEMA_ENUM_SHOWN) {
            snprintf(list + o, sizeof(list) - o, ", ...");
            break;
        }
        dump_value(el, one, sizeof(one));
        n = snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", one);
        if (n < 0 || (size_t)n >= sizeof(list) - o)
            break;
        o += (size_t)n;
    }
    return fail(ctx, vp, "must be one of %s", list);
}

static int validate_number(ctx_t *ctx, const json_t *schema, const json_t *value, const path_t *vp)
{
    char num[SCHEMA_NUM_BUF];
    const json_t *min = json_object_get(schema, "minimum");
    const json_t *max = json_object_get(schema, "maximum");
    const json_t *xmin = json_object_get(schema, "exclusiveMinimum");
    const json_t *xmax = json_object_get(schema, "exclusiveMaximum");

    if (min != NULL) {
        bool excl = json_is_true(xmin);
        int c = num_cmp(value, min);
        fmt_num(min, num);
        if (c < 0 || (excl && c == 0))
            return fail(ctx, vp, "must be %s %s", excl ? ">" : ">=", num);
    }
    if (max != NULL) {
        bool excl = json_is_true(xmax);
        int c = num_cmp(value, max);
        fmt_num(max, num);
        if (c > 0 || (excl && c == 0))
            return fail(ctx, vp, "must be %s %s", excl ? "<" : "<=", num);
    }
    if (json_is_number(xmin) && num_cmp(value, xmin) <= 0) {
        fmt_num(xmin, num);
        return fail(ctx, vp, "must be > %s", num);
    }
    if (json_is_number(xmax) && num_cmp(value, xmax) >= 0) {
        fmt_num(xmax, num);
        return fail(ctx, vp, "must be < %s", num);
    }
    return 0;
}

static int validate_string(ctx_t *ctx, const json_t *schema, const json_t *value, const path_t *vp)
{
    const json_t *minl = json_object_get(schema, "minLength");
    const json_t *maxl = json_object_get(schema, "maxLength");
    const json_t *pat = json_object_get(schema, "pattern");
    const char *s = json_string_value(value);
    size_t bytes = json_string_length(value);

    if (minl != NULL || maxl != NULL) {
        double chars = (double)mesh_utf8_len(s, bytes);
        if (minl != NULL && chars < json_number_value(minl))
            return fail(ctx, vp, "must be at least %.0f characters long", json_number_value(minl));
        if (maxl != NULL && chars > json_number_value(maxl))
            return fail(ctx, vp, "must be at most %.0f characters long", json_number_value(maxl));
    }
    if (pat != NULL) {
        const regex_t *re = cache_find(ctx, pat);
        regex_t local;
        int match;

        if (re == NULL) {
            /* Cache overflow: compile for this use only (the check pass proved it compiles). */
            if (regcomp(&local, json_string_value(pat), REG_EXTENDED | REG_NOSUB) != 0)
                return fail(ctx, vp, "pattern does not compile");
            match = regexec(&local, s, 0, NULL, 0) == 0;
            regfree(&local);
        } else {
            match = regexec(re, s, 0, NULL, 0) == 0;
        }
        /* regexec stops at NUL: a string with an embedded NUL never matches. */
        if (!match || strlen(s) != bytes)
            return fail(ctx, vp, "must match the pattern %s", json_string_value(pat));
    }
    return 0;
}

static int validate_array(ctx_t *ctx, const json_t *schema, const json_t *value, path_t *vp,
                          int depth)
{
    const json_t *mini = json_object_get(schema, "minItems");
    const json_t *maxi = json_object_get(schema, "maxItems");
    const json_t *items = json_object_get(schema, "items");
    double n = (double)json_array_size(value);

    if (mini != NULL && n < json_number_value(mini))
        return fail(ctx, vp, "must have at least %.0f items", json_number_value(mini));
    if (maxi != NULL && n > json_number_value(maxi))
        return fail(ctx, vp, "must have at most %.0f items", json_number_value(maxi));
    if (items != NULL) {
        size_t i;
        const json_t *el;
        json_array_foreach(value, i, el)
        {
            size_t s1 = path_push_index(vp, i);
            int rc = validate_node(ctx, items, el, vp, depth + 1);
            path_pop(vp, s1);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int validate_object(ctx_t *ctx, const json_t *schema, const json_t *value, path_t *vp,
                           int depth)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *req = json_object_get(schema, "required");
    const json_t *addl = json_object_get(schema, "additionalProperties");
    const char *k;
    const json_t *sub;
    size_t i;
    const json_t *el;
    int rc = 0;

    if (req != NULL) {
        json_array_foreach(req, i, el)
        {
            if (json_object_get(value, json_string_value(el)) == NULL) {
                size_t s1 = path_push_key(vp, json_string_value(el), json_string_length(el));
                rc = fail(ctx, vp, "is required");
                path_pop(vp, s1);
                return rc;
            }
        }
    }
    if (json_is_false(addl)) {
        json_object_foreach((json_t *)value, k, sub)
        {
            if (props == NULL || json_object_get(props, k) == NULL) {
                size_t s1 = path_push_key(vp, k, strlen(k));
                rc = fail(ctx, vp, "is not an allowed property (additionalProperties is false)");
                path_pop(vp, s1);
                return rc;
            }
        }
    }
    if (props != NULL) {
        json_object_foreach((json_t *)props, k, sub)
        {
            const json_t *v = json_object_get(value, k);
            if (v == NULL)
                continue;
            size_t s1 = path_push_key(vp, k, strlen(k));
            rc = validate_node(ctx, sub, v, vp, depth + 1);
            path_pop(vp, s1);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int validate_node(ctx_t *ctx, const json_t *schema, const json_t *value, path_t *vp,
                         int depth)
{
    const json_t *v;
    int rc;

    /* The schema was checked, so its depth is bounded; this guards the invariant anyway. */
    if (depth > MESH_MP_MAX_DEPTH)
        return fail(ctx, vp, "nested deeper than %d levels", MESH_MP_MAX_DEPTH);
    if ((v = json_object_get(schema, "type")) != NULL &&
        (rc = validate_type(ctx, v, value, vp)) != 0)
        return rc;
    if ((v = json_object_get(schema, "const")) != NULL && !value_equal(v, value)) {
        char one[SCHEMA_DUMP_MAX + 8];
        dump_value(v, one, sizeof(one));
        return fail(ctx, vp, "must equal %s", one);
    }
    if ((v = json_object_get(schema, "enum")) != NULL &&
        (rc = validate_enum(ctx, v, value, vp)) != 0)
        return rc;
    if (json_is_number(value))
        return validate_number(ctx, schema, value, vp);
    if (json_is_string(value))
        return validate_string(ctx, schema, value, vp);
    if (json_is_array(value))
        return validate_array(ctx, schema, value, vp, depth);
    if (json_is_object(value))
        return validate_object(ctx, schema, value, vp, depth);
    return 0;
}

/* ---- public ----------------------------------------------------------- */

int mesh_schema_check(const json_t *schema, char *err, size_t err_size)
{
    ctx_t ctx = {.fill_cache = false, .err = err, .err_size = err_size};
    path_t sp;

    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (schema == NULL) {
        set_err(&ctx, "schema #: missing");
        return MESH_EINVAL;
    }
    path_init(&sp, "#");
    return check_node(&ctx, schema, &sp, 0);
}

int mesh_schema_validate(const json_t *schema, const json_t *value, char *err, size_t err_size)
{
    ctx_t ctx = {.fill_cache = true, .err = err, .err_size = err_size};
    path_t p;
    int rc;

    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (schema == NULL) {
        set_err(&ctx, "schema #: missing");
        return MESH_EINVAL;
    }
    path_init(&p, "#");
    rc = check_node(&ctx, schema, &p, 0);
    if (rc != 0)
        goto cleanup;
    if (value == NULL) {
        path_init(&p, "$");
        rc = fail(&ctx, &p, "missing value");
        goto cleanup;
    }
    path_init(&p, "$");
    rc = validate_node(&ctx, schema, value, &p, 0);
cleanup:
    cache_free(&ctx);
    return rc;
}
