-- pgTAP: pg_rproxy_statements (0.9.0): the documented columns and their types, the reset
-- function (what it forgets is checked end to end, in test_observability.py), and that only
-- pg_read_all_stats (and superusers) may read them.
\ir preamble.psql
BEGIN;
SELECT plan(11);

SELECT has_view('pg_rproxy_statements', 'pg_rproxy_statements exists');
SELECT columns_are('pg_rproxy_statements',
                   ARRAY['upstream', 'role', 'digest', 'statement', 'calls', 'cache_hits', 'refusals', 'rows',
                         'total_time', 'mean_time', 'max_time', 'p50_time', 'p99_time'],
                   'pg_rproxy_statements has the documented columns');
SELECT col_type_is('pg_rproxy_statements', 'calls', 'bigint', 'calls is a bigint counter');
SELECT col_type_is('pg_rproxy_statements', 'cache_hits', 'bigint', 'cache_hits is a bigint counter');
SELECT col_type_is('pg_rproxy_statements', 'total_time', 'double precision', 'times are milliseconds in double precision');
SELECT col_type_is('pg_rproxy_statements', 'p99_time', 'double precision', 'p99_time is in milliseconds too');
SELECT has_function('pg_rproxy_statements_reset', ARRAY[]::text[], 'pg_rproxy_statements_reset() exists');
SELECT function_returns('pg_rproxy_statements_reset', ARRAY[]::text[], 'bigint', 'the reset says how many it forgot');
SELECT cmp_ok(pg_rproxy_statements_reset(), '>=', 0::bigint, 'the reset runs');
SELECT ok(has_table_privilege('pg_read_all_stats', 'pg_rproxy_statements', 'SELECT'), 'pg_read_all_stats reads them');
SELECT ok(NOT has_function_privilege('public', 'pg_rproxy_statements_reset()', 'EXECUTE'), 'PUBLIC may not reset them');

SELECT * FROM finish();
ROLLBACK;
