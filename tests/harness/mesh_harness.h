/*
 * mesh_harness.h - the test harness of the integration and protocol tests.
 *
 * It runs real processes (redis-server and the mesh-* binaries) on loopback
 * and gives the tests condition-based synchronisation: every wait polls a
 * condition (a log line, a TCP answer, an HTTP status) with a bounded
 * deadline; nothing sleeps a fixed time and hopes.
 *
 * Names: mh_ is the harness's own prefix (test code, not part of libmesh).
 *
 * Ownership and cleanup: every process the harness starts is recorded in a
 * process-wide registry. mh_init() installs an atexit hook and SIGINT/SIGTERM
 * handlers that SIGKILL every recorded process group, and children get
 * PR_SET_PDEATHSIG so they die with the test even when it is SIGKILLed (ctest
 * timeout). Tests stop things explicitly in cmocka teardowns; the hooks are
 * the safety net for assertion failures and crashes.
 *
 * Environment read: MESH_BIN_DIR (where mesh-* binaries are), MESH_DATA_DIR
 * (sample data), MESH_KEEP_TMP=1 (keep the per-test temp dir even on success),
 * MESH_TEST_VERBOSE=1 (print the harness's progress lines).
 */
#ifndef MESH_HARNESS_H
#define MESH_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define MH_MAX_PER_SERVICE 8  /* processes of one service in one mesh */
#define MH_MAX_ENV         32 /* extra "K=V" entries per service */
#define MH_PATH_MAX        512

/* ------------------------------------------------------------------ setup */

/*
 * Call once at the start of main(): creates the per-test temp dir
 * /tmp/mesh-<test_name>-XXXXXX and installs the cleanup hooks. Returns 0 or -1.
 */
int mh_init(const char *test_name);

/* The per-test temp dir (valid after mh_init). */
const char *mh_tmpdir(void);

/*
 * Call at the end of main() with cmocka's failure count: kills whatever is
 * still running, removes the temp dir when failed == 0 (and MESH_KEEP_TMP is
 * unset), otherwise prints its path and the tail of every process log so a CI
 * log shows what the services said. Returns failed (for `return mh_finish(..)`).
 */
int mh_finish(int failed);

/* Print a progress line on stderr when MESH_TEST_VERBOSE is set. */
void mh_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds on a monotonic clock. */
uint64_t mh_now_ms(void);

/*
 * A loopback TCP port that was free a moment ago, picked at random below the
 * kernel's ephemeral range (so no outgoing connection can take it before the
 * service binds it). Ports handed out by this process are never handed out
 * twice. Returns the port or -1.
 */
int mh_free_port(void);

/* Path of binary mesh-<svc> in MESH_BIN_DIR (static buffer per call site: copy it). */
const char *mh_bin(const char *svc, char *out, size_t out_size);

/* ---------------------------------------------------------------- processes */

typedef struct mh_proc mh_proc_t;

/*
 * Start argv[0] (a path) with argv, in its own process group, stdin from
 * /dev/null, stdout and stderr appended to <tmpdir>/<name>.log. The child's
 * environment is the test's environment without any MESH_* variable, plus
 * env (NULL-terminated "K=V" list; later entries win). Returns NULL when the
 * fork fails; an exec failure shows as an early exit with a log line.
 */
mh_proc_t *mh_proc_spawn(const char *name, char *const argv[], const char *const env[]);

/* Start the process again with the same argv/env (its log is appended). 0 or -1. */
int mh_proc_restart(mh_proc_t *p);

/*
 * SIGTERM, wait up to timeout_ms for the exit, then SIGKILL. Returns the exit
 * code (0..255), 128+signal when killed by a signal, or -1 when it was not
 * running. The process is reaped.
 */
int mh_proc_stop(mh_proc_t *p, int timeout_ms);

/* SIGKILL the process group and reap it. */
void mh_proc_kill9(mh_proc_t *p);

/* Send sig to the process (not reaped). */
int mh_proc_signal(mh_proc_t *p, int sig);

/*
 * Wait up to timeout_ms for the process to exit on its own. Returns the exit
 * code as mh_proc_stop does, or -2 on timeout (still running).
 */
int mh_proc_wait_exit(mh_proc_t *p, int timeout_ms);

/* true while the process runs (reaps it if it has exited). */
bool mh_proc_alive(mh_proc_t *p);

pid_t mh_proc_pid(const mh_proc_t *p);
const char *mh_proc_name(const mh_proc_t *p);
const char *mh_proc_log(const mh_proc_t *p);

/* Stop (if running) and free; NULLs *p_p. */
void mh_proc_destroy(mh_proc_t **p_p);

/* ---------------------------------------------------------------- log files */

/* Current size of the process's log: a mark to wait for lines written after it. */
size_t mh_log_mark(const mh_proc_t *p);

/*
 * Wait up to timeout_ms until the process's log, from byte offset `from`,
 * contains substr. true when found.
 */
bool mh_log_wait(const mh_proc_t *p, size_t from, const char *substr, int timeout_ms);

/*
 * Wait until any of procs[0..n) has substr in its log (each from offset 0).
 * Returns the index of the first that has it, or -1 on timeout.
 */
int mh_log_wait_any(mh_proc_t *const procs[], size_t n, const char *substr, int timeout_ms);

/* Number of lines of the process's log (from offset from) containing substr. */
int mh_log_count(const mh_proc_t *p, size_t from, const char *substr);

/* Same on any file. */
int mh_file_count(const char *path, size_t from, const char *substr);

/* The log's text from offset from (malloc'd, NUL-terminated; NULL if unreadable). */
char *mh_log_read(const mh_proc_t *p, size_t from);

/* --------------------------------------------------------------------- redis */

typedef struct mh_redis mh_redis_t;

/*
 * Start redis-server on port (0 = a free port) with --save '' --appendonly no
 * and wait (bounded) until it answers PING. NULL on failure.
 */
mh_redis_t *mh_redis_start(int port);
int mh_redis_port(const mh_redis_t *r);
/* Stop it (SHUTDOWN NOSAVE via SIGTERM); the port stays reserved for a restart. */
int mh_redis_stop(mh_redis_t *r);
/* Start it again on the same port and wait for PING. 0 or -1. */
int mh_redis_restart(mh_redis_t *r);
/* true when a PING on the port answers +PONG within timeout_ms. */
bool mh_redis_ping(int port, int timeout_ms);
void mh_redis_destroy(mh_redis_t **r_p);

/* ---------------------------------------------------------------------- mesh */

typedef enum {
    MH_ROUTER = 0,
    MH_LLM,
    MH_TOOLS,
    MH_MEMORY,
    MH_GATEWAY,
    MH_N_SVC,
} mh_svc_t;

typedef struct {
    /* processes per service; 0 means 1 (the gateway is always exactly 1) */
    int count[MH_N_SVC];
    /* extra environment per service, NULL-terminated "K=V" lists (NULL = none);
     * they override the harness defaults */
    const char *env[MH_N_SVC][MH_MAX_ENV];
    const char *env_all[MH_MAX_ENV];
    /* bound on reaching /readyz 200 and every worker registered; 0 = 20000 */
    int ready_timeout_ms;
} mh_mesh_opts_t;

typedef struct mh_mesh mh_mesh_t;

/*
 * Start redis, then the routers, the workers and the gateway on free loopback
 * ports with the fast test defaults (MESH_HEARTBEAT_MS=100,
 * MESH_HEARTBEAT_LIVENESS=3, MESH_RECONNECT_MIN_MS=50, MESH_RECONNECT_MAX_MS=500,
 * MESH_LOG_LEVEL=debug, MESH_DRAIN_MS=2000), then wait until the mesh is ready
 * (mh_mesh_wait_ready). NULL on failure (everything started is stopped).
 */
mh_mesh_t *mh_mesh_start(const mh_mesh_opts_t *opts);

/*
 * Ready = GET /readyz answers 200 AND every router reports (mmi.service) the
 * configured number of workers for llm, tools and memory. 0 or -1 on timeout.
 */
int mh_mesh_wait_ready(mh_mesh_t *m, int timeout_ms);

/* Only the HTTP part: GET /readyz == want_status within timeout_ms. 0 or -1. */
int mh_mesh_wait_readyz(mh_mesh_t *m, long want_status, int timeout_ms);

/*
 * Workers of svc ("llm", "tools", "memory") registered at every router, asked
 * with mmi.service through a libmesh client. Returns the minimum over the
 * routers, or -1 when a router did not answer within timeout_ms.
 */
int mh_mesh_workers(mh_mesh_t *m, const char *svc, int timeout_ms);

/*
 * Send one request (service, op, conv may be NULL, args borrowed) to the first
 * router through a libmesh client, as the gateway would. Returns the reply's
 * status (0 or MESH_E*), MESH_ETIMEDOUT when nothing came back in time.
 * *data_out (if non-NULL) gets the reply data (caller decrefs) or NULL.
 */
int mh_mesh_call(mh_mesh_t *m, const char *service, const char *op, const char *conv,
                 const json_t *args, int timeout_ms, json_t **data_out);

mh_proc_t *mh_mesh_proc(mh_mesh_t *m, mh_svc_t svc, int i);
int mh_mesh_count(const mh_mesh_t *m, mh_svc_t svc);
mh_redis_t *mh_mesh_redis(mh_mesh_t *m);
int mh_mesh_http_port(const mh_mesh_t *m);
/* "http://127.0.0.1:<port>" */
const char *mh_mesh_url(const mh_mesh_t *m);

/* SIGTERM one process (bounded), start it again, and wait for ready. 0 or -1. */
int mh_mesh_restart(mh_mesh_t *m, mh_svc_t svc, int i);

/* true when every started process of the mesh still runs (names the dead one via mh_note). */
bool mh_mesh_all_alive(mh_mesh_t *m);

/*
 * Stop the gateway, the workers, the routers (SIGTERM to a tier at once, each
 * waited for with a bound, then SIGKILL), then redis; free; NULL *m_p.
 * Returns the number of services that did not exit 0 (each is named on
 * stderr): teardowns fail on it, so a crash, a sanitizer report or a leak at
 * shutdown fails the test. Processes the test already stopped do not count.
 */
int mh_mesh_stop(mh_mesh_t **m_p);

extern const char *const mh_svc_names[MH_N_SVC];

/* ---------------------------------------------------------------------- HTTP */

typedef struct {
    long status; /* HTTP status, 0 when no response */
    char *body;  /* NUL-terminated (malloc'd) */
    size_t body_len;
    json_t *json;     /* body parsed as JSON, NULL if it is not JSON */
    double seconds;   /* total time */
    uint64_t done_ms; /* mh_now_ms() when it completed */
    char curl_err[256];
} mh_http_resp_t;

void mh_http_resp_clear(mh_http_resp_t *r);

/*
 * One blocking request with libcurl. method "GET"/"POST"/...; body may be
 * NULL; headers NULL-terminated list of "Name: value" (may be NULL). A JSON
 * body gets Content-Type: application/json unless headers set one. Returns 0
 * when an HTTP response arrived (any status), -1 otherwise (curl_err says why).
 */
int mh_http(const char *method, const char *url, const char *body, const char *const headers[],
            long timeout_ms, mh_http_resp_t *out);
int mh_http_get(const char *url, mh_http_resp_t *out);
int mh_http_post_json(const char *url, const char *body, mh_http_resp_t *out);

/* POST /v1/conversations/<conv>/messages {"text": text, "message_id": mid (if non-NULL)}. */
int mh_post_message(const mh_mesh_t *m, const char *conv, const char *text, const char *mid,
                    mh_http_resp_t *out);
/* GET /v1/conversations/<conv>. */
int mh_get_conversation(const mh_mesh_t *m, const char *conv, mh_http_resp_t *out);

/* A request for mh_http_multi / mh_http_async. */
typedef struct {
    const char *method;
    char url[256];
    char *body; /* borrowed */
    const char *const *headers;
    mh_http_resp_t resp; /* filled */
    double done_at_s;    /* completion time, seconds since the multi started */
} mh_http_req_t;

/*
 * Run reqs[0..n) concurrently with curl multi (one connection each) until all
 * complete or timeout_ms passes. Returns the number that got an HTTP response.
 */
int mh_http_multi(mh_http_req_t *reqs, size_t n, long timeout_ms);

/* A request running in a thread, so the test can act while it is in flight. */
typedef struct mh_http_async mh_http_async_t;
mh_http_async_t *mh_http_async_start(const char *method, const char *url, const char *body,
                                     long timeout_ms);
/* Wait for it and move its response into out. 0 or -1. Frees a. */
int mh_http_async_finish(mh_http_async_t *a, mh_http_resp_t *out);

/*
 * Send raw bytes on a new TCP connection to 127.0.0.1:port, then read until
 * the server closes or timeout_ms. Returns the status of the first response
 * line ("HTTP/1.x NNN"), 0 when the connection closed without a response, -1
 * on connect failure. If out is non-NULL it gets the bytes read (malloc'd).
 */
int mh_http_raw(int port, const void *data, size_t len, int timeout_ms, char **out);

/* ---------------------------------------------------------------- JSON helpers */

/* json_string_value of obj[key] or NULL. */
const char *mh_json_str(const json_t *obj, const char *key);
/* The error code of {"error":{"code":...}} or NULL. */
const char *mh_json_error_code(const json_t *obj);
/*
 * Merge src's keys into the object dst as the router merges a state.update's
 * slots and records: a null value deletes the key, any other replaces it.
 */
void mh_json_merge(json_t *dst, const json_t *src);
/* true if s contains a CJK ideograph (same ranges as mesh_text_lang). */
bool mh_has_cjk(const char *s);

/* ------------------------------------------------------ raw HTTP / SSE client */
/*
 * A minimal SSE client over a raw loopback socket (harness_sse.c): it
 * de-chunks by hand, timestamps each event as its last byte is read and fails
 * the running cmocka test on any SSE line it does not know. Call these only
 * inside a cmocka test (failures are cmocka assertions).
 */
#define MH_SSE_MAX_EVENTS 512

typedef struct {
    char event[40]; /* "" when the event had no event: line */
    char *data;
    uint64_t at_ms; /* when its last byte was read */
} mh_sse_ev_t;

typedef struct {
    int fd;
    uint64_t sent_ms, head_ms; /* request sent / response head complete */
    int status;
    char *head;
    bool chunked, closed, done; /* done: last chunk seen */
    char *raw;                  /* bytes after the head not yet de-chunked */
    size_t raw_len;
    char *body; /* de-chunked body not yet split into events */
    size_t body_len;
    mh_sse_ev_t ev[MH_SSE_MAX_EVENTS];
    int n_ev;
    int pings;
} mh_sse_t;

/* Append n bytes of p to the NUL-terminated malloc'd *buf of length *len. */
void mh_buf_append(char **buf, size_t *len, const char *p, size_t n);
/* A connected TCP socket to 127.0.0.1:port (asserts on failure). */
int mh_tcp_connect(int port);
/* POST body to path with Accept: accept and extra header lines ("" or "K: v\r\n..."). */
void mh_sse_open_h(mh_sse_t *c, int port, const char *path, const char *body, const char *accept,
                   const char *extra);
void mh_sse_open(mh_sse_t *c, int port, const char *path, const char *body, const char *accept);
/* Read once (up to wait_ms) and parse. false when nothing more can come. */
bool mh_sse_pump(mh_sse_t *c, int wait_ms);
/* Pump until the stream ended (last chunk, or close) or timeout. */
void mh_sse_run(mh_sse_t *c, int timeout_ms);
/* Close the socket and free what the client holds. */
void mh_sse_close(mh_sse_t *c);

/* ------------------------------------------- turns, people API, group setup */
/* (harness_turn.c; cmocka assertions, like the SSE client above) */

/* The mesh of a cmocka group that mh_group_setup starts with the default options. */
extern mh_mesh_t *mh_group_mesh;
/* cmocka group setup: mh_group_mesh = mh_mesh_start(NULL); 0 or -1. */
int mh_group_setup(void **state);
/* cmocka group teardown of mh_group_mesh: mh_mesh_teardown(&mh_group_mesh). */
int mh_group_teardown(void **state);
/*
 * Stop the mesh *m_p (mh_mesh_stop); 0 only when every process still ran
 * before the stop and every one exited clean, so a crash fails the group.
 */
int mh_mesh_teardown(mh_mesh_t **m_p);

/*
 * POST /v1/conversations/<conv>/messages {"text", "message_id" (if mid),
 * "agent" (if agent)}; fails the test unless it answers 200 with JSON that
 * has a string "reply". Returns the reply (borrowed from r).
 */
const char *mh_turn(const mh_mesh_t *m, const char *conv, const char *text, const char *mid,
                    const char *agent, mh_http_resp_t *r);
/* The turn answer's "state" object; fails the test when there is none. */
const json_t *mh_turn_state(const mh_http_resp_t *r);
/* state.mode of a turn answer ("" when unset); fails the test when there is no state. */
const char *mh_turn_mode(const mh_http_resp_t *r);
/* true when the turn's tool_calls has a call of name with ok: true. */
bool mh_tool_called_ok(const mh_http_resp_t *r, const char *name);
/* Fails the test (showing s) unless s contains needle. */
void mh_assert_has(const char *s, const char *needle);
/* A conversation id unique to this test process: "<tag>-<pid>". */
void mh_conv_id(char *out, size_t size, const char *tag);
/*
 * tool.call policy.lookup {policy_no} on the tools service through the first
 * router (mh_mesh_call): its status, *data_out the reply data or NULL.
 */
int mh_policy_lookup(mh_mesh_t *m, const char *policy_no, int timeout_ms, json_t **data_out);
/* A people-API request on path with Bearer key (NULL: no Authorization); asserts a response. */
void mh_people_http(const mh_mesh_t *m, const char *method, const char *path, const char *key,
                    const char *body, mh_http_resp_t *r);
/* The same on /v1/handoff/<conv>[/<action>] (action may be NULL). */
void mh_handoff_http(const mh_mesh_t *m, const char *method, const char *conv, const char *action,
                     const char *key, const char *body, mh_http_resp_t *r);
/*
 * GET path on a raw connection (extra: one header line without CRLF, or NULL)
 * and read the streamed answer until it contains want or timeout_ms passes.
 * Returns the bytes read (malloc'd, NUL-terminated).
 */
char *mh_stream_until(const mh_mesh_t *m, const char *path, const char *extra, const char *want,
                      int timeout_ms);
/* The customer's event stream of conv after seq `after`, read until want shows. */
char *mh_events_until(const mh_mesh_t *m, const char *conv, long long after, const char *want,
                      int timeout_ms);

/* ------------------------------------------------------- a private uv loop */
/* (harness_loop.c) for unit tests that run libmesh or a core on their own loop */

typedef struct {
    uv_loop_t loop;
    uv_timer_t tick; /* wakes the loop to check conditions; unref'd between waits */
} mh_loop_t;

typedef bool (*mh_cond_fn)(void *arg);

/* uv_loop_init and a tick every tick_ms. 0 or -1. */
int mh_loop_init(mh_loop_t *l, uint64_t tick_ms);
/* Run the loop until cond(arg) holds or timeout_ms passes; returns cond's last value. */
bool mh_loop_run_until(mh_loop_t *l, mh_cond_fn cond, void *arg, uint64_t timeout_ms);
/* Close the tick, run the loop out and close it: 0, or -1 when a handle is still open. */
int mh_loop_close(mh_loop_t *l);
/* Conditions on a mesh_redis_t * (passed as arg): mesh_redis_up / its negation. */
bool mh_cond_redis_up(void *redis);
bool mh_cond_redis_down(void *redis);

/*
 * Start the model stub (bin/mesh-openai-stub) on a free port with the recorded
 * exchanges of tests/stubs/openai, recording every request it gets (one JSON
 * line each) at <mh_tmpdir()>/<record_name>, whose path goes to record_out.
 * *proc_out is the stub (stop/destroy it like any mh_proc_t). The port, or -1.
 */
int mh_openai_stub_start(const char *record_name, mh_proc_t **proc_out,
                         char record_out[MH_PATH_MAX]);

/* ------------------------------- meshes on the model stub (harness_stub.c) */

/*
 * mh_openai_stub_start on a chosen port (0: a free one, e.g. to start a
 * stub again where the mesh already points); close_each runs it with
 * --close: it closes the connection after every response (no keep-alive).
 * The port, or -1.
 */
int mh_openai_stub_start_on(int port, bool close_each, const char *record_name,
                            mh_proc_t **proc_out, char record_out[MH_PATH_MAX]);

/*
 * mh_mesh_start with the llm workers on the openai backend against the stub
 * on port: MESH_LLM_BACKEND=openai, MESH_LLM_TIERS with every "tier=model" of
 * tiers (comma-separated, e.g. "small=stub-model,large=text_plain") at
 * http://127.0.0.1:<port>/v1, then llm_env (NULL-terminated "K=V" entries,
 * may be NULL). opts (may be NULL) gives everything else; its llm entries are
 * replaced. NULL on failure.
 */
mh_mesh_t *mh_openai_mesh_start(int port, const char *tiers, const char *const llm_env[],
                                const mh_mesh_opts_t *opts);

/* Group teardown of a mesh and its stub: mh_mesh_teardown(mesh_p), then the stub destroyed. */
int mh_openai_mesh_teardown(mh_mesh_t **mesh_p, mh_proc_t **stub_p);

/* ------------------ shared pieces of the integration tests (harness_turn.c, harness_stub.c) */

struct mh_prom; /* prom_parse.h: mh_prom_t */

/*
 * GET http://127.0.0.1:<port>/metrics and parse it strictly (mh_prom_parse);
 * fails the test unless it answers 200 with valid text format (who names the
 * service in the message, e.g. "router"). Returns the document: free it with
 * mh_prom_free. Only inside a cmocka test.
 */
struct mh_prom *mh_metrics_scrape(int port, const char *who);

/* The people-API key of "anna", the person the handoff tests log in as. */
#define MH_ANNA_KEY "anna-key-0123456789abcdef"

/*
 * cmocka group setup of mh_group_mesh for the people API: the gateway gets
 * MESH_PEOPLE_KEYS=people_keys ("name:key[,name:key]"), the memory workers
 * memory_env (NULL-terminated "K=V" list, may be NULL), and conv gets a
 * conversation id "<tag>-<pid>" (mh_conv_id). Tear down with
 * mh_group_teardown. 0 or -1.
 */
int mh_people_group_setup(const char *people_keys, const char *const memory_env[], const char *tag,
                          char *conv, size_t conv_size);

/*
 * The model stub's recorded requests (the file mh_openai_stub_start wrote to
 * record_out), in order, that asked for model (body.model) or that the stub
 * answered with script; a NULL criterion matches nothing. A new array (caller
 * decrefs), empty when nothing was recorded yet.
 */
json_t *mh_openai_stub_requests(const char *record, const char *model, const char *script);

#endif
