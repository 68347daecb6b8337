#!/bin/sh
# Installs the Debian packages metronome builds with, if missing; with
# --tests, also what its tests need (openssl for a test certificate,
# chromium for the dashboard's browser test, PostgreSQL's server for the
# postgres store's tests - never started as a service). Run as root on
# Debian 12; it does nothing when everything is there.
set -eu
packages="build-essential cmake pkg-config libyaml-dev libjansson-dev libsodium-dev
libcurl4-openssl-dev libssl-dev libsqlite3-dev libzstd-dev libmicrohttpd-dev libcriterion-dev libpq-dev"
if [ "${1:-}" = "--tests" ]; then
    packages="$packages openssl chromium postgresql"
    # the tests start throwaway clusters of their own: no system cluster is made or started
    mkdir -p /etc/postgresql-common
    grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf ||
        echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
fi
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
fi
