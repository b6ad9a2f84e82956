/*
 * route_static.c - the two web pages and their assets from MESH_WEB_DIR
 * (default ./web) (route_people.h, docs/web.md).
 *
 *   GET /             index.html   (web chat)
 *   GET /console      console.html (people console)
 *   GET /web/<file>   any file under the directory (js, css, images)
 *
 * Only regular files, at most GATEWAY_WEB_FILE_MAX bytes, whose relative
 * name passes gateway_web_path_map (no "..", no hidden files, a small
 * charset), are served; the final component is opened with O_NOFOLLOW.
 * Anything else is 404 (400 for a refused name under /web/). Files are
 * small and local, so they are read synchronously on the loop.
 *
 * Caching: pages are "no-cache" (always revalidated: a new deployment shows
 * at once), assets "max-age=300". Every answer carries nosniff, and the
 * pages a Content-Security-Policy allowing only same-origin scripts,
 * styles and connections (the pages use no CDN).
 */
#define _GNU_SOURCE /* O_NOFOLLOW, O_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway_internal.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "route_people.h"

/* Largest file served. */
#define GATEWAY_WEB_FILE_MAX (4 * 1024 * 1024)
/* Longest MESH_WEB_DIR + "/" + name. */
#define GATEWAY_WEB_PATH_MAX    4096
#define GATEWAY_WEB_DIR_DEFAULT "./web"

#define STATIC_SUBSYS "web"

static const char s_page_headers[] =
    "Cache-Control: no-cache\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'\r\n";
static const char s_asset_headers[] = "Cache-Control: public, max-age=300\r\n"
                                      "X-Content-Type-Options: nosniff\r\n";

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '/';
}

int gateway_web_path_map(const char *path, size_t len, char *out, size_t out_size)
{
    const char *name = NULL;
    size_t nlen = 0;
    if (len == 1 && path[0] == '/') {
        name = "index.html";
        nlen = strlen(name);
    } else if (len == sizeof("/console") - 1 && memcmp(path, "/console", len) == 0) {
        name = "console.html";
        nlen = strlen(name);
    } else if (len >= sizeof(GATEWAY_WEB_PREFIX) - 1 &&
               memcmp(path, GATEWAY_WEB_PREFIX, sizeof(GATEWAY_WEB_PREFIX) - 1) == 0) {
        name = path + sizeof(GATEWAY_WEB_PREFIX) - 1;
        nlen = len - (sizeof(GATEWAY_WEB_PREFIX) - 1);
        if (nlen == 0 || nlen > GATEWAY_WEB_NAME_MAX)
            return -1;
        /* Segments: non-empty, not starting with '.' (covers ".", ".." and hidden files). */
        size_t seg = 0;
        for (size_t i = 0; i < nlen; i++) {
            if (!name_char_ok(name[i]))
                return -1;
            if (name[i] == '/') {
                if (seg == 0)
                    return -1;
                seg = 0;
                continue;
            }
            if (seg == 0 && name[i] == '.')
                return -1;
            seg++;
        }
        if (seg == 0)
            return -1;
    } else {
        return 0;
    }
    if (nlen + 1 > out_size)
        return -1;
    memcpy(out, name, nlen);
    out[nlen] = '\0';
    return 1;
}

const char *gateway_web_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (dot && (!slash || dot > slash)) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
        }
    }
    return "application/octet-stream";
}

/* Read dir/name: 0 and *data (malloc'd) / *len, or an HTTP status (404, 500). */
static int read_file(const char *dir, const char *name, char **data, size_t *len)
{
    char path[GATEWAY_WEB_PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return 404;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP || errno == ENOTDIR || errno == EACCES ? 404 : 500;
    int status = 0;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        status = 404;
        goto cleanup;
    }
    if (st.st_size > GATEWAY_WEB_FILE_MAX) {
        mesh_log_warn(STATIC_SUBSYS, "%s: larger than %d bytes, not served", name,
                      GATEWAY_WEB_FILE_MAX);
        status = 404;
        goto cleanup;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size + 1);
    if (!buf) {
        status = 500;
        goto cleanup;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    *data = buf;
    *len = got;
    buf = NULL;
cleanup:
    free(buf);
    close(fd);
    return status;
}

bool gateway_route_static(gateway_t *gw, gateway_http_conn_t *conn, const gateway_http_req_t *req)
{
    (void)gw;
    char name[GATEWAY_WEB_NAME_MAX + 1];
    int m = gateway_web_path_map(req->path, req->path_len, name, sizeof(name));
    if (m == 0)
        return false;
    if (req->method != HTTP_GET) {
        gateway_http_conn_respond_error(conn, 405, "method_not_allowed",
                                        "method not allowed for this path", "Allow: GET\r\n");
        return true;
    }
    if (m < 0) {
        gateway_http_conn_respond_error(conn, 404, "not_found", "no such file", NULL);
        return true;
    }
    const char *dir = getenv("MESH_WEB_DIR");
    if (!dir || !dir[0])
        dir = GATEWAY_WEB_DIR_DEFAULT;
    char *data = NULL;
    size_t len = 0;
    int st = read_file(dir, name, &data, &len);
    if (st == 404) {
        gateway_http_conn_respond_error(conn, 404, "not_found", "no such file", NULL);
        return true;
    }
    if (st != 0) {
        mesh_log_warn(STATIC_SUBSYS, "%s: cannot read from MESH_WEB_DIR", name);
        gateway_http_conn_respond_error(conn, 500, "internal_error", "cannot read the file", NULL);
        return true;
    }
    const char *type = gateway_web_content_type(name);
    bool page = strncmp(type, "text/html", 9) == 0;
    gateway_http_conn_respond(conn, 200, type, page ? s_page_headers : s_asset_headers, data, len);
    free(data);
    return true;
}
