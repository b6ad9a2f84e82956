/* err.c - names and messages of the MESH_E* codes (mesh_err.h). */
#include "mesh/mesh_err.h"

const char *mesh_strerror(int code)
{
    switch (code) {
    case MESH_OK:
        return "success";
#define MESH__ERR_MSG(name, val, wire, msg)                                                        \
    case MESH_##name:                                                                              \
        return msg;
        MESH_ERR_MAP(MESH__ERR_MSG)
#undef MESH__ERR_MSG
    default:
        return "unknown error";
    }
}

const char *mesh_err_name(int code)
{
    switch (code) {
    case MESH_OK:
        return "ok";
#define MESH__ERR_NAME(name, val, wire, msg)                                                       \
    case MESH_##name:                                                                              \
        return wire;
        MESH_ERR_MAP(MESH__ERR_NAME)
#undef MESH__ERR_NAME
    default:
        return "unknown_error";
    }
}

int mesh_err_known(int code)
{
    switch (code) {
    case MESH_OK:
#define MESH__ERR_KNOWN(name, val, wire, msg) case MESH_##name:
        MESH_ERR_MAP(MESH__ERR_KNOWN)
#undef MESH__ERR_KNOWN
        return 1;
    default:
        return 0;
    }
}
