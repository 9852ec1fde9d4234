"""CONFIG_PATH: the config.yaml of the SNI host-name proxy users migrate from, turned by
scripts/lib/sni_config.py into pg_rproxy_upstreams and pg_rproxy_routes rows named 'yaml:...', and
into LISTEN_HOST/LISTEN_PORT for docker/entrypoint.sh. The import's routes are those at positions
100000 and up to a 'yaml:' upstream; hand-written rows may name 'yaml:' upstreams too."""
import os
import subprocess

from cluster import ROOT
from harness import check, test

SNI_CONFIG = os.path.join(ROOT, "scripts", "lib", "sni_config.py")

TWO = """\
listen:
  address: "0.0.0.0"
  port: 5400
  debug: true
mappings:
  - external: "*.apps.example.com"
    internal: "apps.example.internal"
    port: 6432
  - external: "host1.example.com"
    internal: "host1.example.internal"
    port: 5432
"""

# host1 gone, the wildcard moved, host3 new: its internal name needs quoting in conninfo and SQL.
CHANGED = """\
mappings:
  - external: "*.apps.example.com"
    internal: "apps2.example.internal"
    port: 7432
  - external: "host3.example.com"
    internal: "o'hara.example.internal"
"""

ONE = """\
mappings:
  - external: solo.example.com
    internal: solo.example.internal
"""

# TWO and host2: CHANGED drops host1 and host2.
THREE = TWO + """\
  - external: "host2.example.com"
    internal: "host2.example.internal"
"""


def config_file(name, text):
    path = os.path.join(env.base, f"sni-{name}.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def sni_config(command, path):
    return subprocess.run(["/usr/bin/python3", SNI_CONFIG, command, path], capture_output=True, text=True)


def import_config(path):
    """Runs the import as docker/entrypoint.sh and scripts/run.sh do: psql reading the SQL. Returns
    psql's stderr (the NOTICEs)."""
    r = sni_config("sql", path)
    check(r.returncode == 0 and r.stderr == "", f"sni_config.py sql {path}: {r.returncode} {r.stderr}")
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", env.gw.dir, "-p", str(env.gw.port),
                        "-U", "postgres", "-d", "postgres"], input=r.stdout, capture_output=True, text=True)
    check(p.returncode == 0, f"importing {path}: {p.stderr}")
    return p.stderr


def table(sql):
    out = env.gw.sql(sql)
    return sorted(line.split("|") for line in out.splitlines()) if out else []


ROUTE_COLUMNS = ("position, coalesce(server_name, '-'), coalesce(database, '-'), coalesce(role, '-'), "
                 "coalesce(client_address::text, '-'), coalesce(listen_port::text, '-'), coalesce(upstream, '-')")
UPSTREAM_COLUMNS = "name, conninfo, access, balance, pool_mode, coalesce(pool_size::text, '-')"


IMPORTED_ROUTE = "position >= 100000 AND upstream LIKE 'yaml:%'"


def imported():
    """(upstreams, routes) an import made."""
    return (table(f"SELECT {UPSTREAM_COLUMNS} FROM pg_rproxy_upstreams WHERE name LIKE 'yaml:%'"),
            table(f"SELECT {ROUTE_COLUMNS} FROM pg_rproxy_routes WHERE {IMPORTED_ROUTE}"))


def not_imported():
    return (table(f"SELECT {UPSTREAM_COLUMNS} FROM pg_rproxy_upstreams WHERE name NOT LIKE 'yaml:%'"),
            table(f"SELECT {ROUTE_COLUMNS} FROM pg_rproxy_routes WHERE NOT coalesce({IMPORTED_ROUTE}, false)"))


def upstream(name, conninfo, balance="round_robin", pool_size="-"):
    return [name, conninfo, "read_only", balance, "transaction", pool_size]


def route(position, server_name, upstream_name):
    return [str(position), server_name, "-", "-", "-", "-", upstream_name]


def remove_test_rows():
    env.gw.sql("DELETE FROM pg_rproxy_auth_rules WHERE upstream LIKE 'yaml:%'; "
               "DELETE FROM pg_rproxy_routes WHERE upstream LIKE 'yaml:%' OR position IN (99998, 99999, 100010); "
               "DELETE FROM pg_rproxy_upstreams WHERE name LIKE 'yaml:%' OR name = 'yaml_e2e_hand'")


@test
def yaml_import_loads_the_mappings_and_replaces_only_an_earlier_import():
    # Hand-written rows, one of them among the imported positions and one with a 'yaml'-like name.
    env.gw.sql("INSERT INTO pg_rproxy_upstreams (name, conninfo, access) "
               "VALUES ('yaml_e2e_hand', 'host=hand.example.internal port=5432', 'read_write'); "
               "INSERT INTO pg_rproxy_routes (position, server_name, database, upstream) VALUES "
               "(99998, 'router.example.com', NULL, NULL), (99999, 'hand.example.com', NULL, 'yaml_e2e_hand'), "
               "(100010, 'hand2.example.com', 'e2e', 'yaml_e2e_hand')")
    try:
        hand = not_imported()
        import_config(config_file("two", TWO))
        ups, routes = imported()
        check(ups == [upstream("yaml:*.apps.example.com", "host=apps.example.internal port=6432"),
                      upstream("yaml:host1.example.com", "host=host1.example.internal port=5432")], f"upstreams: {ups}")
        # exact names before wildcards, whatever the file's order
        check(routes == [route(100000, "host1.example.com", "yaml:host1.example.com"),
                         route(100001, "*.apps.example.com", "yaml:*.apps.example.com")], f"routes: {routes}")
        check(not_imported() == hand, f"hand-written rows untouched: {not_imported()} != {hand}")

        changed = config_file("changed", CHANGED)
        for _ in range(2):  # importing the same file again changes nothing
            import_config(changed)
            ups, routes = imported()
            check(ups == [upstream("yaml:*.apps.example.com", "host=apps2.example.internal port=7432"),
                          upstream("yaml:host3.example.com", "host='o\\'hara.example.internal' port=5432")],
                  f"re-imported upstreams: {ups}")
            check(routes == [route(100000, "host3.example.com", "yaml:host3.example.com"),
                             route(100001, "*.apps.example.com", "yaml:*.apps.example.com")],
                  f"re-imported routes: {routes}")
            check(not_imported() == hand, f"hand-written rows untouched: {not_imported()} != {hand}")
    finally:
        remove_test_rows()


@test
def yaml_import_of_one_mapping_also_takes_clients_without_a_server_name():
    try:
        import_config(config_file("one", ONE))
        ups, routes = imported()
        check(ups == [upstream("yaml:solo.example.com", "host=solo.example.internal port=5432")], f"upstreams: {ups}")
        check(routes == [route(100000, "solo.example.com", "yaml:solo.example.com"),
                         route(100001, "-", "yaml:solo.example.com")], f"routes: {routes}")
        import_config(config_file("two", TWO))
        ups, routes = imported()
        check(len(ups) == 2 and all(r[1] != "-" for r in routes), f"a second mapping ends the catch-all: {routes}")
    finally:
        remove_test_rows()


@test
def yaml_reimport_keeps_hand_written_rows_naming_yaml_upstreams_and_the_upstreams_they_name():
    # An earlier import's 'yaml:' upstreams named by a hand-written route and an authentication rule:
    # a re-import without their mappings keeps all three (a foreign key violation before), replaces
    # its own routes, and says which upstreams it kept.
    three = import_config(config_file("three", THREE))
    check(three == "", f"nothing kept, nothing said: {three!r}")
    host1 = upstream("yaml:host1.example.com", "host=host1.example.internal port=5432")
    host2 = upstream("yaml:host2.example.com", "host=host2.example.internal port=5432")
    hand_route = route(5, "hand.example.com", "yaml:host1.example.com")
    rule = "SELECT position, method, upstream FROM pg_rproxy_auth_rules WHERE upstream LIKE 'yaml:%'"
    # No proxy connections here: with a rule in the table, clients matching none are turned away.
    env.gw.sql("INSERT INTO pg_rproxy_routes (position, server_name, upstream) "
               "VALUES (5, 'hand.example.com', 'yaml:host1.example.com'); "
               "INSERT INTO pg_rproxy_auth_rules (position, databases, method, upstream) "
               "VALUES (90001, 'yaml_e2e_db', 'scram-sha-256', 'yaml:host2.example.com')")
    try:
        hand = not_imported()
        check(hand_route in hand[1], f"the hand-written route is no import's: {hand}")
        changed = config_file("changed", CHANGED)
        for _ in range(2):  # and again: the same rows, the same notice
            notice = import_config(changed)
            check("NOTICE" in notice and "yaml:host1.example.com, yaml:host2.example.com" in notice,
                  f"the kept upstreams named: {notice!r}")
            ups, routes = imported()
            check(ups == [upstream("yaml:*.apps.example.com", "host=apps2.example.internal port=7432"), host1, host2,
                          upstream("yaml:host3.example.com", "host='o\\'hara.example.internal' port=5432")],
                  f"upstreams, the referenced ones as they were: {ups}")
            check(routes == [route(100000, "host3.example.com", "yaml:host3.example.com"),
                             route(100001, "*.apps.example.com", "yaml:*.apps.example.com")],
                  f"the import's routes replaced: {routes}")
            check(not_imported() == hand, f"hand-written rows untouched: {not_imported()} != {hand}")
            check(table(rule) == [["90001", "scram-sha-256", "yaml:host2.example.com"]], f"rule: {table(rule)}")

        # Once nothing names one any more, the next import removes it.
        env.gw.sql("DELETE FROM pg_rproxy_routes WHERE position = 5")
        notice = import_config(changed)
        check("yaml:host2.example.com" in notice and "yaml:host1.example.com" not in notice, notice)
        names = [u[0] for u in imported()[0]]
        check(names == ["yaml:*.apps.example.com", "yaml:host2.example.com", "yaml:host3.example.com"], f"{names}")
        env.gw.sql("DELETE FROM pg_rproxy_auth_rules WHERE position = 90001")
        notice = import_config(changed)
        check(notice == "", f"nothing kept: {notice!r}")
        names = [u[0] for u in imported()[0]]
        check(names == ["yaml:*.apps.example.com", "yaml:host3.example.com"], f"{names}")
    finally:
        remove_test_rows()


@test
def yaml_reimport_keeps_what_was_tuned_on_its_upstreams():
    try:
        import_config(config_file("two", TWO))
        env.gw.sql("UPDATE pg_rproxy_upstreams SET pool_size = 3, balance = 'first', access = 'read_write' "
                   "WHERE name = 'yaml:*.apps.example.com'")
        import_config(config_file("changed", CHANGED))
        ups, _ = imported()
        # conninfo and access are the file's; the rest as the user left it
        check(ups[0] == upstream("yaml:*.apps.example.com", "host=apps2.example.internal port=7432",
                                 balance="first", pool_size="3"), f"tuned upstream: {ups}")
        check(ups[1] == upstream("yaml:host3.example.com", "host='o\\'hara.example.internal' port=5432"),
              f"new upstream: {ups}")
    finally:
        remove_test_rows()


BAD = [
    # (file content, what stderr names)
    ("mappings: [", "bad YAML at line"),
    ("- just\n- a list\n", "expected a YAML mapping"),
    ("listen: {port: 5400}\n", "no mappings"),
    ("mappings: []\n", "no mappings"),
    ("mappings:\n  - internal: a.internal\n", "mapping 1: external is missing"),
    ("mappings:\n  - {external: a.example.com, internal: a}\n  - {external: b.example.com}\n",
     "mapping 2: internal is missing"),
    ("mappings:\n  - {external: a.example.com, internal: a, port: 70000}\n", "mapping 1: port must be an integer"),
    ("mappings:\n  - {external: a.example.com, internal: a, port: 0}\n", "mapping 1: port must be an integer"),
    ("mappings:\n  - {external: a.example.com, internal: a, port: \"5432\"}\n", "mapping 1: port must be an integer"),
    ("mappings:\n  - {external: a.example.com, internal: a, port: 5432.5}\n", "mapping 1: port must be an integer"),
    ("mappings:\n  - {external: a.example.com, internal: a}\n  - {external: b.example.com, internal: b}\n"
     "  - {external: A.Example.COM, internal: c}\n", "mapping 3: external 'A.Example.COM' duplicates mapping 1"),
    ("mappings:\n  - {external: \"a.example.com'; DROP TABLE x; --\", internal: a}\n", "mapping 1: external"),
    ("mappings:\n  - {external: \"bad name.example.com\", internal: a}\n", "is not a host name"),
    ("mappings:\n  - {external: \"a.*.example.com\", internal: a}\n", "is not a host name"),
    ("mappings:\n  - {external: \"-a.example.com\", internal: a}\n", "is not a host name"),
]


@test
def yaml_import_refuses_a_bad_file_with_one_line_naming_it():
    for i, (text, expected) in enumerate(BAD):
        path = config_file(f"bad-{i}", text)
        r = sni_config("sql", path)
        check(r.returncode == 2 and r.stdout == "", f"{text!r}: exit {r.returncode}, stdout {r.stdout!r}")
        check(r.stderr.count("\n") == 1 and path in r.stderr and expected in r.stderr,
              f"{text!r}: want {expected!r} naming {path}, got {r.stderr!r}")
    missing = os.path.join(env.base, "sni-missing.yaml")
    r = sni_config("sql", missing)
    check(r.returncode == 2 and f"{missing}: cannot read it" in r.stderr, r.stderr)
    r = sni_config("listen", config_file("bad-listen", "listen: {port: 99999}\nmappings: []\n"))
    check(r.returncode == 2 and "listen: port must be an integer" in r.stderr, r.stderr)
    check(imported() == ([], []), "nothing imported")


@test
def yaml_listen_section_gives_listen_host_and_port_the_environment_overrides():
    two = config_file("two", TWO)
    r = sni_config("listen", two)
    check(r.returncode == 0 and r.stdout == "LISTEN_HOST=0.0.0.0\nLISTEN_PORT=5400\n", f"{r.stdout!r} {r.stderr}")
    r = sni_config("listen", config_file("one", ONE))
    check(r.returncode == 0 and r.stdout == "", f"no listen section, nothing set: {r.stdout!r}")
    r = sni_config("listen", config_file("address-only", "listen: {address: \"\"}\n"))
    check(r.stdout == "LISTEN_HOST='*'\n", f"an empty Go listen address is every interface: {r.stdout!r}")
    # shell-safe: eval sets the value as written and runs nothing
    marker = os.path.join(env.base, "sni-listen-ran")
    odd = f"$(touch {marker}) it's"
    path = config_file("odd-address", f"listen:\n  address: \"{odd}\"\n")
    r = subprocess.run(["bash", "-c", 'eval "$(/usr/bin/python3 "$0" listen "$1")"; printf %s "$LISTEN_HOST"',
                        SNI_CONFIG, path], capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout == odd and not os.path.exists(marker), f"{r.stdout!r} {r.stderr}")

    # docker/entrypoint.sh: CONFIG_PATH's listen section where LISTEN_HOST/LISTEN_PORT are unset (empty)
    r = env.entrypoint("write-config", "/dev/stdout", env={"CONFIG_PATH": two, "LISTEN_HOST": "", "LISTEN_PORT": ""})
    check(r.returncode == 0 and "pg_rproxy.listen_addresses = '*'\n" in r.stdout and "pg_rproxy.port = '5400'\n" in r.stdout,
          f"{r.stdout} {r.stderr}")
    r = env.entrypoint("write-config", "/dev/stdout", env={"CONFIG_PATH": two, "LISTEN_HOST": "", "LISTEN_PORT": "6543"})
    check(r.returncode == 0 and "pg_rproxy.listen_addresses = '*'\n" in r.stdout and "pg_rproxy.port = '6543'\n" in r.stdout,
          f"the environment wins: {r.stdout} {r.stderr}")
    r = env.entrypoint("write-config", "/dev/null", env={"CONFIG_PATH": config_file("bad-listen", "listen: {port: 0}\n")})
    check(r.returncode == 2 and "listen: port must be an integer" in r.stderr, r.stderr)
