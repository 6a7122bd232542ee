#!/usr/bin/env bash
# Builds a commit of this repository for the benchmark's "before" target:
# the committed tree (git archive, so that nothing in the checkout, its
# uncommitted changes or its worktree list is touched) into DIR/src, a
# release build of poolhost and the ceiling into DIR/build. Prints the
# poolhost path on stdout; build output goes to stderr.
#
#   tests/bench/build_ref.sh COMMIT DIR
#   BEFORE=$(tests/bench/build_ref.sh 23155cf /tmp/ref) tests/bench/http_bench.sh
#
# Run again with the same COMMIT and DIR, it only prints the path. DIR must
# be new, empty, or a directory this script built before (it holds a
# `commit` stamp); a different COMMIT there replaces the old build.
set -euo pipefail

[ $# -eq 2 ] || {
    echo "usage: $0 COMMIT DIR" >&2
    exit 2
}
repo=$(cd "$(dirname "$0")/../.." && pwd)
sha=$(git -C "$repo" rev-parse --verify --quiet "$1^{commit}") || {
    echo "build_ref: $1 is not a commit of $repo" >&2
    exit 1
}
dir=$2
poolhost=$dir/build/server/poolhost

if [ -f "$dir/commit" ]; then
    if [ "$(cat "$dir/commit")" = "$sha" ] && [ -x "$poolhost" ] &&
        [ -x "$dir/build/tests/bench/ceiling" ]; then
        echo "$poolhost"
        exit 0
    fi
    rm -rf "$dir/src" "$dir/build" "$dir/commit"
elif [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    echo "build_ref: $dir is neither empty nor an earlier build_ref.sh build" >&2
    exit 1
fi

mkdir -p "$dir/src"
git -C "$repo" archive --format=tar "$sha" | tar -x -C "$dir/src"
echo "build_ref: $sha in $dir/src" >&2
meson setup "$dir/build" "$dir/src" --buildtype=release >&2
nice ninja -C "$dir/build" -j"${JOBS:-2}" server/poolhost tests/bench/ceiling >&2
echo "$sha" >"$dir/commit"
echo "$poolhost"
