/*
 * mesh_uvzmq.h - a ZeroMQ socket driven by a libuv loop.
 *
 * The three facts that bite (DESIGN.md section 3) live here and nowhere else:
 *  1. ZMQ_FD is edge-triggered: on every wakeup we receive until the socket
 *     is empty (EAGAIN: libzmq's non-blocking receive processes the pending
 *     commands and consumes the fd's signal before it says so, exactly as a
 *     ZMQ_EVENTS check would; uvzmq.c).
 *  2. After every send, and before the loop blocks (uv_prepare), ZMQ_EVENTS is
 *     checked again, because a send can make the socket readable without the
 *     fd signalling.
 *  3. A send that hits the HWM (EAGAIN) is parked in a bounded FIFO and
 *     resumed when ZMQ_POLLOUT comes back; it is never silently dropped.
 *
 * Received multipart messages of more than MESH_MAX_FRAMES frames are read
 * to their end and dropped with one sanitised log line.
 */
#ifndef MESH_UVZMQ_H
#define MESH_UVZMQ_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "mesh_proto.h"
#include "mesh_zsock.h"

/* Parked outbound messages per socket before mesh_uvzmq_send returns MESH_EBUSY. */
#define MESH_UVZMQ_PARK_MAX 100000

typedef struct mesh_uvzmq mesh_uvzmq_t;

/*
 * Called once per received message. frames[0..n) are valid only during the
 * call (for ROUTER sockets frames[0] is the peer identity). The callback may
 * send on any socket and may call mesh_uvzmq_close on this one.
 */
typedef void (*mesh_uvzmq_recv_cb)(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n,
                                   void *arg);

/* Create a socket of zmq type on loop. NULL opts = defaults. NULL on failure. */
mesh_uvzmq_t *mesh_uvzmq_new(uv_loop_t *loop, void *zctx, int type, const mesh_zsock_opts_t *opts,
                             mesh_uvzmq_recv_cb cb, void *arg);

int mesh_uvzmq_bind(mesh_uvzmq_t *s, const char *endpoint);
int mesh_uvzmq_connect(mesh_uvzmq_t *s, const char *endpoint);

/*
 * Send frames[0..n) as one multipart message (data is copied). If the socket
 * is at its HWM the message is parked and sent later, in order. Returns 0,
 * MESH_EBUSY (park queue full), MESH_EUNAVAIL (ROUTER: peer unknown -
 * EHOSTUNREACH) or MESH_EIO.
 */
int mesh_uvzmq_send(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n);

/* Number of parked messages. */
size_t mesh_uvzmq_parked(const mesh_uvzmq_t *s);

/* The raw zmq socket (for getsockopt in tests). */
void *mesh_uvzmq_socket(mesh_uvzmq_t *s);

/* ---- added by the transport owner (not in the original contract) ---------- */

/*
 * true when a whole message is waiting to be read (ZMQ_EVENTS has POLLIN),
 * whether or not the loop has read it yet. Liveness checks use it so a loop
 * that was blocked does not declare a peer dead whose heartbeat is sitting
 * unread in the socket. The adapter re-checks the socket before the loop
 * blocks, so the message is still delivered through the callback.
 */
bool mesh_uvzmq_readable(mesh_uvzmq_t *s);

/* ---------------------------------------------------------------------------- */

/*
 * Stop polling, close the zmq socket and the uv handles, NULL *s_p. Memory is
 * released from the handles' close callbacks, so the loop must run once more.
 * Safe to call from inside the recv callback. Safe on NULL.
 */
void mesh_uvzmq_close(mesh_uvzmq_t **s_p);

#endif
