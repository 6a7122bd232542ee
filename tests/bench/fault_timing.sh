#!/usr/bin/env bash
# Failure timing: how long a caller waits for the answer to each kind of
# failure, measured from outside over HTTP on a running service.
#   panic -> error        time of the panicking call (host already warm),
#                         answered 500 worker-panicked (503 before #9)
#   crash -> error -> 200 the crashing call (500 host-crashed; 503 before
#                         #9), then the next call on the new host, both
#                         from one curl process (no gap)
#   SIGSTOP -> 503        host stopped, then a call: answered once the
#                         heartbeat timeout (1000 ms) fires
#   cold start            service exec -> listening -> first result (the
#                         host starts lazily with the first call)
# Faults are spaced by more than the restart window (1 s here), so that each
# is measured as an isolated failure, without the backoff that a burst of
# failures earns. Prints median, p90 and max per fault and mode; writes
# $OUT/fault_timing.csv. With BEFORE=/path/to/poolhost (for instance from
# tests/bench/build_ref.sh) the same faults are timed on that binary too,
# its rows named before-MODE.
#
#   [BEFORE=path] tests/bench/fault_timing.sh [-n REPS] [-m "process thread"]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

reps=10
modes="process thread"
while getopts n:m: opt; do
    case $opt in
    n) reps=$OPTARG ;;
    m) modes=$OPTARG ;;
    *) exit 2 ;;
    esac
done

csv=$OUT/fault_timing.csv
echo "fault,mode,n,median_ms,p90_ms,max_ms" >"$csv"
samples=$OUT/fault_samples.txt

# stats FAULT MODE < samples in ms, one a line
stats() {
    sort -n | awk -v f="$1" -v m="$2" '
        { v[NR] = $1 }
        END {
            if (NR == 0) { printf "%s,%s,0,,,\n", f, m; exit }
            p = int(NR * 0.9 + 0.5); if (p < 1) p = 1; if (p > NR) p = NR
            printf "%s,%s,%d,%.2f,%.2f,%.2f\n", f, m, NR,
                v[int((NR + 1) / 2)], v[p], v[NR]
        }' | tee -a "$csv"
}

ok_call='{"function":"sum_squares","args":{"n":1000}}'
flags=(--listen 127.0.0.1:0 --enable-fault-injection --idle-shutdown-ms -1
    --restart-max 1000000 --restart-window-s 1 --max-abandoned-hosts 1000
    --log-level info)

# is_error STATUS TYPE: whether a fault's own call got its answer: 500 (the
# culprit's answer since #9) or 503 (before it), with the fault's problem
# type.
is_error() {
    [[ "$1" =~ ^50[03]$ ]] &&
        grep -q "\"type\":\"/problems/$2\"" "$OUT/last_body.json"
}

# ensure_ok PORT: one successful call (the host is up afterwards).
ensure_ok() {
    local i r
    for ((i = 0; i < 100; i++)); do
        r=$(post "$1" /v1/calls "$ok_call")
        [ "${r%% *}" = 200 ] && return 0
        sleep 0.05
    done
    echo "no successful call on port $1" >&2
    return 1
}

url() { echo "http://127.0.0.1:$1/v1/calls"; }

targets=$modes
declare -A binary mode_of
for mode in $modes; do
    binary[$mode]=$POOLHOST
    mode_of[$mode]=$mode
    if [ -n "${BEFORE:-}" ]; then
        targets="$targets before-$mode"
        binary[before-$mode]=$BEFORE
        mode_of[before-$mode]=$mode
    fi
done

for target in $targets; do
    bin=${binary[$target]}
    mode=${mode_of[$target]}
    start_server "poolhost-$target" "$OUT/fault-$target.log" "$bin" \
        "${flags[@]}" --isolation "$mode"
    port=$SERVER_PORT
    ensure_ok "$port"

    # panic -> error
    : >"$samples"
    for ((i = 0; i < reps; i++)); do
        ensure_ok "$port"
        sleep 1.1
        r=$(post "$port" /v1/calls \
            '{"function":"panic","args":{"message":"timing","at":1}}')
        is_error "${r%% *}" worker-panicked ||
            { echo "$target: panic answered $r" >&2; exit 1; }
        awk '{printf "%.3f\n", $2 * 1000}' <<<"$r" >>"$samples"
    done
    stats panic_to_error "$target" <"$samples"

    # crash -> error, and crash -> next 200 (one curl process, two requests)
    : >"$samples"
    : >"$samples.next"
    for ((i = 0; i < reps; i++)); do
        ensure_ok "$port"
        sleep 1.1
        out=$(curl -s -o "$OUT/last_body.json" -w '%{http_code} %{time_total}\n' \
            --max-time 60 -H 'Content-Type: application/json' \
            -d '{"function":"crash","args":{"signal":"segv"}}' "$(url "$port")" \
            --next -s -o /dev/null -w '%{http_code} %{time_total}\n' \
            --max-time 60 -H 'Content-Type: application/json' \
            -d "$ok_call" "$(url "$port")")
        read -r c1 t1 c2 t2 <<<"$(tr '\n' ' ' <<<"$out")"
        is_error "$c1" host-crashed && [ "$c2" = 200 ] ||
            { echo "$target: crash then call answered $c1, $c2" >&2; exit 1; }
        awk -v a="$t1" 'BEGIN {printf "%.3f\n", a * 1000}' >>"$samples"
        awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.3f\n", (a + b) * 1000}' \
            >>"$samples.next"
    done
    stats crash_to_error "$target" <"$samples"
    stats crash_to_next_200 "$target" <"$samples.next"
    stop_server "$SERVER_PID"

    # SIGSTOP -> 503: process mode only (a thread cannot be stopped alone)
    if [ "$mode" = process ]; then
        start_server poolhost-stop "$OUT/fault-stop.log" "$bin" \
            "${flags[@]}" --heartbeat-timeout-ms 1000 --innocent-retries 0
        port=$SERVER_PORT
        : >"$samples"
        # A heartbeat missed under load can replace the host between the
        # pid lookup and the SIGSTOP: such a try answers 200 from the new
        # host and is repeated (at most 3 times in all).
        retries=0
        for ((i = 0; i < reps && i < 8; i++)); do
            ensure_ok "$port"
            hp=$(host_pid "$port")
            [ -n "$hp" ] || { echo "no host pid" >&2; exit 1; }
            t0=$(now_ns)
            kill -STOP "$hp"
            r=$(post "$port" /v1/calls "$ok_call")
            t1=$(now_ns)
            if [ "${r%% *}" = 200 ] && [ "$(host_pid "$port")" != "$hp" ] &&
                ((retries++ < 3)); then
                kill -CONT "$hp" 2>/dev/null || true
                i=$((i - 1))
                continue
            fi
            [ "${r%% *}" = 503 ] ||
                { echo "$target: SIGSTOP: call answered $r" >&2; exit 1; }
            echo $(((t1 - t0) / 1000)) | awk '{printf "%.3f\n", $1 / 1000}' \
                >>"$samples"
        done
        stats sigstop_to_503 "$target" <"$samples"
        stop_server "$SERVER_PID"
    fi

    # cold start: exec -> listening -> first result
    : >"$samples"
    : >"$samples.listen"
    for ((i = 0; i < reps && i < 10; i++)); do
        log=$OUT/fault-cold.log
        : >"$log" # not the last run's listening line
        t0=$(now_ns)
        "$bin" "${flags[@]}" --isolation "$mode" 2>"$log" >/dev/null &
        pid=$!
        bench_pids+=("$pid")
        until grep -q listening "$log" 2>/dev/null; do sleep 0.001; done
        t1=$(now_ns)
        port=$(sed -nE 's/.*listening.*port=([0-9]+).*/\1/p' "$log")
        r=$(post "$port" /v1/calls "$ok_call")
        t2=$(now_ns)
        [ "${r%% *}" = 200 ] ||
            { echo "$target: cold call answered $r" >&2; exit 1; }
        awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", (b - a) / 1e6}' \
            >>"$samples.listen"
        awk -v a="$t0" -v b="$t2" 'BEGIN {printf "%.3f\n", (b - a) / 1e6}' \
            >>"$samples"
        stop_server "$pid"
    done
    stats cold_exec_to_listening "$target" <"$samples.listen"
    stats cold_exec_to_first_result "$target" <"$samples"
done

# host start -> ready, as the service logs it
for target in $targets; do
    grep -hoE 'host_ready .*start_ms=[0-9.]+' "$OUT/fault-$target.log" |
        sed -E 's/.*start_ms=//' | stats host_start_to_ready "$target"
done
rm -f "$samples" "$samples.next" "$samples.listen"
