/*
 * mesh_httpc.h - a small asynchronous HTTP client on a libuv loop: libcurl's
 * multi interface driven by curl_multi_socket_action, one uv_poll_t per
 * socket curl opens and one uv_timer_t for curl's timeouts. Used by the
 * gateway's chat channels for outbound API calls (docs/channels.md).
 *
 * A request is one method + URL + headers + body with its own timeout; the
 * response's status, Retry-After and body (bounded: a larger body fails the
 * request with MESH_ETOOBIG) come back in one callback, called exactly once
 * from the loop (never from inside mesh_httpc_request) unless the request
 * is cancelled first. Only http:// and https:// URLs; redirects are not
 * followed (an API answering 3xx is an error to look at, not to chase).
 */
#ifndef MESH_HTTPC_H
#define MESH_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define MESH_HTTPC_BODY_MAX        (1024 * 1024) /* default response body bound, bytes */
#define MESH_HTTPC_URL_MAX         2048          /* URL bytes */
#define MESH_HTTPC_HEADERS_MAX     16            /* request headers per request */
#define MESH_HTTPC_TIMEOUT_DEF     10000         /* ms, when a request sets none */
#define MESH_HTTPC_ERRMSG_MAX      128
#define MESH_HTTPC_RETRY_AFTER_MAX 86400 /* seconds: longer Retry-After values are capped */

typedef struct mesh_httpc mesh_httpc_t;

typedef struct {
    const char *method;         /* "GET", "POST", ... (NULL = GET) */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const void *body;           /* request body (copied), may be NULL */
    size_t body_len;
    uint64_t timeout_ms; /* whole request; 0 = MESH_HTTPC_TIMEOUT_DEF */
    size_t body_max;     /* response body bound; 0 = MESH_HTTPC_BODY_MAX */
} mesh_httpc_opts_t;

typedef struct {
    /* 0 when a complete response arrived (any status), else MESH_ETIMEDOUT,
     * MESH_EIO (connect/send/receive failed), MESH_ETOOBIG (body over the
     * bound), MESH_EINTERNAL */
    int error;
    long status;        /* HTTP status, 0 when none */
    long retry_after_s; /* Retry-After in seconds (delta form), -1 when absent */
    const char *body;   /* NUL-terminated, borrowed for the callback */
    size_t body_len;
    char errmsg[MESH_HTTPC_ERRMSG_MAX]; /* curl's reason when error != 0 */
} mesh_httpc_resp_t;

typedef void (*mesh_httpc_cb)(const mesh_httpc_resp_t *resp, void *arg);

/* A client on loop. NULL when out of memory or libcurl cannot start. */
mesh_httpc_t *mesh_httpc_new(uv_loop_t *loop);

/*
 * Start a request. 0 (cb will be called exactly once, later, unless
 * cancelled; *id, if non-NULL, identifies it for mesh_httpc_cancel),
 * MESH_EINVAL (no URL, not http(s), too many headers), MESH_ENOMEM.
 */
int mesh_httpc_request(mesh_httpc_t *c, const mesh_httpc_opts_t *o, mesh_httpc_cb cb, void *arg,
                       uint64_t *id);

/* Abandon a request: its callback is never called. Safe with stale ids. */
void mesh_httpc_cancel(mesh_httpc_t *c, uint64_t id);

/* Requests in flight. */
size_t mesh_httpc_inflight(const mesh_httpc_t *c);

/*
 * Abandon every request (no callback is called) and free. NULLs *c_p. Safe
 * from inside a callback. Memory held by uv handles is released by their
 * close callbacks: the loop must run once more.
 */
void mesh_httpc_destroy(mesh_httpc_t **c_p);

/* ---- extensions: streaming bodies, header lines, connect timeout --------
 * Used by the openai backend's SSE transport (services/llm) and the OTLP
 * span exporter (lib/mesh/otlp.c), which need more than one buffered body.
 */

/*
 * Body bytes as they arrive (status is the response's HTTP status so far).
 * Return 0 to go on, or a negative MESH_E* to abort the transfer: the
 * request then completes with resp->error set to that value. When set, the
 * body is not buffered (resp->body is "", body_max does not apply).
 */
typedef int (*mesh_httpc_data_cb)(long status, const char *data, size_t len, void *arg);

/* One raw response header line (with its CRLF), as curl delivers it,
 * including each status line ("HTTP/..."). */
typedef void (*mesh_httpc_header_cb)(const char *line, size_t len, void *arg);

typedef struct {
    mesh_httpc_data_cb on_data;     /* NULL: buffer the body (mesh_httpc_request) */
    mesh_httpc_header_cb on_header; /* NULL: none (Retry-After is still parsed) */
    uint64_t connect_timeout_ms;    /* 0 = bounded by timeout_ms only */
} mesh_httpc_ext_t;

/*
 * mesh_httpc_request with the extensions of x (NULL = none). Callbacks get
 * arg. Every callback may call mesh_httpc_cancel (on this or any request)
 * or mesh_httpc_destroy: a request cancelled from inside on_data or
 * on_header gets no further callback of any kind.
 */
int mesh_httpc_request_ext(mesh_httpc_t *c, const mesh_httpc_opts_t *o, const mesh_httpc_ext_t *x,
                           mesh_httpc_cb cb, void *arg, uint64_t *id);

/* The client's timer stops keeping the loop alive (a background exporter
 * must not hold a service's loop open); sockets in use still do. */
void mesh_httpc_unref(mesh_httpc_t *c);

/* ---- extension: connection reuse -----------------------------------------
 * Connections are kept alive and reused (HTTP/1.1 keep-alive): one cache per
 * client, at least MESH_HTTPC_CONNS_DEF idle connections, growing with the
 * most requests ever in flight at once (capped at MESH_HTTPC_CONNS_MAX).
 */
#define MESH_HTTPC_CONNS_DEF  8    /* connections the cache keeps at least */
#define MESH_HTTPC_CONNS_MAX  4096 /* bound of the cache */
#define MESH_HTTPC_KEEPIDLE_S 30   /* TCP keep-alive probes on idle connections after, s */

/*
 * Keep up to n connections in the cache (a user that knows its concurrency,
 * e.g. the llm worker's MESH_LLM_CONCURRENCY, sizes it up front; the cache
 * never shrinks). 0, or MESH_EINVAL (n is 0 or over MESH_HTTPC_CONNS_MAX).
 */
int mesh_httpc_set_max_conns(mesh_httpc_t *c, size_t n);

#endif
