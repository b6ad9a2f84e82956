/*
 * test_channel_deliver.c - the gateway's outbound delivery without a mesh:
 * channel_split (code points for Telegram, UTF-8-safe bytes for WeCom) and
 * gateway_channels_deliver against a tiny Telegram API server in a thread
 * of this test: a 9000-character answer leaves as three sendMessage calls
 * of 4096 + 4096 + 808 characters, in order, whose texts put together are
 * the answer; "web" and a webhook without callback send nothing; unknown
 * and unconfigured channels are refused.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "channel_int.h"
#include "channels.h"
#include "gateway.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_metrics.h"

/* ---- a Telegram API stand-in: records sendMessage bodies ----------------- */

static int s_lfd, s_port;
static pthread_mutex_t s_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *s_bodies; /* array of the request bodies (parsed) */

static void *srv_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(s_lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        size_t cap = 256 * 1024, len = 0;
        char *buf = malloc(cap + 1);
        for (;;) {
            ssize_t n = read(fd, buf + len, cap - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (!end)
                continue;
            char *cl = strcasestr(buf, "content-length:");
            size_t clen = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
            size_t total = (size_t)(end + 4 - buf) + clen;
            if (len < total)
                continue;
            json_t *b = json_loadb(end + 4, clen, 0, NULL);
            pthread_mutex_lock(&s_mu);
            json_array_append_new(s_bodies, b ? b : json_null());
            pthread_mutex_unlock(&s_mu);
            static const char ok[] = "{\"ok\":true,\"result\":{\"message_id\":1}}";
            char resp[256];
            snprintf(resp, sizeof resp,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\n\r\n%s",
                     sizeof ok - 1, ok);
            (void)!write(fd, resp, strlen(resp));
            memmove(buf, buf + total, len - total);
            len -= total;
            buf[len] = '\0';
        }
        free(buf);
        close(fd);
    }
}

static size_t bodies(void)
{
    pthread_mutex_lock(&s_mu);
    size_t n = json_array_size(s_bodies);
    pthread_mutex_unlock(&s_mu);
    return n;
}

/* ---- helpers ------------------------------------------------------------- */

static size_t cps(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static void test_split(void **state)
{
    (void)state;
    /* 9000 characters, alternating 1-byte and 2-byte ones */
    size_t n = 0;
    char *t = malloc(9000 * 2 + 1);
    for (int i = 0; i < 9000; i++) {
        if (i % 2) {
            t[n++] = (char)0xC3;
            t[n++] = (char)0xA9; /* é */
        } else {
            t[n++] = 'a';
        }
    }
    size_t a = channel_split(t, n, 4096, false);
    assert_int_equal(cps(t, a), 4096);
    size_t b = channel_split(t + a, n - a, 4096, false);
    assert_int_equal(cps(t + a, b), 4096);
    size_t c = channel_split(t + a + b, n - a - b, 4096, false);
    assert_int_equal(c, n - a - b);
    assert_int_equal(cps(t + a + b, c), 808);
    /* bytes mode never cuts a character: 3-byte characters, 2048 bytes -> 2046 */
    char zh[3000];
    for (int i = 0; i < 1000; i++)
        memcpy(zh + 3 * i, "\xe4\xbd\xa0", 3); /* 你 */
    size_t z = channel_split(zh, 3000, 2048, true);
    assert_int_equal(z, 2046);
    assert_int_equal(channel_split("short", 5, 4096, false), 5);
    free(t);
}

typedef struct {
    uv_loop_t loop;
    void *zctx;
    gateway_t *gw;
} fx_t;

static gateway_t *make_gateway(fx_t *f)
{
    gateway_config_t cfg = {
        .http_host = "127.0.0.1",
        .max_body = 256 * 1024,
        .max_header = 8192,
        .idle_ms = 2000,
        .max_conns = 64,
        .turn_timeout_ms = 3000,
        .client = {.n_endpoints = 1,
                   .heartbeat_ms = 100,
                   .liveness = 3,
                   .reconnect_min_ms = 50,
                   .reconnect_max_ms = 200},
    };
    cfg.client.endpoints[0] = "tcp://127.0.0.1:1"; /* no router: nothing goes to a mesh */
    mesh_zsock_opts_default(&cfg.client.zopts);
    return gateway_new(&f->loop, f->zctx, &cfg);
}

static void test_deliver_telegram_split(void **state)
{
    (void)state;
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", s_port);
    setenv("MESH_TELEGRAM_API_BASE", base, 1);
    setenv("MESH_TELEGRAM_BOT_TOKEN", "123:tok", 1);
    setenv("MESH_TELEGRAM_SECRET_TOKEN", "secret", 1);
    setenv("MESH_CHANNEL_BACKOFF_MS", "10", 1);
    fx_t f = {0};
    uv_loop_init(&f.loop);
    f.zctx = zmq_ctx_new();
    f.gw = make_gateway(&f);
    assert_non_null(f.gw);

    size_t n = 0;
    char *t = malloc(9000 * 3 + 1);
    for (int i = 0; i < 9000; i++) {
        if (i % 3 == 0) {
            memcpy(t + n, "\xe4\xbd\xa0", 3);
            n += 3;
        } else {
            t[n++] = (char)('a' + i % 26);
        }
    }
    json_t *to = json_pack("{s:i}", "chat_id", 4242);
    assert_int_equal(gateway_channels_deliver(f.gw, "tg:4242", "telegram", to, t, n), 0);
    /* nothing to send for these */
    assert_int_equal(gateway_channels_deliver(f.gw, "c", "web", to, "x", 1), 0);
    json_t *sync_to = json_object();
    assert_int_equal(gateway_channels_deliver(f.gw, "c", "webhook", sync_to, "x", 1), 0);
    assert_int_equal(gateway_channels_deliver(f.gw, "c", "irc", to, "x", 1), MESH_EINVAL);
    assert_int_equal(gateway_channels_deliver(f.gw, "c", "slack", to, "x", 1), MESH_ENOTFOUND);
    uint64_t until = uv_hrtime() / 1000000 + 10000;
    while (bodies() < 3 && uv_hrtime() / 1000000 < until)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_int_equal(bodies(), 3);
    /* in order, 4096 + 4096 + 808 characters, together the whole answer */
    size_t off = 0;
    static const size_t want[] = {4096, 4096, 808};
    for (size_t i = 0; i < 3; i++) {
        json_t *b = json_array_get(s_bodies, i);
        assert_int_equal(json_integer_value(json_object_get(b, "chat_id")), 4242);
        const char *s = json_string_value(json_object_get(b, "text"));
        size_t l = json_string_length(json_object_get(b, "text"));
        assert_int_equal(cps(s, l), want[i]);
        assert_memory_equal(s, t + off, l);
        off += l;
    }
    assert_int_equal(off, n);
    json_decref(to);
    json_decref(sync_to);
    free(t);
    gateway_destroy(&f.gw);
    for (int i = 0; i < 100 && uv_loop_alive(&f.loop); i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    zmq_ctx_term(f.zctx);
}

/* A queue bound of 2 and an answer of 3 parts: the third part is refused
 * (MESH_EBUSY) and counted as failed (recorded; without a mesh the record
 * itself fails and is logged), the first two are still delivered. */
static void test_queue_full(void **state)
{
    (void)state;
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", s_port);
    setenv("MESH_TELEGRAM_API_BASE", base, 1);
    setenv("MESH_TELEGRAM_BOT_TOKEN", "123:tok", 1);
    setenv("MESH_TELEGRAM_SECRET_TOKEN", "secret", 1);
    setenv("MESH_CHANNEL_QUEUE_MAX", "2", 1);
    fx_t f = {0};
    uv_loop_init(&f.loop);
    f.zctx = zmq_ctx_new();
    f.gw = make_gateway(&f);
    assert_non_null(f.gw);
    size_t before = bodies();
    char *t = malloc(9000);
    memset(t, 'x', 9000);
    json_t *to = json_pack("{s:i}", "chat_id", 7);
    assert_int_equal(gateway_channels_deliver(f.gw, "tg:7", "telegram", to, t, 9000), MESH_EBUSY);
    uint64_t until = uv_hrtime() / 1000000 + 10000;
    while (bodies() < before + 2 && uv_hrtime() / 1000000 < until)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_int_equal(bodies(), before + 2);
    char *text = NULL;
    size_t len = 0;
    mesh_metrics_render(mesh_metrics_global(), &text, &len);
    assert_non_null(
        strstr(text, "mesh_channel_deliveries_total{channel=\"telegram\",outcome=\"failed\"} 1"));
    free(text);
    json_decref(to);
    free(t);
    unsetenv("MESH_CHANNEL_QUEUE_MAX");
    gateway_destroy(&f.gw);
    for (int i = 0; i < 100 && uv_loop_alive(&f.loop); i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    zmq_ctx_term(f.zctx);
}

int main(void)
{
    mesh_log_init("test_channel_deliver", MESH_LOG_ERROR);
    s_bodies = json_array();
    s_lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof a;
    pthread_t th;
    if (bind(s_lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s_lfd, 8) != 0 ||
        getsockname(s_lfd, (struct sockaddr *)&a, &sl) != 0)
        return 1;
    s_port = ntohs(a.sin_port);
    pthread_create(&th, NULL, srv_main, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_deliver_telegram_split),
        cmocka_unit_test(test_queue_full),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    shutdown(s_lfd, SHUT_RDWR);
    close(s_lfd);
    json_decref(s_bodies);
    return rc;
}
