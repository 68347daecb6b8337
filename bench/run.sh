#!/bin/sh
# The benchmark: `sh bench/run.sh [VEHICLES]` (default 100000; 1000000 works).
#
# In one run, on this machine, against a receiver on loopback:
#  1. the receiver's ceiling R: nginx (1 worker, 204) driven by wrk (1 thread,
#     64 connections) with a body the size of metronome's payloads; and what a
#     bare libcurl multi client (bench_curl: no ledger, no JSON, no signing)
#     gets from the same nginx - the ceiling of the HTTP library we build on.
#     Both are measured before and after 2 and 3, and the higher figure used;
#  2. metronome end to end: VEHICLES simulated vehicles bulk-subscribed to one
#     hourly webhook with 3 endpoints, one vehicle per payload, spread off, the
#     SQLite ledger on disk - from the tick until every delivery is recorded;
#  3. the same with 100 vehicles per payload;
#  4. the scheduler micro-benchmark (a million subscriptions planned and popped).
# It prints deliveries/s, the ratio to R, tick-to-last-delivery seconds, CPU
# seconds per 1000 deliveries, peak RSS and ledger size, and appends the
# figures to bench/results.txt.
set -eu
cd "$(dirname "$0")/.."
N="${1:-100000}"
sh scripts/deps.sh
for p in nginx-light wrk; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMETRONOME_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
B="$PWD/build-bench"

work=$(mktemp -d /var/tmp/metronome-bench.XXXXXX) # on disk, not tmpfs
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nginx_pid=""
cleanup() {
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err crit;
events { worker_connections 4096; use epoll; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_buffer_size 1m;
  server { listen 127.0.0.1:$port; location / { return 204; } }
}
EOF
start_nginx() {
    nginx -c "$work/nginx.conf" >/dev/null 2>&1 &
    nginx_pid=$!
    sleep 0.5
}
stop_nginx() {
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=""
}

pipeline() { # $1 = directory, $2 = vehicles per payload
    cat >"$1/pipeline.yaml" <<EOF
version: 1
application: { management_token: bench-token }
plugin_path: ["$B/plugins"]
store: { plugin: sqlite, path: "$1/ledger.db" }
sources: [{ name: sim, plugin: simulated }]
sinks: [{ name: callback, plugin: http, allow_private_networks: true, concurrency: 64 }]
webhooks:
  - name: fleet
    callback_uri: http://127.0.0.1:$port/hook
    cadence: { policy: hourly }
    endpoints: [/odometer, /battery, /location]
    vehicles_per_payload: $2
    sinks: [callback]
delivery: { spread: [0s, 0s] }
EOF
}

seq -f "veh-%07.0f" 1 "$N" >"$work/vehicles.csv"

# ---- one end-to-end run: prints "tick_to_last process_wall user sys maxrss_kb ledger_bytes
# payloads bytes"; tick_to_last is metronome's own measure, from the tick firing to the last
# attempt committed to the ledger (process_wall adds start-up and the checkpoint at exit) ----
scenario() { # $1 = name, $2 = vehicles per payload
    dir="$work/$1"
    mkdir -p "$dir"
    pipeline "$dir" "$2"
    m="$B/metronome --config $dir/pipeline.yaml"
    "$B/metronome-receiver" --port "$port" --token bench-token --for 2 >/dev/null &
    sleep 0.3
    $m webhook verify fleet --now 2030-03-01T15:00:00Z >/dev/null
    wait
    $m subscribe fleet --file "$work/vehicles.csv" --now 2030-03-01T15:00:00Z >/dev/null
    sync # the previous run's writeback must not land in this one
    start_nginx
    /usr/bin/time -f "%e %U %S %M" -o "$dir/time" \
        $m run --clock virtual --start 2030-03-01T15:59:59Z --until 2030-03-01T16:59:59Z \
        >"$dir/summary" 2>"$dir/log"
    stop_nginx
    python3 - "$dir" <<'PY'
import os, sqlite3, sys
d = sys.argv[1]
elapsed, user, sys_, rss = open(os.path.join(d, "time")).read().split()
tick = next(line.split(": ")[1].split()[0] for line in open(os.path.join(d, "summary"))
            if line.startswith("from the first tick to the last attempt recorded"))
db = sqlite3.connect(os.path.join(d, "ledger.db"))
delivered, total, size = db.execute(
    "select sum(state = 1), count(*), (select coalesce(sum(length(body)), 0) from payloads) "
    "from deliveries").fetchone()
ledger = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.startswith("ledger.db"))
print(tick, elapsed, user, sys_, rss, ledger, delivered, total, size)
PY
}

# ---- 1. the receiver's ceiling R, with a body the size of a payload ----
probe="$work/probe"
mkdir -p "$probe"
cat >"$probe/pipeline.yaml" <<EOF
version: 1
application: { management_token: bench-token }
plugin_path: ["$B/plugins"]
store: { plugin: sqlite, path: "$probe/ledger.db" }
sources: [{ name: sim, plugin: simulated }]
sinks: [{ name: file, plugin: file, path: "$probe/out.jsonl" }]
webhooks:
  - { name: fleet, callback_uri: "https://example.com/hook", cadence: hourly,
      endpoints: [/odometer, /battery, /location], sinks: [file] }
EOF
"$B/metronome" webhook test fleet --config "$probe/pipeline.yaml" >/dev/null
body_size=$(python3 -c '
import json, sys
line = open(sys.argv[1]).readline()
print(len(json.dumps(json.loads(line)["body"], separators=(",", ":"), ensure_ascii=False).encode()))' "$probe/out.jsonl")
head -c "$body_size" /dev/zero | tr '\0' 'x' >"$work/body"
cat >"$work/post.lua" <<EOF
wrk.method = "POST"
local f = io.open("$work/body", "r"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
EOF
# This VM's speed drifts by up to 30% within minutes, so R and the bare client are
# measured before and after metronome's runs, and the higher of each is used: the
# ratios printed are the conservative ones.
ceilings() { # prints "R C"
    start_nginx
    r=$(wrk -t1 -c64 -d8s -s "$work/post.lua" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
    c=$("$B/bench_curl" "http://127.0.0.1:$port/hook" "$body_size" "$curl_n" 64 | awk '{print $1}')
    stop_nginx
    echo "$r $c"
}
curl_n=$((N < 300000 ? N : 300000))
before=$(ceilings)

# ---- 2, 3. metronome end to end ----
single=$(scenario single 1)
batched=$(scenario batched 100)
after=$(ceilings)
R=$(python3 -c 'import sys; print(max(float(sys.argv[1]), float(sys.argv[3])))' $before $after)
C=$(python3 -c 'import sys; print(max(float(sys.argv[2]), float(sys.argv[4])))' $before $after)

# ---- 4. the scheduler ----
sched=$("$B/bench_scheduler" 1000000)

report() { # $1 = label, $2 = figures
    python3 - "$1" "$N" "$R" "$2" "$C" <<'PY'
import sys
label, n, R, figures = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].split()
C = float(sys.argv[5])
elapsed, wall, user, sys_, rss_kb, ledger, delivered, total, size = figures
elapsed, cpu = float(elapsed), float(user) + float(sys_)
payloads = int(delivered or 0)
print(f"{label}: {n} vehicles, {payloads} of {total} payloads delivered in {elapsed:.2f} s "
      f"from the tick to the last delivery recorded (the process ran {float(wall):.2f} s)")
print(f"  {payloads / elapsed:,.0f} deliveries/s = {payloads / elapsed / R:.3f} R "
      f"= {payloads / elapsed / C:.2f} of bare libcurl; "
      f"{n / elapsed:,.0f} vehicles/s; CPU {cpu:.2f} s = {cpu / payloads * 1000:.3f} s per 1000 "
      f"deliveries; peak RSS {int(rss_kb) / 1024:.0f} MiB; ledger {int(ledger) / 1048576:.0f} MiB "
      f"(payload bytes {int(size) / 1048576:.0f} MiB)")
PY
}

out=$(
    echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(uname -r)"
    echo "R (nginx 204, wrk -t1 -c64, ${body_size}-byte POST): $R requests/s (before: ${before% *}, after: ${after% *})"
    python3 -c "import sys; c, r = float(sys.argv[1]), float(sys.argv[2]); print(f'bare libcurl multi client (bench_curl, 64 connections, {sys.argv[3]} requests): {c:,.0f} requests/s = {c / r:.3f} R')" "$C" "$R" "$curl_n"
    report "one vehicle per payload" "$single"
    report "100 vehicles per payload" "$batched"
    echo "$sched"
)
echo "$out"
echo "$out" >>bench/results.txt
