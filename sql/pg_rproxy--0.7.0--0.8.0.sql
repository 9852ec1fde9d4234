-- pg_rproxy 0.8.0: read-write upstreams. Sessions show why a client holds its upstream connection.
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.8.0'" to load this file. \quit

DROP VIEW pg_rproxy_sessions;
DROP FUNCTION pg_rproxy_session_list();
CREATE FUNCTION pg_rproxy_session_list(
    OUT worker integer, OUT worker_pid integer, OUT pid integer, OUT client_addr text, OUT usename text,
    OUT datname text, OUT upstream_user text, OUT auth_method text, OUT ssl boolean, OUT ssl_version text,
    OUT server_name text, OUT backend_start timestamptz, OUT upstream text, OUT server text, OUT listen_port integer,
    OUT pinned text)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'pg_rproxy_session_list' LANGUAGE C STRICT;
CREATE VIEW pg_rproxy_sessions AS SELECT * FROM pg_rproxy_session_list();
COMMENT ON VIEW pg_rproxy_sessions IS
    'pg_rproxy client sessions: gateway role, upstream role, TLS server name, the upstream it was routed to (NULL: pg_rproxy.upstream), its server, and why it holds its upstream connection (pinned: transaction, pool_mode session, PREPARE, LISTEN, cursor WITH HOLD, temporary table, advisory lock, SET; NULL when it does not)';
REVOKE ALL ON FUNCTION pg_rproxy_session_list() FROM PUBLIC;
REVOKE ALL ON pg_rproxy_sessions FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_rproxy_session_list() TO pg_read_all_stats;
GRANT SELECT ON pg_rproxy_sessions TO pg_read_all_stats;
