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

-- Result cache management. Resetting and reading cached statements is for administrators: the
-- functions are not executable by PUBLIC (grant them as needed). Through the proxy port,
-- SELECT rustproxy_cache_reset() is answered by the workers (see pg_rproxy.client_cache_reset).
CREATE FUNCTION pg_rproxy_cache_reset() RETURNS bigint
AS 'MODULE_PATHNAME', 'pg_rproxy_cache_reset' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION rustproxy_cache_reset() RETURNS bigint
AS 'MODULE_PATHNAME', 'pg_rproxy_cache_reset' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION rustproxy_cache_reset() IS 'Same as pg_rproxy_cache_reset(), for users of rust-pg-proxy';

CREATE FUNCTION pg_rproxy_cache_invalidate(relation text) RETURNS bigint
AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION pg_rproxy_cache_invalidate(text) IS
    'Drop cached results of statements that name the relation (schema.name, or name in any schema)';

CREATE FUNCTION pg_rproxy_cache_entries(
    OUT key_digest text,
    OUT statement text,
    OUT role text,
    OUT bytes bigint,
    OUT rows bigint,
    OUT hits bigint,
    OUT age interval,
    OUT ttl_left interval,
    OUT relations text[])
RETURNS SETOF record
AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION pg_rproxy_cache_stats_internal(
    OUT hits bigint, OUT misses bigint, OUT coalesced_waits bigint, OUT evictions bigint,
    OUT expirations bigint, OUT stores bigint, OUT entries bigint, OUT max_entries bigint,
    OUT bytes_used bigint, OUT bytes_budget bigint,
    OUT uncacheable_disabled bigint, OUT uncacheable_not_deterministic bigint,
    OUT uncacheable_in_transaction bigint, OUT uncacheable_session_state bigint,
    OUT uncacheable_catalog_query bigint, OUT uncacheable_no_cache_hint bigint,
    OUT uncacheable_too_large bigint, OUT uncacheable_error bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'pg_rproxy_cache_stats' LANGUAGE C STRICT VOLATILE;

CREATE VIEW pg_rproxy_cache_stats AS
    SELECT hits, misses,
           CASE WHEN hits + misses = 0 THEN NULL ELSE round(hits::numeric / (hits + misses), 4) END AS hit_ratio,
           coalesced_waits, evictions, expirations, stores, entries, max_entries, bytes_used, bytes_budget,
           uncacheable_disabled, uncacheable_not_deterministic, uncacheable_in_transaction,
           uncacheable_session_state, uncacheable_catalog_query, uncacheable_no_cache_hint,
           uncacheable_too_large, uncacheable_error
    FROM pg_rproxy_cache_stats_internal();

REVOKE EXECUTE ON FUNCTION pg_rproxy_cache_reset(), rustproxy_cache_reset(), pg_rproxy_cache_invalidate(text),
    pg_rproxy_cache_entries() FROM PUBLIC;
