# Shared helpers for the benchmark scripts (sourced, not run). Every server
# is started on 127.0.0.1 port 0 and found through its `listening` line;
# every process started here is stopped by its pid on exit.

# The build directory: $BUILD, else ./build under the repo.
bench_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$bench_repo/build}
POOLHOST=${POOLHOST:-$BUILD/server/poolhost}
CEILING=${CEILING:-$BUILD/tests/bench/ceiling}
BENCH_DIR=$bench_repo/tests/bench
OUT=${OUT:-$BENCH_DIR/out}
mkdir -p "$OUT"

bench_pids=()
bench_cleanup() {
    local p
    for p in "${bench_pids[@]}"; do
        stop_pid "$p"
    done
    bench_pids=()
}

# stop_pid PID: SIGTERM, then after 5 s SIGKILL for PID and the processes
# below it (a server that ignores SIGTERM must not hang the benchmark).
stop_pid() {
    local i tree
    kill "$1" 2>/dev/null || return 0
    for ((i = 0; i < 500; i++)); do
        kill -0 "$1" 2>/dev/null || break
        # a zombie has exited: only its parent (this shell) is left to reap it
        [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ] && break
        sleep 0.01
    done
    if ((i == 500)); then
        echo "pid $1 ignored SIGTERM for 5 s: SIGKILL" >&2
        tree=$(python3 "$BENCH_DIR/procstat.py" pids "$1")
        kill -KILL ${tree//,/ } 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}
trap bench_cleanup EXIT

now_ns() { date +%s%N; }

# start_server NAME LOG CMD...: starts CMD with stderr into LOG and waits
# (at most 20 s) for its listening line. Sets SERVER_PID and SERVER_PORT.
start_server() {
    local name=$1 log=$2
    shift 2
    : >"$log" # not an earlier run's listening line
    "$@" 2>"$log" >/dev/null &
    SERVER_PID=$!
    bench_pids+=("$SERVER_PID")
    SERVER_PORT=""
    local i line
    for ((i = 0; i < 2000; i++)); do
        line=$(grep -m1 'listening' "$log" 2>/dev/null || true)
        if [ -n "$line" ]; then
            SERVER_PORT=$(sed -nE 's/.*port[=":]+([0-9]+).*/\1/p' <<<"$line")
            [ -n "$SERVER_PORT" ] ||
                SERVER_PORT=$(grep -oE ':[0-9]+' <<<"$line" | tail -1 | tr -d :)
            [ -n "$SERVER_PORT" ] && return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.01
    done
    echo "$name did not start; its log:" >&2
    cat "$log" >&2
    return 1
}

# free_port: a TCP port free on 127.0.0.1 right now (for servers started
# with a quiet log, which do not print their listening line). Drawn below
# the kernel's ephemeral range, so that servers started elsewhere on port
# 0 cannot take it before ours binds it.
free_port() {
    python3 -c 'import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(100):
    port = random.randrange(max(1024, low - 12000), low)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break'
}

# start_quiet NAME LOG PORT CMD...: starts CMD (which listens on PORT) and
# waits (at most 20 s) until PORT accepts connections. Sets SERVER_PID and
# SERVER_PORT.
start_quiet() {
    local name=$1 log=$2 port=$3 i
    shift 3
    "$@" 2>"$log" >/dev/null &
    SERVER_PID=$!
    bench_pids+=("$SERVER_PID")
    SERVER_PORT=$port
    for ((i = 0; i < 2000; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            # Still ours: a server that lost the port exits at once.
            sleep 0.1
            kill -0 "$SERVER_PID" 2>/dev/null && return 0
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.01
    done
    echo "$name did not start; its log:" >&2
    cat "$log" >&2
    return 1
}

# stop_server PID: stops it (stop_pid) and forgets it.
stop_server() {
    stop_pid "$1"
    local keep=() p
    for p in "${bench_pids[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    bench_pids=("${keep[@]}")
}

# post PORT PATH BODY [CURL_ARGS...]: prints "STATUS SECONDS" and keeps the
# body in $OUT/last_body.json.
post() {
    local port=$1 path=$2 body=$3
    shift 3
    curl -s -o "$OUT/last_body.json" -w '%{http_code} %{time_total}\n' \
        --max-time 60 -H 'Content-Type: application/json' -d "$body" "$@" \
        "http://127.0.0.1:$port$path"
}

# get PORT PATH: the body on stdout.
get() {
    curl -s --max-time 10 "http://127.0.0.1:$1$2"
}

# host_pid PORT: the pool host's pid from GET /v1/pool (empty if none).
host_pid() {
    get "$1" /v1/pool | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    sys.exit(0)
h = d.get("host") if isinstance(d.get("host"), dict) else d
pid = h.get("pid") if isinstance(h, dict) else None
print(pid if isinstance(pid, int) and pid > 0 else "")'
}

# rss_kb PID: resident set size in KiB.
rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null
}

# fd_count PID
fd_count() {
    (ls "/proc/$1/fd" 2>/dev/null || true) | wc -l
}

# wl_args WORKLOAD: the wrk script and its arguments for a workload: small
# (sum_squares {n: 1000}), batch (10 of them in one POST /v1/batch) or
# nqueens (nqueens {n: 10}).
wl_args() {
    case $1 in
    small) echo "call.lua sum_squares {\"n\":1000}" ;;
    batch) echo "batch.lua 10 sum_squares {\"n\":1000}" ;;
    nqueens) echo "call.lua nqueens {\"n\":10}" ;;
    esac
}

# wl_calls WORKLOAD: the calls one request of the workload carries.
wl_calls() {
    case $1 in
    batch) echo 10 ;;
    *) echo 1 ;;
    esac
}

# bench_wrk PORT WORKLOAD CONNS SECONDS [WRAPPER...]: one wrk run against
# 127.0.0.1:PORT (run under WRAPPER when given); prints its
# "WRK rps=... p50_us=... p99_us=..." line.
bench_wrk() {
    local port=$1 wl=$2 c=$3 d=$4 script a1 a2 a3
    shift 4
    read -r script a1 a2 a3 <<<"$(wl_args "$wl")"
    local threads=2
    ((c < 2)) && threads=1
    "$@" wrk -t"$threads" -c"$c" -d"${d}s" --timeout 10s \
        -s "$BENCH_DIR/$script" "http://127.0.0.1:$port" \
        -- $a1 $a2 $a3 | grep '^WRK '
}

# syscalls_countable: whether perf can count system calls here (the
# raw_syscalls tracepoint needs tracefs and perf_event_paranoid <= 1 or
# root).
syscalls_countable() {
    command -v perf >/dev/null &&
        perf stat -x, -e raw_syscalls:sys_enter -o /dev/null -- true 2>/dev/null
}

# bench_wrk_counted PID PORT WORKLOAD CONNS SECONDS: bench_wrk against the
# server PID, plus what PID and the processes below it (poolhost's pool
# host) spent meanwhile: prints the WRK line extended with "ctx=N vctx=V
# cpu_ms=M procs=P syscalls=S" (context switches, the voluntary ones, CPU
# time, processes counted: tests/bench/procstat.py; S is empty unless
# BENCH_SYSCALLS=1, as perf's tracepoint slows every system call on the
# machine a little).
bench_wrk_counted() {
    local pid=$1 port=$2 wl=$3 c=$4 d=$5 before after line wrap=() sc=""
    local stat=$OUT/perf_stat.txt
    if [ "${BENCH_SYSCALLS:-0}" = 1 ]; then
        rm -f "$stat"
        wrap=(perf stat -x, -e raw_syscalls:sys_enter -o "$stat"
            -p "$(python3 "$BENCH_DIR/procstat.py" pids "$pid")" --)
    fi
    before=$(python3 "$BENCH_DIR/procstat.py" snap "$pid")
    line=$(bench_wrk "$port" "$wl" "$c" "$d" "${wrap[@]}")
    after=$(python3 "$BENCH_DIR/procstat.py" snap "$pid")
    [ ${#wrap[@]} -gt 0 ] && sc=$(awk -F, '/raw_syscalls/ {print $1}' "$stat")
    echo "$line $(python3 "$BENCH_DIR/procstat.py" delta "$before" "$after") syscalls=$sc"
}

# peer_start LOG: starts the Node.js + piscina peer (tests/bench/peer/) on
# a free port, its packages installed once from the lock file into
# $PEER_DIR (default $OUT/peer; npm needs the registry the first time).
# Sets SERVER_PID and SERVER_PORT.
peer_start() {
    local dir=${PEER_DIR:-$OUT/peer} src=$BENCH_DIR/peer
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "the piscina peer needs node and npm (apt-get install nodejs npm)," \
            "or PEER=0 to leave it out" >&2
        return 1
    fi
    if ! cmp -s "$src/package-lock.json" "$dir/package-lock.json" ||
        [ ! -f "$dir/node_modules/piscina/package.json" ]; then
        mkdir -p "$dir"
        cp "$src/package.json" "$src/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --omit=optional --no-audit --no-fund \
            --loglevel=error) >&2
    fi
    start_server piscina "$1" env NODE_PATH="$dir/node_modules" \
        node "$src/server.js" --listen 127.0.0.1:0
}
