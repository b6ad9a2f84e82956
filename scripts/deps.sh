#!/usr/bin/env bash
# deps.sh - install what building, running and testing the mesh need on
# Debian 12. Does nothing when everything is present (checked with
# dpkg-query and the node_modules lockfile stamps), so `make run` / `make
# test` stay fast on a prepared machine. Runs apt-get as root directly,
# otherwise through sudo.
#
#   scripts/deps.sh          build and run (make run, make build)
#   scripts/deps.sh --test   also what the test suite needs (make test): the
#                            deploy checks' tools, Node.js with the npm
#                            packages of tests/node and tests/browser, and
#                            Debian's chromium for the browser tests
set -euo pipefail

cd "$(dirname "$0")/.."
MODE=${1:-}

# Needed to build and run.
REQUIRED=(
    build-essential cmake pkg-config
    libzmq3-dev libmsgpack-dev libhiredis-dev libuv1-dev libcurl4-openssl-dev
    libjansson-dev libhttp-parser-dev libcmocka-dev libssl-dev
    redis-server procps curl
    clang clang-format
)
# Needed by the test suite only.
TEST_REQUIRED=(
    python3 python3-yaml yamllint docker-compose chromium
)
# Sanitizer/fuzzer runtime for clang (make fuzz-smoke); its name carries the
# LLVM version, so it is only installed where the distribution has it.
OPTIONAL=(libclang-rt-14-dev)
# npm projects of the test suite (package-lock.json pins every version).
NPM_DIRS=(tests/node tests/browser)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: not a Debian system; install the equivalents of: ${REQUIRED[*]}" >&2
    exit 0
fi

wanted=("${REQUIRED[@]}")
if [ "$MODE" = "--test" ]; then
    wanted+=("${TEST_REQUIRED[@]}")
    # Node.js may come from Debian (nodejs + npm) or from elsewhere (a
    # nodesource nodejs carries npm): only ask apt when a command is missing.
    command -v node >/dev/null 2>&1 || wanted+=(nodejs)
    command -v npm >/dev/null 2>&1 || wanted+=(npm)
fi

missing=()
for p in "${wanted[@]}"; do
    installed "$p" || missing+=("$p")
done
optional_missing=()
for p in "${OPTIONAL[@]}"; do
    installed "$p" || optional_missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ] || [ ${#optional_missing[@]} -gt 0 ]; then
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
fi

if [ "$MODE" = "--test" ]; then
    # npm ci when node_modules is missing or older than the lockfile (the
    # stamp npm writes is node_modules/.package-lock.json).
    for d in "${NPM_DIRS[@]}"; do
        [ -f "$d/package-lock.json" ] || continue
        if [ ! -f "$d/node_modules/.package-lock.json" ] ||
            [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
            echo "deps.sh: npm ci in $d"
            (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
        fi
    done
fi
