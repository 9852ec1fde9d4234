-- pg_rproxy extension objects, version 0.1.0
\echo Use "CREATE EXTENSION pg_rproxy" to load this file. \quit

CREATE FUNCTION pg_rproxy_is_preloaded() RETURNS boolean
AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;

-- The workers only exist when the library is preloaded; say so instead of installing a proxy
-- that can never run.
DO $$
BEGIN
    IF NOT pg_rproxy_is_preloaded() THEN
        RAISE EXCEPTION 'pg_rproxy must be loaded via shared_preload_libraries'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add pg_rproxy to shared_preload_libraries in postgresql.conf (shared_preload_libraries = ''pg_rproxy'') and restart the server.';
    END IF;
END
$$;

CREATE FUNCTION pg_rproxy_classify(
    sql text,
    OUT statement integer,
    OUT kind text,
    OUT allowed boolean,
    OUT cacheable boolean,
    OUT sqlstate text,
    OUT reason text,
    OUT error_position integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION pg_rproxy_classify(text) IS
    'The firewall verdict per statement, as the pg_rproxy workers give it (functions that are not gateway built-ins count as unknown here; the workers ask the upstream)';

CREATE FUNCTION pg_rproxy_worker_stats(
    OUT worker integer,
    OUT pid integer,
    OUT clients integer,
    OUT upstream_busy integer,
    OUT upstream_idle integer,
    OUT statements bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;

CREATE VIEW pg_rproxy_workers AS
    SELECT worker, pid, clients, upstream_busy, upstream_idle, statements
    FROM pg_rproxy_worker_stats();

COMMENT ON VIEW pg_rproxy_workers IS
    'One row per running pg_rproxy listener worker: clients, upstream connections busy/idle, statements served';

CREATE FUNCTION pg_rproxy_rejection_stats(OUT reason text, OUT rejections bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;

CREATE VIEW pg_rproxy_rejections AS
    SELECT reason, rejections FROM pg_rproxy_rejection_stats();

COMMENT ON VIEW pg_rproxy_rejections IS
    'Statements the pg_rproxy workers refused, by reason, since the gateway started';
