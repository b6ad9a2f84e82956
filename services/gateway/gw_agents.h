/*
 * gw_agents.h - the gateway's catalogue of digital workers: the name and
 * description of every MESH_DATA_DIR/agents/<name>.json, for GET /v1/models and
 * to check the `model` of /v1/chat/completions. Read at start and on SIGHUP
 * (gateway_reload); the router stays the authority on what an agent does.
 */
#ifndef GATEWAY_GW_AGENTS_H
#define GATEWAY_GW_AGENTS_H

#include <stddef.h>
#include <stdint.h>

/* Agent files read at most. */
#define GATEWAY_AGENTS_MAX 256
/* Agent file size read at most (bytes). */
#define GATEWAY_AGENT_FILE_MAX (1024 * 1024)
/* Description bytes kept (longer ones are cut at a UTF-8 boundary). */
#define GATEWAY_AGENT_DESC_MAX 1024

typedef struct gateway_agents gateway_agents_t;

typedef struct {
    char name[65];                                /* [A-Za-z0-9._-], 1..64 */
    char description[GATEWAY_AGENT_DESC_MAX + 1]; /* "en", else "zh", else the string */
    int64_t created;                              /* file mtime, unix seconds */
} gateway_agent_t;

/*
 * Load dir/agents/<name>.json (files that are not valid agent files are skipped
 * with a warning). 0, MESH_ENOTFOUND (no agents directory), MESH_ENOMEM.
 * *out is sorted by name.
 */
int gateway_agents_load(const char *data_dir, gateway_agents_t **out);

size_t gateway_agents_count(const gateway_agents_t *a);
const gateway_agent_t *gateway_agents_at(const gateway_agents_t *a, size_t i);
/* The agent called name[0..len), or NULL. */
const gateway_agent_t *gateway_agents_find(const gateway_agents_t *a, const char *name, size_t len);

void gateway_agents_destroy(gateway_agents_t **a_p);

#endif
