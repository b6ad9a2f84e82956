/*
 * test_httpc.c - mesh_httpc.h against a tiny HTTP server in a thread of
 * this test (plain sockets): status/body/headers of a POST, a 429 with
 * Retry-After, a per-request timeout, a body over the bound, a refused
 * connection, cancel and destroy with requests in flight.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_httpc.h"

/* ---- the server --------------------------------------------------------- */

typedef struct {
    int lfd;
    int port;
    pthread_t th;
    char last_request[8192]; /* head + body of the last request */
    pthread_mutex_t mu;
} srv_t;

static srv_t g_srv;

static void srv_answer(int fd, const char *path)
{
    char out[512];
    if (strncmp(path, "/slow", 5) == 0)
        return; /* never answers: the client times out (the fd closes at its end) */
    if (strncmp(path, "/429", 4) == 0) {
        const char *b = "{\"ok\":false,\"error\":\"rate_limited\"}";
        int n = snprintf(out, sizeof out,
                         "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: "
                         "%zu\r\nContent-Type: application/json\r\n\r\n%s",
                         strlen(b), b);
        (void)!write(fd, out, (size_t)n);
        return;
    }
    if (strncmp(path, "/big", 4) == 0) {
        size_t len = 64 * 1024;
        int n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
        (void)!write(fd, out, (size_t)n);
        char *b = malloc(len);
        memset(b, 'x', len);
        (void)!write(fd, b, len);
        free(b);
        return;
    }
    const char *b = "{\"ok\":true}";
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nContent-Type: "
                     "application/json\r\n\r\n%s",
                     strlen(b), b);
    (void)!write(fd, out, (size_t)n);
}

/* One request per connection (the client may reuse it: we read on). */
static void *srv_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(g_srv.lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf[8192];
        size_t len = 0;
        for (;;) {
            ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (!end)
                continue;
            size_t clen = 0;
            char *cl = strcasestr(buf, "content-length:");
            if (cl && cl < end)
                clen = strtoul(cl + 15, NULL, 10);
            size_t total = (size_t)(end + 4 - buf) + clen;
            if (len < total)
                continue;
            pthread_mutex_lock(&g_srv.mu);
            memcpy(g_srv.last_request, buf, total);
            g_srv.last_request[total] = '\0';
            pthread_mutex_unlock(&g_srv.mu);
            char path[64] = "";
            sscanf(buf, "%*s %63s", path);
            srv_answer(fd, path);
            memmove(buf, buf + total, len - total);
            len -= total;
            buf[len] = '\0';
        }
        close(fd);
    }
}

static int srv_start(void)
{
    g_srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(g_srv.lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(g_srv.lfd, 16) != 0)
        return -1;
    socklen_t sl = sizeof a;
    getsockname(g_srv.lfd, (struct sockaddr *)&a, &sl);
    g_srv.port = ntohs(a.sin_port);
    pthread_mutex_init(&g_srv.mu, NULL);
    return pthread_create(&g_srv.th, NULL, srv_main, NULL);
}

/* ---- client helpers ----------------------------------------------------- */

typedef struct {
    int calls;
    int error;
    long status;
    long retry_after;
    char body[256];
    size_t body_len;
} result_t;

static void on_done(const mesh_httpc_resp_t *r, void *arg)
{
    result_t *res = arg;
    res->calls++;
    res->error = r->error;
    res->status = r->status;
    res->retry_after = r->retry_after_s;
    res->body_len = r->body_len;
    snprintf(res->body, sizeof res->body, "%s", r->body);
}

/* Run the loop until every result has been called back (bounded). */
static void run_until(uv_loop_t *loop, result_t *rs, int n, uint64_t bound_ms)
{
    uint64_t until = uv_hrtime() / 1000000 + bound_ms;
    for (;;) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += rs[i].calls > 0;
        if (done == n || uv_hrtime() / 1000000 > until)
            return;
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void url(char *out, size_t size, const char *path)
{
    snprintf(out, size, "http://127.0.0.1:%d%s", g_srv.port, path);
}

static void close_loop(uv_loop_t *loop)
{
    for (int i = 0; i < 100 && uv_loop_alive(loop); i++)
        uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_post_headers_body(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mesh_httpc_t *c = mesh_httpc_new(&loop);
    assert_non_null(c);
    char u[128];
    url(u, sizeof u, "/ok");
    const char *hdrs[] = {"Content-Type: application/json", "Authorization: Bearer t0k",
                          "traceparent: 00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
                          NULL};
    const char *body = "{\"channel\":\"C1\",\"text\":\"hi\"}";
    mesh_httpc_opts_t o = {.method = "POST",
                           .url = u,
                           .headers = hdrs,
                           .body = body,
                           .body_len = strlen(body),
                           .timeout_ms = 2000};
    result_t r = {0};
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r, NULL), 0);
    assert_int_equal(r.calls, 0); /* never from inside request() */
    assert_int_equal(mesh_httpc_inflight(c), 1);
    run_until(&loop, &r, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.retry_after, -1);
    assert_string_equal(r.body, "{\"ok\":true}");
    pthread_mutex_lock(&g_srv.mu);
    assert_non_null(strstr(g_srv.last_request, "POST /ok HTTP/1.1"));
    assert_non_null(strstr(g_srv.last_request, "Authorization: Bearer t0k"));
    assert_non_null(strstr(g_srv.last_request, "traceparent: 00-0123456789abcdef"));
    assert_non_null(strstr(g_srv.last_request, body));
    pthread_mutex_unlock(&g_srv.mu);
    assert_int_equal(mesh_httpc_inflight(c), 0);
    mesh_httpc_destroy(&c);
    assert_null(c);
    close_loop(&loop);
}

static void test_429_retry_after(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mesh_httpc_t *c = mesh_httpc_new(&loop);
    char u[128];
    url(u, sizeof u, "/429");
    mesh_httpc_opts_t o = {.method = "POST", .url = u, .body = "x", .body_len = 1};
    result_t r = {0};
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r, NULL), 0);
    run_until(&loop, &r, 1, 5000);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.retry_after, 7);
    assert_non_null(strstr(r.body, "rate_limited"));
    mesh_httpc_destroy(&c);
    close_loop(&loop);
}

static void test_timeout_and_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mesh_httpc_t *c = mesh_httpc_new(&loop);
    char u[128];
    url(u, sizeof u, "/slow");
    mesh_httpc_opts_t o = {.url = u, .timeout_ms = 200};
    result_t r[2] = {0};
    uint64_t t0 = uv_hrtime();
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r[0], NULL), 0);
    /* a port nobody listens on: bind one, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t sl = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &sl);
    close(fd);
    char u2[128];
    snprintf(u2, sizeof u2, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    mesh_httpc_opts_t o2 = {.url = u2, .timeout_ms = 2000};
    assert_int_equal(mesh_httpc_request(c, &o2, on_done, &r[1], NULL), 0);
    run_until(&loop, r, 2, 5000);
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].error, MESH_ETIMEDOUT);
    assert_int_equal(r[0].status, 0);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_true(ms >= 150 && ms < 3000);
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(r[1].error, MESH_EIO);
    mesh_httpc_destroy(&c);
    close_loop(&loop);
}

static void test_body_bound_and_invalid(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mesh_httpc_t *c = mesh_httpc_new(&loop);
    char u[128];
    url(u, sizeof u, "/big");
    mesh_httpc_opts_t o = {.url = u, .body_max = 1000};
    result_t r = {0};
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r, NULL), 0);
    run_until(&loop, &r, 1, 5000);
    assert_int_equal(r.error, MESH_ETOOBIG);
    /* within the bound the same body arrives whole */
    result_t r2 = {0};
    o.body_max = 0;
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r2, NULL), 0);
    run_until(&loop, &r2, 1, 5000);
    assert_int_equal(r2.error, 0);
    assert_int_equal(r2.body_len, 64 * 1024);
    mesh_httpc_opts_t bad = {.url = "file:///etc/passwd"};
    assert_int_equal(mesh_httpc_request(c, &bad, on_done, &r, NULL), MESH_EINVAL);
    bad.url = NULL;
    assert_int_equal(mesh_httpc_request(c, &bad, on_done, &r, NULL), MESH_EINVAL);
    mesh_httpc_destroy(&c);
    close_loop(&loop);
}

static void test_cancel_and_destroy_in_flight(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mesh_httpc_t *c = mesh_httpc_new(&loop);
    char slow[128], ok[128];
    url(slow, sizeof slow, "/slow");
    url(ok, sizeof ok, "/ok");
    mesh_httpc_opts_t o = {.url = slow, .timeout_ms = 5000};
    result_t r[3] = {0};
    uint64_t id = 0;
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r[0], &id), 0);
    mesh_httpc_opts_t o2 = {.url = ok};
    assert_int_equal(mesh_httpc_request(c, &o2, on_done, &r[1], NULL), 0);
    mesh_httpc_cancel(c, id);
    mesh_httpc_cancel(c, id); /* stale: harmless */
    run_until(&loop, &r[1], 1, 5000);
    assert_int_equal(r[1].status, 200);
    assert_int_equal(r[0].calls, 0);
    /* one more in flight at destroy: never called back */
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r[2], NULL), 0);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    mesh_httpc_destroy(&c);
    close_loop(&loop);
    assert_int_equal(r[2].calls, 0);
    assert_int_equal(r[0].calls, 0);
}

int main(void)
{
    if (srv_start() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_headers_body),
        cmocka_unit_test(test_429_retry_after),
        cmocka_unit_test(test_timeout_and_refused),
        cmocka_unit_test(test_body_bound_and_invalid),
        cmocka_unit_test(test_cancel_and_destroy_in_flight),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    shutdown(g_srv.lfd, SHUT_RDWR);
    close(g_srv.lfd);
    return rc;
}
