/* mesh.h - umbrella header of libmesh. */
#ifndef MESH_H
#define MESH_H

#define MESH_VERSION "0.1.0"

#include "mesh_err.h"
#include "mesh_limits.h"
#include "mesh_log.h"
#include "mesh_config.h"
#include "mesh_mp.h"
#include "mesh_proto.h"
#include "mesh_msg.h"
#include "mesh_heartbeat.h"
#include "mesh_zsock.h"
#include "mesh_uvzmq.h"
#include "mesh_worker.h"
#include "mesh_client.h"
#include "mesh_redis.h"
#include "mesh_service.h"
#include "mesh_schema.h"
#include "mesh_text.h"
#include "mesh_json.h"

#endif
