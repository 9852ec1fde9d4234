"""Configuration through the entrypoint, installation rules, and shutdown."""
import threading
import time

from cluster import Cluster
from harness import check, test
from pgwire import Closed, Wire, errors, rows


@test
def gateway_runs_with_the_entrypoint_mapping():
    expected = env.entrypoint("conninfo", env=env.proxy_env).stdout.strip()
    check("password='unused p\\'ss\\\\word'" in expected, f"conninfo quoting: {expected}")
    check(env.gw.sql("SHOW pg_rproxy.upstream") == expected, "postgresql.conf round-trips the conninfo exactly")
    check(env.gw.sql("SHOW pg_rproxy.port") == f"{env.proxy_port},{env.extra_port}", "LISTEN_PORT, a list")
    check(env.gw.sql("SHOW pg_rproxy.listen_addresses") == "127.0.0.1", "LISTEN_HOST")
    check(env.gw.sql("SHOW pg_rproxy.pool_size") == "2", "POOL_SIZE")
    check(env.gw.sql("SHOW pg_rproxy.cache_ttl") == "15min", "CACHE_TTL_SECONDS default 900")
    r = env.entrypoint("write-config", "/dev/stdout", env={"CACHE_TTL_SECONDS": "60", "MAX_CACHE_ENTRIES": "500",
                                                           "CACHE_SIZE": "8MB"})
    for line in ["pg_rproxy.cache_ttl = '60s'", "pg_rproxy.cache_max_entries = 500", "pg_rproxy.cache_size = '8MB'"]:
        check(line in r.stdout, f"{line!r} in {r.stdout!r}")
    r = env.entrypoint("write-config", "/dev/null", env={"MAX_CACHE_ENTRIES": "many"})
    check(r.returncode != 0 and "MAX_CACHE_ENTRIES must be an integer" in r.stderr, r.stderr)
    r = env.entrypoint("write-config", "/dev/null", env={"POOL_SIZE": "lots"})
    check(r.returncode != 0 and "POOL_SIZE must be an integer" in r.stderr, r.stderr)
    r = env.entrypoint("conninfo", env={"UPSTREAM_HOST": "db.example.com", "UPSTREAM_USER": "ro"})
    check(r.stdout.strip() == "host='db.example.com' port=5432 user='ro'", r.stdout)


@test
def create_extension_requires_shared_preload_libraries():
    plain = Cluster(env.base, "no-preload")
    plain.init()
    plain.start()
    try:
        out = plain.sql("CREATE EXTENSION pg_rproxy", check=False)
        import subprocess
        r = subprocess.run(["psql", "-X", "-h", plain.dir, "-p", str(plain.port), "-U", "postgres", "-d", "postgres",
                            "-c", "CREATE EXTENSION pg_rproxy"], capture_output=True, text=True)
        check(r.returncode != 0, f"must fail: {out}")
        check("pg_rproxy must be loaded via shared_preload_libraries" in r.stderr, r.stderr)
        check("HINT:  Add pg_rproxy to shared_preload_libraries" in r.stderr, r.stderr)
        check(plain.sql("SELECT count(*) FROM pg_extension WHERE extname = 'pg_rproxy'") == "0", "nothing installed")
    finally:
        plain.remove()


@test
def container_entrypoint_initialises_and_serves():
    """The Docker image's start path, run outside Docker: init, configure from env, exec postgres."""
    import os
    import subprocess
    from cluster import BINDIR, ROOT, free_port
    data_dir = os.path.join(env.base, "container")
    os.makedirs(data_dir, exist_ok=True)
    if os.getuid() == 0:
        import pwd
        pw = pwd.getpwnam("postgres")
        os.chown(data_dir, pw.pw_uid, pw.pw_gid)
    proxy_port, pg_port = free_port(), free_port()
    e = dict(os.environ, PATH=f"{BINDIR}:{os.environ['PATH']}", PGDATA=os.path.join(data_dir, "data"),
             UPSTREAM_HOST="127.0.0.1", UPSTREAM_PORT=str(env.up.port), UPSTREAM_USER="rproxy_up",
             UPSTREAM_DATABASE="e2e", LISTEN_PORT=str(proxy_port), POOL_SIZE="3",
             PROXY_USER="rproxy_up", PROXY_PASSWORD=os.environ["PGPASSWORD"])
    cmd = [os.path.join(ROOT, "docker", "entrypoint.sh"), "-c", f"port={pg_port}",
           "-c", f"unix_socket_directories={data_dir}"]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", "env", *[f"{k}={v}" for k, v in e.items()], *cmd]
    log = open(os.path.join(data_dir, "server.log"), "w")
    proc = subprocess.Popen(cmd, env=e, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            r = subprocess.run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(proxy_port), "-U", "rproxy_up",
                                "-d", "e2e", "-c", "SELECT 'via container entrypoint'"], capture_output=True, text=True)
            if r.returncode == 0:
                break
            check(proc.poll() is None, f"entrypoint exited: {open(log.name).read()[-2000:]}")
            time.sleep(0.3)
        check(r.stdout.strip() == "via container entrypoint", f"{r.stderr}")
        r = subprocess.run(["psql", "-X", "-A", "-t", "-h", data_dir, "-p", str(pg_port), "-U", "postgres", "-d",
                            "postgres", "-c", "SELECT count(*) FROM pg_rproxy_workers"], capture_output=True, text=True,
                           **({"user": "postgres"} if os.getuid() == 0 else {}))
        check(r.returncode == 0 and r.stdout.strip() == "2", f"extension created by the entrypoint: {r.stderr}")
    finally:
        # SIGTERM to the postmaster (what `docker stop` does to the exec'd postgres)
        with open(os.path.join(e["PGDATA"], "postmaster.pid")) as f:
            os.kill(int(f.readline()), 15)
        proc.wait(timeout=30)
    check(proc.returncode == 0, f"postgres exited cleanly on SIGTERM: {proc.returncode}")


@test
def workers_exit_promptly_when_the_postmaster_dies():
    """Runs on a throwaway gateway: kill -9 of its postmaster must not leave listeners behind."""
    import os
    import signal
    from cluster import Cluster
    gw = Cluster(env.base, "orphan-gateway")
    gw.init()
    r = env.entrypoint("write-config", os.path.join(gw.data, "postgresql.conf"),
                       env={"UPSTREAM_HOST": "127.0.0.1", "UPSTREAM_PORT": str(env.up.port),
                            "UPSTREAM_USER": "rproxy_up", "UPSTREAM_DATABASE": "e2e",
                            "LISTEN_HOST": "127.0.0.1", "LISTEN_PORT": str(free_port_())})
    check(r.returncode == 0, r.stderr)
    gw.start()
    try:
        deadline = time.time() + 20
        pids = []
        while time.time() < deadline and len(pids) < 2:
            pids = [int(p) for p in gw.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_rproxy listener'").split()]
            time.sleep(0.2)
        check(len(pids) == 2, f"two listeners: {pids}")
        with open(os.path.join(gw.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        os.kill(postmaster, signal.SIGKILL)
        deadline = time.time() + 3
        alive = pids
        while time.time() < deadline and alive:
            alive = [p for p in pids if os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2]]
            time.sleep(0.1)
        check(not alive, f"listeners still running {3}s after postmaster death: {alive}")
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        gw.remove()


def free_port_():
    from cluster import free_port
    return free_port()


@test
def sigterm_finishes_in_flight_statements_then_closes_clients_with_57p01():
    idle = env.wire()
    busy = env.wire()
    busy_msgs = []

    def run_busy():
        busy.send(Wire.query_msg("SELECT 'finished' FROM pg_sleep(1.5)"))
        busy_msgs.extend(busy.read_until_closed())

    t = threading.Thread(target=run_busy)
    t.start()
    time.sleep(0.4)
    started = time.time()
    env.gw.stop(mode="fast")  # postmaster sends SIGTERM to the workers
    elapsed = time.time() - started
    t.join(timeout=20)
    check(elapsed < 15, f"gateway stopped in {elapsed:.1f}s")
    types = [m[0] for m in busy_msgs]
    check(rows(busy_msgs) == [["finished"]], f"in-flight statement finished: {busy_msgs}")
    e = errors(busy_msgs)
    check(e and e[-1]["C"] == "57P01" and e[-1]["S"] == "FATAL", f"busy client told 57P01: {types} {e}")
    e = errors(idle.read_until_closed())
    check(e and e[0]["C"] == "57P01" and e[0]["M"] == "terminating connection due to administrator command",
          f"idle client told 57P01: {e}")
    log = env.gw.log_text()
    check("shut down" in log, "workers logged their shutdown")


@test
def no_worker_ever_crashed():
    log = env.gw.log_text()
    for bad in ["terminated by signal", "was terminated", "server process (PID", "PANIC"]:
        check(bad not in log, f"gateway log contains {bad!r}")
