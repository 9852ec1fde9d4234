#!/usr/bin/env bash
# libFuzzer harnesses (clang, with AddressSanitizer and UndefinedBehaviorSanitizer) for the code
# that reads untrusted bytes: the startup packet, every frontend message decoder, the session's
# input path (reads of any size, messages held across reads), every backend message decoder, the SCRAM
# exchange, the cache-hint comment parser and what the Redis level reads (values, messages, hooks,
# URLs). Seeds are in test/fuzz/corpus/<name>; new inputs go
# to a temporary copy. Fails on any crash, leak or sanitizer report.
#
#   scripts/fuzz.sh [SECONDS_PER_HARNESS]     default 30 (the test command uses this)
#   scripts/fuzz.sh 3600                      a longer run
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-30}
out=$(mktemp -d /tmp/pg_rproxy_fuzz.XXXXXX)
trap 'rm -rf "$out"' EXIT
flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT/src" -I"$(pg_config --includedir)")
pure=("$ROOT"/src/protocol/*.cpp "$ROOT"/src/auth/*.cpp "$ROOT"/src/core/cidr.cpp "$ROOT"/src/proxy/cache_key.cpp "$ROOT"/src/proxy/session_settings.cpp
      "$ROOT"/src/core/l2_value.cpp "$ROOT"/src/core/parameter_hook.cpp "$ROOT"/src/core/redis_scripts.cpp "$ROOT"/src/core/redis_url.cpp)
status=0
for harness in startup_packet frontend_messages session_input backend_messages scram cache_hints redis_values; do
    bin="$out/$harness"
    clang++ "${flags[@]}" "$ROOT/test/fuzz/${harness}_fuzz.cpp" "${pure[@]}" -lpq -lssl -lcrypto -o "$bin"
    mkdir -p "$out/corpus-$harness"
    cp "$ROOT/test/fuzz/corpus/$harness"/* "$out/corpus-$harness/"
    echo "== fuzz $harness (${secs}s)"
    if ! (cd "$out" && "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
            "$out/corpus-$harness" >"$out/$harness.log" 2>&1); then
        tail -40 "$out/$harness.log"
        status=1
        # keep the crashing input where it can be looked at
        cp "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$ROOT/test/fuzz/" 2>/dev/null || true
    else
        grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$out/$harness.log" | tail -1 || true
    fi
done
exit $status
