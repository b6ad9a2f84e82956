/*
 * otlp.c - the OTLP/HTTP JSON span exporter (mesh_otlp.h).
 *
 * The POSTs go through mesh_httpc (libcurl multi on the service's libuv
 * loop, lib/mesh/httpc.c) with the response body discarded as it arrives.
 * Nothing here waits: a collector that is down costs one failed connect
 * per flush interval and the spans of that batch, counted as dropped.
 *
 * The queue is a ring of mesh_span_t copies allocated once, so submitting a
 * span (the hot path) is a memcpy and never allocates. The JSON body is
 * built at flush time, off the request path.
 */
#include "mesh/mesh_otlp.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_httpc.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_log.h"

#define OTLP_PATH       "/v1/traces"
#define OTLP_TIMER_SOON 0 /* ms: flush on the next loop turn */

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
    mesh_httpc_t *httpc;
    uint64_t post_id; /* non-zero while a POST is in flight */
    uv_timer_t flush_timer;
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

/* ---- the POST ---------------------------------------------------------------- */

static int discard_body(long status, const char *data, size_t len, void *arg)
{
    (void)status;
    (void)data;
    (void)len;
    (void)arg;
    return 0;
}

static void on_posted(const mesh_httpc_resp_t *r, void *arg)
{
    mesh_otlp_t *x = arg;
    bool ok = r->error == 0 && r->status >= 200 && r->status < 300;
    if (ok) {
        x->stats.exported += x->batch_n;
        x->stats.posts_ok++;
        x->failing = false;
    } else {
        x->stats.dropped += x->batch_n;
        x->stats.posts_failed++;
        if (!x->failing)
            mesh_log_warn("otlp", "span export to %s failed (%s, HTTP %ld): dropping", x->url,
                          r->error != 0 ? r->errmsg : "collector refused", r->status);
        x->failing = true;
    }
    x->post_id = 0;
    x->batch_n = 0;
    /* More than a batch waiting: go on without waiting for the interval. */
    if (!x->closing && x->count >= x->batch_max)
        flush_soon(x);
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
}

static void start_post(mesh_otlp_t *x)
{
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    if (x->closing || x->post_id != 0 || x->count == 0)
        return;
    take_batch(x);
    json_t *req = mesh_trace_otlp_request(x->service, x->batch, x->batch_n);
    char *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        fail_batch(x, "out of memory");
        return;
    }
    mesh_httpc_opts_t o = {.method = "POST",
                           .url = x->url,
                           .headers = headers,
                           .body = body,
                           .body_len = strlen(body),
                           .timeout_ms = x->timeout_ms};
    mesh_httpc_ext_t ext = {.on_data = discard_body, .connect_timeout_ms = x->timeout_ms};
    int rc = mesh_httpc_request_ext(x->httpc, &o, &ext, on_posted, x, &x->post_id);
    free(body); /* mesh_httpc copied it */
    if (rc != 0) {
        x->post_id = 0;
        fail_batch(x, rc == MESH_ENOMEM ? "out of memory" : "request refused");
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
    free(x->ring);
    free(x->batch);
    free(x);
}

mesh_otlp_t *mesh_otlp_new(uv_loop_t *loop, const mesh_otlp_opts_t *opts)
{
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

    x->ring = calloc(x->queue_max, sizeof(*x->ring));
    x->batch = calloc(x->batch_max, sizeof(*x->batch));
    x->httpc = mesh_httpc_new(loop);
    if (x->ring == NULL || x->batch == NULL || x->httpc == NULL ||
        uv_timer_init(loop, &x->flush_timer) != 0)
        goto fail;
    x->flush_timer.data = x;
    /* The exporter alone must not keep a service's loop alive. */
    uv_unref((uv_handle_t *)&x->flush_timer);
    mesh_httpc_unref(x->httpc);
    uv_timer_start(&x->flush_timer, on_flush_timer, x->interval_ms, x->interval_ms);
    return x;

fail:
    mesh_httpc_destroy(&x->httpc);
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
    if (x->count >= x->batch_max && x->post_id == 0)
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
    return x != NULL && x->post_id != 0;
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
    if (x->post_id != 0) {
        x->stats.dropped += x->batch_n;
        mesh_httpc_cancel(x->httpc, x->post_id);
        x->post_id = 0;
    }
    x->stats.dropped += x->count;
    x->count = 0;
    mesh_httpc_destroy(&x->httpc);
    uv_timer_stop(&x->flush_timer);
    uv_close((uv_handle_t *)&x->flush_timer, on_timer_closed);
}
