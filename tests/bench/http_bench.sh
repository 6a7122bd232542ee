#!/usr/bin/env bash
# HTTP benchmark: wrk against several servers in the same run, alternating
# target by target, for a small call, a batch and a compute-bound call at
# several connection counts. The targets:
#   ceiling           the cheapest libmicrohttpd server (tests/bench/ceiling.c)
#   process, thread   poolhost ($POOLHOST) in each isolation mode
#   before-process,   another poolhost binary, BEFORE=/path/to/poolhost (for
#   before-thread     instance from tests/bench/build_ref.sh): before/after
#   piscina           the Node.js + piscina peer (tests/bench/peer/; PEER=0
#                     leaves it out)
# Prints every run: requests/s, p50, p99 and, counted from /proc for the
# server and the processes below it (poolhost's pool host), context
# switches (all, and the voluntary ones) and CPU time per request; with -s
# also system calls per request (perf). Writes the raw runs to $OUT/http_runs.csv and the tables
# (tests/bench/http_tables.py) to $OUT/http_table.md (every target, ratio to
# the ceiling), $OUT/http_compare.md (after / before, poolhost / piscina)
# and $OUT/http_goals.md (issue 11's bars).
#
#   [BEFORE=path] [PEER=0] tests/bench/http_bench.sh [-d SECONDS]
#       [-c "1 8 32 128"] [-r ROUNDS] [-w "small batch nqueens"]
#       [-m "process thread"] [-s]
#
# Needs a release build (BUILD=build-dir; default ./build),
# wrk and python3; node and npm for the peer. wrk runs on the same machine
# as the servers: on 2 cores the client takes a good share of the CPU, for
# every target alike. Counted quantities (context switches, CPU time and
# system calls per request) are what other load on the machine blurs least.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

duration=5
conns="1 8 32 128"
rounds=2
workloads="small batch nqueens"
modes="process thread"
count_syscalls=0
while getopts d:c:r:w:m:s opt; do
    case $opt in
    d) duration=$OPTARG ;;
    c) conns=$OPTARG ;;
    r) rounds=$OPTARG ;;
    w) workloads=$OPTARG ;;
    m) modes=$OPTARG ;;
    s) count_syscalls=1 ;;
    *) exit 2 ;;
    esac
done
for tool in wrk python3; do
    command -v "$tool" >/dev/null || {
        echo "http_bench: needs $tool" >&2
        exit 1
    }
done
if ((count_syscalls)) && ! syscalls_countable; then
    echo "http_bench: perf cannot count system calls here; -s ignored" >&2
    count_syscalls=0
fi
export BENCH_SYSCALLS=$count_syscalls
max_conns=0
for c in $conns; do ((c > max_conns)) && max_conns=$c; done

declare -A port pid
start_server ceiling "$OUT/ceiling.log" "$CEILING"
port[ceiling]=$SERVER_PORT
pid[ceiling]=$SERVER_PID
targets=ceiling
poolhosts=""

# start_poolhost TARGET BINARY MODE
start_poolhost() {
    local p
    p=$(free_port)
    start_quiet "$1" "$OUT/$1.log" "$p" "$2" \
        --listen "127.0.0.1:$p" --isolation "$3" --idle-shutdown-ms -1 \
        --max-connections $((max_conns * 2 + 64)) \
        --max-connections-per-ip $((max_conns * 2 + 64)) \
        --log-level "${POOLHOST_LOG_LEVEL:-warn}"
    port[$1]=$SERVER_PORT
    pid[$1]=$SERVER_PID
    targets="$targets $1"
    poolhosts="$poolhosts $1"
}
for m in $modes; do
    start_poolhost "$m" "$POOLHOST" "$m"
done
if [ -n "${BEFORE:-}" ]; then
    for m in $modes; do
        start_poolhost "before-$m" "$BEFORE" "$m"
    done
fi
if [ "${PEER:-1}" != 0 ]; then
    peer_start "$OUT/piscina.log"
    port[piscina]=$SERVER_PORT
    pid[piscina]=$SERVER_PID
    targets="$targets piscina"
    poolhosts="$poolhosts piscina"
fi

# A correct answer first (the host starts lazily): every server but the
# ceiling computes the same result for each workload, then a short warm-up.
for wl in $workloads; do
    expect=""
    for t in $poolhosts; do
        read -r script a1 a2 a3 <<<"$(wl_args "$wl")"
        if [ "$script" = call.lua ]; then
            r=$(post "${port[$t]}" /v1/calls "{\"function\":\"$a1\",\"args\":$a2}" --max-time 10) || true
            key=result
        else
            r=$(post "${port[$t]}" /v1/batch "{\"calls\":[{\"function\":\"$a2\",\"args\":$a3}]}" --max-time 10) || true
            key=results
        fi
        [ "${r%% *}" = 200 ] || {
            echo "$t: $wl answered $r: $(cat "$OUT/last_body.json")" >&2
            exit 1
        }
        got=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = d["results"][0]["result"] if sys.argv[2] == "results" else d["result"]
print(json.dumps(r, sort_keys=True))' "$OUT/last_body.json" "$key")
        if [ -z "$expect" ]; then
            expect=$got
        elif [ "$got" != "$expect" ]; then
            echo "$t: $wl computed $got, others $expect" >&2
            exit 1
        fi
    done
done
for t in $targets; do bench_wrk "${port[$t]}" small 8 1 >/dev/null; done

csv=$OUT/http_runs.csv
echo "workload,target,conns,round,rps,p50_us,p99_us,requests,non2xx,errors,calls_per_req,ctx_switches,cpu_ms,syscalls,ctx_voluntary" >"$csv"
for wl in $workloads; do
    calls=$(wl_calls "$wl")
    for c in $conns; do
        for ((r = 1; r <= rounds; r++)); do
            for t in $targets; do
                line=$(bench_wrk_counted "${pid[$t]}" "${port[$t]}" "$wl" "$c" "$duration")
                eval "$(sed -E 's/^WRK //' <<<"$line")"
                echo "$wl,$t,$c,$r,$rps,$p50_us,$p99_us,$requests,$non2xx,$errors,$calls,$ctx,$cpu_ms,$syscalls,$vctx" >>"$csv"
                per_req=$(python3 -c '
import sys
req, ctx, vctx, cpu, sc = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                           float(sys.argv[4]), sys.argv[5])
req = max(req, 1)
out = f"ctx/req {ctx / req:5.2f} ({vctx / req:5.2f} vol)  cpu {cpu * 1000 / req:6.1f} us/req"
print(out + (f"  syscalls/req {int(sc) / req:5.1f}" if sc else ""))' \
                    "$requests" "$ctx" "$vctx" "$cpu_ms" "$syscalls")
                printf '%-8s %-15s c=%-4s round %d: %10.0f req/s  p50 %6.2f ms  p99 %7.2f ms  %s  non2xx %s errors %s\n' \
                    "$wl" "$t" "$c" "$r" "$rps" "$(bc -l <<<"$p50_us/1000")" \
                    "$(bc -l <<<"$p99_us/1000")" "$per_req" "$non2xx" "$errors" >&2
            done
        done
    done
done

python3 "$BENCH_DIR/http_tables.py" "$csv" "$OUT"
