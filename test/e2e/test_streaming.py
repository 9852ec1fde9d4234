"""Large results stream through the proxy with back-pressure: a client that does not read holds the
upstream statement in ClientWrite instead of making the worker buffer the result."""
import socket
import struct
import time

from harness import check, test
from pgwire import Wire

ROWS = 100_000
WIDTH = 1000  # about 100 MB of DataRows in all


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def small_buffer_client():
    """A client whose receive buffer is small, so that the proxy's writes block quickly."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(60)
    s.connect(("127.0.0.1", env.proxy_port))
    w = Wire.__new__(Wire)
    w.sock, w.buf, w.params = s, b"", {}
    w.startup(user=env.upstream_user)
    return w


def drain_counting_rows(sock, pending):
    """Reads to ReadyForQuery without keeping the data; returns (rows, command tag)."""
    buf = bytearray(pending)
    pos = 0
    rows = 0
    tag = None
    while True:
        while len(buf) - pos >= 5:
            t = chr(buf[pos])
            (n,) = struct.unpack_from("!I", buf, pos + 1)
            if len(buf) - pos < 1 + n:
                break
            if t == "D":
                rows += 1
            elif t == "C":
                tag = bytes(buf[pos + 5:pos + 1 + n]).rstrip(b"\0").decode()
            elif t == "E":
                raise AssertionError(f"error while streaming: {bytes(buf[pos + 5:pos + 1 + n])!r}")
            elif t == "Z":
                return rows, tag
            pos += 1 + n
        del buf[:pos]
        pos = 0
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise AssertionError("proxy closed the connection mid-result")
        buf += chunk


@test
def slow_reader_holds_upstream_in_client_write_and_worker_memory_stays_bounded():
    before = {pid: rss_kib(pid) for pid in env.worker_pids()}
    w = small_buffer_client()
    marker = f"slow_reader_{int(time.time() * 1000)}"
    w.send(Wire.query_msg(f"SELECT repeat('x', {WIDTH}) AS {marker} FROM generate_series(1, {ROWS})"))
    # Upstream fills its socket to the proxy, which stops reading while the client's buffer is full.
    deadline = time.time() + 30
    state = ""
    while time.time() < deadline:
        state = env.up.sql("SELECT coalesce(wait_event, '') FROM pg_stat_activity "
                           f"WHERE query LIKE '%AS {marker} FROM%' AND pid <> pg_backend_pid()")
        if state == "ClientWrite":
            break
        time.sleep(0.2)
    check(state == "ClientWrite", f"upstream backend should wait in ClientWrite, is in {state!r}")
    time.sleep(1)
    state = env.up.sql("SELECT coalesce(wait_event, '') FROM pg_stat_activity "
                       f"WHERE query LIKE '%AS {marker} FROM%' AND pid <> pg_backend_pid()")
    check(state == "ClientWrite", f"still in ClientWrite a second later, is in {state!r}")
    grown = {pid: rss_kib(pid) - before.get(pid, 0) for pid in env.worker_pids()}
    check(max(grown.values()) < 32 * 1024, f"a worker grew by more than 32 MB for one slow client: {grown} KiB")
    rows, tag = drain_counting_rows(w.sock, w.buf)
    check(rows == ROWS and tag == f"SELECT {ROWS}", f"{rows} rows, tag {tag!r}")
    w.send(Wire.query_msg("SELECT 1"))
    rows, tag = drain_counting_rows(w.sock, b"")
    check(rows == 1, "the session goes on after the large result")
    w.close()
