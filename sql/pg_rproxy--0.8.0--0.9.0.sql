-- pg_rproxy 0.9.0: interception and observability (rewrite rules, the statement hook, statement
-- statistics; the audit log, the message log and the metrics endpoint are settings).
\echo Use "ALTER EXTENSION pg_rproxy UPDATE TO '0.9.0'" to load this file. \quit
