"""Unique users as sets (issue 9): the user directory, event rollups by hour and day with the set
of their users, active days, and the people projection's person numbers and aliases. Replaces
rm_event_counts, rm_event_users (a row per user, hour and event type: 9.7M rows for 10M events)
and rm_user_days. contracts/schema.py declares every column and says what it holds.

The event_aggregates, user_activity and people projections start over from position zero: their
checkpoints are reset, so a running runner rebuilds them (or `manage.py replay` does, in shadow).
"""

from django.db import migrations

CREATE = """
CREATE TABLE tidelog_user_numbers (
    project_id  bigint  NOT NULL,
    distinct_id text    NOT NULL,
    number      integer NOT NULL GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (project_id, distinct_id)
);

CREATE TABLE rm_event_rollups (
    project_id  bigint      NOT NULL,
    grain       text        NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket      timestamptz NOT NULL,
    event_type  text        NOT NULL,
    app_version text        NOT NULL,
    os_name     text        NOT NULL,
    event_count bigint      NOT NULL,
    user_count  integer     NOT NULL,
    users       bytea       NOT NULL,
    PRIMARY KEY (project_id, grain, bucket, event_type, app_version, os_name)
);
-- A serialized bitmap does not compress: store it as it is, without pglz's try.
ALTER TABLE rm_event_rollups ALTER COLUMN users SET STORAGE EXTERNAL;

CREATE TABLE rm_active_days (
    project_id  bigint  NOT NULL,
    day         date    NOT NULL,
    event_count bigint  NOT NULL,
    user_count  integer NOT NULL,
    users       bytea   NOT NULL,
    PRIMARY KEY (project_id, day)
);
ALTER TABLE rm_active_days ALTER COLUMN users SET STORAGE EXTERNAL;

ALTER TABLE rm_persons ADD COLUMN number integer;
-- Retention's cohorts by first seen: the persons first seen in a range, with their numbers.
CREATE INDEX rm_persons_first_seen ON rm_persons (project_id, first_seen) INCLUDE (number);

CREATE TABLE rm_person_aliases (
    project_id bigint  NOT NULL,
    number     integer NOT NULL,
    canonical  integer NOT NULL,
    PRIMARY KEY (project_id, number)
);

DROP TABLE rm_event_counts;
DROP TABLE rm_event_users;
DROP TABLE rm_user_days;
DELETE FROM projection_checkpoints
WHERE name IN ('event_aggregates', 'user_activity', 'people')
   OR name LIKE 'event\\_aggregates\\_\\_%' OR name LIKE 'user\\_activity\\_\\_%' OR name LIKE 'people\\_\\_%';
DELETE FROM rm_persons;
DELETE FROM rm_person_distinct_ids;
DELETE FROM rm_person_properties;
DELETE FROM rm_identity_links;
"""


class Migration(migrations.Migration):
    dependencies = [("projections", "0005_sessions_and_people")]

    operations = [migrations.RunSQL(CREATE, reverse_sql=migrations.RunSQL.noop)]
