-- Tables and rows for examples/db-report.json and examples/denied.json.
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total bigint NOT NULL);
INSERT INTO orders (customer, total) VALUES ('ada', 120), ('bob', 80), ('ada', 300), ('cy', 45);
CREATE TABLE audit_log (msg text NOT NULL);
CREATE TABLE secrets (value text);
INSERT INTO secrets VALUES ('hunter2');
