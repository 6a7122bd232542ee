#!/usr/bin/env bash
# The load-balancer test (#5, #9): HAProxy, configured by the repository's
# docker/haproxy.cfg rewritten to loopback ports, in front of three poolhost
# processes. A steady stream of calls goes through HAProxy while one
# replica's host is crashed repeatedly (calls sent straight to it) until its
# pool is unavailable, twice. Asserted: every call through HAProxy is
# answered 200 with the right result, HAProxy marks the replica DOWN and then
# UP again, it retried calls away from the failed replica, async calls stay
# on the replica that holds them (even while it is DOWN). And HAProxy never
# replays a call a replica may still run: the configuration's server timeout
# exceeds the replicas' largest deadline and it retries only 503s and failed
# connections; a panicking call (500) and a call past its deadline (504, the
# replica's own answer) run on exactly one replica.
#
#   test_lb.sh POOLHOST HAPROXY HAPROXY_CFG
#
# Needs curl. Everything it starts is stopped on exit.
#
# shellcheck disable=SC2317  # functions run by traps and wait_for
set -uo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 POOLHOST HAPROXY HAPROXY_CFG" >&2
    exit 2
fi
poolhost=$1
haproxy=$2
cfg_src=$3

work=$(mktemp -d "${TMPDIR:-/tmp}/poolhost-lb.XXXXXX") || exit 1
pids=()
failures=0
# The whole run is bounded; every wait below is bounded too.
deadline=$((SECONDS + 200))

pass() { echo "PASS: $*"; }
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
die() {
    fail "$*"
    exit 1
}

# Stops what was started (SIGTERM, then SIGKILL after 15 s), shows the logs
# when something failed, removes the work directory.
cleanup() {
    local rc=$? pid i
    touch "$work/stop"
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "$failures" -ne 0 ] || [ "$rc" -ne 0 ]; then
        for f in "$work"/*.log "$work"/*.fail; do
            [ -s "$f" ] || continue
            echo "---- last lines of ${f##*/}"
            tail -n 40 "$f"
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until "$@" succeeds; polls every 0.1 s; 1 after $timeout seconds.
wait_for() {
    local timeout=$1 end
    shift
    end=$((SECONDS + timeout))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# ---- replicas --------------------------------------------------------------

# The port in the `listening` log line of a replica (text or JSON format).
listening_port() {
    grep -m1 -w listening "$1" 2>/dev/null |
        grep -oE 'port"?[=:] ?[0-9]+' | head -n1 | grep -oE '[0-9]+$'
}

# Starts a replica on an ephemeral loopback port; sets $port.
start_replica() {
    local name=$1 pid
    shift
    "$poolhost" --listen 127.0.0.1:0 --threads 1 --log-format text "$@" \
        2>"$work/$name.log" >/dev/null &
    pid=$!
    pids+=("$pid")
    port=
    for ((i = 0; i < 300; i++)); do
        port=$(listening_port "$work/$name.log")
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    die "$name did not log its listening port"
}

# Every replica has the faults module, for the panic and deadline checks.
start_replica ph1 --enable-fault-injection
p1=$port
start_replica ph2 --enable-fault-injection
p2=$port
# The victim: fault injection on, and a restart budget small enough that a
# few crashes make its pool unavailable for a short cooldown.
start_replica ph3 --enable-fault-injection --restart-max 2 \
    --restart-window-s 30 --restart-cooldown-s 8
p3=$port
victim=ph3
pv=$p3
echo "replicas: ph1 :$p1, ph2 :$p2, ph3 :$p3 (victim)"

# ---- HAProxy ---------------------------------------------------------------

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

random_port() {
    local p
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_free "$p" && echo "$p" && return
    done
}

stats_csv() { curl -s --max-time 5 "http://127.0.0.1:$st/stats;csv"; }

# Field $2 (1-based, per the stats CSV header) of server $1 of the backend.
server_field() {
    stats_csv | awk -F, -v s="$1" -v f="$2" \
        '$1 == "poolhost" && $2 == s { print $f }'
}
server_status() { server_field "$1" 18; }
server_is() { [ "$(server_status "$1")" = "$2" ]; }

# Rewrites the repository's configuration to the loopback ports: the bind
# addresses, the server-template line as one server line per replica, and a
# smaller global maxconn.
# Checks that every address was rewritten and that HAProxy accepts the result.
write_config() {
    awk -v p1="$p1" -v p2="$p2" -v p3="$p3" -v fe="$fe" -v st="$st" '
        /^[[:space:]]*server-template ph 3 poolhost:8080$/ {
            printf "    server ph1 127.0.0.1:%s\n", p1
            printf "    server ph2 127.0.0.1:%s\n", p2
            printf "    server ph3 127.0.0.1:%s\n", p3
            next
        }
        # A test needs few connections, and HAProxy refuses to start when
        # the fd limit (4096 in some containers) is below what maxconn needs.
        /^[[:space:]]*maxconn 4096$/ { sub(/4096/, "512") }
        /^[[:space:]]*bind :8080$/ { sub(/:8080/, "127.0.0.1:" fe) }
        /^[[:space:]]*bind :8404$/ { sub(/:8404/, "127.0.0.1:" st) }
        { print }' "$cfg_src" >"$work/haproxy.cfg" || return 1
    local want
    for want in "server ph1 127.0.0.1:$p1" "server ph2 127.0.0.1:$p2" \
        "server ph3 127.0.0.1:$p3" "bind 127.0.0.1:$fe" "bind 127.0.0.1:$st"; do
        grep -q "$want\$" "$work/haproxy.cfg" ||
            die "could not adapt $cfg_src to loopback ($want)"
    done
    "$haproxy" -c -q -f "$work/haproxy.cfg" >"$work/haproxy-check.log" 2>&1
}

haproxy_up() {
    kill -0 "$hapid" 2>/dev/null && stats_csv | grep -q '^poolhost,BACKEND,'
}

# Two random ports can be taken by someone else between the check and the
# bind: try a few pairs.
for ((try = 0; try < 5; try++)); do
    fe=$(random_port)
    st=$(random_port)
    [ "$fe" != "$st" ] || continue
    write_config || die "haproxy -c rejects the adapted configuration"
    "$haproxy" -db -f "$work/haproxy.cfg" >>"$work/haproxy.log" 2>&1 &
    hapid=$!
    if wait_for 20 haproxy_up; then
        pids+=("$hapid")
        break
    fi
    kill -KILL "$hapid" 2>/dev/null
    wait "$hapid" 2>/dev/null
    hapid=
done
[ -n "${hapid:-}" ] || die "haproxy did not start"
url="http://127.0.0.1:$fe"
echo "haproxy: front :$fe, stats :$st"

all_up() { server_is ph1 UP && server_is ph2 UP && server_is ph3 UP; }
wait_for 30 all_up || die "HAProxy did not see the three replicas UP"
pass "HAProxy health-checks /readyz and sees ph1, ph2, ph3 UP"

# ---- calls -----------------------------------------------------------------

# POSTs a call body to $1 (base URL) with extra curl arguments after it;
# the body lands in $2, the status code is printed.
post_call() {
    local base=$1 out=$2 body=$3
    shift 3
    curl -sS --max-time 60 -o "$out" -w '%{http_code}' \
        -H 'Content-Type: application/json' -d "$body" "$@" \
        "$base/v1/calls" 2>>"$work/curl.log"
}

# The sum in a sum_squares result body.
result_sum() { grep -oE '"sum" *: *"?[0-9]+' "$1" | grep -oE '[0-9]+$'; }
squares() { echo $(($1 * ($1 + 1) * (2 * $1 + 1) / 6)); }

# ---- async calls stick to their replica ------------------------------------

# The replica whose own port knows call $1.
owner_of() {
    local name p
    for name in ph1 ph2 ph3; do
        eval "p=\$p${name#ph}"
        if [ "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' \
            "http://127.0.0.1:$p/v1/calls/$1")" = 200 ]; then
            echo "$name"
            return
        fi
    done
}

call_done() {
    curl -s --max-time 10 -o "$work/async.get" "$url$1" &&
        grep -qE '"status" *: *"(succeeded|failed|cancelled)"' "$work/async.get"
}

victim_call=
sticky_ok=0
for ((i = 1; i <= 6; i++)); do
    n=$((100 + i))
    code=$(post_call "$url" "$work/async.body" \
        "{\"function\":\"sum_squares\",\"args\":{\"n\":$n}}" \
        -D "$work/async.hdr" -H 'Prefer: respond-async')
    loc=$(tr -d '\r' <"$work/async.hdr" |
        sed -n 's/^[Ll]ocation: *\(.*\)$/\1/p')
    if [ "$code" != 202 ] || [ "${loc#/v1/calls/}" = "$loc" ]; then
        fail "async call: HTTP $code, Location '$loc'"
        continue
    fi
    ok=1
    for ((j = 0; j < 3; j++)); do
        get=$(curl -s --max-time 10 -o "$work/async.get" -w '%{http_code}' \
            "$url$loc")
        [ "$get" = 200 ] || ok=0
    done
    if ! wait_for 30 call_done "$loc" ||
        [ "$(result_sum "$work/async.get")" != "$(squares $n)" ]; then
        ok=0
    fi
    [ "$(owner_of "${loc#/v1/calls/}")" = "$victim" ] && victim_call=$loc
    if [ "$ok" = 1 ]; then
        sticky_ok=$((sticky_ok + 1))
    else
        fail "async call $loc: GET through HAProxy not always 200 or wrong result"
    fi
done
[ "$sticky_ok" = 6 ] &&
    pass "6 async calls: every GET through HAProxy reached the replica holding the call"
[ -n "$victim_call" ] || fail "no async call landed on $victim (round robin)"

# ---- no call is replayed while a replica may still run it ------------------

# Milliseconds of an HAProxy time value (100, 100ms, 10s, 5m, 2h, 1d).
haproxy_ms() {
    local v=$1 n unit
    n=${v%%[a-z]*}
    unit=${v#"$n"}
    case $unit in
    "" | ms) echo "$n" ;;
    s) echo $((n * 1000)) ;;
    m) echo $((n * 60000)) ;;
    h) echo $((n * 3600000)) ;;
    d) echo $((n * 86400000)) ;;
    *) echo 0 ;;
    esac
}

max_timeout=$("$poolhost" --help | grep -A1 -e '--max-timeout-ms' |
    grep -oE 'default: [0-9]+' | grep -oE '[0-9]+')
server_timeout=$(awk '$1 == "timeout" && $2 == "server" { print $3 }' \
    "$cfg_src" | tail -n1)
server_ms=$(haproxy_ms "${server_timeout:-0}")
if [ -n "$max_timeout" ] && [ "$server_ms" -gt "$max_timeout" ]; then
    pass "timeout server $server_timeout is above the largest call deadline (--max-timeout-ms $max_timeout)"
else
    fail "timeout server '${server_timeout:-none}' is not above --max-timeout-ms '${max_timeout:-?}': HAProxy would give up on calls that still run"
fi
retry_on=$(awk '$1 == "retry-on" { $1 = ""; print }' "$cfg_src")
unsafe=
for cond in response-timeout empty-response junk-response 500 501 502 504 \
    all-retryable-errors; do
    case " $retry_on " in *" $cond "*) unsafe="$unsafe $cond" ;; esac
done
case " $retry_on " in
*" 503 "*) has503=1 ;;
*) has503=0 ;;
esac
if [ "$has503" = 1 ] && [ -z "$unsafe" ]; then
    pass "retry-on$retry_on: 503s and failed connections only"
else
    fail "retry-on '$retry_on' replays calls that may still run:${unsafe:- (no 503)}"
fi

# The sum over the replicas of a poolhost_calls_total series.
calls_total() {
    local name p sum=0 v
    for name in ph1 ph2 ph3; do
        eval "p=\$p${name#ph}"
        v=$(curl -s --max-time 10 "http://127.0.0.1:$p/metrics" |
            awk -v s="poolhost_calls_total{function=\"$1\",outcome=\"$2\"}" \
                '$1 == s { print $2 }')
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

retries_total() {
    stats_csv | awk -F, '$1 == "poolhost" && $2 ~ /^ph/ { n += $16 } END { print n + 0 }'
}

before=$(retries_total)
code=$(post_call "$url" "$work/panic.body" \
    '{"function":"panic","args":{"message":"lb culprit"}}')
ran=$(calls_total panic worker-panicked)
if [ "$code" = 500 ] && grep -q 'worker-panicked' "$work/panic.body" &&
    [ "$ran" = 1 ] && [ "$(retries_total)" = "$before" ]; then
    pass "a panicking call through HAProxy: 500, run on one replica, not retried"
else
    fail "panicking call: HTTP $code, ran on $ran replicas, retries $before -> $(retries_total): $(head -c 300 "$work/panic.body")"
fi
code=$(post_call "$url" "$work/deadline.body" \
    '{"function":"hang","args":{"ms":60000,"cooperative":true},"timeout_ms":1500}')
ran=$(calls_total hang call-timeout)
if [ "$code" = 504 ] && grep -q '/problems/call-timeout' "$work/deadline.body" &&
    [ "$ran" = 1 ]; then
    pass "a call past its deadline through HAProxy: the replica's 504, run on one replica"
else
    fail "call past its deadline: HTTP $code, ran on $ran replicas: $(head -c 300 "$work/deadline.body")"
fi

# ---- steady stream of calls through HAProxy --------------------------------

# Sends sum_squares calls until the stop file appears (or the run's deadline)
# and checks each answer; writes its count of good answers and the bad ones.
load_worker() {
    local w=$1 n code got ok=0
    while [ ! -e "$work/stop" ] && [ "$SECONDS" -lt "$deadline" ]; do
        n=$((RANDOM % 5000 + 1))
        code=$(post_call "$url" "$work/w$w.body" \
            "{\"function\":\"sum_squares\",\"args\":{\"n\":$n}}")
        got=$(result_sum "$work/w$w.body")
        if [ "$code" = 200 ] && [ "$got" = "$(squares $n)" ]; then
            ok=$((ok + 1))
        else
            echo "n=$n: HTTP $code: $(head -c 400 "$work/w$w.body")" \
                >>"$work/w$w.fail"
        fi
    done
    echo "$ok" >"$work/w$w.count"
}

workers=4
for ((w = 0; w < workers; w++)); do
    load_worker "$w" &
    pids+=("$!")
done

# ---- kill the victim's host into pool-unavailable, twice --------------------

victim_unavailable() {
    [ "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$pv/readyz")" = 503 ]
}

# The pid of the victim's pool host, empty while it has none.
victim_host_pid() {
    curl -s --max-time 10 "http://127.0.0.1:$pv/v1/pool" |
        grep -o '"host":{"pid":[0-9]*' | grep -o '[0-9]*$'
}

# A call that crashes only costs its caller a 500: a crashing call never
# makes a replica unavailable. Kills from outside, which nobody can be
# blamed for, do, once there are more than --restart-max of them.
crash=$(post_call "http://127.0.0.1:$pv" "$work/crash.body" \
    '{"function":"crash","args":{"signal":"segv"}}')
if [ "$crash" = 500 ] && grep -q 'host-crashed' "$work/crash.body" &&
    ! victim_unavailable; then
    pass "a crashing call: 500 host-crashed for it, $victim stays ready"
else
    fail "a crashing call: HTTP $crash: $(head -c 300 "$work/crash.body")"
fi
for round in 1 2; do
    kills=0
    for ((i = 0; i < 30; i++)); do
        victim_unavailable && break
        code=$(post_call "http://127.0.0.1:$pv" "$work/kill.body" \
            '{"function":"sum_squares","args":{"n":10}}')
        pid=$(victim_host_pid)
        if [ -n "$pid" ] && [ "$pid" -gt 0 ] && kill -9 "$pid" 2>/dev/null; then
            kills=$((kills + 1))
        fi
        sleep 0.1
    done
    if victim_unavailable && [ "$kills" -ge 1 ]; then
        pass "round $round: $kills hosts killed from outside made $victim's pool unavailable"
    else
        die "round $round: $victim not unavailable after $kills kills"
    fi
    victim_unavailable && pass "round $round: $victim's /readyz answers 503"

    if wait_for 30 server_is "$victim" DOWN; then
        pass "round $round: HAProxy marked $victim DOWN"
    else
        fail "round $round: HAProxy did not mark $victim DOWN (status: $(server_status "$victim"))"
    fi
    if [ "$round" = 1 ] && [ -n "$victim_call" ]; then
        code=$(curl -s --max-time 10 -o "$work/async.get" -w '%{http_code}' \
            "$url$victim_call")
        if [ "$code" = 200 ] && grep -q "${victim_call##*/}" "$work/async.get"; then
            pass "async call $victim_call still read from $victim while it is DOWN"
        else
            fail "async call $victim_call on DOWN $victim: HTTP $code"
        fi
    fi
    if wait_for 60 server_is "$victim" UP; then
        pass "round $round: HAProxy marked $victim UP again after the cooldown"
    else
        fail "round $round: HAProxy did not mark $victim UP (status: $(server_status "$victim"))"
    fi
done

touch "$work/stop"
total=0
for ((w = 0; w < workers; w++)); do
    wait_for 90 test -e "$work/w$w.count" || fail "load worker $w did not finish"
    total=$((total + $(cat "$work/w$w.count" 2>/dev/null || echo 0)))
done
bad=$(cat "$work"/w*.fail 2>/dev/null | wc -l)
if [ "$bad" = 0 ] && [ "$total" -gt 0 ]; then
    pass "$total calls through HAProxy during the crashes, every one 200 with the right sum"
else
    fail "$bad of $((total + bad)) calls through HAProxy failed; first:"
    cat "$work"/w*.fail 2>/dev/null | head -n 5
fi

retried=$(server_field "$victim" 16)
redispatched=$(stats_csv | awk -F, '$1 == "poolhost" && $2 == "BACKEND" { print $17 }')
if [ "${retried:-0}" -gt 0 ]; then
    pass "HAProxy retried $retried calls answered by $victim on other replicas ($redispatched redispatches)"
else
    fail "HAProxy retried no call away from $victim"
fi

code=$(post_call "http://127.0.0.1:$pv" "$work/after.body" \
    '{"function":"sum_squares","args":{"n":1000}}')
if [ "$code" = 200 ] && [ "$(result_sum "$work/after.body")" = "$(squares 1000)" ]; then
    pass "$victim answers calls again"
else
    fail "$victim after recovery: HTTP $code"
fi

if [ "$failures" -eq 0 ]; then
    echo "lb: all checks passed"
    exit 0
fi
echo "lb: $failures check(s) failed"
exit 1
