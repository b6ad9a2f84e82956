/*
 * mesh_redis.h - hiredis async on a libuv loop, with what hiredis 0.14 lacks:
 * per-command timeouts and automatic reconnect.
 *
 * Commands are queued FIFO on one connection (Redis answers in order). A
 * uv_timer checks the oldest pending command; if it is older than
 * timeout_ms the connection is considered broken: every pending command
 * completes with MESH_ETIMEDOUT, the context is dropped and a reconnect is
 * scheduled with capped exponential backoff. While disconnected, commands
 * fail at once with MESH_EUNAVAIL (callers decide whether to retry), so a
 * dead Redis never makes callers wait for more than timeout_ms.
 *
 * Each callback is called exactly once per accepted command.
 */
#ifndef MESH_REDIS_H
#define MESH_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct redisReply;
typedef struct mesh_redis mesh_redis_t;

typedef struct {
    const char *host;
    int port;
    uint64_t timeout_ms; /* per-command timeout, also the connect timeout */
    uint64_t reconnect_min_ms;
    uint64_t reconnect_max_ms;
} mesh_redis_opts_t;

/*
 * status: 0 with reply set (which may itself be a REDIS_REPLY_ERROR), or
 * MESH_ETIMEDOUT / MESH_EUNAVAIL with reply NULL. reply is borrowed.
 */
typedef void (*mesh_redis_cb)(mesh_redis_t *r, int status, struct redisReply *reply, void *arg);

/* Called whenever the connection comes up (true) or goes down (false). */
typedef void (*mesh_redis_state_cb)(mesh_redis_t *r, bool up, void *arg);

mesh_redis_t *mesh_redis_new(uv_loop_t *loop, const mesh_redis_opts_t *opts,
                             mesh_redis_state_cb state_cb, void *arg);

/* Start connecting (and keep reconnecting). 0 or MESH_ENOMEM. */
int mesh_redis_start(mesh_redis_t *r);

bool mesh_redis_up(const mesh_redis_t *r);

/*
 * Queue a command given as argv/argvlen (binary safe). Returns 0 (cb will be
 * called exactly once) or MESH_EUNAVAIL (not connected; cb not called).
 * Also (cb not called): MESH_EINVAL for a missing cb/argv and for commands
 * whose replies break the one-reply-per-command FIFO (SUBSCRIBE family,
 * MONITOR), MESH_ENOMEM. cb is never called from inside this function.
 */
int mesh_redis_command(mesh_redis_t *r, mesh_redis_cb cb, void *arg, int argc, const char **argv,
                       const size_t *argvlen);

/* Pending commands. */
size_t mesh_redis_pending(const mesh_redis_t *r);

/*
 * Fail pending commands with MESH_ECANCELED, disconnect, free. NULLs *r_p.
 * state_cb is not called. Safe from inside any callback of this module; the
 * memory is released by the loop's close callbacks, so the loop must run
 * once more afterwards.
 */
void mesh_redis_destroy(mesh_redis_t **r_p);

#endif
