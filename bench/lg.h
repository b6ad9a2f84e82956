/*
 * lg.h - the load generator's shared state (mesh-loadgen).
 *
 * One libuv loop drives N keep-alive HTTP connections to the gateway. Each
 * connection runs conversations of T turns one after another (a turn must
 * wait for the previous one of its conversation anyway), each with a fresh
 * conversation id. Closed loop: the next turn goes out when the previous
 * answer arrives. Open loop (-r): every connection sends on a fixed schedule
 * and latency is measured from the scheduled send time, so a slow answer
 * counts against every request it delayed (no coordinated omission).
 */
#ifndef LG_H
#define LG_H

#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lg_hist.h"
#include "lg_scen.h"

#define LG_CONN_MAX   4096  /* -c upper bound */
#define LG_REQ_MAX    8192  /* one request's bytes (a scenario message is up to 2 KiB escaped) */
#define LG_BODY_KEEP  65536 /* response body bytes kept for the check */
#define LG_READ_BUF   65536 /* one read */
#define LG_STATUS_MAX 600   /* HTTP status codes counted individually */
#define LG_HOST_MAX   256

typedef enum {
    LG_ERR_CONNECT = 0, /* connect failed or connection reset */
    LG_ERR_TIMEOUT,     /* no answer within -T */
    LG_ERR_PARSE,       /* not HTTP */
    LG_ERR_BODY,        /* 200 without a "reply" */
    LG_ERR_N,
} lg_err_t;

typedef struct {
    char host[LG_HOST_MAX];
    int port;
    int conns;
    int turns;         /* per conversation */
    double duration_s; /* measured window */
    double warmup_s;
    double rate; /* turns/s in total; 0 = closed loop */
    uint64_t timeout_ms;
    int policies;     /* conversations cycle over P10000 .. P10000+policies-1 */
    const char *lang; /* "zh", "en" or "mix" */
    bool quiet;
    const char *scenario;     /* --scenario NAME, NULL for the built-in policy questions */
    const char *scenario_dir; /* --scenario-dir (default bench/scenarios) */
} lg_opts_t;

typedef struct lg lg_t;

typedef struct lg_conn {
    lg_t *lg;
    int idx;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_timer_t pace;    /* open loop: the next scheduled send */
    uv_timer_t timeout; /* the request in flight */
    http_parser parser;
    bool tcp_open; /* tcp handle initialised and not closed */
    bool connected;
    bool in_flight;
    bool writing;
    bool reconnect_pending;
    bool backoff; /* reconnect after a pause (the last attempt failed) */
    char conv[64];
    int turn; /* next turn of the current conversation, 0-based */
    int policy;
    bool english;
    /* scenario runs: the scenario of this connection and its current conversation */
    size_t scen;
    size_t sconv;
    uint64_t conv_count; /* conversations this connection started */
    unsigned long long seq;
    uint64_t sends;    /* open loop: requests scheduled so far */
    uint64_t sched_ns; /* when this request was due (open loop) or sent (closed) */
    char req[LG_REQ_MAX];
    size_t req_len;
    char body[LG_BODY_KEEP];
    size_t body_len;
    bool message_done;
    char read_buf[LG_READ_BUF];
} lg_conn_t;

struct lg {
    lg_opts_t o;
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    http_parser_settings settings;
    lg_conn_t *conns;
    uint64_t start_ns;  /* the run (and warm-up) starts */
    uint64_t window_ns; /* measurement starts */
    uint64_t end_ns;    /* measurement ends */
    bool stopping;
    uint64_t conv_seq;
    /* results (window only) */
    lg_hist_t hist;
    uint64_t ok;
    uint64_t status_count[LG_STATUS_MAX];
    uint64_t err_count[LG_ERR_N];
    uint64_t sent_total;
    uint64_t done_total;
    lg_scen_set_t scen; /* scenario runs (scen.n == 0: the built-in questions) */
};

/* Start every connection (connects and, closed loop, sends the first turn). */
void lg_conns_start(lg_t *lg);
/* Stop sending and close every handle; the loop then runs out. */
void lg_conns_stop(lg_t *lg);

extern const char *const lg_err_names[LG_ERR_N];

#endif
