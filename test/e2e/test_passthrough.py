"""Authentication passthrough: clients with no gateway role log in to an upstream that asks for
passwords (SCRAM-SHA-256, md5 or cleartext per role, in its pg_hba.conf), the proxy relaying the
exchange. What a client sees is compared with a direct connection to that upstream."""
import atexit
import os
import subprocess
import threading
import time

import psycopg

from cluster import Cluster, as_pg
from harness import check, test

PT = {}
PASSWORDS = {"pt_scram": "scram pw", "pt_md5": "md5 pw", "pt_clear": "clear pw", "pt_target": "target pw"}


def upstream():
    """A cluster of its own, whose pg_hba asks each role for its password."""
    if "c" in PT:
        return PT["c"]
    c = Cluster(env.base, "passthrough")
    c.init("password_encryption = 'scram-sha-256'\n")
    as_pg(["sh", "-c", f"cat > '{c.data}/pg_hba.conf'"], input="local all all trust\n"
          "host all pt_md5 127.0.0.1/32 md5\n"
          "host all pt_clear 127.0.0.1/32 password\n"
          "host all all 127.0.0.1/32 scram-sha-256\n")
    c.start()
    atexit.register(c.stop, "immediate", False)
    c.sql("CREATE DATABASE ptdb")
    c.sql(f"CREATE ROLE pt_scram LOGIN PASSWORD '{PASSWORDS['pt_scram']}'; "
          f"CREATE ROLE pt_clear LOGIN PASSWORD '{PASSWORDS['pt_clear']}'; "
          f"CREATE ROLE pt_target LOGIN PASSWORD '{PASSWORDS['pt_target']}'; "
          "GRANT ALL ON DATABASE ptdb TO PUBLIC")
    c.sql(f"SET password_encryption = 'md5'; CREATE ROLE pt_md5 LOGIN PASSWORD '{PASSWORDS['pt_md5']}'")
    c.sql("CREATE TABLE pt_items (who text, n int); GRANT ALL ON pt_items TO PUBLIC", db="ptdb")
    PT["c"] = c
    return c


def setup():
    c = upstream()
    conninfo = f"host=127.0.0.1 port={c.port} dbname=ptdb"
    env.gw.sql("INSERT INTO pg_rproxy_upstreams (name, conninfo, access, pool_mode, auth) VALUES "
               f"('pt', '{conninfo}', 'read_write', 'session', 'passthrough'), "
               f"('pt_as_target', '{conninfo} user=pt_target', 'read_write', 'session', 'passthrough'), "
               f"('pt_as_md5', '{conninfo} user=pt_md5', 'read_write', 'session', 'passthrough') "
               "ON CONFLICT (name) DO UPDATE SET conninfo = EXCLUDED.conninfo, auth = EXCLUDED.auth, "
               "pool_mode = EXCLUDED.pool_mode, access = EXCLUDED.access")
    env.gw.sql("INSERT INTO pg_rproxy_routes (position, database, upstream) VALUES "
               "(9101, 'ptdb', 'pt'), (9102, 'ptdb_target', 'pt_as_target'), (9103, 'ptdb_md5', 'pt_as_md5') "
               "ON CONFLICT (position) DO NOTHING")
    # The rule says which exchanges may pass, as pg_hba does: password lets all of them.
    env.gw.sql("DELETE FROM pg_rproxy_auth_rules")
    env.gw.sql("INSERT INTO pg_rproxy_auth_rules (position, databases, method) VALUES "
               "(1, 'ptdb,ptdb_target,ptdb_md5', 'password'), (2, 'all', 'scram-sha-256')")


def teardown():
    env.gw.sql("DELETE FROM pg_rproxy_auth_rules; DELETE FROM pg_rproxy_routes WHERE position = 9104; "
               "DELETE FROM pg_rproxy_upstreams WHERE name = 'pt_local'")


def psql(user, password, db="ptdb", sql="SELECT current_user", port=None):
    e = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="10")
    e.pop("PGOPTIONS", None)
    return subprocess.run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(port or env.proxy_port), "-U", user,
                           "-d", db, "-c", sql], capture_output=True, text=True, env=e, timeout=60)


def direct(user, password, sql="SELECT current_user"):
    return psql(user, password, sql=sql, port=upstream().port)


def first_line(stderr):
    """psql's error line, without the part naming where it connected."""
    line = stderr.strip().splitlines()[0] if stderr.strip() else ""
    return line.split("FATAL:", 1)[-1].strip()


@test
def passthrough_scram_md5_and_cleartext_logins_without_gateway_roles():
    setup()
    try:
        for user in ("pt_scram", "pt_md5"):
            check(env.gw.sql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{user}'") == "0", "no gateway role")
            via = psql(user, PASSWORDS[user], sql="SELECT current_user, count(*) >= 0 FROM pt_items")
            check(via.returncode == 0 and via.stdout.strip() == f"{user}|t", f"{user}: {via.stdout} {via.stderr}")
            # writes too: the upstream is read_write
            w = psql(user, PASSWORDS[user], sql=f"INSERT INTO pt_items VALUES ('{user}', 1)")
            check(w.returncode == 0, f"{user} insert: {w.stderr}")
            # a wrong password: the upstream's own error, as a direct connection gets it
            bad = psql(user, "wrong", sql="SELECT 1")
            want = direct(user, "wrong", sql="SELECT 1")
            check(bad.returncode != 0 and first_line(bad.stderr) == first_line(want.stderr),
                  f"{user}: via the proxy {bad.stderr!r}, direct {want.stderr!r}")
            check("password authentication failed" in bad.stderr, bad.stderr)
        rows = upstream().sql("SELECT string_agg(who, ',' ORDER BY who) FROM pt_items", db="ptdb")
        check(rows == "pt_md5,pt_scram", f"the writes, as their own roles: {rows}")
        # a cleartext password is relayed over SSL only
        r = psql("pt_clear", PASSWORDS["pt_clear"])
        check(r.returncode != 0 and "relays only over SSL" in r.stderr, r.stderr)
        import test_routing
        test_routing.tls_on()
        try:
            e = dict(os.environ, PGPASSWORD=PASSWORDS["pt_clear"], PGSSLMODE="require")
            r = subprocess.run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(env.proxy_port), "-U", "pt_clear",
                                "-d", "ptdb", "-c", "SELECT current_user"], capture_output=True, text=True, env=e, timeout=60)
            check(r.returncode == 0 and r.stdout.strip() == "pt_clear", f"cleartext over SSL: {r.stdout} {r.stderr}")
        finally:
            test_routing.tls_off()
        # an upstream that lets the gateway in without a password (trust on its socket) lets no
        # client in unless the rule itself is trust
        env.gw.sql(f"INSERT INTO pg_rproxy_upstreams (name, conninfo, pool_mode, auth) VALUES "
                   f"('pt_local', 'host={upstream().dir} port={upstream().port} dbname=ptdb', 'session', 'passthrough') "
                   "ON CONFLICT (name) DO NOTHING; "
                   "INSERT INTO pg_rproxy_routes (position, database, upstream) VALUES (9104, 'ptdb_local', 'pt_local') "
                   "ON CONFLICT (position) DO NOTHING; "
                   "UPDATE pg_rproxy_auth_rules SET databases = databases || ',ptdb_local' WHERE position = 1")
        r = psql("postgres", "anything", db="ptdb_local")
        check(r.returncode != 0 and "without a password" in r.stderr, f"trust upstream: {r.stdout} {r.stderr}")
        # the sessions view shows the exchange that was relayed
        with psycopg.connect(host="127.0.0.1", port=env.proxy_port, user="pt_md5", dbname="ptdb",
                             password=PASSWORDS["pt_md5"], autocommit=True) as c:
            shown = env.gw.sql(f"SELECT usename || '|' || auth_method || '|' || upstream || '|' || coalesce(pinned, '-') "
                               f"FROM pg_rproxy_sessions WHERE pid = {c.info.backend_pid}")
            c.execute("SELECT 1")
            check(shown.startswith("pt_md5|passthrough md5|pt|"), shown)
    finally:
        teardown()


@test
def passthrough_renamed_user_scram_works_md5_is_refused_clearly():
    setup()
    try:
        r = psql("anyone", PASSWORDS["pt_target"], db="ptdb_target")
        check(r.returncode == 0 and r.stdout.strip() == "pt_target", f"SCRAM survives the rename: {r.stdout} {r.stderr}")
        r = psql("anyone", PASSWORDS["pt_md5"], db="ptdb_md5")
        check(r.returncode != 0 and "md5 authentication cannot pass through pg_rproxy" in r.stderr, r.stderr)
        # and a rule that allows md5 for a renaming passthrough upstream is refused when written
        bad = subprocess.run(["psql", "-X", "-h", env.gw.dir, "-p", str(env.gw.port), "-U", "postgres", "-d", "postgres",
                              "-c", "INSERT INTO pg_rproxy_auth_rules (position, databases, method, upstream) "
                                    "VALUES (5, 'x', 'md5', 'pt_as_target')"], capture_output=True, text=True)
        check(bad.returncode != 0 and "md5 hashes the user name" in bad.stderr, bad.stderr)
        bad = subprocess.run(["psql", "-X", "-h", env.gw.dir, "-p", str(env.gw.port), "-U", "postgres", "-d", "postgres",
                              "-c", "UPDATE pg_rproxy_upstreams SET pool_mode = 'transaction' WHERE name = 'pt'"],
                             capture_output=True, text=True)
        check(bad.returncode != 0 and "pg_rproxy_upstreams_passthrough_session" in bad.stderr, bad.stderr)
    finally:
        teardown()


@test
def passthrough_rule_decides_which_exchange_may_pass_and_cancel_works():
    setup()
    try:
        # only SCRAM for this database: the upstream's md5 request is refused by the proxy
        env.gw.sql("UPDATE pg_rproxy_auth_rules SET method = 'scram-sha-256' WHERE position = 1")
        r = psql("pt_md5", PASSWORDS["pt_md5"])
        check(r.returncode != 0 and "asks for md5 authentication" in r.stderr, r.stderr)
        r = psql("pt_scram", PASSWORDS["pt_scram"])
        check(r.returncode == 0, r.stderr)
        with psycopg.connect(host="127.0.0.1", port=env.proxy_port, user="pt_scram", dbname="ptdb",
                             password=PASSWORDS["pt_scram"], autocommit=True) as c:
            threading.Timer(0.5, c.cancel).start()
            started = time.time()
            try:
                c.execute("SELECT pg_sleep(20)")
                raise AssertionError("not cancelled")
            except psycopg.errors.QueryCanceled:
                pass
            check(time.time() - started < 10, "the cancel reached the upstream")
            check(c.execute("SELECT current_user").fetchone()[0] == "pt_scram", "the session goes on")
    finally:
        teardown()
