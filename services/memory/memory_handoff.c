/*
 * memory_handoff.c - handoff.list / claim / reply / note / release
 * (memory_handoff.h).
 *
 * The queue is the sorted set mesh:{handoff}:queue: member = conversation
 * id, score = unix ms it went pending. The conversation's state hash is the
 * truth (handoff, handoff_reason, handoff_at, handoff_person); the queue is
 * an index over it in another Cluster slot, so it is updated by a second
 * command after a conversation's script (turn.end: ZADD NX; release: ZREM;
 * memory_ops.c) and repaired by handoff.list, which drops members whose
 * state is no longer pending or human.
 *
 * claim, reply, note and release are one script each on the conversation's
 * keys (memory_scripts.c).
 */
#include "memory_handoff.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory_op_int.h"
#include "mesh/mesh_err.h"
#include "mesh/mesh_json.h"
#include "mesh/mesh_log.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_text.h"

#define HO_SUBSYS "memory"
#define HO_SAFE   (4 * MESH_LOG_SAMPLE_MAX + 4)
/* HMGET fields of one queued conversation, in this order. */
#define HO_FIELDS 5

/* ------------------------------------------------------------ args */

/*
 * args[key] as a string of 1..max bytes; ident: no control characters
 * (names and ids). Absent or not a string -> MESH_EPROTO, too long ->
 * MESH_ETOOBIG; err names the key.
 */
static int arg_str(const json_t *args, const char *key, size_t max, bool ident, const char **out,
                   size_t *len_out, char *err, size_t err_size)
{
    const json_t *v = json_object_get(args, key);
    if (!json_is_string(v))
        return memory_fail(MESH_EPROTO, err, err_size, "%s: required string", key);
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (len == 0)
        return memory_fail(MESH_EPROTO, err, err_size, "%s: must not be empty", key);
    if (len > max)
        return memory_fail(MESH_ETOOBIG, err, err_size, "%s: longer than %zu bytes", key, max);
    if (strlen(s) != len)
        return memory_fail(MESH_EPROTO, err, err_size, "%s: must not contain NUL", key);
    if (ident) {
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch < 0x20 || ch == 0x7f)
                return memory_fail(MESH_EPROTO, err, err_size,
                                   "%s: must not contain control characters", key);
        }
    }
    *out = s;
    if (len_out != NULL)
        *len_out = len;
    return 0;
}

static int args_map(const json_t *args, char *err, size_t err_size)
{
    if (!json_is_object(args))
        return memory_fail(MESH_EPROTO, err, err_size, "args: must be a map");
    return 0;
}

/* Compact JSON of a message built here (malloc'd, *len set) or NULL. */
static char *message_text(json_t *m, size_t *len)
{
    if (m == NULL)
        return NULL;
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    if (s != NULL)
        *len = strlen(s);
    return s;
}

/* ------------------------------------------------------------ replies */

static int unexpected(char *err, size_t err_size)
{
    return memory_fail(MESH_EINTERNAL, err, err_size, "redis: unexpected script reply");
}

static int head(const redisReply *r, const char **word, char *err, size_t err_size)
{
    if (r->type == REDIS_REPLY_ERROR) {
        char clean[HO_SAFE];
        mesh_log_sanitize(r->str != NULL ? r->str : "", r->str != NULL ? r->len : 0, clean,
                          sizeof clean);
        mesh_log_warn(HO_SUBSYS, "redis error: %s", clean);
        return memory_fail(MESH_EUNAVAIL, err, err_size, "redis error: %s", clean);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return unexpected(err, err_size);
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            return unexpected(err, err_size);
    }
    *word = r->element[0]->str;
    return 0;
}

/* {"state", handoff, holder} -> ESTATE naming what the conversation is in. */
static int state_error(const redisReply *r, const char *want, char *err, size_t err_size)
{
    char st[HO_SAFE] = "", who[HO_SAFE] = "";
    if (r->elements >= 3) {
        mesh_log_sanitize(r->element[1]->str, r->element[1]->len, st, sizeof st);
        mesh_log_sanitize(r->element[2]->str, r->element[2]->len, who, sizeof who);
    }
    if (who[0] != '\0')
        return memory_fail(MESH_ESTATE, err, err_size, "%s (handoff is '%s', held by %s)", want, st,
                           who);
    return memory_fail(MESH_ESTATE, err, err_size, "%s (handoff is '%s')", want, st);
}

/*
 * The script's first word (head); "state" -> ESTATE naming want when want is
 * not NULL (an op that checks who holds the conversation).
 */
static int reply_word(const redisReply *r, const char *want, const char **word, char *err,
                      size_t err_size)
{
    int rc = head(r, word, err, err_size);
    if (rc == 0 && want != NULL && strcmp(*word, "state") == 0)
        return state_error(r, want, err, err_size);
    return rc;
}

/* *data = d (built here; NULL when out of memory). */
static int data_set(json_t *d, json_t **data, char *err, size_t err_size)
{
    *data = d;
    return d != NULL ? 0 : memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
}

static int claim_data(const redisReply *r, memory_op_t *c, json_t **data, char *err,
                      size_t err_size)
{
    const char *word;
    int rc = reply_word(r, "not waiting for a person", &word, err, err_size);
    if (rc != 0)
        return rc;
    if (strcmp(word, "ok") != 0 || r->elements != 2)
        return unexpected(err, err_size);
    char *endp = NULL;
    unsigned long long at = strtoull(r->element[1]->str, &endp, 10);
    bool known = r->element[1]->len > 0 && *endp == '\0' && at > 0 && at <= c->now_ms;
    if (known)
        mesh_histogram_observe(c->metrics.wait_s, (double)(c->now_ms - at) / 1000.0);
    return data_set(json_pack("{s:s, s:s, s:o}", "conversation_id", c->conv, "state", "human",
                              "since", known ? json_integer((json_int_t)at) : json_null()),
                    data, err, err_size);
}

static int reply_data(const redisReply *r, memory_op_t *c, json_t **data, char *err,
                      size_t err_size)
{
    (void)c;
    const char *word;
    int rc = reply_word(r, "not held by this person", &word, err, err_size);
    if (rc != 0)
        return rc;
    bool dup = strcmp(word, "dup") == 0;
    if (!dup && strcmp(word, "ok") != 0)
        return unexpected(err, err_size);
    return data_set(json_pack("{s:b}", "duplicate", dup), data, err, err_size);
}

static int note_data(const redisReply *r, memory_op_t *c, json_t **data, char *err, size_t err_size)
{
    (void)c;
    const char *word;
    int rc = reply_word(r, NULL, &word, err, err_size);
    if (rc != 0)
        return rc;
    if (strcmp(word, "none") == 0)
        return memory_fail(MESH_ENOTFOUND, err, err_size, "no such conversation");
    if (strcmp(word, "ok") != 0)
        return unexpected(err, err_size);
    return data_set(json_object(), data, err, err_size);
}

static int release_data(const redisReply *r, memory_op_t *c, json_t **data, char *err,
                        size_t err_size)
{
    const char *word;
    int rc = reply_word(r, "not held by this person", &word, err, err_size);
    if (rc != 0)
        return rc;
    if (strcmp(word, "ok") != 0)
        return unexpected(err, err_size);
    c->follow = MEMORY_FOLLOW_QUEUE_REM;
    return data_set(json_pack("{s:s, s:s}", "conversation_id", c->conv, "state", ""), data, err,
                    err_size);
}

/* ------------------------------------------------------------ builders */

static int push_tail(memory_argv_t *a, const memory_build_ctx_t *bc, bool with_rebuild)
{
    int rc = memory_argv_push_u64(a, bc->cfg->ttl_s);
    if (rc == 0)
        rc = memory_argv_push_u64(a, bc->cfg->history_max);
    if (rc == 0)
        rc = memory_argv_push_u64(a, bc->now_ms);
    if (rc == 0 && with_rebuild)
        rc = memory_argv_push_u64(a, MEMORY_CTX_REBUILD_MAX);
    return rc;
}

/* args must be a map with the person acting (every op but handoff.list). */
static int args_person(const json_t *args, const char **person, size_t *plen, char *err,
                       size_t err_size)
{
    int rc = args_map(args, err, err_size);
    if (rc == 0)
        rc = arg_str(args, "person", MEMORY_PERSON_MAX, true, person, plen, err, err_size);
    return rc;
}

/* The keys and the person of an op's script; which keys by kind (mid: the dedupe key's id). */
typedef struct {
    const memory_key_kind_t *kinds;
    size_t nkeys;
    const char *mid;    /* NULL: no message id in the keys */
    const char *person; /* NULL: the script takes no person argument */
    size_t plen;
    bool with_rebuild; /* the tail carries MEMORY_CTX_REBUILD_MAX */
} ho_script_t;

/*
 * The argv of a script that appends msg (built here and taken; NULL when out
 * of memory) to the conversation's log: the keys, the person (if any), msg as
 * compact JSON, then the common tail; plan answers with to_data.
 */
static int build_append(const memory_build_ctx_t *bc, const ho_script_t *sc, json_t *msg,
                        memory_reply_fn to_data, memory_argv_t *a, memory_plan_t *plan, char *err,
                        size_t err_size)
{
    size_t jlen = 0;
    char *text = message_text(msg, &jlen);
    if (text == NULL)
        return memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
    int rc = memory_push_keys(a, bc->conv, sc->mid, sc->kinds, sc->nkeys);
    if (rc == 0 && sc->person != NULL)
        rc = memory_argv_push(a, sc->person, sc->plen);
    if (rc == 0)
        rc = memory_argv_push_owned(a, text, jlen);
    else
        free(text);
    if (rc == 0)
        rc = push_tail(a, bc, sc->with_rebuild);
    if (rc != 0)
        return memory_fail(rc, err, err_size, "cannot build the request");
    plan->to_data = to_data;
    return 0;
}

int memory_handoff_build_claim(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                               memory_plan_t *plan, char *err, size_t err_size)
{
    const char *person = NULL;
    size_t plen = 0;
    int rc = args_person(args, &person, &plen, err, err_size);
    if (rc != 0)
        return rc;
    rc = memory_push_keys(a, bc->conv, NULL, (const memory_key_kind_t[]){MEMORY_KEY_STATE}, 1);
    if (rc == 0)
        rc = memory_argv_push(a, person, plen);
    if (rc == 0)
        rc = memory_argv_push_u64(a, bc->now_ms);
    if (rc != 0)
        return memory_fail(rc, err, err_size, "cannot build the request");
    plan->to_data = claim_data;
    return 0;
}

int memory_handoff_build_reply(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                               memory_plan_t *plan, char *err, size_t err_size)
{
    const char *person = NULL, *text = NULL, *mid = NULL;
    size_t plen = 0, tlen = 0, mlen = 0;
    int rc = args_person(args, &person, &plen, err, err_size);
    if (rc == 0)
        rc = arg_str(args, "text", MESH_TEXT_MAX, false, &text, &tlen, err, err_size);
    if (rc == 0)
        rc = arg_str(args, "message_id", MESH_ID_MAX, true, &mid, &mlen, err, err_size);
    if (rc != 0)
        return rc;
    static const memory_key_kind_t kinds[MEMORY_HO_REPLY_NKEYS] = {
        MEMORY_KEY_LOG, MEMORY_KEY_STATE, MEMORY_KEY_CTX, MEMORY_KEY_HIDEM};
    const ho_script_t sc = {kinds, MEMORY_HO_REPLY_NKEYS, mid, person, plen, true};
    return build_append(bc, &sc,
                        json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "role", "assistant", "name",
                                  "human", "person", person, "text", text, "ts",
                                  (json_int_t)bc->now_ms, "message_id", mid),
                        reply_data, a, plan, err, err_size);
}

int memory_handoff_build_note(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                              memory_plan_t *plan, char *err, size_t err_size)
{
    const char *person = NULL, *text = NULL;
    size_t plen = 0, tlen = 0;
    int rc = args_person(args, &person, &plen, err, err_size);
    if (rc == 0)
        rc = arg_str(args, "text", MESH_TEXT_MAX, false, &text, &tlen, err, err_size);
    if (rc != 0)
        return rc;
    static const memory_key_kind_t kinds[MEMORY_HO_NOTE_NKEYS] = {MEMORY_KEY_LOG, MEMORY_KEY_STATE};
    /* A note names its person inside the message only. */
    const ho_script_t sc = {kinds, MEMORY_HO_NOTE_NKEYS, NULL, NULL, 0, false};
    return build_append(bc, &sc,
                        json_pack("{s:s, s:s, s:s, s:I}", "role", "note", "person", person, "text",
                                  text, "ts", (json_int_t)bc->now_ms),
                        note_data, a, plan, err, err_size);
}

int memory_handoff_build_release(const memory_build_ctx_t *bc, const json_t *args, memory_argv_t *a,
                                 memory_plan_t *plan, char *err, size_t err_size)
{
    const char *person = NULL, *summary = NULL;
    size_t plen = 0, slen = 0;
    int rc = args_person(args, &person, &plen, err, err_size);
    if (rc == 0)
        rc = arg_str(args, "summary", MESH_TEXT_MAX, false, &summary, &slen, err, err_size);
    if (rc != 0)
        return rc;
    static const memory_key_kind_t kinds[MEMORY_HO_RELEASE_NKEYS] = {MEMORY_KEY_LOG,
                                                                     MEMORY_KEY_STATE};
    const ho_script_t sc = {kinds, MEMORY_HO_RELEASE_NKEYS, NULL, person, plen, false};
    return build_append(bc, &sc,
                        json_pack("{s:s, s:s, s:s, s:I, s:s}", "role", "note", "person", person,
                                  "text", summary, "ts", (json_int_t)bc->now_ms, "event",
                                  "release"),
                        release_data, a, plan, err, err_size);
}

/* ------------------------------------------------------------ handoff.list */

typedef struct {
    char conv[MESH_CONV_MAX + 1];
    long long since;
    bool valid;   /* a well-formed conversation id */
    bool stale;   /* to ZREM: not pending/human any more, or not a conversation id */
    json_t *item; /* the list entry, when live */
    bool human;
} ho_member_t;

typedef struct {
    mesh_redis_t *redis;
    memory_metrics_t metrics;
    memory_ops_done_fn done;
    void *arg;
    int outstanding; /* commands sent, not answered */
    int status;      /* first failure */
    char err[MESH_ERRMSG_MAX + 1];
    long long card;
    size_t n;
    ho_member_t *m;
    bool range_done, lookups_sent, zrem_sent;
    long long removed;
} ho_list_t;

static void list_free(ho_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->m[i].item);
    free(l->m);
    free(l);
}

static void list_set_error(ho_list_t *l, int status, const char *what)
{
    if (l->status != 0)
        return;
    l->status = status;
    snprintf(l->err, sizeof l->err, "%s", what);
}

static void list_step(ho_list_t *l);

static int list_send(ho_list_t *l, mesh_redis_cb cb, void *arg, int argc, const char **argv)
{
    int rc = mesh_redis_command(l->redis, cb, arg, argc, argv, NULL);
    if (rc == 0)
        l->outstanding++;
    else
        list_set_error(l, rc == MESH_EUNAVAIL ? MESH_EUNAVAIL : rc, "redis unavailable");
    return rc;
}

static void cb_status(ho_list_t *l, int status, const redisReply *reply)
{
    l->outstanding--;
    if (status != 0)
        list_set_error(l, MESH_EUNAVAIL, mesh_strerror(status));
    else if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        list_set_error(l, MESH_EUNAVAIL, "redis error");
}

static void on_card(mesh_redis_t *r, int status, redisReply *reply, void *arg)
{
    (void)r;
    ho_list_t *l = arg;
    cb_status(l, status, reply);
    if (l->status == 0 && reply->type == REDIS_REPLY_INTEGER)
        l->card = reply->integer;
    list_step(l);
}

static void on_range(mesh_redis_t *r, int status, redisReply *reply, void *arg)
{
    (void)r;
    ho_list_t *l = arg;
    cb_status(l, status, reply);
    if (l->status == 0 && (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0))
        list_set_error(l, MESH_EINTERNAL, "redis: unexpected ZRANGE reply");
    if (l->status == 0 && reply->elements > 0) {
        l->n = reply->elements / 2;
        l->m = calloc(l->n, sizeof *l->m);
        if (l->m == NULL) {
            l->n = 0;
            list_set_error(l, MESH_ENOMEM, "out of memory");
        }
        for (size_t i = 0; l->m != NULL && i < l->n; i++) {
            const redisReply *mem = reply->element[2 * i], *sc = reply->element[2 * i + 1];
            ho_member_t *m = &l->m[i];
            m->valid = mem->type == REDIS_REPLY_STRING && mem->len <= MESH_CONV_MAX &&
                       mesh_conv_id_valid(mem->str, mem->len);
            if (m->valid)
                memcpy(m->conv, mem->str, mem->len);
            else if (mem->type == REDIS_REPLY_STRING && mem->len <= MESH_CONV_MAX)
                memcpy(m->conv, mem->str, mem->len); /* a foreign member: removed as is */
            m->stale = !m->valid;
            m->since = sc->type == REDIS_REPLY_STRING ? strtoll(sc->str, NULL, 10) : 0;
        }
    }
    l->range_done = true;
    list_step(l);
}

/* {handoff, handoff_reason, handoff_at, agent, handoff_person} of one member. */
static void on_member(mesh_redis_t *r, int status, redisReply *reply, void *arg);

typedef struct {
    ho_list_t *l;
    size_t i;
} ho_member_ref_t;

static const char *field(const redisReply *reply, size_t i, size_t *len)
{
    const redisReply *e = reply->element[i];
    if (e->type != REDIS_REPLY_STRING || !mesh_utf8_valid(e->str, e->len)) {
        *len = 0;
        return NULL;
    }
    *len = e->len;
    return e->str;
}

static void on_member(mesh_redis_t *r, int status, redisReply *reply, void *arg)
{
    (void)r;
    ho_member_ref_t *ref = arg;
    ho_list_t *l = ref->l;
    ho_member_t *m = &l->m[ref->i];
    free(ref);
    cb_status(l, status, reply);
    if (l->status == 0 && (reply->type != REDIS_REPLY_ARRAY || reply->elements != HO_FIELDS))
        list_set_error(l, MESH_EINTERNAL, "redis: unexpected HMGET reply");
    if (l->status == 0) {
        size_t hl, rl, al, pl;
        const char *h = field(reply, 0, &hl);
        const char *reason = field(reply, 1, &rl);
        const char *agent = field(reply, 3, &al);
        const char *person = field(reply, 4, &pl);
        bool pending = h != NULL && hl == 7 && memcmp(h, "pending", 7) == 0;
        bool human = h != NULL && hl == 5 && memcmp(h, "human", 5) == 0;
        if (!pending && !human) {
            m->stale = true;
        } else {
            if (rl > MEMORY_HANDOFF_REASON_MAX)
                rl = MEMORY_HANDOFF_REASON_MAX;
            m->human = human;
            m->item =
                json_pack("{s:s, s:I, s:s%, s:s%, s:s}", "conversation_id", m->conv, "since",
                          (json_int_t)m->since, "reason", reason != NULL ? reason : "", rl, "agent",
                          agent != NULL ? agent : "", al, "state", human ? "human" : "pending");
            if (m->item == NULL) {
                /* The reason was cut inside a UTF-8 sequence: list it without. */
                m->item =
                    json_pack("{s:s, s:I, s:s, s:s%, s:s}", "conversation_id", m->conv, "since",
                              (json_int_t)m->since, "reason", "", "agent",
                              agent != NULL ? agent : "", al, "state", human ? "human" : "pending");
            }
            if (m->item != NULL && human && person != NULL)
                json_object_set_new(m->item, "person", json_stringn(person, pl));
            if (m->item == NULL)
                list_set_error(l, MESH_ENOMEM, "out of memory");
        }
    }
    list_step(l);
}

static void on_zrem(mesh_redis_t *r, int status, redisReply *reply, void *arg)
{
    (void)r;
    ho_list_t *l = arg;
    l->outstanding--;
    /* The repair is best effort: the list is answered either way. */
    if (status != 0 || reply == NULL || reply->type != REDIS_REPLY_INTEGER)
        mesh_log_warn(HO_SUBSYS, "handoff.list: removing stale queue members failed");
    else
        l->removed = reply->integer;
    list_step(l);
}

static void list_answer(ho_list_t *l)
{
    if (l->status != 0) {
        l->done(l->status, l->err, NULL, l->arg);
        return;
    }
    json_t *items = json_array();
    long long humans = 0;
    int bad = items == NULL;
    for (size_t i = 0; !bad && i < l->n; i++) {
        if (l->m[i].item == NULL)
            continue;
        humans += l->m[i].human;
        bad = json_array_append(items, l->m[i].item);
    }
    long long total = l->card - l->removed;
    if (total < 0)
        total = 0;
    json_t *data = bad ? NULL : json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)total);
    if (bad)
        json_decref(items);
    if (data == NULL) {
        l->done(MESH_ENOMEM, "out of memory", NULL, l->arg);
        return;
    }
    /* Members past limit were not looked at: counted as pending. */
    long long pending = total - humans;
    mesh_gauge_set(l->metrics.queue_length, (double)(pending > 0 ? pending : 0));
    l->done(0, NULL, data, l->arg);
    json_decref(data);
}

/*
 * The list's state machine, run after every reply: ZRANGE + ZCARD -> one
 * HMGET per member -> one ZREM of the stale members -> answer. A failure
 * stops sending and answers once every sent command came back (each
 * callback is called exactly once, at the latest on destroy).
 */
static void list_step(ho_list_t *l)
{
    if (l->outstanding > 0)
        return;
    if (l->status == 0 && l->range_done && !l->lookups_sent) {
        l->lookups_sent = true;
        char key[MEMORY_KEY_MAX];
        for (size_t i = 0; l->status == 0 && i < l->n; i++) {
            if (!l->m[i].valid)
                continue;
            int klen = memory_key(key, sizeof key, MEMORY_KEY_STATE, l->m[i].conv, NULL);
            ho_member_ref_t *ref = malloc(sizeof *ref);
            if (klen < 0 || ref == NULL) {
                free(ref);
                list_set_error(l, MESH_ENOMEM, "out of memory");
                break;
            }
            ref->l = l;
            ref->i = i;
            const char *argv[] = {"HMGET",      key,     "handoff",       "handoff_reason",
                                  "handoff_at", "agent", "handoff_person"};
            if (list_send(l, on_member, ref, 7, argv) != 0)
                free(ref);
        }
        if (l->outstanding > 0)
            return;
    }
    if (l->status == 0 && l->lookups_sent && !l->zrem_sent) {
        l->zrem_sent = true;
        size_t n_stale = 0;
        for (size_t i = 0; i < l->n; i++)
            n_stale += l->m[i].stale;
        if (n_stale > 0) {
            const char **argv = malloc((n_stale + 2) * sizeof *argv);
            if (argv != NULL) {
                int argc = 0;
                argv[argc++] = "ZREM";
                argv[argc++] = MEMORY_HANDOFF_QUEUE_KEY;
                for (size_t i = 0; i < l->n; i++) {
                    if (l->m[i].stale)
                        argv[argc++] = l->m[i].conv;
                }
                if (mesh_redis_command(l->redis, on_zrem, l, argc, argv, NULL) == 0)
                    l->outstanding++;
                free(argv);
            }
            if (l->outstanding > 0)
                return;
        }
    }
    list_answer(l);
    list_free(l);
}

int memory_handoff_list(mesh_redis_t *redis, const memory_metrics_t *m, const json_t *args,
                        memory_ops_done_fn done, void *arg, char *err, size_t err_size)
{
    json_int_t limit = MEMORY_HANDOFF_LIST_DEF;
    if (args != NULL && !json_is_object(args))
        return memory_fail(MESH_EPROTO, err, err_size, "args: must be a map");
    const json_t *jl = json_object_get(args, "limit");
    if (jl != NULL) {
        if (!json_is_integer(jl) || json_integer_value(jl) < 1 ||
            json_integer_value(jl) > MEMORY_HANDOFF_LIST_MAX)
            return memory_fail(MESH_EPROTO, err, err_size, "limit: must be an integer 1..%d",
                               MEMORY_HANDOFF_LIST_MAX);
        limit = json_integer_value(jl);
    }
    ho_list_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return memory_fail(MESH_ENOMEM, err, err_size, "out of memory");
    l->redis = redis;
    l->metrics = *m;
    l->done = done;
    l->arg = arg;
    char stop[24];
    snprintf(stop, sizeof stop, "%lld", (long long)limit - 1);
    const char *range[] = {"ZRANGE", MEMORY_HANDOFF_QUEUE_KEY, "0", stop, "WITHSCORES"};
    const char *card[] = {"ZCARD", MEMORY_HANDOFF_QUEUE_KEY};
    /* Pipelined: answered in order, ZRANGE then ZCARD. */
    if (list_send(l, on_range, l, 5, range) != 0) {
        free(l);
        return memory_fail(MESH_EUNAVAIL, err, err_size, "redis unavailable");
    }
    list_send(l, on_card, l, 2, card); /* a failure is recorded and answered via on_range */
    return 0;
}
