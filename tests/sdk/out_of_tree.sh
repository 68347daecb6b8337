#!/bin/sh
# Installs metronome into a temporary prefix and, from copies outside the
# source tree and with only pkg-config: builds the three SDK examples (a
# cadence, a source, a sink), builds one with the README's own compile line,
# and runs them: the installed daemon finds its own plugins by where it is
# installed (no METRONOME_PLUGIN_PATH), plans with the cadence, and delivers a
# virtual hour from the `fixed` source to the installed receiver and the
# `lines` sink.
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
receiver_pid=
cleanup() {
    [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
[ -x "$tmp/prefix/bin/metronome-receiver" ] || fail "metronome-receiver is not installed"
export PKG_CONFIG_PATH="$tmp/prefix/share/pkgconfig"
cflags=$(pkg-config --cflags metronome-plugin)
case "$cflags" in *"$src"*) fail "SDK cflags point into the source tree: $cflags" ;; esac
mkdir "$tmp/plugins"
for ex in cadence_weekdays source_fixed sink_lines; do
    cp -r "$src/sdk/examples/$ex" "$tmp/$ex"
    make -s -C "$tmp/$ex" CFLAGS="-O2 -Wall -Wextra -Werror" >/dev/null || fail "$ex does not build"
    cp "$tmp/$ex/$ex.so" "$tmp/plugins/"
done

# the compile line the README gives, as written there
line=$(grep -o '^cc -std=c11 -shared .*metronome-plugin)$' "$src/README.md" | head -1)
[ -n "$line" ] || fail "README has no plugin compile line"
(cd "$tmp/sink_lines" && rm -f sink_lines.so && eval "$(echo "$line" | sed 's/cadence_weekdays.so/sink_lines.so/; s/weekdays.c/lines.c/')") ||
    fail "the README's compile line does not build the sink example: $line"
[ -f "$tmp/sink_lines/sink_lines.so" ] || fail "the README's compile line built nothing"

"$tmp/prefix/bin/metronome-receiver" --port 0 --token example-token >"$tmp/receiver.out" 2>&1 &
receiver_pid=$!
port=
for _ in $(seq 1 200); do # polled for readiness, at most 10 s
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/receiver.out")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || fail "the receiver did not start"

cat >"$tmp/pipeline.yaml" <<YAML
version: 1
application: { management_token: example-token }
plugin_path: [$tmp/plugins]
store: { plugin: sqlite, path: $tmp/db }
sources: [{ name: fixed, plugin: fixed, distance: 777 }]
sinks:
  - { name: callback, plugin: http, allow_private_networks: true }
  - { name: lines, plugin: lines, path: $tmp/lines.txt }
webhooks:
  - name: office
    callback_uri: https://example.com/hook
    cadence: { policy: weekdays, at: "18:00" }
    endpoints: [/odometer]
    sinks: [lines]
  - name: hourly
    callback_uri: http://127.0.0.1:$port/hook
    cadence: { policy: hourly }
    endpoints: [/odometer, /battery]
    sinks: [callback, lines]
YAML

unset METRONOME_PLUGIN_PATH
m="$tmp/prefix/bin/metronome"
got=$("$m" plan --config "$tmp/pipeline.yaml" --from 2030-03-01T12:00:00Z --count 3 --webhook office)
want="office 2030-03-01T18:00:00Z
office 2030-03-04T18:00:00Z
office 2030-03-05T18:00:00Z"
[ "$got" = "$want" ] || fail "plan with the out-of-tree cadence printed:
$got"
"$m" plugins --config "$tmp/pipeline.yaml" | grep -q "cadence  weekdays   1.0.0    $tmp/plugins/cadence_weekdays.so" ||
    fail "metronome plugins does not list the out-of-tree plugin"
"$m" plugins --config "$tmp/pipeline.yaml" | grep -q "sink     http .*$tmp/prefix/lib.*/metronome/plugins/sink_http.so" ||
    fail "the installed daemon does not find its own plugins under its prefix"

"$m" webhook verify hourly --config "$tmp/pipeline.yaml" >/dev/null
"$m" subscribe hourly car-1 --config "$tmp/pipeline.yaml" --now 2030-03-01T15:45:00Z >/dev/null
"$m" run --config "$tmp/pipeline.yaml" --clock virtual --start 2030-03-01T15:45:00Z \
    --until 2030-03-01T16:30:00Z >"$tmp/run.out" 2>&1 || fail "run: $(cat "$tmp/run.out")"
grep -q "deliveries 2: delivered 2, failed 0" "$tmp/run.out" || fail "run: $(cat "$tmp/run.out")"
[ "$(wc -l <"$tmp/lines.txt")" -eq 1 ] || fail "the lines sink wrote: $(cat "$tmp/lines.txt")"
"$m" deliveries --json --config "$tmp/pipeline.yaml" >"$tmp/d.json"
python3 - "$tmp/d.json" "$tmp/lines.txt" <<'PY' || fail "the deliveries do not match the lines sink's record"
import json, sys
d = json.load(open(sys.argv[1]))
line = open(sys.argv[2]).read().split()
lines = [x for x in d if x["sink"] == "lines"]
assert len(lines) == 1 and lines[0]["id"] == line[0] and lines[0]["state"] == "delivered", (d, line)
assert len(line[3]) == 64, line
PY
kill "$receiver_pid"
wait "$receiver_pid" 2>/dev/null || true
receiver_pid=
grep -q "1 payloads (1 with a valid SC-Signature" "$tmp/receiver.out" || fail "receiver: $(cat "$tmp/receiver.out")"
echo "1 passed, 0 failed"
