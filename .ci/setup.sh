#!/usr/bin/env bash
# Installs what poolhost needs on Debian 12 (only the packages that are
# missing; needs root or sudo for that), the contract test's OpenAPI
# linter (Redocly CLI, pinned, from npm into <build>/tools) and the status
# page tests' puppeteer-core and axe-core (into <build>/ui-node), then
# configures and builds it in ./build (or the directory given as $1, with
# any further meson options).
#
#   bash .ci/setup.sh                      # release build in ./build
#   bash .ci/setup.sh build-asan -Db_sanitize=address,undefined
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    gcc g++ pkg-config meson ninja-build
    libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libcriterion-dev
    libseccomp-dev
    ca-certificates curl haproxy procps python3-jsonschema python3-yaml
    chromium fonts-dejavu-core
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
        missing+=("$p")
done
# Node.js and npm: the machine's own when it has them, else Debian's.
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

dir=${1:-build}
shift || true

redocly_version=1.34.5
if ! grep -qs "\"version\": \"$redocly_version\"" \
    "$dir/tools/node_modules/@redocly/cli/package.json"; then
    mkdir -p "$dir/tools"
    npm install --silent --no-audit --no-fund --prefix "$dir/tools" \
        "@redocly/cli@$redocly_version" >/dev/null
fi

# The status page's browser tests (tests/ui): puppeteer-core and axe-core,
# pinned by tests/ui/package-lock.json, into <build>/ui-node; the browsers
# are Debian's, never a download.
if ! cmp -s tests/ui/package-lock.json "$dir/ui-node/package-lock.json" ||
    [ ! -d "$dir/ui-node/node_modules/puppeteer-core" ]; then
    mkdir -p "$dir/ui-node"
    cp tests/ui/package.json tests/ui/package-lock.json "$dir/ui-node/"
    PUPPETEER_SKIP_DOWNLOAD=1 npm ci --silent --no-audit --no-fund \
        --prefix "$dir/ui-node" >/dev/null
fi

if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
else
    meson setup "$dir" --buildtype=release "$@" >/dev/null
fi
ninja -C "$dir"
