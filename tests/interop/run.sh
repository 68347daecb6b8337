#!/bin/sh
# Interop with Smartcar's official Node SDK (npm install smartcar):
#  1. the reference's signature vectors behave as the SDK says;
#  2. random doubles round-trip through metronome's JSON writer byte for byte;
#  3. a Node receiver verifies the callback (hashChallenge) and every payload
#     metronome sends (verifyPayload) - floats, imperial units, non-ASCII text
#     and error elements included;
#  4. the SDK as the client of a running metronome's Smartcar-compatible
#     endpoints (SMARTCAR_API_ORIGIN): subscribe, payloads on the next tick,
#     unsubscribe, nothing after, errors as SmartcarError.
set -eu
build=$1
src=$2
here="$src/tests/interop"
cd "$here"
[ -d node_modules/smartcar ] || npm install --no-audit --no-fund --silent >/dev/null
tmp=$(mktemp -d)
trap 'kill "$node_pid" "$daemon_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
node_pid=
daemon_pid=

node vectors.mjs "$src/tests/vectors/signature-vectors.json"

node numbers.mjs >"$tmp/numbers.txt"
"$build/tests/jsonw_roundtrip" <"$tmp/numbers.txt" >"$tmp/canonical.txt"
if ! cmp -s "$tmp/numbers.txt" "$tmp/canonical.txt"; then
    echo "FAIL: numbers differ from JSON.stringify:"
    diff "$tmp/numbers.txt" "$tmp/canonical.txt" | head -5
    exit 1
fi
echo "numbers: $(wc -l <"$tmp/numbers.txt") lines written exactly as JSON.stringify does"

amt="interop-amt-ë-$(date +%s)"
node receiver.mjs "$amt" "$tmp/port" "$tmp/stats.json" &
node_pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")

cat >"$tmp/pipeline.yaml" <<YAML
version: 1
application: { management_token: "$amt" }
plugin_path: ["$build/plugins"]
store: { plugin: sqlite, path: "$tmp/ledger.db" }
sources: [{ name: sim, plugin: simulated, seed: 99, asleep_vehicles: [car-03, car-07] }]
sinks: [{ name: cb, plugin: http, allow_private_networks: true }]
webhooks:
  - name: metric
    callback_uri: http://127.0.0.1:$port/hook
    cadence: { policy: hourly }
    endpoints: [/, /vin, /odometer, /location, /fuel, /battery, /battery/capacity, /battery/nominal_capacity, /charge, /charge/limit, /tires/pressure, /engine/oil, /security, /diagnostics/dtcs, /diagnostics/system_status, /service/history]
    sinks: [cb]
  - name: imperial
    callback_uri: http://127.0.0.1:$port/hook
    cadence: { policy: interval, every: 30m }
    endpoints: [/, /odometer, /fuel, /battery, /tires/pressure]
    units: imperial
    vehicles_per_payload: 5
    sinks: [cb]
YAML
m="$build/metronome"
cfg="--config $tmp/pipeline.yaml"
$m webhook verify metric $cfg --now 2030-03-01T09:00:00Z >/dev/null
$m webhook verify imperial $cfg --now 2030-03-01T09:00:00Z >/dev/null
for i in $(seq -w 1 12); do printf 'car-%s\n' "$i"; done >"$tmp/cars.csv"
$m subscribe metric --file "$tmp/cars.csv" $cfg --now 2030-03-01T09:00:00Z >/dev/null
$m subscribe imperial --file "$tmp/cars.csv" $cfg --now 2030-03-01T09:00:00Z >/dev/null
$m webhook test metric $cfg >/dev/null
$m run --clock virtual --start 2030-03-01T09:00:00Z --until 2030-03-01T12:30:00Z $cfg >/dev/null 2>&1
kill "$node_pid"
wait "$node_pid" || true
node_pid=
node -e '
const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const fail = (m) => { console.log("FAIL: " + m + " " + JSON.stringify(s)); process.exit(1); };
if (s.verify !== 2) fail("both callbacks verified by hashChallenge");
if (s.payloads < 40) fail("too few payloads");
if (s.verified !== s.payloads) fail("payloads the SDK rejected: " + s.rejected.join(","));
if (!s.modes.simulated || s.modes.test !== 1) fail("modes");
if (!s.units.imperial || !s.units.metric) fail("both unit systems");
if (!s.nonAscii) fail("no non-ASCII text was sent");
if (!s.errors) fail("no error element was sent");
if (!s.floats) fail("no float was sent");
console.log(`sdk: ${s.verified} payloads verified by smartcar.verifyPayload, 0 rejected; 2 challenges answered by hashChallenge`);
' "$tmp/stats.json"

# 4. the SDK as a client of the admin API's /v2.0 routes, on the wall clock. The
# SDK sends the management token in a header, which Node writes as Latin-1: a
# real token is ASCII, so this one is too.
amt="interop-amt-$(date +%s)"
node subscribe.mjs "$amt" "$tmp/sdk-port" "$tmp/go" &
node_pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/sdk-port" ] && break; sleep 0.1; done
cat >"$tmp/live.yaml" <<YAML
version: 1
application: { management_token: "$amt" }
plugin_path: ["$build/plugins"]
store: { plugin: sqlite, path: "$tmp/live.db" }
sources: [{ name: sim, plugin: simulated }]
sinks: [{ name: cb, plugin: http, allow_private_networks: true }]
webhooks:
  - name: every-second
    callback_uri: http://127.0.0.1:$(cat "$tmp/sdk-port")/hook
    cadence: { policy: interval, every: 1s }
    endpoints: [/odometer, /battery]
    sinks: [cb]
delivery: { spread: [0s, 0s] }
admin: { listen: "127.0.0.1:0", token: interop-admin }
YAML
live="--config $tmp/live.yaml"
$m webhook verify every-second $live >/dev/null
webhook_id=$($m webhook show every-second $live |
    node -e 'process.stdin.on("data", (d) => console.log(JSON.parse(d).id))')
$m run $live >"$tmp/run.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 200); do grep -q 'API listening on' "$tmp/run.log" && break; sleep 0.1; done
origin=$(sed -n 's/.*API listening on \(http[^ ]*\).*/\1/p' "$tmp/run.log")
[ -n "$origin" ] || { echo "FAIL: metronome run did not start its API"; cat "$tmp/run.log"; exit 1; }
printf '%s %s\n' "$origin" "$webhook_id" >"$tmp/go"
status=0
wait "$node_pid" || status=$?
node_pid=
kill -TERM "$daemon_pid"
wait "$daemon_pid" || { echo "FAIL: metronome run did not stop cleanly"; tail "$tmp/run.log"; exit 1; }
daemon_pid=
[ "$status" -eq 0 ] || { tail -20 "$tmp/run.log"; exit 1; }
echo "4 passed, 0 failed"
