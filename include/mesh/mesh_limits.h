/*
 * mesh_limits.h - every size limit a peer can run into, in one place.
 *
 * Anything whose length or count a peer controls is checked against one of
 * these named constants before it is used. docs/protocol/mesh-mdp.md repeats
 * them; keep both in step.
 */
#ifndef MESH_LIMITS_H
#define MESH_LIMITS_H

#define MESH_MAX_FRAMES            8             /* frames in one ZeroMQ message we accept */
#define MESH_MAX_MSG_BYTES_DEFAULT (1024 * 1024) /* ZMQ_MAXMSGSIZE default */
#define MESH_SERVICE_MAX           32            /* service name bytes, [a-z0-9._-] */
#define MESH_ID_MAX                64            /* request id / message id bytes */
#define MESH_CONV_MAX              128           /* conversation id bytes, [A-Za-z0-9._:-] */
#define MESH_TENANT_MAX            64            /* tenant bytes */
#define MESH_TRACEPARENT_MAX       55            /* W3C traceparent version 00 is exactly 55 */
#define MESH_OP_MAX                32            /* operation name bytes */
#define MESH_ERRMSG_MAX            256           /* error message bytes in a reply */
#define MESH_MP_MAX_DEPTH          32            /* msgpack nesting depth */
#define MESH_MP_MAX_ITEMS          65536         /* total msgpack objects in one body */
#define MESH_ENDPOINT_MAX          256           /* one ZeroMQ endpoint string */
#define MESH_MAX_ROUTERS           16            /* router endpoints a worker/gateway connects to */
#define MESH_WORKER_CAPACITY_MAX   100000        /* capacity a worker may announce */
#define MESH_DEADLINE_MAX_MS       600000        /* 10 minutes: larger deadlines are clamped */
#define MESH_TEXT_MAX              (64 * 1024)   /* one chat message text, bytes */

#endif
