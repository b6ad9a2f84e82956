/*
 * mesh_crypto.h - the few primitives the chat channels need (over OpenSSL
 * libcrypto): HMAC-SHA256 (Slack v0 signatures, the generic webhook),
 * SHA-1 hex (WeCom msg_signature), base64, AES-256-CBC with PKCS#7 padding
 * on a chosen block size (WeCom pads to 32-byte blocks), hex and a
 * constant-time compare for every secret comparison.
 *
 * All functions are pure (no global state besides OpenSSL's) and bounded by
 * their output sizes: nothing is allocated on behalf of the caller.
 */
#ifndef MESH_CRYPTO_H
#define MESH_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MESH_SHA256_LEN   32
#define MESH_SHA1_LEN     20
#define MESH_AES256_KEY   32
#define MESH_AES_IV       16
#define MESH_CRYPTO_PARTS 8 /* parts of one multi-part hash/HMAC */

/*
 * HMAC-SHA256 of the concatenation parts[0] .. parts[n-1] (lens[i] bytes
 * each; 1 <= n <= MESH_CRYPTO_PARTS) with key. 0 or MESH_EINVAL / MESH_EINTERNAL.
 */
int mesh_hmac_sha256(const void *key, size_t key_len, const void *const parts[],
                     const size_t lens[], size_t n, uint8_t out[MESH_SHA256_LEN]);

/* SHA-1 of the concatenated parts, as 40 lowercase hex digits + NUL. 0 or MESH_E*. */
int mesh_sha1_hex(const void *const parts[], const size_t lens[], size_t n,
                  char out[2 * MESH_SHA1_LEN + 1]);

/* Lowercase hex of in[0..len) into out (2*len+1 bytes, NUL-terminated). */
void mesh_hex_encode(const uint8_t *in, size_t len, char *out);

/* 1 when a[0..len) equals b[0..len), in time independent of the contents. */
int mesh_ct_equal(const void *a, const void *b, size_t len);

/* Base64 (standard alphabet, '=' padding) of in into out (NUL-terminated).
 * 0, or MESH_ETOOBIG when out_size < 4*ceil(len/3)+1. *out_len the length. */
int mesh_base64_encode(const void *in, size_t len, char *out, size_t out_size, size_t *out_len);

/*
 * Decode standard base64 (padding required, no whitespace). 0, MESH_EINVAL
 * (not base64) or MESH_ETOOBIG (out_size too small: needs 3*len/4).
 */
int mesh_base64_decode(const char *in, size_t len, uint8_t *out, size_t out_size, size_t *out_len);

/*
 * AES-256-CBC decrypt in[0..len) (a multiple of 16) and remove PKCS#7
 * padding whose pad length may be 1..block (block 16 = standard, 32 =
 * WeCom's rule). out needs len bytes. 0, MESH_EINVAL (bad length, bad
 * padding) or MESH_EINTERNAL.
 */
int mesh_aes256_cbc_decrypt(const uint8_t key[MESH_AES256_KEY], const uint8_t iv[MESH_AES_IV],
                            const uint8_t *in, size_t len, size_t block, uint8_t *out,
                            size_t *out_len);

/*
 * PKCS#7-pad in[0..len) to a multiple of block (16 or 32; 1..block pad
 * bytes) and AES-256-CBC encrypt it into out. 0, MESH_EINVAL or
 * MESH_ETOOBIG (out_size < the padded length).
 */
int mesh_aes256_cbc_encrypt(const uint8_t key[MESH_AES256_KEY], const uint8_t iv[MESH_AES_IV],
                            const uint8_t *in, size_t len, size_t block, uint8_t *out,
                            size_t out_size, size_t *out_len);

/* Fill out[0..len) with cryptographically random bytes. 0 or MESH_EINTERNAL. */
int mesh_random_bytes(uint8_t *out, size_t len);

#endif
