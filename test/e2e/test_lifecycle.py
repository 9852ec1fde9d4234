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
    check(env.gw.sql("SHOW pg_rproxy.port") == str(env.proxy_port), "LISTEN_PORT")
    check(env.gw.sql("SHOW pg_rproxy.listen_addresses") == "127.0.0.1", "LISTEN_HOST")
    check(env.gw.sql("SHOW pg_rproxy.pool_size") == "2", "POOL_SIZE")
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
def sigterm_finishes_in_flight_statements_then_closes_clients_with_57p01():
    idle = Wire(env.proxy_port)
    idle.startup(user="rproxy_up")
    busy = Wire(env.proxy_port)
    busy.startup(user="rproxy_up")
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
