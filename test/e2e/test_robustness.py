import subprocess
"""Concurrency, pool limits, reloads, bad input and upstream failures: the worker keeps serving."""
import socket
import struct
import threading
import time

from harness import check, test
from pgwire import Closed, StartupError, Wire, errors, rows


def run_parallel(n, fn):
    results = [None] * n
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, fn(i))) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@test
def fifty_concurrent_clients_with_pool_size_two():
    check(env.gw.sql("SHOW pg_rproxy.pool_size") == "2", "suite runs with pool_size 2")

    def client(i):
        r = env.psql(f"SELECT {i} AS n, md5('{i}') AS h, pg_sleep(0.02)", args=("-A", "-t"))
        return r.returncode, r.stdout.decode()

    results = run_parallel(50, client)
    import hashlib
    for i, (rc, out) in enumerate(results):
        check(rc == 0, f"client {i} failed")
        check(out.startswith(f"{i}|{hashlib.md5(str(i).encode()).hexdigest()}|"), f"client {i}: {out!r}")
    workers = int(env.gw.sql("SHOW pg_rproxy.workers"))
    check(env.upstream_conns() <= 2 * workers, "never more than pool_size per worker upstream")


def max_upstream_conns_during(n_clients, sleep):
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], env.upstream_conns())
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    res = run_parallel(n_clients, lambda i: env.psql(f"SELECT pg_sleep({sleep})").returncode)
    stop.set()
    t.join()
    check(all(rc == 0 for rc in res), f"all clients served: {res}")
    return peak[0]


@test
def sighup_changes_pool_size():
    workers = int(env.gw.sql("SHOW pg_rproxy.workers"))
    try:
        env.gw.reload_with(pool_size=1)
        time.sleep(0.5)
        peak = max_upstream_conns_during(12, 0.3)
        check(1 <= peak <= workers, f"pool_size=1: peak {peak} upstream connections with {workers} workers")
        env.gw.reload_with(pool_size=4)
        peak = max_upstream_conns_during(16, 0.4)
        check(peak > workers, f"pool_size=4: peak {peak} should exceed {workers}")
    finally:
        env.gw.reload_with(pool_size=None)


@test
def clients_wait_for_the_pool_then_get_57014():
    try:
        env.gw.reload_with(pool_size=1, pool_timeout="300ms")

        def client(i):
            w = env.wire()
            msgs = w.query("SELECT pg_sleep(1.5)")
            w.close()
            return errors(msgs)

        # 6 clients over the workers' single connections: some must time out waiting.
        results = run_parallel(6, client)
        timeouts = [e[0] for e in results if e]
        check(timeouts, "at least one client timed out waiting for the pool")
        for e in timeouts:
            check(e["C"] == "57014" and "pool_timeout" in e["M"], f"{e}")
        check(len(timeouts) < 6, "clients that got a connection were served")
    finally:
        env.gw.reload_with(pool_size=None, pool_timeout=None)
    env.wait_proxy()


def expect_rejected(data, code, fragment=None, startup=True):
    w = Wire(env.proxy_port)
    if startup:
        w.startup(user="rproxy_up")
    w.send(data)
    msgs = w.read_until_closed()
    w.close()
    e = errors(msgs)
    check(e, f"ErrorResponse expected for {data[:20]!r}, got {msgs}")
    check(e[-1]["C"] == code and e[-1]["S"] == "FATAL", f"{data[:20]!r}: {e}")
    if fragment:
        check(fragment in e[-1]["M"], f"{fragment!r} not in {e[-1]['M']!r}")


@test
def malformed_input_gets_08p01_and_the_worker_keeps_serving():
    pids = env.worker_pids()
    # garbage before the startup packet
    expect_rejected(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "08P01", "invalid length of startup packet", startup=False)
    # a startup length of 2^31-1, then nothing
    expect_rejected(struct.pack("!I", 0x7FFFFFFF), "08P01", "invalid length", startup=False)
    # protocol 2.0
    expect_rejected(Wire.startup_packet(version=2 << 16), "08P01", "unsupported frontend protocol 2.0",
                    startup=False)
    # no user
    body = struct.pack("!I", 196608) + b"database\0x\0\0"
    expect_rejected(struct.pack("!I", len(body) + 4) + body, "08P01", "no PostgreSQL user name", startup=False)
    # after startup: unknown type, short length, huge length, query without its terminator
    expect_rejected(b"\x01\0\0\0\x04", "08P01", "invalid frontend message type 1")
    expect_rejected(b"Q\0\0\0\x02", "08P01", "invalid message length")
    expect_rejected(b"Q" + struct.pack("!I", 0x7FFFFFFF), "54000", "exceeds the maximum")
    expect_rejected(b"Q\0\0\0\x08abcd", "08P01", "invalid string")
    # SSL and GSS encryption requests are declined with 'N', then startup proceeds
    w = Wire(env.proxy_port)
    w.send(struct.pack("!II", 8, 80877103))
    check(w.read_byte() == b"N", "SSLRequest answered N")
    w.send(struct.pack("!II", 8, 80877104))
    check(w.read_byte() == b"N", "GSSENCRequest answered N")
    w.startup(user="rproxy_up")
    check(rows(w.query("SELECT 'after N'")) == [["after N"]], "session works")
    w.close()
    # a client that sends half a message and vanishes
    w = env.wire()
    w.send(b"Q\0\0\0\xff" + b"SEL")
    w.close()
    check(env.worker_pids() == pids, f"workers were not restarted: {pids} -> {env.worker_pids()}")
    env.same_as_direct("SELECT * FROM kinds ORDER BY id")


def sleeping_upstream_backends():
    return int(env.up.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' "
                          "AND state = 'active' AND pid <> pg_backend_pid()"))


@test
def abrupt_disconnect_mid_statement_frees_the_upstream_connection():
    for _ in range(3):  # more than pool_size: a leaked slot would show
        w = env.wire()
        w.send(Wire.query_msg("SELECT pg_sleep(30)"))
        time.sleep(0.3)
        check(sleeping_upstream_backends() >= 1, "statement running upstream")
        w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        w.close()
        deadline = time.time() + 5
        while time.time() < deadline and sleeping_upstream_backends():
            time.sleep(0.1)
        check(sleeping_upstream_backends() == 0, "the upstream statement was cancelled")
    res = run_parallel(4, lambda i: env.psql("SELECT 1", timeout=20).returncode)
    check(res == [0, 0, 0, 0], f"pool still serves: {res}")
    # a client that stops reading a large result and disconnects
    w = env.wire()
    w.send(Wire.query_msg("SELECT * FROM big ORDER BY id"))
    w.read_msg()
    w.close()
    env.same_as_direct("SELECT count(*) FROM big")


@test
def unreachable_or_unset_upstream_gives_08001():
    pids = env.worker_pids()
    closed_port = env.up.port + 1 if env.up.port < 65535 else env.up.port - 1
    try:
        env.gw.reload_with(upstream=f"host=127.0.0.1 port={closed_port} user=rproxy_up dbname=e2e connect_timeout=3")
        r = env.psql("SELECT 1")
        err = r.stderr.decode()
        check(r.returncode != 0 and "could not connect to the upstream server" in err and "refused" in err, err)
        w = Wire(env.proxy_port)
        try:
            w.startup(user="rproxy_up")
            raise AssertionError("startup succeeded without an upstream")
        except StartupError as failure:
            e = [failure.fields]
        check(e[0]["C"] == "08001" and e[0]["S"] == "FATAL", f"{e}")
        env.gw.reload_with(upstream="")
        r = env.psql("SELECT 1")
        check(r.returncode != 0 and "pg_rproxy.upstream is not set" in r.stderr.decode(), r.stderr)
        env.gw.reload_with(upstream="host=127.0.0.1 bogus_option=1")
        r = env.psql("SELECT 1")
        check(r.returncode != 0 and "invalid pg_rproxy.upstream" in r.stderr.decode(), r.stderr)
    finally:
        env.gw.reload_with(upstream=None)
    env.wait_proxy()
    check(env.worker_pids() == pids, "no worker restarted")


@test
def upstream_restart_needs_no_gateway_restart():
    pids = env.worker_pids()
    w = env.wire()
    check(rows(w.query("SELECT 1")) == [["1"]], "before restart")
    env.psql("SELECT 1")  # leave idle pooled connections behind
    env.up.restart()
    # The very first statement after the restart works: dead idle connections are replaced.
    for i in range(3):
        r = env.psql(f"SELECT {i} + 1")
        check(r.returncode == 0, f"query {i} after upstream restart: {r.stderr!r}")
    check(rows(w.query("SELECT 2")) == [["2"]], "an existing client session continues too")
    w.close()
    # The extended protocol too: a batch whose connection died before any answer is run again.
    for i in range(3):
        env.psql("SELECT 1")
        env.up.restart()
        r = subprocess.run(["pgbench", "-n", "-M", "extended", "-t", "3", "-f", "/dev/stdin", "-h", "127.0.0.1",
                            "-p", str(env.proxy_port), "-U", "rproxy_up", "e2e"], input="SELECT 1;\n",
                           capture_output=True, text=True)
        check(r.returncode == 0 and "number of failed transactions: 0" in r.stdout,
              f"extended batch {i} after upstream restart: {r.stdout[-300:]} {r.stderr[-300:]}")
    check(env.worker_pids() == pids, "no worker restarted")


@test
def idle_and_statement_timeouts_use_postgresqls_sqlstates():
    try:
        env.gw.reload_with(idle_client_timeout="400ms", idle_in_transaction_timeout="400ms", statement_timeout="300ms")
        idle = Wire(env.proxy_port)
        idle.startup(user="rproxy_up")
        in_tx = Wire(env.proxy_port)
        in_tx.startup(user="rproxy_up")
        in_tx.query("BEGIN")
        pid = rows(in_tx.query("SELECT pg_backend_pid()"))[0][0]
        time.sleep(1.0)
        e = errors(idle.read_until_closed())
        check(e and e[0]["C"] == "57P05" and e[0]["S"] == "FATAL", f"idle client: {e}")
        e = errors(in_tx.read_until_closed())
        check(e and e[0]["C"] == "25P03" and e[0]["S"] == "FATAL", f"idle in transaction: {e}")
        deadline = time.time() + 5
        while time.time() < deadline and env.up.sql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") != "0":
            time.sleep(0.1)
        check(env.up.sql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == "0",
              "its upstream transaction was rolled back and the connection closed")
        w = env.wire()
        e = errors(w.query("SELECT pg_sleep(2)"))
        check(e and e[0]["C"] == "57014" and "statement timeout" in e[0]["M"], f"statement_timeout upstream: {e}")
        check(rows(w.query("SELECT 'busy clients are not idle'")) == [["busy clients are not idle"]], "session goes on")
        w.close()
    finally:
        env.gw.reload_with(idle_client_timeout=None, idle_in_transaction_timeout=None, statement_timeout=None)


def parked_clients():
    return int(env.gw.sql("SELECT sum(parked_clients) FROM pg_rproxy_workers"))


def wait_for_parked(at_least, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline and parked_clients() < at_least:
        time.sleep(0.1)
    return parked_clients()


@test
def idle_clients_park_and_keep_everything_a_waiting_session_does():
    """An idle client parks: its message loop returns and its socket waits with the worker's other
    idle ones (at once after startup, after half a second to a second of waiting otherwise).
    Parked or not, a session keeps its settings, its transaction and its notifications, and its
    timeouts and shutdown still reach it."""
    before = parked_clients()
    fresh = Wire(env.proxy_port)
    fresh.startup(user="rproxy_up")
    listener = env.wire()
    listener.query("LISTEN parked_channel")
    listener.query("SET application_name = 'parked one'")
    in_tx = env.wire()
    in_tx.query("BEGIN")
    pid = rows(in_tx.query("SELECT pg_backend_pid()"))[0][0]
    check(wait_for_parked(before + 3) >= before + 3, f"three idle clients parked: {parked_clients()} (before: {before})")
    env.up.sql("NOTIFY parked_channel, 'while parked'", db="e2e")
    listener.sock.settimeout(5)
    t, body = listener.read_msg()
    check(t == "A" and b"parked_channel\0while parked\0" in body, f"NotificationResponse while parked: {t} {body!r}")
    check(rows(listener.query("SHOW application_name")) == [["parked one"]], "the parked session kept its settings")
    msgs = in_tx.query("SELECT pg_backend_pid()")
    check(rows(msgs) == [[pid]] and msgs[-1] == ("Z", b"T"), f"still in its transaction on its connection: {msgs}")
    check(in_tx.query("COMMIT")[-1] == ("Z", b"I"), "and it commits")
    check(rows(fresh.query("SELECT 'first statement after parking'")) == [["first statement after parking"]],
          "a client parked since startup runs its first statement")
    # Parked again by the sweep, the same clients get their notifications and answers.
    check(wait_for_parked(before + 3) >= before + 3, f"parked again: {parked_clients()}")
    env.up.sql("NOTIFY parked_channel, 'again'", db="e2e")
    t, body = listener.read_msg()
    check(t == "A" and b"again" in body, f"second notification: {t} {body!r}")
    for w in (fresh, listener, in_tx):
        w.close()
    # The idle timeouts run on while a client is parked.
    try:
        # Long enough for both to park and be seen parked by a slow (valgrind) gateway first.
        env.gw.reload_with(idle_client_timeout="5s", idle_in_transaction_timeout="5s")
        idle = env.wire()
        idle.query("SELECT 1")
        idle_tx = env.wire()
        idle_tx.query("BEGIN")
        idle_tx.query("SELECT 1")
        check(wait_for_parked(before + 2) >= before + 2, f"both parked before their timeouts: {parked_clients()}")
        idle.sock.settimeout(10)
        idle_tx.sock.settimeout(10)
        e = errors(idle.read_until_closed())
        check(e and e[0]["C"] == "57P05", f"idle-session timeout while parked: {e}")
        e = errors(idle_tx.read_until_closed())
        check(e and e[0]["C"] == "25P03", f"idle-in-transaction timeout while parked: {e}")
    finally:
        env.gw.reload_with(idle_client_timeout=None, idle_in_transaction_timeout=None)
    deadline = time.time() + 10
    while time.time() < deadline and parked_clients() != before:
        time.sleep(0.1)
    check(parked_clients() == before, f"closed clients are no longer counted: {parked_clients()} (before: {before})")


def backend_key(startup_msgs):
    for t, body in startup_msgs:
        if t == "K":
            return struct.unpack("!ii", body)
    raise AssertionError("no BackendKeyData")


def send_cancel(pid, key):
    s = socket.create_connection(("127.0.0.1", env.proxy_port), timeout=5)
    s.sendall(struct.pack("!iiii", 16, 80877102, pid, key))
    s.recv(1)  # the server answers nothing and closes
    s.close()


@test
def cancel_requests_reach_the_right_client_on_any_worker():
    for attempt in range(6):  # each cancel lands on a random worker (SO_REUSEPORT)
        w = Wire(env.proxy_port)
        pid, key = backend_key(w.startup(user="rproxy_up"))
        w.send(Wire.query_msg(f"SELECT pg_sleep(20), {attempt}"))
        time.sleep(0.3)
        started = time.time()
        send_cancel(pid, key)
        msgs = []
        while not msgs or msgs[-1][0] != "Z":
            msgs.append(w.read_msg())
        e = errors(msgs)
        check(e and e[0]["C"] == "57014" and "user request" in e[0]["M"], f"attempt {attempt}: {e}")
        check(time.time() - started < 5, "cancelled promptly")
        check(rows(w.query("SELECT 'after cancel'")) == [["after cancel"]], "the session goes on")
        w.close()
    # a wrong key cancels nothing
    w = Wire(env.proxy_port)
    pid, key = backend_key(w.startup(user="rproxy_up"))
    w.send(Wire.query_msg("SELECT pg_sleep(1), 'finished'"))
    time.sleep(0.2)
    for wrong in [key + 1, key ^ 0x5555]:
        send_cancel(pid, wrong)
    send_cancel(pid ^ (3 << 24), key)  # a worker slot that does not exist
    msgs = []
    while not msgs or msgs[-1][0] != "Z":
        msgs.append(w.read_msg())
    check(not errors(msgs) and rows(msgs) == [["", "finished"]], f"wrong keys did nothing: {msgs}")
    w.close()


@test
def twenty_clients_with_their_own_settings_share_a_pool_of_two():
    check(env.gw.sql("SHOW pg_rproxy.pool_size") == "2", "pool of 2")
    zones = ["UTC", "Asia/Tokyo", "America/New_York", "Europe/Berlin", "Australia/Sydney"]
    clients = []
    for i in range(20):
        w = env.wire()
        msgs = w.query(f"SET search_path = pg_catalog, public; SET TimeZone = '{zones[i % 5]}'; "
                       f"SET application_name = 'client-{i}'")
        statuses = {body.split(b"\0")[0].decode(): body.split(b"\0")[1].decode() for t, body in msgs if t == "S"}
        check(statuses.get("TimeZone") == zones[i % 5] and statuses.get("application_name") == f"client-{i}",
              f"ParameterStatus after SET: {statuses}")
        clients.append(w)
    workers = int(env.gw.sql("SHOW pg_rproxy.workers"))
    check(env.upstream_conns() <= 2 * workers, "SET does not pin: 20 clients share the pool")
    results = [None] * 20

    def run(i):
        got = []
        for _ in range(5):
            got.append(rows(clients[i].query("SELECT current_setting('search_path'), current_setting('TimeZone'), "
                                             "current_setting('application_name'), "
                                             "to_char(timestamptz '2024-01-01 00:00+00', 'HH24:MI TZ')")))
        results[i] = got

    run_parallel(20, run)
    for i, got in enumerate(results):
        for r in got:
            check(r[0][:3] == ["pg_catalog, public", zones[i % 5], f"client-{i}"], f"client {i} saw {r}")
    for w in clients:
        w.query("RESET ALL")
        w.close()
    # RESET returns to the client's startup values, whichever connection serves it next
    w = env.wire(DateStyle="SQL, DMY")
    w.query("SET DateStyle = 'German'")
    check(rows(w.query("SHOW DateStyle")) == [["German, DMY"]], "SET")
    for reset in ["RESET DateStyle", "RESET ALL", "DISCARD ALL"]:
        w.query("SET DateStyle = 'German'")
        w.query(reset)
        for _ in range(3):
            check(rows(w.query("SHOW DateStyle")) == [["SQL, DMY"]], f"after {reset}")
    w.close()
    other = env.wire()
    check(rows(other.query("SHOW DateStyle")) == [["ISO, MDY"]], "nothing leaked")
    other.close()


@test
def listen_delivers_notifications_to_the_listening_client():
    w = env.wire()
    w.query("LISTEN dashboard")
    other = env.wire()
    env.up.sql("NOTIFY dashboard, 'from upstream'", db="e2e")
    w.sock.settimeout(5)
    t, body = w.read_msg()  # while idle, as from the server
    check(t == "A", f"NotificationResponse, got {t}")
    pid, rest = struct.unpack("!i", body[:4])[0], body[4:].split(b"\0")
    check(rest[0] == b"dashboard" and rest[1] == b"from upstream" and pid > 0, f"{rest}")
    # one that arrives during a statement comes with its results, before ReadyForQuery
    notifier = threading.Thread(target=lambda: (time.sleep(0.2), env.up.sql("NOTIFY dashboard, 'during'", db="e2e")))
    notifier.start()
    msgs = w.query("SELECT pg_sleep(0.6)")
    notifier.join()
    notes = [m for m in msgs if m[0] == "A"]
    check(len(notes) == 1 and b"during" in notes[0][1], f"{[m[0] for m in msgs]}")
    # nobody else hears it
    env.up.sql("NOTIFY dashboard, 'private'", db="e2e")
    time.sleep(0.3)
    check(all(t != "A" for t, _ in other.query("SELECT 'no notifications here'")), "not delivered to another client")
    other.close()
    w.query("UNLISTEN *")
    w.close()


@test
def notifications_never_interleave_with_query_results():
    """A burst of notifications while the client keeps sending statements: every message arrives
    whole (a mixed-up write would break the framing) and none is lost."""
    w = env.wire()
    w.query("LISTEN burst")
    total = 300
    # one transaction each, so that they arrive spread over the statements below
    notifier = threading.Thread(target=lambda: env.up.sql(
        f"DO $$ BEGIN FOR g IN 1..{total} LOOP PERFORM pg_notify('burst', g::text); COMMIT; "
        "PERFORM pg_sleep(0.002); END LOOP; END $$", db="e2e"))
    notifier.start()
    seen = []
    i = 0
    while notifier.is_alive() or i < 150:
        i += 1
        msgs = w.query(f"SELECT {i} AS n")
        check(all(t in "TDCZA" for t, _ in msgs), f"unexpected message types {[t for t, _ in msgs]}")
        check(rows(msgs) == [[str(i)]], f"statement {i}: {rows(msgs)}")
        seen += [body for t, body in msgs if t == "A"]
    notifier.join()
    check(len(seen) > 0, f"none of {total} arrived during the {i} statements: no burst to test")
    w.sock.settimeout(5)
    while len(seen) < total:
        try:
            t, body = w.read_msg()
        except TimeoutError:
            got = sorted(int(b.split(b"\0")[1]) for b in (x[4:] for x in seen))
            missing = sorted(set(range(1, total + 1)) - set(got))
            later = [m for m in w.query("SELECT 'poke'") if m[0] == "A"]
            check(False, f"{len(seen)} of {total} notifications arrived after {i} statements; missing {missing}; "
                         f"{len(later)} came with one more statement")
        check(t == "A", f"only notifications while idle, got {t}")
        seen.append(body)
    payloads = [b.split(b"\0")[1] for b in (x[4:] for x in seen)]
    check(payloads == [str(g).encode() for g in range(1, total + 1)], "every notification once, in order")
    w.close()


class CuttableRelay:
    """A TCP relay in front of the upstream. cut() closes every current connection's upstream side
    and leaves the gateway's side open and silent until the gateway sends on it: a dead connection
    that the gateway can only notice by using it."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            pair = {"client": client, "upstream": upstream, "cut": False}
            self.pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair, client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, upstream, client, False), daemon=True).start()

    def _pump(self, pair, src, dst, from_gateway):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if pair["cut"]:
                if from_gateway:  # the gateway used the dead connection: now it learns
                    src.close()
                return
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def cut(self):
        for pair in self.pairs:
            pair["cut"] = True
            pair["upstream"].close()
        self.pairs = []

    def close(self):
        self.listener.close()


@test
def a_read_whose_pooled_connection_died_unnoticed_runs_again_on_a_fresh_one():
    relay = CuttableRelay(env.up.port)
    try:
        env.gw.reload_with(upstream=f"host=127.0.0.1 port={relay.port} user={env.upstream_user} dbname=e2e",
                           pool_size=1)
        env.wait_proxy()
        for _ in range(8):  # an idle pooled connection in each worker, through the relay
            check(env.psql("SELECT 1").returncode == 0, "warm-up")
        batch = (b"P" + struct.pack("!I", 4 + 1 + 10 + 2) + b"\0SELECT 42\0" + b"\0\0" +
                 b"B" + struct.pack("!I", 4 + 1 + 1 + 2 + 2 + 2) + b"\0\0" + b"\0\0\0\0\0\0" +
                 b"E" + struct.pack("!I", 4 + 1 + 4) + b"\0" + b"\0\0\0\0" + b"S\0\0\0\4")
        for protocol in ("extended", "simple", "extended", "simple"):
            w = env.wire(database="e2e")
            check(rows(w.query("SELECT 1")) == [["1"]], "logged in, a pooled connection used")
            relay.cut()
            if protocol == "simple":
                got = w.query("SELECT 42")
            else:
                w.send(batch)
                got = []
                while True:
                    t, body = w.read_msg()
                    got.append((t, body))
                    if t == "Z":
                        break
            w.close()
            check(errors(got) == [] and rows(got) == [["42"]], f"{protocol} after the cut: {got}")
    finally:
        relay.close()
        env.gw.reload_with(upstream=None, pool_size=None)
        env.wait_proxy()
