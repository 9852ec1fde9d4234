-- pgTAP: pg_rproxy_rewrite_rules (0.9.0): the documented columns, rules checked when written with
-- PostgreSQL's own regexp_replace (a pattern or flags it refuses never reach the workers), the
-- change trigger, and who may read them.
\ir preamble.psql
BEGIN;
SELECT plan(17);

SELECT has_table('pg_rproxy_rewrite_rules', 'pg_rproxy_rewrite_rules exists');
SELECT columns_are('pg_rproxy_rewrite_rules', ARRAY['position', 'upstream', 'pattern', 'replacement', 'flags', 'enabled'],
                   'pg_rproxy_rewrite_rules has the documented columns');
SELECT col_is_pk('pg_rproxy_rewrite_rules', 'position', 'rules are ordered by position');
SELECT fk_ok('pg_rproxy_rewrite_rules', 'upstream', 'pg_rproxy_upstreams', 'name', 'a rule may name an upstream');
SELECT col_default_is('pg_rproxy_rewrite_rules', 'flags', '', 'no flags by default');
SELECT col_default_is('pg_rproxy_rewrite_rules', 'enabled', 'true', 'a rule is enabled by default');
SELECT col_not_null('pg_rproxy_rewrite_rules', 'pattern', 'a rule has a pattern');
SELECT col_not_null('pg_rproxy_rewrite_rules', 'replacement', 'a rule has a replacement');

SELECT lives_ok($$INSERT INTO pg_rproxy_rewrite_rules (position, pattern, replacement, flags)
                  VALUES (1, '\mbi_(\w+)', '\1', 'gi')$$, 'a good rule is accepted');
SELECT throws_ok($$INSERT INTO pg_rproxy_rewrite_rules (position, pattern, replacement) VALUES (2, 'bi_(kinds', 'x')$$,
                 '2201B', 'invalid regular expression: parentheses () not balanced',
                 'a pattern that does not compile is refused with regexp_replace''s error');
SELECT throws_ok($$INSERT INTO pg_rproxy_rewrite_rules (position, pattern, replacement, flags) VALUES (2, 'a', 'b', 'gz')$$,
                 '22023', 'invalid regular expression option: "z"', 'unknown flags are refused');
SELECT throws_ok($$UPDATE pg_rproxy_rewrite_rules SET pattern = '*' WHERE position = 1$$,
                 '2201B', NULL, 'an update to a bad pattern is refused too');
SELECT throws_ok($$INSERT INTO pg_rproxy_rewrite_rules (position, upstream, pattern, replacement)
                   VALUES (3, 'no_such_upstream', 'a', 'b')$$,
                 '23503', NULL, 'a rule names an upstream that exists');
SELECT is((SELECT pattern FROM pg_rproxy_rewrite_rules WHERE position = 1), '\mbi_(\w+)', 'the good rule is kept');

SELECT ok(EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'pg_rproxy_rewrite_rules'::regclass
                  AND tgname = 'pg_rproxy_rewrite_rules_changed' AND tgfoid = 'pg_rproxy_auth_changed()'::regprocedure),
          'a change tells the workers');
SELECT ok(NOT has_table_privilege('public', 'pg_rproxy_rewrite_rules', 'SELECT'), 'PUBLIC does not read the rules');
SELECT ok(NOT has_table_privilege('public', 'pg_rproxy_rewrite_rules', 'INSERT'), 'PUBLIC does not write rules');

SELECT * FROM finish();
ROLLBACK;
