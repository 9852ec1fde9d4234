-- pg_rproxy 0.8.0: read-write upstreams. Sessions show why a client holds its upstream connection.
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.8.0'" to load this file. \quit

DROP VIEW pg_rproxy_sessions;
DROP FUNCTION pg_rproxy_session_list();
CREATE FUNCTION pg_rproxy_session_list(
    OUT worker integer, OUT worker_pid integer, OUT pid integer, OUT client_addr text, OUT usename text,
    OUT datname text, OUT upstream_user text, OUT auth_method text, OUT ssl boolean, OUT ssl_version text,
    OUT server_name text, OUT backend_start timestamptz, OUT upstream text, OUT server text, OUT listen_port integer,
    OUT pinned text)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'pg_rproxy_session_list' LANGUAGE C STRICT;
CREATE VIEW pg_rproxy_sessions AS SELECT * FROM pg_rproxy_session_list();
COMMENT ON VIEW pg_rproxy_sessions IS
    'pg_rproxy client sessions: gateway role, upstream role, TLS server name, the upstream it was routed to (NULL: pg_rproxy.upstream), its server, and why it holds its upstream connection (pinned: transaction, pool_mode session, PREPARE, LISTEN, cursor WITH HOLD, temporary table, advisory lock, SET; NULL when it does not)';
REVOKE ALL ON FUNCTION pg_rproxy_session_list() FROM PUBLIC;
REVOKE ALL ON pg_rproxy_sessions FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_rproxy_session_list() TO pg_read_all_stats;
GRANT SELECT ON pg_rproxy_sessions TO pg_read_all_stats;

-- Authentication passthrough: the client logs in to the upstream itself, the proxy relaying the
-- exchange; its own connection serves it for its whole session.
ALTER TABLE pg_rproxy_upstreams
    ADD COLUMN auth text NOT NULL DEFAULT 'gateway' CHECK (auth IN ('gateway', 'passthrough'));
COMMENT ON COLUMN pg_rproxy_upstreams.auth IS
    'gateway: clients log in to the gateway, statements run as the upstream conninfo''s (or mapped) role; passthrough: the client''s own login is relayed to the upstream (pool_mode session)';
ALTER TABLE pg_rproxy_upstreams ADD CONSTRAINT pg_rproxy_upstreams_passthrough_session
    CHECK (auth = 'gateway' OR pool_mode = 'session');

-- md5 hashes the user name with the password: a passthrough login whose user name the proxy
-- rewrites (the conninfo's user, or a pg_rproxy_role_mapping row) cannot succeed with md5. Rules
-- that allow md5 for such a login are refused when written.
-- The user a conninfo logs in as (NULL: not set).
CREATE FUNCTION pg_rproxy_conninfo_user(conninfo text) RETURNS text
    AS 'MODULE_PATHNAME', 'pg_rproxy_conninfo_user' LANGUAGE C STRICT IMMUTABLE;
CREATE FUNCTION pg_rproxy_md5_rewrite_problem() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('authentication rule %s allows md5 for upstream "%s", which has auth ''passthrough'' and %s: '
                  'md5 hashes the user name with the password, so the upstream would never accept it',
                  r.position, u.name,
                  CASE WHEN pg_rproxy_conninfo_user(u.conninfo) IS NOT NULL
                       THEN format('logs clients in as "%s"', pg_rproxy_conninfo_user(u.conninfo))
                       ELSE 'pg_rproxy_role_mapping renames roles of that rule' END)
    FROM pg_rproxy_auth_rules r JOIN pg_rproxy_upstreams u ON u.name = r.upstream
    WHERE r.method = 'md5' AND u.auth = 'passthrough'
      AND (pg_rproxy_conninfo_user(u.conninfo) IS NOT NULL
           OR EXISTS (SELECT 1 FROM pg_rproxy_role_mapping m
                      WHERE r.roles = 'all' OR r.roles LIKE '%+%'
                         OR m.gateway_role::text = ANY (string_to_array(replace(r.roles, ' ', ''), ','))))
    ORDER BY r.position LIMIT 1
$$;
CREATE FUNCTION pg_rproxy_md5_rewrite_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    problem text := pg_rproxy_md5_rewrite_problem();
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '%', problem USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use scram-sha-256 in that rule (SCRAM does not hash the user name), or do not rename the user.';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER pg_rproxy_upstreams_md5_rewrite AFTER INSERT OR UPDATE ON pg_rproxy_upstreams
    FOR EACH ROW EXECUTE FUNCTION pg_rproxy_md5_rewrite_check();
CREATE CONSTRAINT TRIGGER pg_rproxy_auth_rules_md5_rewrite AFTER INSERT OR UPDATE ON pg_rproxy_auth_rules
    FOR EACH ROW EXECUTE FUNCTION pg_rproxy_md5_rewrite_check();
CREATE CONSTRAINT TRIGGER pg_rproxy_role_mapping_md5_rewrite AFTER INSERT OR UPDATE ON pg_rproxy_role_mapping
    FOR EACH ROW EXECUTE FUNCTION pg_rproxy_md5_rewrite_check();
REVOKE ALL ON FUNCTION pg_rproxy_md5_rewrite_problem() FROM PUBLIC;
