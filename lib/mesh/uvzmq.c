/*
 * uvzmq.c - a ZeroMQ socket driven by a libuv loop (mesh_uvzmq.h).
 *
 * Three handles per socket, all embedded in the object:
 *   poll     uv_poll_t on ZMQ_FD (UV_READABLE). ZMQ_FD is really the socket's
 *            command mailbox: it signals when commands arrive, not when
 *            messages are readable, so every wakeup reads until EAGAIN.
 *   prepare  runs before the loop blocks. When this socket was written to
 *            since its last ZMQ_EVENTS check ("dirty"), it checks again: a
 *            send processes commands and can make the socket readable or
 *            writable without the fd ever signalling again.
 *   idle     started only when a wakeup hit its message budget; keeps the
 *            loop from blocking so the rest is read on the next iteration
 *            after other handles had their turn.
 *
 * Sends never block: EAGAIN on the first frame parks a copy of the message
 * in a FIFO that is flushed, in order, when ZMQ_EVENTS reports POLLOUT.
 * While anything is parked, new sends are parked behind it.
 *
 * Lifetime: mesh_uvzmq_close() closes the three handles and the zmq socket at
 * once; the memory is freed by the last close callback. A recv callback may
 * close its own socket: the object stays valid until the loop runs its close
 * callbacks, and the receive loop checks the closing flag after every call.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_uvzmq.h"

/* Messages received in one wakeup before yielding to the rest of the loop. */
#define MESH_UVZMQ_BATCH 256
/* Frames in one outbound message (identity + the largest protocol message, with room). */
#define MESH_UVZMQ_SEND_FRAMES_MAX 16

#define SUBSYS "uvzmq"

/* One parked message: header, then n frame views, then the bytes they point at. */
typedef struct park_msg {
    struct park_msg *next;
    size_t n;
    mesh_frame_t frames[];
} park_msg_t;

struct mesh_uvzmq {
    uv_loop_t *loop;
    void *sock;
    int type;
    uv_poll_t poll;
    uv_prepare_t prepare;
    uv_idle_t idle;
    int open_handles; /* handles not yet through their close callback */
    bool closing;
    bool dead;  /* the zmq socket failed for good (ETERM, ...) */
    bool dirty; /* sent since the last ZMQ_EVENTS check */
    mesh_uvzmq_recv_cb cb;
    void *arg;
    park_msg_t *park_head;
    park_msg_t *park_tail;
    size_t parked;
    /* Receive buffers, reused for every message. */
    zmq_msg_t rx[MESH_MAX_FRAMES];
    zmq_msg_t scratch; /* frames beyond MESH_MAX_FRAMES, read and discarded */
    mesh_frame_t frames[MESH_MAX_FRAMES];
};

static void service(mesh_uvzmq_t *s);
static void on_idle(uv_idle_t *h);

static void mark_dead(mesh_uvzmq_t *s, int err)
{
    if (s->dead)
        return;
    s->dead = true;
    mesh_log_error(SUBSYS, "socket unusable: %s", zmq_strerror(err));
    if (!s->closing) {
        uv_poll_stop(&s->poll);
        uv_idle_stop(&s->idle);
    }
}

static void park_free_all(mesh_uvzmq_t *s)
{
    park_msg_t *m = s->park_head;
    while (m) {
        park_msg_t *next = m->next;
        free(m);
        m = next;
    }
    s->park_head = s->park_tail = NULL;
    s->parked = 0;
}

/*
 * Send one multipart message without blocking. With ZMQ_DONTWAIT a multipart
 * message is atomic: the first frame decides whether the whole message is
 * accepted. Returns 0, MESH_EBUSY (EAGAIN: at HWM), MESH_EUNAVAIL (ROUTER:
 * unknown peer) or MESH_EIO.
 */
static int send_msg(mesh_uvzmq_t *s, const mesh_frame_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);
        int rc;
        do {
            rc = zmq_send(s->sock, f[i].data, f[i].size, flags);
        } while (rc < 0 && errno == EINTR);
        if (rc >= 0)
            continue;
        int e = errno;
        /* Whatever happened, the send processed commands: check events again. */
        s->dirty = true;
        if (i == 0 && e == EAGAIN)
            return MESH_EBUSY;
        if (i == 0 && e == EHOSTUNREACH)
            return MESH_EUNAVAIL;
        mesh_log_error(SUBSYS, "send failed at frame %zu of %zu: %s", i + 1, n, zmq_strerror(e));
        if (e == ETERM || e == ENOTSOCK)
            mark_dead(s, e);
        return MESH_EIO;
    }
    s->dirty = true;
    return 0;
}

static int park(mesh_uvzmq_t *s, const mesh_frame_t *f, size_t n)
{
    if (s->parked >= MESH_UVZMQ_PARK_MAX)
        return MESH_EBUSY;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i].size > SIZE_MAX / 2 - bytes)
            return MESH_ETOOBIG;
        bytes += f[i].size;
    }
    size_t head = sizeof(park_msg_t) + n * sizeof(mesh_frame_t);
    park_msg_t *m = malloc(head + bytes);
    if (!m)
        return MESH_ENOMEM;
    m->next = NULL;
    m->n = n;
    unsigned char *p = (unsigned char *)m + head;
    for (size_t i = 0; i < n; i++) {
        if (f[i].size)
            memcpy(p, f[i].data, f[i].size);
        m->frames[i].data = p;
        m->frames[i].size = f[i].size;
        p += f[i].size;
    }
    if (s->park_tail)
        s->park_tail->next = m;
    else
        s->park_head = m;
    s->park_tail = m;
    s->parked++;
    return 0;
}

/* Send parked messages in order until the queue is empty or the HWM is hit again. */
static void flush(mesh_uvzmq_t *s)
{
    while (s->park_head && !s->dead) {
        park_msg_t *m = s->park_head;
        int rc = send_msg(s, m->frames, m->n);
        if (rc == MESH_EBUSY)
            return;
        if (rc == MESH_EUNAVAIL)
            mesh_log_warn(SUBSYS, "parked message dropped: peer gone");
        else if (rc != 0)
            mesh_log_error(SUBSYS, "parked message dropped: %s", mesh_strerror(rc));
        s->park_head = m->next;
        if (!s->park_head)
            s->park_tail = NULL;
        s->parked--;
        free(m);
    }
}

/* ZMQ_EVENTS of the socket, or -1 when the socket is unusable. */
static int get_events(mesh_uvzmq_t *s)
{
    int ev = 0;
    size_t len = sizeof(ev);
    int rc;
    do {
        rc = zmq_getsockopt(s->sock, ZMQ_EVENTS, &ev, &len);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        mark_dead(s, errno);
        return -1;
    }
    return ev;
}

static void rx_release(mesh_uvzmq_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        zmq_msg_close(&s->rx[i]);
        zmq_msg_init(&s->rx[i]);
    }
}

/*
 * Receive one whole message and hand it to the callback. Returns 1 when a
 * message was consumed (delivered or dropped), 0 when none was waiting,
 * MESH_EIO on a socket failure.
 */
static int recv_one(mesh_uvzmq_t *s)
{
    size_t n = 0, extra = 0;

    for (;;) {
        zmq_msg_t *m = n < MESH_MAX_FRAMES ? &s->rx[n] : &s->scratch;
        int rc = zmq_msg_recv(m, s->sock, ZMQ_DONTWAIT);
        if (rc < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            if (n == 0 && e == EAGAIN)
                return 0;
            if (n > 0)
                mesh_log_error(SUBSYS, "receive failed inside a message after %zu frames: %s",
                               n + extra, zmq_strerror(e));
            if (e != EAGAIN)
                mark_dead(s, e);
            rx_release(s, n);
            return MESH_EIO;
        }
        bool more = zmq_msg_more(m);
        if (n < MESH_MAX_FRAMES)
            n++;
        else
            extra++;
        if (!more)
            break;
    }

    if (extra) {
        char sample[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_warn(SUBSYS, "dropped message of %zu frames (max %d), first frame \"%s\"",
                      n + extra, MESH_MAX_FRAMES,
                      mesh_log_sanitize(zmq_msg_data(&s->rx[0]), zmq_msg_size(&s->rx[0]), sample,
                                        sizeof(sample)));
        zmq_msg_close(&s->scratch);
        zmq_msg_init(&s->scratch);
        rx_release(s, n);
        return 1;
    }

    for (size_t i = 0; i < n; i++) {
        s->frames[i].data = zmq_msg_data(&s->rx[i]);
        s->frames[i].size = zmq_msg_size(&s->rx[i]);
    }
    /* The callback may close s: the memory stays valid until the close callbacks run. */
    s->cb(s, s->frames, n, s->arg);
    rx_release(s, n);
    return 1;
}

/*
 * Drain the socket: flush parked messages while POLLOUT, read messages until
 * the socket is empty, up to MESH_UVZMQ_BATCH messages; if more may be
 * waiting, the idle handle brings us back on the next loop iteration.
 *
 * Why a receive that fails with EAGAIN stands in for a ZMQ_EVENTS check:
 * libzmq's non-blocking receive, finding no message, processes every pending
 * command (an unthrottled process_commands(), the same one ZMQ_EVENTS runs,
 * which drains the mailbox and consumes ZMQ_FD's signal) and then looks for a
 * message again. So EAGAIN means "no message is readable after the commands
 * were processed": from then on, the next message (or command) signals the
 * fd again. That is all the edge-triggered rules ask for as long as nothing
 * is parked; only a parked message needs ZMQ_EVENTS, for POLLOUT. Each
 * wakeup thus costs one command check (one poll() inside libzmq) instead of
 * three: ZMQ_EVENTS, the EAGAIN receive, ZMQ_EVENTS again.
 *
 * dirty is cleared right before each receive attempt: a send made by the
 * callback of the message before it (which may have processed commands) is
 * covered by that attempt, and an EAGAIN leaves dirty false.
 */
static void service(mesh_uvzmq_t *s)
{
    unsigned budget = MESH_UVZMQ_BATCH;

    while (!s->closing && !s->dead) {
        bool progressed = false;
        if (s->park_head) {
            s->dirty = false;
            int ev = get_events(s);
            if (ev < 0)
                return;
            if (ev & ZMQ_POLLOUT) {
                size_t before = s->parked;
                flush(s);
                progressed = s->parked < before;
            }
            if (s->dead)
                return;
            if (!(ev & ZMQ_POLLIN)) {
                /* Look again only when the flush moved: a ROUTER reports POLLOUT
                 * while any peer has room, even if the parked head's peer has none.
                 * A failed attempt left dirty set: prepare looks before blocking. */
                if (progressed)
                    continue;
                break;
            }
        }
        if (budget == 0) {
            uv_idle_start(&s->idle, on_idle);
            return;
        }
        int got = 0, rc = 0;
        while (budget > 0 && !s->closing && !s->dead) {
            if (!s->park_head)
                s->dirty = false;
            rc = recv_one(s);
            if (rc <= 0)
                break;
            budget--;
            got++;
        }
        if (s->closing || s->dead)
            return;
        if (rc > 0)
            continue; /* budget spent with the socket maybe not empty: idle */
        if (rc < 0) {
            /* Not dead, yet failed: let prepare look again before blocking. */
            s->dirty = true;
            break;
        }
        /* EAGAIN: the commands were processed and nothing is readable. */
        if (!s->park_head)
            break;
        /* Parked: those commands may have brought POLLOUT back, which the fd
         * will not signal. Look again after reading something; after nothing,
         * leave it to prepare, so POLLIN with nothing to read cannot spin. */
        if (got == 0) {
            s->dirty = true;
            break;
        }
    }
    if (!s->closing && !s->dead)
        uv_idle_stop(&s->idle);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    mesh_uvzmq_t *s = h->data;
    if (status < 0) {
        mesh_log_error(SUBSYS, "poll error: %s", uv_strerror(status));
        return;
    }
    service(s);
}

static void on_prepare(uv_prepare_t *h)
{
    mesh_uvzmq_t *s = h->data;
    if (s->dirty && !s->closing && !s->dead)
        service(s);
}

static void on_idle(uv_idle_t *h)
{
    mesh_uvzmq_t *s = h->data;
    if (!s->closing && !s->dead)
        service(s);
}

static void on_close(uv_handle_t *h)
{
    mesh_uvzmq_t *s = h->data;
    if (--s->open_handles > 0)
        return;
    for (size_t i = 0; i < MESH_MAX_FRAMES; i++)
        zmq_msg_close(&s->rx[i]);
    zmq_msg_close(&s->scratch);
    free(s);
}

/* Close whatever handles are open and the socket; s is freed by the last close callback. */
static void begin_close(mesh_uvzmq_t *s)
{
    s->closing = true;
    if (s->parked)
        mesh_log_warn(SUBSYS, "closing with %zu parked messages unsent", s->parked);
    park_free_all(s);
    /* Closing the poll handle removes the fd from the backend at once, before
     * zmq_close lets the fd number be reused by a new socket. */
    uv_close((uv_handle_t *)&s->poll, on_close);
    uv_close((uv_handle_t *)&s->prepare, on_close);
    uv_close((uv_handle_t *)&s->idle, on_close);
    zmq_close(s->sock);
    s->sock = NULL;
}

mesh_uvzmq_t *mesh_uvzmq_new(uv_loop_t *loop, void *zctx, int type, const mesh_zsock_opts_t *opts,
                             mesh_uvzmq_recv_cb cb, void *arg)
{
    if (!loop || !zctx || !cb)
        return NULL;
    mesh_uvzmq_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->loop = loop;
    s->type = type;
    s->cb = cb;
    s->arg = arg;
    s->dirty = true;
    for (size_t i = 0; i < MESH_MAX_FRAMES; i++)
        zmq_msg_init(&s->rx[i]);
    zmq_msg_init(&s->scratch);

    s->sock = mesh_zsock_new(zctx, type, opts);
    if (!s->sock) {
        mesh_log_error(SUBSYS, "socket create failed: %s", zmq_strerror(errno));
        goto err_free;
    }
    int fd;
    size_t fdlen = sizeof(fd);
    if (zmq_getsockopt(s->sock, ZMQ_FD, &fd, &fdlen) != 0) {
        mesh_log_error(SUBSYS, "ZMQ_FD failed: %s", zmq_strerror(errno));
        goto err_sock;
    }
    int rc = uv_poll_init(loop, &s->poll, fd);
    if (rc != 0) {
        mesh_log_error(SUBSYS, "uv_poll_init failed: %s", uv_strerror(rc));
        goto err_sock;
    }
    s->poll.data = s;
    uv_prepare_init(loop, &s->prepare);
    s->prepare.data = s;
    uv_idle_init(loop, &s->idle);
    s->idle.data = s;
    s->open_handles = 3;
    /* Only the poll handle keeps the loop alive; prepare and idle are helpers. */
    uv_unref((uv_handle_t *)&s->prepare);
    uv_unref((uv_handle_t *)&s->idle);

    rc = uv_poll_start(&s->poll, UV_READABLE, on_poll);
    if (rc == 0)
        rc = uv_prepare_start(&s->prepare, on_prepare);
    if (rc != 0) {
        mesh_log_error(SUBSYS, "poll start failed: %s", uv_strerror(rc));
        begin_close(s); /* frees s from the close callbacks */
        return NULL;
    }
    return s;

err_sock:
    zmq_close(s->sock);
err_free:
    for (size_t i = 0; i < MESH_MAX_FRAMES; i++)
        zmq_msg_close(&s->rx[i]);
    zmq_msg_close(&s->scratch);
    free(s);
    return NULL;
}

static int endpoint_errno(int e)
{
    switch (e) {
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
        return MESH_EINVAL;
    default:
        return MESH_EIO;
    }
}

static int endpoint_ok(const mesh_uvzmq_t *s, const char *endpoint)
{
    return s && !s->closing && !s->dead && endpoint &&
           strnlen(endpoint, MESH_ENDPOINT_MAX + 1) <= MESH_ENDPOINT_MAX;
}

int mesh_uvzmq_bind(mesh_uvzmq_t *s, const char *endpoint)
{
    if (!endpoint_ok(s, endpoint))
        return MESH_EINVAL;
    if (zmq_bind(s->sock, endpoint) != 0) {
        int e = errno;
        mesh_log_error(SUBSYS, "bind %s failed: %s", endpoint, zmq_strerror(e));
        return endpoint_errno(e);
    }
    s->dirty = true;
    return 0;
}

int mesh_uvzmq_connect(mesh_uvzmq_t *s, const char *endpoint)
{
    if (!endpoint_ok(s, endpoint))
        return MESH_EINVAL;
    if (zmq_connect(s->sock, endpoint) != 0) {
        int e = errno;
        mesh_log_error(SUBSYS, "connect %s failed: %s", endpoint, zmq_strerror(e));
        return endpoint_errno(e);
    }
    s->dirty = true;
    return 0;
}

int mesh_uvzmq_send(mesh_uvzmq_t *s, const mesh_frame_t *frames, size_t n)
{
    if (!s || !frames || n == 0 || n > MESH_UVZMQ_SEND_FRAMES_MAX)
        return MESH_EINVAL;
    if (s->closing || s->dead)
        return MESH_EIO;
    /* Behind parked messages, a new one waits its turn to keep the order. */
    if (!s->park_head) {
        int rc = send_msg(s, frames, n);
        if (rc != MESH_EBUSY)
            return rc;
    }
    return park(s, frames, n);
}

bool mesh_uvzmq_readable(mesh_uvzmq_t *s)
{
    if (!s || s->closing || s->dead)
        return false;
    int ev = get_events(s);
    /* Reading ZMQ_EVENTS may have consumed the fd's edge: look again before blocking. */
    s->dirty = true;
    return ev > 0 && (ev & ZMQ_POLLIN);
}

size_t mesh_uvzmq_parked(const mesh_uvzmq_t *s)
{
    return s ? s->parked : 0;
}

void *mesh_uvzmq_socket(mesh_uvzmq_t *s)
{
    return s ? s->sock : NULL;
}

void mesh_uvzmq_close(mesh_uvzmq_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    mesh_uvzmq_t *s = *s_p;
    *s_p = NULL;
    if (s->closing)
        return;
    begin_close(s);
}
