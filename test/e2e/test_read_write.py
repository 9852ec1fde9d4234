"""Read-write upstreams: every statement passes, the cache stays fresh after writes, pooling pins
what cannot be carried. Two rows of pg_rproxy_upstreams name the same database of the suite's
upstream cluster: `rw` (transaction pooling, clients use database rwdb) and `rw_session` (session
pooling, clients use rwdb_session). What reached the upstream is checked on it directly."""
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time

import psycopg

from harness import GATEWAY_PASSWORD, check, test
from pgwire import Wire, errors, rows
from test_routing import wait_for

DB = "rwdb"                  # routed to `rw`: transaction pooling
DB_SESSION = "rwdb_session"  # routed to `rw_session`: session pooling, the same data


def setup():
    """Idempotent: other modules clear the routing tables."""
    if not env.up.sql("SELECT 1 FROM pg_database WHERE datname = 'rwdb'"):
        env.up.sql(f"CREATE DATABASE rwdb OWNER {env.upstream_user}")
    conninfo = f"host=localhost port={env.up.port} dbname=rwdb user={env.upstream_user}"
    env.gw.sql("INSERT INTO pg_rproxy_upstreams (name, conninfo, access, pool_mode) VALUES "
               f"('rw', '{conninfo}', 'read_write', 'transaction'), "
               f"('rw_session', '{conninfo}', 'read_write', 'session') "
               "ON CONFLICT (name) DO UPDATE SET conninfo = EXCLUDED.conninfo, access = EXCLUDED.access, "
               "pool_mode = EXCLUDED.pool_mode")
    env.gw.sql("INSERT INTO pg_rproxy_routes (position, database, upstream) VALUES "
               "(9001, 'rwdb', 'rw'), (9002, 'rwdb_session', 'rw_session') ON CONFLICT (position) DO NOTHING")


def connect(db=DB, **kw):
    return psycopg.connect(host="127.0.0.1", port=env.proxy_port, user=env.upstream_user, dbname=db,
                           password=GATEWAY_PASSWORD, autocommit=True, **kw)


def direct(sql):
    return env.up.sql(sql, db="rwdb", user=env.upstream_user)


def wire(db=DB):
    w = Wire(env.proxy_port, timeout=60)
    w.startup(user=env.upstream_user, database=db, password=GATEWAY_PASSWORD)
    return w


def extended(sql):
    """Parse, Bind and Execute of an unnamed statement, without Sync."""
    q = sql.encode() + b"\0"
    parse = b"P" + struct.pack("!I", 4 + 1 + len(q) + 2) + b"\0" + q + b"\0\0"
    bind = b"B" + struct.pack("!I", 4 + 1 + 1 + 2 + 2 + 2) + b"\0\0" + b"\0\0" + b"\0\0" + b"\0\0"
    execute = b"E" + struct.pack("!I", 4 + 1 + 4) + b"\0" + struct.pack("!I", 0)
    return parse + bind + execute


SYNC = b"S" + struct.pack("!I", 4)


def upstream_runs(mark):
    return sum(1 for line in env.up.log_text().splitlines() if "statement: " in line and mark in line)


def worker_of(conn):
    """The proxy worker serving a client (its BackendKeyData pid is the sessions view's pid)."""
    return env.gw.sql(f"SELECT worker FROM pg_rproxy_sessions WHERE pid = {conn.info.backend_pid}")


def pinned_of(conn):
    return env.gw.sql(f"SELECT coalesce(pinned, '-') FROM pg_rproxy_sessions WHERE pid = {conn.info.backend_pid}")


def on_two_workers():
    """Two clients served by different workers."""
    conns = [connect() for _ in range(8)]
    first = worker_of(conns[0])
    other = next((c for c in conns[1:] if worker_of(c) != first), None)
    check(other is not None, "the 8 clients were all served by one worker")
    for c in conns[1:]:
        if c is not other:
            c.close()
    return conns[0], other


@test
def rw_dml_and_ddl_reach_the_upstream():
    setup()
    for db in (DB, DB_SESSION):
        t = f"rw_items_{'s' if db == DB_SESSION else 't'}"
        with connect(db) as c:
            c.execute(f"DROP TABLE IF EXISTS {t}")
            c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, v text)")
            c.execute(f"INSERT INTO {t} SELECT g, 'v' || g FROM generate_series(1, 10) g")
            c.execute(f"UPDATE {t} SET v = 'updated' WHERE id <= 3")
            c.execute(f"DELETE FROM {t} WHERE id > 8")
            c.execute(f"MERGE INTO {t} t USING (VALUES (1, 'merged'), (20, 'new')) s(id, v) ON t.id = s.id "
                      "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)")
            # the extended protocol, with parameters
            c.execute(f"INSERT INTO {t} VALUES (%s, %s)", (30, "param"))
            c.execute("DO $$BEGIN PERFORM 1; END$$")
            got = c.execute(f"SELECT count(*), string_agg(v, ',' ORDER BY id) FROM {t}").fetchone()
        want = direct(f"SELECT count(*) || '|' || string_agg(v, ',' ORDER BY id) FROM {t}")
        check(f"{got[0]}|{got[1]}" == want, f"{db}: proxy saw {got}, upstream has {want}")
        check(want.startswith("10|merged,updated,updated,v4,v5,v6,v7,v8,new,param"), f"{db}: upstream has {want}")


@test
def rw_refuses_only_role_changes_and_denied_names():
    setup()
    with connect() as c:
        for sql in ["SET ROLE postgres", "SET SESSION AUTHORIZATION postgres"]:
            try:
                c.execute(sql)
                raise AssertionError(f"{sql} passed")
            except psycopg.errors.ReadOnlySqlTransaction as e:
                check("cannot be changed through pg_rproxy" in str(e), str(e))
        # what a read-only upstream refuses passes here
        c.execute("BEGIN READ WRITE")
        c.execute("SELECT txid_current()")
        c.execute("COMMIT")
        c.execute("SET default_transaction_read_only = off")
    # a text the gateway's parser refuses goes to the upstream, which answers as it would directly
    via = env.psql("SELEC 1 FROM rw_marker_unparsed", db=DB)
    check(via.returncode != 0 and b"syntax error" in via.stderr, via.stderr)
    logged = [line for line in env.up.log_text().splitlines() if "STATEMENT:  SELEC 1 FROM rw_marker_unparsed" in line]
    check(len(logged) == 1, f"the unparsed text reached the upstream, which refused it: {logged}")


@test
def rw_copy_from_psql_and_extended_protocol():
    setup()
    direct("DROP TABLE IF EXISTS rw_copy; CREATE TABLE rw_copy (id int, payload text)")
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        for i in range(1000):
            f.write(f"{i},line {i}\n")
        path = f.name
    os.chmod(path, 0o644)
    r = env.psql(f"\\copy rw_copy from '{path}' with (format csv)", db=DB)
    check(r.returncode == 0 and b"COPY 1000" in r.stdout, r.stderr)
    check(direct("SELECT count(*), sum(id) FROM rw_copy") == "1000|499500", direct("SELECT count(*) FROM rw_copy"))

    # 100 MB (10 under valgrind) through the extended protocol, in 64 kB CopyData messages.
    target = (10 if env.gw.postgres_wrapper else 100) * 1024 * 1024
    line = "x" * 90
    per_chunk = 700
    chunk = "".join(f"{i},{line}\n" for i in range(per_chunk)).encode()
    chunks = target // len(chunk) + 1
    w = wire()
    w.send(extended("COPY rw_copy FROM STDIN WITH (FORMAT csv)") + SYNC)
    seen = []
    while True:
        t, body = w.read_msg()
        seen.append(t)
        check(t != "E", f"copy refused: {errors([(t, body)])}")
        if t == "G":
            break
    data = b"d" + struct.pack("!I", 4 + len(chunk)) + chunk
    for _ in range(chunks):
        w.send(data)
    w.send(b"c" + struct.pack("!I", 4) + SYNC)
    msgs = w.read_until_ready()
    tags = [b.rstrip(b"\0").decode() for t, b in msgs if t == "C"]
    check(tags == [f"COPY {chunks * per_chunk}"], f"tags {tags}, errors {errors(msgs)}")
    w.close()
    got = direct("SELECT count(*) FROM rw_copy")
    check(got == str(1000 + chunks * per_chunk), f"upstream has {got} rows")


@test
def rw_listen_notify_between_two_clients():
    setup()
    a, b = wire(), wire()
    a.query("LISTEN rw_channel")
    b.query("NOTIFY rw_channel, 'hello from b'")
    t, body = a.read_msg()
    check(t == "A" and b"rw_channel" in body and b"hello from b" in body, f"{t} {body!r}")
    # and within a transaction, delivered at commit
    b.query("BEGIN; NOTIFY rw_channel, 'committed'; COMMIT")
    t, body = a.read_msg()
    check(t == "A" and b"committed" in body, f"{t} {body!r}")
    a.close()
    b.close()


@test
def rw_session_state_pins_and_is_never_reused():
    setup()
    with connect() as c:
        check(pinned_of(c) == "-", f"a new client holds nothing: {pinned_of(c)}")
        c.execute("BEGIN")
        c.execute("SELECT 1")
        check(pinned_of(c) == "transaction", pinned_of(c))
        c.execute("COMMIT")
        check(pinned_of(c) == "-", pinned_of(c))
        c.execute("CREATE TEMP TABLE rw_tmp (x int)")
        check(pinned_of(c) == "temporary table", pinned_of(c))
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        for i in range(5):
            c.execute(f"INSERT INTO rw_tmp VALUES ({i})")
            check(c.execute("SELECT pg_backend_pid()").fetchone()[0] == pid, "the temporary table's connection")
        check(c.execute("SELECT count(*) FROM rw_tmp").fetchone()[0] == 5, "rows of the temporary table")
    # the pinned connection is closed, not pooled again
    wait_for(lambda: direct(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == "0",
               "the temporary table's connection is closed")
    with connect() as c:
        c.execute("PREPARE rw_p (int) AS SELECT $1 * 2")
        check(pinned_of(c) == "PREPARE", pinned_of(c))
        for i in range(3):
            check(c.execute(f"EXECUTE rw_p({i})").fetchone()[0] == i * 2, "EXECUTE on the pinned connection")
    with connect() as c:
        c.execute("SELECT pg_advisory_lock(4242)")
        check(pinned_of(c) == "advisory lock", pinned_of(c))
        check(direct("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242") == "1", "held")
    wait_for(lambda: direct("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242") == "0",
               "the session lock went with its connection")
    with connect(DB_SESSION) as c:
        c.execute("SELECT 1")
        check(pinned_of(c) == "pool_mode session", pinned_of(c))


@test
def rw_cached_select_shows_a_committed_write_at_once():
    setup()
    direct("DROP TABLE IF EXISTS rw_fresh CASCADE; CREATE TABLE rw_fresh (id int PRIMARY KEY, v text); "
           "INSERT INTO rw_fresh VALUES (1, 'old'); CREATE VIEW rw_fresh_view AS SELECT id, upper(v) AS v FROM rw_fresh; "
           "CREATE TABLE rw_fresh_child (id int REFERENCES rw_fresh ON DELETE CASCADE); "
           "INSERT INTO rw_fresh_child VALUES (1); DROP TABLE IF EXISTS rw_unrelated; "
           "CREATE TABLE rw_unrelated (x int); INSERT INTO rw_unrelated VALUES (7)")
    reader, other = on_two_workers()
    writer = connect()
    # What a write to rw_fresh reaches is learnt after the first one (which counts as reaching
    # everything in the meantime): from then on, writes there leave other tables' entries alone.
    writer.execute("UPDATE rw_fresh SET v = v WHERE false")
    queries = {"table": "SELECT v FROM rw_fresh WHERE id = 1 /* rw-fresh-t */",
               "qualified": "SELECT v FROM public.rw_fresh WHERE id = 1 /* rw-fresh-q */",
               "view": "SELECT v FROM rw_fresh_view WHERE id = 1 /* rw-fresh-v */",
               "child": "SELECT count(*) FROM rw_fresh_child /* rw-fresh-c */"}
    unrelated = "SELECT x FROM rw_unrelated /* rw-unrelated */"
    for q in list(queries.values()) + [unrelated]:
        for c in (reader, other, reader):
            c.execute(q).fetchall()
    runs = {k: upstream_runs(q.split("/* ")[1][:-3]) for k, q in queries.items()}
    check(all(n == 1 for n in runs.values()), f"one upstream run each, then the cache: {runs}")

    writer.execute("UPDATE rw_fresh SET v = 'new' WHERE id = 1")
    for c in (reader, other):
        check(c.execute(queries["table"]).fetchone()[0] == "new", "the table's result after the write")
        check(c.execute(queries["qualified"]).fetchone()[0] == "new", "the same table under its qualified name")
        check(c.execute(queries["view"]).fetchone()[0] == "NEW", "the view over the table")
    # an explicit transaction, committed; a cascading delete reaches the child table
    writer.execute("BEGIN")
    writer.execute("DELETE FROM rw_fresh WHERE id = 1")
    check(other.execute(queries["table"]).fetchall() == [("new",)], "uncommitted: still the old row")
    writer.execute("COMMIT")
    for c in (reader, other):
        check(c.execute(queries["table"]).fetchall() == [], "the delete, at once after COMMIT")
        check(c.execute(queries["child"]).fetchone()[0] == 0, "the cascaded delete in the child table")
    # the extended protocol's writes too
    writer.execute("INSERT INTO rw_fresh VALUES (%s, %s)", (1, "again"))
    check(other.execute(queries["table"]).fetchone()[0] == "again", "after a parameterised insert")
    # what no write reached is still served from the cache
    check(other.execute(unrelated).fetchone()[0] == 7, "unrelated")
    check(upstream_runs("rw-unrelated") == 1, f"a table no write reached kept its entry: {upstream_runs('rw-unrelated')} runs")
    for c in (reader, other, writer):
        c.close()


@test
def rw_rolled_back_write_changes_nothing():
    setup()
    direct("DROP TABLE IF EXISTS rw_rb; CREATE TABLE rw_rb (id int, v text); INSERT INTO rw_rb VALUES (1, 'kept')")
    q = "SELECT v FROM rw_rb /* rw-rolled-back */"
    with connect() as c, connect() as w:
        c.execute(q).fetchall()
        c.execute(q).fetchall()
        before = upstream_runs("rw-rolled-back")
        w.execute("BEGIN")
        w.execute("UPDATE rw_rb SET v = 'changed'")
        w.execute("ROLLBACK")
        try:
            w.execute("INSERT INTO rw_rb VALUES (1/0, 'x')")  # an autocommit write that fails
        except psycopg.errors.DivisionByZero:
            pass
        check(c.execute(q).fetchall() == [("kept",)], "the value stays")
        check(upstream_runs("rw-rolled-back") == before, "nothing invalidated: still served from the cache")
    check(direct("SELECT string_agg(v, ',') FROM rw_rb") == "kept", "nothing changed upstream")


def pgbench(*args, db=DB):
    e = dict(os.environ, PGPASSWORD=GATEWAY_PASSWORD)
    e.pop("PGOPTIONS", None)
    return subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", str(env.proxy_port), "-U", env.upstream_user, *args, db],
                          capture_output=True, text=True, env=e, timeout=600)


@test
def rw_pgbench_tpcb_in_both_pool_modes():
    setup()
    r = pgbench("-i", "-s", "1", "-q")
    check(r.returncode == 0, f"pgbench -i through the proxy: {r.stderr[-800:]}")
    seconds = "4" if env.gw.postgres_wrapper else "8"
    processed = 0
    for db, mode in ((DB, "simple"), (DB, "prepared"), (DB_SESSION, "prepared"), (DB_SESSION, "simple")):
        # -n: no VACUUM and TRUNCATE of the history before the run, so that it keeps every run's rows
        r = pgbench("-n", "-c", "8", "-j", "2", "-T", seconds, "-M", mode, db=db)
        check(r.returncode == 0, f"{db} -M {mode}: {r.stderr[-800:]}")
        done = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
        check(done and int(done.group(1)) > 0, f"{db} -M {mode}: {r.stdout[-800:]}")
        check(failed is None or failed.group(1) == "0", f"{db} -M {mode}: {r.stdout[-800:]}")
        processed += int(done.group(1))
        # After each run: the balances agree, and history has one row per transaction.
        sums = direct("SELECT (SELECT sum(abalance) FROM pgbench_accounts) || '|' || (SELECT sum(bbalance) FROM pgbench_branches)"
                      " || '|' || (SELECT sum(tbalance) FROM pgbench_tellers) || '|' || (SELECT sum(delta) FROM pgbench_history)")
        check(len(set(sums.split("|"))) == 1, f"{db} -M {mode}: balances disagree: {sums}")
        history = int(direct("SELECT count(*) FROM pgbench_history"))
        check(history == processed, f"{db} -M {mode}: history has {history} rows, pgbench reported {processed} transactions")


def upstream_has_no_session_of(marker):
    return direct(f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{marker}%' "
                  "AND pid <> pg_backend_pid()") == "0"


@test
def rw_client_killed_mid_transaction_and_mid_copy():
    setup()
    direct("DROP TABLE IF EXISTS rw_killed; CREATE TABLE rw_killed (marker text)")
    w = wire()
    w.query("BEGIN; INSERT INTO rw_killed VALUES ('rw-killed-tx')")
    w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.sock.close()  # a reset, mid-transaction
    wait_for(lambda: upstream_has_no_session_of("rw-killed-tx"), "the open transaction is gone upstream")
    check(direct("SELECT count(*) FROM rw_killed") == "0", "its insert was rolled back")

    w = wire()
    w.send(Wire.query_msg("COPY rw_killed FROM STDIN /* rw-killed-copy */"))
    t, _ = w.read_msg()
    check(t == "G", f"CopyInResponse, not {t}")
    row = b"rw-killed-copy\n" * 100
    w.send(b"d" + struct.pack("!I", 4 + len(row)) + row)
    time.sleep(0.3)
    w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.sock.close()
    wait_for(lambda: upstream_has_no_session_of("rw-killed-copy"), "the copy is gone upstream")
    check(direct("SELECT count(*) FROM rw_killed") == "0", "no copied row stayed")
    with connect() as c:
        check(c.execute("SELECT count(*) FROM rw_killed").fetchone()[0] == 0, "the proxy serves on")


@test
def rw_next_to_read_only_weakens_nothing():
    setup()
    direct("CREATE TABLE IF NOT EXISTS rw_side (x int)")
    # the same client and credentials: writes pass on the read-write route, not on the read-only one
    with connect(DB) as c:
        c.execute("INSERT INTO rw_side VALUES (1)")
    for sql in ["INSERT INTO kinds (id) VALUES (999)", "BEGIN READ WRITE", "SET default_transaction_read_only = off",
                "SELECT txid_current()"]:
        r = env.psql(sql)
        check(r.returncode != 0 and b"not allowed" in r.stderr or b"cannot be changed" in r.stderr,
              f"read-only route let {sql!r} through: {r.stdout} {r.stderr}")
    check(env.up.sql("SELECT count(*) FROM kinds WHERE id = 999", db="e2e") == "0", "no write reached e2e")
    # ... also when asked for in the startup packet
    r = env.psql("SELECT 1", env={"PGOPTIONS": "-c default_transaction_read_only=off"})
    check(r.returncode != 0 and b"default_transaction_read_only cannot be changed" in r.stderr, r.stderr)
    r = env.psql("SELECT 1", env={"PGOPTIONS": "-c role=postgres"}, db=DB)
    check(r.returncode != 0 and b"setting role cannot be changed" in r.stderr, r.stderr)
    # a read-only session stays read-only upstream
    r = env.psql("SHOW default_transaction_read_only")
    check(r.stdout.split()[2] == b"on", r.stdout)
    with connect(DB) as c:
        check(c.execute("SHOW default_transaction_read_only").fetchone()[0] == "off", "read-write session")


@test
def rw_a_pipelined_batch_stays_one_transaction():
    """What a write reaches is not asked inside a batch: the question's own Sync would commit
    the batch's first statements before its error rolls it back."""
    setup()
    direct("DROP TABLE IF EXISTS rw_batch_new; CREATE TABLE rw_batch_new (x int)")
    w = wire()
    w.send(extended("INSERT INTO rw_batch_new VALUES (1)") + extended("SELECT 1/0") + SYNC)
    msgs = w.read_until_ready()
    check([e["C"] for e in errors(msgs)] == ["22012"], f"{errors(msgs)}")
    check(direct("SELECT count(*) FROM rw_batch_new") == "0", "the failed batch's insert was rolled back")
    w.send(extended("INSERT INTO rw_batch_new VALUES (2)") + SYNC)
    check(not errors(w.read_until_ready()), "a batch that commits")
    check(direct("SELECT string_agg(x::text, ',') FROM rw_batch_new") == "2", "committed")
    w.close()


@test
def rw_two_phase_commit_and_large_objects():
    setup()
    direct("DROP TABLE IF EXISTS rw_2pc; CREATE TABLE rw_2pc (x int)")
    q = "SELECT count(*) FROM rw_2pc /* rw-2pc */"
    with connect() as c, connect() as reader:
        check(reader.execute(q).fetchone()[0] == 0, "empty")
        reader.execute(q)
        c.execute("BEGIN")
        c.execute("INSERT INTO rw_2pc VALUES (1)")
        c.execute("PREPARE TRANSACTION 'rw_gid'")
        check(direct("SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'rw_gid'") == "1", "prepared upstream")
        c.execute("COMMIT PREPARED 'rw_gid'")
        check(reader.execute(q).fetchone()[0] == 1, "a cached count sees the committed prepared transaction")
    # the fast-path interface: psql's \lo_import writes a large object with lo_creat/lo_open/lowrite
    with tempfile.NamedTemporaryFile("wb", delete=False) as f:
        f.write(os.urandom(100000))
        path = f.name
    os.chmod(path, 0o644)
    r = env.psql(f"\\lo_import '{path}'", db=DB)
    check(r.returncode == 0 and b"lo_import" in r.stdout, r.stderr)
    oid = r.stdout.split()[1].decode()
    size = direct(f"SELECT length(lo_get({oid}))")
    check(size == "100000", f"the large object upstream has {size} bytes")
    direct(f"SELECT lo_unlink({oid})")


@test
def rw_the_same_client_switches_routes_by_server_name():
    """One client, one role and one database: by TLS server name, a read-write route or a
    read-only one over the same data. The read-only one stays read-only, and its cached reads
    see the writes made through the other at once."""
    import test_routing
    setup()
    test_routing.tls_on()
    conninfo = f"host=localhost port={env.up.port} dbname=rwdb user={env.upstream_user}"
    try:
        env.gw.sql(f"INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('rw_ro_side', '{conninfo}') "
                   "ON CONFLICT (name) DO NOTHING")
        env.gw.sql("INSERT INTO pg_rproxy_routes (position, server_name, upstream) VALUES "
                   "(8990, 'rw.test', 'rw'), (8991, 'ro.test', 'rw_ro_side') ON CONFLICT (position) DO NOTHING")
        direct("DROP TABLE IF EXISTS rw_sni; CREATE TABLE rw_sni (x int); INSERT INTO rw_sni VALUES (1)")
        tls = "hostaddr=127.0.0.1 sslmode=require"

        def run(name, sql):
            return test_routing.psql(f"host={name} {tls}", sql, user=env.upstream_user, db=DB)

        q = "SELECT sum(x) FROM rw_sni /* rw-sni */"
        for _ in range(2):
            r = run("ro.test", q)
            check(r.returncode == 0 and r.stdout.strip() == "1", f"read through ro.test: {r.stdout} {r.stderr}")
        check(upstream_runs("rw-sni") == 1, "the second read came from the cache")
        r = run("ro.test", "INSERT INTO rw_sni VALUES (100)")
        check(r.returncode != 0 and "Write operations are not permitted" in r.stderr, f"ro.test refuses: {r.stderr}")
        r = run("rw.test", "INSERT INTO rw_sni VALUES (10)")
        check(r.returncode == 0, f"rw.test writes: {r.stderr}")
        r = run("ro.test", q)
        check(r.stdout.strip() == "11", f"the read-only route's cached read sees the write at once: {r.stdout}")
        check(direct("SELECT sum(x) FROM rw_sni") == "11", "nothing else reached the upstream")
    finally:
        env.gw.sql("DELETE FROM pg_rproxy_routes WHERE position IN (8990, 8991); "
                   "DELETE FROM pg_rproxy_upstreams WHERE name = 'rw_ro_side'")
        test_routing.tls_off()
