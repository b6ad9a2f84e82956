/*
 * openai_req.c - parsing of POST /v1/chat/completions bodies (openai_req.h).
 */
#include "openai_req.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_text.h"
#include "validate.h"

#define INVALID "invalid_request_error"

int gateway_oai_err_set(gateway_oai_err_t *err, int http_status, const char *type,
                        const char *param, const char *code, const char *fmt, ...)
{
    err->http_status = http_status;
    err->type = type;
    err->param = param;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return MESH_EPROTO;
}

char *gateway_oai_err_json(const gateway_oai_err_t *err)
{
    json_t *e =
        json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", err->message, "type",
                  err->type ? err->type : "server_error", "param", err->param, "code", err->code);
    if (!e)
        return NULL;
    /* s? packs NULL as null, which is what OpenAI sends for an absent param/code. */
    char *s = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    return s;
}

static int is_role(const char *r)
{
    static const char *const roles[] = {"system",    "developer", "user",
                                        "assistant", "tool",      "function"};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(r, roles[i]) == 0)
            return 1;
    return 0;
}

/*
 * The text of a message's content: a string, null (no text), or an array
 * of parts of which the "text" ones are joined with "\n" (other part types,
 * e.g. images, are not for digital workers and are refused).
 * Appends to *buf (grown, bounded by MESH_TEXT_MAX when bounded). 0 or the
 * reason in err.
 */
static int content_text(const json_t *content, size_t idx, char **buf, size_t *len, bool bounded,
                        gateway_oai_err_t *err)
{
    if (!content || json_is_null(content))
        return 0;
    const json_t *single = json_is_string(content) ? content : NULL;
    size_t n_parts = single ? 1 : json_is_array(content) ? json_array_size(content) : 0;
    if (!single && !json_is_array(content))
        return gateway_oai_err_set(err, 400, INVALID, "messages", "invalid_type",
                                   "messages[%zu].content: must be a string, null or an array of "
                                   "text parts",
                                   idx);
    if (n_parts > GATEWAY_OAI_PARTS_MAX)
        return gateway_oai_err_set(err, 400, INVALID, "messages", "too_many_parts",
                                   "messages[%zu].content: at most %d parts", idx,
                                   GATEWAY_OAI_PARTS_MAX);
    for (size_t k = 0; k < n_parts; k++) {
        const json_t *t = single;
        if (!t) {
            const json_t *part = json_array_get(content, k);
            const char *type = json_string_value(json_object_get(part, "type"));
            t = json_object_get(part, "text");
            if (!json_is_object(part) || !type || strcmp(type, "text") != 0 || !json_is_string(t))
                return gateway_oai_err_set(err, 400, INVALID, "messages", "invalid_type",
                                           "messages[%zu].content[%zu]: only {\"type\": \"text\", "
                                           "\"text\": string} parts are supported",
                                           idx, k);
        }
        size_t tl = json_string_length(t);
        size_t add = tl + (*len > 0 ? 1 : 0);
        if (bounded && *len + add > MESH_TEXT_MAX)
            return gateway_oai_err_set(err, 400, INVALID, "messages", "message_too_long",
                                       "messages[%zu]: the last user message is over %d bytes", idx,
                                       MESH_TEXT_MAX);
        if (!bounded) {
            *len += add;
            continue;
        }
        char *nb = realloc(*buf, *len + add + 1);
        if (!nb)
            return MESH_ENOMEM;
        *buf = nb;
        if (*len > 0)
            nb[(*len)++] = '\n';
        memcpy(nb + *len, json_string_value(t), tl);
        *len += tl;
        nb[*len] = '\0';
    }
    return 0;
}

static int parse_messages(const json_t *msgs, gateway_oai_req_t *out, gateway_oai_err_t *err)
{
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return gateway_oai_err_set(err, 400, INVALID, "messages", msgs ? "invalid_type" : "missing",
                                   "messages: required, a non-empty array of messages");
    if (json_array_size(msgs) > GATEWAY_OAI_MESSAGES_MAX)
        return gateway_oai_err_set(err, 400, INVALID, "messages", "too_many_messages",
                                   "messages: at most %d messages", GATEWAY_OAI_MESSAGES_MAX);
    size_t last_user = (size_t)-1;
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || !role || !is_role(role))
            return gateway_oai_err_set(err, 400, INVALID, "messages", "invalid_type",
                                       "messages[%zu]: must be an object with a role of system, "
                                       "developer, user, assistant or tool",
                                       i);
        size_t chars = 0;
        int rc = content_text(json_object_get(m, "content"), i, NULL, &chars, false, err);
        if (rc != 0)
            return rc;
        out->prompt_chars += chars;
        if (strcmp(role, "user") == 0) {
            out->n_user++;
            last_user = i;
        }
    }
    if (last_user == (size_t)-1)
        return gateway_oai_err_set(err, 400, INVALID, "messages", "no_user_message",
                                   "messages: at least one message with role user is required");
    int rc = content_text(json_object_get(json_array_get(msgs, last_user), "content"), last_user,
                          &out->text, &out->text_len, true, err);
    if (rc != 0)
        return rc;
    if (out->text_len == 0)
        return gateway_oai_err_set(err, 400, INVALID, "messages", "empty_message",
                                   "messages[%zu]: the last user message has no text", last_user);
    if (!mesh_utf8_valid(out->text, out->text_len) || memchr(out->text, '\0', out->text_len))
        return gateway_oai_err_set(err, 400, INVALID, "messages", "invalid_text",
                                   "messages[%zu]: text must be UTF-8 without NUL", last_user);
    return 0;
}

static int parse_body(const json_t *root, gateway_oai_req_t *out, gateway_oai_err_t *err)
{
    const json_t *model = json_object_get(root, "model");
    if (!json_is_string(model) ||
        !gateway_agent_valid(json_string_value(model), json_string_length(model)))
        return gateway_oai_err_set(
            err, 400, INVALID, "model", model ? "invalid_type" : "missing",
            "model: required, the name of a digital worker (GET /v1/models)");
    memcpy(out->model, json_string_value(model), json_string_length(model) + 1);

    const json_t *stream = json_object_get(root, "stream");
    if (stream && !json_is_null(stream) && !json_is_boolean(stream))
        return gateway_oai_err_set(err, 400, INVALID, "stream", "invalid_type",
                                   "stream: must be a boolean");
    out->stream = json_is_true(stream);
    const json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        const json_t *iu = json_object_get(so, "include_usage");
        if (!json_is_object(so) || (iu && !json_is_null(iu) && !json_is_boolean(iu)))
            return gateway_oai_err_set(err, 400, INVALID, "stream_options", "invalid_type",
                                       "stream_options: must be an object with a boolean "
                                       "include_usage");
        out->include_usage = json_is_true(iu);
    }
    const json_t *n = json_object_get(root, "n");
    if (n && !json_is_null(n) && !(json_is_integer(n) && json_integer_value(n) == 1))
        return gateway_oai_err_set(err, 400, INVALID, "n", "unsupported_value",
                                   "n: a digital worker gives one answer; only n = 1 is supported");
    const json_t *user = json_object_get(root, "user");
    if (user && !json_is_null(user)) {
        if (!json_is_string(user) || json_string_length(user) == 0)
            return gateway_oai_err_set(err, 400, INVALID, "user", "invalid_type",
                                       "user: must be a non-empty string");
        gateway_oai_user_conv(json_string_value(user), json_string_length(user), out->user);
    }
    return parse_messages(json_object_get(root, "messages"), out, err);
}

int gateway_oai_parse(const char *body, size_t len, gateway_oai_req_t *out, gateway_oai_err_t *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    json_error_t jerr;
    json_t *root = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!root)
        return gateway_oai_err_set(err, 400, INVALID, NULL, "invalid_json",
                                   "the body is not valid JSON: %s",
                                   len ? jerr.text : "empty body");
    int rc;
    if (!json_is_object(root))
        rc = gateway_oai_err_set(err, 400, INVALID, NULL, "invalid_json",
                                 "the body must be a JSON object");
    else
        rc = parse_body(root, out, err);
    json_decref(root);
    if (rc == MESH_ENOMEM)
        gateway_oai_err_set(err, 503, "server_error", NULL, "out_of_memory", "out of memory");
    if (rc != 0)
        gateway_oai_req_clear(out);
    return rc;
}

void gateway_oai_req_clear(gateway_oai_req_t *r)
{
    if (!r)
        return;
    free(r->text);
    r->text = NULL;
    r->text_len = 0;
}

/* Two 64-bit FNV-1a variants over the same bytes: 128 bits, written as 32 hex digits. */
typedef struct {
    uint64_t a, b;
} hash128_t;

static void h_init(hash128_t *h)
{
    h->a = 14695981039346656037ull;
    h->b = 0x6c62272e07bb0142ull;
}

static void h_add(hash128_t *h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h->a = (h->a ^ s[i]) * 1099511628211ull;
        h->b = (h->b ^ s[i]) * 0x100000001b3ull;
        h->b ^= h->b >> 29;
    }
}

static void h_hex(const hash128_t *h, char *out)
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h->a, (unsigned long long)h->b);
}

void gateway_oai_user_conv(const char *user, size_t len, char *out)
{
    if (mesh_conv_id_valid(user, len)) {
        memcpy(out, user, len);
        out[len] = '\0';
        return;
    }
    hash128_t h;
    h_init(&h);
    h_add(&h, user, len);
    char hex[33];
    h_hex(&h, hex);
    snprintf(out, MESH_CONV_MAX + 1, "user-%s", hex);
}

void gateway_oai_message_id(const char *conv, uint32_t n_user, const char *text, size_t text_len,
                            char *out)
{
    hash128_t h;
    h_init(&h);
    /* Separators keep ("ab", 1) and ("a", ...) apart. */
    h_add(&h, conv, strlen(conv));
    h_add(&h, "\x1f", 1);
    char num[16];
    int n = snprintf(num, sizeof(num), "%u", n_user);
    h_add(&h, num, (size_t)n);
    h_add(&h, "\x1f", 1);
    h_add(&h, text, text_len);
    char hex[33];
    h_hex(&h, hex);
    snprintf(out, MESH_ID_MAX + 1, "oa-%s", hex);
}
