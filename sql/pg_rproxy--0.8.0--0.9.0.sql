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

-- Rewrite rules: regexp_replace over every statement's text, before the firewall judges it.
CREATE TABLE pg_rproxy_rewrite_rules (
  position    int PRIMARY KEY,
  upstream    text REFERENCES pg_rproxy_upstreams (name) ON UPDATE CASCADE,
  pattern     text NOT NULL,
  replacement text NOT NULL,
  flags       text NOT NULL DEFAULT '',
  enabled     bool NOT NULL DEFAULT true
);
COMMENT ON TABLE pg_rproxy_rewrite_rules IS
    'Statement rewriting: each enabled rule, in position order, replaces its pattern in the statement text as regexp_replace(statement, pattern, replacement, flags) does, before the firewall judges it';
COMMENT ON COLUMN pg_rproxy_rewrite_rules.upstream IS
    'The upstream (pg_rproxy_upstreams.name) whose clients the rule applies to; NULL: every client';

-- The workers compile the rules they load: a pattern or flags PostgreSQL's regex engine refuses is
-- refused here, with regexp_replace's own error, rather than skipped by every worker later.
CREATE FUNCTION pg_rproxy_rewrite_rules_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.regexp_replace('', NEW.pattern, NEW.replacement, NEW.flags);
    RETURN NEW;
END
$$;
CREATE TRIGGER pg_rproxy_rewrite_rules_check
    BEFORE INSERT OR UPDATE ON pg_rproxy_rewrite_rules
    FOR EACH ROW EXECUTE FUNCTION pg_rproxy_rewrite_rules_check();
-- The workers load the rules again after a change, at its commit.
CREATE TRIGGER pg_rproxy_rewrite_rules_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pg_rproxy_rewrite_rules
    FOR EACH STATEMENT EXECUTE FUNCTION pg_rproxy_auth_changed();
-- A rule decides what runs upstream: superusers only, as the routing tables.
REVOKE ALL ON pg_rproxy_rewrite_rules FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_rproxy_rewrite_rules_check() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('pg_rproxy_rewrite_rules', '');
