"""Routing over many upstreams: three real clusters (the suite's upstream, alpha and beta) behind one
gateway. Routes by TLS server name (exact and wildcard), role, database, client address and proxy
port; the router function; certificates per server name; round robin over two servers; a server
stopped under load and coming back; live route changes. Which cluster answered is told by its port
(SHOW port), compared with the cluster's own."""
import atexit
import os
import subprocess
import threading
import time

from cluster import Cluster
from harness import GATEWAY_PASSWORD, check, test
from pgwire import StartupError, Wire, errors, rows

CLUSTERS = {}
TLS = {}


def cluster(name):
    """alpha or beta: started on first use, with the e2e database and the roles clients use."""
    if name in CLUSTERS:
        return CLUSTERS[name]
    c = Cluster(env.base, name)
    c.init("autovacuum = off\n")
    c.start()
    atexit.register(c.stop, "immediate", False)
    c.sql("CREATE DATABASE e2e")
    c.sql(f"CREATE DATABASE {name}_db")
    c.sql("CREATE ROLE rproxy_up LOGIN; CREATE ROLE route_lab LOGIN; GRANT ALL ON DATABASE e2e TO PUBLIC")
    CLUSTERS[name] = c
    return c


def gateway_roles():
    env.gw.sql("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lab_group') THEN "
               "SET LOCAL password_encryption = 'scram-sha-256'; "
               "CREATE ROLE lab_group; "
               f"CREATE ROLE route_lab LOGIN PASSWORD '{GATEWAY_PASSWORD}' IN ROLE lab_group; "
               f"CREATE ROLE router_user LOGIN PASSWORD '{GATEWAY_PASSWORD}'; "
               f"CREATE ROLE router_conn LOGIN PASSWORD '{GATEWAY_PASSWORD}'; "
               f"CREATE ROLE router_none LOGIN PASSWORD '{GATEWAY_PASSWORD}'; "
               f"CREATE ROLE router_err LOGIN PASSWORD '{GATEWAY_PASSWORD}'; "
               f"CREATE ROLE router_junk LOGIN PASSWORD '{GATEWAY_PASSWORD}'; "
               f"CREATE ROLE router_splice LOGIN PASSWORD '{GATEWAY_PASSWORD}'; "
               "END IF; END$$")


def upstream(name, conninfo, **cols):
    extra = "".join(f", {k}" for k in cols)
    vals = "".join(f", '{v}'" if isinstance(v, str) else f", {v}" for v in cols.values())
    env.gw.sql(f"INSERT INTO pg_rproxy_upstreams (name, conninfo{extra}) VALUES ('{name}', '{conninfo}'{vals})")


def reset():
    env.gw.sql("DELETE FROM pg_rproxy_routes; DELETE FROM pg_rproxy_server_certificates; "
               "DELETE FROM pg_rproxy_upstreams WHERE name NOT LIKE 'auth_%'")


def psql(conninfo, sql="SHOW port", user="rproxy_up", db="e2e", port=None, timeout=60):
    e = dict(os.environ, PGPASSWORD=GATEWAY_PASSWORD, PGCONNECT_TIMEOUT="10")
    e.pop("PGOPTIONS", None)
    full = f"{conninfo} port={port or env.proxy_port} user={user} dbname={db}"
    return subprocess.run(["psql", "-X", "-A", "-t", full, "-c", sql], capture_output=True, text=True, env=e,
                          timeout=timeout)


def answered_by(conninfo="host=127.0.0.1", **kw):
    r = psql(conninfo, **kw)
    check(r.returncode == 0, f"{conninfo} {kw}: {r.stderr}")
    return int(r.stdout.strip())


def refused(conninfo="host=127.0.0.1", **kw):
    r = psql(conninfo, **kw)
    check(r.returncode != 0, f"{conninfo} {kw} got in: {r.stdout}")
    return r.stderr


def make_certificates():
    """A CA; certificates for gateway.test (the default), alpha.test and *.beta.test."""
    if TLS:
        return TLS
    d = os.path.join(env.base, "routing-tls")
    os.makedirs(d, exist_ok=True)

    def run(*args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=d)
        assert r.returncode == 0, r.stderr

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=routing CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    for name, dns in [("gateway", "gateway.test"), ("alpha", "alpha.test"), ("wild", "*.beta.test")]:
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName=DNS:{dns}\n")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={dns}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-out", f"{name}.crt", "-extfile", f"{name}.ext")
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o600 if f.endswith(".key") else 0o644)
    if os.getuid() == 0:
        import pwd
        pw = pwd.getpwnam("postgres")
        for f in [""] + os.listdir(d):
            os.chown(os.path.join(d, f), pw.pw_uid, pw.pw_gid)
    TLS.update(dir=d, ca=os.path.join(d, "ca.crt"))
    return TLS


def tls_on():
    t = make_certificates()
    env.gw.reload_with(ssl="on", ssl_cert_file=os.path.join(t["dir"], "gateway.crt"),
                       ssl_key_file=os.path.join(t["dir"], "gateway.key"))
    return t


def tls_off():
    env.gw.reload_with(ssl=None, ssl_cert_file=None, ssl_key_file=None)


@test
def routes_pick_the_upstream_by_server_name_wildcard_role_database_address_and_port():
    a, b = cluster("alpha"), cluster("beta")
    gateway_roles()
    tls_on()
    try:
        upstream("alpha", f"host=127.0.0.1 port={a.port} user=rproxy_up dbname=e2e")
        upstream("beta", f"host=127.0.0.1 port={b.port} user=rproxy_up dbname=e2e")
        # No dbname and no user: the client's database and role.
        upstream("alpha_any", f"postgresql://127.0.0.1:{a.port}")
        env.gw.sql("INSERT INTO pg_rproxy_routes (position, server_name, database, role, client_address, listen_port, upstream) VALUES "
                   "(1, 'alpha.test', NULL, NULL, NULL, NULL, 'alpha'), "
                   "(2, '*.beta.test', NULL, NULL, NULL, NULL, 'beta'), "
                   "(3, NULL, NULL, '+lab_group', NULL, NULL, 'alpha_any'), "
                   "(4, NULL, 'beta_db', NULL, NULL, NULL, 'beta'), "
                   "(5, NULL, NULL, NULL, '10.0.0.0/8', NULL, 'alpha'), "
                   f"(6, NULL, NULL, NULL, NULL, {env.extra_port}, 'beta'), "
                   "(7, NULL, NULL, NULL, '127.0.0.0/8', NULL, 'alpha')")
        tls = "hostaddr=127.0.0.1 sslmode=require"
        check(answered_by(f"host=alpha.test {tls}") == a.port, "SNI alpha.test: alpha")
        check(answered_by(f"host=db1.beta.test {tls}") == b.port, "SNI db1.beta.test: the wildcard, beta")
        check(answered_by(f"host=x.db1.beta.test {tls}") == a.port, "a wildcard is one label: falls to route 7")
        check(answered_by(f"host=gateway.test {tls}") == a.port, "an unrouted name falls through to the address")
        check(answered_by(user="route_lab", db="alpha_db") == a.port, "a member of lab_group: alpha as itself")
        r = psql("host=127.0.0.1", "SELECT current_user || '@' || current_database()", user="route_lab", db="alpha_db")
        check(r.stdout.strip() == "route_lab@alpha_db", f"the client's role and database: {r.stdout} {r.stderr}")
        check(answered_by(db="beta_db") == b.port, "database beta_db: beta")
        check(answered_by(port=env.extra_port) == b.port, "the second proxy port: beta")
        check(answered_by() == a.port, "from 127.0.0.1: route 7")
        w = Wire(env.extra_port)
        w.startup(user="rproxy_up", database="e2e")
        shown = env.gw.sql(f"SELECT upstream, server, listen_port FROM pg_rproxy_sessions WHERE listen_port = {env.extra_port}")
        check(shown == f"beta|127.0.0.1:{b.port}|{env.extra_port}", f"the session shows beta: {shown!r}")
        w.close()
        # No route at all for an unknown name and no fallback: 28000 naming what found no route.
        env.gw.sql("DELETE FROM pg_rproxy_routes WHERE position IN (5, 6, 7)")
        env.gw.reload_with(upstream="")
        err = refused(f"host=gateway.test {tls}")
        check("no pg_rproxy route for server name \"gateway.test\", database \"e2e\", role \"rproxy_up\"" in err, err)
        events = dict(l.split("|") for l in env.gw.sql("SELECT event, connections FROM pg_rproxy_connection_events").split())
        check(int(events["no_route"]) >= 1, f"counted: {events}")
        check(answered_by(f"host=alpha.test {tls}") == a.port, "and the others are still served")
    finally:
        env.gw.reload_with(upstream=None)
        reset()
        tls_off()


@test
def certificates_by_server_name_are_what_the_client_receives():
    cluster("alpha")
    t = tls_on()
    d = t["dir"]
    try:
        upstream("alpha", f"host=127.0.0.1 port={CLUSTERS['alpha'].port} user=rproxy_up dbname=e2e")
        env.gw.sql("INSERT INTO pg_rproxy_routes (position, upstream) VALUES (1, 'alpha')")
        env.gw.sql(f"INSERT INTO pg_rproxy_server_certificates VALUES "
                   f"('alpha.test', '{d}/alpha.crt', '{d}/alpha.key'), ('*.beta.test', '{d}/wild.crt', '{d}/wild.key')")
        full = f"hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={t['ca']}"
        answered_by(f"host=alpha.test {full}")  # verify-full: the certificate names alpha.test
        answered_by(f"host=db7.beta.test {full}")  # the wildcard certificate
        answered_by(f"host=gateway.test {full}")  # no entry: pg_rproxy.ssl_cert_file's
        err = refused(f"host=other.test {full}")
        check("does not match host name" in err or "server certificate for" in err, err)
        # A file that cannot be read: logged, and that name gets the default certificate.
        env.gw.sql(f"UPDATE pg_rproxy_server_certificates SET cert_file = '{d}/missing.crt' WHERE server_name = 'alpha.test'")
        err = refused(f"host=alpha.test {full}")
        check("gateway.test" in err or "does not match" in err, f"the default certificate: {err}")
        check(answered_by(f"host=gateway.test {full}") == CLUSTERS["alpha"].port, "others are served")
        check("missing.crt" in env.gw.log_text(), "the unreadable file is logged")
    finally:
        reset()
        tls_off()


ROUTER = """
CREATE OR REPLACE FUNCTION public.route_client(server_name text, database text, role text, client_address inet)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.router_calls VALUES (role);
    CASE role
        WHEN 'router_user' THEN RETURN 'beta';
        WHEN 'router_conn' THEN RETURN 'host=127.0.0.1 port=ALPHA_PORT user=rproxy_up';  -- dbname: the client's
        WHEN 'router_splice' THEN RETURN 'host=127.0.0.1 port=ALPHA_PORT user=rproxy_up dbname=' || database;
        WHEN 'router_err' THEN RAISE EXCEPTION 'lab % is closed for maintenance', role;
        WHEN 'router_junk' THEN RETURN 'no such upstream';
        ELSE RETURN NULL;
    END CASE;
END $$"""


@test
def the_router_function_decides_when_no_route_does():
    a, b = cluster("alpha"), cluster("beta")
    gateway_roles()
    try:
        upstream("beta", f"host=127.0.0.1 port={b.port} user=rproxy_up dbname=e2e")
        env.gw.sql("CREATE TABLE IF NOT EXISTS public.router_calls (role text)")
        env.gw.sql(ROUTER.replace("ALPHA_PORT", str(a.port)))
        env.gw.sql("INSERT INTO pg_rproxy_routes (position, role, upstream) VALUES (1, 'route_lab', NULL)")
        env.gw.reload_with(router="public.route_client", router_cache_ttl="1min", upstream="")
        check(answered_by(user="router_user") == b.port, "the router names an upstream")
        check(answered_by(user="router_conn") == a.port, "the router returns a conninfo")
        err = refused(user="router_none")
        check('no pg_rproxy route for no server name, database "e2e", role "router_none"' in err, err)
        err = refused(user="route_lab", db="alpha_db")
        check('role "route_lab"' in err, f"a route with no upstream asks the router: {err}")
        err = refused(user="router_err")
        check("lab router_err is closed for maintenance" in err, err)
        err = refused(user="router_junk")
        check("neither an upstream nor a conninfo" in err, err)
        # A router that splices the client's database into its conninfo: a database name carrying
        # keywords of its own is refused, not obeyed.
        check(answered_by(user="router_splice") == a.port, "an honest database name works")
        w = Wire(env.proxy_port)
        try:
            w.startup(user="router_splice", database="e2e host=/tmp user=postgres")
            raise AssertionError("a spliced database name was obeyed")
        except StartupError as e:
            check(e.fields["C"] == "28000" and "invalid conninfo" in e.fields["M"], f"{e.fields}")
        w.close()
        check("sets a keyword twice" in env.gw.log_text(), "the log says why")
        check(answered_by(user="router_user") == b.port, "other clients are served after a router error")
        for _ in range(6):
            answered_by(user="router_user")
        calls = int(env.gw.sql("SELECT count(*) FROM public.router_calls WHERE role = 'router_user'"))
        check(1 <= calls <= 2, f"asked once per worker within router_cache_ttl, not per connection: {calls}")
        # Answers are kept for router_cache_ttl, then asked again.
        env.gw.reload_with(router_cache_ttl="1s")
        env.gw.sql("CREATE OR REPLACE FUNCTION public.route_client(server_name text, database text, role text, "
                   "client_address inet) RETURNS text "
                   "LANGUAGE sql AS $$SELECT NULL::text$$")
        time.sleep(1.2)
        check("no pg_rproxy route" in refused(user="router_user"), "a changed router applies after the TTL")
    finally:
        env.gw.reload_with(router=None, router_cache_ttl=None, upstream=None)
        env.gw.sql("DROP FUNCTION IF EXISTS public.route_client(text, text, text, inet); "
                   "DROP TABLE IF EXISTS public.router_calls")
        reset()


def servers():
    out = {}
    for line in env.gw.sql("SELECT upstream, port, role, healthy, coalesce(replace(last_error, '|', '/'), ''), busy + idle, clients "
                           "FROM pg_rproxy_servers WHERE upstream = 'pair'").splitlines():
        u, port, role, healthy, err, conns, clients = line.split("|")
        out[int(port)] = dict(role=role, healthy=healthy == "t", error=err, conns=int(conns), clients=int(clients))
    return out


def wait_for(cond, what, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out: {what}")


@test
def round_robin_spreads_statements_over_the_servers_and_the_view_shows_them():
    a, b = cluster("alpha"), cluster("beta")
    try:
        upstream("pair", f"host=127.0.0.1,127.0.0.1 port={a.port},{b.port} user=rproxy_up dbname=e2e")
        env.gw.sql("INSERT INTO pg_rproxy_routes (position, upstream) VALUES (1, 'pair')")
        env.gw.reload_with(health_check_interval="500ms")
        seen = [answered_by() for _ in range(8)]
        check({a.port, b.port} == set(seen), f"new clients go to both servers: {seen}")
        w = Wire(env.proxy_port)
        w.startup(user="rproxy_up", database="e2e")
        ports = [int(rows(w.query("SELECT current_setting('port')"))[0][0]) for _ in range(8)]
        check(set(ports) == {a.port, b.port}, f"one client's statements alternate: {ports}")
        wait_for(lambda: all(s["role"] == "primary" and s["healthy"] for s in servers().values())
                 and len(servers()) == 2, f"both checked: {servers()}")
        # Each worker publishes its counts on its next tick (at least every second).
        wait_for(lambda: servers()[a.port]["clients"] >= 1, f"clients shown: {servers()}")
        for _ in range(3):
            w.query("SELECT 40 + 2 AS cached_answer")
        w.close()

        def stats():
            line = env.gw.sql("SELECT statements, cache_hits, servers, healthy_servers FROM pg_rproxy_upstream_stats "
                              "WHERE upstream = 'pair'")
            return [int(x) for x in line.split("|")] if line else [0, 0, 0, 0]
        # 8 psql sessions' statements, 8 + 3 of the raw client's; the repeated one hit the cache.
        wait_for(lambda: stats()[0] >= 19 and stats()[1] >= 2 and stats()[2:] == [2, 2],
                 f"per-upstream statistics: {stats()}")
        # Once no worker's configuration names them, the dropped upstream's servers leave the view
        # (their last health would be stale forever); its own statistics stay. A worker reads the
        # table again at its next login, so logins go on until both workers have had one.
        reset()
        wait_for(lambda: answered_by() == env.up.port and servers() == {},
                 "the dropped upstream's servers are no longer shown")
        check(stats()[0] >= 19, f"its statistics stay: {stats()}")
    finally:
        env.gw.reload_with(health_check_interval=None)
        reset()


@test
def a_server_stopped_under_load_fails_no_statement_and_is_used_again_once_back():
    a, b = cluster("alpha"), cluster("beta")
    try:
        upstream("pair", f"host=127.0.0.1,127.0.0.1 port={a.port},{b.port} user=rproxy_up dbname=e2e")
        env.gw.sql("INSERT INTO pg_rproxy_routes (position, upstream) VALUES (1, 'pair')")
        env.gw.reload_with(health_check_interval="500ms")
        stop = threading.Event()
        failures, served = [], {a.port: 0, b.port: 0}
        lock = threading.Lock()

        def load():
            w = Wire(env.proxy_port)
            w.startup(user="rproxy_up", database="e2e")
            while not stop.is_set():
                msgs = w.query("SELECT current_setting('port'), pg_backend_pid()")
                with lock:
                    if errors(msgs):
                        failures.append(errors(msgs)[0])
                    else:
                        served[int(rows(msgs)[0][0])] += 1
            w.close()

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1)
        b.stop(mode="fast")
        wait_for(lambda: servers().get(b.port, {}).get("healthy") is False, f"beta unhealthy: {servers()}")
        with lock:
            before = served[b.port]
        time.sleep(1.5)
        with lock:
            check(served[b.port] == before, "no statement reached the stopped server")
        down = servers()[b.port]
        check(down["error"] != "", f"the view says why: {down}")
        b.start()
        wait_for(lambda: servers()[b.port]["healthy"], f"beta healthy again: {servers()}")
        wait_for(lambda: served[b.port] > before, "statements reach beta again")
        stop.set()
        for t in threads:
            t.join(30)
        check(not failures, f"no statement failed outside a transaction: {failures[:3]}")
        check(served[a.port] > 0, f"{served}")
    finally:
        stop.set()
        if not os.path.exists(os.path.join(b.data, "postmaster.pid")):
            b.start()
        env.gw.reload_with(health_check_interval=None)
        reset()


@test
def route_changes_apply_to_the_next_connection_while_running_sessions_keep_their_upstream():
    a, b = cluster("alpha"), cluster("beta")
    try:
        upstream("alpha", f"host=127.0.0.1 port={a.port} user=rproxy_up dbname=e2e")
        upstream("beta", f"host=127.0.0.1 port={b.port} user=rproxy_up dbname=e2e")
        env.gw.sql("INSERT INTO pg_rproxy_routes (position, upstream) VALUES (1, 'alpha')")
        w = Wire(env.proxy_port)
        w.startup(user="rproxy_up", database="e2e")
        check(rows(w.query("SHOW port")) == [[str(a.port)]], "alpha first")
        env.gw.sql("UPDATE pg_rproxy_routes SET upstream = 'beta'")
        check(answered_by() == b.port, "the next connection takes the new route, with no reload")
        check(rows(w.query("SHOW port")) == [[str(a.port)]], "the running session keeps alpha")
        env.gw.sql(f"UPDATE pg_rproxy_upstreams SET conninfo = 'host=127.0.0.1 port={a.port} user=rproxy_up dbname=e2e' "
                   "WHERE name = 'beta'")
        check(answered_by() == a.port, "an edited upstream applies to the next connection")
        w.close()
        # A route to an upstream that is not in the table cannot be written.
        env.gw.sql("INSERT INTO pg_rproxy_routes (position, upstream) VALUES (2, 'nowhere')", check=False)
        check(env.gw.sql("SELECT count(*) FROM pg_rproxy_routes") == "1", "refused by the foreign key")
    finally:
        reset()


@test
def a_seed_style_yaml_with_one_mapping_routes_clients_without_tls():
    a = cluster("alpha")
    path = os.path.join(env.base, "sni-config.yaml")
    with open(path, "w") as f:
        f.write(f"listen:\n  address: 127.0.0.1\n  port: {env.proxy_port}\nmappings:\n"
                f"  - external: alpha.example.com\n    internal: 127.0.0.1\n    port: {a.port}\n")
    sql = subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "lib",
                                                           "sni_config.py"), "sql", path],
                         capture_output=True, text=True)
    check(sql.returncode == 0, sql.stderr)
    try:
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", env.gw.dir, "-p", str(env.gw.port),
                            "-U", "postgres", "-d", "postgres"], input=sql.stdout, capture_output=True, text=True)
        check(r.returncode == 0, r.stderr)
        # No dbname or user in the mapping: the client's (rproxy_up exists on alpha).
        check(answered_by() == a.port, "one mapping and no TLS: use it")
    finally:
        env.gw.sql("DELETE FROM pg_rproxy_routes WHERE upstream LIKE 'yaml:%'; "
                   "DELETE FROM pg_rproxy_upstreams WHERE name LIKE 'yaml:%'")


@test
def first_balance_is_failover_only_and_session_pooling_keeps_one_backend():
    a, b = cluster("alpha"), cluster("beta")
    try:
        upstream("ordered", f"host=127.0.0.1,127.0.0.1 port={a.port},{b.port} user=rproxy_up dbname=e2e",
                 balance="first")
        upstream("sessioned", f"host=127.0.0.1 port={a.port} user=rproxy_up dbname=e2e", pool_mode="session")
        env.gw.sql(f"INSERT INTO pg_rproxy_routes (position, listen_port, upstream) VALUES "
                   f"(1, {env.extra_port}, 'sessioned'), (2, NULL, 'ordered')")
        env.gw.reload_with(health_check_interval="500ms")
        check({answered_by() for _ in range(6)} == {a.port}, "first: the first server while it is up")
        a.stop(mode="fast")
        check({answered_by() for _ in range(4)} == {b.port}, "and the next one when it is down")
        a.start()
        wait_for(lambda: answered_by() == a.port, "back to the first once it is healthy again")
        # Session pooling: one client, one backend, for all its statements outside transactions.
        w1, w2 = Wire(env.extra_port), Wire(env.extra_port)
        w1.startup(user="rproxy_up", database="e2e")
        w2.startup(user="rproxy_up", database="e2e")
        pids1 = {rows(w1.query("SELECT pg_backend_pid()"))[0][0] for _ in range(5)}
        pids2 = {rows(w2.query("SELECT pg_backend_pid()"))[0][0] for _ in range(5)}
        check(len(pids1) == 1 and len(pids2) == 1 and pids1 != pids2, f"a backend each: {pids1} {pids2}")
        w1.close()
        w2.close()
    finally:
        if not os.path.exists(os.path.join(a.data, "postmaster.pid")):
            a.start()
        env.gw.reload_with(health_check_interval=None)
        reset()


def standby_of(primary):
    """A streaming standby of primary (pg_basebackup -R), started on its own port."""
    if "standby" in CLUSTERS:
        return CLUSTERS["standby"]
    from cluster import BINDIR, as_pg
    s = Cluster(env.base, "standby")
    os.makedirs(s.dir, exist_ok=True)
    if os.getuid() == 0:
        import pwd
        pw = pwd.getpwnam("postgres")
        os.chown(s.dir, pw.pw_uid, pw.pw_gid)
    r = as_pg([f"{BINDIR}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D", s.data,
               "-X", "stream", "-R", "-c", "fast"])  # fast: no wait for a spread checkpoint
    assert r.returncode == 0, r.stderr
    s.append_conf(f"port = {s.port}\nunix_socket_directories = '{s.dir}'\nhot_standby = on\n")
    s.start()
    atexit.register(s.stop, "immediate", False)
    CLUSTERS["standby"] = s
    return s


@test
def target_session_attrs_picks_the_standby_or_the_primary_and_the_view_shows_roles_and_lag():
    a = cluster("alpha")
    s = standby_of(a)
    try:
        both = f"host=127.0.0.1,127.0.0.1 port={a.port},{s.port} user=rproxy_up dbname=e2e"
        upstream("reads", both + " target_session_attrs=standby")
        upstream("writes_side", both + " target_session_attrs=read-write")
        env.gw.sql(f"INSERT INTO pg_rproxy_routes (position, listen_port, upstream) VALUES "
                   f"(1, {env.extra_port}, 'writes_side'), (2, NULL, 'reads')")
        env.gw.reload_with(health_check_interval="500ms")
        sql = "SELECT pg_is_in_recovery()"
        for _ in range(4):
            r = psql("host=127.0.0.1", sql)
            check(r.returncode == 0 and r.stdout.strip() == "t", f"standby wanted: {r.stdout} {r.stderr}")
            r = psql("host=127.0.0.1", sql, port=env.extra_port)
            check(r.returncode == 0 and r.stdout.strip() == "f", f"the primary for read-write: {r.stdout} {r.stderr}")

        def roles():
            out = {}
            for line in env.gw.sql("SELECT port, role, healthy, replay_lag IS NOT NULL FROM pg_rproxy_servers "
                                   "WHERE upstream = 'reads'").splitlines():
                port, role, healthy, lag = line.split("|")
                out[int(port)] = (role, healthy, lag)
            return out

        wait_for(lambda: roles().get(a.port) == ("primary", "t", "f") and roles().get(s.port) == ("standby", "t", "t"),
                 f"roles and lag: {roles()}")
    finally:
        env.gw.reload_with(health_check_interval=None)
        reset()


@test
def a_router_in_plpython():
    a, b = cluster("alpha"), cluster("beta")
    gateway_roles()
    try:
        env.gw.sql("CREATE EXTENSION IF NOT EXISTS plpython3u")
        env.gw.sql(f"""CREATE OR REPLACE FUNCTION public.route_py(server_name text, database text, role text,
                                                                 client_address inet) RETURNS text
                       LANGUAGE plpython3u AS $$
if role == 'router_user':
    return 'host=127.0.0.1 port={b.port} user=rproxy_up'
return None
$$""")
        env.gw.reload_with(router="public.route_py", upstream="")
        check(answered_by(user="router_user") == b.port, "the Python router's conninfo")
        check("no pg_rproxy route" in refused(user="router_none"), "None: refused")
    finally:
        env.gw.reload_with(router=None, upstream=None)
        env.gw.sql("DROP FUNCTION IF EXISTS public.route_py(text, text, text, inet)")
        reset()
