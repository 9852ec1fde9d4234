-- 0.10.0: the second cache level (Redis, shared by gateways) and the parameter hooks.
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.10.0'" to load this file. \quit

DROP VIEW pg_rproxy_cache_stats;
DROP FUNCTION pg_rproxy_cache_stats_internal();

CREATE FUNCTION pg_rproxy_cache_stats_internal(
    OUT hits bigint, OUT misses bigint, OUT coalesced_waits bigint, OUT evictions bigint,
    OUT expirations bigint, OUT stores bigint, OUT entries bigint, OUT max_entries bigint,
    OUT bytes_used bigint, OUT bytes_budget bigint,
    OUT uncacheable_disabled bigint, OUT uncacheable_not_deterministic bigint,
    OUT uncacheable_in_transaction bigint, OUT uncacheable_session_state bigint,
    OUT uncacheable_catalog_query bigint, OUT uncacheable_no_cache_hint bigint,
    OUT uncacheable_too_large bigint, OUT uncacheable_error bigint,
    OUT l2_hits bigint, OUT l2_misses bigint, OUT l2_errors bigint, OUT l2_corrupt bigint,
    OUT l2_stores bigint, OUT l2_bytes_read bigint, OUT l2_bytes_written bigint, OUT l2_waits bigint,
    OUT parameter_hook_unknown_options bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'pg_rproxy_cache_stats' LANGUAGE C STRICT VOLATILE;

-- l2_*: the second level (pg_rproxy.redis). l2_waits: statements that waited for another
-- gateway's fill of the same entry. l2_errors: failed or timed-out Redis operations and connections.
CREATE VIEW pg_rproxy_cache_stats AS
    SELECT hits, misses,
           CASE WHEN hits + misses = 0 THEN NULL ELSE round(hits::numeric / (hits + misses), 4) END AS hit_ratio,
           coalesced_waits, evictions, expirations, stores, entries, max_entries, bytes_used, bytes_budget,
           uncacheable_disabled, uncacheable_not_deterministic, uncacheable_in_transaction,
           uncacheable_session_state, uncacheable_catalog_query, uncacheable_no_cache_hint,
           uncacheable_too_large, uncacheable_error,
           l2_hits, l2_misses, l2_errors, l2_corrupt, l2_stores, l2_bytes_read, l2_bytes_written, l2_waits,
           parameter_hook_unknown_options
    FROM pg_rproxy_cache_stats_internal();

CREATE FUNCTION pg_rproxy_cache_invalidate_key(prefix text) RETURNS bigint
AS 'MODULE_PATHNAME', 'pg_rproxy_cache_invalidate_key' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION pg_rproxy_cache_invalidate_key(text) IS
    'Drops the cached results whose parameter hook CACHE_KEY starts with prefix, in both cache levels and on every gateway';

REVOKE EXECUTE ON FUNCTION pg_rproxy_cache_invalidate_key(text) FROM PUBLIC;
