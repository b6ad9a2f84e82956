/*
 * http_conn.h - one HTTP/1.1 connection of the gateway: parsing, limits,
 * keep-alive, pipelining and writing responses.
 *
 * A connection handles one request at a time. When a request is complete it
 * is handed to the server's handler (http_server.h) and parsing pauses; bytes
 * that arrive meanwhile (pipelined requests) are buffered, and reading stops
 * when more than GATEWAY_HTTP_PIPELINE_MAX bytes wait. The handler answers
 * exactly once with gateway_http_conn_respond(), now or later from the same
 * loop; then the next buffered request is parsed. So responses always leave
 * in request order.
 *
 * Limits (all answered with a JSON error and "Connection: close"):
 *   request head (request line + headers) > max_header bytes  -> 431
 *   body > max_body (by Content-Length up front, or chunked)   -> 413
 *   a started request not complete within idle_ms             -> 408
 *   a malformed request                                       -> 400
 * An idle keep-alive connection is closed silently after idle_ms.
 *
 * If the connection closes while the handler holds a request (the client went
 * away mid-turn), the abort callback set with gateway_http_conn_on_abort() is
 * called once; after it the handler must not touch the connection again.
 */
#ifndef GATEWAY_HTTP_CONN_H
#define GATEWAY_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of one remembered header value; longer values are flagged too long. */
#define GATEWAY_HTTP_HDR_VALUE_MAX 256
/* Bytes of unparsed pipelined input buffered before reading stops. */
#define GATEWAY_HTTP_PIPELINE_MAX (64 * 1024)

typedef struct gateway_http_conn gateway_http_conn_t;

/* The request headers the gateway looks at; all others are skipped. */
typedef enum {
    GATEWAY_HDR_CONTENT_TYPE = 0, /* Content-Type */
    GATEWAY_HDR_TENANT,           /* X-Mesh-Tenant */
    GATEWAY_HDR_TIMEOUT,          /* X-Mesh-Timeout-Ms */
    GATEWAY_HDR_TRACEPARENT,      /* traceparent */
    GATEWAY_HDR_EXPECT,           /* Expect */
    GATEWAY_HDR_ACCEPT,           /* Accept (text/event-stream selects SSE) */
    GATEWAY_HDR_CONV_ID,          /* X-Mesh-Conversation-Id (OpenAI front door) */
    GATEWAY_HDR_MESSAGE_ID,       /* X-Mesh-Message-Id (OpenAI front door) */
    /* channels (channel*.c): webhook signatures and secrets */
    GATEWAY_HDR_SLACK_SIGNATURE, /* X-Slack-Signature */
    GATEWAY_HDR_SLACK_TIMESTAMP, /* X-Slack-Request-Timestamp */
    GATEWAY_HDR_SLACK_RETRY_NUM, /* X-Slack-Retry-Num */
    GATEWAY_HDR_TELEGRAM_SECRET, /* X-Telegram-Bot-Api-Secret-Token */
    GATEWAY_HDR_MESH_SIGNATURE,  /* X-Mesh-Signature */
    GATEWAY_HDR_MESH_TIMESTAMP,  /* X-Mesh-Timestamp */
    GATEWAY_HDR_AUTHORIZATION,   /* Authorization (people API keys, route_people_auth.c) */
    GATEWAY_HDR_COUNT
} gateway_hdr_id_t;

typedef enum {
    GATEWAY_HDR_ABSENT = 0,
    GATEWAY_HDR_PRESENT,
    GATEWAY_HDR_TOO_LONG, /* longer than GATEWAY_HTTP_HDR_VALUE_MAX; value is not kept */
} gateway_hdr_state_t;

typedef struct {
    char value[GATEWAY_HTTP_HDR_VALUE_MAX + 1]; /* NUL-terminated, surrounding blanks trimmed */
    size_t len;
    gateway_hdr_state_t state;
} gateway_hdr_t;

/* A complete request, borrowed by the handler until it responds (or is aborted). */
typedef struct {
    unsigned method;  /* enum http_method */
    const char *path; /* not NUL-terminated */
    size_t path_len;
    const char *query; /* after '?', NULL when absent */
    size_t query_len;
    const char *body; /* NUL-terminated for convenience; may contain NULs */
    size_t body_len;
    unsigned short http_major, http_minor;
    bool keep_alive;   /* as requested by the client */
    uint64_t start_ns; /* uv_hrtime() when the request was complete */
    gateway_hdr_t hdr[GATEWAY_HDR_COUNT];
} gateway_http_req_t;

/* Called when the connection closes while the handler still holds its request. */
typedef void (*gateway_http_abort_fn)(gateway_http_conn_t *conn, void *arg);

/* Set (or clear with NULL) the abort callback of the request being handled. */
void gateway_http_conn_on_abort(gateway_http_conn_t *conn, gateway_http_abort_fn fn, void *arg);

/*
 * Answer the request being handled: one uv_write of the status line, the
 * headers (Content-Type: content_type or application/json when NULL,
 * Content-Length, Connection when needed, then extra_headers verbatim: zero
 * or more complete "Name: value\r\n" lines, may be NULL) and body[0..len).
 * The body is copied. Returns 0, MESH_ESTATE (no request is being handled,
 * e.g. it was aborted), MESH_ENOMEM or MESH_EIO (the connection is then
 * closed and the abort callback is not called).
 */
int gateway_http_conn_respond(gateway_http_conn_t *conn, int status, const char *content_type,
                              const char *extra_headers, const void *body, size_t len);

/*
 * Answer with {"error":{"code":code,"message":message}} (both strings are
 * JSON-escaped; invalid UTF-8 bytes become '?'). Same returns as above.
 */
int gateway_http_conn_respond_error(gateway_http_conn_t *conn, int status, const char *code,
                                    const char *message, const char *extra_headers);

/* ------------------------------------------------------------------------
 * Streamed responses (Server-Sent Events). Instead of respond(), the handler
 * may start a stream, write pieces as they come, and end it:
 *   - HTTP/1.1: "Transfer-Encoding: chunked", each write is one chunk, the
 *     end writes the last chunk and the connection stays keep-alive;
 *   - HTTP/1.0: no length and "Connection: close": the end of the body is
 *     the end of the connection.
 * Each write is its own uv_write issued at once (no coalescing, Nagle off),
 * so an event reaches the client as soon as it is produced. A client that
 * does not read: more than GATEWAY_HTTP_STREAM_QUEUE_MAX bytes waiting in
 * the kernel-side queue closes the connection (abort callback called).
 * While streaming, a client that closes its end aborts the request as before.
 * ------------------------------------------------------------------------ */

/* Bytes of a stream allowed to wait for the client before it is cut off. */
#define GATEWAY_HTTP_STREAM_QUEUE_MAX (4 * 1024 * 1024)
/* Largest single stream write. */
#define GATEWAY_HTTP_STREAM_WRITE_MAX (1024 * 1024)

/* Write the head (status, content_type, extra_headers as for respond). 0,
 * MESH_ESTATE (not handling a request, or already streaming), MESH_ENOMEM, MESH_EIO. */
int gateway_http_conn_stream_start(gateway_http_conn_t *conn, int status, const char *content_type,
                                   const char *extra_headers);

/* Write data[0..len) now (len 0 is a no-op). 0, MESH_ESTATE (not streaming),
 * MESH_ETOOBIG (len > GATEWAY_HTTP_STREAM_WRITE_MAX), MESH_ENOMEM or MESH_EIO
 * (the connection is then closed and the abort callback is called). */
int gateway_http_conn_stream_write(gateway_http_conn_t *conn, const void *data, size_t len);

/* End the stream: the request is answered (as after respond). 0, MESH_ESTATE or MESH_EIO. */
int gateway_http_conn_stream_end(gateway_http_conn_t *conn);

/* true while the request being handled is answered by a stream. */
bool gateway_http_conn_streaming(const gateway_http_conn_t *conn);

/* The request being handled, or NULL. */
const gateway_http_req_t *gateway_http_conn_req(const gateway_http_conn_t *conn);

/* Milliseconds since the request being handled was complete (for logs). */
double gateway_http_conn_elapsed_ms(const gateway_http_conn_t *conn);

#endif
