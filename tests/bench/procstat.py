#!/usr/bin/env python3
"""Counts what load on the machine cannot blur, for the benchmark scripts:
context switches (voluntary and involuntary) and CPU time of a server and
every process below it (poolhost's pool host is its child), from /proc.

    procstat.py pids PID           # PID and its descendants, comma-separated
    procstat.py snap PID...        # a snapshot, as one line of JSON
    procstat.py delta BEFORE AFTER # two snapshot lines ->
                                   #   "ctx=N vctx=V cpu_ms=M procs=P"

Context switches are counted per thread (/proc/P/task/T/status), all of
them (ctx) and the voluntary ones (vctx: the thread blocked, which is the
design's doing; the involuntary rest is mostly preemption by other load on
the machine). A thread that appears between the snapshots counts from zero;
one that exits takes its switches with it (poolhost's and the peer's
threads live as long as the process). CPU time is per process (/proc/P/stat utime + stime, which keeps
the time of exited threads); a process that appears counts from zero.
"""
import json
import os
import sys


def tree(pid):
    """pid and its descendants (through every thread's children list)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
            except OSError:
                pass
    return out


def thread_switches(pid, tid):
    """[voluntary, involuntary] context switches of one thread."""
    n = [0, 0]
    try:
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches"):
                    n[0] = int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    n[1] = int(line.split()[1])
    except OSError:
        pass
    return n


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def snap(pids):
    threads, cpu = {}, {}
    for root in pids:
        for p in tree(root):
            cpu[str(p)] = cpu_ticks(p)
            try:
                tids = os.listdir(f"/proc/{p}/task")
            except OSError:
                continue
            for t in tids:
                threads[t] = thread_switches(p, t)
    return {"threads": threads, "cpu": cpu}


def delta(before, after):
    vol = invol = 0
    for t, (v, i) in after["threads"].items():
        v0, i0 = before["threads"].get(t, (0, 0))
        vol += v - v0
        invol += i - i0
    ticks = sum(n - before["cpu"].get(p, 0) for p, n in after["cpu"].items())
    cpu_ms = ticks * 1000 / os.sysconf("SC_CLK_TCK")
    return (f"ctx={vol + invol} vctx={vol} cpu_ms={cpu_ms:.0f} "
            f"procs={len(after['cpu'])}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "pids":
        print(",".join(str(p) for p in tree(int(sys.argv[2]))))
    elif len(sys.argv) >= 3 and sys.argv[1] == "snap":
        print(json.dumps(snap([int(p) for p in sys.argv[2:]])))
    elif len(sys.argv) == 4 and sys.argv[1] == "delta":
        print(delta(json.loads(sys.argv[2]), json.loads(sys.argv[3])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
