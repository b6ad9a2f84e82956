/*
 * oai_tiers.c - parse the tier table of the openai backend (oai_tiers.h).
 */
#include "oai_tiers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mesh/mesh_err.h"

/* Fill one tier from its parts; 0 or MESH_ECONFIG (reason in err, naming entry no). */
static int set_tier(llm_oai_tiers_t *out, size_t no, const char *name, size_t nlen, const char *url,
                    size_t ulen, const char *model, size_t mlen, char *err, size_t es)
{
    while (ulen > 0 && url[ulen - 1] == '/')
        ulen--;
    if (out->n >= LLM_OAI_TIERS_MAX) {
        snprintf(err, es, "more than %d tiers", LLM_OAI_TIERS_MAX);
        return MESH_ECONFIG;
    }
    if (nlen == 0 || nlen > LLM_TIER_MAX) {
        snprintf(err, es, "tier %zu: name must be 1..%d bytes", no, LLM_TIER_MAX);
        return MESH_ECONFIG;
    }
    if (ulen > LLM_OAI_URL_MAX || !((ulen > 7 && strncmp(url, "http://", 7) == 0) ||
                                    (ulen > 8 && strncmp(url, "https://", 8) == 0))) {
        snprintf(err, es, "tier %zu: url must be http(s)://... of at most %d bytes", no,
                 LLM_OAI_URL_MAX);
        return MESH_ECONFIG;
    }
    if (mlen == 0 || mlen > LLM_OAI_MODEL_MAX) {
        snprintf(err, es, "tier %zu: model must be 1..%d bytes", no, LLM_OAI_MODEL_MAX);
        return MESH_ECONFIG;
    }
    for (size_t i = 0; i < out->n; i++) {
        if (strlen(out->t[i].name) == nlen && memcmp(out->t[i].name, name, nlen) == 0) {
            snprintf(err, es, "tier %zu: name repeated", no);
            return MESH_ECONFIG;
        }
    }
    llm_oai_tier_t *t = &out->t[out->n++];
    memcpy(t->name, name, nlen);
    t->name[nlen] = '\0';
    memcpy(t->url, url, ulen);
    t->url[ulen] = '\0';
    memcpy(t->model, model, mlen);
    t->model[mlen] = '\0';
    return 0;
}

int llm_oai_tiers_parse(const char *spec, llm_oai_tiers_t *out, char *err, size_t es)
{
    memset(out, 0, sizeof(*out));
    if (spec == NULL || spec[0] == '\0') {
        snprintf(err, es, "no tiers");
        return MESH_ECONFIG;
    }
    if (strlen(spec) > LLM_OAI_TIERS_SPEC_MAX) {
        snprintf(err, es, "longer than %d bytes", LLM_OAI_TIERS_SPEC_MAX);
        return MESH_ECONFIG;
    }
    const char *p = spec;
    size_t no = 1;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const char *bar = eq ? memchr(eq, '|', len - (size_t)(eq - p)) : NULL;
        if (eq == NULL || bar == NULL) {
            snprintf(err, es, "tier %zu: want name=<base url>|<model>", no);
            memset(out, 0, sizeof(*out));
            return MESH_ECONFIG;
        }
        int rc = set_tier(out, no, p, (size_t)(eq - p), eq + 1, (size_t)(bar - eq - 1), bar + 1,
                          len - (size_t)(bar + 1 - p), err, es);
        if (rc != 0) {
            memset(out, 0, sizeof(*out));
            return rc;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
        no++;
    }
    return 0;
}

int llm_oai_tiers_load_file(const char *path, llm_oai_tiers_t *out, char *err, size_t es)
{
    memset(out, 0, sizeof(*out));
    json_error_t je;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, es, "cannot open the tiers file");
        return MESH_ECONFIG;
    }
    char *buf = malloc(LLM_OAI_TIERS_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, LLM_OAI_TIERS_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (buf == NULL || n > LLM_OAI_TIERS_FILE_MAX) {
        free(buf);
        snprintf(err, es, "tiers file: larger than %d bytes", LLM_OAI_TIERS_FILE_MAX);
        return MESH_ECONFIG;
    }
    json_t *doc = json_loadb(buf, n, 0, &je);
    free(buf);
    if (!json_is_object(doc) || json_object_size(doc) == 0) {
        json_decref(doc);
        snprintf(err, es, "tiers file: want a non-empty JSON object (line %d)", je.line);
        return MESH_ECONFIG;
    }
    const char *name;
    json_t *v;
    size_t no = 1;
    int rc = 0;
    json_object_foreach(doc, name, v)
    {
        const json_t *u = json_object_get(v, "url");
        const json_t *m = json_object_get(v, "model");
        if (!json_is_string(u) || !json_is_string(m)) {
            snprintf(err, es, "tiers file: tier %zu: want {\"url\": str, \"model\": str}", no);
            rc = MESH_ECONFIG;
            break;
        }
        rc = set_tier(out, no, name, strlen(name), json_string_value(u), json_string_length(u),
                      json_string_value(m), json_string_length(m), err, es);
        if (rc != 0)
            break;
        no++;
    }
    json_decref(doc);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

const llm_oai_tier_t *llm_oai_tiers_find(const llm_oai_tiers_t *t, const char *name)
{
    if (t->n == 0)
        return NULL;
    const llm_oai_tier_t *def = &t->t[0];
    for (size_t i = 0; i < t->n; i++) {
        if (name != NULL && strcmp(t->t[i].name, name) == 0)
            return &t->t[i];
        if (strcmp(t->t[i].name, "default") == 0)
            def = &t->t[i];
    }
    return def;
}
