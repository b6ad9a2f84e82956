/*
 * lg_scen.c - loading and rendering the load generator's scenario files.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_scen.h"

const char *const lg_scen_names[] = {"policy_qa", "claims_intake", "health_review", "life_trainer",
                                     NULL};

/* "<path>: <where>: <what>" into err; returns -1. */
static int fail(char *err, size_t es, const char *path, const char *where, const char *what)
{
    snprintf(err, es, "%s: %s%s%s", path, where, where[0] ? ": " : "", what);
    return -1;
}

static int agent_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > LG_SCEN_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int load_conv(const json_t *c, size_t idx, const char *path, lg_sconv_t *out, char *err,
                     size_t es)
{
    char where[64];
    snprintf(where, sizeof where, "conversations[%zu]", idx);
    const json_t *msgs = json_is_object(c) ? json_object_get(c, "messages") : c;
    if (!json_is_array(msgs) || json_array_size(msgs) == 0 ||
        json_array_size(msgs) > LG_SCEN_MSGS_MAX)
        return fail(err, es, path, where,
                    "must be an array of 1..64 messages (or {lang, messages})");
    out->msgs = calloc(json_array_size(msgs), sizeof(char *));
    if (out->msgs == NULL)
        return fail(err, es, path, where, "out of memory");
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_string(m) || json_string_length(m) == 0 ||
            json_string_length(m) > LG_SCEN_MSG_MAX / 2)
            return fail(err, es, path, where, "every message must be a string of 1..1024 bytes");
        out->msgs[i] = strdup(json_string_value(m));
        if (out->msgs[i] == NULL)
            return fail(err, es, path, where, "out of memory");
        out->n_msgs = i + 1;
    }
    return 0;
}

static int load_file(const char *dir, const char *name, lg_scen_t *s, char *err, size_t es)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    int rc = -1;
    if (root == NULL) {
        snprintf(err, es, "%s: line %d: %s", path, je.line, je.text);
        return -1;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    const char *agent = json_string_value(json_object_get(root, "agent"));
    const json_t *convs = json_object_get(root, "conversations");
    if (!json_is_object(root)) {
        fail(err, es, path, "", "the file must hold a JSON object");
    } else if (agent == NULL || !agent_name_ok(agent)) {
        fail(err, es, path, "agent", "must be 1..64 bytes of [A-Za-z0-9._-]");
    } else if (!json_is_array(convs) || json_array_size(convs) == 0 ||
               json_array_size(convs) > LG_SCEN_CONVS_MAX) {
        fail(err, es, path, "conversations", "must be an array of 1..256 conversations");
    } else {
        snprintf(s->agent, sizeof s->agent, "%s", agent);
        s->convs = calloc(json_array_size(convs), sizeof(lg_sconv_t));
        if (s->convs == NULL) {
            fail(err, es, path, "", "out of memory");
        } else {
            rc = 0;
            size_t i;
            const json_t *c;
            json_array_foreach(convs, i, c)
            {
                s->n_convs = i + 1;
                if (load_conv(c, i, path, &s->convs[i], err, es) != 0) {
                    rc = -1;
                    break;
                }
            }
        }
    }
    json_decref(root);
    lg_hist_init(&s->hist);
    return rc;
}

int lg_scen_load(const char *dir, const char *name, lg_scen_set_t *set, char *err, size_t es)
{
    memset(set, 0, sizeof *set);
    if (strcmp(name, "mixed") != 0) {
        int known = 0;
        for (size_t i = 0; lg_scen_names[i] != NULL; i++)
            known |= strcmp(lg_scen_names[i], name) == 0;
        if (!known) {
            snprintf(err, es,
                     "unknown scenario '%s' (policy_qa, claims_intake, health_review, "
                     "life_trainer or mixed)",
                     name);
            return -1;
        }
        set->n = 1;
        return load_file(dir, name, &set->s[0], err, es);
    }
    for (size_t i = 0; lg_scen_names[i] != NULL && set->n < LG_SCEN_MAX; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.json", dir, lg_scen_names[i]);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* a worker without a scenario file yet */
        fclose(f);
        if (load_file(dir, lg_scen_names[i], &set->s[set->n++], err, es) != 0)
            return -1;
    }
    if (set->n == 0) {
        snprintf(err, es, "%s: no scenario files", dir);
        return -1;
    }
    return 0;
}

void lg_scen_free(lg_scen_set_t *set)
{
    for (size_t k = 0; k < set->n; k++) {
        lg_scen_t *s = &set->s[k];
        for (size_t c = 0; s->convs != NULL && c < s->n_convs; c++) {
            for (size_t m = 0; m < s->convs[c].n_msgs; m++)
                free(s->convs[c].msgs[m]);
            free(s->convs[c].msgs);
        }
        free(s->convs);
    }
    memset(set, 0, sizeof *set);
}

/* Append s[0..n) JSON-escaped (UTF-8 passes through). */
static int put_escaped(char *out, size_t size, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char tmp[8];
        const char *rep = NULL;
        size_t rl = 1;
        if (ch == '"')
            rep = "\\\"", rl = 2;
        else if (ch == '\\')
            rep = "\\\\", rl = 2;
        else if (ch == '\n')
            rep = "\\n", rl = 2;
        else if (ch < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", ch);
            rep = tmp;
            rl = 6;
        }
        if (*o + rl >= size)
            return -1;
        if (rep != NULL)
            memcpy(out + *o, rep, rl);
        else
            out[*o] = (char)ch;
        *o += rl;
    }
    return 0;
}

int lg_scen_render(const char *msg, int policy, unsigned long long seq, char *out, size_t size)
{
    size_t o = 0;
    const char *p = msg;
    while (*p != '\0') {
        const char *pol = strstr(p, "{policy}"), *num = strstr(p, "{n}");
        const char *next = pol != NULL && (num == NULL || pol < num) ? pol : num;
        size_t lit = next != NULL ? (size_t)(next - p) : strlen(p);
        if (put_escaped(out, size, &o, p, lit) != 0)
            return -1;
        if (next == NULL)
            break;
        char v[32];
        if (next == pol)
            snprintf(v, sizeof v, "P%05d", policy);
        else
            snprintf(v, sizeof v, "%llu", seq);
        if (put_escaped(out, size, &o, v, strlen(v)) != 0)
            return -1;
        p = next + (next == pol ? 8 : 3);
    }
    if (o >= size)
        return -1;
    out[o] = '\0';
    return (int)o;
}
