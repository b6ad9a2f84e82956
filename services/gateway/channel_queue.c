/*
 * channel_queue.c - outbound delivery: one bounded FIFO per channel, one API
 * call in flight per channel (so the parts of a split answer, and answers to
 * one chat, keep their order), retries with capped exponential backoff on
 * 429 / 5xx / connection errors, honouring Retry-After. An answer that
 * finally cannot be delivered (attempts exhausted, a permanent platform
 * error, the queue full) is recorded with memory op delivery.record and
 * counted; if even that fails it is logged as an error with the
 * conversation and channel (never the text): nothing is dropped silently.
 *
 * Metrics: mesh_channel_deliveries_total{channel,outcome}
 * (delivered|failed|retried), mesh_channel_delivery_seconds{channel}
 * (queued -> delivered), mesh_channel_queue_length{channel}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel_int.h"
#include "mesh/mesh_client.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_metrics.h"
#include "mesh/mesh_trace.h"

void channel_queue_timer_closed(gateway_channels_t *ch);

static mesh_metric_t *s_deliveries, *s_seconds, *s_qlen;

void channel_metrics_init(void)
{
    static const double bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
    mesh_metrics_t *reg = mesh_metrics_global();
    if (!s_deliveries)
        s_deliveries =
            mesh_metrics_counter(reg, "mesh_channel_deliveries_total",
                                 "Outbound channel messages by outcome.", "channel,outcome", 64);
    if (!s_seconds)
        s_seconds = mesh_metrics_histogram(reg, "mesh_channel_delivery_seconds",
                                           "Queued to delivered, seconds.", "channel", 16, bounds,
                                           sizeof bounds / sizeof bounds[0]);
    if (!s_qlen)
        s_qlen = mesh_metrics_gauge(reg, "mesh_channel_queue_length",
                                    "Messages waiting for delivery per channel.", "channel", 16);
}

static void count(channel_id_t chan, const char *outcome)
{
    mesh_counter_inc(mesh_metric_at(s_deliveries, channel_name(chan), outcome));
}

static void qlen_update(channel_queue_t *q)
{
    mesh_gauge_set(mesh_metric_at(s_qlen, channel_name(q->chan)),
                   (double)(q->len + (q->inflight ? 1 : 0)));
}

static void delivery_free(channel_delivery_t *d)
{
    if (!d)
        return;
    json_decref(d->to);
    free(d->text);
    free(d);
}

/* ---- undeliverable: delivery.record ------------------------------------------------ */

typedef struct {
    channel_id_t chan;
    char conv[MESH_CONV_MAX + 1];
} record_call_t;

static void on_recorded(mesh_client_t *client, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)client;
    if (!final)
        return;
    record_call_t *r = arg;
    if (rep->status != 0)
        mesh_log_error(CHANNEL_SUBSYS,
                       "%s: undeliverable answer of %s could not be recorded: %s "
                       "(it is in the conversation's log as the assistant's reply)",
                       channel_name(r->chan), r->conv, mesh_err_name(rep->status));
    free(r);
}

static void record_failure(gateway_channels_t *ch, channel_id_t chan, const char *conv,
                           const json_t *to, const char *text, size_t len, const char *reason,
                           const char *tp)
{
    count(chan, "failed");
    mesh_log_warn(CHANNEL_SUBSYS, "%s: answer of %s undeliverable: %s", channel_name(chan), conv,
                  reason);
    record_call_t *r = calloc(1, sizeof(*r));
    mesh_request_t m = {0};
    int rc = MESH_ENOMEM;
    if (!r)
        goto fail;
    r->chan = chan;
    snprintf(r->conv, sizeof r->conv, "%s", conv);
    memcpy(m.op, "delivery.record", sizeof("delivery.record"));
    snprintf(m.conv, sizeof m.conv, "%s", conv);
    memcpy(m.tenant, MESH_TENANT_DEFAULT, sizeof(MESH_TENANT_DEFAULT));
    if (tp && tp[0])
        memcpy(m.tp, tp, sizeof m.tp);
    else
        mesh_traceparent_new(m.tp);
    m.deadline_ms = CHANNEL_BIND_DEADLINE_MS;
    m.args = json_pack("{s:s,s:O,s:s%,s:s}", "channel", channel_name(chan), "to", to, "text", text,
                       len, "reason", reason);
    if (!m.args)
        goto fail;
    rc = mesh_client_request(ch->gw->client, "memory", &m, on_recorded, r, NULL);
    if (rc != 0)
        goto fail;
    mesh_request_clear(&m);
    return;
fail:
    mesh_request_clear(&m);
    free(r);
    mesh_log_error(CHANNEL_SUBSYS, "%s: undeliverable answer of %s could not be recorded: %s",
                   channel_name(chan), conv, mesh_strerror(rc));
}

/* ---- the queue ------------------------------------------------------------------------ */

static void pump(channel_queue_t *q);

static void on_timer(uv_timer_t *t)
{
    channel_queue_t *q = t->data;
    q->timer_on = false;
    pump(q);
}

static void on_timer_closed(uv_handle_t *h)
{
    channel_queue_t *q = h->data;
    channel_queue_timer_closed(q->ch);
}

void channel_queues_init(gateway_channels_t *ch)
{
    for (int i = 0; i < CHANNEL_COUNT; i++) {
        channel_queue_t *q = &ch->q[i];
        q->ch = ch;
        q->chan = (channel_id_t)i;
        uv_timer_init(ch->gw->loop, &q->timer);
        q->timer.data = q;
    }
}

void channel_queues_close(gateway_channels_t *ch)
{
    for (int i = 0; i < CHANNEL_COUNT; i++) {
        channel_queue_t *q = &ch->q[i];
        size_t lost = q->len + (q->inflight ? 1 : 0);
        if (lost)
            mesh_log_error(CHANNEL_SUBSYS,
                           "%s: %zu message(s) still queued at shutdown are not "
                           "delivered (first: conversation %s)",
                           channel_name(q->chan), lost,
                           q->inflight ? q->inflight->conv : q->head->conv);
        if (q->http_id)
            mesh_httpc_cancel(ch->httpc, q->http_id);
        delivery_free(q->inflight);
        q->inflight = NULL;
        while (q->head) {
            channel_delivery_t *d = q->head;
            q->head = d->next;
            delivery_free(d);
        }
        q->len = 0;
        qlen_update(q);
        uv_timer_stop(&q->timer);
        ch->n_closing++;
        uv_close((uv_handle_t *)&q->timer, on_timer_closed);
    }
}

static uint64_t backoff_ms(const gateway_channels_t *ch, uint32_t attempts, long retry_after_s)
{
    uint64_t d = ch->cfg.backoff_ms;
    for (uint32_t i = 1; i < attempts && d < ch->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > ch->cfg.backoff_max_ms)
        d = ch->cfg.backoff_max_ms;
    if (retry_after_s >= 0) {
        long ra =
            retry_after_s > CHANNEL_RETRY_AFTER_MAX_S ? CHANNEL_RETRY_AFTER_MAX_S : retry_after_s;
        /* The platform's word wins over our own schedule. */
        d = (uint64_t)ra * 1000u;
    }
    return d;
}

/* Settle the delivery in flight with outcome o: delivered, retried later
 * (stays in flight, the backoff timer runs) or recorded as undeliverable.
 * Does not start the next one (pump does). */
static void settle(gateway_channels_t *ch, channel_id_t chan, const channel_outcome_t *o)
{
    channel_queue_t *q = &ch->q[chan];
    channel_delivery_t *d = q->inflight;
    q->http_id = 0;
    if (!d)
        return;
    if (o->ok) {
        q->inflight = NULL;
        count(chan, "delivered");
        mesh_histogram_observe(mesh_metric_at(s_seconds, channel_name(chan)),
                               (double)(uv_hrtime() - d->queued_ns) / 1e9);
        mesh_log_debug(CHANNEL_SUBSYS, "%s: delivered to %s (attempt %u)", channel_name(chan),
                       d->conv, d->attempts);
        delivery_free(d);
    } else if (o->retry && d->attempts < ch->cfg.max_attempts) {
        count(chan, "retried");
        uint64_t wait = backoff_ms(ch, d->attempts, o->retry_after_s);
        mesh_log_info(CHANNEL_SUBSYS,
                      "%s: delivery for %s failed (%s), attempt %u of %u, retry "
                      "in %llu ms",
                      channel_name(chan), d->conv, o->reason, d->attempts, ch->cfg.max_attempts,
                      (unsigned long long)wait);
        /* d stays in flight: the queue waits (order), then sends it again. */
        uv_timer_start(&q->timer, on_timer, wait, 0);
        q->timer_on = true;
    } else {
        q->inflight = NULL;
        char reason[200];
        snprintf(reason, sizeof reason, "%s after %u attempt(s)", o->reason, d->attempts);
        record_failure(ch, chan, d->conv, d->to, d->text, d->len, reason, d->tp);
        delivery_free(d);
    }
    qlen_update(q);
}

void channel_queue_done(gateway_channels_t *ch, channel_id_t chan, const channel_outcome_t *o)
{
    settle(ch, chan, o);
    pump(&ch->q[chan]);
}

static int send_one(gateway_channels_t *ch, channel_delivery_t *d, uint64_t *id)
{
    switch (d->chan) {
    case CHANNEL_SLACK:
        return channel_slack_send(ch, d, id);
    case CHANNEL_TELEGRAM:
        return channel_telegram_send(ch, d, id);
    case CHANNEL_WECOM:
        return channel_wecom_send(ch, d, id);
    case CHANNEL_WEBHOOK:
        return channel_webhook_send(ch, d, id);
    default:
        return MESH_EINVAL;
    }
}

static void pump(channel_queue_t *q)
{
    gateway_channels_t *ch = q->ch;
    while (!ch->closing && !q->timer_on && q->http_id == 0) {
        if (!q->inflight) {
            if (!q->head)
                break;
            q->inflight = q->head;
            q->head = q->head->next;
            if (!q->head)
                q->tail = NULL;
            q->len--;
            q->inflight->next = NULL;
        }
        channel_delivery_t *d = q->inflight;
        d->attempts++;
        uint64_t id = 0;
        int rc = send_one(ch, d, &id);
        if (rc == 0) {
            /* id 0: the platform's first step runs (WeCom token); it calls done. */
            q->http_id = id ? id : UINT64_MAX;
            break;
        }
        /* Not retryable (a bad `to`, no memory): recorded; next one (a loop,
         * not recursion: a long queue of such messages cannot grow the stack). */
        channel_outcome_t o = {.retry = false, .retry_after_s = -1};
        snprintf(o.reason, sizeof o.reason, "request not started: %s", mesh_strerror(rc));
        settle(ch, q->chan, &o);
    }
    qlen_update(q);
}

/* Queue one part. Full queue: recorded as undeliverable, MESH_EBUSY. */
static int enqueue(gateway_channels_t *ch, channel_id_t chan, const char *conv, const json_t *to,
                   const char *text, size_t len, const char *tp)
{
    channel_queue_t *q = &ch->q[chan];
    if (q->len >= ch->cfg.queue_max) {
        record_failure(ch, chan, conv, to, text, len, "delivery queue full", tp);
        return MESH_EBUSY;
    }
    channel_delivery_t *d = calloc(1, sizeof(*d));
    if (!d)
        return MESH_ENOMEM;
    d->chan = chan;
    snprintf(d->conv, sizeof d->conv, "%s", conv);
    memcpy(d->tp, tp, sizeof d->tp);
    d->to = json_deep_copy(to);
    d->text = malloc(len + 1);
    if (!d->to || !d->text) {
        delivery_free(d);
        return MESH_ENOMEM;
    }
    memcpy(d->text, text, len);
    d->text[len] = '\0';
    d->len = len;
    d->queued_ns = uv_hrtime();
    if (q->tail)
        q->tail->next = d;
    else
        q->head = d;
    q->tail = d;
    q->len++;
    return 0;
}

int channel_deliver_tp(gateway_channels_t *ch, channel_id_t chan, const char *conv,
                       const json_t *to, const char *text, size_t len, const char *tp)
{
    if (!json_is_object(to) || len > MESH_TEXT_MAX)
        return MESH_EINVAL;
    /* The outbound call is a child of the turn's span: same trace, new span id. */
    char child[MESH_TRACEPARENT_MAX + 1];
    mesh_traceparent_t parent;
    if (tp && tp[0] && mesh_traceparent_parse(tp, strlen(tp), &parent) == 0) {
        char span[MESH_SPAN_ID_HEX + 1];
        mesh_span_id_new(span);
        mesh_traceparent_format(parent.trace_id, span, parent.flags, child);
    } else {
        mesh_traceparent_new(child);
    }
    size_t max = chan == CHANNEL_TELEGRAM ? CHANNEL_TELEGRAM_TEXT_MAX
                 : chan == CHANNEL_WECOM  ? CHANNEL_WECOM_TEXT_MAX
                 : chan == CHANNEL_SLACK  ? CHANNEL_SLACK_TEXT_MAX
                                          : MESH_TEXT_MAX;
    bool bytes = chan != CHANNEL_TELEGRAM;
    size_t off = 0;
    int rc = 0;
    do {
        size_t n = channel_split(text + off, len - off, max, bytes);
        rc = enqueue(ch, chan, conv, to, text + off, n, child);
        if (rc != 0)
            break;
        off += n;
    } while (off < len);
    pump(&ch->q[chan]);
    return rc;
}

void channel_outcome_http(const mesh_httpc_resp_t *r, channel_outcome_t *o)
{
    o->ok = false;
    o->retry = false;
    o->retry_after_s = r->retry_after_s;
    if (r->error != 0) {
        o->retry = r->error != MESH_EINVAL;
        snprintf(o->reason, sizeof o->reason, "%s", mesh_err_name(r->error));
        return;
    }
    if (r->status >= 200 && r->status < 300) {
        o->ok = true;
        snprintf(o->reason, sizeof o->reason, "http %ld", r->status);
        return;
    }
    o->retry = r->status == 429 || r->status >= 500;
    snprintf(o->reason, sizeof o->reason, "http %ld", r->status);
}
