#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# SECONDS (default 30): the pipeline loader on the invalid-pipeline corpus and
# the example configs, the canonical JSON writer on the signature vectors, the
# bulk-import CSV reader, what receivers answer (Retry-After, verify), and the
# admin API's router and JSON handlers.
set -eu
cd "$(dirname "$0")/.."
secs="${1:-30}"
sh scripts/deps.sh
command -v clang >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMETRONOME_FUZZ=ON \
    -DMETRONOME_SANITIZE=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_pipeline fuzz_json fuzz_csv fuzz_response fuzz_api \
    >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pipeline" "$work/json" "$work/csv" "$work/response" "$work/api"
cp tests/corpus/*.yaml configs/*.yaml "$work/pipeline/"
cp tests/fuzz/seeds/* "$work/json/"
cp tests/fuzz/seeds-csv/* "$work/csv/"
cp tests/fuzz/seeds-response/* "$work/response/"
cp tests/fuzz/seeds-api/* "$work/api/"
failed=0
for t in pipeline json csv response api; do
    if ASAN_OPTIONS=detect_leaks=1 ./build-fuzz/tests/fuzz_$t -max_total_time="$secs" \
        -max_len=4096 -artifact_prefix="$work/" "$work/$t" >"$work/$t.log" 2>&1; then
        echo "fuzz_$t: $(grep -o 'DONE.*' "$work/$t.log" | tail -1)"
    else
        echo "fuzz_$t FAILED:"
        tail -30 "$work/$t.log"
        failed=$((failed + 1))
    fi
done
echo "$((5 - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
