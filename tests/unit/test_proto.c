/*
 * test_proto.c - the frame layer (lib/mesh/proto.c): every command of both
 * sides round-trips through mesh_proto_frames/mesh_proto_decode, and every
 * malformed shape is refused with the right code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_proto.h"

#define MAX_BODY 1024

static const uint8_t s_body[] = {0x81, 0xa1, 'v', 0x01};

typedef struct {
    mesh_side_t side;
    uint8_t cmd;
    int has_service;
    int has_body;
    const char *name;
} shape_t;

static const shape_t s_shapes[] = {
    {MESH_SIDE_CLIENT, MESH_C_REQUEST, 1, 1, "REQUEST"},
    {MESH_SIDE_CLIENT, MESH_C_PARTIAL, 1, 1, "PARTIAL"},
    {MESH_SIDE_CLIENT, MESH_C_FINAL, 1, 1, "FINAL"},
    {MESH_SIDE_CLIENT, MESH_C_HEARTBEAT, 0, 0, "HEARTBEAT"},
    {MESH_SIDE_CLIENT, MESH_C_DISCONNECT, 0, 0, "DISCONNECT"},
    {MESH_SIDE_CLIENT, MESH_C_CANCEL, 1, 1, "CANCEL"},
    {MESH_SIDE_WORKER, MESH_W_READY, 1, 1, "READY"},
    {MESH_SIDE_WORKER, MESH_W_REQUEST, 0, 1, "REQUEST"},
    {MESH_SIDE_WORKER, MESH_W_PARTIAL, 0, 1, "PARTIAL"},
    {MESH_SIDE_WORKER, MESH_W_FINAL, 0, 1, "FINAL"},
    {MESH_SIDE_WORKER, MESH_W_HEARTBEAT, 0, 0, "HEARTBEAT"},
    {MESH_SIDE_WORKER, MESH_W_DISCONNECT, 0, 0, "DISCONNECT"},
    {MESH_SIDE_WORKER, MESH_W_CANCEL, 0, 1, "CANCEL"},
};
#define N_SHAPES (sizeof(s_shapes) / sizeof(s_shapes[0]))

static int build(const shape_t *s, uint8_t *cmd, mesh_frame_t *f)
{
    return mesh_proto_frames(s->side, s->cmd, s->has_service ? "llm" : NULL,
                             s->has_body ? s_body : NULL, s->has_body ? sizeof(s_body) : 0, cmd, f);
}

static void test_round_trip_every_command(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_SHAPES; k++) {
        const shape_t *s = &s_shapes[k];
        mesh_frame_t f[MESH_MAX_FRAMES];
        uint8_t cmd;
        int n = build(s, &cmd, f);
        assert_int_equal(n, 2 + s->has_service + s->has_body);
        assert_int_equal(f[0].size, MESH_PROTO_SIG_LEN);
        assert_int_equal(f[1].size, 1);

        mesh_proto_msg_t m;
        assert_int_equal(mesh_proto_decode(f, (size_t)n, s->side, MAX_BODY, &m), 0);
        assert_int_equal(m.side, s->side);
        assert_int_equal(m.cmd, s->cmd);
        if (s->has_service) {
            assert_int_equal(m.service_len, 3);
            assert_memory_equal(m.service, "llm", 3);
        } else {
            assert_null(m.service);
        }
        if (s->has_body) {
            assert_int_equal(m.body_len, sizeof(s_body));
            assert_memory_equal(m.body, s_body, sizeof(s_body));
        } else {
            assert_null(m.body);
        }
        assert_string_equal(mesh_proto_cmd_name(s->side, s->cmd), s->name);

        /* the other side's signature is refused */
        mesh_side_t other = s->side == MESH_SIDE_CLIENT ? MESH_SIDE_WORKER : MESH_SIDE_CLIENT;
        assert_int_equal(mesh_proto_decode(f, (size_t)n, other, MAX_BODY, &m), MESH_EPROTO);

        /* one frame fewer, one frame more */
        assert_int_equal(mesh_proto_decode(f, (size_t)n - 1, s->side, MAX_BODY, &m), MESH_EPROTO);
        f[n] = f[n - 1];
        assert_int_equal(mesh_proto_decode(f, (size_t)n + 1, s->side, MAX_BODY, &m), MESH_EPROTO);
    }
}

static void valid_request(mesh_frame_t *f, uint8_t *cmd)
{
    assert_int_equal(mesh_proto_frames(MESH_SIDE_CLIENT, MESH_C_REQUEST, "tools", s_body,
                                       sizeof(s_body), cmd, f),
                     4);
}

static void test_signature(void **state)
{
    (void)state;
    mesh_frame_t f[MESH_MAX_FRAMES];
    mesh_proto_msg_t m;
    uint8_t cmd;

    valid_request(f, &cmd);
    f[0].data = "MESHC02";
    assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
    f[0].data = "MESHC0";
    f[0].size = 6;
    assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
    f[0].data = "MESHC01\0";
    f[0].size = 8;
    assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
    f[0].data = "";
    f[0].size = 0;
    assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
    f[0].data = NULL;
    f[0].size = 7;
    assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
}

static void test_command_frame(void **state)
{
    (void)state;
    mesh_frame_t f[MESH_MAX_FRAMES];
    mesh_proto_msg_t m;
    uint8_t cmd;
    const uint8_t two[] = {MESH_C_REQUEST, 0x00};

    valid_request(f, &cmd);
    f[1].data = two;
    f[1].size = 2;
    assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
    f[1].size = 0;
    assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);

    /* unknown command bytes on both sides */
    const uint8_t unknown[] = {0x00, 0x07, 0x08, 0x41, 0xff};
    for (size_t k = 0; k < sizeof(unknown); k++) {
        f[1].data = &unknown[k];
        f[1].size = 1;
        assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
        for (size_t n = 2; n <= 4; n++)
            assert_int_equal(mesh_proto_decode(f, n, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
        assert_string_equal(mesh_proto_cmd_name(MESH_SIDE_CLIENT, unknown[k]), "?");
    }
    const uint8_t w_unknown[] = {0x00, 0x08};
    f[0].data = MESH_PROTO_WORKER;
    for (size_t k = 0; k < sizeof(w_unknown); k++) {
        f[1].data = &w_unknown[k];
        assert_int_equal(mesh_proto_decode(f, 3, MESH_SIDE_WORKER, MAX_BODY, &m), MESH_EPROTO);
        assert_string_equal(mesh_proto_cmd_name(MESH_SIDE_WORKER, w_unknown[k]), "?");
    }
}

static void test_frame_counts(void **state)
{
    (void)state;
    mesh_frame_t f[MESH_MAX_FRAMES + 2];
    mesh_proto_msg_t m;
    uint8_t cmd;

    valid_request(f, &cmd);
    assert_int_equal(mesh_proto_decode(f, 0, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
    assert_int_equal(mesh_proto_decode(f, 1, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
    assert_int_equal(mesh_proto_decode(NULL, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
    for (size_t k = 4; k < MESH_MAX_FRAMES + 2; k++)
        f[k] = f[3];
    assert_int_equal(mesh_proto_decode(f, MESH_MAX_FRAMES + 1, MESH_SIDE_CLIENT, MAX_BODY, &m),
                     MESH_EPROTO);
    /* a heartbeat with a stray body frame */
    uint8_t hb = MESH_C_HEARTBEAT;
    f[1].data = &hb;
    assert_int_equal(mesh_proto_decode(f, 3, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);
    assert_int_equal(mesh_proto_decode(f, 2, MESH_SIDE_CLIENT, MAX_BODY, &m), 0);
    assert_int_equal(m.cmd, MESH_C_HEARTBEAT);
}

static void test_service_names(void **state)
{
    (void)state;
    mesh_frame_t f[MESH_MAX_FRAMES];
    mesh_proto_msg_t m;
    uint8_t cmd;
    char long_name[MESH_SERVICE_MAX + 2];
    memset(long_name, 'a', sizeof(long_name));

    const struct {
        const char *s;
        size_t n;
        int rc;
    } cases[] = {
        {"", 0, MESH_EPROTO},
        {long_name, MESH_SERVICE_MAX, 0},
        {long_name, MESH_SERVICE_MAX + 1, MESH_EPROTO},
        {"LLM", 3, MESH_EPROTO},
        {"a b", 3, MESH_EPROTO},
        {"a/b", 3, MESH_EPROTO},
        {"a:b", 3, MESH_EPROTO},
        {"a\0b", 3, MESH_EPROTO},
        {"mmi.service", 11, 0},
        {"a-b_c.9", 7, 0},
        {"\xe4\xbd\xa0", 3, MESH_EPROTO},
    };
    valid_request(f, &cmd);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        f[2].data = cases[k].s;
        f[2].size = cases[k].n;
        assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), cases[k].rc);
        assert_int_equal(mesh_proto_service_valid(cases[k].s, cases[k].n), cases[k].rc == 0);
    }
    /* READY has a service frame too */
    mesh_frame_t w[4];
    assert_int_equal(mesh_proto_frames(MESH_SIDE_WORKER, MESH_W_READY, "memory", s_body,
                                       sizeof(s_body), &cmd, w),
                     4);
    w[2].data = "Memory";
    assert_int_equal(mesh_proto_decode(w, 4, MESH_SIDE_WORKER, MAX_BODY, &m), MESH_EPROTO);
}

static void test_body_size(void **state)
{
    (void)state;
    mesh_frame_t f[MESH_MAX_FRAMES];
    mesh_proto_msg_t m;
    uint8_t cmd;

    valid_request(f, &cmd);
    assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, sizeof(s_body), &m), 0);
    assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, sizeof(s_body) - 1, &m),
                     MESH_ETOOBIG);
    assert_null(m.body);
    f[3].size = 0;
    assert_int_equal(mesh_proto_decode(f, 4, MESH_SIDE_CLIENT, MAX_BODY, &m), MESH_EPROTO);

    mesh_frame_t w[3];
    assert_int_equal(
        mesh_proto_frames(MESH_SIDE_WORKER, MESH_W_FINAL, NULL, s_body, sizeof(s_body), &cmd, w),
        3);
    assert_int_equal(mesh_proto_decode(w, 3, MESH_SIDE_WORKER, 2, &m), MESH_ETOOBIG);
}

static void test_frames_invalid(void **state)
{
    (void)state;
    mesh_frame_t f[4];
    uint8_t cmd;
    assert_int_equal(
        mesh_proto_frames(MESH_SIDE_CLIENT, MESH_C_REQUEST, NULL, s_body, sizeof(s_body), &cmd, f),
        MESH_EINVAL);
    assert_int_equal(mesh_proto_frames(MESH_SIDE_CLIENT, MESH_C_REQUEST, "llm", NULL, 0, &cmd, f),
                     MESH_EINVAL);
    assert_int_equal(mesh_proto_frames(MESH_SIDE_CLIENT, MESH_C_REQUEST, "Bad Name", s_body,
                                       sizeof(s_body), &cmd, f),
                     MESH_EINVAL);
    assert_int_equal(mesh_proto_frames(MESH_SIDE_CLIENT, 0x09, NULL, NULL, 0, &cmd, f),
                     MESH_EINVAL);
    assert_int_equal(mesh_proto_frames(MESH_SIDE_WORKER, MESH_W_REQUEST, NULL, s_body, 0, &cmd, f),
                     MESH_EINVAL);
    assert_int_equal(
        mesh_proto_frames(MESH_SIDE_WORKER, MESH_W_READY, NULL, s_body, sizeof(s_body), &cmd, f),
        MESH_EINVAL);
    /* commands without service/body ignore what they are given */
    assert_int_equal(mesh_proto_frames(MESH_SIDE_WORKER, MESH_W_HEARTBEAT, "llm", s_body,
                                       sizeof(s_body), &cmd, f),
                     2);
}

/* ---- CANCEL body ---- */

static void test_cancel_body_round_trip(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mesh_cancel_encode("r-7f3a:x_1.2", &sb), 0);
    /* {"v": 1, "id": "r-7f3a:x_1.2"} byte for byte */
    const uint8_t want[] = {0x82, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0xac, 'r', '-',
                            '7',  'f',  '3', 'a',  ':',  'x', '_', '1',  '.', '2'};
    assert_int_equal(sb.size, sizeof(want));
    assert_memory_equal(sb.data, want, sizeof(want));
    char id[MESH_ID_MAX + 1];
    assert_int_equal(mesh_cancel_decode(sb.data, sb.size, id), 0);
    assert_string_equal(id, "r-7f3a:x_1.2");

    /* a 64-byte id is the longest */
    char longid[MESH_ID_MAX + 2];
    memset(longid, 'a', MESH_ID_MAX);
    longid[MESH_ID_MAX] = '\0';
    sb.size = 0;
    assert_int_equal(mesh_cancel_encode(longid, &sb), 0);
    assert_int_equal(mesh_cancel_decode(sb.data, sb.size, id), 0);
    assert_int_equal(strlen(id), MESH_ID_MAX);
    longid[MESH_ID_MAX] = 'a';
    longid[MESH_ID_MAX + 1] = '\0';
    sb.size = 0;
    assert_int_equal(mesh_cancel_encode(longid, &sb), MESH_EINVAL);
    assert_int_equal(mesh_cancel_encode("", &sb), MESH_EINVAL);
    assert_int_equal(mesh_cancel_encode("a b", &sb), MESH_EINVAL);
    assert_int_equal(mesh_cancel_encode(NULL, &sb), MESH_EINVAL);
    assert_int_equal(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_cancel_body_invalid(void **state)
{
    (void)state;
    char id[MESH_ID_MAX + 1];
    /* unknown keys are ignored; order does not matter */
    const uint8_t extra[] = {0x83, 0xa1, 'x', 0xc0, 0xa2, 'i', 'd', 0xa1, 'q', 0xa1, 'v', 0x01};
    assert_int_equal(mesh_cancel_decode(extra, sizeof(extra), id), 0);
    assert_string_equal(id, "q");

    const struct {
        const char *why;
        uint8_t b[24];
        size_t n;
    } bad[] = {
        {"not a map", {0x91, 0x01}, 2},
        {"no id", {0x81, 0xa1, 'v', 0x01}, 4},
        {"no v", {0x81, 0xa2, 'i', 'd', 0xa1, 'q'}, 6},
        {"v 2", {0x82, 0xa1, 'v', 0x02, 0xa2, 'i', 'd', 0xa1, 'q'}, 9},
        {"v 0", {0x82, 0xa1, 'v', 0x00, 0xa2, 'i', 'd', 0xa1, 'q'}, 9},
        {"empty id", {0x82, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0xa0}, 8},
        {"id with space", {0x82, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0xa2, 'a', ' '}, 10},
        {"id not a str", {0x82, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0x07}, 8},
        {"duplicate id",
         {0x83, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0xa1, 'q', 0xa2, 'i', 'd', 0xa1, 'r'},
         14},
        {"non-str key", {0x82, 0x01, 0x01, 0xa2, 'i', 'd', 0xa1, 'q'}, 8},
        {"truncated", {0x82, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0xa3, 'q'}, 9},
        {"trailing byte", {0x82, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0xa1, 'q', 0x00}, 10},
        {"0xc1", {0xc1}, 1},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        memcpy(id, "junk", 5);
        if (mesh_cancel_decode(bad[k].b, bad[k].n, id) != MESH_EPROTO)
            fail_msg("accepted: %s", bad[k].why);
        assert_string_equal(id, ""); /* nothing half-written */
    }
    assert_int_equal(mesh_cancel_decode(NULL, 0, id), MESH_EPROTO);
    assert_int_equal(mesh_cancel_decode(extra, 0, id), MESH_EPROTO);
    assert_int_equal(mesh_cancel_decode(extra, sizeof(extra), NULL), MESH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_command),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_command_frame),
        cmocka_unit_test(test_frame_counts),
        cmocka_unit_test(test_service_names),
        cmocka_unit_test(test_body_size),
        cmocka_unit_test(test_frames_invalid),
        cmocka_unit_test(test_cancel_body_round_trip),
        cmocka_unit_test(test_cancel_body_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
