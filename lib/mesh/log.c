/*
 * log.c - leveled logging to stderr (mesh_log.h): JSON lines by default,
 * the historical text format on request.
 *
 * Each event is formatted into one bounded stack buffer and written with a
 * single write(2), so lines from several processes sharing a stderr pipe do
 * not interleave (writes of at most PIPE_BUF bytes to a pipe are atomic).
 * Every caller-supplied string is escaped (JSON) or scrubbed of control
 * bytes (text), so no caller, however careless, can split one event over
 * several lines or break the JSON object; and it passes through the
 * personal-data redaction (log_redact.c) first. Recording costs no
 * allocation: the line, the formatted message and the redacted copy live on
 * the stack.
 */
#include "mesh/mesh_log.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mesh/mesh_err.h"

/* One log line, newline included. Below PIPE_BUF (4096 on Linux) on purpose. */
#define LOG_LINE_MAX 2048
/* Service name bytes kept by mesh_log_init (mesh_log.h: max 31). */
#define LOG_SERVICE_MAX 31
/* Marker appended when a message did not fit in LOG_LINE_MAX. */
#define LOG_TRUNC_MARK "..."
/* Bytes kept back while building a line for: the closing quote after a cut
 * string, ',"truncated":true', '}' and '\n'. */
#define LOG_TAIL_RESERVE 24
/* Timestamp buffer ("2024-05-01T12:34:56.789Z" + NUL, with slack). */
#define LOG_TS_MAX 32
/* Event / subsystem name bytes shown. */
#define LOG_EVENT_MAX 64
/* A number rendered as text. */
#define LOG_NUM_MAX 32
/* What a content field shows while content logging is off. */
#define LOG_OMITTED "[omitted]"
/* Shortest traceparent we take ids from, and where they are. */
#define LOG_TP_MIN       55
#define LOG_TP_TRACE_OFF 3
#define LOG_TP_SPAN_OFF  36

static char s_service[LOG_SERVICE_MAX + 1] = "mesh";
static mesh_log_level_t s_level = MESH_LOG_INFO;
static mesh_log_format_t s_format = MESH_LOG_FORMAT_JSON;
static bool s_content = false;

static const char *const s_level_names[] = {"debug", "info", "warn", "error", "off"};

void mesh_log_init(const char *service, mesh_log_level_t level)
{
    if (service != NULL && service[0] != '\0') {
        size_t n = strnlen(service, LOG_SERVICE_MAX);
        memcpy(s_service, service, n);
        s_service[n] = '\0';
    }
    mesh_log_set_level(level);
}

void mesh_log_set_level(mesh_log_level_t level)
{
    if (level < MESH_LOG_DEBUG || level > MESH_LOG_OFF)
        level = MESH_LOG_INFO;
    s_level = level;
}

mesh_log_level_t mesh_log_get_level(void)
{
    return s_level;
}

mesh_log_level_t mesh_log_level_up(void)
{
    if (s_level > MESH_LOG_DEBUG)
        s_level = (mesh_log_level_t)(s_level - 1);
    return s_level;
}

mesh_log_level_t mesh_log_level_down(void)
{
    if (s_level < MESH_LOG_OFF)
        s_level = (mesh_log_level_t)(s_level + 1);
    return s_level;
}

void mesh_log_set_format(mesh_log_format_t format)
{
    s_format = format == MESH_LOG_FORMAT_TEXT ? MESH_LOG_FORMAT_TEXT : MESH_LOG_FORMAT_JSON;
}

mesh_log_format_t mesh_log_get_format(void)
{
    return s_format;
}

int mesh_log_format_parse(const char *s, mesh_log_format_t *out)
{
    if (s == NULL || out == NULL)
        return MESH_EINVAL;
    if (strcasecmp(s, "json") == 0)
        *out = MESH_LOG_FORMAT_JSON;
    else if (strcasecmp(s, "text") == 0)
        *out = MESH_LOG_FORMAT_TEXT;
    else
        return MESH_EINVAL;
    return 0;
}

void mesh_log_set_content(bool on)
{
    s_content = on;
}

bool mesh_log_get_content(void)
{
    return s_content;
}

int mesh_log_level_parse(const char *s, mesh_log_level_t *out)
{
    if (s == NULL || out == NULL)
        return MESH_EINVAL;
    for (int i = MESH_LOG_DEBUG; i <= MESH_LOG_OFF; i++) {
        if (strcasecmp(s, s_level_names[i]) == 0) {
            *out = (mesh_log_level_t)i;
            return 0;
        }
    }
    return MESH_EINVAL;
}

/* "2024-05-01T12:34:56.789Z" into buf (at least 25 bytes). Returns the length. */
static size_t format_timestamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL)
        return (size_t)snprintf(buf, size, "1970-01-01T00:00:00.000Z");
    int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L);
    return n < 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
}

/* Write all of buf to fd, retrying on EINTR and short writes. */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a logging failure */
        }
        buf += w;
        len -= (size_t)w;
    }
}

/* ---- line builder ---------------------------------------------------------- */

/*
 * One line under construction. Appends never overflow: a piece that does not
 * fit sets `full` and leaves the line as it was before the piece, so a field
 * is either written whole or not at all.
 */
typedef struct {
    char buf[LOG_LINE_MAX];
    size_t pos;
    size_t cap; /* usable bytes: room for the tail is kept back */
    bool full;
} line_t;

static void line_init(line_t *l)
{
    l->pos = 0;
    l->cap = sizeof(l->buf) - LOG_TAIL_RESERVE;
    l->full = false;
}

static bool line_raw(line_t *l, const char *s, size_t n)
{
    if (l->full || n > l->cap - l->pos) {
        l->full = true;
        return false;
    }
    memcpy(l->buf + l->pos, s, n);
    l->pos += n;
    return true;
}

static bool line_str(line_t *l, const char *s)
{
    return line_raw(l, s, strlen(s));
}

/* Length of a valid UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_valid_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef)
        need = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 4;
    else
        return 0;
    if (n < need)
        return 0;
    for (size_t k = 1; k < need; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    /* overlongs and surrogates */
    if (c == 0xe0 && s[1] < 0xa0)
        return 0;
    if (c == 0xed && s[1] >= 0xa0)
        return 0;
    if (c == 0xf0 && s[1] < 0x90)
        return 0;
    if (c == 0xf4 && s[1] >= 0x90)
        return 0;
    return need;
}

/*
 * Append s[0..n) as the inside of a JSON string: quote, backslash and
 * control bytes escaped, invalid UTF-8 replaced by U+FFFD. When it does not
 * fit and allow_cut is set, as much as fits is written followed by "..."
 * (never half an escape or a UTF-8 sequence); otherwise nothing is written.
 */
static bool line_json_chars(line_t *l, const char *str, size_t n, bool allow_cut)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t start = l->pos;
    size_t mark = sizeof(LOG_TRUNC_MARK) - 1;

    for (size_t i = 0; i < n;) {
        char esc[8];
        const char *piece = esc;
        size_t plen;
        size_t adv = 1;
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            plen = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : (c == '\r' ? 'r' : 't');
            plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0x0f];
            plen = 6;
        } else {
            adv = utf8_valid_seq(s + i, n - i);
            if (adv == 0) {
                piece = "\xef\xbf\xbd"; /* U+FFFD */
                plen = 3;
                adv = 1;
            } else {
                piece = str + i;
                plen = adv;
            }
        }
        if (plen + (allow_cut ? mark : 0) > l->cap - l->pos) {
            if (!allow_cut) {
                l->pos = start;
                l->full = true;
                return false;
            }
            memcpy(l->buf + l->pos, LOG_TRUNC_MARK, mark);
            l->pos += mark;
            l->full = true;
            return true;
        }
        memcpy(l->buf + l->pos, piece, plen);
        l->pos += plen;
        i += adv;
    }
    return true;
}

/* Append ,"key":"value" (value redacted); all or nothing unless allow_cut. */
static bool line_json_kv_str(line_t *l, const char *key, const char *val, size_t vlen,
                             bool allow_cut)
{
    size_t save = l->pos;
    if (!line_raw(l, ",\"", 2) || !line_str(l, key) || !line_raw(l, "\":\"", 3) ||
        !line_json_chars(l, val, vlen, allow_cut)) {
        l->pos = save;
        return false;
    }
    /* The closing quote fits: the tail reserve keeps room for it after a cut. */
    l->buf[l->pos++] = '"';
    return true;
}

/* Append text[0..len) for the text format: control bytes become '?'. */
static bool line_text_chars(line_t *l, const char *s, size_t n, bool allow_cut)
{
    size_t save = l->pos;
    size_t mark = sizeof(LOG_TRUNC_MARK) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (1 + (allow_cut ? mark : 0) > l->cap - l->pos) {
            if (!allow_cut) {
                l->pos = save;
                l->full = true;
                return false;
            }
            memcpy(l->buf + l->pos, LOG_TRUNC_MARK, mark);
            l->pos += mark;
            l->full = true;
            return true;
        }
        l->buf[l->pos++] = (c < 0x20 || c == 0x7f) ? (c == '\t' ? ' ' : '?') : (char)c;
    }
    return true;
}

/* ---- context ------------------------------------------------------------------ */

static _Thread_local const mesh_log_ctx_t *s_cur_ctx;

const mesh_log_ctx_t *mesh_log_ctx_swap(const mesh_log_ctx_t *ctx)
{
    const mesh_log_ctx_t *prev = s_cur_ctx;
    s_cur_ctx = ctx;
    return prev;
}

static bool all_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* Copy s into dst[cap+1] only when it is 1..cap bytes of printable ASCII. */
static void copy_token(char *dst, size_t cap, const char *s)
{
    dst[0] = '\0';
    if (s == NULL)
        return;
    size_t n = strnlen(s, cap + 1);
    if (n == 0 || n > cap)
        return;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' ||
            s[i] == '\\')
            return;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

void mesh_log_ctx_set(mesh_log_ctx_t *ctx, const char *traceparent, const char *conv,
                      const char *tenant)
{
    if (ctx == NULL)
        return;
    memset(ctx, 0, sizeof(*ctx));
    /* "00-<32 hex>-<16 hex>-<2 hex>": the trace id and the sender's span id. */
    if (traceparent != NULL && strnlen(traceparent, MESH_TRACEPARENT_MAX + 1) >= LOG_TP_MIN &&
        traceparent[LOG_TP_TRACE_OFF - 1] == '-' && traceparent[LOG_TP_SPAN_OFF - 1] == '-' &&
        all_lower_hex(traceparent + LOG_TP_TRACE_OFF, MESH_TRACE_ID_HEX) &&
        all_lower_hex(traceparent + LOG_TP_SPAN_OFF, MESH_SPAN_ID_HEX)) {
        memcpy(ctx->trace_id, traceparent + LOG_TP_TRACE_OFF, MESH_TRACE_ID_HEX);
        memcpy(ctx->span_id, traceparent + LOG_TP_SPAN_OFF, MESH_SPAN_ID_HEX);
    }
    copy_token(ctx->conv, MESH_CONV_MAX, conv);
    copy_token(ctx->tenant, MESH_TENANT_MAX, tenant);
}

/* ---- writing -------------------------------------------------------------------- */

static const mesh_log_ctx_t s_empty_ctx;

/* ts, level, service, event and the four context keys. */
static void json_head(line_t *l, mesh_log_level_t level, const char *event,
                      const mesh_log_ctx_t *ctx)
{
    char ts[LOG_TS_MAX];
    size_t tl = format_timestamp(ts, sizeof(ts));
    line_raw(l, "{\"ts\":\"", 7);
    line_raw(l, ts, tl);
    line_str(l, "\",\"level\":\"");
    line_str(l, s_level_names[level]);
    line_str(l, "\",\"service\":\"");
    line_json_chars(l, s_service, strlen(s_service), false);
    line_raw(l, "\"", 1);
    const char *ev = event != NULL ? event : "-";
    line_json_kv_str(l, "event", ev, strnlen(ev, LOG_EVENT_MAX), false);
    line_json_kv_str(l, "trace_id", ctx->trace_id, strlen(ctx->trace_id), false);
    line_json_kv_str(l, "span_id", ctx->span_id, strlen(ctx->span_id), false);
    line_json_kv_str(l, "conv", ctx->conv, strlen(ctx->conv), false);
    line_json_kv_str(l, "tenant", ctx->tenant, strlen(ctx->tenant), false);
}

static void text_head(line_t *l, mesh_log_level_t level, const char *event)
{
    char ts[LOG_TS_MAX];
    size_t tl = format_timestamp(ts, sizeof(ts));
    line_raw(l, ts, tl);
    line_raw(l, " ", 1);
    line_str(l, s_level_names[level]);
    line_raw(l, " ", 1);
    line_str(l, s_service);
    line_raw(l, " [", 2);
    const char *ev = event != NULL ? event : "-";
    line_text_chars(l, ev, strnlen(ev, LOG_EVENT_MAX), false);
    line_raw(l, "]", 1);
}

static void text_ctx(line_t *l, const mesh_log_ctx_t *ctx)
{
    const char *keys[] = {"trace_id", "span_id", "conv", "tenant"};
    const char *vals[] = {ctx->trace_id, ctx->span_id, ctx->conv, ctx->tenant};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        if (vals[k][0] == '\0')
            continue;
        size_t save = l->pos;
        if (!line_raw(l, " ", 1) || !line_str(l, keys[k]) || !line_raw(l, "=", 1) ||
            !line_str(l, vals[k]))
            l->pos = save;
    }
}

/* The string a field shows: redacted into tmp, or the omission marker. */
static const char *field_text(const mesh_log_field_t *f, char *tmp, size_t tmp_size, size_t *len)
{
    if (f->type == MESH_LF_CONTENT && !s_content) {
        *len = sizeof(LOG_OMITTED) - 1;
        return LOG_OMITTED;
    }
    *len = mesh_log_redact(f->v.s, strnlen(f->v.s, tmp_size - 1), tmp, tmp_size);
    return tmp;
}

/* Append one field; all or nothing. */
static bool line_field(line_t *l, const mesh_log_field_t *f, bool json)
{
    char num[LOG_NUM_MAX];
    char tmp[LOG_LINE_MAX];
    const char *val = NULL;
    size_t vlen = 0;
    bool quoted = false;

    if (f->key == NULL)
        return true;
    switch (f->type) {
    case MESH_LF_STR:
    case MESH_LF_CONTENT:
        if (f->v.s == NULL) {
            val = "null";
            vlen = 4;
        } else {
            val = field_text(f, tmp, sizeof(tmp), &vlen);
            quoted = true;
        }
        break;
    case MESH_LF_INT:
        vlen = (size_t)snprintf(num, sizeof(num), "%" PRId64, f->v.i);
        val = num;
        break;
    case MESH_LF_UINT:
        vlen = (size_t)snprintf(num, sizeof(num), "%" PRIu64, f->v.u);
        val = num;
        break;
    case MESH_LF_DOUBLE:
        if (isfinite(f->v.d))
            vlen = (size_t)snprintf(num, sizeof(num), "%.6g", f->v.d);
        else
            vlen = (size_t)snprintf(num, sizeof(num), "null");
        val = num;
        break;
    case MESH_LF_BOOL:
        val = f->v.b ? "true" : "false";
        vlen = strlen(val);
        break;
    default:
        return true;
    }
    size_t save = l->pos;
    if (json) {
        if (quoted)
            return line_json_kv_str(l, f->key, val, vlen, false);
        if (line_raw(l, ",\"", 2) && line_str(l, f->key) && line_raw(l, "\":", 2) &&
            line_raw(l, val, vlen))
            return true;
    } else {
        if (line_raw(l, " ", 1) && line_str(l, f->key) && line_raw(l, "=", 1) &&
            line_text_chars(l, val, vlen, false))
            return true;
    }
    l->pos = save;
    return false;
}

/* Close the line (JSON brace, truncation flag) and write it with one write(2). */
static void line_emit(line_t *l, bool json)
{
    /* The tail reserve is released now: the closing pieces always fit. */
    if (json) {
        if (l->full) {
            static const char flag[] = ",\"truncated\":true";
            memcpy(l->buf + l->pos, flag, sizeof(flag) - 1);
            l->pos += sizeof(flag) - 1;
        }
        l->buf[l->pos++] = '}';
    }
    l->buf[l->pos++] = '\n';
    write_all(STDERR_FILENO, l->buf, l->pos);
}

static bool level_enabled(mesh_log_level_t level)
{
    return level >= s_level && level < MESH_LOG_OFF && level >= MESH_LOG_DEBUG;
}

void mesh_log_write(mesh_log_level_t level, const char *subsys, const char *fmt, ...)
{
    if (!level_enabled(level))
        return;

    int saved_errno = errno; /* callers often log and then inspect errno */
    char msg[LOG_LINE_MAX];
    char red[LOG_LINE_MAX];
    int n = 0;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        n = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    }
    size_t mlen = n < 0 ? 0 : ((size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    bool cut = n > 0 && (size_t)n >= sizeof(msg);
    /* A printf message may quote peer data: personal data is masked always. */
    size_t rlen = mesh_log_redact(msg, mlen, red, sizeof(red));

    const mesh_log_ctx_t *ctx = s_cur_ctx != NULL ? s_cur_ctx : &s_empty_ctx;
    line_t l;
    line_init(&l);
    if (s_format == MESH_LOG_FORMAT_JSON) {
        json_head(&l, level, subsys, ctx);
        line_json_kv_str(&l, "msg", red, rlen, true);
        if (cut && !l.full)
            l.full = true;
    } else {
        text_head(&l, level, subsys);
        line_raw(&l, " ", 1);
        line_text_chars(&l, red, rlen, true);
        if (cut && !l.full) {
            /* vsnprintf cut the message: mark the cut as a full line would. */
            line_raw(&l, LOG_TRUNC_MARK, sizeof(LOG_TRUNC_MARK) - 1);
        }
        text_ctx(&l, ctx);
        l.full = false; /* the text format has no truncation flag */
    }
    line_emit(&l, s_format == MESH_LOG_FORMAT_JSON);
    errno = saved_errno;
}

void mesh_log_event(mesh_log_level_t level, const char *event, const mesh_log_ctx_t *ctx,
                    const mesh_log_field_t *fields, size_t n)
{
    if (!level_enabled(level))
        return;
    int saved_errno = errno;
    if (ctx == NULL)
        ctx = s_cur_ctx != NULL ? s_cur_ctx : &s_empty_ctx;
    bool json = s_format == MESH_LOG_FORMAT_JSON;
    line_t l;
    line_init(&l);
    if (json) {
        json_head(&l, level, event, ctx);
    } else {
        text_head(&l, level, event);
        text_ctx(&l, ctx);
    }
    bool dropped = false;
    for (size_t k = 0; fields != NULL && k < n; k++) {
        l.full = false; /* a later, smaller field may still fit */
        if (!line_field(&l, &fields[k], json))
            dropped = true;
    }
    l.full = json && dropped;
    line_emit(&l, json);
    errno = saved_errno;
}

char *mesh_log_sanitize(const void *data, size_t len, char *out, size_t out_size)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    size_t o = 0;

    if (out == NULL || out_size == 0)
        return out;
    if (p == NULL)
        len = 0;
    size_t shown = len > MESH_LOG_SAMPLE_MAX ? MESH_LOG_SAMPLE_MAX : len;
    /* Reserve the truncation marker and the NUL so they always fit. */
    size_t limit = out_size - 1;
    size_t mark = sizeof(LOG_TRUNC_MARK) - 1;
    int cut = len > shown;

    for (size_t i = 0; i < shown; i++) {
        unsigned char c = p[i];
        /* The backslash is escaped too, so "\x0a" in the output always means one byte. */
        size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
        if (o + need + mark > limit) {
            cut = 1;
            break;
        }
        if (need == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0x0f];
        }
    }
    if (cut && o + mark <= limit) {
        memcpy(out + o, LOG_TRUNC_MARK, mark);
        o += mark;
    }
    out[o] = '\0';
    return out;
}
