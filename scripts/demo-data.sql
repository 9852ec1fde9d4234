-- Sample data for the embedded demo upstream started by scripts/run.sh, and for the demo-upstream
-- service of docker/docker-compose.yml (profile scaled), which runs it at its first start.
CREATE TABLE customers (
    id      integer PRIMARY KEY,
    name    text NOT NULL,
    city    text,
    joined  timestamptz NOT NULL
);
CREATE TABLE orders (
    id           bigint PRIMARY KEY,
    customer_id  integer NOT NULL REFERENCES customers(id),
    amount       numeric(12,2) NOT NULL,
    items        text[],
    details      jsonb
);
INSERT INTO customers
SELECT i, 'customer ' || i, (ARRAY['Berlin','Zürich','São Paulo','Kyōto'])[1 + i % 4],
       timestamptz '2024-01-01 00:00+00' + i * interval '1 day'
FROM generate_series(1, 1000) AS i;
INSERT INTO orders
SELECT i, 1 + i % 1000, round((i * 7.31)::numeric % 1000, 2), ARRAY['item-' || i % 13, 'item-' || i % 7],
       jsonb_build_object('channel', CASE WHEN i % 2 = 0 THEN 'web' ELSE 'store' END, 'n', i)
FROM generate_series(1, 20000) AS i;
CREATE INDEX ON orders (customer_id);
ANALYZE;
