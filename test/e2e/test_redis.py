"""The Redis second-level cache (pg_rproxy.redis) shared by two gateways in front of one upstream:
the suite's gateway (A) and gateway B, started here with the same upstream settings. A result filled
on one is a hit on the other; resets, invalidations (by relation, by caller key) and writes through
a read-write upstream reach both; roles stay apart; simultaneous misses on both run once upstream; a
killed or lying Redis costs clients nothing; the parameter hooks (pg_rproxy.parameter_hooks) through
psycopg's prepared statements.
Upstream executions are counted in the upstream's statement log (log_statement = all), so "a hit"
means "the upstream never saw it". Redis, gateway B and A's Redis settings are set up by the first
test that needs them, so any test also runs alone (-k); the last test turns them off."""
import atexit
import collections
import os
import re
import subprocess
import threading
import time
import urllib.request
import uuid

import psycopg

from cluster import Cluster, free_port
from harness import GATEWAY_PASSWORD, check, test
from pgwire import Wire, errors, rows

env = None
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
WIRE_TIMEOUT = 120  # under valgrind everything in the gateways is ~10x slower
L2 = ("l2_hits", "l2_misses", "l2_errors", "l2_corrupt", "l2_stores", "l2_bytes_read", "l2_bytes_written", "l2_waits")
STATE = {}

Gateway = collections.namedtuple("Gateway", "name cluster port")


def poll(cond, seconds):
    """True as soon as cond() is True, False after seconds."""
    deadline = time.time() + seconds
    while True:
        if cond() is True:
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.1)


def wait_for(cond, what, seconds=30):
    """cond() returns True, or a description of what it saw instead."""
    deadline = time.time() + seconds
    while True:
        last = cond()
        if last is True:
            return
        if time.time() > deadline:
            raise AssertionError(f"timed out after {seconds}s: {what} ({last})")
        time.sleep(0.1)


class Redis:
    """A redis-server of the test's own, without persistence, restartable on the same port."""

    def __init__(self, base, name="redis", password=None):
        self.port = free_port()
        self.password = password
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.url = f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen([REDIS_SERVER, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
                                      "--port", str(self.port), "--dir", self.dir,
                                      "--logfile", os.path.join(self.dir, "redis.log")] +
                                     (["--requirepass", self.password] if self.password else []),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.alive() or f"exit code {self.proc.poll()}", f"redis-server on port {self.port} answers PONG")

    def alive(self):
        if self.proc is None or self.proc.poll() is not None:
            return False
        r = subprocess.run([REDIS_CLI, "-p", str(self.port), *self.auth(), "ping"], capture_output=True, text=True, timeout=30)
        return r.stdout.strip() == "PONG"

    def kill(self):
        self.proc.kill()  # SIGKILL: no goodbye to the gateways' connections
        self.proc.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def auth(self):
        return ["--no-auth-warning", "-a", self.password] if self.password else []

    def cli(self, *args, data=None):
        r = subprocess.run([REDIS_CLI, "-p", str(self.port), *self.auth(), *args], input=data, capture_output=True, timeout=30)
        check(r.returncode == 0, f"redis-cli {args}: {r.stderr!r}")
        return r.stdout

    def keys(self, pattern):
        return set(self.cli("KEYS", pattern).decode().split())

    def get(self, key):
        return self.cli("--raw", "GET", key)[:-1]  # --raw ends the value with a newline of its own

    def set(self, key, value):
        self.cli("-x", "SET", key, data=value)  # -x: the value from stdin, binary-safe


def redis_timeout():
    # Under valgrind a worker may take longer than the default 50 ms to read a reply that is there.
    return "2000" if env.gw.postgres_wrapper else None


def shared():
    """(gateway A, gateway B, redis): started on first use, and Redis restarted if a test left it dead."""
    if "b" in STATE:
        redis = STATE["redis"]
        if not redis.alive():
            redis.start()
            wait_sharing(STATE["a"], STATE["b"])
        return STATE["a"], STATE["b"], redis
    teardown(reset_a=True)  # what a setup that failed half-way left
    for path in (REDIS_SERVER, REDIS_CLI):
        check(os.path.exists(path), f"{path} is missing: scripts/install-deps.sh test installs redis-server and redis-tools")
    STATE["redis"] = redis = Redis(env.base)
    redis.start()
    STATE["a"] = a = Gateway("A", env.gw, env.proxy_port)
    env.gw.reload_with(redis=redis.url, parameter_hooks="on", redis_timeout=redis_timeout())
    STATE["b"] = b = start_gateway_b(redis.url)
    wait_sharing(a, b)
    return a, b, redis


def start_gateway_b(redis_url):
    """A second gateway built as run_e2e.py builds the first, with the same upstream (so the same
    cache keys), its own proxy port and no metrics port."""
    gw = Cluster(env.base, "gateway-redis-b")
    gw.remove()  # a leftover of an earlier run in the same work directory
    gw.postgres_wrapper = env.gw.postgres_wrapper  # under valgrind too when A is
    gw.init()
    port = free_port()
    r = env.entrypoint("write-config", os.path.join(gw.data, "postgresql.conf"),
                       env=dict(env.proxy_env, LISTEN_PORT=str(port), METRICS_PORT="0"))
    check(r.returncode == 0, r.stderr)
    gw.append_conf(f"pg_rproxy.redis = '{redis_url}'\npg_rproxy.parameter_hooks = on\n" +
                   (f"pg_rproxy.redis_timeout = {redis_timeout()}\n" if redis_timeout() else ""))
    gw.start()
    b = Gateway("B", gw, port)
    gw.sql("CREATE EXTENSION pg_rproxy")
    env.add_gateway_roles(gw)

    def answers():
        try:
            return query(b, "SELECT 1") == [["1"]]
        except Exception as e:  # noqa: BLE001 - not listening yet
            return repr(e)
    wait_for(answers, "gateway B's proxy port answers", seconds=60)
    return b


def teardown(reset_a=False):
    if reset_a and "a" in STATE:
        env.gw.reload_with(redis=None, parameter_hooks=None, redis_timeout=None)
    b = STATE.pop("b", None)
    if b:
        b.cluster.remove()
    redis = STATE.pop("redis", None)
    if redis:
        redis.stop()
    STATE.clear()


def wait_sharing(a, b, seconds=60):
    """Until a result filled on either gateway is a hit on the other, three rounds in a row: each proxy
    worker holds its own Redis connection, and each comes back after its own backoff. Returns the
    seconds it took."""
    started = time.time()
    streak, last = 0, "nothing tried"
    while streak < 3:
        check(time.time() - started < seconds, f"Redis did not share results within {seconds}s: {last}")
        ok = True
        for src, dst in ((a, b), (b, a)):
            m = marker("probe")
            stores = stat(src, "l2_stores")
            query(src, f"SELECT '{m}' AS probe")
            stored = poll(lambda: stat(src, "l2_stores") > stores, 5)
            query(dst, f"SELECT '{m}' AS probe")
            if upstream_runs(m) != 1:
                ok, last = False, f"{src.name} to {dst.name}: {upstream_runs(m)} upstream runs, stored: {stored}"
        streak = streak + 1 if ok else 0
        if not ok:
            time.sleep(0.3)
    return time.time() - started


atexit.register(teardown)  # A is stopped by then; B and redis-server when a run with -k left out the last test


def marker(tag):
    return f"redis-{tag}-{uuid.uuid4().hex[:12]}"


# "statement: " for the simple protocol, "execute <name>: " for the extended one
RUN = re.compile(r"\] LOG:  (?:statement|execute [^:]*): ")


def upstream_runs(mark, param=None):
    """Upstream executions of statements containing mark; with param, only those whose first
    parameter was exactly param (the DETAIL line the same log message ends with)."""
    lines = env.up.log_text().splitlines()
    n = 0
    for i, line in enumerate(lines):
        if mark in line and RUN.search(line):
            detail = lines[i + 1] if i + 1 < len(lines) else ""
            if param is None or ("DETAIL:  parameters: " in detail and f"$1 = '{param}'" in detail):
                n += 1
    return n


def stats(g, *cols):
    out = g.cluster.sql(f"SELECT {', '.join(cols)} FROM pg_rproxy_cache_stats")
    return dict(zip(cols, map(int, out.split("|"))))


def stat(g, col):
    return stats(g, col)[col]


def entries(g, mark):
    """Entries in g's shared memory whose statement contains mark."""
    return int(g.cluster.sql(f"SELECT count(*) FROM pg_rproxy_cache_entries() WHERE statement LIKE '%{mark}%'"))


def query(g, sql, user=None, database="e2e"):
    """Rows of a simple query through gateway g, on a connection of its own; an error fails the test."""
    w = Wire(g.port, timeout=WIRE_TIMEOUT)
    try:
        w.startup(user=user or env.upstream_user, database=database)
        msgs = w.query(sql)
    finally:
        w.close()
    check(not errors(msgs), f"gateway {g.name}: {sql!r}: {errors(msgs)}")
    return rows(msgs)


def direct(sql):
    w = Wire(env.up.port, timeout=WIRE_TIMEOUT)
    try:
        w.startup(user=env.upstream_user, database="e2e")
        msgs = w.query(sql)
    finally:
        w.close()
    check(not errors(msgs), f"direct: {sql!r}: {errors(msgs)}")
    return rows(msgs)


def filled(g, run):
    """run() on g, then wait until g has stored the result in Redis: the write may trail the reply."""
    before = stat(g, "l2_stores")
    out = run()
    wait_for(lambda: stat(g, "l2_stores") > before or "l2_stores unchanged", f"gateway {g.name} stores in Redis")
    return out


def fill(g, sql):
    return filled(g, lambda: query(g, sql))


def kinds_query(m):
    return f"SELECT id, txt, '{m}' AS m FROM kinds ORDER BY id"


@test
def redis_a_miss_on_one_gateway_is_a_hit_on_the_other():
    a, b, _ = shared()
    m = marker("miss-a-hit-b")
    q = kinds_query(m)
    want = direct(q)
    base = upstream_runs(m)
    a0, b0 = stats(a, *L2), stats(b, *L2)
    check(fill(a, q) == want, "A's rows are the upstream's")
    check(upstream_runs(m) == base + 1, f"A's miss ran upstream: {upstream_runs(m) - base} runs")
    a1 = stats(a, *L2)
    check(a1["l2_misses"] > a0["l2_misses"] and a1["l2_bytes_written"] > a0["l2_bytes_written"], f"A: {a0} -> {a1}")
    check(query(b, q) == want, "B's rows from Redis are the upstream's")
    check(upstream_runs(m) == base + 1, f"B's hit never reached the upstream: {upstream_runs(m) - base} runs")
    b1 = stats(b, *L2, "hits")
    check(b1["l2_hits"] == b0["l2_hits"] + 1 and b1["l2_bytes_read"] > b0["l2_bytes_read"], f"B: {b0} -> {b1}")
    # the Redis hit was copied into B's shared memory: the next run does not ask Redis
    check(query(b, q) == want and upstream_runs(m) == base + 1, "B's second run is a hit too")
    b2 = stats(b, *L2, "hits")
    check(b2["l2_hits"] == b1["l2_hits"] and b2["hits"] > b1["hits"], f"a shared-memory hit on B: {b1} -> {b2}")
    # A's metrics endpoint counts what its view counts
    with urllib.request.urlopen(f"http://127.0.0.1:{env.metrics_port}/metrics", timeout=10) as r:
        body = r.read().decode()
    a2 = stats(a, *L2)
    for column, metric in [("l2_misses", "pg_rproxy_cache_l2_misses_total"), ("l2_stores", "pg_rproxy_cache_l2_stores_total"),
                           ("l2_bytes_written", "pg_rproxy_cache_l2_bytes_written_total")]:
        m = re.search(rf"^{metric} (\S+)$", body, re.M)
        check(m and float(m.group(1)) == a2[column], f"{metric}: {m and m.group(1)} against {column} {a2[column]}")


def reset_round(filler, resetter, reset):
    m = marker("reset")
    q = kinds_query(m)
    fill(filler, q)
    query(resetter, q)
    check(upstream_runs(m) == 1, f"filled once: {upstream_runs(m)}")
    check(entries(filler, m) == 1 and entries(resetter, m) == 1, "both gateways hold the entry")
    dropped = reset()
    check(dropped >= 1 and entries(resetter, m) == 0, f"{resetter.name} dropped its entries: {dropped}")
    wait_for(lambda: entries(filler, m) == 0 or "still there", f"{filler.name} drops its copy")
    query(filler, q)
    check(upstream_runs(m) == 2, f"neither {filler.name}'s memory nor Redis kept it: {upstream_runs(m)} runs")


@test
def redis_a_reset_on_one_gateway_empties_every_gateway():
    a, b, _ = shared()
    reset_round(a, b, lambda: int(b.cluster.sql("SELECT pg_rproxy_cache_reset()")))
    # as rust-pg-proxy's users reset: through the proxy port
    reset_round(b, a, lambda: int(query(a, "SELECT rustproxy_cache_reset()")[0][0]))


@test
def redis_invalidating_a_relation_reaches_every_gateway():
    a, b, _ = shared()
    mk, mg = marker("inv-kinds"), marker("inv-guarded")
    qk, qg = kinds_query(mk), f"SELECT id, '{mg}' AS m FROM guarded ORDER BY id"
    for q in (qk, qg):
        fill(a, q)
        query(b, q)
    dropped = int(b.cluster.sql("SELECT pg_rproxy_cache_invalidate('kinds')"))
    check(dropped >= 1 and entries(b, mk) == 0, f"B dropped the kinds entry: {dropped}")
    wait_for(lambda: entries(a, mk) == 0 or "still there", "A drops the kinds entry")
    check(entries(a, mg) == 1 and entries(b, mg) == 1, "the guarded entry stays on both")
    query(a, qk)
    query(a, qg)
    query(b, qg)
    check(upstream_runs(mk) == 2, f"kinds ran upstream again: {upstream_runs(mk)}")
    check(upstream_runs(mg) == 1, f"guarded did not: {upstream_runs(mg)}")


HOOKED = "SELECT id, '{m}' AS m FROM kinds WHERE %(hook)s::text = %(hook)s::text ORDER BY id"


def connect(g):
    # autocommit: a statement inside a transaction is never cached
    return psycopg.connect(host="127.0.0.1", port=g.port, user=env.upstream_user, dbname="e2e",
                           password=GATEWAY_PASSWORD, autocommit=True, connect_timeout=60)


def hooked(conn, m, hook):
    """The rows of HOOKED with the hook as its first parameter, as a server-side prepared statement."""
    return conn.execute(HOOKED.format(m=m), {"hook": hook}, prepare=True).fetchall()


def hooked_rows(m):
    return [(int(r[0]), m) for r in direct("SELECT id FROM kinds ORDER BY id")]


@test
def redis_invalidating_a_caller_key_reaches_every_gateway():
    a, b, _ = shared()
    tag = uuid.uuid4().hex[:8]
    h1, h2 = f"PGPROXY,CACHE_KEY:tenant1-{tag}-x", f"PGPROXY,CACHE_KEY:tenant2-{tag}"
    m = marker("caller-key")
    want = hooked_rows(m)
    with connect(a) as ca, connect(b) as cb:
        for h in (h1, h2):
            check(filled(a, lambda h=h: hooked(ca, m, h)) == want, f"A's rows with {h}")
            check(hooked(cb, m, h) == want, f"B's rows with {h}")
            check(upstream_runs(m, h) == 1, f"{h}: {upstream_runs(m, h)} upstream runs")
        check(entries(a, m) == 2 and entries(b, m) == 2, "both gateways hold both tenants' entries")
        dropped = int(a.cluster.sql(f"SELECT pg_rproxy_cache_invalidate_key('tenant1-{tag}')"))
        check(dropped >= 1 and entries(a, m) == 1, f"A dropped tenant1's entry: {dropped}, {entries(a, m)} left")
        wait_for(lambda: entries(b, m) == 1 or f"{entries(b, m)} entries", "B drops tenant1's entry")
        check(hooked(cb, m, h1) == want and upstream_runs(m, h1) == 2,
              f"tenant1 ran upstream again (not in B's memory, not in Redis): {upstream_runs(m, h1)}")
        check(hooked(ca, m, h2) == want and hooked(cb, m, h2) == want and upstream_runs(m, h2) == 1,
              f"tenant2 is still a hit on both: {upstream_runs(m, h2)}")


@test
def redis_roles_never_share_results_across_gateways():
    a, b, _ = shared()
    # on B, redis_other runs upstream as rproxy_other, whom the row-level policy of secrets shows other rows
    b.cluster.sql("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'redis_other') THEN "
                  "SET LOCAL password_encryption = 'scram-sha-256'; "
                  f"CREATE ROLE redis_other LOGIN PASSWORD '{GATEWAY_PASSWORD}'; END IF; END$$")
    b.cluster.sql("DELETE FROM pg_rproxy_role_mapping WHERE gateway_role = 'redis_other'; "
                  "INSERT INTO pg_rproxy_role_mapping VALUES ('redis_other', 'rproxy_other', NULL)")
    m = marker("roles")
    q = f"SELECT owner, secret, '{m}' AS m FROM secrets ORDER BY secret"
    mine = fill(a, q)
    check(mine == [["rproxy_up", "up-1", m], ["rproxy_up", "up-2", m]], f"rproxy_up's rows on A: {mine}")
    theirs = query(b, q, user="redis_other")
    check(theirs == [["rproxy_other", "other-1", m]], f"another role never gets the first one's rows: {theirs}")
    check(upstream_runs(m) == 2, f"the other role's statement ran upstream: {upstream_runs(m)}")
    hits = stat(b, "l2_hits")
    check(query(b, q) == mine and upstream_runs(m) == 2, "the first role on B gets A's result")
    check(stat(b, "l2_hits") == hits + 1, "from Redis")


@test
def redis_twenty_simultaneous_misses_on_two_gateways_run_once_upstream():
    a, b, _ = shared()
    m = marker("flight")
    # deterministic (pg_sleep is volatile, never cached) and ~0.5 s upstream: the other gateway
    # arrives while the fill runs
    slow = "SELECT count(*), sum(b.x * g){} FROM big b CROSS JOIN generate_series(1, 30) g"
    want = [direct(slow.format(""))[0] + [m]]
    q = slow.format(f", '{m}' AS m")
    before = {g.name: stats(g, *L2) for g in (a, b)}
    clients = []
    for g in (a, b):
        for _ in range(10):
            w = Wire(g.port, timeout=WIRE_TIMEOUT)
            w.startup(user=env.upstream_user, database="e2e")
            clients.append((g, w))
    start = threading.Barrier(len(clients))
    results = [None] * len(clients)

    def run(i):
        g, w = clients[i]
        try:
            start.wait()
            msgs = w.query(q)
            results[i] = (g.name, errors(msgs) or rows(msgs))
        except Exception as e:  # noqa: BLE001
            results[i] = (g.name, repr(e))
        finally:
            w.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    wrong = [r for r in results if r is None or r[1] != want]
    check(not wrong, f"every client got the right rows: {wrong[:4]}")
    check(upstream_runs(m) == 1, f"one upstream execution for 20 clients on two gateways: {upstream_runs(m)}")
    after = {g.name: stats(g, *L2) for g in (a, b)}
    shared_work = sum(after[n][c] - before[n][c] for n in after for c in ("l2_waits", "l2_hits"))
    check(shared_work >= 1, f"the gateway that did not fill waited for the other's fill or read it: {before} -> {after}")


@test
def redis_killed_under_load_costs_no_client_an_error_and_sharing_resumes():
    a, b, redis = shared()
    ids = [r[0] for r in direct("SELECT id FROM kinds ORDER BY id")]

    def load(m):
        return f"SELECT id, '{m}' AS m FROM kinds ORDER BY id"
    warm = [marker("load-warm") for _ in range(4)]
    for m in warm:
        fill(a, load(m))
    stop = threading.Event()
    done = collections.Counter()
    failures = []

    def client(g, i):
        w = Wire(g.port, timeout=WIRE_TIMEOUT)
        try:
            w.startup(user=env.upstream_user, database="e2e")
            n = 0
            while not stop.is_set():
                m = warm[n % len(warm)] if n % 2 else marker(f"load-{g.name}{i}")
                msgs = w.query(load(m))
                if errors(msgs) or rows(msgs) != [[x, m] for x in ids]:
                    failures.append((g.name, m, errors(msgs) or rows(msgs)))
                n += 1
                done[g.name] += 1
        except Exception as e:  # noqa: BLE001
            failures.append((g.name, i, repr(e)))
        finally:
            w.close()

    def progressed(since, by=10):
        return lambda: all(done[n] >= since[n] + by for n in "AB") or dict(done)

    threads = [threading.Thread(target=client, args=(g, i)) for g in (a, b) for i in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(progressed({"A": 0, "B": 0}), "load running on both gateways")
        errors_before = {g.name: stat(g, "l2_errors") for g in (a, b)}
        redis.kill()
        wait_for(lambda: all(stat(g, "l2_errors") > errors_before[g.name] for g in (a, b)) or
                 {g.name: stat(g, "l2_errors") for g in (a, b)}, f"l2_errors counted on both (before: {errors_before})")
        wait_for(progressed(dict(done)), "served while Redis is down")
        redis.start()
        wait_for(progressed(dict(done)), "served while Redis comes back")
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    check(not failures, f"no client noticed: {failures[:5]}")
    check(not any(t.is_alive() for t in threads), "every client finished")
    took = wait_sharing(a, b)
    check(took < 60, f"sharing resumed after {took:.1f}s")
    # each gateway subscribes again: an invalidation on B reaches A (published again until A has
    # resubscribed: a message published while nobody listens is gone)
    m = marker("resubscribed")
    fill(a, f"SELECT id, '{m}' AS m FROM guarded ORDER BY id")

    def dropped_on_a():
        b.cluster.sql("SELECT pg_rproxy_cache_invalidate('guarded')")
        return poll(lambda: entries(a, m) == 0, 2) or f"{entries(a, m)} entries on A"
    wait_for(dropped_on_a, "an invalidation on B reaches A after the restart")


def new_entry_key(redis, g, sql):
    """Fills sql on g; the Redis key of its entry."""
    before = redis.keys("pg_rproxy:e:*")
    fill(g, sql)
    new = redis.keys("pg_rproxy:e:*") - before
    check(len(new) == 1, f"one new entry key in Redis for {sql!r}: {new}")
    return new.pop()


@test
def redis_corrupt_values_are_ignored_and_counted():
    a, b, redis = shared()
    junk = bytes(range(256)) * 2
    variants = [("garbage", lambda value: b"not a pg_rproxy entry \x00\xff" + junk),
                ("PGRPX1 and junk", lambda value: b"PGRPX1" + junk),
                ("truncated", lambda value: value[:len(value) // 2]),
                # the wire bytes come last: the checksum must catch what framing cannot
                ("one byte flipped", lambda value: value[:-2] + bytes([value[-2] ^ 0x20]) + value[-1:])]
    for what, corrupt in variants:
        m = marker("corrupt")
        q = kinds_query(m)
        want = direct(q)
        base = upstream_runs(m)
        key = new_entry_key(redis, a, q)
        value = redis.get(key)
        check(value.startswith(b"PGRPX1"), f"{key} starts with PGRPX1: {value[:16]!r}")
        redis.set(key, corrupt(value))
        corrupt_before = stat(b, "l2_corrupt")
        check(query(b, q) == want, f"{what}: B's rows are the upstream's")
        check(upstream_runs(m) == base + 2, f"{what}: B ran it upstream: {upstream_runs(m) - base} runs")
        check(stat(b, "l2_corrupt") > corrupt_before, f"{what}: counted in l2_corrupt")


@test
def redis_a_sound_value_under_another_statements_key_is_never_served():
    # what a collision of the 128-bit key hashes would look like: the full key inside the value decides
    a, b, redis = shared()
    m1, m2 = marker("collide-1"), marker("collide-2")
    k1 = new_entry_key(redis, a, kinds_query(m1))
    want = direct(kinds_query(m2))
    base = upstream_runs(m2)
    k2 = new_entry_key(redis, a, kinds_query(m2))
    redis.set(k2, redis.get(k1))
    corrupt = stat(b, "l2_corrupt")
    check(query(b, kinds_query(m2)) == want, "B's rows are the second statement's, not the first's")
    check(upstream_runs(m2) == base + 2, f"B ran it upstream: {upstream_runs(m2) - base - 1} runs")
    check(stat(b, "l2_corrupt") == corrupt, "a sound value of another key is a miss, not corruption")


@test
def redis_parameter_hook_no_cache_and_ttl():
    a, b, _ = shared()
    m = marker("hook-no-cache")
    want = hooked_rows(m)
    with connect(a) as ca, connect(b) as cb:
        for conn in (ca, ca, ca, cb):
            check(hooked(conn, m, "PGPROXY,NO_CACHE") == want, "NO_CACHE rows")
        check(upstream_runs(m, "PGPROXY,NO_CACHE") == 4, f"NO_CACHE never hits: {upstream_runs(m, 'PGPROXY,NO_CACHE')}")
        check(upstream_runs(m) == 4, "and the upstream got the parameter unchanged")

        m = marker("hook-ttl")
        want = hooked_rows(m)
        hook = "PGPROXY,TTL:1"
        started = time.time()
        check(hooked(ca, m, hook) == want and hooked(ca, m, hook) == want, "TTL rows")
        if time.time() - started < 0.7:  # valgrind may take longer than the ttl itself
            check(upstream_runs(m, hook) == 1, f"cached within its ttl: {upstream_runs(m, hook)}")
        ttl = a.cluster.sql("SELECT coalesce(max(extract(epoch FROM ttl_left)), 0) FROM pg_rproxy_cache_entries() "
                            f"WHERE statement LIKE '%{m}%'")
        check(float(ttl) <= 1, f"the entry lives 1 s, not the default ttl: {ttl}")
        runs = upstream_runs(m, hook)

        # A asks its memory, then Redis: it runs upstream only once the ttl ended in both
        def expired():
            hooked(ca, m, hook)
            return upstream_runs(m, hook) > runs or "still cached"
        wait_for(expired, "the TTL:1 entry expires")
        took = time.time() - started
        check(took < 30, f"expired after {took:.1f}s")


@test
def redis_parameter_hook_unknown_and_malformed_options():
    a, b, _ = shared()
    key = f"unknown-opt-{uuid.uuid4().hex[:8]}"
    hook = f"PGPROXY,FOO,CACHE_KEY:{key}"
    m = marker("hook-unknown")
    want = hooked_rows(m)
    before = stat(a, "parameter_hook_unknown_options")
    with connect(a) as ca:
        check(filled(a, lambda: hooked(ca, m, hook)) == want and hooked(ca, m, hook) == want, "rows")
        check(upstream_runs(m, hook) == 1, f"cached despite FOO: {upstream_runs(m, hook)}")
        check(stat(a, "parameter_hook_unknown_options") > before, "FOO counted")
        # the known option next to the unknown one still applies
        dropped = int(a.cluster.sql(f"SELECT pg_rproxy_cache_invalidate_key('{key}')"))
        check(dropped >= 1, f"the entry carries CACHE_KEY:{key}: {dropped}")
        hooked(ca, m, hook)
        check(upstream_runs(m, hook) == 2, f"ran upstream after invalidate_key: {upstream_runs(m, hook)}")

        # a hook that does not parse is an ordinary parameter, NO_CACHE in it included
        m = marker("hook-malformed")
        want = hooked_rows(m)
        for bad in ("PGPROXY,TTL:abc", "PGPROXY,NO_CACHE,TTL:abc", "PGPROXY,TTL:abd"):
            check(hooked(ca, m, bad) == want and hooked(ca, m, bad) == want, f"{bad}: rows")
            check(upstream_runs(m, bad) == 1, f"{bad}: cached, keyed by its value: {upstream_runs(m, bad)} runs")
        ttls = a.cluster.sql("SELECT string_agg(extract(epoch FROM ttl_left)::int::text, ',') FROM "
                             f"pg_rproxy_cache_entries() WHERE statement LIKE '%{m}%'")
        check(len(ttls.split(",")) == 3 and all(int(t) > 60 for t in ttls.split(",")),
              f"three entries with the default ttl: {ttls}")


RW_DB = "redis_rwdb"  # the client database routed to the read-write upstream on both gateways
RW_ROUTE = 9401


@test
def redis_a_write_through_one_gateway_reaches_every_gateways_cache():
    """A write committed through A to a read-write upstream makes B's cached results of what it
    wrote old too (versions and entries in Redis, the message that bumps B's counters); B's
    results of other relations stay."""
    a, b, _ = shared()
    tag = uuid.uuid4().hex[:10]
    t, other = f"redis_rw_{tag}", f"redis_rw_other_{tag}"
    # host 127.0.0.1, not the suite's localhost: counters and keys of their own, apart from the
    # read-only upstream's
    conninfo = f"host=127.0.0.1 port={env.up.port} dbname=e2e user={env.upstream_user}"
    writer = None
    try:
        env.up.sql(f"CREATE TABLE {t} (id int PRIMARY KEY, v text); INSERT INTO {t} VALUES (1, 'old'); "
                   f"CREATE TABLE {other} (x int); INSERT INTO {other} VALUES (7); "
                   f"GRANT SELECT, UPDATE ON {t}, {other} TO {env.upstream_user}", db="e2e")
        for g in (a, b):
            g.cluster.sql("INSERT INTO pg_rproxy_upstreams (name, conninfo, access, pool_mode) VALUES "
                          f"('redis_rw', '{conninfo}', 'read_write', 'transaction'); "
                          "INSERT INTO pg_rproxy_routes (position, database, upstream) VALUES "
                          f"({RW_ROUTE}, '{RW_DB}', 'redis_rw')")

        def rw(g, sql):
            return query(g, sql, database=RW_DB)

        def rw_fill(g, sql):
            return filled(g, lambda: rw(g, sql))

        # A's first write of a name counts as reaching everything of the upstream (what it reaches
        # is learnt after it, per worker): made before the fills, on the connection that writes later.
        # B hears of it too: its result of the other table, filled before, runs upstream again.
        mp = marker("rw-probe")
        qp = f"SELECT x, '{mp}' AS m FROM {other}"
        check(rw_fill(b, qp) == [["7", mp]], "the probe's rows on B")
        writer = Wire(a.port, timeout=WIRE_TIMEOUT)
        writer.startup(user=env.upstream_user, database=RW_DB)
        msgs = writer.query(f"UPDATE {t} SET v = v WHERE false")
        check(not errors(msgs), f"the first write through A: {errors(msgs)}")

        def probe_ran_again():
            rw(b, qp)
            return upstream_runs(mp) == 2 or f"{upstream_runs(mp)} upstream runs of the probe"
        wait_for(probe_ran_again, "the first write's message reaches B")

        m, m2, mo = marker("rw-written"), marker("rw-written-a"), marker("rw-other")
        q = f"SELECT id, v, '{m}' AS m FROM {t} ORDER BY id"
        q2 = f"SELECT v, '{m2}' AS m FROM {t} WHERE id = 1"
        qo = f"SELECT x, '{mo}' AS m FROM {other}"
        old, new = [["1", "old", m]], [["1", "new", m]]
        # q: filled on B, a Redis hit on A; qo: on B; q2: on A only
        check(rw_fill(b, q) == old, "B's rows")
        check(upstream_runs(m) == 1, f"B's miss ran upstream: {upstream_runs(m)}")
        hits = stat(a, "l2_hits")
        check(rw(a, q) == old and upstream_runs(m) == 1, f"A's hit never reached the upstream: {upstream_runs(m)} runs")
        check(stat(a, "l2_hits") == hits + 1, f"A's hit came from Redis: l2_hits {hits} -> {stat(a, 'l2_hits')}")
        check(entries(a, m) == 1 and entries(b, m) == 1, "both gateways hold the entry in shared memory")
        check(rw_fill(b, qo) == [["7", mo]] and rw(b, qo) == [["7", mo]] and upstream_runs(mo) == 1, "the other table on B")
        check(rw_fill(a, q2) == [["old", m2]] and upstream_runs(m2) == 1, "q2 on A")

        msgs = writer.query(f"UPDATE {t} SET v = 'new' WHERE id = 1")
        check(not errors(msgs) and direct(f"SELECT v FROM {t}") == [["new"]], f"the write through A: {errors(msgs)}")
        # the writing client reads its write at once (on its worker's Redis connection, the
        # invalidation came first)
        msgs = writer.query(q2)
        check(not errors(msgs) and rows(msgs) == [["new", m2]], f"A's writer reads its write: {errors(msgs) or rows(msgs)}")
        check(upstream_runs(m2) == 2, f"q2 ran upstream again: {upstream_runs(m2)}")

        # B: its shared-memory entry goes when the message arrives, the Redis one went with the write
        stores = {}

        def b_sees_the_write():
            stores["before"] = stat(b, "l2_stores")
            got = rw(b, q)
            return got == new or f"B still answers {got}"
        wait_for(b_sees_the_write, "B answers the written value", seconds=30)
        check(upstream_runs(m) == 2, f"B ran it upstream again, once: {upstream_runs(m)} runs")
        wait_for(lambda: stat(b, "l2_stores") > stores["before"] or "l2_stores unchanged", "B stores the new result in Redis")
        # A: its own entry went at the commit; B's new result is a Redis hit
        hits = stat(a, "l2_hits")
        check(rw(a, q) == new, "A answers the written value")
        check(upstream_runs(m) == 2 and stat(a, "l2_hits") == hits + 1,
              f"A got B's new result from Redis: {upstream_runs(m)} runs, l2_hits {hits} -> {stat(a, 'l2_hits')}")

        # the other table's entry on B was not reached: a shared-memory hit
        before = stats(b, "hits", "l2_hits", "l2_misses")
        check(rw(b, qo) == [["7", mo]], "the other table's rows on B")
        after = stats(b, "hits", "l2_hits", "l2_misses")
        check(upstream_runs(mo) == 1 and entries(b, mo) == 1, f"the other table's entry stayed: {upstream_runs(mo)} runs")
        check(after["hits"] == before["hits"] + 1 and after["l2_hits"] == before["l2_hits"] and
              after["l2_misses"] == before["l2_misses"], f"from B's shared memory: {before} -> {after}")
    finally:
        if writer is not None:
            writer.close()
        for g in (a, b):
            g.cluster.sql(f"DELETE FROM pg_rproxy_routes WHERE position = {RW_ROUTE}; "
                          "DELETE FROM pg_rproxy_upstreams WHERE name = 'redis_rw'")
        env.up.sql(f"DROP TABLE IF EXISTS {t}, {other}", db="e2e")


@test
def redis_password_from_a_file_never_reaches_a_log():
    a, b, redis = shared()
    password = f"pw-{uuid.uuid4().hex}"
    locked = Redis(env.base, "redis-auth", password=password)
    locked.start()
    try:
        # as the entrypoint writes it: the URL without the password, the password in a file
        for gw in (a, b):
            with open(os.path.join(gw.cluster.data, "redis_pw_test"), "w") as f:
                f.write(password + "\n")
        for gw in (a, b):
            gw.cluster.reload_with(redis=locked.url, redis_password_file="redis_pw_test")
        wait_sharing(a, b)
        check(locked.keys("pg_rproxy:e:*"), "entries reached the Redis that asks for the password")
        # a wrong password: refused by Redis, reported, and the clients are served all the same
        with open(os.path.join(b.cluster.data, "redis_pw_test"), "w") as f:
            f.write("wrong-" + password + "\n")
        b.cluster.reload_with(redis=locked.url + "/0")  # a changed endpoint: connects again
        m = marker("wrong-password")
        check(query(b, f"SELECT '{m}' AS c") == [[m]], "served without Redis")
        wait_for(lambda: "WRONGPASS" in b.cluster.log_text() or "invalid" in b.cluster.log_text().lower() or
                 "unavailable" in b.cluster.log_text(), "B logs that Redis refused it")
        for gw in (a, b):
            check(password not in gw.cluster.log_text(), f"the password is in {gw.name}'s log")
    finally:
        for gw in (a, b):
            gw.cluster.reload_with(redis=redis.url, redis_password_file=None)
        locked.stop()
    wait_sharing(a, b)


@test
def redis_turned_off_leaves_each_gateway_its_own_cache():
    """Runs last: turns Redis off on A, stops gateway B and redis-server."""
    a, b, _ = shared()
    try:
        env.gw.reload_with(redis=None, parameter_hooks=None)
        before = stats(a, *L2)
        m = marker("off")
        q = kinds_query(m)
        query(a, q)
        query(a, q)
        check(upstream_runs(m) == 1, f"A still caches in its memory: {upstream_runs(m)}")
        query(b, q)
        check(upstream_runs(m) == 2, f"nothing reached B through Redis: {upstream_runs(m)}")
        check(stats(a, *L2) == before, f"A no longer talks to Redis: {before} -> {stats(a, *L2)}")
    finally:
        teardown(reset_a=True)
