#!/usr/bin/env bash
# fuzz-smoke.sh - build the libFuzzer targets with clang and run each one for a while.
#
#   scripts/fuzz-smoke.sh [seconds-per-target] [work-dir]
#
# Defaults: 20 seconds per target (or $MESH_FUZZ_SECONDS), work dir build-fuzz/ in
# the checkout (per checkout, so two clones never share a CMake cache).
# Targets run $MESH_FUZZ_JOBS at a time (default: the number of CPUs), each on one
# core, so the wall time is about ceil(targets / jobs) * seconds plus the build.
# The checked-in corpus (fuzz/corpus/<target>) is read, never written: new inputs
# go to <work-dir>/corpus-<target>. Exits non-zero if a target crashes, leaks,
# hangs or fails to build; the reproducer is <work-dir>/crash-<target>-*.
set -euo pipefail

secs="${1:-${MESH_FUZZ_SECONDS:-20}}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${2:-$repo/build-fuzz}"
jobs="${MESH_FUZZ_JOBS:-$(nproc)}"
# One per decoder of untrusted bytes; fuzz/README.md says what each covers.
targets=(mp proto msg json sse rules medical openai_req wecom)

case "$secs" in
'' | *[!0-9]*) echo "usage: $0 [seconds-per-target] [work-dir]" >&2; exit 2 ;;
esac
case "$jobs" in
'' | 0 | *[!0-9]*) echo "fuzz-smoke: MESH_FUZZ_JOBS must be a positive number" >&2; exit 2 ;;
esac
command -v clang >/dev/null || { echo "fuzz-smoke: clang not found" >&2; exit 2; }
mkdir -p "$work"

echo "fuzz-smoke: building in $work/build"
if ! cmake -S "$repo" -B "$work/build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMESH_BUILD_FUZZERS=ON -DMESH_BUILD_TESTS=OFF >"$work/cmake.log" 2>&1; then
    tail -n 30 "$work/cmake.log" >&2
    exit 1
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=("fuzz_$t"); done
if ! cmake --build "$work/build" -j"$(nproc)" --target "${build_targets[@]}" >"$work/build.log" 2>&1; then
    tail -n 30 "$work/build.log" >&2
    exit 1
fi

# Run one target; its exit status lands in $work/fuzz_<t>.rc.
run_one() {
    local t="$1"
    local corpus="$work/corpus-$t"
    mkdir -p "$corpus"
    rm -f "$work/crash-$t-"*
    # -timeout: one input taking longer than 10 s counts as a hang (a failure).
    local rc=0
    "$work/build/bin/fuzz_$t" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -dict="$repo/fuzz/mesh.dict" -artifact_prefix="$work/crash-$t-" \
        "$corpus" "$repo/fuzz/corpus/$t" >"$work/fuzz_$t.log" 2>&1 || rc=$?
    echo "$rc" >"$work/fuzz_$t.rc"
}

pids=()
for t in "${targets[@]}"; do
    rm -f "$work/fuzz_$t.rc"
    run_one "$t" &
    pids+=("$!")
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        wait "${pids[0]}"
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p"; done

failed=0
for t in "${targets[@]}"; do
    log="$work/fuzz_$t.log"
    if [ "$(cat "$work/fuzz_$t.rc" 2>/dev/null || echo 1)" = 0 ]; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
        echo "fuzz_$t: ok (${runs:-?} runs in ${secs}s)"
    else
        echo "fuzz_$t: FAILED - log $log" >&2
        grep -E "ERROR|SUMMARY|==[0-9]+==|Test unit written" "$log" | head -n 20 >&2 || true
        failed=1
    fi
done
exit "$failed"
