#!/usr/bin/python3
"""Where a cache hit spends its time: the gateway runs under valgrind --tool=callgrind with one
worker. Each run warms the cache the same way, then serves hits of one statement for a while; a
run with no hit phase is subtracted, so what remains is the cost of the hits alone (callgrind's
runtime control, vgdb, cannot reach a worker blocked in epoll here). Prints instructions per hit
and, per hit, the calls of functions a hit must never reach (raw_parser) or should reach a fixed
number of times whatever the row count (malloc, operator new). Run: sudo bench/run.sh --profile
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "e2e"))
from cluster import BINDIR, Cluster, as_pg, free_port  # noqa: E402
from compare import chown_pg, wait_sql, write  # noqa: E402

HOT_KEYS = 100
STATEMENTS = {
    "1 row": "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;",
    "100 rows": "SELECT aid, abalance FROM pgbench_accounts WHERE aid BETWEEN :aid AND :aid + 99;",
}
WATCHED = {
    "raw_parser": re.compile(r"^raw_parser$"),
    "malloc": re.compile(r"^malloc$"),
    "operator new": re.compile(r"^operator new\("),
    "palloc": re.compile(r"^palloc$"),
    "LWLockAcquire": re.compile(r"^LWLockAcquire$"),
    "send/write syscalls": re.compile(r"^(send|sendmsg|write|__libc_write|__send)$"),
}


def parse_callgrind(path):
    """Total instructions, call counts by callee name and exclusive instructions by function name
    from one callgrind dump (name compression "(id) name" resolved)."""
    names = {}
    calls = collections.Counter()
    exclusive = collections.Counter()
    total = 0
    current = None
    pending_callee = None
    after_calls = False

    def name_of(token):
        m = re.match(r"\((\d+)\)(?: (.*))?", token)
        if not m:
            return token
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), "?")

    with open(path, errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if after_calls:  # the inclusive cost of the call just named, not this function's own
                    after_calls = False
                elif current and len(parts) >= 2 and parts[1].isdigit():
                    exclusive[current] += int(parts[1])
                continue
            if line.startswith("cfn="):
                pending_callee = name_of(line[4:].strip())
            elif line.startswith("fn="):
                current = name_of(line[3:].strip())
            elif line.startswith("calls=") and pending_callee:
                calls[pending_callee] += int(line[6:].split()[0])
                pending_callee = None
                after_calls = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = max(total, int(line.split()[1]))
    return total, calls, exclusive


class ProfiledGateway:
    def __init__(self, work, mode, misses=False, keep=None, hook=False, settings=()):
        self.work = work
        self.hook = hook
        self.settings = settings
        self.keep = keep
        self.mode = mode
        self.misses = misses
        self.keys = 100000 if misses else HOT_KEYS
        self.up = Cluster(work, "upstream")
        self.up.init()
        self.up.start()
        r = as_pg(["pgbench", "-q", "-i", "-s", "1", "-h", self.up.dir, "-p", str(self.up.port), "-U", "postgres",
                   "postgres"])
        assert r.returncode == 0, r.stderr
        self.gw = Cluster(work, "gateway")
        self.gw.init()
        self.out_dir = os.path.join(work, "callgrind")
        os.makedirs(self.out_dir)
        chown_pg(self.out_dir)
        wrapper = os.path.join(work, "postgres-under-callgrind")
        write(wrapper, f"""#!/bin/sh
exec valgrind --quiet --tool=callgrind --trace-children=yes \\
    --callgrind-out-file={self.out_dir}/callgrind.out.%p {BINDIR}/postgres "$@"
""", 0o755)
        self.gw.postgres_wrapper = wrapper
        self.proxy_port = free_port()
        env = dict(os.environ, UPSTREAM_HOST="127.0.0.1", UPSTREAM_PORT=str(self.up.port), UPSTREAM_USER="postgres",
                   UPSTREAM_DATABASE="postgres", LISTEN_HOST="127.0.0.1", LISTEN_PORT=str(self.proxy_port),
                   PROXY_WORKERS="1", POOL_SIZE="4", AUTH_METHOD="trust")
        r = subprocess.run([os.path.join(ROOT, "docker", "entrypoint.sh"), "write-config",
                            os.path.join(self.gw.data, "postgresql.conf")], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr

    def pgbench(self, statement, seconds=None, transactions=None):
        script = os.path.join(self.work, "hit.sql")
        write(script, f"\\set aid random(1, {self.keys})\n{statement}\n")
        limit = ["-t", str(transactions)] if transactions else ["-T", str(seconds)]
        r = as_pg(["pgbench", "-n", "-M", self.mode, "-c", "4", "-j", "1", *limit, "-f", script, "-h", "127.0.0.1",
                   "-p", str(self.proxy_port), "-U", "postgres", "postgres"], timeout=(seconds or 0) + 600)
        assert r.returncode == 0, r.stderr

    def run(self, hit_statement, seconds):
        """One gateway lifetime: warm-up, then hits for seconds. Returns (hits, Ir, calls)."""
        self.gw.start()
        try:
            self.gw.sql("ALTER SYSTEM RESET pg_rproxy.cache_enabled")
            self.gw.sql("SELECT pg_reload_conf()")
            self.gw.sql("CREATE EXTENSION IF NOT EXISTS pg_rproxy")
            if self.hook:  # the cheapest statement hook there is: every statement as it came
                self.gw.sql("CREATE OR REPLACE FUNCTION public.bench_hook(statement text, context jsonb) RETURNS text "
                            "LANGUAGE plpgsql AS 'BEGIN RETURN statement; END'")
                self.gw.sql("ALTER SYSTEM SET pg_rproxy.statement_hook = 'public.bench_hook'")
                self.gw.sql("SELECT pg_reload_conf()")
            for setting in self.settings:  # name=value: pg_rproxy.name
                name, _, value = setting.partition("=")
                self.gw.sql(f"ALTER SYSTEM SET pg_rproxy.{name} = '{value}'")
            if self.settings:
                self.gw.sql("SELECT pg_reload_conf()")
            wait_sql(self.proxy_port, what="pg_rproxy", seconds=180)
            (worker,) = [int(p) for p in self.gw.sql("SELECT pid FROM pg_rproxy_workers").split()]
            for statement in STATEMENTS.values():  # every key of both statements, then hits
                self.pgbench(statement, transactions=HOT_KEYS * 2)
            if self.misses:
                self.gw.sql("ALTER SYSTEM SET pg_rproxy.cache_enabled = off")
                self.gw.sql("SELECT pg_reload_conf()")
                time.sleep(1)
            if hit_statement:
                self.pgbench(hit_statement, seconds=seconds)
            hits = int(self.gw.sql("SELECT statements FROM pg_rproxy_workers" if self.misses
                                   else "SELECT hits FROM pg_rproxy_cache_stats"))
        finally:
            self.gw.stop(mode="fast", check=False)
        path = os.path.join(self.out_dir, f"callgrind.out.{worker}")
        for _ in range(100):  # written by the worker as it exits
            if os.path.exists(path) and os.path.getsize(path) > 0:
                break
            time.sleep(0.2)
        total, calls, exclusive = parse_callgrind(path)
        if self.keep:  # for callgrind_annotate --inclusive=yes / --tree=caller
            shutil.copy(path, os.path.join(self.keep, f"callgrind.out.{hit_statement and 'hits' or 'base'}.{worker}"))
        os.remove(path)
        return hits, total, calls, exclusive

    def stop(self):
        self.gw.stop(mode="immediate", check=False)
        self.up.stop(mode="immediate", check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--top", type=int, default=25, help="functions listed by exclusive cost")
    ap.add_argument("--mode", default="simple", choices=["simple", "extended", "prepared"], help="pgbench -M")
    ap.add_argument("--misses", action="store_true",
                    help="profile statements over 100,000 keys with the cache off (per statement, not per hit)")
    ap.add_argument("--keep", metavar="DIR", help="keep the callgrind output files in DIR")
    ap.add_argument("--hook", action="store_true",
                    help="with pg_rproxy.statement_hook set to a plpgsql function that returns its input")
    ap.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                    help="a pg_rproxy.NAME setting of the gateway (sighup ones), e.g. audit_log=audit.jsonl")
    args = ap.parse_args()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    work = tempfile.mkdtemp(prefix="pg_rproxy_profile.")
    os.chmod(work, 0o755)
    chown_pg(work)
    g = ProfiledGateway(work, args.mode, args.misses, args.keep, args.hook, args.setting)
    try:
        base_hits, base_ir, base_calls, base_excl = g.run(None, 0)
        rows = []
        top = {}
        for label, statement in STATEMENTS.items():
            hits, ir, calls, excl = g.run(statement, args.seconds)
            n = hits - base_hits
            top[label] = sorted(((v - base_excl.get(f, 0)) / max(n, 1), f) for f, v in excl.items())[::-1][:args.top]
            per = {name: sum(c - base_calls.get(f, 0) for f, c in calls.items() if rx.search(f)) / max(n, 1)
                   for name, rx in WATCHED.items()}
            rows.append((label, n, (ir - base_ir) / max(n, 1), per))
        print(f"callgrind, one pg_rproxy worker, pgbench -M {args.mode} -c 4, hot set of {HOT_KEYS} keys"
              f"{', statement hook on' if args.hook else ''}{''.join(', ' + x for x in args.setting)}; per hit = "
              f"(run with {args.seconds} s of hits - run without) / extra hits\n")
        print(f"{'statement':<10} {'hits':>7} {'instr/hit':>10} " + " ".join(f"{n:>14}" for n in WATCHED))
        for label, n, ir, per in rows:
            print(f"{label:<10} {n:>7} {ir:>10.0f} " + " ".join(f"{per[k]:>14.2f}" for k in WATCHED))
        print("\n(calls per hit; raw_parser must be 0, malloc/new must not grow with the row count)")
        for label, entries in top.items():
            print(f"\nwhere a {label} hit spends its instructions (exclusive, per hit):")
            for ir, f in entries:
                print(f"  {ir:>8.0f}  {f[:110]}")
    finally:
        g.stop()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
