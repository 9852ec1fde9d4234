"""Statements through the proxy give what the upstream gives; writes never reach it."""
import hashlib
import re

from harness import check, test
from pgwire import StartupError, Wire, errors, rows

PARITY_QUERIES = [
    "SELECT * FROM kinds ORDER BY id",
    "SELECT id, i4, i8, num, num * 2 AS doubled FROM kinds ORDER BY id",
    "SELECT txt, length(txt), octet_length(txt) FROM kinds ORDER BY id",
    "SELECT raw, encode(raw, 'hex') FROM kinds ORDER BY id",
    "SELECT ts, ts AT TIME ZONE 'Asia/Tokyo' AS tokyo, date_trunc('day', ts) FROM kinds ORDER BY id",
    "SELECT arr, tarr, arr[1], array_length(arr, 1) FROM kinds ORDER BY id",
    "SELECT js, jb, jb -> 'k', jsonb_typeof(jb) FROM kinds ORDER BY id",
    "SELECT NULL AS n, NULL::int AS ni, '' AS empty",
    "SELECT * FROM empty_t",
    "SELECT * FROM kinds WHERE false",
    "VALUES (1, 'one'), (2, 'two')",
    "TABLE guarded",
    "SELECT 1; SELECT 'two' AS second; SHOW TimeZone",
    "SHOW server_version",
    "SELECT current_user, current_database(), current_setting('application_name')",
    "EXPLAIN (COSTS off) SELECT * FROM big WHERE id < 10",
    "SELECT count(*), sum(x), min(h), max(h) FROM big",
    "SELECT notice_me('hello')",
]


@test
def psql_output_matches_direct_for_all_types():
    for q in PARITY_QUERIES:
        env.same_as_direct(q)
    env.same_as_direct("SELECT * FROM kinds ORDER BY id", args=("-x",))
    env.same_as_direct("SELECT * FROM kinds ORDER BY id", args=("-A", "-F", "|"))


@test
def hundred_thousand_rows_match_direct():
    q = "SELECT * FROM big ORDER BY id"
    via = env.psql(q)
    direct = env.psql(q, direct=True)
    check(via.returncode == 0, via.stderr)
    check(via.stdout.count(b"\n") > 100000, "expected 100000 rows")
    check(hashlib.sha256(via.stdout).digest() == hashlib.sha256(direct.stdout).digest(), "100k-row output differs")


@test
def upstream_errors_relayed_with_every_field():
    # psql's verbose mode prints SQLSTATE, position, and the server's source location: all fields.
    for q in ["SELECT 1/0", "SELECT * FROM no_such_table", "SELECT id FROM kinds WHERE nope = 1",
              "SELECT 1; SELECT 1/0; SELECT 3"]:
        env.same_as_direct(q, args=("-v", "VERBOSITY=verbose"))
    w = env.wire()
    e = errors(w.query("SELECT 1/0"))
    check(e and e[0]["C"] == "22012" and e[0]["M"] == "division by zero", f"{e}")
    msgs = w.query("SELECT *\nFROM no_such_table")
    e = errors(msgs)
    check(e and e[0]["C"] == "42P01" and e[0]["P"] == "15", f"42P01 with position 15: {e}")
    check(msgs[-1] == ("Z", b"I"), f"ReadyForQuery idle after error: {msgs[-1]}")
    w.close()


@test
def notices_relayed_with_detail_and_hint():
    w = env.wire()
    msgs = w.query("SELECT notice_me('x')")
    notices = [m for m in msgs if m[0] == "N"]
    check(len(notices) == 1, f"one NoticeResponse: {msgs}")
    from pgwire import error_fields
    f = error_fields(notices[0][1])
    check(f["M"] == "notice from upstream: x" and f["D"] == "detail text" and f["H"] == "hint text" and
          f["C"] == "00000", f"{f}")
    w.close()


@test
def empty_query_and_multi_statement_messages():
    w = env.wire()
    msgs = w.query("")
    check([t for t, _ in msgs] == ["I", "Z"], f"EmptyQueryResponse: {msgs}")
    msgs = w.query("SELECT 1 AS a; SELECT 'x' AS b, NULL AS c")
    check([t for t, _ in msgs] == ["T", "D", "C", "T", "D", "C", "Z"], f"two results: {[t for t, _ in msgs]}")
    check(rows(msgs) == [["1"], ["x", None]], f"{rows(msgs)}")
    tags = [b.rstrip(b"\0") for t, b in msgs if t == "C"]
    check(tags == [b"SELECT 1", b"SELECT 1"], f"{tags}")
    # RowDescription carries the table OID and column number of table columns
    msgs = w.query("SELECT id, txt FROM kinds WHERE id = 1")
    desc = [b for t, b in msgs if t == "T"][0]
    oid = int(env.up.sql("SELECT 'kinds'::regclass::oid", db="e2e"))
    check(oid.to_bytes(4, "big") + (1).to_bytes(2, "big") + (23).to_bytes(4, "big") in desc,
          "RowDescription has table OID, column 1, int4")
    w.close()


WRITES = {
    "INSERT": "INSERT INTO guarded VALUES (777101)",
    "UPDATE": "UPDATE guarded SET id = 777102",
    "DELETE": "DELETE FROM guarded WHERE id <> 777103",
    "CREATE TABLE": "CREATE TABLE t777104 (a int)",
    "DROP TABLE": "DROP TABLE guarded /* 777105 */",
    "TRUNCATE TABLE": "TRUNCATE guarded /* 777106 */",
}


@test
def writes_rejected_with_25006_and_never_reach_upstream():
    before = env.up.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM guarded", db="e2e")
    for kind, q in WRITES.items():
        r = env.psql(q)
        expected = f"ERROR:  Write operations are not permitted: {kind} statements are not allowed"
        check(r.returncode != 0 and expected in r.stderr.decode(), f"{q}: {r.stderr!r}")
        w = env.wire()
        msgs = w.query(q)
        e = errors(msgs)
        check(e and e[0]["C"] == "25006" and e[0]["S"] == "ERROR", f"{q}: {e}")
        check(msgs[-1] == ("Z", b"I"), "session stays usable")
        check(rows(w.query("SELECT 5")) == [["5"]], "next statement served")
        w.close()
    # A write hidden after a read, or in a data-modifying CTE: the whole string is refused.
    for q in ["SELECT 777107; DROP TABLE guarded", "WITH d AS (DELETE FROM guarded RETURNING *) SELECT 777108 FROM d",
              "SELECT 777109 INTO newtab", "SELECT * FROM guarded FOR UPDATE /* 777110 */"]:
        r = env.psql(q)
        check(r.returncode != 0 and "Write operations are not permitted" in r.stderr.decode(), f"{q}: {r.stderr!r}")
    # (the log is read before the checks below, whose own text would name the markers)
    leaked = re.findall(r"7771\d\d", env.up.log_text())
    check(not leaked, f"rejected statements reached the upstream: {leaked}")
    after = env.up.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM guarded", db="e2e")
    check(before == after == "1,2,3", f"upstream data unchanged: {before} -> {after}")
    check(env.up.sql("SELECT count(*) FROM pg_class WHERE relname IN ('t777104', 'newtab')", db="e2e") == "0",
          "no table created upstream")


@test
def syntax_errors_answered_by_gateway_with_position():
    r = env.psql("SELEC 777201")
    direct = env.psql("SELEC 777201", direct=True)
    check(r.stderr == direct.stderr, f"same text as the server's: {r.stderr!r} vs {direct.stderr!r}")
    w = env.wire()
    e = errors(w.query("SELECT 1 FROM kinds WHERE 777202 ="))
    check(e and e[0]["C"] == "42601" and e[0]["P"] == "35", f"{e}")
    w.close()
    check("777202" not in env.up.log_text(), "the gateway answered without the upstream")


@test
def parameter_status_and_per_client_settings():
    w = env.wire(application_name="e2e-app", client_encoding="LATIN1",
              options="-c DateStyle=SQL,DMY --extra-float-digits=1")
    version = env.up.sql("SHOW server_version")
    p = w.params
    check(p.get("server_version") == version, f"server_version {p.get('server_version')} vs {version}")
    check(p.get("application_name") == "e2e-app", f"{p}")
    check(p.get("client_encoding") == "LATIN1", f"{p}")
    check(p.get("DateStyle") == "SQL, DMY", f"{p}")
    for name in ["server_encoding", "TimeZone", "IntervalStyle", "integer_datetimes", "standard_conforming_strings",
                 "is_superuser", "session_authorization"]:
        check(name in p, f"{name} reported: {p}")
    check(p["session_authorization"] == "rproxy_up" and p["is_superuser"] == "off", f"{p}")
    check(rows(w.query("SHOW DateStyle")) == [["SQL, DMY"]], "client's own DateStyle in force")
    check(rows(w.query("SELECT current_setting('extra_float_digits')")) == [["1"]], "options applied")
    # Another client on the same pooled connections sees none of it.
    other = env.wire()
    check(other.params.get("DateStyle") == "ISO, MDY", f"{other.params}")
    check(rows(other.query("SHOW DateStyle")) == [["ISO, MDY"]], "no leak between clients")
    check(rows(other.query("SELECT current_setting('application_name')")) == [[""]], "no leak of application_name")
    check(rows(w.query("SHOW DateStyle")) == [["SQL, DMY"]], "first client still has its own")
    other.close()
    w.close()
    # an invalid setting fails the login like a server would
    bad = Wire(env.proxy_port)
    try:
        bad.startup(user="rproxy_up", DateStyle="nonsense")
        raise AssertionError("an invalid DateStyle got in")
    except StartupError as failure:
        e = failure.fields
    check(e["S"] == "FATAL" and e["C"] == "22023", f"{e}")


@test
def workers_view_counts_clients_and_statements():
    before = int(env.gw.sql("SELECT sum(statements) FROM pg_rproxy_workers"))
    w = env.wire()
    for _ in range(5):
        w.query("SELECT 1")
    check(int(env.gw.sql("SELECT sum(clients) FROM pg_rproxy_workers")) >= 1, "connected client counted")
    after = int(env.gw.sql("SELECT sum(statements) FROM pg_rproxy_workers"))
    check(after - before >= 5, f"statements {before} -> {after}")
    busy_idle = env.gw.sql("SELECT sum(upstream_busy) + sum(upstream_idle) FROM pg_rproxy_workers")
    check(int(busy_idle) >= 1, "upstream connections counted")
    w.close()
