-- pg_rproxy_classify(): the verdict per statement, the whole-string rule, syntax errors.
CREATE EXTENSION pg_rproxy;

SELECT * FROM pg_rproxy_classify('SELECT 1');
SELECT * FROM pg_rproxy_classify('select 1; select 2;  show timezone');
SELECT * FROM pg_rproxy_classify('');

-- a string is allowed only if every statement is
SELECT statement, kind, allowed, reason FROM pg_rproxy_classify('SELECT 1; DROP TABLE t; SELECT 2');
SELECT bool_and(allowed) AS string_allowed FROM pg_rproxy_classify('SELECT 1; DROP TABLE t; SELECT 2');

-- what may be cached: deterministic reads only
SELECT kind, cacheable FROM pg_rproxy_classify('SELECT abs(-1)');
SELECT kind, cacheable FROM pg_rproxy_classify('SELECT now()');
SELECT kind, cacheable FROM pg_rproxy_classify('SELECT current_user');
SELECT kind, cacheable FROM pg_rproxy_classify('SELECT random()');
SELECT kind, cacheable FROM pg_rproxy_classify('SELECT set_config(''search_path'', '''', false)');
SELECT kind, cacheable FROM pg_rproxy_classify('SHOW search_path');

-- parser errors: one row with the SQLSTATE and position the server reports
SELECT * FROM pg_rproxy_classify('SELEC 1');
SELECT * FROM pg_rproxy_classify('SELECT 1 FROM');

-- functions neither built in nor known here (the workers ask the upstream)
SELECT allowed, reason FROM pg_rproxy_classify('SELECT my_schema.my_func()');

-- NULL in, no rows out (STRICT); a transaction stays usable after a parser error
SELECT * FROM pg_rproxy_classify(NULL);
BEGIN;
SELECT allowed FROM pg_rproxy_classify('SELEC');
SELECT 'transaction still usable' AS status;
COMMIT;

