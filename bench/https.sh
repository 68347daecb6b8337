#!/bin/sh
# HTTPS receivers: `sh bench/https.sh [VEHICLES]` (default 20000; bench/run.sh passes 100000). nginx on
# loopback behind TLS 1.3 with a certificate made here (EC P-256, for
# 127.0.0.1), answering 204, keep-alive; measured in one run, interleaved:
#   - T, wrk's TLS ceiling (HTTP/1.1, 1 thread, 64 connections, 5 s);
#   - the bare libcurl client (bench_curl) over TLS, HTTP/1.1 and HTTP/2;
#   - metronome end to end over TLS: VEHICLES simulated vehicles, one per
#     payload, the http sink trusting the certificate (ca_file), once with
#     nginx offering HTTP/1.1 only and once offering HTTP/2 by ALPN (the sink
#     keeps to HTTP/1.1: bench/README.md has what HTTP/2 measured).
# Prints deliveries/s, the ratio to T and CPU seconds per 1000 deliveries;
# appends the lines to bench/results.txt.
set -eu
cd "$(dirname "$0")/.."
N=${1:-20000}
REPS=${REPS:-3}
bench=https
. bench/common.sh

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1

nginx_conf() { # $1 = "" or " http2": what the listener offers by ALPN
    write_nginx_conf "  ssl_protocols TLSv1.3;
  ssl_session_cache shared:TLS:10m;
  server {
    listen 127.0.0.1:$port ssl$1;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    http2_max_requests 100000000;
    location / { return 204; }
  }"
}

head -c 704 /dev/zero | tr '\0' 'x' >"$work/body" # a payload's size (bench/run.sh measures it)
write_post_lua

measure_t() {
    nginx_conf ""
    start_nginx
    wrk -t1 -c64 -d5s -s "$work/post.lua" "https://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}'
    stop_nginx
}
measure_c() { # $1 = "" or " http2"
    nginx_conf "$1"
    start_nginx
    "$B/bench_curl" "https://127.0.0.1:$port/hook" 704 "$N" 64 "$work/cert.pem" | awk '{print $1}'
    stop_nginx
}

# ---- a ledger with N vehicles subscribed, kept pristine ----
seq -f "veh-%07.0f" 1 "$N" >"$work/vehicles.csv"
write_pipeline "$work" https 1 ", ca_file: \"$work/cert.pem\""
m="$B/metronome --config $work/pipeline.yaml"
# nginx cannot answer a verify challenge: the webhook is created, then marked verified in the
# ledger directly (a benchmark's shortcut; the product never skips verification)
$m subscribe fleet --file "$work/vehicles.csv" --now 2030-03-01T15:00:00Z >/dev/null
python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE webhooks SET state = 1, active_from = 0")
db.commit()' "$work/ledger.db"
cp "$work/ledger.db" "$work/pristine.db"

run_once() { # $1 = "" or " http2"; prints "tick_s cpu_s delivered"
    nginx_conf "$1"
    rm -f "$work/ledger.db-wal" "$work/ledger.db-shm"
    cp "$work/pristine.db" "$work/ledger.db"
    sync
    start_nginx
    /usr/bin/time -f "%U %S" -o "$work/time" $m run --clock virtual \
        --start 2030-03-01T15:59:59Z --until 2030-03-01T16:59:59Z >"$work/summary" 2>/dev/null
    stop_nginx
    tick=$(sed -n 's/^from the first tick to the last attempt recorded: \([0-9.]*\) s.*/\1/p' "$work/summary")
    cpu=$(awk '{print $1 + $2}' "$work/time")
    delivered=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from deliveries where state = 1").fetchone()[0])' "$work/ledger.db")
    echo "$tick $cpu $delivered"
}

results="$work/results"
echo "T $(measure_t)" >"$results"
for i in $(seq 1 "$REPS"); do
    echo "C1 $(measure_c "")" >>"$results"
    echo "C2 $(measure_c " http2")" >>"$results"
    echo "h1 $(run_once "")" >>"$results"
    echo "h2 $(run_once " http2")" >>"$results"
    echo "T $(measure_t)" >>"$results"
done

out=$(
    echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores: HTTPS receivers (nginx, TLS 1.3, keep-alive), $N vehicles, one per payload, $REPS runs each"
    python3 - "$results" "$N" <<'PY'
import sys
lines = [l.split() for l in open(sys.argv[1])]
n = int(sys.argv[2])
ts = [float(l[1]) for l in lines if l[0] == "T"]
k = 0
rows = {"C1": [], "C2": [], "h1": [], "h2": []}
for l in lines:
    if l[0] == "T":
        k += 1
        continue
    t = (ts[k - 1] + ts[k]) / 2  # the T measured just before and just after
    rows[l[0]].append((l[1:], t))
print("T, wrk's TLS ceiling, between the runs: " + ", ".join(f"{x:,.0f}" for x in ts) + " requests/s")
for key, label in (("C1", "bare libcurl, HTTP/1.1"), ("C2", "bare libcurl, HTTP/2")):
    r = sorted((float(f[0]) / t, float(f[0]), t) for f, t in rows[key])
    ratio, rate, t = r[len(r) // 2]
    print(f"{label}: {rate:,.0f} requests/s = {ratio:.2f} T (median; every run "
          + ", ".join(f"{x[0]:.2f}" for x in r) + ")")
for key, label in (("h1", "metronome, nginx offering HTTP/1.1"),
                   ("h2", "metronome, nginx offering HTTP/2 too (the sink keeps HTTP/1.1)")):
    r = []
    for f, t in rows[key]:
        tick, cpu, delivered = float(f[0]), float(f[1]), int(f[2])
        r.append((delivered / tick / t, delivered / tick, tick, cpu / delivered * 1000, delivered, t))
    r.sort()
    ratio, rate, tick, cpu, delivered, t = r[len(r) // 2]
    print(f"{label}: {delivered} of {n} delivered in {tick:.2f} s, {rate:,.0f} deliveries/s = "
          f"{ratio:.2f} T (T around it {t:,.0f}); CPU {cpu:.3f} s per 1000 deliveries (median; "
          "every run " + ", ".join(f"{x[0]:.2f}" for x in r) + ")")
PY
)
echo "$out"
echo "$out" >>bench/results.txt
