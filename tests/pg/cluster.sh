#!/bin/sh
# A throwaway PostgreSQL cluster for the tests: `cluster.sh start DIR` runs
# initdb in DIR as an unprivileged user and starts the server on 127.0.0.1 at
# a free port (no system service, nothing outside DIR), writing its libpq DSN
# to DIR/dsn; `cluster.sh stop DIR` stops it; `cluster.sh restart DIR`
# restarts it (-m fast). Debian's postgresql provides initdb and pg_ctl.
set -eu
cmd=$1
dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "cluster.sh: PostgreSQL is not installed (scripts/deps.sh --tests installs it)" >&2; exit 1; }
user=nobody
as_user() { runuser -u "$user" -- "$@"; }
case "$cmd" in
start)
    mkdir -p "$dir"
    chmod o+x "$(dirname "$dir")" # the server's user reaches DIR through it
    chown "$user" "$dir"
    as_user "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200" \
        start >/dev/null
    echo "host=127.0.0.1 port=$port user=postgres dbname=postgres" >"$dir/dsn"
    ;;
stop)
    as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
restart)
    as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 restart >/dev/null
    ;;
*)
    echo "usage: cluster.sh start|stop|restart DIR" >&2
    exit 2
    ;;
esac
