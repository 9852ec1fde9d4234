-- pg_rproxy 0.6.0: the workers view counts the clients parked while idle (no coroutine, no
-- buffers: a socket and a session object each).
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.6.0'" to load this file. \quit

DROP VIEW pg_rproxy_workers;
DROP FUNCTION pg_rproxy_worker_stats();

CREATE FUNCTION pg_rproxy_worker_stats(
    OUT worker integer,
    OUT pid integer,
    OUT clients integer,
    OUT upstream_busy integer,
    OUT upstream_idle integer,
    OUT statements bigint,
    OUT parked_clients integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;

CREATE VIEW pg_rproxy_workers AS
    SELECT worker, pid, clients, upstream_busy, upstream_idle, statements, parked_clients
    FROM pg_rproxy_worker_stats();

COMMENT ON VIEW pg_rproxy_workers IS
    'One row per running pg_rproxy listener worker: clients, upstream connections busy/idle, statements served, and the clients parked while idle';
