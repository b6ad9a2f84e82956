/*
 * test_crypto.c - mesh_crypto.h against the published vectors of the
 * reference (docs: Slack v0 request signing, WeCom msg_signature and the
 * AES-256-CBC echostr decryption) plus round trips and rejections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/mesh_crypto.h"
#include "mesh/mesh_err.h"

static void test_slack_vector(void **state)
{
    (void)state;
    const char *secret = "8f742231b10e8888abcd99yyyzzz85a5";
    const char *ts = "1531420618";
    const char *body =
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
        "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"
        "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
        "803a0bc887a14d10d2c447fce8b6703c";
    const void *parts[] = {"v0:", ts, ":", body};
    size_t lens[] = {3, strlen(ts), 1, strlen(body)};
    uint8_t mac[MESH_SHA256_LEN];
    assert_int_equal(mesh_hmac_sha256(secret, strlen(secret), parts, lens, 4, mac), 0);
    char hex[2 * MESH_SHA256_LEN + 1];
    mesh_hex_encode(mac, sizeof mac, hex);
    assert_string_equal(hex, "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503");
}

/* The official WeCom sample: signature over the sorted strings, then the
 * echostr decrypts to random(16) | len(4, BE) | msg | corp id. */
static void test_wecom_vector(void **state)
{
    (void)state;
    const char *echostr =
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
    /* sorted: "1409659589" < "263014780" < "P9nA..." < "QDG6eK" */
    const void *parts[] = {"1409659589", "263014780", echostr, "QDG6eK"};
    size_t lens[] = {10, 9, strlen(echostr), 6};
    char sig[2 * MESH_SHA1_LEN + 1];
    assert_int_equal(mesh_sha1_hex(parts, lens, 4, sig), 0);
    assert_string_equal(sig, "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3");

    const char *aes_b64 = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C=";
    uint8_t key[64];
    size_t klen = 0;
    assert_int_equal(mesh_base64_decode(aes_b64, strlen(aes_b64), key, sizeof key, &klen), 0);
    assert_int_equal(klen, 32);
    uint8_t ct[128], pt[128];
    size_t clen = 0, plen = 0;
    assert_int_equal(mesh_base64_decode(echostr, strlen(echostr), ct, sizeof ct, &clen), 0);
    assert_int_equal(clen, 64);
    assert_int_equal(mesh_aes256_cbc_decrypt(key, key, ct, clen, 32, pt, &plen), 0);
    /* pad byte 7: 64 - 7 = 57 = 16 + 4 + 19 + 18 */
    assert_int_equal(plen, 57);
    uint32_t n = (uint32_t)pt[16] << 24 | (uint32_t)pt[17] << 16 | (uint32_t)pt[18] << 8 | pt[19];
    assert_int_equal(n, 19);
    assert_memory_equal(pt + 20, "1616140317555161061", 19);
    assert_memory_equal(pt + 20 + 19, "wx5823bf96d3bd56c7", 18);
}

static void test_aes_round_trip_and_bad_padding(void **state)
{
    (void)state;
    uint8_t key[32], iv[16];
    assert_int_equal(mesh_random_bytes(key, sizeof key), 0);
    memcpy(iv, key, 16);
    const char *msg = "hello, 企业微信 — a message of some length";
    uint8_t ct[256], pt[256];
    size_t clen = 0, plen = 0;
    assert_int_equal(mesh_aes256_cbc_encrypt(key, iv, (const uint8_t *)msg, strlen(msg), 32, ct,
                                             sizeof ct, &clen),
                     0);
    assert_int_equal(clen % 32, 0);
    assert_true(clen > strlen(msg));
    assert_int_equal(mesh_aes256_cbc_decrypt(key, iv, ct, clen, 32, pt, &plen), 0);
    assert_int_equal(plen, strlen(msg));
    assert_memory_equal(pt, msg, plen);
    /* an exact multiple of 32 gets a whole block of padding (32) */
    uint8_t block[32] = {0};
    assert_int_equal(mesh_aes256_cbc_encrypt(key, iv, block, 32, 32, ct, sizeof ct, &clen), 0);
    assert_int_equal(clen, 64);
    /* with standard 16-byte PKCS#7 the same ciphertext is rejected (pad 32 > 16) */
    assert_int_equal(mesh_aes256_cbc_decrypt(key, iv, ct, clen, 16, pt, &plen), MESH_EINVAL);
    /* a wrong key garbles the padding: rejected (with overwhelming probability) or wrong text */
    uint8_t other[32];
    memcpy(other, key, 32);
    other[0] ^= 1;
    int rc = mesh_aes256_cbc_decrypt(other, iv, ct, clen, 32, pt, &plen);
    assert_true(rc == MESH_EINVAL || memcmp(pt, block, 32) != 0);
    /* not a multiple of 16 */
    assert_int_equal(mesh_aes256_cbc_decrypt(key, iv, ct, 15, 32, pt, &plen), MESH_EINVAL);
    assert_int_equal(mesh_aes256_cbc_encrypt(key, iv, block, 32, 32, ct, 40, &clen), MESH_ETOOBIG);
}

static void test_base64(void **state)
{
    (void)state;
    char out[64];
    size_t n = 0;
    assert_int_equal(mesh_base64_encode("foobar", 6, out, sizeof out, &n), 0);
    assert_string_equal(out, "Zm9vYmFy");
    assert_int_equal(mesh_base64_encode("fooba", 5, out, sizeof out, &n), 0);
    assert_string_equal(out, "Zm9vYmE=");
    assert_int_equal(mesh_base64_encode("f", 1, out, sizeof out, &n), 0);
    assert_string_equal(out, "Zg==");
    assert_int_equal(mesh_base64_encode("foobar", 6, out, 8, &n), MESH_ETOOBIG);
    uint8_t bin[16];
    assert_int_equal(mesh_base64_decode("Zm9vYmE=", 8, bin, sizeof bin, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(bin, "fooba", 5);
    assert_int_equal(mesh_base64_decode("Zg==", 4, bin, sizeof bin, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(mesh_base64_decode("Zm9", 3, bin, sizeof bin, &n), MESH_EINVAL);
    assert_int_equal(mesh_base64_decode("Zm!v", 4, bin, sizeof bin, &n), MESH_EINVAL);
    assert_int_equal(mesh_base64_decode("Z=9v", 4, bin, sizeof bin, &n), MESH_EINVAL);
    assert_int_equal(mesh_base64_decode("Zm9vYmFy", 8, bin, 5, &n), MESH_ETOOBIG);
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(mesh_ct_equal("abcdef", "abcdef", 6));
    assert_false(mesh_ct_equal("abcdef", "abcdeg", 6));
    assert_true(mesh_ct_equal("", "", 0));
    uint8_t mac[32];
    const void *p[] = {"x"};
    size_t l[] = {1};
    assert_int_equal(mesh_hmac_sha256("k", 1, p, l, 0, mac), MESH_EINVAL);
    assert_int_equal(mesh_hmac_sha256("k", 1, p, l, MESH_CRYPTO_PARTS + 1, mac), MESH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slack_vector),
        cmocka_unit_test(test_wecom_vector),
        cmocka_unit_test(test_aes_round_trip_and_bad_padding),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
