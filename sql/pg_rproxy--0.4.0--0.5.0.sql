-- pg_rproxy 0.5.0: how the workers key a statement, for diagnosis and for the tests that hold the
-- workers' quick scanner to the server's.
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.5.0'" to load this file. \quit

CREATE FUNCTION pg_rproxy_scan(
    sql text,
    OUT normalized text,
    OUT shape text,
    OUT quick_normalized text,
    OUT quick_shape text)
RETURNS record
AS 'MODULE_PATHNAME' LANGUAGE C STRICT STABLE;

COMMENT ON FUNCTION pg_rproxy_scan(text) IS
    'The statement as the result cache keys it (normalized), with each literal as ?<kind> (shape: statements of one shape share what the parser learned), from the server''s scanner and from the workers'' quick scanner (NULL when it leaves the statement to the server''s); NULL shape: none';
