"""The event rollups summed over app_version and os_name (schema.EVENT_TYPE_ROLLUPS, kept by the
event_aggregates projection beside EVENT_ROLLUPS): the questions with neither read one row a
bucket and event type. Filled here from the rollups that exist, under a lock that keeps the
event_aggregates runner out meanwhile, so an upgrade needs no replay."""

from itertools import groupby
from typing import Any

from django.db import migrations

from contracts.user_sets import BitMap, decode, encode

CREATE = """
CREATE TABLE rm_event_type_rollups (
    project_id  bigint      NOT NULL,
    grain       text        NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket      timestamptz NOT NULL,
    event_type  text        NOT NULL,
    event_count bigint      NOT NULL,
    user_count  integer     NOT NULL,
    users       bytea       NOT NULL,
    PRIMARY KEY (project_id, grain, bucket, event_type)
);
-- A serialized bitmap does not compress: store it as it is, without pglz's try.
ALTER TABLE rm_event_type_rollups ALTER COLUMN users SET STORAGE EXTERNAL;
"""
INSERT = "INSERT INTO rm_event_type_rollups VALUES (%s, %s, %s, %s, %s, %s, %s)"


def fill(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE rm_event_rollups IN SHARE MODE")
    rows: list[tuple[Any, ...]] = []
    # Read in key order through a server-side cursor: one key's rows at a time in memory.
    with connection.connection.cursor(name="event_type_rollups_fill") as source, connection.cursor() as cursor:
        source.itersize = 2_000
        source.execute(
            """SELECT project_id, grain, bucket, event_type, event_count, users FROM rm_event_rollups
               ORDER BY project_id, grain, bucket, event_type"""
        )
        for key, group in groupby(source, key=lambda row: tuple(row[:4])):
            parts = list(group)
            users = BitMap.union(*(decode(part[5]) for part in parts))
            rows.append((*key, sum(part[4] for part in parts), len(users), encode(users)))
            if len(rows) >= 1_000:
                cursor.executemany(INSERT, rows)
                rows.clear()
        cursor.executemany(INSERT, rows)


class Migration(migrations.Migration):
    dependencies = [("projections", "0009_person_cohorts")]
    operations = [
        migrations.RunSQL(CREATE, "DROP TABLE rm_event_type_rollups;"),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
