#!/usr/bin/env bash
# Runs pg_rproxy: installs what is missing, builds, installs, creates a gateway cluster in
# .pg_rproxy/ and starts it with the proxy on LISTEN_PORT (5433). Without UPSTREAM_HOST (or
# UPSTREAM_CONNINFO, or CONFIG_PATH) it also starts an embedded demo upstream with sample data.
# The environment is that of docker/entrypoint.sh. CONFIG_PATH names the config.yaml of the SNI
# host-name proxy pg_rproxy replaces (relative to where run.sh is started): its mappings become the
# upstreams and routes named 'yaml:<external>', and its listen address and port apply where
# LISTEN_HOST and LISTEN_PORT are unset. REDIS_URL names a Redis that gateways share as a
# second-level cache (redis://[user:password@]host:port[/db]); its password is never printed.
#
#   sudo scripts/run.sh          start (idempotent: restarts with the current environment)
#   sudo scripts/run.sh stop     stop the gateway and the demo upstream
#   sudo scripts/run.sh status
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${CONFIG_PATH:-}" ]; then
    CONFIG_PATH=$(realpath -m -- "$CONFIG_PATH")
    export CONFIG_PATH
fi
cd "$ROOT"
STATE=${PG_RPROXY_STATE_DIR:-$ROOT/.pg_rproxy}
GATEWAY=$STATE/gateway
DEMO=$STATE/demo-upstream

# shellcheck source=lib/clusters.sh
source "$ROOT/scripts/lib/clusters.sh"

stop_all() {
    cluster_stop "$GATEWAY"
    cluster_stop "$DEMO"
}

case "${1:-start}" in
    stop)
        stop_all
        echo "pg_rproxy stopped."
        exit 0
        ;;
    status)
        for c in "$GATEWAY" "$DEMO"; do
            [ -d "$c/data" ] && as_pg "$PG_BINDIR/pg_ctl" -D "$c/data" status | head -1 | sed "s|^|$(basename "$c"): |"
        done
        exit 0
        ;;
    start) ;;
    *)
        echo "usage: $0 [start|stop|status]" >&2
        exit 2
        ;;
esac

"$ROOT/scripts/install-deps.sh" run
if [ -n "${CONFIG_PATH:-}" ]; then
    # Checked before the running gateway is stopped.
    /usr/bin/python3 "$ROOT/scripts/lib/sni_config.py" listen "$CONFIG_PATH" >/dev/null || exit 2
    mappings_sql=$(/usr/bin/python3 "$ROOT/scripts/lib/sni_config.py" sql "$CONFIG_PATH") || exit 2
fi
make -s -j"$(nproc)" >/dev/null
make -s install >/dev/null

mkdir -p "$STATE"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$STATE"
    if ! runuser -u postgres -- test -w "$STATE"; then
        echo "pg_rproxy: the postgres user cannot write $STATE (a parent directory is private);" >&2
        echo "set PG_RPROXY_STATE_DIR to a directory it can reach, e.g. /var/lib/pg_rproxy" >&2
        exit 1
    fi
fi
stop_all

# With CONFIG_PATH its mappings are the upstreams.
if [ -z "${UPSTREAM_HOST:-}" ] && [ -z "${UPSTREAM_CONNINFO:-}" ] && [ -z "${CONFIG_PATH:-}" ]; then
    demo_port=${DEMO_UPSTREAM_PORT:-5434}
    if [ ! -d "$DEMO/data" ]; then
        echo "pg_rproxy: no UPSTREAM_HOST set; creating the embedded demo upstream on port $demo_port"
        cluster_init "$DEMO" "$demo_port"
        cluster_start "$DEMO"
        as_pg psql -X -q -h "$DEMO" -p "$demo_port" -U postgres -d postgres -c "CREATE DATABASE demo" >/dev/null
        as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$DEMO" -p "$demo_port" -U postgres -d demo \
            -f "$ROOT/scripts/demo-data.sql" >/dev/null
    else
        demo_port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$DEMO/data/postgresql.conf" | tail -1)
        cluster_start "$DEMO"
    fi
    export UPSTREAM_HOST=127.0.0.1 UPSTREAM_PORT=$demo_port UPSTREAM_USER=postgres UPSTREAM_DATABASE=demo
    demo=1
fi

rm -rf "$GATEWAY"
gateway_port=$(free_port)
cluster_init "$GATEWAY" "$gateway_port"
# The gateway's own server listens only on its socket; clients use the proxy port.
echo "listen_addresses = ''" >>"$GATEWAY/data/postgresql.conf"
"$ROOT/docker/entrypoint.sh" write-config "$GATEWAY/data/postgresql.conf"
# LISTEN_PORT, else CONFIG_PATH's listen port, else 5433: as write-config chose.
listen_port=$(sed -n "s/^pg_rproxy\.port = '\{0,1\}\([0-9]*\).*/\1/p" "$GATEWAY/data/postgresql.conf" | tail -1)
cluster_start "$GATEWAY"
as_pg psql -X -q -h "$GATEWAY" -p "$gateway_port" -U postgres -d postgres -c "CREATE EXTENSION pg_rproxy" >/dev/null
if [ -n "${CONFIG_PATH:-}" ]; then
    as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$GATEWAY" -p "$gateway_port" -U postgres -d postgres \
        -f - <<<"$mappings_sql" >/dev/null
fi

user=${UPSTREAM_USER:-postgres}
db=${UPSTREAM_DATABASE:-postgres}
# Clients log in as a gateway role (SCRAM); the password is printed below.
export PROXY_USER=${PROXY_USER:-$user}
if [ -z "${PROXY_PASSWORD:-}" ]; then
    PROXY_PASSWORD=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
fi
export PROXY_PASSWORD
as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$GATEWAY" -p "$gateway_port" -U postgres -d postgres \
    -c "$("$ROOT/docker/entrypoint.sh" role-sql)" >/dev/null
export PGPASSWORD=$PROXY_PASSWORD
proxy_answers() {
    [ -n "${CONFIG_PATH:-}" ] || { wait_for_proxy localhost "$listen_port" "$user" "$db" 30; return; }
    # A login's server depends on its TLS server name, and may not take our login: any answer will do.
    local i
    for ((i = 0; i < 150; i++)); do
        "$PG_BINDIR/pg_isready" -q -h localhost -p "$listen_port" -U "$PROXY_USER" -d "$db" && return 0
        sleep 0.2
    done
    return 1
}
if ! proxy_answers; then
    echo "pg_rproxy: the proxy did not answer on port $listen_port; gateway log:" >&2
    tail -20 "$GATEWAY/server.log" | "$ROOT/docker/entrypoint.sh" redact >&2
    exit 1
fi

redis_line=
if [ -n "${REDIS_URL:-}" ]; then
    redis_line="  redis:     $("$ROOT/docker/entrypoint.sh" redis-url), shared with other gateways (l2_* in pg_rproxy_cache_stats)
"
fi
cat <<MSG

pg_rproxy is running.
  proxy:     PGPASSWORD='$PROXY_PASSWORD' psql -h localhost -p $listen_port -U $PROXY_USER -d $db
  upstream:  $(if [ -n "${demo:-}" ]; then echo "embedded demo cluster on 127.0.0.1:$UPSTREAM_PORT (tables customers, orders)"; elif [ -n "${CONFIG_PATH:-}" ]; then echo "by TLS server name, the mappings of $CONFIG_PATH (SELECT * FROM pg_rproxy_routes)"; else echo "${UPSTREAM_HOST:-conninfo from UPSTREAM_CONNINFO}"; fi)
${redis_line}  admin:     psql -h $GATEWAY -p $gateway_port -U postgres -d postgres   (SELECT * FROM pg_rproxy_workers)
  logs:      $GATEWAY/server.log
  stop:      sudo scripts/run.sh stop
MSG
