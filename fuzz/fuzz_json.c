/*
 * fuzz_json.c - mesh_json_parse (lib/mesh/json_parse.c) against jansson.
 *
 * Invariant: for valid UTF-8 input (the parser's contract), mesh_json_parse
 * accepts exactly what json_loadb(flags 0) accepts, and the two values are
 * equal. Inputs that are not valid UTF-8 must still never crash it.
 * Inputs with a NUL byte are only checked for crashes too: RFC 8259 allows
 * none outside escapes, mesh_json_parse refuses them, and jansson 2.14 (as
 * this target found) accepts one right after a number ("[22.5\0]").
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_json.h"
#include "mesh/mesh_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    json_t *ours = mesh_json_parse(s, size);
    if (!mesh_utf8_valid(s, size) || memchr(s, '\0', size) != NULL) {
        json_decref(ours);
        return 0;
    }
    json_error_t err;
    json_t *ref = json_loadb(s, size, 0, &err);
    if ((ours == NULL) != (ref == NULL))
        abort();
    if (ours != NULL && !json_equal(ours, ref))
        abort();
    json_decref(ours);
    json_decref(ref);
    return 0;
}
