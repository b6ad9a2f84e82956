/*
 * fuzz_proto.c - libFuzzer target for mesh_proto_decode.
 *
 * Input layout (TLV-split multipart message):
 *   byte 0      max_body selector (max_body = byte * 4)
 *   then frames, each [len lo][len hi][len bytes]; a frame whose declared
 *   length overruns the input takes what is left. At most
 *   MESH_MAX_FRAMES + 2 frames, so the "too many frames" path is reached.
 * Each message is decoded as both sides.
 *
 * Invariants on success: the frame count is the command's, the service is
 * valid, the body is non-empty and within max_body, every view points into
 * the frames it came from, and mesh_proto_frames() rebuilds the same frames.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_proto.h"

#define FUZZ_FRAMES_MAX (MESH_MAX_FRAMES + 2)

static void check(const mesh_frame_t *f, size_t n, mesh_side_t side, size_t max_body)
{
    mesh_proto_msg_t m;
    int rc = mesh_proto_decode(f, n, side, max_body, &m);
    if (rc != 0) {
        if (rc != MESH_EPROTO && rc != MESH_ETOOBIG)
            abort();
        return;
    }
    size_t want = 2 + (m.service != NULL) + (m.body != NULL);
    if (n != want || m.side != side)
        abort();
    if (strcmp(mesh_proto_cmd_name(side, m.cmd), "?") == 0)
        abort();
    if (m.service != NULL &&
        (m.service != f[2].data || !mesh_proto_service_valid(m.service, m.service_len)))
        abort();
    if (m.body != NULL && (m.body != f[n - 1].data || m.body_len == 0 || m.body_len > max_body ||
                           m.body_len != f[n - 1].size))
        abort();

    /* rebuild: the service frame must be a C string for mesh_proto_frames */
    char service[MESH_SERVICE_MAX + 1] = "";
    if (m.service != NULL) {
        memcpy(service, m.service, m.service_len);
        service[m.service_len] = '\0';
    }
    mesh_frame_t out[4];
    uint8_t cmd;
    int k = mesh_proto_frames(side, m.cmd, m.service != NULL ? service : NULL, m.body, m.body_len,
                              &cmd, out);
    if (k != (int)n)
        abort();
    for (int i = 0; i < k; i++) {
        if (out[i].size != f[i].size || memcmp(out[i].data, f[i].data, f[i].size) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mesh_frame_t f[FUZZ_FRAMES_MAX];
    size_t n = 0;

    if (size < 1)
        return 0;
    size_t max_body = (size_t)data[0] * 4;
    size_t pos = 1;
    while (pos < size && n < FUZZ_FRAMES_MAX) {
        size_t len = data[pos];
        if (pos + 1 < size)
            len |= (size_t)data[pos + 1] << 8;
        pos += 2;
        if (pos > size)
            pos = size;
        if (len > size - pos)
            len = size - pos;
        /* zero-length frames get a NULL pointer sometimes, as zmq_msg_data may */
        f[n].data = len > 0 ? data + pos : ((n & 1) ? NULL : data + pos);
        f[n].size = len;
        n++;
        pos += len;
    }
    check(f, n, MESH_SIDE_CLIENT, max_body);
    check(f, n, MESH_SIDE_WORKER, max_body);
    return 0;
}
