#!/bin/sh
# Installs metronome into a temporary prefix, builds the SDK example plugin
# from a copy outside the source tree using only pkg-config, and checks that
# the installed daemon loads it and plans with it.
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
cp -r "$src/sdk/examples/cadence_weekdays" "$tmp/example"
export PKG_CONFIG_PATH="$tmp/prefix/share/pkgconfig"
cflags=$(pkg-config --cflags metronome-plugin)
case "$cflags" in *"$src"*) echo "FAIL: SDK cflags point into the source tree: $cflags"; exit 1 ;; esac
make -s -C "$tmp/example" CFLAGS="-O2 -Wall -Wextra -Werror" >/dev/null
mkdir "$tmp/plugins"
cp "$tmp/example/cadence_weekdays.so" "$tmp/plugins/"

cat >"$tmp/pipeline.yaml" <<YAML
version: 1
application: { management_token: example-token }
plugin_path: [$tmp/plugins]
store: { plugin: sqlite, path: $tmp/db }
sources: [{ name: sim, plugin: simulated }]
sinks: [{ name: out, plugin: file, path: $tmp/out.jsonl }]
webhooks:
  - name: office
    callback_uri: https://example.com/hook
    cadence: { policy: weekdays, at: "18:00" }
    endpoints: [/odometer]
    sinks: [out]
YAML

export METRONOME_PLUGIN_PATH="$(pkg-config --variable=plugindir metronome-plugin)"
got=$("$tmp/prefix/bin/metronome" plan --config "$tmp/pipeline.yaml" --from 2030-03-01T12:00:00Z --count 3)
want="office 2030-03-01T18:00:00Z
office 2030-03-04T18:00:00Z
office 2030-03-05T18:00:00Z"
if [ "$got" != "$want" ]; then
    printf 'FAIL: plan with the out-of-tree plugin printed:\n%s\nwant:\n%s\n' "$got" "$want"
    exit 1
fi
"$tmp/prefix/bin/metronome" plugins --config "$tmp/pipeline.yaml" | grep -q "cadence  weekdays   1.0.0    $tmp/plugins/cadence_weekdays.so" || {
    echo "FAIL: metronome plugins does not list the out-of-tree plugin"; exit 1; }
echo "1 passed, 0 failed"
