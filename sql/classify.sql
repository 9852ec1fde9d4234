-- The read-only guard as the workers apply it, through pg_rproxy_classify().
CREATE EXTENSION pg_rproxy;

-- Allowed: reads, SHOW, EXPLAIN without ANALYZE
SELECT allowed, kinds, sqlstate, reason FROM pg_rproxy_classify('SELECT 1');
SELECT allowed, kinds FROM pg_rproxy_classify('select * from pg_class where relname = ''x'' order by 1 limit 3');
SELECT allowed, kinds FROM pg_rproxy_classify('VALUES (1), (2)');
SELECT allowed, kinds FROM pg_rproxy_classify('TABLE pg_namespace');
SELECT allowed, kinds FROM pg_rproxy_classify('SHOW server_version');
SELECT allowed, kinds FROM pg_rproxy_classify('EXPLAIN SELECT 1');
SELECT allowed, kinds FROM pg_rproxy_classify('EXPLAIN (ANALYZE false, COSTS off) SELECT 1');
SELECT allowed, kinds FROM pg_rproxy_classify('WITH a AS (SELECT 1) SELECT * FROM a UNION ALL SELECT 2');
SELECT allowed, kinds FROM pg_rproxy_classify('select 1; select 2;  show timezone');
SELECT allowed, kinds, sqlstate FROM pg_rproxy_classify('');
SELECT allowed, kinds FROM pg_rproxy_classify('/* comment */ -- line
  SELECT 1');

-- Rejected writes, each named
SELECT allowed, kinds, sqlstate, reason FROM pg_rproxy_classify('INSERT INTO t VALUES (1)');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('update t set a = 1');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('DELETE FROM t');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('CREATE TABLE t (a int)');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('DROP TABLE t');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('TRUNCATE t');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('ALTER TABLE t ADD COLUMN b int');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('COPY t FROM STDIN');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('SET default_transaction_read_only = off');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('BEGIN');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('DO $$ BEGIN END $$');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('GRANT SELECT ON t TO public');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('VACUUM');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('EXPLAIN ANALYZE SELECT 1');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('EXPLAIN (ANALYZE) SELECT 1');

-- Reads that write or lock are not reads
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('SELECT * INTO new_t FROM t');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('SELECT * FROM t FOR UPDATE');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('SELECT * FROM t FOR KEY SHARE');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('WITH a AS (WITH b AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM b) SELECT * FROM a');
SELECT allowed, sqlstate, reason FROM pg_rproxy_classify('SELECT 1 UNION SELECT a FROM t FOR SHARE');

-- One rejected statement rejects the whole string
SELECT allowed, kinds, sqlstate, reason FROM pg_rproxy_classify('SELECT 1; DROP TABLE t; SELECT 2');
SELECT allowed, kinds, sqlstate, reason FROM pg_rproxy_classify('COMMIT; INSERT INTO t VALUES (1)');

-- Syntax errors: 42601 with the position, as the server reports them
SELECT allowed, kinds, sqlstate, reason, error_position FROM pg_rproxy_classify('SELEC 1');
SELECT allowed, sqlstate, reason, error_position FROM pg_rproxy_classify('SELECT 1 FROM');
SELECT allowed, sqlstate, reason, error_position FROM pg_rproxy_classify('SELECT ''unterminated');
SELECT allowed, sqlstate, reason, error_position FROM pg_rproxy_classify('SELECT ""');

-- NULL in, NULL out (STRICT); the function works inside a transaction and leaves it usable
SELECT * FROM pg_rproxy_classify(NULL);
BEGIN;
SELECT allowed FROM pg_rproxy_classify('SELEC');
SELECT 'transaction still usable' AS status;
COMMIT;
