#!/usr/bin/env bash
# Cache-hit throughput: pgbench with a small hot set (100 keys) through pg_rproxy, next to the same
# pgbench against PostgreSQL directly. Not a test: it prints numbers.
#   sudo bench/cache_hits.sh [seconds=10] [clients=8]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib/clusters.sh"
secs=${1:-10}
clients=${2:-8}
"$ROOT/scripts/install-deps.sh" run
make -s -C "$ROOT" -j"$(nproc)" >/dev/null && make -s -C "$ROOT" install >/dev/null

WORK=$(mktemp -d /tmp/pg_rproxy_bench.XXXXXX)
chmod 755 "$WORK"
[ "$(id -u)" -eq 0 ] && chown postgres: "$WORK"
trap 'cluster_stop "$WORK/gateway" immediate; cluster_stop "$WORK/upstream" immediate; rm -rf "$WORK"' EXIT
up_port=$(free_port)
proxy_port=$(free_port)
cluster_init "$WORK/upstream" "$up_port"
cluster_start "$WORK/upstream"
as_pg pgbench -q -i -s 1 -h "$WORK/upstream" -p "$up_port" -U postgres postgres >/dev/null 2>&1
cluster_init "$WORK/gateway" "$(free_port)"
UPSTREAM_HOST=127.0.0.1 UPSTREAM_PORT=$up_port UPSTREAM_USER=postgres UPSTREAM_DATABASE=postgres \
    LISTEN_PORT=$proxy_port POOL_SIZE=4 "$ROOT/docker/entrypoint.sh" write-config "$WORK/gateway/data/postgresql.conf"
cluster_start "$WORK/gateway"
wait_for_proxy 127.0.0.1 "$proxy_port" postgres postgres 30

cat >"$WORK/hot.sql" <<'SQL'
\set aid random(1, 100)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SQL
run() {
    pgbench -n -M simple -c "$clients" -j 2 -T "$secs" -f "$WORK/hot.sql" -h 127.0.0.1 -p "$1" -U postgres postgres 2>/dev/null |
        awk '/^tps/ {printf "%.0f", $3} /latency average/ {lat=$4} END {printf " tps, %s ms avg\n", lat}'
}
echo "hot set of 100 keys, -M simple, $clients clients, ${secs}s"
printf "  direct PostgreSQL : %s\n" "$(run "$up_port")"
printf "  pg_rproxy (cache) : %s\n" "$(run "$proxy_port")"
gw_admin=(-h "$WORK/gateway" -p "$(sed -n 's/^port = //p' "$WORK/gateway/data/postgresql.conf" | head -1)" -U postgres postgres)
as_pg psql -X -q "${gw_admin[@]}" -c "CREATE EXTENSION IF NOT EXISTS pg_rproxy" >/dev/null
as_pg psql -X -A -t -F ' ' "${gw_admin[@]}" \
    -c "SELECT 'cache hits', hits, 'misses', misses, 'hit ratio', hit_ratio FROM pg_rproxy_cache_stats" | sed 's/^/  /'
