/*
 * mesh_err.h - the one error-code space of the mesh.
 *
 * Every libmesh and service function that can fail returns 0 on success or one
 * of the negative MESH_E* codes below. The same integers travel on the wire in
 * a reply's "status" field, and each has a stable snake_case name (used in the
 * gateway's JSON error bodies and in logs) and a human message.
 *
 * The values are part of the wire protocol (docs/protocol/mesh-mdp.md):
 * never renumber, only append.
 */
#ifndef MESH_ERR_H
#define MESH_ERR_H

/* XX(NAME, value, "wire_name", "message") */
#define MESH_ERR_MAP(XX)                                                                           \
    XX(EINVAL, -1, "invalid_argument", "invalid argument")                                         \
    XX(ENOMEM, -2, "out_of_memory", "out of memory")                                               \
    XX(EPROTO, -3, "protocol_error", "malformed or unexpected protocol message")                   \
    XX(ETOOBIG, -4, "too_large", "size limit exceeded")                                            \
    XX(ETIMEDOUT, -5, "deadline_exceeded", "deadline exceeded")                                    \
    XX(ENOWORKER, -6, "no_worker", "no worker available for the service")                          \
    XX(EBUSY, -7, "overloaded", "queue full, try again later")                                     \
    XX(ENOTFOUND, -8, "not_found", "not found")                                                    \
    XX(EUNAVAIL, -9, "unavailable", "a dependency is unavailable")                                 \
    XX(EIO, -10, "io_error", "I/O error")                                                          \
    XX(EUNKNOWNTOOL, -11, "unknown_tool", "unknown tool")                                          \
    XX(EBADARGS, -12, "invalid_tool_arguments", "tool arguments do not match the schema")          \
    XX(EDENIED, -13, "tool_not_allowed", "tool not allowed for this agent")                        \
    XX(ETOOL, -14, "tool_failed", "tool execution failed")                                         \
    XX(ECONFIG, -15, "config_error", "invalid configuration")                                      \
    XX(ECANCELED, -16, "canceled", "operation canceled")                                           \
    XX(ESTATE, -17, "invalid_state", "operation not valid in the current state")                   \
    XX(EUNKNOWNOP, -18, "unknown_operation", "unknown operation for this service")                 \
    XX(ESTEPS, -19, "step_budget_exhausted", "agent step budget exhausted")                        \
    XX(EINTERNAL, -20, "internal_error", "internal error")

enum {
    MESH_OK = 0,
#define MESH__ERR_ENUM(name, val, wire, msg) MESH_##name = (val),
    MESH_ERR_MAP(MESH__ERR_ENUM)
#undef MESH__ERR_ENUM
};

/* Human message for code; "unknown error" for values outside the map. Never NULL. */
const char *mesh_strerror(int code);

/* Stable snake_case name for code ("ok" for 0, "unknown_error" otherwise). Never NULL. */
const char *mesh_err_name(int code);

/* 1 if code is a value of the map (or 0), else 0. Used to vet codes off the wire. */
int mesh_err_known(int code);

#endif
