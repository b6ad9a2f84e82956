#!/usr/bin/env python3
"""check_compose.py - the compose stack is valid and consistent with the binaries.

Asserts: `docker-compose config -q` accepts the file (alone and with the model
override); every mesh service runs one of our binaries and exists in the build;
every MESH_* variable it sets is one that binary reads (no typos silently
ignored); addresses point at compose services that exist and at the ports the
services listen on; every service has a health check on its own port; workers
can be scaled (no container_name, no published ports); Redis persists (AOF on
a named volume); the gateway is published; the model override only adds
settings the llm binary reads, and keeps secrets out of the YAML.
"""
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
import deploy_lib as d  # noqa: E402


def check_env(svc, env, known, where):
    for k in env:
        if k.startswith("MESH_") and k not in known:
            d.fail("%s: %s sets %s, which mesh-%s does not read" % (where, svc, k, svc))


def main():
    if not shutil.which("docker-compose"):
        print("SKIP: docker-compose not installed (scripts/deps.sh installs it)")
        return d.SKIP
    compose_dir = os.path.dirname(d.COMPOSE)
    d.run(["docker-compose", "-f", d.COMPOSE, "config", "-q"], cwd=compose_dir)
    cfg = d.compose_config()
    services = cfg["services"]
    image_env = d.dockerfile_env()
    # The image's ENV reaches every binary: each variable must be read by at least one.
    read_by_any = set()
    for svc in d.SERVICES:
        read_by_any |= set(d.binary_env(svc))
    for k in image_env:
        if k.startswith("MESH_") and k not in read_by_any:
            d.fail("Dockerfile ENV %s is read by no mesh binary" % k)
    seen = set()
    for name, s in services.items():
        svc = d.service_of_command(s.get("command"))
        if name == "redis":
            cmd = " ".join(s["command"])
            if "--appendonly yes" not in cmd:
                d.fail("redis: AOF persistence is not on")
            vols = s.get("volumes", [])
            named = set(cfg.get("volumes", {}))

            def is_named_data(v):
                if isinstance(v, str):  # compose v1 prints the short form "name:/data:rw"
                    parts = v.split(":")
                    return len(parts) >= 2 and parts[0] in named and parts[1] == "/data"
                return v.get("type") == "volume" and v.get("target") == "/data"

            if not any(is_named_data(v) for v in vols):
                d.fail("redis: /data is not a named volume")
            continue
        if svc is None:
            d.fail("%s: command %r is not a mesh binary" % (name, s.get("command")))
        if not os.access(os.path.join(d.BIN, "mesh-" + svc), os.X_OK):
            d.fail("%s: mesh-%s is not built" % (name, svc))
        seen.add(svc)
        known = d.binary_env(svc)
        env = s.get("environment", {})
        check_env(svc, env, known, "compose")
        # Addresses name compose services and the ports they listen on.
        for k, v in env.items():
            for host, port in re.findall(r"tcp://([a-z0-9.-]+):(\d+)", str(v)):
                if host in ("0.0.0.0", "127.0.0.1"):
                    continue
                if host not in services:
                    d.fail("%s: %s=%s names no compose service" % (name, k, v))
                target = d.service_of_command(services[host].get("command"))
                if int(port) not in d.DEFAULT_PORTS.get(target, set()):
                    d.fail("%s: %s=%s: %s does not listen on %s" % (name, k, v, host, port))
        if svc == "memory" and env.get("MESH_REDIS_HOST") not in services:
            d.fail("memory: MESH_REDIS_HOST names no compose service")
        hc = s.get("healthcheck", {}).get("test", [])
        port = env.get("MESH_METRICS_PORT") if svc != "gateway" else env.get("MESH_HTTP_PORT")
        if len(hc) < 3 or hc[1] != "mesh-healthcheck" or hc[2] != str(port):
            d.fail("%s: the health check must probe its own port %s, got %r" % (name, port, hc))
        if int(port) not in d.DEFAULT_PORTS[svc]:
            d.fail("%s: port %s is not the service's default" % (name, port))
        if svc in ("llm", "tools", "memory"):
            if "container_name" in s or s.get("ports"):
                d.fail("%s: a scalable worker must not fix a container name or host ports" % name)
            if "tcp://router:7002" not in env.get("MESH_ROUTER_BACKENDS", ""):
                d.fail("%s: does not connect to the router backend" % name)
        if "stop_grace_period" not in s:
            d.fail("%s: no stop_grace_period (drain needs MESH_DRAIN_MS)" % name)
    if seen != set(d.SERVICES):
        d.fail("compose runs %s, expected all of %s" % (sorted(seen), d.SERVICES))
    gw = services["gateway"]
    if not any(str(p.get("target")) == "8080" for p in gw.get("ports", [])):
        d.fail("gateway: port 8080 is not published")

    # The overrides: valid, add only variables their binary reads, no secrets inline.
    for override, env_name, svc in (("docker-compose.model.yml", "model.env", "llm"),
                                    ("docker-compose.channels.yml", "channels.env", "gateway")):
        path = os.path.join(compose_dir, override)
        example = os.path.join(compose_dir, env_name + ".example")
        env_file = os.path.join(compose_dir, env_name)
        created = not os.path.exists(env_file)
        if created:
            shutil.copyfile(example, env_file)
        try:
            cfg2 = d.compose_config([path])
        finally:
            if created:
                os.unlink(env_file)
        known = d.binary_env(svc)
        check_env(svc, cfg2["services"][svc].get("environment", {}), known, override)
        for line in open(example):
            line = line.strip()
            if line and not line.startswith("#"):
                k = line.split("=", 1)[0]
                if k not in known:
                    d.fail("%s: %s is not read by mesh-%s" % (env_name + ".example", k, svc))
        if re.search(r"(API_KEY|SECRET|TOKEN)\s*:", open(path).read()):
            d.fail("%s holds a secret; use %s" % (override, env_name))
    print("compose: %d services consistent with the binaries" % len(services))
    return 0


if __name__ == "__main__":
    sys.exit(main())
