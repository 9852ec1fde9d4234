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
from cluster import ROOT, Cluster, free_port  # noqa: E402

MODULES = ["test_queries", "test_robustness", "test_firewall", "test_cache", "test_extended", "test_tools", "test_bi_tools", "test_streaming", "test_auth", "test_tls_limits", "test_lifecycle"]


def setup(base):
    # Clients of the proxy authenticate as gateway roles (SCRAM); every tool reads $PGPASSWORD.
    os.environ["PGPASSWORD"] = harness.GATEWAY_PASSWORD
    up = Cluster(base, "upstream")
    up.init("log_statement = 'all'\n")
    up.start()
    up.sql("CREATE DATABASE e2e")
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", up.dir, "-p", str(up.port), "-U",
                        "postgres", "-d", "e2e", "-f", os.path.join(os.path.dirname(__file__), "fixtures.sql")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    gw = Cluster(base, "gateway")
    gw.init()
    proxy_port = free_port()
    proxy_env = {
        # a host name, so the upstream address is resolved off the event loop
        "UPSTREAM_HOST": "localhost",
        "UPSTREAM_PORT": str(up.port),
        "UPSTREAM_USER": "rproxy_up",
        "UPSTREAM_PASSWORD": "unused p'ss\\word",  # trust auth upstream; exercises quoting
        "UPSTREAM_DATABASE": "e2e",
        "LISTEN_HOST": "127.0.0.1",
        "LISTEN_PORT": str(proxy_port),
        "POOL_SIZE": "2",
    }
    env = harness.Env(base, up, gw, proxy_port, proxy_env)
    r = env.entrypoint("write-config", os.path.join(gw.data, "postgresql.conf"), env=proxy_env)
    assert r.returncode == 0, r.stderr
    gw.start()
    gw.sql("CREATE EXTENSION pg_rproxy")
    env.add_gateway_roles(gw)
    env.wait_proxy()
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("-k", help="run only tests whose name contains this")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if os.getuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(args.work, pw.pw_uid, pw.pw_gid)

    env = setup(args.work)
    modules = [__import__(m) for m in MODULES]
    for m in modules:
        m.env = env
    passed = failed = 0
    try:
        for i, fn in enumerate(harness.TESTS, 1):
            if args.k and args.k not in fn.__name__:
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
                        print(f"#   {line}")
    finally:
        env.gw.stop(mode="immediate", check=False)
        env.up.stop(mode="immediate", check=False)
    print(f"e2e: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
