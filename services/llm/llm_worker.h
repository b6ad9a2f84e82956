/*
 * llm_worker.h - the llm service: a mesh_worker for service "llm" whose
 * requests go to a backend (llm_backend.h).
 *
 * Ops: "llm.chat" (args and reply data in docs/protocol/services.md). Any
 * other op is answered with MESH_EUNKNOWNOP; malformed args with MESH_EPROTO
 * (or MESH_ETOOBIG) and an error message naming the key. Sink events map to
 * the wire: on_delta -> PARTIAL {delta} (only when args.stream), on_done ->
 * FINAL status 0 (with model, usage.cost_usd and, after a rules fallback,
 * fallback), on_error -> FINAL with the backend's status. A CANCEL from the
 * router (mesh_worker_set_cancel_handler) cancels the backend call and
 * answers the request at once with MESH_ECANCELED. The backend gets the
 * request's trace context as call.traceparent (parent = this worker's span).
 */
#ifndef LLM_WORKER_H
#define LLM_WORKER_H

#include <stdint.h>
#include <uv.h>

#include "llm_backend.h"
#include "mesh/mesh_worker.h"

typedef struct llm_worker llm_worker_t;

/*
 * Create the worker. Takes ownership of *backend_p (NULLed, also on failure,
 * when the backend is destroyed). opts->service is forced to "llm". NULL on
 * failure.
 */
llm_worker_t *llm_worker_new(uv_loop_t *loop, void *zctx, const mesh_worker_opts_t *opts,
                             llm_backend_t **backend_p);

/* Connect to the routers and announce READY. 0 or MESH_E*. */
int llm_worker_start(llm_worker_t *lw);

/* Calls currently in flight in the backend. */
uint32_t llm_worker_inflight(const llm_worker_t *lw);

/*
 * Stop taking work and call done(arg) once, from the loop, when every call
 * has answered or after grace_ms, whichever is first; calls still running at
 * the grace are canceled and answered with MESH_EUNAVAIL.
 */
void llm_worker_drain(llm_worker_t *lw, uint64_t grace_ms, void (*done)(void *arg), void *arg);

/* Cancel every backend call and answer its request with MESH_EUNAVAIL (which releases the
 * request), close the worker and the backend, NULL *lw_p. Safe on NULL.
 * The loop must run once more afterwards so closed handles free their memory. */
void llm_worker_destroy(llm_worker_t **lw_p);

#endif
