"""The observers after the statement pipeline: the audit log (one JSON object per line, parsed
here line by line) and the pg_rproxy_statements statistics, both compared with what was run and
with a direct connection."""
import json
import os
import struct
import subprocess
import time

from harness import GATEWAY_PASSWORD, check, test
from pgwire import Wire, errors, rows

_n = [0]


def marker(tag):
    _n[0] += 1
    return f"{tag}_{os.getpid()}_{int(time.time() * 1000) % 10**8}_{_n[0]}"


def audit_path():
    return os.path.join(env.base, "audit.jsonl")


def audit_records(path, wait_for=None, seconds=10):
    """Every line of the audit log (and its rotated copies), each parsed as JSON."""
    deadline = time.time() + seconds
    while True:
        records = []
        for p in [path] + [f"{path}.{i}" for i in range(1, 10)]:
            if not os.path.exists(p):
                continue
            with open(p, "rb") as f:
                for line in f.read().split(b"\n"):
                    if line:
                        records.append(json.loads(line.decode("utf-8")))  # fails the test on bad JSON
        if wait_for is None or wait_for(records) or time.time() > deadline:
            return records
        time.sleep(0.2)


def of_statement(records, mark):
    return [r for r in records if r.get("event") == "statement" and mark in r.get("statement", "")]


PSYCOPG_SCRIPT = r'''
import sys, psycopg
dsn = f"host=127.0.0.1 port={sys.argv[1]} user=rproxy_up dbname=e2e"
with psycopg.connect(dsn, autocommit=True) as conn:
    for _ in range(2):
        conn.execute(f"SELECT id, txt, %s::text AS {sys.argv[2]} FROM kinds WHERE id <= %s ORDER BY id", ("x", 3), prepare=True).fetchall()
'''


MULTI_PARSE = r'''
import sys, psycopg
with psycopg.connect(f"host=127.0.0.1 port={sys.argv[1]} user=rproxy_up dbname=e2e", autocommit=True) as conn:
    try:
        conn.execute(f"SELECT 1 AS {sys.argv[2]}; SELECT %s::int", (2,))
    except psycopg.Error as e:
        print(e.sqlstate)
'''


@test
def audit_log_has_one_json_line_per_statement_and_login():
    path = audit_path()
    for p in [path] + [f"{path}.{i}" for i in range(1, 10)]:
        if os.path.exists(p):
            os.remove(p)
    env.gw.reload_with(audit_log=path, audit_log_statement="full")
    try:
        hit = marker("audit_hit")
        q = f"SELECT id, txt, '{hit}' AS m FROM kinds ORDER BY id"
        direct_rows = int(env.up.sql(f"SELECT count(*) FROM ({q}) s", db="e2e"))
        for _ in range(2):
            r = env.psql(q)
            check(r.returncode == 0, r.stderr)
        refused = marker("audit_refused")
        r = env.psql(f"INSERT INTO kinds (id, txt) VALUES (9999, '{refused}')")
        check(r.returncode != 0, "the write is refused")
        volatile = marker("audit_now")
        check(env.psql(f"SELECT now(), '{volatile}'").returncode == 0, "now()")
        # Any byte a statement may hold still makes one line of valid JSON.
        odd = marker("audit_odd")
        odd_sql = f"SELECT 'tab\there \"quoted\" back\\slash\nnewline \x01\x1f ünïcødé €', '{odd}'"
        r = env.psql(odd_sql)
        check(r.returncode == 0, r.stderr)
        ext = marker("audit_ext")
        r = subprocess.run(["/usr/bin/python3", "-c", PSYCOPG_SCRIPT, str(env.proxy_port), ext], capture_output=True,
                           text=True)
        check(r.returncode == 0, r.stderr[-1000:])
        w = Wire(env.proxy_port)
        try:
            w.startup(user=env.upstream_user, password="not the password")
        except Exception:
            pass
        w.close()

        records = audit_records(path, lambda rs: len(of_statement(rs, ext)) >= 2 and any(
            r.get("outcome") == "password_failed" for r in rs))
        for r in records:
            for field in ("time", "event", "session", "role", "database", "client_address", "server_name", "upstream"):
                check(field in r, f"{field} missing in {r}")
        hits = of_statement(records, hit)
        check([r["cache"] for r in hits] == ["miss", "hit"], f"a miss then a hit: {hits}")
        for r in hits:
            check(r["verdict"] == "allowed" and r["sqlstate"] == "00000" and r["rows"] == direct_rows,
                  f"rows as direct ({direct_rows}): {r}")
            check(r["statement"] == q and r["protocol"] == "simple" and r["role"] == env.upstream_user
                  and r["database"] == "e2e" and r["client_address"] == "127.0.0.1", r)
            check(isinstance(r["duration_ms"], (int, float)) and r["duration_ms"] >= 0, r)
        ref = of_statement(records, refused)
        check(len(ref) == 1 and ref[0]["verdict"] == "refused" and ref[0]["sqlstate"] == "25006"
              and ref[0]["refusal_sqlstate"] == "25006" and ref[0]["reason"] == "statement_kind", f"refusal: {ref}")
        now = of_statement(records, volatile)
        check(len(now) == 1 and now[0]["cache"] == "uncacheable:not_deterministic", f"uncacheable: {now}")
        oddr = of_statement(records, odd)
        check(len(oddr) == 1 and oddr[0]["statement"] == odd_sql, f"bytes kept exactly: {oddr}")
        extr = of_statement(records, ext)
        check([r["protocol"] for r in extr] == ["extended", "extended"], f"extended: {extr}")
        check([r["cache"] for r in extr] == ["miss", "hit"] and all(r["rows"] == 3 for r in extr), f"extended: {extr}")
        logins = [r for r in records if r.get("event") == "connection"]
        check(any(r["outcome"] == "authenticated" and r["role"] == env.upstream_user and r["session"] == hits[0]["session"]
                  for r in logins), f"the login of the first statement's session: {logins[:5]}")
        failed = [r for r in logins if r["outcome"] == "password_failed"]
        check(failed and failed[-1]["sqlstate"] == "28P01" and failed[-1]["role"] == env.upstream_user, f"{failed}")
        with open(path, "rb") as f:
            check(GATEWAY_PASSWORD.encode() not in f.read(), "no password in the audit log")

        # a statement the hook refuses is audited as refused, and a Parse the proxy refuses too
        env.gw.sql("CREATE OR REPLACE FUNCTION public.obs_hook(statement text, context jsonb) RETURNS text "
                   "LANGUAGE plpgsql AS $$BEGIN IF statement LIKE '%obs_refuse_me%' THEN RETURN NULL; END IF; "
                   "RETURN statement; END$$")
        env.gw.reload_with(statement_hook="public.obs_hook")
        hooked = marker("obs_refuse_me")
        r = env.psql(f"SELECT '{hooked}'")
        check(r.returncode != 0 and b"statement refused by pg_rproxy.statement_hook" in r.stderr, r.stderr)
        env.gw.reload_with(statement_hook=None)
        # An Execute cut short by its row limit (PortalSuspended) counts the rows it sent.
        susp = marker("audit_suspended")
        w = env.wire()
        m = frontend
        sql = f"SELECT g, '{susp}' FROM generate_series(1, 5) g"
        w.send(m("P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0)) + m("B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
               + m("E", b"\0" + struct.pack("!i", 2)) * 3 + m("S", b""))
        types = [t for t, _ in w.read_until_ready()]
        check(types.count("s") == 2 and types.count("D") == 5 and types.count("C") == 1, f"suspended twice: {types}")
        w.close()
        multi = marker("audit_multi")
        r = subprocess.run(["/usr/bin/python3", "-c", MULTI_PARSE, str(env.proxy_port), multi], capture_output=True,
                           text=True)
        check(r.returncode == 0 and "42601" in r.stdout, r.stdout + r.stderr[-500:])
        records = audit_records(path, lambda rs: of_statement(rs, hooked) and of_statement(rs, multi)
                                and len(of_statement(rs, susp)) == 3)
        sp = of_statement(records, susp)
        check([r["rows"] for r in sp] == [2, 2, 1] and all(r["sqlstate"] == "00000" for r in sp), f"suspended: {sp}")
        h = of_statement(records, hooked)
        check(len(h) == 1 and h[0]["verdict"] == "refused" and h[0]["sqlstate"] == "42501", f"hook refusal: {h}")
        mp = of_statement(records, multi)
        check(len(mp) == 1 and mp[0]["verdict"] == "refused" and mp[0]["protocol"] == "extended"
              and mp[0]["sqlstate"] == "42601", f"refused Parse: {mp}")

        # normalized: literals do not reach the log
        env.gw.reload_with(audit_log_statement="normalized")
        secret = marker("audit_secret_literal")
        check(env.psql(f"SELECT count(*) FROM kinds WHERE txt = '{secret}'").returncode == 0, "normalized run")
        time.sleep(1)
        with open(path) as f:
            check(secret not in f.read(), "a normalized statement keeps no literal")

        # off: nothing more is written
        env.gw.reload_with(audit_log="")
        size = os.path.getsize(path)
        check(env.psql("SELECT 1").returncode == 0, "runs with the log off")
        time.sleep(1)
        check(os.path.getsize(path) == size, "nothing written once off")
    finally:
        env.gw.reload_with(audit_log=None, audit_log_statement=None, audit_log_size=None, audit_log_files=None,
                           statement_hook=None)


def frontend(t, body):
    return t.encode() + struct.pack("!i", len(body) + 4) + body


def parse_bind_execute_sync(sql):
    return (frontend("P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
            + frontend("B", b"\0\0" + struct.pack("!hhh", 0, 0, 0)) + frontend("E", b"\0" + struct.pack("!i", 0))
            + frontend("S", b""))


@test
def statements_whose_upstream_cannot_be_reached_are_audited_with_the_error():
    """Neither protocol's statement goes unrecorded when no upstream connection can be had: the
    client logs in, then its upstream database stops taking connections."""
    path = audit_path()
    env.up.sql("DROP DATABASE IF EXISTS obs_gone WITH (FORCE)")
    env.up.sql("CREATE DATABASE obs_gone")
    env.up.sql("GRANT ALL ON DATABASE obs_gone TO PUBLIC")
    # No dbname: the client's database.
    env.gw.sql(f"INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('obs_gone', "
               f"'host=127.0.0.1 port={env.up.port} user={env.upstream_user} connect_timeout=2')")
    env.gw.sql("INSERT INTO pg_rproxy_routes (position, database, upstream) VALUES (9171, 'obs_gone', 'obs_gone')")
    env.gw.reload_with(audit_log=path, audit_log_statement="full")
    try:
        simple, extended = marker("unreached_simple"), marker("unreached_extended")
        # Run once while the database is up, so that the proxy knows their descriptions: run again,
        # their Parse is answered by the proxy, and what finds no connection is the Bind (now():
        # not cacheable) or the Execute (cacheable, its Bind held for the cache; the cache is
        # emptied in between).
        at_bind, at_execute = marker("unreached_bind"), marker("unreached_execute")
        described = [f"SELECT now(), '{at_bind}'", f"SELECT '{at_execute}'"]
        w = env.wire(database="obs_gone")
        check(rows(w.query("SELECT current_database()")) == [["obs_gone"]], "routed to obs_gone")
        for sql in described:
            w.send(parse_bind_execute_sync(sql))
            check(not errors(w.read_until_ready()), f"the first run of {sql}")
        env.gw.sql("SELECT pg_rproxy_cache_reset()")
        env.up.sql("ALTER DATABASE obs_gone ALLOW_CONNECTIONS false")
        env.up.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'obs_gone'")
        told = {}
        e = errors(w.query(f"SELECT '{simple}'"))
        check(e, "simple: no error")
        told[simple] = ("simple", e[0]["C"])
        w.send(parse_bind_execute_sync(f"SELECT '{extended}'"))
        msgs = w.read_until_ready()
        check(errors(msgs), f"extended: {msgs}")
        told[extended] = ("extended", errors(msgs)[0]["C"])
        for mark, sql in zip((at_bind, at_execute), described):
            w.send(parse_bind_execute_sync(sql))
            msgs = w.read_until_ready()
            check(errors(msgs) and msgs[0] == ("1", b""), f"{sql}: Parse answered, then the error: {msgs}")
            told[mark] = ("extended", errors(msgs)[0]["C"])
        w.close()
        records = audit_records(path, lambda rs: all(len(of_statement(rs, m)) == (2 if m in (at_bind, at_execute) else 1)
                                                     for m in told))
        for mark, (protocol, code) in told.items():
            r = of_statement(records, mark)
            if mark in (at_bind, at_execute):
                check(len(r) == 2 and r[0]["sqlstate"] == "00000" and r[0]["rows"] == 1, f"the first run: {r}")
                r = r[1:]
            check(len(r) == 1 and r[0]["verdict"] == "allowed" and r[0]["sqlstate"] == code
                  and r[0]["protocol"] == protocol and r[0]["upstream"] == "obs_gone" and r[0]["rows"] == 0,
                  f"{mark} (the client got {code}): {r}")
    finally:
        env.gw.sql("DELETE FROM pg_rproxy_routes WHERE position = 9171; DELETE FROM pg_rproxy_upstreams WHERE name = 'obs_gone'")
        env.gw.reload_with(audit_log=None, audit_log_statement=None)
        env.up.sql("DROP DATABASE IF EXISTS obs_gone WITH (FORCE)")


@test
def audit_log_keeps_what_the_client_sent_beside_what_ran_and_any_byte_as_json():
    """A rewrite rule changes the text: the line shows what ran (judged, cached) and what the client
    sent, in both protocols. A statement holding every byte value, invalid UTF-8 included, is still
    one line that a JSON parser reads."""
    path = os.path.join(env.base, "audit-sent.jsonl")
    for p in [path] + [f"{path}.{i}" for i in range(1, 10)]:
        if os.path.exists(p):
            os.remove(p)
    env.gw.sql("DELETE FROM pg_rproxy_rewrite_rules WHERE position = 7001")
    env.gw.sql("INSERT INTO pg_rproxy_rewrite_rules (position, pattern, replacement) "
               "VALUES (7001, '\\mobs_missing_table\\M', 'kinds')")
    env.gw.reload_with(audit_log=path, audit_log_statement="full")
    try:
        mark = marker("audit_sent")
        sent = f"SELECT count(*) AS n, '{mark}' AS m FROM obs_missing_table"
        ran = sent.replace("obs_missing_table", "kinds")
        direct = env.up.sql(f"SELECT count(*) FROM kinds", db="e2e")
        r = env.psql(sent, args=("-At",))
        check(r.returncode == 0 and r.stdout.decode().split("|")[0] == direct, f"rows through the rule: {r.stdout} {r.stderr}")
        w = env.wire()
        for _ in range(2):
            w.send(parse_bind_execute_sync(sent))
            types = [t for t, _ in w.read_until_ready()]
            check("E" not in types and types.count("D") == 1, f"extended through the rule: {types}")
        unchanged = marker("audit_unchanged")
        w.query(f"SELECT '{unchanged}'")
        # every byte but NUL and the quote; 0x80-0xff are not UTF-8 on their own
        odd = marker("audit_bytes")
        raw = bytes(b for b in range(1, 256) if b != 0x27)
        body = b"SELECT '" + raw + b"', '" + odd.encode() + b"'\0"
        w.send(b"Q" + struct.pack("!I", len(body) + 4) + body)
        answer = w.read_until_ready()
        w.close()

        records = audit_records(path, lambda rs: len(of_statement(rs, mark)) >= 3 and of_statement(rs, odd))
        got = of_statement(records, mark)
        check([g["protocol"] for g in got] == ["simple", "extended", "extended"], f"three statements: {got}")
        check(got[-1]["cache"] == "hit", f"the rewritten text is what the cache keys: {got}")
        for g in got:
            check(g["statement"] == ran and g.get("rewritten") is True and g.get("sent_statement") == sent, f"{g}")
        same = of_statement(records, unchanged)
        check(len(same) == 1 and "rewritten" not in same[0] and "sent_statement" not in same[0], f"{same}")
        b = of_statement(records, odd)
        check(len(b) == 1, f"one line for the odd bytes: {b}")
        text = b[0]["statement"]
        ascii_part = raw[:raw.index(0x80)].decode("ascii")
        check(ascii_part in text, f"bytes 0x01-0x7f kept exactly: {text!r}")
        check("\ufffd" in text and text.count("\ufffd") == 0x80, f"each invalid byte one U+FFFD: {text!r}")
        code = errors(answer)[0].get("C") if errors(answer) else "00000"
        check(b[0]["sqlstate"] == code, f"the answer's SQLSTATE {code}: {b[0]}")
    finally:
        env.gw.sql("DELETE FROM pg_rproxy_rewrite_rules WHERE position = 7001")
        env.gw.reload_with(audit_log=None, audit_log_statement=None)


@test
def audit_log_rotates_by_size_keeping_whole_lines():
    path = os.path.join(env.base, "audit-rotate.jsonl")
    env.gw.reload_with(audit_log=path, audit_log_size="8kB", audit_log_files=2)
    try:
        mark = marker("rot")
        for i in range(120):
            check(env.psql(f"SELECT '{mark}_{i:04d}' AS padding_padding_padding_padding_padding").returncode == 0, "run")
        records = audit_records(path, lambda rs: len(of_statement(rs, f"{mark}_0119")) == 1)
        check(os.path.exists(path + ".1") and os.path.exists(path + ".2"), "rotated files")
        check(not os.path.exists(path + ".3"), "no more than audit_log_files rotated files")
        for p in (path, path + ".1", path + ".2"):
            check(os.path.getsize(p) <= 8 * 1024 + 2048, f"{p} near its size bound: {os.path.getsize(p)}")
        check(len(of_statement(records, f"{mark}_0119")) == 1, "the last statement is in the current file")
    finally:
        env.gw.reload_with(audit_log=None, audit_log_size=None, audit_log_files=None)


def statements(where):
    out = env.gw.sql("SELECT coalesce(upstream, '-'), role, calls, cache_hits, refusals, rows, "
                     "total_time > 0, mean_time * calls - total_time < 0.001, p50_time <= p99_time, "
                     "p99_time <= max_time, statement FROM pg_rproxy_statements WHERE " + where)
    return [line.split("|") for line in out.splitlines() if line]


@test
def statement_statistics_count_calls_hits_rows_and_refusals():
    env.gw.sql("SELECT pg_rproxy_statements_reset()")
    mark = marker("stats")
    q = f"SELECT id, txt FROM kinds WHERE txt <> '{mark}' ORDER BY id"
    direct_rows = int(env.up.sql(f"SELECT count(*) FROM ({q}) s", db="e2e"))
    for _ in range(5):
        check(env.psql(q).returncode == 0, "runs")
    check(env.psql("INSERT INTO kinds (id) VALUES (424242)").returncode != 0, "refused")
    # One statement whatever the literal: the view holds it normalised, without the marker.
    rows = statements("statement LIKE 'select id , txt from kinds where txt <> %'")
    check(len(rows) == 1, f"one row: {rows}")
    up, role, calls, hits, refusals, nrows, timed, mean_ok, p_ok, p99_ok, text = rows[0]
    check(up == "-" and role == env.upstream_user, rows[0])
    check((calls, hits, refusals, nrows) == ("5", "4", "0", str(5 * direct_rows)), f"calls/hits/rows: {rows[0]}")
    check(timed == "t" and mean_ok == "t" and p_ok == "t" and p99_ok == "t", f"times: {rows[0]}")
    check(mark not in text, "normalised")
    ins = statements("statement LIKE 'insert into kinds%'")
    check(len(ins) == 1 and ins[0][2] == "1" and ins[0][4] == "1", f"the refusal: {ins}")
    check(env.gw.sql("SELECT has_table_privilege('public', 'pg_rproxy_statements', 'SELECT')") == "f", "not public")
    check(int(env.gw.sql("SELECT pg_rproxy_statements_reset()")) >= 2, "reset counts what it forgot")
    check(statements("true") == [], "empty after reset")
    check(env.psql(q).returncode == 0, "runs again")
    again = statements("statement LIKE 'select id , txt from kinds where txt <> %'")
    check(len(again) == 1 and again[0][2] == "1", f"counting again after reset: {again}")


EVICT_SCRIPT = r'''
import sys, psycopg
with psycopg.connect(f"host=127.0.0.1 port={sys.argv[1]} user=rproxy_up dbname=e2e", autocommit=True) as conn:
    for _ in range(30):
        conn.execute("SELECT 1 AS frequently_used").fetchall()
    for i in range(int(sys.argv[2])):
        conn.execute(f"SELECT 1 AS once_{i}").fetchall()
'''


@test
def statement_statistics_stay_bounded_and_keep_the_most_used():
    env.gw.sql("SELECT pg_rproxy_statements_reset()")
    limit = int(env.gw.sql("SHOW pg_rproxy.statements_max"))
    r = subprocess.run(["/usr/bin/python3", "-c", EVICT_SCRIPT, str(env.proxy_port), str(limit + 500)],
                       capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, r.stderr[-1000:])
    kept = int(env.gw.sql("SELECT count(*) FROM pg_rproxy_statements"))
    check(0 < kept <= limit, f"{kept} statements kept, limit {limit}")
    check(env.gw.sql("SELECT calls FROM pg_rproxy_statements WHERE statement LIKE '%frequently_used%'") == "30",
          "the most used statement stays")
    env.gw.sql("SELECT pg_rproxy_statements_reset()")
