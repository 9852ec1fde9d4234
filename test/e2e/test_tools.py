"""Real tools through the proxy, compared with the same tool connected directly."""
import subprocess

from harness import check, test


@test
def psql_meta_commands_copy_and_fetch_count_match_direct():
    for command in ["\\l", "\\dn", "\\dt", "\\d+ kinds", "\\df notice_me", "\\du rproxy_up", "\\dv", "\\di"]:
        env.same_as_direct(command)
    env.same_as_direct("SELECT * FROM kinds ORDER BY id", args=("-x",))
    env.same_as_direct("\\copy (SELECT * FROM kinds ORDER BY id) to stdout with csv header")
    # FETCH_COUNT makes psql read through a cursor in a transaction, FETCH_COUNT rows at a time
    env.same_as_direct("SELECT id, h FROM big WHERE id <= 1000 ORDER BY id", args=("-v", "FETCH_COUNT=100"))


@test
def pg_dump_through_the_proxy_equals_the_direct_dump():
    def dump(port):
        r = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "e2e"],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, f"pg_dump via {port}: {r.stderr[-800:]}")
        # comments carry times and versions; \restrict carries a random key per run
        return [l for l in r.stdout.splitlines() if not l.startswith("--") and not l.startswith("\\restrict")
                and not l.startswith("\\unrestrict")]
    try:
        env.gw.reload_with(upstream=f"host=127.0.0.1 port={env.up.port} user=postgres dbname=e2e")
        via = dump(env.proxy_port)
    finally:
        env.gw.reload_with(upstream=None)
    direct = dump(env.up.port)
    check(len(via) > 1000, f"a real dump: {len(via)} lines")
    for needle in ["CREATE TABLE public.kinds", "CREATE VIEW public.kinds_view", "CREATE SEQUENCE public.s",
                   "CREATE FUNCTION public.notice_me", "CREATE INDEX big_h", "COPY public.big"]:
        check(any(needle in l for l in via), f"{needle} in the dump")
    if via != direct:
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(via, direct)) if a != b][:5]
        raise AssertionError(f"dumps differ ({len(via)} vs {len(direct)} lines): {diff}")
    env.wait_proxy()
