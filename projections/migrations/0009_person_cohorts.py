"""Retention's cohorts by first seen as a set of persons a UTC day (schema.PERSON_COHORTS, kept
by the people projection: projections/person_cohorts.py), in place of the index over every
person's first_seen they were grouped from at each request. Filled here from the persons that
exist, under a lock that keeps the people runner out meanwhile, so an upgrade needs no replay."""

from typing import Any

from django.db import migrations

from contracts.user_sets import BitMap, encode

CREATE = """
CREATE TABLE rm_person_cohorts (
    project_id   bigint  NOT NULL,
    day          date    NOT NULL,
    person_count integer NOT NULL,
    persons      bytea   NOT NULL,
    PRIMARY KEY (project_id, day)
);
-- A serialized bitmap does not compress: store it as it is, without pglz's try.
ALTER TABLE rm_person_cohorts ALTER COLUMN persons SET STORAGE EXTERNAL;
"""


def fill(apps: Any, schema_editor: Any) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("LOCK TABLE rm_persons IN SHARE MODE")
        cursor.execute(
            """SELECT project_id, (first_seen AT TIME ZONE 'UTC')::date, array_agg(number ORDER BY number)
               FROM rm_persons WHERE number IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"""
        )
        for project_id, day, numbers in cursor.fetchall():
            cursor.execute(
                "INSERT INTO rm_person_cohorts VALUES (%s, %s, %s, %s)",
                [project_id, day, len(numbers), encode(BitMap(numbers))],
            )


class Migration(migrations.Migration):
    dependencies = [("projections", "0008_session_durations")]
    operations = [
        migrations.RunSQL(CREATE, "DROP TABLE rm_person_cohorts;"),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.RunSQL(
            "DROP INDEX rm_persons_first_seen;",
            "CREATE INDEX rm_persons_first_seen ON rm_persons (project_id, first_seen) INCLUDE (number);",
        ),
    ]
