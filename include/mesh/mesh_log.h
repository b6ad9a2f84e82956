/*
 * mesh_log.h - leveled logging to stderr, one line per event.
 *
 * Line format: "<ISO8601 UTC ms> <level> <service> [<subsys>] <message>".
 * Anything that came from a peer must go through mesh_log_sanitize() before it
 * is formatted into a message: it escapes control and non-printable bytes and
 * truncates, so a hostile frame cannot forge log lines.
 */
#ifndef MESH_LOG_H
#define MESH_LOG_H

#include <stddef.h>

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

#endif
