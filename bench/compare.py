#!/usr/bin/python3
"""pg_rproxy against what users would otherwise pick, on this machine, in one run.

Starts on free ports in a temporary directory: an upstream PostgreSQL (pgbench scale 10), a
pg_rproxy gateway, PgBouncer twice with the same number of upstream connections (transaction
pooling, and session pooling, which is what runs -M prepared on PgBouncer 1.18), the same
gateway on two more ports that pg_rproxy_routes sends to a table upstream (pg_rproxy_routed) and
to an upstream of two servers (pg_rproxy_pair: the same cluster by two addresses, round robin),
Pgpool-II (in-memory query cache on shared memory) and bench/canned_server (one canned row from
memory: the ceiling of any proxy). For the Redis level, a redis-server and a second gateway
(pg_rproxy_l2) whose shared-memory cache is too small for the hot set, so that its hits come from
Redis; it runs the hot set only, and the report adds its lookup counters and what one Redis round
trip costs on this machine. Runs pgbench against each, alternating targets within every
repetition, for a hot set (1,000 keys: cache hits) and select-only over all keys (misses), each with
-M simple, extended and prepared; and pgbench's TPC-B (-M simple and prepared) through a read_write
upstream on a fourth port (pg_rproxy_rw, transaction pooling), PgBouncer and PostgreSQL. Then measures the gateway workers' memory with 10,000 idle
clients. Prints a table, writes results.json and results.png (gnuplot) to the output directory.

Run through bench/run.sh, which installs and builds what this needs.
"""
import argparse
import asyncio
import json
import os
import pwd
import re
import resource
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "e2e"))
from cluster import BINDIR, Cluster, as_pg, free_port  # noqa: E402

SCALE = 10
ACCOUNTS = 100000 * SCALE
HOT_KEYS = 1000
MODES = ["simple", "extended", "prepared"]
# tpcb: pgbench's built-in TPC-B (tpcb-like), writes, through a read_write upstream (pg_rproxy_rw).
WORKLOADS = {"hot": HOT_KEYS, "select_only": ACCOUNTS, "tpcb": None}
TARGETS = ["limit", "pg_rproxy", "pg_rproxy_l2", "pg_rproxy_routed", "pg_rproxy_pair", "pg_rproxy_rw", "pgbouncer",
           "pgbouncer_session", "pgpool", "direct"]
# Which targets run which workloads: the read-only ones cannot write; the read-write one only writes.
WRITERS = {"pg_rproxy_rw", "pgbouncer", "pgbouncer_session", "direct"}
WORKLOAD_MODES = {"hot": MODES, "select_only": MODES, "tpcb": ["simple", "prepared"]}


# pg_rproxy_l2 is there for its hits: the hot set only.
L2_WORKLOADS = {"hot"}


def runs_on(workload, target):
    if workload == "tpcb":
        return target in WRITERS
    if target == "pg_rproxy_l2":
        return workload in L2_WORKLOADS
    return target != "pg_rproxy_rw"
PGBOUNCERS = {"pgbouncer": "transaction", "pgbouncer_session": "session"}
UPSTREAM_CONNECTIONS = 8  # pg_rproxy: 2 workers x pool_size 4; PgBouncer: default_pool_size 8
GATEWAY_WORKERS = 2
# pg_rproxy_l2's shared memory: the smallest the settings allow (16 entries, 64 kB), far below the
# 1,000 hot keys, so nearly every lookup goes on to Redis. Both are postmaster settings.
L2_GATEWAY_ENV = {"MAX_CACHE_ENTRIES": "16", "CACHE_SIZE": "64kB"}
# What pg_rproxy_cache_stats counts of a measured run on pg_rproxy_l2: where its answers came from.
L2_COUNTERS = ("hits", "misses", "l2_hits", "l2_misses", "l2_errors", "l2_corrupt", "l2_stores", "l2_waits",
               "l2_bytes_read")


def chown_pg(path):
    if os.getuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    chown_pg(path)


class Background:
    """A server process run as postgres, stopped at the end."""

    def __init__(self, name, cmd, log):
        self.name = name
        prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        self.log = open(log, "w")
        self.proc = subprocess.Popen(prefix + cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def wait_port(port, seconds=30, what=""):
    import socket
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {port}")


def wait_sql(port, user="postgres", db="postgres", seconds=60, what=""):
    deadline = time.time() + seconds
    while time.time() < deadline:
        r = subprocess.run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db,
                            "-c", "SELECT 1"], capture_output=True, text=True)
        if r.returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} on {port} does not answer: {r.stderr}")


class Bench:
    def __init__(self, work, out, gateway_settings=()):
        self.gateway_settings = list(gateway_settings)
        self.work = work
        self.out = out
        self.procs = []
        self.clusters = []
        self.pgbouncer_ports = {}

    # --- the targets -------------------------------------------------------------------------
    def start_upstream(self):
        up = Cluster(self.work, "upstream")
        up.init("shared_buffers = 512MB\nmax_connections = 300\nsynchronous_commit = off\n")
        up.start()
        self.clusters.append(up)
        r = as_pg(["pgbench", "-q", "-i", "-s", str(SCALE), "-h", up.dir, "-p", str(up.port), "-U", "postgres",
                   "postgres"])
        assert r.returncode == 0, r.stderr
        as_pg(["psql", "-X", "-q", "-h", up.dir, "-p", str(up.port), "-U", "postgres", "-d", "postgres", "-c",
               "VACUUM ANALYZE"])
        self.up = up

    def new_gateway(self, name, ports, **settings):
        """A started gateway cluster with the extension, configured as the container would be from
        the environment; settings override the benchmark's variables."""
        gw = Cluster(self.work, name)
        gw.init()
        self.clusters.append(gw)
        env = dict(os.environ, UPSTREAM_HOST="127.0.0.1", UPSTREAM_PORT=str(self.up.port), UPSTREAM_USER="postgres",
                   UPSTREAM_DATABASE="postgres", LISTEN_HOST="127.0.0.1", LISTEN_PORT=",".join(map(str, ports)),
                   PROXY_WORKERS=str(GATEWAY_WORKERS), POOL_SIZE=str(UPSTREAM_CONNECTIONS // GATEWAY_WORKERS),
                   AUTH_METHOD="trust", MAX_CLIENT_CONNECTIONS="20000", MAX_CACHE_ENTRIES="20000")
        env.update(settings)
        r = subprocess.run([os.path.join(ROOT, "docker", "entrypoint.sh"), "write-config",
                            os.path.join(gw.data, "postgresql.conf")], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        gw.append_conf("pg_rproxy.session_table_size = 20000\n" + "".join(f"{x}\n" for x in self.gateway_settings))
        gw.start()
        gw.sql("CREATE EXTENSION pg_rproxy")
        return gw

    def start_gateway(self):
        self.proxy_port, self.routed_port, self.pair_port, self.rw_port = free_port(), free_port(), free_port(), free_port()
        gw = self.new_gateway("gateway", [self.proxy_port, self.routed_port, self.pair_port, self.rw_port])
        # The routed cases: the same pool size per server, so only routing and balancing differ.
        up = f"port={self.up.port} user=postgres dbname=postgres"
        gw.sql(f"INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('routed', 'host=127.0.0.1 {up}'), "
               f"('pair', 'host=127.0.0.1,localhost port={self.up.port},{self.up.port} user=postgres dbname=postgres "
               f"hostaddr=127.0.0.1,127.0.0.1')")
        gw.sql(f"UPDATE pg_rproxy_upstreams SET pool_size = {UPSTREAM_CONNECTIONS // 4} WHERE name = 'pair'")
        # Writes: transaction pooling over the same number of upstream connections as PgBouncer's.
        gw.sql(f"INSERT INTO pg_rproxy_upstreams (name, conninfo, access) VALUES ('rw', 'host=127.0.0.1 {up}', 'read_write')")
        gw.sql(f"INSERT INTO pg_rproxy_routes (position, listen_port, upstream) VALUES "
               f"(1, {self.routed_port}, 'routed'), (2, {self.pair_port}, 'pair'), (3, {self.rw_port}, 'rw')")
        wait_sql(self.proxy_port, what="pg_rproxy")
        self.gw = gw

    def start_redis(self):
        d = os.path.join(self.work, "redis")
        os.makedirs(d, exist_ok=True)
        chown_pg(d)
        self.redis_port = free_port()
        # No persistence: a dump or an fsync during a run would be measured as the cache's cost.
        self.procs.append(Background("redis", ["redis-server", "--save", "", "--appendonly", "no",
                                               "--bind", "127.0.0.1", "--port", str(self.redis_port), "--dir", d],
                                     os.path.join(d, "redis.log")))
        wait_port(self.redis_port, what="redis-server")

    def redis_cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.redis_port), *args], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def start_gateway_l2(self):
        self.l2_port = free_port()
        self.gw_l2 = self.new_gateway("gateway_l2", [self.l2_port], REDIS_URL=f"redis://127.0.0.1:{self.redis_port}",
                                      **L2_GATEWAY_ENV)
        wait_sql(self.l2_port, what="pg_rproxy_l2")
        # Each worker connects to Redis on its own, after the gateway answers: a warm-up before
        # then would leave Redis cold for that worker's share of the keys.
        deadline = time.time() + 30
        while self.redis_clients() < GATEWAY_WORKERS:
            if time.time() > deadline:
                raise RuntimeError(f"pg_rproxy_l2's workers did not connect to Redis: {self.gw_l2.log}")
            time.sleep(0.2)

    def redis_clients(self):
        """Connections to redis-server other than the redis-cli asking."""
        info = self.redis_cli("INFO", "clients")
        return int(re.search(r"connected_clients:(\d+)", info).group(1)) - 1

    def start_pgbouncer(self, name):
        d = os.path.join(self.work, name)
        os.makedirs(d, exist_ok=True)
        chown_pg(d)
        port = self.pgbouncer_ports[name] = free_port()
        write(os.path.join(d, "userlist.txt"), '"postgres" ""\n')
        write(os.path.join(d, "pgbouncer.ini"), f"""[databases]
postgres = host=127.0.0.1 port={self.up.port} dbname=postgres user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir = {d}
auth_type = trust
auth_file = {d}/userlist.txt
pool_mode = {PGBOUNCERS[name]}
default_pool_size = {UPSTREAM_CONNECTIONS}
max_client_conn = 20000
pidfile = {d}/pgbouncer.pid
logfile = {d}/pgbouncer.log
""")
        # room for the idle-client measurement (runuser leaves the soft limit at 1024)
        self.procs.append(Background(name, ["sh", "-c", f"ulimit -n 20000 && exec pgbouncer {d}/pgbouncer.ini"],
                                     os.path.join(d, "stdout.log")))
        wait_sql(port, what=f"PgBouncer ({PGBOUNCERS[name]} pooling)")

    def start_pgpool(self):
        d = os.path.join(self.work, "pgpool")
        os.makedirs(os.path.join(d, "oiddir"), exist_ok=True)
        for p in (d, os.path.join(d, "oiddir")):
            chown_pg(p)
        self.pgpool_port = free_port()
        write(os.path.join(d, "pgpool.conf"), f"""backend_clustering_mode = 'raw'
listen_addresses = '127.0.0.1'
port = {self.pgpool_port}
unix_socket_directories = '{d}'
pcp_listen_addresses = ''
pcp_port = {free_port()}
pcp_socket_dir = '{d}'
backend_hostname0 = '127.0.0.1'
backend_port0 = {self.up.port}
backend_weight0 = 1
backend_flag0 = 'DISALLOW_TO_FAILOVER'
enable_pool_hba = off
pool_passwd = ''
num_init_children = 32
max_pool = 1
connection_cache = on
load_balance_mode = off
health_check_period = 0
sr_check_period = 0
failover_on_backend_error = off
memory_cache_enabled = on
memqcache_method = 'shmem'
memqcache_total_size = 256MB
memqcache_max_num_cache = 100000
memqcache_expire = 0
memqcache_oiddir = '{d}/oiddir'
pid_file_name = '{d}/pgpool.pid'
logdir = '{d}'
log_min_messages = warning
""")
        write(os.path.join(d, "pcp.conf"), "")
        self.procs.append(Background("pgpool", ["pgpool", "-n", "-f", os.path.join(d, "pgpool.conf"), "-F",
                                                os.path.join(d, "pcp.conf")], os.path.join(d, "pgpool.log")))
        wait_sql(self.pgpool_port, what="Pgpool-II")

    def start_limit(self):
        self.limit_port = free_port()
        binary = os.path.join(self.work, "canned_server")
        r = subprocess.run(["g++", "-O2", "-std=c++20", "-o", binary, os.path.join(HERE, "canned_server.cpp"),
                            "-lpthread"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        self.procs.append(Background("limit", [binary, str(self.limit_port), "2"],
                                     os.path.join(self.work, "canned_server.log")))
        wait_port(self.limit_port, what="canned server")

    def port(self, target):
        if target in PGBOUNCERS:
            return self.pgbouncer_ports[target]
        return {"limit": getattr(self, "limit_port", None), "pg_rproxy": self.proxy_port,
                "pg_rproxy_l2": getattr(self, "l2_port", None), "pg_rproxy_routed": self.routed_port,
                "pg_rproxy_pair": self.pair_port, "pg_rproxy_rw": self.rw_port,
                "pgpool": getattr(self, "pgpool_port", None), "direct": self.up.port}[target]

    def stop(self):
        for p in self.procs:
            p.stop()
        for c in self.clusters:
            c.stop(mode="immediate", check=False)

    # --- pgbench -----------------------------------------------------------------------------
    def script(self, keys):
        path = os.path.join(self.work, f"select_{keys}.sql")
        write(path, f"\\set aid random(1, {keys})\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n")
        return path

    def pgbench(self, target, workload, mode, seconds, clients, threads):
        logdir = tempfile.mkdtemp(dir=self.work)
        chown_pg(logdir)
        script = ["-b", "tpcb-like"] if workload == "tpcb" else ["-f", self.script(WORKLOADS[workload])]
        cmd = ["pgbench", "-n", "-M", mode, "-c", str(clients), "-j", str(threads), "-T", str(seconds),
               *script, "-l", "--sampling-rate", "0.2",
               "--log-prefix", os.path.join(logdir, "tx"), "-h", "127.0.0.1", "-p", str(self.port(target)),
               "-U", "postgres", "postgres"]
        r = as_pg(cmd, timeout=seconds + 120)
        tps = re.search(r"tps = ([\d.]+) \(without initial", r.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
        latencies = []
        for name in os.listdir(logdir):
            with open(os.path.join(logdir, name)) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[2].isdigit():
                        latencies.append(int(parts[2]))
        shutil.rmtree(logdir, ignore_errors=True)
        result = {"tps": float(tps.group(1)) if tps and r.returncode == 0 else 0.0,
                  "errors": r.returncode != 0 or (failed is not None and int(failed.group(1)) > 0)}
        if latencies:
            latencies.sort()
            result["latency_avg_ms"] = statistics.fmean(latencies) / 1000
            result["latency_p99_ms"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1000
        if result["errors"]:
            result["error_text"] = (r.stderr.strip().splitlines() or ["?"])[-1][:300]
        return result

    # --- the Redis level ----------------------------------------------------------------------
    def warm_script(self):
        # Each key once, in order: pgbench keeps a client's variables from one transaction to the next.
        path = os.path.join(self.work, "warm.sql")
        write(path, "\\set aid :aid + 1\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n")
        return path

    def warm_l2(self, workload, mode):
        """One pass over the workload's keys through pg_rproxy_l2, in the mode measured next (the
        modes' cache keys may differ): after it Redis holds every key, shared memory the last 16."""
        r = as_pg(["pgbench", "-n", "-M", mode, "-c", "1", "-t", str(WORKLOADS[workload]), "-D", "aid=0",
                   "-f", self.warm_script(), "-h", "127.0.0.1", "-p", str(self.l2_port), "-U", "postgres",
                   "postgres"], timeout=300)
        assert r.returncode == 0, r.stderr

    def l2_counters(self):
        values = self.gw_l2.sql(f"SELECT {', '.join(L2_COUNTERS)} FROM pg_rproxy_cache_stats").split("|")
        return dict(zip(L2_COUNTERS, map(int, values)))

    def pgbench_l2(self, target, workload, mode, seconds, clients, threads):
        """pgbench on pg_rproxy_l2 after a warm-up, with what the gateway counted during the
        measured run alone: the reader sees whether the hits came from Redis."""
        self.warm_l2(workload, mode)
        before = self.l2_counters()
        result = self.pgbench(target, workload, mode, seconds, clients, threads)
        after = self.l2_counters()
        result["counters"] = {k: after[k] - before[k] for k in L2_COUNTERS}
        return result

    def redis_round_trip(self):
        """What one Redis round trip costs here, measured with the machine otherwise idle: GETs
        from one client back to back (redis-benchmark), and PINGs every 10 ms (redis-cli --latency:
        each PING timed in whole milliseconds, so only the mean of a few hundred means anything,
        roughly; but it sees a Redis that was asleep, as a gateway's lookup after a pause may)."""
        out = {}
        r = subprocess.run(["redis-benchmark", "-p", str(self.redis_port), "-t", "get", "-n", "100000", "-c", "1",
                            "--csv"], capture_output=True, text=True, timeout=300)
        row = dict(zip(*[line.replace('"', "").split(",") for line in r.stdout.strip().splitlines()[-2:]]))
        if "rps" in row:
            out["benchmark_rps"] = float(row["rps"])
            out["benchmark_us_per_get"] = 1e6 / float(row["rps"])
            out["benchmark_avg_us"] = float(row["avg_latency_ms"]) * 1000
            out["benchmark_p50_us"] = float(row["p50_latency_ms"]) * 1000
            out["benchmark_p99_us"] = float(row["p99_latency_ms"]) * 1000
        # --raw: one line after the interval, "min max avg samples" in ms
        r = subprocess.run(["redis-cli", "-p", str(self.redis_port), "--latency", "--raw", "-i", "3"],
                           capture_output=True, text=True, timeout=60)
        fields = r.stdout.split()
        if len(fields) == 4:
            out["cli_avg_us"] = float(fields[2]) * 1000
            out["cli_max_us"] = float(fields[1]) * 1000
            out["cli_samples"] = int(fields[3])
        return out

    def redis_commands(self):
        """What the gateway asked of Redis, by command: calls and the server's µs per call (a
        lookup is one script call, evalsha, whose GETs Redis counts too; its time inside Redis is
        part of every Redis hit)."""
        stats = {}
        for name, fields in re.findall(r"^cmdstat_(\w+):(\S+)", self.redis_cli("INFO", "commandstats"), re.M):
            values = dict(f.split("=") for f in fields.split(","))
            stats[name] = {"calls": int(values["calls"]), "usec_per_call": float(values["usec_per_call"])}
        return stats

    def log_problems(self, cluster, keep=5):
        """The gateway log's warnings and errors: how many, and the first few."""
        lines = [line for line in cluster.log_text().splitlines()
                 if re.search(r"\b(WARNING|ERROR|FATAL|PANIC):", line)]
        return {"count": len(lines), "first": lines[:keep]}

    # --- memory with idle clients -------------------------------------------------------------
    def worker_pids(self):
        out = self.gw.sql("SELECT pid FROM pg_rproxy_workers ORDER BY worker")
        return [int(p) for p in out.split()]

    @staticmethod
    def private_kib(pid):
        """Private (not shared-memory) resident KiB of a process."""
        with open(f"/proc/{pid}/smaps_rollup") as f:
            fields = dict(re.findall(r"^(\w+):\s+(\d+) kB", f.read(), re.M))
        return int(fields["Private_Clean"]) + int(fields["Private_Dirty"]), int(fields["Rss"])

    def pgbouncer_pid(self, name):
        with open(os.path.join(self.work, name, "pgbouncer.pid")) as f:
            return int(f.read().split()[0])

    def idle_clients_memory(self, count):
        """Worker memory per idle client, and PgBouncer's with as many, in the same run."""
        seen = lambda: int(self.gw.sql("SELECT sum(clients) FROM pg_rproxy_workers"))  # noqa: E731
        out = {"pg_rproxy": self.idle_memory_of(count, self.proxy_port, self.worker_pids(), seen)}
        for name in PGBOUNCERS:
            if name in self.pgbouncer_ports:
                out["pgbouncer"] = self.idle_memory_of(count, self.pgbouncer_ports[name], [self.pgbouncer_pid(name)])
                break
        return out

    def idle_memory_of(self, count, port, pids, seen=None):
        """Private and resident memory the processes pids gained per client while count clients
        sit idle on port; seen(), if given, counts the clients the server itself sees then."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        before = {p: self.private_kib(p) for p in pids}

        async def connect_all():
            startup = b"user\0postgres\0database\0postgres\0\0"
            packet = struct.pack("!II", len(startup) + 8, 196608) + startup
            sem = asyncio.Semaphore(200)
            conns = []

            async def one():
                async with sem:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(packet)
                    buf = b""
                    while not buf.endswith(b"Z\x00\x00\x00\x05I"):
                        chunk = await reader.read(4096)
                        if not chunk:
                            raise RuntimeError(f"closed during startup: {buf[-200:]!r}")
                        buf += chunk
                    conns.append(writer)

            await asyncio.gather(*(one() for _ in range(count)))
            return conns

        loop = asyncio.new_event_loop()
        conns = loop.run_until_complete(connect_all())
        time.sleep(2)
        after = {p: self.private_kib(p) for p in pids}
        counted = seen() if seen else None
        for w in conns:
            w.close()
        loop.run_until_complete(asyncio.sleep(0.5))
        loop.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        private = sum(after[p][0] - before[p][0] for p in pids)
        rss = sum(after[p][1] - before[p][1] for p in pids)
        return {"clients": count, "clients_seen": counted, "processes": len(pids),
                "private_kib_total": private, "rss_kib_total": rss,
                "private_kib_per_client": private / count, "rss_kib_per_client": rss / count}


def summarise(runs):
    """Median over repetitions per (workload, mode, target)."""
    table = {}
    for key, results in runs.items():
        ok = [r for r in results if not r["errors"]]
        pick = ok or results
        entry = {"tps": statistics.median(r["tps"] for r in pick), "runs": len(results),
                 "failed_runs": len(results) - len(ok)}
        for field in ("latency_avg_ms", "latency_p99_ms"):
            vals = [r[field] for r in pick if field in r]
            if vals:
                entry[field] = statistics.median(vals)
        counted = [r["counters"] for r in pick if "counters" in r]
        if counted:
            entry["counters"] = {k: sum(c[k] for c in counted) for k in counted[0]}
        errs = [r["error_text"] for r in results if "error_text" in r]
        if errs:
            entry["error"] = errs[0]
        table[key] = entry
    return table


def ratio(a, b):
    return round(a / b, 2) if b else None


def l2_report(table, redis):
    """Lines on the Redis level: pg_rproxy_l2's hits beside shared-memory hits and misses, where its
    answers came from, and what one Redis round trip costs."""
    lines = ["", "the Redis level (pg_rproxy_l2: 16 entries in shared memory, the hot set in Redis)"]
    for mode in MODES:
        e = table[f"hot/{mode}/pg_rproxy_l2"]
        if e.get("error") == "not run":
            continue
        shm, miss = table[f"hot/{mode}/pg_rproxy"]["tps"], table[f"select_only/{mode}/pg_rproxy"]["tps"]
        c = e.get("counters", {})
        lookups = c.get("hits", 0) + c.get("misses", 0)
        beside = [f"{ratio(e['tps'], tps)} x {what} ({tps:.0f})"
                  for what, tps in (("shared-memory hits", shm), ("misses", miss)) if tps]
        lines.append(f"  hot {mode:<9} {e['tps']:>7.0f} tps from Redis" + (": " + ", ".join(beside) if beside else "")
                     + f"; of {lookups} lookups: "
                     f"{c.get('hits', 0)} shared memory, {c.get('l2_hits', 0)} l2_hits, "
                     f"{c.get('l2_misses', 0)} l2_misses, {c.get('l2_errors', 0)} l2_errors")
    if redis:
        trip = redis.get("round_trip", {})
        if "benchmark_rps" in trip:
            lines.append(f"  Redis round trip: GETs back to back from one client (redis-benchmark -c 1): p50 "
                         f"{trip['benchmark_p50_us']:.0f} us, mean {trip['benchmark_us_per_get']:.1f} us "
                         f"({trip['benchmark_rps']:.0f}/s), p99 {trip['benchmark_p99_us']:.0f} us"
                         + (f"; {trip['cli_avg_us']:.0f} us per PING every 10 ms (redis-cli --latency, mean of "
                            f"{trip['cli_samples']} whole-ms samples: rough)" if "cli_avg_us" in trip else ""))
        commands = sorted(redis.get("commands", {}).items(), key=lambda kv: -kv[1]["calls"])
        lines.append("  Redis commands from pg_rproxy_l2, warm-ups and a script's own GETs included (calls x server us): "
                     + ", ".join(f"{k} {v['calls']} x {v['usec_per_call']:.1f}" for k, v in commands[:4]))
        log = redis.get("gateway_log", {})
        lines.append(f"  pg_rproxy_l2's log: {log.get('count', 0)} warnings or errors"
                     + "".join(f"\n    {x}" for x in log.get("first", [])))
    return lines


def report(table, memory, meta, redis=None):
    lines = [f"pgbench {meta['clients']} clients, {meta['threads']} threads, {meta['seconds']} s x "
             f"{meta['repetitions']} repetitions (median); scale {SCALE}; {meta['machine']}", ""]
    header = f"{'workload':<12} {'mode':<9} " + " ".join(f"{t:>19}" for t in TARGETS)
    lines.append(header + "   (tps / avg ms / p99 ms)")
    ratios = {}
    for workload in WORKLOADS:
        for mode in WORKLOAD_MODES[workload]:
            cells = []
            for t in TARGETS:
                e = table[f"{workload}/{mode}/{t}"]
                if e.get("error") == "not run" or not runs_on(workload, t):
                    cells.append(f"{'-':>19}")
                elif e["failed_runs"] == e["runs"]:
                    cells.append(f"{'errors':>19}")
                else:
                    cells.append(f"{e['tps']:>7.0f}/{e.get('latency_avg_ms', 0):.2f}/{e.get('latency_p99_ms', 0):.2f}"
                                 .rjust(19))
            lines.append(f"{workload:<12} {mode:<9} " + " ".join(cells))
            mine = "pg_rproxy_rw" if workload == "tpcb" else "pg_rproxy"
            me = table[f"{workload}/{mode}/{mine}"]["tps"]
            ratios[f"{workload}/{mode}"] = {
                f"{mine}/{t}": ratio(me, table[f"{workload}/{mode}/{t}"]["tps"])
                for t in TARGETS if t != mine and runs_on(workload, t) and t != "pg_rproxy_l2"}
    lines += ["", "ratios (tps)"]
    for key, r in ratios.items():
        lines.append(f"  {key:<22} " + "  ".join(f"{k}={v}" for k, v in r.items()))
    # The goals of issue 14. Misses are compared with the better PgBouncer that ran without errors
    # (transaction pooling aborts -M prepared on PgBouncer 1.18; session pooling runs every mode).
    def ran(key):
        e = table[key]
        return e["tps"] if e["failed_runs"] < e["runs"] and e.get("error") != "not run" else 0.0

    targets = []
    for mode in WORKLOAD_MODES["tpcb"]:
        if table[f"tpcb/{mode}/pg_rproxy_rw"].get("error") == "not run":
            continue
        # Issue 16: writes through pg_rproxy at least as fast as through PgBouncer with transaction
        # pooling (which aborts -M prepared in 1.18: then the best PgBouncer that ran), p99 beside.
        name = "pgbouncer" if ran(f"tpcb/{mode}/pgbouncer") else "pgbouncer_session"
        got = ratio(table[f"tpcb/{mode}/pg_rproxy_rw"]["tps"], ran(f"tpcb/{mode}/{name}"))
        targets.append((f"tpcb {mode}: pg_rproxy_rw >= 1.0 x {name}", got is not None and got >= 1.0, got))
        mine, bouncer = table[f"tpcb/{mode}/pg_rproxy_rw"], table[f"tpcb/{mode}/{name}"]
        if "latency_p99_ms" in mine and "latency_p99_ms" in bouncer:
            lines.append(f"tpcb {mode} p99: pg_rproxy_rw {mine['latency_p99_ms']:.2f} ms, {name} "
                         f"{bouncer['latency_p99_ms']:.2f} ms")
    for mode in MODES:
        got = ratios[f"hot/{mode}"]["pg_rproxy/limit"]
        targets.append((f"hot {mode}: pg_rproxy >= 0.9 x limit", got is not None and got >= 0.9, got))
        mine, limit = table[f"hot/{mode}/pg_rproxy"], table[f"hot/{mode}/limit"]
        if "latency_p99_ms" in mine and "latency_p99_ms" in limit:
            got = ratio(mine["latency_p99_ms"], limit["latency_p99_ms"])
            targets.append((f"hot {mode}: p99 <= 1.3 x limit's", got is not None and got <= 1.3, got))
        bouncer = max(ran(f"select_only/{mode}/{b}") for b in PGBOUNCERS)
        got = ratio(table[f"select_only/{mode}/pg_rproxy"]["tps"], bouncer)
        targets.append((f"select_only {mode}: pg_rproxy >= 1.2 x best PgBouncer", got is not None and got >= 1.2, got))
        got = ratios[f"select_only/{mode}"]["pg_rproxy/direct"]
        targets.append((f"select_only {mode}: pg_rproxy >= 0.6 x direct", got is not None and got >= 0.6, got))
        for workload in ("hot", "select_only"):
            got = ratio(table[f"{workload}/{mode}/pg_rproxy_routed"]["tps"], table[f"{workload}/{mode}/pg_rproxy"]["tps"])
            targets.append((f"{workload} {mode}: routed >= 0.95 x single upstream", got is not None and got >= 0.95, got))
    if memory:
        mine = memory["pg_rproxy"]
        lines += ["", f"memory with {mine['clients']} idle clients ({mine['clients_seen']} counted by the workers): "
                      f"pg_rproxy {mine['private_kib_per_client']:.1f} KiB private, {mine['rss_kib_per_client']:.1f} KiB "
                      f"RSS per client over {mine['processes']} workers"]
        bouncer = memory.get("pgbouncer")
        if bouncer:
            lines.append(f"  PgBouncer {bouncer['private_kib_per_client']:.1f} KiB private, "
                         f"{bouncer['rss_kib_per_client']:.1f} KiB RSS per client")
            per, theirs = mine["private_kib_per_client"], bouncer["private_kib_per_client"]
            targets.append(("idle client: pg_rproxy's memory <= PgBouncer's", per <= theirs,
                            f"{per:.1f} vs {theirs:.1f} KiB"))
    if redis is not None:
        lines += l2_report(table, redis)
    lines += ["", "targets"]
    for name, met, value in targets:
        lines.append(f"  [{'met' if met else 'MISSED'}] {name} (measured {value})")
    return "\n".join(lines), ratios, targets


def chart(table, out):
    data = os.path.join(out, "results.dat")
    with open(data, "w") as f:
        f.write("case " + " ".join(TARGETS) + "\n")
        for workload in WORKLOADS:
            for mode in WORKLOAD_MODES[workload]:
                f.write(f"{workload}/{mode} " + " ".join(f"{table[f'{workload}/{mode}/{t}']['tps']:.0f}"
                                                        for t in TARGETS) + "\n")
    png = os.path.join(out, "results.png")
    plot = f"""set terminal pngcairo size 1100,560 noenhanced
set output '{png}'
set title 'pgbench tps by target (higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top right
set ylabel 'transactions per second'
set xtics rotate by -20
set grid ytics
plot for [i=2:{len(TARGETS) + 1}] '{data}' using i:xtic(1) title columnheader(i)
"""
    r = subprocess.run(["gnuplot"], input=plot, capture_output=True, text=True)
    if r.returncode != 0:
        # pngcairo may be missing from gnuplot-nox builds: the plain png terminal always exists
        r = subprocess.run(["gnuplot"], input=plot.replace("pngcairo", "png"), capture_output=True, text=True)
    os.remove(data)
    return png if r.returncode == 0 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--idle-clients", type=int, default=10000)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--only", help="comma-separated targets (default: all)")
    ap.add_argument("--workloads", help="comma-separated workloads (default: hot,select_only,tpcb)")
    ap.add_argument("--modes", help="comma-separated -M modes (default: simple,extended,prepared)")
    ap.add_argument("--gateway-setting", action="append", default=[],
                    help="extra postgresql.conf line for the gateway, e.g. \"pg_rproxy.cache_enabled = off\"")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="pg_rproxy_bench.")
    os.chmod(work, 0o755)
    chown_pg(work)
    targets = args.only.split(",") if args.only else TARGETS
    workloads = args.workloads.split(",") if args.workloads else list(WORKLOADS)
    modes = args.modes.split(",") if args.modes else MODES
    bench = Bench(work, args.out, args.gateway_setting)
    started = time.time()
    try:
        bench.start_upstream()
        bench.start_gateway()
        if "pg_rproxy_l2" in targets:
            bench.start_redis()
            bench.start_gateway_l2()
        for name in PGBOUNCERS:
            if name in targets:
                bench.start_pgbouncer(name)
        if "pgpool" in targets:
            bench.start_pgpool()
        if "limit" in targets:
            bench.start_limit()
        runs = {f"{w}/{m}/{t}": [] for w in WORKLOADS for m in MODES for t in TARGETS}
        for rep in range(args.repetitions):
            for workload in workloads:
                for mode in modes:
                    if mode not in WORKLOAD_MODES[workload]:
                        continue
                    # alternate the order so no target always runs right after the same neighbour
                    order = targets if rep % 2 == 0 else list(reversed(targets))
                    for t in order:
                        if not runs_on(workload, t):
                            continue
                        run = bench.pgbench_l2 if t == "pg_rproxy_l2" else bench.pgbench
                        r = run(t, workload, mode, args.seconds, args.clients, args.threads)
                        runs[f"{workload}/{mode}/{t}"].append(r)
                        print(f"  rep {rep + 1} {workload:<11} {mode:<8} {t:<17} {r['tps']:>8.0f} tps"
                              + ("  ERRORS: " + r.get("error_text", "") if r["errors"] else ""), flush=True)
        for key in list(runs):
            if not runs[key]:
                runs[key].append({"tps": 0.0, "errors": True, "error_text": "not run"})
        redis = None
        if "pg_rproxy_l2" in targets:
            # the commands before the round trip, whose GETs are not the gateway's
            redis = {"commands": bench.redis_commands()}
            redis.update(round_trip=bench.redis_round_trip(), gateway_log=bench.log_problems(bench.gw_l2))
        memory = bench.idle_clients_memory(args.idle_clients) if args.idle_clients else None
        cache = bench.gw.sql("SELECT hits, misses, hit_ratio FROM pg_rproxy_cache_stats")
    finally:
        bench.stop()
        shutil.rmtree(work, ignore_errors=True)
    table = summarise(runs)
    machine = f"{os.uname().sysname} {os.uname().release}, {os.cpu_count()} CPUs"
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "seconds": args.seconds,
            "repetitions": args.repetitions, "clients": args.clients, "threads": args.threads,
            "duration_s": round(time.time() - started)}
    text, ratios, targets_met = report(table, memory, meta, redis)
    text += f"\n\npg_rproxy cache after the run (hits|misses|hit_ratio): {cache}"
    print("\n" + text)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": table, "ratios": ratios, "memory": memory, "redis": redis,
                   "targets": [{"target": n, "met": m, "measured": v} for n, m, v in targets_met],
                   "raw": runs}, f, indent=1)
    png = chart(table, args.out)
    print(f"\nwrote {os.path.join(args.out, 'results.json')}" + (f" and {png}" if png else " (no chart: gnuplot failed)"))


if __name__ == "__main__":
    main()
