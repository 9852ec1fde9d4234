-- pgTAP: the SQL surface of pg_rproxy in the gateway.
\ir preamble.psql
BEGIN;
SELECT plan(30);

SELECT has_function('pg_rproxy_classify', ARRAY['text'], 'pg_rproxy_classify(text) exists');
SELECT function_returns('pg_rproxy_classify', ARRAY['text'], 'setof record', 'it returns a row per statement');
SELECT has_view('pg_rproxy_workers', 'the pg_rproxy_workers view exists');
SELECT columns_are('pg_rproxy_workers',
    ARRAY['worker', 'pid', 'clients', 'upstream_busy', 'upstream_idle', 'statements', 'parked_clients'],
    'pg_rproxy_workers has the documented columns');
SELECT ok((SELECT bool_and(parked_clients BETWEEN 0 AND clients) FROM pg_rproxy_workers),
          'parked clients are some of the clients');
SELECT col_type_is('pg_rproxy_workers', 'statements', 'bigint', 'statements is a bigint counter');

SELECT is((SELECT count(*)::int FROM pg_rproxy_workers), current_setting('pg_rproxy.workers')::int,
          'one row per configured worker');

-- Table-driven: what passes and what is refused, with the exact message
SELECT is(c.allowed, true, 'allowed: ' || q)
FROM unnest(ARRAY['SELECT 1', 'VALUES (1)', 'TABLE pg_class', 'SHOW search_path',
                  'EXPLAIN DELETE FROM t']) AS q, LATERAL pg_rproxy_classify(q) c;
SELECT is(c.reason, 'Write operations are not permitted: ' || k || ' statements are not allowed',
          'rejected: ' || q)
FROM (VALUES ('INSERT INTO t VALUES (1)', 'INSERT'),
             ('CREATE INDEX ON t (a)', 'CREATE INDEX'),
             ('DROP SCHEMA s CASCADE', 'DROP SCHEMA'),
             ('TRUNCATE t', 'TRUNCATE TABLE')) AS v(q, k), LATERAL pg_rproxy_classify(q) c;
SELECT is((SELECT sqlstate FROM pg_rproxy_classify('REFRESH MATERIALIZED VIEW mv')), '25006',
          'rejections carry SQLSTATE 25006');
SELECT is((SELECT sqlstate FROM pg_rproxy_classify('SELECT (')), '42601', 'syntax errors carry SQLSTATE 42601');
SELECT is((SELECT reason FROM pg_rproxy_classify('SELECT pg_terminate_backend(1)')),
          'function pg_terminate_backend() is not allowed: it is volatile', 'volatile functions are named');
SELECT is((SELECT reason FROM pg_rproxy_classify('SET default_transaction_read_only = off')),
          'setting default_transaction_read_only cannot be changed through pg_rproxy', 'protected settings are named');
SELECT has_view('pg_rproxy_rejections', 'the pg_rproxy_rejections view exists');
SELECT set_eq('SELECT reason FROM pg_rproxy_rejections',
              ARRAY['statement_kind', 'setting', 'volatile_function', 'denied_function', 'unknown_function',
                    'syntax_error', 'fast_path_call', 'unknown_prepared_statement', 'side_effect_function',
                    'statement_hook'],
              'rejections are counted by reason');

SELECT has_view('pg_rproxy_sessions', 'the pg_rproxy_sessions view exists');
SELECT columns_are('pg_rproxy_sessions',
    ARRAY['worker', 'worker_pid', 'pid', 'client_addr', 'usename', 'datname', 'upstream_user', 'auth_method',
          'ssl', 'ssl_version', 'server_name', 'backend_start', 'upstream', 'server', 'listen_port', 'pinned'],
    'pg_rproxy_sessions has the documented columns');
SELECT ok(NOT has_table_privilege('public', 'pg_rproxy_sessions', 'SELECT'), 'sessions are not readable by PUBLIC');
SELECT ok(has_table_privilege('pg_read_all_stats', 'pg_rproxy_sessions', 'SELECT'),
          'pg_read_all_stats reads the sessions');

-- 0.4.0: every change of the rules or the role mapping reaches the workers' login snapshots.
SELECT has_trigger('pg_rproxy_auth_rules', 'pg_rproxy_auth_rules_changed', 'the rules table tells the workers');
SELECT has_trigger('pg_rproxy_role_mapping', 'pg_rproxy_role_mapping_changed', 'the role mapping tells the workers');
SELECT function_returns('pg_rproxy_auth_changed', 'trigger', 'pg_rproxy_auth_changed() is a trigger function');
SELECT throws_ok('SELECT pg_rproxy_auth_changed()', '39P01', NULL, 'it cannot be called outside a trigger');
SELECT * FROM finish();
ROLLBACK;
