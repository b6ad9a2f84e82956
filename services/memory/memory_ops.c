/*
 * memory_ops.c - turn.begin, turn.end, turn.abort, conv.get, lease.renew,
 * trace.get (memory_ops.h).
 *
 * Each op: validate args (memory_args.c) -> build the script's KEYS and ARGV
 * -> one script call (memory_eval.c) -> check and convert the reply
 * (memory_reply.c) -> done(). The op context copies what the reply needs
 * (the conversation id), so nothing of memory_ops_t is used after the call
 * was sent.
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
#include "memory_reply.h"
#include "memory_scripts.h"

#define OPS_SUBSYS "memory"

/* A turn's span timeline (turn.end "trace"): spans and JSON bytes kept. */
#define MEMORY_TRACE_SPANS_MAX 128
#define MEMORY_TRACE_JSON_MAX  (64 * 1024)
/* trace.get: the largest turn number asked for. */
#define MEMORY_TRACE_TURN_MAX 2147483647

struct memory_ops {
    mesh_redis_t *redis;
    memory_eval_t *eval;
    memory_ops_cfg_t cfg;
};

typedef int (*reply_fn)(const redisReply *r, const char *conv, json_t **data, char *err,
                        size_t err_size);

typedef struct {
    reply_fn to_data;
    memory_ops_done_fn done;
    void *arg;
    char conv[MESH_CONV_MAX + 1];
} op_ctx_t;

static int fail(int rc, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int rc, char *err, size_t err_size, const char *fmt, ...)
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

static int begin_data(const redisReply *r, const char *conv, json_t **data, char *err,
                      size_t err_size)
{
    (void)conv;
    return memory_reply_begin(r, data, err, err_size);
}

static int end_data(const redisReply *r, const char *conv, json_t **data, char *err,
                    size_t err_size)
{
    (void)conv;
    return memory_reply_end(r, data, err, err_size);
}

static int abort_data(const redisReply *r, const char *conv, json_t **data, char *err,
                      size_t err_size)
{
    (void)conv;
    return memory_reply_abort(r, data, err, err_size);
}

static int get_data(const redisReply *r, const char *conv, json_t **data, char *err,
                    size_t err_size)
{
    return memory_reply_get(r, conv, data, err, err_size);
}

static int renew_data(const redisReply *r, const char *conv, json_t **data, char *err,
                      size_t err_size)
{
    (void)conv;
    return memory_reply_renew(r, data, err, err_size);
}

static void on_script(int status, redisReply *reply, void *arg)
{
    op_ctx_t *c = arg;
    char err[MESH_ERRMSG_MAX + 1] = "";
    json_t *data = NULL;
    if (status != 0) {
        snprintf(err, sizeof err, "redis: %s", mesh_strerror(status));
        /* Timeouts, lost connections and shutdown all mean: Redis unavailable. */
        status = MESH_EUNAVAIL;
    } else {
        status = c->to_data(reply, c->conv, &data, err, sizeof err);
    }
    c->done(status, status == 0 ? NULL : err, status == 0 ? data : NULL, c->arg);
    json_decref(data);
    free(c);
}

/* trace.get: {"ok", timeline JSON, turn} -> {turn, spans}; {"none"} -> ENOTFOUND. */
static int trace_data(const redisReply *r, const char *conv, json_t **data, char *err,
                      size_t err_size)
{
    (void)conv;
    if (r->type == REDIS_REPLY_ERROR)
        return fail(MESH_EUNAVAIL, err, err_size, "redis: script error");
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return fail(MESH_EINTERNAL, err, err_size, "trace.get: unexpected reply");
    if (strcmp(r->element[0]->str, "none") == 0)
        return fail(MESH_ENOTFOUND, err, err_size, "no trace stored for this turn");
    if (r->elements != 3 || strcmp(r->element[0]->str, "ok") != 0 ||
        r->element[1]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_STRING)
        return fail(MESH_EINTERNAL, err, err_size, "trace.get: unexpected reply");
    json_t *spans = json_loadb(r->element[1]->str, r->element[1]->len, 0, NULL);
    if (!json_is_array(spans)) {
        json_decref(spans);
        return fail(MESH_EINTERNAL, err, err_size, "trace.get: stored trace is not an array");
    }
    *data = json_pack("{s:I, s:o}", "turn", (json_int_t)strtoll(r->element[2]->str, NULL, 10),
                      "spans", spans);
    if (*data == NULL)
        return fail(MESH_ENOMEM, err, err_size, "out of memory");
    return 0;
}

/* ------------------------------------------------------------ keys */

/* "mesh:{<conv>}:trace:" (turn.end appends the turn number in its script). */
static int trace_prefix(char *out, size_t out_size, const char *conv)
{
    if (!mesh_conv_id_valid(conv, strlen(conv)))
        return MESH_EINVAL;
    int n = snprintf(out, out_size, MEMORY_KEY_PREFIX "{%s}:trace:", conv);
    if (n < 0 || (size_t)n >= out_size)
        return MESH_EINVAL;
    return n;
}

/* Push the keys of conv (kinds in order; id for the idem key). */
static int push_keys(memory_argv_t *a, const char *conv, const char *id,
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

static int build_begin(const memory_ops_t *ops, const char *conv, const json_t *args,
                       memory_argv_t *a, char *err, size_t err_size)
{
    static const memory_key_kind_t kinds[MEMORY_BEGIN_NKEYS] = {
        MEMORY_KEY_LOG, MEMORY_KEY_STATE, MEMORY_KEY_IDEM, MEMORY_KEY_LEASE, MEMORY_KEY_CTX};
    memory_begin_args_t b;
    int rc = memory_args_begin(args, &b, err, err_size);
    if (rc != 0)
        return rc;
    uint64_t now = now_unix_ms();
    size_t mlen = 0;
    char *msg = memory_user_message_encode(&b, now, &mlen);
    if (msg == NULL)
        return fail(MESH_ENOMEM, err, err_size, "out of memory");
    rc = push_keys(a, conv, b.message_id, kinds, MEMORY_BEGIN_NKEYS);
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
        rc = memory_argv_push_u64(a, ops->cfg.ttl_s);
    if (rc == 0)
        rc = memory_argv_push_u64(a, ops->cfg.history_max);
    if (rc == 0)
        rc = memory_argv_push_u64(a, now);
    if (rc == 0)
        rc = push_str(a, b.message_id);
    if (rc == 0)
        rc = memory_argv_push_u64(a, MEMORY_CTX_REBUILD_MAX);
    if (rc != 0)
        return fail(rc, err, err_size, "out of memory");
    return 0;
}

/* turn.end's last two ARGV: the trace key prefix and the optional "trace"
 * timeline (an array of span records, bounded) as JSON, "" when absent. */
static int push_end_trace(const char *conv, const json_t *args, memory_argv_t *a, char *err,
                          size_t err_size)
{
    char prefix[MEMORY_KEY_MAX];
    int plen = trace_prefix(prefix, sizeof prefix, conv);
    if (plen < 0)
        return fail(MESH_EINVAL, err, err_size, "invalid conversation id");
    const json_t *trace = json_object_get(args, "trace");
    char *text = NULL;
    size_t tlen = 0;
    if (trace != NULL) {
        if (!json_is_array(trace))
            return fail(MESH_EINVAL, err, err_size, "trace: must be an array");
        if (json_array_size(trace) > MEMORY_TRACE_SPANS_MAX)
            return fail(MESH_ETOOBIG, err, err_size, "trace: more than %d spans",
                        MEMORY_TRACE_SPANS_MAX);
        size_t i;
        const json_t *sp;
        json_array_foreach(trace, i, sp)
        {
            if (!json_is_object(sp))
                return fail(MESH_EINVAL, err, err_size, "trace[%zu]: must be an object", i);
        }
        text = json_dumps(trace, JSON_COMPACT);
        if (text == NULL)
            return fail(MESH_ENOMEM, err, err_size, "out of memory");
        tlen = strlen(text);
        if (tlen > MEMORY_TRACE_JSON_MAX) {
            free(text);
            return fail(MESH_ETOOBIG, err, err_size, "trace: larger than %d bytes as JSON",
                        MEMORY_TRACE_JSON_MAX);
        }
    }
    int rc = memory_argv_push(a, prefix, (size_t)plen);
    if (rc == 0 && text != NULL) {
        rc = memory_argv_push_owned(a, text, tlen);
        text = NULL;
    } else if (rc == 0) {
        rc = memory_argv_push(a, "", 0);
    }
    free(text);
    if (rc != 0)
        return fail(rc, err, err_size, "out of memory");
    return 0;
}

static int build_end(const memory_ops_t *ops, const char *conv, const json_t *args,
                     memory_argv_t *a, char *err, size_t err_size)
{
    static const memory_key_kind_t kinds[MEMORY_END_NKEYS] = {
        MEMORY_KEY_LOG, MEMORY_KEY_STATE, MEMORY_KEY_IDEM, MEMORY_KEY_LEASE, MEMORY_KEY_CTX};
    memory_end_args_t e;
    int rc = memory_args_end(args, &e, err, err_size);
    if (rc != 0)
        return rc;
    uint64_t now = now_unix_ms();
    mesh_jbuf_t jb = {0};
    mesh_jbuf_value(&jb, e.reply, MESH_JSON_PRECISION_MAX);
    size_t reply_len = 0;
    char *reply = mesh_jbuf_finish(&jb, &reply_len, &rc);
    if (reply == NULL)
        return fail(rc, err, err_size, "reply: cannot encode");
    if (reply_len > MEMORY_REPLY_JSON_MAX) {
        free(reply);
        return fail(MESH_ETOOBIG, err, err_size, "reply: larger than %d bytes as JSON",
                    MEMORY_REPLY_JSON_MAX);
    }
    size_t n_msgs = e.messages != NULL ? json_array_size(e.messages) : 0;
    size_t n_fields = e.state != NULL ? json_object_size(e.state) : 0;

    rc = push_keys(a, conv, e.message_id, kinds, MEMORY_END_NKEYS);
    if (rc == 0)
        rc = push_str(a, e.owner);
    if (rc == 0)
        rc = memory_argv_push_u64(a, ops->cfg.ttl_s);
    if (rc == 0)
        rc = memory_argv_push_u64(a, ops->cfg.history_max);
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
        return fail(rc, err, err_size, "out of memory");

    for (size_t i = 0; i < n_msgs; i++) {
        size_t len = 0;
        char *m =
            memory_message_encode(json_array_get(e.messages, i), i, now, &len, &rc, err, err_size);
        if (m == NULL)
            return rc;
        rc = memory_argv_push_owned(a, m, len);
        if (rc != 0)
            return fail(rc, err, err_size, "out of memory");
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
                return fail(rc, err, err_size, "out of memory");
        }
    }
    return push_end_trace(conv, args, a, err, err_size);
}

static int build_abort(const memory_ops_t *ops, const char *conv, const json_t *args,
                       memory_argv_t *a, char *err, size_t err_size)
{
    (void)ops;
    static const memory_key_kind_t kinds[MEMORY_ABORT_NKEYS] = {MEMORY_KEY_LEASE};
    memory_abort_args_t ab;
    int rc = memory_args_abort(args, &ab, err, err_size);
    if (rc != 0)
        return rc;
    /* message_id is validated (it names the turn in logs) but the idem key
     * is not touched: a pending marker survives an abort. */
    rc = push_keys(a, conv, NULL, kinds, MEMORY_ABORT_NKEYS);
    if (rc == 0)
        rc = push_str(a, ab.owner);
    if (rc != 0)
        return fail(rc, err, err_size, "out of memory");
    return 0;
}

static int build_get(const memory_ops_t *ops, const char *conv, const json_t *args,
                     memory_argv_t *a, char *err, size_t err_size)
{
    (void)ops;
    static const memory_key_kind_t kinds[MEMORY_GET_NKEYS] = {MEMORY_KEY_LOG, MEMORY_KEY_STATE};
    memory_get_args_t g;
    int rc = memory_args_get(args, &g, err, err_size);
    if (rc != 0)
        return rc;
    rc = push_keys(a, conv, NULL, kinds, MEMORY_GET_NKEYS);
    if (rc == 0)
        rc = memory_argv_push_u64(a, g.limit);
    if (rc != 0)
        return fail(rc, err, err_size, "out of memory");
    return 0;
}

static int build_renew(const memory_ops_t *ops, const char *conv, const json_t *args,
                       memory_argv_t *a, char *err, size_t err_size)
{
    (void)ops;
    static const memory_key_kind_t kinds[MEMORY_RENEW_NKEYS] = {MEMORY_KEY_LEASE};
    memory_renew_args_t rn;
    int rc = memory_args_renew(args, &rn, err, err_size);
    if (rc != 0)
        return rc;
    rc = push_keys(a, conv, NULL, kinds, MEMORY_RENEW_NKEYS);
    if (rc == 0)
        rc = push_str(a, rn.owner);
    if (rc == 0)
        rc = memory_argv_push_u64(a, rn.lease_ms);
    if (rc != 0)
        return fail(rc, err, err_size, "out of memory");
    return 0;
}

/* trace.get {turn}: the timeline stored by that turn's turn.end. */
static int build_trace(const memory_ops_t *ops, const char *conv, const json_t *args,
                       memory_argv_t *a, char *err, size_t err_size)
{
    (void)ops;
    const json_t *jt = json_object_get(args, "turn");
    if (!json_is_integer(jt) || json_integer_value(jt) < 1 ||
        json_integer_value(jt) > MEMORY_TRACE_TURN_MAX)
        return fail(MESH_EINVAL, err, err_size, "turn: must be an integer 1..%d",
                    MEMORY_TRACE_TURN_MAX);
    long long turn = (long long)json_integer_value(jt);
    char key[MEMORY_KEY_MAX + 16];
    int plen = trace_prefix(key, sizeof key, conv);
    if (plen < 0)
        return fail(MESH_EINVAL, err, err_size, "invalid conversation id");
    int n = snprintf(key + plen, sizeof key - (size_t)plen, "%lld", turn);
    if (n < 0 || (size_t)n >= sizeof key - (size_t)plen)
        return fail(MESH_EINVAL, err, err_size, "turn: too large");
    char num[24];
    int nlen = snprintf(num, sizeof num, "%lld", turn);
    int rc = memory_argv_push(a, key, (size_t)(plen + n));
    if (rc == 0)
        rc = memory_argv_push(a, num, (size_t)nlen);
    if (rc != 0)
        return fail(rc, err, err_size, "out of memory");
    return 0;
}

typedef int (*build_fn)(const memory_ops_t *ops, const char *conv, const json_t *args,
                        memory_argv_t *a, char *err, size_t err_size);

typedef struct {
    const char *name;
    memory_script_id_t script;
    int nkeys;
    build_fn build;
    reply_fn to_data;
} op_def_t;

static const op_def_t s_ops[] = {
    {"turn.begin", MEMORY_SCRIPT_BEGIN, MEMORY_BEGIN_NKEYS, build_begin, begin_data},
    {"turn.end", MEMORY_SCRIPT_END, MEMORY_END_NKEYS, build_end, end_data},
    {"turn.abort", MEMORY_SCRIPT_ABORT, MEMORY_ABORT_NKEYS, build_abort, abort_data},
    {"conv.get", MEMORY_SCRIPT_GET, MEMORY_GET_NKEYS, build_get, get_data},
    {"lease.renew", MEMORY_SCRIPT_RENEW, MEMORY_RENEW_NKEYS, build_renew, renew_data},
    {"trace.get", MEMORY_SCRIPT_TRACE, MEMORY_TRACE_NKEYS, build_trace, trace_data},
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

int memory_ops_run(memory_ops_t *ops, const char *op, const char *conv, const json_t *args,
                   memory_ops_done_fn done, void *arg, char *err, size_t err_size)
{
    memory_argv_t a = {0};
    op_ctx_t *c = NULL;
    int rc;
    if (ops == NULL || op == NULL || done == NULL) {
        rc = fail(MESH_EINVAL, err, err_size, "invalid call");
        goto out;
    }
    const op_def_t *def = find_op(op);
    if (def == NULL) {
        char clean[4 * MESH_LOG_SAMPLE_MAX + 4];
        mesh_log_sanitize(op, strnlen(op, MESH_OP_MAX), clean, sizeof clean);
        rc = fail(MESH_EUNKNOWNOP, err, err_size, "unknown memory op '%s'", clean);
        goto out;
    }
    if (conv == NULL || conv[0] == '\0') {
        rc = fail(MESH_EPROTO, err, err_size, "conv: missing");
        goto out;
    }
    if (!mesh_conv_id_valid(conv, strnlen(conv, MESH_CONV_MAX + 1))) {
        rc = fail(MESH_EPROTO, err, err_size, "conv: not a valid conversation id");
        goto out;
    }
    rc = def->build(ops, conv, args, &a, err, err_size);
    if (rc != 0)
        goto out;
    if (!mesh_redis_up(ops->redis)) {
        rc = fail(MESH_EUNAVAIL, err, err_size, "redis unavailable");
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = fail(MESH_ENOMEM, err, err_size, "out of memory");
        goto out;
    }
    c->to_data = def->to_data;
    c->done = done;
    c->arg = arg;
    snprintf(c->conv, sizeof c->conv, "%s", conv);
    rc = memory_eval_run(ops->eval, def->script, def->nkeys, &a, on_script, c);
    if (rc != 0) {
        fail(rc, err, err_size, rc == MESH_EUNAVAIL ? "redis unavailable" : "out of memory");
        free(c);
        goto out;
    }
    return 0;

out:
    memory_argv_clear(&a);
    return rc;
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
