/*
 * loadgen.c - mesh-loadgen: HTTP load against the gateway, multi-turn
 * conversations, closed or open loop, latency percentiles.
 *
 *   mesh-loadgen [-u http://127.0.0.1:8080] [-c 64] [-t 3] [-d 10] [-w 2]
 *                [-r turns/s] [-T timeout_ms] [-P policies] [-l zh|en|mix] [-q]
 *                [--scenario policy_qa|claims_intake|health_review|life_trainer|mixed]
 *                [--scenario-dir bench/scenarios]
 *
 * Prints a human summary and, last, one JSON line for scripts (bench/run.sh).
 * Exit status: 0 when the run completed (errors are reported, not fatal),
 * 2 on bad arguments, 1 when no turn succeeded in the measured window.
 */
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lg.h"

#define NS_PER_S       1000000000.0
#define LG_DEFAULT_URL "http://127.0.0.1:8080"
#define LG_SCEN_DIR    "bench/scenarios"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mesh-loadgen [options]\n"
            "  -u URL     gateway base URL (default " LG_DEFAULT_URL ")\n"
            "  -c N       keep-alive connections, one conversation at a time each (default 16)\n"
            "  -t N       turns per conversation (default 3: policy question, deductible,\n"
            "             exclusions; follow-ups carry no policy number)\n"
            "  -d SEC     measured duration (default 10)\n"
            "  -w SEC     warm-up before measuring (default 2)\n"
            "  -r RATE    open loop: total turns/s on a fixed schedule, latency measured from\n"
            "             the scheduled time (default 0: closed loop, saturation)\n"
            "  -T MS      per-turn timeout (default 30000)\n"
            "  -P N       conversations cycle over policies P10000..P10000+N-1 (default 1, i.e.\n"
            "             P10000; use 400 for the whole sample set)\n"
            "  -l LANG    zh, en or mix (default zh)\n"
            "  -q         only the JSON line\n"
            "  --scenario NAME   scripted conversations from <dir>/NAME.json: policy_qa,\n"
            "             claims_intake, health_review, life_trainer, or mixed (every file,\n"
            "             connection i runs scenario i mod n); -t is ignored (bench/README.md)\n"
            "  --scenario-dir DIR  where the scenario files are (default " LG_SCEN_DIR ")\n");
}

static int parse_url(const char *url, lg_opts_t *o)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
    }
    size_t hlen = strcspn(p, ":/");
    if (hlen == 0 || hlen >= sizeof o->host) {
        return -1;
    }
    memcpy(o->host, p, hlen);
    o->host[hlen] = '\0';
    o->port = 80;
    if (p[hlen] == ':') {
        char *end = NULL;
        long port = strtol(p + hlen + 1, &end, 10);
        if (port <= 0 || port > 65535 || (*end != '\0' && *end != '/')) {
            return -1;
        }
        o->port = (int)port;
    }
    return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, lg_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->conns = 16;
    o->turns = 3;
    o->duration_s = 10;
    o->warmup_s = 2;
    o->timeout_ms = 30000;
    o->policies = 1;
    o->lang = "zh";
    if (parse_url(LG_DEFAULT_URL, o) != 0) {
        return -1;
    }
    o->scenario_dir = LG_SCEN_DIR;
    static const struct option longs[] = {{"scenario", required_argument, NULL, 'S'},
                                          {"scenario-dir", required_argument, NULL, 'D'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    int ch;
    double v;
    while ((ch = getopt_long(argc, argv, "u:c:t:d:w:r:T:P:l:qh", longs, NULL)) != -1) {
        switch (ch) {
        case 'S':
            o->scenario = optarg;
            break;
        case 'D':
            o->scenario_dir = optarg;
            break;
        case 'u':
            if (parse_url(optarg, o) != 0) {
                fprintf(stderr, "mesh-loadgen: bad URL %s\n", optarg);
                return -1;
            }
            break;
        case 'c':
            if (parse_double(optarg, 1, LG_CONN_MAX, &v) != 0) {
                fprintf(stderr, "mesh-loadgen: -c must be 1..%d\n", LG_CONN_MAX);
                return -1;
            }
            o->conns = (int)v;
            break;
        case 't':
            if (parse_double(optarg, 1, 1000, &v) != 0) {
                fprintf(stderr, "mesh-loadgen: -t must be 1..1000\n");
                return -1;
            }
            o->turns = (int)v;
            break;
        case 'd':
            if (parse_double(optarg, 0.1, 86400, &o->duration_s) != 0) {
                fprintf(stderr, "mesh-loadgen: -d must be 0.1..86400 seconds\n");
                return -1;
            }
            break;
        case 'w':
            if (parse_double(optarg, 0, 3600, &o->warmup_s) != 0) {
                fprintf(stderr, "mesh-loadgen: -w must be 0..3600 seconds\n");
                return -1;
            }
            break;
        case 'r':
            if (parse_double(optarg, 0, 10000000, &o->rate) != 0) {
                fprintf(stderr, "mesh-loadgen: -r must be >= 0 turns/s\n");
                return -1;
            }
            break;
        case 'T':
            if (parse_double(optarg, 1, 600000, &v) != 0) {
                fprintf(stderr, "mesh-loadgen: -T must be 1..600000 ms\n");
                return -1;
            }
            o->timeout_ms = (uint64_t)v;
            break;
        case 'P':
            if (parse_double(optarg, 1, 90000, &v) != 0) {
                fprintf(stderr, "mesh-loadgen: -P must be 1..90000\n");
                return -1;
            }
            o->policies = (int)v;
            break;
        case 'l':
            if (strcmp(optarg, "zh") != 0 && strcmp(optarg, "en") != 0 &&
                strcmp(optarg, "mix") != 0) {
                fprintf(stderr, "mesh-loadgen: -l must be zh, en or mix\n");
                return -1;
            }
            o->lang = optarg;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "mesh-loadgen: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int resolve(lg_t *lg)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port[16];
    snprintf(port, sizeof port, "%d", lg->o.port);
    int rc = getaddrinfo(lg->o.host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        fprintf(stderr, "mesh-loadgen: cannot resolve %s: %s\n", lg->o.host, gai_strerror(rc));
        return -1;
    }
    memcpy(&lg->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void on_end(uv_timer_t *t)
{
    lg_t *lg = t->data;
    lg_conns_stop(lg);
    uv_close((uv_handle_t *)t, NULL);
}

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

static void report(const lg_t *lg)
{
    const lg_opts_t *o = &lg->o;
    const lg_hist_t *h = &lg->hist;
    uint64_t errors = 0;
    json_t *by = json_object();
    for (int s = 0; s < LG_STATUS_MAX; s++) {
        if (lg->status_count[s] > 0) {
            char key[16];
            snprintf(key, sizeof key, "%d", s);
            json_object_set_new(by, key, json_integer((json_int_t)lg->status_count[s]));
            errors += lg->status_count[s];
        }
    }
    for (int e = 0; e < LG_ERR_N; e++) {
        if (lg->err_count[e] > 0) {
            json_object_set_new(by, lg_err_names[e], json_integer((json_int_t)lg->err_count[e]));
            errors += lg->err_count[e];
        }
    }
    double tps = (double)lg->ok / o->duration_s;
    if (!o->quiet) {
        char conv_desc[96];
        if (o->scenario != NULL)
            snprintf(conv_desc, sizeof conv_desc, "scripted conversations (%s)", o->scenario);
        else
            snprintf(conv_desc, sizeof conv_desc, "%d turns/conversation", o->turns);
        printf("mesh-loadgen: %s:%d, %d connections, %s, %s, "
               "%.1f s measured after %.1f s warm-up\n",
               o->host, o->port, o->conns, o->rate > 0 ? "open loop" : "closed loop", conv_desc,
               o->duration_s, o->warmup_s);
        if (o->rate > 0) {
            printf("  target rate      %.1f turns/s\n", o->rate);
        }
        printf("  turns ok         %llu (%.1f turns/s)\n", (unsigned long long)lg->ok, tps);
        printf("  errors           %llu", (unsigned long long)errors);
        const char *k;
        json_t *v;
        json_object_foreach(by, k, v)
        {
            printf(" %s=%lld", k, (long long)json_integer_value(v));
        }
        printf("\n");
        printf("  latency ms       p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
               ms(lg_hist_quantile(h, 0.50)), ms(lg_hist_quantile(h, 0.90)),
               ms(lg_hist_quantile(h, 0.99)), ms(lg_hist_quantile(h, 0.999)), ms(h->max_us),
               lg_hist_mean(h) / 1000.0);
    }
    json_t *j = json_pack(
        "{s:s, s:i, s:s, s:f, s:i, s:f, s:f, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o}",
        "tool", "mesh-loadgen", "connections", o->conns, "mode", o->rate > 0 ? "open" : "closed",
        "rate_target", o->rate, "turns_per_conversation", o->turns, "duration_s", o->duration_s,
        "warmup_s", o->warmup_s, "turns_ok", (json_int_t)lg->ok, "errors", (json_int_t)errors,
        "turns_per_s", tps, "p50_ms", ms(lg_hist_quantile(h, 0.50)), "p90_ms",
        ms(lg_hist_quantile(h, 0.90)), "p99_ms", ms(lg_hist_quantile(h, 0.99)), "p999_ms",
        ms(lg_hist_quantile(h, 0.999)), "max_ms", ms(h->max_us), "mean_ms",
        lg_hist_mean(h) / 1000.0, "errors_by", by);
    if (j != NULL && lg->scen.n > 0) {
        json_t *arr = json_array();
        if (!o->quiet)
            printf("  per scenario     turns/s | p50 p90 p99 p99.9 max (ms) | errors\n");
        for (size_t k = 0; k < lg->scen.n; k++) {
            const lg_scen_t *s = &lg->scen.s[k];
            const lg_hist_t *sh = &s->hist;
            double stps = (double)s->ok / o->duration_s;
            if (!o->quiet)
                printf("    %-14s %8.1f | %.3f %.3f %.3f %.3f %.3f | %llu\n", s->name, stps,
                       ms(lg_hist_quantile(sh, 0.50)), ms(lg_hist_quantile(sh, 0.90)),
                       ms(lg_hist_quantile(sh, 0.99)), ms(lg_hist_quantile(sh, 0.999)),
                       ms(sh->max_us), (unsigned long long)s->errors);
            json_array_append_new(
                arr,
                json_pack("{s:s, s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I}", "name",
                          s->name, "agent", s->agent, "turns_ok", (json_int_t)s->ok, "turns_per_s",
                          stps, "p50_ms", ms(lg_hist_quantile(sh, 0.50)), "p90_ms",
                          ms(lg_hist_quantile(sh, 0.90)), "p99_ms", ms(lg_hist_quantile(sh, 0.99)),
                          "p999_ms", ms(lg_hist_quantile(sh, 0.999)), "max_ms", ms(sh->max_us),
                          "mean_ms", lg_hist_mean(sh) / 1000.0, "errors", (json_int_t)s->errors));
        }
        json_object_set_new(j, "scenario", json_string(o->scenario));
        json_object_set_new(j, "scenarios", arr);
    }
    char *line = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (line != NULL) {
        printf("%s\n", line);
    }
    free(line);
    json_decref(j);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static lg_t lg; /* large (histogram, buffers): not on the stack */
    if (parse_options(argc, argv, &lg.o) != 0) {
        usage(stderr);
        return 2;
    }
    if (resolve(&lg) != 0) {
        return 2;
    }
    if (lg.o.scenario != NULL) {
        char err[512];
        if (lg_scen_load(lg.o.scenario_dir, lg.o.scenario, &lg.scen, err, sizeof err) != 0) {
            fprintf(stderr, "mesh-loadgen: %s\n", err);
            lg_scen_free(&lg.scen);
            return 2;
        }
    }
    lg.conns = calloc((size_t)lg.o.conns, sizeof *lg.conns);
    if (lg.conns == NULL) {
        fprintf(stderr, "mesh-loadgen: out of memory\n");
        return 1;
    }
    lg_hist_init(&lg.hist);
    lg.loop = uv_default_loop();
    uv_update_time(lg.loop);
    lg.start_ns = uv_hrtime();
    lg.window_ns = lg.start_ns + (uint64_t)(lg.o.warmup_s * NS_PER_S);
    lg.end_ns = lg.window_ns + (uint64_t)(lg.o.duration_s * NS_PER_S);
    uv_timer_t end;
    uv_timer_init(lg.loop, &end);
    end.data = &lg;
    uv_timer_start(&end, on_end, (uint64_t)((lg.o.warmup_s + lg.o.duration_s) * 1000.0), 0);
    lg_conns_start(&lg);
    uv_run(lg.loop, UV_RUN_DEFAULT);
    uv_loop_close(lg.loop);
    report(&lg);
    lg_scen_free(&lg.scen);
    free(lg.conns);
    return lg.ok > 0 ? 0 : 1;
}
