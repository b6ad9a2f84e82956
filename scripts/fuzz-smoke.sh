#!/usr/bin/env bash
# fuzz-smoke.sh - build the libFuzzer targets with clang and run each one for a while.
#
#   scripts/fuzz-smoke.sh [seconds-per-target] [work-dir]
#
# Defaults: 20 seconds per target (or $MESH_FUZZ_SECONDS), work dir build-fuzz/ in
# the checkout (per checkout, so two clones never share a CMake cache).
# The checked-in corpus (fuzz/corpus/<target>) is read, never written: new inputs
# go to <work-dir>/corpus-<target>. Exits non-zero if a target crashes, leaks,
# hangs or fails to build; the reproducer is <work-dir>/crash-<target>-*.
set -euo pipefail

secs="${1:-${MESH_FUZZ_SECONDS:-20}}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${2:-$repo/build-fuzz}"
targets=(mp proto msg json)

case "$secs" in
'' | *[!0-9]*) echo "usage: $0 [seconds-per-target] [work-dir]" >&2; exit 2 ;;
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

failed=0
for t in "${targets[@]}"; do
    corpus="$work/corpus-$t"
    log="$work/fuzz_$t.log"
    mkdir -p "$corpus"
    rm -f "$work/crash-$t-"*
    # -timeout: one input taking longer than 10 s counts as a hang (a failure).
    if "$work/build/bin/fuzz_$t" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -dict="$repo/fuzz/mesh.dict" -artifact_prefix="$work/crash-$t-" \
        "$corpus" "$repo/fuzz/corpus/$t" >"$log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
        echo "fuzz_$t: ok (${runs:-?} runs in ${secs}s)"
    else
        echo "fuzz_$t: FAILED - log $log" >&2
        grep -E "ERROR|SUMMARY|==[0-9]+==|Test unit written" "$log" | head -n 20 >&2 || true
        failed=1
    fi
done
exit "$failed"
