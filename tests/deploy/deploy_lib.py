"""deploy_lib.py - shared helpers of the deploy checks (tests/deploy).

Reads the compose file (through `docker-compose config`, so anchors, merges
and variable defaults are resolved exactly as Compose resolves them) and the
Kubernetes overlays (through `kubectl kustomize`), and asks each binary for
the environment variables it reads (`mesh-<service> --help`).
"""
import os
import re
import subprocess
import sys

import yaml

SRC = os.environ.get("MESH_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MESH_BIN_DIR") or os.path.join(SRC, "build", "bin")
COMPOSE = os.path.join(SRC, "deploy", "compose", "docker-compose.yml")
K8S = os.path.join(SRC, "deploy", "k8s")
SERVICES = ("router", "llm", "tools", "memory", "gateway")
# Ports every service listens on by default (docs/configuration.md).
DEFAULT_PORTS = {
    "router": {7001, 7002, 9101},
    "llm": {9102},
    "tools": {9103},
    "memory": {9104},
    "gateway": {8080},
}
SKIP = 77  # ctest SKIP_RETURN_CODE


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def binary_env(service):
    """The MESH_* variables mesh-<service> reads, with their defaults, from --help."""
    out = run([os.path.join(BIN, "mesh-" + service), "--help"])
    env = {}
    for m in re.finditer(r"^\s+(MESH_[A-Z0-9_]+)\s+\(default: ([^)]*)\)", out, re.M):
        env[m.group(1)] = m.group(2)
    if not env:
        fail("mesh-%s --help lists no variables" % service)
    return env


def compose_config(extra_files=()):
    files = ["-f", COMPOSE]
    for f in extra_files:
        files += ["-f", f]
    out = run(["docker-compose"] + files + ["config"], cwd=os.path.dirname(COMPOSE))
    return yaml.safe_load(out)


def kustomize(overlay):
    out = run(["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone",
               os.path.join(K8S, "overlays", overlay)])
    return [d for d in yaml.safe_load_all(out) if d]


def dockerfile_env():
    """ENV defaults of the runtime stage of the Dockerfile (the last stage)."""
    text = open(os.path.join(SRC, "Dockerfile")).read().replace("\\\n", " ")
    stage = text.split("\nFROM ")[-1]
    env = {}
    for line in stage.splitlines():
        if line.startswith("ENV "):
            for m in re.finditer(r"([A-Z0-9_]+)=(\S+)", line):
                env[m.group(1)] = m.group(2)
    return env


def service_of_command(cmd):
    """'mesh-router' -> 'router' (None for anything else)."""
    if not cmd:
        return None
    name = os.path.basename(cmd[0])
    return name[5:] if name.startswith("mesh-") and name[5:] in SERVICES else None
