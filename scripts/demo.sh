#!/bin/sh
# The main job: builds metronome and runs the demo pipeline (configs/demo.yaml:
# the SQLite ledger and simulated vehicles). Until the delivery engine lands it
# validates the pipeline, lists the plugins and plans the next day of ticks.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
export METRONOME_BUILD_DIR=build
echo "== metronome validate --config configs/demo.yaml"
./build/metronome validate --config configs/demo.yaml
echo "== metronome plan --config configs/demo.yaml --now 2030-03-01T15:45:00Z --count 12"
./build/metronome plan --config configs/demo.yaml --now 2030-03-01T15:45:00Z --count 12
