/*
 * memory_reply.h - turn the scripts' Redis replies into the ops' reply data.
 *
 * A reply from Redis is input like any other: every element's type and the
 * array shapes are checked before use. Status mapping:
 *   Redis error reply (OOM, script error, ...)  -> MESH_EUNAVAIL
 *   reply of an unexpected shape                -> MESH_EINTERNAL
 *   {"busy", ...}                               -> MESH_EBUSY
 *   {"lost", ...} (turn.end)                    -> MESH_ESTATE "lease lost"
 *   {"none"}                                    -> MESH_ENOTFOUND
 * A stored message that is not a JSON object (hand-edited key, foreign
 * writer) is skipped with one sanitised log line rather than failing the
 * whole conversation.
 */
#ifndef MEMORY_REPLY_H
#define MEMORY_REPLY_H

#include <jansson.h>
#include <stddef.h>

struct redisReply;

/* Each returns 0 with *data set (a new reference) or a MESH_E* with err filled. */
int memory_reply_begin(const struct redisReply *r, json_t **data, char *err, size_t err_size);
int memory_reply_end(const struct redisReply *r, json_t **data, char *err, size_t err_size);
int memory_reply_abort(const struct redisReply *r, json_t **data, char *err, size_t err_size);
int memory_reply_get(const struct redisReply *r, const char *conv, json_t **data, char *err,
                     size_t err_size);
/* lease.renew: data {held: bool} plus {holder: str} when another owner holds the lease. */
int memory_reply_renew(const struct redisReply *r, json_t **data, char *err, size_t err_size);

#endif
