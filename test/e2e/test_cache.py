"""The shared-memory result cache, end to end. Upstream executions are counted in the upstream's
statement log (log_statement = all), so "served from cache" means "the upstream never saw it"."""
import os
import random
import threading
import time

from cluster import Cluster, free_port
from harness import check, test
from pgwire import Wire, errors, rows

_counter = [0]


def marker(tag):
    _counter[0] += 1
    return f"{tag}-{os.getpid()}-{int(time.time() * 1000) % 10**8}-{_counter[0]}"


def upstream_runs(mark):
    return sum(1 for line in env.up.log_text().splitlines() if "statement: " in line and mark in line)


def gw_value(sql):
    return env.gw.sql(sql)


def stats(col):
    return int(gw_value(f"SELECT {col} FROM pg_rproxy_cache_stats"))


@test
def repeated_reads_are_served_without_the_upstream():
    m = marker("hit")
    q = f"SELECT id, txt, '{m}' AS m FROM kinds ORDER BY id"
    first = env.same_as_direct(q)
    hits_before = stats("hits")
    for variant in [q, q.lower().replace(m.lower(), m), f"  /* a comment */ {q}  -- trailing", q.replace(" ", "\n  ")]:
        via = env.psql(variant)
        check(via.returncode == 0 and via.stdout == first.stdout, f"cached bytes differ for {variant!r}")
    check(upstream_runs(m) == 2, f"one upstream run (plus the direct one): {upstream_runs(m)}")
    check(stats("hits") >= hits_before + 4, "hits counted")
    # a different literal is a different statement
    env.psql(q.replace(m, m + "-x"))
    check(upstream_runs(m + "-x") == 1, "other literal runs upstream")


@test
def time_dependent_volatile_and_user_functions_are_never_cached():
    before = stats("uncacheable_not_deterministic")
    for q in ["SELECT now(), '{m}'", "SELECT random(), '{m}'", "SELECT current_timestamp, '{m}'",
              "SELECT current_user, '{m}'", "SELECT notice_me('{m}')", "SELECT clock_timestamp(), '{m}'"]:
        m = marker("never")
        for _ in range(3):
            r = env.psql(q.format(m=m))
            check(r.returncode == 0, r.stderr)
        check(upstream_runs(m) == 3, f"{q}: ran {upstream_runs(m)} times upstream")
    check(stats("uncacheable_not_deterministic") >= before + 18, "counted as not deterministic")
    # a transaction or a session that changed settings: served by the upstream, not the cache
    m = marker("tx")
    w = env.wire()
    w.query("BEGIN READ ONLY")
    w.query(f"SELECT '{m}'")
    w.query("COMMIT")
    w.query(f"SELECT '{m}'")
    w.query(f"SELECT '{m}'")
    check(upstream_runs(m) == 2, f"in-transaction run not cached, then cached: {upstream_runs(m)}")
    w.close()


@test
def ttl_expiry_jitter_and_hints():
    try:
        env.gw.reload_with(cache_ttl="1s")
        m = marker("ttl")
        env.psql(f"SELECT '{m}'")
        env.psql(f"SELECT '{m}'")
        check(upstream_runs(m) == 1, "cached within the ttl")
        time.sleep(1.3)
        env.psql(f"SELECT '{m}'")
        check(upstream_runs(m) == 2, "expired after the ttl")

        env.gw.reload_with(cache_ttl="100s", cache_ttl_jitter="20s")
        ms = [marker("jitter") for _ in range(12)]
        for m in ms:
            env.psql(f"SELECT '{m}'")
        ttls = [float(x) for x in gw_value("SELECT extract(epoch FROM ttl_left) FROM pg_rproxy_cache_entries() "
                                            "WHERE statement LIKE '%jitter-%'").split()]
        check(len(ttls) == 12, f"{len(ttls)} entries")
        check(all(90 <= t <= 120.5 for t in ttls), f"ttl+jitter within 100..120s: {sorted(ttls)}")
        check(max(ttls) - min(ttls) > 1, f"jitter spreads expiries: {sorted(ttls)}")
    finally:
        env.gw.reload_with(cache_ttl=None, cache_ttl_jitter=None)
    m = marker("hint")
    env.psql(f"/* pg_rproxy: ttl=60 */ SELECT '{m}'")
    ttl = float(gw_value(f"SELECT extract(epoch FROM ttl_left) FROM pg_rproxy_cache_entries() WHERE statement LIKE '%{m}%'"))
    check(55 < ttl <= 60, f"ttl hint: {ttl}")
    m = marker("nocache")
    before = stats("uncacheable_no_cache_hint")
    for _ in range(2):
        env.psql(f"/* pg_rproxy: no_cache */ SELECT '{m}'")
    check(upstream_runs(m) == 2 and stats("uncacheable_no_cache_hint") == before + 2, "no_cache hint")


@test
def reset_invalidate_entries_and_stats():
    mk, mg = marker("inv-kinds"), marker("inv-guarded")
    qk, qg = f"SELECT id, '{mk}' FROM kinds ORDER BY id", f"SELECT id, '{mg}' FROM public.guarded ORDER BY id"
    for q in (qk, qk, qg, qg):
        env.psql(q)
    entry = gw_value(f"SELECT role || '|' || rows || '|' || hits || '|' || array_to_string(relations, ',') || '|' || "
                     f"(bytes > 0)::text FROM pg_rproxy_cache_entries() WHERE statement LIKE '%{mk}%'")
    check(entry == "rproxy_up|4|1|kinds|true", f"entry: {entry}")
    check(int(gw_value("SELECT pg_rproxy_cache_invalidate('public.kinds')")) >= 1, "entries reading public.kinds")
    left = lambda m: gw_value(f"SELECT count(*) FROM pg_rproxy_cache_entries() WHERE statement LIKE '%{m}%'")
    check(left(mk) == "0" and left(mg) == "1", "the kinds entry went, the guarded one stayed")
    check(gw_value("SELECT pg_rproxy_cache_invalidate('nothing_reads_this')") == "0", "none for an unused table")
    env.psql(qk)
    env.psql(qg)
    check(upstream_runs(mk) == 2 and upstream_runs(mg) == 1, "only the kinds entry was dropped")
    check(int(gw_value("SELECT pg_rproxy_cache_invalidate('guarded')")) >= 1 and left(mg) == "0",
          "unqualified name matches public.guarded")

    row = gw_value("SELECT (hits > 0 AND misses > 0 AND hit_ratio > 0 AND stores > 0 AND entries > 0 "
                   "AND bytes_used > 0 AND bytes_used <= bytes_budget AND max_entries = 10000)::text FROM pg_rproxy_cache_stats")
    check(row == "true", f"stats: {gw_value('SELECT * FROM pg_rproxy_cache_stats')}")

    # reset in the gateway, and through the proxy port as rust-pg-proxy users do
    env.psql(qk)
    dropped = int(gw_value("SELECT pg_rproxy_cache_reset()"))
    check(dropped >= 1 and gw_value("SELECT count(*) FROM pg_rproxy_cache_entries()") == "0", f"reset {dropped}")
    env.psql(qk)
    r = env.psql("SELECT rustproxy_cache_reset()", args=("-A", "-t"))
    check(r.returncode == 0 and int(r.stdout) >= 1, f"reset through the proxy: {r.stdout!r} {r.stderr!r}")
    env.psql(qk)
    check(upstream_runs(mk) == 4, "re-executed after each reset")
    try:
        env.gw.reload_with(client_cache_reset="off")
        e = errors(env.wire().query("SELECT pg_rproxy_cache_reset()"))
        check(e and e[0]["C"] == "42501", f"{e}")
    finally:
        env.gw.reload_with(client_cache_reset=None)
    # in the gateway, only administrators may reset or read entries
    env.gw.sql("CREATE ROLE cache_nobody")
    try:
        privs = env.gw.sql("SELECT string_agg(has_function_privilege('cache_nobody', f, 'EXECUTE')::text, ',') FROM "
                           "unnest(ARRAY['pg_rproxy_cache_reset()', 'rustproxy_cache_reset()', "
                           "'pg_rproxy_cache_invalidate(text)', 'pg_rproxy_cache_entries()']) f")
        check(privs == "false,false,false,false", f"unprivileged roles may not reset or read entries: {privs}")
    finally:
        env.gw.sql("DROP ROLE cache_nobody")


@test
def roles_and_time_zones_get_their_own_results():
    q = "SELECT owner, secret FROM secrets ORDER BY secret"
    mine = rows(env.wire().query(q))
    check(mine == [["rproxy_up", "up-1"], ["rproxy_up", "up-2"]], f"{mine}")
    rows(env.wire().query(q))  # now cached for rproxy_up
    try:
        env.gw.reload_with(upstream=f"host=127.0.0.1 port={env.up.port} user=rproxy_other dbname=e2e")
        theirs = rows(env.wire().query(q))
        check(theirs == [["rproxy_other", "other-1"]], f"another role never gets cached rows of the first: {theirs}")
    finally:
        env.gw.reload_with(upstream=None)
    env.wait_proxy()
    check(rows(env.wire().query(q)) == mine, "back to the first role")

    q = "SELECT ts FROM kinds WHERE id = 1"
    utc = rows(env.wire(TimeZone="UTC").query(q))
    tokyo = rows(env.wire(TimeZone="Asia/Tokyo").query(q))
    check(utc == [["2024-02-29 12:34:56.789+00"]], f"{utc}")
    check(tokyo == [["2024-02-29 21:34:56.789+09"]], f"{tokyo}")
    check(rows(env.wire(TimeZone="UTC").query(q)) == utc, "UTC again from the cache")


@test
def fifty_simultaneous_misses_run_once_upstream():
    m = marker("flight")
    q = f"SELECT count(*), sum(b1.x), '{m}' FROM big b1 JOIN big b2 ON b1.id = b2.id"
    expected = rows(env.wire().query("SELECT count(*), sum(b1.x) FROM big b1 JOIN big b2 ON b1.id = b2.id"))
    clients = [env.wire() for _ in range(50)]
    coalesced_before = stats("coalesced_waits")
    start = threading.Barrier(50)
    results = [None] * 50

    def run(i):
        start.wait()
        results[i] = rows(clients[i].query(q))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    want = [expected[0] + [m]]
    check(all(r == want for r in results), f"every client got the right rows: {set(map(str, results))}")
    check(upstream_runs(m) == 1, f"one upstream execution for 50 clients: {upstream_runs(m)}")
    check(stats("coalesced_waits") > coalesced_before, "waits counted")


@test
def eviction_under_a_tiny_budget_keeps_results_correct():
    gw = Cluster(env.base, "tiny-cache-gateway")
    gw.init()
    port = free_port()
    r = env.entrypoint("write-config", os.path.join(gw.data, "postgresql.conf"),
                       env={"UPSTREAM_HOST": "127.0.0.1", "UPSTREAM_PORT": str(env.up.port), "UPSTREAM_USER": "rproxy_up",
                            "UPSTREAM_DATABASE": "e2e", "LISTEN_HOST": "127.0.0.1", "LISTEN_PORT": str(port),
                            "POOL_SIZE": "4", "CACHE_SIZE": "256kB", "MAX_CACHE_ENTRIES": "64"})
    check(r.returncode == 0, r.stderr)
    gw.start()
    try:
        gw.sql("CREATE EXTENSION pg_rproxy")
        env.add_gateway_roles(gw)
        sizes = [random.Random(k).choice([1, 5, 40, 300, 2000]) for k in range(200)]

        def query(k):
            return f"SELECT {k} AS k, g, repeat(chr(65 + g % 26), {sizes[k] % 97 + 1}) FROM generate_series(1, {sizes[k]}) g"

        def expected(k):
            return [[str(k), str(g), chr(65 + g % 26) * (sizes[k] % 97 + 1)] for g in range(1, sizes[k] + 1)]

        failures = []

        def client(i):
            rnd = random.Random(i)
            w = Wire(port)
            w.startup(user="rproxy_up", database="e2e")
            for _ in range(40):
                k = rnd.randrange(200)
                got = rows(w.query(query(k)))
                if got != expected(k):
                    failures.append((k, len(got)))
            w.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not failures, f"wrong results: {failures[:5]}")
        s = gw.sql("SELECT bytes_used || '|' || bytes_budget || '|' || entries || '|' || evictions || '|' || hits "
                   "FROM pg_rproxy_cache_stats").split("|")
        used, budget, entries, evictions, hits = map(int, s)
        check(used <= budget and budget == 256 * 1024, f"budget kept: {s}")
        check(entries <= 64, f"entries within the limit: {s}")
        check(evictions > 0 and hits > 0, f"evicting and hitting: {s}")
        check("terminated by signal" not in open(gw.log).read(), "no worker crashed")
    finally:
        gw.remove()
