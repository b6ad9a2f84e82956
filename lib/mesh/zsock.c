/*
 * zsock.c - the only place ZeroMQ sockets are created (mesh_zsock.h).
 *
 * Every socket leaves here with LINGER, MAXMSGSIZE, SNDHWM, RCVHWM and
 * IMMEDIATE set, so no socket can block zmq_ctx_term forever, accept an
 * unbounded message from a peer, or queue without limit. ROUTER sockets also
 * get ROUTER_MANDATORY: a send to an unknown identity then fails with
 * EHOSTUNREACH (mesh_uvzmq turns it into MESH_EUNAVAIL) instead of vanishing.
 */
#include <errno.h>
#include <zmq.h>

#include "mesh/mesh_limits.h"
#include "mesh/mesh_zsock.h"

#define MESH_ZSOCK_LINGER_DEFAULT 200
#define MESH_ZSOCK_HWM_DEFAULT    10000

void mesh_zsock_opts_default(mesh_zsock_opts_t *opts)
{
    if (!opts)
        return;
    opts->linger_ms = MESH_ZSOCK_LINGER_DEFAULT;
    opts->max_msg_size = MESH_MAX_MSG_BYTES_DEFAULT;
    opts->sndhwm = MESH_ZSOCK_HWM_DEFAULT;
    opts->rcvhwm = MESH_ZSOCK_HWM_DEFAULT;
}

/*
 * Refuse values that would switch a limit off: a negative linger waits
 * forever at shutdown, a max_msg_size <= 0 accepts anything, an HWM of 0 is
 * unlimited in ZeroMQ.
 */
static int opts_valid(const mesh_zsock_opts_t *o)
{
    return o->linger_ms >= 0 && o->max_msg_size > 0 && o->sndhwm > 0 && o->rcvhwm > 0;
}

static int set_int(void *sock, int opt, int val)
{
    return zmq_setsockopt(sock, opt, &val, sizeof(val));
}

void *mesh_zsock_new(void *zctx, int type, const mesh_zsock_opts_t *opts)
{
    mesh_zsock_opts_t def;
    void *sock = NULL;
    int saved;

    if (!zctx) {
        errno = EINVAL;
        return NULL;
    }
    if (!opts) {
        mesh_zsock_opts_default(&def);
        opts = &def;
    }
    if (!opts_valid(opts)) {
        errno = EINVAL;
        return NULL;
    }

    sock = zmq_socket(zctx, type);
    if (!sock)
        return NULL;

    int64_t maxmsg = opts->max_msg_size;
    if (set_int(sock, ZMQ_LINGER, opts->linger_ms) != 0 ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0 ||
        set_int(sock, ZMQ_SNDHWM, opts->sndhwm) != 0 ||
        set_int(sock, ZMQ_RCVHWM, opts->rcvhwm) != 0 ||
        /* Queue to peers that are not connected yet: a worker or gateway may start
         * before its router, and its READY/HEARTBEAT must wait in the pipe. */
        set_int(sock, ZMQ_IMMEDIATE, 0) != 0)
        goto err;
    if (type == ZMQ_ROUTER && set_int(sock, ZMQ_ROUTER_MANDATORY, 1) != 0)
        goto err;
    return sock;

err:
    saved = errno;
    zmq_close(sock);
    errno = saved;
    return NULL;
}

void mesh_zsock_destroy(void **sock_p)
{
    if (!sock_p || !*sock_p)
        return;
    zmq_close(*sock_p);
    *sock_p = NULL;
}
