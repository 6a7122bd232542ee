#!/usr/bin/env bash
# Memory: resident set size of the idle service (no host yet), of the
# service and its host after the first call, after 100 host restarts
# (admin restart, then a call on the new host), and after a burst of small
# calls (wrk, 10 s: the finished calls retained for GET are counted in),
# in both isolation modes.
# Prints a table; writes $OUT/memory.csv.
#
#   tests/bench/memory.sh [-r RESTARTS] [-m "process thread"]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

restarts=100
modes="process thread"
while getopts r:m: opt; do
    case $opt in
    r) restarts=$OPTARG ;;
    m) modes=$OPTARG ;;
    *) exit 2 ;;
    esac
done

token_file=$OUT/admin-token
rm -f "$token_file"
(umask 077 && echo "bench-$(date +%s%N)" >"$token_file") # poolhost wants it private
auth="Authorization: Bearer $(cat "$token_file")"
ok_call='{"function":"sum_squares","args":{"n":1000}}'

csv=$OUT/memory.csv
echo "mode,stage,service_rss_kib,host_rss_kib,service_fds" >"$csv"

sample() { # mode stage
    local hp host_rss="" fds
    hp=$(host_pid "$port")
    if [ "$1" = process ] && [ -n "$hp" ]; then
        host_rss=$(rss_kb "$hp")
    fi
    fds=$(fd_count "$SERVER_PID")
    echo "$1,$2,$(rss_kb "$SERVER_PID"),$host_rss,$fds" | tee -a "$csv"
}

for mode in $modes; do
    port=$(free_port)
    start_quiet "poolhost-$mode" "$OUT/memory-$mode.log" "$port" "$POOLHOST" \
        --listen "127.0.0.1:$port" --isolation "$mode" --idle-shutdown-ms -1 \
        --admin-token-file "$token_file" --restart-max 1000000 \
        --restart-window-s 1 --max-abandoned-hosts 1000 --log-level warn
    sleep 0.5
    sample "$mode" idle
    r=$(post "$port" /v1/calls "$ok_call")
    [ "${r%% *}" = 200 ] || { echo "first call answered $r" >&2; exit 1; }
    sleep 0.2
    sample "$mode" after_first_call
    for ((i = 0; i < restarts; i++)); do
        r=$(post "$port" /v1/pool/restart '{}' -H "$auth")
        case ${r%% *} in
        200 | 202 | 204) ;;
        *)
            echo "restart answered $r: $(cat "$OUT/last_body.json")" >&2
            exit 1
            ;;
        esac
        for ((j = 0; j < 100; j++)); do
            r=$(post "$port" /v1/calls "$ok_call")
            [ "${r%% *}" = 200 ] && break
            sleep 0.02
        done
        [ "${r%% *}" = 200 ] || { echo "call after restart: $r" >&2; exit 1; }
    done
    sleep 0.5
    sample "$mode" "after_${restarts}_restarts"
    calls=$(wrk -t2 -c16 -d10s -s "$BENCH_DIR/call.lua" \
        "http://127.0.0.1:$port" -- sum_squares '{"n":1000}' |
        sed -nE 's/^WRK .*requests=([0-9]+).*/\1/p')
    sleep 0.5
    sample "$mode" "after_${calls}_calls"
    stop_server "$SERVER_PID"
done
