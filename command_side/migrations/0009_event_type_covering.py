"""Events by type carry what a funnel reads: 0007's (project, event_type, time) index becomes
one that INCLUDEs distinct_id, app_version and os_name, so a funnel's scan of its steps' events
(query_side/funnels.py) is an index-only scan, not a heap page per few events. At 10M events a
month of three common steps (1.3M events) read 2.5 GB of heap pages in 1.4 s of its 2.5 s
statement; index-only it reads the index's ~110 MB (docs/performance.md, "Funnels").
admin/events/'s `event_type` filter keeps its index: the key columns are the same.

Created on the parent, as 0005 and 0007 (every day partition, or every chunk of a TimescaleDB
hypertable), and with the same caveat: on a large existing store the build holds off appends
until it finishes; run it while ingestion drains into the Redis buffer (docs/operations.md)."""

from django.db import migrations

OLD = 'CREATE INDEX tidelog_events_event_type ON tidelog_events (project_id, event_type, "timestamp")'
NEW = (
    'CREATE INDEX tidelog_events_event_type_covering ON tidelog_events (project_id, event_type, "timestamp")'
    " INCLUDE (distinct_id, app_version, os_name)"
)


class Migration(migrations.Migration):
    dependencies = [("command_side", "0008_storage_policies")]
    operations = [
        migrations.RunSQL(NEW, "DROP INDEX tidelog_events_event_type_covering"),
        migrations.RunSQL("DROP INDEX tidelog_events_event_type", OLD),
    ]
