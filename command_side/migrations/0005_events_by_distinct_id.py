"""Events by person: (project, distinct_id, time). Read by the sessions projection when a late
event reshapes a device's inferred sessions, by a session's and a person's event timelines, and
by erasure. Created on the parent: every partition (or hypertable chunk) gets it, today's and
future ones alike.

On a large existing store this build holds off appends until it finishes (PostgreSQL 15 cannot
build an index CONCURRENTLY on a partitioned table): run the migration while ingestion drains
into the Redis buffer, which holds the backlog (docs/operations.md)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("command_side", "0004_flag_event_store")]
    operations = [
        migrations.RunSQL(
            'CREATE INDEX tidelog_events_distinct_id ON tidelog_events (project_id, distinct_id, "timestamp")',
            "DROP INDEX tidelog_events_distinct_id",
        )
    ]
