"""Rewrite rules (pg_rproxy_rewrite_rules) and the statement hook (pg_rproxy.statement_hook), in
the simple and the extended protocol: a table name that does not exist mapped to one that does, a
rewrite that tries to smuggle a write, rules per upstream, a disabled rule, plpgsql and plpython3u
hooks that refuse, rewrite and raise, and the context hooks are given. What they make of a
statement is judged like any statement: nothing they write reaches a read-only upstream."""
import json
import time

import psycopg

from harness import GATEWAY_PASSWORD, check, test
from pgwire import errors, rows

MISSING = "SELECT id, txt FROM bi_kinds ORDER BY id"
REAL = "SELECT id, txt FROM kinds ORDER BY id"


def rule(position, pattern, replacement, flags="", upstream=None, enabled=True):
    q = lambda v: "NULL" if v is None else "'" + v.replace("'", "''") + "'"
    env.gw.sql("INSERT INTO pg_rproxy_rewrite_rules (position, upstream, pattern, replacement, flags, enabled) "
               f"VALUES ({position}, {q(upstream)}, {q(pattern)}, {q(replacement)}, {q(flags)}, {enabled})")


def clean():
    env.gw.sql("DELETE FROM pg_rproxy_rewrite_rules")
    env.gw.reload_with(statement_hook=None)


def connect(port=None, user=None, **kw):
    return psycopg.connect(host="127.0.0.1", port=port or env.proxy_port, user=user or env.upstream_user,
                           dbname="e2e", password=GATEWAY_PASSWORD, autocommit=True, **kw)


def direct_rows(sql, *params):
    with psycopg.connect(host="127.0.0.1", port=env.up.port, user=env.upstream_user, dbname="e2e",
                         autocommit=True) as c:
        return c.execute(sql, params or None).fetchall()


def extended(conn, sql, *params, prepare=None):
    """Rows of sql run with Parse/Bind/Execute (a parameter forces the extended protocol)."""
    return conn.execute(sql, params or None, prepare=prepare).fetchall()


def extended_error(conn, sql, *params):
    try:
        conn.execute(sql, params or None).fetchall()
    except psycopg.Error as e:
        return e.sqlstate, e.diag.message_primary, e.diag.message_hint
    raise AssertionError(f"{sql!r} was not refused")


def simple_error(w, sql):
    msgs = w.query(sql)
    e = errors(msgs)
    check(e and msgs[-1][0] == "Z", f"{sql!r}: an error and ReadyForQuery: {msgs}")
    return e[0]


def upstream_t():
    return env.up.sql("SELECT count(*) || ':' || coalesce(sum(a), 0) FROM t", db="e2e")


@test
def a_rule_maps_a_missing_table_to_a_real_one_in_both_protocols():
    try:
        rule(1, r"\mbi_(\w+)", r"\1", "g")
        via = env.psql(MISSING)
        direct = env.psql(REAL, direct=True)
        check(via.returncode == 0 and via.stdout == direct.stdout,
              f"simple: the rows of kinds\nproxy:  {via.stdout[:300]!r} {via.stderr!r}\ndirect: {direct.stdout[:300]!r}")
        w = env.wire()
        check(rows(w.query(MISSING)) == rows(w.query(REAL)), "the same rows as the real name, twice (cached)")
        w.close()
        want = direct_rows("SELECT id, txt FROM kinds WHERE id > %s ORDER BY id", 0)
        check(want, "kinds has rows")
        with connect() as c:
            for prepare in (None, True, True):  # unnamed, then a named prepared statement used twice
                got = extended(c, "SELECT id, txt FROM bi_kinds WHERE id > %s ORDER BY id", 0, prepare=prepare)
                check(got == want, f"extended (prepare={prepare}): {got} != {want}")
        # Rules apply in position order, each on the one before's output; flags as regexp_replace's.
        rule(2, "FROM KINDS", "FROM empty_t", "i")
        r = env.psql("SELECT count(*) FROM bi_kinds", args=("-A", "-t"))
        check(r.stdout.strip() == b"0", f"rule 2 saw rule 1's output: {r.stdout} {r.stderr}")
        # A disabled rule does nothing.
        env.gw.sql("UPDATE pg_rproxy_rewrite_rules SET enabled = false")
        r = env.psql(MISSING)
        check(r.returncode != 0 and b'relation "bi_kinds" does not exist' in r.stderr, f"disabled: {r.stderr}")
        with connect() as c:
            state, _, _ = extended_error(c, "SELECT id FROM bi_kinds WHERE id > %s", 0)
            check(state == "42P01", f"disabled, extended: {state}")
    finally:
        clean()


@test
def a_rewrite_never_smuggles_a_write_past_the_firewall():
    before = upstream_t()
    try:
        rule(1, "AS smuggle_delete", "AS x; DELETE FROM t --")
        rule(2, "^SELECT 2 AS smuggle_insert", "INSERT INTO t SELECT 9, 9")
        rule(3, "^SELECT 3 AS smuggle_two$", "SELECT 3; SELECT 4")
        w = env.wire()
        for q in ("SELECT 1 AS smuggle_delete", "SELECT 2 AS smuggle_insert"):
            e = simple_error(w, q)
            check(e["C"] == "25006", f"{q}: refused as a write: {e}")
        check(rows(w.query("SELECT 3 AS smuggle_two")) == [["3"], ["4"]], "a harmless rewrite runs")
        w.close()
        with connect() as c:
            state, msg, _ = extended_error(c, "SELECT 2 AS smuggle_insert WHERE %s", True)
            check(state == "25006", f"a Parse rewritten to an INSERT: {state} {msg}")
            # Two statements in a Parse are refused before anything is judged, as the server would.
            state, msg, _ = extended_error(c, "SELECT 1 AS smuggle_delete WHERE %s", True)
            check(state in ("25006", "42601"), f"a Parse rewritten to two statements: {state} {msg}")
            check(extended(c, "SELECT 1 WHERE %s", True) == [(1,)], "the session goes on")
        check(upstream_t() == before, f"nothing changed upstream: {upstream_t()} (before {before})")
    finally:
        clean()


@test
def rules_for_one_upstream_apply_to_its_clients_only():
    env.gw.sql("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'icpt_other') THEN "
               "SET LOCAL password_encryption = 'scram-sha-256'; "
               f"CREATE ROLE icpt_other LOGIN PASSWORD '{GATEWAY_PASSWORD}'; END IF; END$$")
    try:
        env.gw.sql("INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES "
                   f"('icpt_up', 'host=127.0.0.1 port={env.up.port} user={env.upstream_user} dbname=e2e')")
        env.gw.sql("INSERT INTO pg_rproxy_routes (position, role, upstream) VALUES (1, 'icpt_other', 'icpt_up')")
        rule(1, r"\mother_kinds\M", "kinds", upstream="icpt_up")
        rule(2, r"\mall_kinds\M", "kinds")
        want = direct_rows("SELECT count(*) FROM kinds")
        with connect(user="icpt_other") as c:
            check(extended(c, "SELECT count(*) FROM other_kinds WHERE %s", True) == want, "icpt_up's rule")
            check(extended(c, "SELECT count(*) FROM all_kinds WHERE %s", True) == want, "the rule for all")
        with connect() as c:
            state, _, _ = extended_error(c, "SELECT count(*) FROM other_kinds WHERE %s", True)
            check(state == "42P01", f"the default upstream's client: icpt_up's rule does not apply ({state})")
            check(extended(c, "SELECT count(*) FROM all_kinds WHERE %s", True) == want, "the rule for all")
    finally:
        env.gw.sql("DELETE FROM pg_rproxy_rewrite_rules; DELETE FROM pg_rproxy_routes; "
                   "DELETE FROM pg_rproxy_upstreams WHERE name = 'icpt_up'")
        clean()


PLPGSQL_HOOK = """
CREATE TABLE IF NOT EXISTS public.icpt_seen (n serial, statement text, context jsonb);
CREATE OR REPLACE FUNCTION public.icpt_hook(statement text, context jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.icpt_seen (statement, context) VALUES (statement, context);
    IF statement LIKE '%refuse me%' THEN
        RETURN NULL;
    ELSIF statement LIKE '%raise me%' THEN
        RAISE EXCEPTION 'the hook says no to %', context ->> 'role' USING ERRCODE = 'P0042', HINT = 'ask the hook';
    ELSIF statement LIKE '%sneak%' THEN
        RETURN 'DELETE FROM t';
    ELSIF statement LIKE '%sleep me%' THEN
        PERFORM pg_sleep(30);
    END IF;
    RETURN replace(statement, 'hooked_kinds', 'kinds');
END
$$;
"""


def last_seen():
    statement, context = env.gw.sql("SELECT statement || E'\\x01' || context FROM public.icpt_seen "
                                    "ORDER BY n DESC LIMIT 1").split("\x01")
    return statement, json.loads(context)


def hook_refusals():
    return int(env.gw.sql("SELECT rejections FROM pg_rproxy_rejections WHERE reason = 'statement_hook'"))


def seen_count():
    return int(env.gw.sql("SELECT count(*) FROM public.icpt_seen"))


@test
def a_plpgsql_hook_refuses_rewrites_and_raises():
    env.gw.sql(PLPGSQL_HOOK)
    try:
        env.gw.reload_with(statement_hook="public.icpt_hook")
        count = direct_rows("SELECT count(*) FROM kinds")[0][0]
        w = env.wire(application_name="icpt_app")
        refusals = hook_refusals()
        e = simple_error(w, "SELECT 'refuse me'")
        check(e["C"] == "42501" and e["M"] == "statement refused by pg_rproxy.statement_hook", f"NULL: {e}")
        e = simple_error(w, "SELECT 'raise me'")
        check(e["C"] == "P0042" and e["M"] == f"the hook says no to {env.upstream_user}" and e.get("H") == "ask the hook",
              f"the hook's own error: {e}")
        check(hook_refusals() == refusals + 2, f"both counted in pg_rproxy_rejections: {hook_refusals() - refusals}")
        check(rows(w.query("SELECT count(*) FROM hooked_kinds")) == [[str(count)]], "the same session goes on, rewritten")
        statement, ctx = last_seen()
        check(statement == "SELECT count(*) FROM hooked_kinds", f"the hook saw the client's text: {statement}")
        check(ctx == {"role": env.upstream_user, "database": "e2e", "server_name": None, "upstream": None,
                      "client_address": "127.0.0.1", "application_name": "icpt_app", "protocol": "simple"},
              f"context: {ctx}")
        e = simple_error(w, "SELECT 'sneak'")
        check(e["C"] == "25006", f"what the hook returns is judged: {e}")
        # Never remembered: a cache hit asks the hook too.
        before = seen_count()
        for _ in range(3):
            check(rows(w.query("SELECT count(*) FROM hooked_kinds")) == [[str(count)]], "rewritten again")
        check(seen_count() == before + 3, f"asked for every statement: {seen_count() - before}")
        w.close()

        # Rules run first; the hook gets their output.
        rule(1, r"\mbi_kinds\M", "hooked_kinds")
        r = env.psql("SELECT count(*) FROM bi_kinds", args=("-A", "-t"))
        check(r.stdout.strip() == str(count).encode(), f"rule then hook: {r.stdout} {r.stderr}")
        check(last_seen()[0] == "SELECT count(*) FROM hooked_kinds", f"the hook saw the rule's output: {last_seen()}")

        with connect(application_name="icpt_ext") as c:
            state, msg, _ = extended_error(c, "SELECT 'refuse me' WHERE %s", True)
            check((state, msg) == ("42501", "statement refused by pg_rproxy.statement_hook"), f"extended NULL: {state} {msg}")
            state, msg, hint = extended_error(c, "SELECT 'raise me' WHERE %s", True)
            check((state, msg, hint) == ("P0042", f"the hook says no to {env.upstream_user}", "ask the hook"),
                  f"extended raise: {state} {msg} {hint}")
            before = seen_count()
            for prepare in (None, None, True, True):
                got = extended(c, "SELECT count(*) FROM hooked_kinds WHERE %s", True, prepare=prepare)
                check(got == [(count,)], f"extended rewrite (prepare={prepare}): {got}")
            check(seen_count() >= before + 3, f"every Parse asks the hook: {seen_count() - before}")
            _, ctx = last_seen()
            check(ctx["protocol"] == "extended" and ctx["application_name"] == "icpt_ext", f"extended context: {ctx}")
            state, _, _ = extended_error(c, "SELECT 'sneak' WHERE %s", True)
            check(state == "25006", f"extended: judged after the hook: {state}")

        # A hook that hangs is stopped after 5 s; the worker serves on.
        start = time.time()
        w = env.wire()
        e = simple_error(w, "SELECT 'sleep me'")
        check(e["C"] == "57014" and time.time() - start < 20, f"a hanging hook times out: {e} after {time.time() - start:.1f}s")
        check(rows(w.query("SELECT 1")) == [["1"]], "and the session goes on")
        w.close()

        # A setting that names no usable function refuses every statement and says why in the log.
        env.gw.reload_with(statement_hook="public.no_such_hook")
        r = env.psql("SELECT 1")
        check(r.returncode != 0 and b"is not a function (statement text, context jsonb) returning text" in r.stderr,
              f"unusable hook: {r.stderr}")
        check("pg_rproxy.statement_hook \"public.no_such_hook\" is not a function" in env.gw.log_text(), "logged")

        # A name without its schema (here of a function that exists) refuses every statement: the
        # worker's search_path must not decide which function filters statements.
        for bad in ["icpt_hook", "a.b.c", "public."]:
            env.gw.reload_with(statement_hook=bad)
            r = env.psql("SELECT 1")
            check(r.returncode != 0 and b"must name a function with its schema" in r.stderr, f"{bad!r}: {r.stderr}")
        check('pg_rproxy.statement_hook "icpt_hook" must name a function with its schema' in env.gw.log_text(),
              "logged")
    finally:
        clean()
        env.gw.sql("DROP FUNCTION IF EXISTS public.icpt_hook(text, jsonb); DROP TABLE IF EXISTS public.icpt_seen")
    check(env.psql("SELECT 1").returncode == 0, "no hook: statements run again")


PLPYTHON_HOOK = """
CREATE OR REPLACE FUNCTION public.icpt_py(statement text, context jsonb) RETURNS text LANGUAGE plpython3u AS $$
import json
c = json.loads(context)
if 'py refuse' in statement:
    return None
if 'py raise' in statement:
    plpy.error('python says no to ' + c['role'], sqlstate='P0043')
if 'py context' in statement:
    return "SELECT " + plpy.quote_literal(c['protocol'] + '/' + c['database'] + '/' + c['client_address'])
return statement.replace('py_kinds', 'kinds')
$$;
"""


@test
def a_plpython3u_hook_refuses_rewrites_and_raises():
    try:
        env.gw.sql("CREATE EXTENSION IF NOT EXISTS plpython3u")
    except Exception as e:  # the package is not installed here
        print(f"    skipped: plpython3u cannot be created in the gateway: {e}")
        return
    env.gw.sql(PLPYTHON_HOOK)
    try:
        env.gw.reload_with(statement_hook="public.icpt_py")
        count = direct_rows("SELECT count(*) FROM kinds")[0][0]
        w = env.wire()
        e = simple_error(w, "SELECT 'py refuse'")
        check(e["C"] == "42501" and e["M"] == "statement refused by pg_rproxy.statement_hook", f"None: {e}")
        e = simple_error(w, "SELECT 'py raise'")
        # (PL/Python puts the exception's class before the message.)
        check(e["C"] == "P0043" and e["M"].endswith(f"python says no to {env.upstream_user}"), f"plpy.error: {e}")
        check(rows(w.query("SELECT count(*) FROM py_kinds")) == [[str(count)]], "rewritten, same session")
        check(rows(w.query("SELECT 'py context'")) == [["simple/e2e/127.0.0.1"]], "the context, as python sees it")
        w.close()
        with connect() as c:
            check(extended(c, "SELECT count(*) FROM py_kinds WHERE %s", True) == [(count,)], "extended rewrite")
            check(extended(c, "SELECT 'py context' WHERE %s", True) == [("extended/e2e/127.0.0.1",)], "extended context")
            state, _, _ = extended_error(c, "SELECT 'py raise' WHERE %s", True)
            check(state == "P0043", f"extended plpy.error: {state}")
    finally:
        clean()
        env.gw.sql("DROP FUNCTION IF EXISTS public.icpt_py(text, jsonb)")
