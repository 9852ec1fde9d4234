"""Real tools through the proxy, compared with the same tool connected directly."""
import os
import struct
import subprocess

from harness import check, test
from pgwire import errors


@test
def psql_meta_commands_copy_and_fetch_count_match_direct():
    for command in ["\\l", "\\dn", "\\dt", "\\d+ kinds", "\\df notice_me", "\\du rproxy_up", "\\dv", "\\di"]:
        env.same_as_direct(command)
    env.same_as_direct("SELECT * FROM kinds ORDER BY id", args=("-x",))
    env.same_as_direct("\\copy (SELECT * FROM kinds ORDER BY id) to stdout with csv header")
    # FETCH_COUNT makes psql read through a cursor in a transaction, FETCH_COUNT rows at a time
    env.same_as_direct("SELECT id, h FROM big WHERE id <= 1000 ORDER BY id", args=("-v", "FETCH_COUNT=100"))


def dump(port):
    r = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "e2e"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"pg_dump via {port}: {r.stderr[-800:]}")
    # comments carry times and versions; \restrict carries a random key per run
    return [l for l in r.stdout.splitlines() if not l.startswith("--") and not l.startswith("\\restrict")
            and not l.startswith("\\unrestrict")]


def dumps_as_superuser():
    """pg_dump through the proxy (its upstream role a superuser for the occasion) and directly."""
    try:
        env.gw.reload_with(upstream=f"host=127.0.0.1 port={env.up.port} user=postgres dbname=e2e")
        via = dump(env.proxy_port)
    finally:
        env.gw.reload_with(upstream=None)
    return via, dump(env.up.port)


@test
def pg_dump_through_the_proxy_equals_the_direct_dump():
    via, direct = dumps_as_superuser()
    check(len(via) > 1000, f"a real dump: {len(via)} lines")
    for needle in ["CREATE TABLE public.kinds", "CREATE VIEW public.kinds_view", "CREATE SEQUENCE public.s",
                   "CREATE FUNCTION public.notice_me", "CREATE INDEX big_h", "COPY public.big"]:
        check(any(needle in l for l in via), f"{needle} in the dump")
    if via != direct:
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(via, direct)) if a != b][:5]
        raise AssertionError(f"dumps differ ({len(via)} vs {len(direct)} lines): {diff}")
    env.wait_proxy()


@test
def pg_dump_and_lo_export_of_large_objects_match_direct():
    """libpq reads large objects with fast-path calls (lo_open, loread, lo_close): allowed for
    reading, judged by function and mode; a 3 MB object takes some 200 loread calls."""
    small = int(env.up.sql("SELECT lo_from_bytea(0, 'large object payload')", db="e2e"))
    large = int(env.up.sql("SELECT lo_from_bytea(0, decode(repeat(md5('x'), 100000), 'hex') || "
                           "decode(repeat(md5('y'), 100000), 'hex'))", db="e2e"))
    env.up.sql(f"GRANT SELECT ON LARGE OBJECT {small}, {large} TO rproxy_up", db="e2e")
    try:
        via, direct = dumps_as_superuser()
        check(any("lo_open" in l for l in via) and any(str(large) in l for l in via), "the dump has the large objects")
        if via != direct:
            diff = [(i, a[:100], b[:100]) for i, (a, b) in enumerate(zip(via, direct)) if a != b][:5]
            raise AssertionError(f"dumps differ ({len(via)} vs {len(direct)} lines): {diff}")
        # psql's \lo_export, as the upstream role
        for oid in (small, large):
            files = []
            for direct_conn in (False, True):
                path = os.path.join(env.base, f"lo-{oid}-{direct_conn}")
                r = env.psql(f"\\lo_export {oid} '{path}'", direct=direct_conn)
                check(r.returncode == 0, f"\\lo_export {oid}: {r.stderr!r}")
                with open(path, "rb") as f:
                    files.append(f.read())
            check(files[0] == files[1] and len(files[0]) > 0, f"lo_export {oid}: {len(files[0])} vs {len(files[1])} bytes")
        check(len(files[0]) == 3200000, f"the large object is whole: {len(files[0])}")
        # writing calls are refused, in a transaction too, and nothing reaches the object
        w = env.wire()
        w.query("BEGIN")
        calls = [(952, [struct.pack("!I", large), struct.pack("!i", 0x20000)]),  # lo_open(INV_WRITE)
                 (964, [struct.pack("!I", large)]),                               # lo_unlink
                 (955, [struct.pack("!i", 0), b"overwrite"])]                      # lowrite
        for oid, args in calls:
            body = struct.pack("!Ihh", oid, 1, 1) + struct.pack("!h", len(args))
            body += b"".join(struct.pack("!i", len(a)) + a for a in args) + struct.pack("!h", 1)
            w.send(b"F" + struct.pack("!I", len(body) + 4) + body)
            e = errors(w.read_until_ready())
            check(e and e[0]["C"] == "25006", f"function {oid}: {e}")
        w.query("ROLLBACK")
        w.close()
        check(env.up.sql(f"SELECT length(lo_get({large}))", db="e2e") == "3200000", "the object is unchanged")
    finally:
        env.up.sql(f"SELECT lo_unlink({small}), lo_unlink({large})", db="e2e")
