"""The read-only firewall end to end: the corpus never changes the upstream, reads keep working."""
import os
import struct
import time

from cluster import ROOT
from harness import check, test
from pgwire import Wire, error_fields, errors, rows


def load_corpus():
    out = []
    with open(os.path.join(ROOT, "test", "firewall", "corpus.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            text, i = [], 0
            while i < len(line):  # COPY text format escapes
                c = line[i]
                if c == "\\" and i + 1 < len(line):
                    n = line[i + 1]
                    text.append({"n": "\n", "t": "\t", "\\": "\\"}.get(n, n))
                    i += 2
                else:
                    text.append(c)
                    i += 1
            out.append("".join(text))
    return out


def dollar(s):
    tag = "$corpus$"
    assert tag not in s
    return f"{tag}{s}{tag}"


def upstream_state():
    q = {
        "t": "SELECT string_agg(a || ':' || b, ',' ORDER BY a, b) FROM t",
        "guarded": "SELECT string_agg(id::text, ',' ORDER BY id) FROM guarded",
        "sequence": "SELECT last_value || ':' || is_called FROM s",
        "relations": "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
        "functions": "SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
        "row_counters": "SELECT tup_inserted || ':' || tup_updated || ':' || tup_deleted FROM pg_stat_database WHERE datname = 'e2e'",
        "roles": "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles",
        "databases": "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database",
        "slots": "SELECT count(*) FROM pg_replication_slots",
        "large_objects": "SELECT count(*) FROM pg_largeobject_metadata",
        "advisory_locks": "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
        "prepared_xacts": "SELECT count(*) FROM pg_prepared_xacts",
        "server_read_only_default": "SELECT setting FROM pg_settings WHERE name = 'default_transaction_read_only'",
    }
    return {k: env.up.sql(v, db="e2e") for k, v in q.items()}


def other_backends():
    out = env.up.sql("SELECT string_agg(pid || '/' || application_name, ',' ORDER BY pid) FROM pg_stat_activity "
                     "WHERE backend_type = 'client backend' AND application_name <> 'corpus' AND pid <> pg_backend_pid()")
    return set(out.split(",")) if out else set()


@test
def corpus_rejections_never_change_the_upstream_even_as_superuser():
    corpus = load_corpus()
    check(len(corpus) >= 300, f"corpus has {len(corpus)} statements")
    # Which strings the gateway's own classifier rejects (the same code the workers run).
    judge = Wire(env.gw.port)
    judge.startup(user="postgres", database="postgres")
    rejected = []
    for stmt in corpus:
        r = rows(judge.query(f"SELECT bool_and(allowed)::text FROM pg_rproxy_classify({dollar(stmt)})"))
        if r and r[0][0] == "false":
            rejected.append(stmt)
    judge.close()
    check(len(rejected) > 250, f"{len(rejected)} rejected strings")

    witness = Wire(env.up.port)
    witness.startup(user="postgres", database="e2e", application_name="witness")
    witness_pid = rows(witness.query("SELECT pg_backend_pid()"))[0][0]
    try:
        env.gw.reload_with(upstream=f"host=127.0.0.1 port={env.up.port} user=postgres dbname=e2e", pool_size=1)
        before, backends_before = upstream_state(), other_backends()
        w = env.wire(application_name="corpus")
        codes = {}
        for stmt in rejected:
            msgs = w.query(stmt)
            e = errors(msgs)
            check(e, f"no error for rejected {stmt!r}: {msgs}")
            check(e[0]["C"] in ("25006", "42601"), f"{stmt!r}: {e[0]}")
            check(msgs[-1][0] == "Z", "ReadyForQuery follows")
            codes[e[0]["C"]] = codes.get(e[0]["C"], 0) + 1
        used_pid = rows(w.query("SELECT pg_backend_pid()"))[0][0]
        w.close()
        time.sleep(1.2)  # let any stats the statements might have caused reach pg_stat_database
        after, backends_after = upstream_state(), other_backends()
        for key in before:
            check(before[key] == after[key], f"upstream {key} changed: {before[key]!r} -> {after[key]!r}")
        check(backends_before == backends_after, f"upstream backends changed: {backends_before ^ backends_after}")
        check(rows(witness.query("SELECT 'alive'")) == [["alive"]], f"witness backend {witness_pid} untouched")
        # The next client on the same pooled connections sees the connection's own defaults.
        for _ in range(4):
            n = env.wire()
            got = rows(n.query("SELECT current_setting('default_transaction_read_only'), "
                               "current_setting('transaction_read_only'), current_user, "
                               "current_setting('search_path'), current_setting('work_mem'), "
                               "pg_has_role('postgres', 'MEMBER')::text, pg_backend_pid()::text"))[0]
            check(got[:6] == ["on", "on", "postgres", '"$user", public', "4MB", "true"], f"next client sees {got}")
            n.close()
        check(codes.get("25006", 0) > 250, f"rejections by code: {codes}, corpus client used backend {used_pid}")
    finally:
        witness.close()
        env.gw.reload_with(upstream=None, pool_size=None)
    env.wait_proxy()


@test
def statements_of_one_shape_are_judged_by_their_own_literals():
    """The parse memo shares facts between strings that differ only in literals. Where a literal's
    value decides the verdict, the second string of the shape must still be judged on its own."""
    judge = Wire(env.gw.port)
    judge.startup(user="postgres", database="postgres")
    classify = lambda sql: rows(judge.query(f"SELECT bool_and(allowed)::text FROM pg_rproxy_classify({dollar(sql)})"))[0][0]
    pairs = [  # (allowed, refused), same tokens but for one literal
        ("SELECT set_config('application_name', 'shape', false)",
         "SELECT set_config('default_transaction_read_only', 'off', false)"),
        ("SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'enable_seqscan'",
         "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'transaction_read_only'"),
        ("EXPLAIN (ANALYZE 0) SELECT nextval('s')", "EXPLAIN (ANALYZE 1) SELECT nextval('s')"),
        ("SET ROLE 'none'", "SET ROLE 'postgres'"),
        ("BEGIN TRANSACTION READ ONLY, ISOLATION LEVEL SERIALIZABLE", None),
        ("EXPLAIN (ANALYZE 1, ANALYZE 0) SELECT nextval('s')", "EXPLAIN (ANALYZE 0, ANALYZE 1) SELECT nextval('s')"),
    ]
    sequence = env.up.sql("SELECT last_value || ':' || is_called FROM s", db="e2e")
    for allowed, refused in pairs:
        check(classify(allowed) == "true", f"the gateway allows {allowed!r}")
        if refused:
            check(classify(refused) == "false", f"the gateway refuses {refused!r}")
        w = env.wire()
        for _ in range(2):  # the second time from the memo
            msgs = w.query(allowed)
            check(not errors(msgs), f"{allowed!r}: {errors(msgs)}")
            if w.query("SELECT 1")[-1] != ("Z", b"I"):
                w.query("ROLLBACK")
            if refused:
                e = errors(w.query(refused))
                check(e and e[0]["C"] == "25006", f"{refused!r} after {allowed!r}: {e}")
        w.close()
    judge.close()
    check(env.up.sql("SELECT last_value || ':' || is_called FROM s", db="e2e") == sequence, "nextval never ran")
    # Facts are shared, results are not: each literal has its own cache entry.
    w = env.wire()
    for i in (1, 2, 3, 2, 1):
        check(rows(w.query(f"SELECT id * 10 FROM big WHERE id = {i}")) == [[str(i * 10)]], f"id {i}")
        check(rows(w.query(f"SELECT '{i}'::text || 'x'")) == [[f"{i}x"]], f"literal {i}")
    w.close()


@test
def a_quoted_name_or_a_type_modifier_is_not_taken_for_a_keyword_or_a_literal():
    """Tokens the shape memo must keep apart: "cube"(a) calls a function where CUBE(a) is a
    grouping set, and float(25) names float8 where float(24) names float4 (TREAT calls it)."""
    try:
        env.gw.reload_with(denied_functions="cube,float8")
        w = env.wire()
        for allowed, refused in [("SELECT count(*) FROM big WHERE id < 3 GROUP BY CUBE(id)",
                                  'SELECT count(*) FROM big WHERE id < 3 GROUP BY "cube"(id)'),
                                 ("SELECT treat(1 AS float(24))", "SELECT treat(1 AS float(25))")]:
            for _ in range(2):
                msgs = w.query(allowed)
                check(not errors(msgs) or errors(msgs)[0]["C"] != "25006", f"{allowed!r}: {errors(msgs)}")
                e = errors(w.query(refused))
                check(e and e[0]["C"] == "25006" and "denied_functions" in e[0]["M"], f"{refused!r} after {allowed!r}: {e}")
        w.close()
    finally:
        env.gw.reload_with(denied_functions=None)
    env.wait_proxy()


@test
def volatile_upstream_functions_are_found_in_the_upstream_catalog():
    w = env.wire()
    e = errors(w.query("SELECT public.my_writer()"))
    check(e and e[0]["C"] == "25006" and e[0]["M"] == "function public.my_writer() is not allowed: it is volatile", f"{e}")
    e = errors(w.query("SELECT my_writer()"))
    check(e and "it is volatile" in e[0]["M"], f"{e}")
    e = errors(w.query("SELECT no_such_function_anywhere()"))
    check(e and "unknown to the gateway and the upstream" in e[0]["M"], f"{e}")
    check(rows(w.query("SELECT notice_me('stable functions pass')")) == [["1"]], "stable upstream function allowed")
    w.close()
    check(env.up.sql("SELECT count(*) FROM t WHERE a = 99", db="e2e") == "0", "my_writer never ran")


@test
def reads_and_session_statements_of_drivers_and_bi_tools_pass():
    w = env.wire()
    for stmt in ["SET extra_float_digits = 3", "SET application_name = 'DBeaver 23.0 - Main'", "SET ROLE NONE",
                 "RESET ROLE", "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "BEGIN READ ONLY",
                 "SHOW TRANSACTION ISOLATION LEVEL", "SELECT current_schema(), session_user", "COMMIT",
                 "SELECT pg_catalog.set_config('search_path', '', false)", "SELECT version()",
                 "SELECT current_setting('server_version_num')::int",
                 "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE pg_catalog.pg_table_is_visible(c.oid) LIMIT 5",
                 "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
                 "SELECT pg_is_in_recovery(), pg_database_size(current_database()) > 0",
                 "SELECT typname, oid FROM pg_catalog.pg_type WHERE typname = ANY('{int4,text}')", "DISCARD ALL",
                 "SELECT current_setting('application_name')"]:
        msgs = w.query(stmt)
        check(not errors(msgs), f"{stmt!r}: {errors(msgs)}")
    w.close()


@test
def transactions_are_pinned_and_stay_read_only():
    w = env.wire()
    msgs = w.query("BEGIN READ ONLY")
    check(msgs[-1] == ("Z", b"T"), f"in transaction: {msgs[-1]}")
    pid = rows(w.query("SELECT pg_backend_pid()"))[0][0]
    w.query("DECLARE c CURSOR FOR SELECT id FROM big ORDER BY id")
    check(rows(w.query("FETCH 3 FROM c")) == [["1"], ["2"], ["3"]], "cursor on the pinned connection")
    check(rows(w.query("FETCH 2 FROM c")) == [["4"], ["5"]], "cursor continues")
    check(rows(w.query("SELECT pg_backend_pid()"))[0][0] == pid, "same upstream connection for the transaction")
    e = errors(w.query("INSERT INTO guarded VALUES (5)"))
    check(e and e[0]["C"] == "25006", "writes still refused inside a transaction")
    msgs = w.query("SELECT 1/0")
    check(msgs[-1] == ("Z", b"E"), f"failed transaction: {msgs[-1]}")
    e = errors(w.query("SELECT 1"))
    check(e and e[0]["C"] == "25P02", f"only ROLLBACK now: {e}")
    msgs = w.query("ROLLBACK")
    check(msgs[-1] == ("Z", b"I"), f"idle again: {msgs[-1]}")
    # layer 3: whatever BEGIN the client sends, the upstream transaction is read-only
    for begin in ["BEGIN", "BEGIN ISOLATION LEVEL SERIALIZABLE", "START TRANSACTION ISOLATION LEVEL REPEATABLE READ"]:
        w.query(begin)
        check(rows(w.query("SHOW transaction_read_only")) == [["on"]], f"{begin} is read-only upstream")
        w.query("COMMIT")
    # a client that leaves inside a transaction: its connection does not come back dirty
    w.query("BEGIN")
    w.close()
    for _ in range(4):
        n = env.wire()
        check(n.query("SELECT 1")[-1] == ("Z", b"I"), "pooled connections are idle, not inside a transaction")
        n.close()


@test
def session_settings_are_private_and_their_connection_is_retired():
    w = env.wire()
    w.query("SET search_path = pg_catalog")
    w.query("SET work_mem = '7MB'")
    pid = rows(w.query("SELECT pg_backend_pid()"))[0][0]
    check(rows(w.query("SHOW work_mem")) == [["7MB"]], "the client's own setting")
    others = [env.wire() for _ in range(3)]
    for o in others:
        check(rows(o.query("SHOW work_mem")) == [["4MB"]], "no leak to other clients")
        o.close()
    w.query("PREPARE q(int) AS SELECT $1 + 1")
    check(rows(w.query("EXECUTE q(41)")) == [["42"]], "EXECUTE of a statement this session prepared")
    e = errors(w.query("EXECUTE never_prepared"))
    check(e and e[0]["C"] == "26000", f"{e}")
    w.query("DEALLOCATE q")
    e = errors(w.query("EXECUTE q(1)"))
    check(e and e[0]["C"] == "26000", f"deallocated: {e}")
    w.close()
    deadline = time.time() + 5
    while time.time() < deadline and env.up.sql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") != "0":
        time.sleep(0.1)
    check(env.up.sql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == "0",
          "the connection that carried the client's settings was closed, not pooled")


@test
def copy_to_stdout_matches_direct():
    env.same_as_direct("COPY guarded TO STDOUT")
    env.same_as_direct("COPY (SELECT * FROM kinds ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)")
    via = env.psql("COPY big TO STDOUT")
    direct = env.psql("COPY big TO STDOUT", direct=True)
    check(via.returncode == 0 and via.stdout == direct.stdout, "100k-row COPY identical")
    r = env.psql("COPY guarded FROM STDIN")
    check(r.returncode != 0 and b"COPY FROM statements are not allowed" in r.stderr, r.stderr)


@test
def stable_builtins_that_assign_transaction_ids_are_refused():
    """txid_current() and pg_current_xact_id() are STABLE but assign an XID even in a read-only
    transaction: refused before the upstream sees them."""
    direct = env.psql("SELECT pg_current_xact_id()::text::bigint > 0", direct=True, args=("-A", "-t"))
    check(direct.stdout.strip() == b"t", f"directly it assigns one: {direct.stdout!r} {direct.stderr!r}")
    log_start = len(env.up.log_text())
    for sql in ("SELECT txid_current()", "SELECT pg_catalog.pg_current_xact_id()",
                "SELECT 1 FROM big WHERE id = txid_current()", "SELECT fmgr_c_validator('abs'::regproc)"):
        w = env.wire()
        e = errors(w.query(sql))
        w.close()
        check(e and e[0]["C"] == "25006" and "is not allowed" in e[0]["M"], f"{sql}: {e}")
    new_log = env.up.log_text()[log_start:]
    for name in ("txid_current", "pg_current_xact_id", "fmgr_c_validator"):
        check(name not in new_log, f"{name} reached the upstream")
    env.same_as_direct("SELECT txid_current_if_assigned() IS NULL")


@test
def fast_path_function_calls_are_refused():
    w = env.wire()
    before = int(env.gw.sql("SELECT rejections FROM pg_rproxy_rejections WHERE reason = 'fast_path_call'"))
    oid = 2096  # pg_terminate_backend
    body = struct.pack("!IhhIi", oid, 0, 1, 4, 1) + struct.pack("!h", 0)
    w.send(b"F" + struct.pack("!I", len(body) + 4) + body)
    msgs = []
    while not msgs or msgs[-1][0] != "Z":
        msgs.append(w.read_msg())
    e = errors(msgs)
    check(e and e[0]["C"] == "25006" and "fast-path" in e[0]["M"], f"{msgs}")
    check(rows(w.query("SELECT 'still here'")) == [["still here"]], "session continues")
    w.close()
    after = int(env.gw.sql("SELECT rejections FROM pg_rproxy_rejections WHERE reason = 'fast_path_call'"))
    check(after == before + 1, f"counted: {before} -> {after}")


@test
def policy_settings_apply_on_reload_and_rejections_are_counted():
    counts = lambda: dict(l.split("|") for l in env.gw.sql("SELECT reason || '|' || rejections FROM pg_rproxy_rejections").split("\n"))
    before = counts()
    try:
        env.gw.reload_with(denied_functions="lower", denied_settings="work_mem")
        w = env.wire()
        e = errors(w.query("SELECT lower('X')"))
        check(e and e[0]["M"] == "function lower() is not allowed: it is listed in pg_rproxy.denied_functions", f"{e}")
        e = errors(w.query("SET work_mem = '1MB'"))
        check(e and e[0]["M"] == "setting work_mem cannot be changed through pg_rproxy", f"{e}")
        w.close()
        env.gw.reload_with(denied_functions=None, denied_settings=None, allowed_functions="nextval")
        w = env.wire()
        check(not errors(w.query("SELECT lower('X')")), "lower allowed again")
        # nextval allowed by name: layer 3 (the read-only transaction upstream) still stops it
        e = errors(w.query("SELECT nextval('s')"))
        check(e and e[0]["C"] == "25006" and "read-only transaction" in e[0]["M"], f"layer 3: {e}")
        w.close()
    finally:
        env.gw.reload_with(denied_functions=None, denied_settings=None, allowed_functions=None)
    after = counts()
    check(int(after["denied_function"]) > int(before["denied_function"]), f"{before} -> {after}")
    check(int(after["setting"]) > int(before["setting"]), f"{before} -> {after}")
    check(env.up.sql("SELECT last_value FROM s", db="e2e") == "1", "sequence untouched")
