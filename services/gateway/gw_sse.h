/*
 * gw_sse.h - Server-Sent Events on a gateway HTTP connection.
 *
 * Formatting (pure, unit-tested): one event is
 *     "event: <name>\n" (omitted when name is NULL)
 *     "data: <line>\n"  once per line of the data (split at \n, \r\n or \r)
 *     "\n"
 * and a heartbeat is the comment line ": ping\n\n", which every SSE client
 * ignores but which keeps proxies and load balancers from timing the stream
 * out while a turn thinks.
 *
 * A live stream (gateway_sse_t) wraps the connection's streamed response
 * (http_conn.h): each event is one write, sent at once; a heartbeat goes out
 * when nothing was sent for hb_ms.
 */
#ifndef GATEWAY_GW_SSE_H
#define GATEWAY_GW_SSE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gw_buf.h"
#include "http_conn.h"

/* Longest event name (names are [a-z0-9_.-]). */
#define GATEWAY_SSE_EVENT_MAX 32
/* Largest data of one event (a FINAL with a long reply and state fits). */
#define GATEWAY_SSE_DATA_MAX (512 * 1024)
/* The heartbeat comment. */
#define GATEWAY_SSE_PING ": ping\n\n"

typedef struct gateway_sse gateway_sse_t;

/*
 * Append one event to b. 0, MESH_EINVAL (bad event name), MESH_ETOOBIG
 * (data over GATEWAY_SSE_DATA_MAX) or MESH_ENOMEM.
 */
int gateway_sse_format(gateway_buf_t *b, const char *event, const char *data, size_t len);

/*
 * Start a 200 text/event-stream response on conn (extra_headers as for
 * gateway_http_conn_respond) and the heartbeat (hb_ms 0: none). On error
 * NULL and *rc set (nothing was sent when it is MESH_ESTATE/MESH_ENOMEM
 * before the head; the connection is closed when the write failed).
 */
gateway_sse_t *gateway_sse_start(uv_loop_t *loop, gateway_http_conn_t *conn, uint64_t hb_ms,
                                 const char *extra_headers, int *rc);

/* Send one event now. 0 or MESH_E* (the connection is then closed). */
int gateway_sse_send(gateway_sse_t *s, const char *event, const char *data, size_t len);

/* Send already formatted bytes (e.g. "data: [DONE]\n\n"). 0 or MESH_E*. */
int gateway_sse_send_raw(gateway_sse_t *s, const char *bytes, size_t len);

/* End the HTTP response and free the stream. NULLs *s_p. */
void gateway_sse_end(gateway_sse_t **s_p);

/* The connection is gone (abort): free without touching it. NULLs *s_p. */
void gateway_sse_abandon(gateway_sse_t **s_p);

#endif
