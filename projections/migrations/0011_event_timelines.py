"""Event timelines (schema.EVENT_TIMELINES, kept by the event_timelines projection): each hour's
events of a type as columns, what funnels read. Not filled here: the projection starts at the
first event like any new one (`manage.py projections replay event_timelines` builds it faster
than the live runner, docs/operations.md), and until it has caught up a funnel reads the events
past its checkpoint from the event store, as it did before (query_side/funnels.py)."""

from django.db import migrations

CREATE = """
CREATE TABLE rm_event_timelines (
    project_id   bigint      NOT NULL,
    event_type   text        NOT NULL,
    hour         timestamptz NOT NULL,
    chunk        integer     NOT NULL CHECK (chunk >= 0),
    event_count  integer     NOT NULL CHECK (event_count > 0),
    app_versions text[]      NOT NULL,
    os_names     text[]      NOT NULL,
    events       bytea       NOT NULL,
    PRIMARY KEY (project_id, event_type, hour, chunk)
);
-- Numbers and microseconds compress little: store the bytes as they are, without pglz's try.
ALTER TABLE rm_event_timelines ALTER COLUMN events SET STORAGE EXTERNAL;
"""


class Migration(migrations.Migration):
    dependencies = [("projections", "0010_event_type_rollups")]
    operations = [migrations.RunSQL(CREATE, "DROP TABLE rm_event_timelines;")]
