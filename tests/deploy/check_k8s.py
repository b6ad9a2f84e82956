#!/usr/bin/env python3
"""check_k8s.py - both Kubernetes overlays render and are consistent.

Renders deploy/k8s/overlays/{dev,prod} with `kubectl kustomize` and asserts on
the objects: every workload runs one of our binaries with liveness and
readiness probes on a declared port, resource requests and a memory limit, a
termination grace period covering MESH_DRAIN_MS, a non-root read-only
container; selectors match the pod labels; every Service selects a workload
and targets declared ports; container ports are the services' default ports;
every MESH_* variable set is one the binary reads, and every ConfigMap key it
references exists; the routers are a StatefulSet behind a headless Service and
the router lists name exactly its replicas; PDBs and autoscalers point at
workloads that exist; LLM workers scale on the router queue-depth metric;
only the gateway is reachable from outside and only memory reaches Redis;
every file under data/ is in a data ConfigMap (nothing silently missing).
"""
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
import deploy_lib as d  # noqa: E402


def sel_matches(sel, labels):
    return all(labels.get(k) == v for k, v in (sel or {}).items())


def check_overlay(name, known_env):
    objs = d.kustomize(name)
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    cms = {o["metadata"]["name"]: o.get("data", {}) for o in by_kind.get("ConfigMap", [])}
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    names = {w["metadata"]["name"]: w for w in workloads}
    mesh_services = {}
    for w in workloads:
        wname = "%s %s/%s" % (name, w["kind"], w["metadata"]["name"])
        spec = w["spec"]
        tmpl = spec["template"]
        labels = tmpl["metadata"].get("labels", {})
        if not spec["selector"].get("matchLabels") or not sel_matches(
                spec["selector"]["matchLabels"], labels):
            d.fail("%s: selector does not match the pod labels" % wname)
        pod = tmpl["spec"]
        for c in pod["containers"]:
            cname = "%s container %s" % (wname, c["name"])
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    d.fail("%s: no %s" % (cname, probe))
            res = c.get("resources", {})
            if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory"):
                d.fail("%s: no cpu/memory requests" % cname)
            if not res.get("limits", {}).get("memory"):
                d.fail("%s: no memory limit" % cname)
            ports = {p["containerPort"] for p in c.get("ports", [])}
            port_names = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                hg = c[probe].get("httpGet")
                if hg and hg["port"] not in port_names and hg["port"] not in ports:
                    d.fail("%s: %s probes an undeclared port %r" % (cname, probe, hg["port"]))
            svc = d.service_of_command(c.get("command"))
            if svc is None:
                if w["metadata"]["name"] == "redis" and name == "dev":
                    continue
                d.fail("%s: command %r is not a mesh binary" % (cname, c.get("command")))
            mesh_services[svc] = w
            if ports != d.DEFAULT_PORTS[svc]:
                d.fail("%s: ports %s, expected the defaults %s" % (cname, sorted(ports),
                                                                  sorted(d.DEFAULT_PORTS[svc])))
            env = {}
            for e in c.get("env", []):
                if e["name"].startswith("MESH_") and e["name"] not in known_env[svc]:
                    d.fail("%s: sets %s, which mesh-%s does not read" % (cname, e["name"], svc))
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    if ref["key"] not in cms.get(ref["name"], {}):
                        d.fail("%s: %s refers to a missing ConfigMap key %s/%s" %
                               (cname, e["name"], ref["name"], ref["key"]))
                    env[e["name"]] = cms[ref["name"]][ref["key"]]
                else:
                    env[e["name"]] = e.get("value")
            drain_ms = int(env.get("MESH_DRAIN_MS", known_env[svc].get("MESH_DRAIN_MS", "10000")))
            grace = pod.get("terminationGracePeriodSeconds", 30)
            if grace * 1000 < drain_ms + 2000:
                d.fail("%s: terminationGracePeriodSeconds %s does not cover MESH_DRAIN_MS %s" %
                       (cname, grace, drain_ms))
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation", True):
                d.fail("%s: must run read-only without privilege escalation" % cname)
            if not pod.get("securityContext", {}).get("runAsNonRoot"):
                d.fail("%s: must run as non-root" % wname)
            if svc == "router":
                if w["kind"] != "StatefulSet":
                    d.fail("%s: routers must be a StatefulSet" % wname)
            # Router endpoint lists name exactly the router replicas.
            for k in ("MESH_ROUTER_BACKENDS", "MESH_ROUTER_FRONTENDS"):
                if k in env:
                    router = names.get("router")
                    want = router["spec"].get("replicas", 1) if router else 0
                    pods = re.findall(r"tcp://router-(\d+)\.router:(\d+)", env[k])
                    port = "7002" if k == "MESH_ROUTER_BACKENDS" else "7001"
                    if sorted(int(p) for p, _ in pods) != list(range(want)) or \
                            any(pt != port for _, pt in pods):
                        d.fail("%s: %s=%s does not list the %d router pods on %s" %
                               (cname, k, env[k], want, port))
            if svc == "memory" and env.get("MESH_REDIS_HOST") != "redis":
                d.fail("%s: MESH_REDIS_HOST must be the redis Service" % cname)
    if set(mesh_services) != set(d.SERVICES):
        d.fail("%s: workloads run %s, expected all of %s" % (name, sorted(mesh_services), d.SERVICES))

    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    for s in services.values():
        sel = s["spec"].get("selector")
        if s["spec"].get("type") == "ExternalName":
            continue
        targets = [w for w in workloads
                   if sel_matches(sel, w["spec"]["template"]["metadata"].get("labels", {}))]
        if not sel or not targets:
            d.fail("%s Service %s selects no workload" % (name, s["metadata"]["name"]))
        for p in s["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            ok = any(tp in (cp.get("name"), cp["containerPort"])
                     for w in targets for c in w["spec"]["template"]["spec"]["containers"]
                     for cp in c.get("ports", []))
            if not ok:
                d.fail("%s Service %s: targetPort %r is no container port" %
                       (name, s["metadata"]["name"], tp))
    router_svc = services.get("router")
    if not router_svc or router_svc["spec"].get("clusterIP") != "None":
        d.fail("%s: the router Service must be headless" % name)
    if mesh_services["router"]["spec"].get("serviceName") != "router":
        d.fail("%s: the router StatefulSet must use the headless Service" % name)
    if "redis" not in services:
        d.fail("%s: no redis Service for the memory workers" % name)

    for pdb in by_kind.get("PodDisruptionBudget", []):
        sel = pdb["spec"]["selector"]["matchLabels"]
        if not any(sel_matches(sel, w["spec"]["template"]["metadata"]["labels"]) for w in workloads):
            d.fail("%s PDB %s selects no workload" % (name, pdb["metadata"]["name"]))
    for svc in d.SERVICES:
        w = mesh_services[svc]
        if not any(sel_matches(p["spec"]["selector"]["matchLabels"],
                               w["spec"]["template"]["metadata"]["labels"])
                   for p in by_kind.get("PodDisruptionBudget", [])):
            d.fail("%s: %s has no PodDisruptionBudget" % (name, svc))
        if not w["spec"]["template"]["spec"].get("topologySpreadConstraints"):
            d.fail("%s: %s has no topology spread" % (name, svc))
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind.get("HorizontalPodAutoscaler", [])}
    for svc in ("gateway", "tools", "memory"):
        h = hpas.get(svc)
        if not h or h["spec"]["scaleTargetRef"]["name"] not in names:
            d.fail("%s: %s has no HPA on an existing Deployment" % (name, svc))
        if not any(m.get("resource", {}).get("name") == "cpu" for m in h["spec"]["metrics"]):
            d.fail("%s: the %s HPA does not scale on CPU" % (name, svc))
    so = [o for o in by_kind.get("ScaledObject", []) if o["spec"]["scaleTargetRef"]["name"] == "llm"]
    if not so or "mesh_router_queue_depth" not in so[0]["spec"]["triggers"][0]["metadata"]["query"]:
        d.fail("%s: llm must scale on mesh_router_queue_depth (KEDA ScaledObject)" % name)

    # Network: only the gateway is open to all; only memory egresses to 6379; redis only from memory.
    for np in by_kind.get("NetworkPolicy", []):
        for rule in np["spec"].get("ingress", []):
            if not rule.get("from"):
                sel = np["spec"]["podSelector"].get("matchLabels", {})
                if sel != {"app.kubernetes.io/name": "mesh-gateway"}:
                    d.fail("%s NetworkPolicy %s opens %s to everyone" % (name, np["metadata"]["name"], sel))
        for rule in np["spec"].get("egress", []):
            if any(p.get("port") == 6379 for p in rule.get("ports", [])):
                sel = np["spec"]["podSelector"].get("matchLabels", {})
                if sel != {"app.kubernetes.io/name": "mesh-memory"}:
                    d.fail("%s NetworkPolicy %s lets %s reach Redis" % (name, np["metadata"]["name"], sel))
    if not any(np["spec"]["podSelector"] == {} and set(np["spec"].get("policyTypes", [])) ==
               {"Ingress", "Egress"} for np in by_kind.get("NetworkPolicy", [])):
        d.fail("%s: no default-deny NetworkPolicy" % name)
    ing = by_kind.get("Ingress", [])
    if not ing or ing[0]["metadata"].get("annotations", {}).get(
            "nginx.ingress.kubernetes.io/proxy-buffering") != "off":
        d.fail("%s: the gateway Ingress must not buffer (SSE)" % name)

    # Every data file is shipped in a ConfigMap.
    shipped = set()
    for cm in by_kind.get("ConfigMap", []):
        shipped |= set(cm.get("data", {}))
    for root, _, files in os.walk(os.path.join(d.SRC, "data")):
        for f in files:
            if f.endswith(".json") and f not in shipped:
                d.fail("%s: data file %s is in no ConfigMap (add it to the base kustomization)" %
                       (name, os.path.relpath(os.path.join(root, f), d.SRC)))
    print("k8s %s: %d objects consistent" % (name, len(objs)))


def main():
    if not shutil.which("kubectl"):
        print("SKIP: kubectl not installed (it renders the kustomize overlays offline)")
        return d.SKIP
    known = {svc: d.binary_env(svc) for svc in d.SERVICES}
    for overlay in ("dev", "prod"):
        check_overlay(overlay, known)
    return 0


if __name__ == "__main__":
    sys.exit(main())
