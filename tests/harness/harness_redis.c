/*
 * harness_redis.c - a private redis-server per test, on a free loopback port.
 *
 * No persistence (--save '' --appendonly no): each test starts from an empty
 * database, and a stop/start on the same port simulates an outage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness_internal.h"

#define MH_REDIS_READY_MS 10000 /* bound on redis answering PING after start */
#define MH_REDIS_PING_MS  200   /* one PING attempt */
#define MH_REDIS_STOP_MS  5000

struct mh_redis {
    mh_proc_t *proc;
    int port;
};

static int connect_loopback(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof err;
        if (poll(&pfd, 1, timeout_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

bool mh_redis_ping(int port, int timeout_ms)
{
    uint64_t deadline = mh_now_ms() + (uint64_t)timeout_ms;
    int fd = connect_loopback(port, timeout_ms);
    if (fd < 0) {
        return false;
    }
    bool ok = false;
    static const char ping[] = "PING\r\n";
    if (send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof ping - 1)) {
        char buf[64];
        size_t got = 0;
        while (got < 7 && mh_now_ms() < deadline) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int left = (int)(deadline - mh_now_ms());
            if (poll(&pfd, 1, left > 0 ? left : 0) != 1) {
                break;
            }
            ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
            if (r <= 0) {
                break;
            }
            got += (size_t)r;
        }
        buf[got] = '\0';
        ok = strncmp(buf, "+PONG", 5) == 0;
    }
    close(fd);
    return ok;
}

static int wait_ping(int port)
{
    uint64_t deadline = mh_now_ms() + MH_REDIS_READY_MS;
    while (mh_now_ms() < deadline) {
        if (mh_redis_ping(port, MH_REDIS_PING_MS)) {
            return 0;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

mh_redis_t *mh_redis_start(int port)
{
    mh_redis_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return NULL;
    }
    r->port = port > 0 ? port : mh_free_port();
    if (r->port <= 0) {
        free(r);
        return NULL;
    }
    char port_s[16], name[32];
    snprintf(port_s, sizeof port_s, "%d", r->port);
    snprintf(name, sizeof name, "redis-%d", r->port);
    const char *redis = getenv("MESH_REDIS_SERVER");
    char *argv[] = {(char *)(redis != NULL ? redis : "/usr/bin/redis-server"),
                    "--port",
                    port_s,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    (char *)mh_tmpdir(),
                    NULL};
    r->proc = mh_proc_spawn(name, argv, NULL);
    if (r->proc == NULL || wait_ping(r->port) != 0) {
        fprintf(stderr, "harness: redis-server on port %d did not answer PING\n", r->port);
        mh_redis_destroy(&r);
        return NULL;
    }
    return r;
}

int mh_redis_port(const mh_redis_t *r)
{
    return r != NULL ? r->port : -1;
}

int mh_redis_stop(mh_redis_t *r)
{
    if (r == NULL) {
        return -1;
    }
    return mh_proc_stop(r->proc, MH_REDIS_STOP_MS);
}

int mh_redis_restart(mh_redis_t *r)
{
    if (r == NULL || mh_proc_restart(r->proc) != 0) {
        return -1;
    }
    return wait_ping(r->port);
}

void mh_redis_destroy(mh_redis_t **r_p)
{
    if (r_p == NULL || *r_p == NULL) {
        return;
    }
    mh_proc_destroy(&(*r_p)->proc);
    free(*r_p);
    *r_p = NULL;
}
