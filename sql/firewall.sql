-- The firewall corpus: every statement of test/firewall/corpus.txt (COPY text format, one
-- statement per line) with the verdict of each of its statements. The e2e suite sends the same
-- corpus through the proxy and checks the upstream is unchanged by every rejected one.
-- (psql runs in the project root under make installcheck; \copy reads the file client-side)
CREATE TEMP TABLE corpus (n serial PRIMARY KEY, stmt text NOT NULL);
\copy corpus (stmt) from 'test/firewall/corpus.txt'
SELECT count(*) >= 300 AS at_least_300_statements FROM corpus;
\pset format unaligned
\pset fieldsep ' | '
SELECT c.n, v.statement, v.kind, CASE WHEN v.allowed THEN 'allowed' ELSE 'REJECTED ' || v.sqlstate || ': ' || v.reason END AS verdict,
       v.cacheable, v.error_position, replace(replace(c.stmt, E'\n', '\n'), E'\t', '\t') AS stmt
FROM corpus c, LATERAL pg_rproxy_classify(c.stmt) v
ORDER BY c.n, v.statement;
\pset format aligned
-- totals, as a quick read of the corpus' shape
SELECT allowed_strings, rejected_strings FROM (
    SELECT count(*) FILTER (WHERE ok) AS allowed_strings, count(*) FILTER (WHERE NOT ok) AS rejected_strings
    FROM (SELECT c.n, bool_and(v.allowed) AS ok FROM corpus c, LATERAL pg_rproxy_classify(c.stmt) v GROUP BY c.n) s) t;
