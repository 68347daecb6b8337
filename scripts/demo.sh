#!/bin/sh
# The main job: builds metronome and runs the end-to-end demo on the embedded
# default (configs/demo.yaml: a SQLite ledger, simulated vehicles). A bundled
# receiver checks every signature; two webhooks are verified; ten simulated
# vehicles are subscribed; a virtual day is delivered in seconds; the ledger
# and the receiver summarise what happened.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

export METRONOME_BUILD_DIR=build
export METRONOME_MANAGEMENT_TOKEN="${METRONOME_MANAGEMENT_TOKEN:-demo-management-token}"
port="${DEMO_PORT:-8845}"
export DEMO_CALLBACK_URI="http://127.0.0.1:$port/hooks/smartcar"
day="${DEMO_DAY:-2030-03-01}"
rm -rf var/demo
mkdir -p var/demo

# a receiver that answers 503 to every 40th payload, so retries show
./build/metronome-receiver --port "$port" --log var/demo/received.jsonl --flaky 40 \
    >var/demo/receiver.out 2>&1 &
receiver=$!
trap 'kill "$receiver" 2>/dev/null || true' EXIT
sleep 0.3

m="./build/metronome --config configs/demo.yaml"
step() { printf '\n== %s\n' "$*"; }

step "metronome validate"
$m validate
step "metronome plan --now ${day}T00:00:00Z --count 5"
$m plan --now "${day}T00:00:00Z" --count 5
step "metronome webhook verify (the receiver answers the challenge)"
$m webhook verify fleet-hourly --now "${day}T00:00:00Z"
$m webhook verify fleet-daily --now "${day}T00:00:00Z"
step "metronome webhook test fleet-hourly"
$m webhook test fleet-hourly --now "${day}T00:00:00Z"
step "metronome subscribe (ten simulated vehicles, bulk)"
for i in 01 02 03 04 05 06 07 08 09 10; do echo "demo-vehicle-$i"; done >var/demo/vehicles.csv
$m subscribe fleet-hourly --file var/demo/vehicles.csv --now "${day}T00:00:00Z"
$m subscribe fleet-daily --file var/demo/vehicles.csv --now "${day}T00:00:00Z"
step "metronome run --clock virtual (one day)"
$m run --clock virtual --start "${day}T00:00:00Z" --until "${day}T23:59:59Z"
step "metronome webhook list"
$m webhook list
step "metronome deliveries --state failed (nothing should be lost)"
$m deliveries --state failed

kill "$receiver"
wait "$receiver" || true
trap - EXIT
step "receiver"
cat var/demo/receiver.out
cat <<EOT

Where to look:
  var/demo/deliveries.jsonl   every payload with its headers (the file sink)
  var/demo/received.jsonl     what the receiver got, with its signature check
  var/demo/metronome.db       the ledger: ./build/metronome deliveries --config configs/demo.yaml
EOT
