-- The listener workers and their settings, as seen from the gateway.
SELECT count(*) = current_setting('pg_rproxy.workers')::int AS all_workers_running
FROM pg_rproxy_workers;
SELECT bool_and(pid > 0 AND clients >= 0 AND upstream_busy >= 0 AND upstream_idle >= 0 AND statements >= 0)
    AS counters_sane
FROM pg_rproxy_workers;
SELECT count(*) = count(DISTINCT pid) AS one_process_each FROM pg_rproxy_workers;
-- every worker is a live backend of this server
SELECT count(*) = current_setting('pg_rproxy.workers')::int AS visible_in_pg_stat_activity
FROM pg_stat_activity a JOIN pg_rproxy_workers w USING (pid)
WHERE a.backend_type = 'pg_rproxy listener';

-- defaults and contexts of the settings
SELECT name, CASE WHEN length(boot_val) > 40 THEN left(boot_val, 37) || '...' ELSE boot_val END AS boot_val, unit, context
FROM pg_settings WHERE name LIKE 'pg_rproxy.%' ORDER BY name;

-- the upstream conninfo holds a password: hidden from non-superusers
CREATE ROLE rproxy_regress_reader;
SET ROLE rproxy_regress_reader;
SHOW pg_rproxy.upstream;
RESET ROLE;
DROP ROLE rproxy_regress_reader;

-- DROP DATABASE waits for every backend to absorb a ProcSignal barrier; the workers must
-- answer it (SIGUSR1 chains to procsignal_sigusr1_handler) or this would hang.
CREATE DATABASE rproxy_regress_dropme;
SET statement_timeout = '20s';  -- fail instead of hanging
DROP DATABASE rproxy_regress_dropme;
RESET statement_timeout;
SELECT 'dropped' AS drop_database;
