/*
 * conv_seq.h - sequence numbers of the messages a memory conv.get returned.
 */
#ifndef GATEWAY_CONV_SEQ_H
#define GATEWAY_CONV_SEQ_H

#include <jansson.h>

/*
 * The sequence number of the newest message in a conv.get reply's data
 * {state, messages, total}: the state's "seq" (every message ever appended
 * to the conversation, 1-based; it keeps growing after the log is trimmed to
 * MESH_HISTORY_MAX, while positions stop), or "total" (the log's length) for
 * a conversation older than "seq", whichever is larger. The i-th of the n
 * messages returned then has number last - n + 1 + i.
 */
json_int_t gateway_conv_last_seq(const json_t *data);

#endif
