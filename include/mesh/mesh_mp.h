/*
 * mesh_mp.h - msgpack <-> jansson, behind a pre-scan.
 *
 * A ZeroMQ frame is one complete msgpack object. Before msgpack-c sees it,
 * mesh_mp_prescan() walks the bytes without allocating and refuses: declared
 * str/bin/ext lengths larger than the bytes left, array/map counts larger
 * than the bytes left could hold (each element takes at least one byte),
 * nesting deeper than MESH_MP_MAX_DEPTH, more than MESH_MP_MAX_ITEMS objects,
 * reserved byte 0xc1, and trailing bytes after the object. msgpack-c would
 * otherwise reserve memory for whatever count a peer declares.
 *
 * The in-memory value model is jansson's json_t: maps must have string keys,
 * bin and ext are refused, unsigned integers above INT64_MAX are refused.
 */
#ifndef MESH_MP_H
#define MESH_MP_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

/* 0 if buf[0..len) is exactly one well-formed object within limits, else MESH_EPROTO
 * (MESH_ETOOBIG when only a limit was exceeded). */
int mesh_mp_prescan(const void *buf, size_t len);

/*
 * Decode one object into a new json_t (caller owns, json_decref). Runs the
 * pre-scan first. Returns 0, MESH_EPROTO (malformed / unsupported type),
 * MESH_ETOOBIG or MESH_ENOMEM; *out is NULL on error.
 */
int mesh_mp_decode(const void *buf, size_t len, json_t **out);

/* Convert an already unpacked msgpack object (borrowed) into a new json_t. */
int mesh_mp_to_json(const msgpack_object *obj, int depth, json_t **out);

/* Append the msgpack encoding of v to pk. 0 or MESH_EINVAL (NULL v encodes nil). */
int mesh_mp_pack_json(msgpack_packer *pk, const json_t *v);

/* Helpers for packing map entries with string keys. */
void mesh_mp_pack_str(msgpack_packer *pk, const char *s);
void mesh_mp_pack_strn(msgpack_packer *pk, const char *s, size_t n);

/* ------------------------------------------------------------------------
 * Added by the core engineer: a cursor over raw msgpack bytes, so hot-path
 * decoders (mesh_msg.c) can read a body's top-level map without building
 * msgpack objects. mesh_mp_prescan() is written with it, so the two always
 * agree on the format.
 * ------------------------------------------------------------------------ */
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    MESH_MP_NIL,
    MESH_MP_BOOL,
    MESH_MP_UINT,  /* any integer >= 0, whatever its wire format */
    MESH_MP_INT,   /* any integer < 0 */
    MESH_MP_FLOAT, /* float32 or float64, widened */
    MESH_MP_STR,
    MESH_MP_BIN,
    MESH_MP_EXT,
    MESH_MP_ARRAY,
    MESH_MP_MAP,
} mesh_mp_kind_t;

typedef struct {
    mesh_mp_kind_t kind;
    bool b;          /* BOOL */
    uint64_t u;      /* UINT value; STR/BIN/EXT byte length; ARRAY items; MAP pairs */
    int64_t i;       /* INT value */
    double f;        /* FLOAT value */
    const char *ptr; /* STR/BIN/EXT payload (borrowed from the buffer) */
    int8_t ext_type; /* EXT */
} mesh_mp_item_t;

/*
 * Read one header at buf[*pos] and advance *pos past it (and past the
 * payload of STR/BIN/EXT; ARRAY/MAP elements follow the header). 0, or
 * MESH_EPROTO when the header or payload is truncated or the byte is 0xc1.
 */
int mesh_mp_read(const void *buf, size_t len, size_t *pos, mesh_mp_item_t *it);

/* Advance *pos past one whole object (containers included). 0 or MESH_EPROTO. */
int mesh_mp_skip(const void *buf, size_t len, size_t *pos);

/*
 * Read the object at *pos straight into a new json_t (no msgpack-c objects,
 * no zone) and advance *pos past it. Same value model and results as
 * mesh_mp_to_json; depth counts the containers around the object. Meant for
 * buffers that passed mesh_mp_prescan. 0, MESH_EPROTO, MESH_ETOOBIG or
 * MESH_ENOMEM; *out is NULL on error.
 */
int mesh_mp_read_json(const void *buf, size_t len, size_t *pos, int depth, json_t **out);

#endif
