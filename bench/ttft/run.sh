#!/usr/bin/env bash
# bench/ttft/run.sh - start a one-of-each mesh whose llm worker uses the
# openai backend against the token-pacing stub (tests/stubs, script
# bench/ttft/stub/ttft.json), run mesh-ttft against the stub directly and
# through the gateway, stop everything. Usage:
#   bench/ttft/run.sh <build dir> [mesh-ttft args, e.g. -n 500 --json]
# Processes are started here and killed on exit (trap); logs go to a temp dir
# that is printed and kept when something failed.
set -euo pipefail
BUILD=${1:?usage: run.sh <build dir> [mesh-ttft args]}
shift
BIN=$(cd "$BUILD/bin" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$(cd "$HERE/../../data" && pwd)
TMP=$(mktemp -d /tmp/mesh-ttft-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # file substring
    for _ in $(seq 1 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "timeout waiting for '$2' in $1" >&2
    return 1
}
start() { # name env... -- cmd...
    local name=$1
    shift
    env -i PATH="$PATH" "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
}

REDIS=$(free_port) STUB=$(free_port) FRONT=$(free_port) BACK=$(free_port) HTTP=$(free_port)
COMMON=(MESH_DATA_DIR="$DATA" MESH_METRICS_PORT=0 MESH_LOG_LEVEL=warn)
start redis redis-server --port "$REDIS" --save '' --appendonly no
start stub "$BIN/mesh-openai-stub" --port "$STUB" --scripts "$HERE/stub"
wait_for "$TMP/stub.log" "listening on port"
start router "${COMMON[@]}" MESH_FRONTEND_BIND="tcp://127.0.0.1:$FRONT" \
    MESH_BACKEND_BIND="tcp://127.0.0.1:$BACK" "$BIN/mesh-router"
start llm "${COMMON[@]}" MESH_ROUTER_BACKENDS="tcp://127.0.0.1:$BACK" MESH_LLM_BACKEND=openai \
    MESH_LLM_TIERS="small=http://127.0.0.1:$STUB/v1|ttft" "$BIN/mesh-llm"
start tools "${COMMON[@]}" MESH_ROUTER_BACKENDS="tcp://127.0.0.1:$BACK" "$BIN/mesh-tools"
start memory "${COMMON[@]}" MESH_ROUTER_BACKENDS="tcp://127.0.0.1:$BACK" \
    MESH_REDIS_HOST=127.0.0.1 MESH_REDIS_PORT="$REDIS" "$BIN/mesh-memory"
start gateway "${COMMON[@]}" MESH_ROUTER_FRONTENDS="tcp://127.0.0.1:$FRONT" \
    MESH_HTTP_PORT="$HTTP" "$BIN/mesh-gateway"
for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null && break
    sleep 0.05
done
curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null || { echo "mesh not ready; logs in $TMP" >&2; exit 1; }
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(uname -sr), logs $TMP" >&2
"$BIN/mesh-ttft" --direct "http://127.0.0.1:$STUB/v1/chat/completions" --model ttft \
    --mesh "http://127.0.0.1:$HTTP" --text "hello" "$@"
rm -rf "$TMP"
