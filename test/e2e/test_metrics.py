"""The Prometheus endpoint (pg_rproxy.metrics_port, set up by run_e2e.py's setup through the
entrypoint's METRICS_PORT): promtool accepts its output, its counters rise with load, and it
answers 404/405/401/403 as it should. Basic authentication and the allowed addresses are changed by
reload and reset at the end of each test."""
import base64
import os
import pwd
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

from harness import check, test

env = None
PROMTOOL = "/usr/bin/promtool"


def get(path="/metrics", method="GET", auth=None, data=None):
    req = urllib.request.Request(f"http://127.0.0.1:{env.metrics_port}{path}", method=method, data=data)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$')


def samples(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m, f"not a sample line: {line!r}")
        out[m.group(1)] = float(m.group(2))
    return out


def scrape(auth=None):
    status, headers, body = get(auth=auth)
    check(status == 200, f"GET /metrics: {status} {body[:200]!r}")
    return samples(body)


def wait_for(cond, what, seconds=15):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        last = cond()
        if last is True:
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out: {what} ({last})")


@test
def metrics_endpoint_passes_promtool():
    status, headers, body = get()
    check(status == 200, f"status {status}")
    check(headers["Content-Type"].startswith("text/plain; version=0.0.4"), f"content type {headers['Content-Type']}")
    check(os.path.exists(PROMTOOL), f"{PROMTOOL} is missing: scripts/install-deps.sh test installs prometheus")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
          f"promtool: rc {r.returncode} {r.stdout[:2000]} {r.stderr[:2000]}")
    m = samples(body)
    for name in ["pg_rproxy_cache_hits_total", "pg_rproxy_cache_misses_total", "pg_rproxy_cache_evictions_total",
                 "pg_rproxy_cache_bytes", "pg_rproxy_cache_entries", 'pg_rproxy_clients{state="parked"}',
                 'pg_rproxy_statements_total{verdict="refused"}', 'pg_rproxy_statement_cache_results_total{result="hit"}',
                 'pg_rproxy_connection_events_total{outcome="authenticated"}',
                 "pg_rproxy_client_received_bytes_total", "pg_rproxy_upstream_sent_bytes_total"]:
        check(name in m, f"{name} missing")
    check(m["pg_rproxy_workers"] == 2, f"workers: {m['pg_rproxy_workers']}")
    servers = [k for k in m if k.startswith("pg_rproxy_server_healthy{")]
    # Other modules' upstream rows may still name servers that are down: only the default
    # upstream's own server is known to be up.
    own = [k for k in servers if 'upstream=""' in k and f'port="{env.up.port}"' in k]
    check(own and all(m[k] == 1 for k in own), f"the upstream's server healthy: {own} of {servers}")
    check('pg_rproxy_clients{state="active"}' in m, "active clients")
    mine = [k for k in m if 'upstream=""' in k and f'port="{env.up.port}"' in k]
    for family in ('pg_rproxy_server_connections{', 'pg_rproxy_server_errors_total{'):
        check(any(k.startswith(family) for k in mine), f"{family} of the upstream's server: {mine}")
    check(any(k.startswith('pg_rproxy_server_connections{') and 'state="busy"' in k for k in mine)
          and any(k.startswith('pg_rproxy_server_connections{') and 'state="idle"' in k for k in mine),
          f"busy and idle connections: {mine}")


def grew(before, after, name, by=1):
    return after.get(name, 0) >= before.get(name, 0) + by


@test
def metrics_counters_rise_with_load():
    before = scrape()
    marker = uuid.uuid4().hex[:12]
    q = f"SELECT id, '{marker}' AS m FROM kinds ORDER BY id"
    for _ in range(3):  # a miss, then hits
        r = env.psql(q)
        check(r.returncode == 0, r.stderr)
    r = env.psql("CREATE TABLE metrics_refused (i int)")
    check(r.returncode != 0 and b"not allowed" in r.stderr, f"refused: {r.stderr!r}")
    r = env.psql("SELECT 1", env={"PGPASSWORD": "wrong password for metrics"})
    check(r.returncode != 0, "a wrong password fails")
    hist = "statement latencies counted"  # over every upstream's histogram

    def with_total(m):
        m[hist] = sum(v for k, v in m.items() if k.startswith("pg_rproxy_statement_duration_seconds_count{"))
        return m
    with_total(before)

    def risen():
        after = with_total(scrape())
        wanted = [("pg_rproxy_cache_hits_total", 2), ("pg_rproxy_cache_misses_total", 1),
                  ('pg_rproxy_statements_total{verdict="allowed"}', 3),
                  ('pg_rproxy_statements_total{verdict="refused"}', 1),
                  ('pg_rproxy_statement_cache_results_total{result="hit"}', 2),
                  ('pg_rproxy_statement_cache_results_total{result="miss"}', 1),
                  ('pg_rproxy_refusals_total{reason="statement_kind"}', 1),
                  ('pg_rproxy_connection_events_total{outcome="password_failed"}', 1),
                  ('pg_rproxy_connection_events_total{outcome="authenticated"}', 4),
                  (hist, 3), ("pg_rproxy_cache_stores_total", 1),
                  ("pg_rproxy_client_received_bytes_total", 100), ("pg_rproxy_client_sent_bytes_total", 100),
                  ("pg_rproxy_upstream_received_bytes_total", 50), ("pg_rproxy_upstream_sent_bytes_total", len(q))]
        missing = [(n, before.get(n), after.get(n)) for n, by in wanted if not grew(before, after, n, by)]
        return True if not missing else missing
    wait_for(risen, "counters rose")
    after = scrape()
    # Each upstream's histogram is cumulative and ends in +Inf, which equals its count.
    upstreams = [re.search(r'upstream="([^"]*)"', k).group(1) for k in after
                 if k.startswith("pg_rproxy_statement_duration_seconds_count{")]
    check(upstreams, "a latency histogram")
    for u in upstreams:
        buckets = sorted((float(re.search(r'le="([^"]+)"', k).group(1)), v) for k, v in after.items()
                         if k.startswith(f'pg_rproxy_statement_duration_seconds_bucket{{upstream="{u}"'))
        count = after[f'pg_rproxy_statement_duration_seconds_count{{upstream="{u}"}}']
        check(len(buckets) == 17 and buckets[-1][0] == float("inf") and buckets[-1][1] == count, f"buckets {buckets}")
        check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), f"cumulative: {buckets}")
        check(count == 0 or after[f'pg_rproxy_statement_duration_seconds_sum{{upstream="{u}"}}'] > 0, "latency summed")


@test
def metrics_other_paths_404_other_methods_405():
    status, _, _ = get("/")
    check(status == 404, f"GET / -> {status}")
    status, _, _ = get("/metrics/extra")
    check(status == 404, f"GET /metrics/extra -> {status}")
    status, headers, _ = get("/metrics", method="POST", data=b"x=1")
    check(status == 405 and headers["Allow"] == "GET", f"POST -> {status} {headers['Allow']}")
    status, _, _ = get("/metrics", method="DELETE")
    check(status == 405, f"DELETE -> {status}")
    status, _, _ = get("/metrics?name=x")
    check(status == 200, f"a query string is ignored: {status}")


@test
def metrics_slow_and_many_clients_do_not_hold_the_endpoint():
    # A client that sends half a request, and one that sends a huge header: neither blocks scrapes.
    slow = socket.create_connection(("127.0.0.1", env.metrics_port))
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    huge = socket.create_connection(("127.0.0.1", env.metrics_port))
    huge.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    results = []

    def one():
        try:
            results.append(get()[0])
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))
    threads = [threading.Thread(target=one) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    check(results == [200] * 30, f"concurrent scrapes: {results}")
    huge.settimeout(10)
    try:
        reply = huge.recv(100)
    except ConnectionResetError:
        reply = b""
    check(not reply.startswith(b"HTTP/1.1 200"), f"an oversized request is not served: {reply!r}")
    started = time.time()
    slow.settimeout(15)
    try:
        rest = slow.recv(100)
    except ConnectionResetError:
        rest = b""
    check(rest == b"" and time.time() - started < 12, f"the slow client is cut off by the read timeout: {rest!r}")
    slow.close()
    huge.close()


def password_file(text):
    path = os.path.join(env.gw.data, "metrics.password")
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    if os.getuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


@test
def metrics_basic_authentication():
    secret = "metr1cs-Secret-" + uuid.uuid4().hex[:8]
    try:
        env.gw.reload_with(metrics_user="scraper", metrics_password_file=password_file(secret))

        def challenged():
            status, headers, _ = get()
            return True if status == 401 else status
        wait_for(challenged, "401 once the user is set")
        status, headers, body = get()
        check(headers["WWW-Authenticate"].startswith("Basic realm="), f"challenge: {headers['WWW-Authenticate']}")
        check("pg_rproxy_" not in body, "nothing shown without credentials")
        check(get(auth=("scraper", "wrong"))[0] == 401, "a wrong password")
        check(get(auth=("other", secret))[0] == 401, "a wrong user")
        check(get(auth=("scraper", secret + "x"))[0] == 401, "a longer password")
        check(get("/nope", auth=("scraper", "wrong"))[0] == 401, "paths are not told apart without credentials")
        status, _, body = get(auth=("scraper", secret))
        check(status == 200 and "pg_rproxy_cache_hits_total" in body, f"the right credentials: {status}")
        check(get("/nope", auth=("scraper", secret))[0] == 404, "404 with credentials")
        # A new password takes effect at the next reload.
        secret2 = secret + "-2"
        env.gw.reload_with(metrics_password_file=password_file(secret2))
        wait_for(lambda: get(auth=("scraper", secret2))[0] == 200 or "not yet", "the new password")
        check(get(auth=("scraper", secret))[0] == 401, "the old password no longer works")
        log = env.gw.log_text()
        check(secret not in log and secret2 not in log, "no password in the gateway log")
    finally:
        env.gw.reload_with(metrics_user=None, metrics_password_file=None)
        wait_for(lambda: get()[0] == 200 or "not yet", "open again")


@test
def metrics_allowed_addresses():
    try:
        try:
            env.gw.sql("ALTER SYSTEM SET pg_rproxy.metrics_allowed_addresses = '10.0.0.0/99'")
            bad = "accepted"
        except AssertionError as e:
            bad = str(e)
        check("not an address or CIDR block" in bad, f"a bad block is refused: {bad!r}")
        env.gw.reload_with(metrics_allowed_addresses="10.0.0.0/8, 192.168.1.1")
        wait_for(lambda: get()[0] == 403 or "not yet", "403 from an address not listed")
        status, _, body = get()
        check("pg_rproxy_" not in body, "nothing shown")
        env.gw.reload_with(metrics_allowed_addresses="10.0.0.0/8, 127.0.0.0/8")
        wait_for(lambda: get()[0] == 200 or "not yet", "200 from an address in a listed block")
    finally:
        env.gw.reload_with(metrics_allowed_addresses=None)
        wait_for(lambda: get()[0] == 200 or "not yet", "open again")


@test
def metrics_dashboard_uses_names_the_endpoint_has():
    status, _, body = get()
    families = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docker", "grafana-dashboard.json")) as f:
        used = set(re.findall(r"pg_rproxy_[a-z_]+", f.read()))
    unknown = [n for n in used if n not in families and re.sub(r"_(bucket|sum|count)$", "", n) not in families]
    check(used and not unknown, f"dashboard names the endpoint does not have: {unknown}")
