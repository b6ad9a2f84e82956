#!/usr/bin/env python3
"""smoke.py - run the mesh exactly as the compose file or the k8s manifests would.

    smoke.py compose | k8s-dev

Takes each mesh container's command and environment from the deployment
files (the resolved compose config, or the rendered dev overlay with its
ConfigMap references resolved) on top of the image's ENV (Dockerfile), and
starts the same binaries on loopback. Only what a container network provides
is translated: service names (router, router-0.router, redis, 0.0.0.0)
become 127.0.0.1, each container port becomes a free local port (the same
mapping everywhere, so every address still matches), and the image's data
directory is the repository's data/ (the Dockerfile copies it there). Then:
every service's health check passes (the compose health-check command itself
is run), a conversation turn through the gateway is answered from the policy
data, and SIGTERM drains every service to exit 0.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import deploy_lib as d  # noqa: E402

READY_WAIT_S = 60
STOP_WAIT_S = 30
IMAGE_DATA = "/usr/share/mesh/data"
ORDER = ("router", "memory", "tools", "llm", "gateway")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def from_compose():
    cfg = d.compose_config()
    out = {}
    for name, s in cfg["services"].items():
        svc = d.service_of_command(s.get("command"))
        if svc:
            env = {k: str(v) for k, v in (s.get("environment") or {}).items()}
            hc = s.get("healthcheck", {}).get("test", [])[1:]
            out[svc] = {"command": s["command"], "env": env, "health": hc}
    return out


def from_k8s(overlay):
    objs = d.kustomize(overlay)
    cms = {o["metadata"]["name"]: o.get("data", {}) for o in objs if o["kind"] == "ConfigMap"}
    out = {}
    for w in objs:
        if w["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for c in w["spec"]["template"]["spec"]["containers"]:
            svc = d.service_of_command(c.get("command"))
            if not svc:
                continue
            env = {}
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                env[e["name"]] = cms[ref["name"]][ref["key"]] if ref else str(e.get("value", ""))
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            probe = c["readinessProbe"]["httpGet"]
            port = ports.get(probe["port"], probe["port"])
            out[svc] = {"command": c["command"], "env": env,
                        "health": ["mesh-healthcheck", str(port), probe["path"]]}
    return out


class Mapper:
    """Container network -> loopback: hosts to 127.0.0.1, ports to free local ports."""
    HOSTS = re.compile(r"^(0\.0\.0\.0|router(-\d+\.router)?|redis|gateway|memory|tools|llm)$")

    def __init__(self):
        self.ports = {}

    def port(self, p):
        p = int(p)
        if p not in self.ports:
            self.ports[p] = free_port()
        return self.ports[p]

    def value(self, key, v):
        def url(m):
            host = "127.0.0.1" if self.HOSTS.match(m.group(1)) else m.group(1)
            return "tcp://%s:%d" % (host, self.port(m.group(2)))
        v = re.sub(r"tcp://([A-Za-z0-9.-]+):(\d+)", url, v)
        if key.endswith("_PORT") and v.isdigit() and int(v) != 0:
            v = str(self.port(v))
        if key.endswith("_HOST") and self.HOSTS.match(v):
            v = "127.0.0.1"
        if v == IMAGE_DATA or v.startswith(IMAGE_DATA + "/"):
            v = os.path.join(d.SRC, "data") + v[len(IMAGE_DATA):]
        return v


def wait_health(binary_dir, health, mapper, deadline):
    cmd = [os.path.join(binary_dir, health[0]), str(mapper.port(health[1]))] + health[2:]
    while time.monotonic() < deadline:
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            return True
        time.sleep(0.2)  # polling a condition with a bounded deadline
    return False


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "compose"
    tool = "docker-compose" if mode == "compose" else "kubectl"
    if not shutil.which(tool):
        print("SKIP: %s not installed" % tool)
        return d.SKIP
    spec = from_compose() if mode == "compose" else from_k8s(mode[4:])
    if set(spec) != set(d.SERVICES):
        d.fail("%s defines %s, expected %s" % (mode, sorted(spec), d.SERVICES))
    image_env = d.dockerfile_env()
    mapper = Mapper()
    tmp = tempfile.mkdtemp(prefix="mesh-smoke-")
    procs = {}
    redis = None
    ok = False
    try:
        redis_port = mapper.port(6379)
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", tmp],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")}
        for svc in ORDER:
            s = spec[svc]
            env = dict(base)
            for k, v in list(image_env.items()) + list(s["env"].items()):
                env[k] = mapper.value(k, v)
            if svc == "memory":  # the memory default is 6379: mapped like any other port
                env.setdefault("MESH_REDIS_PORT", str(redis_port))
            cmd = [os.path.join(d.BIN, s["command"][0])] + list(s["command"][1:])
            log = open(os.path.join(tmp, svc + ".log"), "w")
            procs[svc] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=log), log)
        deadline = time.monotonic() + READY_WAIT_S
        for svc in ORDER:
            if not wait_health(d.BIN, spec[svc]["health"], mapper, deadline):
                d.fail("%s: %s never passed its health check %r" % (mode, svc, spec[svc]["health"]))
        gw_port = mapper.port(spec["gateway"]["env"].get("MESH_HTTP_PORT", "8080"))
        body = json.dumps({"message_id": "smoke-1",
                           "text": "我的保单 P10023 的免赔额是多少？"}).encode()
        req = urllib.request.Request(
            "http://127.0.0.1:%d/v1/conversations/smoke-%s/messages" % (gw_port, mode.replace("-", "")),
            data=body, headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            if r.status != 200:
                d.fail("%s: turn answered %d" % (mode, r.status))
            final = json.loads(r.read())
        reply = final.get("reply", "")
        if "10000" not in reply.replace(",", "") and "1万" not in reply:
            d.fail("%s: the answer does not carry P10023's deductible: %r" % (mode, reply))
        print("%s: turn answered by %s: %s" % (mode, final.get("agent"), reply[:80]))
        for svc in reversed(ORDER):
            p, _ = procs[svc]
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                d.fail("%s: %s did not stop within %d s of SIGTERM" % (mode, svc, STOP_WAIT_S))
            if rc != 0:
                d.fail("%s: %s exited %d after SIGTERM (drain must exit 0)" % (mode, svc, rc))
        ok = True
        return 0
    finally:
        for p, log in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
        if not ok:
            for svc in ORDER:
                path = os.path.join(tmp, svc + ".log")
                if os.path.exists(path):
                    print("--- %s log (tail) ---" % svc, file=sys.stderr)
                    print("".join(open(path).readlines()[-15:]), file=sys.stderr)
        if redis:
            redis.terminate()
            redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
