#!/usr/bin/env bash
# pg_rproxy gateway entrypoint. Maps the environment variables users know from other read-only
# proxies to pg_rproxy GUCs. The same mapping serves the Docker image and scripts/run.sh:
#
#   entrypoint.sh write-config FILE   append the pg_rproxy settings for the environment to FILE
#   entrypoint.sh [postgres args]     (in the image) init the gateway cluster if needed, configure, run
#
# UPSTREAM_HOST, UPSTREAM_PORT (5432), UPSTREAM_USER, UPSTREAM_PASSWORD, UPSTREAM_DATABASE,
# UPSTREAM_SSLMODE, UPSTREAM_CONNINFO (a full libpq conninfo instead of the UPSTREAM_* parts),
# LISTEN_HOST (localhost; '0.0.0.0' or '*' for all), LISTEN_PORT (5433; a list such as 5433,5434 listens on each), POOL_SIZE (5),
# POOL_TIMEOUT_SECONDS (30), PROXY_WORKERS (2), CACHE_TTL_SECONDS (900), MAX_CACHE_ENTRIES (10000),
# CACHE_SIZE (64MB), AUTH_METHOD (scram-sha-256: how gateway roles authenticate while
# pg_rproxy_auth_rules is empty), MAX_CLIENT_CONNECTIONS (10000), TLS_CERT_FILE and TLS_KEY_FILE
# (TLS toward clients when both are set), TLS_CA_FILE (client certificates), PROXY_USER and
# PROXY_PASSWORD (a gateway login role for clients, created or updated at start), CONFIG_PATH (the
# config.yaml of the SNI host-name proxy pg_rproxy replaces: its mappings become the upstreams and
# routes named 'yaml:<external>', re-imported at every start of the image; its listen address and
# port apply where LISTEN_HOST and LISTEN_PORT are unset; see scripts/lib/sni_config.py). Every
# start of the image also runs ALTER EXTENSION pg_rproxy UPDATE, for a data volume from an older image.
# The Prometheus endpoint: METRICS_PORT (0, off), METRICS_LISTEN_HOST (localhost; '*' for all),
# METRICS_USER and METRICS_PASSWORD_FILE (HTTP basic authentication: a file holding the password),
# METRICS_ALLOWED_ADDRESSES (CIDR blocks that may scrape; empty: any).
# The Redis cache shared by gateways: REDIS_URL (redis://[user:password@]host[:port][/db] or
# unix:///path/redis.sock[?db=N]; unset: off), REDIS_PREFIX (pg_rproxy:), REDIS_TIMEOUT_MS (50),
# PARAMETER_HOOKS (off; on reads PGPROXY,... options from the first Bind parameter).
#   entrypoint.sh redis-url           REDIS_URL with its password masked, for display
#   entrypoint.sh redact              stdin to stdout with REDIS_URL's password masked (server logs)
#   entrypoint.sh role-sql            the SQL that creates/updates PROXY_USER with PROXY_PASSWORD
set -euo pipefail

die() { echo "pg_rproxy entrypoint: $*" >&2; exit 1; }

# A libpq conninfo value: single-quoted, with \ and ' escaped.
conninfo_value() {
    local v=${1//\\/\\\\}
    printf "'%s'" "${v//\'/\\\'}"
}

# A postgresql.conf string: single-quoted, \ doubled (the file parser unescapes), ' doubled.
conf_string() {
    local v=${1//\\/\\\\}
    printf "'%s'" "${v//\'/\'\'}"
}

require_int() {
    local name=$1 value=$2 min=$3 max=$4
    [[ $value =~ ^[0-9]+$ ]] && ((value >= min && value <= max)) || die "$name must be an integer from $min to $max, got '$value'"
}

upstream_conninfo() {
    if [ -n "${UPSTREAM_CONNINFO:-}" ]; then
        printf '%s' "$UPSTREAM_CONNINFO"
        return
    fi
    [ -n "${UPSTREAM_HOST:-}" ] || return 0
    local port=${UPSTREAM_PORT:-5432}
    require_int UPSTREAM_PORT "$port" 1 65535
    local ci="host=$(conninfo_value "$UPSTREAM_HOST") port=$port"
    [ -n "${UPSTREAM_USER:-}" ] && ci+=" user=$(conninfo_value "$UPSTREAM_USER")"
    [ -n "${UPSTREAM_PASSWORD:-}" ] && ci+=" password=$(conninfo_value "$UPSTREAM_PASSWORD")"
    [ -n "${UPSTREAM_DATABASE:-}" ] && ci+=" dbname=$(conninfo_value "$UPSTREAM_DATABASE")"
    [ -n "${UPSTREAM_SSLMODE:-}" ] && ci+=" sslmode=$(conninfo_value "$UPSTREAM_SSLMODE")"
    printf '%s' "$ci"
}

# REDIS_URL's password never reaches our output: not in messages, nor in the server logs we show.
# As the server reads it: what comes before the last @, split at the first colon (no colon: all
# password). Looking past the first / as well masks a password that holds an unencoded one.
redis_password() {
    local rest=${REDIS_URL:-}
    [[ $rest == *://*@* && $rest != unix://* ]] || return 0
    rest=${rest#*://}
    rest=${rest%@*}
    if [[ $rest == *:* ]]; then printf '%s' "${rest#*:}"; else printf '%s' "$rest"; fi
}
# REDIS_URL with its password replaced by $1 (user kept, as "user:$1@"; none and no user: as
# "host" alone).
redis_url_with_password() {
    local url=${REDIS_URL:-} pw
    pw=$(redis_password)
    [ -n "$pw" ] || { printf '%s' "$url"; return; }
    local scheme=${url%%://*} rest=${url#*://}
    local userinfo=${rest%@*} user=
    [[ $userinfo != *:* ]] || user=${userinfo%%:*}
    if [ -n "$user$1" ]; then printf '%s://%s:%s@%s' "$scheme" "$user" "$1" "${rest##*@}"; else printf '%s://%s' "$scheme" "${rest##*@}"; fi
}
redis_url_masked() { redis_url_with_password '***'; }
# The password left out; the file pg_rproxy.redis_password_file names holds it.
redis_url_without_password() { redis_url_with_password ''; }
redact_redis() {
    local text pw
    text=$(cat)
    pw=$(redis_password)
    [ -z "$pw" ] || text=${text//"$pw"/***}
    printf '%s\n' "$text"
}

# Checked here, not only by the server: the server's own refusal quotes the value, password and all.
check_redis_url() {
    local url=$REDIS_URL port
    if [[ $url =~ ^redis://([^[:space:]/]*@)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(:([0-9]+))?(/[0-9]*)?$ ]]; then
        port=${BASH_REMATCH[4]:-6379}
        ((10#$port >= 1 && 10#$port <= 65535)) && return 0
    fi
    [[ $url =~ ^unix:///[^?[:space:]]+(\?db=[0-9]+)?$ ]] && return 0
    die "REDIS_URL must look like redis://[user:password@]host[:port][/db] or unix:///path/redis.sock[?db=N], got '$(redis_url_masked)'"
}

sql_ident() { printf '"%s"' "${1//\"/\"\"}"; }
sql_literal() { printf "'%s'" "${1//\'/\'\'}"; }

# Clients authenticate as roles of the gateway: PROXY_USER gets a SCRAM password.
role_sql() {
    [ -n "${PROXY_USER:-}" ] || return 0
    [ -n "${PROXY_PASSWORD:-}" ] || die "PROXY_USER needs PROXY_PASSWORD"
    local ident lit
    ident=$(sql_ident "$PROXY_USER")
    lit=$(sql_literal "$PROXY_USER")
    echo "SET password_encryption = 'scram-sha-256';"
    echo "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = $lit) THEN CREATE ROLE $ident; END IF; END \$\$;"
    echo "ALTER ROLE $ident LOGIN PASSWORD $(sql_literal "$PROXY_PASSWORD");"
}

# scripts/lib/sni_config.py: next to this script in the repository, or installed beside it in the image.
sni_config() {
    local here lib
    here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
    lib=$here/../scripts/lib/sni_config.py
    [ -f "$lib" ] || lib=$here/pg-rproxy-sni-config
    /usr/bin/python3 "$lib" "$@"
}

# CONFIG_PATH's listen section fills in LISTEN_HOST and LISTEN_PORT: set in the environment, they win.
config_listen() {
    [ -n "${CONFIG_PATH:-}" ] || return 0
    local host=${LISTEN_HOST:-} port=${LISTEN_PORT:-} lines
    lines=$(sni_config listen "$CONFIG_PATH") || exit 2
    eval "$lines"
    [ -z "$host" ] || LISTEN_HOST=$host
    [ -z "$port" ] || LISTEN_PORT=$port
}

# On every start, before the real server: brings the extension up to the installed version (a data
# volume from an older image has the old tables), then imports CONFIG_PATH's mappings, as the proxy
# it replaces read its file on every start. A private server (no TCP, no proxy workers) runs the SQL.
prepare_gateway() {
    local data=$1 sql mappings tmp out rc=0
    # client_min_messages: no "already installed" notice on every start; the import's notices show.
    sql="SET client_min_messages = warning;
ALTER EXTENSION pg_rproxy UPDATE;
RESET client_min_messages;"
    if [ -n "${CONFIG_PATH:-}" ]; then
        mappings=$(sni_config sql "$CONFIG_PATH") || exit 2
        sql+=$'\n'$mappings
    fi
    tmp=$(mktemp -d)
    pg_ctl -D "$data" -l "$tmp/log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$tmp' -c port=5432 -c pg_rproxy.workers=0" start >/dev/null ||
        die "could not start the gateway to update pg_rproxy${CONFIG_PATH:+ and import $CONFIG_PATH}: $(redact_redis <"$tmp/log")"
    out=$(psql -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p 5432 -U postgres -d postgres <<<"$sql" 2>&1) || rc=$?
    pg_ctl -D "$data" -m fast -w stop >/dev/null
    rm -rf "$tmp"
    [ "$rc" -eq 0 ] || die "updating pg_rproxy${CONFIG_PATH:+ and importing $CONFIG_PATH} failed: $(redact_redis <<<"$out")"
    # e.g. the 'yaml:' upstreams kept because a route or an authentication rule still names them
    [ -z "$out" ] || echo "pg_rproxy entrypoint: ${CONFIG_PATH:+$CONFIG_PATH: }$out" >&2
}

write_config() {
    local file=$1
    local listen=${LISTEN_HOST:-localhost} port=${LISTEN_PORT:-5433} pool=${POOL_SIZE:-5}
    local timeout=${POOL_TIMEOUT_SECONDS:-30} workers=${PROXY_WORKERS:-2}
    local ttl=${CACHE_TTL_SECONDS:-900} entries=${MAX_CACHE_ENTRIES:-10000} cache_size=${CACHE_SIZE:-64MB}
    [ "$listen" = "0.0.0.0" ] && listen='*'
    local one
    for one in ${port//,/ }; do require_int LISTEN_PORT "$one" 1 65535; done  # a list: one listener each
    require_int POOL_SIZE "$pool" 1 10000
    require_int POOL_TIMEOUT_SECONDS "$timeout" 1 86400
    require_int PROXY_WORKERS "$workers" 0 64
    require_int CACHE_TTL_SECONDS "$ttl" 1 2000000
    require_int MAX_CACHE_ENTRIES "$entries" 16 10000000
    [[ $cache_size =~ ^[0-9]+(kB|MB|GB)?$ ]] || die "CACHE_SIZE must look like 64MB, got '$cache_size'"
    local auth=${AUTH_METHOD:-scram-sha-256} max_clients=${MAX_CLIENT_CONNECTIONS:-10000}
    case "$auth" in scram-sha-256|md5|password|trust|reject|cert) ;; *) die "AUTH_METHOD must be scram-sha-256, md5, password, trust, reject or cert, got '$auth'" ;; esac
    require_int MAX_CLIENT_CONNECTIONS "$max_clients" 0 1000000
    local metrics_port=${METRICS_PORT:-0} metrics_listen=${METRICS_LISTEN_HOST:-localhost}
    require_int METRICS_PORT "$metrics_port" 0 65535
    [ "$metrics_listen" = "0.0.0.0" ] && metrics_listen='*'
    if [ -n "${METRICS_USER:-}" ] && [ -z "${METRICS_PASSWORD_FILE:-}" ]; then die "METRICS_USER needs METRICS_PASSWORD_FILE"; fi
    [ -z "${REDIS_URL:-}" ] || check_redis_url
    [ -z "${REDIS_TIMEOUT_MS:-}" ] || require_int REDIS_TIMEOUT_MS "$REDIS_TIMEOUT_MS" 1 60000
    local hooks=
    case "${PARAMETER_HOOKS:-}" in
        "") ;;
        on|true|yes|1) hooks=on ;;
        off|false|no|0) hooks=off ;;
        *) die "PARAMETER_HOOKS must be on or off, got '$PARAMETER_HOOKS'" ;;
    esac
    if [ -n "${TLS_CERT_FILE:-}${TLS_KEY_FILE:-}" ] && { [ -z "${TLS_CERT_FILE:-}" ] || [ -z "${TLS_KEY_FILE:-}" ]; }; then
        die "TLS_CERT_FILE and TLS_KEY_FILE go together"
    fi
    # The Redis password goes to a file beside postgresql.conf (the server logs a changed
    # setting's value, never a file's text).
    local redis_pw
    redis_pw=$(redis_password)
    if [ -n "$redis_pw" ] && [ "$file" != /dev/null ]; then
        local pwfile
        pwfile="$(dirname "$file")/pg_rproxy_redis_password"
        (umask 077; printf '%s\n' "$redis_pw" >"$pwfile")
        chown --reference="$file" "$pwfile" 2>/dev/null || true
    fi
    {
        echo ""
        echo "# --- pg_rproxy (written by docker/entrypoint.sh from the environment) ---"
        echo "shared_preload_libraries = 'pg_rproxy'"
        echo "pg_rproxy.listen_addresses = $(conf_string "$listen")"
        echo "pg_rproxy.port = '$port'"
        echo "pg_rproxy.workers = $workers"
        echo "pg_rproxy.pool_size = $pool"
        echo "pg_rproxy.pool_timeout = '${timeout}s'"
        echo "pg_rproxy.upstream = $(conf_string "$(upstream_conninfo)")"
        echo "pg_rproxy.cache_ttl = '${ttl}s'"
        echo "pg_rproxy.cache_max_entries = $entries"
        echo "pg_rproxy.cache_size = '$cache_size'"
        echo "pg_rproxy.auth_method = '$auth'"
        echo "pg_rproxy.max_client_connections = $max_clients"
        if [ -n "${TLS_CERT_FILE:-}" ]; then
            echo "pg_rproxy.ssl = on"
            echo "pg_rproxy.ssl_cert_file = $(conf_string "$TLS_CERT_FILE")"
            echo "pg_rproxy.ssl_key_file = $(conf_string "$TLS_KEY_FILE")"
        fi
        [ -n "${TLS_CA_FILE:-}" ] && echo "pg_rproxy.ssl_ca_file = $(conf_string "$TLS_CA_FILE")"
        if [ "$metrics_port" != 0 ]; then
            echo "pg_rproxy.metrics_port = $metrics_port"
            echo "pg_rproxy.metrics_listen_addresses = $(conf_string "$metrics_listen")"
            [ -n "${METRICS_USER:-}" ] && echo "pg_rproxy.metrics_user = $(conf_string "$METRICS_USER")"
            [ -n "${METRICS_PASSWORD_FILE:-}" ] && echo "pg_rproxy.metrics_password_file = $(conf_string "$METRICS_PASSWORD_FILE")"
            [ -n "${METRICS_ALLOWED_ADDRESSES:-}" ] && echo "pg_rproxy.metrics_allowed_addresses = $(conf_string "$METRICS_ALLOWED_ADDRESSES")"
        fi
        [ -n "${REDIS_URL:-}" ] && echo "pg_rproxy.redis = $(conf_string "$(redis_url_without_password)")"
        [ -n "$redis_pw" ] && echo "pg_rproxy.redis_password_file = 'pg_rproxy_redis_password'"
        [ -n "${REDIS_PREFIX:-}" ] && echo "pg_rproxy.redis_prefix = $(conf_string "$REDIS_PREFIX")"
        [ -n "${REDIS_TIMEOUT_MS:-}" ] && echo "pg_rproxy.redis_timeout = $REDIS_TIMEOUT_MS"
        [ -n "$hooks" ] && echo "pg_rproxy.parameter_hooks = $hooks"
        true
    } >>"$file"
}

container_main() {
    local data=${PGDATA:-/var/lib/postgresql/gateway}
    if [ ! -s "$data/PG_VERSION" ]; then
        config_listen   # before initdb: a bad file must not leave a half-made cluster behind
        write_config /dev/null   # nor a bad variable
        initdb -D "$data" -U postgres -A peer -E UTF8 --locale=C.UTF-8 >/dev/null
        echo "listen_addresses = ''" >>"$data/postgresql.conf"
        # In a container the proxy port is published explicitly; listen on all interfaces.
        LISTEN_HOST=${LISTEN_HOST:-*} METRICS_LISTEN_HOST=${METRICS_LISTEN_HOST:-*} write_config "$data/postgresql.conf"
        local out
        out=$(postgres --single -D "$data" postgres <<<"CREATE EXTENSION pg_rproxy;
$(role_sql)" 2>&1 | redact_redis; exit "${PIPESTATUS[0]}") ||
            die "CREATE EXTENSION pg_rproxy failed: $out"
        if grep -q "ERROR" <<<"$out"; then die "CREATE EXTENSION pg_rproxy failed: $out"; fi
    fi
    prepare_gateway "$data"
    exec postgres -D "$data" "$@"
}

case "${1:-}" in
    write-config)
        [ $# -eq 2 ] || die "usage: entrypoint.sh write-config FILE"
        config_listen
        write_config "$2"
        ;;
    role-sql)
        role_sql
        ;;
    conninfo)
        upstream_conninfo
        echo
        ;;
    redis-url)
        [ -z "${REDIS_URL:-}" ] || { redis_url_masked; echo; }
        ;;
    redact)
        redact_redis
        ;;
    *)
        container_main "$@"
        ;;
esac
