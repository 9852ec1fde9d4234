"""Client authentication against gateway roles: methods, the rules table, role attributes, the
upstream credentials per role, and what a failure reveals (nothing) and costs (a fixed delay)."""
import subprocess
import time

from harness import GATEWAY_PASSWORD, check, test
from pgwire import StartupError, Wire, error_fields, rows


def attempt(user, password, port=None, **startup):
    """Startup through the proxy: ('ok', wire) or ('error', fields)."""
    w = Wire(port or env.proxy_port)
    try:
        w.startup(user=user, password=password, **startup)
        return "ok", w
    except StartupError as e:
        w.close()
        return "error", e.fields


def expect_refused(user, password, sqlstate, message_part, **startup):
    kind, got = attempt(user, password, **startup)
    if kind == "ok":
        got.close()
        raise AssertionError(f"{user} got in")
    check(got.get("C") == sqlstate and message_part in got.get("M", ""), f"{user}: {got}")
    return got


def set_rules(*rules):
    env.gw.sql("DELETE FROM pg_rproxy_auth_rules")
    if not rules:  # the upstreams the rules named go with them
        env.gw.sql("DELETE FROM pg_rproxy_upstreams WHERE name LIKE 'auth_e2e_%'")
    for r in rules:
        env.gw.sql("INSERT INTO pg_rproxy_auth_rules (position, connection_type, databases, roles, address, method, upstream) "
                   f"VALUES ({r})")


def events():
    return dict(line.split("|") for line in env.gw.sql("SELECT event, connections FROM pg_rproxy_connection_events").split())


@test
def scram_wrong_password_unknown_and_expired_roles_get_28P01_and_no_upstream_connection():
    env.gw.sql("SET password_encryption = 'scram-sha-256'; "
               "CREATE ROLE expired_analyst LOGIN PASSWORD 'pw' VALID UNTIL '2001-01-01'")
    env.up.sql("CREATE ROLE auth_probe LOGIN", db="e2e")
    probe = f"host=127.0.0.1 port={env.up.port} user=auth_probe dbname=e2e"
    env.gw.sql(f"INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('auth_e2e_probe', '{probe}')")
    set_rules("1, 'host', 'all', 'all', NULL, 'scram-sha-256', 'auth_e2e_probe'")
    try:
        before = events()
        started = time.time()
        expect_refused("rproxy_up", "Wr0ng-Pa55", "28P01", 'password authentication failed for user "rproxy_up"')
        check(time.time() - started >= 0.15, "a failed attempt is answered after the fixed delay")
        expect_refused("nobody_here", "x", "28P01", 'password authentication failed for user "nobody_here"')
        expect_refused("expired_analyst", "pw", "28P01", "password authentication failed")
        probes = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'auth_probe'"
        check(env.up.sql(probes) == "0", "no upstream connection for a failed login")
        kind, w = attempt("rproxy_up", GATEWAY_PASSWORD)
        check(kind == "ok" and rows(w.query("SELECT 1")) == [["1"]], "the right password gets in")
        check(env.up.sql(probes) != "0", "the rule's upstream serves the client")
        w.close()
        after = events()
        check(int(after["password_failed"]) >= int(before["password_failed"]) + 3, f"counted: {after}")
        log = env.gw.log_text()
        check("Wr0ng-Pa55" not in log and GATEWAY_PASSWORD not in log, "no password in the gateway log")
    finally:
        set_rules()


@test
def rules_first_match_wins_and_apply_to_the_next_connection():
    env.gw.sql("SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD 'md5 pw'; "
               "SET password_encryption = 'scram-sha-256'; CREATE ROLE analysts NOLOGIN; "
               "CREATE ROLE ana LOGIN PASSWORD 'ana pw' IN ROLE analysts; CREATE ROLE nologin_user PASSWORD 'x'; "
               "CREATE ROLE limited LOGIN PASSWORD 'lim' CONNECTION LIMIT 1; CREATE ROLE trusted LOGIN")
    try:
        set_rules("1, 'host', 'all', 'trusted', '127.0.0.1/32', 'trust', NULL",
                  "2, 'host', 'all', 'blocked', NULL, 'reject', NULL",
                  "3, 'host', 'e2e', 'md5_user', NULL, 'md5', NULL",
                  "4, 'host', 'all', '+analysts', '127.0.0.0/8', 'scram-sha-256', NULL",
                  "5, 'host', 'all', 'rproxy_up, nologin_user, limited', NULL, 'scram-sha-256', NULL")
        kind, w = attempt("trusted", "")
        check(kind == "ok", f"trust: {w}")
        w.close()
        kind, w = attempt("md5_user", "md5 pw")
        check(kind == "ok", f"md5: {w}")
        w.close()
        expect_refused("md5_user", "md5 px", "28P01", "password authentication failed")
        expect_refused("md5_user", "md5 pw", "28000", 'no pg_rproxy_auth_rules entry for host "127.0.0.1", user "md5_user", '
                       'database "postgres", no encryption', database="postgres")
        kind, w = attempt("ana", "ana pw")
        check(kind == "ok", f"+group: {w}")
        w.close()
        expect_refused("blocked", "", "28000", "pg_rproxy_auth_rules rejects connection")
        expect_refused("nologin_user", "x", "28000", 'role "nologin_user" is not permitted to log in')
        kind, first = attempt("limited", "lim")
        check(kind == "ok", f"limited: {first}")
        expect_refused("limited", "lim", "53300", 'too many connections for role "limited"')
        first.close()
        time.sleep(0.3)
        kind, w = attempt("limited", "lim")
        check(kind == "ok", "the slot is free again after the first client left")
        w.close()
        # a change applies to the next connection, no restart
        set_rules("1, 'host', 'all', 'all', NULL, 'reject', NULL")
        expect_refused("ana", "ana pw", "28000", "rejects connection")
    finally:
        set_rules()


@test
def per_role_upstream_credentials_and_the_cache_keyed_by_upstream_role():
    env.up.sql("CREATE ROLE rproxy_limited LOGIN", db="e2e")
    env.gw.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE mapped_analyst LOGIN PASSWORD 'm pw'; "
               "INSERT INTO pg_rproxy_role_mapping VALUES ('mapped_analyst', 'rproxy_limited', NULL)")
    env.up.sql("GRANT SELECT ON guarded TO rproxy_up", db="e2e")
    try:
        kind, w = attempt("mapped_analyst", "m pw")
        check(kind == "ok", f"{w}")
        check(rows(w.query("SELECT current_user")) == [["rproxy_limited"]], "runs upstream as the mapped user")
        # rproxy_up may read guarded and fills the cache; the mapped role may not, cache or not
        owner = env.wire()
        check(rows(owner.query("SELECT id FROM guarded ORDER BY id /* cache me */")) == [["1"], ["2"], ["3"]], "owner reads")
        owner.close()
        msgs = w.query("SELECT id FROM guarded ORDER BY id /* cache me */")
        errs = [error_fields(b) for t, b in msgs if t == "E"]
        check(errs and errs[0]["C"] == "42501", f"another upstream role never gets the cached rows: {msgs}")
        w.close()
        r = subprocess.run(["psql", "-X", "-h", env.gw.dir, "-p", str(env.gw.port), "-U", "postgres", "-d", "postgres",
                            "-c", "SET ROLE mapped_analyst", "-c", "SELECT * FROM pg_rproxy_role_mapping"],
                           capture_output=True, text=True)
        check("permission denied" in r.stderr, f"only superusers read the mapping: {r.stderr!r}")
    finally:
        env.gw.sql("DELETE FROM pg_rproxy_role_mapping")


@test
def connection_events_view_counts_authentications():
    before = int(events()["authenticated"])
    env.wire().close()
    check(int(events()["authenticated"]) == before + 1, "one more authenticated connection")


@test
def what_is_learned_about_one_upstream_is_never_applied_to_another():
    """A function of the same name is STABLE on one upstream and VOLATILE on another: each client is
    judged by its own upstream's pg_proc, however often the other ran it first."""
    env.up.sql("CREATE DATABASE e2e_other")
    env.up.sql("CREATE FUNCTION public.probe_fn() RETURNS integer LANGUAGE sql STABLE AS 'SELECT 1'", db="e2e")
    env.up.sql("CREATE FUNCTION public.probe_fn() RETURNS integer LANGUAGE sql VOLATILE AS 'SELECT 2'", db="e2e_other")
    env.gw.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE routed_other LOGIN PASSWORD 'pw'")
    other = f"host=127.0.0.1 port={env.up.port} user=rproxy_up dbname=e2e_other"
    env.gw.sql(f"INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('auth_e2e_other', '{other}')")
    set_rules("1, 'host', 'all', 'routed_other', NULL, 'scram-sha-256', 'auth_e2e_other'",
              "2, 'host', 'all', 'all', NULL, 'scram-sha-256', NULL")
    try:
        for _ in range(3):  # learnt on the first upstream, remembered per worker
            kind, w = attempt("rproxy_up", GATEWAY_PASSWORD)
            check(kind == "ok", f"rproxy_up: {w}")
            check(rows(w.query("SELECT probe_fn()")) == [["1"]], "STABLE on e2e: allowed")
            w.close()
        for _ in range(3):
            kind, w = attempt("routed_other", "pw", database="e2e_other")
            check(kind == "ok", f"routed_other: {w}")
            msgs = w.query("SELECT probe_fn()")
            w.close()
            errs = [error_fields(b) for t, b in msgs if t == "E"]
            check(errs and errs[0]["C"] == "25006" and "volatile" in errs[0]["M"],
                  f"VOLATILE on e2e_other: refused, got {msgs}")
        kind, w = attempt("rproxy_up", GATEWAY_PASSWORD)
        check(rows(w.query("SELECT probe_fn()")) == [["1"]], "and still allowed on e2e")
        w.close()
    finally:
        env.gw.sql("DELETE FROM pg_rproxy_auth_rules")
        env.gw.sql("DROP ROLE routed_other")
        env.up.sql("DROP FUNCTION public.probe_fn()", db="e2e")
        env.up.sql("DROP DATABASE e2e_other WITH (FORCE)")


def gets_in(user, password, what):
    kind, w = attempt(user, password)
    check(kind == "ok", f"{what}: {w}")
    w.close()


@test
def logins_read_the_catalog_only_after_it_changes():
    env.gw.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE snap_user LOGIN PASSWORD 'first pw'; "
               "CREATE ROLE snap_group NOLOGIN")
    try:
        set_rules("1, 'host', 'all', '+snap_group', NULL, 'reject', NULL",
                  "2, 'host', 'all', 'all', NULL, 'scram-sha-256', NULL")
        before = int(events()["auth_catalog_read"])
        for _ in range(20):
            gets_in("snap_user", "first pw", "repeated login")
            expect_refused("snap_nobody", "x", "28P01", "password authentication failed")
        reads = int(events()["auth_catalog_read"]) - before
        check(reads <= 4, f"40 logins, {reads} catalog reads (one per role and worker at most)")
        # Every kind of change applies to the very next login, in every worker.
        env.gw.sql("ALTER ROLE snap_user PASSWORD 'second pw'")
        for _ in range(3):
            expect_refused("snap_user", "first pw", "28P01", "password authentication failed")
        gets_in("snap_user", "second pw", "the new password")
        env.gw.sql("GRANT snap_group TO snap_user")
        for _ in range(3):
            expect_refused("snap_user", "second pw", "28000", "rejects connection")
        env.gw.sql("REVOKE snap_group FROM snap_user")
        gets_in("snap_user", "second pw", "membership revoked")
        env.gw.sql("UPDATE pg_rproxy_auth_rules SET roles = 'snap_user' WHERE position = 1")
        for _ in range(3):
            expect_refused("snap_user", "second pw", "28000", "rejects connection")
        env.gw.sql("BEGIN; DELETE FROM pg_rproxy_auth_rules WHERE position = 1; ROLLBACK")
        expect_refused("snap_user", "second pw", "28000", "rejects connection")
        env.gw.sql("TRUNCATE pg_rproxy_auth_rules")  # no rules: the password alone decides again
        gets_in("snap_user", "second pw", "after TRUNCATE")
        env.gw.sql("CREATE ROLE snap_nobody LOGIN PASSWORD 'x'")
        set_rules("1, 'host', 'all', 'all', NULL, 'scram-sha-256', NULL")
        gets_in("snap_nobody", "x", "a role created after failed logins gets in")
        env.gw.sql("ALTER ROLE snap_nobody RENAME TO snap_renamed")
        expect_refused("snap_nobody", "x", "28P01", "password authentication failed")
        env.gw.sql("ALTER ROLE snap_renamed PASSWORD 'x'")  # a rename clears an MD5 password only
        gets_in("snap_renamed", "x", "the renamed role")
    finally:
        set_rules()
        env.gw.sql("DROP ROLE IF EXISTS snap_user; DROP ROLE IF EXISTS snap_group; DROP ROLE IF EXISTS snap_nobody; "
                   "DROP ROLE IF EXISTS snap_renamed")
