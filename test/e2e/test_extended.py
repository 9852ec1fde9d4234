"""The extended query protocol: raw message sequences answered as PostgreSQL answers them, and real
drivers (pgbench, psycopg 3, psycopg2) getting the same results as from a direct connection."""
import os
import struct
import subprocess

from harness import check, test
from pgwire import Wire, error_fields, rows


def cstr(s):
    return s.encode() + b"\0"


def msg(t, body=b""):
    return t.encode() + struct.pack("!I", len(body) + 4) + body


def parse(name, sql, types=()):
    return msg("P", cstr(name) + cstr(sql) + struct.pack("!H", len(types)) + b"".join(struct.pack("!I", t) for t in types))


def bind(portal, stmt, params=(), param_formats=(), result_formats=()):
    body = cstr(portal) + cstr(stmt) + struct.pack("!H", len(param_formats))
    body += b"".join(struct.pack("!h", f) for f in param_formats)
    body += struct.pack("!H", len(params))
    for p in params:
        body += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p)) + p
    body += struct.pack("!h", len(result_formats)) + b"".join(struct.pack("!h", f) for f in result_formats)
    return msg("B", body)


def describe(kind, name):
    return msg("D", kind.encode() + cstr(name))


def execute(portal, max_rows=0):
    return msg("E", cstr(portal) + struct.pack("!i", max_rows))


def close(kind, name):
    return msg("C", kind.encode() + cstr(name))


SYNC = msg("S")


def first_error(batch):
    """Sends one batch through the proxy; the fields of the first ErrorResponse (None if none)."""
    w = Wire(env.proxy_port)
    w.startup(user="rproxy_up", database="e2e")
    w.send(batch)
    found = None
    while True:
        t, body = w.read_msg()
        if t == "E" and found is None:
            found = error_fields(body)
        if t == "Z":
            break
    w.close()
    return found


def exchange(port, batches):
    """Sends each batch (ending with Sync) and returns what came back, summarised comparably."""
    w = Wire(port)
    w.startup(user="rproxy_up", database="e2e")
    out = []
    for batch in batches:
        w.send(batch)
        while True:
            t, body = w.read_msg()
            if t == "E":
                out.append(("E", error_fields(body)["C"]))
            elif t == "D":
                out.append(("D", tuple(r for r in rows([(t, body)])[0])))
            elif t in ("C", "Z"):
                out.append((t, body.rstrip(b"\0").decode()))
            elif t == "N":
                continue
            else:
                out.append((t, body.hex() if t in ("T", "t") else ""))
            if t == "Z":
                break
    w.close()
    return out


def same_as_direct(batches, what):
    via = exchange(env.proxy_port, batches)
    direct = exchange(env.up.port, batches)
    check(via == direct, f"{what}:\n proxy  {via}\n direct {direct}")
    return via


@test
def extended_protocol_answers_like_postgresql():
    q = "SELECT id, txt FROM kinds WHERE id <= $1 ORDER BY id"
    same_as_direct([parse("s1", q, [23]) + describe("S", "s1") + bind("", "s1", [b"2"]) + describe("P", "") +
                    execute("") + SYNC], "named statement, text")
    same_as_direct([parse("", q) + bind("", "", [struct.pack("!i", 4)], [1], [1]) + describe("P", "") + execute("") + SYNC],
                   "unnamed statement, binary parameter and results")
    same_as_direct([parse("", "SELECT 1") + bind("", "") + execute("") + parse("", "SELECT 2") + bind("", "") +
                    execute("") + SYNC], "pipelined statements before one Sync")
    same_as_direct([parse("", "") + bind("", "") + describe("P", "") + execute("") + SYNC], "empty query")
    # row limits: PortalSuspended, then the rest; a portal ends with its implicit transaction
    five = "SELECT g FROM generate_series(1, 5) g"
    same_as_direct([msg("Q", cstr("BEGIN")),
                    parse("", five) + bind("c", "") + execute("c", 2) + execute("c", 2) + execute("c", 2) + SYNC,
                    msg("Q", cstr("COMMIT"))], "row limits inside a transaction")
    same_as_direct([parse("", five) + bind("c", "") + execute("c", 2) + SYNC, execute("c", 2) + SYNC],
                   "Execute on a suspended portal after Sync")
    # statements: reuse of a name after Close, and duplicates
    same_as_direct([parse("x", "SELECT 1") + close("S", "x") + parse("x", "SELECT 2") + bind("", "x") + execute("") + SYNC],
                   "name reused after Close")
    same_as_direct([parse("dup", "SELECT 1") + parse("dup", "SELECT 1") + SYNC + parse("", "SELECT 'after'") +
                    bind("", "") + execute("") + SYNC], "duplicate statement name, then the session continues")


@test
def extended_protocol_bad_input_gets_the_servers_errors():
    same_as_direct([bind("", "nope") + execute("") + SYNC, parse("", "SELECT 1") + bind("", "") + execute("") + SYNC],
                   "Bind to an unknown statement, skipped up to Sync")
    same_as_direct([parse("p2", "SELECT $1::int + $2::int") + bind("", "p2", [b"1"]) + execute("") + SYNC],
                   "wrong parameter count")
    same_as_direct([parse("", "SELECT $1::int") + bind("", "", [b"1"], [7]) + execute("") + SYNC], "invalid format code")
    # (a runtime error: PostgreSQL raises constant-folding errors such as 1/0 already at Bind, where it
    # plans; the proxy binds locally and reports them at Execute)
    same_as_direct([parse("", "SELECT 1/(g - 1) FROM generate_series(1, 2) g") + bind("", "") + execute("") +
                    parse("", "SELECT 1") + bind("", "") + execute("") + SYNC], "an upstream error skips the rest of the batch")
    same_as_direct([execute("never_bound") + SYNC], "Execute of an unknown portal")
    same_as_direct([describe("S", "never_parsed") + SYNC], "Describe of an unknown statement")
    same_as_direct([parse("", "SELECT * FROM no_such_table") + SYNC], "an error at Parse")
    same_as_direct([parse("", "SELECT 1; SELECT 2") + SYNC], "two statements in one Parse")


@test
def firewall_judges_at_parse():
    w = Wire(env.proxy_port)
    w.startup(user="rproxy_up", database="e2e")
    w.send(parse("w", "DELETE FROM guarded") + bind("", "w") + execute("") + SYNC)
    got = []
    while True:
        t, body = w.read_msg()
        got.append((t, error_fields(body)["C"] if t == "E" else ""))
        if t == "Z":
            break
    check(got == [("E", "25006"), ("Z", "")], f"rejected at Parse, nothing else: {got}")
    w.send(bind("", "w") + execute("") + SYNC)
    t, body = w.read_msg()
    check(t == "E" and error_fields(body)["C"] == "26000", "the rejected statement never got a handle")
    w.close()
    check(env.up.sql("SELECT count(*) FROM guarded", db="e2e") == "3", "upstream unchanged")


@test
def pgbench_select_only_in_every_protocol_mode():
    subprocess.run(["pgbench", "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", str(env.up.port), "-U", "postgres", "e2e"],
                   capture_output=True, check=True)
    env.up.sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO rproxy_up", db="e2e")
    for mode in ["simple", "extended", "prepared"]:
        for port in [env.proxy_port, env.up.port]:
            r = subprocess.run(["pgbench", "-n", "-S", "-M", mode, "-c", "4", "-j", "2", "-t", "200", "-h", "127.0.0.1",
                                "-p", str(port), "-U", "rproxy_up", "e2e"], capture_output=True, text=True)
            check(r.returncode == 0 and "number of failed transactions: 0" in r.stdout,
                  f"pgbench -M {mode} on {port}: {r.stdout[-400:]} {r.stderr[-400:]}")
            check("number of transactions actually processed: 800/800" in r.stdout, r.stdout)


DRIVER_SCRIPT = r'''
import datetime, decimal, sys, uuid
import psycopg, psycopg2
from psycopg.types.json import Jsonb
port = int(sys.argv[1])
dsn = f"host=127.0.0.1 port={port} user=rproxy_up dbname=e2e"
out = []
with psycopg.connect(dsn) as conn:
    cur = conn.cursor()
    cur.execute("SELECT %s::int, %s::bigint, %s::numeric, %s::text, %s::bytea, %s::timestamptz, %s::date, "
                "%s::uuid, %s::json, %s::jsonb, %s::int[], %s::text",
                (7, 2**40, decimal.Decimal("12.345"), "grüße", b"\x00\xff", datetime.datetime(2024, 1, 2, 3, 4, 5,
                 tzinfo=datetime.timezone.utc), datetime.date(2024, 2, 29), uuid.UUID(int=42), Jsonb({"a": 1}),
                 Jsonb([1, None]), [1, 2], None))
    out.append(cur.fetchall())
    cur.execute("SELECT * FROM kinds WHERE id <> 4 ORDER BY id")  # psycopg cannot load 'infinity'
    out.append(cur.fetchall())
    cur.execute("SELECT id, txt, ts::text FROM kinds ORDER BY id")
    out.append(cur.fetchall())
    bcur = conn.cursor(binary=True)
    bcur.execute("SELECT id, i8, num, txt, raw, ts, arr, jb FROM kinds WHERE id <> %s ORDER BY id", (4,))
    out.append(bcur.fetchall())
    for i in range(4):
        cur.execute("SELECT count(*), max(h) FROM big WHERE id < %s", (i * 10,), prepare=True)
        out.append(cur.fetchone())
    cur.executemany("SELECT %s::int * 2", [(1,), (2,), (3,)])
    try:
        cur.execute("SELECT 1/%s", (0,))
    except psycopg.Error as e:
        out.append(("error", e.sqlstate))
    conn.rollback()
    cur.execute("SELECT 'still fine'")
    out.append(cur.fetchone())
with psycopg2.connect(dsn) as conn2:
    c2 = conn2.cursor()
    c2.execute("SELECT id, txt, num, arr FROM kinds WHERE id IN %s ORDER BY id", ((1, 2, 3),))
    out.append(c2.fetchall())
print(repr(out))
'''


@test
def psycopg3_and_psycopg2_match_a_direct_connection():
    def run(port):
        r = subprocess.run(["/usr/bin/python3", "-c", DRIVER_SCRIPT, str(port)], capture_output=True, text=True,
                           env=dict(os.environ, PGTZ="UTC"))
        check(r.returncode == 0, f"driver script on {port}: {r.stderr[-1500:]}")
        return r.stdout
    via, direct = run(env.proxy_port), run(env.up.port)
    check(via == direct, f"psycopg results differ:\n proxy  {via[:1500]}\n direct {direct[:1500]}")


@test
def bind_execute_results_are_cached_by_parameters_and_formats():
    import time as _time
    mark = f"xcache-{int(_time.time() * 1000) % 10**8}"
    q = f"SELECT id, txt, '{mark}' AS m FROM kinds WHERE id <= $1 ORDER BY id"

    def batch(value, fmt):
        return [parse("", q, [23]) + bind("", "", [value], [0], [fmt]) + describe("P", "") + execute("") + SYNC]

    def upstream_executions():
        return sum(1 for l in env.up.log_text().splitlines() if "execute" in l and mark in l and "statement:" not in l)

    before = upstream_executions()
    first = exchange(env.proxy_port, batch(b"2", 0))
    for _ in range(3):
        check(exchange(env.proxy_port, batch(b"2", 0)) == first, "a hit sends the same messages")
    check(upstream_executions() - before == 1, f"one upstream execution: {upstream_executions() - before}")
    check(first == exchange(env.up.port, batch(b"2", 0)), "and they are the server's messages")
    direct_runs = upstream_executions()
    exchange(env.proxy_port, batch(b"3", 0))
    exchange(env.proxy_port, batch(b"2", 1))
    check(upstream_executions() - direct_runs == 2, "another value, another format: separate entries")
    check(exchange(env.proxy_port, batch(b"2", 1)) == exchange(env.up.port, batch(b"2", 1)), "binary hit is exact")


def run_driver(cmd, port):
    r = subprocess.run(cmd + [str(port)], capture_output=True, text=True, env=dict(os.environ, PGTZ="UTC", TZ="UTC"))
    check(r.returncode == 0, f"{cmd[0]} against {port}: {r.stdout[-800:]} {r.stderr[-1500:]}")
    return r.stdout


@test
def node_postgres_matches_a_direct_connection():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
    cmd = ["node", os.path.join(here, "driver.js")]
    via, direct = run_driver(cmd, env.proxy_port), run_driver(cmd, env.up.port)
    check('"rejected","25006"' in via, f"the write was refused through the proxy: {via[-300:]}")
    # Direct, the DELETE is refused by privileges (42501) instead: compare everything else.
    check(via.replace('"rejected","25006"', "R") == direct.replace('"rejected","42501"', "R"),
          f"node-postgres results differ:\n proxy  {via[:1200]}\n direct {direct[:1200]}")


@test
def pgjdbc_matches_a_direct_connection():
    import tempfile
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "java", "JdbcCheck.java")
    jar = "/usr/share/java/postgresql.jar"
    build = tempfile.mkdtemp(prefix="jdbc")
    r = subprocess.run(["javac", "-d", build, src], capture_output=True, text=True)
    check(r.returncode == 0, r.stderr)
    cmd = ["java", "-cp", f"{build}:{jar}", "JdbcCheck"]
    via, direct = run_driver(cmd, env.proxy_port), run_driver(cmd, env.up.port)
    check("write refused 25006" in via, f"{via[-300:]}")
    check(via.replace("write refused 25006", "W") == direct.replace("write refused 42501", "W"),
          f"pgjdbc results differ:\n proxy  {via[:1500]}\n direct {direct[:1500]}")


def raw_rows(port, batch):
    w = Wire(port)
    w.startup(user="rproxy_up", database="e2e", DateStyle="ISO, MDY", TimeZone="UTC")
    w.send(batch)
    got = []
    while True:
        t, body = w.read_msg()
        if t in ("D", "T", "E", "C"):
            got.append((t, body.hex() if t != "E" else error_fields(body)["C"]))
        if t == "Z":
            break
    w.close()
    return got


@test
def mixed_text_and_binary_columns_match_the_servers_bytes():
    cols = ["1::int2", "-2::int4", "3000000000::int8", "1.5::float4", "-2.25e-10::float8", "true", "'x'::text",
            "'y'::varchar", "'z'::bpchar(3)", "'n'::name", "42::oid", "'\\x00ff'::bytea",
            "'00000000-0000-0000-0000-00000000002a'::uuid", "'2024-02-29'::date", "'1999-12-31'::date",
            "'12:34:56.789'::time", "'2024-02-29 12:34:56.789'::timestamp", "'1970-01-01 00:00:00'::timestamp",
            "'2024-02-29 12:34:56.789+05:30'::timestamptz", "'-1234.5600'::numeric", "'NaN'::numeric",
            "'0.0001'::numeric", "'10000'::numeric", "'0'::numeric", "'{\"a\": 1}'::json", "'{\"a\": 1}'::jsonb",
            "'{1,NULL,3}'::int4[]", "'{\"a b\",\"c\\\\\"d\",NULL}'::text[]", "'{}'::int8[]", "'infinity'::date",
            "'-infinity'::timestamptz", "NULL::int4", "'grüße'::text", "'text stays text'"]
    q = "SELECT " + ", ".join(cols)
    formats = [1] * (len(cols) - 1) + [0]
    batch = parse("", q) + bind("", "", result_formats=formats) + describe("P", "") + execute("") + SYNC
    via, direct = raw_rows(env.proxy_port, batch), raw_rows(env.up.port, batch)
    check(via == direct, f"mixed-format rows differ:\n proxy  {via}\n direct {direct}")


@test
def clients_cannot_touch_the_proxys_pooled_statements():
    w = Wire(env.proxy_port)
    w.startup(user="rproxy_up", database="e2e")
    w.send(parse("mine", "SELECT 41 + 1") + bind("", "mine") + execute("") + SYNC)
    while w.read_msg()[0] != "Z":
        pass
    for stmt in ["DEALLOCATE pg_rproxy_1", "EXECUTE pg_rproxy_1", "DEALLOCATE \"pg_rproxy_2\""]:
        e = [error_fields(b)["C"] for t, b in w.query(stmt) if t == "E"]
        check(e == ["26000"], f"{stmt}: {e}")
    check(rows(w.query("DEALLOCATE mine")) == [], "its own statement can be deallocated")
    w.close()
    env.same_as_direct("SELECT count(*) FROM kinds")


@test
def listen_through_the_extended_protocol_delivers_notifications_while_idle():
    w = Wire(env.proxy_port)
    w.startup(user="rproxy_up", database="e2e")
    w.send(parse("", "LISTEN ext_channel") + bind("", "") + execute("") + SYNC)
    while w.read_msg()[0] != "Z":
        pass
    env.up.sql("NOTIFY ext_channel, 'idle delivery'", db="e2e")
    w.sock.settimeout(5)
    t, body = w.read_msg()
    check(t == "A" and b"ext_channel\0idle delivery\0" in body, f"NotificationResponse while idle, got {t} {body!r}")
    w.close()


UDT_SCRIPT = r'''
import sys
import psycopg
from psycopg.types.composite import CompositeInfo, register_composite
from psycopg.types.enum import EnumInfo, register_enum
from psycopg.types.range import RangeInfo, register_range

port = int(sys.argv[1])
out = []
with psycopg.connect(f"host=127.0.0.1 port={port} user=rproxy_up dbname=e2e") as conn:
    q = "SELECT m, d, p, r, ir FROM udt ORDER BY d"
    cur = conn.cursor(binary=True)
    cur.execute(q)  # unregistered: as psycopg loads types it does not know
    out.append(cur.fetchall())
    register_enum(EnumInfo.fetch(conn, "mood"), conn)
    register_composite(CompositeInfo.fetch(conn, "pair"), conn)
    register_range(RangeInfo.fetch(conn, "floatrange"), conn)
    cur = conn.cursor(binary=True)
    cur.execute(q + " DESC")
    out.append(cur.fetchall())
    cur.execute("SELECT ARRAY[m], ARRAY[p], d + %s FROM udt WHERE m = %s ORDER BY d", (1, "ok"))
    out.append(cur.fetchall())
print(repr(out))
'''


@test
def psycopg_binary_cursors_over_user_defined_types_match_a_direct_connection():
    env.up.sql("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); "
               "CREATE DOMAIN posint AS integer CHECK (VALUE > 0); "
               "CREATE TYPE pair AS (a integer, b text); "
               "CREATE TYPE floatrange AS RANGE (subtype = float8); "
               "CREATE TABLE udt (m mood, d posint, p pair, r floatrange, ir int4range); "
               "INSERT INTO udt VALUES ('happy', 1, (1, 'x'), '[1.5,2.5)', '[1,10)'), "
               "('ok', 2, (NULL, 'y z'), 'empty', '(,5]'), ('sad', 3, NULL, '(0.25,)', NULL); "
               "GRANT SELECT ON udt TO rproxy_up", db="e2e")
    try:
        def run(port):
            r = subprocess.run(["/usr/bin/python3", "-c", UDT_SCRIPT, str(port)], capture_output=True, text=True)
            check(r.returncode == 0, f"driver script on {port}: {r.stderr[-1500:]}")
            return r.stdout
        via, direct = run(env.proxy_port), run(env.up.port)
        check("happy" in direct and "Range" in direct, f"the types were loaded: {direct[:400]}")
        check(via == direct, f"psycopg results differ:\n proxy  {via[:1500]}\n direct {direct[:1500]}")
    finally:
        env.up.sql("DROP TABLE udt; DROP TYPE floatrange; DROP TYPE pair; DROP DOMAIN posint; DROP TYPE mood", db="e2e")
