/*
 * fuzz_wecom.c - the WeCom (企业微信) callback's decoders
 * (services/gateway/channel_wecom.c): the XML field reader
 * (channel_xml_field), the decrypt path of <Encrypt> / echostr
 * (wecom_decrypt: base64, AES-256-CBC with WeCom's 32-byte PKCS#7 rule, the
 * random(16) | msg_len(4) | msg | corp id frame), the msg_signature check
 * (sig_ok), the query parameters (query_value: percent-decoding), the
 * base64/AES primitives under them (lib/mesh/crypto.c), and channel_split
 * (channels.c), which cuts an answer for the platforms.
 *
 * wecom_decrypt and sig_ok are static, so this file includes
 * channel_wecom.c; the gateway functions its handlers call come from
 * gateway_core (linked, not instrumented, never called here). The keys are
 * those of the official sample (token QDG6eK, corp id wx5823bf96d3bd56c7).
 *
 * Input: byte 0: bits 0-5 a short buffer size, bit 6 mode, bit 7 AES block
 * (16/32) of the round trip. Mode 0: the rest is a callback body (the outer
 * XML); its <Encrypt> value (else the whole body) is decrypted, and the
 * decrypted message's fields are read. Mode 1: the rest is the inner message;
 * the target encrypts it the documented way, wraps it in <xml><Encrypt>, and
 * runs the same path. Both modes also try the rest as a query string, and as
 * base64, ciphertext and plaintext of the primitives.
 *
 * Invariants (abort on violation):
 *   - channel_xml_field returns 1/0/-1 and writes a NUL-terminated value
 *     within size (buffers allocated exactly); a smaller buffer gives -1 or
 *     the same value; "absent" does not depend on the buffer size;
 *   - wecom_decrypt returns 0/MESH_EINVAL; in mode 1 it returns 0 and gives
 *     back exactly the message that was encrypted; another corp id is refused;
 *   - sig_ok accepts the sample's signature and never crashes on any input;
 *   - query_value returns 1/0, a NUL-terminated value within size; a
 *     smaller buffer gives 0 or the same value;
 *   - mesh_base64_decode: 0/EINVAL/ETOOBIG, fits 3*len/4 bytes, re-encodes to
 *     base64 decoding to the same bytes, a smaller buffer gives ETOOBIG or the
 *     same bytes; mesh_aes256_cbc_decrypt: 0/EINVAL, strips 1..32 pad bytes;
 *     encrypt then decrypt is the identity;
 *   - channel_split: parts of 1..max code points (bytes, max >= 4) that end
 *     on UTF-8 boundaries and cover the text.
 */
#include "../services/gateway/channel_wecom.c"

#include <stdint.h>

static const char SAMPLE_KEY_B64[] = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C=";
static const char SAMPLE_CORP[] = "wx5823bf96d3bd56c7";
static const char SAMPLE_TOKEN[] = "QDG6eK";

static gateway_channels_t s_ch;       /* only cfg is read by the functions fuzzed */
static gateway_channels_t s_other_ch; /* same key, another corp id */

static const char *const TAGS[] = {"Encrypt", "ToUserName", "FromUserName", "MsgType",   "Content",
                                   "MsgId",   "AgentID",    "CreateTime",   "AgentType", "Event"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    size_t n = 0;
    if (mesh_base64_decode(SAMPLE_KEY_B64, strlen(SAMPLE_KEY_B64), s_ch.cfg.wecom_aes_key,
                           sizeof(s_ch.cfg.wecom_aes_key), &n) != 0 ||
        n != MESH_AES256_KEY)
        abort();
    s_ch.cfg.wecom_key_ok = true;
    s_ch.cfg.wecom_corp_id = (char *)SAMPLE_CORP;
    s_ch.cfg.wecom_token = (char *)SAMPLE_TOKEN;
    s_other_ch = s_ch;
    s_other_ch.cfg.wecom_corp_id = (char *)"wx0000000000000000";

    /* The official vector must pass, or every invariant below is moot. */
    const char *echostr =
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7"
        "OaBO+FZXvnaqQ==";
    char *msg = NULL;
    size_t ml = 0;
    if (!sig_ok(&s_ch, "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
                echostr) ||
        wecom_decrypt(&s_ch, echostr, strlen(echostr), &msg, &ml) != 0 ||
        strcmp(msg, "1616140317555161061") != 0)
        abort();
    free(msg);
    return 0;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

/* ---- the XML reader ---- */

static void xml_fields(const char *x, size_t n, size_t small)
{
    for (size_t t = 0; t < sizeof(TAGS) / sizeof(TAGS[0]); t++) {
        size_t size = strcmp(TAGS[t], "Content") == 0   ? MESH_TEXT_MAX + 1
                      : strcmp(TAGS[t], "Encrypt") == 0 ? WECOM_ENCRYPT_MAX + 1
                                                        : WECOM_FIELD_MAX;
        char *out = xmalloc(size);
        int r = channel_xml_field(x, n, TAGS[t], out, size);
        if (r < -1 || r > 1 || (r == 1 && memchr(out, '\0', size) == NULL))
            abort();
        char *part = xmalloc(small);
        int r2 = channel_xml_field(x, n, TAGS[t], part, small);
        if (r2 < -1 || r2 > 1 || (r2 == 1 && (r != 1 || strcmp(part, out) != 0)) ||
            (r == 0 && small > 0 && r2 != 0))
            abort();
        free(part);
        free(out);
    }
}

/* ---- the decrypt path ---- */

/* Decrypt b64 and read the message's fields; returns wecom_decrypt's status. */
static int decrypt_path(const char *b64, size_t len, size_t small, char **msg_out, size_t *ml_out)
{
    char *msg = NULL;
    size_t ml = 0;
    int rc = wecom_decrypt(&s_ch, b64, len, &msg, &ml);
    if (rc != 0 && rc != MESH_EINVAL && rc != MESH_ENOMEM)
        abort();
    if (rc == 0) {
        if (msg == NULL || msg[ml] != '\0')
            abort();
        char *other = NULL;
        size_t ol = 0;
        if (wecom_decrypt(&s_other_ch, b64, len, &other, &ol) != MESH_EINVAL || other != NULL)
            abort();
        xml_fields(msg, ml, small);
    } else if (msg != NULL) {
        abort();
    }
    *msg_out = msg;
    *ml_out = ml;
    return rc;
}

/* The inner message msg encrypted and wrapped as WeCom sends it; new string. */
static char *wrap(const uint8_t *msg, size_t n)
{
    size_t corp = strlen(SAMPLE_CORP);
    size_t pl = 20 + n + corp;
    uint8_t *plain = xmalloc(pl);
    for (size_t i = 0; i < 16; i++)
        plain[i] = (uint8_t)('a' + i); /* the "random" prefix */
    plain[16] = (uint8_t)(n >> 24);
    plain[17] = (uint8_t)(n >> 16);
    plain[18] = (uint8_t)(n >> 8);
    plain[19] = (uint8_t)n;
    if (n > 0)
        memcpy(plain + 20, msg, n);
    memcpy(plain + 20 + n, SAMPLE_CORP, corp);
    uint8_t *ct = xmalloc(pl + 32);
    size_t cl = 0;
    if (mesh_aes256_cbc_encrypt(s_ch.cfg.wecom_aes_key, s_ch.cfg.wecom_aes_key, plain, pl, 32, ct,
                                pl + 32, &cl) != 0)
        abort();
    size_t bcap = 4 * ((cl + 2) / 3) + 1;
    char *b64 = xmalloc(bcap);
    size_t bl = 0;
    if (mesh_base64_encode(ct, cl, b64, bcap, &bl) != 0)
        abort();
    static const char pre[] = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
                              "<Encrypt><![CDATA[";
    static const char post[] = "]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>";
    char *body = xmalloc(sizeof(pre) + bl + sizeof(post));
    memcpy(body, pre, sizeof(pre) - 1);
    memcpy(body + sizeof(pre) - 1, b64, bl);
    memcpy(body + sizeof(pre) - 1 + bl, post, sizeof(post));
    free(b64);
    free(ct);
    free(plain);
    return body;
}

static void wecom(const uint8_t *s, size_t n, size_t small, bool inner)
{
    char *body = inner ? wrap(s, n) : NULL;
    const char *x = inner ? body : (const char *)s;
    size_t xl = inner ? strlen(body) : n;

    xml_fields(x, xl, small);
    char *enc = xmalloc(WECOM_ENCRYPT_MAX + 1);
    int r = channel_xml_field(x, xl, "Encrypt", enc, WECOM_ENCRYPT_MAX + 1);
    char *msg = NULL;
    size_t ml = 0;
    int rc;
    if (r == 1)
        rc = decrypt_path(enc, strlen(enc), small, &msg, &ml);
    else
        rc = decrypt_path(x, xl, small, &msg, &ml);
    if (inner && (r != 1 || rc != 0 || ml != n || (n > 0 && memcmp(msg, s, n) != 0)))
        abort();
    /* Any signature text (the first bytes): never a crash. */
    char sig[2 * MESH_SHA1_LEN + 2];
    size_t sl = xl < sizeof(sig) - 1 ? xl : sizeof(sig) - 1;
    memcpy(sig, x, sl);
    sig[sl] = '\0';
    (void)sig_ok(&s_ch, sig, "1409659589", "263014780", r == 1 ? enc : "");
    free(msg);
    free(enc);
    free(body);
}

/* ---- the callback's query string (percent-decoded parameters) ---- */

static void query(const char *q, size_t n, size_t small)
{
    static const struct {
        const char *key;
        size_t size; /* as channel_wecom_inbound / verify_url use them */
    } P[] = {
        {"msg_signature", 64}, {"timestamp", 32}, {"nonce", 128}, {"echostr", WECOM_PARAM_MAX}};
    gateway_http_req_t req;
    memset(&req, 0, sizeof(req));
    req.query = q;
    req.query_len = n;
    for (size_t i = 0; i < sizeof(P) / sizeof(P[0]); i++) {
        char *out = xmalloc(P[i].size);
        int r = query_value(&req, P[i].key, out, P[i].size);
        if ((r != 0 && r != 1) || (r == 1 && strlen(out) >= P[i].size))
            abort();
        size_t sz = small < P[i].size ? small : P[i].size;
        char *part = xmalloc(sz);
        int r2 = query_value(&req, P[i].key, part, sz);
        if ((r2 != 0 && r2 != 1) || (r2 == 1 && (r != 1 || strcmp(part, out) != 0)))
            abort();
        free(part);
        free(out);
    }
}

/* ---- the primitives ---- */

static void decrypt_raw(const uint8_t *ct, size_t n)
{
    if (n == 0 || n % 16 != 0)
        return;
    uint8_t *pt = xmalloc(n);
    size_t pl = 0;
    int rc =
        mesh_aes256_cbc_decrypt(s_ch.cfg.wecom_aes_key, s_ch.cfg.wecom_aes_key, ct, n, 32, pt, &pl);
    if (rc != 0 && rc != MESH_EINVAL)
        abort();
    if (rc == 0 && (pl >= n || n - pl > 32))
        abort();
    free(pt);
}

static void base64(const char *s, size_t n, size_t small)
{
    size_t cap = n / 4 * 3;
    uint8_t *out = xmalloc(cap);
    size_t ol = 0;
    int rc = mesh_base64_decode(s, n, out, cap, &ol);
    if (rc != 0 && rc != MESH_EINVAL && rc != MESH_ETOOBIG)
        abort();
    if (rc == 0) {
        if (ol > cap)
            abort();
        size_t ecap = 4 * ((ol + 2) / 3) + 1;
        char *enc = xmalloc(ecap);
        size_t el = 0;
        if (mesh_base64_encode(out, ol, enc, ecap, &el) != 0 || el != ecap - 1)
            abort();
        uint8_t *back = xmalloc(el / 4 * 3);
        size_t bl = 0;
        if (mesh_base64_decode(enc, el, back, el / 4 * 3, &bl) != 0 || bl != ol ||
            (ol > 0 && memcmp(back, out, ol) != 0))
            abort();
        free(back);
        free(enc);

        size_t sz = small % (cap + 1);
        uint8_t *part = xmalloc(sz);
        size_t pl = 0;
        int rc2 = mesh_base64_decode(s, n, part, sz, &pl);
        if (rc2 != MESH_ETOOBIG && (rc2 != 0 || pl != ol || (ol > 0 && memcmp(part, out, ol) != 0)))
            abort();
        free(part);
        decrypt_raw(out, ol);
    }
    free(out);
}

static void roundtrip(const uint8_t *p, size_t n, size_t block)
{
    size_t cap = n + block;
    uint8_t *ct = xmalloc(cap);
    size_t cl = 0;
    if (mesh_aes256_cbc_encrypt(s_ch.cfg.wecom_aes_key, s_ch.cfg.wecom_aes_key, p, n, block, ct,
                                cap, &cl) != 0 ||
        cl % block != 0 || cl <= n || cl > cap)
        abort();
    uint8_t *pt = xmalloc(cl);
    size_t pl = 0;
    if (mesh_aes256_cbc_decrypt(s_ch.cfg.wecom_aes_key, s_ch.cfg.wecom_aes_key, ct, cl, block, pt,
                                &pl) != 0 ||
        pl != n || (n > 0 && memcmp(pt, p, n) != 0))
        abort();
    free(pt);
    free(ct);
}

/* ---- channel_split ---- */

static void split(const char *s, size_t n, size_t max, bool bytes)
{
    if (!mesh_utf8_valid(s, n) || (bytes && max < 4) || max == 0)
        return;
    for (size_t at = 0; at < n;) {
        size_t k = channel_split(s + at, n - at, max, bytes);
        if (k == 0 || k > n - at || !mesh_utf8_valid(s + at, k) ||
            (bytes ? k > max : mesh_utf8_len(s + at, k) > max))
            abort();
        at += k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > WECOM_ENCRYPT_MAX / 2)
        return 0;
    size_t small = data[0] & 0x3f;
    bool inner = (data[0] & 0x40) != 0;
    const uint8_t *s = data + 1;
    size_t n = size - 1;

    wecom(s, n, small, inner);
    query((const char *)s, n, small);
    base64((const char *)s, n, small);
    decrypt_raw(s, n);
    roundtrip(s, n, (data[0] & 0x80) ? 32 : 16);
    split((const char *)s, n, small + 1, false);
    split((const char *)s, n, small + 4, true);
    return 0;
}
