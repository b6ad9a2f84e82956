/*
 * otlp_stub.h - a stub OTLP/HTTP collector for tests (header-only; included
 * by tests/unit/test_otlp.c and tests/integration/test_trace.c).
 *
 * It listens on a free loopback port in its own thread, answers every POST
 * with a fixed status and keeps the request bodies, so a test can check
 * what an exporter sent. One request per connection (it answers with
 * "Connection: close"). Bounded: at most OTLP_STUB_BODIES_MAX bodies of at
 * most OTLP_STUB_BODY_MAX bytes are kept; bigger requests are answered 413.
 */
#ifndef TEST_OTLP_STUB_H
#define TEST_OTLP_STUB_H

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OTLP_STUB_BODIES_MAX 256
#define OTLP_STUB_BODY_MAX   (4 * 1024 * 1024)
#define OTLP_STUB_HEAD_MAX   8192
#define OTLP_STUB_POLL_MS    20

typedef struct {
    int fd;
    int port;
    int status; /* answered to every request */
    volatile bool stop;
    pthread_t thread;
    pthread_mutex_t mu;
    char *bodies[OTLP_STUB_BODIES_MAX];
    char paths[OTLP_STUB_BODIES_MAX][64];
    int n_bodies;
} otlp_stub_t;

/* Read one request from c; 0 and *body (malloc'd) or -1. */
static int otlp_stub_read(int c, char *path, size_t path_size, char **body)
{
    char head[OTLP_STUB_HEAD_MAX + 1];
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        if (got >= OTLP_STUB_HEAD_MAX)
            return -1;
        ssize_t r = recv(c, head + got, OTLP_STUB_HEAD_MAX - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        head[got] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - head) + 4;
    if (sscanf(head, "POST %63s ", path) != 1)
        snprintf(path, path_size, "?");
    const char *cl = strstr(head, "\r\nContent-Length:");
    size_t len = cl != NULL ? strtoul(cl + 17, NULL, 10) : 0;
    if (len > OTLP_STUB_BODY_MAX)
        return -1;
    char *b = malloc(len + 1);
    if (b == NULL)
        return -1;
    size_t have = got - head_len;
    if (have > len)
        have = len;
    memcpy(b, head + head_len, have);
    while (have < len) {
        ssize_t r = recv(c, b + have, len - have, 0);
        if (r <= 0) {
            free(b);
            return -1;
        }
        have += (size_t)r;
    }
    b[len] = '\0';
    *body = b;
    return 0;
}

static void *otlp_stub_main(void *arg)
{
    otlp_stub_t *s = arg;
    while (!s->stop) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, OTLP_STUB_POLL_MS) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char path[64] = "";
        char *body = NULL;
        int ok = otlp_stub_read(c, path, sizeof(path), &body);
        char resp[128];
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                         ok == 0 ? s->status : 413);
        if (send(c, resp, (size_t)n, MSG_NOSIGNAL) < 0) {
            /* the exporter gave up; nothing to do */
        }
        close(c);
        pthread_mutex_lock(&s->mu);
        if (ok == 0 && s->n_bodies < OTLP_STUB_BODIES_MAX) {
            snprintf(s->paths[s->n_bodies], sizeof(s->paths[0]), "%s", path);
            s->bodies[s->n_bodies++] = body;
            body = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        free(body);
    }
    return NULL;
}

/* Start on a free loopback port; 0 or -1. */
static int otlp_stub_start(otlp_stub_t *s, int status)
{
    memset(s, 0, sizeof(*s));
    s->status = status;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 64) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0) {
        close(s->fd);
        return -1;
    }
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->thread, NULL, otlp_stub_main, s) != 0) {
        close(s->fd);
        return -1;
    }
    return 0;
}

static void otlp_stub_stop(otlp_stub_t *s)
{
    s->stop = true;
    pthread_join(s->thread, NULL);
    close(s->fd);
    for (int i = 0; i < s->n_bodies; i++)
        free(s->bodies[i]);
    s->n_bodies = 0;
    pthread_mutex_destroy(&s->mu);
}

/* Requests received so far. */
static int otlp_stub_requests(otlp_stub_t *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n_bodies;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/*
 * Every span received so far, as one JSON array of
 * {"service": resource service.name, "span": <OTLP span>}; NULL when a
 * body was not an ExportTraceServiceRequest.
 */
static json_t *otlp_stub_spans(otlp_stub_t *s)
{
    json_t *out = json_array();
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_bodies && out != NULL; i++) {
        json_t *req = json_loads(s->bodies[i], JSON_REJECT_DUPLICATES, NULL);
        json_t *rss = json_object_get(req, "resourceSpans");
        if (!json_is_array(rss)) {
            json_decref(req);
            json_decref(out);
            out = NULL;
            break;
        }
        size_t k;
        json_t *rs;
        json_array_foreach(rss, k, rs)
        {
            json_t *attrs = json_object_get(json_object_get(rs, "resource"), "attributes");
            const char *svc = NULL;
            size_t j;
            json_t *a;
            json_array_foreach(attrs, j, a)
            {
                if (strcmp(json_string_value(json_object_get(a, "key")) ?: "", "service.name") == 0)
                    svc = json_string_value(
                        json_object_get(json_object_get(a, "value"), "stringValue"));
            }
            json_t *sss = json_object_get(rs, "scopeSpans");
            size_t m;
            json_t *ss;
            json_array_foreach(sss, m, ss)
            {
                size_t q;
                json_t *sp;
                json_array_foreach(json_object_get(ss, "spans"), q, sp)
                {
                    json_array_append_new(out,
                                          json_pack("{s:s?, s:O}", "service", svc, "span", sp));
                }
            }
        }
        json_decref(req);
    }
    pthread_mutex_unlock(&s->mu);
    return out;
}

#endif
