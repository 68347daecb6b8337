#!/bin/sh
# The postgres store against a throwaway PostgreSQL cluster (tests/pg/cluster.sh,
# started here and stopped at the end): the store conformance suite; a virtual
# day with two nodes on one database; PostgreSQL restarted under a running
# daemon; three nodes, one killed -9 mid-tick; and the end-to-end suites of
# delivery, the admin API, live mode, the command line and the corpus with
# `store: {plugin: postgres}`.
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
recv=
trap 'kill $recv 2>/dev/null || true; sh "$src/tests/pg/cluster.sh" stop "$tmp/pg"; rm -rf "$tmp"' EXIT
sh "$src/tests/pg/cluster.sh" start "$tmp/pg"
dsn=$(cat "$tmp/pg/dsn")

METRONOME_STORE_PLUGIN=postgres METRONOME_STORE_OPTIONS="{dsn: \"$dsn\", schema: \"%ID%\"}" \
    "$build/tests/store_conformance" --jobs 2

# two nodes, one ledger: a virtual day of an hourly webhook for 20 vehicles,
# posted to the demo's receiver
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$build/metronome-receiver" --port "$port" --token pg-amt >"$tmp/receiver.log" 2>&1 &
recv=$!
for _ in $(seq 1 100); do grep -q listening "$tmp/receiver.log" && break; sleep 0.1; done
cat >"$tmp/pipeline.yaml" <<YAML
version: 1
application: { management_token: pg-amt }
plugin_path: ["$build/plugins"]
store: { plugin: postgres, dsn: "$dsn", schema: e2e }
sources: [{ name: sim, plugin: simulated }]
sinks:
  - { name: callback, plugin: http, allow_private_networks: true }
  - { name: archive, plugin: file, path: "$tmp/deliveries.jsonl" }
webhooks:
  - { name: fleet, callback_uri: "http://127.0.0.1:$port/hook", cadence: { policy: hourly },
      endpoints: [/odometer], sinks: [callback, archive] }
YAML
m="$build/metronome"
cfg="--config $tmp/pipeline.yaml"
$m webhook verify fleet $cfg --now 2030-03-01T00:00:00Z >/dev/null
for i in $(seq -w 1 20); do echo "car-$i"; done >"$tmp/cars.csv"
$m subscribe fleet --file "$tmp/cars.csv" $cfg --now 2030-03-01T00:00:00Z >/dev/null
$m run --clock virtual --start 2030-03-01T00:00:00Z --until 2030-03-02T00:10:00Z $cfg \
    >"$tmp/a.log" 2>&1 &
a=$!
$m run --clock virtual --start 2030-03-01T00:00:00Z --until 2030-03-02T00:10:00Z $cfg \
    >"$tmp/b.log" 2>&1 &
b=$!
wait $a || { echo "FAIL: node a"; cat "$tmp/a.log"; exit 1; }
wait $b || { echo "FAIL: node b"; cat "$tmp/b.log"; exit 1; }
$m deliveries --json --limit 100000 $cfg >"$tmp/deliveries.json"
python3 - "$tmp/deliveries.json" "$tmp/deliveries.jsonl" <<'PY'
import json, sys
d = [x for x in json.load(open(sys.argv[1])) if x["kind"] == "scheduled"]
lines = [json.loads(l) for l in open(sys.argv[2])]
ids = [x["id"] for x in d]
file_ids = {x["id"] for x in d if x["sink"] == "archive"}
written = [l["deliveryId"] for l in lines]
again = len(written) - len(set(written))
fail = []
if len(ids) != len(set(ids)): fail.append("a delivery id twice in the ledger")
if len(d) != 2 * 24 * 20: fail.append("%d deliveries, want 960 (24 ticks x 20 vehicles x 2 sinks)" % len(d))
if any(x["state"] != "delivered" for x in d): fail.append("not all delivered")
if set(written) != file_ids: fail.append("the file sink's lines are not the ledger's deliveries")
# each node runs a virtual clock of its own, so one can find the other's lease
# expired and send the delivery too: a same-id redelivery, counted here
print("two nodes on one database: %d deliveries, each once in the ledger, all delivered; "
      "the file sink got %d, of which %d same-id redeliveries" % (len(d), len(lines), again))
if fail:
    print("FAIL: " + "; ".join(fail)); sys.exit(1)
PY

# PostgreSQL restarted under a running daemon (wall clock, a tick a second):
# it rides the restart out - ticks wait, outcomes stay in memory - and every
# second from the first delivery to the last has its delivery
cat >"$tmp/restart.yaml" <<YAML
version: 1
application: { management_token: pg-amt }
plugin_path: ["$build/plugins"]
store: { plugin: postgres, dsn: "$dsn", schema: restart }
sources: [{ name: sim, plugin: simulated }]
sinks: [{ name: callback, plugin: http, allow_private_networks: true }]
webhooks:
  - { name: every-second, callback_uri: "http://127.0.0.1:$port/hook",
      cadence: { policy: interval, every: 1s }, endpoints: [/odometer], sinks: [callback] }
delivery: { spread: [0s, 0s] }
YAML
rcfg="--config $tmp/restart.yaml"
$m webhook verify every-second $rcfg >/dev/null
$m subscribe every-second car-1 $rcfg >/dev/null
$m run $rcfg >"$tmp/restart.log" 2>&1 &
daemon=$!
delivered() { $m deliveries --state delivered --json --limit 100000 $rcfg | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
for _ in $(seq 1 100); do [ "$(delivered)" -ge 3 ] && break; sleep 0.2; done
before=$(delivered)
sh "$src/tests/pg/cluster.sh" restart "$tmp/pg"
after=$before
for _ in $(seq 1 100); do after=$(delivered); [ "$after" -ge $((before + 4)) ] && break; sleep 0.2; done
kill -0 $daemon 2>/dev/null || { echo "FAIL: the daemon died with the database"; cat "$tmp/restart.log"; exit 1; }
kill -TERM $daemon
wait $daemon || { echo "FAIL: the daemon did not stop cleanly"; tail "$tmp/restart.log"; exit 1; }
[ "$after" -ge $((before + 4)) ] || { echo "FAIL: no deliveries after the restart ($before, then $after)"; tail -20 "$tmp/restart.log"; exit 1; }
$m deliveries --json --limit 100000 $rcfg | python3 -c '
import json, sys
d = [x for x in json.load(sys.stdin) if x["kind"] == "scheduled"]
ticks = sorted({x["tick"] for x in d})
import datetime
t = [datetime.datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp() for x in ticks]
gaps = [(a, b) for a, b in zip(t, t[1:]) if b - a != 1]
print("restart: %d ticks delivered or pending, first %s, last %s, gaps %d" % (len(t), ticks[0], ticks[-1], len(gaps)))
sys.exit(1 if gaps or len(d) != len(ticks) else 0)'
grep -q "trying again, nothing is lost" "$tmp/restart.log" && echo "the daemon saw the database go and waited for it"

# three nodes, a tick of 10,000 vehicles, one node killed (-9) mid-tick: the
# others take its leased work over when its leases end (their virtual clocks
# jump there), every (webhook, vehicle, tick) is delivered, none is written
# twice, and what reached the sinks twice is a same-id redelivery (counted)
cat >"$tmp/cluster.yaml" <<YAML
version: 1
application: { management_token: pg-amt }
plugin_path: ["$build/plugins"]
store: { plugin: postgres, dsn: "$dsn", schema: cluster }
sources: [{ name: sim, plugin: simulated }]
sinks: [{ name: archive, plugin: file, path: "$tmp/node-\${NODE}.jsonl" }]
webhooks:
  - { name: fleet, callback_uri: "http://127.0.0.1:$port/hook", cadence: { policy: hourly },
      endpoints: [/odometer], sinks: [archive] }
delivery: { spread: [0s, 0s] }
YAML
ccfg="--config $tmp/cluster.yaml"
python3 -c 'import sys; [print("car-%05d" % i) for i in range(10000)]' >"$tmp/fleet.csv"
NODE=setup $m subscribe fleet --file "$tmp/fleet.csv" $ccfg --now 2030-03-01T00:30:00Z >/dev/null
# verified at 00:30 (the archive is not a callback: the row is set as verify would)
psql "$dsn" -Atqc "UPDATE cluster.webhooks SET state = 1, active_from = extract(epoch FROM timestamptz '2030-03-01T00:30:00Z')::bigint" >/dev/null
start=2030-03-01T00:59:00Z
until=2030-03-01T01:30:00Z
for n in 1 2 3; do
    NODE=$n $m run --clock virtual --start $start --until $until $ccfg >"$tmp/node-$n.log" 2>&1 &
    eval "node$n=\$!"
done
for _ in $(seq 1 300); do
    c=$(psql "$dsn" -Atqc "SELECT count(*) FROM cluster.deliveries")
    [ "$c" -ge 1500 ] && break
    sleep 0.05
done
kill -9 $node3 2>/dev/null || echo "node 3 had finished before it could be killed"
wait $node1 || { echo "FAIL: node 1"; tail "$tmp/node-1.log"; exit 1; }
wait $node2 || { echo "FAIL: node 2"; tail "$tmp/node-2.log"; exit 1; }
wait $node3 2>/dev/null || true
echo "killed node 3 when $c deliveries were recorded"
psql "$dsn" -Atqc "SELECT count(*), count(DISTINCT (webhook_id, vehicle_id, tick)) FROM cluster.jobs; SELECT state, count(*) FROM cluster.deliveries GROUP BY state" >"$tmp/counts.txt"
cat "$tmp"/node-*.jsonl >"$tmp/all.jsonl"
python3 - "$tmp/counts.txt" "$tmp/all.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().split()
jobs, distinct = map(int, lines[0].split("|"))
states = dict(tuple(map(int, l.split("|"))) for l in lines[1:])
ids = [json.loads(l)["deliveryId"] for l in open(sys.argv[2])]
again = len(ids) - len(set(ids))
print("cluster: %d jobs (%d distinct), deliveries by state %s, %d lines at the sinks, %d distinct ids, %d same-id redeliveries"
      % (jobs, distinct, states, len(ids), len(set(ids)), again))
fail = []
if jobs != 10000 or distinct != 10000: fail.append("a job written twice, or one missing")
if states.get(1, 0) != 10000 or len(states) != 1: fail.append("not every delivery delivered")
if len(set(ids)) != 10000: fail.append("not every delivery reached a sink")
if fail:
    print("FAIL: " + "; ".join(fail)); sys.exit(1)
PY

# the end-to-end suites on this database: delivery, the admin API, live mode
# (the shared rate limit among them), the command line and the corpus (the
# others check SQLite's files: their permissions, corruption, read-only opens)
for suite in test_delivery test_api test_live test_cli test_corpus; do
    METRONOME_TEST_PG_DSN="$dsn" "$build/tests/$suite" --jobs 2
done

# the connection pool: a node with max_connections: 2 serves 160 API requests, 8 at a
# time, while it sends a tick, and never holds more than 2 connections (without the
# pool it would hold 5: the engine's and the admin API's 4)
aport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s/schema: e2e }/schema: pool, max_connections: 2 }/" "$tmp/pipeline.yaml" >"$tmp/pool.yaml"
echo "admin: { listen: \"127.0.0.1:$aport\", token: pg-admin-token }" >>"$tmp/pool.yaml"
pcfg="--config $tmp/pool.yaml"
$m webhook verify fleet $pcfg --now 2030-03-01T00:00:00Z >/dev/null
seq -f "pool-%05.0f" 1 2000 >"$tmp/pool.csv"
$m subscribe fleet --file "$tmp/pool.csv" $pcfg --now 2030-03-01T00:00:00Z >/dev/null
$m run --clock virtual --start 2030-03-01T00:59:50Z --until 2030-03-01T03:00:00Z $pcfg \
    >"$tmp/pool.log" 2>&1 &
node=$!
for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$aport/readyz" >/dev/null 2>&1 && break
    sleep 0.05
done
( # the node's connections, sampled until it stops
    while kill -0 $node 2>/dev/null; do
        psql "$dsn" -Atqc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'metronome'"
        sleep 0.02
    done
) >"$tmp/pool.samples" 2>/dev/null &
sampler=$!
seq 1 160 | xargs -P 8 -I{} curl -s -o /dev/null -w "%{http_code}\n" \
    -H "Authorization: Bearer pg-admin-token" "http://127.0.0.1:$aport/api/v1/webhooks" >"$tmp/pool.codes"
wait $node || { echo "FAIL: the pooled node"; cat "$tmp/pool.log"; exit 1; }
wait $sampler || true
python3 - "$tmp/pool.samples" "$tmp/pool.codes" <<'PY'
import sys
samples = [int(x) for x in open(sys.argv[1]).read().split()]
codes = open(sys.argv[2]).read().split()
print("pool: %d samples, at most %d connections; %d API answers, %d of them 200"
      % (len(samples), max(samples or [0]), len(codes), codes.count("200")))
if not samples or max(samples) > 2 or max(samples) < 1: sys.exit("FAIL: connections outside 1..2")
if len(codes) != 160 or codes.count("200") != 160: sys.exit("FAIL: an API request was not served")
PY
echo "7 passed, 0 failed"
