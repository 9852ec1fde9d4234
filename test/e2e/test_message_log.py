"""The message log (pg_rproxy.message_log): every protocol message in the four directions, with the
statement, parameters, columns, rows, command tag and error fields, and never a password: not the
client's (SCRAM, cleartext over TLS, relayed in auth passthrough), not the role mapping's that libpq
sends upstream. The upstream filter, rotation by size, and turning it off."""
import os
import pwd
import re
import struct
import subprocess
import time

from harness import GATEWAY_PASSWORD, check, test
from pgwire import Wire, error_fields, rows

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \d+ (C>P|P>U|U>P|P>C) \S+ \S+( .*)?$")
MAPPED_PASSWORD = "mapping s3cret pw"  # pg_rproxy_role_mapping's, sent upstream in cleartext by libpq
STATE = {}


def cstr(s):
    return s.encode() + b"\0"


def msg(t, body=b""):
    return t.encode() + struct.pack("!I", len(body) + 4) + body


def log_dir():
    if "dir" not in STATE:
        d = os.path.join(env.base, "msglog")
        os.makedirs(d, exist_ok=True)
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(d, pw.pw_uid, pw.pw_gid)
        STATE["dir"] = d
    return STATE["dir"]


def files(path):
    """The log and its rotated copies, oldest first."""
    d, base = os.path.split(path)
    rotated = sorted((int(f[len(base) + 1:]), f) for f in os.listdir(d) if re.fullmatch(re.escape(base) + r"\.\d+", f))
    out = [os.path.join(d, f) for _, f in reversed(rotated)]
    return out + ([path] if os.path.exists(path) else [])


def read_all(path):
    # the writer may rotate between the listing and the reads: list again until a pass finds every file
    while True:
        text = b""
        try:
            for f in files(path):
                with open(f, "rb") as fh:
                    text += fh.read()
        except FileNotFoundError:
            time.sleep(0.05)
            continue
        return text.decode("utf-8", "replace")


def wait_for(path, needle, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        text = read_all(path)
        if needle in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never reached the message log {path}:\n{read_all(path)[-3000:]}")


def session_of(startup_msgs):
    for t, body in startup_msgs:
        if t == "K":
            return struct.unpack("!ii", body[:8])[0]
    raise AssertionError("no BackendKeyData")


def lines_of(text, session):
    return [l for l in text.splitlines() if l.split(" ", 2)[1:2] == [str(session)]]


def pt_cluster():
    import test_passthrough
    return test_passthrough.upstream()  # its pg_hba asks pt_clear for a cleartext password


def setup_mapped():
    """ml_user (a gateway role, SCRAM) routed to ml_up, which libpq logs in to as pt_clear with the
    mapping's password, in cleartext (pg_hba 'password')."""
    c = pt_cluster()
    c.sql(f"ALTER ROLE pt_clear PASSWORD '{MAPPED_PASSWORD}'")
    env.gw.sql("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ml_user') THEN "
               "SET LOCAL password_encryption = 'scram-sha-256'; "
               f"CREATE ROLE ml_user LOGIN PASSWORD '{GATEWAY_PASSWORD}'; END IF; END$$")
    env.gw.sql("DELETE FROM pg_rproxy_role_mapping WHERE gateway_role = 'ml_user'; "
               f"INSERT INTO pg_rproxy_role_mapping VALUES ('ml_user', 'pt_clear', '{MAPPED_PASSWORD}')")
    env.gw.sql("INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES "
               f"('ml_up', 'host=127.0.0.1 port={c.port} dbname=ptdb') ON CONFLICT (name) DO NOTHING; "
               "INSERT INTO pg_rproxy_routes (position, role, upstream) VALUES (9201, 'ml_user', 'ml_up') "
               "ON CONFLICT (position) DO NOTHING")


def teardown_mapped():
    env.gw.sql("DELETE FROM pg_rproxy_routes WHERE position = 9201; DELETE FROM pg_rproxy_upstreams WHERE name = 'ml_up'; "
               "DELETE FROM pg_rproxy_role_mapping WHERE gateway_role = 'ml_user'")


def log_on(path, **more):
    settings = dict(message_log=path, message_log_upstreams=None, message_log_size=None, message_log_files=None,
                    message_log_bytes=None)
    settings.update(more)
    env.gw.reload_with(**settings)


def log_off():
    env.gw.reload_with(message_log=None, message_log_upstreams=None, message_log_size=None, message_log_files=None,
                       message_log_bytes=None)


def no_secret_in(path, secrets):
    text = read_all(path)
    for s in secrets:
        check(s not in text, f"{s!r} appears in the message log")
        check(s.encode().hex() not in text, f"{s!r} appears in hex in the message log")


def mapped_client():
    w = Wire(env.proxy_port)
    msgs = w.startup(user="ml_user", database="e2e", password=GATEWAY_PASSWORD)
    return w, session_of(msgs)


def psql_as(user, password, db, sql, extra=""):
    e = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="10")
    e.pop("PGOPTIONS", None)
    return subprocess.run(["psql", "-X", "-A", "-t", f"host=127.0.0.1 port={env.proxy_port} user={user} dbname={db} {extra}",
                           "-c", sql], capture_output=True, text=True, env=e, timeout=60)


@test
def message_log_shows_every_direction_and_no_password():
    path = os.path.join(log_dir(), "messages.log")
    setup_mapped()
    log_on(path)
    try:
        w, session = mapped_client()
        check(rows(w.query("SELECT 'msglog-marker-7781' AS marker_col, n FROM generate_series(1, 3) n")) ==
              [["msglog-marker-7781", "1"], ["msglog-marker-7781", "2"], ["msglog-marker-7781", "3"]], "rows through ml_up")
        # extended protocol: one text and one binary parameter
        w.send(msg("P", cstr("") + cstr("SELECT $1::text || '-msglog-bound' AS bound_col, $2::int + 1 AS plus") +
                   struct.pack("!HII", 2, 25, 23)) +
               msg("B", cstr("") + cstr("") + struct.pack("!Hhh", 2, 0, 1) + struct.pack("!H", 2) +
                   struct.pack("!i", 16) + b"param-value-5521" + struct.pack("!ii", 4, 41) + struct.pack("!h", 0)) +
               msg("D", b"P" + cstr("")) + msg("E", cstr("") + struct.pack("!i", 0)) + msg("S"))
        check(rows(w.read_until_ready()) == [["param-value-5521-msglog-bound", "42"]], "the bound statement's row")
        errs = [error_fields(b) for t, b in w.query("SELECT * FROM msglog_no_such_table_9") if t == "E"]
        check(errs and errs[0]["C"] == "42P01", f"the failing statement: {errs}")
        w.close()
        text = wait_for(path, "msglog_no_such_table_9")
        time.sleep(0.5)
        text = read_all(path)
        mine = lines_of(text, session)
        for l in mine:
            check(LINE.match(l), f"a malformed line: {l!r}")
        for d in ("C>P", "P>U", "U>P", "P>C"):
            check(any(f" {d} " in l for l in mine), f"no {d} line for session {session}:\n" + "\n".join(mine))

        def has(direction, *parts):
            found = [l for l in mine if f" {direction} " in l and all(p in l for p in parts)]
            check(found, f"no {direction} line with {parts}:\n" + "\n".join(mine))
            return found[0]

        has("C>P", "- StartupMessage", 'user="ml_user"', 'database="e2e"')
        q = has("C>P", "Q Query", "msglog-marker-7781")
        check(" hex=51000000" in q, f"the Query's first bytes in hex: {q}")
        has("P>U", "Q Query", "msglog-marker-7781")
        has("U>P", "T RowDescription", '"marker_col"')
        has("P>C", "T RowDescription", '"marker_col"')
        has("U>P", "DataRow", "rows=3")
        has("P>C", "DataRow", "rows=3")
        has("U>P", "C CommandComplete", 'tag="SELECT 3"')
        has("P>C", "C CommandComplete", 'tag="SELECT 3"')
        has("C>P", "P Parse", "msglog-bound", "types=25,23")
        has("C>P", "B Bind", '"param-value-5521"', "x'00000029'")
        has("P>U", "B Bind", '"param-value-5521"')
        has("P>C", "Z ReadyForQuery", "status=I")
        has("U>P", "E ErrorResponse", 'severity="ERROR"', 'code="42P01"', "msglog_no_such_table_9")
        has("P>C", "E ErrorResponse", 'severity="ERROR"', 'code="42P01"')
        # SCRAM: the client's messages and the server's challenges are redacted, without bytes
        for l in [has("C>P", "p PasswordMessage"), has("P>C", "request=SASLContinue"), has("P>C", "request=SASLFinal")]:
            check("[redacted]" in l and "hex=" not in l, f"not redacted: {l}")
        check(not any("BackendKeyData" in l and "hex=" in l for l in mine), "the cancel key is never shown")

        # a cleartext password from the client (auth rule 'password', over TLS)
        import test_routing
        test_routing.tls_on()
        env.gw.sql("INSERT INTO pg_rproxy_auth_rules (position, roles, method) VALUES (9301, 'ml_user', 'password'), "
                   "(9302, 'all', 'scram-sha-256') ON CONFLICT (position) DO NOTHING")
        try:
            r = psql_as("ml_user", GATEWAY_PASSWORD, "e2e", "SELECT 'msglog-cleartext-login'", "sslmode=require")
            check(r.returncode == 0, f"cleartext login over TLS: {r.stderr}")
            wait_for(path, "msglog-cleartext-login")
            check("request=CleartextPassword" in read_all(path), "the cleartext request is logged")
        finally:
            env.gw.sql("DELETE FROM pg_rproxy_auth_rules WHERE position IN (9301, 9302)")
            test_routing.tls_off()

        # auth passthrough: the client's answers relayed upstream are redacted too
        import test_passthrough
        test_passthrough.setup()
        try:
            for user in ("pt_scram", "pt_md5"):
                r = psql_as(user, test_passthrough.PASSWORDS[user], "ptdb", f"SELECT 'msglog-passthrough-{user}'")
                check(r.returncode == 0, f"{user}: {r.stderr}")
                text = wait_for(path, f"msglog-passthrough-{user}")
            relayed = [l for l in text.splitlines() if " P>U p PasswordMessage" in l]
            check(len(relayed) >= 3, f"the relayed answers are logged: {relayed}")
            check(all("[redacted]" in l and "hex=" not in l for l in relayed), f"relayed answers redacted: {relayed}")
        finally:
            test_passthrough.teardown()
        secrets = [GATEWAY_PASSWORD, MAPPED_PASSWORD, env.proxy_env["UPSTREAM_PASSWORD"]]
        secrets += list(test_passthrough.PASSWORDS.values())
        no_secret_in(path, secrets)
    finally:
        log_off()
        teardown_mapped()


@test
def message_log_covers_only_the_upstreams_listed():
    path = os.path.join(log_dir(), "filtered.log")
    setup_mapped()
    log_on(path, message_log_upstreams="ml_up")
    try:
        default_client = Wire(env.proxy_port)  # pg_rproxy.upstream's client, stays across the reloads
        default_session = session_of(default_client.startup(user=env.upstream_user))
        default_client.query("SELECT 'msglog-filter-default-1'")
        w, session = mapped_client()
        w.query("SELECT 'msglog-filter-mlup-1'")
        text = wait_for(path, "msglog-filter-mlup-1")
        time.sleep(0.5)
        text = read_all(path)
        check("msglog-filter-default-1" not in text, "a client of an upstream not listed logs nothing")
        check(not lines_of(text, default_session), "not even its startup")
        # after a reload the sessions are judged again: 'default' is pg_rproxy.upstream's
        env.gw.reload_with(message_log_upstreams="default")
        default_client.query("SELECT 'msglog-filter-default-2'")
        w.query("SELECT 'msglog-filter-mlup-2'")
        text = wait_for(path, "msglog-filter-default-2")
        time.sleep(0.5)
        text = read_all(path)
        check("msglog-filter-mlup-2" not in text, "ml_up is not listed any more")
        check(any(" P>U Q Query" in l and "msglog-filter-default-2" in l for l in lines_of(text, default_session)),
              "the default upstream's session logs from the reload on, upstream side included")
        w.close()
        default_client.close()
    finally:
        log_off()
        teardown_mapped()


@test
def message_log_rotates_by_size_and_stops_when_turned_off():
    path = os.path.join(log_dir(), "rotating.log")
    log_on(path, message_log_size="4", message_log_files="2", message_log_bytes="32")  # 4 kB
    try:
        w = env.wire()
        for i in range(150):
            w.query(f"SELECT 'msglog-rotation-{i:04d}' AS c")
        wait_for(path, "msglog-rotation-0149")
        time.sleep(0.5)
        present = files(path)
        names = [os.path.basename(f) for f in present]
        check(names == ["rotating.log.2", "rotating.log.1", "rotating.log"], f"two rotated files and the log: {names}")
        for f in present:
            with open(f, "rb") as fh:
                data = fh.read()
            check(len(data) <= 4096, f"{f}: {len(data)} bytes, beyond the rotation size")
            check(data.endswith(b"\n"), f"{f} ends mid-line")
            for l in data.decode().splitlines():
                check(LINE.match(l), f"{f}: not a whole line: {l!r}")
        # off: nothing more is written
        env.gw.reload_with(message_log=None)
        before = read_all(path)
        w.query("SELECT 'msglog-after-off'")
        time.sleep(1)
        check(read_all(path) == before, "lines written after the log was turned off")
        # a file that cannot be opened is reported in the server log, and the proxy keeps serving
        env.gw.reload_with(message_log=os.path.join(log_dir(), "no-such-dir", "x.log"))
        check(rows(w.query("SELECT 'msglog-unwritable'")) == [["msglog-unwritable"]], "served all the same")
        deadline = time.time() + 10
        while "message log: could not open" not in env.gw.log_text() and time.time() < deadline:
            time.sleep(0.2)
        check("message log: could not open" in env.gw.log_text(), "the failure is in the server log")
        w.close()
    finally:
        log_off()
