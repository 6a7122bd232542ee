#!/usr/bin/env bash
# Lints api/openapi.yaml with Redocly CLI's strictest built-in ruleset
# (warnings fail too). .ci/setup.sh installs the pinned CLI from npm into
# the build directory's tools/ folder.
#   lint.sh BUILD_DIR OPENAPI_YAML
set -euo pipefail
redocly="$1/tools/node_modules/.bin/redocly"
if [ ! -x "$redocly" ]; then
    echo "lint.sh: $redocly is missing: run .ci/setup.sh $1" >&2
    exit 1
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec "$redocly" lint --extends recommended-strict "$2"
