#!/usr/bin/env bash
# Installs the Debian packages pg_rproxy needs to build, run and test, when missing.
# Usage: scripts/install-deps.sh [run|test|bench]   (test adds the test tools, bench the proxies
# pg_rproxy is compared with and gnuplot)
set -euo pipefail

# python3-yaml: scripts/lib/sni_config.py reads CONFIG_PATH.
want=(postgresql-15 postgresql-server-dev-15 postgresql-client-15 libpq-dev libkrb5-dev libboost-dev libssl-dev libhiredis-dev g++ make
      python3-yaml)
if [ "${1:-run}" = test ]; then
    want+=(cmake libgtest-dev postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl python3
           python3-psycopg python3-psycopg2 postgresql-contrib libpostgresql-jdbc-java openssl clang valgrind
           postgresql-plpython3-15 prometheus redis-server redis-tools)
    command -v node >/dev/null 2>&1 || want+=(nodejs npm)
    command -v javac >/dev/null 2>&1 || want+=(openjdk-17-jdk-headless)
fi
if [ "${1:-run}" = bench ]; then
    want+=(postgresql-contrib pgbouncer pgpool2 gnuplot-nox python3 valgrind g++ redis-server redis-tools)
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "pg_rproxy: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
fi
echo "pg_rproxy: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's postgresql-common would create and start a default cluster on 5432: we manage our own.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf; then
    echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf
fi
# Packaged services (pgbouncer, pgpool2) must not start on their default ports: the benchmark runs
# its own instances on free ports.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
