"""A small raw PostgreSQL v3 client, for what psql cannot send: malformed input, abrupt
disconnects, and a look at the exact messages the proxy returns."""
import base64
import hashlib
import hmac
import os
import socket
import struct


class Closed(Exception):
    pass


class StartupError(AssertionError):
    """The server refused the connection; fields are those of its ErrorResponse."""

    def __init__(self, fields):
        super().__init__(f"startup failed: {fields}")
        self.fields = fields


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

    def password_msg(self, data):
        return b"p" + struct.pack("!I", len(data) + 4) + data

    def authenticate(self, code, body, user, password):
        """Answers one Authentication request the way libpq does."""
        if code == 3:
            self.send(self.password_msg(password.encode() + b"\0"))
        elif code == 5:
            inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
            self.send(self.password_msg(b"md5" + hashlib.md5(inner.encode() + body[4:8]).hexdigest().encode() + b"\0"))
        elif code == 10:
            mechanisms = [m for m in body[4:].split(b"\0") if m]
            if b"SCRAM-SHA-256" not in mechanisms:
                raise AssertionError(f"no SCRAM-SHA-256 in {mechanisms}")
            self.scram = Scram(password)
            first = self.scram.client_first()
            self.send(self.password_msg(b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
        elif code == 11:
            self.send(self.password_msg(self.scram.client_final(body[4:])))
        elif code == 12:
            self.scram.verify_server(body[4:])
        else:
            raise AssertionError(f"unsupported authentication request {code}")

    def startup(self, password=None, **kw):
        """Startup until ReadyForQuery, authenticating with password (default $PGPASSWORD);
        returns the messages. Raises on ErrorResponse."""
        if password is None:
            password = os.environ.get("PGPASSWORD", "")
        self.send(self.startup_packet(**kw))
        msgs = []
        while True:
            t, body = self.read_msg()
            msgs.append((t, body))
            if t == "R":
                (code,) = struct.unpack("!i", body[:4])
                if code != 0:
                    self.authenticate(code, body, kw.get("user", "postgres"), password)
            if t == "S":
                k, v = body.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            if t == "E":
                raise StartupError(error_fields(body))
            if t == "Z":
                return msgs

    @staticmethod
    def query_msg(sql):
        data = sql.encode() + b"\0"
        return b"Q" + struct.pack("!I", len(data) + 4) + data

    def query(self, sql):
        """Simple query; returns the messages up to and including ReadyForQuery."""
        self.send(self.query_msg(sql))
        return self.read_until_ready()

    def read_until_ready(self):
        """Messages up to and including ReadyForQuery."""
        msgs = []
        while True:
            t, body = self.read_msg()
            msgs.append((t, body))
            if t == "Z":
                return msgs


class Scram:
    """The client side of SCRAM-SHA-256 (RFC 5802), without channel binding."""

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = f"n=,r={self.nonce}"

    def client_first(self):
        return ("n,," + self.bare).encode()

    def client_final(self, server_first):
        self.server_first = server_first.decode()
        attrs = dict(part.split("=", 1) for part in self.server_first.split(","))
        assert attrs["r"].startswith(self.nonce), "server nonce must extend ours"
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = f"c={base64.b64encode(b'n,,').decode()},r={attrs['r']}"
        self.auth_message = f"{self.bare},{self.server_first},{without_proof}".encode()
        signature = hmac.new(stored, self.auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify_server(self, server_final):
        expected = base64.b64encode(hmac.new(self.server_key, self.auth_message, "sha256").digest())
        assert server_final == b"v=" + expected, "the server proved it knows the verifier"


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
