/*
 * log.c - leveled logging to stderr (mesh_log.h).
 *
 * Each event is formatted into one bounded stack buffer and written with a
 * single write(2), so lines from several processes sharing a stderr pipe do
 * not interleave (writes of at most PIPE_BUF bytes to a pipe are atomic).
 * The message part is scrubbed of line breaks and control bytes so that no
 * caller, however careless, can split one event over several lines.
 */
#include "mesh/mesh_log.h"

#include <errno.h>
#include <stdarg.h>
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

static char s_service[LOG_SERVICE_MAX + 1] = "mesh";
static mesh_log_level_t s_level = MESH_LOG_INFO;

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

void mesh_log_write(mesh_log_level_t level, const char *subsys, const char *fmt, ...)
{
    if (level < s_level || level >= MESH_LOG_OFF || level < MESH_LOG_DEBUG)
        return;

    int saved_errno = errno; /* callers often log and then inspect errno */
    char line[LOG_LINE_MAX];
    size_t cap = sizeof(line) - 1; /* room for the final newline */
    size_t pos = format_timestamp(line, cap);

    int n = snprintf(line + pos, cap - pos, " %s %s [%s] ", s_level_names[level], s_service,
                     subsys != NULL ? subsys : "-");
    if (n > 0)
        pos += ((size_t)n < cap - pos) ? (size_t)n : cap - pos - 1;

    size_t msg_start = pos;
    n = 0;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        n = vsnprintf(line + pos, cap - pos, fmt, ap);
        va_end(ap);
    }
    if (n > 0) {
        if ((size_t)n < cap - pos) {
            pos += (size_t)n;
        } else {
            /* Truncated: vsnprintf left a NUL at cap-1; mark the cut. */
            pos = cap - 1;
            size_t mark = sizeof(LOG_TRUNC_MARK) - 1;
            memcpy(line + pos - mark, LOG_TRUNC_MARK, mark);
        }
    }
    /* One event, one line: no caller-supplied byte may break it. */
    for (size_t i = msg_start; i < pos; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = c == '\t' ? ' ' : '?';
    }
    line[pos++] = '\n';
    write_all(STDERR_FILENO, line, pos);
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
