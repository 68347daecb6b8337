#!/bin/sh
# The dashboard in Debian's chromium, driven headless by playwright-core
# (npm). Screenshots at 1280 and 390 px wide are kept in BUILD/artifacts/dashboard.
set -eu
build=$1
src=$2
cd "$src/tests/browser"
[ -d node_modules/playwright-core ] || npm install --no-audit --no-fund --silent >/dev/null
command -v chromium >/dev/null || { echo "FAIL: chromium is not installed (scripts/deps.sh installs it)"; exit 1; }
exec node dashboard.mjs "$build" "$build/artifacts/dashboard"
