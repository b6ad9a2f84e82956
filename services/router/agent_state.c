/*
 * agent_state.c - the conversation state a turn carries (docs/router.md,
 * "Conversation state"): read from turn.begin's state hash, changed by the
 * router-local tool state.update and by a handoff, shown to the model in
 * every llm.chat (args "state") and to the client in the FINAL, and written
 * back with turn.end (only the fields that changed, plus the agent and the
 * running usage totals).
 *
 * The hash holds strings; "slots" and "records" are compact JSON objects
 * (at most ROUTER_SLOTS_MAX / ROUTER_RECORDS_MAX bytes), which the turn
 * keeps parsed in t->cstate = {slots: {...}, mode, records: {...}, handoff,
 * handoff_reason} (mode/handoff/handoff_reason absent when unset).
 */
#include "agent_turn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "router_metrics.h"

#define LOG_SUB "agent"
/* Bytes of a state.update error message. */
#define STATE_ERR_MAX 256
/* Largest token count taken from one llm FINAL (a guard against garbage). */
#define USAGE_TOKENS_MAX 1000000000000ULL
/* Largest cost taken from one llm FINAL, USD. */
#define USAGE_COST_MAX 1e9
/* JSON text of state values: the precision of the tool messages. */
#define STATE_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(ROUTER_TOOL_REAL_PRECISION))

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A JSON object from the hash field's text; {} (logged) when absent or unreadable. */
static json_t *parse_object_field(const router_turn_t *t, const json_t *hash, const char *field)
{
    const char *s = json_string_value(json_object_get(hash, field));
    if (s && s[0]) {
        json_error_t je;
        json_t *v = json_loads(s, JSON_REJECT_DUPLICATES, &je);
        if (json_is_object(v))
            return v;
        json_decref(v);
        mesh_log_warn(LOG_SUB, "conv %s: state field %s is not a JSON object; read as {}",
                      t->req.conv, field);
    }
    return json_object();
}

static uint64_t parse_u64(const json_t *hash, const char *field)
{
    const char *s = json_string_value(json_object_get(hash, field));
    if (!s || !s[0])
        return 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    return (end && *end == '\0' && s[0] != '-') ? (uint64_t)v : 0;
}

static double parse_cost(const json_t *hash, const char *field)
{
    const char *s = json_string_value(json_object_get(hash, field));
    if (!s || !s[0])
        return 0;
    char *end = NULL;
    double v = strtod(s, &end);
    return (end && *end == '\0' && isfinite(v) && v >= 0) ? v : 0;
}

int router__state_load(router_turn_t *t, const json_t *hash)
{
    json_decref(t->cstate);
    t->cstate = json_object();
    if (!t->cstate)
        return MESH_ENOMEM;
    if (!json_is_object(hash))
        hash = NULL;
    json_t *slots = parse_object_field(t, hash, "slots");
    json_t *records = parse_object_field(t, hash, "records");
    if (json_object_set_new(t->cstate, "slots", slots) != 0 ||
        json_object_set_new(t->cstate, "records", records) != 0)
        return MESH_ENOMEM;
    static const char *const plain[] = {"mode", "handoff", "handoff_reason"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        json_t *v = json_object_get(hash, plain[i]);
        if (json_is_string(v) && json_string_length(v) > 0 &&
            json_object_set(t->cstate, plain[i], v) != 0)
            return MESH_ENOMEM;
    }
    t->tot_prompt = parse_u64(hash, "usage_prompt_tokens");
    t->tot_completion = parse_u64(hash, "usage_completion_tokens");
    t->tot_cost = parse_cost(hash, "usage_cost_usd");
    return 0;
}

json_t *router__state_empty(void)
{
    /* What router__state_load makes of a hash without slots/records/mode/handoff. */
    return json_pack("{s:{}, s:{}}", "slots", "records");
}

const char *router__state_handoff(const router_turn_t *t)
{
    const char *h = json_string_value(json_object_get(t->cstate, "handoff"));
    if (h && (strcmp(h, "pending") == 0 || strcmp(h, "human") == 0))
        return h;
    return NULL;
}

int router__state_set_handoff(router_turn_t *t, const char *reason)
{
    if (!t->cstate)
        return MESH_ENOMEM;
    /* Cut at ROUTER_REASON_MAX bytes on a UTF-8 boundary. */
    size_t n = strlen(reason);
    if (n > ROUTER_REASON_MAX) {
        n = ROUTER_REASON_MAX;
        while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
            n--;
    }
    json_t *r = json_stringn(reason, n);
    if (!r || json_object_set_new(t->cstate, "handoff", json_string("pending")) != 0 ||
        json_object_set_new(t->cstate, "handoff_reason", r) != 0)
        return MESH_ENOMEM;
    t->handoff_dirty = true;
    t->handoff_at = unix_ms();
    mesh_log_info(LOG_SUB, "conv %s message %s: handoff pending", t->req.conv, t->message_id);
    if (t->stream) {
        json_t *p = json_pack("{s:{s:s, s:O}}", "handoff", "state", "pending", "reason", r);
        if (p)
            router__turn_partial_data(t, p);
        json_decref(p);
    }
    return 0;
}

/* ---- state.update ---- */

static json_t *text_of(const json_t *v)
{
    char *s = json_dumps(v, STATE_JSON_FLAGS);
    json_t *j = s ? json_string(s) : NULL;
    free(s);
    return j;
}

static json_t *error_text(const char *code, const char *message)
{
    json_t *e = json_pack("{s:s, s:s}", "code", code, "message", message);
    json_t *j = e ? text_of(e) : NULL;
    json_decref(e);
    return j;
}

/* Bytes of v as compact JSON, SIZE_MAX when it cannot be written. */
static size_t json_size(const json_t *v)
{
    size_t n = json_dumpb(v, NULL, 0, STATE_JSON_FLAGS);
    return n ? n : SIZE_MAX;
}

/*
 * Merge upd into a copy of cur (null deletes a key) into *out. scalars_only:
 * slot values must be strings, numbers or booleans. 0, MESH_EINVAL with
 * msg written, or MESH_ENOMEM.
 */
static int merge(const char *field, const json_t *cur, const json_t *upd, bool scalars_only,
                 size_t max_bytes, json_t **out, char *msg, size_t msg_size)
{
    *out = json_deep_copy(cur);
    if (!*out)
        return MESH_ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)upd, k, v)
    {
        size_t klen = strlen(k);
        if (klen == 0 || klen > ROUTER_SLOT_NAME_MAX) {
            snprintf(msg, msg_size, "%s: key names must be 1..%d bytes", field,
                     ROUTER_SLOT_NAME_MAX);
            return MESH_EINVAL;
        }
        if (scalars_only && !json_is_null(v) && !json_is_string(v) && !json_is_number(v) &&
            !json_is_boolean(v)) {
            snprintf(msg, msg_size, "%s.%.64s: must be a string, number, boolean or null", field,
                     k);
            return MESH_EINVAL;
        }
        int rc = json_is_null(v) ? (json_object_del(*out, k), 0)
                                 : json_object_set_new(*out, k, json_deep_copy(v));
        if (rc != 0)
            return MESH_ENOMEM;
    }
    if (json_size(*out) > max_bytes) {
        snprintf(msg, msg_size, "%s too large: more than %zu bytes as JSON", field, max_bytes);
        return MESH_EINVAL;
    }
    return 0;
}

int router__state_update(router_turn_t *t, const json_t *args, bool *ok, json_t **text)
{
    char msg[STATE_ERR_MAX];
    json_t *slots = NULL, *records = NULL;
    int rc = 0;
    *ok = false;
    *text = NULL;
    if (!t->cstate)
        return MESH_ENOMEM;
    const json_t *us = json_object_get(args, "slots");
    const json_t *ur = json_object_get(args, "records");
    const json_t *um = json_object_get(args, "mode");
    const json_t *uh = json_object_get(args, "handoff");
    const char *reason = json_string_value(json_object_get(uh, "reason"));
    /* Checked whole before anything changes: an invalid update changes nothing. */
    if ((us && !json_is_object(us)) || (ur && !json_is_object(ur))) {
        snprintf(msg, sizeof(msg), "slots and records must be objects");
        rc = MESH_EINVAL;
    }
    if (rc == 0 && um &&
        (!json_is_string(um) || json_string_length(um) > ROUTER_MODE_MAX ||
         strlen(json_string_value(um)) != json_string_length(um))) {
        snprintf(msg, sizeof(msg), "mode: must be a string of at most %d bytes", ROUTER_MODE_MAX);
        rc = MESH_EINVAL;
    }
    if (rc == 0 && uh &&
        (!reason || reason[0] == '\0' ||
         json_string_length(json_object_get(uh, "reason")) > ROUTER_REASON_MAX)) {
        snprintf(msg, sizeof(msg), "handoff.reason: must be a string of 1..%d bytes",
                 ROUTER_REASON_MAX);
        rc = MESH_EINVAL;
    }
    if (rc == 0 && us)
        rc = merge("slots", json_object_get(t->cstate, "slots"), us, true, ROUTER_SLOTS_MAX, &slots,
                   msg, sizeof(msg));
    if (rc == 0 && ur)
        rc = merge("records", json_object_get(t->cstate, "records"), ur, false, ROUTER_RECORDS_MAX,
                   &records, msg, sizeof(msg));
    if (rc == MESH_EINVAL) {
        *text = error_text("invalid_tool_arguments", msg);
        rc = *text ? 0 : MESH_ENOMEM;
        goto cleanup;
    }
    if (rc)
        goto cleanup;
    /* Commit. */
    if (slots) {
        if (json_object_set(t->cstate, "slots", slots) != 0)
            goto nomem;
        t->slots_dirty = true;
    }
    if (records) {
        if (json_object_set(t->cstate, "records", records) != 0)
            goto nomem;
        t->records_dirty = true;
    }
    if (um) {
        if (json_string_length(um) == 0)
            json_object_del(t->cstate, "mode");
        else if (json_object_set(t->cstate, "mode", (json_t *)um) != 0)
            goto nomem;
        t->mode_dirty = true;
    }
    if (uh && router__state_set_handoff(t, reason) != 0)
        goto nomem;
    json_t *res = json_pack("{s:O}", "slots", json_object_get(t->cstate, "slots"));
    const char *mode = json_string_value(json_object_get(t->cstate, "mode"));
    const char *handoff = json_string_value(json_object_get(t->cstate, "handoff"));
    if (res && mode)
        json_object_set_new(res, "mode", json_string(mode));
    if (res && handoff)
        json_object_set_new(res, "handoff", json_string(handoff));
    *text = res ? text_of(res) : NULL;
    json_decref(res);
    if (!*text)
        goto nomem;
    *ok = true;
    goto cleanup;
nomem:
    rc = MESH_ENOMEM;
cleanup:
    json_decref(slots);
    json_decref(records);
    return rc;
}

/* ---- usage ---- */

void router__state_llm_usage(router_turn_t *t, const json_t *data)
{
    const json_t *u = json_object_get(data, "usage");
    json_int_t p = json_integer_value(json_object_get(u, "prompt_tokens"));
    json_int_t c = json_integer_value(json_object_get(u, "completion_tokens"));
    double cost = json_number_value(json_object_get(u, "cost_usd"));
    uint64_t up = p > 0 && (uint64_t)p <= USAGE_TOKENS_MAX ? (uint64_t)p : 0;
    uint64_t uc = c > 0 && (uint64_t)c <= USAGE_TOKENS_MAX ? (uint64_t)c : 0;
    if (!isfinite(cost) || cost < 0 || cost > USAGE_COST_MAX)
        cost = 0;
    t->use_prompt += up;
    t->use_completion += uc;
    t->use_cost += cost;
    t->llm_calls++;
    const json_t *model = json_object_get(data, "model");
    if (json_is_string(model) && json_string_length(model) <= ROUTER_MODEL_MAX &&
        strlen(json_string_value(model)) == json_string_length(model))
        snprintf(t->model, sizeof(t->model), "%s", json_string_value(model));
    json_t *fb = json_object_get(data, "fallback");
    if (json_is_object(fb)) {
        json_decref(t->fallback);
        t->fallback = json_deep_copy(fb);
    }
    router_metrics_llm_usage(t->agent ? t->agent->name : NULL, t->req.tenant, up, uc, cost);
}

/* ---- turn.end fields and FINAL data ---- */

static int set_text(json_t *o, const char *k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_text(json_t *o, const char *k, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return json_object_set_new(o, k, json_string(buf));
}

json_t *router__state_fields(router_turn_t *t)
{
    json_t *f = json_pack("{s:s}", "agent", t->agent->name);
    if (!f)
        return NULL;
    int rc = 0;
    const char *objs[2] = {t->slots_dirty ? "slots" : NULL, t->records_dirty ? "records" : NULL};
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        if (!objs[i])
            continue;
        char *s = json_dumps(json_object_get(t->cstate, objs[i]), STATE_JSON_FLAGS);
        rc = s ? json_object_set_new(f, objs[i], json_string(s)) : -1;
        free(s);
    }
    if (rc == 0 && t->mode_dirty) {
        const char *m = json_string_value(json_object_get(t->cstate, "mode"));
        rc = json_object_set_new(f, "mode", json_string(m ? m : ""));
    }
    if (rc == 0 && t->handoff_dirty) {
        const char *h = json_string_value(json_object_get(t->cstate, "handoff"));
        const char *r = json_string_value(json_object_get(t->cstate, "handoff_reason"));
        rc = json_object_set_new(f, "handoff", json_string(h ? h : ""));
        if (rc == 0)
            rc = json_object_set_new(f, "handoff_reason", json_string(r ? r : ""));
        if (rc == 0)
            rc = set_text(f, "handoff_at", "%llu", (unsigned long long)t->handoff_at);
    }
    if (rc == 0 && t->llm_calls > 0) {
        rc = set_text(f, "usage_prompt_tokens", "%llu",
                      (unsigned long long)(t->tot_prompt + t->use_prompt));
        if (rc == 0)
            rc = set_text(f, "usage_completion_tokens", "%llu",
                          (unsigned long long)(t->tot_completion + t->use_completion));
        if (rc == 0)
            rc = set_text(f, "usage_cost_usd", "%.10g", t->tot_cost + t->use_cost);
    }
    if (rc != 0) {
        json_decref(f);
        return NULL;
    }
    return f;
}

int router__state_final_extras(router_turn_t *t, json_t *data)
{
    json_t *usage =
        json_pack("{s:I, s:I, s:f}", "prompt_tokens", (json_int_t)t->use_prompt,
                  "completion_tokens", (json_int_t)t->use_completion, "cost_usd", t->use_cost);
    if (!usage || json_object_set_new(data, "usage", usage) != 0)
        return MESH_ENOMEM;
    if (t->model[0] && json_object_set_new(data, "model", json_string(t->model)) != 0)
        return MESH_ENOMEM;
    if (t->cstate && json_object_set(data, "state", t->cstate) != 0)
        return MESH_ENOMEM;
    const char *h = router__state_handoff(t);
    if (h && json_object_set_new(data, "handoff", json_string(h)) != 0)
        return MESH_ENOMEM;
    if (t->fallback && json_object_set(data, "fallback", t->fallback) != 0)
        return MESH_ENOMEM;
    return 0;
}
