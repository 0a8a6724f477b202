-- The orders example's database (examples/orders.json): runs on the embedded SQLite
-- (`graphjit run examples/orders.json --db-init examples/db/orders.sql`) and on PostgreSQL.
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer text NOT NULL,
    total double precision NOT NULL,
    note text,
    status text NOT NULL
);
INSERT INTO orders (id, customer, total, note, status) VALUES
    (1, 'ada', 120.0, NULL, 'open'),
    (2, 'bob', 80.0, 'gift wrap', 'open'),
    (3, 'ada', 450.5, 'rush', 'open'),
    (4, 'bob', 40.0, NULL, 'open'),
    (5, 'cy', 200.0, NULL, 'open'),
    (6, 'unknown-zed', 300.0, NULL, 'open'),
    (7, 'dan', 999.0, NULL, 'closed');
CREATE TABLE customer_discounts (
    customer text PRIMARY KEY,
    total double precision NOT NULL,
    discount double precision NOT NULL,
    orders bigint NOT NULL
);
