-- pg_rproxy 0.9.0: interception and observability (rewrite rules, the statement hook, statement
-- statistics; the audit log, the message log and the metrics endpoint are settings).
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.9.0'" to load this file. \quit

-- Statement statistics, in the manner of pg_stat_statements: per upstream (NULL: pg_rproxy.upstream),
-- gateway role and normalised statement, summed over the workers' shared-memory partitions.
CREATE FUNCTION pg_rproxy_statement_list(
    OUT upstream text, OUT role text, OUT digest text, OUT statement text, OUT calls bigint, OUT cache_hits bigint,
    OUT refusals bigint, OUT rows bigint, OUT total_time double precision, OUT mean_time double precision,
    OUT max_time double precision, OUT p50_time double precision, OUT p99_time double precision)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'pg_rproxy_statement_list' LANGUAGE C STRICT;
CREATE VIEW pg_rproxy_statements AS SELECT * FROM pg_rproxy_statement_list();
COMMENT ON VIEW pg_rproxy_statements IS
    'pg_rproxy statement statistics per upstream, gateway role and normalised statement (times in milliseconds; p50/p99 from a histogram of buckets 1.41x wide); bounded by pg_rproxy.statements_max, least used evicted';
CREATE FUNCTION pg_rproxy_statements_reset() RETURNS bigint
    AS 'MODULE_PATHNAME', 'pg_rproxy_statements_reset' LANGUAGE C STRICT;
COMMENT ON FUNCTION pg_rproxy_statements_reset() IS 'Forgets every statement of pg_rproxy_statements; returns how many there were';
REVOKE ALL ON FUNCTION pg_rproxy_statement_list() FROM PUBLIC;
REVOKE ALL ON pg_rproxy_statements FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_rproxy_statements_reset() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_rproxy_statement_list() TO pg_read_all_stats;
GRANT SELECT ON pg_rproxy_statements TO pg_read_all_stats;
