"""Temporary PostgreSQL clusters for the end-to-end tests, run as the postgres OS user."""
import os
import pwd
import shutil
import subprocess
import socket
import time

BINDIR = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def as_pg(cmd, **kw):
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


class Cluster:
    def __init__(self, base, name, port=None):
        self.dir = os.path.join(base, name)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = port or free_port()
        self.postgres_wrapper = None  # run the server through this (valgrind)

    def init(self, extra_conf=""):
        os.makedirs(self.dir, exist_ok=True)
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        r = as_pg([f"{BINDIR}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--locale=C.UTF-8"])
        assert r.returncode == 0, r.stderr
        self.append_conf(f"""
port = {self.port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.dir}'
max_connections = 200
fsync = off
log_line_prefix = '%m [%p] '
{extra_conf}
""")

    def append_conf(self, text):
        r = as_pg(["sh", "-c", f"cat >> '{self.data}/postgresql.conf'"], input=text)
        assert r.returncode == 0, r.stderr

    def pg_ctl(self, *args, check=True, timeout=90):
        wrapper = ["-p", self.postgres_wrapper] if self.postgres_wrapper else []
        r = as_pg([f"{BINDIR}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "120", *wrapper, *args],
                  timeout=timeout + 60 if wrapper else timeout)
        if check:
            assert r.returncode == 0, f"pg_ctl {args}: {r.stdout} {r.stderr}"
        return r

    def start(self):
        self.pg_ctl("start")

    def stop(self, mode="fast", check=True):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            return self.pg_ctl("-m", mode, "stop", check=check)
        return None

    def restart(self):
        self.pg_ctl("-m", "fast", "restart")

    def sql(self, query, db="postgres", user="postgres", check=True):
        """Runs SQL over the cluster's own socket; returns stdout (unaligned, tuples only)."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.dir,
                            "-p", str(self.port), "-U", user, "-d", db, "-c", query],
                           capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, f"{query}: {r.stderr}"
        return r.stdout.strip()

    def log_text(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def reload_with(self, **settings):
        """ALTER SYSTEM each pg_rproxy setting, then SIGHUP (pg_reload_conf)."""
        for name, value in settings.items():
            if value is None:
                self.sql(f"ALTER SYSTEM RESET pg_rproxy.{name}")
            else:
                lit = str(value).replace("'", "''")
                self.sql(f"ALTER SYSTEM SET pg_rproxy.{name} = '{lit}'")
        self.sql("SELECT pg_reload_conf()")
        time.sleep(0.5)

    def remove(self):
        self.stop(mode="immediate", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
