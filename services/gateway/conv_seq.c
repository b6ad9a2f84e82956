/*
 * conv_seq.c - sequence numbers of conv.get messages (conv_seq.h).
 */
#include "conv_seq.h"

#include <errno.h>
#include <stdlib.h>

json_int_t gateway_conv_last_seq(const json_t *data)
{
    json_int_t last = json_integer_value(json_object_get(data, "total"));
    const json_t *state = json_object_get(data, "state");
    const char *text = json_string_value(json_object_get(state, "seq"));
    if (text != NULL) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (errno == 0 && end != text && *end == '\0' && v > last)
            last = (json_int_t)v;
    }
    return last;
}
