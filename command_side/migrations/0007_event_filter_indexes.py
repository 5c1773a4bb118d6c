"""Events by session and by type: (project, session_id, time) and (project, event_type, time),
for admin/events/'s `session_id` and `event_type` filters (0005 serves `distinct_id`), newest
first from each partition's index, merged, cut at the page's limit: a page costs the same at 10M
events as at 10k, for a known value or an unknown one (docs/performance.md, "Analytics at 10M
events"). The session index is partial: events without a session_id (inferred sessions) are
never looked up by it, and it costs their inserts nothing.

Created on the parent, as 0005: every day partition, or every chunk of a TimescaleDB
hypertable (which propagates a parent's index, partial ones included), today's and future ones
alike. The same caveat as 0005: on a large existing store the build holds off appends until it
finishes; run it while ingestion drains into the Redis buffer (docs/operations.md)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("command_side", "0006_erasure_log")]
    operations = [
        migrations.RunSQL(
            'CREATE INDEX tidelog_events_session_id ON tidelog_events (project_id, session_id, "timestamp")'
            " WHERE session_id IS NOT NULL",
            "DROP INDEX tidelog_events_session_id",
        ),
        migrations.RunSQL(
            'CREATE INDEX tidelog_events_event_type ON tidelog_events (project_id, event_type, "timestamp")',
            "DROP INDEX tidelog_events_event_type",
        ),
    ]
