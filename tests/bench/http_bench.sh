#!/usr/bin/env bash
# HTTP benchmark: wrk against the ceiling server and against poolhost (both
# isolation modes) in the same run, alternating target by target, for a small
# call, a batch and a compute-bound call at several connection counts.
# Prints requests/s, p50, p99 and the ratio to the ceiling; writes the raw
# runs to $OUT/http_runs.csv and the table to $OUT/http_table.md.
#
#   tests/bench/http_bench.sh [-d SECONDS] [-c "1 8 32 128"] [-r ROUNDS]
#                             [-w "small batch nqueens"] [-m "process thread"]
#
# Needs a release build (BUILD=build-dir; default ./build-h8 or ./build).
# wrk runs on the same machine as the servers: on 2 cores the client takes
# a good share of the CPU, for the ceiling and poolhost alike.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

duration=5
conns="1 8 32 128"
rounds=2
workloads="small batch nqueens"
modes="process thread"
while getopts d:c:r:w:m: opt; do
    case $opt in
    d) duration=$OPTARG ;;
    c) conns=$OPTARG ;;
    r) rounds=$OPTARG ;;
    w) workloads=$OPTARG ;;
    m) modes=$OPTARG ;;
    *) exit 2 ;;
    esac
done
max_conns=0
for c in $conns; do ((c > max_conns)) && max_conns=$c; done

declare -A port
start_server ceiling "$OUT/ceiling.log" "$CEILING"
port[ceiling]=$SERVER_PORT
for m in $modes; do
    p=$(free_port)
    start_quiet "poolhost-$m" "$OUT/poolhost-$m.log" "$p" "$POOLHOST" \
        --listen "127.0.0.1:$p" --isolation "$m" --idle-shutdown-ms -1 \
        --max-connections $((max_conns * 2 + 64)) \
        --max-connections-per-ip $((max_conns * 2 + 64)) \
        --log-level "${POOLHOST_LOG_LEVEL:-warn}"
    port[$m]=$SERVER_PORT
done
targets="ceiling $modes"

run_wrk() { # target workload conns seconds -> WRK line
    bench_wrk "${port[$1]}" "$2" "$3" "$4"
}

# A correct answer first (the host starts lazily), then a short warm-up.
for t in $modes; do
    for wl in $workloads; do
        read -r script a1 a2 a3 <<<"$(wl_args "$wl")"
        if [ "$script" = call.lua ]; then
            r=$(post "${port[$t]}" /v1/calls "{\"function\":\"$a1\",\"args\":$a2}")
        else
            r=$(post "${port[$t]}" /v1/batch "{\"calls\":[{\"function\":\"$a2\",\"args\":$a3}]}")
        fi
        [ "${r%% *}" = 200 ] || {
            echo "poolhost-$t: $wl answered $r: $(cat "$OUT/last_body.json")" >&2
            exit 1
        }
    done
done
for t in $targets; do run_wrk "$t" small 8 1 >/dev/null; done

csv=$OUT/http_runs.csv
echo "workload,target,conns,round,rps,p50_us,p99_us,requests,non2xx,errors" >"$csv"
for wl in $workloads; do
    for c in $conns; do
        for ((r = 1; r <= rounds; r++)); do
            for t in $targets; do
                line=$(run_wrk "$t" "$wl" "$c" "$duration")
                eval "$(sed -E 's/^WRK //' <<<"$line")"
                echo "$wl,$t,$c,$r,$rps,$p50_us,$p99_us,$requests,$non2xx,$errors" >>"$csv"
                printf '%-8s %-8s c=%-4s round %d: %10.0f req/s  p50 %6.2f ms  p99 %7.2f ms  non2xx %s errors %s\n' \
                    "$wl" "$t" "$c" "$r" "$rps" "$(bc -l <<<"$p50_us/1000")" \
                    "$(bc -l <<<"$p99_us/1000")" "$non2xx" "$errors" >&2
            done
        done
    done
done

# The best run per (workload, target, conns), as a markdown table.
python3 - "$csv" "$OUT/http_table.md" $targets <<'PY'
import csv, sys, statistics
rows = list(csv.DictReader(open(sys.argv[1])))
out, targets = sys.argv[2], sys.argv[3:]
runs = {}
for r in rows:
    runs.setdefault((r["workload"], int(r["conns"]), r["target"]), []).append(r)
def best_run(rs):
    # the run least disturbed by other work on the machine
    return max(rs, key=lambda r: float(r["rps"]))
lines = []
head = "| workload | conns | " + " | ".join(
    f"{t} req/s | {t} p50 ms | {t} p99 ms" + ("" if t == "ceiling" else f" | {t} / ceiling")
    for t in targets) + " |"
lines.append(head)
lines.append("|" + "---|" * (head.count("|") - 1))
wls = list(dict.fromkeys(r["workload"] for r in rows))
for wl in wls:
    for c in sorted({k[1] for k in runs if k[0] == wl}):
        ceil = best_run(runs[(wl, c, "ceiling")])
        cells = [wl, str(c)]
        for t in targets:
            m = best_run(runs[(wl, c, t)])
            bad = int(m["non2xx"]) + int(m["errors"])
            rps = f"{float(m['rps']):.0f}" + (f" ({bad} bad)" if bad else "")
            cells += [rps, f"{int(m['p50_us'])/1000:.2f}", f"{int(m['p99_us'])/1000:.2f}"]
            if t != "ceiling":
                cells.append(f"{float(m['rps']) / float(ceil['rps']):.0%}")
        lines.append("| " + " | ".join(cells) + " |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
