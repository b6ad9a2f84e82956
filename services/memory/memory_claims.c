/*
 * memory_claims.c - tool.call claim.register / claim.get (memory_claims.h).
 *
 * Keys (one Redis Cluster slot, tag {claims}; no TTL: a claim is a record):
 *   mesh:{claims}:seq      string  INCR: the claim sequence
 *   mesh:{claims}:idem     hash    "<conv>|<policy_no>" -> claim number
 *   mesh:{claims}:records  hash    claim number -> record JSON
 * A record is {claim_no, conversation_id, tenant, policy_no, kind, status,
 * facts, summary, registered_at}. claim.register is one script
 * (memory_scripts.c): a retried registration of the same conversation and
 * policy returns the first claim (created false) and never a second number.
 */
#include "memory_claims.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memory_op_int.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_schema.h"

#define CLAIMS_SUBSYS "memory"
/* A tool error message (the tools service's bound). */
#define CLAIMS_MSG_MAX 256
/* Sanitised copy of a peer-sent name in a message. */
#define CLAIMS_SAFE_MAX (4 * MESH_LOG_SAMPLE_MAX + 4)

/* Keep in step with data/tools.json (test_memory_claims.c compares them). */
static const char s_register_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"policy_no\":{\"type\":\"string\",\"pattern\":\"^P[0-9]{5}$\"},"
    "\"kind\":{\"type\":\"string\",\"enum\":[\"motor\",\"health\"]},"
    "\"facts\":{\"type\":\"object\"},"
    "\"summary\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4000}},"
    "\"required\":[\"policy_no\",\"kind\",\"facts\",\"summary\"],"
    "\"additionalProperties\":false}";

/* claim.get is memory-only (not offered to models): no entry in data/tools.json. */
static const char s_get_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"claim_no\":{\"type\":\"string\",\"pattern\":\"^CLM[0-9]{14,29}$\"}},"
    "\"required\":[\"claim_no\"],\"additionalProperties\":false}";

const char *memory_claims_schema(const char *tool)
{
    if (tool == NULL)
        return NULL;
    if (strcmp(tool, "claim.register") == 0)
        return s_register_schema;
    if (strcmp(tool, "claim.get") == 0)
        return s_get_schema;
    return NULL;
}

/* {ok: false, error: {code, message}}: only the four tool outcome codes go on the wire. */
static json_t *tool_error(int code, const char *message)
{
    if (code != MESH_EUNKNOWNTOOL && code != MESH_EBADARGS && code != MESH_ENOTFOUND)
        code = MESH_ETOOL;
    json_t *e = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", mesh_err_name(code),
                          "message", message);
    if (e == NULL) /* message not UTF-8: the generic one */
        e = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", mesh_err_name(code),
                      "message", mesh_strerror(code));
    return e;
}

/* Answer the op with a tool error without Redis. 0 or MESH_ENOMEM. */
static int plan_tool_error(memory_plan_t *plan, int code, const char *message, char *err,
                           size_t err_size)
{
    plan->now = tool_error(code, message);
    return plan->now != NULL ? 0 : memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
}

static int malformed(char *err, size_t err_size, const char *what)
{
    mesh_log_info(CLAIMS_SUBSYS, "tool.call refused: %s", what);
    return memory_fail(MESH_EPROTO, err, err_size, "%s", what);
}

/* ------------------------------------------------------------ replies */

static int script_head(const redisReply *r, char *err, size_t err_size)
{
    if (r->type == REDIS_REPLY_ERROR) {
        char clean[CLAIMS_SAFE_MAX];
        mesh_log_sanitize(r->str != NULL ? r->str : "", r->str != NULL ? r->len : 0, clean,
                          sizeof clean);
        mesh_log_warn(CLAIMS_SUBSYS, "redis error: %s", clean);
        return memory_fail(MESH_EUNAVAIL, err, err_size, "redis error: %s", clean);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return memory_fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
    return 0;
}

/* A stored record (JSON object) or NULL with one log line. */
static json_t *record_parse(const redisReply *s)
{
    json_t *rec = NULL;
    if (s->type == REDIS_REPLY_STRING && s->len <= MEMORY_CLAIM_RECORD_MAX)
        rec = json_loadb(s->str, s->len, 0, NULL);
    if (json_is_object(rec) && json_is_string(json_object_get(rec, "claim_no")))
        return rec;
    json_decref(rec);
    mesh_log_warn(CLAIMS_SUBSYS, "unreadable claim record in %s", MEMORY_CLAIMS_RECORDS_KEY);
    return NULL;
}

/* claim.register: {"ok", created, record} | {"full"}. */
static int register_data(const redisReply *r, memory_op_t *c, json_t **data, char *err,
                         size_t err_size)
{
    (void)c;
    int rc = script_head(r, err, err_size);
    if (rc != 0)
        return rc;
    if (strcmp(r->element[0]->str, "full") == 0) {
        mesh_log_error(CLAIMS_SUBSYS, "claim.register: no free claim number (was %s reset?)",
                       MEMORY_CLAIMS_SEQ_KEY);
        *data = tool_error(MESH_ETOOL, "no free claim number: registration failed");
        return *data != NULL ? 0 : memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
    }
    if (strcmp(r->element[0]->str, "ok") != 0 || r->elements != 3 ||
        r->element[1]->type != REDIS_REPLY_INTEGER)
        return memory_fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
    json_t *rec = record_parse(r->element[2]);
    if (rec == NULL) {
        *data = tool_error(MESH_ETOOL, "the stored claim record is unreadable");
        return *data != NULL ? 0 : memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
    }
    json_t *result = json_object();
    static const char *const copy[] = {"claim_no", "status", "registered_at", "policy_no", "kind"};
    int bad = result == NULL ||
              json_object_set_new(result, "created", json_boolean(r->element[1]->integer != 0));
    for (size_t i = 0; !bad && i < sizeof copy / sizeof copy[0]; i++) {
        json_t *v = json_object_get(rec, copy[i]);
        if (v != NULL)
            bad = json_object_set(result, copy[i], v);
    }
    json_decref(rec);
    if (!bad)
        *data = json_pack("{s:b, s:o}", "ok", 1, "result", result);
    else
        json_decref(result);
    return !bad && *data != NULL ? 0 : memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
}

/*
 * claim.get: {"ok", record} | {"none"}. A record of another tenant is
 * answered not_found, as if it did not exist: claim numbers are sequential
 * (guessable), so the number alone must not open another tenant's claim.
 */
static int get_data(const redisReply *r, memory_op_t *c, json_t **data, char *err, size_t err_size)
{
    int rc = script_head(r, err, err_size);
    if (rc != 0)
        return rc;
    if (strcmp(r->element[0]->str, "none") == 0) {
        *data = tool_error(MESH_ENOTFOUND, "no such claim");
    } else if (strcmp(r->element[0]->str, "ok") == 0 && r->elements == 2) {
        json_t *rec = record_parse(r->element[1]);
        const char *owner = json_string_value(json_object_get(rec, "tenant"));
        if (rec != NULL && owner != NULL && strcmp(owner, c->tenant) != 0) {
            json_decref(rec);
            *data = tool_error(MESH_ENOTFOUND, "no such claim");
        } else {
            *data = rec != NULL ? json_pack("{s:b, s:o}", "ok", 1, "result", rec)
                                : tool_error(MESH_ETOOL, "the stored claim record is unreadable");
        }
    } else {
        return memory_fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
    }
    return *data != NULL ? 0 : memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
}

/* ------------------------------------------------------------ builders */

static int build_register(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                          memory_plan_t *plan, char *err, size_t err_size)
{
    if (bc->conv[0] == '\0')
        return plan_tool_error(plan, MESH_ETOOL,
                               "claim.register needs the request's conversation id (conv)", err,
                               err_size);
    const json_t *facts = json_object_get(args, "facts");
    char *facts_text = json_dumps(facts, JSON_COMPACT);
    if (facts_text == NULL)
        return memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
    size_t facts_len = strlen(facts_text);
    free(facts_text);
    if (facts_len > MEMORY_CLAIM_FACTS_MAX) {
        char msg[CLAIMS_MSG_MAX];
        snprintf(msg, sizeof msg, "$.facts: must be at most %d bytes as JSON",
                 MEMORY_CLAIM_FACTS_MAX);
        return plan_tool_error(plan, MESH_EBADARGS, msg, err, err_size);
    }
    const char *policy = json_string_value(json_object_get(args, "policy_no"));
    json_t *rest =
        json_pack("{s:s, s:s, s:s, s:O, s:s, s:O, s:O, s:I}", "conversation_id", bc->conv, "tenant",
                  bc->tenant, "policy_no", policy, "kind", json_object_get(args, "kind"), "status",
                  "registered", "facts", facts, "summary", json_object_get(args, "summary"),
                  "registered_at", (json_int_t)bc->now_ms);
    if (rest == NULL)
        return memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
    char *rest_text = json_dumps(rest, JSON_COMPACT);
    json_decref(rest);
    if (rest_text == NULL)
        return memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
    size_t rest_len = strlen(rest_text);
    if (rest_len + MEMORY_CLAIM_NO_MAX + 16 > MEMORY_CLAIM_RECORD_MAX) {
        free(rest_text);
        return plan_tool_error(plan, MESH_EBADARGS,
                               "$: the claim record would be larger than 32768 bytes", err,
                               err_size);
    }
    /* "<conv>|<policy_no>": conv has no '|' ([A-Za-z0-9._:-]), so the pair is unambiguous. */
    char idem[MESH_CONV_MAX + 2 + 16];
    int ilen = snprintf(idem, sizeof idem, "%s|%s", bc->conv, policy);
    time_t secs = (time_t)(bc->now_ms / 1000u);
    struct tm tm;
    char date[16];
    int rc = MESH_EINVAL;
    if (ilen > 0 && (size_t)ilen < sizeof idem && gmtime_r(&secs, &tm) != NULL &&
        strftime(date, sizeof date, "%Y%m%d", &tm) == 8) {
        static const char *const keys[] = {MEMORY_CLAIMS_SEQ_KEY, MEMORY_CLAIMS_IDEM_KEY,
                                           MEMORY_CLAIMS_RECORDS_KEY};
        rc = 0;
        for (size_t i = 0; rc == 0 && i < sizeof keys / sizeof keys[0]; i++)
            rc = memory_argv_push(a, keys[i], strlen(keys[i]));
        if (rc == 0)
            rc = memory_argv_push(a, idem, (size_t)ilen);
        if (rc == 0)
            rc = memory_argv_push(a, date, 8);
        if (rc == 0) {
            rc = memory_argv_push_owned(a, rest_text, rest_len);
            rest_text = NULL;
        }
        if (rc == 0)
            rc = memory_argv_push_u64(a, MEMORY_CLAIM_SEQ_TRIES);
    }
    free(rest_text);
    if (rc != 0)
        return memory_fail(rc, err, err_size, "cannot build the registration");
    plan->script = MEMORY_SCRIPT_CLAIM_REG;
    plan->nkeys = MEMORY_CLAIM_REG_NKEYS;
    plan->to_data = register_data;
    return 0;
}

static int build_get(const json_t *args, memory_argv_t *a, memory_plan_t *plan, char *err,
                     size_t err_size)
{
    const json_t *no = json_object_get(args, "claim_no");
    int rc = memory_argv_push(a, MEMORY_CLAIMS_RECORDS_KEY, strlen(MEMORY_CLAIMS_RECORDS_KEY));
    if (rc == 0)
        rc = memory_argv_push(a, json_string_value(no), json_string_length(no));
    if (rc != 0)
        return memory_fail(rc, err, err_size, "out of memory");
    plan->script = MEMORY_SCRIPT_CLAIM_GET;
    plan->nkeys = MEMORY_CLAIM_GET_NKEYS;
    plan->to_data = get_data;
    return 0;
}

int memory_claims_build(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                        memory_plan_t *plan, char *err, size_t err_size)
{
    if (!json_is_object(args))
        return malformed(err, err_size, "args: must be a map {name, arguments}");
    const json_t *name = json_object_get(args, "name");
    if (!json_is_string(name))
        return malformed(err, err_size, "args.name: required string");
    if (json_string_length(name) == 0 || json_string_length(name) > MEMORY_TOOL_NAME_MAX ||
        strlen(json_string_value(name)) != json_string_length(name))
        return malformed(err, err_size, "args.name: must be 1..64 bytes without NUL");
    const json_t *arguments = json_object_get(args, "arguments");
    if (arguments != NULL && !json_is_object(arguments))
        return malformed(err, err_size, "args.arguments: must be a map");
    const json_t *call_id = json_object_get(args, "call_id");
    if (call_id != NULL && (!json_is_string(call_id) || json_string_length(call_id) > MESH_ID_MAX))
        return malformed(err, err_size, "args.call_id: must be a string of at most 64 bytes");

    const char *tool = json_string_value(name);
    const char *schema_text = memory_claims_schema(tool);
    char msg[CLAIMS_MSG_MAX];
    if (schema_text == NULL) {
        char safe[CLAIMS_SAFE_MAX], umsg[CLAIMS_SAFE_MAX + 32];
        mesh_log_sanitize(tool, strlen(tool), safe, sizeof safe);
        snprintf(umsg, sizeof umsg, "unknown tool '%s'", safe);
        mesh_log_info(CLAIMS_SUBSYS, "tool.call unknown_tool: %s", umsg);
        return plan_tool_error(plan, MESH_EUNKNOWNTOOL, umsg, err, err_size);
    }
    json_t *schema = json_loads(schema_text, 0, NULL);
    json_t *empty = arguments == NULL ? json_object() : NULL;
    if (schema == NULL || (arguments == NULL && empty == NULL)) {
        json_decref(schema);
        json_decref(empty);
        return memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
    }
    int rc = mesh_schema_validate(schema, arguments != NULL ? arguments : empty, msg, sizeof msg);
    json_decref(schema);
    json_decref(empty);
    if (rc != 0) {
        if (mesh_log_get_level() <= MESH_LOG_INFO) {
            char safe[CLAIMS_SAFE_MAX];
            mesh_log_sanitize(msg, strlen(msg), safe, sizeof safe);
            mesh_log_info(CLAIMS_SUBSYS, "tool.call %s: invalid_tool_arguments: %s", tool, safe);
        }
        return plan_tool_error(plan, MESH_EBADARGS, msg, err, err_size);
    }
    if (strcmp(tool, "claim.register") == 0)
        return build_register(bc, arguments, a, plan, err, err_size);
    return build_get(arguments, a, plan, err, err_size);
}
