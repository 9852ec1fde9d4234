-- pg_rproxy 0.4.0: changes to the rules table and the role mapping reach the workers' login
-- snapshots at commit (with role DDL, which a utility hook watches), so logins read no catalog.
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.4.0'" to load this file. \quit

CREATE FUNCTION pg_rproxy_auth_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'pg_rproxy_auth_changed' LANGUAGE C;
REVOKE ALL ON FUNCTION pg_rproxy_auth_changed() FROM PUBLIC;

CREATE TRIGGER pg_rproxy_auth_rules_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pg_rproxy_auth_rules
    FOR EACH STATEMENT EXECUTE FUNCTION pg_rproxy_auth_changed();
CREATE TRIGGER pg_rproxy_role_mapping_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pg_rproxy_role_mapping
    FOR EACH STATEMENT EXECUTE FUNCTION pg_rproxy_auth_changed();
