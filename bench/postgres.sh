#!/bin/sh
# The postgres store's figures beside SQLite's, in one run on this machine:
# `sh bench/postgres.sh [VEHICLES]` (default 20000; NODES="1" runs only one
# node on postgres). A throwaway PostgreSQL cluster (tests/pg/cluster.sh)
# and the demo's receiver on loopback; one tick of VEHICLES simulated vehicles, one per payload, spread off, on
#   - SQLite (the baseline of this run),
#   - postgres with 1, 2 and 3 nodes sharing the ledger (virtual clocks),
# each from a freshly subscribed ledger. Prints deliveries/s and the ratio to
# SQLite's, CPU seconds per 1000 deliveries over all nodes, and the database's
# cost per delivery (transactions, rows written, WAL bytes); appends the lines
# to bench/results.txt.
set -eu
cd "$(dirname "$0")/.."
N=${1:-20000}
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || sh scripts/deps.sh --tests
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMETRONOME_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
B=build-bench
work=$(mktemp -d)
recv=
trap 'kill $recv 2>/dev/null || true; sh tests/pg/cluster.sh stop "$work/pg"; rm -rf "$work"' EXIT
sh tests/pg/cluster.sh start "$work/pg"
dsn=$(cat "$work/pg/dsn")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$B/metronome-receiver" --port "$port" --token bench-token >/dev/null 2>&1 &
recv=$!
sleep 0.3
seq -f "veh-%07.0f" 1 "$N" >"$work/vehicles.csv"

pipeline() { # $1 = name, $2 = store block
    cat >"$work/$1.yaml" <<EOF
version: 1
application: { management_token: bench-token }
plugin_path: ["$B/plugins"]
store: $2
sources: [{ name: sim, plugin: simulated }]
sinks: [{ name: callback, plugin: http, allow_private_networks: true, concurrency: 64 }]
webhooks:
  - { name: fleet, callback_uri: "http://127.0.0.1:$port/hook", cadence: { policy: hourly },
      endpoints: [/odometer, /battery, /location], sinks: [callback] }
delivery: { spread: [0s, 0s] }
EOF
}

psql_q() { psql "$dsn" -Atqc "$1"; }

# one tick with `nodes` daemons on ledger `name`: "wall cpu delivered"
run_tick() { # $1 = name, $2 = nodes
    cfg="--config $work/$1.yaml"
    "$B/metronome" webhook verify fleet $cfg --now 2030-03-01T15:00:00Z >/dev/null
    "$B/metronome" subscribe fleet --file "$work/vehicles.csv" $cfg --now 2030-03-01T15:00:00Z \
        >/dev/null
    [ "$1" = sqlite ] || stats | tr '\n' '|' >"$work/$1.before"
    t0=$(date +%s.%N)
    pids=""
    for n in $(seq 1 "$2"); do
        /usr/bin/time -f "%U %S" -o "$work/$1.time.$n" "$B/metronome" run --clock virtual \
            --start 2030-03-01T15:59:59Z --until 2030-03-01T16:59:59Z $cfg >/dev/null 2>&1 &
        pids="$pids $!"
    done
    for p in $pids; do wait "$p"; done
    t1=$(date +%s.%N)
    [ "$1" = sqlite ] || stats | tr '\n' '|' >"$work/$1.after"
    cpu=$(cat "$work/$1".time.* | awk '{ s += $1 + $2 } END { print s }')
    delivered=$("$B/metronome" deliveries --state delivered --json --limit 10000000 $cfg |
        python3 -c 'import json, sys; print(sum(1 for d in json.load(sys.stdin) if d["kind"] == "scheduled"))')
    echo "$(python3 -c "print($t1 - $t0)") $cpu $delivered"
}

stats() { # the database's counters: commits, rows written, WAL position; the server's CPU seconds
    psql_q "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = 'postgres'; SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
    pm=$(head -1 "$work/pg/data/postmaster.pid")
    # the postmaster and its children, live (utime + stime) and ended (cutime + cstime)
    for p in $pm $(ps --ppid "$pm" -o pid=); do cat "/proc/$p/stat" 2>/dev/null || true; done |
        sed 's/.*) //' | awk '{ s += $12 + $13 + $14 + $15 } END { print s / 100 }'
}

report() { # $1 = label, $2 = "wall cpu delivered", $3 = baseline deliveries/s, $4 = db cost or ""
    set -- "$1" $2 "$3" "$4"
    python3 - "$@" <<'PY'
import sys
label, wall, cpu, delivered, base, db = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
rate = delivered / wall
ratio = " = %.2f of SQLite's" % (rate / float(base)) if base else ""
print("%s: %d delivered in %.2f s, %.0f deliveries/s%s; CPU %.3f s per 1000 deliveries%s"
      % (label, delivered, wall, rate, ratio, cpu / delivered * 1000, db))
PY
}

rate_of() { echo "$1" | awk '{ printf "%f", $3 / $1 }'; }

{
    echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores: postgres beside sqlite, $N vehicles, one per payload"
    pipeline sqlite "{ plugin: sqlite, path: \"$work/ledger.db\" }"
    base_run=$(run_tick sqlite 1)
    base=$(rate_of "$base_run")
    report "sqlite, 1 node" "$base_run" "" ""
    for nodes in ${NODES:-1 2 3}; do
        pipeline "pg$nodes" "{ plugin: postgres, dsn: \"$dsn\", schema: bench$nodes }"
        r=$(run_tick "pg$nodes" "$nodes")
        before=$(cat "$work/pg$nodes.before")
        after=$(cat "$work/pg$nodes.after")
        db=$(python3 - "$before" "$after" "$(echo "$r" | awk '{ print $3 }')" <<'PY'
import sys
b = [float(x) for x in sys.argv[1].replace("|", " ").split()]
a = [float(x) for x in sys.argv[2].replace("|", " ").split()]
n = max(1, int(sys.argv[3]))
print("; the database: %.1f transactions per 1000 deliveries, %.1f rows written and %.0f WAL bytes per delivery; "
      "its CPU %.3f s per 1000 deliveries"
      % ((a[0] - b[0]) / n * 1000, (a[1] - b[1]) / n, (a[2] - b[2]) / n, (a[3] - b[3]) / n * 1000))
PY
)
        report "postgres, $nodes node(s)" "$r" "$base" "$db"
    done
} | tee -a bench/results.txt
