#!/usr/bin/env python3
"""check_image_libs.py - the runtime image has every shared library the binaries need.

No container engine runs here, so the image is never built in the test suite.
What can be checked offline is whether the runtime stage's package list is
complete: every shared library each built binary links (ldd) belongs to a
Debian package (dpkg -S) that is either named in the Dockerfile's runtime
stage or pulled in by one of those (apt-cache depends --recurse), or is part
of every Debian image (libc6, libgcc-s1). And no -dev package or compiler is
in the runtime stage.
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import deploy_lib as d  # noqa: E402

BINARIES = ["mesh-" + s for s in d.SERVICES] + ["mesh-healthcheck"]
BASE = {"libc6", "libgcc-s1"}  # in debian:bookworm-slim
# Sanitizer runtimes: linked only by the ASan/UBSan test build (make test-asan),
# never by the image's Release build.
SANITIZER_LIB = re.compile(r"/lib(asan|ubsan|lsan|tsan)\.so")


def runtime_packages():
    text = open(os.path.join(d.SRC, "Dockerfile")).read().replace("\\\n", " ")
    stage = text.split("\nFROM ")[-1]
    pkgs = set()
    for m in re.finditer(r"apt-get install ([^&]*)", stage):
        pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


_OWNERS = {}


def owner(path):
    """The package owning a library path (merged /usr tried both ways), cached."""
    if path not in _OWNERS:
        _OWNERS[path] = _owner(path)
    return _OWNERS[path]


def _owner(path):
    real = os.path.realpath(path)
    cands = {path, real}
    for p in list(cands):
        if p.startswith("/usr/"):
            cands.add(p[4:])
        else:
            cands.add("/usr" + p)
    for p in cands:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


def main():
    for tool in ("ldd", "dpkg", "apt-cache"):
        if not shutil.which(tool):
            print("SKIP: %s not available" % tool)
            return d.SKIP
    pkgs = runtime_packages()
    if not pkgs:
        d.fail("Dockerfile: no apt-get install in the runtime stage")
    bad = [p for p in pkgs if p.endswith("-dev") or p in ("gcc", "clang", "cmake", "build-essential")]
    if bad:
        d.fail("Dockerfile runtime stage installs build tools: %s" % ", ".join(bad))
    out = d.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                 "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + sorted(pkgs))
    provided = {l.strip() for l in out.splitlines() if l and not l.startswith(" ")}
    provided |= pkgs | BASE
    n = 0
    for b in BINARIES:
        path = os.path.join(d.BIN, b)
        if not os.access(path, os.X_OK):
            d.fail("%s is not built" % b)
        for line in d.run(["ldd", path]).splitlines():
            m = re.search(r"=> (/\S+)", line)
            if not m or SANITIZER_LIB.search(m.group(1)):
                continue
            pkg = owner(m.group(1))
            if pkg is None:
                d.fail("%s links %s, which no Debian package owns" % (b, m.group(1)))
            pkg = pkg.split(":")[0]
            n += 1
            if pkg not in provided:
                d.fail("%s links %s from package %s, which the runtime stage does not install"
                       % (b, m.group(1), pkg))
    print("image: %d runtime packages cover %d library links of %d binaries"
          % (len(pkgs), n, len(BINARIES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
