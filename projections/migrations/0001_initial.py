"""Read-model tables and the projection checkpoints."""

from django.db import migrations

CREATE = """
CREATE TABLE projection_checkpoints (
    name           text        PRIMARY KEY,
    xact_id        xid8        NOT NULL DEFAULT '0',
    position       bigint      NOT NULL DEFAULT 0,
    events_applied bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rm_event_counts (
    project_id  bigint      NOT NULL,
    event_type  text        NOT NULL,
    bucket      timestamptz NOT NULL,
    app_version text        NOT NULL DEFAULT '',
    os_name     text        NOT NULL DEFAULT '',
    event_count bigint      NOT NULL,
    PRIMARY KEY (project_id, event_type, bucket, app_version, os_name)
);
CREATE INDEX rm_event_counts_project_bucket ON rm_event_counts (project_id, bucket);

CREATE TABLE rm_event_users (
    project_id  bigint      NOT NULL,
    event_type  text        NOT NULL,
    bucket      timestamptz NOT NULL,
    distinct_id text        NOT NULL,
    app_version text        NOT NULL DEFAULT '',
    os_name     text        NOT NULL DEFAULT '',
    event_count bigint      NOT NULL,
    PRIMARY KEY (project_id, event_type, bucket, distinct_id, app_version, os_name)
);

CREATE TABLE rm_user_days (
    project_id  bigint      NOT NULL,
    day         date        NOT NULL,
    distinct_id text        NOT NULL,
    event_count bigint      NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (project_id, day, distinct_id)
);
"""

DROP = """
DROP TABLE rm_user_days;
DROP TABLE rm_event_users;
DROP TABLE rm_event_counts;
DROP TABLE projection_checkpoints;
"""


class Migration(migrations.Migration):
    initial = True
    dependencies = [("command_side", "0001_event_store")]
    operations = [migrations.RunSQL(CREATE, DROP)]
