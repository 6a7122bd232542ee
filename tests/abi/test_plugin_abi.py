#!/usr/bin/python3
"""What a plugin sees of poolhost (#11): exactly the module ABI.

1. The poolhost executable exports, of its own functions, exactly the ones
   module.h marks PH_API, and those are exactly api/ph_exports.list (the
   symbols of the C library and of a sanitizer runtime are not its own).
2. A plugin that calls an internal function (pool_submit) is refused at
   start, in both isolation modes, with the missing symbol named.
3. A plugin author's build works: the header and poolhost-module.pc are
   installed (meson install --tags devel into a scratch DESTDIR), the
   example plugin is compiled with `cc -shared -fPIC $(pkg-config --cflags
   --libs poolhost-module)` against that installation, and poolhost loads
   it and runs its functions, in both isolation modes.

Usage: test_plugin_abi.py POOLHOST MODULE_H EXPORTS_LIST EXAMPLE_C
           BUILD_ROOT NM PKG_CONFIG MESON CC...
with the internal-symbol plugin in $PH_TEST_PLUGIN_INTERNAL_SYMBOL.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

# Names the service's own code uses (one prefix per module, and main).
OWN = re.compile(r"^(ph_|pool_|server_|main$)")

failures = []


def check(ok, what, detail=""):
    print(("PASS: " if ok else "FAIL: ") + what)
    if not ok:
        if detail:
            print("    " + detail.replace("\n", "\n    "))
        failures.append(what)


def api_names(module_h):
    """The functions module.h marks PH_API."""
    with open(module_h, encoding="utf-8") as f:
        text = f.read()
    return set(re.findall(r"^PH_API\b[^;(]*?\b(ph_\w+)\(", text, re.M))


def listed_names(exports_list):
    with open(exports_list, encoding="utf-8") as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    return set(re.findall(r"(\w+)\s*;", text))


def exported_own(nm, binary):
    """The poolhost's own symbols in its dynamic symbol table."""
    out = subprocess.run([nm, "-D", "--defined-only", binary], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and "@" not in fields[2]:
            names.add(fields[2])
    return {n for n in names if OWN.match(n)}, len(out.splitlines())


def start(poolhost, log, *args):
    return subprocess.Popen(
        [poolhost, "--listen", "127.0.0.1:0", "--threads", "2",
         "--log-format", "text", *args],
        stdout=subprocess.DEVNULL, stderr=log)


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def refused(poolhost, plugin, isolation, work):
    """Starts poolhost with plugin; returns (exit code, or None when it
    started serving or did not stop, and its log)."""
    log = os.path.join(work, "refused-%s.log" % isolation)
    with open(log, "wb") as f:
        proc = start(poolhost, f, "--isolation", isolation, "--plugin", plugin)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if re.search(r" listening ", read(log)):
            break
        time.sleep(0.02)
    code = proc.poll()
    if code is None:
        proc.kill()
        proc.wait()
    return code, read(log)


def call(port, function, args):
    """POSTs a synchronous call; returns (status, JSON body), or (0, the
    error) when no answer came."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/calls",
                     body=json.dumps({"function": function, "args": args}),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        status, body = r.status, r.read()
    except OSError as e:
        return 0, {"error": repr(e)}
    finally:
        conn.close()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"unparsed": body.decode("utf-8", "replace")}


def serve_plugin(poolhost, plugin, isolation, work):
    """Starts poolhost with plugin and calls its two functions."""
    what = "%s mode: poolhost loads the pkg-config-built plugin" % isolation
    log = os.path.join(work, "serve-%s.log" % isolation)
    with open(log, "wb") as f:
        proc = start(poolhost, f, "--isolation", isolation, "--plugin", plugin)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            m = re.search(r" listening .*port=(\d+)", read(log))
            if m:
                port = int(m.group(1))
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
        check(port is not None, what, read(log)[-2000:])
        if port is None:
            return
        status, body = call(port, "greet", {"name": "Ada"})
        check(status == 200 and body.get("result") ==
              {"greeting": "Hello, Ada!"},
              "%s mode: greet answers Hello, Ada!" % isolation,
              "%d %s" % (status, body))
        status, body = call(port, "dot", {"a": [1, 2, 3], "b": [4, 5, 6]})
        check(status == 200 and body.get("result") == {"dot": 32.0},
              "%s mode: dot (ph_reduce, ph_log) answers 32" % isolation,
              "%d %s" % (status, body))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        check(code == 0, "%s mode: poolhost stops cleanly" % isolation,
              "exit %s\n%s" % (code, read(log)[-2000:]))


def build_with_pkg_config(example_c, build_root, pkg_config, meson, cc, work):
    """Installs the devel files into work/root and builds the example
    against them; returns the plugin's path or None."""
    root = os.path.join(work, "root")
    inst = subprocess.run(
        [meson, "install", "-C", build_root, "--no-rebuild", "--tags",
         "devel", "--destdir", root], capture_output=True, text=True)
    check(inst.returncode == 0, "meson install --tags devel",
          inst.stdout + inst.stderr)
    headers = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
               if f == "module.h"]
    pcs = [d for d, _, fs in os.walk(root) for f in fs
           if f == "poolhost-module.pc"]
    check(len(headers) == 1 and headers[0].endswith("/poolhost/module.h"),
          "the header is installed as poolhost/module.h", str(headers))
    check(len(pcs) == 1, "poolhost-module.pc is installed", str(pcs))
    if len(headers) != 1 or len(pcs) != 1:
        return None
    env = dict(os.environ, PKG_CONFIG_PATH=pcs[0], PKG_CONFIG_SYSROOT_DIR=root)
    env.pop("PKG_CONFIG_LIBDIR", None)
    pc = subprocess.run([pkg_config, "--cflags", "--libs", "poolhost-module"],
                        env=env, capture_output=True, text=True)
    flags = pc.stdout.split()
    include = "-I" + os.path.dirname(os.path.dirname(headers[0]))
    check(pc.returncode == 0 and include in flags,
          "pkg-config --cflags poolhost-module names the installed headers",
          "rc %d: %s%s (want %s)" % (pc.returncode, pc.stdout, pc.stderr,
                                     include))
    check("-ljansson" in flags, "pkg-config --libs poolhost-module has jansson",
          pc.stdout)
    plugin = os.path.join(work, "example_plugin.so")
    cmd = cc + ["-std=c17", "-Wall", "-Wextra", "-Werror", "-O2", "-shared",
                "-fPIC", "-o", plugin, example_c] + flags
    build = subprocess.run(cmd, capture_output=True, text=True)
    check(build.returncode == 0, "the example plugin builds with pkg-config",
          " ".join(cmd) + "\n" + build.stdout + build.stderr)
    return plugin if build.returncode == 0 else None


def main():
    internal_plugin = os.environ.get("PH_TEST_PLUGIN_INTERNAL_SYMBOL")
    if len(sys.argv) < 10 or not internal_plugin:
        print(__doc__, file=sys.stderr)
        return 2
    (poolhost, module_h, exports_list, example_c, build_root, nm, pkg_config,
     meson) = sys.argv[1:9]
    cc = sys.argv[9:]

    api = api_names(module_h)
    listed = listed_names(exports_list)
    exported, total = exported_own(nm, poolhost)
    print("poolhost exports %d symbols, %d of its own" % (total,
                                                         len(exported)))
    check(len(api) >= 14, "module.h marks the ABI PH_API", str(sorted(api)))
    check(listed == api, "api/ph_exports.list lists exactly the PH_API "
          "functions", "only listed: %s; only PH_API: %s"
          % (sorted(listed - api), sorted(api - listed)))
    check(exported == api, "poolhost exports exactly the PH_API functions",
          "exported beyond the ABI: %s; missing: %s"
          % (sorted(exported - api), sorted(api - exported)))

    with tempfile.TemporaryDirectory(prefix="ph-abi-") as work:
        for isolation in ("process", "thread"):
            code, log = refused(poolhost, internal_plugin, isolation, work)
            check(code == 1 and "undefined symbol: pool_submit" in log
                  and internal_plugin in log,
                  "%s mode: a plugin calling pool_submit is refused at "
                  "start, naming the symbol" % isolation,
                  "exit %s\n%s" % (code, log[-2000:]))
        plugin = build_with_pkg_config(example_c, build_root, pkg_config,
                                       meson, cc, work)
        if plugin:
            for isolation in ("process", "thread"):
                serve_plugin(poolhost, plugin, isolation, work)

    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
