/*
 * test_httpc.c - mesh_httpc.h against a tiny HTTP server in a thread of
 * this test (plain sockets): status/body/headers of a POST, a 429 with
 * Retry-After, a per-request timeout, a body over the bound, a refused
 * connection, cancel and destroy with requests in flight; and the
 * extensions: a streamed body delivered while the response is still
 * arriving, header lines, an abort from the body callback, cancel and
 * destroy from inside the body callback, and mesh_httpc_unref.
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
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
static atomic_int g_drip_go; /* the client saw the first part of /drip */

#define DRIP_WAIT_MS 5000 /* bound on the server waiting for g_drip_go */

/* /drip: the first half of the body, then (once the client has seen it)
 * the second half; proves bytes reach on_data before the response ends. */
static void srv_drip(int fd)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Drip: yes\r\n\r\nhello";
    (void)!write(fd, head, sizeof head - 1);
    for (int i = 0; i < DRIP_WAIT_MS && !atomic_load(&g_drip_go); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* polling a condition with a bound, not a sync sleep */
    }
    (void)!write(fd, "world", 5);
}

static void srv_answer(int fd, const char *path)
{
    char out[512];
    if (strncmp(path, "/slow", 5) == 0)
        return; /* never answers: the client times out (the fd closes at its end) */
    if (strncmp(path, "/drip", 5) == 0) {
        srv_drip(fd);
        return;
    }
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

/* Let closing handles finish (bounded). */
static void drain_loop(uv_loop_t *loop)
{
    for (int i = 0; i < 100 && uv_loop_alive(loop); i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

static void close_loop(uv_loop_t *loop)
{
    drain_loop(loop);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* One loop and one client per test; teardown destroys what is left. */
typedef struct {
    uv_loop_t loop;
    mesh_httpc_t *c;
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    if (!f || uv_loop_init(&f->loop) != 0 || !(f->c = mesh_httpc_new(&f->loop)))
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    mesh_httpc_destroy(&f->c);
    close_loop(&f->loop);
    free(f);
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_post_headers_body(void **state)
{
    fx_t *f = *state;
    mesh_httpc_t *c = f->c;
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
    run_until(&f->loop, &r, 1, 5000);
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
    mesh_httpc_destroy(&f->c);
    assert_null(f->c);
    drain_loop(&f->loop);
}

static void test_429_retry_after(void **state)
{
    fx_t *f = *state;
    mesh_httpc_t *c = f->c;
    char u[128];
    url(u, sizeof u, "/429");
    mesh_httpc_opts_t o = {.method = "POST", .url = u, .body = "x", .body_len = 1};
    result_t r = {0};
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r, NULL), 0);
    run_until(&f->loop, &r, 1, 5000);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.retry_after, 7);
    assert_non_null(strstr(r.body, "rate_limited"));
}

static void test_timeout_and_refused(void **state)
{
    fx_t *f = *state;
    mesh_httpc_t *c = f->c;
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
    run_until(&f->loop, r, 2, 5000);
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].error, MESH_ETIMEDOUT);
    assert_int_equal(r[0].status, 0);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_true(ms >= 150 && ms < 3000);
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(r[1].error, MESH_EIO);
}

static void test_body_bound_and_invalid(void **state)
{
    fx_t *f = *state;
    mesh_httpc_t *c = f->c;
    char u[128];
    url(u, sizeof u, "/big");
    mesh_httpc_opts_t o = {.url = u, .body_max = 1000};
    result_t r = {0};
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r, NULL), 0);
    run_until(&f->loop, &r, 1, 5000);
    assert_int_equal(r.error, MESH_ETOOBIG);
    /* within the bound the same body arrives whole */
    result_t r2 = {0};
    o.body_max = 0;
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r2, NULL), 0);
    run_until(&f->loop, &r2, 1, 5000);
    assert_int_equal(r2.error, 0);
    assert_int_equal(r2.body_len, 64 * 1024);
    mesh_httpc_opts_t bad = {.url = "file:///etc/passwd"};
    assert_int_equal(mesh_httpc_request(c, &bad, on_done, &r, NULL), MESH_EINVAL);
    bad.url = NULL;
    assert_int_equal(mesh_httpc_request(c, &bad, on_done, &r, NULL), MESH_EINVAL);
}

static void test_cancel_and_destroy_in_flight(void **state)
{
    fx_t *f = *state;
    mesh_httpc_t *c = f->c;
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
    run_until(&f->loop, &r[1], 1, 5000);
    assert_int_equal(r[1].status, 200);
    assert_int_equal(r[0].calls, 0);
    /* one more in flight at destroy: never called back */
    assert_int_equal(mesh_httpc_request(c, &o, on_done, &r[2], NULL), 0);
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    mesh_httpc_destroy(&f->c);
    drain_loop(&f->loop);
    assert_int_equal(r[2].calls, 0);
    assert_int_equal(r[0].calls, 0);
}

/* ---- extensions ---------------------------------------------------------- */

typedef struct {
    result_t res;
    mesh_httpc_t *c;
    uint64_t id;
    char data[128]; /* streamed bytes (the first 127) */
    size_t data_len, total;
    int chunks;
    int done_at_first_chunk; /* res.calls when the first chunk arrived */
    long status;
    int headers;
    bool saw_status_line, saw_drip_header;
    int abort_with;       /* on_data returns this (0 = go on) */
    bool cancel_in_data;  /* on_data cancels its own request */
    bool destroy_in_data; /* on_data destroys the client */
} stream_t;

static int on_data(long status, const char *data, size_t len, void *arg)
{
    stream_t *s = arg;
    if (s->chunks++ == 0)
        s->done_at_first_chunk = s->res.calls;
    s->status = status;
    s->total += len;
    size_t n = len < sizeof s->data - 1 - s->data_len ? len : sizeof s->data - 1 - s->data_len;
    memcpy(s->data + s->data_len, data, n);
    s->data_len += n;
    s->data[s->data_len] = '\0';
    if (strstr(s->data, "hello"))
        atomic_store(&g_drip_go, 1);
    if (s->cancel_in_data)
        mesh_httpc_cancel(s->c, s->id);
    if (s->destroy_in_data)
        mesh_httpc_destroy(&s->c);
    return s->abort_with;
}

static void on_hdr(const char *line, size_t len, void *arg)
{
    stream_t *s = arg;
    s->headers++;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0)
        s->saw_status_line = true;
    if (len >= 8 && strncasecmp(line, "X-Drip: ", 8) == 0)
        s->saw_drip_header = true;
}

static void on_stream_done(const mesh_httpc_resp_t *r, void *arg)
{
    on_done(r, &((stream_t *)arg)->res);
}

static void test_stream_body_as_it_arrives(void **state)
{
    fx_t *f = *state;
    mesh_httpc_t *c = f->c;
    char u[128];
    url(u, sizeof u, "/drip");
    atomic_store(&g_drip_go, 0);
    mesh_httpc_opts_t o = {.url = u, .timeout_ms = 5000};
    mesh_httpc_ext_t x = {.on_data = on_data, .on_header = on_hdr, .connect_timeout_ms = 2000};
    stream_t s = {.c = c};
    assert_int_equal(mesh_httpc_request_ext(c, &o, &x, on_stream_done, &s, &s.id), 0);
    run_until(&f->loop, &s.res, 1, 5000);
    assert_int_equal(s.res.calls, 1);
    assert_int_equal(s.res.error, 0);
    assert_int_equal(s.res.status, 200);
    assert_string_equal(s.data, "helloworld");
    /* "hello" came before the response was complete (the server held
     * "world" back until then), so it was delivered as it arrived */
    assert_true(s.chunks >= 2);
    assert_int_equal(s.done_at_first_chunk, 0);
    assert_int_equal(s.status, 200);
    /* streamed bodies are not buffered for the final callback */
    assert_int_equal(s.res.body_len, 0);
    assert_string_equal(s.res.body, "");
    assert_true(s.saw_status_line);
    assert_true(s.saw_drip_header);
    assert_true(s.headers >= 3);
}

static void test_stream_ignores_body_bound(void **state)
{
    fx_t *f = *state;
    mesh_httpc_t *c = f->c;
    char u[128];
    url(u, sizeof u, "/big");
    mesh_httpc_opts_t o = {.url = u, .body_max = 1000};
    mesh_httpc_ext_t x = {.on_data = on_data};
    stream_t s = {.c = c};
    assert_int_equal(mesh_httpc_request_ext(c, &o, &x, on_stream_done, &s, NULL), 0);
    run_until(&f->loop, &s.res, 1, 5000);
    assert_int_equal(s.res.error, 0);
    assert_int_equal(s.total, 64 * 1024);
    /* NULL extensions behave as mesh_httpc_request: the bound applies */
    result_t r = {0};
    assert_int_equal(mesh_httpc_request_ext(c, &o, NULL, on_done, &r, NULL), 0);
    run_until(&f->loop, &r, 1, 5000);
    assert_int_equal(r.error, MESH_ETOOBIG);
}

static void test_stream_abort(void **state)
{
    fx_t *f = *state;
    mesh_httpc_t *c = f->c;
    char u[128];
    url(u, sizeof u, "/big");
    mesh_httpc_opts_t o = {.url = u};
    mesh_httpc_ext_t x = {.on_data = on_data};
    stream_t s = {.c = c, .abort_with = MESH_EPROTO};
    assert_int_equal(mesh_httpc_request_ext(c, &o, &x, on_stream_done, &s, NULL), 0);
    run_until(&f->loop, &s.res, 1, 5000);
    assert_int_equal(s.res.calls, 1);
    assert_int_equal(s.res.error, MESH_EPROTO); /* the callback's own code */
    assert_int_equal(s.res.status, 200);
    assert_int_equal(s.chunks, 1); /* nothing after the abort */
    assert_true(s.total < 64 * 1024);
}

static void test_cancel_and_destroy_in_data_cb(void **state)
{
    fx_t *f = *state;
    mesh_httpc_t *c = f->c;
    char big[128], ok[128];
    url(big, sizeof big, "/big");
    url(ok, sizeof ok, "/ok");
    mesh_httpc_opts_t o = {.url = big};
    mesh_httpc_ext_t x = {.on_data = on_data};
    stream_t s = {.c = c, .cancel_in_data = true};
    assert_int_equal(mesh_httpc_request_ext(c, &o, &x, on_stream_done, &s, &s.id), 0);
    /* a second request proves the client goes on after the cancel */
    result_t r = {0};
    mesh_httpc_opts_t o2 = {.url = ok};
    assert_int_equal(mesh_httpc_request(c, &o2, on_done, &r, NULL), 0);
    uint64_t until = uv_hrtime() / 1000000 + 5000;
    while ((s.chunks == 0 || r.calls == 0) && uv_hrtime() / 1000000 < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(s.chunks, 1); /* no more data after the cancel */
    assert_int_equal(r.status, 200);
    assert_int_equal(mesh_httpc_inflight(c), 0);
    for (int i = 0; i < 10; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(s.res.calls, 0); /* and never a final callback */
    /* the same again, destroying the whole client from inside on_data */
    stream_t s2 = {.c = c, .destroy_in_data = true};
    result_t r2 = {0};
    mesh_httpc_opts_t slow = {.url = ok};
    assert_int_equal(mesh_httpc_request_ext(c, &o, &x, on_stream_done, &s2, &s2.id), 0);
    assert_int_equal(mesh_httpc_request(c, &slow, on_done, &r2, NULL), 0);
    until = uv_hrtime() / 1000000 + 5000;
    while (s2.chunks == 0 && uv_hrtime() / 1000000 < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(s2.chunks, 1);
    assert_null(s2.c);
    f->c = NULL; /* s2.c was the fixture's client */
    drain_loop(&f->loop);
    assert_int_equal(s2.res.calls, 0);
    assert_int_equal(r2.calls, 0); /* destroyed clients call nobody back */
}

static void on_keepalive(uv_timer_t *t)
{
    (void)t;
}

static void test_unref(void **state)
{
    fx_t *f = *state;
    mesh_httpc_t *bg = f->c;
    mesh_httpc_unref(bg);
    char u[128];
    url(u, sizeof u, "/ok");
    mesh_httpc_opts_t o = {.url = u};
    result_t r[2] = {0};
    /* a request just started only arms the client's timer: after unref that
     * timer does not keep the loop alive */
    assert_int_equal(mesh_httpc_request(bg, &o, on_done, &r[0], NULL), 0);
    assert_false(uv_loop_alive(&f->loop));
    /* the work still runs while something else keeps the loop going */
    uv_timer_t keep;
    uv_timer_init(&f->loop, &keep);
    uv_timer_start(&keep, on_keepalive, 10, 10);
    run_until(&f->loop, &r[0], 1, 5000);
    assert_int_equal(r[0].status, 200);
    uv_close((uv_handle_t *)&keep, NULL);
    mesh_httpc_destroy(&f->c); /* closes its connection: the test server is serial */
    /* without unref the same request keeps the loop alive */
    mesh_httpc_t *held = mesh_httpc_new(&f->loop);
    assert_int_equal(mesh_httpc_request(held, &o, on_done, &r[1], NULL), 0);
    assert_true(uv_loop_alive(&f->loop));
    run_until(&f->loop, &r[1], 1, 5000);
    assert_int_equal(r[1].status, 200);
    mesh_httpc_destroy(&held);
    drain_loop(&f->loop);
}

int main(void)
{
    if (srv_start() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_post_headers_body, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_429_retry_after, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_body_bound_and_invalid, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_destroy_in_flight, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_body_as_it_arrives, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_ignores_body_bound, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_abort, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_destroy_in_data_cb, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unref, fx_setup, fx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    shutdown(g_srv.lfd, SHUT_RDWR);
    close(g_srv.lfd);
    return rc;
}
