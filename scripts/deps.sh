#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages that building, testing and running
# the mesh need. Does nothing when they are all present (checked with
# dpkg-query), so `make run` / `make test` stay fast on a prepared machine.
# Runs apt-get as root directly, otherwise through sudo.
set -euo pipefail

# Needed to build, test and run.
REQUIRED=(
    build-essential cmake pkg-config
    libzmq3-dev libmsgpack-dev libhiredis-dev libuv1-dev libcurl4-openssl-dev
    libjansson-dev libhttp-parser-dev libcmocka-dev
    redis-server procps curl
    clang clang-format
    python3 python3-yaml yamllint docker-compose
)
# Sanitizer/fuzzer runtime for clang (make fuzz-smoke); its name carries the
# LLVM version, so it is only installed where the distribution has it.
OPTIONAL=(libclang-rt-14-dev)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: not a Debian system; install the equivalents of: ${REQUIRED[*]}" >&2
    exit 0
fi

missing=()
for p in "${REQUIRED[@]}"; do
    installed "$p" || missing+=("$p")
done
optional_missing=()
for p in "${OPTIONAL[@]}"; do
    installed "$p" || optional_missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && [ ${#optional_missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "deps.sh: missing packages (${missing[*]} ${optional_missing[*]}) and not root, no sudo" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps.sh: installing ${missing[*]} ${optional_missing[*]}"
"${SUDO[@]}" apt-get update -qq
for p in "${optional_missing[@]}"; do
    if apt-cache show "$p" >/dev/null 2>&1; then
        missing+=("$p")
    else
        echo "deps.sh: optional package $p is not available here; skipping" >&2
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
