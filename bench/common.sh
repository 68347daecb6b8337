# Sourced by bench/run.sh and bench/https.sh (after `cd` to the repository,
# with $bench naming the run): the packages they need, a Release build in
# build-bench/ ($B), a work directory on disk ($work, removed on exit), a
# free loopback port ($port), nginx configured (write_nginx_conf), started
# and stopped, and wrk's POST script (write_post_lua).
sh scripts/deps.sh
for p in nginx-light wrk openssl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMETRONOME_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
B="$PWD/build-bench"

work=$(mktemp -d "/var/tmp/metronome-$bench.XXXXXX") # on disk, not tmpfs
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nginx_pid=""
cleanup() {
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

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

# nginx answering on loopback: 1 worker, keep-alive without end, no access log.
# $1 is what goes inside http { } after that, the server block included.
write_nginx_conf() {
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
$1
}
EOF
}

# wrk's script: POST the bytes of $work/body as JSON.
write_post_lua() {
    cat >"$work/post.lua" <<EOF
wrk.method = "POST"
local f = io.open("$work/body", "r"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
EOF
}

# The benchmark's pipeline in $1/pipeline.yaml: the simulated fleet, one hourly webhook posting
# to $2://127.0.0.1:$port/hook with $3 vehicles per payload; $4 goes inside the sink's mapping.
write_pipeline() {
    cat >"$1/pipeline.yaml" <<EOF
version: 1
application: { management_token: bench-token }
plugin_path: ["$B/plugins"]
store: { plugin: sqlite, path: "$1/ledger.db" }
sources: [{ name: sim, plugin: simulated }]
sinks: [{ name: callback, plugin: http, allow_private_networks: true, concurrency: 64$4 }]
webhooks:
  - name: fleet
    callback_uri: $2://127.0.0.1:$port/hook
    cadence: { policy: hourly }
    endpoints: [/odometer, /battery, /location]
    vehicles_per_payload: $3
    sinks: [callback]
delivery: { spread: [0s, 0s] }
EOF
}
