/*
 * route_people.c - the people API under /v1/handoff/ (route_people.h,
 * docs/people-api.md).
 *
 * Each endpoint is one or two memory requests through the gateway's mesh
 * client (same tenant, traceparent and deadline rules as every route):
 *
 *   queue       handoff.list {limit}
 *   transcript  conv.get {limit}
 *   claim       conv.get {limit: 0} (404 check), handoff.claim {person}
 *   reply       conv.get {limit: 0} (404 check + the bound channel),
 *               handoff.reply {person, text, message_id}, then
 *               gateway_channels_deliver to the conversation's channel
 *   note        conv.get {limit: 0}, handoff.note {person, text}
 *   release     conv.get {limit: 0}, handoff.release {person, summary}
 *
 * Errors use the gateway's JSON error shape: 400 bad input, 401 no/unknown
 * key, 404 unknown conversation, 409 conflict (memory's ESTATE: not
 * pending, held by someone else, not held), 503/504 as the other routes.
 *
 * A request has its own context (people_call_t) rather than a pooled
 * gateway_call_t: it carries the op, the person and, for a reply, the
 * text to deliver across its two memory requests.
 */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "channels.h"
#include "conv_seq.h"
#include "gateway_internal.h"
#include "json_io.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "route_people.h"
#include "validate.h"

#define PEOPLE_SUBSYS "people"

typedef enum {
    PEOPLE_QUEUE = 0,
    PEOPLE_TRANSCRIPT,
    PEOPLE_CLAIM,
    PEOPLE_REPLY,
    PEOPLE_NOTE,
    PEOPLE_RELEASE,
    PEOPLE_EVENTS, /* GET /v1/handoff/events: route_events.c */
} people_op_t;

typedef struct {
    gateway_t *gw;
    gateway_http_conn_t *conn;
    uint64_t handle;
    people_op_t op;
    bool checked;        /* the conv.get existence check is done */
    mesh_request_t base; /* tenant, traceparent, deadline for every request */
    char conv[MESH_CONV_MAX + 1];
    char person[GATEWAY_PEOPLE_NAME_MAX + 1];
    char message_id[MESH_ID_MAX + 1];
    uint32_t limit;
    json_t *body;  /* the parsed request body (text/summary borrowed from it) */
    char *channel; /* bound channel read by the check (reply), or NULL */
    json_t *to;    /* bound channel address (reply), or NULL */
} people_call_t;

static void people_free(people_call_t *pc)
{
    if (!pc)
        return;
    json_decref(pc->body);
    json_decref(pc->to);
    free(pc->channel);
    free(pc);
}

static void people_abort(gateway_http_conn_t *conn, void *arg)
{
    (void)conn;
    people_call_t *pc = arg;
    mesh_client_cancel(pc->gw->client, pc->handle);
    pc->gw->n_calls--;
    people_free(pc);
}

static void people_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg);

/* Send op with args (consumed) to memory. On failure answers and frees pc. */
static void people_send(people_call_t *pc, const char *op, json_t *args, bool idem)
{
    mesh_request_t req = pc->base;
    req.id[0] = '\0';
    req.args = args;
    req.idem = idem;
    snprintf(req.op, sizeof(req.op), "%s", op);
    if (pc->conv[0])
        memcpy(req.conv, pc->conv, sizeof(req.conv));
    int rc =
        args ? mesh_client_request(pc->gw->client, "memory", &req, people_reply, pc, &pc->handle)
             : MESH_ENOMEM;
    json_decref(args);
    if (rc == 0) {
        pc->gw->n_calls++;
        gateway_http_conn_on_abort(pc->conn, people_abort, pc);
        return;
    }
    if (rc == MESH_ENOWORKER)
        gateway_http_conn_respond_error(pc->conn, 503, "no_router", "no router is reachable",
                                        "Retry-After: 1\r\n");
    else
        gateway_respond_status(pc->conn, rc, NULL);
    people_free(pc);
}

static void respond_mesh_error(people_call_t *pc, const mesh_reply_t *rep)
{
    const char *msg = rep->err[0] ? rep->err : mesh_strerror(rep->status);
    switch (rep->status) {
    case MESH_ENOTFOUND:
        gateway_http_conn_respond_error(pc->conn, 404, "not_found", "no such conversation", NULL);
        break;
    case MESH_ESTATE:
        gateway_http_conn_respond_error(pc->conn, 409, "conflict", msg, NULL);
        break;
    case MESH_EPROTO:
    case MESH_ETOOBIG:
        gateway_http_conn_respond_error(pc->conn, 400, "invalid_request", msg, NULL);
        break;
    default:
        gateway_respond_status(pc->conn, rep->status, rep->err);
        break;
    }
}

/* A JSON value of the state hash (slots, records): parsed, {} when absent or not JSON. */
static json_t *state_json(const json_t *state, const char *key)
{
    const char *s = json_string_value(json_object_get(state, key));
    json_t *v = s && s[0] ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_object();
}

static json_t *str_or_null(const json_t *state, const char *key)
{
    const json_t *v = json_object_get(state, key);
    return json_is_string(v) && json_string_length(v) > 0 ? json_incref((json_t *)v) : json_null();
}

/*
 * The transcript: every message with its seq (its sequence number in the
 * conversation, conv_seq.h), the state as stored, and its parsed parts (slots, records, the
 * handoff) for the console.
 */
static void respond_transcript(people_call_t *pc, const json_t *data)
{
    const json_t *state = json_object_get(data, "state");
    const json_t *msgs = json_object_get(data, "messages");
    if (!json_is_array(msgs)) {
        gateway_http_conn_respond_error(pc->conn, 502, "bad_gateway",
                                        "the memory reply has no message list", NULL);
        return;
    }
    json_int_t total = json_integer_value(json_object_get(data, "total"));
    json_int_t first = gateway_conv_last_seq(data) - (json_int_t)json_array_size(msgs) + 1;
    json_t *list = json_array();
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m)
    {
        json_t *c = json_is_object(m) ? json_copy((json_t *)m) : NULL;
        if (c) {
            json_object_set_new(c, "seq", json_integer(first + (json_int_t)i));
            json_array_append_new(list, c);
        }
    }
    const char *ho = json_string_value(json_object_get(state, "handoff"));
    const char *at = json_string_value(json_object_get(state, "handoff_at"));
    json_t *out = json_pack(
        "{s:s, s:o, s:o, s:o, s:o, s:{s:s, s:o, s:I, s:o}, s:o, s:o, s:o, s:o, s:I}",
        "conversation_id", pc->conv, "agent", str_or_null(state, "agent"), "mode",
        str_or_null(state, "mode"), "slots", state_json(state, "slots"), "records",
        state_json(state, "records"), "handoff", "state", ho && ho[0] ? ho : "bot", "reason",
        str_or_null(state, "handoff_reason"), "since", (json_int_t)(at ? strtoll(at, NULL, 10) : 0),
        "person", str_or_null(state, "handoff_person"), "channel", str_or_null(state, "channel"),
        "channel_to", state_json(state, "channel_to"), "state",
        json_is_object(state) ? json_incref((json_t *)state) : json_object(), "messages", list,
        "total", total);
    if (!out) {
        gateway_http_conn_respond_error(pc->conn, 500, "internal_error", "out of memory", NULL);
        return;
    }
    gateway_respond_json(pc->gw, pc->conn, 200, out);
    json_decref(out);
}

/* After handoff.reply: hand the text to the conversation's channel. */
static void respond_reply(people_call_t *pc, const json_t *data)
{
    bool dup = json_is_true(json_object_get(data, "duplicate"));
    const char *text = json_string_value(json_object_get(pc->body, "text"));
    const char *status = "not_needed";
    const char *error = NULL;
    if (!dup && pc->channel && strcmp(pc->channel, "web") != 0) {
        int rc =
            gateway_channels_deliver(pc->gw, pc->conv, pc->channel, pc->to, text, strlen(text));
        if (rc == 0) {
            status = "queued";
        } else {
            /* The reply is in the log either way; the person sees why it did not go out. */
            status = "failed";
            error = rc < 0 ? mesh_strerror(rc) : "delivery refused";
            mesh_log_warn(PEOPLE_SUBSYS, "conv %s: reply by %s not queued on channel %s: %s",
                          pc->conv, pc->person, pc->channel, error);
        }
    } else if (dup) {
        status = "duplicate";
    }
    json_t *out = json_pack("{s:s, s:s, s:b, s:{s:o, s:s, s:o}}", "conversation_id", pc->conv,
                            "message_id", pc->message_id, "duplicate", dup, "delivery", "channel",
                            pc->channel ? json_string(pc->channel) : json_null(), "status", status,
                            "error", error ? json_string(error) : json_null());
    if (!out) {
        gateway_http_conn_respond_error(pc->conn, 500, "internal_error", "out of memory", NULL);
        return;
    }
    gateway_respond_json(pc->gw, pc->conn, 200, out);
    json_decref(out);
}

/* The existence check passed: send the op itself. */
static void send_main(people_call_t *pc)
{
    const char *text;
    switch (pc->op) {
    case PEOPLE_CLAIM:
        people_send(pc, "handoff.claim", json_pack("{s:s}", "person", pc->person), false);
        return;
    case PEOPLE_REPLY:
        text = json_string_value(json_object_get(pc->body, "text"));
        /* Idempotent on message_id: safe to retry on another worker. */
        people_send(pc, "handoff.reply",
                    json_pack("{s:s, s:s, s:s}", "person", pc->person, "text", text, "message_id",
                              pc->message_id),
                    true);
        return;
    case PEOPLE_NOTE:
        text = json_string_value(json_object_get(pc->body, "text"));
        people_send(pc, "handoff.note", json_pack("{s:s, s:s}", "person", pc->person, "text", text),
                    false);
        return;
    case PEOPLE_RELEASE:
        text = json_string_value(json_object_get(pc->body, "summary"));
        people_send(pc, "handoff.release",
                    json_pack("{s:s, s:s}", "person", pc->person, "summary", text), false);
        return;
    default:
        gateway_http_conn_respond_error(pc->conn, 500, "internal_error", "bad people op", NULL);
        people_free(pc);
        return;
    }
}

/* The conv.get check answered: remember the bound channel (reply). */
static void keep_channel(people_call_t *pc, const json_t *data)
{
    const json_t *state = json_object_get(data, "state");
    const char *ch = json_string_value(json_object_get(state, "channel"));
    const char *to = json_string_value(json_object_get(state, "channel_to"));
    if (ch && ch[0])
        pc->channel = strdup(ch);
    if (to && to[0])
        pc->to = json_loads(to, 0, NULL);
    if (!pc->to)
        pc->to = json_object();
}

static void people_reply(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)client;
    if (!final)
        return;
    people_call_t *pc = arg;
    pc->gw->n_calls--;
    gateway_http_conn_on_abort(pc->conn, NULL, NULL);
    if (rep->status != 0) {
        respond_mesh_error(pc, rep);
        people_free(pc);
        return;
    }
    if (!pc->checked && pc->op != PEOPLE_QUEUE && pc->op != PEOPLE_TRANSCRIPT) {
        pc->checked = true;
        keep_channel(pc, rep->data);
        send_main(pc); /* frees pc on failure */
        return;
    }
    switch (pc->op) {
    case PEOPLE_QUEUE:
        gateway_respond_json(pc->gw, pc->conn, 200, rep->data);
        break;
    case PEOPLE_TRANSCRIPT:
        respond_transcript(pc, rep->data);
        break;
    case PEOPLE_REPLY:
        respond_reply(pc, rep->data);
        break;
    case PEOPLE_NOTE: {
        json_t *out = json_pack("{s:s, s:b}", "conversation_id", pc->conv, "noted", 1);
        gateway_respond_json(pc->gw, pc->conn, 200, out);
        json_decref(out);
        break;
    }
    default: /* claim, release: memory's data as is */
        gateway_respond_json(pc->gw, pc->conn, 200, rep->data);
        break;
    }
    mesh_log_info(PEOPLE_SUBSYS, "%s: op %d on %s done", pc->person, (int)pc->op,
                  pc->conv[0] ? pc->conv : "-");
    people_free(pc);
}

/* ---- request parsing ---------------------------------------------------- */

/* body[key] as a string of 1..GATEWAY_PEOPLE_TEXT_MAX bytes (400 answered when not). */
static bool body_text(gateway_http_conn_t *conn, const json_t *body, const char *key)
{
    const json_t *v = json_object_get(body, key);
    char msg[96];
    if (!json_is_string(v) || json_string_length(v) == 0) {
        snprintf(msg, sizeof(msg), "%s: a non-empty string is required", key);
        gateway_http_conn_respond_error(conn, 400, "invalid_request", msg, NULL);
        return false;
    }
    if (json_string_length(v) > GATEWAY_PEOPLE_TEXT_MAX) {
        snprintf(msg, sizeof(msg), "%s: longer than %d bytes", key, GATEWAY_PEOPLE_TEXT_MAX);
        gateway_http_conn_respond_error(conn, 413, "too_large", msg, NULL);
        return false;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(msg, sizeof(msg), "%s: must not contain NUL", key);
        gateway_http_conn_respond_error(conn, 400, "invalid_request", msg, NULL);
        return false;
    }
    return true;
}

/* A fresh message id "h-<16 hex>" for a reply that did not bring one. */
static void new_message_id(char *out, size_t size)
{
    unsigned char rnd[8] = {0};
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        uint64_t t = uv_hrtime();
        memcpy(rnd, &t, sizeof(rnd));
    }
    snprintf(out, size, "h-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
}

/* Parse and check the body of a POST for op; false when answered. */
static bool parse_body(people_call_t *pc, const gateway_http_req_t *req)
{
    char err[128];
    if (req->body_len > 0) {
        if (gateway_json_parse_object(req->body, req->body_len, &pc->body, err, sizeof(err)) != 0) {
            gateway_http_conn_respond_error(pc->conn, 400, "invalid_json", err, NULL);
            return false;
        }
    } else {
        pc->body = json_object();
        if (!pc->body) {
            gateway_http_conn_respond_error(pc->conn, 503, "out_of_memory", "out of memory", NULL);
            return false;
        }
    }
    if (pc->op == PEOPLE_NOTE || pc->op == PEOPLE_REPLY)
        return body_text(pc->conn, pc->body, "text");
    if (pc->op == PEOPLE_RELEASE) {
        /* A release without a summary records a short default one. */
        if (json_object_get(pc->body, "summary") == NULL)
            json_object_set_new(pc->body, "summary", json_string("released without a summary"));
        return body_text(pc->conn, pc->body, "summary");
    }
    return true;
}

static bool parse_message_id(people_call_t *pc)
{
    const json_t *v = json_object_get(pc->body, "message_id");
    if (v == NULL || json_is_null(v)) {
        new_message_id(pc->message_id, sizeof(pc->message_id));
        return true;
    }
    if (!json_is_string(v) ||
        !gateway_message_id_valid(json_string_value(v), json_string_length(v))) {
        gateway_http_conn_respond_error(pc->conn, 400, "invalid_message_id",
                                        "message_id must be 1..64 bytes of [A-Za-z0-9._:-]", NULL);
        return false;
    }
    memcpy(pc->message_id, json_string_value(v), json_string_length(v) + 1);
    return true;
}

static bool parse_limit(people_call_t *pc, const gateway_http_req_t *req, uint32_t def,
                        uint32_t max)
{
    const char *val;
    size_t vlen;
    uint64_t v = def;
    if (gateway_query_param(req->query, req->query_len, "limit", &val, &vlen) &&
        gateway_parse_uint(val, vlen, UINT64_MAX / 16, &v) < 0) {
        char msg[64];
        snprintf(msg, sizeof(msg), "limit must be an integer 1..%u", (unsigned)max);
        gateway_http_conn_respond_error(pc->conn, 400, "invalid_parameter", msg, NULL);
        return false;
    }
    pc->limit = (uint32_t)(v > max ? max : v);
    return true;
}

/* ---- dispatch ----------------------------------------------------------- */

static bool method_is(gateway_http_conn_t *conn, const gateway_http_req_t *req, unsigned method,
                      const char *allow)
{
    if (req->method == method)
        return true;
    gateway_http_conn_respond_error(conn, 405, "method_not_allowed",
                                    "method not allowed for this path", allow);
    return false;
}

static bool seg_is(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

void gateway_route_handoff(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req)
{
    char person[GATEWAY_PEOPLE_NAME_MAX + 1];
    const size_t plen = sizeof(GATEWAY_HANDOFF_PREFIX) - 1;
    const char *rest = req->path + plen;
    size_t rlen = req->path_len - plen;
    const char *slash = memchr(rest, '/', rlen);
    size_t id_len = slash ? (size_t)(slash - rest) : rlen;
    const char *action = slash ? slash + 1 : NULL;
    size_t alen = slash ? rlen - id_len - 1 : 0;

    people_op_t op;
    if (!slash && seg_is(rest, rlen, "queue"))
        op = PEOPLE_QUEUE;
    else if (!slash && seg_is(rest, rlen, "events"))
        op = PEOPLE_EVENTS;
    else if (!slash)
        op = PEOPLE_TRANSCRIPT;
    else if (seg_is(action, alen, "claim"))
        op = PEOPLE_CLAIM;
    else if (seg_is(action, alen, "reply"))
        op = PEOPLE_REPLY;
    else if (seg_is(action, alen, "note"))
        op = PEOPLE_NOTE;
    else if (seg_is(action, alen, "release"))
        op = PEOPLE_RELEASE;
    else {
        gateway_http_conn_respond_error(conn, 404, "not_found", "no such resource", NULL);
        return;
    }
    bool is_post =
        op == PEOPLE_CLAIM || op == PEOPLE_REPLY || op == PEOPLE_NOTE || op == PEOPLE_RELEASE;
    if (!method_is(conn, req, is_post ? HTTP_POST : HTTP_GET,
                   is_post ? "Allow: POST\r\n" : "Allow: GET\r\n"))
        return;
    if (!gateway_people_auth(conn, req, person, sizeof(person)))
        return;
    if (op == PEOPLE_EVENTS) {
        gateway_route_handoff_events(gw, conn, req, person);
        return;
    }
    if (op != PEOPLE_QUEUE && !mesh_conv_id_valid(rest, id_len)) {
        gateway_http_conn_respond_error(conn, 400, "invalid_conversation_id",
                                        "conversation id must be 1..128 bytes of [A-Za-z0-9._:-]",
                                        NULL);
        return;
    }
    people_call_t *pc = calloc(1, sizeof(*pc));
    if (!pc) {
        gateway_http_conn_respond_error(conn, 503, "out_of_memory", "out of memory", NULL);
        return;
    }
    pc->gw = gw;
    pc->conn = conn;
    pc->op = op;
    memcpy(pc->person, person, strlen(person) + 1);
    if (op != PEOPLE_QUEUE) {
        memcpy(pc->conv, rest, id_len);
        pc->conv[id_len] = '\0';
    }
    if (gateway_request_common(gw, conn, req, &pc->base) < 0)
        goto refused;
    switch (op) {
    case PEOPLE_QUEUE:
        if (!parse_limit(pc, req, 50, GATEWAY_PEOPLE_LIST_MAX))
            goto refused;
        people_send(pc, "handoff.list", json_pack("{s:I}", "limit", (json_int_t)pc->limit), true);
        return;
    case PEOPLE_TRANSCRIPT:
        if (!parse_limit(pc, req, GATEWAY_PEOPLE_TRANSCRIPT_MAX, GATEWAY_PEOPLE_TRANSCRIPT_MAX))
            goto refused;
        people_send(pc, "conv.get", json_pack("{s:I}", "limit", (json_int_t)pc->limit), true);
        return;
    default:
        if (!parse_body(pc, req))
            goto refused;
        if (op == PEOPLE_REPLY && !parse_message_id(pc))
            goto refused;
        /* The existence check (404) first; it also reads the bound channel. */
        people_send(pc, "conv.get", json_pack("{s:i}", "limit", 0), true);
        return;
    }
refused:
    people_free(pc);
}
