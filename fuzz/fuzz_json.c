/*
 * fuzz_json.c - mesh_json_parse (lib/mesh/json_parse.c) against jansson.
 *
 * Invariant: for valid UTF-8 input (the parser's contract), mesh_json_parse
 * accepts exactly what json_loadb(flags 0) accepts, and the two values are
 * equal. Inputs that are not valid UTF-8 must still never crash it.
 * Inputs with a NUL byte are only checked for crashes too: RFC 8259 allows
 * none outside escapes, mesh_json_parse refuses them, and jansson 2.14 (as
 * this target found) accepts one right after a number ("[22.5\0]").
 * A number token longer than MESH_JSON_NUMBER_MAX bytes is refused by design
 * (a bound on peer-controlled lengths) where jansson takes it: that is the
 * one accepted difference.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_json.h"
#include "mesh/mesh_text.h"

/* 1 if s[0..n) has a run of number characters longer than MESH_JSON_NUMBER_MAX. */
static int has_long_number(const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int num =
            (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
        run = num ? run + 1 : 0;
        if (run > MESH_JSON_NUMBER_MAX)
            return 1;
    }
    return 0;
}

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
    if ((ours == NULL) != (ref == NULL) && !(ours == NULL && has_long_number(s, size)))
        abort();
    if (ours != NULL && ref != NULL && !json_equal(ours, ref))
        abort();
    json_decref(ours);
    json_decref(ref);
    return 0;
}
