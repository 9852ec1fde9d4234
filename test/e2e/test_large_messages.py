"""Client messages of every size up to pg_rproxy.max_message_size, alone and pipelined, each answered
exactly as a direct connection answers it, and no worker ever restarted (issue 13: messages over
16 kB were read from moved or freed memory, over 256 kB a worker crashed)."""
import hashlib
import os
import subprocess

from harness import check, test
from pgwire import Wire
from test_extended import SYNC, bind, cstr, describe, execute, msg, parse

KB = 1000


def answers(port, batches, **startup):
    """Each batch sent in one write; every message that comes back until as many ReadyForQuery as
    the batch asks for, as raw (type, body) pairs."""
    w = Wire(port, timeout=120)
    w.startup(user="rproxy_up", database="e2e", **startup)
    out = []
    for batch in batches:
        w.send(batch)
        pending = count_syncs(batch)
        while pending:
            t, body = w.read_msg()
            out.append((t, body))
            pending -= t == "Z"
    w.close()
    return out


def count_syncs(batch):
    """Messages in a batch that each end with ReadyForQuery: Query and Sync."""
    n = pos = 0
    while pos < len(batch):
        t = batch[pos:pos + 1]
        length = int.from_bytes(batch[pos + 1:pos + 5], "big")
        n += t in (b"Q", b"S")
        pos += 1 + length
    return n


def summary(msgs):
    return [(t, len(b), hashlib.md5(b).hexdigest()[:12]) for t, b in msgs][:40]


def same_as_direct(batches, what):
    before = gateway_state()
    via = answers(env.proxy_port, batches)
    direct = answers(env.up.port, batches)
    check(via == direct, f"{what}: answers differ\n proxy  {summary(via)}\n direct {summary(direct)}")
    no_restarts(before, what)
    return via


def gateway_state():
    return env.worker_pids(), env.gw.log_text().count("terminated by signal")


def no_restarts(before, what):
    pids, crashes = before
    check(env.gw.log_text().count("terminated by signal") == crashes, f"{what}: a gateway process crashed")
    check(env.worker_pids() == pids, f"{what}: workers restarted: {pids} -> {env.worker_pids()}")


def query(sql):
    return msg("Q", cstr(sql))


def statement_of_size(n, seed):
    """A SELECT whose Query message is n bytes long, over a literal of hex digits."""
    head = "SELECT length(s), md5(s), left(s, 20) FROM (SELECT '"
    tail = f"'::text AS s) q -- {seed}"
    filler = n - 5 - 1 - len(head) - len(tail)
    digits = (hashlib.sha256(str(seed).encode()).hexdigest() * (filler // 64 + 1))[:filler]
    return head + digits + tail


SIZES = [15 * KB, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 17 * KB, 100 * KB, 256 * 1024 - 1, 256 * 1024,
         256 * 1024 + 1, 300 * KB, 2000 * KB]


@test
def simple_statements_from_15kb_to_2mb_match_a_direct_connection():
    for n in SIZES:
        sql = statement_of_size(n, n)
        check(len(query(sql)) == n, f"statement built to {n} bytes")
        same_as_direct([query(sql)], f"simple statement of {n} bytes")
    # all of them pipelined in one write, small ones between them
    batch = b"".join(query(statement_of_size(n, n + 1)) + query("SELECT 1") for n in SIZES)
    same_as_direct([batch], "large statements pipelined with small ones")


def psql_stdin(sql, direct=False, conninfo=None):
    port = env.up.port if direct else env.proxy_port
    target = conninfo or f"host=127.0.0.1 port={port} user=rproxy_up dbname=e2e"
    return subprocess.run(["psql", "-X", "-A", "-t", target], input=sql.encode() + b";\n", capture_output=True,
                          timeout=120, env=dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8"))


@test
def psql_sends_a_300kb_statement_as_directly():
    """The report's reproduction: psql reading the statement from standard input."""
    before = gateway_state()
    sql = "SELECT length('" + "x" * 300000 + "')"
    for _ in range(5):
        via, direct = psql_stdin(sql), psql_stdin(sql, direct=True)
        check(via.returncode == 0 and via.stdout == direct.stdout == b"300000\n",
              f"psql: {via.returncode} {via.stdout[:80]!r} {via.stderr[:300]!r}")
    no_restarts(before, "psql 300 kB statement")


@test
def parse_with_a_50kb_in_list_and_its_bind_match_a_direct_connection():
    n = 8600
    sql = "SELECT count(*), sum(id), min(h), max(h) FROM big WHERE id IN (" + ",".join(f"${i}" for i in range(1, n + 1)) + ")"
    check(len(sql) > 50 * KB, f"the statement is {len(sql)} bytes")
    params = [str((i * 7919) % 100000 + 1).encode() for i in range(n)]
    same_as_direct([parse("inlist", sql) + bind("", "inlist", params) + describe("P", "") + execute("") + SYNC],
                   "Parse with a 50 kB IN list, its Bind with 8,600 parameters")
    # the same list as literals in a simple query (drivers that interpolate on the client side)
    literal = sql
    for i in range(n, 0, -1):
        literal = literal.replace(f"${i})", f"{params[i - 1].decode()})").replace(f"${i},", f"{params[i - 1].decode()},")
    same_as_direct([query(literal)], "a 50 kB IN list of literals")


@test
def bind_with_a_300kb_text_and_a_5mb_binary_bytea_parameter_matches_a_direct_connection():
    text = (hashlib.sha256(b"t").hexdigest() * (300 * KB // 64 + 1))[:300 * KB].encode()
    blob = os.urandom(5 * 1000 * 1000)
    sql = "SELECT length($1::text), md5($1::text), length($2::bytea), md5($2::bytea), substr($2::bytea, 1, 8)"
    same_as_direct([parse("", sql, [25, 17]) + bind("", "", [text, blob], param_formats=[0, 1]) +
                    describe("P", "") + execute("") + SYNC], "Bind with 300 kB text and 5 MB binary bytea")
    # the bytea back to the client, in binary: a 5 MB DataRow the other way
    same_as_direct([parse("", "SELECT $1::bytea", [17]) + bind("", "", [blob], param_formats=[1], result_formats=[1]) +
                    execute("") + SYNC], "a 5 MB binary bytea parameter echoed")


@test
def copy_of_1mb_lines_matches_a_direct_connection():
    env.same_as_direct("\\copy (SELECT i, repeat(md5(i::text), 32768) FROM generate_series(1, 3) i) to stdout")
    # CopyData outside COPY is ignored, as the server ignores it, whatever its size
    line = b"y" * (1024 * 1024)
    same_as_direct([msg("d", line) + msg("d", line[:16 * 1024 + 1]) + msg("c") + query("SELECT 'after copy data'")],
                   "1 MB CopyData outside COPY, then a query")


@test
def a_pipelined_batch_of_1000_small_messages_in_one_write_matches_a_direct_connection():
    batch = b""
    for i in range(200):
        batch += query(f"SELECT {i} AS q, md5('{i}')")
        batch += parse("", "SELECT $1::int * 2 AS e", [23]) + bind("", "", [str(i).encode()]) + execute("") + SYNC
    same_as_direct([batch], "1,000 pipelined messages")


@test
def large_messages_over_tls_match_a_direct_connection():
    """TLS reads go through their own buffer path (prepare/commit): the same sizes over TLS."""
    import test_tls_limits  # here, so that importing this module does not reorder the suite
    test_tls_limits.tls_on()
    try:
        before = gateway_state()
        conninfo = f"host=127.0.0.1 port={env.proxy_port} user=rproxy_up dbname=e2e sslmode=require"
        for n in (17 * KB, 300 * KB, 2000 * KB):
            sql = statement_of_size(n, n)[:-len(f" -- {n}")]
            via, direct = psql_stdin(sql, conninfo=conninfo), psql_stdin(sql, direct=True)
            check(via.returncode == 0 and via.stdout == direct.stdout,
                  f"TLS, {n} bytes: {via.returncode} {via.stdout[:120]!r} {via.stderr[:300]!r} vs {direct.stdout[:120]!r}")
        no_restarts(before, "large statements over TLS")
    finally:
        test_tls_limits.tls_off()


@test
def a_message_of_exactly_max_message_size_works_and_one_byte_more_gets_54000():
    limit = 16 * 1024 * 1024  # pg_rproxy.max_message_size's default; the length field counts itself
    sql = statement_of_size(limit + 1, 16)
    check(len(query(sql)) == limit + 1, "Query message of the largest allowed length")
    same_as_direct([query(sql)], "a statement of exactly max_message_size")
    before = gateway_state()
    w = Wire(env.proxy_port)
    w.startup(user="rproxy_up", database="e2e")
    w.send(b"Q" + (limit + 1).to_bytes(4, "big") + b"SELECT 1")
    from pgwire import errors
    e = errors(w.read_until_closed())
    w.close()
    check(e and e[-1]["C"] == "54000" and e[-1]["S"] == "FATAL", f"one byte over the limit: {e}")
    no_restarts(before, "one byte over max_message_size")


@test
def statements_larger_than_an_entry_are_not_cached():
    """The key is stored with the result: a 2 MB statement must not take 2 MB of cache for one row."""
    def too_large():
        return int(env.gw.sql("SELECT uncacheable_too_large FROM pg_rproxy_cache_stats"))

    before = too_large()
    sql = statement_of_size(2000 * KB, 99)
    for _ in range(2):
        same_as_direct([query(sql)], "a 2 MB statement, twice")
    check(too_large() >= before + 2, "counted as too large")
    longest = env.gw.sql("SELECT coalesce(max(length(statement)), 0) FROM pg_rproxy_cache_entries()")
    check(int(longest) < 1024 * 1024, f"no cache entry for the 2 MB statement: longest {longest}")


@test
def forty_thousand_parameters_work_as_directly():
    """Parameter counts are unsigned 16-bit on the wire: up to 65,535, not 32,767."""
    n = 40000
    sql = "SELECT count(*), sum(id) FROM big WHERE id IN (" + ",".join(f"${i}" for i in range(1, n + 1)) + ")"
    params = [str(i % 100000 + 1).encode() for i in range(n)]
    same_as_direct([parse("", sql, [23] * n) + bind("", "", params) + describe("S", "") + execute("") + SYNC],
                   "Parse and Bind with 40,000 parameters")
