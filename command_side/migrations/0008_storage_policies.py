"""Storage policies (command_side/storage.py): the retention watermark on both engines, the
partition creator that respects it (plain PostgreSQL), and the compression layout (TimescaleDB).

The watermark: every event with a timestamp before `retained_from` may have been dropped by
retention; every event at or after it is still stored. Written by retention only, in the same
transaction as the drop, and never moved back.

The compression layout: segments by project, each compressed batch ordered by (xact_id,
position), the projection runner's follow order. A batch then holds a narrow range of that
order, and its min/max metadata lets a runner's read skip every batch behind its checkpoint
(projections/runner.py, _READ). Setting the layout compresses nothing: the policy does
(`manage.py event_store compress`).
"""

from typing import Any

from django.db import migrations

RETENTION = """
CREATE TABLE tidelog_event_retention (
    singleton     bool        PRIMARY KEY DEFAULT true CHECK (singleton),
    retained_from timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
"""

# As 0001's, and it never creates a day the watermark has passed: retention dropped that day's
# partition, and a late event for it goes to the default partition (which retention empties
# too). Re-creating the partition would fail outright once the default held a row of that day.
PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION tidelog_ensure_event_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('tidelog_events_p%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tidelog_events_partitions'));
    IF to_regclass(part) IS NOT NULL
       OR EXISTS (SELECT 1 FROM tidelog_event_retention
                  WHERE (day + 1)::timestamp AT TIME ZONE 'UTC' <= retained_from) THEN
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
"""

COMPRESSION = """
ALTER TABLE tidelog_events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'project_id',
    timescaledb.compress_orderby = 'xact_id, position'
)
"""


def is_hypertable(cursor: Any) -> bool:
    cursor.execute("SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return False
    cursor.execute("SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'tidelog_events')")
    return bool(cursor.fetchone()[0])


def forwards(apps: Any, schema_editor: Any) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(RETENTION)
        if is_hypertable(cursor):
            cursor.execute(COMPRESSION)
        else:
            cursor.execute(PARTITION_FUNCTION)


def backwards(apps: Any, schema_editor: Any) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP TABLE tidelog_event_retention")
        # The partition function keeps its watermark check: with the table gone it would fail,
        # so 0001's body comes back.
        if not is_hypertable(cursor):
            cursor.execute(
                PARTITION_FUNCTION.replace(
                    """
       OR EXISTS (SELECT 1 FROM tidelog_event_retention
                  WHERE (day + 1)::timestamp AT TIME ZONE 'UTC' <= retained_from)""",
                    "",
                )
            )


class Migration(migrations.Migration):
    dependencies = [("command_side", "0007_event_filter_indexes")]
    operations = [migrations.RunPython(forwards, backwards)]
