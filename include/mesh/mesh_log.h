/*
 * mesh_log.h - leveled logging to stderr, one line per event.
 *
 * Two line formats (mesh_log_set_format; services read MESH_LOG_FORMAT):
 *   json (default): one JSON object per line,
 *     {"ts":"<ISO8601 UTC ms>","level":"info","service":"router","event":"<event>",
 *      "trace_id":"..","span_id":"..","conv":"..","tenant":"..", <fields...>}
 *     the four context keys are always present ("" when unknown); the printf
 *     API puts its subsys into "event" and its formatted text into "msg".
 *   text: "<ISO8601 UTC ms> <level> <service> [<subsys>] <message>" followed
 *     by " key=value" for the context and fields that are set.
 * Anything that came from a peer must go through mesh_log_sanitize() before it
 * is formatted into a message: it escapes control and non-printable bytes and
 * truncates, so a hostile frame cannot forge log lines.
 */
#ifndef MESH_LOG_H
#define MESH_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_limits.h"

typedef enum {
    MESH_LOG_DEBUG = 0,
    MESH_LOG_INFO = 1,
    MESH_LOG_WARN = 2,
    MESH_LOG_ERROR = 3,
    MESH_LOG_OFF = 4,
} mesh_log_level_t;

/* Set the service name printed on every line (copied; max 31 bytes). */
void mesh_log_init(const char *service, mesh_log_level_t level);
void mesh_log_set_level(mesh_log_level_t level);
mesh_log_level_t mesh_log_get_level(void);

/* Parse "debug|info|warn|error|off" (case-insensitive). 0 or MESH_EINVAL. */
int mesh_log_level_parse(const char *s, mesh_log_level_t *out);

void mesh_log_write(mesh_log_level_t level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define mesh_log_debug(sub, ...) mesh_log_write(MESH_LOG_DEBUG, (sub), __VA_ARGS__)
#define mesh_log_info(sub, ...)  mesh_log_write(MESH_LOG_INFO, (sub), __VA_ARGS__)
#define mesh_log_warn(sub, ...)  mesh_log_write(MESH_LOG_WARN, (sub), __VA_ARGS__)
#define mesh_log_error(sub, ...) mesh_log_write(MESH_LOG_ERROR, (sub), __VA_ARGS__)

/* Maximum bytes of peer data shown by mesh_log_sanitize (before escaping). */
#define MESH_LOG_SAMPLE_MAX 64

/*
 * Write a printable, NUL-terminated rendering of at most MESH_LOG_SAMPLE_MAX
 * bytes of data into out (printable ASCII kept, everything else as \xNN, a
 * trailing "..." when truncated). out_size must be >= 4*MESH_LOG_SAMPLE_MAX+4.
 * Returns out.
 */
char *mesh_log_sanitize(const void *data, size_t len, char *out, size_t out_size);

/* ---- structured logging, context and redaction (issue 7, "logs+traces") ---- */

typedef enum {
    MESH_LOG_FORMAT_JSON = 0, /* default */
    MESH_LOG_FORMAT_TEXT = 1,
} mesh_log_format_t;

void mesh_log_set_format(mesh_log_format_t format);
mesh_log_format_t mesh_log_get_format(void);
/* Parse "json|text" (case-insensitive). 0 or MESH_EINVAL. */
int mesh_log_format_parse(const char *s, mesh_log_format_t *out);

/*
 * Content logging (MESH_LOG_CONTENT, default off). Off: fields of type
 * MESH_LF_CONTENT (message text, model output, tool arguments) are never
 * written; the line shows "[omitted]" instead. On (debugging only): they are
 * written after mesh_log_redact(). The printf "msg" and every string field
 * always pass through mesh_log_redact(), on or off.
 */
void mesh_log_set_content(bool on);
bool mesh_log_get_content(void);

/*
 * One step more verbose (debug is the floor) / one step quieter (off is the
 * ceiling). Returns the new level. Async-signal-safe (one int store), which
 * is why the service skeleton may call them from its SIGUSR1/SIGUSR2 handlers.
 */
mesh_log_level_t mesh_log_level_up(void);
mesh_log_level_t mesh_log_level_down(void);

/* Hex lengths of W3C trace ids and span ids. */
#define MESH_TRACE_ID_HEX 32
#define MESH_SPAN_ID_HEX  16

/*
 * Per-request log context: who a line is about. Filled by the code handling
 * a request (mesh_log_ctx_from_request, mesh_span_log_ctx) and passed to
 * mesh_log_event, or made current for the printf API with mesh_log_ctx_swap.
 * Empty strings mean unknown.
 */
typedef struct {
    char trace_id[MESH_TRACE_ID_HEX + 1];
    char span_id[MESH_SPAN_ID_HEX + 1];
    char conv[MESH_CONV_MAX + 1];
    char tenant[MESH_TENANT_MAX + 1];
} mesh_log_ctx_t;

/*
 * Fill ctx from a request's traceparent ("" or invalid: no trace/span), conv
 * and tenant (NULL allowed). Over-long or malformed values are left empty
 * rather than truncated, so a line never shows a wrong id.
 */
void mesh_log_ctx_set(mesh_log_ctx_t *ctx, const char *traceparent, const char *conv,
                      const char *tenant);

/*
 * Make ctx (borrowed; NULL = none) the context of every line written from
 * this thread until the next swap; returns the previous one so nested code
 * can restore it. Used around a request's synchronous handling so that
 * printf-style lines written deep inside carry its trace id.
 */
const mesh_log_ctx_t *mesh_log_ctx_swap(const mesh_log_ctx_t *ctx);

typedef enum {
    MESH_LF_STR = 0, /* v.s, redacted */
    MESH_LF_INT,     /* v.i */
    MESH_LF_UINT,    /* v.u */
    MESH_LF_DOUBLE,  /* v.d (non-finite values are written as null) */
    MESH_LF_BOOL,    /* v.b */
    MESH_LF_CONTENT, /* v.s: personal/message content, see mesh_log_set_content */
} mesh_log_field_type_t;

/* One "key": value of a structured line. key is a literal of [a-z0-9_]. */
typedef struct {
    const char *key;
    mesh_log_field_type_t type;
    union {
        const char *s; /* NUL-terminated; NULL is written as null */
        int64_t i;
        uint64_t u;
        double d;
        bool b;
    } v;
} mesh_log_field_t;

#define MESH_LF_S(k, x)    ((mesh_log_field_t){.key = (k), .type = MESH_LF_STR, .v.s = (x)})
#define MESH_LF_I(k, x)    ((mesh_log_field_t){.key = (k), .type = MESH_LF_INT, .v.i = (x)})
#define MESH_LF_U(k, x)    ((mesh_log_field_t){.key = (k), .type = MESH_LF_UINT, .v.u = (x)})
#define MESH_LF_D(k, x)    ((mesh_log_field_t){.key = (k), .type = MESH_LF_DOUBLE, .v.d = (x)})
#define MESH_LF_B(k, x)    ((mesh_log_field_t){.key = (k), .type = MESH_LF_BOOL, .v.b = (x)})
#define MESH_LF_TEXT(k, x) ((mesh_log_field_t){.key = (k), .type = MESH_LF_CONTENT, .v.s = (x)})

/*
 * Write one structured line: event names what happened ("turn.done",
 * "llm.call.failed"), ctx (NULL = the current one from mesh_log_ctx_swap)
 * says for which request, fields[0..n) carry the details. Lines are capped
 * at 2047 bytes; fields that do not fit are dropped whole and the line gets
 * "truncated":true. errno is preserved.
 */
void mesh_log_event(mesh_log_level_t level, const char *event, const mesh_log_ctx_t *ctx,
                    const mesh_log_field_t *fields, size_t n);

/* mesh_log_ev(level, event, ctx, MESH_LF_S("k", v), ...): at least one field. */
#define mesh_log_ev(level, event, ctx, ...)                                                        \
    do {                                                                                           \
        const mesh_log_field_t mesh_lf_[] = {__VA_ARGS__};                                         \
        mesh_log_event((level), (event), (ctx), mesh_lf_, sizeof(mesh_lf_) / sizeof(mesh_lf_[0])); \
    } while (0)

/*
 * Mask personal data in text[0..len) into out (NUL-terminated, at most
 * out_size-1 bytes, never cutting a UTF-8 sequence): Chinese resident ID
 * numbers (17 digits + digit/X) -> "[id]", mainland mobile numbers (11
 * digits 1[3-9]..., optionally +86/86 and 3-4-4 grouping with blanks or
 * dashes) -> "[phone]", vehicle plates (province character + letter +
 * optional middle dot + 5..6 letters/digits, e.g. 沪A12345, 沪A·12345) ->
 * "[plate]". A match must not touch other ASCII letters or digits, so hex
 * ids and longer numbers are left alone. Returns the bytes written.
 */
size_t mesh_log_redact(const char *text, size_t len, char *out, size_t out_size);

#endif
