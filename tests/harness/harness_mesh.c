/*
 * harness_mesh.c - a whole mesh (redis, routers, llm/tools/memory workers,
 * gateway) on free loopback ports, and the readiness condition the tests
 * wait for.
 *
 * Readiness has two parts: GET /readyz == 200 (the gateway sees a router and
 * memory has a worker, i.e. Redis is reachable) and, asked directly through a
 * libmesh client with mmi.service, every router has the configured number of
 * llm, tools and memory workers. The second part matters for the load and
 * failover tests: without it the first requests could all land on the first
 * worker to connect.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "mesh/mesh.h"

#include "harness_internal.h"

#define MH_READY_DEFAULT_MS 20000
#define MH_STOP_MS          5000 /* bound on one process's exit after SIGTERM */
#define MH_MMI_TIMEOUT_MS   1000 /* one mmi.service query */
#define MH_READY_POLL_MS    50

const char *const mh_svc_names[MH_N_SVC] = {"router", "llm", "tools", "memory", "gateway"};

struct mh_mesh {
    mh_redis_t *redis;
    mh_proc_t *procs[MH_N_SVC][MH_MAX_PER_SERVICE];
    int count[MH_N_SVC];
    char frontends[MH_MAX_PER_SERVICE][64];
    int http_port;
    char url[64];
};

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Append "key=value" (or key alone when value is NULL) to the env list; strings live in store. */
static void env_add(const char **env, size_t *n, char store[][MH_PATH_MAX], size_t *ns,
                    const char *key, const char *value)
{
    if (*n >= 4 * MH_MAX_ENV || *ns >= 4 * MH_MAX_ENV) {
        return;
    }
    if (value != NULL) {
        snprintf(store[*ns], MH_PATH_MAX, "%s=%s", key, value);
    } else {
        snprintf(store[*ns], MH_PATH_MAX, "%s", key);
    }
    env[(*n)++] = store[(*ns)++];
    env[*n] = NULL;
}

static void env_add_list(const char **env, size_t *n, const char *const *list)
{
    for (size_t i = 0; list != NULL && i < MH_MAX_ENV && list[i] != NULL; i++) {
        if (*n < 4 * MH_MAX_ENV) {
            env[(*n)++] = list[i];
            env[*n] = NULL;
        }
    }
}

static int spawn_one(mh_mesh_t *m, const mh_mesh_opts_t *o, mh_svc_t svc, int i,
                     const char *backends, const char *frontends)
{
    const char *env[4 * MH_MAX_ENV + 1] = {NULL};
    static char store[4 * MH_MAX_ENV][MH_PATH_MAX];
    size_t n = 0, ns = 0;
    const char *data = getenv("MESH_DATA_DIR");
    char num[32];

    env_add(env, &n, store, &ns, "MESH_HEARTBEAT_MS=100", NULL);
    env_add(env, &n, store, &ns, "MESH_HEARTBEAT_LIVENESS=3", NULL);
    env_add(env, &n, store, &ns, "MESH_RECONNECT_MIN_MS=50", NULL);
    env_add(env, &n, store, &ns, "MESH_RECONNECT_MAX_MS=500", NULL);
    env_add(env, &n, store, &ns, "MESH_LOG_LEVEL=debug", NULL);
    env_add(env, &n, store, &ns, "MESH_DRAIN_MS=2000", NULL);
    if (data != NULL) {
        env_add(env, &n, store, &ns, "MESH_DATA_DIR", data);
    }
    switch (svc) {
    case MH_ROUTER: {
        char ep[64];
        snprintf(ep, sizeof ep, "%s", m->frontends[i]);
        env_add(env, &n, store, &ns, "MESH_FRONTEND_BIND", ep);
        /* backends is the comma list; router i binds the i-th item */
        const char *b = backends;
        for (int k = 0; k < i && b != NULL; k++) {
            b = strchr(b, ',');
            b = b != NULL ? b + 1 : NULL;
        }
        if (b == NULL) {
            return -1;
        }
        size_t len = strcspn(b, ",");
        snprintf(ep, sizeof ep, "%.*s", (int)len, b);
        env_add(env, &n, store, &ns, "MESH_BACKEND_BIND", ep);
        break;
    }
    case MH_LLM:
    case MH_TOOLS:
        env_add(env, &n, store, &ns, "MESH_ROUTER_BACKENDS", backends);
        break;
    case MH_MEMORY:
        env_add(env, &n, store, &ns, "MESH_ROUTER_BACKENDS", backends);
        env_add(env, &n, store, &ns, "MESH_REDIS_HOST=127.0.0.1", NULL);
        snprintf(num, sizeof num, "%d", mh_redis_port(m->redis));
        env_add(env, &n, store, &ns, "MESH_REDIS_PORT", num);
        break;
    case MH_GATEWAY:
        env_add(env, &n, store, &ns, "MESH_ROUTER_FRONTENDS", frontends);
        env_add(env, &n, store, &ns, "MESH_HTTP_HOST=127.0.0.1", NULL);
        snprintf(num, sizeof num, "%d", m->http_port);
        env_add(env, &n, store, &ns, "MESH_HTTP_PORT", num);
        break;
    default:
        return -1;
    }
    env_add_list(env, &n, o->env_all);
    env_add_list(env, &n, o->env[svc]);

    char bin[MH_PATH_MAX], name[64];
    mh_bin(mh_svc_names[svc], bin, sizeof bin);
    if (svc == MH_GATEWAY) {
        snprintf(name, sizeof name, "gateway");
    } else {
        snprintf(name, sizeof name, "%s-%d", mh_svc_names[svc], i);
    }
    char *argv[] = {bin, NULL};
    m->procs[svc][i] = mh_proc_spawn(name, argv, env);
    return m->procs[svc][i] != NULL ? 0 : -1;
}

mh_mesh_t *mh_mesh_start(const mh_mesh_opts_t *opts)
{
    static const mh_mesh_opts_t none;
    const mh_mesh_opts_t *o = opts != NULL ? opts : &none;
    mh_mesh_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return NULL;
    }
    for (int s = 0; s < MH_N_SVC; s++) {
        int c = o->count[s] > 0 ? o->count[s] : 1;
        m->count[s] = c > MH_MAX_PER_SERVICE ? MH_MAX_PER_SERVICE : c;
    }
    m->count[MH_GATEWAY] = 1;
    m->redis = mh_redis_start(0);
    if (m->redis == NULL) {
        goto fail;
    }
    char backends[MH_MAX_PER_SERVICE * 64] = "", frontends[MH_MAX_PER_SERVICE * 64] = "";
    for (int i = 0; i < m->count[MH_ROUTER]; i++) {
        int fe = mh_free_port(), be = mh_free_port();
        if (fe < 0 || be < 0) {
            goto fail;
        }
        snprintf(m->frontends[i], sizeof m->frontends[i], "tcp://127.0.0.1:%d", fe);
        size_t bl = strlen(backends), fl = strlen(frontends);
        snprintf(backends + bl, sizeof backends - bl, "%stcp://127.0.0.1:%d", i ? "," : "", be);
        snprintf(frontends + fl, sizeof frontends - fl, "%s%s", i ? "," : "", m->frontends[i]);
    }
    m->http_port = mh_free_port();
    if (m->http_port < 0) {
        goto fail;
    }
    snprintf(m->url, sizeof m->url, "http://127.0.0.1:%d", m->http_port);
    static const mh_svc_t order[] = {MH_ROUTER, MH_LLM, MH_TOOLS, MH_MEMORY, MH_GATEWAY};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        for (int i = 0; i < m->count[order[k]]; i++) {
            if (spawn_one(m, o, order[k], i, backends, frontends) != 0) {
                goto fail;
            }
        }
    }
    int timeout = o->ready_timeout_ms > 0 ? o->ready_timeout_ms : MH_READY_DEFAULT_MS;
    if (mh_mesh_wait_ready(m, timeout) != 0) {
        fprintf(stderr, "harness: mesh not ready within %d ms\n", timeout);
        goto fail;
    }
    return m;
fail:
    mh_mesh_stop(&m);
    return NULL;
}

/* --- requests through a libmesh client on a private loop --- */

typedef struct {
    bool done;
    int status;
    json_t *data;
} call_result_t;

static void on_final(mesh_client_t *c, bool final, const mesh_reply_t *rep, void *arg)
{
    (void)c;
    call_result_t *res = arg;
    if (!final) {
        return;
    }
    res->done = true;
    res->status = rep->status;
    res->data = rep->data != NULL ? json_deep_copy(rep->data) : NULL;
}

static void on_tick(uv_timer_t *t)
{
    (void)t; /* only there so UV_RUN_ONCE returns regularly */
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

/*
 * One request to the router behind endpoint. Returns the reply status, or
 * MESH_ETIMEDOUT when no answer came within timeout_ms. *data_out (if non-NULL)
 * receives the reply data (owned) or NULL.
 */
static int client_call(const char *endpoint, const char *service, const char *op, const char *conv,
                       const json_t *args, int timeout_ms, json_t **data_out)
{
    if (data_out != NULL) {
        *data_out = NULL;
    }
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        return MESH_ENOMEM;
    }
    /* the client's connect/up lines would only clutter the test's output */
    mesh_log_level_t saved_level = mesh_log_get_level();
    if (getenv("MESH_TEST_VERBOSE") == NULL && saved_level < MESH_LOG_WARN) {
        mesh_log_set_level(MESH_LOG_WARN);
    }
    void *zctx = zmq_ctx_new();
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    mesh_client_opts_t co;
    memset(&co, 0, sizeof co);
    co.endpoints[0] = endpoint;
    co.n_endpoints = 1;
    co.heartbeat_ms = 100;
    co.liveness = 3;
    co.reconnect_min_ms = 50;
    co.reconnect_max_ms = 500;
    mesh_zsock_opts_default(&co.zopts);
    co.zopts.linger_ms = 0;
    mesh_client_t *c = zctx != NULL ? mesh_client_new(&loop, zctx, &co) : NULL;
    call_result_t res = {false, MESH_ETIMEDOUT, NULL};
    uint64_t deadline = mh_now_ms() + (uint64_t)timeout_ms;
    if (c != NULL && mesh_client_start(c) == 0) {
        while (mesh_client_routers_alive(c) == 0 && mh_now_ms() < deadline) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        mesh_request_t req;
        memset(&req, 0, sizeof req);
        snprintf(req.op, sizeof req.op, "%s", op);
        snprintf(req.tenant, sizeof req.tenant, "%s", MESH_TENANT_DEFAULT);
        if (conv != NULL) {
            snprintf(req.conv, sizeof req.conv, "%s", conv);
        }
        req.deadline_ms = (uint32_t)timeout_ms;
        req.args = (json_t *)args; /* borrowed: the encoder does not keep it */
        if (mesh_client_routers_alive(c) > 0 &&
            mesh_client_request(c, service, &req, on_final, &res, NULL) == 0) {
            while (!res.done && mh_now_ms() < deadline) {
                uv_run(&loop, UV_RUN_ONCE);
            }
        }
    }
    mesh_client_destroy(&c);
    uv_walk(&loop, close_walk, NULL);
    while (uv_loop_close(&loop) != 0) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    if (zctx != NULL) {
        zmq_ctx_term(zctx);
    }
    mesh_log_set_level(saved_level);
    if (data_out != NULL) {
        *data_out = res.data;
    } else {
        json_decref(res.data);
    }
    return res.done ? res.status : MESH_ETIMEDOUT;
}

int mh_mesh_call(mh_mesh_t *m, const char *service, const char *op, const char *conv,
                 const json_t *args, int timeout_ms, json_t **data_out)
{
    return client_call(m->frontends[0], service, op, conv, args, timeout_ms, data_out);
}

/* Workers of svc at the router behind endpoint, or -1 when it did not answer. */
static int mmi_workers(const char *endpoint, const char *svc, int timeout_ms)
{
    json_t *args = json_pack("{s:s}", "service", svc);
    json_t *data = NULL;
    int status = client_call(endpoint, "mmi.service", "mmi.service", NULL, args, timeout_ms, &data);
    json_decref(args);
    json_t *w = data != NULL ? json_object_get(data, "workers") : NULL;
    int workers = json_is_integer(w) ? (int)json_integer_value(w) : 0;
    json_decref(data);
    if (status == MESH_ENOTFOUND) {
        return 0;
    }
    return status == 0 ? workers : -1;
}

int mh_mesh_workers(mh_mesh_t *m, const char *svc, int timeout_ms)
{
    int min = -1;
    for (int i = 0; i < m->count[MH_ROUTER]; i++) {
        int w = mmi_workers(m->frontends[i], svc, timeout_ms);
        if (w < 0) {
            return -1;
        }
        if (min < 0 || w < min) {
            min = w;
        }
    }
    return min;
}

int mh_mesh_wait_readyz(mh_mesh_t *m, long want_status, int timeout_ms)
{
    char url[128];
    snprintf(url, sizeof url, "%s/readyz", m->url);
    uint64_t deadline = mh_now_ms() + (uint64_t)timeout_ms;
    long last = -1;
    while (mh_now_ms() < deadline) {
        mh_http_resp_t r;
        mh_http("GET", url, NULL, NULL, 1000, &r);
        last = r.status;
        mh_http_resp_clear(&r);
        if (last == want_status) {
            return 0;
        }
        pause_ms(MH_READY_POLL_MS);
    }
    mh_note("readyz stayed %ld (wanted %ld)", last, want_status);
    return -1;
}

int mh_mesh_wait_ready(mh_mesh_t *m, int timeout_ms)
{
    static const struct {
        mh_svc_t svc;
        const char *name;
    } workers[] = {{MH_LLM, "llm"}, {MH_TOOLS, "tools"}, {MH_MEMORY, "memory"}};
    uint64_t start = mh_now_ms();
    uint64_t deadline = start + (uint64_t)timeout_ms;
    while (mh_now_ms() < deadline) {
        if (!mh_mesh_all_alive(m)) {
            return -1; /* a service died: waiting longer cannot help */
        }
        int left = (int)(deadline - mh_now_ms());
        if (mh_mesh_wait_readyz(m, 200, left < 200 ? left : 200) != 0) {
            continue;
        }
        bool all = true;
        for (size_t k = 0; k < sizeof workers / sizeof workers[0] && all; k++) {
            int want = 0;
            for (int i = 0; i < m->count[workers[k].svc]; i++) {
                want += mh_proc_alive(m->procs[workers[k].svc][i]) ? 1 : 0;
            }
            int have = mh_mesh_workers(m, workers[k].name, MH_MMI_TIMEOUT_MS);
            if (have < want) {
                mh_note("%s workers %d of %d", workers[k].name, have, want);
                all = false;
            }
        }
        if (all) {
            mh_note("mesh ready after %llu ms", (unsigned long long)(mh_now_ms() - start));
            return 0;
        }
        pause_ms(MH_READY_POLL_MS);
    }
    return -1;
}

mh_proc_t *mh_mesh_proc(mh_mesh_t *m, mh_svc_t svc, int i)
{
    if (m == NULL || svc >= MH_N_SVC || i < 0 || i >= m->count[svc]) {
        return NULL;
    }
    return m->procs[svc][i];
}

int mh_mesh_count(const mh_mesh_t *m, mh_svc_t svc)
{
    return m != NULL && svc < MH_N_SVC ? m->count[svc] : 0;
}

mh_redis_t *mh_mesh_redis(mh_mesh_t *m)
{
    return m != NULL ? m->redis : NULL;
}

int mh_mesh_http_port(const mh_mesh_t *m)
{
    return m != NULL ? m->http_port : -1;
}

const char *mh_mesh_url(const mh_mesh_t *m)
{
    return m != NULL ? m->url : "";
}

int mh_mesh_restart(mh_mesh_t *m, mh_svc_t svc, int i)
{
    mh_proc_t *p = mh_mesh_proc(m, svc, i);
    if (p == NULL) {
        return -1;
    }
    int rc = mh_proc_stop(p, MH_STOP_MS);
    mh_note("%s stopped with %d", mh_proc_name(p), rc);
    if (mh_proc_restart(p) != 0) {
        return -1;
    }
    return mh_mesh_wait_ready(m, MH_READY_DEFAULT_MS);
}

bool mh_mesh_all_alive(mh_mesh_t *m)
{
    bool all = true;
    for (int s = 0; s < MH_N_SVC; s++) {
        for (int i = 0; i < m->count[s]; i++) {
            if (m->procs[s][i] != NULL && !mh_proc_alive(m->procs[s][i])) {
                fprintf(stderr, "harness: %s is not running (log %s)\n",
                        mh_proc_name(m->procs[s][i]), mh_proc_log(m->procs[s][i]));
                all = false;
            }
        }
    }
    return all;
}

/*
 * SIGTERM every process of a tier at once, then wait for each (bounded).
 * Returns how many did not exit 0 (a sanitizer report or a leak at exit
 * shows up here as a non-zero exit code).
 */
static int stop_tier(mh_mesh_t *m, mh_svc_t svc)
{
    int bad = 0;
    for (int i = 0; i < m->count[svc]; i++) {
        mh_proc_signal(m->procs[svc][i], SIGTERM);
    }
    for (int i = 0; i < m->count[svc]; i++) {
        mh_proc_t *p = m->procs[svc][i];
        if (p == NULL) {
            continue;
        }
        if (mh_proc_pid(p) != 0) {
            int rc = mh_proc_wait_exit(p, MH_STOP_MS);
            if (rc == -2) {
                fprintf(stderr, "harness: %s ignored SIGTERM for %d ms, killing\n", mh_proc_name(p),
                        MH_STOP_MS);
                mh_proc_kill9(p);
                bad++;
            } else if (rc != 0) {
                fprintf(stderr, "harness: %s exited %d on SIGTERM (log %s)\n", mh_proc_name(p), rc,
                        mh_proc_log(p));
                bad++;
            }
        }
        mh_proc_destroy(&m->procs[svc][i]);
    }
    return bad;
}

int mh_mesh_stop(mh_mesh_t **m_p)
{
    if (m_p == NULL || *m_p == NULL) {
        return 0;
    }
    mh_mesh_t *m = *m_p;
    int bad = stop_tier(m, MH_GATEWAY);
    bad += stop_tier(m, MH_LLM);
    bad += stop_tier(m, MH_TOOLS);
    bad += stop_tier(m, MH_MEMORY);
    bad += stop_tier(m, MH_ROUTER);
    mh_redis_destroy(&m->redis);
    free(m);
    *m_p = NULL;
    return bad;
}
