"""The event store: one append-only events table, the dedup ledger and the bad-events table.

The engine is chosen here, once, at migrate time: a TimescaleDB hypertable when the extension
can be created (it must be in shared_preload_libraries), natively day-partitioned PostgreSQL
otherwise. TIDELOG_EVENT_STORE_ENGINE=postgres (settings) forces the latter. `manage.py
event_store` reports which one a database has.
"""

from typing import Any

from django.conf import settings
from django.db import migrations

EVENTS = """
CREATE SEQUENCE tidelog_events_position_seq AS bigint;
CREATE TABLE tidelog_events (
    project_id       bigint      NOT NULL,
    uuid             uuid        NOT NULL,
    event_type       text        NOT NULL,
    distinct_id      text        NOT NULL,
    "timestamp"      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    client_timestamp timestamptz,
    sent_at          timestamptz,
    skew_ms          bigint,
    session_id       text,
    device_id        text,
    app_version      text,
    os_name          text,
    os_version       text,
    properties       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Projections follow (xact_id, position): see projections/runner.py for why the
    -- transaction id comes first.
    position         bigint      NOT NULL DEFAULT nextval('tidelog_events_position_seq'),
    xact_id          xid8        NOT NULL DEFAULT pg_current_xact_id()
) %(partitioning)s;
ALTER SEQUENCE tidelog_events_position_seq OWNED BY tidelog_events.position;
CREATE INDEX tidelog_events_project_time ON tidelog_events (project_id, "timestamp" DESC);
CREATE INDEX tidelog_events_follow ON tidelog_events (xact_id, position);
"""

PARTITION_FUNCTION = """
CREATE TABLE tidelog_events_default PARTITION OF tidelog_events DEFAULT;

-- Creates the partition of one UTC day if it is missing. Safe to call from many drainers at
-- once: the advisory lock serialises creators, the second finds the table made.
CREATE FUNCTION tidelog_ensure_event_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('tidelog_events_p%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tidelog_events_partitions'));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF tidelog_events FOR VALUES FROM (%L) TO (%L)',
        part,
        to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
        to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00'
    );
    RETURN true;
END
$$;

SELECT tidelog_ensure_event_partition((now() AT TIME ZONE 'UTC')::date + d)
FROM generate_series(-1, 3) AS d;
"""

LEDGER = """
-- Exactly-once storage: the first (project, uuid) wins. A hypertable's unique indexes must
-- contain its time column, and a retry may be filed under a slightly different corrected time,
-- so the key lives in a table of its own, pruned after TIDELOG_DEDUP_WINDOW_DAYS.
CREATE TABLE tidelog_event_ids (
    project_id    bigint      NOT NULL,
    uuid          uuid        NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, uuid)
);
-- BRIN, not btree: ids arrive in first_seen order, so a block-range index finds the old ones
-- for pruning at a fraction of a btree's cost on every insert (measured: docs/performance.md).
CREATE INDEX tidelog_event_ids_first_seen ON tidelog_event_ids USING brin (first_seen_at);

CREATE TABLE tidelog_bad_events (
    id          bigserial   PRIMARY KEY,
    project_id  bigint      NOT NULL,
    received_at timestamptz NOT NULL,
    error_code  text        NOT NULL,
    field       text,
    message     text        NOT NULL,
    payload     text        NOT NULL
);
CREATE INDEX tidelog_bad_events_project ON tidelog_bad_events (project_id, received_at DESC, id DESC);
"""

DROP = """
DROP TABLE IF EXISTS tidelog_bad_events;
DROP TABLE IF EXISTS tidelog_event_ids;
DROP TABLE IF EXISTS tidelog_events CASCADE;
DROP FUNCTION IF EXISTS tidelog_ensure_event_partition(date);
"""


def timescaledb_usable(cursor: Any) -> bool:
    if settings.TIDELOG_EVENT_STORE_ENGINE == "postgres":
        return False
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),"
        " current_setting('shared_preload_libraries') LIKE '%timescaledb%'"
    )
    available, preloaded = cursor.fetchone()
    return bool(available and preloaded)


def create_event_store(apps: Any, schema_editor: Any) -> None:
    with schema_editor.connection.cursor() as cursor:
        if timescaledb_usable(cursor):
            cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            cursor.execute(EVENTS % {"partitioning": ""})
            cursor.execute(
                "SELECT create_hypertable('tidelog_events', by_range('timestamp', INTERVAL '1 day'))"
            )
        else:
            cursor.execute(EVENTS % {"partitioning": 'PARTITION BY RANGE ("timestamp")'})
            cursor.execute(PARTITION_FUNCTION)
        cursor.execute(LEDGER)


def drop_event_store(apps: Any, schema_editor: Any) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(DROP)


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.RunPython(create_event_store, drop_event_store)]
