#!/usr/bin/env bash
# Runs once, on an empty data volume, as /docker-entrypoint-initdb.d/010_tidelog.sh of the
# TimescaleDB image: after that image's own 000_install_timescaledb.sh (extension in template1
# and POSTGRES_DB, telemetry setting) and 001_timescaledb_tune.sh (memory settings), which is why
# docker-compose.yml mounts this file beside them, never a directory over them.
#
# Makes sure Tidelog's database (TIDELOG_DB, default tidelog) exists with the extension, even when
# POSTGRES_DB names another. The image preloads the library (shared_preload_libraries); Tidelog's
# migrations then make the events table a hypertable. Safe to run again; safe to be sourced.
set -e

tidelog_db="${TIDELOG_DB:-tidelog}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
    -v db="$tidelog_db" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$tidelog_db" <<'SQL'
CREATE EXTENSION IF NOT EXISTS timescaledb;
SQL
