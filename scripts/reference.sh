#!/bin/sh
# Regenerates the configuration reference in README.md from the declared
# options of the core sections and the built plugins (`metronome plugins
# --markdown`). With --check, fails instead when the README is out of date.
set -eu
cd "$(dirname "$0")/.."
build=${METRONOME_BUILD_DIR:-build}
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.new"' EXIT
METRONOME_PLUGIN_PATH="$build/plugins" METRONOME_CONFIG= "$build/metronome" plugins --markdown >"$tmp"
awk -v ref="$tmp" '
    /<!-- reference:begin -->/ { print; while ((getline line < ref) > 0) print line; skip = 1; next }
    /<!-- reference:end -->/ { skip = 0 }
    !skip { print }
' README.md >"$tmp.new"
if [ "${1:-}" = "--check" ]; then
    if ! cmp -s README.md "$tmp.new"; then
        diff -u README.md "$tmp.new" | head -40
        echo "README.md's configuration reference is out of date: run scripts/reference.sh"
        exit 1
    fi
    echo "1 passed, 0 failed"
else
    cp "$tmp.new" README.md
fi
