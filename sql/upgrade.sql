-- A gateway that installed 0.1.0 updates in place to the default version and gets the new objects.
DROP EXTENSION pg_rproxy;
CREATE EXTENSION pg_rproxy VERSION '0.1.0';
SELECT to_regclass('pg_rproxy_sessions') IS NULL AS no_sessions_view_in_0_1_0,
       to_regclass('pg_rproxy_auth_rules') IS NULL AS no_rules_table_in_0_1_0;
ALTER EXTENSION pg_rproxy UPDATE;
SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'pg_rproxy') AS at_default_version
FROM pg_extension WHERE extname = 'pg_rproxy';
SELECT count(*) >= 0 AS sessions_readable FROM pg_rproxy_sessions;
SELECT count(*) AS rules FROM pg_rproxy_auth_rules;
SELECT has_table_privilege('public', 'pg_rproxy_sessions', 'SELECT') AS public_reads_sessions;
-- 0.4.0: the tables tell the workers when they change.
SELECT tgname FROM pg_trigger WHERE tgrelid IN ('pg_rproxy_auth_rules'::regclass, 'pg_rproxy_role_mapping'::regclass)
    AND NOT tgisinternal ORDER BY tgname;
-- 0.5.0: how the workers key a statement.
SELECT to_regprocedure('pg_rproxy_scan(text)') IS NOT NULL AS scan_function;
-- 0.6.0: the workers view counts the parked clients.
SELECT count(*) = current_setting('pg_rproxy.workers')::int AS workers_with_parked_clients
FROM pg_rproxy_workers WHERE parked_clients >= 0;
-- 0.7.0: an authentication rule that held a conninfo names an upstream of its own.
DROP EXTENSION pg_rproxy;
CREATE EXTENSION pg_rproxy VERSION '0.6.0';
INSERT INTO pg_rproxy_auth_rules (position, method, upstream)
    VALUES (1, 'trust', 'host=10.1.1.1 dbname=x'), (2, 'reject', NULL);
ALTER EXTENSION pg_rproxy UPDATE;
SELECT r.position, r.upstream, u.conninfo, u.access
FROM pg_rproxy_auth_rules r LEFT JOIN pg_rproxy_upstreams u ON u.name = r.upstream ORDER BY 1;
SELECT count(*) AS routes FROM pg_rproxy_routes;
DELETE FROM pg_rproxy_auth_rules;
DELETE FROM pg_rproxy_upstreams;
