"""Session durations as log-scale histograms (projections/session_durations.py, kept by the
sessions projection); contracts/schema.py says what each column holds. Filled here from the
sessions that exist, so an upgrade needs no replay. The primary key serves session-metrics: a
range of buckets of one grain."""

from django.db import migrations

from projections.session_durations import durations_sql

CREATE = """
CREATE TABLE rm_session_durations (
    project_id  bigint      NOT NULL,
    grain       text        NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket      timestamptz NOT NULL,
    app_version text        NOT NULL,
    os_name     text        NOT NULL,
    sessions    integer     NOT NULL,
    events      bigint      NOT NULL,
    bins        integer[]   NOT NULL,
    counts      integer[]   NOT NULL,
    PRIMARY KEY (project_id, grain, bucket, app_version, os_name)
);
"""

# Every session there is, filed as the projection files them. The bins are contracts' (new bins
# would need a migration that refills).
FILL = f"INSERT INTO rm_session_durations {durations_sql('rm_sessions s')};"


class Migration(migrations.Migration):
    dependencies = [("projections", "0007_event_properties")]
    operations = [migrations.RunSQL(CREATE + FILL, "DROP TABLE rm_session_durations;")]
