-- pg_rproxy 0.2.0: client authentication rules, upstream credentials per role, connection events.
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.2.0'" to load this file. \quit

-- Evaluated like pg_hba.conf: the lowest position that matches decides; no match, no entry.
-- Changes apply to the next connection. Empty: everyone authenticates with pg_rproxy.auth_method.
CREATE TABLE pg_rproxy_auth_rules (
    position        integer PRIMARY KEY,
    connection_type text NOT NULL DEFAULT 'host' CHECK (connection_type IN ('host', 'hostssl', 'hostnossl')),
    databases       text NOT NULL DEFAULT 'all',  -- all, or names separated by commas
    roles           text NOT NULL DEFAULT 'all',  -- all, names, +group, separated by commas
    address         cidr,                         -- NULL: any client address
    method          text NOT NULL CHECK (method IN ('trust', 'reject', 'scram-sha-256', 'md5', 'password', 'cert')),
    upstream        text                          -- libpq conninfo admitted to; NULL: pg_rproxy.upstream
);
COMMENT ON TABLE pg_rproxy_auth_rules IS 'pg_rproxy client authentication rules, first match wins (like pg_hba.conf)';

-- Upstream user and password per gateway role; roles without a row use pg_rproxy.upstream's user.
CREATE TABLE pg_rproxy_role_mapping (
    gateway_role      name PRIMARY KEY,
    upstream_user     text NOT NULL,
    upstream_password text
);
COMMENT ON TABLE pg_rproxy_role_mapping IS 'pg_rproxy upstream credentials per gateway role (superusers only)';

-- Passwords and the access policy are for superusers only.
REVOKE ALL ON pg_rproxy_auth_rules, pg_rproxy_role_mapping FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('pg_rproxy_auth_rules', '');
SELECT pg_catalog.pg_extension_config_dump('pg_rproxy_role_mapping', '');

CREATE FUNCTION pg_rproxy_connection_event_stats(OUT event text, OUT connections bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'pg_rproxy_connection_event_stats' LANGUAGE C STRICT;

-- Connections let in (authenticated) and turned away, by reason, over all workers.
CREATE VIEW pg_rproxy_connection_events AS SELECT * FROM pg_rproxy_connection_event_stats();
