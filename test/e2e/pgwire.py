"""A small raw PostgreSQL v3 client, for what psql cannot send: malformed input, abrupt
disconnects, and a look at the exact messages the proxy returns."""
import socket
import struct


class Closed(Exception):
    pass


def error_fields(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


class Wire:
    def __init__(self, port, host="127.0.0.1", timeout=15):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.params = {}

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _recv(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed()
        self.buf += chunk

    def read_byte(self):
        while not self.buf:
            self._recv()
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def read_msg(self):
        """(type, body), or raises Closed at EOF."""
        while len(self.buf) < 5:
            self._recv()
        t = chr(self.buf[0])
        (n,) = struct.unpack("!I", self.buf[1:5])
        while len(self.buf) < 1 + n:
            self._recv()
        body, self.buf = self.buf[5:1 + n], self.buf[1 + n:]
        return t, body

    def read_until_closed(self):
        msgs = []
        try:
            while True:
                msgs.append(self.read_msg())
        except (Closed, socket.timeout):
            return msgs

    @staticmethod
    def startup_packet(user="postgres", database="e2e", version=196608, **params):
        payload = struct.pack("!I", version)
        for k, v in [("user", user), ("database", database)] + list(params.items()):
            payload += k.encode() + b"\0" + v.encode() + b"\0"
        payload += b"\0"
        return struct.pack("!I", len(payload) + 4) + payload

    def startup(self, **kw):
        """Startup until ReadyForQuery; returns the messages. Raises on ErrorResponse."""
        self.send(self.startup_packet(**kw))
        msgs = []
        while True:
            t, body = self.read_msg()
            msgs.append((t, body))
            if t == "S":
                k, v = body.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            if t == "E":
                raise AssertionError(f"startup failed: {error_fields(body)}")
            if t == "Z":
                return msgs

    @staticmethod
    def query_msg(sql):
        data = sql.encode() + b"\0"
        return b"Q" + struct.pack("!I", len(data) + 4) + data

    def query(self, sql):
        """Simple query; returns the messages up to and including ReadyForQuery."""
        self.send(self.query_msg(sql))
        msgs = []
        while True:
            t, body = self.read_msg()
            msgs.append((t, body))
            if t == "Z":
                return msgs


def rows(msgs):
    """DataRow values of a message list, as lists of str/None."""
    out = []
    for t, body in msgs:
        if t != "D":
            continue
        (n,) = struct.unpack("!H", body[:2])
        pos, row = 2, []
        for _ in range(n):
            (ln,) = struct.unpack("!i", body[pos:pos + 4])
            pos += 4
            if ln < 0:
                row.append(None)
            else:
                row.append(body[pos:pos + ln].decode())
                pos += ln
        out.append(row)
    return out


def errors(msgs):
    return [error_fields(body) for t, body in msgs if t == "E"]
