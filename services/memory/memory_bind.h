/*
 * memory_bind.h - the memory ops of the chat channels (docs/memory.md,
 * "Channels"; docs/channels.md):
 *
 *   conv.bind       {channel, to}                 the conversation answers on this channel:
 *                                                 state fields channel, channel_to (JSON)
 *   delivery.record {channel, to, text, reason}   an answer could not be delivered: a note
 *                                                 {role: "note", event: "undelivered", ...}
 *                                                 in the log + a summary on the failed list
 *   delivery.list   {limit}                       the failed list, newest first: {items, total}
 *
 * Each is one EVAL (delivery.record: one per Cluster slot, the conversation's
 * then mesh:{deliveries}:failed). Internal to the memory service.
 */
#ifndef MEMORY_BIND_H
#define MEMORY_BIND_H

#include <stdbool.h>
#include <stddef.h>

#include "memory_ops.h"
#include "mesh/mesh_redis.h"

#define MEMORY_BIND_TO_MAX           1024  /* compact JSON of `to`, bytes */
#define MEMORY_BIND_REASON_MAX       500   /* delivery.record reason, bytes */
#define MEMORY_FAILED_KEEP           10000 /* entries kept on mesh:{deliveries}:failed */
#define MEMORY_FAILED_TEXT_MAX       2000  /* text bytes kept in a failed-list summary */
#define MEMORY_FAILED_LIST_DEF       50    /* delivery.list limit default */
#define MEMORY_FAILED_LIST_MAX       500   /* delivery.list limit maximum */
#define MEMORY_DELIVERIES_FAILED_KEY "mesh:{deliveries}:failed"

/* true for conv.bind, delivery.record and delivery.list. */
bool memory_bind_is_op(const char *op);

/*
 * Run one of them (req->conv already validated when present). Same contract
 * as memory_ops_call: 0 and done called once later, or MESH_E* with err
 * (done never called).
 */
int memory_bind_call(mesh_redis_t *redis, const memory_ops_cfg_t *cfg, const memory_req_t *req,
                     uint64_t now_ms, memory_ops_done_fn done, void *arg, char *err,
                     size_t err_size);

#endif
