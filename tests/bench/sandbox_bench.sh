#!/usr/bin/env bash
# What the host's sandbox costs (#13): two poolhost processes in the same
# run, one with --sandbox strict (the default) and one with --sandbox off,
# driven by wrk with the same workload, alternating run by run so that
# other work on the machine hits both alike. Prints every run, then per
# (workload, connections) the median req/s, p50 and p99 of each and the
# ratio strict / off. Asserts nothing: the machine is noisy.
#
#   tests/bench/sandbox_bench.sh [-d SECONDS] [-c "1 8 32"] [-r ROUNDS]
#                                [-w "small nqueens"]
#
# Needs a release build (BUILD=build-dir; default ./build),
# wrk and python3. Writes the runs to $OUT/sandbox_runs.csv.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

duration=5
conns="1 8 32"
rounds=5
workloads="small nqueens"
while getopts d:c:r:w: opt; do
    case $opt in
    d) duration=$OPTARG ;;
    c) conns=$OPTARG ;;
    r) rounds=$OPTARG ;;
    w) workloads=$OPTARG ;;
    *) exit 2 ;;
    esac
done
for tool in wrk python3; do
    command -v "$tool" >/dev/null || {
        echo "sandbox_bench: needs $tool" >&2
        exit 1
    }
done
max_conns=0
for c in $conns; do ((c > max_conns)) && max_conns=$c; done

modes="strict off"
declare -A port
for m in $modes; do
    p=$(free_port)
    start_quiet "poolhost-$m" "$OUT/poolhost-sandbox-$m.log" "$p" \
        "$POOLHOST" --listen "127.0.0.1:$p" --sandbox "$m" \
        --idle-shutdown-ms -1 \
        --max-connections $((max_conns * 2 + 64)) \
        --max-connections-per-ip $((max_conns * 2 + 64)) \
        --log-level "${POOLHOST_LOG_LEVEL:-warn}"
    port[$m]=$SERVER_PORT
done

# Each answers (its host starts lazily) and says what is in force.
for m in $modes; do
    for wl in $workloads; do
        read -r _ fn args <<<"$(wl_args "$wl")"
        r=$(post "${port[$m]}" /v1/calls "{\"function\":\"$fn\",\"args\":$args}")
        [ "${r%% *}" = 200 ] || {
            echo "poolhost --sandbox $m: $wl answered $r" >&2
            exit 1
        }
    done
    got=$(curl -s "http://127.0.0.1:${port[$m]}/v1/pool" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["sandbox"])')
    [ "$got" = "$m" ] || {
        echo "poolhost --sandbox $m reports sandbox '$got'" >&2
        exit 1
    }
    bench_wrk "${port[$m]}" small 8 1 >/dev/null
done

csv=$OUT/sandbox_runs.csv
echo "workload,sandbox,conns,round,rps,p50_us,p99_us,requests,non2xx,errors" >"$csv"
for wl in $workloads; do
    for c in $conns; do
        for ((r = 1; r <= rounds; r++)); do
            # Alternate which goes first, so that neither always runs on a
            # machine the other just warmed up.
            order=$modes
            ((r % 2 == 0)) && order="off strict"
            for m in $order; do
                line=$(bench_wrk "${port[$m]}" "$wl" "$c" "$duration")
                eval "$(sed -E 's/^WRK //' <<<"$line")"
                echo "$wl,$m,$c,$r,$rps,$p50_us,$p99_us,$requests,$non2xx,$errors" >>"$csv"
                printf '%-8s %-6s c=%-3s round %d: %9.0f req/s  p50 %6.3f ms  p99 %6.3f ms  non2xx %s errors %s\n' \
                    "$wl" "$m" "$c" "$r" "$rps" "$(bc -l <<<"$p50_us/1000")" \
                    "$(bc -l <<<"$p99_us/1000")" "$non2xx" "$errors"
            done
        done
    done
done

python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
runs = {}
for r in rows:
    runs.setdefault((r["workload"], int(r["conns"]), r["sandbox"]), []).append(r)
med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
print()
print("| workload | conns | strict req/s | off req/s | strict / off | "
      "strict p50 ms | off p50 ms | strict p99 ms | off p99 ms | bad |")
print("|---|---|---|---|---|---|---|---|---|---|")
for wl in dict.fromkeys(r["workload"] for r in rows):
    for c in sorted({k[1] for k in runs if k[0] == wl}):
        s, o = runs[(wl, c, "strict")], runs[(wl, c, "off")]
        bad = sum(int(r["non2xx"]) + int(r["errors"]) for r in s + o)
        print(f"| {wl} | {c} | {med(s, 'rps'):.0f} | {med(o, 'rps'):.0f} | "
              f"{med(s, 'rps') / med(o, 'rps'):.3f} | "
              f"{med(s, 'p50_us') / 1000:.3f} | {med(o, 'p50_us') / 1000:.3f} | "
              f"{med(s, 'p99_us') / 1000:.3f} | {med(o, 'p99_us') / 1000:.3f} | "
              f"{bad} |")
print(f"\nmedians of {len(s)} runs each; strict / off above 1 means the "
      "sandboxed host was faster")
PY
