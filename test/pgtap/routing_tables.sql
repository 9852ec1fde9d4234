-- pgTAP: the routing tables (0.7.0): names, types, constraints, the conninfo check and what the
-- upgrade from 0.6.0 made of authentication rules that held a conninfo.
\ir preamble.psql
BEGIN;
SELECT plan(55);

SELECT has_table('pg_rproxy_upstreams', 'pg_rproxy_upstreams exists');
SELECT columns_are('pg_rproxy_upstreams', ARRAY['name', 'conninfo', 'access', 'balance', 'pool_mode', 'pool_size', 'auth'],
                   'pg_rproxy_upstreams has the documented columns');
SELECT col_is_pk('pg_rproxy_upstreams', 'name', 'an upstream is known by its name');
SELECT col_type_is('pg_rproxy_upstreams', 'pool_size', 'integer', 'pool_size is an integer');
SELECT col_default_is('pg_rproxy_upstreams', 'access', 'read_only', 'upstreams are read-only by default');
SELECT col_default_is('pg_rproxy_upstreams', 'balance', 'round_robin', 'round robin by default');
SELECT col_default_is('pg_rproxy_upstreams', 'pool_mode', 'transaction', 'transaction pooling by default');
SELECT col_default_is('pg_rproxy_upstreams', 'auth', 'gateway', 'clients log in to the gateway by default');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo, auth) VALUES ('t_auth', 'host=a', 'kerberos')$$,
                 '23514', NULL, 'auth is gateway or passthrough');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo, auth) VALUES ('t_auth', 'host=a', 'passthrough')$$,
                 '23514', NULL, 'passthrough needs pool_mode session: the client''s own login opens its connection');
SELECT lives_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo, auth, pool_mode)
                  VALUES ('t_pass', 'host=a user=someone', 'passthrough', 'session')$$, 'a passthrough upstream');
SELECT throws_ok($$INSERT INTO pg_rproxy_auth_rules (position, method, upstream) VALUES (77, 'md5', 't_pass')$$,
                 '22023', NULL, 'md5 through a passthrough upstream that renames the user is refused when written');
SELECT lives_ok($$INSERT INTO pg_rproxy_auth_rules (position, method, upstream) VALUES (77, 'scram-sha-256', 't_pass');
                  DELETE FROM pg_rproxy_auth_rules WHERE position = 77; DELETE FROM pg_rproxy_upstreams WHERE name = 't_pass'$$,
                'SCRAM through it is fine');

SELECT has_table('pg_rproxy_routes', 'pg_rproxy_routes exists');
SELECT columns_are('pg_rproxy_routes',
    ARRAY['position', 'server_name', 'database', 'role', 'client_address', 'listen_port', 'upstream'],
    'pg_rproxy_routes has the documented columns');
SELECT col_is_pk('pg_rproxy_routes', 'position', 'routes are ordered by position');
SELECT col_type_is('pg_rproxy_routes', 'client_address', 'cidr', 'client_address is a cidr');
SELECT fk_ok('pg_rproxy_routes', 'upstream', 'pg_rproxy_upstreams', 'name', 'a route names an upstream');

SELECT has_table('pg_rproxy_server_certificates', 'pg_rproxy_server_certificates exists');
SELECT columns_are('pg_rproxy_server_certificates', ARRAY['server_name', 'cert_file', 'key_file'],
                   'pg_rproxy_server_certificates has the documented columns');
SELECT fk_ok('pg_rproxy_auth_rules', 'upstream', 'pg_rproxy_upstreams', 'name',
             'an authentication rule names an upstream');

-- Values outside each fixed set, and conninfos libpq cannot use, are refused when written.
SELECT lives_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('t_a', 'host=a.internal port=5432 dbname=x')$$,
                'a keyword conninfo is accepted');
SELECT lives_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo, balance, pool_mode, pool_size)
                  VALUES ('t_b', 'postgresql://u@b1,b2:5433/db?target_session_attrs=standby', 'first', 'session', 3)$$,
                'a URI with a host list is accepted');
SELECT lives_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('t_c', 'host=c1,c2 port=5432,5433')$$,
                'a host list with a port each is accepted');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('t_bad', 'host=a bogus_option=1')$$,
                 '22023', 'invalid conninfo for upstream "t_bad": invalid connection option "bogus_option"',
                 'an unknown conninfo keyword is refused with a clear error');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('t_bad', 'host=a port')$$,
                 '22023', NULL, 'a conninfo that does not parse is refused');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('t_bad', 'host=a,b,c port=1,2')$$,
                 '22023', 'invalid conninfo for upstream "t_bad": could not match 2 port numbers to 3 hosts',
                 'ports that do not match the hosts are refused');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('t_bad', 'host=a replication=database')$$,
                 '22023', NULL, 'a replication connection is refused');
SELECT throws_ok($$UPDATE pg_rproxy_upstreams SET conninfo = 'nonsense' WHERE name = 't_a'$$,
                 '22023', NULL, 'an update is checked too');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo, access) VALUES ('t_bad', 'host=a', 'rw')$$,
                 '23514', NULL, 'access is read_only or read_write');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo, balance) VALUES ('t_bad', 'host=a', 'random')$$,
                 '23514', NULL, 'balance is one of three');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo, pool_mode) VALUES ('t_bad', 'host=a', 'statement')$$,
                 '23514', NULL, 'pool_mode is transaction or session');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo, pool_size) VALUES ('t_bad', 'host=a', 0)$$,
                 '23514', NULL, 'pool_size is positive');
SELECT throws_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo) VALUES ('', 'host=a')$$,
                 '23514', NULL, 'an upstream has a name');
SELECT lives_ok($$INSERT INTO pg_rproxy_upstreams (name, conninfo, access) VALUES ('t_rw', 'host=a', 'read_write')$$,
                'read_write is a known access');

SELECT lives_ok($$INSERT INTO pg_rproxy_routes (position, server_name, database, role, client_address, listen_port, upstream)
                  VALUES (1, 'alpha.example.com', 'db', '+analysts', '10.0.0.0/8', 5434, 't_a'),
                         (2, '*.example.com', NULL, NULL, NULL, NULL, 't_b'),
                         (3, NULL, NULL, NULL, NULL, NULL, NULL)$$,
                'routes: exact and wildcard names, a group, an address block, a port, and one for the router');
SELECT throws_ok($$INSERT INTO pg_rproxy_routes (position, upstream) VALUES (10, 'missing')$$,
                 '23503', NULL, 'a route to a missing upstream is refused');
SELECT throws_ok($$INSERT INTO pg_rproxy_routes (position, server_name) VALUES (11, 'a.*.example.com')$$,
                 '23514', NULL, 'a wildcard only as the first label');
SELECT throws_ok($$INSERT INTO pg_rproxy_routes (position, server_name) VALUES (12, 'bad name')$$,
                 '23514', NULL, 'a server name is a host name');
SELECT throws_ok($$INSERT INTO pg_rproxy_routes (position, listen_port) VALUES (13, 70000)$$,
                 '23514', NULL, 'listen_port is a TCP port');
SELECT throws_ok($$INSERT INTO pg_rproxy_routes (position, client_address) VALUES (14, '10.0.0.1/8')$$,
                 '22P02', NULL, 'client_address is a network');
SELECT lives_ok($$UPDATE pg_rproxy_upstreams SET name = 't_a2' WHERE name = 't_a'$$, 'renaming an upstream...');
SELECT is((SELECT upstream FROM pg_rproxy_routes WHERE position = 1), 't_a2', '...carries its routes along');
SELECT throws_ok($$DELETE FROM pg_rproxy_upstreams WHERE name = 't_a2'$$, '23503', NULL,
                 'an upstream a route uses cannot be dropped');

SELECT lives_ok($$INSERT INTO pg_rproxy_server_certificates VALUES ('*.example.com', 'wild.crt', 'wild.key')$$,
                'a wildcard certificate');
SELECT throws_ok($$INSERT INTO pg_rproxy_server_certificates VALUES ('*', 'any.crt', 'any.key')$$,
                 '23514', NULL, 'a bare * is not a server name');

SELECT has_trigger('pg_rproxy_upstreams', 'pg_rproxy_upstreams_changed', 'upstream changes reach the workers');
SELECT has_trigger('pg_rproxy_routes', 'pg_rproxy_routes_changed', 'route changes reach the workers');
SELECT has_trigger('pg_rproxy_server_certificates', 'pg_rproxy_server_certificates_changed',
                   'certificate changes reach the workers');
SELECT ok(NOT has_table_privilege('public', 'pg_rproxy_upstreams', 'SELECT'),
          'conninfos (and their passwords) are not readable by PUBLIC');
SELECT has_view('pg_rproxy_servers', 'the pg_rproxy_servers view exists');
SELECT columns_are('pg_rproxy_servers',
    ARRAY['upstream', 'host', 'port', 'role', 'healthy', 'last_check', 'last_error', 'replay_lag', 'busy', 'idle',
          'clients'], 'pg_rproxy_servers has the documented columns');
SELECT ok(has_table_privilege('pg_read_all_stats', 'pg_rproxy_servers', 'SELECT')
          AND NOT has_table_privilege('public', 'pg_rproxy_servers', 'SELECT'),
          'monitoring roles read the servers, PUBLIC does not');
SELECT has_view('pg_rproxy_upstream_stats', 'the pg_rproxy_upstream_stats view exists');
SELECT columns_are('pg_rproxy_upstream_stats',
    ARRAY['upstream', 'clients', 'statements', 'cache_hits', 'hit_ratio', 'servers', 'healthy_servers'],
    'pg_rproxy_upstream_stats has the documented columns');
SELECT * FROM finish();
ROLLBACK;
