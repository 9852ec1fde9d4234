-- Upstream fixtures for the end-to-end tests.
CREATE ROLE rproxy_up LOGIN;
CREATE TABLE kinds (
    id   integer PRIMARY KEY,
    i4   integer,
    i8   bigint,
    num  numeric(30, 8),
    txt  text,
    raw  bytea,
    ts   timestamptz,
    arr  integer[],
    tarr text[],
    js   json,
    jb   jsonb
);
INSERT INTO kinds VALUES
    (1, 42, 9223372036854775807, 12345678901234567890.12345678, 'plain ascii', '\x00ff10', '2024-02-29 12:34:56.789+00',
     '{1,2,3}', '{"a b","c,d",NULL}', '{"k": [1, 2, {"x": null}]}', '{"k": [1, 2, {"x": null}]}'),
    (2, -2147483648, -1, -0.00000001, 'grüße aus Zürich, 東京, 🐘 ünïcødé', '\x', '1970-01-01 00:00:00+00',
     '{}', '{}', '[]', '{}'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, 0, 0, 'NaN', E'tab\tand\nnewline and ''quote'' and \\backslash', '\xdeadbeef', 'infinity',
     '{{1,2},{3,4}}', '{"{}"}', '"string"', 'null');
CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h, g * 1.5 AS x FROM generate_series(1, 100000) AS g;
CREATE TABLE guarded (id integer);
INSERT INTO guarded VALUES (1), (2), (3);
CREATE TABLE empty_t (a integer, b text);
CREATE FUNCTION notice_me(msg text) RETURNS integer LANGUAGE plpgsql STABLE AS $$
BEGIN
    RAISE NOTICE 'notice from upstream: %', msg USING HINT = 'hint text', DETAIL = 'detail text';
    RETURN 1;
END $$;
-- objects the firewall corpus names: if a rejected statement ever reached the upstream, it
-- would change one of these
CREATE TABLE t (a integer, b integer);
INSERT INTO t VALUES (1, 1), (2, 2);
CREATE SEQUENCE s;
SELECT nextval('s');
CREATE FUNCTION my_writer() RETURNS integer LANGUAGE sql VOLATILE AS 'INSERT INTO t VALUES (99, 99) RETURNING 1';
CREATE VIEW kinds_view AS SELECT id, txt FROM kinds;
CREATE INDEX big_h ON big (h);
-- row-level security: each role sees its own rows (the cache must never mix them)
CREATE ROLE rproxy_other LOGIN;
CREATE TABLE secrets (owner name, secret text);
INSERT INTO secrets VALUES ('rproxy_up', 'up-1'), ('rproxy_up', 'up-2'), ('rproxy_other', 'other-1');
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON secrets USING (owner = current_user);
GRANT SELECT ON ALL TABLES IN SCHEMA public TO rproxy_up, rproxy_other;
GRANT USAGE, UPDATE ON SEQUENCE s TO rproxy_up;  -- so only the read-only transaction (layer 3) stops nextval
