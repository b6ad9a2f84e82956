/*
 * fuzz_openai_req.c - the gateway's POST /v1/chat/completions body parser
 * (services/gateway/openai_req.c: gateway_oai_parse) and the ids derived
 * from a request (gateway_oai_user_conv, gateway_oai_message_id).
 *
 * Input: one request body, as a client sends it.
 *
 * Invariants (abort on violation):
 *   - gateway_oai_parse returns 0, MESH_EPROTO or MESH_ENOMEM;
 *   - on success: model is a valid agent name, the text is 1..MESH_TEXT_MAX
 *     bytes of UTF-8 without NUL, NUL-terminated, at least one user message,
 *     user "" or a valid conversation id, and the derived message id is a
 *     valid message id ("oa-" + 32 hex); parsing the same body again gives
 *     the same request;
 *   - on failure: no text is left owned, the status is 400 (503 for
 *     ENOMEM), and the error renders as {"error": {"message": str, ...}};
 *   - gateway_oai_user_conv maps any non-empty bytes to a valid conversation id.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_limits.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_text.h"
#include "openai_req.h"
#include "validate.h"

static void check_ok(const gateway_oai_req_t *r)
{
    if (!gateway_agent_valid(r->model, strlen(r->model)))
        abort();
    if (r->text == NULL || r->text_len == 0 || r->text_len > MESH_TEXT_MAX ||
        strlen(r->text) != r->text_len || !mesh_utf8_valid(r->text, r->text_len) || r->n_user == 0)
        abort();
    if (r->user[0] != '\0' && !mesh_conv_id_valid(r->user, strlen(r->user)))
        abort();
    char id[MESH_ID_MAX + 1];
    gateway_oai_message_id(r->user[0] ? r->user : "conv-1", r->n_user, r->text, r->text_len, id);
    if (strlen(id) != 35 || strncmp(id, "oa-", 3) != 0 || !gateway_message_id_valid(id, 35))
        abort();
}

static void check_err(const gateway_oai_req_t *r, const gateway_oai_err_t *e, int rc)
{
    if (r->text != NULL || r->text_len != 0)
        abort();
    if (e->http_status != (rc == MESH_ENOMEM ? 503 : 400) || e->type == NULL ||
        memchr(e->message, '\0', sizeof(e->message)) == NULL)
        abort();
    char *js = gateway_oai_err_json(e);
    if (js == NULL)
        return; /* out of memory */
    json_error_t jerr;
    json_t *o = json_loads(js, 0, &jerr);
    if (!json_is_string(json_object_get(json_object_get(o, "error"), "message")))
        abort();
    json_decref(o);
    free(js);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    gateway_oai_req_t r, r2;
    gateway_oai_err_t e, e2;

    int rc = gateway_oai_parse(s, size, &r, &e);
    if (rc != 0 && rc != MESH_EPROTO && rc != MESH_ENOMEM)
        abort();
    if (rc == 0)
        check_ok(&r);
    else
        check_err(&r, &e, rc);

    int again = gateway_oai_parse(s, size, &r2, &e2);
    if (again != rc)
        abort();
    if (rc == 0 && (strcmp(r.model, r2.model) != 0 || r.text_len != r2.text_len ||
                    memcmp(r.text, r2.text, r.text_len) != 0 || r.n_user != r2.n_user ||
                    r.prompt_chars != r2.prompt_chars || r.stream != r2.stream ||
                    r.include_usage != r2.include_usage || strcmp(r.user, r2.user) != 0))
        abort();
    gateway_oai_req_clear(&r);
    gateway_oai_req_clear(&r2);

    if (size > 0) {
        char conv[MESH_CONV_MAX + 1];
        gateway_oai_user_conv(s, size, conv);
        if (!mesh_conv_id_valid(conv, strlen(conv)))
            abort();
    }
    return 0;
}
