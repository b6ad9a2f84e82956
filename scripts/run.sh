#!/usr/bin/env bash
# run.sh - run the whole mesh on this machine: a local redis-server, one
# router, one llm (rules backend), one tools and one memory worker, and the
# gateway on http://127.0.0.1:8080 (MESH_HTTP_PORT).
#
#   scripts/run.sh [BIN_DIR]        (default build/bin; `make run` builds first)
#
# Logs go to run/logs/<service>.log, Redis keeps its data in run/redis
# (appendonly yes, so conversations survive a restart of run.sh).
# Ctrl-C or SIGTERM stops everything cleanly (SIGTERM to each service, a
# bounded wait, then Redis SHUTDOWN) and exits 0. If a service dies on its
# own, run.sh says which, shows the end of its log, stops the rest and
# exits 1. Every MESH_* variable in the environment is passed through
# (docs/configuration.md).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-${MESH_BIN_DIR:-$ROOT/build/bin}}
RUN_DIR=${MESH_RUN_DIR:-$ROOT/run}
LOG_DIR=$RUN_DIR/logs
REDIS_PORT=${MESH_REDIS_PORT:-6390}
HTTP_HOST=${MESH_HTTP_HOST:-127.0.0.1}
HTTP_PORT=${MESH_HTTP_PORT:-8080}
STOP_WAIT_S=${MESH_STOP_WAIT_S:-15}  # per service, after SIGTERM (drain is 10 s by default)
READY_WAIT_S=${MESH_READY_WAIT_S:-30}

export MESH_REDIS_HOST=${MESH_REDIS_HOST:-127.0.0.1}
export MESH_REDIS_PORT=$REDIS_PORT
export MESH_DATA_DIR=${MESH_DATA_DIR:-$ROOT/data}
export MESH_HTTP_HOST=$HTTP_HOST MESH_HTTP_PORT=$HTTP_PORT
export MESH_WEB_DIR=${MESH_WEB_DIR:-$ROOT/web}

SERVICES=(router llm tools memory gateway)
declare -A PID=()
REDIS_PID=
STOPPING=0

say() { printf 'run.sh: %s\n' "$*" >&2; }

for svc in "${SERVICES[@]}"; do
    if [ ! -x "$BIN/mesh-$svc" ]; then
        say "missing $BIN/mesh-$svc (build first: make run, or cmake --build build)"
        exit 1
    fi
done
command -v redis-server >/dev/null || { say "redis-server not found (scripts/deps.sh installs it)"; exit 1; }
command -v curl >/dev/null || { say "curl not found (scripts/deps.sh installs it)"; exit 1; }

mkdir -p "$LOG_DIR" "$RUN_DIR/redis"

# The console (/console) and the people API need a key. Unless one is given,
# make a local one once (run/people-keys, readable by this user only) and
# show it in the banner.
PEOPLE_KEY_NOTE=
if [ -z "${MESH_PEOPLE_KEYS:-}" ] && [ -z "${MESH_PEOPLE_KEYS_FILE:-}" ]; then
    if [ ! -s "$RUN_DIR/people-keys" ]; then
        (umask 077 && printf 'demo:%s\n' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
            >"$RUN_DIR/people-keys")
    fi
    export MESH_PEOPLE_KEYS_FILE=$RUN_DIR/people-keys
    PEOPLE_KEY_NOTE="console key (person \"demo\"): $(cut -d: -f2 "$RUN_DIR/people-keys" | head -n 1)"
fi

redis_ping() {
    # A bare RESP PING over bash's /dev/tcp: no redis-cli needed.
    local reply
    reply=$(timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT && printf 'PING\r\n' >&3 && head -c 5 <&3" 2>/dev/null) || return 1
    [ "$reply" = "+PONG" ]
}

tail_log() {
    say "last lines of $1:"
    tail -n 20 "$1" >&2 2>/dev/null || true
}

# Stop one pid: SIGTERM, wait up to STOP_WAIT_S, then SIGKILL.
stop_pid() {
    local name=$1 pid=$2 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_WAIT_S * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name did not stop within ${STOP_WAIT_S}s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_all() {
    STOPPING=1
    trap '' INT TERM
    say "stopping"
    # The edge first (no new turns), then the workers, the routers, Redis last.
    local svc
    for svc in gateway llm tools memory router; do
        stop_pid "mesh-$svc" "${PID[$svc]:-}"
        unset "PID[$svc]"
    done
    if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
        # SHUTDOWN writes the append-only file; SIGTERM does the same if the command fails.
        timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT && printf 'SHUTDOWN\r\n' >&3 && cat <&3" >/dev/null 2>&1 || true
        stop_pid redis-server "$REDIS_PID"
    fi
    REDIS_PID=
    say "stopped"
}

on_signal() {
    stop_all
    exit 0
}
trap on_signal INT TERM

if redis_ping; then
    say "something already answers on port $REDIS_PORT; set MESH_REDIS_PORT to a free port"
    exit 1
fi

# Each process gets its own session (setsid) so a terminal Ctrl-C reaches only
# this script, which then stops the services one by one in order.
setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN_DIR/redis" \
    --appendonly yes --daemonize no --save '' </dev/null >"$LOG_DIR/redis.log" 2>&1 &
REDIS_PID=$!
for ((i = 0; i < 100; i++)); do
    redis_ping && break
    if ! kill -0 "$REDIS_PID" 2>/dev/null; then
        say "redis-server exited"
        tail_log "$LOG_DIR/redis.log"
        exit 1
    fi
    sleep 0.1
done
if ! redis_ping; then
    say "redis-server did not answer PING on port $REDIS_PORT"
    tail_log "$LOG_DIR/redis.log"
    stop_all
    exit 1
fi

for svc in "${SERVICES[@]}"; do
    setsid "$BIN/mesh-$svc" </dev/null >>"$LOG_DIR/$svc.log" 2>&1 &
    PID[$svc]=$!
done

ready=0
for ((i = 0; i < READY_WAIT_S * 10; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "http://$HTTP_HOST:$HTTP_PORT/readyz" 2>/dev/null; then
        ready=1
        break
    fi
    for svc in "${SERVICES[@]}"; do
        if ! kill -0 "${PID[$svc]}" 2>/dev/null; then
            say "mesh-$svc exited during start-up"
            tail_log "$LOG_DIR/$svc.log"
            stop_all
            exit 1
        fi
    done
    sleep 0.1
done
if [ "$ready" -ne 1 ]; then
    say "the mesh did not become ready within ${READY_WAIT_S}s (GET /readyz)"
    for svc in "${SERVICES[@]}"; do tail_log "$LOG_DIR/$svc.log"; done
    stop_all
    exit 1
fi

cat <<BANNER

  mesh is running: gateway http://$HTTP_HOST:$HTTP_PORT  (Redis on 127.0.0.1:$REDIS_PORT)
  web chat: http://$HTTP_HOST:$HTTP_PORT/      console: http://$HTTP_HOST:$HTTP_PORT/console
  ${PEOPLE_KEY_NOTE}
  logs: $LOG_DIR/{router,llm,tools,memory,gateway,redis}.log

  try:
    curl -s -X POST http://$HTTP_HOST:$HTTP_PORT/v1/conversations/demo-1/messages \\
         -H 'Content-Type: application/json' \\
         -d '{"text":"我的保单 P10023 保障什么？","message_id":"m1"}'
    curl -s http://$HTTP_HOST:$HTTP_PORT/v1/conversations/demo-1

  Ctrl-C stops everything.

BANNER

# Wait for a signal (trap) or for any child to exit on its own.
while :; do
    died=
    set +e
    wait -n -p died
    set -e
    [ "$STOPPING" -eq 1 ] && break
    [ -n "$died" ] || continue
    name=
    for svc in "${SERVICES[@]}"; do
        [ "${PID[$svc]:-}" = "$died" ] && name=mesh-$svc && unset "PID[$svc]"
    done
    if [ "$died" = "$REDIS_PID" ]; then
        name=redis-server
        REDIS_PID=
    fi
    [ -n "$name" ] || continue
    say "$name (pid $died) exited unexpectedly; stopping the rest"
    if [ "$name" = redis-server ]; then
        tail_log "$LOG_DIR/redis.log"
    else
        tail_log "$LOG_DIR/${name#mesh-}.log"
    fi
    stop_all
    exit 1
done
