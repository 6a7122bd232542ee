#!/usr/bin/env bash
# Runs the benchmarks and writes tests/bench/report/README.md with the
# tables and PNG plots (gnuplot): HTTP throughput and p99 against
# connections for poolhost, the ceiling, an earlier poolhost (before) and
# the Node.js + piscina peer, with context switches, CPU time and system
# calls per request; pool speedup by function, time from each fault to its
# response, memory, and a CPU profile of poolhost's server and host under
# the small-call load (perf, when available).
#
#   tests/bench/report.sh [-q] [-b COMMIT]
#     -q         shorter runs (a smoke test)
#     -b COMMIT  the "before" target: COMMIT built by build_ref.sh into
#                $OUT/ref (or BEFORE=/path/to/poolhost)
#
# Needs a release build (BUILD=dir, default ./build; COMMIT=
# the commit it was built from, default the checkout's HEAD), wrk, gnuplot,
# python3, node and npm (PEER=0 leaves the peer out); perf is optional
# (PROFILE=0 skips the profile, SYSCALLS=0 the system call counts). Writes
# into REPORT (default tests/bench/report). About 30 minutes with before
# and the peer.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

quick=false
before_commit=""
while getopts qb: opt; do
    case $opt in
    q) quick=true ;;
    b) before_commit=$OPTARG ;;
    *) exit 2 ;;
    esac
done
REPORT=${REPORT:-$BENCH_DIR/report}
mkdir -p "$REPORT"
for tool in wrk gnuplot python3; do
    command -v "$tool" >/dev/null || { echo "report: needs $tool" >&2; exit 1; }
done
if [ -n "$before_commit" ]; then
    echo "== building $before_commit for the before target" >&2
    BEFORE=$("$BENCH_DIR/build_ref.sh" "$before_commit" "$OUT/ref")
    before_commit=$(git -C "$bench_repo" rev-parse --short "$before_commit")
fi
export BEFORE=${BEFORE:-}

if $quick; then
    http_args=(-d 2 -r 1 -c "1 32")
    paired_args=(-d 2 -r 2)
    fault_args=(-n 3)
    mem_args=(-r 10)
    speed_reps=1
else
    http_args=(-d 5 -r 2 -c "1 8 32 128")
    paired_args=(-d 3 -r 9)
    # 24 pairs per fault: with 10, a fault of a few milliseconds moved by
    # 0.77-1.13 from one report to the next.
    fault_args=(-n 24)
    mem_args=(-r 100)
    speed_reps=5
fi
# A fault is no slower than before when the median of its after ÷ before
# pairs is at most this (issue 11).
no_slower=1.10

[ "${SYSCALLS:-1}" = 1 ] && syscalls_countable && http_args+=(-s)

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== HTTP benchmark" >&2
"$BENCH_DIR/http_bench.sh" "${http_args[@]}" >/dev/null
# The ratio bars are judged on paired rounds (http_tables.py): more and
# shorter rounds of the two workloads they name, process mode, 32
# connections, so that their median holds through other load on the
# machine.
echo "== HTTP paired rounds" >&2
OUT=$OUT/paired PEER_DIR=${PEER_DIR:-$OUT/peer} "$BENCH_DIR/http_bench.sh" \
    "${paired_args[@]}" -c 32 -w "small batch" -m process >/dev/null
python3 "$BENCH_DIR/http_tables.py" "$OUT/http_runs.csv" "$OUT" \
    "$OUT/paired/http_runs.csv" >/dev/null
echo "== failure timing" >&2
"$BENCH_DIR/fault_timing.sh" "${fault_args[@]}" >/dev/null
echo "== memory" >&2
"$BENCH_DIR/memory.sh" "${mem_args[@]}" >/dev/null
echo "== the host's sandbox, strict against off" >&2
if $quick; then
    sandbox_args=(-d 2 -r 1 -c "1 32" -w small)
else
    sandbox_args=(-d 5 -r 3 -c "1 8 32" -w small)
fi
"$BENCH_DIR/sandbox_bench.sh" "${sandbox_args[@]}" >"$OUT/sandbox.txt"

# Pool speedup by function over HTTP: run_ms as the host measured it, at
# --threads 1 and --threads 2, median of a few calls each.
echo "== pool speedup over HTTP" >&2
speed_csv=$OUT/speedup_http.csv
echo "function,threads,run_ms" >"$speed_csv"
# name|args as shown; the bodies are written once (sort gets 1M numbers).
python3 - "$OUT" <<'PY'
import json, random, sys
r = random.Random(1)
calls = [
    ("nqueens", {"n": 12}, None),
    ("sum_squares", {"n": 100000000}, None),
    ("sort", {"values": [r.randint(0, 10**9) for _ in range(1000000)]},
     "1M random integers"),
    ("primes", {"limit": 30000000}, None),
    ("mandelbrot", {"width": 1200, "height": 800, "max_iter": 500}, None),
    ("matmul", {"n": 400, "seed": 7}, None),
    ("fib", {"n": 30, "cutoff": 12}, None),
]
with open(f"{sys.argv[1]}/speedup_calls.txt", "w") as index:
    for i, (fn, args, shown) in enumerate(calls):
        with open(f"{sys.argv[1]}/speedup_body_{i}.json", "w") as f:
            json.dump({"function": fn, "args": args, "timeout_ms": 120000}, f)
        index.write(f"{i}|{fn}|{shown or json.dumps(args)}\n")
PY
# Both servers run at once and take turns call by call, so that a load
# change on the machine hits both alike.
declare -A sport spid
for threads in 1 2; do
    sport[$threads]=$(free_port)
    start_quiet "poolhost-t$threads" "$OUT/speedup-$threads.log" \
        "${sport[$threads]}" "$POOLHOST" \
        --listen "127.0.0.1:${sport[$threads]}" --threads "$threads" \
        --idle-shutdown-ms -1 --log-level warn --max-log-lines 10
    spid[$threads]=$SERVER_PID
done
while IFS='|' read -r i name shown; do
    for ((k = 0; k <= speed_reps; k++)); do
        for threads in 1 2; do
            r=$(post "${sport[$threads]}" /v1/calls "@$OUT/speedup_body_$i.json")
            [ "${r%% *}" = 200 ] || {
                echo "$name at $threads threads: $r $(head -c 300 "$OUT/last_body.json")" >&2
                exit 1
            }
            ((k == 0)) && continue # warm-up
            run_ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["timing"]["run_ms"])' "$OUT/last_body.json")
            echo "$name,$threads,$run_ms" >>"$speed_csv"
        done
    done
done <"$OUT/speedup_calls.txt"
stop_server "${spid[1]}"
stop_server "${spid[2]}"

pool_table=""
if [ -x "$BUILD/tests/bench/bench_pool" ]; then
    echo "== pool benchmark (bench_pool)" >&2
    pool_table=$("$BUILD/tests/bench/bench_pool")
fi

# A CPU profile of the small-call load (process mode): the whole machine
# by thread, then the server and its pool host (chosen by pid, whatever
# their threads are named) by symbol, all code and poolhost's own.
profile=""
if command -v perf >/dev/null && [ "${PROFILE:-1}" = 1 ]; then
    echo "== profile" >&2
    port=$(free_port)
    start_quiet poolhost-prof "$OUT/profile.log" "$port" "$POOLHOST" \
        --listen "127.0.0.1:$port" --idle-shutdown-ms -1 --log-level warn
    post "$port" /v1/calls '{"function":"sum_squares","args":{"n":1000}}' >/dev/null
    prof_pids=$(python3 "$BENCH_DIR/procstat.py" pids "$SERVER_PID")
    wrk -t2 -c32 -d8s -s "$BENCH_DIR/call.lua" "http://127.0.0.1:$port" \
        -- sum_squares '{"n":1000}' >/dev/null &
    wrk_pid=$!
    sleep 2
    if perf record -q -a -g -o "$OUT/perf.data" -- sleep 4 2>/dev/null; then
        profile=$(
            echo "CPU share by thread (whole machine, 4 s of wrk -c32 small calls;"
            echo "poolhost's server and host are pids ${prof_pids//,/ and }):"
            echo
            perf report -i "$OUT/perf.data" --no-children --sort comm,pid \
                --stdio -g none 2>/dev/null | awk '/^ +[0-9]/ && n++ < 14'
            echo
            share=$(perf report -i "$OUT/perf.data" --no-children --pid "$prof_pids" \
                --sort pid --stdio -g none 2>/dev/null |
                awk '/^ +[0-9]/ {sub("%", "", $1); s += $1} END {printf "%.1f", s}')
            echo "Hottest symbols in poolhost's server and host (self time, share of"
            echo "their samples, which are $share% of the machine's):"
            echo
            perf report -i "$OUT/perf.data" --no-children --pid "$prof_pids" \
                --percentage relative --sort dso,sym --stdio -g none 2>/dev/null |
                awk '/^ +[0-9]/ && n++ < 30'
            echo
            echo "Hottest functions of poolhost's own code (self time, share of the"
            echo "server's and host's samples in poolhost's own code):"
            echo
            perf report -i "$OUT/perf.data" --no-children --pid "$prof_pids" \
                --percentage relative --dsos poolhost --sort sym --stdio \
                -g none 2>/dev/null | awk '/^ +[0-9]/ && n++ < 25'
        )
    fi
    wait "$wrk_pid" || true
    stop_server "$SERVER_PID"
fi

echo "== plots and README" >&2
python3 - "$OUT" "$REPORT" "$BENCH_DIR" <<'PY'
import csv, statistics, sys
out, report = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
from http_tables import Best  # the tables' own choice of a best run
runs = list(csv.DictReader(open(f"{out}/http_runs.csv")))
targets = list(dict.fromkeys(r["target"] for r in runs))
for wl in dict.fromkeys(r["workload"] for r in runs):
    with open(f"{out}/plot_http_{wl}.dat", "w") as f:
        f.write("# conns " + " ".join(f"{t}_rps {t}_p99ms" for t in targets) + "\n")
        for c in sorted({int(r["conns"]) for r in runs if r["workload"] == wl}):
            cells = [str(c)]
            for t in targets:
                m = Best([r for r in runs if r["workload"] == wl
                          and r["target"] == t and int(r["conns"]) == c])
                cells += [f"{m.rps:.1f}", f"{m.p99}"]
            f.write(" ".join(cells) + "\n")
sp = list(csv.DictReader(open(f"{out}/speedup_http.csv")))
with open(f"{out}/plot_speedup.dat", "w") as f:
    for fn in dict.fromkeys(r["function"] for r in sp):
        t1 = statistics.median(float(r["run_ms"]) for r in sp if r["function"] == fn and r["threads"] == "1")
        t2 = statistics.median(float(r["run_ms"]) for r in sp if r["function"] == fn and r["threads"] == "2")
        f.write(f'"{fn}" {t1:.3f} {t2:.3f} {t1 / t2:.3f}\n')
ft = list(csv.DictReader(open(f"{out}/fault_timing.csv")))
with open(f"{out}/plot_faults.dat", "w") as f:
    for r in ft:
        if r["median_ms"]:
            f.write(f'"{r["fault"].replace("_", " ")} ({r["mode"]})" {r["median_ms"]} {r["p90_ms"]}\n')
PY

workloads=$(python3 -c 'import csv,sys; print(" ".join(dict.fromkeys(r["workload"] for r in csv.DictReader(open(sys.argv[1])))))' "$OUT/http_runs.csv")
ntargets=$(python3 -c 'import csv,sys; print(len(dict.fromkeys(r["target"] for r in csv.DictReader(open(sys.argv[1])))))' "$OUT/http_runs.csv")
nw=$(wc -w <<<"$workloads")
for what in throughput p99; do
    {
        echo "set terminal pngcairo size $((420 * nw)),380 font 'sans,9'"
        echo "set output '$REPORT/http_$what.png'"
        echo "set multiplot layout 1,$nw"
        echo "set logscale x 2; set grid; set key top left"
        echo "set xlabel 'connections'"
        [ $what = throughput ] && echo "set ylabel 'requests/s (log scale)'; set logscale y" ||
            echo "set ylabel 'p99 latency (ms)'; set logscale y"
        for wl in $workloads; do
            echo "set title '$wl'"
            plot="plot"
            for ((t = 0; t < ntargets; t++)); do
                col=$([ $what = throughput ] && echo $((2 + 2 * t)) || echo $((3 + 2 * t)))
                title=$(head -1 "$OUT/plot_http_$wl.dat" | awk -v c=$((col)) '{print $(c + 1)}' | sed 's/_.*//')
                plot="$plot '$OUT/plot_http_$wl.dat' using 1:$col with linespoints lw 2 title '$title',"
            done
            echo "${plot%,}"
        done
        echo "unset multiplot"
    } | gnuplot
done
gnuplot <<EOF
set terminal pngcairo size 760,380 font 'sans,9'
set output '$REPORT/pool_speedup.png'
set style data histograms; set style fill solid 0.8 border -1
set boxwidth 0.7; set grid ytics; set yrange [0:*]
set ylabel 'speedup, 2 threads vs 1 (run_ms in the host)'
set xtics rotate by -25 noenhanced
plot '$OUT/plot_speedup.dat' using 4:xtic(1) title 'pool speedup', 2 with lines dt 2 title 'ideal (2 CPUs)'
EOF
gnuplot <<EOF
set terminal pngcairo size 760,420 font 'sans,9'
set output '$REPORT/fault_timing.png'
set style fill solid 0.8 border -1
set logscale x; set grid xtics
set xrange [0.1:5000]
set xlabel 'time from the fault to the response, ms (bar: median, whisker: p90)'
set ytics noenhanced
set yrange [-0.7:$(($(wc -l <"$OUT/plot_faults.dat") - 1)).7]
plot '$OUT/plot_faults.dat' using (\$2 / 2):0:(\$2 / 2):(0.35):yticlabels(1) with boxxyerror notitle, \
     '' using 2:0:2:3 with xerrorbars pt 7 ps 0.5 notitle
EOF

# md_rows CSV: its data rows as markdown table rows.
md_rows() {
    awk -F, 'NR > 1 {
        printf "|"
        for (i = 1; i <= NF; i++) printf " %s |", $i
        print ""
    }' "$1"
}

# The README
# COMMIT: the commit the binaries were built from, when not the checkout's.
commit=${COMMIT:-$(git -C "$bench_repo" rev-parse --short HEAD 2>/dev/null || echo unknown)}
# The report's own files, written by this run, do not count.
if [ -z "${COMMIT:-}" ] &&
    ! git -C "$bench_repo" diff --quiet HEAD -- . ":(exclude)$REPORT" 2>/dev/null; then
    commit="$commit + uncommitted changes"
fi
regenerate="tests/bench/report.sh${before_commit:+ -b $before_commit}"
cpu=$(lscpu | awk -F': +' '/^Model name/ && !n++ {print $2}')
{
    echo "# poolhost benchmark report"
    echo
    echo "Generated by \`tests/bench/report.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
    echo "commit \`$commit\`, on $(nproc) CPUs ($cpu), Linux $(uname -r), release build."
    echo "wrk runs on the same machine as the servers, so on 2 CPUs the client"
    echo "takes a share of the CPU for every target alike. Regenerate with"
    echo "\`$regenerate\` (raw data lands in \`tests/bench/out/\`)."
    echo "Load average (1, 5, 15 min) at the start: $load_start; at the end:"
    echo "$(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine may overlap)."
    echo
    echo "## HTTP: poolhost against the ceiling, before and a Node.js peer"
    echo
    echo "All targets run at once and take turns run by run, so that other work"
    echo "on the machine hits them alike (\`tests/bench/http_bench.sh\`):"
    echo
    echo "- \`ceiling\`: \`tests/bench/ceiling.c\`, a libmicrohttpd server with"
    echo "  poolhost's threading options that answers every POST with a fixed JSON"
    echo "  body: what HTTP alone costs here;"
    echo "- \`process\`, \`thread\`: poolhost at commit \`$commit\` in each isolation mode;"
    if [ -n "$BEFORE" ]; then
        echo "- \`before-process\`, \`before-thread\`: poolhost at commit"
        echo "  \`${before_commit:-$BEFORE}\` (built by \`tests/bench/build_ref.sh\`), the same options;"
    fi
    if grep -q ',piscina,' "$OUT/http_runs.csv"; then
        echo "- \`piscina\`: \`tests/bench/peer/\`, a Node.js $(node --version) service on the"
        echo "  http module with a piscina pool of one worker thread per CPU, same"
        echo "  contract, same results, same log lines."
    fi
    echo
    echo "Workloads: \`small\` = \`sum_squares {n: 1000}\` (overhead-bound),"
    echo "\`batch\` = 10 such calls in one \`POST /v1/batch\` (req/s counts"
    echo "batches, calls/s counts calls), \`nqueens\` = \`nqueens {n: 10}\`"
    echo "(compute-bound). Each cell is the target's best run (most answered"
    echo "requests per second, the least disturbed by other work on the machine)."
    echo "req/s and calls/s count answered (2xx) requests and calls only; \"bad\""
    echo "counts the other answers and socket errors. With 128 connections of"
    echo "batches one client has 1,280 calls in flight, past its fair share"
    echo "(\`--max-calls-per-client\`, by default a quarter of \`--max-queue\`:"
    echo "1,024), so the excess is refused at once with 503 overloaded and wrk"
    echo "sends it again at once. The refusals fill the lane's turns, and the"
    echo "round trips that keep the pool's window of calls full slow down with"
    echo "them (an open problem, not a bar of issue 11): compare the answered"
    echo "rates at 32 and 128 connections. \"÷ ceiling\" is calls/s over the"
    echo "ceiling's req/s for the same workload and connections. Per request,"
    echo "counted for the server and every process below it (poolhost's pool"
    echo "host) over the run (\`tests/bench/procstat.py\`): context switches from"
    echo "\`/proc/PID/task/*/status\`, all of them (issue 11's measure) and the"
    echo "voluntary ones (a thread blocked: the design's doing; the involuntary"
    echo "rest grows with other load on the machine), CPU time"
    echo "(\`/proc/PID/stat\`) and, when perf can count them, system calls"
    echo "(\`raw_syscalls:sys_enter\`). wrk's own share is not in them."
    echo
    echo "### Issue 11's bars (process mode)"
    echo
    echo "The bars that compare two servers (÷ ceiling, ÷ piscina) are judged on"
    echo "paired rounds from a second pass: small calls and batches at 32"
    echo "connections, ${paired_args[3]} rounds of ${paired_args[1]} s, every target in turn"
    echo "within a round. Each round gives one ratio, the two servers having run"
    echo "one after the other, so that load from outside hits both alike; the"
    echo "cell is the median of those ratios, with their lowest and highest."
    echo "Best against best would pair one server's luckiest run with the"
    echo "other's. The other bars come from the best run, as in the tables below."
    echo
    cat "$OUT/http_goals.md"
    echo
    echo "### After and before, poolhost and piscina"
    echo
    cat "$OUT/http_compare.md"
    echo
    echo "### Every target"
    echo
    cat "$OUT/http_table.md"
    echo
    echo "![throughput](http_throughput.png)"
    echo
    echo "![p99 latency](http_p99.png)"
    echo
    echo "## Failure timing"
    echo
    echo "From outside over HTTP (\`tests/bench/fault_timing.sh\`): each fault on a"
    echo "warm service, spaced beyond the restart window so that none pays"
    echo "another's backoff. \`panic to error\` and \`crash to error\` are the"
    echo "faulting call's own answer (500 since #9, 503 before);"
    echo "\`crash to next 200\` is the crashing call plus the"
    echo "next call on the new host; \`sigstop to 503\` runs with"
    echo "\`--heartbeat-timeout-ms 1000\` and no innocent retries; cold start is"
    echo "exec to listening and exec to the first result (the host starts lazily)."
    echo "Targets: a panic answered under 20 ms, restart to ready under 50 ms, and"
    echo "(issue 11) no fault slower than before. The two binaries are timed in"
    echo "turns, fault by fault, the order swapped every round, so each round"
    echo "gives a pair; a fault counts as no slower when the median of after ÷"
    echo "before over its pairs is at most $no_slower (single faults of a few"
    echo "milliseconds vary by more than that from one try to the next)."
    echo
    if [ -n "$BEFORE" ]; then
        python3 - "$OUT/fault_timing.csv" "$OUT/fault_paired.csv" "$no_slower" <<'PY'
import csv, sys
no_slower = float(sys.argv[3])
rows = list(csv.DictReader(open(sys.argv[1])))
med = {(r["fault"], r["mode"]): r["median_ms"] for r in rows}
pairs = {(r["fault"], r["mode"]): r for r in csv.DictReader(open(sys.argv[2]))}
print("| fault | mode | before median ms | after median ms | after ÷ before, median of pairs (range, pairs) | no slower |")
print("|---|---|---|---|---|---|")
for (fault, mode), after in med.items():
    before = med.get((fault, f"before-{mode}"))
    p = pairs.get((fault, mode))
    if mode.startswith("before-") or not before or not after or not p:
        continue
    ok = "yes" if float(p["median_ratio"]) <= no_slower else "**no**"
    print(f"| {fault} | {mode} | {before} | {after} | {p['median_ratio']} "
          f"({p['min_ratio']}-{p['max_ratio']}, {p['n']}) | {ok} |")
PY
        echo
    fi
    echo "| fault | mode | n | median ms | p90 ms | max ms |"
    echo "|---|---|---|---|---|---|"
    md_rows "$OUT/fault_timing.csv"
    echo
    echo "![fault timing](fault_timing.png)"
    echo
    echo "## Memory"
    echo
    echo "Resident set size (\`tests/bench/memory.sh\`): the idle service (no host"
    echo "yet), after the first call, and after host restarts (admin restart, then"
    echo "a call on the new host). In thread mode the host lives in the service."
    echo
    echo "| mode | stage | service RSS KiB | host RSS KiB | service fds |"
    echo "|---|---|---|---|---|"
    md_rows "$OUT/memory.csv"
    echo
    echo "## The host's sandbox"
    echo
    echo "What \`--sandbox strict\` (the default) costs on small calls"
    echo "(\`tests/bench/sandbox_bench.sh\`): two services in the same run, one"
    echo "confined and one not, alternating run by run."
    echo
    grep -E '^\||^medians' "$OUT/sandbox.txt"
    echo
    echo "## Pool speedup by function"
    echo
    echo "Over HTTP: the host's \`run_ms\` for one call at \`--threads 1\` and"
    echo "\`--threads 2\` (two services taking turns call by call; median of"
    echo "$speed_reps after a warm-up)."
    echo
    echo "| function | args | 1 thread ms | 2 threads ms | speedup |"
    echo "|---|---|---|---|---|"
    python3 - "$OUT/speedup_http.csv" "$OUT/speedup_calls.txt" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
shown = {l.split("|")[1]: l.split("|", 2)[2].strip() for l in open(sys.argv[2])}
for fn in dict.fromkeys(r["function"] for r in rows):
    rs = [r for r in rows if r["function"] == fn]
    t1 = statistics.median(float(r["run_ms"]) for r in rs if r["threads"] == "1")
    t2 = statistics.median(float(r["run_ms"]) for r in rs if r["threads"] == "2")
    print(f"| {fn} | `{shown[fn]}` | {t1:.1f} | {t2:.1f} | {t1 / t2:.2f}x |")
PY
    echo
    echo "![pool speedup](pool_speedup.png)"
    if [ -n "$pool_table" ]; then
        echo
        echo "The pool benchmark (\`tests/bench/bench_pool\`, in-process, no HTTP):"
        echo
        echo '```'
        echo "$pool_table"
        echo '```'
    fi
    if [ -n "$profile" ]; then
        echo
        echo "## Where the time goes (small calls, 32 connections, process mode)"
        echo
        echo '```'
        echo "$profile"
        echo '```'
    fi
} >"$REPORT/README.md"
echo "wrote $REPORT/README.md" >&2
