#!/usr/bin/env bash
# Runs every test suite of pg_rproxy: installs what is missing (Debian packages only), builds,
# then unit tests (CTest/GoogleTest), pg_regress (make installcheck) and pgTAP against a temporary
# gateway instance, and the end-to-end tests with real upstream and gateway clusters.
#
#   sudo scripts/test.sh            everything
#   sudo scripts/test.sh unit|fuzz|regress|e2e|e2e-valgrind
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=lib/clusters.sh
source "$ROOT/scripts/lib/clusters.sh"
what=${1:-all}
export LANG=C.UTF-8 LC_ALL=C.UTF-8
unset PGHOST PGPORT PGUSER PGDATABASE PGOPTIONS PGPASSWORD PGSERVICE

"$ROOT/scripts/install-deps.sh" test
make -s -j"$(nproc)" 2>&1 | grep -v '^g++\|^gcc' || true
make -s install >/dev/null

failed=()

if [ "$what" = all ] || [ "$what" = unit ]; then
    echo "== unit tests (CTest/GoogleTest)"
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
    (cd build && ctest --output-on-failure) || failed+=(unit)
    echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON >/dev/null
    cmake --build build-asan -j"$(nproc)" >/dev/null
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -E '^guard_') ||
        failed+=(unit-sanitizers)
fi

if [ "$what" = all ] || [ "$what" = fuzz ]; then
    echo "== fuzzing (libFuzzer + ASan/UBSan, ${FUZZ_SECONDS:-30}s per harness)"
    "$ROOT/scripts/fuzz.sh" "${FUZZ_SECONDS:-30}" || failed+=(fuzz)
fi

WORK=$(mktemp -d /tmp/pg_rproxy_test.XXXXXX)
chmod 755 "$WORK"
[ "$(id -u)" -eq 0 ] && chown postgres: "$WORK"
cleanup() {
    cluster_stop "$WORK/regress-gateway" immediate
    cluster_stop "$WORK/regress-upstream" immediate
    if [ -n "${KEEP_TEST_DIR:-}" ]; then echo "test clusters kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [ "$what" = all ] || [ "$what" = regress ]; then
    echo "== pg_regress and pgTAP (temporary gateway instance)"
    up_port=$(free_port)
    gw_port=$(free_port)
    proxy_port=$(free_port)
    cluster_init "$WORK/regress-upstream" "$up_port"
    cluster_start "$WORK/regress-upstream"
    cluster_init "$WORK/regress-gateway" "$gw_port"
    UPSTREAM_HOST=127.0.0.1 UPSTREAM_PORT=$up_port UPSTREAM_USER=postgres UPSTREAM_DATABASE=postgres \
        LISTEN_PORT=$proxy_port AUTH_METHOD=trust "$ROOT/docker/entrypoint.sh" write-config "$WORK/regress-gateway/data/postgresql.conf"
    cluster_start "$WORK/regress-gateway"
    wait_for_proxy 127.0.0.1 "$proxy_port" postgres postgres 30 || { tail -20 "$WORK/regress-gateway/server.log"; failed+=(proxy-start); }
    rm -rf results regression.diffs regression.out
    if ! make -s installcheck PGHOST="$WORK/regress-gateway" PGPORT="$gw_port" PGUSER=postgres; then
        [ -f regression.diffs ] && cat regression.diffs
        failed+=(pg_regress)
    fi
    as_pg psql -X -q -h "$WORK/regress-gateway" -p "$gw_port" -U postgres -d postgres -c "CREATE DATABASE pgtap" >/dev/null
    pg_prove -h "$WORK/regress-gateway" -p "$gw_port" -U postgres -d pgtap test/pgtap/*.sql || failed+=(pgtap)
    cluster_stop "$WORK/regress-gateway"
    cluster_stop "$WORK/regress-upstream"
fi

if [ "$what" = all ] || [ "$what" = e2e ]; then
    echo "== end-to-end tests (real upstream and gateway clusters, psql, raw protocol and driver clients)"
    (cd "$ROOT/test/e2e/node" && npm ci --silent --no-audit --no-fund >/dev/null)
    /usr/bin/python3 "$ROOT/test/e2e/run_e2e.py" --work "$WORK/e2e" || failed+=(e2e)
fi

if [ "$what" = all ] || [ "$what" = e2e-valgrind ]; then
    # The same end-to-end tests with the whole gateway under valgrind memcheck; any error whose
    # stack is in pg_rproxy's code fails. (ASan cannot be preloaded into Debian's postgres binary:
    # it hangs in bindtextdomain at startup.) The 2,000-connection flood only measures timing.
    echo "== end-to-end tests with the gateway under valgrind memcheck"
    (cd "$ROOT/test/e2e/node" && npm ci --silent --no-audit --no-fund >/dev/null)
    /usr/bin/python3 "$ROOT/test/e2e/run_e2e.py" --work "$WORK/e2e-valgrind" --valgrind \
        --exclude silent_connections_are_cut || failed+=(e2e-valgrind)
fi

if [ ${#failed[@]} -ne 0 ]; then
    echo "FAILED suites: ${failed[*]}"
    exit 1
fi
echo "all suites passed"
