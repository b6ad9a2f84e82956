/*
 * hopfloor.c - mesh-hopfloor: what the ZeroMQ hops of a streamed turn cost
 * on this machine with no mesh code at all, the floor under bench/ttft.
 *
 * The time-to-first-token path crosses four ZeroMQ hops that a direct call
 * to the model does not: gateway -> router -> llm worker (the request) and
 * llm worker -> router -> gateway (the first token). This tool builds the
 * same shape from bare libzmq in three processes (one ZeroMQ context, one
 * io thread each, as the services have):
 *
 *   client DEALER --tcp--> relay ROUTER | relay ROUTER <--tcp-- worker DEALER
 *
 * The relay's thread forwards client -> worker and worker -> client with
 * zmq_poll (the cheapest way to wait on two sockets); the worker echoes.
 * One sample = the client sends 64 bytes and waits for the echo: four hops,
 * each one the sender's io thread, the receiver's io thread and the
 * receiver's own thread waking in turn. With --gap-us G (default 20000) the
 * client sleeps G microseconds before each sample, so every thread is idle
 * when it starts, as in a streamed answer whose tokens come every 20 ms;
 * --gap-us 0 measures back-to-back samples. Also measured the same way:
 * two hops with no relay (client DEALER <-> echo ROUTER, both blocking in
 * zmq_recv: the least any two ZeroMQ hops can cost, so a lower bound of the
 * request path alone), and one raw TCP round trip between two processes
 * (two wake-ups), the floor of any hop.
 *
 *   mesh-hopfloor [-n 500] [--gap-us 20000] [--json]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define HOP_SAMPLES_MAX 100000
#define HOP_PAYLOAD     64
#define HOP_FRAME_MAX   256

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
    long i = (long)(p / 100.0 * (double)n + 0.5) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Move one multipart message from one socket to another (frames as they are). */
static int forward(void *from, void *to, const void *prefix, size_t prefix_len, bool drop_first)
{
    zmq_msg_t m;
    int more = 1, first = 1;
    if (prefix && zmq_send(to, prefix, prefix_len, ZMQ_SNDMORE) < 0)
        return -1;
    while (more) {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, from, 0) < 0)
            return -1;
        more = zmq_msg_more(&m);
        if (drop_first && first) {
            first = 0;
            zmq_msg_close(&m);
            continue;
        }
        first = 0;
        if (zmq_msg_send(&m, to, more ? ZMQ_SNDMORE : 0) < 0)
            return -1;
    }
    return 0;
}

/* The relay: ROUTER for the client, ROUTER for the worker (which says hello first). */
static void relay(const char *front_ep, const char *back_ep)
{
    void *ctx = zmq_ctx_new();
    void *front = zmq_socket(ctx, ZMQ_ROUTER), *back = zmq_socket(ctx, ZMQ_ROUTER);
    if (zmq_bind(front, front_ep) || zmq_bind(back, back_ep))
        _exit(1);
    unsigned char worker[HOP_FRAME_MAX];
    int wlen = zmq_recv(back, worker, sizeof(worker), 0); /* worker identity */
    char hello[8];
    if (wlen <= 0 || zmq_recv(back, hello, sizeof(hello), 0) < 0)
        _exit(1);
    zmq_pollitem_t items[2] = {{front, 0, ZMQ_POLLIN, 0}, {back, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0)
            _exit(0);
        /* client -> worker: [client id, payload] becomes [worker id, client id, payload] */
        if (items[0].revents & ZMQ_POLLIN)
            forward(front, back, worker, (size_t)wlen, false);
        /* worker -> client: [worker id, client id, payload] becomes [client id, payload] */
        if (items[1].revents & ZMQ_POLLIN)
            forward(back, front, NULL, 0, true);
    }
}

/* Echo two-frame messages [id, payload] back as they came, until killed. */
static void echo_loop(void *s)
{
    for (;;) {
        unsigned char id[HOP_FRAME_MAX], buf[HOP_FRAME_MAX];
        int n = zmq_recv(s, id, sizeof(id), 0);
        int m = n >= 0 ? zmq_recv(s, buf, sizeof(buf), 0) : -1;
        if (m < 0)
            _exit(0);
        zmq_send(s, id, (size_t)n, ZMQ_SNDMORE);
        zmq_send(s, buf, (size_t)m, 0);
    }
}

/* The worker behind the relay: says hello, then echoes [client id, payload]. */
static void worker(const char *back_ep)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (zmq_connect(s, back_ep) || zmq_send(s, "hi", 2, 0) < 0)
        _exit(1);
    echo_loop(s);
}

/* Two hops, no relay: a ROUTER that echoes [id, payload] in a blocking loop. */
static void echo_router(const char *ep)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    if (zmq_bind(s, ep))
        _exit(1);
    echo_loop(s);
}

static void tcp_echo(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char buf[HOP_PAYLOAD];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0 || write(fd, buf, (size_t)r) != r)
            _exit(0);
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &l)) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void report(const char *name, double *v, long n, bool json, bool last)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    if (json)
        printf("\"%s\": {\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}%s",
               name, pct(v, n, 50), pct(v, n, 90), pct(v, n, 99), v[n - 1], last ? "" : ", ");
    else
        printf("%-32s %9.1f %9.1f %9.1f %9.1f\n", name, pct(v, n, 50), pct(v, n, 90), pct(v, n, 99),
               v[n - 1]);
}

int main(int argc, char **argv)
{
    long n = 500, gap = 20000;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--gap-us") == 0 && i + 1 < argc)
            gap = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: mesh-hopfloor [-n N] [--gap-us G] [--json]\n");
            return 2;
        }
    }
    if (n < 1 || n > HOP_SAMPLES_MAX || gap < 0 || gap > 10000000) {
        fprintf(stderr, "mesh-hopfloor: -n 1..%d, --gap-us 0..10000000\n", HOP_SAMPLES_MAX);
        return 2;
    }
    int fp = free_port(), bp = free_port(), tp = free_port(), ep = free_port();
    if (fp <= 0 || bp <= 0 || tp <= 0 || ep <= 0)
        return 1;
    char fe[64], be[64], ee[64];
    snprintf(fe, sizeof(fe), "tcp://127.0.0.1:%d", fp);
    snprintf(be, sizeof(be), "tcp://127.0.0.1:%d", bp);
    snprintf(ee, sizeof(ee), "tcp://127.0.0.1:%d", ep);

    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in ta = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)tp)};
    if (bind(lfd, (struct sockaddr *)&ta, sizeof(ta)) || listen(lfd, 1))
        return 1;
    pid_t pids[4];
    if ((pids[0] = fork()) == 0)
        relay(fe, be);
    if ((pids[1] = fork()) == 0)
        worker(be);
    if ((pids[2] = fork()) == 0)
        tcp_echo(lfd);
    if ((pids[3] = fork()) == 0)
        echo_router(ee);
    close(lfd);

    void *ctx = zmq_ctx_new();
    void *c = zmq_socket(ctx, ZMQ_DEALER), *e = zmq_socket(ctx, ZMQ_DEALER);
    int tfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(tfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (zmq_connect(c, fe) || zmq_connect(e, ee) ||
        connect(tfd, (struct sockaddr *)&ta, sizeof(ta)))
        return 1;
    double *vz = calloc((size_t)n, sizeof(double)), *vt = calloc((size_t)n, sizeof(double));
    double *ve = calloc((size_t)n, sizeof(double));
    char payload[HOP_PAYLOAD], back[HOP_FRAME_MAX];
    memset(payload, 'x', sizeof(payload));
    int rc = 0;
    /* warm-up until the relay knows the worker and the client (and everything is mapped) */
    for (int i = 0; i < 50; i++) {
        if (zmq_send(c, payload, sizeof(payload), 0) < 0 ||
            zmq_recv(c, back, sizeof(back), 0) < 0 ||
            zmq_send(e, payload, sizeof(payload), 0) < 0 || zmq_recv(e, back, sizeof(back), 0) < 0)
            rc = 1;
    }
    for (long i = 0; i < n && rc == 0; i++) {
        if (gap)
            usleep((useconds_t)gap);
        double t0 = now_us();
        if (zmq_send(c, payload, sizeof(payload), 0) < 0 || zmq_recv(c, back, sizeof(back), 0) < 0)
            rc = 1;
        vz[i] = now_us() - t0;
        if (gap)
            usleep((useconds_t)gap);
        t0 = now_us();
        if (zmq_send(e, payload, sizeof(payload), 0) < 0 || zmq_recv(e, back, sizeof(back), 0) < 0)
            rc = 1;
        ve[i] = now_us() - t0;
        if (gap)
            usleep((useconds_t)gap);
        t0 = now_us();
        if (write(tfd, payload, sizeof(payload)) != (ssize_t)sizeof(payload))
            rc = 1;
        size_t got = 0;
        while (rc == 0 && got < sizeof(payload)) {
            ssize_t r = read(tfd, back + got, sizeof(payload) - got);
            if (r <= 0)
                rc = 1;
            else
                got += (size_t)r;
        }
        vt[i] = now_us() - t0;
    }
    for (int i = 0; i < 4; i++)
        kill(pids[i], SIGKILL);
    for (int i = 0; i < 4; i++)
        waitpid(pids[i], NULL, 0);
    if (rc) {
        fprintf(stderr, "mesh-hopfloor: a sample failed\n");
        return 1;
    }
    if (json) {
        printf("{\"samples\": %ld, \"gap_us\": %ld, ", n, gap);
        report("zmq_4_hops_via_relay", vz, n, true, false);
        report("zmq_2_hops_direct", ve, n, true, false);
        report("tcp_round_trip", vt, n, true, true);
        printf("}\n");
    } else {
        printf("round trips, %ld samples, %ld us idle before each, microseconds\n", n, gap);
        printf("%-32s %9s %9s %9s %9s\n", "path", "p50", "p90", "p99", "max");
        report("zmq: 4 hops through a relay", vz, n, false, false);
        report("zmq: 2 hops, no relay", ve, n, false, false);
        report("tcp: 1 round trip (2 hops)", vt, n, false, true);
    }
    free(vz);
    free(vt);
    free(ve);
    zmq_close(c);
    zmq_close(e);
    zmq_ctx_term(ctx);
    return 0;
}
