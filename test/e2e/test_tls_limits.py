"""TLS toward clients (SSLRequest and direct negotiation, SCRAM-SHA-256-PLUS, client certificates)
and the connection limits: authentication_timeout, max_message_size, max_client_connections and the
per-address rate limit. Each limit ends only the offending connection; others go on."""
import os
import resource
import socket
import ssl
import struct
import subprocess
import time

from cluster import as_pg
from harness import GATEWAY_PASSWORD, check, test
from pgwire import Closed, StartupError, Wire, error_fields, rows

TLS = {}


def make_certificates():
    """A test CA, a server certificate for localhost/127.0.0.1 and a client one for certuser."""
    if TLS:
        return TLS
    d = os.path.join(env.base, "tls")
    os.makedirs(d, exist_ok=True)

    def run(*args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=d)
        assert r.returncode == 0, r.stderr

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pg_rproxy test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, cn, ext in [("server", "localhost", ["-extfile", "san.ext"]), ("client", "certuser", [])]:
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-out", f"{name}.crt", *ext)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    os.chmod(os.path.join(d, "server.key"), 0o600)
    os.chmod(os.path.join(d, "client.key"), 0o600)
    if os.getuid() == 0:
        import pwd
        pw = pwd.getpwnam("postgres")
        os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chown(os.path.join(d, "server.key"), pw.pw_uid, pw.pw_gid)
    TLS.update(dir=d, ca=os.path.join(d, "ca.crt"))
    return TLS


def tls_on():
    t = make_certificates()
    env.gw.reload_with(ssl="on", ssl_cert_file=os.path.join(t["dir"], "server.crt"),
                       ssl_key_file=os.path.join(t["dir"], "server.key"), ssl_ca_file=t["ca"])
    return t


def tls_off():
    env.gw.reload_with(ssl=None, ssl_cert_file=None, ssl_key_file=None, ssl_ca_file=None)


def psql_conninfo(conninfo, sql, password=GATEWAY_PASSWORD):
    e = dict(os.environ, PGPASSWORD=password)
    return subprocess.run(["psql", "-X", "-A", "-t", conninfo, "-c", sql], capture_output=True, text=True, env=e,
                          timeout=60)


@test
def tls_verify_full_with_scram_plus_hostssl_rules_and_client_certificates():
    t = tls_on()
    env.gw.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE tlsuser LOGIN PASSWORD 'tls pw'; "
               "CREATE ROLE certuser LOGIN")
    env.gw.sql("INSERT INTO pg_rproxy_auth_rules VALUES "
               "(1, 'hostssl', 'all', 'tlsuser', NULL, 'scram-sha-256', NULL), "
               "(2, 'hostssl', 'all', 'certuser', NULL, 'cert', NULL), "
               "(3, 'hostnossl', 'all', 'rproxy_up, postgres', NULL, 'scram-sha-256', NULL), "
               "(4, 'hostssl', 'all', 'rproxy_up, postgres', NULL, 'scram-sha-256', NULL)")
    try:
        base = f"host=localhost port={env.proxy_port} dbname=e2e sslrootcert={t['ca']}"
        # channel_binding=require: libpq refuses unless SCRAM-SHA-256-PLUS was used
        r = psql_conninfo(f"{base} user=tlsuser sslmode=verify-full channel_binding=require",
                          "SELECT 'over tls', count(*) FROM kinds", password="tls pw")
        check(r.returncode == 0 and r.stdout.strip() == "over tls|4", f"verify-full + SCRAM-PLUS: {r.stderr}")
        # the same role over a plain connection matches no rule
        r = psql_conninfo(f"host=127.0.0.1 port={env.proxy_port} dbname=e2e user=tlsuser sslmode=disable",
                          "SELECT 1", password="tls pw")
        check(r.returncode != 0 and "no pg_rproxy_auth_rules entry" in r.stderr and "no encryption" in r.stderr,
              f"hostssl rule rejects plain: {r.stderr}")
        # cert: the client certificate's CN is the role
        key = os.path.join(t["dir"], "client.key")
        r = psql_conninfo(f"{base} user=certuser sslmode=verify-full sslcert={t['dir']}/client.crt sslkey={key}",
                          "SELECT 'by certificate'", password="")
        check(r.returncode == 0 and r.stdout.strip() == "by certificate", f"cert method: {r.stderr}")
        r = psql_conninfo(f"{base} user=certuser sslmode=verify-full", "SELECT 1", password="")
        check(r.returncode != 0 and "requires a valid client certificate" in r.stderr, f"no certificate: {r.stderr}")
        # a wrong server name fails verify-full: the proxy presents the configured certificate
        r = psql_conninfo(f"host=127.0.0.1 hostaddr=127.0.0.1 port={env.proxy_port} dbname=e2e user=tlsuser "
                          f"sslrootcert={t['ca']} sslmode=verify-full", "SELECT 1", password="tls pw")
        check(r.returncode == 0, f"the certificate names 127.0.0.1 too: {r.stderr}")
    finally:
        env.gw.sql("DELETE FROM pg_rproxy_auth_rules")
        tls_off()


@test
def direct_tls_negotiation_with_alpn_and_sni():
    t = tls_on()
    try:
        ctx = ssl.create_default_context(cafile=t["ca"])
        ctx.set_alpn_protocols(["postgresql"])
        raw = socket.create_connection(("127.0.0.1", env.proxy_port), timeout=15)
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        check(tls.selected_alpn_protocol() == "postgresql", "ALPN agreed")
        w = Wire.__new__(Wire)
        w.sock, w.buf, w.params = tls, b"", {}
        msgs = w.startup(user="rproxy_up")
        check(rows(w.query("SELECT 'direct'")) == [["direct"]], "a statement over direct TLS")
        (pid,) = [struct.unpack("!i", b[:4])[0] for t, b in msgs if t == "K"]
        # the sessions view shows the SNI name this client sent, next to a plain client's row
        plain = Wire(env.proxy_port)
        plain.startup(user="rproxy_up")
        shown = env.gw.sql("SELECT pid, usename, datname, upstream_user, auth_method, ssl, ssl_version, "
                           "coalesce(server_name, '-') FROM pg_rproxy_sessions ORDER BY backend_start")
        lines = [l.split("|") for l in shown.splitlines()]
        mine = [l for l in lines if l[0] == str(pid)]
        check(len(mine) == 1 and mine[0][1:6] == ["rproxy_up", "e2e", "rproxy_up", "scram-sha-256", "t"]
              and mine[0][6].startswith("TLSv1.") and mine[0][7] == "localhost", f"TLS session shown: {shown}")
        check(any(l[1] == "rproxy_up" and l[5] == "f" and l[7] == "-" for l in lines), f"plain session shown: {shown}")
        w.close()
        plain.close()
        gone = env.gw.sql(f"SELECT count(*) FROM pg_rproxy_sessions WHERE pid = {pid}")
        for _ in range(50):
            if gone == "0":
                break
            time.sleep(0.1)
            gone = env.gw.sql(f"SELECT count(*) FROM pg_rproxy_sessions WHERE pid = {pid}")
        check(gone == "0", "a closed session leaves the view")
        denied = env.gw.sql("SELECT has_table_privilege('public', 'pg_rproxy_sessions', 'SELECT')")
        check(denied == "f", "client addresses are not public")
        # without ALPN the direct path is refused
        ctx2 = ssl.create_default_context(cafile=t["ca"])
        raw = socket.create_connection(("127.0.0.1", env.proxy_port), timeout=15)
        tls = ctx2.wrap_socket(raw, server_hostname="localhost")
        w = Wire.__new__(Wire)
        w.sock, w.buf, w.params = tls, b"", {}
        msgs = w.read_until_closed()
        check(any(t == "E" and "ALPN" in error_fields(b).get("M", "") for t, b in msgs), f"refused: {msgs}")
    finally:
        tls_off()


@test
def silent_connections_are_cut_at_authentication_timeout_while_others_connect():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    env.gw.reload_with(authentication_timeout="2s")
    silent = []
    try:
        before = int(dict(l.split("|") for l in env.gw.sql(
            "SELECT event, connections FROM pg_rproxy_connection_events").split())["authentication_timeout"])
        for _ in range(2000):
            s = socket.create_connection(("127.0.0.1", env.proxy_port), timeout=10)
            silent.append(s)
        started = time.time()
        w = env.wire()  # a real client still gets in
        check(rows(w.query("SELECT 'still serving'")) == [["still serving"]], "normal client served")
        w.close()
        check(time.time() - started < 2, "the normal client did not wait for the silent ones")
        time.sleep(3)
        cut = 0
        for s in silent:
            s.settimeout(2)
            try:
                if s.recv(1) == b"":
                    cut += 1
            except (ConnectionResetError, socket.timeout):
                pass
        check(cut == len(silent), f"{cut} of {len(silent)} silent connections closed")
        after = int(dict(l.split("|") for l in env.gw.sql(
            "SELECT event, connections FROM pg_rproxy_connection_events").split())["authentication_timeout"])
        check(after - before >= 2000, f"counted: {after - before}")
    finally:
        for s in silent:
            s.close()
        env.gw.reload_with(authentication_timeout=None)


def worker_rss_kib():
    total = 0
    for pid in env.worker_pids():
        with open(f"/proc/{pid}/status") as f:
            total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return total


@test
def oversized_message_is_refused_without_growing_the_worker():
    env.gw.reload_with(max_message_size="1MB")
    try:
        before = worker_rss_kib()
        for _ in range(20):
            w = env.wire()
            w.send(b"Q" + struct.pack("!I", 900 * 1024 * 1024) + b"SELECT 1")
            msgs = w.read_until_closed()
            errs = [error_fields(b) for t, b in msgs if t == "E"]
            check(errs and errs[0]["C"] == "54000", f"54000: {msgs}")
        check(worker_rss_kib() - before < 16 * 1024, "no allocation for the announced length")
        w = env.wire()
        check(rows(w.query("SELECT 'after'")) == [["after"]], "others still served")
        w.close()
    finally:
        env.gw.reload_with(max_message_size=None)


@test
def max_client_connections_and_the_rate_limit_trip_and_recover():
    env.gw.reload_with(max_client_connections="3")
    held = []
    try:
        for _ in range(3):
            held.append(env.wire())
        try:
            extra = env.wire()
            extra.close()
            raise AssertionError("a fourth client got in")
        except StartupError as e:
            check(e.fields["C"] == "53300" and "too many clients" in e.fields["M"], f"{e.fields}")
        held.pop().close()
        time.sleep(0.3)
        w = env.wire()
        w.close()
    finally:
        for w in held:
            w.close()
        env.gw.reload_with(max_client_connections=None)

    env.gw.reload_with(connection_rate="2", connection_burst="3")
    try:
        outcomes = []
        for _ in range(8):
            try:
                env.wire().close()
                outcomes.append("ok")
            except StartupError as e:
                outcomes.append(e.fields["C"])
        check(outcomes.count("ok") >= 3 and "53400" in outcomes, f"the burst passes, then 53400: {outcomes}")
        time.sleep(1.6)
        env.wire().close()  # refilled
    finally:
        env.gw.reload_with(connection_rate=None, connection_burst=None)


def via_proxy(sql):
    r = env.psql(sql, args=("-A", "-t"))
    return r.returncode, r.stdout.decode().strip(), r.stderr.decode()


def upstream_ssl(on, hba_line=None):
    up = env.up
    hba = os.path.join(up.data, "pg_hba.conf")
    if on:
        t = make_certificates()
        up.sql("ALTER SYSTEM SET ssl = on")
        up.sql(f"ALTER SYSTEM SET ssl_cert_file = '{t['dir']}/server.crt'")
        up.sql(f"ALTER SYSTEM SET ssl_key_file = '{t['dir']}/server.key'")
        up.sql(f"ALTER SYSTEM SET ssl_ca_file = '{t['ca']}'")
        r = as_pg(["sh", "-c", f"{{ echo '{hba_line}'; cat '{hba}'; }} > '{hba}.new' && mv '{hba}.new' '{hba}'"])
        assert r.returncode == 0, r.stderr
    else:
        for name in ("ssl", "ssl_cert_file", "ssl_key_file", "ssl_ca_file"):
            up.sql(f"ALTER SYSTEM RESET {name}")
        r = as_pg(["sed", "-i", "/^hostssl e2e certuser/d", hba])
        assert r.returncode == 0, r.stderr
    up.sql("SELECT pg_reload_conf()")
    time.sleep(0.5)


def upstream_client_key():
    """libpq wants the client key private to the user that reads it: the gateway's postgres."""
    t = make_certificates()
    key = os.path.join(t["dir"], "upstream-client.key")
    with open(os.path.join(t["dir"], "client.key"), "rb") as src, open(key, "wb") as dst:
        dst.write(src.read())
    os.chmod(key, 0o600)
    if os.getuid() == 0:
        import pwd
        pw = pwd.getpwnam("postgres")
        os.chown(key, pw.pw_uid, pw.pw_gid)
    return key


@test
def upstream_over_tls_with_verify_full_and_a_client_certificate():
    t = make_certificates()
    upstream_ssl(True, "hostssl e2e certuser 127.0.0.1/32 cert")
    env.up.sql("DO $$ BEGIN CREATE ROLE certuser LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    env.up.sql("GRANT SELECT ON kinds TO certuser", db="e2e")
    base = f"host=localhost port={env.up.port} dbname=e2e sslrootcert={t['ca']}"
    try:
        # verify-full: the upstream's certificate must chain to the CA and name "localhost"
        env.gw.reload_with(upstream=f"{base} user=rproxy_up sslmode=verify-full")
        rc, out, err = via_proxy("SELECT 'tls upstream', count(*) FROM kinds")
        check(rc == 0 and out == "tls upstream|4", f"through a verify-full upstream: {err}")
        encrypted = env.up.sql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                               "WHERE a.usename = 'rproxy_up' AND s.ssl AND s.version LIKE 'TLSv1.%'")
        check(int(encrypted) >= 1, f"the upstream connections are encrypted: {encrypted}")
        # a client certificate: the upstream's cert rule logs the proxy in as its CN
        key = upstream_client_key()
        env.gw.reload_with(upstream=f"{base} user=certuser sslmode=verify-full sslcert={t['dir']}/client.crt sslkey={key}")
        rc, out, err = via_proxy("SELECT current_user, count(*) FROM kinds")
        check(rc == 0 and out == "certuser|4", f"upstream cert login: {err}")
        dn = env.up.sql("SELECT DISTINCT client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                        "WHERE a.usename = 'certuser'")
        check(dn == "/CN=certuser", f"the upstream saw the client certificate: {dn}")
        # without the certificate the upstream refuses, and the client is told why
        env.gw.reload_with(upstream=f"{base} user=certuser sslmode=verify-full")
        rc, out, err = via_proxy("SELECT 1")
        check(rc != 0 and "could not connect to the upstream" in err and "certificate" in err,
              f"no client certificate: {err}")
        # a server name the certificate does not carry fails verify-full: nothing is sent
        env.gw.reload_with(upstream=f"host=127.0.0.2 hostaddr=127.0.0.1 port={env.up.port} dbname=e2e "
                                    f"user=rproxy_up sslrootcert={t['ca']} sslmode=verify-full")
        rc, out, err = via_proxy("SELECT 1")
        check(rc != 0 and "does not match host name" in err, f"wrong host name: {err}")
        r = env.psql("SELECT 1", direct=True)
        check(r.returncode == 0, "the upstream itself is fine")
    finally:
        env.gw.reload_with(upstream=None)
        upstream_ssl(False)
