-- pg_rproxy 0.9.0: interception and observability (rewrite rules, the statement hook, statement
-- statistics; the audit log, the message log and the metrics endpoint are settings).
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.9.0'" to load this file. \quit

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
