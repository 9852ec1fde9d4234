-- pg_rproxy 0.3.0: the pg_rproxy_sessions view.
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.3.0'" to load this file. \quit

CREATE FUNCTION pg_rproxy_session_list(
    OUT worker integer, OUT worker_pid integer, OUT pid integer, OUT client_addr text, OUT usename text,
    OUT datname text, OUT upstream_user text, OUT auth_method text, OUT ssl boolean, OUT ssl_version text,
    OUT server_name text, OUT backend_start timestamptz)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'pg_rproxy_session_list' LANGUAGE C STRICT;

-- One row per authenticated client of the proxy port. pid is the one the client was given in
-- BackendKeyData (what it cancels with); server_name is the TLS SNI host name it asked for.
CREATE VIEW pg_rproxy_sessions AS SELECT * FROM pg_rproxy_session_list();
COMMENT ON VIEW pg_rproxy_sessions IS 'pg_rproxy client sessions, with their gateway role, upstream role and TLS server name';

-- Who connects from where is for monitoring roles, as pg_stat_activity's details are.
REVOKE ALL ON FUNCTION pg_rproxy_session_list() FROM PUBLIC;
REVOKE ALL ON pg_rproxy_sessions FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_rproxy_session_list() TO pg_read_all_stats;
GRANT SELECT ON pg_rproxy_sessions TO pg_read_all_stats;
