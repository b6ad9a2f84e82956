/*
 * otlp.c - the OTLP/HTTP JSON span exporter (mesh_otlp.h).
 *
 * libcurl multi on libuv: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION -> one uv_poll_t per socket) and when to call it
 * back (CURLMOPT_TIMERFUNCTION -> one uv_timer_t); uv tells curl what
 * happened with curl_multi_socket_action. Nothing here waits: a collector
 * that is down costs one failed connect per flush interval and the spans of
 * that batch, counted as dropped.
 *
 * The queue is a ring of mesh_span_t copies allocated once, so submitting a
 * span (the hot path) is a memcpy and never allocates. The JSON body is
 * built at flush time, off the request path.
 */
#include "mesh/mesh_otlp.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_log.h"

#define OTLP_PATH       "/v1/traces"
#define OTLP_TIMER_SOON 0 /* ms: flush on the next loop turn */

/* One watched socket. */
typedef struct {
    uv_poll_t poll;
    struct mesh_otlp *x;
    curl_socket_t fd;
} otlp_sock_t;

struct mesh_otlp {
    uv_loop_t *loop;
    char url[MESH_OTLP_URL_MAX + 1];
    char service[MESH_SERVICE_MAX + 1];
    size_t queue_max, batch_max;
    uint64_t interval_ms, timeout_ms;
    /* queue: ring of spans */
    mesh_span_t *ring;
    size_t head, count;
    /* the batch being posted */
    mesh_span_t *batch;
    size_t batch_n;
    char *body; /* JSON text of the POST in flight (curl borrows it) */
    CURLM *multi;
    CURL *easy; /* non-NULL while a POST is in flight */
    struct curl_slist *headers;
    uv_timer_t flush_timer;
    uv_timer_t curl_timer;
    int open_handles; /* timers not yet closed; freed when it reaches 0 */
    bool closing;
    bool failing; /* the last POST failed (log once per streak) */
    mesh_otlp_stats_t stats;
};

static void start_post(mesh_otlp_t *x);
static void on_flush_timer(uv_timer_t *t);

/* Flush on the next loop turn, then every interval again. */
static void flush_soon(mesh_otlp_t *x)
{
    uv_timer_start(&x->flush_timer, on_flush_timer, OTLP_TIMER_SOON, x->interval_ms);
}

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- curl <-> uv glue ------------------------------------------------------- */

static void check_done(mesh_otlp_t *x)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(x->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE || m->easy_handle != x->easy)
            continue;
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        bool ok = m->data.result == CURLE_OK && code >= 200 && code < 300;
        if (ok) {
            x->stats.exported += x->batch_n;
            x->stats.posts_ok++;
            x->failing = false;
        } else {
            x->stats.dropped += x->batch_n;
            x->stats.posts_failed++;
            if (!x->failing)
                mesh_log_warn("otlp", "span export to %s failed (%s, HTTP %ld): dropping", x->url,
                              m->data.result != CURLE_OK ? curl_easy_strerror(m->data.result)
                                                         : "collector refused",
                              code);
            x->failing = true;
        }
        curl_multi_remove_handle(x->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        free(x->body);
        x->body = NULL;
        x->batch_n = 0;
        /* More than a batch waiting: go on without waiting for the interval. */
        if (!x->closing && x->count >= x->batch_max)
            flush_soon(x);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    otlp_sock_t *s = h->data;
    mesh_otlp_t *x = s->x;
    int flags = 0;
    int running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(x->multi, s->fd, flags, &running);
    check_done(x);
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    mesh_otlp_t *x = userp;
    otlp_sock_t *s = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            curl_multi_assign(x->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return -1;
        if (uv_poll_init_socket(x->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->x = x;
        s->fd = fd;
        curl_multi_assign(x->multi, fd, s);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
    mesh_otlp_t *x = t->data;
    int running;
    curl_multi_socket_action(x->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(x);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    mesh_otlp_t *x = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&x->curl_timer);
    else
        uv_timer_start(&x->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t discard_body(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* ---- batching ----------------------------------------------------------------- */

/* Move up to batch_max queued spans into x->batch. */
static void take_batch(mesh_otlp_t *x)
{
    size_t n = x->count < x->batch_max ? x->count : x->batch_max;
    for (size_t k = 0; k < n; k++)
        x->batch[k] = x->ring[(x->head + k) % x->queue_max];
    x->head = (x->head + n) % x->queue_max;
    x->count -= n;
    x->batch_n = n;
}

/* Give up on the batch taken: count it as dropped. */
static void fail_batch(mesh_otlp_t *x, const char *why)
{
    x->stats.dropped += x->batch_n;
    x->stats.posts_failed++;
    if (!x->failing)
        mesh_log_warn("otlp", "span export failed before sending (%s): dropping", why);
    x->failing = true;
    x->batch_n = 0;
    free(x->body);
    x->body = NULL;
}

static void start_post(mesh_otlp_t *x)
{
    if (x->closing || x->easy != NULL || x->count == 0)
        return;
    take_batch(x);
    json_t *req = mesh_trace_otlp_request(x->service, x->batch, x->batch_n);
    x->body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (x->body == NULL) {
        fail_batch(x, "out of memory");
        return;
    }
    x->easy = curl_easy_init();
    if (x->easy == NULL) {
        fail_batch(x, "curl_easy_init");
        return;
    }
    curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
    curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)x->timeout_ms);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)x->timeout_ms);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (curl_multi_add_handle(x->multi, x->easy) != CURLM_OK) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        fail_batch(x, "curl_multi_add_handle");
    }
}

static void on_flush_timer(uv_timer_t *t)
{
    mesh_otlp_t *x = t->data;
    start_post(x);
}

/* ---- public --------------------------------------------------------------------- */

static bool build_url(mesh_otlp_t *x, const char *endpoint)
{
    size_t n = strnlen(endpoint, MESH_OTLP_URL_MAX + 1);
    size_t plen = sizeof(OTLP_PATH) - 1;
    if (n == 0 || n > MESH_OTLP_URL_MAX)
        return false;
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    bool has_path = n >= plen && memcmp(endpoint + n - plen, OTLP_PATH, plen) == 0;
    if (n + (has_path ? 0 : plen) > MESH_OTLP_URL_MAX)
        return false;
    memcpy(x->url, endpoint, n);
    if (!has_path)
        memcpy(x->url + n, OTLP_PATH, plen);
    x->url[n + (has_path ? 0 : plen)] = '\0';
    return true;
}

static void on_timer_closed(uv_handle_t *h)
{
    mesh_otlp_t *x = h->data;
    if (--x->open_handles > 0)
        return;
    free(x->ring);
    free(x->batch);
    free(x);
}

mesh_otlp_t *mesh_otlp_new(uv_loop_t *loop, const mesh_otlp_opts_t *opts)
{
    static uv_once_t curl_once = UV_ONCE_INIT;
    if (loop == NULL || opts == NULL || opts->endpoint == NULL)
        return NULL;
    mesh_otlp_t *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->loop = loop;
    x->queue_max = opts->queue_max ? opts->queue_max : MESH_OTLP_QUEUE_DEFAULT;
    x->batch_max = opts->batch_max ? opts->batch_max : MESH_OTLP_BATCH_DEFAULT;
    x->interval_ms = opts->interval_ms ? opts->interval_ms : MESH_OTLP_INTERVAL_MS_DEFAULT;
    x->timeout_ms = opts->timeout_ms ? opts->timeout_ms : MESH_OTLP_TIMEOUT_MS_DEFAULT;
    if (x->queue_max > MESH_OTLP_QUEUE_MAX || x->batch_max > x->queue_max ||
        !build_url(x, opts->endpoint)) {
        free(x);
        return NULL;
    }
    size_t sn = opts->service != NULL ? strnlen(opts->service, MESH_SERVICE_MAX) : 0;
    memcpy(x->service, opts->service != NULL ? opts->service : "", sn);
    x->service[sn] = '\0';

    /* curl_global_init is not thread-safe: once per process. */
    uv_once(&curl_once, curl_init_once);
    x->ring = calloc(x->queue_max, sizeof(*x->ring));
    x->batch = calloc(x->batch_max, sizeof(*x->batch));
    x->multi = curl_multi_init();
    x->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (x->headers != NULL) {
        /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
        struct curl_slist *h = curl_slist_append(x->headers, "Expect:");
        if (h != NULL)
            x->headers = h;
        else {
            curl_slist_free_all(x->headers);
            x->headers = NULL;
        }
    }
    if (x->ring == NULL || x->batch == NULL || x->multi == NULL || x->headers == NULL)
        goto fail;
    curl_multi_setopt(x->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(x->multi, CURLMOPT_SOCKETDATA, x);
    curl_multi_setopt(x->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(x->multi, CURLMOPT_TIMERDATA, x);
    if (uv_timer_init(loop, &x->flush_timer) != 0)
        goto fail;
    x->flush_timer.data = x;
    x->open_handles++;
    if (uv_timer_init(loop, &x->curl_timer) != 0) {
        mesh_otlp_destroy(&x);
        return NULL;
    }
    x->curl_timer.data = x;
    x->open_handles++;
    /* The exporter alone must not keep a service's loop alive. */
    uv_unref((uv_handle_t *)&x->flush_timer);
    uv_unref((uv_handle_t *)&x->curl_timer);
    uv_timer_start(&x->flush_timer, on_flush_timer, x->interval_ms, x->interval_ms);
    return x;

fail:
    if (x->multi != NULL)
        curl_multi_cleanup(x->multi);
    curl_slist_free_all(x->headers);
    free(x->ring);
    free(x->batch);
    free(x);
    return NULL;
}

int mesh_otlp_submit(mesh_otlp_t *x, const mesh_span_t *sp)
{
    if (x == NULL || sp == NULL || x->closing)
        return MESH_EINVAL;
    if (x->count >= x->queue_max) {
        x->stats.dropped++;
        return MESH_EBUSY;
    }
    x->ring[(x->head + x->count) % x->queue_max] = *sp;
    x->count++;
    x->stats.queued++;
    if (x->count >= x->batch_max && x->easy == NULL)
        flush_soon(x);
    return 0;
}

void mesh_otlp_sink(const mesh_span_t *sp, void *arg)
{
    mesh_otlp_submit(arg, sp);
}

void mesh_otlp_flush(mesh_otlp_t *x)
{
    if (x != NULL)
        start_post(x);
}

size_t mesh_otlp_pending(const mesh_otlp_t *x)
{
    return x != NULL ? x->count : 0;
}

bool mesh_otlp_busy(const mesh_otlp_t *x)
{
    return x != NULL && x->easy != NULL;
}

void mesh_otlp_stats(const mesh_otlp_t *x, mesh_otlp_stats_t *out)
{
    if (out == NULL)
        return;
    if (x == NULL)
        memset(out, 0, sizeof(*out));
    else
        *out = x->stats;
}

void mesh_otlp_destroy(mesh_otlp_t **x_p)
{
    if (x_p == NULL || *x_p == NULL)
        return;
    mesh_otlp_t *x = *x_p;
    *x_p = NULL;
    x->closing = true;
    if (x->easy != NULL) {
        x->stats.dropped += x->batch_n;
        curl_multi_remove_handle(x->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    x->stats.dropped += x->count;
    x->count = 0;
    free(x->body);
    x->body = NULL;
    curl_multi_cleanup(x->multi);
    x->multi = NULL;
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    uv_timer_stop(&x->flush_timer);
    uv_timer_stop(&x->curl_timer);
    int n = x->open_handles;
    if (n >= 1)
        uv_close((uv_handle_t *)&x->flush_timer, on_timer_closed);
    if (n >= 2)
        uv_close((uv_handle_t *)&x->curl_timer, on_timer_closed);
}
