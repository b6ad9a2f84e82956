/*
 * mesh_zsock.h - the only place ZeroMQ sockets are created.
 *
 * Every socket gets LINGER, MAXMSGSIZE, SNDHWM and RCVHWM set from opts, so
 * no socket can block shutdown forever, accept an unbounded message, or queue
 * without limit. Service code never calls zmq_setsockopt for these.
 */
#ifndef MESH_ZSOCK_H
#define MESH_ZSOCK_H

#include <stdint.h>

typedef struct {
    int linger_ms;        /* ZMQ_LINGER, default 200 */
    int64_t max_msg_size; /* ZMQ_MAXMSGSIZE, default MESH_MAX_MSG_BYTES_DEFAULT */
    int sndhwm;           /* ZMQ_SNDHWM, default 10000 */
    int rcvhwm;           /* ZMQ_RCVHWM, default 10000 */
} mesh_zsock_opts_t;

/* Fill opts with the defaults above. */
void mesh_zsock_opts_default(mesh_zsock_opts_t *opts);

/*
 * Create a socket of type (ZMQ_ROUTER, ZMQ_DEALER, ...) with opts applied
 * (NULL opts = defaults). ROUTER sockets also get ZMQ_ROUTER_MANDATORY so a
 * send to a vanished peer fails with EHOSTUNREACH instead of vanishing.
 * Returns the socket or NULL (errno set).
 */
void *mesh_zsock_new(void *zctx, int type, const mesh_zsock_opts_t *opts);

/* Close a socket and NULL the pointer. Safe on NULL. */
void mesh_zsock_destroy(void **sock_p);

#endif
