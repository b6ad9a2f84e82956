/*
 * channels_stub.c - mesh-channels-stub: a stand-in for the chat platforms'
 * APIs the gateway calls, speaking their documented wire formats
 * (docs/channels.md; reference B2-B4):
 *
 *   POST /api/chat.postMessage                 Slack: {"ok":true,"channel","ts"}
 *   POST /bot<token>/sendMessage               Telegram: {"ok":true,"result":{...}}
 *   GET  /cgi-bin/gettoken?corpid&corpsecret   WeCom: {"errcode":0,"access_token","expires_in"}
 *   POST /cgi-bin/message/send?access_token=   WeCom: {"errcode":0,"errmsg":"ok"}
 *   POST /callback/<anything>                  generic webhook callback: {"ok":true}
 *
 * and, for the tests:
 *
 *   GET  /_requests   every API request so far, in order: [{method, path (with query),
 *                     headers {lowercase name: value}, body}]
 *   POST /_script     {"fail_first": n, "status": s, "retry_after": secs} the next n API
 *                     requests answer s (with Retry-After when given); {"always": s} every
 *                     API request answers s; {} back to normal
 *   POST /_reset      forget the requests and the script
 *
 * Usage: mesh-channels-stub --port N (127.0.0.1). One thread, poll(2) over
 * the connections, keep-alive, Content-Length bodies only (no chunked
 * uploads: libcurl sends Content-Length for these posts). Test code: no
 * production hardening beyond bounded buffers.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define STUB_CONNS_MAX   64
#define STUB_REQ_MAX     (256 * 1024) /* one request, head + body */
#define STUB_RECORDS_MAX 10000

typedef struct {
    int fd;
    char *buf;
    size_t len;
} conn_t;

static conn_t s_conns[STUB_CONNS_MAX];
static json_t *s_requests;
static int s_fail_first, s_fail_status, s_retry_after = -1, s_always;
static int s_ts;
static volatile sig_atomic_t s_stop;

static void on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void respond(int fd, int status, const char *extra, const char *body)
{
    char head[512];
    const char *reason = status == 200   ? "OK"
                         : status == 429 ? "Too Many Requests"
                         : status >= 500 ? "Server Error"
                                         : "Status";
    size_t blen = strlen(body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "%s\r\n",
                     status, reason, blen, extra ? extra : "");
    (void)!write(fd, head, (size_t)n);
    size_t off = 0;
    while (off < blen) {
        ssize_t w = write(fd, body + off, blen - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

static void respond_json(int fd, int status, const char *extra, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    respond(fd, status, extra, s ? s : "{}");
    free(s);
    json_decref(v);
}

/* Handle one complete request; method/path NUL-terminated, headers the raw head. */
static void handle(int fd, const char *method, const char *path, const char *head, const char *body,
                   size_t blen)
{
    if (strcmp(path, "/_requests") == 0) {
        respond_json(fd, 200, NULL, json_incref(s_requests));
        return;
    }
    if (strcmp(path, "/_reset") == 0) {
        json_array_clear(s_requests);
        s_fail_first = s_always = 0;
        s_retry_after = -1;
        respond(fd, 200, NULL, "{}");
        return;
    }
    if (strcmp(path, "/_script") == 0) {
        json_t *j = json_loadb(body, blen, 0, NULL);
        s_fail_first = (int)json_integer_value(json_object_get(j, "fail_first"));
        s_fail_status = (int)json_integer_value(json_object_get(j, "status"));
        s_always = (int)json_integer_value(json_object_get(j, "always"));
        json_t *ra = json_object_get(j, "retry_after");
        s_retry_after = json_is_integer(ra) ? (int)json_integer_value(ra) : -1;
        json_decref(j);
        respond(fd, 200, NULL, "{}");
        return;
    }
    /* Record the API request. */
    json_t *hdrs = json_object();
    const char *line = strstr(head, "\r\n");
    while (line && line[2] != '\r' && line[2] != '\0') {
        const char *start = line + 2;
        const char *end = strstr(start, "\r\n");
        const char *colon = memchr(start, ':', end ? (size_t)(end - start) : 0);
        if (!end || !colon)
            break;
        char name[128];
        size_t nl =
            (size_t)(colon - start) < sizeof name - 1 ? (size_t)(colon - start) : sizeof name - 1;
        for (size_t i = 0; i < nl; i++)
            name[i] = (char)(start[i] >= 'A' && start[i] <= 'Z' ? start[i] + 32 : start[i]);
        name[nl] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        json_object_set_new(hdrs, name, json_stringn(v, (size_t)(end - v)));
        line = end;
    }
    if (json_array_size(s_requests) < STUB_RECORDS_MAX)
        json_array_append_new(s_requests, json_pack("{s:s,s:s,s:o,s:s%}", "method", method, "path",
                                                    path, "headers", hdrs, "body", body, blen));
    else
        json_decref(hdrs);
    if (s_always || s_fail_first > 0) {
        int st = s_always ? s_always : s_fail_status;
        if (!s_always)
            s_fail_first--;
        char extra[64] = "";
        if (s_retry_after >= 0)
            snprintf(extra, sizeof extra, "Retry-After: %d\r\n", s_retry_after);
        respond(fd, st, extra, "{\"ok\":false,\"error\":\"scripted\"}");
        return;
    }
    if (strstr(path, "/chat.postMessage")) {
        json_t *b = json_loadb(body, blen, 0, NULL);
        const char *ch = json_string_value(json_object_get(b, "channel"));
        char ts[32];
        snprintf(ts, sizeof ts, "1700000000.%06d", ++s_ts);
        json_t *out = ch && json_is_string(json_object_get(b, "text"))
                          ? json_pack("{s:b,s:s,s:s}", "ok", 1, "channel", ch, "ts", ts)
                          : json_pack("{s:b,s:s}", "ok", 0, "error", "no_text");
        json_decref(b);
        respond_json(fd, 200, NULL, out);
    } else if (strstr(path, "/sendMessage")) {
        json_t *b = json_loadb(body, blen, 0, NULL);
        const char *t = json_string_value(json_object_get(b, "text"));
        json_t *out = t ? json_pack("{s:b,s:{s:i}}", "ok", 1, "result", "message_id", ++s_ts)
                        : json_pack("{s:b,s:i,s:s}", "ok", 0, "error_code", 400, "description",
                                    "Bad Request: message text is empty");
        json_decref(b);
        respond_json(fd, 200, NULL, out);
    } else if (strncmp(path, "/cgi-bin/gettoken", 17) == 0) {
        respond(fd, 200, NULL,
                "{\"errcode\":0,\"errmsg\":\"ok\",\"access_token\":\"stub-access-token\","
                "\"expires_in\":7200}");
    } else if (strncmp(path, "/cgi-bin/message/send", 21) == 0) {
        if (!strstr(path, "access_token=stub-access-token"))
            respond(fd, 200, NULL, "{\"errcode\":40014,\"errmsg\":\"invalid access_token\"}");
        else
            respond(fd, 200, NULL, "{\"errcode\":0,\"errmsg\":\"ok\"}");
    } else if (strncmp(path, "/callback/", 10) == 0) {
        respond(fd, 200, NULL, "{\"ok\":true}");
    } else {
        respond(fd, 404, NULL, "{\"ok\":false,\"error\":\"unknown_method\"}");
    }
}

/* Parse and answer every complete request in c's buffer. -1: close. */
static int drain(conn_t *c)
{
    for (;;) {
        char *end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (!end)
            return c->len >= STUB_REQ_MAX ? -1 : 0;
        size_t head_len = (size_t)(end - c->buf) + 4;
        size_t clen = 0;
        for (char *p = c->buf; p < end; p++) {
            if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
                clen = strtoul(p + 15, NULL, 10);
        }
        if (clen > STUB_REQ_MAX)
            return -1;
        if (c->len < head_len + clen)
            return 0;
        char method[16] = "", path[4096] = "";
        char *head = strndup(c->buf, head_len);
        char *body = strndup(c->buf + head_len, clen);
        if (sscanf(head, "%15s %4095s", method, path) != 2) {
            free(head);
            free(body);
            return -1;
        }
        handle(c->fd, method, path, head, body, clen);
        free(head);
        free(body);
        memmove(c->buf, c->buf + head_len + clen, c->len - head_len - clen);
        c->len -= head_len + clen;
    }
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    s_requests = json_array();
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 64) != 0) {
        fprintf(stderr, "mesh-channels-stub: cannot listen on port %d: %s\n", port,
                strerror(errno));
        return 1;
    }
    socklen_t sl = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &sl);
    printf("mesh-channels-stub listening on port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (int i = 0; i < STUB_CONNS_MAX; i++)
        s_conns[i].fd = -1;
    while (!s_stop) {
        struct pollfd pf[STUB_CONNS_MAX + 1];
        int map[STUB_CONNS_MAX + 1];
        int n = 0;
        pf[n].fd = lfd;
        pf[n].events = POLLIN;
        map[n++] = -1;
        for (int i = 0; i < STUB_CONNS_MAX; i++) {
            if (s_conns[i].fd >= 0) {
                pf[n].fd = s_conns[i].fd;
                pf[n].events = POLLIN;
                map[n++] = i;
            }
        }
        if (poll(pf, (nfds_t)n, 200) < 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!pf[k].revents)
                continue;
            if (map[k] < 0) {
                int fd = accept(lfd, NULL, NULL);
                int slot = -1;
                for (int i = 0; fd >= 0 && i < STUB_CONNS_MAX; i++)
                    if (s_conns[i].fd < 0) {
                        slot = i;
                        break;
                    }
                if (slot < 0) {
                    if (fd >= 0)
                        close(fd);
                    continue;
                }
                s_conns[slot].fd = fd;
                s_conns[slot].buf = malloc(STUB_REQ_MAX);
                s_conns[slot].len = 0;
                continue;
            }
            conn_t *c = &s_conns[map[k]];
            ssize_t r = read(c->fd, c->buf + c->len, STUB_REQ_MAX - c->len);
            if (r <= 0 || drain((c->len += (size_t)(r > 0 ? r : 0), c)) < 0) {
                close(c->fd);
                free(c->buf);
                c->buf = NULL;
                c->fd = -1;
                c->len = 0;
            }
        }
    }
    for (int i = 0; i < STUB_CONNS_MAX; i++)
        if (s_conns[i].fd >= 0) {
            close(s_conns[i].fd);
            free(s_conns[i].buf);
        }
    close(lfd);
    json_decref(s_requests);
    return 0;
}
