"""Sessions (projections/sessions.py) and people (projections/people.py); contracts/schema.py
declares every column and says what it holds."""

from django.db import migrations

CREATE = """
CREATE TABLE rm_sessions (
    project_id   bigint      NOT NULL,
    session_id   text        NOT NULL,
    inferred     boolean     NOT NULL,
    distinct_id  text        NOT NULL,
    device_id    text        NOT NULL,
    app_version  text        NOT NULL,
    os_name      text        NOT NULL,
    os_version   text        NOT NULL,
    start_at     timestamptz NOT NULL,
    end_at       timestamptz NOT NULL,
    event_count  bigint      NOT NULL,
    screen_count bigint      NOT NULL,
    first_event  text        NOT NULL,
    last_event   text        NOT NULL,
    ended_by     text        NOT NULL CHECK (ended_by IN ('explicit', 'inactivity', 'cap')),
    PRIMARY KEY (project_id, session_id)
);
-- The list, newest first, with its cursor's tie-break.
CREATE INDEX rm_sessions_list ON rm_sessions (project_id, start_at DESC, session_id DESC);
-- A user's sessions, and an inferred session's (distinct_id, device_id) neighbours.
CREATE INDEX rm_sessions_distinct_id ON rm_sessions (project_id, distinct_id, device_id, start_at);

CREATE TABLE rm_person_distinct_ids (
    project_id  bigint      NOT NULL,
    distinct_id text        NOT NULL,
    person_id   uuid        NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    event_count bigint      NOT NULL,
    PRIMARY KEY (project_id, distinct_id)
);
CREATE INDEX rm_person_distinct_ids_person ON rm_person_distinct_ids (project_id, person_id);

CREATE TABLE rm_persons (
    project_id        bigint      NOT NULL,
    person_id         uuid        NOT NULL,
    is_identified     boolean     NOT NULL,
    properties        jsonb       NOT NULL,
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,
    event_count       bigint      NOT NULL,
    distinct_id_count bigint      NOT NULL,
    PRIMARY KEY (project_id, person_id)
);
CREATE INDEX rm_persons_list ON rm_persons (project_id, last_seen DESC, person_id DESC);
CREATE INDEX rm_persons_properties ON rm_persons USING gin (properties jsonb_path_ops);

CREATE TABLE rm_person_properties (
    project_id  bigint      NOT NULL,
    distinct_id text        NOT NULL,
    key         text        NOT NULL,
    set_value   jsonb,
    set_at      timestamptz,
    once_value  jsonb,
    once_at     timestamptz,
    unset_at    timestamptz,
    PRIMARY KEY (project_id, distinct_id, key)
);

CREATE TABLE rm_identity_links (
    project_id  bigint      NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('identify', 'alias')),
    distinct_id text        NOT NULL,
    other_id    text        NOT NULL,
    first_at    timestamptz NOT NULL,
    outcome     text        NOT NULL,
    PRIMARY KEY (project_id, kind, distinct_id, other_id)
);
CREATE INDEX rm_identity_links_other ON rm_identity_links (project_id, other_id);
"""

DROP = """
DROP TABLE rm_identity_links;
DROP TABLE rm_person_properties;
DROP TABLE rm_persons;
DROP TABLE rm_person_distinct_ids;
DROP TABLE rm_sessions;
"""


class Migration(migrations.Migration):
    dependencies = [("projections", "0004_experiment_conversions")]
    operations = [migrations.RunSQL(CREATE, DROP)]
