#!/usr/bin/env bash
# Builds the poolhost image and checks it from outside: a call succeeds, a
# panic (fault injection on) is a 500 with its details, the next call
# succeeds, the pool host's sandbox works under the runtime's default
# seccomp profile (a forbidden system call is a 500 naming it), every
# process runs as the non-root user on a read-only root filesystem without
# any tmpfs, the HEALTHCHECK command passes, and SIGTERM drains an
# in-flight call and exits 0.
#
#   docker/test.sh            # PORT=18080 IMAGE=poolhost:test by default
#
# Uses docker when a daemon answers, else podman. PODMAN names the command
# that runs podman (default `podman`), for a machine that needs a wrapper
# adding flags of its own (for instance host networking: the published port
# is then simply the container's).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-18080}
image=${IMAGE:-poolhost:test}
name=poolhost-test-$$
base="http://127.0.0.1:$port"
work=$(mktemp -d "${TMPDIR:-/tmp}/poolhost-docker.XXXXXX") || exit 1
passed=0
failed=0

pass() {
    echo "PASS: $*"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}
summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=(docker)
    build_flags=()
    run_flags=(-p "127.0.0.1:$port:$port")
else
    read -r -a engine <<<"${PODMAN:-podman}"
    if ! command -v "${engine[0]}" >/dev/null; then
        echo "no docker daemon and no ${engine[0]}" >&2
        exit 2
    fi
    # HEALTHCHECK is kept only in the docker image format. podman mounts a
    # tmpfs on /tmp and /run of a read-only container unless told not to.
    build_flags=(--pull=never --format docker)
    run_flags=(--read-only-tmpfs=false -p "127.0.0.1:$port:$port")
fi
echo "engine: ${engine[*]}"

cleanup() {
    "${engine[@]}" rm -f "$name" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# Waits until "$@" succeeds, polling every 0.2 s; 1 after $1 seconds.
wait_for() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# POSTs a call ($1: JSON body); status code on stdout, body in $work/body,
# headers in $work/headers.
call() {
    curl -sS --max-time 60 -o "$work/body" -D "$work/headers" \
        -w '%{http_code}' -H 'Content-Type: application/json' -d "$1" \
        "$base/v1/calls"
}
result_sum() { grep -oE '"sum" *: *"?[0-9]+' "$work/body" | grep -oE '[0-9]+$'; }
# sum_squares {n: 1000} answers 200 with the right sum ($1: what it shows).
expect_sum() {
    local code
    code=$(call '{"function":"sum_squares","args":{"n":1000}}')
    if [ "$code" = 200 ] && [ "$(result_sum)" = 333833500 ]; then
        pass "$1: 200, sum 333833500"
    else
        fail "$1: HTTP $code: $(head -c 300 "$work/body")"
    fi
}

# ---- build -----------------------------------------------------------------

if "${engine[@]}" build "${build_flags[@]}" -f "$root/docker/Dockerfile" \
    -t "$image" "$root" >"$work/build.log" 2>&1; then
    pass "image $image built"
else
    tail -n 30 "$work/build.log"
    fail "image build"
    summary
    exit 1
fi

# ---- run -------------------------------------------------------------------

if ! "${engine[@]}" run -d --name "$name" "${run_flags[@]}" \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    -e POOLHOST_LISTEN="0.0.0.0:$port" \
    -e POOLHOST_ENABLE_FAULT_INJECTION=1 \
    -e POOLHOST_DRAIN_TIMEOUT_MS=20000 \
    "$image" >/dev/null 2>"$work/run.log"; then
    cat "$work/run.log"
    fail "container start"
    summary
    exit 1
fi
ready() {
    [ "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' \
        "$base/readyz")" = 200 ]
}
if wait_for 30 ready; then
    pass "container ready: GET /readyz answers 200 on port $port"
else
    fail "container not ready within 30 s"
    "${engine[@]}" logs "$name" 2>&1 | tail -n 20
    summary
    exit 1
fi

healthcheck=$("${engine[@]}" image inspect --format \
    '{{json .Config.Healthcheck.Test}}' "$image" 2>/dev/null)
healthy() {
    if [ "${engine[0]}" = docker ]; then
        [ "$(docker inspect --format '{{.State.Health.Status}}' "$name")" = healthy ]
    else
        "${engine[@]}" healthcheck run "$name" >/dev/null 2>&1
    fi
}
if [ "${healthcheck:-null}" != null ] && wait_for 60 healthy; then
    pass "HEALTHCHECK $healthcheck passes"
else
    fail "HEALTHCHECK missing or failing (${healthcheck:-none})"
fi

# ---- calls -----------------------------------------------------------------

expect_sum "sum_squares {n: 1000}"

code=$(call '{"function":"panic","args":{"message":"boom from docker/test.sh"}}')
if [ "$code" = 500 ] && grep -q 'worker-panicked' "$work/body" &&
    grep -q 'boom from docker/test.sh' "$work/body" &&
    grep -qi '^content-type: application/problem+json' "$work/headers"; then
    pass "panic: 500 problem+json, worker-panicked, the message"
else
    fail "panic: HTTP $code: $(head -c 300 "$work/body")"
fi

expect_sum "the call after the panic"

# ---- the host's sandbox ----------------------------------------------------

# The runtime's default seccomp profile lets the pool host add its own
# filter (it sets no_new_privs itself): strict is in force, a forbidden
# system call is a 500 naming it, and the next call runs on a fresh host.
sandbox=$(curl -s --max-time 5 "$base/v1/pool" |
    grep -oE '"sandbox" *: *"[a-z]+"' | grep -oE '[a-z]+"$' | tr -d '"')
if [ "$sandbox" = strict ]; then
    pass "GET /v1/pool: sandbox strict"
else
    fail "GET /v1/pool: sandbox '${sandbox:-none}'"
fi
code=$(call '{"function":"syscall","args":{"name":"execve"}}')
if [ "$code" = 500 ] && grep -q 'forbidden-syscall' "$work/body" &&
    grep -qE '"syscall" *: *"execve"' "$work/body"; then
    pass "syscall execve: 500 host-crashed, forbidden-syscall, execve"
else
    fail "syscall execve: HTTP $code: $(head -c 300 "$work/body")"
fi
expect_sum "the call after the forbidden one"
# The pool host (not PID 1) runs under a filter more than the service.
filters=$("${engine[@]}" exec "$name" sh -c \
    'for s in /proc/[0-9]*/status; do
        grep -q "^Name:.poolhost" "$s" && grep "^Seccomp_filters:" "$s"
     done' 2>/dev/null | awk '{print $2}' | sort -n | uniq | tr '\n' ' ')
read -r fewest most _ <<<"$filters"
if [ -n "${most:-}" ] && [ "$most" -gt "$fewest" ]; then
    pass "the pool host runs under its own seccomp filter (filters: $filters)"
else
    fail "no pool host with a filter of its own (filters: ${filters:-none})"
fi

# ---- user and filesystem ---------------------------------------------------

# Real and effective uid of every process in the container (the service, its
# pool host, and the awk that reads them).
uids=$("${engine[@]}" exec "$name" sh -c \
    'cat /proc/[0-9]*/status 2>/dev/null' |
    awk '/^Name:/ { n = $2 } /^Uid:/ { print n ":" $2 ":" $3 }' | sort -u)
echo "processes (name:uid:euid): $(tr '\n' ' ' <<<"$uids")"
# The service and its pool host (spawned by the first call above).
nph=$("${engine[@]}" exec "$name" sh -c 'cat /proc/[0-9]*/comm' |
    grep -c '^poolhost$')
if [ -n "$uids" ] && ! echo "$uids" | grep -qv ':10001:10001$' &&
    [ "$nph" -ge 2 ]; then
    pass "every process runs as uid 10001 (non-root): service and pool host ($nph poolhost processes)"
else
    fail "a process runs as another user, or no pool host process ($nph poolhost processes)"
fi
pid1=$("${engine[@]}" exec "$name" cat /proc/1/comm 2>/dev/null)
if [ "$pid1" = poolhost ]; then
    pass "poolhost is PID 1 (it gets SIGTERM itself)"
else
    fail "PID 1 is '$pid1'"
fi

if "${engine[@]}" exec "$name" sh -c 'touch /probe || touch /tmp/probe' \
    >/dev/null 2>&1; then
    fail "the root filesystem (or /tmp) is writable"
else
    pass "root filesystem read-only, no writable /tmp, and the service works"
fi

# ---- SIGTERM drains --------------------------------------------------------

curl -sS --max-time 60 -o "$work/inflight" -w '%{http_code}' \
    -H 'Content-Type: application/json' \
    -d '{"function":"sleep","args":{"ms":2000}}' \
    "$base/v1/calls" >"$work/inflight.code" 2>&1 &
inflight=$!
# The in-flight call is running once the pool shows a busy worker.
busy() {
    curl -s --max-time 5 "$base/metrics" |
        grep -qE '^poolhost_calls_in_flight(\{[^}]*\})? [1-9]'
}
wait_for 20 busy || echo "note: no call seen in flight before SIGTERM"
"${engine[@]}" kill --signal TERM "$name" >/dev/null
exit_code=$(timeout 60 "${engine[@]}" wait "$name" 2>/dev/null | tail -n1)
wait "$inflight"
inflight_code=$(cat "$work/inflight.code")
if [ "$exit_code" = 0 ]; then
    pass "SIGTERM: the container exited 0"
else
    fail "SIGTERM: exit code '${exit_code:-none}'"
fi
if [ "$inflight_code" = 200 ]; then
    pass "SIGTERM: the in-flight call (sleep 2000 ms) finished with 200"
else
    fail "SIGTERM: the in-flight call got '$inflight_code': $(head -c 300 "$work/inflight")"
fi
"${engine[@]}" logs "$name" >"$work/service.log" 2>&1
if grep -qiE 'drain' "$work/service.log"; then
    pass "the service logged its drain: $(grep -iE 'drain' "$work/service.log" | head -n1 | cut -c1-160)"
else
    fail "no drain in the service log"
    tail -n 20 "$work/service.log"
fi

summary
