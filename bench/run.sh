#!/usr/bin/env bash
# bench/run.sh - build Release, start Redis and the mesh on free loopback
# ports, and measure it with mesh-loadgen:
#   1. idle RSS of every process (ps -o rss),
#   2. saturation: closed loop, BENCH_CONNS connections for BENCH_DURATION s,
#   3. open loop at half the saturated rate,
#   4. one connection, closed loop (the latency of a lone turn),
# sampling RSS under load. Prints a markdown report and writes it to
# bench/results/latest.md.
#
# Then 5. each digital worker's scripted conversations (mesh-loadgen --scenario,
# bench/scenarios/<name>.json), one run per scenario plus "mixed", written to
# bench/results/workers.md.
#
# Knobs (environment): BENCH_CONNS (64), BENCH_DURATION (10), BENCH_WARMUP (2),
# BENCH_TURNS (3), BENCH_ROUTERS/BENCH_LLM/BENCH_TOOLS/BENCH_MEMORY (1 each),
# BENCH_BUILD_DIR (build-bench), BENCH_LANG (zh), BENCH_SCENARIOS ("policy_qa
# claims_intake health_review life_trainer mixed"; a missing file is skipped, "" skips
# step 5), BENCH_SCENARIO_CONNS (16), BENCH_ONLY_SCENARIOS (0; 1 skips steps 2-4),
# BENCH_NO_BUILD (0; 1 uses the binaries already in BENCH_BUILD_DIR/bin).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BENCH_BUILD_DIR:-$ROOT/build-bench}
CONNS=${BENCH_CONNS:-64}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
TURNS=${BENCH_TURNS:-3}
LANG_MIX=${BENCH_LANG:-zh}
SCENARIOS=${BENCH_SCENARIOS-policy_qa claims_intake health_review life_trainer mixed}
SCEN_CONNS=${BENCH_SCENARIO_CONNS:-16}
ONLY_SCEN=${BENCH_ONLY_SCENARIOS:-0}
declare -A COUNT=([router]=${BENCH_ROUTERS:-1} [llm]=${BENCH_LLM:-1} [tools]=${BENCH_TOOLS:-1}
                  [memory]=${BENCH_MEMORY:-1} [gateway]=1)
SERVICES=(router llm tools memory gateway)
OUT_DIR=$ROOT/bench/results
WORK=$BUILD/bench-run # logs and samples of this run
rm -rf "$WORK"
mkdir -p "$WORK"
PIDS=()
declare -A SVC_PIDS=()

say() { printf 'bench: %s\n' "$*" >&2; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing listens on (and that we have not used yet).
declare -A USED=()
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+)
        [ -z "${USED[$p]:-}" ] || continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            USED[$p]=1
            echo "$p"
            return
        fi
    done
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then # use the binaries already in $BUILD/bin
    say "using the existing build in $BUILD (BENCH_NO_BUILD=1)"
else
    say "building Release into $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMESH_BUILD_TESTS=OFF >"$WORK/cmake.log" 2>&1 ||
        { cat "$WORK/cmake.log" >&2; exit 1; }
    cmake --build "$BUILD" -j"$(nproc)" >>"$WORK/cmake.log" 2>&1 || { tail -50 "$WORK/cmake.log" >&2; exit 1; }
fi
BIN=$BUILD/bin

REDIS_PORT=$(free_port)
HTTP_PORT=$(free_port)
FRONTENDS=
BACKENDS=
for ((i = 0; i < COUNT[router]; i++)); do
    FRONTENDS+=${FRONTENDS:+,}tcp://127.0.0.1:$(free_port)
    BACKENDS+=${BACKENDS:+,}tcp://127.0.0.1:$(free_port)
done

export MESH_LOG_LEVEL=${MESH_LOG_LEVEL:-warn}
export MESH_DATA_DIR=$ROOT/data
export MESH_REDIS_HOST=127.0.0.1 MESH_REDIS_PORT=$REDIS_PORT
export MESH_ROUTER_FRONTENDS=$FRONTENDS MESH_ROUTER_BACKENDS=$BACKENDS
export MESH_HTTP_HOST=127.0.0.1 MESH_HTTP_PORT=$HTTP_PORT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
SVC_PIDS[redis]=$!
for ((i = 0; i < 100; i++)); do
    r=$(timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT && printf 'PING\r\n' >&3 && head -c 5 <&3" 2>/dev/null || true)
    [ "$r" = "+PONG" ] && break
    sleep 0.1
done

for svc in "${SERVICES[@]}"; do
    for ((i = 0; i < COUNT[$svc]; i++)); do
        if [ "$svc" = router ]; then
            fe=$(cut -d, -f$((i + 1)) <<<"$FRONTENDS")
            be=$(cut -d, -f$((i + 1)) <<<"$BACKENDS")
            MESH_FRONTEND_BIND=$fe MESH_BACKEND_BIND=$be "$BIN/mesh-router" >"$WORK/router-$i.log" 2>&1 &
        else
            "$BIN/mesh-$svc" >"$WORK/$svc-$i.log" 2>&1 &
        fi
        PIDS+=($!)
        SVC_PIDS[$svc]="${SVC_PIDS[$svc]:-} $!"
    done
done

ready=0
for ((i = 0; i < 300; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
if [ "$ready" -ne 1 ]; then
    say "the mesh did not become ready; logs:"
    tail -n 20 "$WORK"/*.log >&2
    exit 1
fi
# one turn end to end before measuring anything
curl -fsS -o /dev/null --max-time 10 -H 'Content-Type: application/json' \
    -d '{"text":"我的保单 P10023 保障什么？"}' \
    "http://127.0.0.1:$HTTP_PORT/v1/conversations/bench-smoke/messages" ||
    { say "a smoke turn failed"; tail -n 20 "$WORK"/*.log >&2; exit 1; }

rss_kib() { # summed RSS (KiB) of the given pids
    local total=0 pid r
    for pid in "$@"; do
        r=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ' || true)
        total=$((total + ${r:-0}))
    done
    echo "$total"
}

declare -A IDLE=() PEAK=()
for svc in redis "${SERVICES[@]}"; do
    # shellcheck disable=SC2086
    IDLE[$svc]=$(rss_kib ${SVC_PIDS[$svc]})
    PEAK[$svc]=${IDLE[$svc]}
done

sample_rss() { # sample until the file $1 disappears, keeping the peak per service
    while [ -e "$1" ]; do
        for svc in redis "${SERVICES[@]}"; do
            # shellcheck disable=SC2086
            r=$(rss_kib ${SVC_PIDS[$svc]})
            echo "$svc $r"
        done
        sleep 0.5
    done >"$WORK/rss-samples.txt"
}

LOADGEN=("$BIN/mesh-loadgen" -u "http://127.0.0.1:$HTTP_PORT" -t "$TURNS" -w "$WARMUP"
         -d "$DURATION" -P 400 -l "$LANG_MIX" -T 30000)

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
CORES=$(nproc)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (with local changes)"
field() { sed -E "s/.*\"$2\":([^,}]+).*/\1/" <<<"$1"; }
num() { awk -v v="$(field "$1" "$2")" -v f="$3" 'BEGIN { printf f, v }'; }

# 5. the digital workers' scripted conversations, one loadgen run per scenario
run_scenarios() {
    local name j rows="" file=$OUT_DIR/workers.md
    for name in $SCENARIOS; do
        if [ "$name" != mixed ] && [ ! -f "$ROOT/bench/scenarios/$name.json" ]; then
            say "scenario $name: no bench/scenarios/$name.json, skipped"
            continue
        fi
        say "scenario $name: $SCEN_CONNS connections, closed loop, ${DURATION}s"
        "$BIN/mesh-loadgen" -u "http://127.0.0.1:$HTTP_PORT" -w "$WARMUP" -d "$DURATION" -P 400 \
            -T 30000 -c "$SCEN_CONNS" --scenario "$name" --scenario-dir "$ROOT/bench/scenarios" |
            tee "$WORK/scen-$name.txt" >&2 || true
        j=$(grep '^{' "$WORK/scen-$name.txt" | tail -1)
        [ -n "$j" ] || continue
        local top=${j%%,\"scenario\":*} # the run's own numbers, not its per-scenario rows
        rows+=$(printf '| %s | %s | %s | %s | %s | %s | %s | %s |' "$name" \
            "$(num "$top" turns_per_s %.0f)" "$(num "$top" p50_ms %.2f)" "$(num "$top" p90_ms %.2f)" \
            "$(num "$top" p99_ms %.2f)" "$(num "$top" p999_ms %.2f)" "$(num "$top" max_ms %.2f)" \
            "$(field "$top" errors)")$'\n'
        if [ "$name" = mixed ]; then # the per-scenario rows of the mixed run
            rows+=$(python3 - "$j" <<'PY' || true
import json, sys
for s in json.loads(sys.argv[1]).get("scenarios", []):
    print("| mixed: %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %d |" % (s["name"],
          s["turns_per_s"], s["p50_ms"], s["p90_ms"], s["p99_ms"], s["p999_ms"], s["max_ms"],
          s["errors"]))
PY
)$'\n'
        fi
    done
    [ -n "$rows" ] || return 0
    mkdir -p "$OUT_DIR"
    {
        echo "## Digital workers under load ($(date -u +%Y-%m-%d))"
        echo
        echo "Conditions: ${CPU:-unknown CPU}, $CORES cores shared by the load generator and every"
        echo "service, Release build, commit $COMMIT, Linux $(uname -r), load average before the run:"
        echo "$LOAD_BEFORE. Mesh: ${COUNT[router]} router, ${COUNT[llm]} llm (rules backend), ${COUNT[tools]} tools,"
        echo "${COUNT[memory]} memory, 1 gateway, Redis without persistence; MESH_LOG_LEVEL=$MESH_LOG_LEVEL."
        echo "Command: \`BENCH_SCENARIO_CONNS=$SCEN_CONNS BENCH_DURATION=$DURATION BENCH_WARMUP=$WARMUP"
        echo "bench/run.sh\` (step 5: \`mesh-loadgen -c $SCEN_CONNS --scenario <name>\`, closed loop,"
        echo "${WARMUP}s warm-up, ${DURATION}s measured). A turn is one customer message of a scripted"
        echo "conversation (bench/scenarios/<name>.json) through the gateway: every llm step, tool call"
        echo "and memory read/write of that worker; a claims_intake turn is 2-3 llm steps."
        echo
        echo "| scenario | turns/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        printf '%s' "$rows"
    } >"$file"
    cat "$file" >&2
    say "written to bench/results/workers.md"
}

if [ "$ONLY_SCEN" = 1 ]; then
    run_scenarios
    exit 0
fi

touch "$WORK/sampling"
sample_rss "$WORK/sampling" &
SAMPLER=$!

say "saturation: $CONNS connections, closed loop, ${DURATION}s"
"${LOADGEN[@]}" -c "$CONNS" | tee "$WORK/sat.txt" >&2
SAT_JSON=$(grep '^{' "$WORK/sat.txt" | tail -1)
SAT_TPS=$(sed -E 's/.*"turns_per_s":([0-9.]+).*/\1/' <<<"$SAT_JSON")
HALF=$(awk -v t="$SAT_TPS" 'BEGIN { r = t / 2; if (r < 1) r = 1; printf "%.0f", r }')

say "open loop at half the saturated rate: $HALF turns/s"
"${LOADGEN[@]}" -c "$CONNS" -r "$HALF" | tee "$WORK/half.txt" >&2
HALF_JSON=$(grep '^{' "$WORK/half.txt" | tail -1)

say "one connection, closed loop: the latency of a turn with no queueing"
"${LOADGEN[@]}" -c 1 | tee "$WORK/one.txt" >&2
ONE_JSON=$(grep '^{' "$WORK/one.txt" | tail -1)

rm -f "$WORK/sampling"
wait "$SAMPLER" 2>/dev/null || true
while read -r svc r; do
    [ "${r:-0}" -gt "${PEAK[$svc]:-0}" ] && PEAK[$svc]=$r
done <"$WORK/rss-samples.txt"

errors_by() { # "" when none, else the kinds, e.g. " (503: 3, timeout: 1)"
    local by
    by=$(sed -E 's/.*"errors_by":\{([^}]*)\}.*/\1/' <<<"$1" | tr -d '"' | sed 's/:/: /g; s/,/, /g')
    [ -n "$by" ] && printf ' (%s)' "$by"
    return 0
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

mkdir -p "$OUT_DIR"
{
    echo "## Benchmark ($(date -u +%Y-%m-%d))"
    echo
    echo "Conditions: ${CPU:-unknown CPU}, $CORES cores (load generator and every service on the"
    echo "same machine), Release build, commit $COMMIT, Linux $(uname -r). Mesh: ${COUNT[router]} router,"
    echo "${COUNT[llm]} llm (rules backend), ${COUNT[tools]} tools, ${COUNT[memory]} memory, 1 gateway, Redis"
    echo "$(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/') without persistence; MESH_LOG_LEVEL=$MESH_LOG_LEVEL. Each turn is a full"
    echo "agent turn over HTTP: memory turn.begin, llm (tool call), tools policy.lookup, llm"
    echo "(answer), memory turn.end. Conversations of $TURNS turns (policy question, then"
    echo "follow-ups without the number), language $LANG_MIX, keep-alive connections,"
    echo "${WARMUP}s warm-up, ${DURATION}s measured. Load average before the run: $LOAD_BEFORE."
    echo
    echo "| run | turns/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    for run in sat half one; do
        case $run in
        sat) j=$SAT_JSON name="saturation, $CONNS connections (closed loop)" ;;
        half) j=$HALF_JSON name="open loop at $HALF turns/s, $CONNS connections" ;;
        one) j=$ONE_JSON name="1 connection (closed loop)" ;;
        esac
        printf '| %s | %s | %s | %s | %s | %s | %s | %s%s |\n' "$name" \
            "$(num "$j" turns_per_s %.0f)" "$(num "$j" p50_ms %.2f)" "$(num "$j" p90_ms %.2f)" \
            "$(num "$j" p99_ms %.2f)" "$(num "$j" p999_ms %.2f)" "$(num "$j" max_ms %.2f)" \
            "$(field "$j" errors)" "$(errors_by "$j")"
    done
    echo
    echo "| process | RSS idle MiB | RSS peak under load MiB |"
    echo "|---|---:|---:|"
    for svc in "${SERVICES[@]}" redis; do
        echo "| $svc (x$(wc -w <<<"${SVC_PIDS[$svc]}")) | $(mib "${IDLE[$svc]}") | $(mib "${PEAK[$svc]}") |"
    done
} >"$OUT_DIR/latest.md"

echo
cat "$OUT_DIR/latest.md"
say "written to bench/results/latest.md"
run_scenarios
