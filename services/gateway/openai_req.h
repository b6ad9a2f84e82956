/*
 * openai_req.h - the request side of the OpenAI-compatible front door:
 * parsing and checking a POST /v1/chat/completions body, and the ids the
 * gateway derives from it (docs/gateway.md, "OpenAI-compatible API").
 *
 * Pure functions over a body: no I/O, unit-tested on their own
 * (tests/unit/test_gateway_openai.c).
 */
#ifndef GATEWAY_OPENAI_REQ_H
#define GATEWAY_OPENAI_REQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/mesh_limits.h"

/* Messages accepted in one request. */
#define GATEWAY_OAI_MESSAGES_MAX 1024
/* Content parts of one message. */
#define GATEWAY_OAI_PARTS_MAX 64
/* Error message bytes. */
#define GATEWAY_OAI_ERRMSG_MAX 200

typedef struct {
    char model[65];               /* the digital worker, 1..64 of [A-Za-z0-9._-] */
    char *text;                   /* last user message (parts joined), owned, NUL-terminated */
    size_t text_len;              /* 1..MESH_TEXT_MAX */
    uint32_t n_user;              /* user messages in `messages` */
    size_t prompt_chars;          /* bytes of every message's text (usage estimate) */
    bool stream;                  /* "stream": true */
    bool include_usage;           /* "stream_options": {"include_usage": true} */
    char user[MESH_CONV_MAX + 1]; /* "user" mapped to a conversation id ("" when absent) */
} gateway_oai_req_t;

/* An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}. */
typedef struct {
    int http_status;
    const char *type;  /* "invalid_request_error", ... */
    const char *param; /* the offending field, or NULL */
    const char *code;  /* short machine code, or NULL */
    char message[GATEWAY_OAI_ERRMSG_MAX + 1];
} gateway_oai_err_t;

/*
 * Parse body[0..len). 0 and *out filled (free with gateway_oai_req_clear),
 * or MESH_EPROTO with *err set (HTTP 400, invalid_request_error) for: not a
 * JSON object (duplicate keys refused), model missing or not a valid name,
 * messages missing/empty/not an array/over GATEWAY_OAI_MESSAGES_MAX, a
 * message that is not an object, a role that is not a known string, content
 * that is not a string, null or an array of {"type":"text","text":str}
 * parts, no user message, the last user message empty, over MESH_TEXT_MAX
 * bytes or not UTF-8, stream/stream_options/include_usage of the wrong
 * type, n other than 1, user not a string. MESH_ENOMEM on allocation.
 */
int gateway_oai_parse(const char *body, size_t len, gateway_oai_req_t *out, gateway_oai_err_t *err);

void gateway_oai_req_clear(gateway_oai_req_t *r);

/*
 * `user` -> conversation id: used as is when it is a valid id (1..128 of
 * [A-Za-z0-9._:-]), else "user-" + 32 hex digits of a hash of it (stable,
 * so the same user keeps one conversation). out has MESH_CONV_MAX + 1 bytes.
 */
void gateway_oai_user_conv(const char *user, size_t len, char *out);

/*
 * The message id of a request without X-Mesh-Message-Id: "oa-" + 32 hex
 * digits of a hash of (conversation, number of user messages, last user
 * text). A client that retries the same request (same conversation and
 * messages) gets the same id, so the router answers it from the stored
 * reply instead of running the turn twice. out has MESH_ID_MAX + 1 bytes.
 */
void gateway_oai_message_id(const char *conv, uint32_t n_user, const char *text, size_t text_len,
                            char *out);

/* Fill err (message printf-style). Returns MESH_EPROTO for convenience. */
int gateway_oai_err_set(gateway_oai_err_t *err, int http_status, const char *type,
                        const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Write {"error": {...}} of err into a new string (free()), or NULL. */
char *gateway_oai_err_json(const gateway_oai_err_t *err);

#endif
