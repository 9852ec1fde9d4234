#!/usr/bin/env bash
# The comparison benchmark (see bench/README.md): pg_rproxy against PgBouncer, Pgpool-II, a canned
# one-row server and PostgreSQL itself, on free ports in a temporary directory.
#   sudo bench/run.sh [--seconds 10] [--repetitions 3] [--idle-clients 10000] [--out bench/results]
#   sudo bench/run.sh --profile [--mode simple|extended|prepared] [--misses] [--hook] [--setting NAME=VALUE]   (callgrind: cost per hit)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/install-deps.sh" bench
make -s -C "$ROOT" -j"$(nproc)" 2>&1 | grep -v '^g++' || true
make -s -C "$ROOT" install >/dev/null
unset PGHOST PGPORT PGUSER PGDATABASE PGOPTIONS PGPASSWORD PGSERVICE
if [ "${1:-}" = --profile ]; then
    shift
    exec /usr/bin/python3 "$ROOT/bench/profile_hits.py" "$@"
fi
exec /usr/bin/python3 "$ROOT/bench/compare.py" "$@"
