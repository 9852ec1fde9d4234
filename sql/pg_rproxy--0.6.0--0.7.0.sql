-- pg_rproxy 0.7.0: many upstreams. Routes pick one by TLS server name, database, role, client
-- address and proxy port; a router function decides where no route does; certificates per server
-- name. Authentication rules name an upstream instead of holding a conninfo.
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.7.0'" to load this file. \quit

-- Why libpq cannot use a conninfo as an upstream (NULL: it can).
CREATE FUNCTION pg_rproxy_conninfo_problem(conninfo text) RETURNS text
    AS 'MODULE_PATHNAME', 'pg_rproxy_conninfo_problem' LANGUAGE C STRICT IMMUTABLE;

CREATE TABLE pg_rproxy_upstreams (
    name      text PRIMARY KEY CHECK (name <> ''),
    conninfo  text NOT NULL,   -- libpq conninfo or URI; a host list names the servers of this upstream
    access    text NOT NULL DEFAULT 'read_only' CHECK (access IN ('read_only', 'read_write')),
    balance   text NOT NULL DEFAULT 'round_robin' CHECK (balance IN ('round_robin', 'least_connections', 'first')),
    pool_mode text NOT NULL DEFAULT 'transaction' CHECK (pool_mode IN ('transaction', 'session')),
    pool_size int CHECK (pool_size > 0)   -- per worker and server; NULL = pg_rproxy.pool_size
);
COMMENT ON TABLE pg_rproxy_upstreams IS
    'pg_rproxy upstreams: each names its servers (a conninfo host list) and how clients are spread over them';

CREATE FUNCTION pg_rproxy_upstreams_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    problem text := pg_rproxy_conninfo_problem(NEW.conninfo);
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid conninfo for upstream "%": %', NEW.name, problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a libpq conninfo (host=... port=... dbname=...) or a postgresql:// URI.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER pg_rproxy_upstreams_check BEFORE INSERT OR UPDATE ON pg_rproxy_upstreams
    FOR EACH ROW EXECUTE FUNCTION pg_rproxy_upstreams_check();

CREATE TABLE pg_rproxy_routes (
    position       int PRIMARY KEY,   -- first match wins
    server_name    text CHECK (server_name ~ '^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$'),
                                      -- TLS SNI name, exact or '*.example.com'; NULL matches any, with or without TLS
    database       text,              -- NULL = any
    role           text,              -- role name or '+group'; NULL = any
    client_address cidr,              -- NULL = any
    listen_port    int CHECK (listen_port BETWEEN 1 AND 65535),   -- the proxy port the client used; NULL = any
    upstream       text REFERENCES pg_rproxy_upstreams (name) ON UPDATE CASCADE
                                      -- NULL = ask pg_rproxy.router
);
COMMENT ON TABLE pg_rproxy_routes IS
    'pg_rproxy routes: which upstream a client goes to, first match wins; no match: pg_rproxy.router, then pg_rproxy.upstream';

CREATE TABLE pg_rproxy_server_certificates (
    server_name text PRIMARY KEY CHECK (server_name ~ '^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$'),
    cert_file   text NOT NULL,   -- relative paths: to the gateway's data directory
    key_file    text NOT NULL
);
COMMENT ON TABLE pg_rproxy_server_certificates IS
    'pg_rproxy TLS certificates by SNI server name (exact, then wildcard); others get pg_rproxy.ssl_cert_file';

-- Authentication rules now name an upstream. A conninfo a rule held becomes an upstream of its own;
-- an empty one meant pg_rproxy.upstream, which NULL means now.
UPDATE pg_rproxy_auth_rules SET upstream = NULL WHERE upstream = '';
INSERT INTO pg_rproxy_upstreams (name, conninfo)
    SELECT DISTINCT 'auth_rule_' || position, upstream FROM pg_rproxy_auth_rules WHERE upstream IS NOT NULL;
UPDATE pg_rproxy_auth_rules SET upstream = 'auth_rule_' || position WHERE upstream IS NOT NULL;
ALTER TABLE pg_rproxy_auth_rules
    ADD CONSTRAINT pg_rproxy_auth_rules_upstream_fkey FOREIGN KEY (upstream)
    REFERENCES pg_rproxy_upstreams (name) ON UPDATE CASCADE;
COMMENT ON COLUMN pg_rproxy_auth_rules.upstream IS
    'The upstream (pg_rproxy_upstreams.name) the rule admits to; NULL: pg_rproxy_routes decide';

-- Conninfos may hold passwords: superusers only, as the rules and the role mapping.
REVOKE ALL ON pg_rproxy_upstreams, pg_rproxy_routes, pg_rproxy_server_certificates FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_rproxy_upstreams_check() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('pg_rproxy_upstreams', '');
SELECT pg_catalog.pg_extension_config_dump('pg_rproxy_routes', '');
SELECT pg_catalog.pg_extension_config_dump('pg_rproxy_server_certificates', '');

-- The next connection after a change uses it: the workers re-read the tables at commit.
CREATE TRIGGER pg_rproxy_upstreams_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pg_rproxy_upstreams
    FOR EACH STATEMENT EXECUTE FUNCTION pg_rproxy_auth_changed();
CREATE TRIGGER pg_rproxy_routes_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pg_rproxy_routes
    FOR EACH STATEMENT EXECUTE FUNCTION pg_rproxy_auth_changed();
CREATE TRIGGER pg_rproxy_server_certificates_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pg_rproxy_server_certificates
    FOR EACH STATEMENT EXECUTE FUNCTION pg_rproxy_auth_changed();

-- Sessions show the upstream they were routed to and its servers.
DROP VIEW pg_rproxy_sessions;
DROP FUNCTION pg_rproxy_session_list();
CREATE FUNCTION pg_rproxy_session_list(
    OUT worker integer, OUT worker_pid integer, OUT pid integer, OUT client_addr text, OUT usename text,
    OUT datname text, OUT upstream_user text, OUT auth_method text, OUT ssl boolean, OUT ssl_version text,
    OUT server_name text, OUT backend_start timestamptz, OUT upstream text, OUT server text, OUT listen_port integer)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'pg_rproxy_session_list' LANGUAGE C STRICT;
CREATE VIEW pg_rproxy_sessions AS SELECT * FROM pg_rproxy_session_list();
COMMENT ON VIEW pg_rproxy_sessions IS
    'pg_rproxy client sessions: gateway role, upstream role, TLS server name, the upstream it was routed to (NULL: pg_rproxy.upstream) and its server';
REVOKE ALL ON FUNCTION pg_rproxy_session_list() FROM PUBLIC;
REVOKE ALL ON pg_rproxy_sessions FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_rproxy_session_list() TO pg_read_all_stats;
GRANT SELECT ON pg_rproxy_sessions TO pg_read_all_stats;

-- Every server of every upstream a worker used: its health as the last check found it, and the
-- workers' connections and clients on it.
CREATE FUNCTION pg_rproxy_server_list(
    OUT upstream text, OUT host text, OUT port integer, OUT role text, OUT healthy boolean,
    OUT last_check timestamptz, OUT last_error text, OUT replay_lag interval,
    OUT busy integer, OUT idle integer, OUT clients integer, OUT statements bigint, OUT cache_hits bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'pg_rproxy_server_list' LANGUAGE C STRICT;
CREATE VIEW pg_rproxy_servers AS
    SELECT upstream, host, port, role, healthy, last_check, last_error, replay_lag, busy, idle, clients
    FROM pg_rproxy_server_list() WHERE host <> '';
COMMENT ON VIEW pg_rproxy_servers IS
    'pg_rproxy upstream servers (upstream NULL: pg_rproxy.upstream): role, health, last check and its error, replay lag, connections busy and idle, clients';
REVOKE ALL ON FUNCTION pg_rproxy_server_list() FROM PUBLIC;
REVOKE ALL ON pg_rproxy_servers FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_rproxy_server_list() TO pg_read_all_stats;
GRANT SELECT ON pg_rproxy_servers TO pg_read_all_stats;

-- Per upstream, over all workers: clients now, and the statements they ran since the workers
-- started, of which answered from the cache; its servers and how many are healthy.
CREATE VIEW pg_rproxy_upstream_stats AS
    SELECT u.upstream, u.clients, u.statements, u.cache_hits,
           CASE WHEN u.statements = 0 THEN NULL ELSE round(u.cache_hits::numeric / u.statements, 4) END AS hit_ratio,
           (SELECT count(*) FROM pg_rproxy_server_list() s WHERE s.host <> '' AND s.upstream IS NOT DISTINCT FROM u.upstream)::int AS servers,
           (SELECT count(*) FROM pg_rproxy_server_list() s WHERE s.host <> '' AND s.upstream IS NOT DISTINCT FROM u.upstream
                AND s.healthy)::int AS healthy_servers
    FROM pg_rproxy_server_list() u WHERE u.host = '';
COMMENT ON VIEW pg_rproxy_upstream_stats IS
    'pg_rproxy per upstream (NULL: pg_rproxy.upstream): clients, statements and cache hits since the workers started, servers and healthy servers';
REVOKE ALL ON pg_rproxy_upstream_stats FROM PUBLIC;
GRANT SELECT ON pg_rproxy_upstream_stats TO pg_read_all_stats;
