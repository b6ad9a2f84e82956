/*
 * msg.c - the three msgpack bodies of the mesh protocol (mesh_msg.h).
 *
 * These run on every hop of every request, so the decoders do not build a
 * msgpack object tree for the whole body: after mesh_mp_prescan() has
 * vouched for the bytes, they walk the top-level map with mesh_mp_read(),
 * copy the small fixed fields straight into the struct, and build jansson
 * values only for the free-form "args"/"data" (mesh_mp_read_json: no
 * msgpack-c zone, no intermediate object tree).
 *
 * Rules shared by the decoders: keys must be strings; a known key may appear
 * only once (two "id"s would let two readers disagree); unknown keys are
 * skipped; nil for an optional key means "absent".
 */
#include "mesh/mesh_msg.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_mp.h"
#include "mesh/mesh_text.h"

/* Body keys; the enum value is the bit used to track presence. */
typedef enum {
    K_V,
    K_ID,
    K_OP,
    K_CONV,
    K_TENANT,
    K_DEADLINE,
    K_TP,
    K_IDEM,
    K_ARGS,
    K_STATUS,
    K_ERR,
    K_DATA,
    K_CAPACITY,
    K_UNKNOWN,
} msg_key_t;

#define BIT(k) (1u << (k))

/* Traceparent layout (W3C Trace Context, version 00). */
#define TP_TRACE_OFF  3
#define TP_TRACE_LEN  32
#define TP_PARENT_OFF 36
#define TP_PARENT_LEN 16
#define TP_FLAGS_OFF  53
#define TP_FLAGS_LEN  2
/* Hex characters of a mesh_id_new() id. */
#define ID_HEX_LEN 32

static msg_key_t key_lookup(const char *s, size_t n)
{
    switch (n) {
    case 1:
        return s[0] == 'v' ? K_V : K_UNKNOWN;
    case 2:
        if (memcmp(s, "id", 2) == 0)
            return K_ID;
        if (memcmp(s, "op", 2) == 0)
            return K_OP;
        if (memcmp(s, "tp", 2) == 0)
            return K_TP;
        return K_UNKNOWN;
    case 3:
        return memcmp(s, "err", 3) == 0 ? K_ERR : K_UNKNOWN;
    case 4:
        if (memcmp(s, "conv", 4) == 0)
            return K_CONV;
        if (memcmp(s, "idem", 4) == 0)
            return K_IDEM;
        if (memcmp(s, "args", 4) == 0)
            return K_ARGS;
        if (memcmp(s, "data", 4) == 0)
            return K_DATA;
        return K_UNKNOWN;
    case 6:
        if (memcmp(s, "tenant", 6) == 0)
            return K_TENANT;
        if (memcmp(s, "status", 6) == 0)
            return K_STATUS;
        return K_UNKNOWN;
    case 8:
        if (memcmp(s, "deadline", 8) == 0)
            return K_DEADLINE;
        if (memcmp(s, "capacity", 8) == 0)
            return K_CAPACITY;
        return K_UNKNOWN;
    default:
        return K_UNKNOWN;
    }
}

/* [A-Za-z0-9._:-]: request ids, ops and conversation ids. */
static inline bool is_id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

/* [A-Za-z0-9._-]: tenants (no ':' so they can be used in key prefixes). */
static inline bool is_tenant_char(unsigned char c)
{
    return c != ':' && is_id_char(c);
}

static bool all_id_chars(const char *s, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (!is_id_char((unsigned char)s[k]))
            return false;
    }
    return true;
}

static bool all_tenant_chars(const char *s, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (!is_tenant_char((unsigned char)s[k]))
            return false;
    }
    return true;
}

int mesh_conv_id_valid(const char *s, size_t len)
{
    return s != NULL && len >= 1 && len <= MESH_CONV_MAX && all_id_chars(s, len);
}

static bool is_lower_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Lower-case hex and not all zeros (an all-zero trace or parent id is invalid). */
static bool hex_nonzero(const char *s, size_t n)
{
    bool nonzero = false;
    for (size_t k = 0; k < n; k++) {
        if (!is_lower_hex((unsigned char)s[k]))
            return false;
        nonzero |= s[k] != '0';
    }
    return nonzero;
}

int mesh_traceparent_valid(const char *s, size_t len)
{
    if (s == NULL || len != MESH_TRACEPARENT_MAX)
        return 0;
    if (s[0] != '0' || s[1] != '0' || s[2] != '-' || s[TP_PARENT_OFF - 1] != '-' ||
        s[TP_FLAGS_OFF - 1] != '-')
        return 0;
    if (!hex_nonzero(s + TP_TRACE_OFF, TP_TRACE_LEN) ||
        !hex_nonzero(s + TP_PARENT_OFF, TP_PARENT_LEN))
        return 0;
    return is_lower_hex((unsigned char)s[TP_FLAGS_OFF]) &&
           is_lower_hex((unsigned char)s[TP_FLAGS_OFF + 1]);
}

/* ---- field readers: each reads one value at *pos ---- */

/* A string of min..max bytes, each accepted by ok (NULL: valid UTF-8, no NUL), into
 * dst[max+1]. A nil value leaves dst empty when min is 0. */
static int read_str(const void *buf, size_t len, size_t *pos, char *dst, size_t min, size_t max,
                    bool (*ok)(const char *, size_t))
{
    mesh_mp_item_t it;
    int rc = mesh_mp_read(buf, len, pos, &it);
    if (rc != 0)
        return rc;
    if (it.kind == MESH_MP_NIL && min == 0) {
        dst[0] = '\0';
        return 0;
    }
    if (it.kind != MESH_MP_STR || it.u < min || it.u > max)
        return MESH_EPROTO;
    if (ok != NULL) {
        if (!ok(it.ptr, (size_t)it.u))
            return MESH_EPROTO;
    } else if (memchr(it.ptr, '\0', (size_t)it.u) != NULL ||
               !mesh_utf8_valid(it.ptr, (size_t)it.u)) {
        return MESH_EPROTO;
    }
    memcpy(dst, it.ptr, (size_t)it.u);
    dst[it.u] = '\0';
    return 0;
}

static int read_uint(const void *buf, size_t len, size_t *pos, uint64_t *out)
{
    mesh_mp_item_t it;
    int rc = mesh_mp_read(buf, len, pos, &it);
    if (rc != 0)
        return rc;
    if (it.kind != MESH_MP_UINT)
        return MESH_EPROTO;
    *out = it.u;
    return 0;
}

static int read_version(const void *buf, size_t len, size_t *pos)
{
    uint64_t v = 0;
    int rc = read_uint(buf, len, pos, &v);
    if (rc != 0)
        return rc;
    return (v >= 1 && v <= MESH_MSG_VERSION) ? 0 : MESH_EPROTO;
}

/* Any value into a new json_t (NULL for nil). The value sits one map deep. */
static int read_any(const void *buf, size_t len, size_t *pos, json_t **out)
{
    if (*pos < len && ((const uint8_t *)buf)[*pos] == 0xc0) { /* nil: absent */
        (*pos)++;
        *out = NULL;
        return 0;
    }
    return mesh_mp_read_json(buf, len, pos, 1, out);
}

/* Open the body: pre-scan, then the top-level map header. *pairs gets its size. */
static int open_map(const void *buf, size_t len, size_t *pos, uint64_t *pairs)
{
    int rc = mesh_mp_prescan(buf, len);
    if (rc != 0)
        return rc;
    mesh_mp_item_t it;
    rc = mesh_mp_read(buf, len, pos, &it);
    if (rc != 0)
        return rc;
    if (it.kind != MESH_MP_MAP)
        return MESH_EPROTO;
    *pairs = it.u;
    return 0;
}

/*
 * Read one key; a non-string key is malformed, and so is a second copy of a
 * key of this body type (mask). Keys of other body types count as unknown.
 */
static int read_key(const void *buf, size_t len, size_t *pos, uint32_t mask, uint32_t *seen,
                    msg_key_t *k)
{
    mesh_mp_item_t it;
    int rc = mesh_mp_read(buf, len, pos, &it);
    if (rc != 0)
        return rc;
    if (it.kind != MESH_MP_STR)
        return MESH_EPROTO;
    *k = key_lookup(it.ptr, (size_t)it.u);
    if (*k == K_UNKNOWN || !(mask & BIT(*k))) {
        *k = K_UNKNOWN;
        return 0;
    }
    if (*seen & BIT(*k))
        return MESH_EPROTO;
    *seen |= BIT(*k);
    return 0;
}

static bool ok_id(const char *s, size_t n)
{
    return all_id_chars(s, n);
}

static bool ok_tenant(const char *s, size_t n)
{
    return all_tenant_chars(s, n);
}

static bool ok_tp(const char *s, size_t n)
{
    return n == 0 || mesh_traceparent_valid(s, n);
}

static int request_field(const void *buf, size_t len, size_t *pos, msg_key_t k, mesh_request_t *out)
{
    uint64_t u = 0;
    int rc;

    switch (k) {
    case K_V:
        return read_version(buf, len, pos);
    case K_ID:
        return read_str(buf, len, pos, out->id, 1, MESH_ID_MAX, ok_id);
    case K_OP:
        return read_str(buf, len, pos, out->op, 1, MESH_OP_MAX, ok_id);
    case K_CONV:
        return read_str(buf, len, pos, out->conv, 0, MESH_CONV_MAX, ok_id);
    case K_TENANT:
        return read_str(buf, len, pos, out->tenant, 0, MESH_TENANT_MAX, ok_tenant);
    case K_TP:
        return read_str(buf, len, pos, out->tp, 0, MESH_TRACEPARENT_MAX, ok_tp);
    case K_DEADLINE:
        rc = read_uint(buf, len, pos, &u);
        if (rc != 0)
            return rc;
        if (u == 0)
            return MESH_EPROTO;
        out->deadline_ms = u > MESH_DEADLINE_MAX_MS ? MESH_DEADLINE_MAX_MS : (uint32_t)u;
        return 0;
    case K_IDEM: {
        mesh_mp_item_t it;
        rc = mesh_mp_read(buf, len, pos, &it);
        if (rc != 0)
            return rc;
        if (it.kind == MESH_MP_NIL)
            return 0;
        if (it.kind != MESH_MP_BOOL)
            return MESH_EPROTO;
        out->idem = it.b;
        return 0;
    }
    case K_ARGS:
        return read_any(buf, len, pos, &out->args);
    default:
        return mesh_mp_skip(buf, len, pos);
    }
}

int mesh_request_decode(const void *buf, size_t len, mesh_request_t *out)
{
    const uint32_t required = BIT(K_V) | BIT(K_ID) | BIT(K_OP) | BIT(K_DEADLINE);
    const uint32_t mask =
        required | BIT(K_CONV) | BIT(K_TENANT) | BIT(K_TP) | BIT(K_IDEM) | BIT(K_ARGS);
    uint32_t seen = 0;
    uint64_t pairs = 0;
    size_t pos = 0;
    int rc;

    if (out == NULL)
        return MESH_EINVAL;
    memset(out, 0, sizeof(*out));
    rc = open_map(buf, len, &pos, &pairs);
    if (rc != 0)
        goto fail;
    for (uint64_t p = 0; p < pairs; p++) {
        msg_key_t k;
        rc = read_key(buf, len, &pos, mask, &seen, &k);
        if (rc != 0)
            goto fail;
        rc = k == K_UNKNOWN ? mesh_mp_skip(buf, len, &pos) : request_field(buf, len, &pos, k, out);
        if (rc != 0)
            goto fail;
    }
    if ((seen & required) != required) {
        rc = MESH_EPROTO;
        goto fail;
    }
    if (out->tenant[0] == '\0')
        memcpy(out->tenant, MESH_TENANT_DEFAULT, sizeof(MESH_TENANT_DEFAULT));
    return 0;
fail:
    mesh_request_clear(out);
    return rc;
}

static int reply_field(const void *buf, size_t len, size_t *pos, msg_key_t k, mesh_reply_t *out)
{
    mesh_mp_item_t it;
    int rc;

    switch (k) {
    case K_V:
        return read_version(buf, len, pos);
    case K_ID:
        return read_str(buf, len, pos, out->id, 1, MESH_ID_MAX, ok_id);
    case K_STATUS:
        rc = mesh_mp_read(buf, len, pos, &it);
        if (rc != 0)
            return rc;
        if (it.kind == MESH_MP_UINT && it.u == 0) {
            out->status = 0;
            return 0;
        }
        /* Unknown negative codes are refused: the code space is shared (mesh_err.h). */
        if (it.kind != MESH_MP_INT || it.i < INT32_MIN || !mesh_err_known((int)it.i))
            return MESH_EPROTO;
        out->status = (int32_t)it.i;
        return 0;
    case K_ERR:
        return read_str(buf, len, pos, out->err, 0, MESH_ERRMSG_MAX, NULL);
    case K_DATA:
        return read_any(buf, len, pos, &out->data);
    default:
        return mesh_mp_skip(buf, len, pos);
    }
}

int mesh_reply_decode(const void *buf, size_t len, mesh_reply_t *out)
{
    const uint32_t required = BIT(K_V) | BIT(K_ID) | BIT(K_STATUS);
    const uint32_t mask = required | BIT(K_ERR) | BIT(K_DATA);
    uint32_t seen = 0;
    uint64_t pairs = 0;
    size_t pos = 0;
    int rc;

    if (out == NULL)
        return MESH_EINVAL;
    memset(out, 0, sizeof(*out));
    rc = open_map(buf, len, &pos, &pairs);
    if (rc != 0)
        goto fail;
    for (uint64_t p = 0; p < pairs; p++) {
        msg_key_t k;
        rc = read_key(buf, len, &pos, mask, &seen, &k);
        if (rc != 0)
            goto fail;
        rc = k == K_UNKNOWN ? mesh_mp_skip(buf, len, &pos) : reply_field(buf, len, &pos, k, out);
        if (rc != 0)
            goto fail;
    }
    if ((seen & required) != required) {
        rc = MESH_EPROTO;
        goto fail;
    }
    return 0;
fail:
    mesh_reply_clear(out);
    return rc;
}

int mesh_ready_decode(const void *buf, size_t len, mesh_ready_t *out)
{
    const uint32_t required = BIT(K_V) | BIT(K_CAPACITY);
    const uint32_t mask = required;
    uint32_t seen = 0;
    uint64_t pairs = 0;
    size_t pos = 0;
    int rc;

    if (out == NULL)
        return MESH_EINVAL;
    memset(out, 0, sizeof(*out));
    rc = open_map(buf, len, &pos, &pairs);
    if (rc != 0)
        goto fail;
    for (uint64_t p = 0; p < pairs; p++) {
        msg_key_t k;
        uint64_t cap = 0;
        rc = read_key(buf, len, &pos, mask, &seen, &k);
        if (rc != 0)
            goto fail;
        if (k == K_V) {
            rc = read_version(buf, len, &pos);
        } else if (k == K_CAPACITY) {
            rc = read_uint(buf, len, &pos, &cap);
            if (rc == 0 && (cap < 1 || cap > MESH_WORKER_CAPACITY_MAX))
                rc = MESH_EPROTO;
            out->capacity = (uint32_t)cap;
        } else {
            rc = mesh_mp_skip(buf, len, &pos);
        }
        if (rc != 0)
            goto fail;
    }
    if ((seen & required) != required) {
        rc = MESH_EPROTO;
        goto fail;
    }
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- encoders ---- */

/* Length of a NUL-terminated field stored in a char[max+1]; max+1 when unterminated. */
static size_t field_len(const char *s, size_t max)
{
    return strnlen(s, max + 1);
}

static void pack_key(msgpack_packer *pk, const char *key, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, key, n);
}

#define PACK_KEY(pk, lit) pack_key((pk), (lit), sizeof(lit) - 1)

/* Roll sb back to size when packing a free-form value failed half way. */
static int rollback(msgpack_sbuffer *sb, size_t size, int rc)
{
    sb->size = size;
    return rc;
}

int mesh_request_encode(const mesh_request_t *req, msgpack_sbuffer *sb)
{
    if (req == NULL || sb == NULL)
        return MESH_EINVAL;
    size_t id_n = field_len(req->id, MESH_ID_MAX);
    size_t op_n = field_len(req->op, MESH_OP_MAX);
    size_t conv_n = field_len(req->conv, MESH_CONV_MAX);
    size_t ten_n = field_len(req->tenant, MESH_TENANT_MAX);
    size_t tp_n = field_len(req->tp, MESH_TRACEPARENT_MAX);

    if (id_n < 1 || id_n > MESH_ID_MAX || !all_id_chars(req->id, id_n))
        return MESH_EINVAL;
    if (op_n < 1 || op_n > MESH_OP_MAX || !all_id_chars(req->op, op_n))
        return MESH_EINVAL;
    if (conv_n > 0 && !mesh_conv_id_valid(req->conv, conv_n))
        return MESH_EINVAL;
    if (ten_n > MESH_TENANT_MAX || !all_tenant_chars(req->tenant, ten_n))
        return MESH_EINVAL;
    if (tp_n > 0 && !mesh_traceparent_valid(req->tp, tp_n))
        return MESH_EINVAL;
    if (req->deadline_ms == 0)
        return MESH_EINVAL;
    uint32_t deadline =
        req->deadline_ms > MESH_DEADLINE_MAX_MS ? MESH_DEADLINE_MAX_MS : req->deadline_ms;

    size_t n =
        4 + (conv_n > 0) + (ten_n > 0) + (tp_n > 0) + (req->idem ? 1 : 0) + (req->args != NULL);
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    PACK_KEY(&pk, "v");
    msgpack_pack_uint32(&pk, MESH_MSG_VERSION);
    PACK_KEY(&pk, "id");
    mesh_mp_pack_strn(&pk, req->id, id_n);
    PACK_KEY(&pk, "op");
    mesh_mp_pack_strn(&pk, req->op, op_n);
    if (conv_n > 0) {
        PACK_KEY(&pk, "conv");
        mesh_mp_pack_strn(&pk, req->conv, conv_n);
    }
    if (ten_n > 0) {
        PACK_KEY(&pk, "tenant");
        mesh_mp_pack_strn(&pk, req->tenant, ten_n);
    }
    PACK_KEY(&pk, "deadline");
    msgpack_pack_uint32(&pk, deadline);
    if (tp_n > 0) {
        PACK_KEY(&pk, "tp");
        mesh_mp_pack_strn(&pk, req->tp, tp_n);
    }
    if (req->idem) {
        PACK_KEY(&pk, "idem");
        msgpack_pack_true(&pk);
    }
    if (req->args != NULL) {
        PACK_KEY(&pk, "args");
        if (mesh_mp_pack_json(&pk, req->args) != 0)
            return rollback(sb, start, MESH_EINVAL);
    }
    return 0;
}

/*
 * Copy s[0..n) to out (room for n bytes), replacing every byte that does not
 * start a valid UTF-8 sequence (and NUL) with '?'. Returns the bytes written
 * (<= n). Keeps an error message cut mid-character by a caller's snprintf.
 */
static size_t utf8_sanitize(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t k = 0; k < n;) {
        unsigned char c = (unsigned char)s[k];
        size_t need = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (need <= n - k && mesh_utf8_valid(s + k, need) && c != 0) {
            memcpy(out + o, s + k, need);
            o += need;
            k += need;
        } else {
            out[o++] = '?';
            k++;
        }
    }
    return o;
}

int mesh_reply_encode(const mesh_reply_t *rep, msgpack_sbuffer *sb)
{
    if (rep == NULL || sb == NULL)
        return MESH_EINVAL;
    size_t id_n = field_len(rep->id, MESH_ID_MAX);
    size_t err_n = field_len(rep->err, MESH_ERRMSG_MAX);

    if (id_n < 1 || id_n > MESH_ID_MAX || !all_id_chars(rep->id, id_n))
        return MESH_EINVAL;
    if (rep->status > 0 || !mesh_err_known(rep->status))
        return MESH_EINVAL;
    if (err_n > MESH_ERRMSG_MAX)
        return MESH_EINVAL;

    size_t n = 3 + (err_n > 0) + (rep->data != NULL);
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    PACK_KEY(&pk, "v");
    msgpack_pack_uint32(&pk, MESH_MSG_VERSION);
    PACK_KEY(&pk, "id");
    mesh_mp_pack_strn(&pk, rep->id, id_n);
    PACK_KEY(&pk, "status");
    msgpack_pack_int32(&pk, rep->status);
    if (err_n > 0) {
        PACK_KEY(&pk, "err");
        /* Error texts often come from elsewhere (HTTP bodies, strerror) and
         * may have been cut mid-character: send valid UTF-8 rather than fail
         * the whole reply, since peers refuse invalid UTF-8. */
        if (mesh_utf8_valid(rep->err, err_n)) {
            mesh_mp_pack_strn(&pk, rep->err, err_n);
        } else {
            char clean[MESH_ERRMSG_MAX];
            size_t m = utf8_sanitize(rep->err, err_n, clean);
            mesh_mp_pack_strn(&pk, clean, m);
        }
    }
    if (rep->data != NULL) {
        PACK_KEY(&pk, "data");
        if (mesh_mp_pack_json(&pk, rep->data) != 0)
            return rollback(sb, start, MESH_EINVAL);
    }
    return 0;
}

int mesh_ready_encode(const mesh_ready_t *rdy, msgpack_sbuffer *sb)
{
    if (rdy == NULL || sb == NULL)
        return MESH_EINVAL;
    if (rdy->capacity < 1 || rdy->capacity > MESH_WORKER_CAPACITY_MAX)
        return MESH_EINVAL;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    PACK_KEY(&pk, "v");
    msgpack_pack_uint32(&pk, MESH_MSG_VERSION);
    PACK_KEY(&pk, "capacity");
    msgpack_pack_uint32(&pk, rdy->capacity);
    return 0;
}

void mesh_request_clear(mesh_request_t *req)
{
    if (req == NULL)
        return;
    json_decref(req->args);
    memset(req, 0, sizeof(*req));
}

void mesh_reply_clear(mesh_reply_t *rep)
{
    if (rep == NULL)
        return;
    json_decref(rep->data);
    memset(rep, 0, sizeof(*rep));
}

/* ---- ids: xoshiro256** per thread, seeded once from the kernel ---- */

typedef struct {
    uint64_t s[4];
    bool seeded;
} rng_t;

static _Thread_local rng_t s_rng;
static pthread_once_t s_atfork_once = PTHREAD_ONCE_INIT;

/* A forked child must not replay its parent's ids: reseed on first use. */
static void rng_atfork_child(void)
{
    s_rng.seeded = false;
}

static void rng_register_atfork(void)
{
    pthread_atfork(NULL, NULL, rng_atfork_child);
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void rng_seed(void)
{
    uint64_t seed[4] = {0, 0, 0, 0};
    pthread_once(&s_atfork_once, rng_register_atfork);
    if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        /* No entropy yet (early boot): ids only need to be unique, not secret. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
                     ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&s_rng;
        for (int k = 0; k < 4; k++)
            seed[k] ^= splitmix64(&x);
    }
    /* Run the seed through splitmix so the state is never all zero. */
    uint64_t x = seed[0] ^ seed[1] ^ seed[2] ^ seed[3];
    for (int k = 0; k < 4; k++)
        s_rng.s[k] = seed[k] ^ splitmix64(&x);
    if ((s_rng.s[0] | s_rng.s[1] | s_rng.s[2] | s_rng.s[3]) == 0)
        s_rng.s[0] = 1;
    s_rng.seeded = true;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
    if (!s_rng.seeded)
        rng_seed();
    uint64_t *s = s_rng.s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void hex64(uint64_t v, char *out, size_t digits)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t k = digits; k > 0; k--) {
        out[k - 1] = hex[v & 0x0f];
        v >>= 4;
    }
}

void mesh_traceparent_new(char out[MESH_TRACEPARENT_MAX + 1])
{
    uint64_t a, b, c;
    do {
        a = rng_next();
        b = rng_next();
    } while ((a | b) == 0);
    do {
        c = rng_next();
    } while (c == 0);
    memcpy(out, "00-", 3);
    hex64(a, out + TP_TRACE_OFF, 16);
    hex64(b, out + TP_TRACE_OFF + 16, 16);
    out[TP_PARENT_OFF - 1] = '-';
    hex64(c, out + TP_PARENT_OFF, TP_PARENT_LEN);
    /* Flags 01: sampled, so downstream tracers keep what we start. */
    memcpy(out + TP_FLAGS_OFF - 1, "-01", 3);
    out[MESH_TRACEPARENT_MAX] = '\0';
}

void mesh_id_new(char out[33])
{
    hex64(rng_next(), out, 16);
    hex64(rng_next(), out + 16, 16);
    out[ID_HEX_LEN] = '\0';
}
