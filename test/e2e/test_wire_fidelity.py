"""The extended protocol forwarded as the client sent it: raw message sequences whose every answer is
compared byte for byte with a direct connection. Each test is one of the differences the proxy had
while it went through libpq's result API (issue 14), or pipelining."""
import time

from harness import check, test
from pgwire import Wire
from test_extended import SYNC, bind, describe, execute, parse


def transcript(port, data, syncs, **params):
    """Sends data in one write; every message up to the syncs-th ReadyForQuery, as (type, body)."""
    w = Wire(port)
    w.startup(user="rproxy_up", database="e2e", **params)
    w.send(data)
    got = []
    while syncs:
        t, body = w.read_msg()
        if t == "N":
            continue
        got.append((t, body))
        if t == "Z":
            syncs -= 1
    w.close()
    return got


def same_bytes(data, syncs, what, **params):
    via = transcript(env.proxy_port, data, syncs, **params)
    direct = transcript(env.up.port, data, syncs, **params)
    check(via == direct, f"{what}:\n proxy  {via}\n direct {direct}")
    return via


def types(msgs):
    return "".join(t for t, _ in msgs)


@test
def an_error_raised_while_planning_at_bind_arrives_at_bind():
    # A custom plan folds 1/$1 with the value: division by zero is raised by Bind, so no
    # BindComplete comes, and Execute is skipped.
    got = same_bytes(parse("", "SELECT 1/$1", [23]) + bind("", "", [b"0"]) + execute("") + SYNC, 1,
                     "planning error at Bind")
    check(types(got) == "1EZ", f"ParseComplete, the error, ReadyForQuery: {types(got)}")
    got = same_bytes(parse("", "SELECT $1::int", [25]) + bind("", "", [b"nope"]) + describe("P", "") + execute("") +
                     SYNC, 1, "a parameter that is not an integer")
    check(types(got) == "1EZ", types(got))


@test
def a_row_limited_portal_really_suspends():
    # Row 3 divides by zero: a portal fetched two rows at a time has not reached it when it
    # suspends; the error comes with the second fetch, as on the server.
    q = "SELECT 10 / (3 - g) FROM generate_series(1, 5) g"
    got = same_bytes(parse("", q) + bind("p", "") + execute("p", 2) + execute("p", 2) + execute("p", 0) + SYNC, 1,
                     "a suspended portal")
    check(types(got) == "12DDsEZ", f"two rows, suspended, then the error: {types(got)}")
    got = same_bytes(parse("", "SELECT g FROM generate_series(1, 5) g") + bind("p", "") + execute("p", 2) +
                     execute("p", 2) + execute("p", 2) + execute("p", 2) + SYNC, 1, "fetching to the end")
    check(types(got) == "12DDsDDsDCCZ", types(got))


@test
def one_sync_makes_one_implicit_transaction():
    # Two Executes before one Sync share the transaction: the second statement's start is later
    # than the transaction's.
    data = (parse("", "SELECT pg_sleep(0.02)") + bind("", "") + execute("") +
            parse("", "SELECT now() = statement_timestamp(), now() < statement_timestamp()") + bind("", "") +
            execute("") + SYNC)
    got = same_bytes(data, 1, "two statements in one implicit transaction")
    rows = [body for t, body in got if t == "D"]
    check(rows[-1] == b"\x00\x02\x00\x00\x00\x01f\x00\x00\x00\x01t", f"one transaction: {rows[-1]}")
    # A Sync between them: two transactions, as directly.
    data = (parse("", "SELECT pg_sleep(0.02)") + bind("", "") + execute("") + SYNC +
            parse("", "SELECT now() = statement_timestamp()") + bind("", "") + execute("") + SYNC)
    same_bytes(data, 2, "two implicit transactions")


@test
def any_type_comes_in_any_format():
    cols = ["'(1,2)'::point", "'1 day 02:03'::interval", "'192.168.0.1/24'::inet", "'{1,2}'::int4[]",
            "'[1,5)'::int4range", "'a'::text", "'<x/>'::xml", "'08:00:2b:01:02:03'::macaddr", "1::int4"]
    q = "SELECT " + ", ".join(cols)
    for formats in ([1, 0, 1, 0, 1, 0, 1, 0, 1], [0, 1, 0, 1, 0, 1, 0, 1, 0], [1], [0], []):
        same_bytes(parse("", q) + bind("", "", result_formats=formats) + describe("P", "") + execute("") + SYNC, 1,
                   f"result formats {formats}")
    # Fewer formats than columns (and not one): the server's error, at Bind.
    got = same_bytes(parse("", q) + bind("", "", result_formats=[1, 0]) + execute("") + SYNC, 1, "bad format count")
    check(types(got) == "1EZ", types(got))


@test
def pipelined_batches_in_one_write_are_answered_as_directly():
    data = b""
    for i in range(5):
        data += parse(f"s{i}", f"SELECT {i} AS n, $1::int / {i % 3} AS q", [23]) + describe("S", f"s{i}")
        data += bind("", f"s{i}", [b"6"]) + describe("P", "") + execute("") + SYNC
    data += parse("", "SELECT g FROM generate_series(1, 3) g") + bind("c", "") + execute("c", 1) + execute("c", 1)
    data += execute("c", 0) + SYNC
    got = same_bytes(data, 6, "six pipelined batches, errors in two")
    check(types(got).count("E") == 2, f"the batches with i % 3 == 0 fail: {types(got)}")
    # Without a Sync between them: one error skips every later message up to the Sync. (6 / 0 is
    # folded when the statement is planned, at Bind: the error comes there.)
    data = b"".join(parse("", f"SELECT 6 / {i}") + bind("", "") + execute("") for i in (2, 1, 0, 3)) + SYNC
    got = same_bytes(data, 1, "one pipeline, an error in the middle")
    check(types(got) == "12DC12DC1EZ", types(got))


def query(sql):
    return b"Q" + (len(sql) + 5).to_bytes(4, "big") + sql.encode() + b"\0"


FLUSH = b"H\0\0\0\4"


@test
def a_simple_query_after_a_flushed_batch_is_answered_in_order():
    # The batch's answers, then the query's, then Sync's ReadyForQuery: as directly.
    data = parse("", "SELECT 7") + bind("", "") + execute("") + FLUSH + query("SELECT 8") + SYNC
    got = same_bytes(data, 2, "Query after Flush")
    check(types(got) == "12DCTDCZZ", types(got))
    # After an error in the batch the server skips everything up to Sync, the query included.
    data = parse("", "SELECT * FROM no_such_table") + bind("", "") + execute("") + FLUSH + query("SELECT 8") + SYNC
    got = same_bytes(data, 1, "Query skipped after an error")
    check(types(got) == "EZ", types(got))
    # The batch's connection went back to the pool at a message boundary: many times over, every
    # answer is still right.
    for i in range(12):
        same_bytes(parse("", f"SELECT {i}") + bind("", "") + execute("") + FLUSH + query("SELECT 1") + SYNC, 2,
                   f"round {i}")


@test
def a_setting_changed_earlier_in_a_batch_never_reaches_the_cache():
    # Two tables of one name in two schemas: which one a read sees depends on search_path.
    env.up.sql("CREATE TABLE shadow_probe (id int, txt text); INSERT INTO shadow_probe VALUES (1, 'public'); "
               "CREATE SCHEMA shadow; CREATE TABLE shadow.shadow_probe (id int, txt text); "
               "INSERT INTO shadow.shadow_probe VALUES (1, 'shadowed'); GRANT USAGE ON SCHEMA shadow TO rproxy_up; "
               "GRANT SELECT ON shadow_probe, shadow.shadow_probe TO rproxy_up", db="e2e")
    try:
        q = "SELECT txt FROM shadow_probe WHERE id = 1"
        batch = (parse("", "SET search_path TO shadow, public") + bind("", "") + execute("") +
                 parse("", q) + bind("", "") + execute("") + SYNC)
        for _ in range(3):
            same_bytes(batch, 1, "the SET and the read in one batch")
        plain = parse("", q) + bind("", "") + execute("") + SYNC
        for _ in range(3):
            got = same_bytes(plain, 1, "the same read without the SET")
            check(b"shadowed" not in b"".join(body for _, body in got), f"another client's search_path: {got}")
        # Inside a transaction opened and rolled back in one batch, the SET is undone as on the server.
        batch = (parse("", "BEGIN") + bind("", "") + execute("") + parse("", "SET search_path TO shadow") +
                 bind("", "") + execute("") + parse("", "ROLLBACK") + bind("", "") + execute("") + SYNC +
                 query("SHOW search_path"))
        same_bytes(batch, 2, "BEGIN; SET; ROLLBACK in one batch")
    finally:
        # Other tests browse the catalog like BI tools: leave no second table of a name behind.
        env.up.sql("DROP SCHEMA shadow CASCADE; DROP TABLE shadow_probe", db="e2e")


def answers_before_sync(port, batch, completes, pause):
    """Sends batch without its Sync and reads until `completes` CommandCompletes arrive (the
    server sends each buffer it fills, whether Sync came or not), waits `pause`, then sends Sync:
    every message, as (type, body)."""
    w = Wire(port)
    w.startup(user="rproxy_up", database="e2e")
    w.sock.settimeout(10)
    w.send(batch)
    got = []
    while completes:
        t, body = w.read_msg()
        got.append((t, body))
        if t == "C":
            completes -= 1
    time.sleep(pause)
    w.send(SYNC)
    got += w.read_until_ready()
    w.close()
    return got


@test
def answers_before_sync_arrive_as_directly_however_long_the_client_pauses():
    # Cached answers the proxy gives itself before Sync: written once they pass 64 KiB, as the
    # server writes a full buffer, and never dropped while the client pauses longer than the
    # interval after which an idle client parks.
    big = "SELECT repeat('x', 4000) AS filler, g FROM generate_series(1, 25) g"
    one = parse("", big) + bind("", "") + describe("P", "") + execute("")
    warm = transcript(env.proxy_port, one + SYNC, 1)
    check(types(warm) == "12T" + "D" * 25 + "CZ", f"warm-up: {types(warm)}")
    # Two CommandCompletes: the server, too, sends a full buffer, and the last answer's tail at Sync.
    via = answers_before_sync(env.proxy_port, one * 3, 2, 1.6)
    direct = answers_before_sync(env.up.port, one * 3, 2, 0)
    check(via == direct, f"a 300 KB batch read before its Sync: {types(via)} / {types(direct)}")
    small = parse("", "SELECT 42 AS answer") + bind("", "") + describe("P", "") + execute("")
    for _ in range(2):
        w = Wire(env.proxy_port)
        w.startup(user="rproxy_up", database="e2e")
        w.send(small)
        time.sleep(1.6)  # longer than it takes the sweep to park a waiting client
        w.send(SYNC)
        got = w.read_until_ready()
        w.close()
        check(types(got) == "12TDCZ" and got[3][1].endswith(b"42"), f"a paused batch is answered whole: {got}")
