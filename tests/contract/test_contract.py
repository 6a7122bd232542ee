#!/usr/bin/python3
"""One contract: runs a live poolhost through every route, with successes
and errors, and validates each answer against api/openapi.yaml with a real
JSON Schema validator (python3-jsonschema, Draft 2020-12 as OpenAPI 3.1
uses): the status must be documented for the operation (or fall under its
`default`), the Content-Type must be one the spec lists, a JSON body must
validate against the schema, and the documented headers must be present.
Every problem type must be in the spec's slug list and have a page.
Each function's `args` must be a valid JSON Schema that the arguments of
the calls made here pass or fail as the calls did, and every event of the
GET /v1/events stream must validate against the spec's `Event` schema.

Usage: test_contract.py POOLHOST_BIN OPENAPI_YAML
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import jsonschema
import yaml

TOKEN = "contract-token"


class Server:
    """A poolhost process on an ephemeral loopback port."""

    def __init__(self, binary, *args, env=None):
        self.log = tempfile.NamedTemporaryFile(prefix="ph-contract-",
                                               delete=False)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--enable-fault-injection",
             *args],
            stdout=subprocess.DEVNULL, stderr=self.log, env=full_env)
        self.port = 0
        deadline = time.time() + 30
        while not self.port and time.time() < deadline:
            with open(self.log.name, encoding="utf-8", errors="replace") as f:
                m = re.search(r" listening .*port=(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.01)
        if not self.port:
            raise RuntimeError("poolhost did not start: " + self.log.name)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        os.unlink(self.log.name)
        return code


class Answer:
    def __init__(self, method, path, status, headers, body):
        self.method, self.path, self.status = method, path, status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)


def request(srv, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    hdrs = dict(headers or {})
    if body is not None and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return Answer(method, path, r.status, r.getheaders(), data)


def raw(srv, data, path):
    """Sends raw bytes; returns the answer parsed by http.client."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(data)
    r = http.client.HTTPResponse(s, method="GET")
    r.begin()
    body = r.read()
    s.close()
    return Answer(data.split(b" ")[0].decode(), path, r.status, r.getheaders(),
                  body)


class Contract:
    def __init__(self, spec_path):
        with open(spec_path, encoding="utf-8") as f:
            self.spec = yaml.safe_load(f)
        self.resolver = jsonschema.RefResolver("", self.spec)
        self.passed = 0
        self.failures = []
        self.slugs = set(self.spec["components"]["schemas"]["ProblemSlug"]
                         ["enum"])
        self.paths = []
        for template, item in self.spec["paths"].items():
            rx = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+",
                              re.escape(template)) + "$"
            self.paths.append((re.compile(rx), template, item))

    def resolve(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            _, obj = self.resolver.resolve(obj["$ref"])
        return obj

    def operation(self, method, path):
        path = path.split("?")[0]
        if path.startswith("http://"):
            path = "/" + path.split("/", 3)[3]
        for rx, template, item in self.paths:
            if rx.match(path):
                m = "get" if method == "HEAD" else method.lower()
                return template, item.get(m)
        return None, None

    def fail(self, a, why):
        self.failures.append("%s %s -> %d: %s" % (a.method, a.path, a.status,
                                                  why))

    def check(self, a, want_status=None):
        """Validates one answer; want_status, when given, must match."""
        if want_status is not None and a.status != want_status:
            self.fail(a, "expected %d; body %s" % (want_status, a.body[:300]))
            return
        template, op = self.operation(a.method, a.path)
        shared = self.spec["components"]["responses"]
        if template is None and a.path == "*":
            responses = {"204": shared["Options"]}
        elif template is None:
            responses = {"404": shared["NotFound"]}
        elif op is None:
            # A method no operation of the path lists.
            responses = {"405": shared["MethodNotAllowed"]}
        else:
            responses = op["responses"]
        resp = responses.get(str(a.status), responses.get("default"))
        if resp is None:
            self.fail(a, "status not documented for %s" % template)
            return
        resp = self.resolve(resp)
        for name, h in (resp.get("headers") or {}).items():
            h = self.resolve(h)
            if h.get("required") and name.lower() not in a.headers:
                self.fail(a, "header %s missing" % name)
                return
        content = resp.get("content")
        ctype = a.headers.get("content-type", "").split(";")[0].strip()
        if not content:
            if a.body and a.method != "HEAD":
                self.fail(a, "a body where the spec has none")
                return
            self.passed += 1
            return
        types = {t.split(";")[0].strip(): v for t, v in content.items()}
        if ctype not in types:
            self.fail(a, "Content-Type %s not in %s" % (ctype, list(types)))
            return
        if a.method == "HEAD":
            self.passed += 1
            return
        schema = types[ctype].get("schema")
        if ctype.endswith("json") and schema:
            try:
                body = a.json()
            except ValueError as e:
                self.fail(a, "body is not JSON: %s" % e)
                return
            validator = jsonschema.Draft202012Validator(
                schema, resolver=self.resolver)
            errors = sorted(validator.iter_errors(body), key=str)
            if errors:
                e = errors[0]
                self.fail(a, "%s at %s" % (e.message,
                                           "/".join(map(str, e.path))))
                return
            if ctype == "application/problem+json":
                slug = body.get("type", "").rsplit("/", 1)[-1]
                if slug not in self.slugs:
                    self.fail(a, "problem type %s not in ProblemSlug" % slug)
                    return
        self.passed += 1


class Stream:
    """GET /v1/events read as Server-Sent Events: the answer, the `retry:`
    value and the events ({"id", "event", "data"}, data parsed as JSON)."""

    def __init__(self, srv, headers=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                               timeout=30)
        self.conn.request("GET", "/v1/events", headers=headers or {})
        self.r = self.conn.getresponse()
        self.answer = Answer("GET", "/v1/events", self.r.status,
                             self.r.getheaders(), b"")
        self.retry = None
        self.events = []

    def read(self, until, seconds):
        """Reads events until until(events) holds or seconds passed."""
        deadline = time.time() + seconds
        fields = {}
        while (self.answer.status == 200 and not until(self.events)
               and time.time() < deadline):
            line = self.r.readline()
            if not line:
                break
            line = line.decode("utf-8").rstrip("\n")
            if line == "":
                if "event" in fields:
                    fields["data"] = json.loads(fields.get("data", "null"))
                    self.events.append(fields)
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if key == "retry":
                    self.retry = value
                else:
                    fields[key] = value
        return self.events

    def types(self):
        return {e["event"] for e in self.events}

    def close(self):
        self.conn.close()


def check_events(c, stream, want_first=None):
    """Validates a stream's answer and every event it read."""
    c.check(stream.answer, 200)
    if stream.retry != "2000":
        c.fail(stream.answer, "retry is %r, not 2000" % stream.retry)
    if want_first and (not stream.events
                       or stream.events[0]["event"] != want_first):
        c.fail(stream.answer, "the first event is not a %s" % want_first)
    validator = jsonschema.Draft202012Validator(
        c.spec["components"]["schemas"]["Event"], resolver=c.resolver)
    for e in stream.events:
        errors = sorted(validator.iter_errors(e), key=str)
        if errors:
            c.fail(stream.answer, "event %s %s: %s at %s" % (
                e["event"], e.get("id"), errors[0].message,
                "/".join(map(str, errors[0].path))))
        else:
            c.passed += 1


def check_functions(c, answer, calls):
    """Each function's args is a JSON Schema (Draft 2020-12), whose
    defaults it allows; and the arguments of calls ([(function, args,
    accepted)]) pass it exactly when the function accepted them."""
    schemas = {}
    for f in answer.json()["functions"]:
        try:
            jsonschema.Draft202012Validator.check_schema(f["args"])
        except jsonschema.SchemaError as e:
            c.fail(answer, "%s: args is not a JSON Schema: %s" % (f["name"],
                                                                   e.message))
            continue
        schemas[f["name"]] = f["args"]
        for name, p in f["args"].get("properties", {}).items():
            if "default" in p and not jsonschema.Draft202012Validator(
                    p).is_valid(p["default"]):
                c.fail(answer, "%s.%s: the default breaks the schema" % (
                    f["name"], name))
        c.passed += 1
    for fn, args, accepted in calls:
        if jsonschema.Draft202012Validator(schemas[fn]).is_valid(
                args) != accepted:
            c.fail(answer, "%s %s: the function %s it, the schema does not" % (
                fn, json.dumps(args), "took" if accepted else "refused"))
        else:
            c.passed += 1


def check_ui(c, srv):
    """GET / for a browser, the page's files, their entity tags."""
    page = request(srv, "GET", "/", headers={"Accept": "text/html"})
    c.check(page, 200)
    if page.headers.get("content-type", "").split(";")[0] != "text/html":
        c.fail(page, "a browser did not get the page")
    c.check(request(srv, "GET", "/", headers={
        "Accept": "text/html",
        "If-None-Match": page.headers.get("etag", "-")}), 304)
    files = set(re.findall(r'/ui/([A-Za-z0-9_.-]+)', page.body.decode()))
    files.add("index.html")
    for name in sorted(files):
        a = request(srv, "GET", "/ui/" + name)
        c.check(a, 200)
        c.check(request(srv, "GET", "/ui/" + name,
                        headers={"If-None-Match": a.headers.get("etag", "-")}),
                304)
    c.check(request(srv, "GET", "/ui/no-such-file.js"), 404)
    c.check(request(srv, "DELETE", "/ui/index.html"), 405)
    c.check(request(srv, "OPTIONS", "/ui/index.html"), 204)


def run_events(c, srv):
    """The live stream, after failures and restarts happened: a snapshot
    first, then pool, tick, call, worker, failure and restart events
    (set off here) each valid; a resume; the 400s."""
    admin = {"Authorization": "Bearer " + TOKEN}
    s = Stream(srv, admin)
    s.read(lambda evs: len(evs) >= 1, 10)

    def calls():
        # A worker busy across several samples, a host failure and the
        # call that starts the next host.
        time.sleep(0.3)
        c.check(request(srv, "POST", "/v1/calls",
                        '{"function": "sleep", "args": {"ms": 1000}}'), 200)
        c.check(request(srv, "POST", "/v1/calls",
                        '{"function": "crash", "args": {"signal": "abort"}}'),
                500)
        c.check(request(srv, "POST", "/v1/calls",
                        '{"function": "fib", "args": {"n": 3}}'), 200)

    t = threading.Thread(target=calls)
    t.start()
    want = {"snapshot", "pool", "tick", "call", "worker", "failure", "restart"}
    s.read(lambda evs: want <= {e["event"] for e in evs}, 20)
    t.join()
    s.close()
    check_events(c, s, "snapshot")
    if not want <= s.types():
        c.fail(s.answer, "no %s event within 20 s" % sorted(want - s.types()))
    last = int(s.events[-1]["id"]) if s.events else 0

    # Resuming after the last event seen: no snapshot, later ids.
    r = Stream(srv, dict(admin, **{"Last-Event-ID": str(last)}))
    r.read(lambda evs: len(evs) >= 1, 10)
    r.close()
    check_events(c, r)
    if not r.events or r.events[0]["event"] == "snapshot" or int(
            r.events[0]["id"]) <= last:
        c.fail(r.answer, "a resume after %d did not go on from it" % last)
    # An id the feed does not keep: a snapshot first.
    g = Stream(srv, {"Last-Event-ID": "999999999"})
    g.read(lambda evs: len(evs) >= 1, 10)
    g.close()
    check_events(c, g, "snapshot")

    for bad in ("x", "-1", "1.5"):
        c.check(request(srv, "GET", "/v1/events",
                        headers={"Last-Event-ID": bad}), 400)
    c.check(request(srv, "GET", "/v1/events",
                    headers={"Accept": "application/json"}), 406)
    c.check(request(srv, "DELETE", "/v1/events"), 405)
    c.check(request(srv, "OPTIONS", "/v1/events"), 204)


def wait_done(srv, cid):
    for _ in range(3000):
        a = request(srv, "GET", "/v1/calls/" + cid)
        if a.json()["status"] not in ("queued", "running"):
            return a
        time.sleep(0.01)
    raise RuntimeError("call %s never finished" % cid)


def run_main(c, binary):
    srv = Server(binary, "--max-body-bytes", "64K",
                 env={"POOLHOST_ADMIN_TOKEN": TOKEN})
    calls = "/v1/calls"
    post = lambda body, path=calls, **kw: request(srv, "POST", path, body,
                                                  **kw)
    # Before any host ran: host is null, heartbeat -1.
    c.check(request(srv, "GET", "/v1/pool"), 200)
    c.check(request(srv, "GET", "/"), 200)
    c.check(request(srv, "HEAD", "/"), 200)
    functions = request(srv, "GET", "/v1/functions")
    c.check(functions, 200)
    c.check(request(srv, "GET", "/livez"), 200)
    c.check(request(srv, "GET", "/readyz"), 200)
    c.check(request(srv, "GET", "/metrics"), 200)

    ok = post('{"function": "log", "args": {"lines": 3}}')
    c.check(ok, 200)
    cid = ok.json()["id"]
    c.check(post('{"function": "sleep", "args": {"ms": 10}}',
                 calls + "?async=1"), 202)
    c.check(post('{"function": "sleep", "args": {"ms": 10}}',
                 headers={"Prefer": "respond-async"}), 202)
    c.check(post('{"function": "fib", "args": {"n": 5}, '
                 '"timeout_ms": 999999999}'), 200)
    c.check(post('{"function": '), 400)
    c.check(post('{"args": {}}'), 400)
    c.check(post('{"function": "fib", "function": "fib"}'), 400)
    c.check(post('{"function": "no_such"}'), 404)
    c.check(post(" " * 70000), 413)
    c.check(post("{}", headers={"Content-Type": "text/plain"}), 415)
    c.check(post('{"function": "fib", "args": [1]}'), 422)
    c.check(post('{"function": "fib", "args": {"n": -1}}'), 422)
    c.check(post('{"function": "panic", "args": {"message": "x"}}'), 500)
    c.check(post('{"function": "crash", "args": {"signal": "segv"}}'), 500)
    c.check(post('{"function": "hang", "args": {"ms": 5000}, '
                 '"timeout_ms": 100}'), 504)
    c.check(request(srv, "GET", calls), 405)
    c.check(request(srv, "OPTIONS", calls), 204)

    # A call cancelled while its caller waits: 409.
    holder = {}
    t = threading.Thread(target=lambda: holder.update(a=post(
        '{"function": "sleep", "args": {"ms": 30000}}')))
    t.start()
    hid = None
    admin = {"Authorization": "Bearer " + TOKEN}
    for _ in range(3000):
        for w in request(srv, "GET", "/v1/pool",
                         headers=admin).json().get("workers", []):
            if w.get("call") and request(
                    srv, "GET", calls + "/" + w["call"]).json().get(
                        "function") == "sleep":
                hid = w["call"]
        if hid:
            break
        time.sleep(0.01)
    c.check(request(srv, "GET", calls + "/" + hid), 200)
    c.check(request(srv, "GET", "/v1/pool"), 200)
    c.check(request(srv, "DELETE", calls + "/" + hid), 200)
    t.join()
    c.check(holder["a"], 409)

    one = calls + "/" + cid
    c.check(request(srv, "GET", one), 200)
    c.check(request(srv, "HEAD", one), 200)
    c.check(request(srv, "GET", calls + "/nope"), 404)
    c.check(request(srv, "DELETE", one), 200)
    c.check(request(srv, "DELETE", calls + "/nope"), 404)
    c.check(request(srv, "PUT", one, "{}"), 405)
    c.check(request(srv, "OPTIONS", one), 204)
    failed = post('{"function": "fib", "args": {"n": -3}}', calls + "?async=1")
    c.check(failed, 202)
    c.check(wait_done(srv, failed.json()["id"]), 200)

    logs = one + "/logs"
    c.check(request(srv, "GET", logs), 200)
    c.check(request(srv, "GET", logs, headers={"Accept": "text/event-stream"}),
            200)
    c.check(request(srv, "GET", logs, headers={
        "Accept": "text/event-stream", "Last-Event-ID": "end"}), 204)
    c.check(request(srv, "GET", logs, headers={
        "Accept": "text/event-stream", "Last-Event-ID": "?"}), 400)
    c.check(request(srv, "GET", logs, headers={"Accept": "text/html"}), 406)
    c.check(request(srv, "GET", calls + "/nope/logs"), 404)
    c.check(request(srv, "POST", logs, "{}"), 405)
    c.check(request(srv, "OPTIONS", logs), 204)

    batch = "/v1/batch"
    c.check(post('{"calls": [{"function": "fib", "args": {"n": 3}}, '
                 '{"function": "nope"}, {"args": {}}, 5]}', batch), 200)
    c.check(post('{"calls": [', batch), 400)
    c.check(post('{}', batch), 400)
    c.check(post('{"calls": 1}', batch), 422)
    c.check(post('{}', batch, headers={"Content-Type": "text/plain"}), 415)
    c.check(post(" " * 70000, batch), 413)
    c.check(request(srv, "GET", batch), 405)
    c.check(request(srv, "OPTIONS", batch), 204)

    auth = {"Authorization": "Bearer " + TOKEN}
    for action in ("restart", "stop"):
        path = "/v1/pool/" + action
        c.check(request(srv, "POST", path, headers=auth), 200)
        c.check(request(srv, "POST", path), 401)
        c.check(request(srv, "POST", path,
                        headers={"Authorization": "Bearer wrong"}), 401)
        c.check(request(srv, "GET", path), 405)
        c.check(request(srv, "OPTIONS", path), 204)
    # After a failure: last_failure is set.
    c.check(request(srv, "GET", "/v1/pool"), 200)
    # The arguments of the calls above, as the functions answered them.
    check_functions(c, functions, [
        ("log", {"lines": 3}, True), ("sleep", {"ms": 10}, True),
        ("fib", {"n": 5}, True), ("fib", [1], False), ("fib", {"n": -1}, False),
        ("panic", {"message": "x"}, True), ("crash", {"signal": "segv"}, True),
        ("hang", {"ms": 5000}, True), ("fib", {"n": -3}, False),
        ("fib", {"n": 3}, True), ("sleep", {"ms": 30000}, True),
        ("crash", {"signal": "kill"}, False), ("log", {"level": 3}, False),
        ("hang", {"ms": 5000, "cooperative": "yes"}, False),
        ("sum_squares", {}, False), ("nqueens", {"n": 8, "m": 1}, False)])
    for fn, args in (("crash", {"signal": "kill"}), ("log", {"level": 3}),
                     ("hang", {"ms": 5000, "cooperative": "yes"}),
                     ("sum_squares", {}), ("nqueens", {"n": 8, "m": 1})):
        c.check(post(json.dumps({"function": fn, "args": args})), 422)
    check_ui(c, srv)
    run_events(c, srv)

    for path in ("/", "/v1/functions", "/v1/pool", "/livez", "/readyz",
                 "/metrics", "/problems/not-found"):
        c.check(request(srv, "DELETE", path), 405)
        c.check(request(srv, "OPTIONS", path), 204)
        c.check(request(srv, "GET", path, headers={"Accept": "image/png"}),
                406)
    c.check(request(srv, "OPTIONS", "*"), 204)

    for slug in sorted(c.slugs):
        c.check(request(srv, "GET", "/problems/" + slug), 200)
    c.check(request(srv, "GET", "/problems/nope"), 404)
    c.check(request(srv, "GET", "/nope"), 404)

    # The edge: framing, targets, transfer codings.
    c.check(raw(srv, b"GET /livez HTTP/1.1\r\n\r\n", "/livez"), 400)
    c.check(raw(srv, b"GET /livez HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
                "/livez"), 400)
    c.check(raw(srv, b"POST /v1/calls HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: gzip\r\n\r\n", "/v1/calls"), 501)
    c.check(raw(srv, b"GET /livez?" + b"a" * 3000 + b" HTTP/1.1\r\n"
                b"Host: x\r\n\r\n", "/livez"), 414)
    c.check(raw(srv, b"GET /v1/calls/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
                "/v1/calls/x"), 400)

    # Draining: /readyz 503 and new calls 503, while one call finishes.
    t = threading.Thread(target=lambda: holder.update(
        d=post('{"function": "sleep", "args": {"ms": 1500}}')))
    t.start()
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    c.check(request(srv, "GET", "/readyz"), 503)
    c.check(post('{"function": "fib", "args": {"n": 3}}'), 503)
    c.check(post('{"calls": [{"function": "fib"}]}', batch), 503)
    t.join()
    c.check(holder["d"], 200)
    if srv.stop() != 0:
        c.failures.append("the main server did not exit 0")


def run_limits(c, binary):
    """503 overloaded, 403 without an admin token, thread isolation."""
    srv = Server(binary, "--max-queue", "1", "--isolation", "thread")
    a = request(srv, "POST", "/v1/calls?async=1",
                '{"function": "hang", "args": {"cooperative": true}}')
    c.check(a, 202)
    c.check(request(srv, "GET", "/v1/pool"), 200)
    c.check(request(srv, "POST", "/v1/calls",
                    '{"function": "fib", "args": {"n": 3}}'), 503)
    c.check(request(srv, "POST", "/v1/batch",
                    '{"calls": [{"function": "fib"}]}'), 503)
    c.check(request(srv, "DELETE", "/v1/calls/" + a.json()["id"]), 200)
    c.check(request(srv, "POST", "/v1/pool/restart"), 403)
    c.check(request(srv, "POST", "/v1/pool/stop"), 403)
    if srv.stop() != 0:
        c.failures.append("the limits server did not exit 0")


def run_tokens(c, binary):
    """Client tokens: 401 without one, another client's call is 404, and
    wrong tokens end in 429."""
    fd, path = tempfile.mkstemp(prefix="ph-contract-tokens-")
    os.write(fd, b"alice:alice-token-0123456789\nbob:bob-token-0123456789\n")
    os.close(fd)
    os.chmod(path, 0o600)
    srv = Server(binary, "--api-token-file", path)
    os.unlink(path)
    alice = {"Authorization": "Bearer alice-token-0123456789"}
    bob = {"Authorization": "Bearer bob-token-0123456789"}
    body = '{"function": "fib", "args": {"n": 3}}'
    c.check(request(srv, "POST", "/v1/calls", body), 401)
    a = request(srv, "POST", "/v1/calls", body, headers=alice)
    c.check(a, 200)
    one = "/v1/calls/" + a.json()["id"]
    c.check(request(srv, "GET", one, headers=alice), 200)
    c.check(request(srv, "GET", one, headers=bob), 404)
    c.check(request(srv, "GET", one + "/logs", headers=bob), 404)
    c.check(request(srv, "DELETE", one, headers=bob), 404)
    c.check(request(srv, "GET", "/v1/pool", headers=alice), 200)
    # The event stream shows alice's call id to alice only (once the
    # feed has flushed the call, a quarter second at most).
    time.sleep(0.5)
    for who, sees in ((alice, True), (bob, False), ({}, False)):
        s = Stream(srv, who)
        s.read(lambda evs: len(evs) >= 1, 10)
        s.close()
        check_events(c, s, "snapshot")
        ids = [x["id"] for x in (s.events[0]["data"]["calls"]
                                 if s.events else [])
               if x["function"] == "fib"]
        if ids != [a.json()["id"] if sees else None]:
            c.fail(s.answer, "the snapshot's fib call ids are %s" % ids)
    c.check(request(srv, "GET", "/v1/events",
                    headers={"Authorization": "Bearer nope"}), 401)
    wrong = {"Authorization": "Bearer nope"}
    last = None
    for _ in range(30):
        last = request(srv, "GET", one, headers=wrong)
        if last.status == 429:
            break
        c.check(last, 401)
    c.check(last, 429)
    if srv.stop() != 0:
        c.failures.append("the tokens server did not exit 0")


def main():
    binary, spec = sys.argv[1], sys.argv[2]
    c = Contract(spec)
    run_main(c, binary)
    run_limits(c, binary)
    run_tokens(c, binary)
    for f in c.failures:
        print("FAIL", f)
    print("%d passed, %d failed" % (c.passed, len(c.failures)))
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
