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

#endif
