/*
 * llm_worker.c - glue between mesh_worker (the broker protocol) and an llm
 * backend: one job per request, sink events mapped to PARTIAL/FINAL.
 *
 * Lifetimes: a job lives from the REQUEST until its FINAL. The parsed call
 * borrows the request's args, which mesh_worker_final() frees, so a job
 * builds its reply data before calling final and frees itself right after.
 * A backend may complete inside start_call; the handler then must not touch
 * the job again, which is why the handle comes back through a local.
 */
#include <stdlib.h>
#include <string.h>

#include "llm_call.h"
#include "llm_metrics.h"
#include "llm_reply.h"
#include "llm_worker.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_trace.h"

#define LLM_SERVICE "llm"
#define LLM_OP_CHAT "llm.chat"
/*
 * mesh_worker_drain() finals whatever is still open at its grace with
 * EUNAVAIL. We give it this much longer than our own grace so that our timer
 * always answers stragglers first (after canceling their backend calls); a
 * backend call must never outlive the request it answers.
 */
#define LLM_DRAIN_SLACK_MS 1000

typedef struct llm_job llm_job_t;

struct llm_worker {
    uv_loop_t *loop;
    mesh_worker_t *worker;
    llm_backend_t *backend;
    llm_job_t *jobs; /* in flight in the backend */
    uint32_t n_jobs;
    uv_timer_t *drain_timer; /* allocated by drain; freed from its close callback */
    void (*drain_done)(void *arg);
    void *drain_arg;
    bool draining;
    bool drain_reported;
};

struct llm_job {
    llm_worker_t *lw;
    mesh_worker_req_t *req;
    llm_parsed_t parsed;
    llm_sink_t sink;
    llm_handle_t *handle; /* NULL until start_call returned one */
    llm_job_t *prev, *next;
    uint64_t start_ns; /* uv_hrtime() at the call's start (metrics) */
    uint64_t first_ns; /* first delta, 0 before it (time to first token) */
    /* call.traceparent: the trace id and this worker's span of the request */
    char tp[MESH_TRACEPARENT_MAX + 1];
};

static void job_link(llm_worker_t *lw, llm_job_t *j)
{
    j->prev = NULL;
    j->next = lw->jobs;
    if (lw->jobs != NULL)
        lw->jobs->prev = j;
    lw->jobs = j;
    lw->n_jobs++;
}

static void job_unlink(llm_worker_t *lw, llm_job_t *j)
{
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        lw->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
    lw->n_jobs--;
}

static void job_free(llm_job_t *j)
{
    llm_call_clear(&j->parsed);
    free(j);
}

/* Copy msg into out (MESH_ERRMSG_MAX bytes at most, cut on a UTF-8 boundary). */
static const char *clip_errmsg(const char *msg, char out[MESH_ERRMSG_MAX + 1])
{
    if (msg == NULL)
        return NULL;
    size_t n = strlen(msg);
    if (n > MESH_ERRMSG_MAX) {
        n = MESH_ERRMSG_MAX;
        while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, msg, n);
    out[n] = '\0';
    return out;
}

/* Answer the job's request and free the job. data is borrowed. */
static void job_finish(llm_job_t *j, int status, const char *errmsg, const json_t *data)
{
    llm_worker_t *lw = j->lw;
    mesh_worker_req_t *req = j->req;
    char em[MESH_ERRMSG_MAX + 1];
    if (status != 0) /* success is counted in sink_done, which has the usage */
        llm_metrics_call(&j->parsed.call, status, NULL, j->start_ns, j->first_ns);
    job_unlink(lw, j);
    job_free(j);
    /* Last: final may report the drain finished, which must see this job gone. */
    mesh_worker_final(req, status, clip_errmsg(errmsg, em), data);
}

static void sink_delta(llm_sink_t *sink, const char *text, size_t len)
{
    llm_job_t *j = sink->arg;
    if (j->first_ns == 0 && len > 0)
        j->first_ns = uv_hrtime();
    if (!j->parsed.call.stream || len == 0)
        return;
    json_t *d = llm_reply_delta(text, len);
    if (d == NULL) {
        mesh_log_warn("llm", "dropping a delta that could not be encoded");
        return;
    }
    /* MESH_ECANCELED (the router link was reset) is fine: the FINAL is discarded too. */
    mesh_worker_partial(j->req, d);
    json_decref(d);
}

static void sink_done(llm_sink_t *sink, const llm_result_t *res)
{
    llm_job_t *j = sink->arg;
    const llm_call_t *call = &j->parsed.call;
    const char *tier = call->tier && call->tier[0] ? call->tier : "-";
    json_t *data =
        llm_reply_final(res, llm_backend_name(j->lw->backend), llm_metrics_cost(tier, res));
    if (data == NULL) {
        job_finish(j, MESH_EINTERNAL, "could not encode the model's answer", NULL);
        return;
    }
    llm_metrics_call(&j->parsed.call, 0, res, j->start_ns, j->first_ns);
    job_finish(j, 0, NULL, data);
    json_decref(data);
}

static void sink_error(llm_sink_t *sink, int status, const char *message)
{
    llm_job_t *j = sink->arg;
    if (status >= 0 || !mesh_err_known(status))
        status = MESH_EINTERNAL;
    job_finish(j, status, message != NULL ? message : mesh_strerror(status), NULL);
}

#define LLM_SAFE_MAX (4 * MESH_LOG_SAMPLE_MAX + 4) /* mesh_log_sanitize's output */

/* The request id made safe for a log line, into out. */
static const char *safe_id(const mesh_request_t *msg, char out[LLM_SAFE_MAX])
{
    return mesh_log_sanitize(msg->id, strlen(msg->id), out, LLM_SAFE_MAX);
}

/*
 * The traceparent a backend sends on: mesh_worker made the request's span
 * (a child of msg->tp) current in the log context while the handler runs; a
 * model call is a child of that span. Sampled flag from the request.
 */
static void set_traceparent(llm_job_t *j, const mesh_request_t *msg)
{
    const mesh_log_ctx_t *cur = mesh_log_ctx_swap(NULL);
    mesh_log_ctx_swap(cur);
    mesh_traceparent_t in;
    uint8_t flags = MESH_TRACE_FLAG_SAMPLED;
    if (mesh_traceparent_parse(msg->tp, strlen(msg->tp), &in) == 0)
        flags = in.flags;
    if (cur != NULL && cur->trace_id[0] != '\0' && cur->span_id[0] != '\0')
        mesh_traceparent_format(cur->trace_id, cur->span_id, flags, j->tp);
    j->parsed.call.traceparent = j->tp;
}

/*
 * CANCEL from the router (the client gave up): stop the backend call and
 * answer; mesh_worker_final then only frees the router's capacity slot.
 */
static void handle_cancel(mesh_worker_t *w, mesh_worker_req_t *req, void *arg)
{
    llm_worker_t *lw = arg;
    (void)w;
    for (llm_job_t *j = lw->jobs; j != NULL; j = j->next) {
        if (j->req != req)
            continue;
        llm_backend_cancel(j->handle);
        j->handle = NULL;
        job_finish(j, MESH_ECANCELED, "canceled by the requester", NULL);
        return;
    }
}

static void handle_request(mesh_worker_t *w, mesh_worker_req_t *req, const mesh_request_t *msg,
                           void *arg)
{
    llm_worker_t *lw = arg;
    /* The request id is sanitized only for a line that is written: the hot
     * path (a valid call, logging at warn) formats nothing. */
    char sid[LLM_SAFE_MAX];
    char sx[LLM_SAFE_MAX];

    if (strcmp(msg->op, LLM_OP_CHAT) != 0) {
        mesh_log_warn("llm", "unknown op id=%s op=%s", safe_id(msg, sid),
                      mesh_log_sanitize(msg->op, strlen(msg->op), sx, sizeof(sx)));
        mesh_worker_final(req, MESH_EUNKNOWNOP, "unknown op for service llm (known: llm.chat)",
                          NULL);
        return;
    }
    llm_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        mesh_worker_final(req, MESH_ENOMEM, NULL, NULL);
        return;
    }
    char err[MESH_ERRMSG_MAX + 1];
    uint64_t deadline = uv_now(lw->loop) + mesh_worker_req_remaining_ms(req);
    int rc = llm_call_parse(msg->id, msg->args, deadline, &j->parsed, err, sizeof(err));
    if (rc != 0) {
        mesh_log_warn("llm", "bad llm.chat request id=%s: %s", safe_id(msg, sid), err);
        free(j);
        mesh_worker_final(req, rc, err, NULL);
        return;
    }
    if (mesh_log_get_level() <= MESH_LOG_DEBUG)
        mesh_log_debug(
            "llm", "call start id=%s agent=%s", safe_id(msg, sid),
            mesh_log_sanitize(j->parsed.call.agent, strlen(j->parsed.call.agent), sx, sizeof(sx)));
    j->lw = lw;
    j->req = req;
    j->start_ns = uv_hrtime();
    set_traceparent(j, msg);
    j->sink.on_delta = sink_delta;
    j->sink.on_done = sink_done;
    j->sink.on_error = sink_error;
    j->sink.arg = j;
    job_link(lw, j);

    llm_handle_t *h = NULL; /* a local: a synchronous completion frees j */
    rc = llm_backend_start(lw->backend, &j->parsed.call, &j->sink, &h);
    if (rc != 0) {
        mesh_log_warn("llm", "backend refused call id=%s: %s", safe_id(msg, sid),
                      mesh_strerror(rc));
        job_finish(j, rc, "the model backend could not start the call", NULL);
        return;
    }
    if (h != NULL)
        j->handle = h;
    (void)w;
}

llm_worker_t *llm_worker_new(uv_loop_t *loop, void *zctx, const mesh_worker_opts_t *opts,
                             llm_backend_t **backend_p)
{
    llm_worker_t *lw = calloc(1, sizeof(*lw));
    if (lw == NULL)
        goto fail;
    lw->loop = loop;
    lw->backend = *backend_p;
    *backend_p = NULL;
    mesh_worker_opts_t o = *opts;
    o.service = LLM_SERVICE;
    lw->worker = mesh_worker_new(loop, zctx, &o, handle_request, lw);
    if (lw->worker == NULL)
        goto fail;
    mesh_worker_set_cancel_handler(lw->worker, handle_cancel, lw);
    return lw;

fail:
    if (lw != NULL) {
        llm_backend_destroy(&lw->backend);
        free(lw);
    } else {
        llm_backend_destroy(backend_p);
    }
    return NULL;
}

int llm_worker_start(llm_worker_t *lw)
{
    return mesh_worker_start(lw->worker);
}

uint32_t llm_worker_inflight(const llm_worker_t *lw)
{
    return lw->n_jobs;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void drain_report(uv_timer_t *t)
{
    llm_worker_t *lw = t->data;
    if (lw->drain_reported)
        return;
    lw->drain_reported = true;
    if (lw->drain_done != NULL)
        lw->drain_done(lw->drain_arg);
}

/* mesh_worker says every request got its final: report from the next loop turn, so the
 * report never runs inside one of our own callbacks. */
static void on_worker_drained(mesh_worker_t *w, void *arg)
{
    llm_worker_t *lw = arg;
    (void)w;
    if (lw->drain_timer != NULL)
        uv_timer_start(lw->drain_timer, drain_report, 0, 0);
}

/* Cancel every backend call and answer its request with status. */
static void cancel_all(llm_worker_t *lw, int status, const char *errmsg)
{
    while (lw->jobs != NULL) {
        llm_job_t *j = lw->jobs;
        llm_backend_cancel(j->handle);
        j->handle = NULL;
        job_finish(j, status, errmsg, NULL);
    }
}

static void drain_grace(uv_timer_t *t)
{
    llm_worker_t *lw = t->data;
    if (lw->n_jobs > 0)
        mesh_log_warn("llm", "drain grace over: canceling %u call(s)", lw->n_jobs);
    cancel_all(lw, MESH_EUNAVAIL, "llm worker shutting down");
}

void llm_worker_drain(llm_worker_t *lw, uint64_t grace_ms, void (*done)(void *arg), void *arg)
{
    if (lw->draining)
        return;
    lw->draining = true;
    lw->drain_done = done;
    lw->drain_arg = arg;
    lw->drain_timer = malloc(sizeof(*lw->drain_timer));
    if (lw->drain_timer == NULL || uv_timer_init(lw->loop, lw->drain_timer) != 0) {
        /* No timer: nothing can wait, so answer everything now and report at once. */
        free(lw->drain_timer);
        lw->drain_timer = NULL;
        cancel_all(lw, MESH_EUNAVAIL, "llm worker shutting down");
        lw->drain_reported = true;
        mesh_worker_drain(lw->worker, 0, on_worker_drained, lw);
        if (done != NULL)
            done(arg);
        return;
    }
    lw->drain_timer->data = lw;
    uv_timer_start(lw->drain_timer, drain_grace, grace_ms, 0);
    mesh_worker_drain(lw->worker, grace_ms + LLM_DRAIN_SLACK_MS, on_worker_drained, lw);
}

void llm_worker_destroy(llm_worker_t **lw_p)
{
    if (lw_p == NULL || *lw_p == NULL)
        return;
    llm_worker_t *lw = *lw_p;
    /* Backend calls first (silently), then each request gets its final, which is what
     * releases a request handle; a router still connected hears EUNAVAIL at once instead
     * of waiting for its deadline. */
    cancel_all(lw, MESH_EUNAVAIL, "llm worker shutting down");
    mesh_worker_destroy(&lw->worker);
    llm_backend_destroy(&lw->backend);
    if (lw->drain_timer != NULL)
        uv_close((uv_handle_t *)lw->drain_timer, on_timer_closed);
    free(lw);
    *lw_p = NULL;
}
