#!/usr/bin/python3
"""Reads the config.yaml of the SNI host-name proxy pg_rproxy replaces (CONFIG_PATH).

  sni_config.py sql FILE      SQL that replaces the previous import in pg_rproxy_upstreams and
                              pg_rproxy_routes: per mapping an upstream 'yaml:<external>' and a route
                              by TLS server name; a single mapping also takes clients without one.
                              One transaction, the same result when run again. Hand-written routes
                              and rules, and upstream columns the file does not set, are kept; a
                              'yaml:' upstream gone from the file stays while something names it.
  sni_config.py listen FILE   LISTEN_HOST=... and LISTEN_PORT=... for the shell, from `listen`

A bad file: one line on stderr naming the file (and the mapping, counted from 1), exit 2.
listen.debug has no counterpart here and is ignored.
"""
import re
import shlex
import sys

import yaml

# What pg_rproxy_routes.server_name accepts: a mistake is reported here, not as a CHECK violation.
HOST_NAME = re.compile(r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
# Imported routes come after hand-written ones (first match wins), which keep positions below this:
# a route at this position or above to a 'yaml:' upstream is the import's, replaced by the next one.
FIRST_POSITION = 100000
DEFAULT_PORT = 5432


class BadConfig(Exception):
    pass


def is_port(value):
    # bool is an int in Python; YAML's `yes` is no port number.
    return type(value) is int and 1 <= value <= 65535


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise BadConfig(f"cannot read it: {e.strerror}")
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        words = [w for w in (getattr(e, "context", None), getattr(e, "problem", None)) if w]
        raise BadConfig(f"bad YAML{where}: " + (", ".join(words) or " ".join(str(e).split())))
    if not isinstance(doc, dict):
        raise BadConfig("expected a YAML mapping with `listen` and `mappings`")
    return doc


def mappings(doc):
    """[(external, internal, port)], checked."""
    items = doc.get("mappings")
    if not isinstance(items, list) or not items:
        raise BadConfig("no mappings: `mappings` must be a non-empty list")
    out, seen = [], {}
    for n, m in enumerate(items, 1):
        if not isinstance(m, dict):
            raise BadConfig(f"mapping {n}: expected external, internal and port")
        external, internal, port = m.get("external"), m.get("internal"), m.get("port")
        if port is None:  # `port:` left empty, as good as left out
            port = DEFAULT_PORT
        if external is None or external == "":
            raise BadConfig(f"mapping {n}: external is missing")
        if not isinstance(external, str) or not HOST_NAME.fullmatch(external):
            raise BadConfig(f"mapping {n}: external {external!r} is not a host name "
                            "(letters, digits, '-', '_', '.', optionally '*.' in front)")
        if internal is None or internal == "":
            raise BadConfig(f"mapping {n}: internal is missing")
        if not isinstance(internal, str):
            raise BadConfig(f"mapping {n}: internal must be a host name or address, got {internal!r}")
        if not is_port(port):
            raise BadConfig(f"mapping {n}: port must be an integer from 1 to 65535, got {port!r}")
        # Server names match case-insensitively: the second route could never be reached.
        if external.lower() in seen:
            raise BadConfig(f"mapping {n}: external {external!r} duplicates mapping {seen[external.lower()]}")
        seen[external.lower()] = n
        out.append((external, internal, port))
    return out


def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


def sql_values(rows):
    def value(v):
        if v is None:
            return "NULL"
        return str(v) if isinstance(v, int) else sql_literal(v)
    return ",\n".join("    (" + ", ".join(map(value, row)) + ")" for row in rows)


def conninfo_value(s):
    # Host names and addresses stay readable; anything else is quoted the way libpq reads it.
    if re.fullmatch(r"[A-Za-z0-9_.:%-]+", s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def import_sql(path, maps):
    # Exact names before wildcards: the proxy this replaces looked names up exactly, and with first
    # match winning '*.example.com' must not shadow 'a.example.com'.
    maps = sorted(maps, key=lambda m: m[0].startswith("*."))
    upstreams = [(f"yaml:{ext}", f"host={conninfo_value(internal)} port={port}", "read_only")
                 for ext, internal, port in maps]
    routes = [(FIRST_POSITION + i, ext, f"yaml:{ext}") for i, (ext, _, _) in enumerate(maps)]
    if len(maps) == 1:
        # The last route: one mapping, so a client without TLS (or without a server name) uses it.
        routes.append((FIRST_POSITION + 1, None, f"yaml:{maps[0][0]}"))
    names = ", ".join(sql_literal(name) for name, _, _ in upstreams)
    return "\n".join([
        f"-- pg_rproxy upstreams and routes from the SNI proxy configuration {path!r} (scripts/lib/sni_config.py).",
        "-- Replaces what an earlier import made; other rows, and columns the file does not set, are kept.",
        "BEGIN;",
        "-- One upstream 'yaml:<external>' per mapping. An earlier import's gets the file's conninfo and",
        "-- access; what was tuned by hand (balance, pool_mode, pool_size) stays.",
        "-- read_only for now: the proxy this replaces forwarded writes too, but read-write upstreams",
        "-- come with a later issue.",
        "INSERT INTO pg_rproxy_upstreams (name, conninfo, access) VALUES",
        sql_values(upstreams),
        "ON CONFLICT (name) DO UPDATE SET conninfo = EXCLUDED.conninfo, access = EXCLUDED.access;",
        f"-- The routes an earlier import made: those at its positions ({FIRST_POSITION} and up) to a 'yaml:'",
        "-- upstream. A hand-written route to a 'yaml:' upstream below them, or to another upstream among",
        "-- them, stays.",
        f"DELETE FROM pg_rproxy_routes WHERE position >= {FIRST_POSITION} AND upstream LIKE 'yaml:%';",
        "INSERT INTO pg_rproxy_routes (position, server_name, upstream) VALUES",
        sql_values(routes) + ";",
        "-- 'yaml:' upstreams the file no longer has go, unless something still references them (a",
        "-- hand-written route, an authentication rule): those stay, named in a NOTICE.",
        "DO $import$",
        "DECLARE",
        "    stale text;",
        "    kept text[] := '{}';",
        "BEGIN",
        "    FOR stale IN SELECT name FROM pg_rproxy_upstreams",
        f"                 WHERE name LIKE 'yaml:%' AND name <> ALL (ARRAY[{names}]) ORDER BY name LOOP",
        "        BEGIN",
        "            DELETE FROM pg_rproxy_upstreams WHERE name = stale;",
        "        EXCEPTION WHEN foreign_key_violation THEN",
        "            kept := kept || stale;",
        "        END;",
        "    END LOOP;",
        "    IF kept <> '{}' THEN",
        "        RAISE NOTICE 'kept upstream(s) % though the file no longer has them: a route or an authentication rule names them',",
        "            array_to_string(kept, ', ');",
        "    END IF;",
        "END",
        "$import$;",
        "COMMIT;",
    ])


def listen_lines(doc):
    listen = doc.get("listen")
    if listen is None:
        return []
    if not isinstance(listen, dict):
        raise BadConfig("listen: expected address and port")
    out = []
    if "address" in listen:
        address = listen["address"]
        if not isinstance(address, str):
            raise BadConfig(f"listen: address must be a string, got {address!r}")
        # In Go's "address:port" an empty address means every interface.
        out.append("LISTEN_HOST=" + shlex.quote(address or "*"))
    if "port" in listen:
        if not is_port(listen["port"]):
            raise BadConfig(f"listen: port must be an integer from 1 to 65535, got {listen['port']!r}")
        out.append(f"LISTEN_PORT={listen['port']}")
    return out


def main(argv):
    if len(argv) != 3 or argv[1] not in ("sql", "listen"):
        print("usage: sni_config.py sql|listen FILE", file=sys.stderr)
        return 2
    command, path = argv[1], argv[2]
    try:
        doc = load(path)
        out = import_sql(path, mappings(doc)) if command == "sql" else "\n".join(listen_lines(doc))
    except BadConfig as e:
        print(f"sni_config.py: {path}: {e}", file=sys.stderr)
        return 2
    if out:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
