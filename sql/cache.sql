-- The result cache's SQL surface in the gateway (the e2e suite fills and uses the cache).
SELECT pg_rproxy_cache_reset() >= 0 AS reset_returns_a_count;
SELECT count(*) AS entries_after_reset FROM pg_rproxy_cache_entries();
SELECT rustproxy_cache_reset() AS compat_reset_of_an_empty_cache;
SELECT pg_rproxy_cache_invalidate('no_such_table') AS invalidated;
SELECT entries, bytes_used, bytes_budget, max_entries, hit_ratio IS NULL OR hit_ratio BETWEEN 0 AND 1 AS ratio_ok
FROM pg_rproxy_cache_stats;
SELECT column_name FROM information_schema.columns WHERE table_name = 'pg_rproxy_cache_stats' ORDER BY ordinal_position;
-- administrators only
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute
FROM pg_proc p WHERE p.proname IN ('pg_rproxy_cache_reset', 'rustproxy_cache_reset', 'pg_rproxy_cache_invalidate',
                                   'pg_rproxy_cache_entries', 'pg_rproxy_cache_stats_internal',
                                   'pg_rproxy_cache_invalidate_key')
ORDER BY 1;
-- 0.10.0: invalidation by a parameter hook's caller key; an empty prefix would drop everything.
SELECT pg_rproxy_cache_invalidate_key('tenant1') AS invalidated_by_key;
SELECT pg_rproxy_cache_invalidate_key('');
