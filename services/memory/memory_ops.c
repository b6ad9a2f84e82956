/*
 * memory_ops.c - turn.begin, turn.end, turn.abort, conv.get, lease.renew,
 * trace.get, and the dispatch of tool.call (memory_claims.c) and the
 * handoff ops (memory_handoff.c) (memory_ops.h).
 *
 * Each op: validate args (memory_args.c) -> build the script's KEYS and ARGV
 * -> one script call (memory_eval.c) -> check and convert the reply
 * (memory_reply.c) -> [one follow-up command on the handoff queue] ->
 * done(). The op context copies what the reply needs (the conversation id,
 * the metric series), so nothing of memory_ops_t is used after the call was
 * sent.
 */
#include "memory_ops.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_msg.h"
#include "memory_args.h"
#include "memory_eval.h"
#include "mesh/mesh_json.h"
#include "memory_keys.h"
#include "memory_metrics.h"
#include "memory_bind.h"
#include "memory_op_int.h"
#include "memory_reply.h"
#include "memory_scripts.h"

#define OPS_SUBSYS "memory"

/* A turn's span timeline (turn.end "trace"): spans and JSON bytes kept. */
#define MEMORY_TRACE_SPANS_MAX 128
#define MEMORY_TRACE_JSON_MAX  (64 * 1024)
/* trace.get: the largest turn number asked for. */
#define MEMORY_TRACE_TURN_MAX 2147483647
/*
 * Timelines kept per conversation in its traces hash: the newest this many
 * turns (and never more than MESH_HISTORY_MAX). A timeline is at most
 * MEMORY_TRACE_JSON_MAX bytes, so a conversation's traces stay below 6.4 MB.
 */
#define MEMORY_TRACE_TURNS_KEEP 100

struct memory_ops {
    mesh_redis_t *redis;
    memory_eval_t *eval;
    memory_ops_cfg_t cfg;
    memory_metrics_t metrics;
};

int memory_fail(int rc, char *err, size_t err_size, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Wall-clock unix milliseconds (message ts, state created/updated). */
static uint64_t now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ replies */

static int begin_data(const redisReply *r, memory_op_t *c, json_t **data, char *err,
                      size_t err_size)
{
    (void)c;
    return memory_reply_begin(r, data, err, err_size);
}

/* turn.end: the script's {"ok", handoff, handoff_at} puts a pending conversation on the queue. */
static int end_data(const redisReply *r, memory_op_t *c, json_t **data, char *err, size_t err_size)
{
    int rc = memory_reply_end(r, data, err, err_size);
    if (rc != 0 || r->elements < 3 || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return rc;
    if (strcmp(r->element[1]->str, "pending") == 0) {
        /* The score is when it went pending; a missing or foreign value: now. */
        char *endp = NULL;
        unsigned long long at = strtoull(r->element[2]->str, &endp, 10);
        bool valid = r->element[2]->len > 0 && endp != NULL && *endp == '\0' && at > 0;
        c->follow = MEMORY_FOLLOW_QUEUE_ADD;
        c->follow_score = (double)(valid ? at : c->now_ms);
    }
    return 0;
}

static int abort_data(const redisReply *r, memory_op_t *c, json_t **data, char *err,
                      size_t err_size)
{
    (void)c;
    return memory_reply_abort(r, data, err, err_size);
}

static int get_data(const redisReply *r, memory_op_t *c, json_t **data, char *err, size_t err_size)
{
    return memory_reply_get(r, c->conv, data, err, err_size);
}

static int renew_data(const redisReply *r, memory_op_t *c, json_t **data, char *err,
                      size_t err_size)
{
    (void)c;
    return memory_reply_renew(r, data, err, err_size);
}

static void op_finish(memory_op_t *c, int status, const char *err)
{
    c->done(status, status == 0 ? NULL : err, status == 0 ? c->data : NULL, c->arg);
    json_decref(c->data);
    free(c);
}

/*
 * The follow-up on the handoff queue answered. Its failure does not fail
 * the op (the script's write is done and cannot be undone); it is logged,
 * and repaired later: a missing ZADD by the next turn.end of the
 * conversation (the handoff gate records every customer message while it is
 * pending), a missing ZREM by the next handoff.list.
 */
static void on_follow(mesh_redis_t *r, int status, redisReply *reply, void *arg)
{
    (void)r;
    memory_op_t *c = arg;
    if (status != 0 || reply == NULL || reply->type == REDIS_REPLY_ERROR)
        mesh_log_warn(OPS_SUBSYS, "handoff queue %s failed: %s (repaired later)",
                      c->follow == MEMORY_FOLLOW_QUEUE_ADD ? "ZADD" : "ZREM",
                      status != 0 ? mesh_strerror(status) : "redis error");
    op_finish(c, 0, NULL);
}

static int follow_send(memory_op_t *c)
{
    char score[32];
    snprintf(score, sizeof score, "%.0f", c->follow_score);
    if (c->follow == MEMORY_FOLLOW_QUEUE_ADD) {
        const char *argv[] = {"ZADD", MEMORY_HANDOFF_QUEUE_KEY, "NX", score, c->conv};
        return mesh_redis_command(c->redis, on_follow, c, 5, argv, NULL);
    }
    const char *argv[] = {"ZREM", MEMORY_HANDOFF_QUEUE_KEY, c->conv};
    return mesh_redis_command(c->redis, on_follow, c, 3, argv, NULL);
}

static void on_script(int status, redisReply *reply, void *arg)
{
    memory_op_t *c = arg;
    char err[MESH_ERRMSG_MAX + 1] = "";
    if (status != 0) {
        snprintf(err, sizeof err, "redis: %s", mesh_strerror(status));
        /* Timeouts, lost connections and shutdown all mean: Redis unavailable. */
        status = MESH_EUNAVAIL;
    } else {
        status = c->to_data(reply, c, &c->data, err, sizeof err);
    }
    /* A real reply came from c->redis (status 0): it is alive, a follow-up may be sent. */
    if (status == 0 && c->follow != MEMORY_FOLLOW_NONE) {
        int rc = follow_send(c);
        if (rc == 0)
            return;
        mesh_log_warn(OPS_SUBSYS, "handoff queue update not sent: %s (repaired later)",
                      mesh_strerror(rc));
    }
    op_finish(c, status, err);
}

/* trace.get: {"ok", timeline JSON, turn} -> {turn, spans}; {"none"} -> ENOTFOUND. */
static int trace_data(const redisReply *r, memory_op_t *c, json_t **data, char *err,
                      size_t err_size)
{
    (void)c;
    if (r->type == REDIS_REPLY_ERROR)
        return memory_fail(MESH_EUNAVAIL, err, err_size, "redis: script error");
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return memory_fail(MESH_EINTERNAL, err, err_size, "trace.get: unexpected reply");
    if (strcmp(r->element[0]->str, "none") == 0)
        return memory_fail(MESH_ENOTFOUND, err, err_size, "no trace stored for this turn");
    if (r->elements != 3 || strcmp(r->element[0]->str, "ok") != 0 ||
        r->element[1]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_STRING)
        return memory_fail(MESH_EINTERNAL, err, err_size, "trace.get: unexpected reply");
    json_t *spans = json_loadb(r->element[1]->str, r->element[1]->len, 0, NULL);
    if (!json_is_array(spans)) {
        json_decref(spans);
        return memory_fail(MESH_EINTERNAL, err, err_size,
                           "trace.get: stored trace is not an array");
    }
    *data = json_pack("{s:I, s:o}", "turn", (json_int_t)strtoll(r->element[2]->str, NULL, 10),
                      "spans", spans);
    if (*data == NULL)
        return memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
    return 0;
}

/* ------------------------------------------------------------ keys */

/* "mesh:{<conv>}:trace:" (the per-turn string key of older versions: trace.get's fallback). */
static int trace_prefix(char *out, size_t out_size, const char *conv)
{
    if (!mesh_conv_id_valid(conv, strlen(conv)))
        return MESH_EINVAL;
    int n = snprintf(out, out_size, MEMORY_KEY_PREFIX "{%s}:trace:", conv);
    if (n < 0 || (size_t)n >= out_size)
        return MESH_EINVAL;
    return n;
}

int memory_push_keys(memory_argv_t *a, const char *conv, const char *id,
                     const memory_key_kind_t *kinds, int n)
{
    char key[MEMORY_KEY_MAX];
    for (int i = 0; i < n; i++) {
        int len = memory_key(key, sizeof key, kinds[i], conv, id);
        if (len < 0)
            return len;
        int rc = memory_argv_push(a, key, (size_t)len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int push_str(memory_argv_t *a, const char *s)
{
    return memory_argv_push(a, s, strlen(s));
}

/* ------------------------------------------------------------ ops */

static int build_begin(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                       memory_plan_t *plan, char *err, size_t err_size)
{
    const char *conv = bc->conv;
    (void)plan;
    static const memory_key_kind_t kinds[MEMORY_BEGIN_NKEYS] = {
        MEMORY_KEY_LOG, MEMORY_KEY_STATE, MEMORY_KEY_IDEM, MEMORY_KEY_LEASE, MEMORY_KEY_CTX};
    memory_begin_args_t b;
    int rc = memory_args_begin(args, &b, err, err_size);
    if (rc != 0)
        return rc;
    uint64_t now = bc->now_ms;
    size_t mlen = 0;
    char *msg = memory_user_message_encode(&b, now, &mlen);
    if (msg == NULL)
        return memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
    rc = memory_push_keys(a, conv, b.message_id, kinds, MEMORY_BEGIN_NKEYS);
    if (rc == 0)
        rc = push_str(a, b.owner);
    if (rc == 0)
        rc = memory_argv_push_u64(a, b.lease_ms);
    if (rc == 0)
        rc = memory_argv_push_owned(a, msg, mlen);
    else
        free(msg);
    if (rc == 0)
        rc = memory_argv_push_u64(a, b.window);
    if (rc == 0)
        rc = memory_argv_push_u64(a, bc->cfg->ttl_s);
    if (rc == 0)
        rc = memory_argv_push_u64(a, bc->cfg->history_max);
    if (rc == 0)
        rc = memory_argv_push_u64(a, now);
    if (rc == 0)
        rc = push_str(a, b.message_id);
    if (rc == 0)
        rc = memory_argv_push_u64(a, MEMORY_CTX_REBUILD_MAX);
    if (rc != 0)
        return memory_fail(rc, err, err_size, "out of memory");
    return 0;
}

/* turn.end's last two ARGV: the optional "trace" timeline (an array of span
 * records, bounded) as JSON, "" when absent, and how many timelines the
 * conversation's traces hash keeps. */
static int push_end_trace(uint32_t keep, const json_t *args, memory_argv_t *a, char *err,
                          size_t err_size)
{
    const json_t *trace = json_object_get(args, "trace");
    char *text = NULL;
    size_t tlen = 0;
    if (trace != NULL) {
        if (!json_is_array(trace))
            return memory_fail(MESH_EINVAL, err, err_size, "trace: must be an array");
        if (json_array_size(trace) > MEMORY_TRACE_SPANS_MAX)
            return memory_fail(MESH_ETOOBIG, err, err_size, "trace: more than %d spans",
                               MEMORY_TRACE_SPANS_MAX);
        size_t i;
        const json_t *sp;
        json_array_foreach(trace, i, sp)
        {
            if (!json_is_object(sp))
                return memory_fail(MESH_EINVAL, err, err_size, "trace[%zu]: must be an object", i);
        }
        text = json_dumps(trace, JSON_COMPACT);
        if (text == NULL)
            return memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
        tlen = strlen(text);
        if (tlen > MEMORY_TRACE_JSON_MAX) {
            free(text);
            return memory_fail(MESH_ETOOBIG, err, err_size, "trace: larger than %d bytes as JSON",
                               MEMORY_TRACE_JSON_MAX);
        }
    }
    int rc;
    if (text != NULL)
        rc = memory_argv_push_owned(a, text, tlen);
    else
        rc = memory_argv_push(a, "", 0);
    if (rc == 0)
        rc = memory_argv_push_u64(a, keep);
    if (rc != 0)
        return memory_fail(rc, err, err_size, "out of memory");
    return 0;
}

static int build_end(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                     memory_plan_t *plan, char *err, size_t err_size)
{
    const char *conv = bc->conv;
    (void)plan;
    static const memory_key_kind_t kinds[MEMORY_END_NKEYS] = {MEMORY_KEY_LOG,  MEMORY_KEY_STATE,
                                                              MEMORY_KEY_IDEM, MEMORY_KEY_LEASE,
                                                              MEMORY_KEY_CTX,  MEMORY_KEY_TRACES};
    memory_end_args_t e;
    int rc = memory_args_end(args, &e, err, err_size);
    if (rc != 0)
        return rc;
    uint64_t now = bc->now_ms;
    mesh_jbuf_t jb = {0};
    mesh_jbuf_value(&jb, e.reply, MESH_JSON_PRECISION_MAX);
    size_t reply_len = 0;
    char *reply = mesh_jbuf_finish(&jb, &reply_len, &rc);
    if (reply == NULL)
        return memory_fail(rc, err, err_size, "reply: cannot encode");
    if (reply_len > MEMORY_REPLY_JSON_MAX) {
        free(reply);
        return memory_fail(MESH_ETOOBIG, err, err_size, "reply: larger than %d bytes as JSON",
                           MEMORY_REPLY_JSON_MAX);
    }
    size_t n_msgs = e.messages != NULL ? json_array_size(e.messages) : 0;
    size_t n_fields = e.state != NULL ? json_object_size(e.state) : 0;

    rc = memory_push_keys(a, conv, e.message_id, kinds, MEMORY_END_NKEYS);
    if (rc == 0)
        rc = push_str(a, e.owner);
    if (rc == 0)
        rc = memory_argv_push_u64(a, bc->cfg->ttl_s);
    if (rc == 0)
        rc = memory_argv_push_u64(a, bc->cfg->history_max);
    if (rc == 0)
        rc = memory_argv_push_u64(a, now);
    if (rc == 0)
        rc = memory_argv_push_owned(a, reply, reply_len);
    else
        free(reply);
    if (rc == 0)
        rc = memory_argv_push_u64(a, n_msgs);
    if (rc == 0)
        rc = memory_argv_push_u64(a, n_fields);
    /* ARGV[8]: which messages also go to the ctx list ('1') and which only to the log. */
    char mask[MEMORY_MESSAGES_MAX + 1];
    for (size_t i = 0; i < n_msgs; i++)
        mask[i] = memory_message_in_ctx(json_array_get(e.messages, i)) ? '1' : '0';
    mask[n_msgs] = '\0';
    if (rc == 0)
        rc = memory_argv_push(a, mask, n_msgs);
    if (rc == 0)
        rc = memory_argv_push_u64(a, MEMORY_CTX_REBUILD_MAX);
    if (rc != 0)
        return memory_fail(rc, err, err_size, "out of memory");

    for (size_t i = 0; i < n_msgs; i++) {
        size_t len = 0;
        char *m =
            memory_message_encode(json_array_get(e.messages, i), i, now, &len, &rc, err, err_size);
        if (m == NULL)
            return rc;
        rc = memory_argv_push_owned(a, m, len);
        if (rc != 0)
            return memory_fail(rc, err, err_size, "out of memory");
    }
    if (e.state != NULL) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)e.state, k, v)
        {
            rc = push_str(a, k);
            if (rc == 0)
                rc = memory_argv_push(a, json_string_value(v), json_string_length(v));
            if (rc != 0)
                return memory_fail(rc, err, err_size, "out of memory");
        }
    }
    uint32_t keep = bc->cfg->history_max < MEMORY_TRACE_TURNS_KEEP ? bc->cfg->history_max
                                                                   : MEMORY_TRACE_TURNS_KEEP;
    return push_end_trace(keep, args, a, err, err_size);
}

static int build_abort(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                       memory_plan_t *plan, char *err, size_t err_size)
{
    const char *conv = bc->conv;
    (void)plan;
    static const memory_key_kind_t kinds[MEMORY_ABORT_NKEYS] = {MEMORY_KEY_LEASE};
    memory_abort_args_t ab;
    int rc = memory_args_abort(args, &ab, err, err_size);
    if (rc != 0)
        return rc;
    /* message_id is validated (it names the turn in logs) but the idem key
     * is not touched: a pending marker survives an abort. */
    rc = memory_push_keys(a, conv, NULL, kinds, MEMORY_ABORT_NKEYS);
    if (rc == 0)
        rc = push_str(a, ab.owner);
    if (rc != 0)
        return memory_fail(rc, err, err_size, "out of memory");
    return 0;
}

static int build_get(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                     memory_plan_t *plan, char *err, size_t err_size)
{
    const char *conv = bc->conv;
    (void)plan;
    static const memory_key_kind_t kinds[MEMORY_GET_NKEYS] = {MEMORY_KEY_LOG, MEMORY_KEY_STATE};
    memory_get_args_t g;
    int rc = memory_args_get(args, &g, err, err_size);
    if (rc != 0)
        return rc;
    rc = memory_push_keys(a, conv, NULL, kinds, MEMORY_GET_NKEYS);
    if (rc == 0)
        rc = memory_argv_push_u64(a, g.limit);
    if (rc != 0)
        return memory_fail(rc, err, err_size, "out of memory");
    return 0;
}

static int build_renew(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                       memory_plan_t *plan, char *err, size_t err_size)
{
    const char *conv = bc->conv;
    (void)plan;
    static const memory_key_kind_t kinds[MEMORY_RENEW_NKEYS] = {MEMORY_KEY_LEASE};
    memory_renew_args_t rn;
    int rc = memory_args_renew(args, &rn, err, err_size);
    if (rc != 0)
        return rc;
    rc = memory_push_keys(a, conv, NULL, kinds, MEMORY_RENEW_NKEYS);
    if (rc == 0)
        rc = push_str(a, rn.owner);
    if (rc == 0)
        rc = memory_argv_push_u64(a, rn.lease_ms);
    if (rc != 0)
        return memory_fail(rc, err, err_size, "out of memory");
    return 0;
}

/* trace.get {turn}: the timeline stored by that turn's turn.end. */
static int build_trace(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                       memory_plan_t *plan, char *err, size_t err_size)
{
    const char *conv = bc->conv;
    (void)plan;
    const json_t *jt = json_object_get(args, "turn");
    if (!json_is_integer(jt) || json_integer_value(jt) < 1 ||
        json_integer_value(jt) > MEMORY_TRACE_TURN_MAX)
        return memory_fail(MESH_EINVAL, err, err_size, "turn: must be an integer 1..%d",
                           MEMORY_TRACE_TURN_MAX);
    long long turn = (long long)json_integer_value(jt);
    char key[MEMORY_KEY_MAX + 16];
    int rc = memory_push_keys(a, conv, NULL, (const memory_key_kind_t[]){MEMORY_KEY_TRACES}, 1);
    if (rc != 0)
        return memory_fail(MESH_EINVAL, err, err_size, "invalid conversation id");
    int plen = trace_prefix(key, sizeof key, conv);
    if (plen < 0)
        return memory_fail(MESH_EINVAL, err, err_size, "invalid conversation id");
    int n = snprintf(key + plen, sizeof key - (size_t)plen, "%lld", turn);
    if (n < 0 || (size_t)n >= sizeof key - (size_t)plen)
        return memory_fail(MESH_EINVAL, err, err_size, "turn: too large");
    rc = memory_argv_push(a, key, (size_t)(plen + n));
    if (rc == 0)
        rc = memory_argv_push(a, key + plen, (size_t)n);
    if (rc != 0)
        return memory_fail(rc, err, err_size, "out of memory");
    return 0;
}

/* Ops that are not about one conversation: the request's conv is optional. */
#define OP_CONV_OPTIONAL 1u

typedef struct {
    const char *name;
    memory_script_id_t script; /* default plan (a builder may change it) */
    int nkeys;
    memory_build_fn build;
    memory_reply_fn to_data;
    unsigned flags;
} op_def_t;

static const op_def_t s_ops[] = {
    {"turn.begin", MEMORY_SCRIPT_BEGIN, MEMORY_BEGIN_NKEYS, build_begin, begin_data, 0},
    {"turn.end", MEMORY_SCRIPT_END, MEMORY_END_NKEYS, build_end, end_data, 0},
    {"turn.abort", MEMORY_SCRIPT_ABORT, MEMORY_ABORT_NKEYS, build_abort, abort_data, 0},
    {"conv.get", MEMORY_SCRIPT_GET, MEMORY_GET_NKEYS, build_get, get_data, 0},
    {"lease.renew", MEMORY_SCRIPT_RENEW, MEMORY_RENEW_NKEYS, build_renew, renew_data, 0},
    {"trace.get", MEMORY_SCRIPT_TRACE, MEMORY_TRACE_NKEYS, build_trace, trace_data, 0},
    /* tool.call: the script and converter depend on the tool (memory_claims.c). */
    {"tool.call", MEMORY_SCRIPT_CLAIM_GET, 0, memory_claims_build, NULL, OP_CONV_OPTIONAL},
    {"handoff.claim", MEMORY_SCRIPT_HO_CLAIM, MEMORY_HO_CLAIM_NKEYS, memory_handoff_build_claim,
     NULL, 0},
    {"handoff.reply", MEMORY_SCRIPT_HO_REPLY, MEMORY_HO_REPLY_NKEYS, memory_handoff_build_reply,
     NULL, 0},
    {"handoff.note", MEMORY_SCRIPT_HO_NOTE, MEMORY_HO_NOTE_NKEYS, memory_handoff_build_note, NULL,
     0},
    {"handoff.release", MEMORY_SCRIPT_HO_RELEASE, MEMORY_HO_RELEASE_NKEYS,
     memory_handoff_build_release, NULL, 0},
    /* handoff.list is no script (memory_handoff_list), see memory_ops_call. */
    {"handoff.list", MEMORY_SCRIPT_COUNT, 0, NULL, NULL, OP_CONV_OPTIONAL},
};

static const op_def_t *find_op(const char *name)
{
    for (size_t i = 0; i < sizeof s_ops / sizeof s_ops[0]; i++) {
        if (strcmp(name, s_ops[i].name) == 0)
            return &s_ops[i];
    }
    return NULL;
}

/* ------------------------------------------------------------ public */

memory_ops_t *memory_ops_new(mesh_redis_t *redis, const memory_ops_cfg_t *cfg)
{
    if (redis == NULL || cfg == NULL || cfg->ttl_s == 0 || cfg->history_max == 0)
        return NULL;
    memory_ops_t *ops = calloc(1, sizeof *ops);
    if (ops == NULL)
        return NULL;
    ops->redis = redis;
    ops->cfg = *cfg;
    memory_metrics_init(&ops->metrics);
    ops->eval = memory_eval_new(redis);
    if (ops->eval == NULL) {
        free(ops);
        return NULL;
    }
    return ops;
}

void memory_ops_redis_up(memory_ops_t *ops)
{
    if (ops != NULL)
        memory_eval_load(ops->eval);
}

bool memory_ops_scripts_loaded(const memory_ops_t *ops)
{
    return ops != NULL && memory_eval_loaded(ops->eval);
}

int memory_ops_call(memory_ops_t *ops, const memory_req_t *req, memory_ops_done_fn done, void *arg,
                    json_t **now, char *err, size_t err_size)
{
    memory_argv_t a = {0};
    memory_op_t *c = NULL;
    memory_plan_t plan = {0};
    int rc;
    if (now != NULL)
        *now = NULL;
    if (ops == NULL || req == NULL || req->op == NULL || done == NULL || now == NULL) {
        rc = memory_fail(MESH_EINVAL, err, err_size, "invalid call");
        goto out;
    }
    if (memory_bind_is_op(req->op)) { /* conv.bind, delivery.record/list (memory_bind.c) */
        const char *bconv = req->conv != NULL ? req->conv : "";
        if (bconv[0] != '\0' && !mesh_conv_id_valid(bconv, strnlen(bconv, MESH_CONV_MAX + 1)))
            rc = memory_fail(MESH_EPROTO, err, err_size, "conv: not a valid conversation id");
        else
            rc = memory_bind_call(ops->redis, &ops->cfg, req, now_unix_ms(), done, arg, err,
                                  err_size);
        goto out;
    }
    const op_def_t *def = find_op(req->op);
    if (def == NULL) {
        char clean[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(req->op, strnlen(req->op, MESH_OP_MAX), clean, sizeof clean);
        rc = memory_fail(MESH_EUNKNOWNOP, err, err_size, "unknown memory op '%s'", clean);
        goto out;
    }
    const char *conv = req->conv != NULL ? req->conv : "";
    if (conv[0] == '\0' && !(def->flags & OP_CONV_OPTIONAL)) {
        rc = memory_fail(MESH_EPROTO, err, err_size, "conv: missing");
        goto out;
    }
    if (conv[0] != '\0' && !mesh_conv_id_valid(conv, strnlen(conv, MESH_CONV_MAX + 1))) {
        rc = memory_fail(MESH_EPROTO, err, err_size, "conv: not a valid conversation id");
        goto out;
    }
    if (def->build == NULL) { /* handoff.list */
        rc = mesh_redis_up(ops->redis)
                 ? memory_handoff_list(ops->redis, &ops->metrics, req->args, done, arg, err,
                                       err_size)
                 : memory_fail(MESH_EUNAVAIL, err, err_size, "redis unavailable");
        goto out;
    }
    memory_build_ctx_t bc = {
        .cfg = &ops->cfg,
        .conv = conv,
        .tenant = req->tenant != NULL && req->tenant[0] != '\0' ? req->tenant : MESH_TENANT_DEFAULT,
        .now_ms = now_unix_ms(),
    };
    plan.script = def->script;
    plan.nkeys = def->nkeys;
    plan.to_data = def->to_data;
    rc = def->build(&bc, req->args, &a, &plan, err, err_size);
    if (rc != 0)
        goto out;
    if (plan.now != NULL) { /* a tool outcome decided before Redis */
        *now = plan.now;
        goto out;
    }
    if (plan.to_data == NULL || plan.script >= MEMORY_SCRIPT_COUNT) {
        rc = memory_fail(MESH_EINTERNAL, err, err_size, "op without a plan");
        goto out;
    }
    if (!mesh_redis_up(ops->redis)) {
        rc = memory_fail(MESH_EUNAVAIL, err, err_size, "redis unavailable");
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
        goto out;
    }
    c->to_data = plan.to_data;
    c->done = done;
    c->arg = arg;
    c->redis = ops->redis;
    c->metrics = ops->metrics;
    c->now_ms = bc.now_ms;
    snprintf(c->conv, sizeof c->conv, "%s", conv);
    snprintf(c->tenant, sizeof c->tenant, "%s", bc.tenant);
    rc = memory_eval_run(ops->eval, plan.script, plan.nkeys, &a, on_script, c);
    if (rc != 0) {
        memory_fail(rc, err, err_size, rc == MESH_EUNAVAIL ? "redis unavailable" : "out of memory");
        free(c);
        goto out;
    }
    return 0;

out:
    memory_argv_clear(&a);
    return rc;
}

int memory_ops_run(memory_ops_t *ops, const char *op, const char *conv, const json_t *args,
                   memory_ops_done_fn done, void *arg, char *err, size_t err_size)
{
    memory_req_t req = {.op = op, .conv = conv, .tenant = NULL, .args = args};
    json_t *now = NULL;
    int rc = memory_ops_call(ops, &req, done, arg, &now, err, err_size);
    if (rc != 0 || now == NULL)
        return rc;
    /* An immediate tool outcome: as an error code (see memory_ops.h). */
    const json_t *e = json_object_get(now, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    rc = code != NULL && strcmp(code, mesh_err_name(MESH_EUNKNOWNTOOL)) == 0 ? MESH_EUNKNOWNTOOL
                                                                             : MESH_EBADARGS;
    memory_fail(rc, err, err_size, "%s", msg != NULL ? msg : mesh_strerror(rc));
    json_decref(now);
    return rc;
}

/* The refresh's answer is not needed: the list updated the gauge on its way. */
static void on_refreshed(int status, const char *errmsg, const json_t *data, void *arg)
{
    (void)status;
    (void)errmsg;
    (void)data;
    (void)arg;
}

int memory_ops_refresh_queue(memory_ops_t *ops)
{
    char err[MESH_ERRMSG_MAX + 1];
    return memory_handoff_list(ops->redis, &ops->metrics, NULL, on_refreshed, NULL, err,
                               sizeof err);
}

void memory_ops_destroy(memory_ops_t **ops_p)
{
    if (ops_p == NULL || *ops_p == NULL)
        return;
    memory_ops_t *ops = *ops_p;
    *ops_p = NULL;
    memory_eval_destroy(&ops->eval);
    free(ops);
}
