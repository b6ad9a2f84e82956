/*
 * crypto.c - HMAC, SHA-1, base64, AES-256-CBC and constant-time compare
 * (mesh_crypto.h) over OpenSSL libcrypto's EVP interfaces.
 */
#include "mesh/mesh_crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#include "mesh/mesh_err.h"

int mesh_hmac_sha256(const void *key, size_t key_len, const void *const parts[],
                     const size_t lens[], size_t n, uint8_t out[MESH_SHA256_LEN])
{
    if (!key || !parts || !lens || n == 0 || n > MESH_CRYPTO_PARTS || key_len > INT32_MAX)
        return MESH_EINVAL;
    int rc = MESH_EINTERNAL;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t out_len = 0;
    if (!ctx || !EVP_MAC_init(ctx, key, key_len, params))
        goto cleanup;
    for (size_t i = 0; i < n; i++)
        if (lens[i] > 0 && !EVP_MAC_update(ctx, parts[i], lens[i]))
            goto cleanup;
    if (!EVP_MAC_final(ctx, out, &out_len, MESH_SHA256_LEN) || out_len != MESH_SHA256_LEN)
        goto cleanup;
    rc = 0;
cleanup:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

int mesh_sha1_hex(const void *const parts[], const size_t lens[], size_t n,
                  char out[2 * MESH_SHA1_LEN + 1])
{
    if (!parts || !lens || n == 0 || n > MESH_CRYPTO_PARTS)
        return MESH_EINVAL;
    int rc = MESH_EINTERNAL;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL))
        goto cleanup;
    for (size_t i = 0; i < n; i++)
        if (lens[i] > 0 && !EVP_DigestUpdate(ctx, parts[i], lens[i]))
            goto cleanup;
    if (!EVP_DigestFinal_ex(ctx, md, &md_len) || md_len != MESH_SHA1_LEN)
        goto cleanup;
    mesh_hex_encode(md, MESH_SHA1_LEN, out);
    rc = 0;
cleanup:
    EVP_MD_CTX_free(ctx);
    return rc;
}

void mesh_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

int mesh_ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return diff == 0;
}

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int mesh_base64_encode(const void *in, size_t len, char *out, size_t out_size, size_t *out_len)
{
    const uint8_t *p = in;
    size_t need = (len + 2) / 3 * 4;
    if (out_size < need + 1)
        return MESH_ETOOBIG;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[o++] = s_b64[(v >> 18) & 63];
        out[o++] = s_b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? s_b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? s_b64[v & 63] : '=';
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return 0;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int mesh_base64_decode(const char *in, size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    if (!in || len % 4 != 0)
        return MESH_EINVAL;
    size_t pad = 0;
    if (len > 0 && in[len - 1] == '=')
        pad++;
    if (len > 1 && in[len - 2] == '=')
        pad++;
    size_t n = len / 4 * 3 - pad;
    if (n > out_size)
        return MESH_ETOOBIG;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int v[4];
        for (int k = 0; k < 4; k++) {
            char c = in[i + (size_t)k];
            if (c == '=' && last && k >= 4 - (int)pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_val(c);
            if (v[k] < 0)
                return MESH_EINVAL;
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        uint8_t b[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        size_t take = last ? 3 - pad : 3;
        memcpy(out + o, b, take);
        o += take;
    }
    if (out_len)
        *out_len = o;
    return 0;
}

/* One AES-256-CBC pass without OpenSSL's own padding. */
static int aes_cbc(int enc, const uint8_t *key, const uint8_t *iv, const uint8_t *in, size_t len,
                   uint8_t *out)
{
    int rc = MESH_EINTERNAL;
    int n1 = 0, n2 = 0;
    if (len > INT32_MAX)
        return MESH_EINVAL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx || !EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv, enc) ||
        !EVP_CIPHER_CTX_set_padding(ctx, 0) || !EVP_CipherUpdate(ctx, out, &n1, in, (int)len) ||
        !EVP_CipherFinal_ex(ctx, out + n1, &n2) || (size_t)(n1 + n2) != len)
        goto cleanup;
    rc = 0;
cleanup:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int mesh_aes256_cbc_decrypt(const uint8_t key[MESH_AES256_KEY], const uint8_t iv[MESH_AES_IV],
                            const uint8_t *in, size_t len, size_t block, uint8_t *out,
                            size_t *out_len)
{
    if (!key || !iv || !in || !out || len == 0 || len % 16 != 0 || block == 0 || block > 255)
        return MESH_EINVAL;
    int rc = aes_cbc(0, key, iv, in, len, out);
    if (rc != 0)
        return rc;
    size_t pad = out[len - 1];
    if (pad == 0 || pad > block || pad > len)
        return MESH_EINVAL;
    uint8_t bad = 0;
    for (size_t i = len - pad; i < len; i++)
        bad |= (uint8_t)(out[i] ^ (uint8_t)pad);
    if (bad)
        return MESH_EINVAL;
    *out_len = len - pad;
    return 0;
}

int mesh_aes256_cbc_encrypt(const uint8_t key[MESH_AES256_KEY], const uint8_t iv[MESH_AES_IV],
                            const uint8_t *in, size_t len, size_t block, uint8_t *out,
                            size_t out_size, size_t *out_len)
{
    if (!key || !iv || (!in && len) || !out || (block != 16 && block != 32))
        return MESH_EINVAL;
    size_t pad = block - len % block;
    size_t total = len + pad;
    if (total < len || out_size < total)
        return MESH_ETOOBIG;
    if (len)
        memmove(out, in, len);
    memset(out + len, (int)pad, pad);
    int rc = aes_cbc(1, key, iv, out, total, out);
    if (rc != 0)
        return rc;
    *out_len = total;
    return 0;
}

int mesh_random_bytes(uint8_t *out, size_t len)
{
    if (len > INT32_MAX)
        return MESH_EINVAL;
    return RAND_bytes(out, (int)len) == 1 ? 0 : MESH_EINTERNAL;
}
