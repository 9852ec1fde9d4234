#!/usr/bin/python3
"""End-to-end tests: a real upstream cluster with fixtures and a gateway cluster running pg_rproxy
(configured through docker/entrypoint.sh), exercised with psql and a raw protocol client.
Prints one line per test and closes with 'e2e: N passed, M failed'."""
import argparse
import os
import pwd
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from cluster import BINDIR, ROOT, Cluster, free_port  # noqa: E402

MODULES = ["test_queries", "test_robustness", "test_firewall", "test_cache", "test_extended", "test_wire_fidelity", "test_large_messages", "test_tools", "test_bi_tools", "test_streaming", "test_auth", "test_tls_limits", "test_routing", "test_yaml_import", "test_read_write", "test_passthrough", "test_observability", "test_metrics", "test_message_log", "test_interception", "test_redis", "test_lifecycle"]


def setup(base, valgrind=False):
    # Clients of the proxy authenticate as gateway roles (SCRAM); every tool reads $PGPASSWORD.
    os.environ["PGPASSWORD"] = harness.GATEWAY_PASSWORD
    up = Cluster(base, "upstream")
    # No autovacuum: its ANALYZE after a bulk load writes pg_statistic rows, which the
    # firewall tests would see as upstream writes in pg_stat_database.
    # max_prepared_transactions: two-phase commit through a read-write upstream (test_read_write).
    up.init("log_statement = 'all'\nautovacuum = off\nmax_prepared_transactions = 5\n")
    up.start()
    up.sql("CREATE DATABASE e2e")
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", up.dir, "-p", str(up.port), "-U",
                        "postgres", "-d", "e2e", "-f", os.path.join(os.path.dirname(__file__), "fixtures.sql")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    gw = Cluster(base, "gateway")
    gw.init()
    if valgrind:
        # Memcheck over the whole gateway (the postmaster and every process it forks, the proxy
        # workers among them): PostgreSQL's own binary is not instrumented, so ASan cannot be
        # preloaded into it (see test/e2e/README.md); valgrind needs no rebuild.
        gw.postgres_wrapper = valgrind_wrapper(base)
    proxy_port, extra_port, metrics_port = free_port(), free_port(), free_port()
    proxy_env = {
        # a host name, so the upstream address is resolved off the event loop
        "UPSTREAM_HOST": "localhost",
        "UPSTREAM_PORT": str(up.port),
        "UPSTREAM_USER": "rproxy_up",
        "UPSTREAM_PASSWORD": "unused p'ss\\word",  # trust auth upstream; exercises quoting
        "UPSTREAM_DATABASE": "e2e",
        "LISTEN_HOST": "127.0.0.1",
        "LISTEN_PORT": f"{proxy_port},{extra_port}",  # every worker listens on both
        "POOL_SIZE": "2",
        "METRICS_PORT": str(metrics_port),  # test_metrics: a postmaster setting, so set from the start
    }
    env = harness.Env(base, up, gw, proxy_port, proxy_env)
    env.extra_port = extra_port
    env.metrics_port = metrics_port
    r = env.entrypoint("write-config", os.path.join(gw.data, "postgresql.conf"), env=proxy_env)
    assert r.returncode == 0, r.stderr
    gw.start()
    gw.sql("CREATE EXTENSION pg_rproxy")
    env.add_gateway_roles(gw)
    env.wait_proxy()
    return env


SUPPRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "valgrind.supp")


def valgrind_wrapper(base):
    reports = os.path.join(base, "valgrind")
    os.makedirs(reports, exist_ok=True)
    os.chmod(reports, 0o777)
    wrapper = os.path.join(base, "postgres-under-valgrind")
    with open(wrapper, "w") as f:
        f.write(f"""#!/bin/sh
exec valgrind --quiet --tool=memcheck --trace-children=yes --track-origins=no --leak-check=no \\
    --read-var-info=no --num-callers=30 --fullpath-after= --suppressions={SUPPRESSIONS} \\
    --log-file={reports}/memcheck.%p {BINDIR}/postgres "$@"
""")
    os.chmod(wrapper, 0o755)
    return wrapper


def report_is_ours(block):
    """The innermost frame that is PostgreSQL's or pg_rproxy's decides whose error it is: libc and
    libstdc++ frames are skipped, C++ and Boost headers only exist in pg_rproxy.so."""
    ours = (os.path.join(ROOT, "src") + "/", "pg_rproxy.so", "/usr/include/boost/", "/usr/include/c++/")
    for line in block[1:]:
        if not line.lstrip().startswith(("at 0x", "by 0x")):
            break  # the first stack ends where "Address ..." or a blank line starts
        if any(o in line for o in ours):
            return True
        if "/bin/postgres)" in line or "/postgresql/15/lib/" in line:
            return False
    return False


def valgrind_findings(base):
    """Memcheck errors in pg_rproxy's code. PostgreSQL's own known reports (uninitialised padding
    it writes to files and sockets) are not ours to fix and would need its valgrind build."""
    d = os.path.join(base, "valgrind")
    if not os.path.isdir(d):
        return []
    found = []
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), errors="replace") as f:
            text = f.read()
        block = []  # one report per blank-line separated block, each line prefixed with ==pid==
        for line in text.splitlines() + [""]:
            body = line.split("== ", 1)[1] if "== " in line else ""
            if body.strip():
                block.append(body)
                continue
            if block and report_is_ours(block):
                found.append((name, "\n".join(block)))
            block = []
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("-k", help="run only tests whose name contains this")
    ap.add_argument("--modules", help="comma-separated test modules to run (default: all)")
    ap.add_argument("--exclude", default="", help="comma-separated substrings of test names to skip")
    ap.add_argument("--valgrind", action="store_true", help="run the gateway under valgrind memcheck")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if os.getuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(args.work, pw.pw_uid, pw.pw_gid)

    env = setup(args.work, valgrind=args.valgrind)
    modules = [__import__(m) for m in MODULES]
    chosen = set(args.modules.split(",")) if args.modules else set(MODULES)
    for m in modules:
        m.env = env
    passed = failed = 0
    try:
        for i, fn in enumerate(harness.TESTS, 1):
            if args.k and args.k not in fn.__name__ or fn.__module__ not in chosen:
                continue
            if any(x and x in fn.__name__ for x in args.exclude.split(",")):
                continue
            started = time.time()
            try:
                fn()
                passed += 1
                print(f"ok {i} - {fn.__name__} ({time.time() - started:.1f}s)", flush=True)
            except Exception:
                failed += 1
                print(f"not ok {i} - {fn.__name__} ({time.time() - started:.1f}s)", flush=True)
                for line in traceback.format_exc().splitlines():
                    print(f"#   {line}")
                for name, c in (("gateway", env.gw), ("upstream", env.up)):
                    tail = c.log_text().splitlines()[-8:]
                    print(f"#   --- {name} log tail ---")
                    for line in tail:
                        print(f"#   {line[:400]}{' ...' if len(line) > 400 else ''}")
    finally:
        env.gw.stop(mode="immediate", check=False)
        env.up.stop(mode="immediate", check=False)
    findings = valgrind_findings(args.work)
    for name, text in findings:
        print(f"# memcheck error in pg_rproxy ({name}):")
        for line in text.splitlines()[:60]:
            print(f"#   {line}")
    if args.valgrind:
        print(f"e2e under valgrind memcheck: {len(findings)} errors in pg_rproxy code")
    print(f"e2e: {passed} passed, {failed} failed")
    return 1 if failed or findings else 0


if __name__ == "__main__":
    sys.exit(main())
