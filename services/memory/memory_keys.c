/*
 * memory_keys.c - key names of a conversation (memory_keys.h).
 */
#include "memory_keys.h"

#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_msg.h"

static const char *const s_kinds[] = {
    [MEMORY_KEY_LOG] = "log",     [MEMORY_KEY_STATE] = "state", [MEMORY_KEY_IDEM] = "idem",
    [MEMORY_KEY_LEASE] = "lease", [MEMORY_KEY_CTX] = "ctx",     [MEMORY_KEY_TRACES] = "traces",
    [MEMORY_KEY_HIDEM] = "hidem",
};

int memory_key(char *out, size_t out_size, memory_key_kind_t kind, const char *conv, const char *id)
{
    if (out == NULL || conv == NULL || (int)kind < 0 || kind > MEMORY_KEY_HIDEM ||
        !mesh_conv_id_valid(conv, strlen(conv)))
        return MESH_EINVAL;
    int n;
    if (kind == MEMORY_KEY_IDEM || kind == MEMORY_KEY_HIDEM) {
        if (id == NULL || id[0] == '\0' || strlen(id) > MESH_ID_MAX)
            return MESH_EINVAL;
        n = snprintf(out, out_size, MEMORY_KEY_PREFIX "{%s}:%s:%s", conv, s_kinds[kind], id);
    } else {
        n = snprintf(out, out_size, MEMORY_KEY_PREFIX "{%s}:%s", conv, s_kinds[kind]);
    }
    if (n < 0 || (size_t)n >= out_size)
        return MESH_EINVAL;
    return n;
}
