-- Runs once, on an empty data directory (the image's /docker-entrypoint-initdb.d).
-- The timescale image preloads the library; Tidelog's first migration then makes the events
-- table a hypertable. Creating the extension here only makes it visible to `\dx` early.
CREATE EXTENSION IF NOT EXISTS timescaledb;
