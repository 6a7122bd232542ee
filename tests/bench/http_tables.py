#!/usr/bin/env python3
"""The HTTP benchmark's tables, from the runs http_bench.sh wrote.

    http_tables.py RUNS_CSV OUT_DIR [PAIRED_CSV]

Writes three markdown tables into OUT_DIR and prints them:
  http_table.md    every target's best run per (workload, connections):
                   req/s, calls/s and their ratio to the ceiling, p50, p99,
                   and per request: context switches (all, voluntary), CPU
                   time, system calls
  http_compare.md  per poolhost isolation mode: after / before (BEFORE=...)
                   and poolhost / piscina, side by side
  http_goals.md    issue 11's bars, process mode, after beside before

A target's best run is its highest rate of answered (2xx) requests (the
run least disturbed by other work on the machine); the counted quantities
come from that same run. req/s and calls/s count answered requests and
calls only: a request refused at once (503 overloaded, past a client's
fair share) counts in "bad" and nowhere else. The ratio to the ceiling
is calls/s over the ceiling's req/s for the same workload and
connections, so that a batch of 10 counts 10 calls.

The bars that are ratios between two servers (to the ceiling, to piscina)
are judged on paired rounds instead: in each round the two servers ran
one after the other, so each round gives one ratio that load from outside
hits on both sides alike, and the bar takes the median of those ratios
(shown with their range). Best against best would pair one server's
luckiest run with the other's. The pairs come from PAIRED_CSV when given
(report.sh runs more, shorter rounds for them), else from RUNS_CSV.
"""
import csv
import statistics
import sys

AFTER_MODES = ("process", "thread")


def answered(r):
    """The run's answered (2xx) requests per second."""
    req = int(r["requests"])
    return float(r["rps"]) * (req - int(r["non2xx"])) / req if req else 0.0


def load(path):
    runs = {}
    for r in csv.DictReader(open(path)):
        runs.setdefault((r["workload"], int(r["conns"]), r["target"]), []).append(r)
    return runs


class Best:
    """A target's best run for one (workload, connections)."""

    def __init__(self, rs):
        r = max(rs, key=answered)
        req = max(int(r["requests"]), 1)
        self.rps = answered(r)
        self.calls = calls_of(r)
        self.p50 = int(r["p50_us"]) / 1000
        self.p99 = int(r["p99_us"]) / 1000
        self.bad = int(r["non2xx"]) + int(r["errors"])
        ctx, cpu, sc = r.get("ctx_switches"), r.get("cpu_ms"), r.get("syscalls")
        vctx = r.get("ctx_voluntary")
        self.ctx = int(ctx) / req if ctx else None
        self.vctx = int(vctx) / req if vctx else None
        self.cpu_us = float(cpu) * 1000 / req if cpu else None
        self.sc = int(sc) / req if sc else None


class Paired:
    """A target's ratio to another, round by round: its calls/s over the
    other's req/s in the same round (a batch of 10 counts 10 calls)."""

    def __init__(self, rs, base):
        other = {r["round"]: answered(r) for r in base}
        self.ratios = sorted(calls_of(r) / other[r["round"]] for r in rs
                             if other.get(r["round"]))
        self.median = statistics.median(self.ratios) if self.ratios else None

    def show(self):
        n = len(self.ratios)
        return f"{self.median:.2f} ({self.ratios[0]:.2f}-{self.ratios[-1]:.2f}, " \
               f"{n} round{'s' if n > 1 else ''})"


def calls_of(r):
    return answered(r) * int(r.get("calls_per_req") or 1)


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else ""


def table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main():
    runs = load(sys.argv[1])
    out = sys.argv[2]
    pair_runs = load(sys.argv[3]) if len(sys.argv) > 3 else runs
    keys = list(runs)
    workloads = list(dict.fromkeys(k[0] for k in keys))
    targets = list(dict.fromkeys(k[2] for k in keys))
    best = {k: Best(rs) for k, rs in runs.items()}
    conns = {wl: sorted({k[1] for k in keys if k[0] == wl}) for wl in workloads}
    has_sc = any(b.sc is not None for b in best.values())

    def get(wl, c, t):
        return best.get((wl, c, t))

    # every target
    head = ["workload", "conns", "target", "req/s", "calls/s", "÷ ceiling",
            "p50 ms", "p99 ms", "ctx sw/req", "voluntary", "CPU µs/req"]
    head += ["syscalls/req"] if has_sc else []
    rows = []
    for wl in workloads:
        for c in conns[wl]:
            ceil = get(wl, c, "ceiling")
            for t in targets:
                b = get(wl, c, t)
                if b is None:
                    continue
                row = [wl, str(c), t,
                       f"{b.rps:.0f}" + (f" ({b.bad} bad)" if b.bad else ""),
                       f"{b.calls:.0f}",
                       "" if t == "ceiling" or ceil is None else ratio(b.calls, ceil.rps),
                       f"{b.p50:.2f}", f"{b.p99:.2f}",
                       fmt(b.ctx, ".2f"), fmt(b.vctx, ".2f"),
                       fmt(b.cpu_us, ".1f")]
                row += [fmt(b.sc, ".1f")] if has_sc else []
                rows.append(row)
    every = table(head, rows)

    # after / before, poolhost / piscina
    modes = [m for m in AFTER_MODES if m in targets]
    with_before = any(f"before-{m}" in targets for m in modes)
    with_peer = "piscina" in targets
    head = ["workload", "conns", "mode"]
    if with_before:
        head += ["before req/s", "after req/s", "after ÷ before",
                 "before p99 ms", "after p99 ms",
                 "before ctx sw/req", "after ctx sw/req"]
    else:
        head += ["req/s", "p99 ms", "ctx sw/req"]
    if with_peer:
        head += ["piscina req/s", "after ÷ piscina"]
        head += ["before ÷ piscina"] if with_before else []
    head += ["after ÷ ceiling"]
    rows = []
    for wl in workloads:
        for c in conns[wl]:
            ceil, peer = get(wl, c, "ceiling"), get(wl, c, "piscina")
            for m in modes:
                a, b = get(wl, c, m), get(wl, c, f"before-{m}")
                if a is None:
                    continue
                row = [wl, str(c), m]
                if with_before:
                    row += [fmt(b and b.rps, ".0f"), f"{a.rps:.0f}",
                            ratio(a.rps, b and b.rps),
                            fmt(b and b.p99, ".2f"), f"{a.p99:.2f}",
                            fmt(b and b.ctx, ".2f"), fmt(a.ctx, ".2f")]
                else:
                    row += [f"{a.rps:.0f}", f"{a.p99:.2f}", fmt(a.ctx, ".2f")]
                if with_peer:
                    row += [fmt(peer and peer.rps, ".0f"),
                            ratio(a.rps, peer and peer.rps)]
                    row += [ratio(b and b.rps, peer and peer.rps)] if with_before else []
                row += [ratio(a.calls, ceil and ceil.rps)]
                rows.append(row)
    compare = table(head, rows)

    # issue 11's bars, process mode
    rows = []

    def bar(text, wl, c, value, ok, spec=".2f"):
        a, b = get(wl, c, "process"), get(wl, c, "before-process")
        if a is None or value(a) is None:
            return
        before = value(b) if b is not None else None
        rows.append([text, fmt(before, spec), format(value(a), spec),
                     "yes" if ok(value(a), before) else "no"])

    def paired_bar(text, wl, c, base, bar_min):
        """A ratio bar, judged on the median of paired rounds."""
        def of(t):
            p = Paired(pair_runs.get((wl, c, t), []),
                       pair_runs.get((wl, c, base), []))
            return p if p.median is not None else None
        a, b = of("process"), of("before-process")
        if a is None:
            return
        rows.append([text, b.show() if b else "", a.show(),
                     "yes" if a.median >= bar_min else "no"])

    paired_bar("small, 32 conns: calls/s ÷ ceiling ≥ 0.35 (goal 0.5)",
               "small", 32, "ceiling", 0.35)
    bar("small, 32 conns: p99 < 5 ms", "small", 32, lambda x: x.p99,
        lambda v, _: v < 5)
    bar("small, 32 conns: context switches/request ≤ 0.4", "small", 32,
        lambda x: x.ctx, lambda v, _: v <= 0.4)
    paired_bar("batch of 10, 32 conns: calls/s ÷ ceiling ≥ 0.8", "batch", 32,
               "ceiling", 0.8)
    bar("small, 1 conn: p50 < 0.15 ms", "small", 1, lambda x: x.p50,
        lambda v, _: v < 0.15)
    paired_bar("small, 32 conns: poolhost ÷ piscina ≥ 3", "small", 32,
               "piscina", 3)
    for c in conns.get("nqueens", []):
        bar(f"nqueens, {c} conns: req/s no worse than before", "nqueens", c,
            lambda x: x.rps, lambda v, b: b is not None and v >= b, ".0f")
    goals = table(["bar (issue 11, process mode)", "before", "after", "met"], rows) \
        if rows else "(no process-mode runs at the connection counts the bars name)\n"

    for name, text in (("http_table", every), ("http_compare", compare),
                       ("http_goals", goals)):
        with open(f"{out}/{name}.md", "w") as f:
            f.write(text)
        print(text)


if __name__ == "__main__":
    main()
