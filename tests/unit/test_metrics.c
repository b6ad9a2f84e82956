/*
 * test_metrics.c - the metrics registry (mesh_metrics.h), its text
 * rendering, the /metrics listener (mesh_metrics_http.h) and the strict
 * text-format parser the integration tests use (harness/prom_parse.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_metrics.h"
#include "mesh/mesh_metrics_http.h"
#include "llm_metrics.h"
#include "mesh_harness.h"
#include "prom_parse.h"

#define EVENTS       100000
#define HTTP_WAIT_MS 5000
#define RESP_MAX     (256 * 1024)

static char *render(mesh_metrics_t *reg, size_t *len_out)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(mesh_metrics_render(reg, &out, &len), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    if (len_out)
        *len_out = len;
    return out;
}

/* Render and parse strictly; the parsed document (caller frees). */
static mh_prom_t *render_parse(mesh_metrics_t *reg)
{
    size_t len;
    char *text = render(reg, &len);
    char err[MH_PROM_ERR_MAX];
    mh_prom_t *doc = NULL;
    int rc = mh_prom_parse(text, len, &doc, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "parse failed: %s\n---\n%s---\n", err, text);
    free(text);
    assert_int_equal(rc, 0);
    return doc;
}

/* ---- rendering ----------------------------------------------------------- */

static void test_counter_gauge_exact_text(void **st)
{
    (void)st;
    mesh_metrics_t *reg = mesh_metrics_new();
    mesh_metric_t *c = mesh_metrics_counter(reg, "t_requests_total", "Requests.", "svc,status", 8);
    mesh_metric_t *g = mesh_metrics_gauge(reg, "t_depth", "Queue depth.", NULL, 1);
    assert_non_null(c);
    assert_non_null(g);
    mesh_counter_inc(mesh_metric_at(c, "llm", "ok"));
    mesh_counter_add(mesh_metric_at(c, "llm", "ok"), 2);
    mesh_counter_inc(mesh_metric_at(c, "tools", "overloaded"));
    mesh_gauge_set(mesh_metric_with(g, NULL), 7);
    mesh_gauge_add(mesh_metric_with(g, NULL), -2.5);
    char *text = render(reg, NULL);
    assert_string_equal(text, "# HELP t_requests_total Requests.\n"
                              "# TYPE t_requests_total counter\n"
                              "t_requests_total{svc=\"llm\",status=\"ok\"} 3\n"
                              "t_requests_total{svc=\"tools\",status=\"overloaded\"} 1\n"
                              "# HELP t_depth Queue depth.\n"
                              "# TYPE t_depth gauge\n"
                              "t_depth 4.5\n");
    free(text);
    mesh_metrics_destroy(&reg);
    assert_null(reg);
}

static void test_escaping(void **st)
{
    (void)st;
    mesh_metrics_t *reg = mesh_metrics_new();
    mesh_metric_t *c =
        mesh_metrics_counter(reg, "t_esc_total", "back\\slash and\nnewline \"quoted\"", "v", 8);
    mesh_counter_inc(mesh_metric_at(c, "a\\b\"c\nd"));
    /* Invalid UTF-8 is stored as '?', valid multi-byte text is kept. */
    mesh_counter_inc(mesh_metric_at(c, "x\xff\xfey"));
    mesh_counter_inc(mesh_metric_at(c, "保单"));
    char *text = render(reg, NULL);
    assert_non_null(strstr(text, "# HELP t_esc_total back\\\\slash and\\nnewline \"quoted\"\n"));
    assert_non_null(strstr(text, "t_esc_total{v=\"a\\\\b\\\"c\\nd\"} 1\n"));
    assert_non_null(strstr(text, "t_esc_total{v=\"x??y\"} 1\n"));
    assert_non_null(strstr(text, "t_esc_total{v=\"保单\"} 1\n"));
    free(text);
    mh_prom_t *doc = render_parse(reg);
    assert_int_equal(mh_prom_find(doc, "t_esc_total", "v=a\\b\"c\nd", NULL), 1);
    mh_prom_free(&doc);
    mesh_metrics_destroy(&reg);
}

static void test_histogram_invariants(void **st)
{
    (void)st;
    static const double bounds[] = {0.005, 0.01, 0.1, 1};
    mesh_metrics_t *reg = mesh_metrics_new();
    mesh_metric_t *h = mesh_metrics_histogram(reg, "t_latency_seconds", "Latency.", "op", 4, bounds,
                                              sizeof(bounds) / sizeof(bounds[0]));
    assert_non_null(h);
    mesh_series_t *s = mesh_metric_at(h, "get");
    const double obs[] = {0.001, 0.005, 0.007, 0.05, 0.5, 0.5, 3, 100};
    double sum = 0;
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
        mesh_histogram_observe(s, obs[i]);
        sum += obs[i];
    }
    mesh_histogram_observe(s, NAN); /* ignored */
    mesh_histogram_observe(mesh_metric_at(h, "put"), 0.02);
    assert_true(mesh_series_value(s) == 8);
    assert_true(fabs(mesh_series_sum(s) - sum) < 1e-9);

    char *text = render(reg, NULL);
    /* Cumulative: le is inclusive (0.005 counts in the 0.005 bucket). */
    assert_non_null(strstr(text, "t_latency_seconds_bucket{op=\"get\",le=\"0.005\"} 2\n"
                                 "t_latency_seconds_bucket{op=\"get\",le=\"0.01\"} 3\n"
                                 "t_latency_seconds_bucket{op=\"get\",le=\"0.1\"} 4\n"
                                 "t_latency_seconds_bucket{op=\"get\",le=\"1\"} 6\n"
                                 "t_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 8\n"
                                 "t_latency_seconds_sum{op=\"get\"} 104.063\n"
                                 "t_latency_seconds_count{op=\"get\"} 8\n"));
    free(text);
    mh_prom_t *doc = render_parse(reg);
    assert_string_equal(mh_prom_type(doc, "t_latency_seconds"), "histogram");
    assert_true(mh_prom_sum(doc, "t_latency_seconds_count", "op=put") == 1);
    assert_true(mh_prom_sum(doc, "t_latency_seconds_bucket", "op=put,le=0.01") == 0);
    assert_true(mh_prom_sum(doc, "t_latency_seconds_bucket", "op=put,le=0.1") == 1);
    mh_prom_free(&doc);
    mesh_metrics_destroy(&reg);
}

static void test_fractional_counter_and_empty(void **st)
{
    (void)st;
    mesh_metrics_t *reg = mesh_metrics_new();
    char *text = render(reg, NULL);
    assert_string_equal(text, ""); /* an empty registry renders as an empty document */
    free(text);
    mesh_metric_t *c = mesh_metrics_counter(reg, "t_cost_usd_total", "Cost.", "tier", 4);
    mesh_metric_t *unused = mesh_metrics_counter(reg, "t_unused_total", "Never used.", "x", 4);
    assert_non_null(unused);
    mesh_series_t *s = mesh_metric_at(c, "small");
    mesh_counter_addf(s, 0.25);
    mesh_counter_addf(s, -1);       /* counters never go down */
    mesh_counter_addf(s, INFINITY); /* nor become infinite */
    mesh_counter_inc(s);
    assert_true(mesh_series_value(s) == 1.25);
    text = render(reg, NULL);
    assert_non_null(strstr(text, "t_cost_usd_total{tier=\"small\"} 1.25\n"));
    /* A family with labels and no series shows HELP and TYPE only. */
    assert_non_null(strstr(text, "# TYPE t_unused_total counter\n"));
    assert_null(strstr(text, "t_unused_total{"));
    free(text);
    mesh_metrics_destroy(&reg);
}

/* ---- registration and cardinality ---------------------------------------- */

static void test_registration_rules(void **st)
{
    (void)st;
    static const double b[] = {1, 2};
    static const double bad[] = {2, 1};
    mesh_metrics_t *reg = mesh_metrics_new();
    mesh_metric_t *a = mesh_metrics_counter(reg, "t_a_total", "A.", "x,y", 4);
    assert_non_null(a);
    /* Same shape: the same family (several workers in one process share it). */
    assert_ptr_equal(mesh_metrics_counter(reg, "t_a_total", "other help", "x,y", 4), a);
    /* Other type or labels: refused. */
    assert_null(mesh_metrics_gauge(reg, "t_a_total", "A.", "x,y", 4));
    assert_null(mesh_metrics_counter(reg, "t_a_total", "A.", "x", 4));
    /* Invalid names, labels, bounds. */
    assert_null(mesh_metrics_counter(reg, "1abc", "bad", NULL, 1));
    assert_null(mesh_metrics_counter(reg, "a-b", "bad", NULL, 1));
    assert_null(mesh_metrics_counter(reg, "", "bad", NULL, 1));
    assert_null(mesh_metrics_counter(reg, "t_b", "bad", "__x", 1));
    assert_null(mesh_metrics_counter(reg, "t_b", "bad", "x,x", 1));
    assert_null(mesh_metrics_counter(reg, "t_b", "bad", "x,", 1));
    assert_null(mesh_metrics_counter(reg, "t_b", "bad", "a,b,c,d,e", 1));
    assert_null(mesh_metrics_counter(reg, "t_b", "bad", "x", 0));
    assert_null(mesh_metrics_histogram(reg, "t_h", "bad", "le", 1, b, 2));
    assert_null(mesh_metrics_histogram(reg, "t_h", "bad", NULL, 1, bad, 2));
    assert_null(mesh_metrics_histogram(reg, "t_h", "bad", NULL, 1, b, 0));
    assert_non_null(mesh_metrics_counter(reg, "ns:t_ok_total", "colons are fine", NULL, 1));
    /* NULL everywhere is harmless. */
    mesh_counter_inc(NULL);
    mesh_gauge_set(NULL, 1);
    mesh_histogram_observe(NULL, 1);
    assert_null(mesh_metric_with(NULL, NULL));
    assert_null(mesh_metrics_counter(NULL, "t_x", "x", NULL, 1));
    mesh_metrics_destroy(&reg);
}

static void test_cardinality_bounded(void **st)
{
    (void)st;
    mesh_metrics_t *reg = mesh_metrics_new();
    mesh_metric_t *c = mesh_metrics_counter(reg, "t_ops_total", "Ops.", "op", 3);
    char op[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(op, sizeof(op), "op%d", i % 50);
        mesh_counter_inc(mesh_metric_at(c, op));
    }
    assert_int_equal(mesh_metric_series_count(c), 3);
    /* Long values are truncated to MESH_METRICS_LABEL_VALUE_MAX bytes. */
    char longv[3 * MESH_METRICS_LABEL_VALUE_MAX];
    memset(longv, 'a', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    mh_prom_t *doc = render_parse(reg);
    assert_int_equal(mh_prom_find(doc, "t_ops_total", NULL, NULL), 4); /* 3 + overflow */
    assert_true(mh_prom_sum(doc, "t_ops_total", "op=op0") == 20);
    assert_true(mh_prom_sum(doc, "t_ops_total", "op=" MESH_METRICS_OVERFLOW_VALUE) == 940);
    mh_prom_free(&doc);

    mesh_metric_t *l = mesh_metrics_counter(reg, "t_long_total", "Long.", "v", 2);
    mesh_series_t *s1 = mesh_metric_at(l, longv);
    longv[2 * MESH_METRICS_LABEL_VALUE_MAX] = '\0'; /* same first 64 bytes */
    assert_ptr_equal(mesh_metric_at(l, longv), s1);
    mesh_metrics_destroy(&reg);
}

/* ---- no allocation on the hot path --------------------------------------- */

static void test_no_allocation_per_event(void **st)
{
    (void)st;
    static const double b[] = {0.001, 0.01, 0.1, 1};
    mesh_metrics_t *reg = mesh_metrics_new();
    mesh_metric_t *c = mesh_metrics_counter(reg, "t_ev_total", "Events.", "svc,op,status", 64);
    mesh_metric_t *h = mesh_metrics_histogram(reg, "t_ev_seconds", "Latency.", "svc", 8, b, 4);
    mesh_metric_t *g = mesh_metrics_gauge(reg, "t_ev_inflight", "In flight.", "svc", 8);
    static const char *const ops[] = {"get", "put", "del", "append"};
    static const char *const sts[] = {"ok", "overloaded", "deadline_exceeded"};

    /* Everything below, new series included, lands in preallocated slots. */
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < EVENTS; i++) {
        const char *op = ops[i % 4], *stt = sts[i % 3];
        mesh_counter_inc(mesh_metric_at(c, "memory", op, stt));
        mesh_histogram_observe(mesh_metric_at(h, "memory"), (double)(i % 2000) / 1000.0);
        mesh_gauge_add(mesh_metric_at(g, "memory"), (i & 1) ? -1 : 1);
    }
    struct mallinfo2 after = mallinfo2();
    assert_int_equal(after.uordblks, before.uordblks);
    assert_int_equal(after.hblkhd, before.hblkhd);

    assert_int_equal(mesh_metric_series_count(c), 12);
    assert_true(mesh_series_value(mesh_metric_at(h, "memory")) == EVENTS);
    assert_true(mesh_series_value(mesh_metric_at(g, "memory")) == 0);
    mesh_metrics_destroy(&reg);
}

/* ---- collectors ---------------------------------------------------------- */

static void collect_depth(mesh_metrics_t *reg, void *arg)
{
    int *calls = arg;
    (*calls)++;
    mesh_metric_t *g = mesh_metrics_gauge(reg, "t_collected", "Set at scrape time.", NULL, 1);
    mesh_gauge_set(mesh_metric_with(g, NULL), 40 + *calls);
}

static void test_collectors(void **st)
{
    (void)st;
    mesh_metrics_t *reg = mesh_metrics_new();
    int calls = 0;
    assert_int_equal(mesh_metrics_on_collect(reg, collect_depth, &calls), 0);
    char *text = render(reg, NULL);
    assert_non_null(strstr(text, "t_collected 41\n"));
    free(text);
    mesh_metrics_off_collect(reg, collect_depth, &calls);
    text = render(reg, NULL);
    assert_non_null(strstr(text, "t_collected 41\n")); /* not called again */
    free(text);
    assert_int_equal(calls, 1);
    assert_int_equal(mesh_metrics_on_collect(reg, NULL, NULL), MESH_EINVAL);
    mesh_metrics_destroy(&reg);
}

/* ---- the strict parser rejects what the format forbids ------------------- */

static void test_parser_strictness(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "x 1",                                                            /* no final newline */
        "x 1\r\n",                                                        /* CR */
        "1x 1\n",                                                         /* name */
        "x{1a=\"v\"} 1\n",                                                /* label name */
        "x{a=\"v\\t\"} 1\n",                                              /* escape */
        "x{a=\"v} 1\n",                                                   /* unterminated */
        "x{a=\"v\",a=\"w\"} 1\n",                                         /* duplicate label */
        "x one\n",                                                        /* value */
        "x 1 12.5\n",                                                     /* timestamp */
        "x 1\nx 2\n",                                                     /* duplicate sample */
        "# TYPE x counter\n# TYPE x counter\nx 1\n",                      /* two TYPEs */
        "# HELP x a\n# HELP x b\nx 1\n",                                  /* two HELPs */
        "x 1\n# TYPE x counter\n",                                        /* TYPE after sample */
        "# TYPE x bogus\nx 1\n",                                          /* type */
        "# HELP x bad \\t escape\nx 1\n",                                 /* HELP escape */
        "# TYPE x counter\nx -1\n",                                       /* negative counter */
        "x{a=\"1\"} 1\ny 1\nx{a=\"2\"} 1\n",                              /* not grouped */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* no +Inf */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",                     /* le order */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n", /* +Inf != count */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",          /* no _sum */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n",            /* no _count */
        "# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n",              /* bucket w/o le */
        "x{a=\"\xff\"} 1\n",                                                 /* UTF-8 */
    };
    static const char *const good[] = {
        "",
        "# a free comment\n\nx 1\n",
        "x{a=\"v\",} 1 1395066363000\n",
        "# HELP x h\n# TYPE x gauge\nx{a=\"q\\\"\\n\\\\\"} -Inf\nx{a=\"2\"} NaN\n",
        "# TYPE h histogram\nh_bucket{a=\"1\",le=\"0.5\"} 0\nh_bucket{a=\"1\",le=\"+Inf\"} 2\n"
        "h_sum{a=\"1\"} 3\nh_count{a=\"1\"} 2\n",
    };
    char err[MH_PROM_ERR_MAX];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mh_prom_t *doc = NULL;
        int rc = mh_prom_parse(bad[i], strlen(bad[i]), &doc, err, sizeof(err));
        if (rc == 0)
            fprintf(stderr, "accepted bad document %zu: %s\n", i, bad[i]);
        assert_int_equal(rc, -1);
        assert_null(doc);
        assert_true(strncmp(err, "line ", 5) == 0);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        mh_prom_t *doc = NULL;
        int rc = mh_prom_parse(good[i], strlen(good[i]), &doc, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "rejected good document %zu: %s\n", i, err);
        assert_int_equal(rc, 0);
        mh_prom_free(&doc);
    }
}

/* ---- the /metrics listener ----------------------------------------------- */

/*
 * Send req to 127.0.0.1:port from this thread while running loop until the
 * server closes the connection. Returns the HTTP status (0 when none); *resp
 * (malloc'd) gets everything read.
 */
static int http_exchange(uv_loop_t *loop, int port, const char *req, size_t req_len, char **resp)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The kernel completes the handshake from the backlog; the loop accepts later. */
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    size_t off = 0;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    char *buf = calloc(1, RESP_MAX + 1);
    size_t len = 0;
    bool eof = false;
    uint64_t until = mh_now_ms() + HTTP_WAIT_MS;
    while (!eof && mh_now_ms() < until) {
        if (off < req_len) {
            ssize_t w = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                off = req_len; /* the server closed on us: read what it said */
        }
        uv_run(loop, UV_RUN_NOWAIT);
        ssize_t r = recv(fd, buf + len, RESP_MAX - len, 0);
        if (r > 0)
            len += (size_t)r;
        else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            eof = true;
    }
    close(fd);
    assert_true(eof);
    int status = 0;
    if (len >= 12 && memcmp(buf, "HTTP/1.1 ", 9) == 0)
        status = atoi(buf + 9);
    *resp = buf;
    return status;
}

static void on_keepalive(uv_timer_t *t)
{
    (void)t;
}

static int probe_ready(void *arg, char *why, size_t why_size)
{
    int rc = *(int *)arg;
    if (rc != 0)
        snprintf(why, why_size, "redis \"down\"\x01");
    return rc;
}

static void test_http_listener(void **st)
{
    (void)st;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    mesh_metrics_t *reg = mesh_metrics_new();
    mesh_metric_t *c = mesh_metrics_counter(reg, "t_http_total", "Scrape test.", "k", 4);
    mesh_counter_add(mesh_metric_at(c, "v"), 42);
    /* The listener's handles are unref'd (they never keep a service alive); a
     * ref'd timer stands in for the service's own handles so uv_run polls. */
    uv_timer_t keep;
    uv_timer_init(&loop, &keep);
    uv_timer_start(&keep, on_keepalive, 3600 * 1000, 0);
    mesh_metrics_http_t *srv = mesh_metrics_http_new(&loop, reg);
    assert_non_null(srv);
    assert_int_equal(mesh_metrics_http_listen(srv, "127.0.0.1", 0), 0);
    int port = mesh_metrics_http_port(srv);
    assert_true(port > 0);
    assert_int_equal(mesh_metrics_http_listen(srv, "not-an-ip", 1), MESH_EINVAL);

    char *resp = NULL;
    const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    assert_int_equal(http_exchange(&loop, port, get, sizeof(get) - 1, &resp), 200);
    assert_non_null(strstr(resp, "Content-Type: " MESH_METRICS_CONTENT_TYPE "\r\n"));
    char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    char err[MH_PROM_ERR_MAX];
    mh_prom_t *doc = NULL;
    assert_int_equal(mh_prom_parse(body, strlen(body), &doc, err, sizeof(err)), 0);
    assert_true(mh_prom_sum(doc, "t_http_total", "k=v") == 42);
    mh_prom_free(&doc);
    free(resp);
    assert_int_equal(mesh_metrics_http_scrapes(srv), 1);

    const char q[] = "GET /metrics?x=1 HTTP/1.0\n\n";
    assert_int_equal(http_exchange(&loop, port, q, sizeof(q) - 1, &resp), 200);
    free(resp);
    const char nf[] = "GET /other HTTP/1.1\r\n\r\n";
    assert_int_equal(http_exchange(&loop, port, nf, sizeof(nf) - 1, &resp), 404);
    free(resp);
    const char post[] = "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(http_exchange(&loop, port, post, sizeof(post) - 1, &resp), 405);
    free(resp);
    const char junk[] = "\x01\x02 garbage\r\n\r\n";
    assert_int_equal(http_exchange(&loop, port, junk, sizeof(junk) - 1, &resp), 400);
    free(resp);
    char *big = malloc(MESH_METRICS_HTTP_HEAD_MAX + 64);
    memset(big, 'a', MESH_METRICS_HTTP_HEAD_MAX + 64);
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    assert_int_equal(http_exchange(&loop, port, big, MESH_METRICS_HTTP_HEAD_MAX + 64, &resp), 431);
    free(resp);
    free(big);
    assert_int_equal(mesh_metrics_http_scrapes(srv), 2);

    /* Probes: /healthz always 200; /readyz follows the callback, 200 without one. */
    const char hz[] = "GET /healthz HTTP/1.1\r\n\r\n";
    assert_int_equal(http_exchange(&loop, port, hz, sizeof(hz) - 1, &resp), 200);
    assert_non_null(strstr(resp, "{\"status\":\"ok\"}"));
    free(resp);
    const char rz[] = "GET /readyz HTTP/1.1\r\n\r\n";
    assert_int_equal(http_exchange(&loop, port, rz, sizeof(rz) - 1, &resp), 200);
    free(resp);
    int ready_rc = MESH_EUNAVAIL;
    mesh_metrics_http_set_ready(srv, probe_ready, &ready_rc);
    assert_int_equal(http_exchange(&loop, port, rz, sizeof(rz) - 1, &resp), 503);
    /* the reason is sanitised: the quote in it cannot break the JSON body */
    assert_non_null(strstr(resp, "{\"status\":\"not_ready\",\"reason\":\"redis ?down??\"}"));
    free(resp);
    ready_rc = 0;
    assert_int_equal(http_exchange(&loop, port, rz, sizeof(rz) - 1, &resp), 200);
    assert_non_null(strstr(resp, "{\"status\":\"ready\"}"));
    free(resp);
    const char rzpost[] = "POST /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(http_exchange(&loop, port, rzpost, sizeof(rzpost) - 1, &resp), 405);
    free(resp);
    assert_int_equal(mesh_metrics_http_scrapes(srv), 2); /* probes are not scrapes */

    /* A second listener on the same port fails cleanly (the service then serves without). */
    mesh_metrics_http_t *dup = mesh_metrics_http_new(&loop, reg);
    assert_int_equal(mesh_metrics_http_listen(dup, "127.0.0.1", port), MESH_EIO);
    mesh_metrics_http_destroy(&dup);

    mesh_metrics_http_destroy(&srv);
    assert_null(srv);
    uv_close((uv_handle_t *)&keep, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    mesh_metrics_destroy(&reg);
}

/* The registry libmesh records into is one per process. */
static void test_global_registry(void **st)
{
    (void)st;
    mesh_metrics_t *g = mesh_metrics_global();
    assert_non_null(g);
    assert_ptr_equal(mesh_metrics_global(), g);
    mesh_metrics_global_free();
}

/* The llm price table (MESH_LLM_PRICES) and the cost it yields. */
static void test_llm_prices_and_cost(void **st)
{
    (void)st;
    char err[256];
    assert_int_equal(llm_metrics_init("small=0.5:2,large=10:30", err, sizeof(err)), 0);
    assert_true(llm_metrics_price("small", 0) == 0.5);
    assert_true(llm_metrics_price("large", 1) == 30);
    assert_true(llm_metrics_price("other", 0) == 0);
    static const char *const bad[] = {"small",  "small=1", "=1:2",    "s=a:1",
                                      "s=1:-1", "s=1:2,",  "s=1:2:3", "s=inf:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(llm_metrics_init(bad[i], err, sizeof(err)), MESH_ECONFIG);
        assert_non_null(strstr(err, "MESH_LLM_PRICES"));
    }
    assert_int_equal(llm_metrics_init("small=0.5:2", err, sizeof(err)), 0);
    llm_call_t call;
    memset(&call, 0, sizeof(call));
    call.agent = "policy_qa";
    call.tier = "small";
    llm_result_t res;
    memset(&res, 0, sizeof(res));
    res.usage.prompt_tokens = 1000000;
    res.usage.completion_tokens = 500000;
    llm_metrics_call(&call, 0, &res, uv_hrtime(), 0);
    call.tier = "";
    llm_metrics_call(&call, MESH_ETIMEDOUT, NULL, uv_hrtime(), 0);
    mh_prom_t *doc = render_parse(mesh_metrics_global());
    /* 1M in at 0.5 + 0.5M out at 2 = 1.5 USD */
    assert_true(fabs(mh_prom_sum(doc, "mesh_llm_cost_usd_total", "tier=small,agent=policy_qa") -
                     1.5) < 1e-9);
    assert_true(mh_prom_sum(doc, "mesh_llm_tokens_total", "tier=small,direction=out") == 500000);
    assert_true(mh_prom_sum(doc, "mesh_llm_calls_total", "tier=-,status=deadline_exceeded") == 1);
    assert_true(mh_prom_sum(doc, "mesh_llm_time_to_first_token_seconds_count", "tier=small") == 1);
    mh_prom_free(&doc);
    mesh_metrics_global_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge_exact_text),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_histogram_invariants),
        cmocka_unit_test(test_fractional_counter_and_empty),
        cmocka_unit_test(test_registration_rules),
        cmocka_unit_test(test_cardinality_bounded),
        cmocka_unit_test(test_no_allocation_per_event),
        cmocka_unit_test(test_collectors),
        cmocka_unit_test(test_parser_strictness),
        cmocka_unit_test(test_http_listener),
        cmocka_unit_test(test_global_registry),
        cmocka_unit_test(test_llm_prices_and_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
