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
# its rows named before-MODE: in turns with the binary under test, fault
# by fault, so that each round gives a pair; $OUT/fault_paired.csv holds
# the median of after ÷ before over the rounds.
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

# The one median rule of this script, for the timings and for the pairs:
# the middle value, or the mean of the two middle ones.
median_awk='function median(v, n) { return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'

# stats FAULT MODE < samples in ms, one a line
stats() {
    sort -n | awk -v f="$1" -v m="$2" "$median_awk"'
        { v[NR] = $1 }
        END {
            if (NR == 0) { printf "%s,%s,0,,,\n", f, m; exit }
            p = int(NR * 0.9 + 0.5); if (p < 1) p = 1; if (p > NR) p = NR
            printf "%s,%s,%d,%.2f,%.2f,%.2f\n", f, m, NR,
                median(v, NR), v[p], v[NR]
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

samples=$OUT/fault_samples
rm -rf "$samples"
mkdir -p "$samples"
# rec FAULT TARGET MS: one sample.
rec() { echo "$3" >>"$samples/$1.$2"; }

# panic_once PORT TARGET: a panicking call on a warm host.
panic_once() {
    local r
    ensure_ok "$1"
    sleep 1.1
    r=$(post "$1" /v1/calls \
        '{"function":"panic","args":{"message":"timing","at":1}}')
    is_error "${r%% *}" worker-panicked ||
        { echo "$2: panic answered $r" >&2; exit 1; }
    rec panic_to_error "$2" "$(awk '{printf "%.3f", $2 * 1000}' <<<"$r")"
}

# crash_once PORT TARGET: a crashing call, then the next call on the new
# host, both from one curl process (no gap).
crash_once() {
    local out c1 t1 c2 t2
    ensure_ok "$1"
    sleep 1.1
    out=$(curl -s -o "$OUT/last_body.json" -w '%{http_code} %{time_total}\n' \
        --max-time 60 -H 'Content-Type: application/json' \
        -d '{"function":"crash","args":{"signal":"segv"}}' "$(url "$1")" \
        --next -s -o /dev/null -w '%{http_code} %{time_total}\n' \
        --max-time 60 -H 'Content-Type: application/json' \
        -d "$ok_call" "$(url "$1")")
    read -r c1 t1 c2 t2 <<<"$(tr '\n' ' ' <<<"$out")"
    is_error "$c1" host-crashed && [ "$c2" = 200 ] ||
        { echo "$2: crash then call answered $c1, $c2" >&2; exit 1; }
    rec crash_to_error "$2" "$(awk -v a="$t1" 'BEGIN {printf "%.3f", a * 1000}')"
    rec crash_to_next_200 "$2" \
        "$(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.3f", (a + b) * 1000}')"
}

# sigstop_once PORT TARGET: the host stopped, then a call. A heartbeat
# missed under load can replace the host between the pid lookup and the
# SIGSTOP: such a try answers 200 from the new host and is repeated (at
# most 3 times).
sigstop_once() {
    local try hp t0 t1 r
    for ((try = 0; ; try++)); do
        ensure_ok "$1"
        hp=$(host_pid "$1")
        [ -n "$hp" ] || { echo "no host pid" >&2; exit 1; }
        t0=$(now_ns)
        kill -STOP "$hp"
        r=$(post "$1" /v1/calls "$ok_call")
        t1=$(now_ns)
        if [ "${r%% *}" = 200 ] && [ "$(host_pid "$1")" != "$hp" ] &&
            ((try < 3)); then
            kill -CONT "$hp" 2>/dev/null || true
            continue
        fi
        [ "${r%% *}" = 503 ] ||
            { echo "$2: SIGSTOP: call answered $r" >&2; exit 1; }
        rec sigstop_to_503 "$2" \
            "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e6}')"
        return
    done
}

# cold_once BINARY MODE TARGET: exec -> listening -> first result. The
# service's log comes through a FIFO read line by line, the call is sent
# on bash's own socket and the clock is bash's: polling the log with grep,
# timing with date and calling with curl would add processes of their own
# (tens of milliseconds here) to what is measured.
cold_once() {
    local log=$OUT/fault-cold.log fifo=$OUT/fault-cold.fifo t0 t1 t2 pid
    local port="" line status fd sock drain
    rm -f "$fifo"
    mkfifo "$fifo"
    t0=${EPOCHREALTIME/./}
    "$1" "${flags[@]}" --isolation "$2" 2>"$fifo" >/dev/null &
    pid=$!
    bench_pids+=("$pid")
    exec {fd}<"$fifo"
    while IFS= read -r line <&"$fd"; do
        if [[ $line =~ listening.*port=([0-9]+) ]]; then
            t1=${EPOCHREALTIME/./}
            port=${BASH_REMATCH[1]}
            break
        fi
    done
    [ -n "$port" ] || { echo "$3: no listening line" >&2; exit 1; }
    exec {sock}<>"/dev/tcp/127.0.0.1/$port"
    printf 'POST /v1/calls HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
        application/json "${#ok_call}" "$ok_call" >&"$sock"
    IFS= read -r status <&"$sock"
    t2=${EPOCHREALTIME/./}
    exec {sock}<&-
    # The rest of the log is drained, so that the service never blocks on
    # it (the few lines it writes before answering fit in the pipe).
    cat <&"$fd" >"$log" &
    drain=$!
    exec {fd}<&-
    [[ $status == "HTTP/1.1 200 "* ]] ||
        { echo "$3: cold call answered $status" >&2; exit 1; }
    rec cold_exec_to_listening "$3" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e3}')"
    rec cold_exec_to_first_result "$3" \
        "$(awk -v a="$t0" -v b="$t2" 'BEGIN {printf "%.3f", (b - a) / 1e3}')"
    stop_server "$pid"
    wait "$drain" 2>/dev/null || true
    rm -f "$fifo"
}

# The targets of a mode (the binary under test, and the before binary)
# are timed in turns, fault by fault, the order swapped every round, so
# that a slow minute on the machine falls on both alike: each round gives
# a pair, and after ÷ before is judged on the pairs.
# in_turn I: the mode's targets, in round I's order.
in_turn() {
    if (($1 % 2)) && ((${#turn[@]} > 1)); then
        echo "${turn[1]} ${turn[0]}"
    else
        echo "${turn[*]}"
    fi
}

targets=""
declare -A binary port spid
for mode in $modes; do
    turn=("$mode")
    binary[$mode]=$POOLHOST
    if [ -n "${BEFORE:-}" ]; then
        turn+=("before-$mode")
        binary[before-$mode]=$BEFORE
    fi
    targets="$targets ${turn[*]}"

    for t in "${turn[@]}"; do
        start_server "poolhost-$t" "$OUT/fault-$t.log" "${binary[$t]}" \
            "${flags[@]}" --isolation "$mode"
        port[$t]=$SERVER_PORT
        spid[$t]=$SERVER_PID
        ensure_ok "${port[$t]}"
    done
    for ((i = 0; i < reps; i++)); do
        for t in $(in_turn "$i"); do panic_once "${port[$t]}" "$t"; done
    done
    for ((i = 0; i < reps; i++)); do
        for t in $(in_turn "$i"); do crash_once "${port[$t]}" "$t"; done
    done
    for t in "${turn[@]}"; do stop_server "${spid[$t]}"; done

    # SIGSTOP -> 503: process mode only (a thread cannot be stopped alone)
    if [ "$mode" = process ]; then
        for t in "${turn[@]}"; do
            start_server "poolhost-stop-$t" "$OUT/fault-stop-$t.log" \
                "${binary[$t]}" "${flags[@]}" --heartbeat-timeout-ms 1000 \
                --innocent-retries 0
            port[$t]=$SERVER_PORT
            spid[$t]=$SERVER_PID
        done
        for ((i = 0; i < reps && i < 8; i++)); do
            for t in $(in_turn "$i"); do sigstop_once "${port[$t]}" "$t"; done
        done
        for t in "${turn[@]}"; do stop_server "${spid[$t]}"; done
    fi

    for ((i = 0; i < reps && i < 10; i++)); do
        for t in $(in_turn "$i"); do cold_once "${binary[$t]}" "$mode" "$t"; done
    done
done

# host start -> ready, as the service logs it: the targets of a mode went
# through the same host starts in turns, so the n-th of each pair up.
for target in $targets; do
    grep -hoE 'host_ready .*start_ms=[0-9.]+' "$OUT/fault-$target.log" |
        sed -E 's/.*start_ms=//' >"$samples/host_start_to_ready.$target"
done

faults="panic_to_error crash_to_error crash_to_next_200 sigstop_to_503
    cold_exec_to_listening cold_exec_to_first_result host_start_to_ready"
for target in $targets; do
    for f in $faults; do
        if [ -f "$samples/$f.$target" ]; then
            stats "$f" "$target" <"$samples/$f.$target"
        fi
    done
done

# The pairs: per fault and mode, the median of after ÷ before over the
# rounds, with the lowest and highest ratio.
if [ -n "${BEFORE:-}" ]; then
    paired=$OUT/fault_paired.csv
    echo "fault,mode,n,median_ratio,min_ratio,max_ratio" >"$paired"
    for mode in $modes; do
        for f in $faults; do
            [ -f "$samples/$f.$mode" ] || continue
            paste -d' ' "$samples/$f.$mode" "$samples/$f.before-$mode" |
                awk '$1 > 0 && $2 > 0 { print $1 / $2 }' | sort -g |
                awk -v f="$f" -v m="$mode" "$median_awk"'
                    { v[NR] = $1 }
                    END {
                        if (NR == 0) exit
                        printf "%s,%s,%d,%.2f,%.2f,%.2f\n", f, m, NR,
                            median(v, NR), v[1], v[NR]
                    }' >>"$paired"
        done
    done
fi
rm -rf "$samples"
