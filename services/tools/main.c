/*
 * main.c - mesh-tools: the tools worker (service "tools": tool.list,
 * tool.call). Everything but the config table lives in tools_core.
 */
#include "mesh/mesh_limits.h"
#include "mesh/mesh_service.h"
#include "tools_service.h"

static mesh_config_entry_t s_config[] = {
    {.name = "MESH_ROUTER_BACKENDS",
     .type = MESH_CFG_STRING,
     .def = "tcp://127.0.0.1:7002",
     .help = "router backend endpoints, comma-separated (one per router)"},
    {.name = "MESH_DATA_DIR",
     .type = MESH_CFG_STRING,
     .def = "./data",
     .help = "directory with tools.json, products/, policies.json, medical/catalogue.json and "
             "training/"},
    {.name = "MESH_WORKER_CAPACITY",
     .type = MESH_CFG_INT,
     .def = "64",
     .min = 1,
     .max = MESH_WORKER_CAPACITY_MAX,
     .help = "requests in flight at once"},
};

static const mesh_service_def_t s_def = {
    .name = "tools",
    .summary = "tools worker: policy.lookup, fee.calc, medical.lookup and training.scenario over "
               "the sample data (SIGHUP reloads)",
    .config = s_config,
    .n_config = sizeof(s_config) / sizeof(s_config[0]),
    .start = tools_service_start,
    .drain = tools_service_drain,
    .destroy = tools_service_destroy,
    .reload = tools_service_reload,
};

int main(int argc, char **argv)
{
    return mesh_service_main(argc, argv, &s_def);
}
