"""Test registry and the shared environment of the end-to-end suite."""
import os
import subprocess
import time

from cluster import ROOT

TESTS = []
GATEWAY_PASSWORD = "e2e gateway pw"


def test(fn):
    TESTS.append(fn)
    return fn


def check(cond, message):
    if not cond:
        raise AssertionError(message)


class Env:
    """An upstream cluster with fixtures, and a gateway cluster running pg_rproxy in front of it."""

    def __init__(self, base, up, gw, proxy_port, proxy_env):
        self.base = base
        self.up = up
        self.gw = gw
        self.proxy_port = proxy_port
        self.proxy_env = proxy_env  # the UPSTREAM_*/LISTEN_* variables the gateway was configured from
        self.upstream_user = proxy_env["UPSTREAM_USER"]

    def psql(self, sql, direct=False, user=None, db="e2e", args=(), env=None, timeout=120):
        port = self.up.port if direct else self.proxy_port
        cmd = ["psql", "-X", "-h", "127.0.0.1", "-p", str(port), "-U", user or self.upstream_user, "-d", db,
               *args, "-c", sql]
        e = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", PAGER="")
        e.pop("PGOPTIONS", None)
        e.update(env or {})
        return subprocess.run(cmd, capture_output=True, timeout=timeout, env=e)

    def same_as_direct(self, sql, args=()):
        """psql through the proxy and direct: identical stdout, stderr and exit code."""
        via = self.psql(sql, args=args)
        direct = self.psql(sql, direct=True, args=args)
        check(via.returncode == direct.returncode,
              f"{sql!r}: exit {via.returncode} via proxy, {direct.returncode} direct; stderr {via.stderr[-500:]!r}")
        check(via.stdout == direct.stdout,
              f"{sql!r}: stdout differs\nproxy:  {via.stdout[:800]!r}\ndirect: {direct.stdout[:800]!r}")
        check(via.stderr == direct.stderr, f"{sql!r}: stderr differs\nproxy:  {via.stderr!r}\ndirect: {direct.stderr!r}")
        return via

    def wire(self, **startup):
        """A raw protocol client through the proxy, logged in as the upstream role."""
        from pgwire import Wire
        w = Wire(self.proxy_port)
        w.startup(user=self.upstream_user, **startup)
        return w

    def add_gateway_roles(self, gw):
        """The roles clients log in as through the proxy, with SCRAM secrets in the gateway."""
        gw.sql("SET password_encryption = 'scram-sha-256'; "
               f"CREATE ROLE {self.upstream_user} LOGIN PASSWORD '{GATEWAY_PASSWORD}'; "
               f"ALTER ROLE postgres PASSWORD '{GATEWAY_PASSWORD}'")

    def wait_proxy(self, seconds=30):
        deadline = time.time() + seconds
        last = None
        while time.time() < deadline:
            last = self.psql("select 1", timeout=10)
            if last.returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"proxy did not answer: {last.stderr if last else ''}")

    def worker_pids(self):
        return sorted(int(p) for p in self.gw.sql("SELECT pid FROM pg_rproxy_workers").split())

    def upstream_conns(self):
        return int(self.up.sql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{self.upstream_user}'"))

    def entrypoint(self, *args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([os.path.join(ROOT, "docker", "entrypoint.sh"), *args], capture_output=True,
                              text=True, env=e)
