# Shell helpers shared by scripts/run.sh, scripts/test.sh and the e2e tests: temporary or
# project-local PostgreSQL clusters run as the postgres OS user (PostgreSQL refuses root).
# shellcheck shell=bash

PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir)}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# cluster_init DIR PORT: a trust-auth cluster whose socket lives in DIR, on 127.0.0.1:PORT.
cluster_init() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_pg "$PG_BINDIR/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
log_line_prefix = '%m [%p] '
CONF
}

cluster_start() {
    local dir=$1
    as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}

cluster_stop() {
    local dir=$1 mode=${2:-fast}
    [ -f "$dir/data/postmaster.pid" ] || return 0
    as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}

# wait_for_proxy HOST PORT USER DB [SECONDS]: until a query through the proxy succeeds.
wait_for_proxy() {
    local host=$1 port=$2 user=$3 db=$4 secs=${5:-30} i
    for ((i = 0; i < secs * 5; i++)); do
        if psql -X -q -h "$host" -p "$port" -U "$user" -d "$db" -c "select 1" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 1
}
