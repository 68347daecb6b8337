#!/bin/sh
# Builds metronome and runs every test. With --sanitize, builds into
# build-asan with AddressSanitizer and UndefinedBehaviorSanitizer instead.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh --tests
dir=build
flags=""
if [ "${1:-}" = "--sanitize" ]; then
    dir=build-asan
    flags="-DMETRONOME_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
fi
# shellcheck disable=SC2086
cmake -S . -B "$dir" -DMETRONOME_TESTS=ON $flags >/dev/null
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j2
