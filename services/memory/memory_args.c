/*
 * memory_args.c - validation of the memory ops' args (memory_args.h).
 */
#include "memory_args.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_json.h"
#include "mesh/mesh_err.h"

/* Reserved state fields: maintained by the scripts, never set by a client
 * ("seq" numbers the log's messages: the idempotency markers rely on it). */
static const char *const s_reserved_fields[] = {"turns", "created", "updated", "seq"};

static const char *const s_roles[] = {"user", "assistant", "tool"};

/* Message keys holding short identifiers. */
static const char *const s_ident_keys[] = {"message_id", "agent", "name", "tool_call_id"};

static int fail(int rc, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int rc, char *err, size_t err_size, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* true when s[0..len) has no control bytes (identifiers end up in keys and logs). */
static bool printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static int check_object(const json_t *args, char *err, size_t err_size)
{
    if (args == NULL)
        return fail(MESH_EPROTO, err, err_size, "args: missing");
    if (!json_is_object(args))
        return fail(MESH_EPROTO, err, err_size, "args: must be a map");
    return 0;
}

/* A string in [1, max] bytes; when ident, without control bytes. */
static int get_str(const json_t *args, const char *key, bool required, size_t max, bool ident,
                   const char **out, size_t *len_out, char *err, size_t err_size)
{
    const json_t *v = json_object_get(args, key);
    *out = NULL;
    if (len_out != NULL)
        *len_out = 0;
    if (v == NULL) {
        if (required)
            return fail(MESH_EPROTO, err, err_size, "%s: missing", key);
        return 0;
    }
    if (!json_is_string(v))
        return fail(MESH_EPROTO, err, err_size, "%s: must be a string", key);
    size_t len = json_string_length(v);
    if (len == 0)
        return fail(MESH_EPROTO, err, err_size, "%s: must not be empty", key);
    if (len > max)
        return fail(MESH_ETOOBIG, err, err_size, "%s: longer than %zu bytes", key, max);
    if (ident && !printable(json_string_value(v), len))
        return fail(MESH_EPROTO, err, err_size, "%s: contains control characters", key);
    *out = json_string_value(v);
    if (len_out != NULL)
        *len_out = len;
    return 0;
}

/* An unsigned integer in [min, max], def when absent. */
static int get_uint(const json_t *args, const char *key, uint64_t def, uint64_t min, uint64_t max,
                    uint64_t *out, char *err, size_t err_size)
{
    const json_t *v = json_object_get(args, key);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return fail(MESH_EPROTO, err, err_size, "%s: must be an unsigned integer", key);
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
        return fail(MESH_EPROTO, err, err_size, "%s: must be between %llu and %llu", key,
                    (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)i;
    return 0;
}

int memory_args_begin(const json_t *args, memory_begin_args_t *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    uint64_t window = 0, lease = 0;
    int rc = check_object(args, err, err_size);
    if (rc == 0)
        rc = get_str(args, "message_id", true, MESH_ID_MAX, true, &out->message_id, NULL, err,
                     err_size);
    if (rc == 0)
        rc = get_str(args, "text", true, MESH_TEXT_MAX, false, &out->text, &out->text_len, err,
                     err_size);
    if (rc == 0)
        rc = get_str(args, "owner", true, MEMORY_OWNER_MAX, true, &out->owner, NULL, err, err_size);
    if (rc == 0)
        rc = get_uint(args, "window", MEMORY_WINDOW_DEFAULT, 0, MEMORY_WINDOW_MAX, &window, err,
                      err_size);
    if (rc == 0)
        rc = get_uint(args, "lease_ms", MEMORY_LEASE_DEFAULT_MS, 1, MEMORY_LEASE_MAX_MS, &lease,
                      err, err_size);
    if (rc != 0)
        return rc;
    out->window = (uint32_t)window;
    out->lease_ms = lease;
    return 0;
}

static bool reserved_field(const char *k)
{
    for (size_t i = 0; i < sizeof s_reserved_fields / sizeof s_reserved_fields[0]; i++) {
        if (strcmp(k, s_reserved_fields[i]) == 0)
            return true;
    }
    return false;
}

static int check_state(const json_t *state, char *err, size_t err_size)
{
    if (!json_is_object(state))
        return fail(MESH_EPROTO, err, err_size, "state: must be a map of strings");
    if (json_object_size(state) > MEMORY_STATE_FIELDS_MAX)
        return fail(MESH_ETOOBIG, err, err_size, "state: more than %d fields",
                    MEMORY_STATE_FIELDS_MAX);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)state, k, v)
    {
        size_t klen = strlen(k);
        if (klen == 0 || klen > MEMORY_STATE_KEY_MAX || !printable(k, klen))
            return fail(MESH_EPROTO, err, err_size,
                        "state: field names must be 1..%d printable bytes", MEMORY_STATE_KEY_MAX);
        if (reserved_field(k))
            return fail(MESH_EPROTO, err, err_size, "state.%s: reserved field", k);
        if (!json_is_string(v))
            return fail(MESH_EPROTO, err, err_size, "state.%s: must be a string", k);
        if (json_string_length(v) > MEMORY_STATE_VALUE_MAX)
            return fail(MESH_ETOOBIG, err, err_size, "state.%s: longer than %d bytes", k,
                        MEMORY_STATE_VALUE_MAX);
    }
    return 0;
}

int memory_args_end(const json_t *args, memory_end_args_t *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    int rc = check_object(args, err, err_size);
    if (rc == 0)
        rc = get_str(args, "message_id", true, MESH_ID_MAX, true, &out->message_id, NULL, err,
                     err_size);
    if (rc == 0)
        rc = get_str(args, "owner", true, MEMORY_OWNER_MAX, true, &out->owner, NULL, err, err_size);
    if (rc != 0)
        return rc;

    const json_t *messages = json_object_get(args, "messages");
    if (messages != NULL) {
        if (!json_is_array(messages))
            return fail(MESH_EPROTO, err, err_size, "messages: must be an array");
        if (json_array_size(messages) > MEMORY_MESSAGES_MAX)
            return fail(MESH_ETOOBIG, err, err_size, "messages: more than %d items",
                        MEMORY_MESSAGES_MAX);
        out->messages = messages;
    }
    const json_t *state = json_object_get(args, "state");
    if (state != NULL) {
        rc = check_state(state, err, err_size);
        if (rc != 0)
            return rc;
        out->state = state;
    }
    const json_t *reply = json_object_get(args, "reply");
    if (reply == NULL)
        return fail(MESH_EPROTO, err, err_size, "reply: missing");
    if (!json_is_object(reply))
        return fail(MESH_EPROTO, err, err_size, "reply: must be a map");
    out->reply = reply;
    return 0;
}

int memory_args_abort(const json_t *args, memory_abort_args_t *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    int rc = check_object(args, err, err_size);
    if (rc == 0)
        rc = get_str(args, "message_id", true, MESH_ID_MAX, true, &out->message_id, NULL, err,
                     err_size);
    if (rc == 0)
        rc = get_str(args, "owner", true, MEMORY_OWNER_MAX, true, &out->owner, NULL, err, err_size);
    return rc;
}

int memory_args_renew(const json_t *args, memory_renew_args_t *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    uint64_t lease = 0;
    int rc = check_object(args, err, err_size);
    if (rc == 0)
        rc = get_str(args, "owner", true, MEMORY_OWNER_MAX, true, &out->owner, NULL, err, err_size);
    if (rc == 0)
        rc = get_uint(args, "lease_ms", MEMORY_LEASE_DEFAULT_MS, 1, MEMORY_LEASE_MAX_MS, &lease,
                      err, err_size);
    if (rc == 0)
        out->lease_ms = lease;
    return rc;
}

int memory_args_get(const json_t *args, memory_get_args_t *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    out->limit = MEMORY_LIMIT_DEFAULT;
    if (args == NULL)
        return 0;
    if (!json_is_object(args))
        return fail(MESH_EPROTO, err, err_size, "args: must be a map");
    uint64_t limit = 0;
    int rc =
        get_uint(args, "limit", MEMORY_LIMIT_DEFAULT, 0, MEMORY_LIMIT_MAX, &limit, err, err_size);
    if (rc == 0)
        out->limit = (uint32_t)limit;
    return rc;
}

/* ------------------------------------------------------------ messages */

static bool valid_role(const char *s)
{
    for (size_t i = 0; i < sizeof s_roles / sizeof s_roles[0]; i++) {
        if (strcmp(s, s_roles[i]) == 0)
            return true;
    }
    return false;
}

static int check_message(const json_t *msg, size_t index, char *err, size_t err_size)
{
    if (!json_is_object(msg))
        return fail(MESH_EPROTO, err, err_size, "messages[%zu]: must be a map", index);
    const json_t *role = json_object_get(msg, "role");
    if (!json_is_string(role) || !valid_role(json_string_value(role)))
        return fail(MESH_EPROTO, err, err_size,
                    "messages[%zu].role: must be user, assistant or tool", index);
    const json_t *text = json_object_get(msg, "text");
    if (text != NULL) {
        if (!json_is_string(text))
            return fail(MESH_EPROTO, err, err_size, "messages[%zu].text: must be a string", index);
        if (json_string_length(text) > MESH_TEXT_MAX)
            return fail(MESH_ETOOBIG, err, err_size, "messages[%zu].text: longer than %d bytes",
                        index, MESH_TEXT_MAX);
    }
    const json_t *ts = json_object_get(msg, "ts");
    if (ts != NULL && (!json_is_integer(ts) || json_integer_value(ts) < 0))
        return fail(MESH_EPROTO, err, err_size, "messages[%zu].ts: must be an unsigned integer",
                    index);
    for (size_t i = 0; i < sizeof s_ident_keys / sizeof s_ident_keys[0]; i++) {
        const json_t *v = json_object_get(msg, s_ident_keys[i]);
        if (v == NULL)
            continue;
        if (!json_is_string(v))
            return fail(MESH_EPROTO, err, err_size, "messages[%zu].%s: must be a string", index,
                        s_ident_keys[i]);
        if (json_string_length(v) > MEMORY_IDENT_MAX)
            return fail(MESH_ETOOBIG, err, err_size, "messages[%zu].%s: longer than %d bytes",
                        index, s_ident_keys[i], MEMORY_IDENT_MAX);
    }
    const json_t *ok = json_object_get(msg, "ok");
    if (ok != NULL && !json_is_boolean(ok))
        return fail(MESH_EPROTO, err, err_size, "messages[%zu].ok: must be a boolean", index);
    const json_t *calls = json_object_get(msg, "tool_calls");
    if (calls != NULL) {
        if (!json_is_array(calls))
            return fail(MESH_EPROTO, err, err_size, "messages[%zu].tool_calls: must be an array",
                        index);
        if (json_array_size(calls) > MEMORY_TOOL_CALLS_MAX)
            return fail(MESH_ETOOBIG, err, err_size, "messages[%zu].tool_calls: more than %d items",
                        index, MEMORY_TOOL_CALLS_MAX);
        size_t i;
        const json_t *call;
        json_array_foreach(calls, i, call)
        {
            if (!json_is_object(call))
                return fail(MESH_EPROTO, err, err_size,
                            "messages[%zu].tool_calls[%zu]: must be a map", index, i);
        }
    }
    return 0;
}

char *memory_message_encode(const json_t *msg, size_t index, uint64_t now_ms, size_t *len_out,
                            int *rc_out, char *err, size_t err_size)
{
    int rc = check_message(msg, index, err, err_size);
    if (rc != 0) {
        *rc_out = rc;
        return NULL;
    }
    /*
     * The message as it is, with "ts" added at the end when absent: the text
     * json_dumps() gives for a copy with "ts" set, written directly.
     */
    mesh_jbuf_t b = {0};
    mesh_jbuf_value(&b, msg, MESH_JSON_PRECISION_MAX);
    if (json_object_get(msg, "ts") == NULL && b.err == 0) {
        b.len--; /* reopen the object: drop its '}' */
        if (json_object_size(msg) > 0)
            mesh_jbuf_raw(&b, ",", 1);
        mesh_jbuf_raw(&b, "\"ts\":", 5);
        mesh_jbuf_u64(&b, now_ms);
        mesh_jbuf_raw(&b, "}", 1);
    }
    size_t len = 0;
    char *s = mesh_jbuf_finish(&b, &len, &rc);
    if (s == NULL) {
        *rc_out = fail(rc, err, err_size, "messages[%zu]: %s", index,
                       rc == MESH_ENOMEM ? "out of memory" : "cannot encode");
        return NULL;
    }
    if (len > MEMORY_MESSAGE_JSON_MAX) {
        free(s);
        *rc_out = fail(MESH_ETOOBIG, err, err_size, "messages[%zu]: larger than %d bytes as JSON",
                       index, MEMORY_MESSAGE_JSON_MAX);
        return NULL;
    }
    *len_out = len;
    *rc_out = 0;
    return s;
}

bool memory_message_in_ctx(const json_t *msg)
{
    const char *role = json_string_value(json_object_get(msg, "role"));
    if (role == NULL)
        return false;
    if (strcmp(role, "user") == 0)
        return true;
    return strcmp(role, "assistant") == 0 &&
           json_array_size(json_object_get(msg, "tool_calls")) == 0;
}

char *memory_user_message_encode(const memory_begin_args_t *a, uint64_t now_ms, size_t *len_out)
{
    /* {"role":"user","text":...,"message_id":...,"ts":...}, as json_dumps() would write it. */
    mesh_jbuf_t b = {0};
    mesh_jbuf_raw(&b, "{\"role\":\"user\",\"text\":", 22);
    mesh_jbuf_string(&b, a->text, a->text_len);
    mesh_jbuf_raw(&b, ",\"message_id\":", 14);
    mesh_jbuf_string(&b, a->message_id, strlen(a->message_id));
    mesh_jbuf_raw(&b, ",\"ts\":", 6);
    mesh_jbuf_u64(&b, now_ms);
    mesh_jbuf_raw(&b, "}", 1);
    int rc;
    return mesh_jbuf_finish(&b, len_out, &rc);
}
