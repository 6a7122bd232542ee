#!/usr/bin/env bash
# Soak: the chaos mix (tests/chaos, attached to a service started here) for
# a configurable time, sampling the service every few seconds into CSV:
# RSS of the service and of its host, open fds, threads, child processes,
# host restarts, calls in flight, and the latency of a probe call.
#
#   tests/bench/soak.sh [-t SECONDS] [-i INTERVAL_S] [-m process|thread]
#                       [-x "EXTRA CHAOS ARGS"]
#
# Writes $OUT/soak.csv; prints the chaos summary and the first and last
# samples. Exit status: the chaos run's (0 when every assertion held).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

seconds=600
interval=5
mode=process
extra=""
while getopts t:i:m:x: opt; do
    case $opt in
    t) seconds=$OPTARG ;;
    i) interval=$OPTARG ;;
    m) mode=$OPTARG ;;
    x) extra=$OPTARG ;;
    *) exit 2 ;;
    esac
done
CHAOS=${CHAOS:-$BUILD/tests/chaos}

port=$(free_port)
start_quiet poolhost "$OUT/soak-service.log" "$port" "$POOLHOST" \
    --listen "127.0.0.1:$port" --isolation "$mode" --threads 2 \
    --enable-fault-injection --idle-shutdown-ms -1 --restart-max 1000000 \
    --restart-window-s 1 --innocent-retries 100 --cancel-grace-ms 500 \
    --heartbeat-timeout-ms 5000 --max-abandoned-hosts 1000 --log-level warn
service=$SERVER_PID

# shellcheck disable=SC2086
"$CHAOS" --attach "$service:$port" --isolation "$mode" --seconds "$seconds" \
    $extra >"$OUT/soak-chaos.log" 2>&1 &
chaos=$!
bench_pids+=("$chaos")

csv=$OUT/soak.csv
echo "t_s,service_rss_kib,host_rss_kib,service_fds,threads,children,restarts,in_flight,probe_status,probe_ms" >"$csv"
start=$(date +%s)
probe='{"function":"sum_squares","args":{"n":1000},"timeout_ms":60000}'
while kill -0 "$chaos" 2>/dev/null; do
    pool=$(get "$port" /v1/pool || true)
    read -r hp restarts in_flight < <(python3 -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except Exception:
    print("- - -"); sys.exit(0)
pid = (d.get("host") or {}).get("pid") or "-"
print(pid, sum((d.get("restarts") or {}).values()), d.get("in_flight", "-"))' "$pool")
    host_rss=""
    [ "$hp" != - ] && [ "$mode" = process ] && host_rss=$(rss_kb "$hp" || true)
    r=$(post "$port" /v1/calls "$probe" || echo "000 0")
    children=$( (ps --ppid "$service" -o pid= || true) | wc -l)
    printf '%d,%s,%s,%s,%s,%s,%s,%s,%s,%.2f\n' "$(($(date +%s) - start))" \
        "$(rss_kb "$service")" "$host_rss" "$(fd_count "$service")" \
        "$( (ls "/proc/$service/task" || true) | wc -l)" "$children" "$restarts" \
        "$in_flight" "${r%% *}" "$(awk '{print $2 * 1000}' <<<"$r")" >>"$csv"
    sleep "$interval"
done
rc=0
wait "$chaos" || rc=$?
grep -v '^20[0-9][0-9]-' "$OUT/soak-chaos.log" | tail -12
echo "samples: $(($(wc -l <"$csv") - 1)); first and last:"
sed -n '1,2p' "$csv"
tail -1 "$csv"
exit "$rc"
