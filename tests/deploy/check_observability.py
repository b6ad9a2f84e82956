#!/usr/bin/env python3
"""check_observability.py - the dashboard and the alert rules name real metrics.

Every `mesh_*` series named by deploy/prometheus/alerts.yml and
deploy/grafana/mesh-dashboard.json (histogram `_bucket`/`_sum`/`_count`
suffixes folded) must be registered by some service's source (a quoted
"mesh_..." name passed to the metrics registry), so a renamed metric cannot
leave a silent panel or an alert that never fires. The rule file must have the
shape Prometheus loads (groups of rules with alert, expr, for, labels.severity,
annotations.summary), every alert name unique.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import deploy_lib as d  # noqa: E402
import yaml  # noqa: E402

SUFFIXES = ("_bucket", "_sum", "_count")


def registered_metrics():
    names = set()
    for top in ("lib", "services"):
        for root, _, files in os.walk(os.path.join(d.SRC, top)):
            for f in files:
                if f.endswith(".c"):
                    text = open(os.path.join(root, f), encoding="utf-8").read()
                    names |= set(re.findall(r'"(mesh_[a-z0-9_]+)"', text))
    return names


def used_metrics(text):
    out = set()
    for m in re.findall(r"\b(mesh_[a-z0-9_]+)", text):
        for s in SUFFIXES:
            if m.endswith(s):
                m = m[: -len(s)]
                break
        out.add(m)
    return out


def main():
    known = registered_metrics()
    alerts_path = os.path.join(d.SRC, "deploy", "prometheus", "alerts.yml")
    rules = yaml.safe_load(open(alerts_path))
    seen = set()
    exprs = []
    for g in rules.get("groups", []):
        if not g.get("name") or not g.get("rules"):
            d.fail("alerts.yml: a group without a name or rules")
        for r in g["rules"]:
            name = r.get("alert")
            if not name or name in seen:
                d.fail("alerts.yml: missing or repeated alert name %r" % name)
            seen.add(name)
            for k in ("expr", "for"):
                if not r.get(k):
                    d.fail("alerts.yml: %s has no %s" % (name, k))
            if not r.get("labels", {}).get("severity") or not r.get("annotations", {}).get("summary"):
                d.fail("alerts.yml: %s needs labels.severity and annotations.summary" % name)
            exprs.append((name, str(r["expr"])))
    dash = json.load(open(os.path.join(d.SRC, "deploy", "grafana", "mesh-dashboard.json")))
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            exprs.append(("panel %r" % p.get("title"), t.get("expr", "")))
    n = 0
    for where, expr in exprs:
        for m in used_metrics(expr):
            n += 1
            if m not in known:
                d.fail("%s uses %s, which no service registers" % (where, m))
    for need in ("mesh_handoff_wait_seconds", "mesh_handoff_queue_length",
                 "mesh_channel_deliveries_total", "mesh_router_queue_depth"):
        if not any(need in e for _, e in exprs):
            d.fail("neither the dashboard nor the alerts look at %s" % need)
    print("observability: %d alerts, %d metric references, all registered" % (len(seen), n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
