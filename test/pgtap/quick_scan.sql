-- pgTAP: the workers' quick scanner gives, for every string it takes, exactly the server
-- scanner's normalized form (the cache key) and shape (the parse memo's key).
\ir preamble.psql
BEGIN;
SET LOCAL client_min_messages = warning;  -- the server's scanner notes each truncated name
SELECT plan(8);

SELECT has_function('pg_rproxy_scan', ARRAY['text'], 'pg_rproxy_scan(text) exists');
SELECT is((SELECT row(normalized, shape, quick_normalized, quick_shape)::text
           FROM pg_rproxy_scan('SELECT abalance FROM pgbench_accounts WHERE aid = 123')),
          '("select abalance from pgbench_accounts where aid = 123","select abalance from pgbench_accounts where aid = ?i","select abalance from pgbench_accounts where aid = 123","select abalance from pgbench_accounts where aid = ?i")',
          'both scanners key a plain read alike');
SELECT is((SELECT row(shape IS NULL, quick_normalized IS NULL)::text FROM pg_rproxy_scan('SELECT U&"d\0061t" UESCAPE ''\''')),
          '(t,t)', 'Unicode escapes have no shape and are the server''s to scan');
SELECT is((SELECT quick_normalized FROM pg_rproxy_scan('SELECT $$x$$')), NULL, 'dollar quotes are the server''s to scan');

CREATE TEMP TABLE statements (sql text);
\copy statements FROM 'test/firewall/corpus.txt'
INSERT INTO statements VALUES
    ('SELECT abalance FROM pgbench_accounts WHERE aid = 42;'),
    ('select a.x, b.y from a join b on a.id = b.id where a.n >= 10 and b.s <> ''it''''s'' order by 1 limit 5'),
    ('SELECT count(*) FROM t GROUP BY CUBE(a)'), ('SELECT count(*) FROM t GROUP BY "cube"(a)'),
    ('SELECT treat(1 AS float(24)), 1::float(53), float(8)'), ('SELECT $1, $02, $123456789'),
    ('SELECT 2147483647, 2147483648, 99999999999999999999, 007, -5'), ('SELECT a[1:2], b[3] FROM t'),
    ('SELECT * FROM t WHERE a IN (1, 2, 3) AND b BETWEEN 4 AND 5 OR c IS NULL'),
    ('SELECT x % 3, y / 2, z * 4 - 1 + 2 FROM t'), ('SELECT ''a'' || ''b'''), ('SELECT ''a''' || chr(10) || '''b'''),
    ('SELECT ''a'' ''b'''), ('SELECT name FROM pg_settings WHERE name = ''work_mem'''), ('SELECT t.* FROM t'),
    ('SELECT 1 -- c'), ('SELECT /* c */ 1'), ('SELECT a!=b, a<>b, a<=b, a>=b, a<b, a>b'), ('SELECT a=-1'),
    ('SELECT ' || repeat('a', 63)), ('SELECT ' || repeat('a', 64)), ('SELECT uescape FROM t'), (''), ('  ;  '),
    ('SELECT a::text::int FROM t'), ('SELECT 1e5, 1.5, .5, 5.'), ('SELECT e''x'', E''\n'', b''1'', x''f'', n''z''');
-- Each one again with other literals, other case and other spacing.
INSERT INTO statements SELECT regexp_replace(sql, '\d+', '17', 'g') FROM statements;
INSERT INTO statements SELECT upper(sql) FROM statements UNION ALL SELECT replace(sql, ' ', e'\n\t ') FROM statements;

SELECT cmp_ok((SELECT count(*) FROM statements), '>', 1000::bigint, 'over a thousand strings compared');
SELECT cmp_ok((SELECT count(*) FROM statements, pg_rproxy_scan(sql) s WHERE s.quick_normalized IS NOT NULL),
              '>', 300::bigint, 'the quick scanner takes many of them');
SELECT is((SELECT string_agg(sql, e'\n') FROM statements, pg_rproxy_scan(sql) s
           WHERE s.quick_normalized IS NOT NULL
             AND (s.quick_normalized IS DISTINCT FROM s.normalized OR s.quick_shape IS DISTINCT FROM s.shape)),
          NULL, 'whatever the quick scanner takes, it keys as the server''s scanner does');
SELECT is((SELECT count(*) FROM statements, pg_rproxy_scan(sql) s WHERE s.quick_normalized IS NOT NULL AND s.normalized IS NULL),
          0::bigint, 'it takes nothing the server''s scanner rejects');
SELECT * FROM finish();
ROLLBACK;
